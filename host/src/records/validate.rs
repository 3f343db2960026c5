//! Validation of record values against their object's metadata.
//!
//! Every field error is collected so a client learns everything wrong with its
//! request at once. Values are normalised on the way in (datetimes to UTC, empty
//! strings to "no value"), so what is stored compares and sorts consistently.

use serde_json::{Map, Value};

use super::metadata::{Field, FieldType, ObjectType, SYSTEM_KEYS};
use crate::api::error::FieldError;

/// What a reference value must point to; checked against the database by the service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefTarget {
    Record(String),
    User,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferenceCheck {
    pub field: String,
    pub target: RefTarget,
    pub id: String,
}

/// A request's values after validation.
#[derive(Debug, Default)]
pub struct Validated {
    /// Field name -> normalised value; `Null` clears the field on update.
    pub values: Map<String, Value>,
    /// A new owner (user id), when the request sets one.
    pub owner: Option<String>,
    /// References to confirm in the database.
    pub references: Vec<ReferenceCheck>,
}

/// Whether the values create a record (defaults apply, every required field must be
/// set) or change one (only the fields sent are checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
}

/// Validates a create or update request body against `object`.
pub fn validate(
    object: &ObjectType,
    input: &Map<String, Value>,
    mode: Mode,
) -> Result<Validated, Vec<FieldError>> {
    let mut out = Validated::default();
    let mut errors = Vec::new();
    for (key, value) in input {
        if key == "owner" {
            match value.as_str().filter(|s| uuid::Uuid::parse_str(s).is_ok()) {
                Some(id) => {
                    out.owner = Some(id.to_string());
                    out.references.push(ReferenceCheck {
                        field: key.clone(),
                        target: RefTarget::User,
                        id: id.into(),
                    });
                }
                None => errors.push(FieldError::new(key, "must be the id of a user")),
            }
            continue;
        }
        if SYSTEM_KEYS.contains(&key.as_str()) {
            errors.push(FieldError::new(key, "is read-only"));
            continue;
        }
        let Some(field) = object.field(key) else {
            errors.push(FieldError::new(
                key,
                format!("is not a field of {}", object.name),
            ));
            continue;
        };
        match normalise_value(field, value) {
            Ok(Some(v)) => {
                if let Some(check) = reference_check(field, &v) {
                    out.references.push(check);
                }
                out.values.insert(key.clone(), v);
            }
            Ok(None) if field.required => errors.push(FieldError::new(key, "is required")),
            Ok(None) => {
                out.values.insert(key.clone(), Value::Null);
            }
            Err(message) => errors.push(FieldError::new(key, message)),
        }
    }
    if mode == Mode::Create {
        for field in &object.fields {
            if out.values.get(&field.name).is_some_and(|v| !v.is_null())
                || input.contains_key(&field.name)
            {
                continue;
            }
            match &field.default {
                Some(default) => {
                    if let Ok(Some(v)) = normalise_value(field, default) {
                        out.values.insert(field.name.clone(), v);
                    }
                }
                None if field.required => errors.push(FieldError::new(&field.name, "is required")),
                None => {}
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn reference_check(field: &Field, value: &Value) -> Option<ReferenceCheck> {
    let target = match field.kind {
        FieldType::Reference => RefTarget::Record(field.target.clone()?),
        FieldType::User => RefTarget::User,
        _ => return None,
    };
    Some(ReferenceCheck {
        field: field.name.clone(),
        target,
        id: value.as_str()?.to_string(),
    })
}

/// Checks one value against its field and returns it normalised; `None` means "no
/// value" (null, an empty string or an empty list). The error completes the sentence
/// "<field> ...".
pub fn normalise_value(field: &Field, value: &Value) -> Result<Option<Value>, String> {
    match value {
        Value::Null => return Ok(None),
        Value::String(s) if s.is_empty() => return Ok(None),
        Value::Array(a) if a.is_empty() && field.kind == FieldType::MultiPicklist => {
            return Ok(None);
        }
        _ => {}
    }
    let normalised = match field.kind {
        FieldType::Text
        | FieldType::LongText
        | FieldType::Email
        | FieldType::Phone
        | FieldType::Url => {
            let s = value.as_str().ok_or("must be text")?;
            if let Some(max) = field.max_chars()
                && s.chars().count() > max
            {
                return Err(format!("must be at most {max} characters"));
            }
            match field.kind {
                FieldType::Email if !is_email(s) => {
                    return Err("must be an email address such as ana@example.com".into());
                }
                FieldType::Phone if !is_phone(s) => {
                    return Err("must be a phone number: digits, spaces and + - ( ) . only".into());
                }
                FieldType::Url if !is_url(s) => {
                    return Err("must be an http:// or https:// address".into());
                }
                _ => {}
            }
            Value::String(s.to_string())
        }
        FieldType::Integer => {
            let n = value.as_i64().ok_or("must be a whole number")?;
            check_range(field, n as f64)?;
            Value::from(n)
        }
        FieldType::Decimal | FieldType::Currency => {
            let n = value
                .as_f64()
                .filter(|n| n.is_finite())
                .ok_or("must be a number")?;
            check_range(field, n)?;
            if let Some(places) = field.decimal_places() {
                let scaled = n * 10f64.powi(places as i32);
                if (scaled - scaled.round()).abs() > 1e-6 * scaled.abs().max(1.0) {
                    return Err(format!("must have at most {places} decimal places"));
                }
            }
            value.clone()
        }
        FieldType::Boolean => Value::Bool(value.as_bool().ok_or("must be true or false")?),
        FieldType::Date => {
            let s = value.as_str().ok_or("must be a date as YYYY-MM-DD")?;
            let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| "must be a date as YYYY-MM-DD")?;
            Value::String(d.format("%Y-%m-%d").to_string())
        }
        FieldType::Datetime => {
            Value::String(normalise_datetime(value.as_str().ok_or(DATETIME_HINT)?)?)
        }
        FieldType::Picklist => {
            let s = value
                .as_str()
                .filter(|s| field.values.iter().any(|v| v == s));
            Value::String(
                s.ok_or_else(|| format!("must be one of: {}", field.values.join(", ")))?
                    .to_string(),
            )
        }
        FieldType::MultiPicklist => {
            let hint = || {
                format!(
                    "must be a list of distinct values out of: {}",
                    field.values.join(", ")
                )
            };
            let items = value.as_array().ok_or_else(hint)?;
            let mut seen = Vec::with_capacity(items.len());
            for item in items {
                match item.as_str() {
                    Some(s) if field.values.iter().any(|v| v == s) && !seen.contains(&s) => {
                        seen.push(s)
                    }
                    _ => return Err(hint()),
                }
            }
            Value::Array(seen.into_iter().map(|s| Value::String(s.into())).collect())
        }
        FieldType::Reference | FieldType::User => {
            let what = match &field.target {
                Some(t) => format!("must be the id of a record of {t}"),
                None => "must be the id of a user".to_string(),
            };
            let s = value
                .as_str()
                .filter(|s| uuid::Uuid::parse_str(s).is_ok())
                .ok_or(what)?;
            Value::String(s.to_string())
        }
    };
    Ok(Some(normalised))
}

const DATETIME_HINT: &str = "must be a date and time in RFC 3339, such as 2026-05-01T14:30:00Z";

/// RFC 3339 in any offset -> UTC to the second, the one stored form.
/// A field's value from text a person typed (a web form, a CSV cell), before
/// validation: numbers and yes/no parsed, several picklist values split on `;` (as an
/// export joins them). Text that does not parse stays text, so validation names the
/// problem.
pub fn from_text(field: &Field, raw: &str) -> Value {
    let text = || Value::String(raw.to_string());
    match field.kind {
        FieldType::Integer => raw
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| text()),
        FieldType::Decimal | FieldType::Currency => raw
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(text),
        FieldType::Boolean => match raw.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "on" => Value::Bool(true),
            "false" | "no" | "0" | "off" => Value::Bool(false),
            _ => text(),
        },
        FieldType::MultiPicklist => Value::Array(
            raw.split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        ),
        // A browser's datetime-local has no zone: the pages work in UTC.
        FieldType::Datetime if raw.len() == 16 => Value::String(format!("{raw}:00Z")),
        _ => text(),
    }
}

pub fn normalise_datetime(s: &str) -> Result<String, String> {
    let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|_| DATETIME_HINT.to_string())?;
    Ok(t.with_timezone(&chrono::Utc)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string())
}

