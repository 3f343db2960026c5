//! Calendar feeds against a real server on both backends: a user's private iCalendar
//! address serves their activities (escaped and folded as RFC 5545 asks, cancelled
//! ones marked), without signing in; a department feed shows only what its user may
//! read; a removed feed stops at once; bad feeds are refused.

use crm_tests::reqwest::StatusCode;
use crm_tests::{Backend, Server, json, on_both_backends};

on_both_backends!(
    a_private_feed_serves_the_users_activities_as_icalendar,
    feeds_honour_read_rights_and_stop_when_removed,
);

fn in_days(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days))
        .format("%Y-%m-%dT10:00:00Z")
        .to_string()
}

/// The feed's lines, unfolded.
fn lines(ics: &str) -> Vec<String> {
    ics.replace("\r\n ", "")
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

async fn a_private_feed_serves_the_users_activities_as_icalendar(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let me = admin.get("/api/v1/auth/me").await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (other, _) = srv.user("omid@example.com", false).await;
    let tomorrow = admin
        .create(
            "activities",
            json!({"kind": "meeting", "topic": "Acme; renewal, terms", "starts_at": in_days(1),
                   "ends_at": in_days(1).replace("10:00", "11:30"), "assigned_to": me,
                   "result": "Bring the offer\nand the contract"}),
        )
        .await;
    let cancelled = admin
        .create(
            "activities",
            json!({"kind": "call", "topic": "Call Leyla", "starts_at": in_days(2), "status": "cancelled", "assigned_to": me}),
        )
        .await;
    admin
        .create(
            "activities",
            json!({"topic": "Omid's task", "starts_at": in_days(1), "assigned_to": other}),
        )
        .await;
    admin
        .create(
            "activities",
            json!({"topic": "Long ago", "starts_at": in_days(-200), "assigned_to": me}),
        )
        .await;

    let made = admin
        .post(
            "/api/v1/calendar-feeds",
            json!({"scope": "me", "name": "My CRM"}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let url = made.body["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("/ics/") && url.ends_with(".ics"), "{url}");
    let listed = admin.get("/api/v1/calendar-feeds").await;
    assert_eq!(listed.body[0]["name"], "My CRM");
    assert_eq!(listed.body[0].get("url"), None, "the address is shown once");

    // A calendar app fetches it without signing in.
    let feed = srv.anonymous().get(&url).await;
    assert_eq!(feed.status, StatusCode::OK);
    assert_eq!(
        feed.header("content-type"),
        Some("text/calendar; charset=utf-8")
    );
    assert!(feed.text.contains("\r\n"), "CRLF lines");
    assert!(
        feed.text.split("\r\n").all(|l| l.len() <= 75),
        "folded at 75 octets"
    );
    let lines = lines(&feed.text);
    assert_eq!(lines.first().map(String::as_str), Some("BEGIN:VCALENDAR"));
    assert_eq!(lines.last().map(String::as_str), Some("END:VCALENDAR"));
    assert!(lines.contains(&"X-WR-CALNAME:My CRM".to_string()));
    assert_eq!(
        lines.iter().filter(|l| *l == "BEGIN:VEVENT").count(),
        2,
        "mine in the window only: {lines:?}"
    );
    let tomorrow_id = tomorrow["id"].as_str().unwrap();
    assert!(lines.contains(&format!("UID:{tomorrow_id}@crm")));
    assert!(lines.contains(&"SUMMARY:Acme\\; renewal\\, terms".to_string()));
    assert!(lines.contains(&"DESCRIPTION:Bring the offer\\nand the contract".to_string()));
    let start = in_days(1).replace(['-', ':'], "");
    assert!(lines.contains(&format!("DTSTART:{start}")), "{lines:?}");
    assert!(lines.contains(&format!("DTEND:{}", start.replace("T1000", "T1130"))));
    assert!(lines.contains(&"CATEGORIES:meeting".to_string()));
    let cancelled_at = lines
        .iter()
        .position(|l| *l == format!("UID:{}@crm", cancelled["id"].as_str().unwrap()))
        .unwrap();
    assert!(lines[cancelled_at..].contains(&"STATUS:CANCELLED".to_string()));
    assert!(!feed.text.contains("Omid's task") && !feed.text.contains("Long ago"));
}

async fn feeds_honour_read_rights_and_stop_when_removed(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let support = admin.department("Support").await;
    admin
        .create(
            "activities",
            json!({"topic": "Support visit", "starts_at": in_days(1), "department": support}),
        )
        .await;
    admin
        .create(
            "activities",
            json!({"topic": "Sales visit", "starts_at": in_days(1), "department": sales}),
        )
        .await;
    let (_, sam) = srv.member("sam@example.com", &sales, "member").await;

    // Sam may read Sales' activities, not Support's: a Support feed is empty.
    let support_feed = sam
        .post(
            "/api/v1/calendar-feeds",
            json!({"scope": format!("department:{support}")}),
        )
        .await;
    assert_eq!(
        support_feed.status,
        StatusCode::CREATED,
        "{}",
        support_feed.body
    );
    let got = srv
        .anonymous()
        .get(support_feed.body["url"].as_str().unwrap())
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(!got.text.contains("BEGIN:VEVENT"), "{}", got.text);
    let sales_feed = sam
        .post(
            "/api/v1/calendar-feeds",
            json!({"scope": format!("department:{sales}")}),
        )
        .await;
    let url = sales_feed.body["url"].as_str().unwrap().to_string();
    let got = srv.anonymous().get(&url).await;
    assert!(got.text.contains("SUMMARY:Sales visit"), "{}", got.text);
    assert!(!got.text.contains("Support visit"));

    // Removed: the address stops at once; another user cannot remove it.
    let id = sales_feed.body["id"].as_str().unwrap();
    assert_eq!(
        admin
            .delete(&format!("/api/v1/calendar-feeds/{id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        sam.delete(&format!("/api/v1/calendar-feeds/{id}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        srv.anonymous().get(&url).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        srv.anonymous().get("/ics/not-a-token.ics").await.status,
        StatusCode::NOT_FOUND
    );

    // Bad feeds.
    let bad = sam
        .post(
            "/api/v1/calendar-feeds",
            json!({"scope": "department:nope", "name": ""}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut fields = bad.error_fields();
    fields.sort();
    assert_eq!(fields, ["name", "scope"]);
    let extra = sam
        .post(
            "/api/v1/calendar-feeds",
            json!({"scope": "me", "colour": "red"}),
        )
        .await;
    assert_eq!(extra.status, StatusCode::UNPROCESSABLE_ENTITY);
}
