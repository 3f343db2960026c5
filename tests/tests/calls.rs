//! Call logging against a real server on both backends: a telephony system's call
//! event becomes a call activity on the contact with that number (written another
//! way), on a lead made for an unknown number and found again next time; a repeated
//! call_id logs nothing new, also when the retries arrive together; bad events are refused field by field; the poster's
//! rights decide what it may match.

use crm_tests::reqwest::StatusCode;
use crm_tests::{ADMIN_EMAIL, Backend, Server, json, on_both_backends};
use serde_json::Value;

on_both_backends!(
    a_call_is_logged_on_the_matching_contact_or_a_lead,
    bad_call_events_are_refused_and_rights_hold,
    retries_of_one_call_arriving_together_log_it_once,
);

const ROOT: &str = "00000000-0000-0000-0000-000000000001";

fn id(v: &Value) -> &str {
    v["id"].as_str().expect("an id")
}

async fn a_call_is_logged_on_the_matching_contact_or_a_lead(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let leyla = admin
        .create(
            "contacts",
            json!({"last_name": "Karimi", "first_name": "Leyla", "mobile": "+98 (21) 5555-1234"}),
        )
        .await;
    let me = admin.get("/api/v1/auth/me").await;

    // The PBX writes the number its own way: the digits decide.
    let call = json!({
        "caller": "021 5555 1234", "callee": "+1 555 0199", "direction": "inbound",
        "started_at": "2026-11-24T09:30:00+03:30", "duration_seconds": 125,
        "recording_url": "https://pbx.example/rec/1.mp3", "call_id": "pbx-1",
        "user": ADMIN_EMAIL
    });
    let logged = admin.post("/api/v1/calls", call.clone()).await;
    assert_eq!(logged.status, StatusCode::CREATED, "{}", logged.body);
    assert_eq!(logged.body["contact"], id(&leyla));
    assert_eq!(logged.body["lead"], Value::Null);
    assert_eq!(logged.body["lead_created"], false);
    let activity = &logged.body["activity"];
    assert_eq!(activity["kind"], "call");
    assert_eq!(activity["status"], "completed");
    assert_eq!(activity["direction"], "inbound");
    assert_eq!(activity["topic"], "Call from 021 5555 1234");
    assert_eq!(activity["starts_at"], "2026-11-24T06:00:00Z");
    assert_eq!(activity["ends_at"], "2026-11-24T06:02:05Z");
    assert_eq!(activity["duration_seconds"], 125);
    assert_eq!(activity["recording_url"], "https://pbx.example/rec/1.mp3");
    assert_eq!(activity["contact"], id(&leyla));
    assert_eq!(activity["assigned_to"], me.body["id"]);

    // The PBX retries: the same call_id logs nothing new.
    let again = admin.post("/api/v1/calls", call).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["duplicate"], true);
    assert_eq!(again.body["activity"]["id"], activity["id"]);
    let on_leyla = admin
        .get(&format!(
            "/api/v1/records/activities?filter[contact]={}",
            id(&leyla)
        ))
        .await;
    assert_eq!(on_leyla.body["items"].as_array().unwrap().len(), 1);

    // An unknown number: a lead is made, and found again by the next call.
    let out = admin
        .post(
            "/api/v1/calls",
            json!({"caller": "100", "callee": "+1 555 0100", "direction": "outbound",
                   "started_at": "2026-11-24T10:00:00Z", "duration_seconds": 60}),
        )
        .await;
    assert_eq!(out.status, StatusCode::CREATED, "{}", out.body);
    assert_eq!(out.body["contact"], Value::Null);
    assert_eq!(out.body["lead_created"], true);
    let lead_id = out.body["lead"].as_str().unwrap().to_string();
    assert_eq!(out.body["activity"]["lead"], lead_id.as_str());
    assert_eq!(out.body["activity"]["topic"], "Call to +1 555 0100");
    let lead = admin.get(&format!("/api/v1/records/leads/{lead_id}")).await;
    assert_eq!(lead.body["phone"], "+1 555 0100");
    assert_eq!(lead.body["source"], "Phone");
    assert_eq!(lead.body["status"], "new");
    let missed = admin
        .post(
            "/api/v1/calls",
            json!({"caller": "+15550100", "callee": "100", "direction": "inbound",
                   "started_at": "2026-11-24T11:00:00Z"}),
        )
        .await;
    assert_eq!(missed.status, StatusCode::CREATED, "{}", missed.body);
    assert_eq!(
        missed.body["lead"],
        lead_id.as_str(),
        "the same lead, not a second"
    );
    assert_eq!(missed.body["lead_created"], false);
    assert_eq!(
        missed.body["activity"]["topic"],
        "Missed call from +15550100"
    );
    let leads = admin.get("/api/v1/records/leads?q=555").await;
    assert_eq!(leads.body["items"].as_array().unwrap().len(), 1);
}

