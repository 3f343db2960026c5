//! Data quality: phone numbers are stored in one form (`+98 21 1234` becomes
//! `+98211234`), and an email a message could not usefully reach (a throwaway
//! domain, a one-letter or numeric top-level domain, `..`) is refused with a field
//! error before the record is written. The host already checks the basic shape.
//!
//! After a lead is saved, it scores the lead (0 to 100, from how reachable and how
//! warm it is) into the lead's `score` field, and tells the lead's owner once when a
//! lead turns hot (kv remembers who was told, since after-save may run twice).
//!
//! Routes: `POST /api/v1/x/data-quality/check` answers how a signed-in user's email
//! and phone would be stored; `POST /public/data-quality/web-lead` is a web-to-lead
//! form anyone may post to: the plugin creates the lead as itself and schedules a
//! job that scores it; `GET /api/v1/x/data-quality/attachments/leads/{id}` checks
//! the documents attached to a lead (the same content attached twice, a file name
//! whose extension does not match its content). Process steps: `normalise-phone`
//! and `check-email`.

use crm_plugin_sdk::{
    Committed, HookError, HttpRequest, HttpResponse, Job, Plugin, Record, SaveContext, StepInput,
    StepOutcome, StepType, Value, documents, http, invalid, jobs, json, kv, notify, records,
    serde_json,
};

pub struct DataQuality;

const PHONE_FIELDS: [&str; 2] = ["phone", "mobile"];

impl Plugin for DataQuality {
    fn before_save(_context: &SaveContext, record: &Record) -> Result<Option<Record>, HookError> {
        if let Some(email) = record.get("email").and_then(Value::as_str)
            && !useful_email(email)
        {
            return Err(invalid(
                "email",
                "is a throwaway or unreachable address; ask for the client's real email",
            ));
        }
        let mut patch = Record::new();
        for field in PHONE_FIELDS {
            if let Some(phone) = record.get(field).and_then(Value::as_str) {
                let normal = normalise_phone(phone);
                if normal != phone {
                    patch.insert(field.to_string(), Value::String(normal));
                }
            }
        }
        Ok((!patch.is_empty()).then_some(patch))
    }

