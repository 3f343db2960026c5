//! Data quality: phone numbers are stored in one form (`+98 21 1234` becomes
//! `+98211234`), and an email a message could not usefully reach (a throwaway
//! domain, a one-letter or numeric top-level domain, `..`) is refused with a field
//! error before the record is written. The host already checks the basic shape.
//!
//! After a lead is saved, it scores the lead (0 to 100, from how reachable and how
//! warm it is) into the lead's `score` field, and tells the lead's owner once when a
//! lead turns hot (kv remembers who was told, since after-save may run twice).

use crm_plugin_sdk::{
    Committed, HookError, Plugin, Record, SaveContext, Value, invalid, kv, notify, records,
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
