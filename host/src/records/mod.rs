//! Core records: object metadata, validation, queries and the one write path.
//!
//! Where does a record write go through? [`service::RecordService`]: every create,
//! update and delete, from any caller, is validated there and committed by
//! [`writer`] together with its audit entry and its outbox event.

pub mod demo;
pub mod export;
pub mod export_routes;
pub mod metadata;
pub mod metadata_routes;
pub mod objects;
pub mod query;
pub mod routes;
pub mod schema;
pub mod seed;
pub mod service;
pub mod validate;
pub mod views;
pub mod writer;

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::api::error::{ApiError, FieldError};
use metadata::{FieldType, ObjectType};

/// The field values of a `json!({...})` literal, as the records service takes them
/// (anything but an object is no values).
pub fn values_of(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// Fields that name a record, in the order they are tried.
const NAME_FIELDS: [&str; 5] = ["name", "title", "topic", "subject", "to"];

/// The name a record is shown by, from its id and field values (an event's copy of
/// the record will do): a person's full name, else its name-like field, else its
/// first text value, else the end of its id.
pub fn title_of(object: &ObjectType, id: &str, fields: &Map<String, Value>) -> String {
    let text = |name: &str| {
        fields
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
    };
    if object.field("last_name").is_some() {
        let full: Vec<&str> = ["first_name", "last_name"]
            .into_iter()
            .filter_map(text)
            .collect();
        if !full.is_empty() {
            return full.join(" ");
        }
    }
    NAME_FIELDS
        .into_iter()
        .find_map(text)
        .or_else(|| {
            object
                .fields
                .iter()
                .filter(|f| f.kind == FieldType::Text)
                .find_map(|f| text(&f.name))
        })
        .map(str::to_string)
        .unwrap_or_else(|| format!("#{}", &id[id.len().saturating_sub(8)..]))
}

/// A record as clients see it: the envelope plus one key per field of its object.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Record {
    pub id: String,
    pub object: String,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    /// Id of the user who owns the record.
    pub owner: Option<String>,
    /// Id of the department the record belongs to.
    pub department: Option<String>,
    /// The object's fields, flattened into the record.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("there is no object named '{0}'")]
    UnknownObject(String),
    #[error("{0} has no field named '{1}'")]
    UnknownField(String, String),
    #[error("record not found")]
    NotFound,
    #[error("the request has invalid fields")]
    Invalid(Vec<FieldError>),
    /// The caller may see the record but not do this to it.
    #[error("{0}")]
    Forbidden(String),
    /// The request writes fields the caller may not write; each is named.
    #[error("you may not change some of these fields")]
    FieldsForbidden(Vec<FieldError>),
    #[error(
        "the record was changed by someone else and is now at version {current}; reload it and try again"
    )]
    Conflict { current: i64 },
    #[error("{0}")]
    BadQuery(String),
    /// A metadata change that existing data or rules do not allow, with the reason.
    #[error("{0}")]
    Refused(String),
    /// A plugin hook failed (trap, time or memory limit, bad answer).
    #[error("{0}")]
    Plugin(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<RecordError> for ApiError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::UnknownObject(_)
            | RecordError::UnknownField(..)
            | RecordError::NotFound => ApiError::not_found(e.to_string()),
            RecordError::Invalid(errors) => ApiError::invalid(
                format!(
                    "{} field{} invalid",
                    errors.len(),
                    if errors.len() == 1 { " is" } else { "s are" }
                ),
                errors,
            ),
            RecordError::Forbidden(m) => ApiError::forbidden(m),
            RecordError::FieldsForbidden(errors) => {
                let mut e = ApiError::forbidden(format!(
                    "you may not change {}",
                    errors
                        .iter()
                        .map(|e| e.field.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                e.errors = errors;
                e
            }
            RecordError::Conflict { .. } | RecordError::Refused(_) => {
                ApiError::conflict(e.to_string())
            }
            RecordError::BadQuery(m) => ApiError::bad_request(m),
            RecordError::Plugin(m) => ApiError::new(axum::http::StatusCode::BAD_GATEWAY, m),
            RecordError::Db(e) => e.into(),
        }
    }
}
