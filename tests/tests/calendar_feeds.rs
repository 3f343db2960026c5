//! Calendar feeds against a real server on both backends: a user's private iCalendar
//! address serves their activities (escaped and folded as RFC 5545 asks, cancelled
//! ones marked), without signing in; a department feed shows only what its user may
//! read; a removed feed stops at once; bad feeds are refused.

use crm_tests::reqwest::{Method, StatusCode};
use crm_tests::{Backend, Server, json, on_both_backends};

on_both_backends!(
    a_private_feed_serves_the_users_activities_as_icalendar,
    feeds_honour_read_rights_and_stop_when_removed,
    an_ics_file_imports_as_activities_once,
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

const OUTLOOK_EXPORT: &str = "BEGIN:VCALENDAR\r\n\
PRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN\r\n\
VERSION:2.0\r\n\
BEGIN:VTIMEZONE\r\n\
TZID:Iran Standard Time\r\n\
BEGIN:STANDARD\r\n\
DTSTART:16010101T000000\r\n\
TZOFFSETFROM:+0330\r\n\
TZOFFSETTO:+0330\r\n\
END:STANDARD\r\n\
END:VTIMEZONE\r\n\
BEGIN:VEVENT\r\n\
UID:call-1@example.com\r\n\
SUMMARY:Call Acme\\, about the renewal\r\n\
CATEGORIES:Call\r\n\
LOCATION:Phone\r\n\
DESCRIPTION:Ask about\\nthe terms\r\n\
DTSTART:20261201T093000Z\r\n\
DTEND:20261201T100000Z\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
UID:visit-2@example.com\r\n\
SUMMARY:Visit in Tehran\r\n\
DTSTART;TZID=\"Iran Standard Time\":20261202T100000\r\n\
DURATION:PT2H\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
UID:fair-3@example.com\r\n\
SUMMARY:Trade fair\r\n\
DTSTART;VALUE=DATE:20261203\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
UID:off-4@example.com\r\n\
SUMMARY:Called off\r\n\
STATUS:CANCELLED\r\n\
DTSTART:20261204T080000Z\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
SUMMARY:No uid\r\n\
DTSTART:20261205T080000Z\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
UID:weekly-5@example.com\r\n\
SUMMARY:Weekly sync\r\n\
RRULE:FREQ=WEEKLY;BYDAY=MO\r\n\
DTSTART:20261207T070000Z\r\n\
DTEND:20261207T073000Z\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
UID:weekly-5@example.com\r\n\
RECURRENCE-ID:20261214T070000Z\r\n\
SUMMARY:Weekly sync (moved)\r\n\
DTSTART:20261214T090000Z\r\n\
END:VEVENT\r\n\
END:VCALENDAR\r\n";

async fn an_ics_file_imports_as_activities_once(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let (sam_id, sam) = srv.member("sam@example.com", &sales, "member").await;
    let import = |client: &crm_tests::Client, body: &str| {
        let (client, body) = (client.clone(), body.to_string());
        async move {
            client
                .raw(
                    Method::POST,
                    "/api/v1/calendar/import",
                    "text/calendar",
                    body.into_bytes(),
                )
                .await
        }
    };
    let first = import(&sam, OUTLOOK_EXPORT).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["events"], 7);
    assert_eq!(first.body["created"], 5, "{}", first.body);
    let skipped: Vec<&str> = first.body["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reason"].as_str().unwrap())
        .collect();
    assert_eq!(skipped.len(), 2, "{}", first.body);
    assert!(skipped.iter().any(|r| r.contains("no UID")));
    assert!(skipped.iter().any(|r| r.contains("changed occurrence")));
    assert!(
        first.text.contains("'weekly-5@example.com' repeats"),
        "{}",
        first.text
    );

    let by_uid = |uid: &str| {
        let (sam, uid) = (sam.clone(), uid.to_string());
        async move {
            let found = sam
                .get(&format!(
                    "/api/v1/records/activities?filter[ical_uid]={uid}"
                ))
                .await;
            assert_eq!(
                found.body["items"].as_array().map(Vec::len),
                Some(1),
                "{uid}: {}",
                found.body
            );
            found.body["items"][0].clone()
        }
    };
    let call = by_uid("call-1@example.com").await;
    assert_eq!(call["kind"], "call");
    assert_eq!(call["topic"], "Call Acme, about the renewal");
    assert_eq!(call["result"], "Ask about\nthe terms\n\nWhere: Phone");
    assert_eq!(call["starts_at"], "2026-12-01T09:30:00Z");
    assert_eq!(call["ends_at"], "2026-12-01T10:00:00Z");
    assert_eq!(call["assigned_to"], sam_id.as_str());
    assert_eq!(call["department"], sales.as_str(), "made as Sam");
    let visit = by_uid("visit-2@example.com").await;
    assert_eq!(visit["kind"], "meeting");
    assert_eq!(
        visit["starts_at"], "2026-12-02T06:30:00Z",
        "10:00 in Tehran (+03:30)"
    );
    assert_eq!(visit["ends_at"], "2026-12-02T08:30:00Z");
    let fair = by_uid("fair-3@example.com").await;
    assert_eq!(fair["starts_at"], "2026-12-03T00:00:00Z");
    assert_eq!(fair["ends_at"], "2026-12-04T00:00:00Z", "a whole day");
    assert_eq!(by_uid("off-4@example.com").await["status"], "cancelled");

    // The same file again changes nothing; a newer copy updates what changed.
    let again = import(&sam, OUTLOOK_EXPORT).await;
    assert_eq!(
        (
            again.body["created"].clone(),
            again.body["unchanged"].clone()
        ),
        (json!(0), json!(5)),
        "{}",
        again.body
    );
    let renamed = import(
        &sam,
        &OUTLOOK_EXPORT.replace("Visit in Tehran", "Visit in Isfahan"),
    )
    .await;
    assert_eq!(renamed.body["updated"], 1, "{}", renamed.body);
    assert_eq!(renamed.body["unchanged"], 4);
    assert_eq!(
        by_uid("visit-2@example.com").await["topic"],
        "Visit in Isfahan"
    );

    // Sam's own calendar feed, imported back, finds the activities it came from.
    let count = |client: &crm_tests::Client| {
        let client = client.clone();
        async move {
            client
                .get("/api/v1/records/activities/aggregate")
                .await
                .body["groups"][0]["count"]
                .as_i64()
                .unwrap()
        }
    };
    let before = count(&sam).await;
    let feed = sam
        .post("/api/v1/calendar-feeds", json!({"scope": "me"}))
        .await;
    let ics = srv
        .anonymous()
        .get(feed.body["url"].as_str().unwrap())
        .await
        .text;
    assert!(ics.contains("BEGIN:VEVENT"), "{ics}");
    let round_trip = import(&sam, &ics).await;
    assert_eq!(round_trip.status, StatusCode::OK, "{}", round_trip.body);
    assert_eq!(round_trip.body["created"], 0, "{}", round_trip.body);
    assert_eq!(count(&sam).await, before, "nothing duplicated");

    // Bad files; a user who may not create activities.
    for (body, says) in [
        (
            "hello, not a calendar".as_bytes().to_vec(),
            "not NAME:value",
        ),
        (
            b"BEGIN:VEVENT\r\nEND:VEVENT\r\n".to_vec(),
            "no BEGIN:VCALENDAR",
        ),
        (
            b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VCALENDAR\r\n".to_vec(),
            "does not close",
        ),
        (vec![b'B', 0xff, 0xfe], "not UTF-8"),
    ] {
        let res = sam
            .raw(
                Method::POST,
                "/api/v1/calendar/import",
                "text/calendar",
                body,
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{says}: {}",
            res.text
        );
        assert!(res.text.contains(says), "{says}: {}", res.text);
    }
    let (_, reader) = srv.member("rita@example.com", &sales, "read_only").await;
    let refused = import(&reader, OUTLOOK_EXPORT).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(count(&sam).await, before);
}
