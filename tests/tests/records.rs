//! Records through the HTTP API, as a sales team uses them, on SQLite and PostgreSQL.

use crm_tests::reqwest::StatusCode;
use crm_tests::{Backend, Server, json, on_both_backends};

on_both_backends!(
    a_company_and_its_contact_round_trip,
    a_creator_may_choose_the_id_to_create_once,
    every_invalid_field_is_reported_at_once,
    unique_and_reference_violations_are_client_errors,
    a_stale_version_is_refused_and_nothing_changes,
    two_updates_with_the_same_version_exactly_one_wins,
    concurrent_creates_with_a_taken_unique_value_fail_alone,
    history_shows_who_changed_what,
    deleting_a_record_keeps_its_history_and_event,
    lists_filter_sort_and_page_without_gaps,
    quick_search_finds_across_searchable_fields,
    aggregates_count_and_sum_only_what_the_caller_may_read,
);

async fn a_company_and_its_contact_round_trip(backend: Backend) {
    let srv = Server::start(backend).await;
    let api = srv.admin().await;
    let company = api.create("companies", json!({"name": "Acme", "industry": "Retail", "employees": 40, "annual_revenue": 1250000.5})).await;
    assert_eq!(company["version"], 1);
    assert_eq!(company["object"], "companies");
    assert_eq!(
        company["website"],
        serde_json::Value::Null,
        "unset fields are listed as null"
    );
    let contact = api
        .create("contacts", json!({"first_name": "Leyla", "last_name": "Karimi", "email": "leyla@acme.example", "company": company["id"]}))
        .await;
    let path = format!(
        "/api/v1/records/contacts/{}",
        contact["id"].as_str().unwrap()
    );
    let got = api.get(&path).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header("etag"), Some("\"1\""));
    assert_eq!(got.body["company"], company["id"]);
    assert_eq!(got.body["owner"], contact["owner"]);

    let changed = api
        .patch(&path, json!({"job_title": "Buyer", "first_name": null}))
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.body["version"], 2);
    assert_eq!(changed.body["job_title"], "Buyer");
    assert_eq!(changed.body["first_name"], serde_json::Value::Null);

    // A patch that changes nothing does not make a new version.
    let same = api.patch(&path, json!({"job_title": "Buyer"})).await;
    assert_eq!(same.body["version"], 2);

    let deleted = api.delete(&path).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = api.get(&path).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(
        gone.header("content-type"),
        Some("application/problem+json")
    );
}

