//! The standard objects seeded on first start. They are ordinary metadata: an admin
//! can add fields, change labels, and extend picklists like on any custom object.

use serde_json::{Value, json};

use super::metadata::{Field, ObjectType};
use crate::db;

/// Companies, contacts, leads, deals, activities, notes, the email outbox and quotas.
pub fn standard_objects() -> Vec<ObjectType> {
    let industries = json!([
        "Technology",
        "Manufacturing",
        "Retail",
        "Services",
        "Finance",
        "Healthcare",
        "Education",
        "Government",
        "Other"
    ]);
    let sources = json!([
        "Web",
        "Referral",
        "Event",
        "Phone",
        "Partner",
        "Advertising",
        "Other"
    ]);
    vec![
        object(
            "companies",
            "Company",
            "Companies",
            "Organisations you sell to or work with.",
            json!([
                {"name": "name", "type": "text", "required": true, "searchable": true, "indexed": true},
                {"name": "website", "type": "url"},
                {"name": "industry", "type": "picklist", "values": industries},
                {"name": "phone", "type": "phone", "searchable": true},
                {"name": "email", "type": "email", "searchable": true},
                {"name": "city", "type": "text", "searchable": true},
                {"name": "country", "type": "text"},
                {"name": "employees", "type": "integer", "min": 0},
                {"name": "annual_revenue", "type": "currency", "min": 0},
                {"name": "description", "type": "long_text"}
            ]),
        ),
        object(
            "contacts",
            "Contact",
            "Contacts",
            "People at your clients and partners.",
            json!([
                {"name": "first_name", "type": "text", "searchable": true},
                {"name": "last_name", "type": "text", "required": true, "searchable": true, "indexed": true},
                {"name": "email", "type": "email", "searchable": true, "indexed": true},
                {"name": "phone", "type": "phone", "searchable": true},
                {"name": "mobile", "type": "phone", "searchable": true},
                {"name": "job_title", "type": "text"},
                {"name": "company", "type": "reference", "target": "companies", "indexed": true},
                {"name": "notes", "type": "long_text"}
            ]),
        ),
        object(
            "leads",
            "Lead",
            "Leads",
            "Prospects not yet qualified: a lead becomes a contact, a company and a deal.",
            json!([
                {"name": "first_name", "type": "text", "searchable": true},
                {"name": "last_name", "type": "text", "required": true, "searchable": true},
                {"name": "company_name", "type": "text", "searchable": true},
                {"name": "email", "type": "email", "searchable": true, "indexed": true},
                {"name": "phone", "type": "phone", "searchable": true},
                {"name": "source", "type": "picklist", "values": sources},
                {"name": "status", "type": "picklist", "required": true, "indexed": true,
                 "values": ["new", "in progress", "qualified", "disqualified", "completed"], "default": "new"},
                {"name": "score", "type": "integer", "min": 0, "max": 100},
                {"name": "notes", "type": "long_text"}
            ]),
        ),
        object(
            "deals",
            "Deal",
            "Deals",
            "Opportunities to sell, with amount, close date and status.",
            json!([
                {"name": "name", "type": "text", "required": true, "searchable": true, "indexed": true},
                {"name": "amount", "type": "currency", "min": 0},
                {"name": "close_date", "type": "date", "indexed": true},
                {"name": "status", "type": "picklist", "required": true, "indexed": true,
                 "values": ["new", "in progress", "won", "lost"], "default": "new"},
                {"name": "probability", "type": "integer", "min": 0, "max": 100},
                {"name": "company", "type": "reference", "target": "companies", "indexed": true},
                {"name": "contact", "type": "reference", "target": "contacts"},
                {"name": "description", "type": "long_text"}
            ]),
        ),
        object(
            "activities",
            "Activity",
            "Activities",
            "Meetings, calls, tasks and emails: when, about what, with what result.",
            json!([
                {"name": "kind", "type": "picklist", "required": true, "values": ["meeting", "call", "task", "email"], "default": "task"},
                {"name": "topic", "type": "text", "required": true, "searchable": true},
                {"name": "starts_at", "type": "datetime", "indexed": true},
                {"name": "ends_at", "type": "datetime"},
                {"name": "status", "type": "picklist", "required": true, "indexed": true,
                 "values": ["new", "in progress", "completed", "cancelled"], "default": "new"},
                {"name": "result", "type": "long_text"},
                {"name": "contact", "type": "reference", "target": "contacts", "indexed": true},
                {"name": "company", "type": "reference", "target": "companies", "indexed": true},
                {"name": "deal", "type": "reference", "target": "deals", "indexed": true},
                {"name": "assigned_to", "type": "user", "indexed": true},
                {"name": "lead", "type": "reference", "target": "leads", "indexed": true},
                {"name": "direction", "type": "picklist", "values": ["inbound", "outbound"]},
                {"name": "phone", "type": "phone", "searchable": true},
                {"name": "duration_seconds", "type": "integer", "min": 0},
                {"name": "recording_url", "type": "url", "max_length": 2000},
                {"name": "call_id", "type": "text", "indexed": true, "max_length": 200},
                {"name": "ical_uid", "type": "text", "indexed": true, "max_length": 500,
                 "help_text": "The UID of the calendar event this activity was imported from."}
            ]),
        ),
        object(
            "notes",
            "Note",
            "Notes",
            "Free text kept with a contact, company or deal.",
            json!([
                {"name": "title", "type": "text", "searchable": true},
                {"name": "body", "type": "long_text", "required": true, "searchable": true},
                {"name": "contact", "type": "reference", "target": "contacts", "indexed": true},
                {"name": "company", "type": "reference", "target": "companies", "indexed": true},
                {"name": "deal", "type": "reference", "target": "deals", "indexed": true}
            ]),
        ),
        object(
            "outgoing_emails",
            "Outgoing email",
            "Outgoing emails",
            "Emails waiting to be sent and what became of them: the CRM delivers queued ones by SMTP when it is configured.",
            json!([
                {"name": "to", "type": "email", "required": true, "searchable": true, "indexed": true},
                {"name": "subject", "type": "text", "required": true, "searchable": true},
                {"name": "body", "type": "long_text"},
                {"name": "status", "type": "picklist", "required": true, "indexed": true,
                 "values": ["queued", "sending", "sent", "failed"], "default": "queued"},
                {"name": "attempts", "type": "integer", "min": 0},
                {"name": "last_error", "type": "long_text"},
                {"name": "sent_at", "type": "datetime"},
                {"name": "process_run", "type": "text"}
            ]),
        ),
        object(
            "quotas",
            "Quota",
            "Quotas",
            "Sales targets: the amount a user is to win in the period starting on a day (usually a month); the KPI dashboard compares won deals with them.",
            json!([
                {"name": "user", "type": "user", "required": true, "indexed": true},
                {"name": "starts_on", "type": "date", "required": true, "indexed": true,
                 "help_text": "The first day of the period, e.g. the first of the month."},
                {"name": "amount", "type": "currency", "required": true, "min": 0},
                {"name": "note", "type": "text"}
            ]),
        ),
    ]
}

fn object(
    name: &str,
    label: &str,
    label_plural: &str,
    description: &str,
    fields: Value,
) -> ObjectType {
    let mut fields: Vec<Field> =
        serde_json::from_value(fields).expect("standard fields are well formed");
    fields.iter_mut().for_each(Field::normalise);
    ObjectType {
        name: name.into(),
        label: label.into(),
        label_plural: label_plural.into(),
        description: description.into(),
        standard: true,
        fields,
        created_at: db::now(),
        updated_at: db::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_objects_pass_the_checks_admins_face() {
        let objects = standard_objects();
        let names: Vec<&str> = objects.iter().map(|o| o.name.as_str()).collect();
        for o in &objects {
            for f in &o.fields {
                assert_eq!(f.check_definition(&names), vec![], "{}.{}", o.name, f.name);
            }
        }
    }
}
