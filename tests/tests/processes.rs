//! The process engine through the real host: definitions published in versions,
//! instances moved by the worker through service tasks that run real plugin steps
//! (plugins/data-quality) and gateways that branch on conditions, failures that
//! become incidents an admin resolves.

use std::time::Duration;

use crm_tests::reqwest::StatusCode;
use crm_tests::{
    Backend, Client, Options, Server, eventually, json, on_both_backends, plugin_package,
};

on_both_backends!(
    a_process_runs_plugin_steps_and_branches_on_conditions,
    a_failing_step_becomes_an_incident_an_admin_retries_skips_or_cancels,
    bad_definitions_are_refused_with_every_problem_named,
    user_tasks_wait_in_the_right_inbox_while_a_parallel_timer_runs,
    records_and_forms_start_instances_and_record_changes_wake_waiting_ones,
    a_boundary_timer_escalates_a_task_nobody_did,
    process_steps_update_create_notify_and_queue_email_once_per_run,
    a_killed_host_resumes_every_instance_without_skipping_or_repeating_a_step,
    bpmn_files_import_run_and_export_and_unsupported_elements_are_named,
    a_scheduled_process_starts_once_per_period_until_unscheduled,
);

/// Long enough for a few worker rounds on a busy machine.
const RUN: Duration = Duration::from_secs(20);

/// Check the lead's email; if useful, normalise its phone, then tell big from
/// small by `amount`.
fn qualify() -> serde_json::Value {
    json!({
        "name": "Qualify a lead",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "check", "type": "service_task", "step": "data-quality/check-email"},
            {"id": "phone", "type": "service_task", "step": "data-quality/normalise-phone", "config": {"field": "phone"}},
            {"id": "size", "type": "exclusive_gateway", "default": "to-small"},
            {"id": "big", "type": "end"},
            {"id": "small", "type": "end"},
            {"id": "cold", "type": "end"}
        ],
        "flows": [
            {"id": "f1", "from": "start", "to": "check"},
            {"id": "useful", "from": "check", "to": "phone", "name": "useful"},
            {"id": "not-useful", "from": "check", "to": "cold", "name": "not-useful"},
            {"id": "f2", "from": "phone", "to": "size"},
            {"id": "to-big", "from": "size", "to": "big", "condition": "amount >= 1000 && email_useful && record.source == 'Web'"},
            {"id": "to-small", "from": "size", "to": "small"}
        ]
    })
}

async fn finished(api: &Client, id: &str) -> serde_json::Value {
    eventually(RUN, "the instance to finish", || async {
        let res = api.get(&format!("/api/v1/process-instances/{id}")).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        (res.body["status"] != "running").then_some(res.body)
    })
    .await
}

