//! The host's notifications about records, on both backends: assigned to you (an
//! owner or a user field), your deal moved, you were mentioned; never about your own
//! doing, never about a record you may not read, each once.

use std::time::Duration;

use crm_tests::reqwest::StatusCode;
use crm_tests::smtp::smtp_server;
use crm_tests::{Backend, Client, Options, Server, eventually, json, on_both_backends};
use serde_json::Value;

on_both_backends!(
    people_hear_about_assignments_deal_moves_and_mentions,
    notifications_are_emailed_to_those_who_want_them,
    the_feed_shows_what_changed_with_the_readers_rights,
);

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

async fn notifications_are_emailed_to_those_who_want_them(backend: Backend) {
    let (relay, inbox) = smtp_server().await;
    let srv = Server::start_with(
        backend,
        Options::default()
            .env("CRM_SMTP_URL", &format!("smtp://{relay}"))
            .env("CRM_SMTP_FROM", "crm@acme.example")
            .env("CRM_PUBLIC_URL", "https://crm.acme.example/"),
    )
    .await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let (ann_id, ann) = srv.member("ann@example.com", &sales, "member").await;
    let (bob_id, bob) = srv.member("bob@example.com", &sales, "member").await;
    let settings = bob.get("/api/v1/notifications/settings").await;
    assert_eq!(
        settings.body,
        json!({"email": true, "email_available": true})
    );
    let off = bob
        .put("/api/v1/notifications/settings", json!({"email": false}))
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    assert_eq!(off.body["email"], false);
    for bad in [json!({"email": "no"}), json!({"email": false, "sms": true})] {
        let res = bob.put("/api/v1/notifications/settings", bad.clone()).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            res.body
        );
    }

    let deal = admin
        .create(
            "deals",
            json!({"name": "Acme renewal", "owner": ann_id, "department": sales}),
        )
        .await;
    admin
        .create(
            "deals",
            json!({"name": "Beta order", "owner": bob_id, "department": sales}),
        )
        .await;
    // Ann gets the email copy, with the link to the deal; the notification says so.
    let text = eventually(Duration::from_secs(20), "Ann's email", || async {
        let received = inbox.lock().unwrap().clone();
        received
            .into_iter()
            .find(|m| m.to.iter().any(|t| t.contains("ann@example.com")))
            // Quoted-printable: long lines are cut with a soft break.
            .map(|m| m.text.replace("=\n", ""))
    })
    .await;
    assert!(
        text.contains("Subject: Deal assigned to you: Acme renewal"),
        "{text}"
    );
    assert!(text.contains("crm@acme.example"), "{text}");
    assert!(
        text.contains(&format!(
            "https://crm.acme.example/records/deals/{}",
            id(&deal)
        )),
        "{text}"
    );
    let state = eventually(Duration::from_secs(20), "the copy marked sent", || async {
        let got = ann.get("/api/v1/notifications").await;
        let email = got.body["items"][0]["email"].as_str().map(String::from);
        (email.as_deref() == Some("sent")).then_some(got.body)
    })
    .await;
    assert_eq!(state["items"].as_array().unwrap().len(), 1, "{state}");
    // Bob turned emails off: told in the app only.
    let told = wait_for(&bob, 1).await;
    assert_eq!(told[0].0, "Deal assigned to you: Beta order");
    let listed = bob.get("/api/v1/notifications").await;
    assert_eq!(listed.body["items"][0]["email"], serde_json::Value::Null);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let received = inbox.lock().unwrap().clone();
    assert!(
        received
            .iter()
            .all(|m| m.to.iter().all(|t| !t.contains("bob@example.com"))),
        "{received:?}"
    );
    assert_eq!(received.len(), 1, "one email, once: {received:?}");
}

async fn the_feed_shows_what_changed_with_the_readers_rights(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let support = admin.department("Support").await;
    let (sam_id, sam) = srv.member("sam@example.com", &sales, "member").await;
    let (omid_id, omid) = srv.member("omid@example.com", &sales, "member").await;
    let deal = admin
        .create(
            "deals",
            json!({"name": "Acme renewal", "amount": 100, "owner": sam_id, "department": sales}),
        )
        .await;
    admin
        .create(
            "contacts",
            json!({"last_name": "Leyla", "owner": sam_id, "department": sales}),
        )
        .await;
    omid.create("deals", json!({"name": "Omid's own"})).await;
    admin
        .create(
            "deals",
            json!({"name": "Support deal", "department": support}),
        )
        .await;
    let changed = admin
        .patch(
            &format!("/api/v1/records/deals/{}", id(&deal)),
            json!({"amount": 250}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);

    // Sam's own feed: his records, newest first, with titles and names.
    let mine = sam.get("/api/v1/feed").await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    let items = mine.body["items"].as_array().unwrap();
    let seen: Vec<(&str, &str, &str)> = items
        .iter()
        .map(|i| {
            (
                i["record_title"].as_str().unwrap(),
                i["action"].as_str().unwrap(),
                i["actor_name"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("Acme renewal", "updated", "Administrator"),
            ("Leyla", "created", "Administrator"),
            ("Acme renewal", "created", "Administrator"),
        ]
    );
    assert_eq!(
        items[0]["changes"]["amount"],
        json!({"old": 100, "new": 250})
    );
    assert_eq!(items[0]["link"], format!("/records/deals/{}", id(&deal)));

    // Everything Sam may read: Sales' records too, never Support's.
    let all = sam.get("/api/v1/feed?about=all").await;
    let titles: Vec<&str> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["record_title"].as_str().unwrap())
        .collect();
    assert!(titles.contains(&"Omid's own"), "{titles:?}");
    assert!(!titles.contains(&"Support deal"), "{titles:?}");
    let by_omid = sam
        .get(&format!("/api/v1/feed?about=all&by={omid_id}"))
        .await;
    assert_eq!(
        by_omid.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        by_omid.body
    );
    let omid_by_me = omid.get("/api/v1/feed?about=all&by=me&object=deals").await;
    assert_eq!(omid_by_me.body["items"][0]["record_title"], "Omid's own");
    let contacts = sam.get("/api/v1/feed?object=contacts").await;
    assert_eq!(contacts.body["items"].as_array().unwrap().len(), 1);

    // Paged: one at a time, the cursor goes on where the page stopped.
    let first = sam.get("/api/v1/feed?limit=2").await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_string();
    let rest = sam
        .get(&format!("/api/v1/feed?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest.body["items"][0]["record_title"], "Acme renewal");
    assert_eq!(rest.body["next_cursor"], Value::Null);

    // A field hidden from the reader is left out of the changes.
    let role = admin
        .post(
            "/api/v1/roles",
            json!({"name": "counter", "label": "Counter",
                   "permissions": {"*": {"read": "department"}},
                   "fields": {"deals": {"amount": "hidden"}}}),
        )
        .await;
    assert_eq!(role.status, StatusCode::CREATED, "{}", role.body);
    let (_, cora) = srv.member("cora@example.com", &sales, "counter").await;
    let hidden = cora.get("/api/v1/feed?about=all&object=deals").await;
    let update = hidden.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["action"] == "updated")
        .unwrap()
        .clone();
    assert_eq!(update["changes"], json!({}), "{update}");

    for (query, status) in [
        ("about=everyone", StatusCode::BAD_REQUEST),
        ("limit=0", StatusCode::BAD_REQUEST),
        ("page=2", StatusCode::BAD_REQUEST),
        ("object=nope", StatusCode::NOT_FOUND),
    ] {
        assert_eq!(
            sam.get(&format!("/api/v1/feed?{query}")).await.status,
            status,
            "{query}"
        );
    }
}
