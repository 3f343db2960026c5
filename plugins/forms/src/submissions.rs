//! What a submission leaves behind: the lead or contact it creates or updates
//! (found again by email or phone), given an owner in turn, and the submission
//! itself as a `form_submissions` record, whose `record.created` event is the
//! form's event that processes start from.

use crm_plugin_sdk::{Record, Value, json, kv, log, records};

use crate::form::{Answer, Form};
use crate::web;

/// The object submissions are kept in (declared in plugin.toml).
pub const SUBMISSIONS: &str = "form_submissions";

/// What a submission answered, kept for its idempotency key.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    /// The lead or contact created or updated (none for an anonymous survey).
    pub record: Option<String>,
    pub created: bool,
    /// The `form_submissions` record.
    #[serde(default)]
    pub submission: Option<String>,
}

/// Stores a checked submission of the form `slug`.
pub fn store(slug: &str, form: &Form, answer: Answer) -> Result<Outcome, String> {
    let mut outcome = Outcome::default();
    let mut owner = None;
    let answers = Value::Object(answer.record.clone()).to_string();
    // An anonymous survey (no fields) fills nothing but its submission.
    if !form.fields.is_empty() {
        let mut record = answer.record;
        let (id, created, assigned) = upsert(slug, form, &mut record)?;
        outcome.record = Some(id);
        outcome.created = created;
        owner = assigned;
    }
    let mut submission = json!({
        "form": slug,
        "kind": form.kind,
        "score": answer.score,
        "comment": answer.comment,
        "answers": answers,
        "outcome": if outcome.record.is_none() { "none" } else if outcome.created { "created" } else { "updated" },
    });
    let fields = submission.as_object_mut().expect("an object");
    if let Some(id) = &outcome.record {
        // `lead` or `contact`: the record the answers went to.
        let link = form.object.trim_end_matches('s');
        fields.insert(link.into(), Value::String(id.clone()));
    }
    if let Some(department) = &form.department {
        fields.insert("department".into(), Value::String(department.clone()));
    }
    let created = create_owned(SUBMISSIONS, fields, owner.as_deref())?;
    outcome.submission = id_of(&created);
    Ok(outcome)
}

/// Updates the record an identifying field finds, or creates one owned by the next
/// user in turn. Answers its id, whether it was created, and the owner given.
fn upsert(
    slug: &str,
    form: &Form,
    record: &mut Record,
) -> Result<(String, bool, Option<String>), String> {
    for field in &form.dedupe_by {
        let Some(value) = record.get(field).and_then(Value::as_str) else {
            continue;
        };
        let query = format!("filter[{field}]={}&limit=1", web::encode(value));
        let (found, _) = records::list(&form.object, &query)?;
        if let Some(id) = found.first().and_then(id_of) {
            let updated = records::update(&form.object, &id, record)?;
            return Ok((id_of(&updated).unwrap_or(id), false, None));
        }
    }
    if let Some(department) = &form.department {
        record.insert("department".into(), Value::String(department.clone()));
    }
    let owner = next_owner(slug, form)?;
    let created = create_owned(&form.object, record, owner.as_deref())?;
    let owner = created
        .get("owner")
        .and_then(Value::as_str)
        .filter(|o| owner.as_deref() == Some(*o))
        .map(str::to_string);
    Ok((id_of(&created).unwrap_or_default(), true, owner))
}

/// Creates a record owned by `owner` when one is given. Should the host refuse the
/// owner (someone who has left the department since the form was saved), the
/// record is created without one rather than lost, and the log says why.
fn create_owned(object: &str, fields: &mut Record, owner: Option<&str>) -> Result<Record, String> {
    let Some(owner) = owner else {
        return records::create(object, fields);
    };
    fields.insert("owner".into(), Value::String(owner.to_string()));
    match records::create(object, fields) {
        Ok(record) => Ok(record),
        Err(e) if e.contains("owner") => {
            log::warn(&format!(
                "{object}: could not give the record to {owner} ({e}); kept it unassigned"
            ));
            fields.remove("owner");
            records::create(object, fields)
        }
        Err(e) => Err(e),
    }
}

/// The user whose turn it is among the form's `assign_to` (round robin over a
/// counter in the plugin's store; two submissions at the same instant may land on
/// the same user, which evens out over the next ones).
fn next_owner(slug: &str, form: &Form) -> Result<Option<String>, String> {
    if form.assign_to.is_empty() {
        return Ok(None);
    }
    let key = format!("turn/{slug}");
    let turn: u64 = kv::get_json(&key)?.unwrap_or(0);
    kv::set_json(&key, &(turn.wrapping_add(1)))?;
    Ok(Some(
        form.assign_to[(turn % form.assign_to.len() as u64) as usize].clone(),
    ))
}

fn id_of(record: &Record) -> Option<String> {
    record.get("id").and_then(Value::as_str).map(str::to_string)
}