fn check_range(field: &Field, n: f64) -> Result<(), String> {
    if let Some(min) = field.min
        && n < min
    {
        return Err(format!("must be at least {min}"));
    }
    if let Some(max) = field.max
        && n > max
    {
        return Err(format!("must be at most {max}"));
    }
    Ok(())
}

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Digits (at least three), spaces and `+ - ( ) .`: what a phone field takes.
pub fn is_phone(s: &str) -> bool {
    s.chars().filter(|c| c.is_ascii_digit()).count() >= 3
        && s.chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
}

fn is_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| {
        !r.is_empty()
            && !r.starts_with('/')
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contacts() -> ObjectType {
        let fields: Vec<Field> = serde_json::from_value(json!([
            {"name": "last_name", "type": "text", "required": true, "max_length": 5},
            {"name": "email", "type": "email"},
            {"name": "age", "type": "integer", "min": 0, "max": 150},
            {"name": "budget", "type": "currency"},
            {"name": "status", "type": "picklist", "values": ["new", "done"], "default": "new"},
            {"name": "tags", "type": "multi_picklist", "values": ["a", "b"]},
            {"name": "met_at", "type": "datetime"},
            {"name": "company", "type": "reference", "target": "companies"}
        ]))
        .unwrap();
        ObjectType {
            name: "contacts".into(),
            label: "Contact".into(),
            label_plural: "Contacts".into(),
            description: String::new(),
            standard: false,
            fields,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let input = body(json!({
            "email": "not-an-email", "age": 1.5, "budget": 10.005, "status": "old",
            "tags": ["a", "a"], "met_at": "yesterday", "company": "42", "version": 3, "colour": "red"
        }));
        let errors = validate(&contacts(), &input, Mode::Create).unwrap_err();
        let mut fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "age",
                "budget",
                "colour",
                "company",
                "email",
                "last_name",
                "met_at",
                "status",
                "tags",
                "version"
            ]
        );
    }

    #[test]
    fn create_applies_defaults_and_normalises() {
        let input = body(
            json!({"last_name": "Rumi", "met_at": "2026-05-01T16:30:00+02:00", "budget": 12.5, "email": ""}),
        );
        let v = validate(&contacts(), &input, Mode::Create).unwrap();
        assert_eq!(v.values["status"], "new");
        assert_eq!(v.values["met_at"], "2026-05-01T14:30:00Z");
        assert_eq!(v.values["email"], Value::Null);
    }

    #[test]
    fn update_checks_only_what_is_sent_but_required_cannot_be_cleared() {
        let ok = validate(&contacts(), &body(json!({"age": 40})), Mode::Update).unwrap();
        assert_eq!(ok.values.len(), 1);
        let errors =
            validate(&contacts(), &body(json!({"last_name": null})), Mode::Update).unwrap_err();
        assert_eq!(errors, vec![FieldError::new("last_name", "is required")]);
    }

    #[test]
    fn text_limits_count_characters_not_bytes() {
        let ok = validate(
            &contacts(),
            &body(json!({"last_name": "رومی"})),
            Mode::Create,
        );
        assert!(ok.is_ok());
        let too_long = validate(
            &contacts(),
            &body(json!({"last_name": "رومیرومی"})),
            Mode::Create,
        )
        .unwrap_err();
        assert_eq!(too_long[0].message, "must be at most 5 characters");
    }

    #[test]
    fn references_are_collected_for_the_database_check() {
        let id = uuid::Uuid::now_v7().to_string();
        let v = validate(
            &contacts(),
            &body(json!({"last_name": "Ng", "company": id})),
            Mode::Create,
        )
        .unwrap();
        assert_eq!(
            v.references,
            vec![ReferenceCheck {
                field: "company".into(),
                target: RefTarget::Record("companies".into()),
                id
            }]
        );
    }
}
