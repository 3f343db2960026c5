//! Excel workbooks (Office Open XML, `.xlsx`): written as a stream for exports and
//! read into CSV for imports, so both run in constant memory on a million rows.
//!
//! Writing: a ZIP of five parts; the worksheet is streamed last as a *stored*
//! (uncompressed) entry whose CRC and size follow it in a data descriptor, so no
//! row is held back. Strings are inline (`t="inlineStr"`): a spreadsheet never
//! evaluates them, so a cell such as `=HYPERLINK(...)` stays text.
//!
//! Reading: the first worksheet, its shared strings and which styles are dates,
//! inflated and parsed as streams (quick-xml), one row at a time.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use quick_xml::events::Event;

use crate::xml_escape;

/// What a cell holds in an export.
pub enum Cell<'a> {
    Text(std::borrow::Cow<'a, str>),
    Number(f64),
    Bool(bool),
    Empty,
}

/// What an XLSX response says it is.
pub const CONTENT_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Most data rows a worksheet holds (Excel's limit less the header).
pub const MAX_ROWS: u64 = 1_048_575;

const SHEET: &str = "xl/worksheets/sheet1.xml";
/// Local header flags: sizes in a data descriptor (bit 3), UTF-8 names (bit 11).
const FLAG_DESCRIPTOR: u16 = 0x0008;
const FLAG_UTF8: u16 = 0x0800;
/// 1980-01-01 00:00, the earliest DOS date: parts carry no real time.
const DOS_DATE: u16 = 0x0021;

/// An XLSX document written piece by piece: [`XlsxWriter::start`], a
/// [`XlsxWriter::row`] per row, then [`XlsxWriter::finish`]; each answers the bytes to
/// send next.
pub struct XlsxWriter {
    /// Bytes written so far (offsets of the parts).
    offset: u64,
    /// Name, CRC, size, flags and offset of each part, for the central directory.
    parts: Vec<(String, u32, u64, u16, u64)>,
    sheet_start: u64,
    sheet_crc: crc32fast::Hasher,
    sheet_len: u64,
    rows: u64,
    /// The sheet's name.
    name: String,
}

/// An export grew past what a ZIP without its 64-bit extension holds.
#[derive(Debug)]
pub struct TooLarge;

impl XlsxWriter {
    pub fn new(sheet_name: &str) -> XlsxWriter {
        // Sheet names: at most 31 characters, none of []:*?/\
        let name: String = sheet_name
            .chars()
            .filter(|c| !matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\'))
            .take(31)
            .collect();
        XlsxWriter {
            offset: 0,
            parts: Vec::new(),
            sheet_start: 0,
            sheet_crc: crc32fast::Hasher::new(),
            sheet_len: 0,
            rows: 0,
            name: if name.is_empty() {
                "Sheet1".into()
            } else {
                name
            },
        }
    }

    /// The fixed parts, then the start of the worksheet.
    pub fn start(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let workbook = format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="{}" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
            xml_escape(&self.name)
        );
        let fixed: [(&str, &str); 4] = [
            (
                "[Content_Types].xml",
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#,
            ),
            (
                "_rels/.rels",
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
            ),
            ("xl/workbook.xml", &workbook),
            (
                "xl/_rels/workbook.xml.rels",
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
            ),
        ];
        for (name, body) in fixed {
            let crc = crc32fast::hash(body.as_bytes());
            let at = self.offset;
            let header = local_header(name, FLAG_UTF8, crc, body.len() as u32);
            out.extend_from_slice(&header);
            out.extend_from_slice(body.as_bytes());
            self.offset += (header.len() + body.len()) as u64;
            self.parts
                .push((name.into(), crc, body.len() as u64, FLAG_UTF8, at));
        }
        self.sheet_start = self.offset;
        let header = local_header(SHEET, FLAG_UTF8 | FLAG_DESCRIPTOR, 0, 0);
        self.offset += header.len() as u64;
        out.extend_from_slice(&header);
        let open = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#;
        self.sheet_bytes(&mut out, open.as_bytes());
        out
    }

    fn sheet_bytes(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        self.sheet_crc.update(bytes);
        self.sheet_len += bytes.len() as u64;
        self.offset += bytes.len() as u64;
        out.extend_from_slice(bytes);
    }

    /// Appends one row to `out`; `Err` once the sheet is full or the file would
    /// pass 4 GiB.
    pub fn row<'a>(
        &mut self,
        out: &mut Vec<u8>,
        cells: impl IntoIterator<Item = Cell<'a>>,
    ) -> Result<(), TooLarge> {
        if self.rows > MAX_ROWS || self.offset > u32::MAX as u64 - (64 << 20) {
            return Err(TooLarge);
        }
        self.rows += 1;
        let mut xml = format!(r#"<row r="{}">"#, self.rows);
        for (i, cell) in cells.into_iter().enumerate() {
            let r = format!("{}{}", column_name(i), self.rows);
            match cell {
                Cell::Empty => {}
                Cell::Text(t) if t.is_empty() => {}
                Cell::Text(t) => {
                    xml.push_str(&format!(
                        r#"<c r="{r}" t="inlineStr"><is><t xml:space="preserve">{}</t></is></c>"#,
                        xml_escape(&t)
                    ));
                }
                Cell::Number(n) if n.is_finite() => {
                    xml.push_str(&format!(r#"<c r="{r}"><v>{n}</v></c>"#));
                }
                Cell::Number(_) => {}
                Cell::Bool(b) => {
                    xml.push_str(&format!(r#"<c r="{r}" t="b"><v>{}</v></c>"#, u8::from(b)));
                }
            }
        }
        xml.push_str("</row>");
        self.sheet_bytes(out, xml.as_bytes());
        Ok(())
    }

    /// The end of the worksheet, its data descriptor and the ZIP's directory.
    pub fn finish(mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.sheet_bytes(&mut out, b"</sheetData></worksheet>");
        let crc = std::mem::take(&mut self.sheet_crc).finalize();
        let len = self.sheet_len;
        out.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        self.offset += 16;
        self.parts.push((
            SHEET.into(),
            crc,
            len,
            FLAG_UTF8 | FLAG_DESCRIPTOR,
            self.sheet_start,
        ));
        let directory_at = self.offset;
        let mut directory = Vec::new();
        for (name, crc, size, flags, at) in &self.parts {
            directory.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            directory.extend_from_slice(&20u16.to_le_bytes()); // made by
            directory.extend_from_slice(&20u16.to_le_bytes()); // needed
            directory.extend_from_slice(&flags.to_le_bytes());
            directory.extend_from_slice(&0u16.to_le_bytes()); // stored
            directory.extend_from_slice(&0u16.to_le_bytes()); // time
            directory.extend_from_slice(&DOS_DATE.to_le_bytes());
            directory.extend_from_slice(&crc.to_le_bytes());
            directory.extend_from_slice(&(*size as u32).to_le_bytes());
            directory.extend_from_slice(&(*size as u32).to_le_bytes());
            directory.extend_from_slice(&(name.len() as u16).to_le_bytes());
            directory.extend_from_slice(&[0; 12]); // extra, comment, disk, attributes
            directory.extend_from_slice(&(*at as u32).to_le_bytes());
            directory.extend_from_slice(name.as_bytes());
        }
        out.extend_from_slice(&directory);
        out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        out.extend_from_slice(&[0; 4]); // disk numbers
        let n = self.parts.len() as u16;
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(directory.len() as u32).to_le_bytes());
        out.extend_from_slice(&(directory_at as u32).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }
}

fn local_header(name: &str, flags: u16, crc: u32, size: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(30 + name.len());
    h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    h.extend_from_slice(&20u16.to_le_bytes());
    h.extend_from_slice(&flags.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // stored
    h.extend_from_slice(&0u16.to_le_bytes()); // time
    h.extend_from_slice(&DOS_DATE.to_le_bytes());
    h.extend_from_slice(&crc.to_le_bytes());
    h.extend_from_slice(&size.to_le_bytes());
    h.extend_from_slice(&size.to_le_bytes());
    h.extend_from_slice(&(name.len() as u16).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(name.as_bytes());
    h
}

/// `A`, `B`, ... `Z`, `AA`, ... for a zero-based column.
fn column_name(mut i: usize) -> String {
    let mut name = Vec::new();
    loop {
        name.push(b'A' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    name.reverse();
    String::from_utf8(name).expect("ASCII letters")
}

/// The zero-based column of a cell reference such as `AB12`.
fn column_index(reference: &[u8]) -> Option<usize> {
    let letters: Vec<u8> = reference
        .iter()
        .take_while(|b| b.is_ascii_alphabetic())
        .copied()
        .collect();
    // At most three letters: XFD is a sheet's last column.
    if letters.is_empty() || letters.len() > 3 {
        return None;
    }
    let n = letters.iter().fold(0usize, |n, b| {
        n * 26 + (b.to_ascii_uppercase() - b'A') as usize + 1
    });
    Some(n - 1)
}

// ---------------------------------------------------------------------------------
// Reading

/// Most rows read from one worksheet (Excel itself stops at 1,048,576), and most
/// bytes of shared strings: a small compressed file cannot unfold without end.
const MAX_READ_ROWS: u64 = 1_048_576;
const MAX_STRING_BYTES: usize = 256 << 20;

fn too_long() -> Unreadable {
    unreadable("a cell holds more than 32,767 characters, more than a spreadsheet allows")
}

/// Why a workbook cannot be read, in words for the person who uploaded it.
#[derive(Debug)]
pub struct Unreadable(pub String);

fn unreadable(what: impl Into<String>) -> Unreadable {
    Unreadable(what.into())
}

/// A part of the ZIP: where its data starts, how it is stored, its sizes.
struct Entry {
    method: u16,
    compressed: u64,
    header_at: u64,
}

/// The parts of a ZIP by name, from its central directory.
fn directory(file: &mut File) -> Result<HashMap<String, Entry>, Unreadable> {
    let not_zip = || unreadable("the file is not an .xlsx workbook (no ZIP directory)");
    let len = file
        .seek(SeekFrom::End(0))
        .map_err(|e| unreadable(e.to_string()))?;
    let tail_len = len.min(22 + 65_535);
    file.seek(SeekFrom::Start(len - tail_len))
        .map_err(|e| unreadable(e.to_string()))?;
    let mut tail = vec![0; tail_len as usize];
    file.read_exact(&mut tail)
        .map_err(|e| unreadable(e.to_string()))?;
    let end = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..i + 4] == 0x0605_4b50u32.to_le_bytes())
        .ok_or_else(not_zip)?;
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let count = u16_at(&tail, end + 10) as usize;
    let size = u32_at(&tail, end + 12) as u64;
    let at = u32_at(&tail, end + 16) as u64;
    if size > 64 << 20 || at + size > len {
        return Err(not_zip());
    }
    file.seek(SeekFrom::Start(at))
        .map_err(|e| unreadable(e.to_string()))?;
    let mut dir = vec![0; size as usize];
    file.read_exact(&mut dir)
        .map_err(|e| unreadable(e.to_string()))?;
    let mut entries = HashMap::new();
    let mut i = 0;
    for _ in 0..count {
        if i + 46 > dir.len() || u32_at(&dir, i) != 0x0201_4b50 {
            return Err(not_zip());
        }
        let method = u16_at(&dir, i + 10);
        let compressed = u32_at(&dir, i + 20) as u64;
        let name_len = u16_at(&dir, i + 28) as usize;
        let extra_len = u16_at(&dir, i + 30) as usize;
        let comment_len = u16_at(&dir, i + 32) as usize;
        let header_at = u32_at(&dir, i + 42) as u64;
        let name = dir
            .get(i + 46..i + 46 + name_len)
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .ok_or_else(not_zip)?;
        entries.insert(
            name,
            Entry {
                method,
                compressed,
                header_at,
            },
        );
        i += 46 + name_len + extra_len + comment_len;
    }
    Ok(entries)
}

/// A reader of one part's content, inflated.
fn open<'a>(
    file: &'a mut File,
    entries: &HashMap<String, Entry>,
    name: &str,
) -> Result<Option<Box<dyn BufRead + 'a>>, Unreadable> {
    let Some(entry) = entries.get(name) else {
        return Ok(None);
    };
    let io = |e: std::io::Error| unreadable(e.to_string());
    file.seek(SeekFrom::Start(entry.header_at)).map_err(io)?;
    let mut header = [0u8; 30];
    file.read_exact(&mut header).map_err(io)?;
    if header[..4] != 0x0403_4b50u32.to_le_bytes() {
        return Err(unreadable(format!("the part {name} is damaged")));
    }
    let skip = u16::from_le_bytes([header[26], header[27]]) as i64
        + u16::from_le_bytes([header[28], header[29]]) as i64;
    file.seek(SeekFrom::Current(skip)).map_err(io)?;
    let raw = BufReader::new(file.take(entry.compressed));
    let content: Box<dyn Read + 'a> = match entry.method {
        0 => Box::new(raw),
        8 => Box::new(flate2::bufread::DeflateDecoder::new(raw)),
        m => {
            return Err(unreadable(format!(
                "the part {name} is compressed in a way this reader does not know ({m})"
            )));
        }
    };
    Ok(Some(Box::new(BufReader::new(Markup {
        inner: content,
        run: 0,
    }))))
}

/// Most bytes between two tags: a cell's text (at most 32,767 characters) with room
/// to spare. The XML reader holds such a stretch whole, so a small compressed part
/// cannot unfold into one enormous text.
const MAX_RUN: usize = 1 << 20;
/// Most bytes of one cell's text: a cell holds at most 32,767 characters.
const MAX_CELL_BYTES: usize = 32_767 * 4;
/// Most bytes of one row's cells.
const MAX_ROW_BYTES: usize = 8 << 20;
/// Most bytes of the CSV made of a worksheet.
const MAX_CSV_BYTES: u64 = 4 << 30;

/// A part's content, refused once it runs longer than [`MAX_RUN`] without a tag.
struct Markup<'a> {
    inner: Box<dyn Read + 'a>,
    run: usize,
}

impl Read for Markup<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for b in &buf[..n] {
            self.run = if *b == b'<' { 0 } else { self.run + 1 };
        }
        if self.run > MAX_RUN {
            return Err(std::io::Error::other(
                "a text runs past 1 MiB without markup; a cell holds at most 32,767 characters",
            ));
        }
        Ok(n)
    }
}

/// The whole (small) part as text.
fn read_text(
    file: &mut File,
    entries: &HashMap<String, Entry>,
    name: &str,
) -> Result<Option<String>, Unreadable> {
    let Some(reader) = open(file, entries, name)? else {
        return Ok(None);
    };
    let mut text = String::new();
    reader
        .take(16 << 20)
        .read_to_string(&mut text)
        .map_err(|e| unreadable(format!("the part {name} cannot be read: {e}")))?;
    Ok(Some(text))
}

/// The path of the workbook's first worksheet.
fn first_sheet(file: &mut File, entries: &HashMap<String, Entry>) -> Result<String, Unreadable> {
    let fallback = || SHEET.to_string();
    let Some(workbook) = read_text(file, entries, "xl/workbook.xml")? else {
        return Err(unreadable(
            "the file is not an .xlsx workbook (no xl/workbook.xml)",
        ));
    };
    let doc = roxmltree::Document::parse(&workbook)
        .map_err(|e| unreadable(format!("the workbook cannot be read: {e}")))?;
    let Some(id) = doc
        .descendants()
        .find(|n| n.has_tag_name("sheet"))
        .and_then(|n| {
            n.attributes()
                .find(|a| a.name() == "id")
                .map(|a| a.value().to_string())
        })
    else {
        return Ok(fallback());
    };
    let Some(rels) = read_text(file, entries, "xl/_rels/workbook.xml.rels")? else {
        return Ok(fallback());
    };
    let doc = roxmltree::Document::parse(&rels)
        .map_err(|e| unreadable(format!("the workbook cannot be read: {e}")))?;
    let target = doc
        .descendants()
        .find(|n| n.has_tag_name("Relationship") && n.attribute("Id") == Some(id.as_str()))
        .and_then(|n| n.attribute("Target"));
    Ok(match target {
        Some(t) if t.starts_with('/') => t.trim_start_matches('/').to_string(),
        Some(t) => format!("xl/{t}"),
        None => fallback(),
    })
}

/// Which cell styles show numbers as dates: by style index, from `xl/styles.xml`.
fn date_styles(file: &mut File, entries: &HashMap<String, Entry>) -> Result<Vec<bool>, Unreadable> {
    let Some(styles) = read_text(file, entries, "xl/styles.xml")? else {
        return Ok(Vec::new());
    };
    let doc = roxmltree::Document::parse(&styles)
        .map_err(|e| unreadable(format!("the styles cannot be read: {e}")))?;
    let custom: HashMap<u32, bool> = doc
        .descendants()
        .filter(|n| n.has_tag_name("numFmt"))
        .filter_map(|n| {
            let id = n.attribute("numFmtId")?.parse().ok()?;
            Some((id, is_date_format(n.attribute("formatCode").unwrap_or(""))))
        })
        .collect();
    let Some(xfs) = doc.descendants().find(|n| n.has_tag_name("cellXfs")) else {
        return Ok(Vec::new());
    };
    Ok(xfs
        .children()
        .filter(|n| n.has_tag_name("xf"))
        .map(|xf| {
            let id: u32 = xf
                .attribute("numFmtId")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            // The built-in date and time formats.
            matches!(id, 14..=22 | 45..=47) || custom.get(&id).copied().unwrap_or(false)
        })
        .collect())
}

/// A number format that shows a date or a time: it has d, m, y, h or s outside
/// quotes and brackets (`[Red]`, `"days"`).
fn is_date_format(code: &str) -> bool {
    let (mut quoted, mut bracket) = (false, false);
    for c in code.chars() {
        match c {
            '"' => quoted = !quoted,
            '[' if !quoted => bracket = true,
            ']' if !quoted => bracket = false,
            'd' | 'm' | 'y' | 'h' | 's' | 'D' | 'M' | 'Y' | 'H' | 'S' if !quoted && !bracket => {
                return true;
            }
            _ => {}
        }
    }
    false
}

/// An Excel date serial (days since 1899-12-30) as `YYYY-MM-DD`, or with a time as
/// RFC 3339 UTC.
fn serial_date(serial: f64) -> Option<String> {
    if !(0.0..2_958_466.0).contains(&serial) {
        return None;
    }
    let base = chrono::NaiveDate::from_ymd_opt(1899, 12, 30)?.and_hms_opt(0, 0, 0)?;
    let seconds = (serial * 86_400.0).round() as i64;
    let at = base + chrono::Duration::seconds(seconds);
    Some(if seconds % 86_400 == 0 {
        at.format("%Y-%m-%d").to_string()
    } else {
        at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    })
}

/// The texts of the shared strings, in order (rich text runs joined, phonetic
/// readings left out).
fn shared_strings(
    file: &mut File,
    entries: &HashMap<String, Entry>,
) -> Result<Vec<String>, Unreadable> {
    let Some(source) = open(file, entries, "xl/sharedStrings.xml")? else {
        return Ok(Vec::new());
    };
    let mut reader = quick_xml::Reader::from_reader(source);
    let mut buf = Vec::new();
    let mut strings = Vec::new();
    let mut total = 0usize;
    let (mut current, mut in_t, mut in_phonetic) = (String::new(), false, false);
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => match e.local_name().as_ref() {
                b"si" => current.clear(),
                b"t" => in_t = true,
                b"rPh" => in_phonetic = true,
                _ => {}
            },
            Ok(Event::End(e)) => match e.local_name().as_ref() {
                b"si" => {
                    total += current.len();
                    if total > MAX_STRING_BYTES {
                        return Err(unreadable("the workbook's texts pass 256 MiB"));
                    }
                    strings.push(std::mem::take(&mut current))
                }
                b"t" => in_t = false,
                b"rPh" => in_phonetic = false,
                _ => {}
            },
            Ok(Event::Empty(e)) if e.local_name().as_ref() == b"si" => strings.push(String::new()),
            Ok(Event::Text(t)) if in_t && !in_phonetic => {
                current.push_str(
                    &t.xml10_content().map_err(|e| {
                        unreadable(format!("the shared strings cannot be read: {e}"))
                    })?,
                );
                if current.len() > MAX_CELL_BYTES {
                    return Err(too_long());
                }
            }
            Ok(Event::GeneralRef(r)) if in_t && !in_phonetic => {
                current.push_str(&resolve(&r)?);
            }
            Ok(Event::Eof) => break,
            Err(e) => {
                return Err(unreadable(format!(
                    "the shared strings cannot be read: {e}"
                )));
            }
            _ => {}
        }
        buf.clear();
    }
    Ok(strings)
}

