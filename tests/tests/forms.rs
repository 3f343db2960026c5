//! The forms plugin (plugins/forms) through the real host: admins define a form,
//! anyone submits it as JSON or from its HTML page, and leads come out
//! de-duplicated, once per idempotency key, never from a spam post.

use crm_tests::reqwest::{Method, StatusCode};
use crm_tests::{Backend, Client, Server, json, on_both_backends, plugin_package};

on_both_backends!(
    submissions_become_deduplicated_leads_once_and_spam_becomes_nothing,
    only_admins_define_forms_and_bad_answers_are_refused,
    submissions_are_kept_and_new_leads_go_round_robin_to_department_members,
    survey_answers_link_to_the_contact_and_report_nps_per_month,
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

async fn submissions_are_kept_and_new_leads_go_round_robin_to_department_members(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let support = admin.department("Support").await;
    admin
        .install_plugin(plugin_package("plugins/forms"), &sales)
        .await;
    let (ana, _) = srv.member("ana@example.com", &sales, "member").await;
    let (ben, _) = srv.member("ben@example.com", &sales, "member").await;
    // Olga is not in Sales: a form cannot hand her its leads.
    let (olga, _) = srv.member("olga@example.com", &support, "member").await;
    let mut form = contact_form();
    form["assign_to"] = json!([ana, olga, ben]);
    let saved = admin.put("/api/v1/x/forms/forms/talk", form).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);

    let anyone = srv.anonymous();
    let mut owners = Vec::new();
    let mut submissions = Vec::new();
    for n in 1..=4 {
        let email = format!("buyer{n}@acme.example");
        let sent = anyone
            .post(
                "/public/forms/f/talk",
                json!({"last_name": format!("Buyer {n}"), "email": email}),
            )
            .await;
        assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
        submissions.push(sent.body["submission"].as_str().unwrap().to_string());
        let lead = &leads_with(&admin, &email).await[0];
        assert_eq!(lead["id"], sent.body["record"]);
        owners.push(lead["owner"].as_str().unwrap().to_string());
    }
    // Ana, (Olga refused: the lead is kept, owned by the form), Ben, Ana again.
    assert_eq!(owners[0], ana);
    assert_eq!(owners[1], "plugin:forms", "{owners:?}");
    assert_eq!(owners[2], ben);
    assert_eq!(owners[3], ana);

    // Every submission is a record: listed like any other, linked to its lead.
    let kept = admin
        .get("/api/v1/records/form_submissions?filter[form]=talk&sort=created_at")
        .await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.body);
    let items = kept.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{}", kept.body);
    assert_eq!(items[0]["id"], submissions[0].as_str());
    assert_eq!(items[0]["outcome"], "created");
    assert_eq!(items[0]["kind"], "form");
    assert_eq!(items[0]["owner"], ana.as_str());
    assert_eq!(items[0]["department"], sales.as_str());
    let answers: serde_json::Value =
        serde_json::from_str(items[0]["answers"].as_str().unwrap()).unwrap();
    assert_eq!(answers["email"], "buyer1@acme.example");
    let lead = admin
        .get(&format!(
            "/api/v1/records/leads/{}",
            items[0]["lead"].as_str().unwrap()
        ))
        .await;
    assert_eq!(lead.body["email"], "buyer1@acme.example");
    // The submission's own event is what a process starts from.
    let events = admin.get("/api/v1/events?limit=1000").await;
    let created: Vec<&serde_json::Value> = events
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["topic"] == "record.created" && e["object"] == "form_submissions")
        .collect();
    assert_eq!(created.len(), 4, "{}", events.body);

    // A repeat from a known email updates the lead, keeps its owner, and is kept too.
    let again = anyone
        .post(
            "/public/forms/f/talk",
            json!({"last_name": "Buyer One", "email": "buyer1@acme.example"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(
        leads_with(&admin, "buyer1@acme.example").await[0]["owner"],
        ana.as_str()
    );
    let kept = admin
        .get("/api/v1/records/form_submissions?filter[outcome]=updated")
        .await;
    assert_eq!(
        kept.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        kept.body
    );
}

async fn survey_answers_link_to_the_contact_and_report_nps_per_month(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let support = admin.department("Support").await;
    admin
        .install_plugin(plugin_package("plugins/forms"), &sales)
        .await;
    let known = admin
        .create(
            "contacts",
            json!({"first_name": "Kim", "last_name": "Known", "email": "kim@acme.example", "department": sales}),
        )
        .await;
    let survey = json!({
        "title": "How did we do?",
        "kind": "nps",
        "object": "contacts",
        "fields": [
            {"name": "last_name", "label": "Your name", "required": true},
            {"name": "email", "type": "email", "required": true},
        ],
    });
    let saved = admin.put("/api/v1/x/forms/forms/nps", survey).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let anyone = srv.anonymous();
    let page = anyone.get("/public/forms/f/nps").await;
    assert!(page.text.contains("<option>10</option>"), "{}", page.text);

    let mut first = None;
    for (name, email, score) in [
        ("Known", "kim@acme.example", 10),
        ("Nia", "nia@acme.example", 9),
        ("Omar", "omar@acme.example", 8),
        ("Pia", "pia@acme.example", 3),
    ] {
        let sent = anyone
            .post(
                "/public/forms/f/nps",
                json!({"last_name": name, "email": email, "score": score, "comment": "thanks"}),
            )
            .await;
        assert!(sent.status.is_success(), "{}", sent.body);
        first.get_or_insert(sent.body.clone());
    }
    // Kim was known: her contact got the answer, no second contact.
    let first = first.unwrap();
    assert_eq!(first["created"], false);
    assert_eq!(first["record"], known["id"]);
    let kims = admin
        .get("/api/v1/records/contacts?filter[email]=kim@acme.example")
        .await;
    assert_eq!(kims.body["items"].as_array().unwrap().len(), 1);
    let answer = admin
        .get(&format!(
            "/api/v1/records/form_submissions/{}",
            first["submission"].as_str().unwrap()
        ))
        .await;
    assert_eq!(answer.body["contact"], known["id"]);
    assert_eq!(answer.body["score"], 10);
    assert_eq!(answer.body["comment"], "thanks");
    let month = answer.body["created_at"].as_str().unwrap()[..7].to_string();

    // A score off the scale is refused by name; nothing is kept.
    let off = anyone
        .post(
            "/public/forms/f/nps",
            json!({"last_name": "X", "email": "x@acme.example", "score": 11}),
        )
        .await;
    assert_eq!(off.error_fields(), ["score"], "{}", off.body);

    // NPS: 2 promoters, 1 passive, 1 detractor of 4: 50 - 25 = 25.
    let results = admin.get("/api/v1/x/forms/forms/nps/results").await;
    assert_eq!(results.status, StatusCode::OK, "{}", results.body);
    assert_eq!(results.body["period"], "month");
    let periods = results.body["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 1, "{}", results.body);
    assert_eq!(periods[0]["period"], month.as_str());
    assert_eq!(periods[0]["responses"], 4);
    assert_eq!(periods[0]["promoters"], 2);
    assert_eq!(periods[0]["detractors"], 1);
    assert_eq!(periods[0]["nps"], 25.0);
    let by_year = admin
        .get("/api/v1/x/forms/forms/nps/results?period=year&from=2000-01-01")
        .await;
    assert_eq!(by_year.body["periods"][0]["period"], &month[..4]);
    let later = admin
        .get("/api/v1/x/forms/forms/nps/results?from=2999-01-01")
        .await;
    assert_eq!(later.body["periods"], json!([]));
    assert_eq!(
        admin
            .get("/api/v1/x/forms/forms/nps/results?period=week")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    // Someone outside the departments where forms runs sees no results.
    let (_, outsider) = srv.member("olga@example.com", &support, "member").await;
    let refused = outsider.get("/api/v1/x/forms/forms/nps/results").await;
    assert!(refused.status.is_client_error(), "{}", refused.body);
}
