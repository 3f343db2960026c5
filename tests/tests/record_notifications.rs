//! The host's notifications about records, on both backends: assigned to you (an
//! owner or a user field), your deal moved, you were mentioned; never about your own
//! doing, never about a record you may not read, each once.

use std::time::Duration;

use crm_tests::reqwest::StatusCode;
use crm_tests::{Backend, Client, Server, eventually, json, on_both_backends};
use serde_json::Value;

on_both_backends!(people_hear_about_assignments_deal_moves_and_mentions,);

async fn titles(client: &Client) -> Vec<(String, String)> {
    let got = client.get("/api/v1/notifications").await;
    assert_eq!(got.status, StatusCode::OK);
    let mut items: Vec<(String, String)> = got.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["title"].as_str().unwrap_or_default().to_string(),
                n["link"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    items.reverse(); // oldest first
    items
}

async fn wait_for(client: &Client, count: usize) -> Vec<(String, String)> {
    eventually(Duration::from_secs(20), "the notifications", || async {
        let items = titles(client).await;
        (items.len() >= count).then_some(items)
    })
    .await
}

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

async fn people_hear_about_assignments_deal_moves_and_mentions(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let support = admin.department("Support").await;
    let (sam_id, sam) = srv.member("sam@example.com", &sales, "member").await;
    let (omid_id, omid) = srv.member("omid@example.com", &sales, "member").await;

    // A deal given to Sam, then moved on by the admin: Sam hears both.
    let deal = admin
        .create(
            "deals",
            json!({"name": "Acme renewal", "owner": sam_id, "department": sales}),
        )
        .await;
    let moved = admin
        .patch(
            &format!("/api/v1/records/deals/{}", id(&deal)),
            json!({"status": "in progress"}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    let link = format!("/records/deals/{}", id(&deal));
    assert_eq!(
        wait_for(&sam, 2).await,
        [
            (
                "Deal assigned to you: Acme renewal".to_string(),
                link.clone()
            ),
            (
                "Deal \"Acme renewal\" moved to in progress".to_string(),
                link.clone()
            ),
        ]
    );
    let first = sam.get("/api/v1/notifications").await;
    assert_eq!(
        first.body["items"][0]["body"],
        "Administrator changed its status from new to in progress."
    );

    // An activity assigned to Omid.
    let call = admin
        .create(
            "activities",
            json!({"topic": "Call Leyla", "assigned_to": omid_id, "department": sales}),
        )
        .await;
    let omid_heard = wait_for(&omid, 1).await;
    assert_eq!(
        omid_heard[0],
        (
            "Activity assigned to you: Call Leyla".to_string(),
            format!("/records/activities/{}", id(&call))
        )
    );

    // Sam moves his own deal: nobody is told of their own doing.
    let own = sam
        .patch(
            &format!("/api/v1/records/deals/{}", id(&deal)),
            json!({"status": "won"}),
        )
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);

    // Mentions: Omid in a Sales note (once, not again when it is edited); Sam in a
    // Support note he may not read (not told).
    let note = admin
        .create(
            "notes",
            json!({"body": "Please call them back, @Omid@example.com.", "department": sales}),
        )
        .await;
    admin
        .patch(
            &format!("/api/v1/records/notes/{}", id(&note)),
            json!({"body": "Please call them back, @omid@example.com. Done?"}),
        )
        .await;
    admin
        .create(
            "notes",
            json!({"body": "Secret, @sam@example.com", "department": support}),
        )
        .await;
    let omid_heard = wait_for(&omid, 2).await;
    assert!(
        omid_heard[1].0.starts_with("Administrator mentioned you: "),
        "{omid_heard:?}"
    );
    assert_eq!(omid_heard[1].1, format!("/records/notes/{}", id(&note)));
    // Everything above has been read by the notifier once a later event is: a marker
    // event for Omid, then the counts are final.
    admin
        .create(
            "activities",
            json!({"topic": "Marker", "assigned_to": omid_id, "department": sales}),
        )
        .await;
    let omid_heard = wait_for(&omid, 3).await;
    assert_eq!(omid_heard.len(), 3, "{omid_heard:?}");
    assert_eq!(omid_heard[2].0, "Activity assigned to you: Marker");
    assert_eq!(
        titles(&sam).await.len(),
        2,
        "nothing of his own doing or unreadable"
    );
}
