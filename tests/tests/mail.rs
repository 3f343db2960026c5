//! The email outbox: `outgoing_emails` records delivered by the real host to an
//! SMTP server (a small one in this test, standing in for the company's relay):
//! sent ones marked `sent`, a refused address `failed` with the server's reason,
//! and without `CRM_SMTP_URL` nothing leaves the outbox.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crm_tests::reqwest::StatusCode;
use crm_tests::{Backend, Options, Server, eventually, json, on_both_backends};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

on_both_backends!(queued_emails_are_sent_by_smtp_and_refusals_are_kept,);

/// A message the SMTP server accepted: its recipients and its text.
#[derive(Clone, Debug)]
struct Received {
    to: Vec<String>,
    text: String,
}

/// An SMTP server on a free port that accepts every recipient but those at
/// `refused.example` (550); answers its address and what it received.
async fn smtp_server() -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let inbox: Arc<Mutex<Vec<Received>>> = Arc::default();
    let kept = inbox.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let inbox = kept.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 relay.test ESMTP\r\n").await.ok();
                let mut to = Vec::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let answer = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        "250 relay.test\r\n".to_string()
                    } else if upper.starts_with("RCPT TO:") {
                        if line.contains("@refused.example") {
                            "550 5.1.1 no such mailbox here\r\n".to_string()
                        } else {
                            to.push(line[8..].trim().to_string());
                            "250 ok\r\n".to_string()
                        }
                    } else if upper.starts_with("DATA") {
                        write.write_all(b"354 go on\r\n").await.ok();
                        let mut text = String::new();
                        while let Ok(Some(l)) = lines.next_line().await {
                            if l == "." {
                                break;
                            }
                            text.push_str(&l);
                            text.push('\n');
                        }
                        inbox.lock().unwrap().push(Received {
                            to: std::mem::take(&mut to),
                            text,
                        });
                        "250 queued\r\n".to_string()
                    } else if upper.starts_with("QUIT") {
                        write.write_all(b"221 bye\r\n").await.ok();
                        return;
                    } else if upper.starts_with("RSET") {
                        to.clear();
                        "250 ok\r\n".to_string()
                    } else {
                        "250 ok\r\n".to_string()
                    };
                    if write.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (address, inbox)
}

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
