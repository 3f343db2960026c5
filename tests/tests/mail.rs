//! The email outbox: `outgoing_emails` records delivered by the real host to an
//! SMTP server (a small one in this test, standing in for the company's relay):
//! sent ones marked `sent`, a refused address `failed` with the server's reason,
//! and without `CRM_SMTP_URL` nothing leaves the outbox.

use std::time::Duration;

use crm_tests::reqwest::StatusCode;
use crm_tests::smtp::{Received, smtp_server};
use crm_tests::{Backend, Options, Server, eventually, json, on_both_backends};

on_both_backends!(queued_emails_are_sent_by_smtp_and_refusals_are_kept,);

async fn queued_emails_are_sent_by_smtp_and_refusals_are_kept(backend: Backend) {
    let (relay, inbox) = smtp_server().await;
    let srv = Server::start_with(
        backend,
        Options::default()
            .env("CRM_SMTP_URL", &format!("smtp://{relay}"))
            .env("CRM_SMTP_FROM", "CRM <crm@acme.example>"),
    )
    .await;
    let admin = srv.admin().await;
    let queue = |to: &str, subject: &str| {
        let admin = admin.clone();
        let body =
            json!({"to": to, "subject": subject, "body": "Thanks for the call.\nSee you Monday."});
        async move {
            let res = admin.post("/api/v1/records/outgoing_emails", body).await;
            assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
            assert_eq!(res.body["status"], "queued");
            res.body["id"].as_str().unwrap().to_string()
        }
    };
    let good = queue("ana@customer.example", "Thanks, Ana").await;
    let refused = queue("bob@refused.example", "Hello Bob").await;

    let settled = |id: String| {
        let admin = admin.clone();
        async move {
            eventually(
                Duration::from_secs(20),
                "the email to be settled",
                || async {
                    let res = admin
                        .get(&format!("/api/v1/records/outgoing_emails/{id}"))
                        .await;
                    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
                    let status = res.body["status"].as_str().unwrap_or_default();
                    (status == "sent" || status == "failed").then_some(res.body)
                },
            )
            .await
        }
    };
    let sent = settled(good).await;
    assert_eq!(sent["status"], "sent", "{sent}");
    assert!(sent["sent_at"].is_string(), "{sent}");
    let failed = settled(refused).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("no such mailbox"),
        "{failed}"
    );

    // The relay got the one it accepted, from the configured sender, with its text.
    let received = inbox.lock().unwrap().clone();
    let to_ana: Vec<&Received> = received
        .iter()
        .filter(|m| m.to.iter().any(|t| t.contains("ana@customer.example")))
        .collect();
    assert_eq!(to_ana.len(), 1, "{received:?}");
    let text = &to_ana[0].text;
    assert!(text.contains("Subject: Thanks, Ana"), "{text}");
    assert!(text.contains("crm@acme.example"), "{text}");
    assert!(text.contains("See you Monday."), "{text}");
    assert!(
        received
            .iter()
            .all(|m| m.to.iter().all(|t| !t.contains("refused.example")))
    );

    // The email's history says who queued it and what became of it.
    let history = admin
        .get(&format!(
            "/api/v1/records/outgoing_emails/{}/history",
            sent["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.body);
    let statuses: Vec<&serde_json::Value> = history
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["changes"].get("status").map(|s| &s["new"]))
        .collect();
    assert_eq!(
        statuses,
        [&json!("queued"), &json!("sending"), &json!("sent")],
        "{}",
        history.body
    );

    // Without CRM_SMTP_URL an email stays queued.
    drop(srv);
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let res = admin
        .post(
            "/api/v1/records/outgoing_emails",
            json!({"to": "ana@customer.example", "subject": "Kept"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let id = res.body["id"].as_str().unwrap();
    let kept = admin
        .get(&format!("/api/v1/records/outgoing_emails/{id}"))
        .await;
    assert_eq!(kept.body["status"], "queued", "{}", kept.body);
}