    fn after_save(change: &Committed) -> Result<(), String> {
        if change.object != "leads" || change.topic == "record.deleted" {
            return Ok(());
        }
        let lead = &change.record;
        let score = lead_score(lead);
        if lead.get("score").and_then(Value::as_i64) != Some(score) {
            let mut patch = Record::new();
            patch.insert("score".into(), Value::from(score));
            records::update("leads", &change.record_id, &patch)?;
        }
        if score >= HOT_LEAD {
            let told = format!("hot/{}", change.record_id);
            if kv::get(&told)?.is_none()
                && let Some(owner) = lead.get("owner").and_then(Value::as_str)
            {
                let name = ["first_name", "last_name"]
                    .iter()
                    .filter_map(|f| lead.get(*f).and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(" ");
                notify::send(
                    owner,
                    &format!("Hot lead: {name}"),
                    &format!("{name} scores {score} of 100: reachable and warm. Call today."),
                )?;
                kv::set(&told, "1")?;
            }
        }
        Ok(())
    }

    fn handle(request: &HttpRequest) -> HttpResponse {
        match (request.method.as_str(), request.path.as_str()) {
            ("POST", "/check") => check(request),
            ("POST", "/web-lead") => web_lead(request),
            ("GET", path) if path.starts_with("/attachments/leads/") => {
                attachments(&path["/attachments/leads/".len()..])
            }
            _ => http::problem(
                404,
                "data-quality serves POST /check, POST /web-lead and GET /attachments/leads/{id}",
            ),
        }
    }

    fn run_job(job: &Job) -> Result<(), String> {
        match job.name.as_str() {
            // A web lead was created by the plugin itself, so its own after-save
            // hook does not see it: score it here.
            "score" => {
                let lead = records::get("leads", &job.payload)?;
                let mut patch = Record::new();
                patch.insert("score".into(), Value::from(lead_score(&lead)));
                records::update("leads", &job.payload, &patch)?;
                Ok(())
            }
            other => Err(format!("unknown job '{other}'")),
        }
    }

    fn steps() -> Vec<StepType> {
        vec![
            StepType {
                name: "normalise-phone".into(),
                title: "Normalise a phone number".into(),
                description: "Sets the variable named like the field to the record's phone number in stored form.".into(),
                config_schema: json!({"type": "object", "properties": {"field": {"type": "string", "default": "phone"}}}).to_string(),
            },
            StepType {
                name: "check-email".into(),
                title: "Check an email".into(),
                description: "Takes the path `useful` or `not-useful` by the record's email.".into(),
                config_schema: "{}".into(),
            },
        ]
    }

    fn run_step(input: &StepInput) -> Result<StepOutcome, String> {
        let record: Record = match &input.record {
            Some(r) => serde_json::from_str(r).map_err(|e| e.to_string())?,
            None => return Err("this step needs the record the process runs for".into()),
        };
        match input.step.as_str() {
            "normalise-phone" => {
                let config: Value = serde_json::from_str(&input.config).unwrap_or(Value::Null);
                let field = config
                    .get("field")
                    .and_then(Value::as_str)
                    .unwrap_or("phone");
                let phone = record.get(field).and_then(Value::as_str).unwrap_or("");
                Ok(StepOutcome {
                    variables: json!({ field: normalise_phone(phone) }).to_string(),
                    next: None,
                })
            }
            "check-email" => {
                let email = record.get("email").and_then(Value::as_str).unwrap_or("");
                let useful = useful_email(email);
                Ok(StepOutcome {
                    variables: json!({ "email_useful": useful }).to_string(),
                    next: Some(if useful { "useful" } else { "not-useful" }.into()),
                })
            }
            other => Err(format!("data-quality has no step type '{other}'")),
        }
    }
}

/// `POST /check {"email": .., "phone": ..}`: how the values would be stored.
fn check(request: &HttpRequest) -> HttpResponse {
    let body: Record = match http::body_json(request) {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    let email = body.get("email").and_then(Value::as_str);
    let phone = body.get("phone").and_then(Value::as_str);
    http::json(
        200,
        &json!({
            "email_useful": email.map(useful_email),
            "phone": phone.map(normalise_phone),
        }),
    )
}

/// `GET /attachments/leads/{id}`: problems with the documents attached to a lead,
/// as the caller may read them.
fn attachments(lead: &str) -> HttpResponse {
    let docs = match documents::of_record("leads", lead) {
        Ok(docs) => docs,
        Err(e) => return http::problem(404, &e),
    };
    let mut problems = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        if let Some(first) = docs[..i].iter().find(|d| d.sha256 == doc.sha256) {
            problems.push(json!({
                "document": doc.id,
                "problem": format!("the same content as '{}'", first.title),
            }));
        }
        if let Some(expected) = expected_type(&doc.file_name)
            && !doc.content_type.starts_with(expected)
        {
            problems.push(json!({
                "document": doc.id,
                "problem": format!("named {} but holds {}", doc.file_name, doc.content_type),
            }));
        }
    }
    http::json(200, &json!({"documents": docs.len(), "problems": problems}))
}

/// The content type a file name's extension promises, for the common office types.
fn expected_type(file_name: &str) -> Option<&'static str> {
    let extension = file_name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match extension.as_str() {
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "txt" | "csv" => "text/",
        _ => return None,
    })
}

