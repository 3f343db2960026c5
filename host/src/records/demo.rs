//! Sample data for a first look (`CRM_DEMO=1`): a few companies with contacts, deals,
//! activities and notes, written through the records service like any client's data.

use serde_json::{Map, Value, json};

use super::RecordError;
use super::service::RecordService;
use crate::auth::Actor;

/// Seeds the sample records when the CRM holds no companies yet; returns how many.
pub async fn seed(records: &RecordService, admin: &Actor) -> Result<usize, RecordError> {
    if !records
        .list(admin, "companies", "limit=1")
        .await?
        .items
        .is_empty()
    {
        return Ok(0);
    }
    let mut count = 0;
    let companies = [
        ("Acme Trading", "Retail", "Tehran", 120),
        ("Baobab Logistics", "Services", "Nairobi", 45),
        ("Nordlicht Energie", "Manufacturing", "Hamburg", 800),
    ];
    let people = [
        ("Leyla", "Karimi"),
        ("Amani", "Njoroge"),
        ("Jonas", "Weber"),
    ];
    for (i, ((name, industry, city, employees), (first, last))) in
        companies.into_iter().zip(people).enumerate()
    {
        let company = create(
            records,
            admin,
            "companies",
            json!({"name": name, "industry": industry, "city": city, "employees": employees}),
        )
        .await?;
        let email = format!(
            "{}@{}.example",
            first.to_lowercase(),
            name.split(' ').next().unwrap_or("x").to_lowercase()
        );
        let contact = create(
            records,
            admin,
            "contacts",
            json!({"first_name": first, "last_name": last, "email": email, "company": company, "job_title": "Purchasing"}),
        )
        .await?;
        let status = ["new", "in progress", "won"][i];
        let deal = create(
            records,
            admin,
            "deals",
            json!({"name": format!("{name}: annual contract"), "amount": 5000.0 * (i as f64 + 1.0), "status": status,
                   "close_date": format!("2026-12-{:02}", 10 + i * 5), "company": company, "contact": contact, "probability": 30 + 30 * i}),
        )
        .await?;
        create(
            records,
            admin,
            "activities",
            json!({"kind": "meeting", "topic": "Needs and budget", "starts_at": format!("2026-11-{:02}T09:30:00Z", 24 + i),
                   "status": if i == 2 { "completed" } else { "new" }, "result": if i == 2 { "Signed" } else { "" },
                   "contact": contact, "company": company, "deal": deal}),
        )
        .await?;
        create(records, admin, "notes", json!({"title": "First call", "body": format!("{first} asked for a quote."), "contact": contact})).await?;
        count += 5;
    }
    create(records, admin, "leads", json!({"first_name": "Sara", "last_name": "Lind", "company_name": "Lind Design", "source": "Web"})).await?;
    Ok(count + 1)
}

async fn create(
    records: &RecordService,
    admin: &Actor,
    object: &str,
    body: Value,
) -> Result<Value, RecordError> {
    let body: Map<String, Value> = body.as_object().cloned().unwrap_or_default();
    Ok(Value::String(
        records.create(admin, object, &body).await?.id,
    ))
}
