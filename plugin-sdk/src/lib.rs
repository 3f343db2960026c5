//! # crm-plugin-sdk
//!
//! Write a CRM plugin as a WebAssembly component (`wasm32-wasip2`) against the WIT
//! package `crm:plugin@0.1.2` in `wit/` (set `api = "0.1.2"` in `plugin.toml`).
//! Implement [`Plugin`] for a type (every hook has a default that lets the write
//! through) and export it with [`export_plugin!`]. Host services: [`records`],
//! [`documents`], [`kv`], [`notify`], [`jobs`], [`log`]; HTTP helpers for routes in
//! [`http`].
//!
//! ```no_run
//! use crm_plugin_sdk::{Plugin, Record, SaveContext, HookError, invalid};
//!
//! struct NoShouting;
//!
//! impl Plugin for NoShouting {
//!     fn before_save(_ctx: &SaveContext, record: &Record) -> Result<Option<Record>, HookError> {
//!         match record.get("name").and_then(|v| v.as_str()) {
//!             Some(name) if name.len() > 3 && name == name.to_uppercase() => {
//!                 Err(invalid("name", "please do not shout"))
//!             }
//!             _ => Ok(None),
//!         }
//!     }
//! }
//!
//! crm_plugin_sdk::export_plugin!(NoShouting);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2`; the `.wasm` file is
//! already a component. `docs/plugins.md` walks from an empty crate to a plugin
//! enabled in a department.

/// The raw bindings generated from the WIT package (for what the typed API below does
/// not cover yet).
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/crm-plugin-0.1.2",
        world: "plugin",
        pub_export_macro: true,
        default_bindings_module: "crm_plugin_sdk::bindings",
    });
}

pub use bindings::crm::plugin::types::{
    Change, FieldError, HookError, HttpRequest, HttpResponse, Job, SaveContext, StepInput,
    StepOutcome, StepType,
};
pub use serde_json::{self, Map, Value, json};

/// A record's fields and envelope (`id`, `object`, `version`, `owner`, `department`).
pub type Record = Map<String, Value>;

/// What a plugin does. Every method has a default, so a plugin implements only what
/// it needs. A fresh instance serves each call: keep no state in statics.
pub trait Plugin {
    /// Before a create or update of a subscribed object is written. `Ok(None)` lets
    /// it through, `Ok(Some(patch))` sets the patch's fields first (they are
    /// validated like the client's), an error refuses the write.
    fn before_save(context: &SaveContext, record: &Record) -> Result<Option<Record>, HookError> {
        let _ = (context, record);
        Ok(None)
    }

    /// After a change of a subscribed object was committed (at least once, in order
    /// per record). An error is retried with backoff and finally kept as a dead letter
    /// for an admin to replay, so make it safe to run twice. Records written here go
    /// through the host's write path as the user whose change it was; they do not
    /// call this hook again.
    fn after_save(change: &Committed) -> Result<(), String> {
        let _ = change;
        Ok(())
    }

    /// A request to one of the plugin's routes (capability `routes`, and
    /// `public_routes` for `/public/{plugin}/...`). The default answers 404.
    fn handle(request: &HttpRequest) -> HttpResponse {
        let _ = request;
        http::problem(404, "this plugin has no such route")
    }

    /// The process step types the plugin offers (none by default).
    fn steps() -> Vec<StepType> {
        Vec::new()
    }

    /// Runs one step of a process; `input.step` names the step type.
    fn run_step(input: &StepInput) -> Result<StepOutcome, String> {
        Err(format!("this plugin has no step type '{}'", input.step))
    }

    /// A job scheduled with [`jobs::schedule`] is due. Runs as the plugin's own
    /// identity; an error is retried with backoff, so make it safe to run twice.
    fn run_job(job: &Job) -> Result<(), String> {
        Err(format!(
            "this plugin does not handle jobs (got '{}')",
            job.name
        ))
    }
}

/// A committed change, decoded.
#[derive(Debug, Clone)]
pub struct Committed {
    /// `record.created`, `record.updated` or `record.deleted`.
    pub topic: String,
    pub object: String,
    pub record_id: String,
    /// The user whose change it was.
    pub actor: Option<String>,
    /// The record after the change (before it, for a delete).
    pub record: Record,
    /// Changed fields: `{"field": {"old": .., "new": ..}}`.
    pub changes: Record,
}

impl Committed {
    /// True when `field` is among the changed fields.
    pub fn changed(&self, field: &str) -> bool {
        self.changes.contains_key(field)
    }
}

/// A refusal naming one field.
pub fn invalid(field: &str, message: &str) -> HookError {
    HookError::Invalid(vec![FieldError {
        field: field.to_string(),
        message: message.to_string(),
    }])
}

