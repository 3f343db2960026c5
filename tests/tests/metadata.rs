//! Admins define and change object types and fields through the API.

use crm_tests::reqwest::StatusCode;
use crm_tests::{Backend, Server, json, on_both_backends};
use sqlx::Connection;

on_both_backends!(
    an_admin_builds_a_custom_object_with_every_field_type,
    invalid_definitions_are_refused_with_every_reason,
    changing_a_field_with_data_is_safe_or_refused_with_a_reason,
    removing_fields_and_objects_keeps_data_safe,
    an_indexed_field_filters_and_unique_can_be_added_later,
    members_cannot_change_metadata,
    a_host_upgrade_adds_new_standard_fields_once,
);

async fn an_admin_builds_a_custom_object_with_every_field_type(backend: Backend) {
    let srv = Server::start(backend).await;
    let api = srv.admin().await;
    let (user_id, _) = srv.user("pm@example.com", false).await;
    let company = api.create("companies", json!({"name": "Acme"})).await;
    let res = api
        .post(
            "/api/v1/objects",
            json!({
                "name": "projects", "label": "Project", "label_plural": "Projects",
                "fields": [
                    {"name": "title", "type": "text", "required": true, "searchable": true, "max_length": 80},
                    {"name": "brief", "type": "long_text"},
                    {"name": "hours", "type": "integer", "min": 0, "indexed": true},
                    {"name": "rate", "type": "decimal", "scale": 3},
                    {"name": "budget", "type": "currency", "currency": "EUR"},
                    {"name": "billable", "type": "boolean", "default": true},
                    {"name": "due", "type": "date"},
                    {"name": "kickoff", "type": "datetime"},
                    {"name": "contact_email", "type": "email"},
                    {"name": "contact_phone", "type": "phone"},
                    {"name": "site", "type": "url"},
                    {"name": "stage", "type": "picklist", "values": ["planned", "running", "done"], "default": "planned"},
                    {"name": "tags", "type": "multi_picklist", "values": ["web", "mobile", "data"]},
                    {"name": "client", "type": "reference", "target": "companies"},
                    {"name": "parent", "type": "reference", "target": "projects"},
                    {"name": "manager", "type": "user", "help_text": "Who runs it"}
                ]
            }),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(res.body["fields"].as_array().unwrap().len(), 16);
    assert_eq!(res.body["fields"][4]["currency"], "EUR");

    let project = api
        .create(
            "projects",
            json!({
                "title": "Webshop", "hours": 120, "rate": 85.125, "budget": 10200.5, "due": "2026-12-01",
                "kickoff": "2026-11-01T09:00:00+03:30", "contact_email": "pm@acme.example", "contact_phone": "+1 (555) 010-2030",
                "site": "https://acme.example", "tags": ["web", "data"], "client": company["id"], "manager": user_id
            }),
        )
        .await;
    assert_eq!(project["billable"], true);
    assert_eq!(project["stage"], "planned");
    assert_eq!(
        project["kickoff"], "2026-11-01T05:30:00Z",
        "datetimes are stored in UTC"
    );
    let child = api
        .create(
            "projects",
            json!({"title": "Phase 2", "parent": project["id"]}),
        )
        .await;
    assert_eq!(child["parent"], project["id"]);

    let tagged = api
        .get("/api/v1/records/projects?filter[tags][contains]=data")
        .await;
    assert_eq!(
        tagged.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        tagged.body
    );
    let bad = api.post("/api/v1/records/projects", json!({"title": "x", "budget": 1.001, "tags": ["web", "web"], "billable": "yes", "due": "2026-02-30"})).await;
    let mut fields = bad.error_fields();
    fields.sort();
    assert_eq!(fields, ["billable", "budget", "due", "tags"]);

    let objects = api.get("/api/v1/objects").await;
    let names: Vec<_> = objects
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_string())
        .collect();
    for standard in [
        "activities",
        "companies",
        "contacts",
        "deals",
        "leads",
        "notes",
        "projects",
    ] {
        assert!(
            names.contains(&standard.to_string()),
            "{standard} in {names:?}"
        );
    }
}

