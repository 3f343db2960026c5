//! How records read on a page: their name, their values as text in the user's
//! language, and the names behind reference and user ids.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use super::i18n::Tr;
use crate::api::AppState;
use crate::auth::Actor;
use crate::records::metadata::{Field, FieldType, ObjectType};
use crate::records::{Record, title_of};

/// The name a record is shown by: a person's full name, else its name-like field,
/// else its first text value, else the start of its id.
pub fn title(object: &ObjectType, record: &Record) -> String {
    title_of(object, &record.id, &record.fields)
}

/// Names of the records and users a page refers to, looked up once per page.
#[derive(Default)]
pub struct Names {
    records: HashMap<String, String>,
    users: HashMap<String, String>,
}

impl Names {
    /// Looks up the targets of the reference fields of `records` with the caller's
    /// rights (a record it may not read stays an id), and the users' names.
    pub async fn of(
        app: &AppState,
        actor: &Actor,
        object: &ObjectType,
        records: &[Record],
    ) -> Names {
        let mut wanted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for field in &object.fields {
            let Some(target) = field.target.as_deref() else {
                continue;
            };
            if field.kind != FieldType::Reference {
                continue;
            }
            for r in records {
                if let Some(id) = r.fields.get(&field.name).and_then(Value::as_str) {
                    wanted.entry(target).or_default().insert(id);
                }
            }
        }
        let mut names = Names::default();
        for (target, ids) in wanted {
            let ids: Vec<&str> = ids.into_iter().collect();
            names
                .records
                .extend(app.records.titles(actor, target, &ids).await);
        }
        // Owners, user fields and history authors: every page that names records
        // names users too.
        names.users = user_names(app).await;
        names
    }

    pub fn record(&self, id: &str) -> Option<&str> {
        self.records.get(id).map(String::as_str)
    }

    pub fn user(&self, id: &str) -> String {
        self.users
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }
}

/// Every user's name by id (owners, assignees, authors of changes and versions);
/// empty when the users cannot be read.
pub async fn user_names(app: &AppState) -> HashMap<String, String> {
    app.auth
        .list_users()
        .await
        .map(|us| us.into_iter().map(|u| (u.id, u.name)).collect())
        .unwrap_or_default()
}

/// A value as a page shows it: text, and a link for references.
pub struct Shown {
    pub text: String,
    pub href: Option<String>,
}

/// `value` of `field` as text in the user's language.
pub fn show(tr: &Tr, field: &Field, value: Option<&Value>, names: &Names) -> Shown {
    let plain = |text: String| Shown { text, href: None };
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return plain(String::new());
    };
    match field.kind {
        FieldType::Picklist => plain(value.as_str().map(|v| tr.value(v)).unwrap_or_default()),
        FieldType::MultiPicklist => plain(
            value
                .as_array()
                .map(|vs| {
                    vs.iter()
                        .filter_map(Value::as_str)
                        .map(|v| tr.value(v))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default(),
        ),
        FieldType::Boolean => plain(tr.t(if value.as_bool() == Some(true) {
            "yes"
        } else {
            "no"
        })),
        FieldType::Date | FieldType::Datetime => plain(tr.date(value.as_str().unwrap_or_default())),
        FieldType::Integer | FieldType::Decimal => plain(tr.digits(&value.to_string())),
        FieldType::Currency => {
            let amount = match value.as_f64() {
                Some(n) => format!("{n:.2}"),
                None => value.to_string(),
            };
            let text = match &field.currency {
                Some(code) => format!("{amount} {code}"),
                None => amount,
            };
            plain(tr.digits(&text))
        }
        FieldType::Reference => {
            let id = value.as_str().unwrap_or_default();
            let target = field.target.as_deref().unwrap_or_default();
            Shown {
                text: names.record(id).unwrap_or(id).to_string(),
                href: Some(format!("/records/{target}/{id}")),
            }
        }
        FieldType::User => plain(names.user(value.as_str().unwrap_or_default())),
        FieldType::Url => {
            let url = value.as_str().unwrap_or_default();
            Shown {
                text: url.to_string(),
                // Only web links become links (never `javascript:`).
                href: (url.starts_with("https://") || url.starts_with("http://"))
                    .then(|| url.to_string()),
            }
        }
        _ => plain(
            value
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string()),
        ),
    }
}
