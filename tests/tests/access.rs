//! Access control through the HTTP API: departments, roles, record scope, field
//! rights and sharing, on SQLite and PostgreSQL.

use crm_tests::reqwest::{Method, StatusCode};
use crm_tests::{Backend, Client, Server, json, on_both_backends};
use serde_json::Value;

on_both_backends!(
    the_permission_matrix_of_the_built_in_roles,
    a_sales_member_cannot_read_a_support_ticket,
    an_operator_edits_a_contacts_phone_but_not_the_deal_amount,
    hidden_fields_never_reach_the_caller,
    a_member_cannot_raise_itself_or_move_records,
    a_partner_sees_only_what_is_shared_with_it,
    pages_under_a_scope_hold_every_readable_record_once,
    a_deactivated_users_token_stops_working,
    an_export_holds_what_the_caller_may_export_and_nothing_more,
);

const ROOT: &str = "00000000-0000-0000-0000-000000000001";

async fn department(admin: &Client, name: &str, parent: Option<&str>) -> String {
    let res = admin
        .post(
            "/api/v1/departments",
            json!({"name": name, "parent": parent}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    res.body["id"].as_str().unwrap().to_string()
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// A probe that changes nothing: with a version no record has, an allowed update or
/// delete answers 409; a refused one 403 (readable) or 404 (not readable).
async fn probe(api: &Client, method: Method, object: &str, record: &str) -> StatusCode {
    let path = format!("/api/v1/records/{object}/{record}");
    let rb = api
        .request(method, &path)
        .header("If-Match", "\"999\"")
        .json(&json!({"name": "changed"}));
    api.send(rb).await.status
}

async fn the_permission_matrix_of_the_built_in_roles(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = department(&admin, "Sales", None).await;
    let north = department(&admin, "Sales North", Some(&sales)).await;
    let support = department(&admin, "Support", None).await;
    let ok = StatusCode::OK;
    let conflict = StatusCode::CONFLICT; // allowed (the probe's version is stale)
    let forbidden = StatusCode::FORBIDDEN;
    let missing = StatusCode::NOT_FOUND;
    // role -> expected (read, update, delete) for: own record in Sales, another's in
    // Sales, another's in Sales North, another's in Support.
    let matrix = [
        ("org_admin", [(ok, conflict, conflict); 4]),
        (
            "department_admin",
            [
                (ok, conflict, conflict),
                (ok, conflict, conflict),
                (ok, conflict, conflict),
                (missing, missing, missing),
            ],
        ),
        (
            "manager",
            [
                (ok, conflict, conflict),
                (ok, conflict, conflict),
                (ok, conflict, conflict),
                (missing, missing, missing),
            ],
        ),
        (
            "member",
            [
                (ok, conflict, conflict),
                (ok, forbidden, forbidden),
                (missing, missing, missing),
                (missing, missing, missing),
            ],
        ),
        (
            "read_only",
            [
                (ok, forbidden, forbidden),
                (ok, forbidden, forbidden),
                (missing, missing, missing),
                (missing, missing, missing),
            ],
        ),
        ("partner", [(missing, missing, missing); 4]),
    ];
    for (role, expected) in matrix {
        let (user, api) = srv
            .member(&format!("{role}@example.com"), &sales, role)
            .await;
        let mut records = Vec::new();
        for (owner, dept) in [
            (user.as_str(), sales.as_str()),
            ("", sales.as_str()),
            ("", north.as_str()),
            ("", support.as_str()),
        ] {
            let mut body = json!({"name": format!("{role} deal"), "department": dept});
            if !owner.is_empty() {
                body["owner"] = json!(owner);
            }
            records.push(id(&admin.create("deals", body).await));
        }
        for (i, (record, (read, update, delete))) in records.iter().zip(expected).enumerate() {
            let got = api.get(&format!("/api/v1/records/deals/{record}")).await;
            assert_eq!(got.status, read, "{role} reads record {i}: {}", got.body);
            assert_eq!(
                probe(&api, Method::PATCH, "deals", record).await,
                update,
                "{role} updates record {i}"
            );
            assert_eq!(
                probe(&api, Method::DELETE, "deals", record).await,
                delete,
                "{role} deletes record {i}"
            );
        }
        // The list shows exactly the readable ones.
        let listed = api.get("/api/v1/records/deals?limit=200").await;
        assert_eq!(listed.status, ok);
        let listed: Vec<String> = listed.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(id)
            .filter(|i| records.contains(i))
            .collect();
        let readable: Vec<String> = records
            .iter()
            .zip(expected)
            .filter(|(_, (read, _, _))| *read == ok)
            .map(|(r, _)| r.clone())
            .rev()
            .collect();
        assert_eq!(listed, readable, "{role} lists what it may read");
    }
}

async fn a_sales_member_cannot_read_a_support_ticket(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = department(&admin, "Sales", None).await;
    let support = department(&admin, "Support", None).await;
    let res = admin
        .post(
            "/api/v1/objects",
            json!({"name": "tickets", "label": "Ticket", "label_plural": "Tickets",
            "fields": [{"name": "subject", "type": "text", "required": true, "searchable": true}]}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let (_, sam) = srv.member("sam@example.com", &sales, "member").await;
    let (_, sue) = srv.member("sue@example.com", &support, "member").await;
    let ticket = sue
        .create("tickets", json!({"subject": "Printer on fire"}))
        .await;
    assert_eq!(
        ticket["department"],
        json!(support),
        "a record goes to its creator's department"
    );
    let path = format!("/api/v1/records/tickets/{}", id(&ticket));

    let read = sam.get(&path).await;
    assert_eq!(
        read.status,
        StatusCode::NOT_FOUND,
        "not 403: existence does not leak"
    );
    assert_eq!(
        sam.patch(&path, json!({"subject": "mine now"}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(sam.delete(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        sam.get(&format!("{path}/history")).await.status,
        StatusCode::NOT_FOUND
    );
    let list = sam.get("/api/v1/records/tickets?q=printer").await;
    assert_eq!(list.body["items"], json!([]));

    let still = sue.get(&path).await;
    assert_eq!(still.status, StatusCode::OK);
    assert_eq!(still.body["subject"], "Printer on fire");
    assert_eq!(still.body["version"], 1, "nothing changed");

    let denials = admin.get("/api/v1/access/denials").await;
    assert_eq!(denials.status, StatusCode::OK);
    let about_ticket = denials
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["record_id"] == ticket["id"])
        .count();
    assert!(
        about_ticket >= 4,
        "every denial is audited: {}",
        denials.body
    );
    assert_eq!(
        sam.get("/api/v1/access/denials").await.status,
        StatusCode::FORBIDDEN
    );
}

async fn an_operator_edits_a_contacts_phone_but_not_the_deal_amount(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let role = admin
        .post("/api/v1/roles", json!({
            "name": "operator", "label": "Operator",
            "permissions": {
                "contacts": {"read": "department", "create": "department", "update": "department"},
                "deals": {"read": "department", "update": "department"}
            },
            "fields": {"deals": {"amount": "read"}}
        }))
        .await;
    assert_eq!(role.status, StatusCode::CREATED, "{}", role.body);
    let (_, operator) = srv.member("olga@example.com", ROOT, "operator").await;
    let contact = admin
        .create(
            "contacts",
            json!({"last_name": "Karimi", "phone": "+98 21 1234"}),
        )
        .await;
    let deal = admin
        .create("deals", json!({"name": "Renewal", "amount": 1200}))
        .await;
    let contact_path = format!("/api/v1/records/contacts/{}", id(&contact));
    let deal_path = format!("/api/v1/records/deals/{}", id(&deal));

    let phone = operator
        .patch(&contact_path, json!({"phone": "+98 21 9999"}))
        .await;
    assert_eq!(phone.status, StatusCode::OK, "{}", phone.body);
    assert_eq!(phone.body["phone"], "+98 21 9999");

    let amount = operator
        .patch(&deal_path, json!({"amount": 1, "status": "in progress"}))
        .await;
    assert_eq!(amount.status, StatusCode::FORBIDDEN);
    assert_eq!(
        amount.error_fields(),
        vec!["amount"],
        "the refused field is named"
    );
    let deal_now = admin.get(&deal_path).await;
    assert_eq!(deal_now.body["amount"], 1200);
    assert_eq!(
        deal_now.body["status"], deal["status"],
        "nothing of the refused request was written"
    );
    assert_eq!(deal_now.body["version"], 1);

    let status = operator
        .patch(&deal_path, json!({"status": "in progress"}))
        .await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.body);
    assert_eq!(
        status.body["amount"], 1200,
        "a read-only field is still shown"
    );
    assert_eq!(
        operator
            .post("/api/v1/records/deals", json!({"name": "New"}))
            .await
            .status,
        StatusCode::FORBIDDEN,
        "the operator may not create deals"
    );
}

async fn hidden_fields_never_reach_the_caller(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let role = admin
        .post(
            "/api/v1/roles",
            json!({
                "name": "telesales", "label": "Telesales",
                "permissions": {"*": {"read": "department", "update": "department"}},
                "fields": {"deals": {"amount": "hidden"}, "contacts": {"email": "hidden"}}
            }),
        )
        .await;
    assert_eq!(role.status, StatusCode::CREATED, "{}", role.body);
    let (_, tele) = srv.member("tom@example.com", ROOT, "telesales").await;
    let deal = admin
        .create("deals", json!({"name": "Big one", "amount": 987654}))
        .await;
    admin
        .create(
            "contacts",
            json!({"last_name": "Secret", "email": "needle@hidden.example"}),
        )
        .await;
    let path = format!("/api/v1/records/deals/{}", id(&deal));
    assert_eq!(
        admin.patch(&path, json!({"amount": 987655})).await.status,
        StatusCode::OK
    );

    let got = tele.get(&path).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.body.get("amount").is_none(), "{}", got.body);
    let list = tele.get("/api/v1/records/deals").await;
    assert!(list.body["items"][0].get("amount").is_none());
    for query in [
        "filter[amount]=987655",
        "filter[amount][gt]=0",
        "sort=amount",
    ] {
        let res = tele.get(&format!("/api/v1/records/deals?{query}")).await;
        assert_eq!(
            res.status,
            StatusCode::BAD_REQUEST,
            "{query}: no oracle on a hidden field"
        );
    }
    let searched = tele.get("/api/v1/records/contacts?q=needle").await;
    assert_eq!(searched.status, StatusCode::OK);
    assert_eq!(
        searched.body["items"],
        json!([]),
        "quick search skips hidden fields"
    );
    let history = tele.get(&format!("{path}/history")).await;
    assert_eq!(history.status, StatusCode::OK);
    assert!(
        !history.body.to_string().contains("98765"),
        "history hides the field too: {}",
        history.body
    );
    let write = tele.patch(&path, json!({"amount": 1})).await;
    assert_eq!(write.status, StatusCode::FORBIDDEN);
    assert_eq!(write.error_fields(), vec!["amount"]);
    // The admin still sees everything, and the hidden value survived the member's edits.
    assert_eq!(
        tele.patch(&path, json!({"name": "Bigger one"}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(admin.get(&path).await.body["amount"], 987655);
}

async fn a_member_cannot_raise_itself_or_move_records(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = department(&admin, "Sales", None).await;
    let (mia_id, mia) = srv.member("mia@example.com", &sales, "member").await;
    let (max_id, _) = srv.member("max@example.com", &sales, "member").await;
    let (_, boss) = srv.member("boss@example.com", &sales, "manager").await;

    let raise = mia
        .put(
            &format!("/api/v1/users/{mia_id}/memberships/{sales}"),
            json!({"role": "org_admin"}),
        )
        .await;
    assert_eq!(raise.status, StatusCode::FORBIDDEN);
    let other = mia
        .put(
            &format!("/api/v1/users/{max_id}/memberships/{ROOT}"),
            json!({"role": "manager"}),
        )
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    assert_eq!(
        mia.post("/api/v1/departments", json!({"name": "Mine"}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        mia.post(
            "/api/v1/roles",
            json!({"name": "god", "label": "God", "permissions": {"*": {"read": "all"}}})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        mia.post(
            "/api/v1/objects/deals/fields",
            json!({"name": "x", "type": "text"})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    let memberships = admin
        .get(&format!("/api/v1/users/{mia_id}/memberships"))
        .await;
    assert_eq!(
        memberships.body,
        json!([{"user": mia_id, "department": sales, "role": "member"}])
    );

    // Her own deal: she may edit it, but not give it away or move it.
    let deal = mia.create("deals", json!({"name": "Mine"})).await;
    let path = format!("/api/v1/records/deals/{}", id(&deal));
    assert_eq!(
        mia.patch(&path, json!({"status": "in progress"}))
            .await
            .status,
        StatusCode::OK
    );
    let give = mia
        .post(&format!("{path}/transfer"), json!({"owner": max_id}))
        .await;
    assert_eq!(give.status, StatusCode::FORBIDDEN, "{}", give.body);
    let via_patch = mia.patch(&path, json!({"owner": max_id})).await;
    assert_eq!(via_patch.status, StatusCode::FORBIDDEN);
    let moved = mia.patch(&path, json!({"department": ROOT})).await;
    assert_eq!(moved.status, StatusCode::FORBIDDEN);
    assert_eq!(
        mia.post(
            "/api/v1/records/deals",
            json!({"name": "For Max", "owner": max_id})
        )
        .await
        .status,
        StatusCode::FORBIDDEN,
        "nor create one in someone else's name"
    );
    assert_eq!(admin.get(&path).await.body["owner"], json!(mia_id));

    // Her manager may hand it to Max; the history says so.
    let handed = boss
        .post(&format!("{path}/transfer"), json!({"owner": max_id}))
        .await;
    assert_eq!(handed.status, StatusCode::OK, "{}", handed.body);
    assert_eq!(handed.body["owner"], json!(max_id));
    let history = admin.get(&format!("{path}/history")).await;
    let last = history.body.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        last["changes"]["owner"],
        json!({"old": mia_id, "new": max_id})
    );
    assert_eq!(
        mia.patch(&path, json!({"status": "completed"}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

async fn a_partner_sees_only_what_is_shared_with_it(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let partners = department(&admin, "Partners", None).await;
    let (partner_id, partner) = srv
        .member("paul@partner.example", &partners, "partner")
        .await;
    let company = admin.create("companies", json!({"name": "Acme"})).await;
    let deal = admin
        .create(
            "deals",
            json!({"name": "Acme via partner", "company": company["id"]}),
        )
        .await;
    let other = admin
        .create("deals", json!({"name": "Not for partners"}))
        .await;
    let path = format!("/api/v1/records/deals/{}", id(&deal));

    assert_eq!(
        partner.get("/api/v1/records/deals").await.body["items"],
        json!([])
    );
    assert_eq!(partner.get(&path).await.status, StatusCode::NOT_FOUND);

    let share = admin
        .post(
            &format!("{path}/shares"),
            json!({"user": partner_id, "access": "read"}),
        )
        .await;
    assert_eq!(share.status, StatusCode::CREATED, "{}", share.body);
    let list = partner.get("/api/v1/records/deals").await;
    let ids: Vec<String> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(id)
        .collect();
    assert_eq!(ids, vec![id(&deal)]);
    let got = partner.get(&path).await;
    assert_eq!(got.status, StatusCode::OK);
    // The reference is only an id: the company itself stays out of reach.
    let company_path = format!("/api/v1/records/companies/{}", id(&company));
    assert_eq!(
        partner.get(&company_path).await.status,
        StatusCode::NOT_FOUND
    );
    let probe = partner
        .post(
            "/api/v1/records/deals",
            json!({"name": "x", "company": company["id"]}),
        )
        .await;
    assert!(probe.status.is_client_error());
    assert_eq!(
        partner
            .get(&format!("/api/v1/records/deals/{}", id(&other)))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        partner.patch(&path, json!({"name": "edited"})).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        partner
            .post(
                &format!("{path}/shares"),
                json!({"department": partners, "access": "write"})
            )
            .await
            .status,
        StatusCode::FORBIDDEN,
        "a partner cannot widen a share"
    );

    // Shared for writing, the partner may edit it, and only it.
    let write = admin
        .post(
            &format!("{path}/shares"),
            json!({"user": partner_id, "access": "write"}),
        )
        .await;
    assert_eq!(write.status, StatusCode::CREATED);
    assert_eq!(
        write.body["id"], share.body["id"],
        "sharing again changes the share"
    );
    let edited = partner.patch(&path, json!({"name": "edited"})).await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    assert_eq!(probe_delete(&partner, &path).await, StatusCode::FORBIDDEN);

    let shares = admin.get(&format!("{path}/shares")).await;
    assert_eq!(shares.body.as_array().unwrap().len(), 1);
    let share_id = share.body["id"].as_str().unwrap();
    assert_eq!(
        admin
            .delete(&format!("{path}/shares/{share_id}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        partner.get(&path).await.status,
        StatusCode::NOT_FOUND,
        "unshared at once"
    );
}

async fn probe_delete(api: &Client, path: &str) -> StatusCode {
    api.send(
        api.request(Method::DELETE, path)
            .header("If-Match", "\"999\""),
    )
    .await
    .status
}

async fn pages_under_a_scope_hold_every_readable_record_once(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = department(&admin, "Sales", None).await;
    let support = department(&admin, "Support", None).await;
    let (_, sam) = srv.member("sam@example.com", &sales, "member").await;
    let mut expected = Vec::new();
    for i in 0..14 {
        let dept = if i % 3 == 0 { &sales } else { &support };
        let r = admin
            .create(
                "companies",
                json!({"name": format!("Company {i}"), "department": dept}),
            )
            .await;
        if dept == &sales {
            expected.push(id(&r));
        }
    }
    expected.reverse();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/v1/records/companies?limit=2".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = sam.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(id));
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, expected);
}

async fn a_deactivated_users_token_stops_working(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let (id, user) = srv.member("leaver@example.com", ROOT, "member").await;
    assert_eq!(
        user.get("/api/v1/records/deals").await.status,
        StatusCode::OK
    );
    assert_eq!(
        admin.delete(&format!("/api/v1/users/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        user.get("/api/v1/records/deals").await.status,
        StatusCode::UNAUTHORIZED
    );
    let again = srv
        .anonymous()
        .post(
            "/api/v1/auth/login",
            json!({"email": "leaver@example.com", "password": "password-123"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    let me = admin.get(&format!("/api/v1/users/{id}")).await;
    assert_eq!(
        me.body["active"], false,
        "kept for the audit trail, inactive"
    );
}

async fn an_export_holds_what_the_caller_may_export_and_nothing_more(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = department(&admin, "Sales", None).await;
    let north = department(&admin, "Sales North", Some(&sales)).await;
    let support = department(&admin, "Support", None).await;
    let (manager_id, manager) = srv.member("boss@example.com", &sales, "manager").await;
    let (_, member) = srv.member("mem@example.com", &sales, "member").await;
    // More than one export page (200), across the department and its sub-department.
    for i in 0..230 {
        let department = if i % 2 == 0 { &sales } else { &north };
        admin
            .create(
                "deals",
                json!({"name": format!("Deal {i:03}"), "amount": i, "department": department}),
            )
            .await;
    }
    admin
        .create(
            "deals",
            json!({"name": "=HYPERLINK(\"http://evil.example\",\"x\")", "department": sales}),
        )
        .await;
    let support_deal = admin
        .create(
            "deals",
            json!({"name": "Support deal", "department": support}),
        )
        .await;
    // A share lets the manager read the support deal, not export it.
    let share = admin
        .post(
            &format!(
                "/api/v1/records/deals/{}/shares",
                support_deal["id"].as_str().unwrap()
            ),
            json!({"user": manager_id, "access": "read"}),
        )
        .await;
    assert_eq!(share.status, StatusCode::CREATED, "{}", share.body);

    let csv = manager.get("/api/v1/records/deals/export?sort=name").await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert!(
        csv.header("content-disposition")
            .unwrap()
            .contains("deals.csv")
    );
    let lines: Vec<&str> = csv.text.lines().collect();
    assert!(
        lines[0].starts_with("id,owner,department,created_at,updated_at,version,name,"),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines.len(),
        1 + 231,
        "header, 230 deals and the formula one"
    );
    assert!(
        !csv.text.contains("Support deal"),
        "shares do not extend exports"
    );
    assert!(
        csv.text
            .contains("\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\""),
        "a formula is defused: {}",
        lines[1]
    );
    let ids: std::collections::HashSet<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(ids.len(), 231, "every record once");
    // The same filters as a list.
    let filtered = manager
        .get("/api/v1/records/deals/export?filter[amount][gte]=220")
        .await;
    assert_eq!(filtered.text.lines().count(), 1 + 10);

    // A member has no export right: 403, audited; nothing is streamed.
    let refused = member.get("/api/v1/records/deals/export").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    let denials = admin.get("/api/v1/access/denials").await;
    assert!(
        denials
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["action"] == "export"),
        "{}",
        denials.body
    );
    assert_eq!(
        manager
            .get("/api/v1/records/deals/export?limit=5")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        manager
            .get("/api/v1/records/deals/export?filter[nope]=1")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        manager.get("/api/v1/records/nothing/export").await.status,
        StatusCode::NOT_FOUND
    );
}