/// `POST /web-lead`: a lead from a web form, created by the plugin itself.
fn web_lead(request: &HttpRequest) -> HttpResponse {
    let body: Record = match http::body_json(request) {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    let mut lead = Record::new();
    for field in ["first_name", "last_name", "email", "phone", "company_name"] {
        if let Some(Value::String(v)) = body.get(field) {
            lead.insert(field.into(), Value::String(v.chars().take(200).collect()));
        }
    }
    if let Some(email) = lead.get("email").and_then(Value::as_str)
        && !useful_email(email)
    {
        return http::problem(422, "email: please give an address we can reach you at");
    }
    lead.insert("source".into(), Value::from("Web"));
    if let Some(phone) = lead.get("phone").and_then(Value::as_str) {
        let normal = normalise_phone(phone);
        lead.insert("phone".into(), Value::String(normal));
    }
    let created = match records::create("leads", &lead) {
        Ok(created) => created,
        Err(e) => return http::problem(422, &e),
    };
    let id = created
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Err(e) = jobs::schedule_in("score", 0, &id) {
        crm_plugin_sdk::log::warn(&format!("could not schedule scoring {id}: {e}"));
    }
    http::json(201, &json!({ "id": id }))
}

/// A lead at or above this score is hot.
pub const HOT_LEAD: i64 = 80;

/// How reachable (email, phone), known (name, company) and warm (source) a lead is.
pub fn lead_score(lead: &Record) -> i64 {
    let has = |f: &str| {
        lead.get(f)
            .and_then(Value::as_str)
            .is_some_and(|v| !v.trim().is_empty())
    };
    let mut score = 0;
    if lead
        .get("email")
        .and_then(Value::as_str)
        .is_some_and(useful_email)
    {
        score += 30;
    }
    if has("phone") {
        score += 20;
    }
    if has("company_name") {
        score += 20;
    }
    if has("first_name") {
        score += 10;
    }
    score += match lead.get("source").and_then(Value::as_str) {
        Some("Referral" | "Partner") => 20,
        Some("Event") => 15,
        Some("Web" | "Phone") => 10,
        Some(_) => 5,
        None => 0,
    };
    score.min(100)
}

crm_plugin_sdk::export_plugin!(DataQuality);

/// Digits only, keeping a leading `+`.
pub fn normalise_phone(phone: &str) -> String {
    let trimmed = phone.trim();
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    if trimmed.starts_with('+') {
        format!("+{digits}")
    } else {
        digits
    }
}

/// Domains that hand out addresses for one use.
const THROWAWAY_DOMAINS: [&str; 4] = [
    "mailinator.com",
    "10minutemail.com",
    "guerrillamail.com",
    "tempmail.com",
];

/// A local part and a domain whose top-level label is at least two letters, not at
/// a throwaway domain, without `..`.
pub fn useful_email(email: &str) -> bool {
    let Some((local, domain)) = email.trim().rsplit_once('@') else {
        return false;
    };
    let domain = domain.to_ascii_lowercase();
    let tld = domain.rsplit('.').next().unwrap_or("");
    !local.is_empty()
        && !email.contains("..")
        && tld.len() >= 2
        && tld.chars().all(|c| c.is_ascii_alphabetic())
        && !THROWAWAY_DOMAINS.contains(&domain.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_keep_their_digits_and_plus() {
        assert_eq!(normalise_phone(" +98 (21) 123-45 "), "+982112345");
        assert_eq!(normalise_phone("0712 345 678"), "0712345678");
    }

    #[test]
    fn a_reachable_referred_lead_is_hot_and_a_bare_one_is_cold() {
        let lead = |v: Value| v.as_object().unwrap().clone();
        let hot = lead(crm_plugin_sdk::json!({
            "first_name": "Leyla", "last_name": "Karimi", "email": "leyla@acme.example",
            "phone": "+98211234", "company_name": "Acme", "source": "Referral"
        }));
        assert_eq!(lead_score(&hot), 100);
        let cold =
            lead(crm_plugin_sdk::json!({"last_name": "Karimi", "email": "x@mailinator.com"}));
        assert_eq!(lead_score(&cold), 0);
    }

    #[test]
    fn throwaway_and_unreachable_emails_are_not_useful() {
        assert!(useful_email("leyla@acme.example"));
        assert!(!useful_email("leyla@Mailinator.com"));
        assert!(!useful_email("leyla@acme.c"));
        assert!(!useful_email("leyla@10.0.0.1"));
        assert!(!useful_email("leyla..k@acme.example"));
        assert!(!useful_email("leyla.acme.example"));
    }
}