async fn invalid_definitions_are_refused_with_every_reason(backend: Backend) {
    let srv = Server::start(backend).await;
    let api = srv.admin().await;
    let res = api
        .post(
            "/api/v1/objects",
            json!({"name": "Bad Name", "fields": [
                {"name": "id", "type": "text"},
                {"name": "ref", "type": "reference", "target": "nowhere"},
                {"name": "pick", "type": "picklist"},
                {"name": "n", "type": "text", "min": 3}
            ]}),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields = res.error_fields();
    for expected in [
        "name",
        "fields[0].name",
        "fields[1].target",
        "fields[2].values",
        "fields[3].min",
    ] {
        assert!(
            fields.contains(&expected.to_string()),
            "{expected} in {fields:?}"
        );
    }
    let unknown_type = api
        .post(
            "/api/v1/objects/companies/fields",
            json!({"name": "x", "type": "colour"}),
        )
        .await;
    assert_eq!(unknown_type.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown_option = api
        .post(
            "/api/v1/objects/companies/fields",
            json!({"name": "x", "type": "text", "colour": 1}),
        )
        .await;
    assert_eq!(unknown_option.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unknown_option.body["detail"]
            .as_str()
            .unwrap()
            .contains("colour")
    );
    let twice = api
        .post(
            "/api/v1/objects/companies/fields",
            json!({"name": "name", "type": "text"}),
        )
        .await;
    assert_eq!(twice.status, StatusCode::UNPROCESSABLE_ENTITY);
    let dup_object = api
        .post("/api/v1/objects", json!({"name": "contacts"}))
        .await;
    assert_eq!(dup_object.status, StatusCode::UNPROCESSABLE_ENTITY);
    let no_object = api
        .post(
            "/api/v1/objects/spaceships/fields",
            json!({"name": "x", "type": "text"}),
        )
        .await;
    assert_eq!(no_object.status, StatusCode::NOT_FOUND);
}

async fn changing_a_field_with_data_is_safe_or_refused_with_a_reason(backend: Backend) {
    let srv = Server::start(backend).await;
    let api = srv.admin().await;
    api.post(
        "/api/v1/objects/companies/fields",
        json!({"name": "tier", "type": "picklist", "values": ["gold", "silver"]}),
    )
    .await;
    api.post(
        "/api/v1/objects/companies/fields",
        json!({"name": "code", "type": "text", "max_length": 20}),
    )
    .await;
    api.create(
        "companies",
        json!({"name": "Acme", "tier": "gold", "code": "ACME-0001", "employees": 500}),
    )
    .await;
    api.create("companies", json!({"name": "Baobab", "code": "BAO"}))
        .await;

    // Safe: relabel, help text, add and reorder picklist values, widen a limit.
    let ok = api
        .patch("/api/v1/objects/companies/fields/tier", json!({"label": "Tier", "help_text": "Support level", "values": ["platinum", "silver", "gold"]}))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(
        api.patch(
            "/api/v1/objects/companies/fields/code",
            json!({"max_length": 40})
        )
        .await
        .status,
        StatusCode::OK
    );

    // Refused, each with a reason naming what is in the way.
    let cases = [
        ("tier", json!({"values": ["platinum", "silver"]}), "gold"),
        ("code", json!({"max_length": 5}), "longer than 5"),
        ("tier", json!({"required": true}), "no value"),
        (
            "code",
            json!({"type": "integer", "max_length": null}),
            "may not fit",
        ),
        ("employees", json!({"max": 100}), "above 100"),
        ("code", json!({"name": "ref_code"}), "cannot be renamed"),
    ];
    for (field, change, reason) in cases {
        let res = api
            .patch(
                &format!("/api/v1/objects/companies/fields/{field}"),
                change.clone(),
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::CONFLICT,
            "{field} {change}: {}",
            res.body
        );
        let detail = res.body["detail"].as_str().unwrap();
        assert!(detail.contains(reason), "{detail} should say {reason}");
    }
    let object = api.get("/api/v1/objects/companies").await;
    let code = object.body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "code")
        .unwrap();
    assert_eq!(
        code["max_length"], 40,
        "a refused change leaves the field as it was"
    );
    assert_eq!(code["type"], "text");

    // Unique with duplicates is refused; without them it is accepted and enforced.
    api.create("companies", json!({"name": "Acme"})).await;
    let dup = api
        .patch(
            "/api/v1/objects/companies/fields/name",
            json!({"unique": true}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.body);
    assert!(
        dup.body["detail"]
            .as_str()
            .unwrap()
            .contains("share a value")
    );
    assert_eq!(
        api.patch(
            "/api/v1/objects/companies/fields/code",
            json!({"unique": true})
        )
        .await
        .status,
        StatusCode::OK
    );
    let clash = api
        .post(
            "/api/v1/records/companies",
            json!({"name": "Copy", "code": "BAO"}),
        )
        .await;
    assert_eq!(clash.error_fields(), ["code"]);
}

async fn removing_fields_and_objects_keeps_data_safe(backend: Backend) {
    let srv = Server::start(backend).await;
    let api = srv.admin().await;
    api.post(
        "/api/v1/objects/contacts/fields",
        json!({"name": "nickname", "type": "text", "indexed": true}),
    )
    .await;
    let c = api
        .create("contacts", json!({"last_name": "Ng", "nickname": "Tiny"}))
        .await;
    let refused = api.delete("/api/v1/objects/contacts/fields/nickname").await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("1 contacts records hold a value")
    );
    api.patch(
        &format!("/api/v1/records/contacts/{}", c["id"].as_str().unwrap()),
        json!({"nickname": null}),
    )
    .await;
    assert_eq!(
        api.delete("/api/v1/objects/contacts/fields/nickname")
            .await
            .status,
        StatusCode::OK
    );
    let after = api
        .get(&format!(
            "/api/v1/records/contacts/{}",
            c["id"].as_str().unwrap()
        ))
        .await;
    assert!(after.body.get("nickname").is_none());

    assert_eq!(
        api.delete("/api/v1/objects/contacts").await.status,
        StatusCode::CONFLICT,
        "standard objects stay"
    );
    api.post(
        "/api/v1/objects",
        json!({"name": "tickets", "fields": [{"name": "subject", "type": "text"}]}),
    )
    .await;
    let t = api.create("tickets", json!({"subject": "Printer"})).await;
    assert_eq!(
        api.delete("/api/v1/objects/tickets").await.status,
        StatusCode::CONFLICT,
        "it holds a record"
    );
    api.delete(&format!(
        "/api/v1/records/tickets/{}",
        t["id"].as_str().unwrap()
    ))
    .await;
    assert_eq!(
        api.delete("/api/v1/objects/tickets").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get("/api/v1/objects/tickets").await.status,
        StatusCode::NOT_FOUND
    );
}

async fn an_indexed_field_filters_and_unique_can_be_added_later(backend: Backend) {
    let srv = Server::start(backend).await;
    let api = srv.admin().await;
    let res = api
        .post(
            "/api/v1/objects/deals/fields",
            json!({"name": "region_code", "type": "integer", "indexed": true}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    for i in 0..12 {
        api.create(
            "deals",
            json!({"name": format!("D{i}"), "region_code": i % 4}),
        )
        .await;
    }
    let res = api.get("/api/v1/records/deals?filter[region_code]=2").await;
    assert_eq!(res.body["items"].as_array().unwrap().len(), 3);
    let res = api
        .get("/api/v1/records/deals?filter[region_code][gt]=1&sort=region_code")
        .await;
    assert_eq!(res.body["items"].as_array().unwrap().len(), 6);
    assert_eq!(res.body["items"][0]["region_code"], 2);
    // Dropping the index keeps filtering correct.
    assert_eq!(
        api.patch(
            "/api/v1/objects/deals/fields/region_code",
            json!({"indexed": false})
        )
        .await
        .status,
        StatusCode::OK
    );
    let res = api.get("/api/v1/records/deals?filter[region_code]=2").await;
    assert_eq!(res.body["items"].as_array().unwrap().len(), 3);
}

async fn members_cannot_change_metadata(backend: Backend) {
    let srv = Server::start(backend).await;
    let (_, member) = srv.user("member@example.com", false).await;
    assert_eq!(member.get("/api/v1/objects").await.status, StatusCode::OK);
    let res = member
        .post("/api/v1/objects", json!({"name": "secrets"}))
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let res = member
        .post(
            "/api/v1/objects/contacts/fields",
            json!({"name": "x", "type": "text"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let res = member.delete("/api/v1/objects/contacts/fields/email").await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let admin = srv.admin().await;
    assert!(
        admin.get("/api/v1/objects/contacts").await.body["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "email")
    );
}

async fn a_host_upgrade_adds_new_standard_fields_once(backend: Backend) {
    let mut srv = Server::start(backend).await;
    let admin = srv.admin().await;
    // An admin removes a standard field: restarts do not bring it back.
    let removed = admin
        .delete("/api/v1/objects/activities/fields/recording_url")
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    // The install as an older host left it: activities without `phone`, and no
    // record of that standard field having been put in place.
    srv.kill().await;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&srv.database_url)
        .await
        .expect("the server's database");
    for sql in [
        "DELETE FROM object_fields WHERE object = 'activities' AND name = 'phone'",
        "DELETE FROM seeded_fields WHERE object = 'activities' AND name = 'phone'",
    ] {
        sqlx::query(sql).execute(&mut conn).await.expect(sql);
    }
    conn.close().await.expect("closed");
    srv.restart().await;
    let activities = admin.get("/api/v1/objects/activities").await;
    let names: Vec<&str> = activities.body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(
        names.contains(&"phone"),
        "the upgrade adds the new field: {names:?}"
    );
    assert_eq!(names.last(), Some(&"phone"), "after the fields there were");
    assert!(
        !names.contains(&"recording_url"),
        "a removed field stays removed"
    );
    let call = admin
        .create(
            "activities",
            json!({"topic": "Call", "kind": "call", "phone": "+1 555 0100"}),
        )
        .await;
    assert_eq!(call["phone"], "+1 555 0100");
}
