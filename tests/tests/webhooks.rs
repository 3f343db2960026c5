//! Outgoing webhooks against a real server on both backends and a real HTTP receiver
//! in the test: subscribed events arrive signed (HMAC-SHA256, checked here), others do
//! not; an endpoint answering 500 is retried until it takes the delivery; one that
//! never answers in time fails after the last attempt and a replay delivers it;
//! bad settings and non-admins are refused.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crm_tests::reqwest::StatusCode;
use crm_tests::{Backend, Options, Server, eventually, json, on_both_backends};
use hmac::Mac;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

on_both_backends!(
    subscribed_events_arrive_signed_and_failures_are_retried_and_replayed,
    bad_webhooks_and_non_admins_are_refused,
);

/// How the receiver answers its next requests.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    Ok,
    Fail,
    Hang,
}

#[derive(Clone, Debug)]
struct Received {
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

type Script = Arc<Mutex<Vec<Answer>>>;

/// An HTTP endpoint on a free port: answers each request by the next scripted answer
/// (then 200), keeps what it received.
async fn receiver() -> (String, Script, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let script: Script = Arc::default();
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let (s, g) = (script.clone(), got.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (script, got) = (s.clone(), g.clone());
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buf = [0u8; 8192];
                let (head, body) = loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    data.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&data).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let head = text[..end].to_string();
                        let length: usize = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                (k.eq_ignore_ascii_case("content-length"))
                                    .then(|| v.trim().parse().ok())?
                            })
                            .unwrap_or(0);
                        if data.len() >= end + 4 + length {
                            let body = String::from_utf8_lossy(&data[end + 4..end + 4 + length])
                                .to_string();
                            break (head, body);
                        }
                    }
                };
                let headers = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
                    .collect();
                let answer = {
                    let mut script = script.lock().unwrap();
                    if script.is_empty() {
                        Answer::Ok
                    } else {
                        script.remove(0)
                    }
                };
                got.lock().unwrap().push(Received { headers, body });
                match answer {
                    Answer::Ok => {
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                            .await;
                    }
                    Answer::Fail => {
                        let _ = socket
                            .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                            .await;
                    }
                    Answer::Hang => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    (url, script, got)
}

fn signed_by(secret: &str, received: &Received) -> bool {
    let sig = received.header("x-crm-signature");
    let Some((t, v1)) = sig
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
    else {
        return false;
    };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", received.body).as_bytes());
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    want == v1
}

