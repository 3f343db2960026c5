//! Object metadata: object types and their fields, as admins define them.
//!
//! Field values live in the JSON column `records.data`. [`Field::value_sql`] is the one
//! SQL expression that reads a field, used alike by filters, sorting, uniqueness and
//! the expression indexes an admin asks for, so an index always matches its queries.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::api::error::FieldError;

/// Keys of a record that are not fields: the record envelope.
pub const SYSTEM_KEYS: &[&str] = &[
    "id",
    "object",
    "version",
    "created_at",
    "updated_at",
    "owner",
    "department",
    "created_by",
    "updated_by",
];

/// Longest object or field name; keeps derived index names within PostgreSQL's 63 bytes.
pub const MAX_NAME_LEN: usize = 28;

/// What kind of value a field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    LongText,
    Integer,
    Decimal,
    /// An amount of money: a decimal number with (by default) two decimal places.
    Currency,
    Boolean,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// An instant, RFC 3339; stored in UTC to the second.
    Datetime,
    Email,
    Phone,
    Url,
    /// One value out of the field's ordered `values`.
    Picklist,
    /// Any number of distinct values out of the field's ordered `values`.
    MultiPicklist,
    /// The id of a record of the object named by `target`.
    Reference,
    /// The id of a user.
    User,
}

impl FieldType {
    /// Every type, in the order the admin console's field form offers them.
    pub const ALL: [FieldType; 15] = [
        FieldType::Text,
        FieldType::LongText,
        FieldType::Integer,
        FieldType::Decimal,
        FieldType::Currency,
        FieldType::Boolean,
        FieldType::Date,
        FieldType::Datetime,
        FieldType::Email,
        FieldType::Phone,
        FieldType::Url,
        FieldType::Picklist,
        FieldType::MultiPicklist,
        FieldType::Reference,
        FieldType::User,
    ];

    /// The type's name in the API (`long_text`), as serde writes it.
    pub fn api_name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|name| name.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            FieldType::Integer | FieldType::Decimal | FieldType::Currency
        )
    }
    fn is_texty(self) -> bool {
        matches!(
            self,
            FieldType::Text
                | FieldType::LongText
                | FieldType::Email
                | FieldType::Phone
                | FieldType::Url
        )
    }
    /// Whether an index (and so a unique constraint) on this type makes sense.
    pub fn indexable(self) -> bool {
        !matches!(self, FieldType::MultiPicklist | FieldType::LongText)
    }
    /// Whether values of this type have an order (for sorting and lt/gt filters).
    pub fn ordered(self) -> bool {
        !matches!(self, FieldType::MultiPicklist | FieldType::Boolean)
    }
}

/// A field of an object type with its options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// API name: lower case letters, digits and `_`, starting with a letter.
    pub name: String,
    /// Display name; defaults to the name.
    #[serde(default)]
    pub label: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub unique: bool,
    /// Value given to new records that do not set the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Smallest allowed value (numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest allowed value (numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Longest allowed text, in characters. Text defaults to 255, long text to 100,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Create an expression index so filters and sorting on this field stay fast.
    #[serde(default)]
    pub indexed: bool,
    /// Include this field in `?q=` quick search.
    #[serde(default)]
    pub searchable: bool,
    #[serde(default)]
    pub help_text: String,
    /// Ordered values of a picklist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Object type a reference field points to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Decimal places allowed (decimal: unlimited by default; currency: 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u8>,
    /// ISO 4217 code of a currency field, e.g. `EUR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// An object type (companies, contacts, or one an admin made) with its fields.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ObjectType {
    pub name: String,
    pub label: String,
    pub label_plural: String,
    pub description: String,
    /// Seeded by the CRM; it can be extended but not removed.
    pub standard: bool,
    pub fields: Vec<Field>,
    pub created_at: String,
    pub updated_at: String,
}

impl ObjectType {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

impl Field {
    pub fn max_chars(&self) -> Option<usize> {
        match self.kind {
            FieldType::Text | FieldType::Email | FieldType::Phone | FieldType::Url => {
                Some(self.max_length.unwrap_or(255) as usize)
            }
            FieldType::LongText => Some(self.max_length.unwrap_or(100_000) as usize),
            _ => None,
        }
    }

    /// Decimal places a number may have, if limited.
    pub fn decimal_places(&self) -> Option<u8> {
        match self.kind {
            FieldType::Currency => Some(self.scale.unwrap_or(2)),
            FieldType::Decimal => self.scale,
            _ => None,
        }
    }

    /// The SQL expression reading this field from `records.data`, typed so that
    /// comparisons and ordering are numeric for numbers on both backends.
    pub fn value_sql(&self) -> String {
        let raw = format!("(data->>'{}')", self.name);
        match self.kind {
            FieldType::Integer => format!("CAST({raw} AS BIGINT)"),
            FieldType::Decimal | FieldType::Currency => format!("CAST({raw} AS DOUBLE PRECISION)"),
            FieldType::Boolean => format!("CAST({raw} AS BOOLEAN)"),
            _ => raw,
        }
    }

    /// Name of the expression index of this field (`fu_` when unique). The first
    /// format (`ix_`, `ux_`) indexed every object's rows; see `upgrade_indexes`.
    pub fn index_name(&self, object: &str) -> String {
        let prefix = if self.unique { "fu" } else { "fx" };
        format!("{prefix}_{object}__{}", self.name)
    }