async fn bad_call_events_are_refused_and_rights_hold(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let bad = admin
        .post(
            "/api/v1/calls",
            json!({"caller": "unknown", "callee": "+1 555 0100", "direction": "inbound",
                   "started_at": "yesterday", "duration_seconds": -5,
                   "recording_url": "ftp://pbx.example/1", "user": "nobody@example.com"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let mut fields = bad.error_fields();
    fields.sort();
    assert_eq!(
        fields,
        [
            "caller",
            "duration_seconds",
            "recording_url",
            "started_at",
            "user"
        ]
    );
    let sideways = admin
        .post(
            "/api/v1/calls",
            json!({"caller": "+1 555 0100", "callee": "100", "direction": "sideways",
                   "started_at": "2026-11-24T10:00:00Z"}),
        )
        .await;
    assert_eq!(sideways.status, StatusCode::UNPROCESSABLE_ENTITY);
    let extra = admin
        .post(
            "/api/v1/calls",
            json!({"caller": "+1 555 0100", "callee": "100", "direction": "inbound",
                   "started_at": "2026-11-24T10:00:00Z", "colour": "blue"}),
        )
        .await;
    assert_eq!(extra.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A recording link over the field's 2,000 characters: refused before any lead is
    // made for the unknown number.
    let long = admin
        .post(
            "/api/v1/calls",
            json!({"caller": "+1 555 0123", "callee": "100", "direction": "inbound",
                   "started_at": "2026-11-24T10:00:00Z",
                   "recording_url": format!("https://pbx.example/{}", "a".repeat(2100))}),
        )
        .await;
    assert_eq!(
        long.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        long.body
    );
    assert_eq!(long.error_fields(), ["recording_url"]);
    let leads = admin.get("/api/v1/records/leads").await;
    assert_eq!(
        leads.body["items"].as_array().unwrap().len(),
        0,
        "no lead left behind"
    );
    let nothing = admin.get("/api/v1/records/activities").await;
    assert_eq!(
        nothing.body["items"].as_array().unwrap().len(),
        0,
        "nothing half-written"
    );

    // A Support contact's number, called by someone in Sales who cannot see it: the
    // call does not reveal or touch that contact; it goes on a lead of Sales.
    let sales = admin.department("Sales").await;
    let support = admin.department("Support").await;
    let hidden = admin
        .create(
            "contacts",
            json!({"last_name": "Hidden", "phone": "+44 20 7946 0958", "department": support}),
        )
        .await;
    let (_, sam) = srv.member("sam@example.com", &sales, "member").await;
    let call = sam
        .post(
            "/api/v1/calls",
            json!({"caller": "+44 20 7946 0958", "callee": "200", "direction": "inbound",
                   "started_at": "2026-11-24T12:00:00Z", "duration_seconds": 30}),
        )
        .await;
    assert_eq!(call.status, StatusCode::CREATED, "{}", call.body);
    assert_eq!(call.body["contact"], Value::Null);
    assert_eq!(call.body["lead_created"], true);
    assert_ne!(call.body["activity"]["contact"], hidden["id"]);
    let lead = admin
        .get(&format!(
            "/api/v1/records/leads/{}",
            call.body["lead"].as_str().unwrap()
        ))
        .await;
    assert_eq!(lead.body["department"], sales.as_str());

    // Many contacts Sam may not read share a number with one he may: they do not
    // hide it (only readable records are candidates).
    for n in 0..25 {
        admin
            .create(
                "contacts",
                json!({"last_name": format!("Support {n}"), "phone": "+255 22 555 7777", "department": support}),
            )
            .await;
    }
    let visible = admin
        .create(
            "contacts",
            json!({"last_name": "Visible", "phone": "+255 22 555 7777", "department": sales}),
        )
        .await;
    for n in 0..25 {
        admin
            .create(
                "contacts",
                json!({"last_name": format!("Later {n}"), "phone": "+255 22 555 7777", "department": support}),
            )
            .await;
    }
    let call = sam
        .post(
            "/api/v1/calls",
            json!({"caller": "+255 22 555 7777", "callee": "200", "direction": "inbound",
                   "started_at": "2026-11-24T12:05:00Z", "duration_seconds": 42}),
        )
        .await;
    assert_eq!(call.status, StatusCode::CREATED, "{}", call.body);
    assert_eq!(call.body["contact"], visible["id"], "{}", call.body);

    // No create right on activities: refused, nothing written.
    let (_, rita) = srv.member("rita@example.com", ROOT, "read_only").await;
    let refused = rita
        .post(
            "/api/v1/calls",
            json!({"caller": "+44 20 7946 0958", "callee": "200", "direction": "inbound",
                   "started_at": "2026-11-24T12:00:00Z"}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
}

/// A PBX that timed out on a call posts it again several times at once: one activity,
/// one lead for the unknown number, every retry answered with that activity.
async fn retries_of_one_call_arriving_together_log_it_once(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let call = json!({
        "caller": "+98 21 0000 777", "callee": "300", "direction": "inbound",
        "started_at": "2026-11-24T13:00:00Z", "duration_seconds": 42, "call_id": "pbx-burst"
    });
    let answers =
        futures_util::future::join_all((0..12).map(|_| admin.post("/api/v1/calls", call.clone())))
            .await;
    let created: Vec<_> = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .collect();
    assert_eq!(created.len(), 1, "one request logs the call");
    let activity = created[0].body["activity"]["id"].clone();
    for answer in &answers {
        assert!(
            answer.status == StatusCode::CREATED
                || (answer.status == StatusCode::OK && answer.body["duplicate"] == true),
            "{} {}",
            answer.status,
            answer.body
        );
        assert_eq!(answer.body["activity"]["id"], activity);
    }
    let activities = admin
        .get("/api/v1/records/activities?filter[call_id]=pbx-burst")
        .await;
    assert_eq!(activities.body["items"].as_array().unwrap().len(), 1);
    let leads = admin.get("/api/v1/records/leads").await;
    assert_eq!(
        leads.body["items"].as_array().unwrap().len(),
        1,
        "one lead for the unknown number"
    );

    // A call refused for a value (checked after the call_id was claimed) gives its
    // call_id up: the corrected retry logs it.
    let refused = admin
        .post(
            "/api/v1/calls",
            json!({"caller": "+98 21 0000 778", "callee": "300", "direction": "inbound",
                   "started_at": "2026-11-24T13:05:00Z", "call_id": "pbx-fixed",
                   "recording_url": format!("https://pbx.example/{}", "a".repeat(2100))}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fixed = admin
        .post(
            "/api/v1/calls",
            json!({"caller": "+98 21 0000 778", "callee": "300", "direction": "inbound",
                   "started_at": "2026-11-24T13:05:00Z", "call_id": "pbx-fixed"}),
        )
        .await;
    assert_eq!(fixed.status, StatusCode::CREATED, "{}", fixed.body);
}
