//! `$name` values and `{{name}}` texts over a process's variables and record.

use crm_plugin_sdk::{Map, Record, Value};

/// What a step's configuration may name.
pub struct Scope<'a> {
    pub variables: &'a Map<String, Value>,
    pub record: Option<&'a Record>,
}

impl Scope<'_> {
    /// `name` (a variable) or `record.field`; `null` when there is none.
    pub fn lookup(&self, path: &str) -> Value {
        let value = match path.strip_prefix("record.") {
            Some(field) => self.record.and_then(|r| r.get(field)),
            None => self.variables.get(path),
        };
        value.cloned().unwrap_or(Value::Null)
    }
}

/// A configured value: `"$name"` and `"$record.field"` are looked up (`"$$x"` is
/// the text `$x`); anything else is itself.
pub fn resolve(value: &Value, scope: &Scope) -> Value {
    match value.as_str() {
        Some(s) if s.starts_with("$$") => Value::String(s[1..].to_string()),
        Some(s) if s.starts_with('$') => scope.lookup(&s[1..]),
        _ => value.clone(),
    }
}

/// A text with each `{{name}}` replaced by its value (texts as they are, other
/// values as JSON, nothing for `null`).
pub fn render(template: &str, scope: &Scope) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        match scope.lookup(rest[start + 2..start + 2 + len].trim()) {
            Value::Null => {}
            Value::String(s) => out.push_str(&s),
            other => out.push_str(&other.to_string()),
        }
        rest = &rest[start + 2 + len + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_plugin_sdk::json;

    #[test]
    fn values_and_texts_name_variables_and_record_fields() {
        let variables = json!({"amount": 1500, "who": "u-1"})
            .as_object()
            .cloned()
            .unwrap();
        let record = json!({"id": "r-1", "last_name": "Diaz", "owner": "u-2"})
            .as_object()
            .cloned()
            .unwrap();
        let scope = Scope {
            variables: &variables,
            record: Some(&record),
        };
        assert_eq!(resolve(&json!("$who"), &scope), json!("u-1"));
        assert_eq!(resolve(&json!("$record.owner"), &scope), json!("u-2"));
        assert_eq!(resolve(&json!("$missing"), &scope), Value::Null);
        assert_eq!(resolve(&json!("$$5 off"), &scope), json!("$5 off"));
        assert_eq!(resolve(&json!(42), &scope), json!(42));
        assert_eq!(
            render(
                "Call {{ record.last_name }} about {{amount}}{{nothing}} {{",
                &scope
            ),
            "Call Diaz about 1500 {{"
        );
    }
}