/// Messages to the host's log, tagged with the plugin's id and version.
pub mod log {
    use crate::bindings::crm::plugin::log::{Level, write};

    pub fn debug(message: &str) {
        write(Level::Debug, message)
    }
    pub fn info(message: &str) {
        write(Level::Info, message)
    }
    pub fn warn(message: &str) {
        write(Level::Warn, message)
    }
    pub fn error(message: &str) {
        write(Level::Error, message)
    }
}

/// Records, read with the rights of the user the plugin acts for, within the
/// plugin's grants.
pub mod records {
    use crate::Record;

    use crate::bindings::crm::plugin::records as host;
    use serde_json::Value;

    fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
        serde_json::from_str(text)
            .map_err(|e| format!("the host sent JSON that was not expected: {e}"))
    }

    /// One record; `Err("record not found")` when it does not exist or may not be read.
    pub fn get(object: &str, id: &str) -> Result<Record, String> {
        decode(&host::get(object, id)?)
    }

    /// One page of a list. `query` is the REST list query string, such as
    /// `filter[email]=a@b.co&limit=1`. Answers the records and the cursor of the next
    /// page (pass it as `cursor=...`).
    pub fn list(object: &str, query: &str) -> Result<(Vec<Record>, Option<String>), String> {
        let mut page: serde_json::Map<String, Value> = decode(&host::list(object, query)?)?;
        let items = match page.remove("items") {
            Some(items) => decode(&items.to_string())?,
            None => Vec::new(),
        };
        let next = page
            .remove("next_cursor")
            .and_then(|c| c.as_str().map(str::to_string));
        Ok((items, next))
    }

    /// Counts and sums by group over the records a list would read, as
    /// `GET /api/v1/records/{object}/aggregate` answers: `query` such as
    /// `group_by=stage&sum=amount&filter[pipeline]=sales`. Answers the groups, the
    /// largest first, and whether more than the 1,000 listed exist.
    pub fn aggregate(object: &str, query: &str) -> Result<(Vec<Group>, bool), String> {
        #[derive(serde::Deserialize)]
        struct Answer {
            groups: Vec<Group>,
            truncated: bool,
        }
        let answer: Answer = decode(&host::aggregate(object, query)?)?;
        Ok((answer.groups, answer.truncated))
    }

    /// One group of [`aggregate`].
    #[derive(Debug, Clone, serde::Deserialize)]
    pub struct Group {
        /// The group's value of each `group_by` key (`null`: records without one).
        pub key: serde_json::Map<String, Value>,
        pub count: i64,
        /// The sum of each `sum` field.
        pub sums: serde_json::Map<String, Value>,
        /// The average of each `avg` field (`null`: no record has a value).
        #[serde(default)]
        pub avg: serde_json::Map<String, Value>,
        /// The least value of each `min` field.
        #[serde(default)]
        pub min: serde_json::Map<String, Value>,
        /// The greatest value of each `max` field.
        #[serde(default)]
        pub max: serde_json::Map<String, Value>,
    }

    /// Creates a record (capability `write` for the object; not inside before-save).
    pub fn create(object: &str, fields: &Record) -> Result<Record, String> {
        decode(&host::create(
            object,
            &Value::Object(fields.clone()).to_string(),
        )?)
    }

    /// Changes fields of a record (`null` clears one); same rules as [`create`].
    pub fn update(object: &str, id: &str, patch: &Record) -> Result<Record, String> {
        decode(&host::update(
            object,
            id,
            &Value::Object(patch.clone()).to_string(),
        )?)
    }
}

/// The document library (capability `documents`), read with the rights of the user
/// the plugin acts for, in the departments where the plugin is enabled and the
/// shared library.
pub mod documents {
    use crate::bindings::crm::plugin::documents as host;
    use serde::Deserialize;

    /// A document, as `GET /api/v1/documents/{id}` shows it.
    #[derive(Debug, Clone, Deserialize)]
    pub struct Document {
        pub id: String,
        pub folder: String,
        pub title: String,
        #[serde(default)]
        pub description: String,
        #[serde(default)]
        pub tags: Vec<String>,
        pub owner: Option<String>,
        /// `None` in the shared library.
        pub department: Option<String>,
        /// The current version's number.
        pub version: i64,
        pub file_name: String,
        /// Sniffed from the content by the host.
        pub content_type: String,
        pub size: i64,
        pub sha256: String,
        pub created_at: String,
        pub updated_at: String,
    }

    /// One version of a document.
    #[derive(Debug, Clone, Deserialize)]
    pub struct Version {
        pub version: i64,
        pub file_name: String,
        pub content_type: String,
        pub size: i64,
        pub sha256: String,
        pub uploaded_by: Option<String>,
        pub reason: String,
        pub created_at: String,
    }