async fn every_invalid_field_is_reported_at_once(backend: Backend) {
    let srv = Server::start(backend).await;
    let api = srv.admin().await;
    let res = api
        .post(
            "/api/v1/records/deals",
            json!({"amount": "lots", "close_date": "next week", "status": "maybe", "probability": 150, "colour": "red", "version": 7}),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut fields = res.error_fields();
    fields.sort();
    assert_eq!(
        fields,
        [
            "amount",
            "close_date",
            "colour",
            "name",
            "probability",
            "status",
            "version"
        ]
    );
    assert_eq!(res.body["status"], 422);
    let deals = api.get("/api/v1/records/deals").await;
    assert_eq!(
        deals.body["items"].as_array().unwrap().len(),
        0,
        "nothing was written"
    );

    let unknown = api
        .post("/api/v1/records/spaceships", json!({"name": "x"}))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(
        unknown.body["detail"]
            .as_str()
            .unwrap()
            .contains("spaceships")
    );
}

async fn unique_and_reference_violations_are_client_errors(backend: Backend) {
    let srv = Server::start(backend).await;
    let api = srv.admin().await;
    let add = api
        .post(
            "/api/v1/objects/companies/fields",
            json!({"name": "vat_number", "type": "text", "unique": true}),
        )
        .await;
    assert_eq!(add.status, StatusCode::CREATED, "{}", add.body);
    api.create("companies", json!({"name": "Acme", "vat_number": "DE123"}))
        .await;
    let dup = api
        .post(
            "/api/v1/records/companies",
            json!({"name": "Acme 2", "vat_number": "DE123"}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", dup.body);
    assert_eq!(dup.error_fields(), ["vat_number"]);

    let missing = uuid::Uuid::now_v7().to_string();
    let orphan = api
        .post(
            "/api/v1/records/contacts",
            json!({"last_name": "Ng", "company": missing, "owner": missing}),
        )
        .await;
    assert_eq!(orphan.status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut fields = orphan.error_fields();
    fields.sort();
    assert_eq!(fields, ["company", "owner"]);

    // A reference must point at a record of the target object, not any record.
    let deal = api.create("deals", json!({"name": "Big"})).await;
    let wrong = api
        .post(
            "/api/v1/records/contacts",
            json!({"last_name": "Ng", "company": deal["id"]}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    let companies = api.get("/api/v1/records/companies").await;
    assert_eq!(companies.body["items"].as_array().unwrap().len(), 1);
}

async fn a_stale_version_is_refused_and_nothing_changes(backend: Backend) {
    let srv = Server::start(backend).await;
    let api = srv.admin().await;
    let deal = api
        .create("deals", json!({"name": "Renewal", "amount": 100}))
        .await;
    let path = format!("/api/v1/records/deals/{}", deal["id"].as_str().unwrap());
    assert_eq!(
        api.patch_if(&path, 1, json!({"amount": 200})).await.status,
        StatusCode::OK
    );
    let stale = api.patch_if(&path, 1, json!({"amount": 300})).await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert!(stale.body["detail"].as_str().unwrap().contains("version 2"));
    assert_eq!(api.get(&path).await.body["amount"], 200);
    let bad = api
        .send(
            api.request(crm_tests::reqwest::Method::PATCH, &path)
                .header("If-Match", "yesterday")
                .json(&json!({})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let stale_delete = api
        .send(
            api.request(crm_tests::reqwest::Method::DELETE, &path)
                .header("If-Match", "\"1\""),
        )
        .await;
    assert_eq!(stale_delete.status, StatusCode::CONFLICT);
    let missing = api
        .patch(
            &format!("/api/v1/records/deals/{}", uuid::Uuid::now_v7()),
            json!({"amount": 1}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

async fn two_updates_with_the_same_version_exactly_one_wins(backend: Backend) {
    let srv = Server::start(backend).await;
    let api = srv.admin().await;
    for round in 0..5 {
        let deal = api
            .create("deals", json!({"name": format!("Deal {round}")}))
            .await;
        let path = format!("/api/v1/records/deals/{}", deal["id"].as_str().unwrap());
        let (a, b) = tokio::join!(
            api.patch_if(&path, 1, json!({"status": "won"})),
            api.patch_if(&path, 1, json!({"status": "lost"}))
        );
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort();
        assert_eq!(
            statuses,
            [200, 409],
            "round {round}: {} / {}",
            a.body,
            b.body
        );
        let winner = if a.status == StatusCode::OK {
            &a.body
        } else {
            &b.body
        };
        let history = api.get(&format!("{path}/history")).await;
        let entries = history.body.as_array().unwrap();
        assert_eq!(
            entries.len(),
            2,
            "created + exactly one update: {}",
            history.body
        );
        assert_eq!(entries[1]["changes"]["status"]["new"], winner["status"]);
        assert_eq!(api.get(&path).await.body["version"], 2);
    }
}

/// Creates arriving together are committed as one group; one taken unique value
/// among them must fail that create alone, and every other create keeps its record,
/// audit entry and event.
async fn concurrent_creates_with_a_taken_unique_value_fail_alone(backend: Backend) {
    let srv = Server::start(backend).await;
    let api = srv.admin().await;
    let res = api
        .post(
            "/api/v1/objects",
            json!({"name": "vouchers", "label": "Voucher", "label_plural": "Vouchers",
            "fields": [{"name": "code", "type": "text", "required": true, "unique": true}]}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let codes: Vec<String> = (0..40)
        .map(|i| {
            if i % 4 == 0 {
                "SAME".to_string()
            } else {
                format!("C{i}")
            }
        })
        .collect();
    // Spawned together, the creates reach the writer together and share a batch.
    let tasks: Vec<_> = codes
        .iter()
        .map(|code| {
            let (api, body) = (api.clone(), json!({"code": code}));
            tokio::spawn(async move { api.post("/api/v1/records/vouchers", body).await })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("a create task finished"));
    }
    let created = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    let refused: Vec<_> = answers
        .iter()
        .filter(|a| a.status != StatusCode::CREATED)
        .collect();
    assert_eq!(created, 31, "30 distinct codes and one of the ten SAME");
    for r in &refused {
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(r.error_fields(), vec!["code"]);
    }
    let list = api.get("/api/v1/records/vouchers?limit=200").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 31);
    let events = api.get("/api/v1/events?limit=1000").await;
    let voucher_events = events
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["object"] == "vouchers")
        .count();
    assert_eq!(
        voucher_events, 31,
        "one event per record, none for a refused create"
    );
}

async fn history_shows_who_changed_what(backend: Backend) {
    let srv = Server::start(backend).await;
    let (ana_id, ana) = srv.user("ana@example.com", false).await;
    let lead = ana
        .create(
            "leads",
            json!({"last_name": "Okafor", "company_name": "Baobab Ltd"}),
        )
        .await;
    assert_eq!(lead["status"], "new", "the default applies");
    let path = format!("/api/v1/records/leads/{}", lead["id"].as_str().unwrap());
    ana.patch(
        &path,
        json!({"status": "in progress", "email": "okafor@baobab.example"}),
    )
    .await;
    let history = ana.get(&format!("{path}/history")).await;
    assert_eq!(history.status, StatusCode::OK);
    let entries = history.body.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["action"], "created");
    assert_eq!(entries[1]["action"], "updated");
    assert_eq!(entries[1]["actor"], ana_id.as_str());
    assert_eq!(
        entries[1]["changes"]["status"],
        json!({"old": "new", "new": "in progress"})
    );
    assert_eq!(
        entries[1]["changes"]["email"],
        json!({"old": null, "new": "okafor@baobab.example"})
    );
    assert_eq!(entries[1]["version"], 2);
    let page = ana.get(&format!("{path}/history?limit=1")).await;
    assert_eq!(page.body.as_array().unwrap().len(), 1);
    let next = ana
        .get(&format!(
            "{path}/history?after={}",
            entries[0]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(next.body.as_array().unwrap()[0]["action"], "updated");
    let unknown = ana
        .get(&format!(
            "/api/v1/records/leads/{}/history",
            uuid::Uuid::now_v7()
        ))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

async fn deleting_a_record_keeps_its_history_and_event(backend: Backend) {
    let srv = Server::start(backend).await;
    let api = srv.admin().await;
    let note = api
        .create("notes", json!({"body": "Called, will call back"}))
        .await;
    let id = note["id"].as_str().unwrap();
    api.delete(&format!("/api/v1/records/notes/{id}")).await;
    let history = api
        .get(&format!("/api/v1/records/notes/{id}/history"))
        .await;
    let entries = history.body.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1]["action"], "deleted");
    assert_eq!(
        entries[1]["changes"]["body"]["old"],
        "Called, will call back"
    );
    let events = api.get("/api/v1/events").await;
    let topics: Vec<_> = events
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["record_id"] == id)
        .map(|e| e["topic"].clone())
        .collect();
    assert_eq!(topics, [json!("record.created"), json!("record.deleted")]);
}

async fn lists_filter_sort_and_page_without_gaps(backend: Backend) {
    let srv = Server::start(backend).await;
    let api = srv.admin().await;
    for i in 0..25 {
        let amount = if i % 5 == 0 {
            serde_json::Value::Null
        } else {
            json!(i * 10)
        };
        let status = if i % 2 == 0 { "won" } else { "new" };
        api.create("deals", json!({"name": format!("Deal {i:02}"), "amount": amount, "status": status, "close_date": format!("2026-03-{:02}", i + 1)})).await;
    }
    // Page through by amount descending; records without an amount come last.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/v1/records/deals?sort=-amount&limit=7".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = api.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        for item in page.body["items"].as_array().unwrap() {
            seen.push(item["name"].as_str().unwrap().to_string());
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25, "every record once: {seen:?}");
    assert_eq!(seen[0], "Deal 24");
    assert_eq!(seen[19], "Deal 01");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 25);

    let won_big = api
        .get("/api/v1/records/deals?filter[status]=won&filter[amount][gte]=100&sort=amount")
        .await;
    let names: Vec<_> = won_big.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "Deal 12", "Deal 14", "Deal 16", "Deal 18", "Deal 22", "Deal 24"
        ]
    );

    let march_start = api
        .get("/api/v1/records/deals?filter[close_date][lt]=2026-03-04&sort=close_date")
        .await;
    assert_eq!(march_start.body["items"].as_array().unwrap().len(), 3);
    let some = api
        .get("/api/v1/records/deals?filter[status][in]=won,lost&limit=200")
        .await;
    assert_eq!(some.body["items"].as_array().unwrap().len(), 13);
    let not_won = api
        .get("/api/v1/records/deals?filter[status][ne]=won&limit=200")
        .await;
    assert_eq!(not_won.body["items"].as_array().unwrap().len(), 12);

    for bad in [
        "filter[colour]=red",
        "filter[amount]=lots",
        "sort=nothing",
        "limit=0",
        "cursor=abc",
        "filter[name][like]=x",
    ] {
        let res = api.get(&format!("/api/v1/records/deals?{bad}")).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{bad}: {}", res.body);
        assert!(res.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
}

async fn quick_search_finds_across_searchable_fields(backend: Backend) {
    let srv = Server::start(backend).await;
    let api = srv.admin().await;
    api.create(
        "contacts",
        json!({"first_name": "Amani", "last_name": "Njoroge", "email": "amani@kilimo.example"}),
    )
    .await;
    api.create(
        "contacts",
        json!({"first_name": "Dariush", "last_name": "Kilimanjaro", "phone": "+98 21 5555"}),
    )
    .await;
    api.create(
        "contacts",
        json!({"first_name": "Sara", "last_name": "Lind", "job_title": "Kilim buyer"}),
    )
    .await;
    let res = api.get("/api/v1/records/contacts?q=KILIM").await;
    let mut names: Vec<_> = res.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["first_name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["Amani", "Dariush"], "job_title is not searchable");
    let none = api.get("/api/v1/records/contacts?q=%25").await;
    assert_eq!(
        none.body["items"].as_array().unwrap().len(),
        0,
        "% is a literal, not a wildcard"
    );
}

/// `GET /api/v1/records/{object}/aggregate`: counts and sums by group, within the
/// caller's read scope, with a list's filters; bad keys are clear 400s.
async fn aggregates_count_and_sum_only_what_the_caller_may_read(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let support = admin.department("Support").await;
    for (name, status, amount, close, department) in [
        ("A", "new", Some(100.5), Some("2026-11-03"), &sales),
        ("B", "new", Some(200.0), Some("2026-11-30"), &sales),
        ("C", "won", Some(1000.0), Some("2026-12-01"), &sales),
        ("D", "won", None, None, &sales),
        ("E", "won", Some(5000.0), Some("2026-11-10"), &support),
    ] {
        admin
            .create(
                "deals",
                json!({"name": name, "status": status, "amount": amount, "close_date": close, "department": department}),
            )
            .await;
    }
    let (_, sam) = srv.member("sam@example.com", &sales, "member").await;
    let by_status = sam
        .get("/api/v1/records/deals/aggregate?group_by=status&sum=amount")
        .await;
    assert_eq!(by_status.status, StatusCode::OK, "{}", by_status.body);
    assert_eq!(
        by_status.body["groups"],
        json!([
            {"key": {"status": "new"}, "count": 2, "sums": {"amount": 300.5}},
            {"key": {"status": "won"}, "count": 2, "sums": {"amount": 1000.0}},
        ]),
        "support's deal is not counted: {}",
        by_status.body
    );
    let all = admin
        .get("/api/v1/records/deals/aggregate?group_by=department,status&sum=amount&filter[status]=won")
        .await;
    assert_eq!(
        all.body["groups"].as_array().unwrap().len(),
        2,
        "{}",
        all.body
    );
    let total = admin
        .get("/api/v1/records/deals/aggregate?sum=amount&q=a")
        .await;
    assert_eq!(total.body["groups"][0]["count"], 1, "{}", total.body);
    assert_eq!(total.body["groups"][0]["key"], json!({}));
    // Dates and instants group by a period.
    let by_month = sam
        .get("/api/v1/records/deals/aggregate?group_by=close_date:month&sum=amount")
        .await;
    assert_eq!(by_month.status, StatusCode::OK, "{}", by_month.body);
    assert_eq!(
        by_month.body["groups"],
        json!([
            {"key": {"close_date:month": "2026-11"}, "count": 2, "sums": {"amount": 300.5}},
            {"key": {"close_date:month": "2026-12"}, "count": 1, "sums": {"amount": 1000.0}},
            {"key": {"close_date:month": null}, "count": 1, "sums": {"amount": 0.0}},
        ]),
        "{}",
        by_month.body
    );
    let by_year = sam
        .get("/api/v1/records/deals/aggregate?group_by=created_at:year,status")
        .await;
    let groups = by_year.body["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{}", by_year.body);
    let year = groups[0]["key"]["created_at:year"].as_str().unwrap();
    assert!(year.len() == 4 && year.starts_with("20"), "{year}");
    for (query, says) in [
        ("group_by=close_date:week", ":day, :month or :year"),
        ("group_by=status:month", "only dates and instants"),
        ("group_by=created_at", "group it by a period"),
        ("group_by=colour", "no field named 'colour'"),
        ("group_by=id", "cannot group by id"),
        ("group_by=status,name,amount", "at most two keys"),
        ("sum=name", "not a number"),
        ("group_by=status&sort=name", "not sort"),
        ("group_by=status&filter[amount][gt]=lots", "amount"),
    ] {
        let bad = sam
            .get(&format!("/api/v1/records/deals/aggregate?{query}"))
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{query}: {}", bad.body);
        assert!(bad.text.contains(says), "{query}: {}", bad.text);
    }
}

async fn a_creator_may_choose_the_id_to_create_once(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let id = "0190f5c2-4b7e-7a10-9c3d-2f1e5d6c7b8a";
    let first = admin
        .post(
            "/api/v1/records/companies",
            json!({"id": id, "name": "Acme"}),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["id"], id);
    // Sent again (a retry after a lost answer): nothing new, a clear 409.
    let again = admin
        .post(
            "/api/v1/records/companies",
            json!({"id": id, "name": "Acme"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert!(again.text.contains("already exists"), "{}", again.text);
    let also = admin
        .post(
            "/api/v1/records/contacts",
            json!({"id": id, "last_name": "Lee"}),
        )
        .await;
    assert_eq!(
        also.status,
        StatusCode::CONFLICT,
        "ids are unique across objects"
    );
    for bad in [
        json!("not-a-uuid"),
        json!(42),
        json!("00000000-0000-0000-0000-000000000000"),
    ] {
        let res = admin
            .post("/api/v1/records/companies", json!({"id": bad, "name": "X"}))
            .await;
        assert_eq!(res.error_fields(), ["id"], "{}", res.body);
    }
    let list = admin.get("/api/v1/records/companies").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
}