async fn subscribed_events_arrive_signed_and_failures_are_retried_and_replayed(backend: Backend) {
    let srv = Server::start_with(
        backend,
        Options::default()
            .env("CRM_WEBHOOK_RETRY_MS", "100,100")
            .env("CRM_WEBHOOK_TIMEOUT_MS", "500"),
    )
    .await;
    let admin = srv.admin().await;
    let (url, script, got) = receiver().await;
    let hook = admin
        .post(
            "/api/v1/webhooks",
            json!({"url": url, "events": ["record.created", "record.updated"], "objects": ["deals"]}),
        )
        .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.body);
    let hook_id = hook.body["id"].as_str().unwrap().to_string();
    let secret = hook.body["secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 64);
    let shown = admin.get(&format!("/api/v1/webhooks/{hook_id}")).await;
    assert_eq!(shown.body.get("secret"), None, "the secret is shown once");

    // Two subscribed events, two that are not (another object, a delete).
    let deal = admin.create("deals", json!({"name": "Acme renewal"})).await;
    let deal_id = deal["id"].as_str().unwrap();
    admin
        .create("contacts", json!({"last_name": "Karimi"}))
        .await;
    let patched = admin
        .patch(
            &format!("/api/v1/records/deals/{deal_id}"),
            json!({"amount": 1200}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    eventually(Duration::from_secs(20), "two deliveries", || async {
        (got.lock().unwrap().len() >= 2).then_some(())
    })
    .await;
    let mut received = got.lock().unwrap().clone();
    received.sort_by_key(|r| r.json()["seq"].as_i64());
    assert_eq!(received.len(), 2, "only subscribed events: {received:?}");
    let (created, updated) = (received[0].json(), received[1].json());
    assert_eq!(created["event"], "record.created");
    assert_eq!(created["object"], "deals");
    assert_eq!(created["record_id"], deal_id);
    assert_eq!(created["record"]["name"], "Acme renewal");
    assert_eq!(updated["event"], "record.updated");
    assert_eq!(updated["changes"]["amount"]["new"], 1200.0);
    for r in &received {
        assert!(signed_by(&secret, r), "signed with the secret: {r:?}");
        assert!(!signed_by("another secret", r));
        assert_eq!(r.header("x-crm-event"), r.json()["event"].as_str().unwrap());
        assert_eq!(r.header("x-crm-delivery"), r.json()["id"].as_str().unwrap());
        assert_eq!(r.header("content-type"), "application/json");
    }

    // An endpoint failing twice (500) then taking it: three attempts, delivered.
    *script.lock().unwrap() = vec![Answer::Fail, Answer::Fail];
    admin.create("deals", json!({"name": "Retried"})).await;
    let retried = eventually(Duration::from_secs(20), "the retried delivery", || async {
        let log = admin
            .get(&format!(
                "/api/v1/webhooks/{hook_id}/deliveries?status=delivered"
            ))
            .await;
        log.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["body"]["record"]["name"] == "Retried")
            .cloned()
    })
    .await;
    assert_eq!(retried["attempts"], 3, "{retried}");
    assert_eq!(retried["response_status"], 200);
    assert_eq!(retried["body"]["record"]["name"], "Retried");

    // An endpoint that never answers in time: failed after the last attempt, with
    // the reason; a replay delivers it once the endpoint is back.
    *script.lock().unwrap() = vec![Answer::Hang, Answer::Hang, Answer::Hang];
    admin.create("deals", json!({"name": "Timed out"})).await;
    let failed = eventually(Duration::from_secs(30), "the failed delivery", || async {
        let log = admin
            .get(&format!(
                "/api/v1/webhooks/{hook_id}/deliveries?status=failed"
            ))
            .await;
        let d = log.body["items"][0].clone();
        (!d.is_null()).then_some(d)
    })
    .await;
    assert_eq!(failed["attempts"], 3, "{failed}");
    assert_eq!(failed["last_error"], "no answer within 500 ms");
    assert_eq!(failed["body"]["record"]["name"], "Timed out");
    let delivery_id = failed["id"].as_str().unwrap();
    let replay = admin
        .post(
            &format!("/api/v1/webhooks/{hook_id}/deliveries/{delivery_id}/replay"),
            json!({}),
        )
        .await;
    assert_eq!(replay.status, StatusCode::ACCEPTED, "{}", replay.body);
    eventually(Duration::from_secs(20), "the replayed delivery", || async {
        let log = admin
            .get(&format!(
                "/api/v1/webhooks/{hook_id}/deliveries?status=delivered"
            ))
            .await;
        log.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == delivery_id)
            .then_some(())
    })
    .await;

    // Paused: events wait; resumed: they are sent.
    let paused = admin
        .patch(
            &format!("/api/v1/webhooks/{hook_id}"),
            json!({"active": false}),
        )
        .await;
    assert_eq!(paused.body["active"], false);
    let before = got.lock().unwrap().len();
    admin.create("deals", json!({"name": "While paused"})).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        got.lock().unwrap().len(),
        before,
        "nothing sent while paused"
    );
    admin
        .patch(
            &format!("/api/v1/webhooks/{hook_id}"),
            json!({"active": true}),
        )
        .await;
    eventually(
        Duration::from_secs(20),
        "the delivery after resuming",
        || async {
            got.lock()
                .unwrap()
                .iter()
                .any(|r| r.json()["record"]["name"] == "While paused")
                .then_some(())
        },
    )
    .await;
}

async fn bad_webhooks_and_non_admins_are_refused(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let bad = admin
        .post(
            "/api/v1/webhooks",
            json!({"url": "ftp://example.com/x", "events": ["record.exploded"], "objects": ["starships"]}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let mut fields = bad.error_fields();
    fields.sort();
    assert_eq!(fields, ["events", "objects", "url"]);
    let none = admin
        .post(
            "/api/v1/webhooks",
            json!({"url": "https://example.com/x", "events": []}),
        )
        .await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    let extra = admin
        .post(
            "/api/v1/webhooks",
            json!({"url": "https://example.com/x", "events": ["record.created"], "secret": "mine"}),
        )
        .await;
    assert_eq!(
        extra.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown keys are refused"
    );
    assert_eq!(
        admin.get("/api/v1/webhooks").await.body,
        json!([]),
        "nothing half-made"
    );
    let (_, member) = srv
        .member(
            "sam@example.com",
            "00000000-0000-0000-0000-000000000001",
            "member",
        )
        .await;
    let denied = member
        .post(
            "/api/v1/webhooks",
            json!({"url": "https://example.com/x", "events": ["record.created"]}),
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(
        member.get("/api/v1/webhooks").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        admin.get("/api/v1/webhooks/nope").await.status,
        StatusCode::NOT_FOUND
    );
}