    /// The most bytes one [`read`] answers.
    pub const MAX_READ: u32 = 1 << 20;

    fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
        serde_json::from_str(text)
            .map_err(|e| format!("the host sent JSON that was not expected: {e}"))
    }

    /// One document; `Err("there is no such document")` when it does not exist, is
    /// in the trash or may not be read.
    pub fn get(id: &str) -> Result<Document, String> {
        decode(&host::get(id)?)
    }

    /// One page of documents, newest first. `query` is the REST list query, such as
    /// `q=contract&limit=20` or `folder=F`; answers the documents and the cursor of
    /// the next page (pass it as `cursor=...`).
    pub fn list(query: &str) -> Result<(Vec<Document>, Option<String>), String> {
        #[derive(Deserialize)]
        struct Page {
            items: Vec<Document>,
            next_cursor: Option<String>,
        }
        let page: Page = decode(&host::list(query)?)?;
        Ok((page.items, page.next_cursor))
    }

    /// Every version, newest first.
    pub fn versions(id: &str) -> Result<Vec<Version>, String> {
        decode(&host::versions(id)?)
    }

    /// The documents attached to a record (the object must be in the plugin's
    /// `read` grants).
    pub fn of_record(object: &str, id: &str) -> Result<Vec<Document>, String> {
        decode(&host::of_record(object, id)?)
    }

    /// Up to `length` bytes (at most [`MAX_READ`]) of a version's content from
    /// `offset` (`version` `None`: the current one); fewer near the end, none past
    /// it. Reading from offset 0 counts as a download in the document's history.
    pub fn read(
        id: &str,
        version: Option<u32>,
        offset: u64,
        length: u32,
    ) -> Result<Vec<u8>, String> {
        host::read(id, version, offset, length)
    }

    /// The whole content of the current version, refused above `max` bytes (a
    /// plugin has little memory: read larger files in parts with [`read`]). The
    /// version is pinned first, so a version uploaded meanwhile does not mix in.
    pub fn read_all(id: &str, max: usize) -> Result<Vec<u8>, String> {
        let doc = get(id)?;
        if doc.size as u64 > max as u64 {
            return Err(format!(
                "the document has {} bytes, more than the {max} asked for",
                doc.size
            ));
        }
        let version = u32::try_from(doc.version).map_err(|e| e.to_string())?;
        let mut content = Vec::with_capacity(doc.size as usize);
        loop {
            let part = host::read(id, Some(version), content.len() as u64, MAX_READ)?;
            if part.is_empty() {
                return Ok(content);
            }
            content.extend_from_slice(&part);
        }
    }
}

/// Plugin-private key-value storage (capability `kv`).
pub mod kv {
    use crate::bindings::crm::plugin::kv;

    pub fn get(key: &str) -> Result<Option<String>, String> {
        kv::get(key)
    }
    pub fn set(key: &str, value: &str) -> Result<(), String> {
        kv::set(key, value)
    }
    pub fn delete(key: &str) -> Result<(), String> {
        kv::delete(key)
    }
    /// Keys starting with `prefix`, in order, at most 1,000.
    pub fn keys(prefix: &str) -> Result<Vec<String>, String> {
        kv::keys(prefix)
    }
    /// A value stored as JSON.
    pub fn get_json<T: serde::de::DeserializeOwned>(key: &str) -> Result<Option<T>, String> {
        match kv::get(key)? {
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| format!("the value of {key} is not what was expected: {e}")),
            None => Ok(None),
        }
    }
    pub fn set_json<T: serde::Serialize>(key: &str, value: &T) -> Result<(), String> {
        let text = serde_json::to_string(value).map_err(|e| e.to_string())?;
        kv::set(key, &text)
    }
}

/// Notifications for users (capability `notify`); they read them in the CRM.
pub mod notify {
    pub fn send(user: &str, title: &str, body: &str) -> Result<(), String> {
        crate::bindings::crm::plugin::notify::send(user, title, body)
    }
}

/// Durable callbacks (capability `jobs`): scheduled jobs survive restarts and reach
/// [`Plugin::run_job`] when due.
pub mod jobs {
    use crate::bindings::crm::plugin::jobs;

    /// Runs `name` with `payload` in `seconds` seconds. Answers the job's id.
    pub fn schedule_in(name: &str, seconds: u64, payload: &str) -> Result<String, String> {
        jobs::schedule_in(name, seconds, payload)
    }
    /// Runs `name` at `at` (RFC 3339; a past time means now). Answers the job's id.
    pub fn schedule_at(name: &str, at: &str, payload: &str) -> Result<String, String> {
        jobs::schedule_at(name, at, payload)
    }
    /// Cancels a pending job; `false` when there was none with that id.
    pub fn cancel(id: &str) -> Result<bool, String> {
        jobs::cancel(id)
    }
}

