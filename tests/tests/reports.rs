//! Saved reports and the KPI dashboard against a real server on both backends:
//! reports group and measure with the viewer's rights (a shared report never shows
//! more than the viewer may read), are drawn as escaped SVG, and refuse bad
//! definitions field by field; the KPI dashboard adds a period up per manager, counting
//! the activity kinds and statuses an admin chose.

use chrono::{Datelike, Months, NaiveDate, Utc};
use crm_tests::reqwest::StatusCode;
use crm_tests::{Backend, Server, json, on_both_backends};

const ROOT: &str = "00000000-0000-0000-0000-000000000001";

on_both_backends!(
    saved_reports_group_measure_and_draw_with_the_viewers_rights,
    bad_report_definitions_are_refused_field_by_field,
    the_kpi_dashboard_adds_up_a_period_per_manager,
    dashboards_show_each_report_with_the_viewers_rights,
    what_the_kpis_count_is_an_admins_setting,
);

async fn saved_reports_group_measure_and_draw_with_the_viewers_rights(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let support = admin.department("Support").await;
    let (sam_id, sam) = srv.member("sam@example.com", &sales, "member").await;
    let (sue_id, sue) = srv.member("sue@example.com", &support, "member").await;
    for (name, amount, status, close, dept, owner) in [
        ("October", 1000, "won", "2026-10-05", &sales, &sam_id),
        ("November", 3000, "won", "2026-11-02", &sales, &sam_id),
        ("Lost one", 500, "lost", "2026-11-03", &sales, &sam_id),
        ("Support's", 7000, "won", "2026-11-10", &support, &sue_id),
    ] {
        admin
            .create(
                "deals",
                json!({"name": name, "amount": amount, "status": status, "close_date": close,
                       "department": dept, "owner": owner}),
            )
            .await;
    }

    // Sam saves a report and shares it.
    let made = sam
        .post(
            "/api/v1/reports",
            json!({"name": "Won <by> month", "object": "deals", "filter": "filter[status]=won",
                   "group_by": ["close_date:month"], "measures": ["count", "sum:amount", "avg:amount"],
                   "chart": "line", "shared": true}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let id = made.body["id"].as_str().unwrap().to_string();
    assert_eq!(made.body["owner"], sam_id.as_str());

    // Each viewer gets the rows they may read, periods oldest first.
    let as_sam = sam.get(&format!("/api/v1/reports/{id}/result")).await;
    assert_eq!(as_sam.status, StatusCode::OK, "{}", as_sam.body);
    let rows = as_sam.body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{}", as_sam.body);
    assert_eq!(rows[0]["key"]["close_date:month"], "2026-10");
    assert_eq!(rows[0]["values"]["count"], 1);
    assert_eq!(rows[0]["values"]["sum:amount"], 1000.0);
    assert_eq!(rows[1]["key"]["close_date:month"], "2026-11");
    assert_eq!(rows[1]["values"]["sum:amount"], 3000.0);
    assert_eq!(as_sam.body["columns"][1]["label"], "Sum of Amount");
    let as_admin = admin.get(&format!("/api/v1/reports/{id}/result")).await;
    let november = &as_admin.body["rows"][1];
    assert_eq!(november["values"]["count"], 2, "{}", as_admin.body);
    assert_eq!(november["values"]["sum:amount"], 10000.0);
    assert_eq!(november["values"]["avg:amount"], 5000.0);
    let as_sue = sue.get(&format!("/api/v1/reports/{id}/result")).await;
    let rows = as_sue.body["rows"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        1,
        "Sue reads Support's deal only: {}",
        as_sue.body
    );
    assert_eq!(rows[0]["values"]["sum:amount"], 7000.0);

    // Drawn as SVG, every text escaped.
    let chart = sam
        .get(&format!(
            "/api/v1/reports/{id}/chart.svg?measure=sum:amount"
        ))
        .await;
    assert_eq!(chart.status, StatusCode::OK, "{}", chart.text);
    assert_eq!(chart.header("content-type"), Some("image/svg+xml"));
    assert!(
        chart
            .text
            .starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"")
    );
    assert!(chart.text.contains("<polyline"), "a line chart");
    assert!(
        chart.text.contains("Won &lt;by&gt; month · Sum of Amount"),
        "{}",
        chart.text
    );
    assert!(chart.text.contains("2026-10: 1000") && chart.text.contains("2026-11: 3000"));
    assert!(!chart.text.contains("<script"));
    let wrong = sam
        .get(&format!(
            "/api/v1/reports/{id}/chart.svg?measure=max:amount"
        ))
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(
        wrong.text.contains("no measure 'max:amount'"),
        "{}",
        wrong.text
    );

    // Group by owner: labelled with the users' names; a pie.
    let by_owner = admin
        .post(
            "/api/v1/reports",
            json!({"name": "Won by owner", "object": "deals", "filter": "filter[status]=won",
                   "group_by": ["owner"], "measures": ["sum:amount"], "chart": "pie"}),
        )
        .await;
    assert_eq!(by_owner.status, StatusCode::CREATED, "{}", by_owner.body);
    let by_owner_id = by_owner.body["id"].as_str().unwrap().to_string();
    let result = admin
        .get(&format!("/api/v1/reports/{by_owner_id}/result"))
        .await;
    assert_eq!(result.body["rows"][0]["labels"]["owner"], "sue@example.com");
    assert_eq!(result.body["rows"][1]["labels"]["owner"], "sam@example.com");
    let pie = admin
        .get(&format!("/api/v1/reports/{by_owner_id}/chart.svg"))
        .await;
    assert!(pie.text.contains("<path d=\"M"), "{}", pie.text);
    assert!(
        pie.text.contains("sue@example.com: 7000 (63.6%)"),
        "{}",
        pie.text
    );

    // A private report is not even confirmed to others; only owner or admin change one.
    assert_eq!(
        sam.get(&format!("/api/v1/reports/{by_owner_id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let listed = sam.get("/api/v1/reports").await;
    let names: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Won <by> month"]);
    let listed = admin.get("/api/v1/reports?limit=1").await;
    assert_eq!(listed.body["items"][0]["name"], "Won <by> month");
    let next = listed.body["next_cursor"].as_str().unwrap();
    let page2 = admin
        .get(&format!("/api/v1/reports?limit=1&cursor={next}"))
        .await;
    assert_eq!(page2.body["items"][0]["name"], "Won by owner");
    assert_eq!(page2.body["next_cursor"], serde_json::Value::Null);
    let refused = sue
        .patch(
            &format!("/api/v1/reports/{id}"),
            json!({"name": "Mine now"}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let renamed = admin
        .patch(
            &format!("/api/v1/reports/{id}"),
            json!({"name": "Won by month", "chart": "bar"}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["chart"], "bar");
    assert_eq!(
        renamed.body["group_by"][0], "close_date:month",
        "the rest stays"
    );

    // A field the viewer may not see: the report cannot run for them, and cannot be
    // saved by them.
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
    let hidden = cora.get(&format!("/api/v1/reports/{id}/result")).await;
    assert_eq!(hidden.status, StatusCode::BAD_REQUEST, "{}", hidden.body);
    let saved = cora
        .post(
            "/api/v1/reports",
            json!({"name": "Peek", "object": "deals", "measures": ["sum:amount"]}),
        )
        .await;
    assert_eq!(saved.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(saved.error_fields(), ["measures"]);

    // Removed by its owner.
    assert_eq!(
        sue.delete(&format!("/api/v1/reports/{id}")).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        sam.delete(&format!("/api/v1/reports/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        sam.get(&format!("/api/v1/reports/{id}/result"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

async fn bad_report_definitions_are_refused_field_by_field(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let bad = admin
        .post(
            "/api/v1/reports",
            json!({"name": "", "object": "deals", "filter": "filter[colour]=red",
                   "group_by": ["description"], "measures": ["median:amount"], "chart": "pie"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let mut fields = bad.error_fields();
    fields.sort();
    assert_eq!(
        fields,
        ["filter", "group_by", "measures", "name"],
        "{}",
        bad.body
    );
    for (body, field, says) in [
        (
            json!({"name": "x", "object": "nope"}),
            "object",
            "no object named 'nope'",
        ),
        (
            json!({"name": "x", "object": "deals", "filter": "limit=5"}),
            "filter",
            "not 'limit'",
        ),
        (
            json!({"name": "x", "object": "deals", "measures": ["sum:name"]}),
            "measures",
            "not a number",
        ),
        (
            json!({"name": "x", "object": "deals", "measures": ["count", "count"]}),
            "measures",
            "twice",
        ),
        (
            json!({"name": "x", "object": "deals", "measures": []}),
            "measures",
            "1 to",
        ),
        (
            json!({"name": "x", "object": "deals", "group_by": ["owner", "status", "company"]}),
            "group_by",
            "at most two",
        ),
        (
            json!({"name": "x", "object": "deals", "chart": "line"}),
            "chart",
            "needs a group_by",
        ),
        (
            json!({"name": "x", "object": "deals", "group_by": ["owner,status"]}),
            "group_by",
            "not one key",
        ),
        (
            json!({"name": "x", "object": "deals", "measures": ["sum:amount,probability"]}),
            "measures",
            "is not count",
        ),
    ] {
        let res = admin.post("/api/v1/reports", body.clone()).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            res.body
        );
        assert_eq!(res.error_fields(), [field], "{body}: {}", res.body);
        assert!(res.text.contains(says), "{body}: {}", res.body);
    }
    let unknown = admin
        .post(
            "/api/v1/reports",
            json!({"name": "x", "object": "deals", "colour": "red"}),
        )
        .await;
    assert_eq!(
        unknown.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unknown.body
    );
    let chart = admin
        .post(
            "/api/v1/reports",
            json!({"name": "x", "object": "deals", "chart": "radar"}),
        )
        .await;
    assert_eq!(
        chart.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        chart.body
    );
    let listed = admin.get("/api/v1/reports").await;
    assert_eq!(listed.body["items"], json!([]), "nothing half-made");
    assert_eq!(
        admin.get("/api/v1/reports?page=2").await.status,
        StatusCode::BAD_REQUEST
    );

    // The aggregate itself: averages, least and greatest values.
    for amount in [100, 300] {
        admin
            .create("deals", json!({"name": "d", "amount": amount}))
            .await;
    }
    admin.create("deals", json!({"name": "no amount"})).await;
    let agg = admin
        .get("/api/v1/records/deals/aggregate?sum=amount&avg=amount&min=amount&max=amount,probability")
        .await;
    assert_eq!(agg.status, StatusCode::OK, "{}", agg.body);
    let g = &agg.body["groups"][0];
    assert_eq!(g["count"], 3);
    assert_eq!(g["sums"]["amount"], 400.0);
    assert_eq!(
        g["avg"]["amount"], 200.0,
        "records without a value are left out"
    );
    assert_eq!(g["min"]["amount"], 100.0);
    assert_eq!(g["max"]["amount"], 300.0);
    assert_eq!(g["max"]["probability"], serde_json::Value::Null);
    let bad = admin.get("/api/v1/records/deals/aggregate?avg=name").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains("cannot avg name"), "{}", bad.text);
}

/// The first day of this month, moved by `months`, with `day`.
fn day_of_month(months: i32, day: u32) -> String {
    let today = Utc::now().date_naive();
    let first = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap();
    let first = if months >= 0 {
        first + Months::new(months as u32)
    } else {
        first - Months::new(months.unsigned_abs())
    };
    first.with_day(day).unwrap().format("%Y-%m-%d").to_string()
}

async fn the_kpi_dashboard_adds_up_a_period_per_manager(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let (ann, _) = srv.member("ann@example.com", &sales, "member").await;
    let (bob, _) = srv.member("bob@example.com", ROOT, "member").await;
    let (_, sam) = srv.member("sam@example.com", &sales, "member").await;
    let at = |day: &str| format!("{day}T09:00:00Z");
    let this = |d: u32| day_of_month(0, d);
    for (owner, kind, status, day, seconds, dept) in [
        (&ann, "call", "completed", this(2), 60, &sales),
        (&ann, "call", "completed", this(3), 120, &sales),
        (&ann, "meeting", "completed", this(3), 0, &sales),
        (&ann, "call", "cancelled", this(4), 500, &sales),
        (&ann, "call", "completed", day_of_month(-1, 20), 999, &sales),
        (&bob, "call", "completed", this(5), 30, &ROOT.to_string()),
    ] {
        admin
            .create(
                "activities",
                json!({"kind": kind, "topic": "t", "status": status, "starts_at": at(&day),
                       "duration_seconds": seconds, "owner": owner, "department": dept}),
            )
            .await;
    }
    let acme = admin.create("companies", json!({"name": "Acme"})).await["id"].clone();
    let beta = admin.create("companies", json!({"name": "Beta"})).await["id"].clone();
    for (owner, amount, status, day, company, dept) in [
        (&ann, 5000, "won", this(10), &acme, &sales),
        (&ann, 1000, "won", day_of_month(-1, 10), &acme, &sales),
        (&ann, 800, "won", this(11), &serde_json::Value::Null, &sales),
        (&bob, 2000, "won", this(12), &beta, &ROOT.to_string()),
        (&bob, 9000, "lost", this(12), &beta, &ROOT.to_string()),
    ] {
        admin
            .create(
                "deals",
                json!({"name": "d", "amount": amount, "status": status, "close_date": day,
                       "company": company, "owner": owner, "department": dept}),
            )
            .await;
    }
    admin
        .create(
            "quotas",
            json!({"user": ann, "starts_on": this(1), "amount": 11600, "owner": ann, "department": sales}),
        )
        .await;
    for (owner, status, dept) in [
        (&ann, "new", &sales),
        (&ann, "qualified", &sales),
        (&ann, "disqualified", &sales),
        (&bob, "completed", &ROOT.to_string()),
    ] {
        admin
            .create(
                "leads",
                json!({"last_name": "L", "status": status, "owner": owner, "department": dept}),
            )
            .await;
    }

    let kpis = admin.get("/api/v1/kpis").await;
    assert_eq!(kpis.status, StatusCode::OK, "{}", kpis.body);
    assert_eq!(kpis.body["from"], this(1));
    assert_eq!(kpis.body["to"], day_of_month(1, 1));
    let managers = kpis.body["managers"].as_array().unwrap();
    assert_eq!(managers.len(), 2, "{}", kpis.body);
    let a = &managers[0];
    assert_eq!(a["name"], "ann@example.com", "the largest won amount first");
    assert_eq!(
        a["calls"], 2,
        "a cancelled call and last month's are left out"
    );
    assert_eq!(a["meetings"], 1);
    assert_eq!(a["call_seconds"], 180.0);
    assert_eq!(a["seconds_per_call"], 90.0);
    assert_eq!(a["deals_won"], 2);
    assert_eq!(a["won_amount"], 5800.0);
    assert_eq!(a["quota"], 11600.0);
    assert_eq!(a["attainment"], 50.0);
    assert_eq!(a["leads"], 3);
    assert_eq!(a["prospects"], 1);
    let b = &managers[1];
    assert_eq!(b["won_amount"], 2000.0);
    assert_eq!(b["quota"], serde_json::Value::Null);
    assert_eq!(b["seconds_per_call"], 30.0);
    assert_eq!(b["prospects"], 1);
    let totals = &kpis.body["totals"];
    assert_eq!(totals["calls"], 3);
    assert_eq!(totals["won_amount"], 7800.0);
    assert_eq!(totals["leads"], 4);
    assert_eq!(totals["prospect_rate"], 50.0);
    let customers = &kpis.body["customers"];
    assert_eq!(customers["new_customers"], 1, "{}", kpis.body);
    assert_eq!(customers["new_amount"], 2000.0);
    assert_eq!(
        customers["returning_customers"], 1,
        "Acme bought last month"
    );
    assert_eq!(customers["returning_amount"], 5000.0);
    assert_eq!(customers["deals_without_company"], 1);
    assert_eq!(customers["retention_share"], 71.4);
    assert_eq!(
        kpis.body["satisfaction"],
        serde_json::Value::Null,
        "no surveys"
    );

    // Surveys, as the forms plugin keeps them.
    let object = admin
        .post(
            "/api/v1/objects",
            json!({"name": "form_submissions", "label": "Form submission", "label_plural": "Form submissions",
                   "fields": [{"name": "kind", "type": "picklist", "values": ["form", "csat", "nps"]},
                              {"name": "score", "type": "integer", "min": 0, "max": 10}]}),
        )
        .await;
    assert_eq!(object.status, StatusCode::CREATED, "{}", object.body);
    for (kind, score) in [
        ("csat", 5),
        ("csat", 4),
        ("csat", 2),
        ("nps", 10),
        ("nps", 9),
        ("nps", 3),
    ] {
        admin
            .create("form_submissions", json!({"kind": kind, "score": score}))
            .await;
    }
    let kpis = admin.get("/api/v1/kpis").await;
    let s = &kpis.body["satisfaction"];
    assert_eq!(s["csat"]["responses"], 3, "{}", kpis.body);
    assert_eq!(s["csat"]["average"], 3.7);
    assert_eq!(s["csat"]["score"], 66.7);
    assert_eq!(s["nps"]["score"], 33.3);

    // A member of Sales sees Sales' figures only; a department narrows an admin's.
    for (client, query) in [(&sam, ""), (&admin, &*format!("?department={sales}"))] {
        let kpis = client.get(&format!("/api/v1/kpis{query}")).await;
        assert_eq!(kpis.status, StatusCode::OK, "{}", kpis.body);
        let managers = kpis.body["managers"].as_array().unwrap();
        assert_eq!(managers.len(), 1, "{query}: {}", kpis.body);
        assert_eq!(managers[0]["name"], "ann@example.com");
        assert_eq!(kpis.body["totals"]["won_amount"], 5800.0);
    }
    // Last month: Ann's earlier call and won deal.
    let last = admin
        .get(&format!(
            "/api/v1/kpis?from={}&to={}",
            day_of_month(-1, 1),
            this(1)
        ))
        .await;
    assert_eq!(last.body["totals"]["calls"], 1, "{}", last.body);
    assert_eq!(last.body["customers"]["new_customers"], 1);

    for (query, says) in [
        ("?from=2026-13-01", "from must be a date"),
        ("?from=2026-11-10&to=2026-11-01", "to must come after from"),
        ("?month=11", "unknown query parameter 'month'"),
        ("?department=nope", "no department 'nope'"),
        ("?from=2020-01-01&to=2026-01-01", "at most two years"),
    ] {
        let res = admin.get(&format!("/api/v1/kpis{query}")).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(res.text.contains(says), "{query}: {}", res.text);
    }
}

async fn dashboards_show_each_report_with_the_viewers_rights(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let (_, sam) = srv.member("sam@example.com", &sales, "member").await;
    admin
        .create(
            "deals",
            json!({"name": "Sales deal", "amount": 10, "department": sales}),
        )
        .await;
    admin
        .create("deals", json!({"name": "Root deal", "amount": 99}))
        .await;
    let report = |name: &str, shared: bool| {
        let (admin, name) = (admin.clone(), name.to_string());
        async move {
            let made = admin
                .post(
                    "/api/v1/reports",
                    json!({"name": name, "object": "deals", "measures": ["count", "sum:amount"], "shared": shared}),
                )
                .await;
            assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
            made.body["id"].as_str().unwrap().to_string()
        }
    };
    let open = report("All deals", true).await;
    let private = report("Admin only", false).await;
    let board = admin
        .post(
            "/api/v1/dashboards",
            json!({"name": "Sales board", "reports": [open, private], "shared": true}),
        )
        .await;
    assert_eq!(board.status, StatusCode::CREATED, "{}", board.body);
    let id = board.body["id"].as_str().unwrap().to_string();

    // Each viewer gets each tile with their own rights.
    let as_admin = admin.get(&format!("/api/v1/dashboards/{id}/result")).await;
    assert_eq!(as_admin.status, StatusCode::OK, "{}", as_admin.body);
    assert_eq!(
        as_admin.body["tiles"][0]["result"]["rows"][0]["values"]["sum:amount"],
        109.0
    );
    assert_eq!(
        as_admin.body["tiles"][1]["result"]["report"]["name"],
        "Admin only"
    );
    let as_sam = sam.get(&format!("/api/v1/dashboards/{id}/result")).await;
    assert_eq!(as_sam.status, StatusCode::OK, "{}", as_sam.body);
    assert_eq!(
        as_sam.body["tiles"][0]["result"]["rows"][0]["values"]["sum:amount"], 10.0,
        "Sales' deal only"
    );
    assert_eq!(as_sam.body["tiles"][1].get("result"), None);
    assert!(
        as_sam.body["tiles"][1]["error"]
            .as_str()
            .unwrap()
            .contains("not shared with you")
    );
    let listed = sam.get("/api/v1/dashboards").await;
    assert_eq!(listed.body[0]["name"], "Sales board");

    // Only reports the author may open; owner or admin change it.
    let refused = sam
        .post(
            "/api/v1/dashboards",
            json!({"name": "Mine", "reports": [private]}),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(refused.error_fields(), ["reports"]);
    assert_eq!(
        sam.patch(
            &format!("/api/v1/dashboards/{id}"),
            json!({"name": "Taken"})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    for (body, fields) in [
        (json!({"name": "", "reports": []}), vec!["name", "reports"]),
        (
            json!({"name": "x", "reports": [open, open]}),
            vec!["reports"],
        ),
        (
            json!({"name": "x", "reports": vec![open.clone(); 13]}),
            vec!["reports"],
        ),
    ] {
        let res = admin.post("/api/v1/dashboards", body.clone()).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(res.error_fields(), fields, "{body}: {}", res.body);
    }
    let extra = admin
        .post(
            "/api/v1/dashboards",
            json!({"name": "x", "reports": [open], "colour": "red"}),
        )
        .await;
    assert_eq!(extra.status, StatusCode::UNPROCESSABLE_ENTITY);
    let hidden = admin
        .post(
            "/api/v1/dashboards",
            json!({"name": "Private board", "reports": [open]}),
        )
        .await;
    let hidden_id = hidden.body["id"].as_str().unwrap();
    assert_eq!(
        sam.get(&format!("/api/v1/dashboards/{hidden_id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let renamed = admin
        .patch(
            &format!("/api/v1/dashboards/{id}"),
            json!({"reports": [open]}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["name"], "Sales board");
    assert_eq!(
        admin
            .delete(&format!("/api/v1/dashboards/{id}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        admin.get(&format!("/api/v1/dashboards/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn what_the_kpis_count_is_an_admins_setting(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let (ann, member) = srv.member("ann@example.com", ROOT, "member").await;
    let defaults = admin.get("/api/v1/kpis/settings").await;
    assert_eq!(
        defaults.body,
        json!({"call_kinds": ["call"], "meeting_kinds": ["meeting"], "won_statuses": ["won"],
               "prospect_statuses": ["qualified", "completed"]})
    );
    // This company closes deals as "closed won" too, and counts emails as calls.
    let statuses = admin
        .patch(
            "/api/v1/objects/deals/fields/status",
            json!({"values": ["new", "in progress", "won", "closed won", "lost"]}),
        )
        .await;
    assert_eq!(statuses.status, StatusCode::OK, "{}", statuses.body);
    let at = format!("{}T09:00:00Z", day_of_month(0, 2));
    for (kind, seconds) in [("call", 60), ("email", 30), ("meeting", 0)] {
        admin
            .create(
                "activities",
                json!({"kind": kind, "topic": "t", "status": "completed", "starts_at": at,
                       "duration_seconds": seconds, "owner": ann}),
            )
            .await;
    }
    for (status, amount) in [("won", 1000), ("closed won", 500)] {
        admin
            .create(
                "deals",
                json!({"name": "d", "amount": amount, "status": status,
                       "close_date": day_of_month(0, 3), "owner": ann}),
            )
            .await;
    }
    let before = admin.get("/api/v1/kpis").await;
    let a = &before.body["managers"][0];
    assert_eq!(a["calls"], 1, "{}", before.body);
    assert_eq!(a["won_amount"], 1000.0);

    let set = json!({"call_kinds": ["call", "email"], "meeting_kinds": ["meeting"],
                     "won_statuses": ["won", "closed won"], "prospect_statuses": ["qualified"]});
    assert_eq!(
        member
            .put("/api/v1/kpis/settings", set.clone())
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let saved = admin.put("/api/v1/kpis/settings", set.clone()).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert_eq!(member.get("/api/v1/kpis/settings").await.body, set);
    let after = admin.get("/api/v1/kpis").await;
    let a = &after.body["managers"][0];
    assert_eq!(a["calls"], 2, "{}", after.body);
    assert_eq!(a["call_seconds"], 90.0);
    assert_eq!(a["seconds_per_call"], 45.0);
    assert_eq!(a["meetings"], 1);
    assert_eq!(a["deals_won"], 2);
    assert_eq!(a["won_amount"], 1500.0);

    // Every refused value at once; nothing changes.
    let bad = admin
        .put(
            "/api/v1/kpis/settings",
            json!({"call_kinds": ["call", "call"], "meeting_kinds": ["call"],
                   "won_statuses": ["nope"], "prospect_statuses": []}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let mut fields = bad.error_fields();
    fields.sort();
    fields.dedup();
    assert_eq!(
        fields,
        [
            "call_kinds",
            "meeting_kinds",
            "prospect_statuses",
            "won_statuses"
        ]
    );
    let extra = admin
        .put(
            "/api/v1/kpis/settings",
            json!({"call_kinds": ["call"], "colour": "blue"}),
        )
        .await;
    assert_eq!(extra.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(admin.get("/api/v1/kpis/settings").await.body, set);
}
