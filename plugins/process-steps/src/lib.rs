//! Process steps: the everyday work of a process, as step types the process engine
//! runs in service tasks (`"step": "process-steps/<name>"`).
//!
//! - `update-record`: sets fields of the process's record;
//! - `create-record`: creates a record, such as a follow-up activity, optionally
//!   linked to the process's record;
//! - `notify`: a notification to a user;
//! - `request-approval`: tells the approver an approval waits (the approval itself is
//!   a user task of the process, assigned to them);
//! - `send-email`: queues a follow-up email as an `outgoing_emails` record;
//! - `set`: sets variables (from values, variables or the record's fields).
//!
//! Values in a step's configuration may name the process's data: a string `"$name"`
//! is the variable `name`, `"$record.field"` a field of the process's record; in
//! texts, `{{name}}` and `{{record.field}}` are replaced the same way.
//!
//! Every step run is idempotent: what a run did is kept under its `_run` id (the
//! engine passes the same one to every attempt), and a repeated run answers the same
//! without doing it again; a record a step creates takes the run's id, so even a run
//! cut off between its write and that record creates nothing twice. Built only with
//! the public SDK.

use crm_plugin_sdk::{
    Map, Plugin, Record, StepInput, StepOutcome, StepType, Value, json, kv, notify, records,
};

pub mod values;

use values::{Scope, render, resolve};

pub struct ProcessSteps;

impl Plugin for ProcessSteps {
    fn steps() -> Vec<StepType> {
        let step = |name: &str, title: &str, description: &str, schema: Value| StepType {
            name: name.into(),
            title: title.into(),
            description: description.into(),
            config_schema: schema.to_string(),
        };
        vec![
            step(
                "update-record",
                "Update the record",
                "Sets fields of the record the process runs for.",
                json!({"type": "object", "required": ["fields"], "properties": {"fields": {"type": "object"}}}),
            ),
            step(
                "create-record",
                "Create a record",
                "Creates a record (a follow-up activity, a deal...); `link` names its field that points to the process's record; the new id is set as the variable `as` (default created_id).",
                json!({"type": "object", "required": ["object", "fields"], "properties": {
                    "object": {"type": "string"}, "fields": {"type": "object"},
                    "link": {"type": "string"}, "as": {"type": "string"}}}),
            ),
            step(
                "notify",
                "Notify a user",
                "Sends a notification to a user (an id, or $variable / $record.owner).",
                json!({"type": "object", "required": ["user", "title"], "properties": {
                    "user": {"type": "string"}, "title": {"type": "string"}, "body": {"type": "string"}}}),
            ),
            step(
                "request-approval",
                "Request an approval",
                "Tells the approver that an approval waits for them; put a user task assigned to them next.",
                json!({"type": "object", "required": ["approver", "subject"], "properties": {
                    "approver": {"type": "string"}, "subject": {"type": "string"}, "body": {"type": "string"}}}),
            ),
            step(
                "set",
                "Set variables",
                "Sets process variables to values, other variables ($name) or fields of the record ($record.field).",
                json!({"type": "object", "required": ["variables"], "properties": {"variables": {"type": "object"}}}),
            ),
            step(
                "send-email",
                "Send a follow-up email",
                "Queues an email in the outgoing_emails object (delivered by SMTP when configured).",
                json!({"type": "object", "required": ["to", "subject"], "properties": {
                    "to": {"type": "string"}, "subject": {"type": "string"}, "body": {"type": "string"}}}),
            ),
        ]
    }

    fn run_step(input: &StepInput) -> Result<StepOutcome, String> {
        let variables: Map<String, Value> = crm_plugin_sdk::serde_json::from_str(&input.variables)
            .map_err(|e| format!("the variables are not a JSON object: {e}"))?;
        let record: Option<Record> = match &input.record {
            Some(r) => Some(
                crm_plugin_sdk::serde_json::from_str(r)
                    .map_err(|e| format!("the record is not JSON: {e}"))?,
            ),
            None => None,
        };
        let config: Map<String, Value> = crm_plugin_sdk::serde_json::from_str(&input.config)
            .map_err(|_| "the step's configuration is not a JSON object".to_string())?;
        let scope = Scope {
            variables: &variables,
            record: record.as_ref(),
        };
        // Setting variables touches nothing outside the process: nothing to remember.
        if input.step == "set" {
            let values = config
                .get("variables")
                .and_then(Value::as_object)
                .ok_or("the configuration needs 'variables' (an object)")?;
            return Ok(outcome(
                values
                    .iter()
                    .map(|(k, v)| (k.clone(), resolve(v, &scope)))
                    .collect(),
            ));
        }
        // A run already done answers as it did (the engine retries after a crash).
        let done_key = variables
            .get("_run")
            .and_then(Value::as_str)
            .map(|run| format!("run/{run}"));
        if let Some(key) = &done_key
            && let Some(set) = kv::get_json::<Map<String, Value>>(key)?
        {
            return Ok(outcome(set));
        }
        let set = match input.step.as_str() {
            "update-record" => update_record(&config, &scope)?,
            "create-record" => create_record(&config, &scope)?,
            "notify" => send_notification(&config, &scope, "user", "title")?,
            "request-approval" => {
                let mut set = send_notification(&config, &scope, "approver", "subject")?;
                if let Some(user) = set.remove("notified") {
                    set.insert("approval_requested_from".into(), user);
                }
                set
            }
            "send-email" => send_email(&config, &scope, done_key.as_deref())?,
            other => return Err(format!("process-steps has no step type '{other}'")),
        };
        if let Some(key) = &done_key {
            kv::set_json(key, &set)?;
        }
        Ok(outcome(set))
    }
}