/// An entity or character reference (`&amp;`, `&#1576;`) as text.
fn resolve(r: &quick_xml::events::BytesRef<'_>) -> Result<String, Unreadable> {
    if let Ok(Some(c)) = r.resolve_char_ref() {
        return Ok(c.to_string());
    }
    let name = r.decode().map_err(|e| unreadable(e.to_string()))?;
    Ok(match name.as_ref() {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        other => return Err(unreadable(format!("unknown entity &{other};"))),
    }
    .to_string())
}

/// Writes the first worksheet of the workbook at `xlsx` as CSV to `out`: one line per
/// row that holds a value, cells as a spreadsheet shows them (numbers as written, dates
/// as ISO dates, booleans as true/false, formulas as their last value). Answers the
/// rows written.
pub fn to_csv(xlsx: &Path, out: impl Write) -> Result<u64, Unreadable> {
    let mut file = File::open(xlsx).map_err(|e| unreadable(e.to_string()))?;
    let entries = directory(&mut file)?;
    let sheet = first_sheet(&mut file, &entries)?;
    let strings = shared_strings(&mut file, &entries)?;
    let dates = date_styles(&mut file, &entries)?;
    let source = open(&mut file, &entries, &sheet)?
        .ok_or_else(|| unreadable(format!("the workbook has no worksheet {sheet}")))?;
    let mut csv = csv::WriterBuilder::new().flexible(true).from_writer(out);
    let mut reader = quick_xml::Reader::from_reader(source);
    let mut buf = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut written = 0u64;
    let mut header_width = None;
    // The cell being read: its column, type and style, and its value's text.
    let (mut column, mut kind, mut style) = (0usize, Vec::new(), 0usize);
    let (mut value, mut in_value) = (String::new(), false);
    let bad = |e: &dyn std::fmt::Display| unreadable(format!("the worksheet cannot be read: {e}"));
    let (mut row_bytes, mut csv_bytes) = (0usize, 0u64);
    loop {
        buf.clear();
        let event = reader.read_event_into(&mut buf).map_err(|e| bad(&e))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) if e.local_name().as_ref() == b"row" => {
                row.clear();
                row_bytes = 0;
                if matches!(event, Event::Empty(_)) {
                    continue;
                }
            }
            Event::Start(ref e) | Event::Empty(ref e) if e.local_name().as_ref() == b"c" => {
                kind.clear();
                style = 0;
                value.clear();
                let mut referenced = None;
                for a in e.attributes().flatten() {
                    match a.key.local_name().as_ref() {
                        b"r" => referenced = column_index(&a.value),
                        b"t" => kind = a.value.to_vec(),
                        b"s" => {
                            style = std::str::from_utf8(&a.value)
                                .ok()
                                .and_then(|s| s.parse().ok())
                                .unwrap_or(0)
                        }
                        _ => {}
                    }
                }
                column = referenced.unwrap_or(row.len());
                if matches!(event, Event::Empty(_)) {
                    continue;
                }
            }
            Event::Start(ref e) if matches!(e.local_name().as_ref(), b"v" | b"t") => {
                in_value = true
            }
            Event::End(ref e) if matches!(e.local_name().as_ref(), b"v" | b"t") => in_value = false,
            Event::Text(ref t) if in_value => {
                value.push_str(&t.xml10_content().map_err(|e| bad(&e))?);
                if value.len() > MAX_CELL_BYTES {
                    return Err(too_long());
                }
            }
            Event::GeneralRef(ref r) if in_value => value.push_str(&resolve(r)?),
            Event::End(ref e) if e.local_name().as_ref() == b"c" => {
                let text = match kind.as_slice() {
                    b"s" => value
                        .trim()
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| strings.get(i).cloned())
                        .unwrap_or_default(),
                    b"b" => if value.trim() == "1" { "true" } else { "false" }.to_string(),
                    b"e" => String::new(),
                    b"str" | b"inlineStr" => std::mem::take(&mut value),
                    _ => number_text(&value, dates.get(style).copied().unwrap_or(false)),
                };
                if column < 16_384 {
                    row_bytes += text.len();
                    if row_bytes > MAX_ROW_BYTES {
                        return Err(unreadable(format!(
                            "row {} holds more than 8 MiB of text",
                            written + 1
                        )));
                    }
                    if row.len() <= column {
                        row.resize(column + 1, String::new());
                    }
                    row[column] = text;
                }
            }
            Event::End(ref e) if e.local_name().as_ref() == b"row" => {
                if row.iter().any(|c| !c.trim().is_empty()) {
                    if written == MAX_READ_ROWS {
                        return Err(unreadable(format!(
                            "the worksheet has more than {MAX_READ_ROWS} rows"
                        )));
                    }
                    // A sheet leaves trailing empty cells out; the header row sets
                    // the width, and values past it stay (an import refuses them).
                    let width = *header_width.get_or_insert(row.len());
                    if row.len() < width {
                        row.resize(width, String::new());
                    }
                    csv_bytes += (row_bytes + row.len()) as u64;
                    if csv_bytes > MAX_CSV_BYTES {
                        return Err(unreadable("the worksheet holds more than 4 GiB of text"));
                    }
                    csv.write_record(&row).map_err(|e| bad(&e))?;
                    written += 1;
                }
                row.clear();
                row_bytes = 0;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    csv.flush().map_err(|e| bad(&e))?;
    Ok(written)
}

