//! The forms plugin (plugins/forms) through the real host: admins define a form,
//! anyone submits it as JSON or from its HTML page, and leads come out
//! de-duplicated, once per idempotency key, never from a spam post.

use crm_tests::reqwest::{Method, StatusCode};
use crm_tests::{Backend, Client, Server, json, on_both_backends, plugin_package};

on_both_backends!(
    submissions_become_deduplicated_leads_once_and_spam_becomes_nothing,
    only_admins_define_forms_and_bad_answers_are_refused,
);

fn contact_form() -> serde_json::Value {
    json!({
        "title": "Talk to sales",
        "fields": [
            {"name": "last_name", "label": "Your name", "required": true},
            {"name": "email", "type": "email", "required": true},
            {"name": "phone", "type": "phone"},
            {"name": "company_name", "label": "Company", "show_if": {"field": "email", "equals": "never"}},
        ],
        "hidden": {"source": "Web"},
        "dedupe_by": ["email", "phone"],
        "thank_you": "Thanks, we will call you."
    })
}

/// Leads with this email, as the admin sees them.
async fn leads_with(admin: &Client, email: &str) -> Vec<serde_json::Value> {
    let res = admin
        .get(&format!("/api/v1/records/leads?filter[email]={email}"))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    res.body["items"].as_array().unwrap().clone()
}

async fn submissions_become_deduplicated_leads_once_and_spam_becomes_nothing(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    admin
        .install_plugin(plugin_package("plugins/forms"), &sales)
        .await;
    let saved = admin
        .put("/api/v1/x/forms/forms/talk-to-sales", contact_form())
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert_eq!(
        saved.body["department"],
        sales.as_str(),
        "submissions go to Sales"
    );
    let listed = admin.get("/api/v1/x/forms/forms").await;
    assert_eq!(listed.body[0]["path"], "/public/forms/f/talk-to-sales");

    let anyone = srv.anonymous();
    let page = anyone.get("/public/forms/f/talk-to-sales").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text.contains("<form method=\"post\""), "{}", page.text);
    assert!(
        page.text.contains("name=\"website\""),
        "the honeypot is there"
    );
    assert!(page.text.contains("Your name *"));

    // JSON with an idempotency key: created once, answered the same when repeated.
    let submit = |body: serde_json::Value, key: Option<&str>| {
        let anyone = anyone.clone();
        let key = key.map(str::to_string);
        async move {
            let mut rb = anyone
                .request(Method::POST, "/public/forms/f/talk-to-sales")
                .json(&body);
            if let Some(k) = key {
                rb = rb.header("idempotency-key", k);
            }
            anyone.send(rb).await
        }
    };
    let first = submit(
        json!({"last_name": "Lima", "email": "Ana@Acme.example", "company_name": "ignored"}),
        Some("k-1"),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["created"], true);
    assert_eq!(first.body["message"], "Thanks, we will call you.");
    let id = first.body["record"].as_str().unwrap().to_string();
    let again = submit(
        json!({"last_name": "Lima", "email": "ana@acme.example"}),
        Some("k-1"),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["record"], id.as_str());
    let leads = leads_with(&admin, "ana@acme.example").await;
    assert_eq!(leads.len(), 1, "{leads:?}");
    assert_eq!(leads[0]["source"], "Web");
    assert_eq!(leads[0]["department"], sales.as_str());
    assert!(
        leads[0]["company_name"].is_null(),
        "a field show_if hides is not kept"
    );

    // The same email again, without a key: the lead is updated, not doubled.
    let update = submit(
        json!({"last_name": "Lima-Souza", "email": "ana@acme.example", "phone": "+55 11 5555 0101"}),
        None,
    )
    .await;
    assert_eq!(update.status, StatusCode::OK, "{}", update.body);
    assert_eq!(update.body["created"], false);
    assert_eq!(update.body["record"], id.as_str());
    let leads = leads_with(&admin, "ana@acme.example").await;
    assert_eq!(leads.len(), 1);
    assert_eq!(leads[0]["last_name"], "Lima-Souza");

    // A bot fills the honeypot: thanked, nothing kept.
    let spam = submit(
        json!({"last_name": "Bot", "email": "bot@spam.example", "website": "http://spam.example"}),
        None,
    )
    .await;
    assert_eq!(spam.status, StatusCode::OK, "{}", spam.body);
    assert!(leads_with(&admin, "bot@spam.example").await.is_empty());

    // From the HTML page: form-encoded, answered with the thank-you page.
    let posted = anyone
        .send(
            anyone
                .request(Method::POST, "/public/forms/f/talk-to-sales")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("last_name=O%27Neil&email=sean%40acme.example&website="),
        )
        .await;
    assert_eq!(posted.status, StatusCode::OK, "{}", posted.text);
    assert!(posted.text.contains("Thanks, we will call you."));
    let leads = leads_with(&admin, "sean@acme.example").await;
    assert_eq!(leads[0]["last_name"], "O'Neil");
}