/// Answers for [`Plugin::handle`].
pub mod http {
    use crate::{HttpRequest, HttpResponse};

    /// A JSON answer.
    pub fn json(status: u16, body: &serde_json::Value) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    /// An RFC 9457 problem, as the host's own errors look.
    pub fn problem(status: u16, detail: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("content-type".into(), "application/problem+json".into())],
            body: serde_json::json!({"status": status, "detail": detail})
                .to_string()
                .into_bytes(),
        }
    }

    /// A 422 problem naming each field and what is wrong with it, as the host's
    /// own validation errors look.
    pub fn invalid(detail: &str, errors: &[(String, String)]) -> HttpResponse {
        let errors: Vec<serde_json::Value> = errors
            .iter()
            .map(|(field, message)| serde_json::json!({"field": field, "message": message}))
            .collect();
        HttpResponse {
            status: 422,
            headers: vec![("content-type".into(), "application/problem+json".into())],
            body: serde_json::json!({"status": 422, "detail": detail, "errors": errors})
                .to_string()
                .into_bytes(),
        }
    }

    /// A 204 answer with no body (after a delete).
    pub fn no_content() -> HttpResponse {
        HttpResponse {
            status: 204,
            headers: vec![],
            body: vec![],
        }
    }

    /// The request body as JSON, or a 400 problem to answer with.
    pub fn body_json<T: serde::de::DeserializeOwned>(
        request: &HttpRequest,
    ) -> Result<T, HttpResponse> {
        serde_json::from_slice(&request.body)
            .map_err(|e| problem(400, &format!("the body is not the JSON expected: {e}")))
    }

    /// The value of a header (names are lower case).
    pub fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
        request
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Glue between the generated bindings and [`Plugin`]; used by [`export_plugin!`].
#[doc(hidden)]
pub fn __before_save<P: Plugin>(
    context: SaveContext,
    record: String,
) -> Result<Option<String>, HookError> {
    let record: Record = serde_json::from_str(&record)
        .map_err(|e| HookError::Failed(format!("the record is not a JSON object: {e}")))?;
    P::before_save(&context, &record).map(|patch| patch.map(|p| Value::Object(p).to_string()))
}

#[doc(hidden)]
pub fn __after_save<P: Plugin>(change: Change) -> Result<(), String> {
    let mut payload: Map<String, Value> = serde_json::from_str(&change.payload)
        .map_err(|e| format!("the change is not a JSON object: {e}"))?;
    let take = |payload: &mut Map<String, Value>, key: &str| match payload.remove(key) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let committed = Committed {
        record: take(&mut payload, "record"),
        changes: take(&mut payload, "changes"),
        topic: change.topic,
        object: change.object,
        record_id: change.record_id,
        actor: change.actor,
    };
    P::after_save(&committed)
}

/// Exports a type implementing [`Plugin`] as the component's hooks.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        struct __CrmPluginExports;

        impl $crate::bindings::exports::crm::plugin::hooks::Guest for __CrmPluginExports {
            fn before_save(
                context: $crate::SaveContext,
                record: ::std::string::String,
            ) -> ::std::result::Result<
                ::std::option::Option<::std::string::String>,
                $crate::HookError,
            > {
                $crate::__before_save::<$plugin>(context, record)
            }

            fn after_save(
                change: $crate::Change,
            ) -> ::std::result::Result<(), ::std::string::String> {
                $crate::__after_save::<$plugin>(change)
            }
        }

        impl $crate::bindings::exports::crm::plugin::routes::Guest for __CrmPluginExports {
            fn handle(request: $crate::HttpRequest) -> $crate::HttpResponse {
                <$plugin as $crate::Plugin>::handle(&request)
            }
        }

        impl $crate::bindings::exports::crm::plugin::steps::Guest for __CrmPluginExports {
            fn describe() -> ::std::vec::Vec<$crate::StepType> {
                <$plugin as $crate::Plugin>::steps()
            }

            fn run(
                input: $crate::StepInput,
            ) -> ::std::result::Result<$crate::StepOutcome, ::std::string::String> {
                <$plugin as $crate::Plugin>::run_step(&input)
            }
        }

        impl $crate::bindings::exports::crm::plugin::job_handler::Guest for __CrmPluginExports {
            fn run(job: $crate::Job) -> ::std::result::Result<(), ::std::string::String> {
                <$plugin as $crate::Plugin>::run_job(&job)
            }
        }

        $crate::bindings::export!(__CrmPluginExports with_types_in $crate::bindings);
    };
}
