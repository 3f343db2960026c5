//! Data quality: phone numbers are stored in one form (`+98 21 1234` becomes
//! `+98211234`), and an email a message could not usefully reach (a throwaway
//! domain, a one-letter or numeric top-level domain, `..`) is refused with a field
//! error before the record is written. The host already checks the basic shape.

use crm_plugin_sdk::{HookError, Plugin, Record, SaveContext, Value, invalid};

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
    fn throwaway_and_unreachable_emails_are_not_useful() {
        assert!(useful_email("leyla@acme.example"));
        assert!(!useful_email("leyla@Mailinator.com"));
        assert!(!useful_email("leyla@acme.c"));
        assert!(!useful_email("leyla@10.0.0.1"));
        assert!(!useful_email("leyla..k@acme.example"));
        assert!(!useful_email("leyla.acme.example"));
    }
}