async fn only_admins_define_forms_and_bad_answers_are_refused(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    admin
        .install_plugin(plugin_package("plugins/forms"), &sales)
        .await;
    let (_, sam) = srv.member("sam@example.com", &sales, "member").await;
    // A member cannot define forms, even claiming to be an admin: the host sets
    // x-crm-admin and drops the client's.
    let refused = sam
        .send(
            sam.request(Method::PUT, "/api/v1/x/forms/forms/talk")
                .header("x-crm-admin", "true")
                .json(&contact_form()),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let bad = admin
        .put(
            "/api/v1/x/forms/forms/talk",
            json!({"title": "", "object": "deals", "fields": [{"name": "x", "type": "colour"}], "dedupe_by": ["fax"]}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let fields = bad.error_fields();
    for f in ["title", "object", "fields[0]", "dedupe_by"] {
        assert!(fields.contains(&f.to_string()), "{f}: {}", bad.body);
    }
    let bad_name = admin
        .put("/api/v1/x/forms/forms/Talk!", contact_form())
        .await;
    assert_eq!(bad_name.status, StatusCode::NOT_FOUND);
    assert_eq!(
        admin
            .put("/api/v1/x/forms/forms/talk", contact_form())
            .await
            .status,
        StatusCode::OK
    );

    let anyone = srv.anonymous();
    // Wrong types and a missing required answer: 422 naming each field.
    let wrong = anyone
        .post(
            "/public/forms/f/talk",
            json!({"last_name": ["x"], "email": "not an email", "phone": "call me"}),
        )
        .await;
    assert_eq!(
        wrong.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong.body
    );
    assert_eq!(wrong.error_fields(), ["last_name", "email", "phone"]);
    let missing = anyone
        .post("/public/forms/f/talk", json!({"email": "a@b.example"}))
        .await;
    assert_eq!(missing.error_fields(), ["last_name"]);
    let not_json = anyone
        .send(
            anyone
                .request(Method::POST, "/public/forms/f/talk")
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    // On a connection of its own: the server answers before reading the body and
    // closes the connection, which a shared pool would hand to the next request.
    let alone = Client {
        http: crm_tests::reqwest::Client::new(),
        ..anyone.clone()
    };
    let huge = alone
        .send(
            alone
                .request(Method::POST, "/public/forms/f/talk")
                .header("content-type", "application/json")
                .body(vec![b' '; 2 << 20]),
        )
        .await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        anyone.get("/public/forms/f/nope").await.status,
        StatusCode::NOT_FOUND
    );
    // Nothing was created by any of it.
    let leads = admin.get("/api/v1/records/leads").await;
    assert_eq!(leads.body["items"], json!([]), "{}", leads.body);
    // Deleting a form takes its page away.
    assert_eq!(
        admin.delete("/api/v1/x/forms/forms/talk").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        anyone.get("/public/forms/f/talk").await.status,
        StatusCode::NOT_FOUND
    );
}
