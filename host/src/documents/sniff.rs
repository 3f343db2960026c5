//! What a file is, from its first bytes (never from what the client says), and
//! which names are acceptable.

/// The content type of a file from its first bytes; `name`'s extension only tells
/// the office formats apart, which are all zip files inside.
pub fn content_type(head: &[u8], name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match head {
        [] => "application/x-empty",
        h if h.starts_with(b"%PDF-") => "application/pdf",
        h if h.starts_with(b"\x89PNG\r\n\x1a\n") => "image/png",
        h if h.starts_with(b"\xff\xd8\xff") => "image/jpeg",
        h if h.starts_with(b"GIF87a") || h.starts_with(b"GIF89a") => "image/gif",
        h if h.len() >= 12 && &h[..4] == b"RIFF" && &h[8..12] == b"WEBP" => "image/webp",
        h if h.starts_with(b"PK\x03\x04") => match ext.as_str() {
            "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "odt" => "application/vnd.oasis.opendocument.text",
            _ => "application/zip",
        },
        h if h.starts_with(b"\x1f\x8b") => "application/gzip",
        h if looks_like_text(h) => match ext.as_str() {
            "csv" => "text/csv",
            "md" => "text/markdown",
            // HTML and SVG are served as text, never as pages: they could run
            // scripts on the CRM's origin.
            _ => "text/plain",
        },
        _ => "application/octet-stream",
    }
}

/// UTF-8 without NUL bytes (a multi-byte character cut at the end is fine).
fn looks_like_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    }
}

/// A file or folder name: 1 to 255 characters, no control characters, no `/` or
/// `\`, not `.` or `..`. Returns what is wrong.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.trim().is_empty() || name.chars().count() > 255 {
        return Err("must be 1 to 255 characters");
    }
    if name.chars().any(char::is_control) {
        return Err("may not hold control characters");
    }
    if name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err("may not hold / or \\, or be . or ..");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes_not_the_name() {
        assert_eq!(content_type(b"%PDF-1.7 ...", "x.txt"), "application/pdf");
        assert_eq!(content_type(b"hello, world", "x.pdf"), "text/plain");
        assert_eq!(
            content_type(b"<script>alert(1)</script>", "x.html"),
            "text/plain"
        );
        assert_eq!(
            content_type(b"PK\x03\x04rest", "offer.docx"),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        );
        assert_eq!(
            content_type(b"\x00\x01\x02", "x.txt"),
            "application/octet-stream"
        );
        assert_eq!(content_type(b"", "x.txt"), "application/x-empty");
        assert_eq!(content_type("caf\u{e9}".as_bytes(), "a.csv"), "text/csv");
    }

    #[test]
    fn names_refuse_traversal_and_control_characters() {
        assert!(check_name("offer.pdf").is_ok());
        assert!(check_name("../etc/passwd").is_err());
        assert!(check_name("..").is_err());
        assert!(check_name("a\\b").is_err());
        assert!(check_name("bell\u{7}").is_err());
        assert!(check_name("  ").is_err());
        assert!(check_name(&"x".repeat(256)).is_err());
    }
}