crm_plugin_sdk::export_plugin!(ProcessSteps);

fn outcome(set: Map<String, Value>) -> StepOutcome {
    StepOutcome {
        variables: Value::Object(set).to_string(),
        next: None,
    }
}

fn text<'c>(config: &'c Map<String, Value>, key: &str) -> Result<&'c str, String> {
    config
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the configuration needs '{key}' (text)"))
}

/// The process's record: its object and id.
fn target(scope: &Scope) -> Result<(String, String), String> {
    let record = scope
        .record
        .ok_or("this step needs the record the process runs for")?;
    let get = |k: &str| {
        record
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("the process's record has no {k}"))
    };
    Ok((get("object")?, get("id")?))
}

/// The configured fields with `$...` values resolved.
fn fields(config: &Map<String, Value>, scope: &Scope) -> Result<Record, String> {
    let fields = config
        .get("fields")
        .and_then(Value::as_object)
        .ok_or("the configuration needs 'fields' (an object)")?;
    Ok(fields
        .iter()
        .map(|(k, v)| (k.clone(), resolve(v, scope)))
        .collect())
}

fn update_record(config: &Map<String, Value>, scope: &Scope) -> Result<Map<String, Value>, String> {
    let (object, id) = target(scope)?;
    let patch = fields(config, scope)?;
    let updated = records::update(&object, &id, &patch)?;
    let mut set = Map::new();
    set.insert(
        "record_version".into(),
        updated.get("version").cloned().unwrap_or(Value::Null),
    );
    Ok(set)
}

fn create_record(config: &Map<String, Value>, scope: &Scope) -> Result<Map<String, Value>, String> {
    let object = text(config, "object")?;
    let mut record = fields(config, scope)?;
    if let Some(link) = config.get("link").and_then(Value::as_str) {
        let (_, id) = target(scope)?;
        record.insert(link.to_string(), Value::String(id));
    }
    // The new record goes where the process's record is, unless told otherwise.
    if !record.contains_key("department")
        && let Some(department) = scope
            .record
            .and_then(|r| r.get("department"))
            .filter(|d| d.is_string())
    {
        record.insert("department".into(), department.clone());
    }
    let created = create_once(object, record, scope)?;
    let name = config
        .get("as")
        .and_then(Value::as_str)
        .unwrap_or("created_id");
    let mut set = Map::new();
    set.insert(
        name.to_string(),
        created.get("id").cloned().unwrap_or(Value::Null),
    );
    Ok(set)
}

/// Creates a record whose id is the step run's: a run repeated after a crash finds
/// the record its first attempt made instead of making a second one.
fn create_once(object: &str, mut record: Record, scope: &Scope) -> Result<Record, String> {
    // The engine's run ids are UUIDs; a hand-made `_run` (a trial run) is not.
    let is_uuid = |s: &str| s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    let Some(run) = scope
        .variables
        .get("_run")
        .and_then(Value::as_str)
        .filter(|r| is_uuid(r))
    else {
        return records::create(object, &record);
    };
    record.insert("id".into(), Value::String(run.to_string()));
    match records::create(object, &record) {
        Err(e) if e.contains("already exists") => records::get(object, run),
        other => other,
    }
}

fn send_notification(
    config: &Map<String, Value>,
    scope: &Scope,
    who: &str,
    title_key: &str,
) -> Result<Map<String, Value>, String> {
    let user = resolve(
        config
            .get(who)
            .ok_or_else(|| format!("the configuration needs '{who}'"))?,
        scope,
    );
    let user = user
        .as_str()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| format!("'{who}' does not name a user"))?
        .to_string();
    let title = render(text(config, title_key)?, scope);
    let body = render(
        config.get("body").and_then(Value::as_str).unwrap_or(""),
        scope,
    );
    notify::send(&user, &title, &body)?;
    let mut set = Map::new();
    set.insert("notified".into(), Value::String(user));
    Ok(set)
}

fn send_email(
    config: &Map<String, Value>,
    scope: &Scope,
    run: Option<&str>,
) -> Result<Map<String, Value>, String> {
    let to = resolve(
        config.get("to").ok_or("the configuration needs 'to'")?,
        scope,
    );
    let to = to
        .as_str()
        .filter(|t| t.contains('@'))
        .ok_or("'to' is not an email address")?;
    let mut email = Record::new();
    email.insert("to".into(), json!(to));
    email.insert(
        "subject".into(),
        json!(render(text(config, "subject")?, scope)),
    );
    email.insert(
        "body".into(),
        json!(render(
            config.get("body").and_then(Value::as_str).unwrap_or(""),
            scope
        )),
    );
    email.insert("status".into(), json!("queued"));
    email.insert("process_run".into(), json!(run));
    if let Some(department) = scope
        .record
        .and_then(|r| r.get("department"))
        .filter(|d| d.is_string())
    {
        email.insert("department".into(), department.clone());
    }
    let created = create_once("outgoing_emails", email, scope)?;
    let mut set = Map::new();
    set.insert(
        "email_id".into(),
        created.get("id").cloned().unwrap_or(Value::Null),
    );
    Ok(set)
}