    /// Fills in defaults that depend on other options (label from name).
    pub fn normalise(&mut self) {
        if self.label.trim().is_empty() {
            self.label = humanise(&self.name);
        }
        if self.kind == FieldType::Currency && self.currency.is_none() {
            self.currency = Some("USD".into());
        }
    }

    /// Checks the definition on its own; `objects` are the names of existing object
    /// types (for reference targets). Reports every problem at once.
    pub fn check_definition(&self, objects: &[&str]) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut err = |key: &str, msg: String| errors.push(FieldError::new(key, msg));
        if let Err(m) = check_name(&self.name) {
            err("name", m);
        }
        if SYSTEM_KEYS.contains(&self.name.as_str()) {
            err("name", format!("'{}' is a reserved name", self.name));
        }
        let kind = self.kind;
        if (self.unique || self.indexed) && !kind.indexable() {
            err(
                "indexed",
                format!("fields of type {kind:?} cannot be indexed or unique"),
            );
        }
        if self.unique && kind == FieldType::Boolean {
            err("unique", "a boolean field cannot be unique".into());
        }
        if (self.min.is_some() || self.max.is_some()) && !kind.is_numeric() {
            err(
                "min",
                "min and max apply to integer, decimal and currency fields".into(),
            );
        }
        if let (Some(min), Some(max)) = (self.min, self.max)
            && min > max
        {
            err("min", "min is larger than max".into());
        }
        if self.max_length.is_some() && !kind.is_texty() {
            err("max_length", "max_length applies to text fields".into());
        }
        if self.max_length == Some(0) {
            err("max_length", "max_length must be at least 1".into());
        }
        if self.scale.is_some() && !matches!(kind, FieldType::Decimal | FieldType::Currency) {
            err(
                "scale",
                "scale applies to decimal and currency fields".into(),
            );
        }
        if self.scale.is_some_and(|s| s > 10) {
            err("scale", "scale is at most 10".into());
        }
        if let Some(code) = &self.currency {
            if kind != FieldType::Currency {
                err("currency", "currency applies to currency fields".into());
            } else if code.len() != 3 || !code.chars().all(|c| c.is_ascii_uppercase()) {
                err(
                    "currency",
                    "currency must be an ISO 4217 code such as EUR".into(),
                );
            }
        }
        let picklist = matches!(kind, FieldType::Picklist | FieldType::MultiPicklist);
        if picklist {
            if self.values.is_empty() {
                err("values", "a picklist needs at least one value".into());
            }
            let mut seen = std::collections::HashSet::new();
            for v in &self.values {
                if v.trim().is_empty() || v.len() > 255 {
                    err(
                        "values",
                        "picklist values must be 1 to 255 characters".into(),
                    );
                } else if !seen.insert(v) {
                    err("values", format!("'{v}' is listed twice"));
                }
            }
        } else if !self.values.is_empty() {
            err("values", "values apply to picklist fields".into());
        }
        match (&self.target, kind) {
            (None, FieldType::Reference) => {
                err("target", "a reference field needs a target object".into())
            }
            (Some(t), FieldType::Reference) if !objects.contains(&t.as_str()) => {
                err("target", format!("there is no object named '{t}'"))
            }
            (Some(_), k) if k != FieldType::Reference => {
                err("target", "target applies to reference fields".into())
            }
            _ => {}
        }
        if self.label.chars().count() > 100 {
            err("label", "label is at most 100 characters".into());
        }
        if self.help_text.chars().count() > 1000 {
            err("help_text", "help_text is at most 1000 characters".into());
        }
        if let Some(default) = &self.default {
            if matches!(kind, FieldType::Reference | FieldType::User) {
                err("default", "reference fields cannot have a default".into());
            } else if let Err(m) = super::validate::normalise_value(self, default) {
                err("default", format!("the default {m}"));
            }
        }
        errors
    }
}

/// Checks an object or field API name.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a valid name: use 1 to {MAX_NAME_LEN} lower case letters, digits or _, starting with a letter"
        ))
    }
}

/// `close_date` -> `Close date`.
pub fn humanise(name: &str) -> String {
    let spaced = name.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(json: Value) -> Field {
        let mut f: Field = serde_json::from_value(json).unwrap();
        f.normalise();
        f
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("close_date").is_ok());
        assert!(check_name("Close").is_err());
        assert!(check_name("1st").is_err());
        assert!(check_name("a-b").is_err());
        assert!(check_name("").is_err());
        assert!(check_name(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(check_name("x'; drop table records; --").is_err());
    }

    #[test]
    fn a_definition_reports_every_problem() {
        let f = field(
            serde_json::json!({"name": "id", "type": "picklist", "min": 3, "target": "companies"}),
        );
        let keys: Vec<_> = f
            .check_definition(&["companies"])
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(keys, ["name", "min", "values", "target"]);
    }

    #[test]
    fn defaults_must_fit_the_field() {
        let f = field(
            serde_json::json!({"name": "status", "type": "picklist", "values": ["new"], "default": "old"}),
        );
        let errors = f.check_definition(&[]);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "default");
    }

    #[test]
    fn numbers_read_as_numbers() {
        let f = field(serde_json::json!({"name": "amount", "type": "currency"}));
        assert_eq!(f.value_sql(), "CAST((data->>'amount') AS DOUBLE PRECISION)");
        assert_eq!(f.currency.as_deref(), Some("USD"));
        assert_eq!(f.label, "Amount");
    }
}
