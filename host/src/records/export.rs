//! Rows of an export: CSV (RFC 4180), safe to open in a spreadsheet, or workbook cells.

use std::borrow::Cow;

use serde_json::Value;

use super::Record;
use crate::xlsx::Cell;

/// Appends one row: cells quoted when they hold a separator, quote or line break.
pub fn csv_row<'a>(out: &mut String, cells: impl Iterator<Item = Cow<'a, str>>) {
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if cell.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&cell.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&cell);
        }
    }
    out.push_str("\r\n");
}

/// Appends a record as one row of `columns`.
pub fn record_row(out: &mut String, columns: &[String], record: &Record) {
    let cells = columns.iter().map(|c| -> Cow<'_, str> {
        match c.as_str() {
            "id" => record.id.as_str().into(),
            "owner" => record.owner.as_deref().unwrap_or("").into(),
            "department" => record.department.as_deref().unwrap_or("").into(),
            "created_at" => record.created_at.as_str().into(),
            "updated_at" => record.updated_at.as_str().into(),
            "version" => record.version.to_string().into(),
            field => cell(record.fields.get(field).unwrap_or(&Value::Null)),
        }
    });
    csv_row(out, cells);
}

/// A record's cells of `columns` in a workbook: numbers and booleans as such, the
/// rest as text (never evaluated, so not defused).
pub fn xlsx_cells<'a>(columns: &'a [String], record: &'a Record) -> Vec<Cell<'a>> {
    columns
        .iter()
        .map(|c| match c.as_str() {
            "id" => Cell::Text(record.id.as_str().into()),
            "owner" => Cell::Text(record.owner.as_deref().unwrap_or("").into()),
            "department" => Cell::Text(record.department.as_deref().unwrap_or("").into()),
            "created_at" => Cell::Text(record.created_at.as_str().into()),
            "updated_at" => Cell::Text(record.updated_at.as_str().into()),
            "version" => Cell::Number(record.version as f64),
            field => match record.fields.get(field) {
                None | Some(Value::Null) => Cell::Empty,
                Some(Value::Bool(b)) => Cell::Bool(*b),
                Some(Value::Number(n)) => n.as_f64().map_or(Cell::Empty, Cell::Number),
                Some(Value::String(s)) => Cell::Text(s.as_str().into()),
                Some(Value::Array(items)) => Cell::Text(joined(items).into()),
                Some(other) => Cell::Text(other.to_string().into()),
            },
        })
        .collect()
}

/// A multi-picklist's values as one cell: `a;b`.
fn joined(items: &[Value]) -> String {
    let texts: Vec<String> = items
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    texts.join(";")
}

/// A field value as text. Text a spreadsheet would evaluate as a formula gets a
/// leading `'` (numbers are numbers, so `-5` stays as it is).
fn cell(value: &Value) -> Cow<'_, str> {
    match value {
        Value::Null => "".into(),
        Value::String(s) => defuse(s),
        Value::Array(items) => Cow::Owned(defuse(&joined(items)).into_owned()),
        other => other.to_string().into(),
    }
}

fn defuse(text: &str) -> Cow<'_, str> {
    // A phone number (`+98 21 5555 0001`) has no function to call: left as it is, so
    // a mailing list's numbers reach the mailer unchanged.
    let phone_like = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')' | '.'));
    if !phone_like && text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_separators_and_defuses_formulas() {
        let mut out = String::new();
        csv_row(
            &mut out,
            ["plain", "a,b", "say \"hi\"", "two\nlines"]
                .into_iter()
                .map(Cow::from),
        );
        assert_eq!(out, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n");
        assert_eq!(
            cell(&Value::from("=HYPERLINK(\"x\")")),
            "'=HYPERLINK(\"x\")"
        );
        assert_eq!(cell(&Value::from("@SUM(A1)")), "'@SUM(A1)");
        assert_eq!(cell(&Value::from(-5)), "-5");
        assert_eq!(
            cell(&Value::from("+98 (21) 5555-0001")),
            "+98 (21) 5555-0001"
        );
        assert_eq!(
            cell(&Value::from("+1+cmd|' /C calc'!A0")),
            "'+1+cmd|' /C calc'!A0"
        );
        assert_eq!(cell(&serde_json::json!(["a", "=b"])), "a;=b");
        assert_eq!(cell(&serde_json::json!(["=a", "b"])), "'=a;b");
    }
}
