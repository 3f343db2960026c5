//! The pipelines plugin (plugins/pipelines) through the real host: installed from
//! its package, approved (which adds its fields to deals), enabled in one
//! department; deals moved over the REST API, refused with field errors, their
//! history and the board read through the plugin's routes as the caller.

use crm_tests::reqwest::StatusCode;
use crm_tests::{Backend, Client, Server, json, on_both_backends, plugin_package};

on_both_backends!(
    deals_move_through_stages_by_their_rules_and_keep_a_history,
    the_board_forecast_funnel_and_targets_show_what_the_caller_may_read,
    approval_stops_when_a_field_exists_with_another_type,
    admins_define_their_own_pipelines,
);

/// A deal's id after a create that must succeed.
async fn deal(api: &Client, body: serde_json::Value) -> String {
    api.create("deals", body).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn move_to(api: &Client, id: &str, body: serde_json::Value) -> crm_tests::Response {
    api.patch(&format!("/api/v1/records/deals/{id}"), body)
        .await
}

async fn deals_move_through_stages_by_their_rules_and_keep_a_history(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    admin
        .install_plugin(plugin_package("plugins/pipelines"), &sales)
        .await;
    // Approving the plugin added its fields to deals.
    let deals = admin.get("/api/v1/objects/deals").await;
    let fields = deals.body["fields"].to_string();
    assert!(
        fields.contains("\"pipeline\"") && fields.contains("\"stage\""),
        "{fields}"
    );
    let (sam_id, sam) = srv.member("sam@example.com", &sales, "member").await;
    let acme = sam.create("companies", json!({"name": "Acme"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    // A new deal starts in the first stage of the default pipeline.
    let created = sam.create("deals", json!({"name": "Acme renewal"})).await;
    assert_eq!(created["pipeline"], "sales");
    assert_eq!(created["stage"], "lead-in");
    assert_eq!(created["probability"], 10);
    assert_eq!(created["status"], "new");
    let id = created["id"].as_str().unwrap().to_string();

    // Each stage asks for its fields; the refusal names them.
    let refused = move_to(&sam, &id, json!({"stage": "negotiation"})).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    let fields = refused.error_fields();
    assert!(
        fields.contains(&"amount".to_string()) && fields.contains(&"close_date".to_string()),
        "{}",
        refused.body
    );
    let unknown = move_to(&sam, &id, json!({"stage": "signed"})).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unknown
            .text
            .contains("is not a stage of the sales pipeline"),
        "{}",
        unknown.text
    );
    let wrong_type = move_to(&sam, &id, json!({"stage": "proposal", "amount": "lots"})).await;
    assert_eq!(wrong_type.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong_type.error_fields().contains(&"amount".to_string()));

    for (body, stage, probability, status) in [
        (
            json!({"stage": "qualified", "company": acme}),
            "qualified",
            25,
            "in progress",
        ),
        (
            json!({"stage": "proposal", "amount": 12000}),
            "proposal",
            50,
            "in progress",
        ),
        (
            json!({"stage": "won", "close_date": "2026-12-15"}),
            "won",
            100,
            "won",
        ),
    ] {
        let moved = move_to(&sam, &id, body).await;
        assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
        assert_eq!(moved.body["stage"], stage);
        assert_eq!(moved.body["probability"], probability);
        assert_eq!(moved.body["status"], status);
    }
    // A won deal stays won.
    let reopened = move_to(&sam, &id, json!({"stage": "negotiation"})).await;
    assert_eq!(reopened.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        reopened.text.contains("cannot move to 'negotiation'"),
        "{}",
        reopened.text
    );
    // Clearing a field its stage needs is refused too.
    let cleared = move_to(&sam, &id, json!({"amount": null})).await;
    assert_eq!(cleared.status, StatusCode::UNPROCESSABLE_ENTITY);

    // The history, from the outbox: every stage entered, by whom, how long.
    let history = crm_tests::eventually(
        std::time::Duration::from_secs(10),
        "the history",
        || async {
            let h = sam
                .get(&format!("/api/v1/x/pipelines/deals/{id}/history"))
                .await;
            (h.body["moves"].as_array().map_or(0, Vec::len) == 4).then_some(h)
        },
    )
    .await;
    let moves = history.body["moves"].as_array().unwrap();
    let stages: Vec<&str> = moves.iter().map(|m| m["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["lead-in", "qualified", "proposal", "won"]);
    assert!(moves.iter().all(|m| m["moved_by"] == sam_id.as_str()));
    assert!(
        moves[0]["seconds_in_stage"]
            .as_i64()
            .is_some_and(|s| s >= 0)
    );
    assert!(moves[3]["left_at"].is_null(), "still in its last stage");

    // Someone who may not read the deal gets no history.
    let support = admin.department("Support").await;
    let (_, sue) = srv.member("sue@example.com", &support, "member").await;
    assert_eq!(
        sue.get(&format!("/api/v1/x/pipelines/deals/{id}/history"))
            .await
            .status,
        StatusCode::FORBIDDEN,
        "the plugin is not enabled for support"
    );

    // The covering index its manifest declares was created on approval.
    if backend == Backend::Sqlite {
        let db = srv.data_dir.path().join("crm.db");
        let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", db.display()))
            .await
            .unwrap();
        let sql: String = sqlx::query_scalar(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'px_pipelines_deals_0'",
        )
        .fetch_one(&pool)
        .await
        .expect("the declared index exists");
        assert!(sql.contains("department_id, owner_id"), "{sql}");
    }

    let pipelines = sam.get("/api/v1/x/pipelines/pipelines").await;
    assert_eq!(pipelines.body[0]["name"], "sales");
    assert_eq!(pipelines.body[0]["stages"][4]["moves_to"], json!([]));
}

async fn the_board_forecast_funnel_and_targets_show_what_the_caller_may_read(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    admin
        .install_plugin(plugin_package("plugins/pipelines"), &sales)
        .await;
    let (sam_id, sam) = srv.member("sam@example.com", &sales, "member").await;
    let (pat_id, pat) = srv.member("pat@example.com", &sales, "partner").await;
    deal(&sam, json!({"name": "A", "amount": 1000})).await;
    deal(
        &sam,
        json!({"name": "B", "amount": 3000, "stage": "proposal", "close_date": "2026-12-20"}),
    )
    .await;
    let shared = deal(
        &admin,
        json!({"name": "C", "amount": 500, "department": sales}),
    )
    .await;
    deal(
        &admin,
        json!({"name": "D", "amount": 7000, "close_date": "2026-12-01", "stage": "won", "department": sales}),
    )
    .await;

    let board = sam.get("/api/v1/x/pipelines/board").await;
    assert_eq!(board.status, StatusCode::OK, "{}", board.body);
    let stage = |b: &serde_json::Value, name: &str| {
        b["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stage"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(stage(&board.body, "lead-in")["count"], 2);
    assert_eq!(stage(&board.body, "lead-in")["amount"], 1500.0);
    assert_eq!(stage(&board.body, "proposal")["weighted"], 1500.0);
    assert_eq!(stage(&board.body, "won")["count"], 1);
    assert_eq!(board.body["open"]["count"], 3);
    assert_eq!(board.body["open"]["amount"], 4500.0);
    let mine = sam
        .get(&format!("/api/v1/x/pipelines/board?owner={sam_id}"))
        .await;
    assert_eq!(mine.body["open"]["count"], 2, "{}", mine.body);

    // A partner sees only what is shared with it.
    let empty = pat.get("/api/v1/x/pipelines/board").await;
    assert_eq!(empty.body["open"]["count"], 0, "{}", empty.body);
    let share = admin
        .post(
            &format!("/api/v1/records/deals/{shared}/shares"),
            json!({"user": pat_id, "access": "read"}),
        )
        .await;
    assert_eq!(share.status, StatusCode::CREATED, "{}", share.body);
    let one = pat.get("/api/v1/x/pipelines/board").await;
    assert_eq!(one.body["open"]["count"], 1, "{}", one.body);
    assert_eq!(one.body["open"]["amount"], 500.0);

    let bad = sam.get("/api/v1/x/pipelines/board?colour=red").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains("not a filter here"), "{}", bad.text);

    // The forecast: open deals by close month, weighted by their stage.
    let forecast = sam.get("/api/v1/x/pipelines/forecast").await;
    assert_eq!(
        forecast.body["months"],
        json!([
            {"month": "2026-12", "count": 1, "amount": 3000.0, "weighted": 1500.0},
            {"month": "unscheduled", "count": 2, "amount": 1500.0, "weighted": 150.0},
        ]),
        "{}",
        forecast.body
    );
    // The board of deals closing in a period: B (open) and D (won) close in December.
    let december = sam.get("/api/v1/x/pipelines/board?period=2026-12").await;
    assert_eq!(december.body["open"]["count"], 1, "{}", december.body);
    assert_eq!(stage(&december.body, "won")["count"], 1);
    let quarter = sam.get("/api/v1/x/pipelines/board?period=2026-Q4").await;
    assert_eq!(quarter.body["open"]["amount"], 3000.0, "{}", quarter.body);
    let bad = sam.get("/api/v1/x/pipelines/board?period=2026-13").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);

    // E is lost after reaching proposal: the funnel counts it up to there.
    let e = deal(
        &sam,
        json!({"name": "E", "amount": 800, "stage": "proposal"}),
    )
    .await;
    let lost = move_to(&sam, &e, json!({"stage": "lost"})).await;
    assert_eq!(lost.status, StatusCode::OK, "{}", lost.body);
    assert_eq!(lost.body["lost_from"], "proposal");
    assert_eq!(lost.body["status"], "lost");
    // The funnel: A and C in lead-in, B in proposal, D won, E lost from proposal.
    let funnel = sam.get("/api/v1/x/pipelines/funnel").await;
    let reached: Vec<i64> = funnel.body["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reached"].as_i64().unwrap())
        .collect();
    assert_eq!(reached, [5, 3, 3, 1, 1], "{}", funnel.body);
    assert_eq!(funnel.body["stages"][0]["went_on_percent"], 60.0);
    assert_eq!(
        funnel.body["stages"][2]["went_on_percent"], 33.33,
        "of B, D and E at proposal only D went on: {}",
        funnel.body
    );
    // Reopened, it forgets where it was lost.
    let reopened = move_to(&sam, &e, json!({"stage": "lead-in"})).await;
    assert_eq!(reopened.status, StatusCode::OK, "{}", reopened.body);
    assert!(reopened.body["lost_from"].is_null(), "{}", reopened.body);

    // Targets: admins set them, anyone the plugin serves reads the progress.
    let activity = sam
        .post(
            "/api/v1/records/activities",
            json!({"kind": "meeting", "topic": "Kick-off", "status": "completed", "starts_at": "2026-12-03T10:00:00Z", "assigned_to": sam_id}),
        )
        .await;
    assert_eq!(activity.status, StatusCode::CREATED, "{}", activity.body);
    for (id, goal) in [
        (
            "sales-deals",
            json!({"metric": "deals_won", "target": 10, "period": "2026-12", "department": sales}),
        ),
        (
            "sales-amount",
            json!({"metric": "amount_won", "target": 50000, "period": "2026-Q4", "department": sales}),
        ),
        (
            "sam-meetings",
            json!({"metric": "meetings_held", "target": 30, "period": "2026-12", "user": sam_id}),
        ),
    ] {
        let set = admin
            .put(&format!("/api/v1/x/pipelines/targets/{id}"), goal)
            .await;
        assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    }
    let refused = sam
        .put(
            "/api/v1/x/pipelines/targets/mine",
            json!({"metric": "deals_won", "target": 1, "period": "2026-12"}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let bad = admin
        .put(
            "/api/v1/x/pipelines/targets/bad",
            json!({"metric": "smiles", "target": 0, "period": "next week"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.error_fields(), ["metric", "target", "period"]);
    let progress = sam.get("/api/v1/x/pipelines/targets").await;
    let summaries: Vec<&str> = progress
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["summary"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        summaries,
        [
            "7000 of 50000 won in 2026-Q4",
            "1 of 10 deals won in 2026-12",
            "1 of 30 meetings held in 2026-12",
        ],
        "{}",
        progress.body
    );
    let december = sam.get("/api/v1/x/pipelines/targets?period=2026-12").await;
    assert_eq!(december.body.as_array().unwrap().len(), 2);
}

/// The fields a manifest declares are created on approval; one that exists with
/// another type stops the approval with a 409, and nothing is enabled.
async fn approval_stops_when_a_field_exists_with_another_type(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let added = admin
        .post(
            "/api/v1/objects/deals/fields",
            json!({"name": "stage", "type": "integer"}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let uploaded = admin
        .raw(
            crm_tests::reqwest::Method::POST,
            "/api/v1/plugins",
            "application/x-tar",
            plugin_package("plugins/pipelines"),
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);
    let approved = admin
        .post("/api/v1/plugins/pipelines/approve", json!({}))
        .await;
    assert_eq!(approved.status, StatusCode::CONFLICT, "{}", approved.body);
    assert!(
        approved.text.contains("already has a field 'stage'"),
        "{}",
        approved.text
    );
    let info = admin.get("/api/v1/plugins/pipelines").await;
    assert_eq!(info.body["approved"], false);
}

/// Admins add pipelines (or replace a built-in one); deals in them follow their
/// stages' rules; members cannot define them; bad definitions name their problems.
async fn admins_define_their_own_pipelines(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    admin
        .install_plugin(plugin_package("plugins/pipelines"), &sales)
        .await;
    let (_, sam) = srv.member("sam@example.com", &sales, "member").await;
    let partners = json!({
        "label": "Partner deals",
        "stages": [
            {"name": "intro", "label": "Introduced", "probability": 20, "kind": "open"},
            {"name": "signed", "probability": 100, "kind": "won", "required": ["amount"], "to": []},
            {"name": "dropped", "probability": 0, "kind": "lost", "to": ["intro"]},
        ]
    });
    let refused = sam
        .put("/api/v1/x/pipelines/pipelines/partners", partners.clone())
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let bad = admin
        .put(
            "/api/v1/x/pipelines/pipelines/broken",
            json!({"label": "", "stages": [
                {"name": "won", "probability": 150, "kind": "won", "to": ["nowhere"]},
                {"name": "won", "probability": 1, "kind": "open"},
            ]}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let fields = bad.error_fields();
    for f in ["label", "stages[0]", "stages[1]"] {
        assert!(fields.contains(&f.to_string()), "{f}: {}", bad.body);
    }
    let saved = admin
        .put("/api/v1/x/pipelines/pipelines/partners", partners)
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let listed = sam.get("/api/v1/x/pipelines/pipelines").await;
    let names: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sales", "renewals", "partners"]);

    let created = sam
        .create("deals", json!({"name": "Reseller", "pipeline": "partners"}))
        .await;
    assert_eq!(created["stage"], "intro");
    assert_eq!(created["probability"], 20);
    let id = created["id"].as_str().unwrap();
    let needs_amount = move_to(&sam, id, json!({"stage": "signed"})).await;
    assert_eq!(
        needs_amount.error_fields(),
        ["amount"],
        "{}",
        needs_amount.body
    );
    let signed = move_to(&sam, id, json!({"stage": "signed", "amount": 900})).await;
    assert_eq!(signed.status, StatusCode::OK, "{}", signed.body);
    assert_eq!(signed.body["status"], "won");
    let board = sam.get("/api/v1/x/pipelines/board?pipeline=partners").await;
    assert_eq!(board.body["stages"][1]["count"], 1, "{}", board.body);
    assert_eq!(board.body["stages"][1]["amount"], 900.0);

    // Replacing a built-in pipeline, then removing the replacement.
    let own_sales = json!({"label": "Sales", "stages": [
        {"name": "new", "probability": 5, "kind": "open"},
        {"name": "won", "probability": 100, "kind": "won"},
    ]});
    assert_eq!(
        admin
            .put("/api/v1/x/pipelines/pipelines/sales", own_sales)
            .await
            .status,
        StatusCode::OK
    );
    let replaced = sam.create("deals", json!({"name": "Own"})).await;
    assert_eq!(replaced["stage"], "new");
    assert_eq!(
        admin
            .delete("/api/v1/x/pipelines/pipelines/sales")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let builtin = sam.create("deals", json!({"name": "Built-in"})).await;
    assert_eq!(builtin["stage"], "lead-in");
}