/// A number cell as text: a date when its style shows one, else the shortest form
/// that reads back the same (`0.1`, not `0.10000000000000001`).
fn number_text(raw: &str, date: bool) -> String {
    let raw = raw.trim();
    match raw.parse::<f64>() {
        Ok(n) if date => serial_date(n).unwrap_or_else(|| raw.to_string()),
        Ok(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", n as i64),
        Ok(n) => format!("{n}"),
        Err(_) => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_named_as_spreadsheets_name_them() {
        assert_eq!(column_name(0), "A");
        assert_eq!(column_name(25), "Z");
        assert_eq!(column_name(26), "AA");
        assert_eq!(column_name(701), "ZZ");
        assert_eq!(column_name(702), "AAA");
        for i in [0, 25, 26, 701, 702, 16_383] {
            assert_eq!(
                column_index(format!("{}12", column_name(i)).as_bytes()),
                Some(i)
            );
        }
    }

    #[test]
    fn dates_and_numbers_read_as_a_spreadsheet_shows_them() {
        assert_eq!(serial_date(46_350.0).as_deref(), Some("2026-11-24"));
        assert_eq!(
            serial_date(46_350.5).as_deref(),
            Some("2026-11-24T12:00:00Z")
        );
        assert!(is_date_format("yyyy-mm-dd") && is_date_format("[$-409]d-mmm"));
        assert!(
            !is_date_format("0.00") && !is_date_format("\"days\" 0") && !is_date_format("[Red]0")
        );
        assert_eq!(number_text("100", false), "100");
        assert_eq!(number_text("0.10000000000000001", false), "0.1");
        assert_eq!(number_text("46350", true), "2026-11-24");
    }

    #[test]
    fn a_workbook_as_excel_saves_it_reads_as_csv() {
        // tests/fixtures/make_contacts_xlsx.py: deflated parts, the first sheet not
        // named sheet1, shared and rich strings, a date style, formulas, a blank row.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/contacts.xlsx");
        let mut csv = Vec::new();
        assert_eq!(to_csv(&path, &mut csv).unwrap(), 4);
        assert_eq!(
            String::from_utf8(csv).unwrap(),
            "first_name,last_name,email,birthday,score\n\
             Sara,Ahmadi & Co,sara@example.com,2026-11-24,42\n\
             \x20\x20Juma  ,Mwangi,,,true\n\
             ,X & \u{628},,,\n"
        );
    }

    #[test]
    fn hostile_workbooks_are_refused_before_they_fill_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bomb.xlsx");
        // One 2 MiB text; then a row of 300 texts of 30,000 characters (9 MB).
        let mut writer = XlsxWriter::new("s");
        let mut bytes = writer.start();
        writer
            .row(&mut bytes, [Cell::Text("x".repeat(2 << 20).into())])
            .unwrap();
        bytes.extend(writer.finish());
        std::fs::write(&path, &bytes).unwrap();
        let err = to_csv(&path, Vec::new()).unwrap_err();
        assert!(err.0.contains("1 MiB without markup"), "{}", err.0);

        let mut writer = XlsxWriter::new("s");
        let mut bytes = writer.start();
        let long = "y".repeat(30_000);
        writer
            .row(
                &mut bytes,
                (0..300).map(|_| Cell::Text(long.as_str().into())),
            )
            .unwrap();
        bytes.extend(writer.finish());
        std::fs::write(&path, &bytes).unwrap();
        let err = to_csv(&path, Vec::new()).unwrap_err();
        assert!(err.0.contains("more than 8 MiB"), "{}", err.0);
        assert_eq!(column_index(b"ZZZZZZZZZZZZZZZZZZ1"), None);
    }

    #[test]
    fn a_written_workbook_reads_back_cell_for_cell() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.xlsx");
        let mut writer = XlsxWriter::new("Contacts");
        let mut bytes = writer.start();
        writer
            .row(
                &mut bytes,
                [
                    Cell::Text("name".into()),
                    Cell::Text("amount".into()),
                    Cell::Text("vip".into()),
                ],
            )
            .unwrap();
        writer
            .row(
                &mut bytes,
                [
                    Cell::Text("=cmd|' /C calc'!A0 & <b>\"Ü\"</b>".into()),
                    Cell::Number(12.5),
                    Cell::Bool(true),
                ],
            )
            .unwrap();
        writer
            .row(
                &mut bytes,
                [Cell::Empty, Cell::Number(3.0), Cell::Bool(false)],
            )
            .unwrap();
        bytes.extend(writer.finish());
        std::fs::write(&path, &bytes).unwrap();
        let mut csv = Vec::new();
        assert_eq!(to_csv(&path, &mut csv).unwrap(), 3);
        assert_eq!(
            String::from_utf8(csv).unwrap(),
            "name,amount,vip\n\"=cmd|' /C calc'!A0 & <b>\"\"Ü\"\"</b>\",12.5,true\n,3,false\n"
        );
        assert!(to_csv(&dir.path().join("nope.xlsx"), Vec::new()).is_err());
        std::fs::write(&path, b"name,amount\nnot,a zip\n").unwrap();
        let err = to_csv(&path, Vec::new()).unwrap_err();
        assert!(err.0.contains("not an .xlsx workbook"), "{}", err.0);
    }
}