/// The nodes whose paths ended, in the instance's history.
fn ended_at(instance: &serde_json::Value) -> Vec<String> {
    instance["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["event"] == "ended")
        .map(|h| h["node"].as_str().unwrap().to_string())
        .collect()
}

async fn a_process_runs_plugin_steps_and_branches_on_conditions(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    admin
        .install_plugin(plugin_package("plugins/data-quality"), &sales)
        .await;
    let (_, sam) = srv.member("sam@example.com", &sales, "member").await;
    let lead = sam
        .create(
            "leads",
            json!({"last_name": "Diaz", "email": "ana@acme.example", "phone": "+34 91 123 45 67", "source": "Web"}),
        )
        .await;
    let lead_id = lead["id"].as_str().unwrap();

    // Members do not publish processes.
    let refused = sam.put("/api/v1/processes/qualify", qualify()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let v1 = admin.put("/api/v1/processes/qualify", qualify()).await;
    assert_eq!(v1.status, StatusCode::CREATED, "{}", v1.body);
    assert_eq!(v1.body["version"], 1);

    // A member starts it for a lead it may read: the steps act with its rights.
    let start = |amount: i64| {
        let sam = sam.clone();
        let lead_id = lead_id.to_string();
        async move {
            let res = sam
                .post(
                    "/api/v1/processes/qualify/instances",
                    json!({"variables": {"amount": amount}, "record": {"object": "leads", "id": lead_id}}),
                )
                .await;
            assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
            res.body["id"].as_str().unwrap().to_string()
        }
    };
    let big = start(5000).await;
    let small = start(10).await;
    let big = finished(&sam, &big).await;
    assert_eq!(big["status"], "completed", "{big}");
    assert_eq!(big["version"], 1);
    assert_eq!(big["variables"]["email_useful"], true, "{big}");
    assert_eq!(big["variables"]["phone"], "+34911234567", "{big}");
    assert_eq!(ended_at(&big), ["big"], "{big}");
    assert!(big["ended_at"].is_string());
    let nodes: Vec<&str> = big["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["event"] == "completed")
        .map(|h| h["node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["start", "check", "phone", "size"], "{big}");
    let small = finished(&sam, &small).await;
    assert_eq!(ended_at(&small), ["small"], "{small}");

    // A new version: new instances take it, finished ones keep theirs.
    let mut v2 = qualify();
    v2["name"] = json!("Qualify a lead (v2)");
    let published = admin.put("/api/v1/processes/qualify", v2).await;
    assert_eq!(published.body["version"], 2, "{}", published.body);
    let current = sam.get("/api/v1/processes/qualify").await;
    assert_eq!(current.body["name"], "Qualify a lead (v2)");
    let first = sam.get("/api/v1/processes/qualify?version=1").await;
    assert_eq!(first.body["name"], "Qualify a lead");
    let third = start(1).await;
    let third = finished(&sam, &third).await;
    assert_eq!(third["version"], 2);

    // Another member neither sees nor lists sam's instances; the org admin does.
    let (_, pat) = srv.member("pat@example.com", &sales, "member").await;
    let hidden = pat
        .get(&format!(
            "/api/v1/process-instances/{}",
            big["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{}", hidden.body);
    let theirs = pat.get("/api/v1/process-instances").await;
    assert_eq!(theirs.body["items"], json!([]));
    let all = admin
        .get("/api/v1/process-instances?status=completed&limit=2")
        .await;
    assert_eq!(
        all.body["items"].as_array().unwrap().len(),
        2,
        "{}",
        all.body
    );
    let rest = admin
        .get(&format!(
            "/api/v1/process-instances?status=completed&cursor={}",
            all.body["next_cursor"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        rest.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        rest.body
    );

    // A record the starter may not read starts nothing.
    let support = admin.department("Support").await;
    let other = admin
        .create(
            "leads",
            json!({"last_name": "Hidden", "department": support}),
        )
        .await;
    let res = sam
        .post(
            "/api/v1/processes/qualify/instances",
            json!({"record": {"object": "leads", "id": other["id"]}}),
        )
        .await;
    assert!(res.status.is_client_error(), "{}", res.body);
    assert_eq!(
        sam.post("/api/v1/processes/nope/instances", json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

async fn a_failing_step_becomes_an_incident_an_admin_retries_skips_or_cancels(backend: Backend) {
    let srv = Server::start_with(
        backend,
        Options::default().env("CRM_PROCESS_RETRY_MS", "20,20"),
    )
    .await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    admin
        .install_plugin(plugin_package("plugins/data-quality"), &sales)
        .await;
    let published = admin.put("/api/v1/processes/qualify", qualify()).await;
    assert_eq!(published.status, StatusCode::CREATED, "{}", published.body);
    let (_, sam) = srv.member("sam@example.com", &sales, "member").await;
    // Without a record, check-email refuses: three attempts, then an incident.
    let start = || async {
        let res = sam
            .post(
                "/api/v1/processes/qualify/instances",
                json!({"variables": {"amount": 1}}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        res.body["id"].as_str().unwrap().to_string()
    };
    let id = start().await;
    let stuck = finished(&admin, &id).await;
    assert_eq!(stuck["status"], "incident", "{stuck}");
    let token = stuck["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["status"] == "incident")
        .unwrap()
        .clone();
    assert_eq!(token["node"], "check");
    assert_eq!(token["attempts"], 3);
    assert!(
        token["last_error"]
            .as_str()
            .unwrap()
            .contains("needs the record"),
        "{token}"
    );
    let events: Vec<&str> = stuck["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["started", "completed", "failed", "failed", "incident"]
    );
    let incidents = admin.get("/api/v1/process-instances?status=incident").await;
    assert_eq!(incidents.body["items"][0]["id"], id.as_str());

    // Retry: it runs again (and fails again, the record is still missing).
    let retried = admin
        .post(&format!("/api/v1/process-instances/{id}/retry"), json!({}))
        .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    let again = finished(&admin, &id).await;
    assert_eq!(again["status"], "incident");
    assert_eq!(
        again["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["event"] == "incident")
            .count(),
        2
    );
    // Skip: the check is left by its first way out and the rest runs on.
    let skipped = admin
        .post(&format!("/api/v1/process-instances/{id}/skip"), json!({}))
        .await;
    assert_eq!(skipped.status, StatusCode::OK, "{}", skipped.body);
    let after = finished(&admin, &id).await;
    // normalise-phone also needs the record: a new incident, at the next node.
    assert_eq!(after["status"], "incident", "{after}");
    let at: Vec<&str> = after["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "incident")
        .map(|t| t["node"].as_str().unwrap())
        .collect();
    assert_eq!(at, ["phone"]);
    // Cancel: the instance stops; nothing is left to resolve.
    let cancelled = admin
        .post(&format!("/api/v1/process-instances/{id}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.body["status"], "cancelled", "{}", cancelled.body);
    assert!(
        cancelled.body["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "done" || t["status"] == "cancelled")
    );
    let nothing = admin
        .post(&format!("/api/v1/process-instances/{id}/retry"), json!({}))
        .await;
    assert_eq!(nothing.status, StatusCode::CONFLICT);
    let bad = admin
        .post(
            &format!("/api/v1/process-instances/{id}/explode"),
            json!({}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::NOT_FOUND);

    // Only admins resolve: the member who started one cannot.
    let mine = start().await;
    finished(&sam, &mine).await;
    let refused = sam
        .post(
            &format!("/api/v1/process-instances/{mine}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
}

async fn bad_definitions_are_refused_with_every_problem_named(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let bad = admin
        .put(
            "/api/v1/processes/bad",
            json!({
                "name": "Bad",
                "nodes": [
                    {"id": "start", "type": "start"},
                    {"id": "step", "type": "service_task", "step": "nobody/step"},
                    {"id": "gate", "type": "exclusive_gateway"},
                    {"id": "loop", "type": "exclusive_gateway", "default": "back"},
                    {"id": "end", "type": "end"},
                    {"id": "island", "type": "end"}
                ],
                "flows": [
                    {"id": "f1", "from": "start", "to": "step"},
                    {"id": "f2", "from": "step", "to": "gate"},
                    {"id": "f3", "from": "gate", "to": "loop", "condition": "amount >"},
                    {"id": "back", "from": "loop", "to": "gate"},
                    {"id": "f4", "from": "gate", "to": "end"}
                ]
            }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let text = bad.body.to_string();
    for says in [
        "the plugin nobody is not installed",
        "needs a default flow",
        "the expression ends",
        "'island' cannot be reached",
        "never waits",
    ] {
        assert!(text.contains(says), "{says}: {text}");
    }
    let unknown = admin
        .put(
            "/api/v1/processes/bad",
            json!({"name": "x", "nodes": [{"id": "s", "type": "sendTask"}], "flows": []}),
        )
        .await;
    assert!(unknown.status.is_client_error(), "{}", unknown.body);
    assert!(unknown.text.contains("sendTask"), "{}", unknown.text);
    let bad_key = admin.put("/api/v1/processes/Bad!", json!({})).await;
    assert!(bad_key.status.is_client_error());
    // Nothing was published.
    assert_eq!(admin.get("/api/v1/processes").await.body, json!([]));
}

/// A manager approves while a timer runs beside; both paths join, then the outcome
/// decides the end.
fn approval() -> serde_json::Value {
    json!({
        "name": "Approve a discount",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "fork", "type": "parallel_gateway"},
            {"id": "review", "name": "Approve the discount", "type": "user_task",
             "assignee": {"role": "manager"}, "due": "P2D",
             "fields": ["discount"], "outcomes": ["approved", "rejected"]},
            {"id": "cool-off", "type": "timer", "duration": "PT1S"},
            {"id": "join", "type": "parallel_gateway"},
            {"id": "decide", "type": "exclusive_gateway", "default": "no"},
            {"id": "approved", "type": "end"},
            {"id": "rejected", "type": "end"}
        ],
        "flows": [
            {"id": "f1", "from": "start", "to": "fork"},
            {"id": "f2", "from": "fork", "to": "review"},
            {"id": "f3", "from": "fork", "to": "cool-off"},
            {"id": "f4", "from": "review", "to": "join"},
            {"id": "f5", "from": "cool-off", "to": "join"},
            {"id": "f6", "from": "join", "to": "decide"},
            {"id": "yes", "from": "decide", "to": "approved", "condition": "outcome == 'approved' && discount <= 20"},
            {"id": "no", "from": "decide", "to": "rejected"}
        ]
    })
}

/// The caller's open tasks.
async fn inbox(api: &Client) -> Vec<serde_json::Value> {
    let res = api.get("/api/v1/tasks").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    res.body["items"].as_array().unwrap().clone()
}

async fn user_tasks_wait_in_the_right_inbox_while_a_parallel_timer_runs(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let support = admin.department("Support").await;
    let (_, sam) = srv.member("sam@example.com", &sales, "member").await;
    let (_, mia) = srv.member("mia@example.com", &sales, "manager").await;
    let (_, olga) = srv.member("olga@example.com", &support, "manager").await;
    let published = admin.put("/api/v1/processes/discount", approval()).await;
    assert_eq!(published.status, StatusCode::CREATED, "{}", published.body);

    let start = || async {
        let res = sam
            .post(
                "/api/v1/processes/discount/instances",
                json!({"variables": {"deal": "Acme"}}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        res.body["id"].as_str().unwrap().to_string()
    };
    let first = start().await;
    // The task reaches Sales' managers, not Sales' members nor Support's managers.
    let task = eventually(RUN, "the task in mia's inbox", || async {
        inbox(&mia).await.into_iter().next()
    })
    .await;
    assert_eq!(task["instance"], first.as_str());
    assert_eq!(task["name"], "Approve the discount");
    assert_eq!(task["outcomes"], json!(["approved", "rejected"]));
    assert!(task["due_at"].is_string());
    assert!(inbox(&sam).await.is_empty());
    assert!(inbox(&olga).await.is_empty());
    let id = task["id"].as_str().unwrap().to_string();
    let stranger = olga
        .post(
            &format!("/api/v1/tasks/{id}/complete"),
            json!({"outcome": "approved"}),
        )
        .await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND, "{}", stranger.body);

    let claimed = mia
        .post(&format!("/api/v1/tasks/{id}/claim"), json!({}))
        .await;
    assert_eq!(claimed.status, StatusCode::OK, "{}", claimed.body);
    assert!(claimed.body["claimed_by"].is_string());
    for (body, field) in [
        (json!({"outcome": "maybe"}), "outcome"),
        (json!({}), "outcome"),
        (
            json!({"outcome": "approved", "variables": {"colour": "red"}}),
            "variables.colour",
        ),
    ] {
        let bad = mia
            .post(&format!("/api/v1/tasks/{id}/complete"), body)
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
        assert_eq!(bad.error_fields(), [field], "{}", bad.body);
    }
    let done = mia
        .post(
            &format!("/api/v1/tasks/{id}/complete"),
            json!({"outcome": "approved", "variables": {"discount": 15}}),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["status"], "completed");
    let again = mia
        .post(
            &format!("/api/v1/tasks/{id}/complete"),
            json!({"outcome": "approved"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    let instance = finished(&sam, &first).await;
    assert_eq!(instance["status"], "completed", "{instance}");
    assert_eq!(ended_at(&instance), ["approved"], "{instance}");
    assert_eq!(instance["variables"]["discount"], 15);
    let history = instance["history"].as_array().unwrap();
    let joined = history.iter().filter(|h| h["event"] == "joined").count();
    assert_eq!(joined, 1, "the first path waits at the join: {instance}");
    // The timer held its path for its second.
    let at = |event: &str, node: Option<&str>| {
        let h = history
            .iter()
            .find(|h| h["event"] == event && node.is_none_or(|n| h["node"] == n))
            .unwrap();
        chrono::DateTime::parse_from_rfc3339(h["at"].as_str().unwrap()).unwrap()
    };
    let waited = at("completed", Some("cool-off")) - at("started", None);
    assert!(waited.num_milliseconds() >= 1000, "{waited}");

    // Rejected: the other end. Cancelled: the open task leaves the inbox.
    let second = start().await;
    let task = eventually(RUN, "the second task", || async {
        inbox(&mia).await.into_iter().next()
    })
    .await;
    let rejected = mia
        .post(
            &format!("/api/v1/tasks/{}/complete", task["id"].as_str().unwrap()),
            json!({"outcome": "rejected"}),
        )
        .await;
    assert_eq!(rejected.status, StatusCode::OK, "{}", rejected.body);
    assert_eq!(ended_at(&finished(&sam, &second).await), ["rejected"]);
    let third = start().await;
    eventually(RUN, "the third task", || async {
        inbox(&mia).await.into_iter().next()
    })
    .await;
    let cancelled = admin
        .post(
            &format!("/api/v1/process-instances/{third}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(cancelled.body["status"], "cancelled", "{}", cancelled.body);
    assert!(inbox(&mia).await.is_empty());
    let completed = mia.get("/api/v1/tasks?status=completed").await;
    assert_eq!(
        completed.body["items"].as_array().unwrap().len(),
        2,
        "{}",
        completed.body
    );
}

/// The instances of `process` the admin sees, newest first.
async fn instances_of(admin: &Client, process: &str) -> Vec<serde_json::Value> {
    let res = admin.get("/api/v1/process-instances?limit=200").await;
    res.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["process"] == process)
        .cloned()
        .collect()
}

async fn records_and_forms_start_instances_and_record_changes_wake_waiting_ones(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let (sam_id, sam) = srv.member("sam@example.com", &sales, "member").await;
    let published = admin
        .put(
            "/api/v1/processes/web-leads",
            json!({
                "name": "Follow up web leads",
                "nodes": [
                    {"id": "start", "type": "start", "trigger":
                        {"type": "record", "object": "leads", "on": ["created"], "condition": "record.source == 'Web'"}},
                    {"id": "until-qualified", "type": "wait_record", "condition": "record.status == 'qualified'"},
                    {"id": "end", "type": "end"}
                ],
                "flows": [
                    {"id": "f1", "from": "start", "to": "until-qualified"},
                    {"id": "f2", "from": "until-qualified", "to": "end"}
                ]
            }),
        )
        .await;
    assert_eq!(published.status, StatusCode::CREATED, "{}", published.body);
    // The trigger reads from now on: give its first round a moment.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let web = sam
        .create("leads", json!({"last_name": "Web", "source": "Web"}))
        .await;
    sam.create(
        "leads",
        json!({"last_name": "Partner", "source": "Partner"}),
    )
    .await;
    let instance = eventually(RUN, "the web lead's instance", || async {
        instances_of(&admin, "web-leads").await.into_iter().next()
    })
    .await;
    assert_eq!(instance["record"]["id"], web["id"]);
    assert_eq!(
        instance["started_by"],
        sam_id.as_str(),
        "as the user who made the change"
    );
    let id = instance["id"].as_str().unwrap().to_string();
    eventually(RUN, "the instance to wait for its lead", || async {
        let res = admin.get(&format!("/api/v1/process-instances/{id}")).await;
        res.body["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["node"] == "until-qualified" && t["status"] == "waiting")
            .then_some(())
    })
    .await;
    // A change that does not match leaves it waiting; the one that does ends it.
    let lead = format!("/api/v1/records/leads/{}", web["id"].as_str().unwrap());
    sam.patch(&lead, json!({"status": "in progress"})).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let still = admin.get(&format!("/api/v1/process-instances/{id}")).await;
    assert_eq!(still.body["status"], "running", "{}", still.body);
    sam.patch(&lead, json!({"status": "qualified"})).await;
    let done = finished(&admin, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        instances_of(&admin, "web-leads").await.len(),
        1,
        "only the web lead started one"
    );

    // A form submission starts the form's process, for its submission record.
    admin
        .install_plugin(plugin_package("plugins/forms"), &sales)
        .await;
    let form = admin
        .put(
            "/api/v1/x/forms/forms/talk",
            json!({"title": "Talk", "fields": [{"name": "last_name", "required": true}, {"name": "email", "type": "email"}]}),
        )
        .await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let published = admin
        .put(
            "/api/v1/processes/call-back",
            json!({
                "name": "Call back",
                "nodes": [
                    {"id": "start", "type": "start", "trigger": {"type": "form", "form": "talk"}},
                    {"id": "call", "type": "user_task", "assignee": {"user": sam_id}},
                    {"id": "end", "type": "end"}
                ],
                "flows": [
                    {"id": "f1", "from": "start", "to": "call"},
                    {"id": "f2", "from": "call", "to": "end"}
                ]
            }),
        )
        .await;
    assert_eq!(published.status, StatusCode::CREATED, "{}", published.body);
    let sent = srv
        .anonymous()
        .post(
            "/public/forms/f/talk",
            json!({"last_name": "Lee", "email": "lee@acme.example"}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    let task = eventually(RUN, "sam's call-back task", || async {
        inbox(&sam).await.into_iter().next()
    })
    .await;
    let started = admin
        .get(&format!(
            "/api/v1/process-instances/{}",
            task["instance"].as_str().unwrap()
        ))
        .await;
    assert_eq!(started.body["record"]["object"], "form_submissions");
    assert_eq!(started.body["record"]["id"], sent.body["submission"]);
}

async fn a_boundary_timer_escalates_a_task_nobody_did(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let (sam_id, sam) = srv.member("sam@example.com", &sales, "member").await;
    let published = admin
        .put(
            "/api/v1/processes/escalate",
            json!({
                "name": "Answer within a second",
                "nodes": [
                    {"id": "start", "type": "start"},
                    {"id": "answer", "type": "user_task", "assignee": {"user": sam_id}},
                    {"id": "too-late", "type": "boundary_timer", "attached_to": "answer", "duration": "PT1S"},
                    {"id": "answered", "type": "end"},
                    {"id": "escalated", "type": "end"}
                ],
                "flows": [
                    {"id": "f1", "from": "start", "to": "answer"},
                    {"id": "f2", "from": "answer", "to": "answered"},
                    {"id": "f3", "from": "too-late", "to": "escalated"}
                ]
            }),
        )
        .await;
    assert_eq!(published.status, StatusCode::CREATED, "{}", published.body);
    let start = || async {
        let res = sam
            .post("/api/v1/processes/escalate/instances", json!({}))
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        res.body["id"].as_str().unwrap().to_string()
    };
    // Nobody answers: the timer fires, the task is withdrawn.
    let late = start().await;
    let late = finished(&sam, &late).await;
    assert_eq!(ended_at(&late), ["escalated"], "{late}");
    assert!(inbox(&sam).await.is_empty(), "the task was withdrawn");
    // Answered in time: the timer has nothing to do.
    let quick = start().await;
    let task = eventually(RUN, "the task", || async {
        inbox(&sam).await.into_iter().next()
    })
    .await;
    let done = sam
        .post(
            &format!("/api/v1/tasks/{}/complete", task["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let quick = finished(&sam, &quick).await;
    assert_eq!(ended_at(&quick), ["answered"], "{quick}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = sam
        .get(&format!(
            "/api/v1/process-instances/{}",
            quick["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(after.body["status"], "completed");
    assert_eq!(
        ended_at(&after.body),
        ["answered"],
        "the cancelled timer never fired"
    );
}

async fn process_steps_update_create_notify_and_queue_email_once_per_run(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    admin
        .install_plugin(plugin_package("plugins/process-steps"), &sales)
        .await;
    let (sam_id, sam) = srv.member("sam@example.com", &sales, "member").await;
    let step = |id: &str, step: &str, config: serde_json::Value| json!({"id": id, "type": "service_task", "step": format!("process-steps/{step}"), "config": config});
    let published = admin
        .put(
            "/api/v1/processes/welcome",
            json!({
                "name": "Welcome a web lead",
                "nodes": [
                    {"id": "start", "type": "start", "trigger": {"type": "record", "object": "leads", "condition": "record.source == 'Web'"}},
                    step("call", "create-record", json!({"object": "activities", "as": "call_id",
                        "fields": {"kind": "call", "topic": "Call back", "assigned_to": "$record.owner"}})),
                    step("work", "update-record", json!({"fields": {"status": "in progress"}})),
                    step("tell", "notify", json!({"user": "$record.owner", "title": "New web lead {{record.last_name}}"})),
                    step("mail", "send-email", json!({"to": "$record.email", "subject": "Thanks, {{record.first_name}}", "body": "We will call you."})),
                    step("ask", "request-approval", json!({"approver": "$record.owner", "subject": "A discount for {{record.last_name}}?"})),
                    {"id": "end", "type": "end"}
                ],
                "flows": [
                    {"id": "f1", "from": "start", "to": "call"},
                    {"id": "f2", "from": "call", "to": "work"},
                    {"id": "f3", "from": "work", "to": "tell"},
                    {"id": "f4", "from": "tell", "to": "mail"},
                    {"id": "f5", "from": "mail", "to": "ask"},
                    {"id": "f6", "from": "ask", "to": "end"}
                ]
            }),
        )
        .await;
    assert_eq!(published.status, StatusCode::CREATED, "{}", published.body);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let lead = sam
        .create(
            "leads",
            json!({"first_name": "Ana", "last_name": "Diaz", "email": "ana@acme.example", "source": "Web"}),
        )
        .await;
    let instance = eventually(RUN, "the welcome instance", || async {
        instances_of(&admin, "welcome").await.into_iter().next()
    })
    .await;
    let done = finished(&admin, instance["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");
    let vars = &done["variables"];
    assert_eq!(vars["approval_requested_from"], sam_id.as_str(), "{done}");

    let call = sam
        .get(&format!(
            "/api/v1/records/activities/{}",
            vars["call_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(call.status, StatusCode::OK, "{}", call.body);
    assert_eq!(call.body["topic"], "Call back");
    assert_eq!(call.body["assigned_to"], sam_id.as_str());
    assert_eq!(call.body["department"], sales.as_str());
    let lead_now = sam
        .get(&format!(
            "/api/v1/records/leads/{}",
            lead["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(lead_now.body["status"], "in progress");
    let told = sam.get("/api/v1/notifications").await;
    let titles: Vec<&str> = told.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap())
        .collect();
    assert!(titles.contains(&"New web lead Diaz"), "{titles:?}");
    assert!(titles.contains(&"A discount for Diaz?"), "{titles:?}");
    let email = admin
        .get(&format!(
            "/api/v1/records/outgoing_emails/{}",
            vars["email_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(email.body["to"], "ana@acme.example", "{}", email.body);
    assert_eq!(email.body["subject"], "Thanks, Ana");
    assert_eq!(email.body["status"], "queued");

    // A run repeated (as after a crash) does nothing new and answers the same.
    let run = |_: ()| async {
        let res = admin
            .post(
                "/api/v1/plugins/process-steps/steps/create-record/run",
                json!({"config": {"object": "activities", "fields": {"kind": "task", "topic": "Once", "department": sales}},
                       "variables": {"_run": "run-1"}}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        res.body["variables"]["created_id"].clone()
    };
    let first = run(()).await;
    let second = run(()).await;
    assert_eq!(first, second);
    let once = admin
        .get("/api/v1/records/activities?filter[topic]=Once")
        .await;
    assert_eq!(
        once.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        once.body
    );
}

async fn a_killed_host_resumes_every_instance_without_skipping_or_repeating_a_step(
    backend: Backend,
) {
    // A short lease: the killed host's claims run out in two seconds.
    let mut srv = Server::start_with(
        backend,
        Options::default().env("CRM_PROCESS_LEASE_SECS", "2"),
    )
    .await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    admin
        .install_plugin(plugin_package("plugins/process-steps"), &sales)
        .await;
    let (_, sam) = srv.member("sam@example.com", &sales, "member").await;
    // Five steps, each creating an activity tagged with the instance's tag, with a
    // timer after the first so that the kill finds instances at every stage.
    let mut nodes = vec![json!({"id": "start", "type": "start"})];
    let mut flows = Vec::new();
    let mut last = "start".to_string();
    for n in 1..=5 {
        let id = format!("step-{n}");
        nodes.push(json!({"id": id, "type": "service_task", "step": "process-steps/create-record",
            "config": {"object": "activities", "fields": {"kind": "task", "topic": format!("step {n}"), "result": "$tag"}}}));
        flows.push(json!({"id": format!("to-{id}"), "from": last, "to": id}));
        last = id;
        if n == 1 {
            nodes.push(json!({"id": "pause", "type": "timer", "duration": "PT1S"}));
            flows.push(json!({"id": "to-pause", "from": last, "to": "pause"}));
            last = "pause".into();
        }
    }
    nodes.push(json!({"id": "end", "type": "end"}));
    flows.push(json!({"id": "to-end", "from": last, "to": "end"}));
    let published = admin
        .put(
            "/api/v1/processes/five",
            json!({"name": "Five steps", "nodes": nodes, "flows": flows}),
        )
        .await;
    assert_eq!(published.status, StatusCode::CREATED, "{}", published.body);
    const INSTANCES: usize = 20;
    for i in 0..INSTANCES {
        let res = sam
            .post(
                "/api/v1/processes/five/instances",
                json!({"variables": {"tag": format!("i-{i}")}}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    }
    // Kill it while the instances are under way.
    let count = |topic: &'static str| {
        let admin = admin.clone();
        async move {
            let res = admin
                .get(&format!(
                    "/api/v1/records/activities?filter[topic]={topic}&limit=200"
                ))
                .await;
            res.body["items"].as_array().map_or(0, Vec::len)
        }
    };
    eventually(RUN, "some first steps", || async {
        (count("step 1").await >= 5).then_some(())
    })
    .await;
    srv.kill().await;
    srv.restart().await;

    let done = eventually(
        Duration::from_secs(60),
        "every instance to complete",
        || async {
            let res = admin
                .get("/api/v1/process-instances?status=completed&limit=200")
                .await;
            let n = res.body["items"].as_array().map_or(0, Vec::len);
            (n == INSTANCES).then_some(n)
        },
    )
    .await;
    assert_eq!(done, INSTANCES);
    // The engine moved every instance through each node exactly once: no step
    // skipped, none whose move was committed ran again.
    let all = admin
        .get("/api/v1/process-instances?status=completed&limit=200")
        .await;
    for instance in all.body["items"].as_array().unwrap() {
        let id = instance["id"].as_str().unwrap();
        let view = admin.get(&format!("/api/v1/process-instances/{id}")).await;
        let mut completed: Vec<&str> = view.body["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["event"] == "completed")
            .map(|h| h["node"].as_str().unwrap())
            .collect();
        completed.sort_unstable();
        assert_eq!(
            completed,
            [
                "pause", "start", "step-1", "step-2", "step-3", "step-4", "step-5"
            ],
            "{}",
            view.body
        );
    }
    // Every step's effect is there once: a step cut off mid-run by the kill runs
    // again, and finds the record its first attempt created (its id is the run's).
    let mut seen = std::collections::BTreeMap::<(String, String), usize>::new();
    let mut cursor = String::new();
    loop {
        let res = admin
            .get(&format!("/api/v1/records/activities?limit=200{cursor}"))
            .await;
        for a in res.body["items"].as_array().unwrap() {
            let key = (
                a["result"].as_str().unwrap_or_default().to_string(),
                a["topic"].as_str().unwrap().to_string(),
            );
            *seen.entry(key).or_default() += 1;
        }
        match res.body["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), INSTANCES * 5, "no step skipped: {seen:?}");
    assert!(
        seen.values().all(|n| *n == 1),
        "no step's write twice: {seen:?}"
    );
}

/// As a modeler saves a simple approval: a manager's task, then an end by outcome.
const BPMN: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:crm="https://crm-platform.dev/bpmn"
    id="Definitions_1" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="Approval" name="Approve an offer" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:userTask id="approve" name="Approve" camunda:candidateGroups="manager" crm:outcomes="yes,no" />
    <bpmn:exclusiveGateway id="decide" default="rejected-flow" />
    <bpmn:endEvent id="approved" />
    <bpmn:endEvent id="rejected" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="approve" />
    <bpmn:sequenceFlow id="f2" sourceRef="approve" targetRef="decide" />
    <bpmn:sequenceFlow id="approved-flow" sourceRef="decide" targetRef="approved">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">${outcome == "yes"}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="rejected-flow" sourceRef="decide" targetRef="rejected" />
  </bpmn:process>
  <bpmndi:BPMNDiagram id="diagram" />
</bpmn:definitions>"#;

async fn bpmn_files_import_run_and_export_and_unsupported_elements_are_named(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let (_, sam) = srv.member("sam@example.com", &sales, "member").await;
    let (_, mia) = srv.member("mia@example.com", &sales, "manager").await;
    let put = |body: String| {
        let admin = admin.clone();
        async move {
            admin
                .send(
                    admin
                        .request(
                            crm_tests::reqwest::Method::PUT,
                            "/api/v1/processes/approval/bpmn",
                        )
                        .header("content-type", "application/xml")
                        .body(body),
                )
                .await
        }
    };
    let imported = put(BPMN.to_string()).await;
    assert_eq!(imported.status, StatusCode::CREATED, "{}", imported.body);
    assert_eq!(imported.body["name"], "Approve an offer");

    // It runs like any other definition.
    let started = sam
        .post("/api/v1/processes/approval/instances", json!({}))
        .await;
    let id = started.body["id"].as_str().unwrap().to_string();
    let task = eventually(RUN, "mia's approval", || async {
        inbox(&mia).await.into_iter().next()
    })
    .await;
    mia.post(
        &format!("/api/v1/tasks/{}/complete", task["id"].as_str().unwrap()),
        json!({"outcome": "yes"}),
    )
    .await;
    assert_eq!(ended_at(&finished(&sam, &id).await), ["approved"]);

    // Exported back as BPMN with a diagram, it imports to the same definition.
    let exported = admin.get("/api/v1/processes/approval/bpmn").await;
    assert_eq!(exported.status, StatusCode::OK);
    assert!(
        exported
            .header("content-type")
            .unwrap()
            .starts_with("application/xml")
    );
    assert!(
        exported.text.contains("<bpmn:userTask id=\"approve\""),
        "{}",
        exported.text
    );
    assert!(
        exported.text.contains("bpmndi:BPMNShape"),
        "{}",
        exported.text
    );
    let again = put(exported.text.clone()).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(again.body["version"], 2);
    assert_eq!(again.body["definition"], imported.body["definition"]);

    // Elements outside the executable subset are refused by name; nothing is published.
    let unsupported = BPMN.replace(
        "<bpmn:endEvent id=\"rejected\" />",
        "<bpmn:endEvent id=\"rejected\" /><bpmn:scriptTask id=\"script\" /><bpmn:callActivity id=\"call\" />",
    );
    let refused = put(unsupported).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused.text.contains("scriptTask is not supported"),
        "{}",
        refused.text
    );
    assert!(
        refused.text.contains("callActivity is not supported"),
        "{}",
        refused.text
    );
    assert_eq!(
        put("<not-bpmn/>".into()).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        admin.get("/api/v1/processes/approval").await.body["version"],
        2
    );
    // Members do not import.
    let member = sam
        .send(
            sam.request(
                crm_tests::reqwest::Method::PUT,
                "/api/v1/processes/approval/bpmn",
            )
            .header("content-type", "application/xml")
            .body(BPMN),
        )
        .await;
    assert_eq!(member.status, StatusCode::FORBIDDEN);
}

/// A schedule starts an instance each period, as the admin who published it, once
/// per due time; publishing a version without it stops them. The shortest period
/// is a minute unless `CRM_PROCESS_SCHEDULE_MIN_SECS` says otherwise (a second here,
/// so the test waits seconds, not minutes).
async fn a_scheduled_process_starts_once_per_period_until_unscheduled(backend: Backend) {
    let scheduled = |every: &str| {
        json!({
            "name": "Nightly clean-up",
            "nodes": [
                {"id": "start", "type": "start", "trigger": {"type": "schedule", "every": every}},
                {"id": "end", "type": "end"}
            ],
            "flows": [{"id": "f1", "from": "start", "to": "end"}]
        })
    };
    // By default a schedule runs at most every minute.
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let res = admin
        .put("/api/v1/processes/cleanup", scheduled("PT30S"))
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
    assert!(res.text.contains("at least 60 seconds"), "{}", res.text);
    drop(srv);

    let srv = Server::start_with(
        backend,
        Options::default().env("CRM_PROCESS_SCHEDULE_MIN_SECS", "1"),
    )
    .await;
    let admin = srv.admin().await;
    let res = admin
        .put("/api/v1/processes/cleanup", scheduled("PT1S"))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let started = eventually(RUN, "three scheduled starts", || async {
        let all = instances_of(&admin, "cleanup").await;
        (all.len() >= 3).then_some(all)
    })
    .await;
    let me = admin.get("/api/v1/auth/me").await.body["id"].clone();
    for instance in &started {
        assert_eq!(instance["started_by"], me, "{instance}");
    }
    // One start per due time: never two within the same second's period.
    let mut times: Vec<&str> = started
        .iter()
        .map(|i| i["created_at"].as_str().unwrap())
        .collect();
    times.sort();
    for pair in times.windows(2) {
        let gap = seconds_between(pair[0], pair[1]);
        assert!(gap >= 0.5, "two starts {gap} s apart: {times:?}");
    }

    // A version without the schedule stops it.
    let mut manual = scheduled("PT1S");
    manual["nodes"][0] = json!({"id": "start", "type": "start"});
    let res = admin.put("/api/v1/processes/cleanup", manual).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = instances_of(&admin, "cleanup").await.len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(instances_of(&admin, "cleanup").await.len(), before);
}

/// Seconds from one RFC 3339 time to another.
fn seconds_between(from: &str, to: &str) -> f64 {
    let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
    (t(to) - t(from)).num_milliseconds() as f64 / 1000.0
}
