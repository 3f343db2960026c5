//! The HTTP contract: problem+json for bad input, limits, health, OpenAPI, request
//! ids, graceful shutdown, and the `crm` command line.

use crm_tests::reqwest::{Method, StatusCode};
use crm_tests::{Backend, Options, Server, crm_binary, json, on_both_backends};

on_both_backends!(
    bad_input_gets_a_clear_4xx_and_writes_nothing,
    health_and_readiness_answer
);

async fn bad_input_gets_a_clear_4xx_and_writes_nothing(backend: Backend) {
    let srv = Server::start_with(
        backend,
        Options::default().env("CRM_MAX_BODY_BYTES", "4096"),
    )
    .await;
    let api = srv.admin().await;
    let cases: Vec<(&str, &str, StatusCode, &str)> = vec![
        (
            "application/json",
            "{\"last_name\": ",
            StatusCode::BAD_REQUEST,
            "malformed JSON",
        ),
        (
            "application/json",
            "[1, 2]",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid request body",
        ),
        (
            "application/json",
            "\"text\"",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid request body",
        ),
        (
            "text/plain",
            "{\"last_name\": \"Ng\"}",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type: application/json",
        ),
        (
            "application/json",
            "{\"last_name\": 42}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
    ];
    for (content_type, body, status, says) in cases {
        let res = api
            .raw(
                Method::POST,
                "/api/v1/records/contacts",
                content_type,
                body.to_string(),
            )
            .await;
        assert_eq!(res.status, status, "{body}: {}", res.body);
        assert_eq!(
            res.header("content-type"),
            Some("application/problem+json"),
            "{body}"
        );
        assert_eq!(res.body["status"], status.as_u16());
        let detail = res.body["detail"].as_str().unwrap();
        assert!(
            detail.contains(says),
            "{body}: '{detail}' should say '{says}'"
        );
    }
    let huge = format!("{{\"last_name\": \"{}\"}}", "x".repeat(10_000));
    let res = api
        .raw(
            Method::POST,
            "/api/v1/records/contacts",
            "application/json",
            huge,
        )
        .await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.header("content-type"), Some("application/problem+json"));
    let res = api
        .raw(
            Method::PATCH,
            "/api/v1/records/contacts/nope",
            "application/json",
            "{oops".to_string(),
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let res = api.get("/api/v1/nothing/here").await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(res.header("content-type"), Some("application/problem+json"));
    let res = api.send(api.request(Method::PUT, "/api/v1/objects")).await;
    assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
    let list = api.get("/api/v1/records/contacts").await;
    assert_eq!(
        list.body["items"].as_array().unwrap().len(),
        0,
        "nothing was written: {}",
        srv.log()
    );
    assert!(!srv.log().contains("panicked"), "{}", srv.log());
}

async fn health_and_readiness_answer(backend: Backend) {
    let srv = Server::start(backend).await;
    let anon = srv.anonymous();
    let health = anon.get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(anon.get("/readyz").await.body["status"], "ready");
    let id = health
        .header("x-request-id")
        .expect("every answer carries a request id");
    assert_eq!(id.len(), 36);
    let mine = anon
        .send(
            anon.request(Method::GET, "/healthz")
                .header("x-request-id", "trace-me-42"),
        )
        .await;
    assert_eq!(
        mine.header("x-request-id"),
        Some("trace-me-42"),
        "a client's request id is kept"
    );
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let srv = Server::start(Backend::Sqlite).await;
    let doc = srv.anonymous().get("/api/v1/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc.body["paths"].as_object().unwrap();
    let expected = [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/api/v1/openapi.json", "get"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/me", "get"),
        ("/api/v1/auth/tokens", "get"),
        ("/api/v1/auth/tokens", "post"),
        ("/api/v1/auth/tokens/{id}", "delete"),
        ("/api/v1/users", "get"),
        ("/api/v1/users", "post"),
        ("/api/v1/users/{id}", "get"),
        ("/api/v1/objects", "get"),
        ("/api/v1/objects", "post"),
        ("/api/v1/objects/{object}", "get"),
        ("/api/v1/objects/{object}", "patch"),
        ("/api/v1/objects/{object}", "delete"),
        ("/api/v1/objects/{object}/fields", "post"),
        ("/api/v1/objects/{object}/fields/{field}", "patch"),
        ("/api/v1/objects/{object}/fields/{field}", "delete"),
        ("/api/v1/records/{object}", "get"),
        ("/api/v1/records/{object}", "post"),
        ("/api/v1/records/{object}/export", "get"),
        ("/api/v1/records/{object}/mailing-list", "get"),
        ("/api/v1/records/{object}/aggregate", "get"),
        ("/api/v1/records/{object}/views", "get"),
        ("/api/v1/records/{object}/views", "post"),
        ("/api/v1/records/{object}/views/{id}", "delete"),
        ("/api/v1/records/{object}/{id}", "get"),
        ("/api/v1/records/{object}/{id}", "patch"),
        ("/api/v1/records/{object}/{id}", "delete"),
        ("/api/v1/records/{object}/{id}/history", "get"),
        ("/api/v1/events", "get"),
        ("/api/v1/notifications", "get"),
        ("/api/v1/notifications/{id}/read", "post"),
        ("/api/v1/notifications/read-all", "post"),
        ("/api/v1/notifications/settings", "get"),
        ("/api/v1/notifications/settings", "put"),
        ("/api/v1/imports", "get"),
        ("/api/v1/imports", "post"),
        ("/api/v1/imports/{id}", "get"),
        ("/api/v1/imports/{id}", "delete"),
        ("/api/v1/imports/{id}/run", "post"),
        ("/api/v1/imports/{id}/cancel", "post"),
        ("/api/v1/imports/{id}/errors", "get"),
        ("/api/v1/calls", "post"),
        ("/api/v1/calendar-feeds", "get"),
        ("/api/v1/calendar-feeds", "post"),
        ("/api/v1/calendar-feeds/{id}", "delete"),
        ("/api/v1/calendar/import", "post"),
        ("/ics/{token}", "get"),
        ("/api/v1/feed", "get"),
        ("/api/v1/reports", "get"),
        ("/api/v1/reports", "post"),
        ("/api/v1/reports/{id}", "get"),
        ("/api/v1/reports/{id}", "patch"),
        ("/api/v1/reports/{id}", "delete"),
        ("/api/v1/reports/{id}/result", "get"),
        ("/api/v1/reports/{id}/chart.svg", "get"),
        ("/api/v1/kpis", "get"),
        ("/api/v1/kpis/settings", "get"),
        ("/api/v1/kpis/settings", "put"),
        ("/api/v1/dashboards", "get"),
        ("/api/v1/dashboards", "post"),
        ("/api/v1/dashboards/{id}", "get"),
        ("/api/v1/dashboards/{id}", "patch"),
        ("/api/v1/dashboards/{id}", "delete"),
        ("/api/v1/dashboards/{id}/result", "get"),
        ("/api/v1/webhooks", "get"),
        ("/api/v1/webhooks", "post"),
        ("/api/v1/webhooks/{id}", "get"),
        ("/api/v1/webhooks/{id}", "patch"),
        ("/api/v1/webhooks/{id}", "delete"),
        ("/api/v1/webhooks/{id}/deliveries", "get"),
        ("/api/v1/webhooks/{id}/deliveries/{delivery}/replay", "post"),
        ("/api/v1/processes", "get"),
        ("/api/v1/processes/{key}", "get"),
        ("/api/v1/processes/{key}", "put"),
        ("/api/v1/processes/{key}/instances", "post"),
        ("/api/v1/processes/{key}/bpmn", "get"),
        ("/api/v1/processes/{key}/bpmn", "put"),
        ("/api/v1/process-instances", "get"),
        ("/api/v1/process-instances/{id}", "get"),
        ("/api/v1/process-instances/{id}/{action}", "post"),
        ("/api/v1/tasks", "get"),
        ("/api/v1/tasks/{id}", "get"),
        ("/api/v1/tasks/{id}/claim", "post"),
        ("/api/v1/tasks/{id}/complete", "post"),
        ("/api/v1/users/{id}", "patch"),
        ("/api/v1/users/{id}", "delete"),
        ("/api/v1/users/{id}/memberships", "get"),
        ("/api/v1/users/{id}/memberships/{department}", "put"),
        ("/api/v1/users/{id}/memberships/{department}", "delete"),
        ("/api/v1/departments", "get"),
        ("/api/v1/departments", "post"),
        ("/api/v1/departments/{id}", "get"),
        ("/api/v1/departments/{id}", "patch"),
        ("/api/v1/departments/{id}", "delete"),
        ("/api/v1/departments/{id}/members", "get"),
        ("/api/v1/roles", "get"),
        ("/api/v1/roles", "post"),
        ("/api/v1/roles/{name}", "get"),
        ("/api/v1/roles/{name}", "put"),
        ("/api/v1/roles/{name}", "delete"),
        ("/api/v1/access/denials", "get"),
        ("/api/v1/records/{object}/{id}/shares", "get"),
        ("/api/v1/records/{object}/{id}/shares", "post"),
        ("/api/v1/records/{object}/{id}/shares/{share}", "delete"),
        ("/api/v1/records/{object}/{id}/transfer", "post"),
        ("/api/v1/plugins", "get"),
        ("/api/v1/plugins", "post"),
        ("/api/v1/plugins/{id}", "get"),
        ("/api/v1/plugins/{id}", "delete"),
        ("/api/v1/plugins/{id}/approve", "post"),
        ("/api/v1/plugins/{id}/enable", "post"),
        ("/api/v1/plugins/{id}/disable", "post"),
        ("/api/v1/plugins/{id}/resume", "post"),
        ("/api/v1/plugins/{id}/dead-letters", "get"),
        ("/api/v1/plugins/{id}/dead-letters/{letter}/replay", "post"),
        ("/api/v1/folders", "get"),
        ("/api/v1/folders", "post"),
        ("/api/v1/folders/{id}/documents", "post"),
        ("/api/v1/documents", "get"),
        ("/api/v1/documents/{id}", "get"),
        ("/api/v1/documents/{id}/content", "get"),
        ("/api/v1/documents/{id}/versions", "get"),
        ("/api/v1/documents/{id}/versions", "post"),
        ("/api/v1/documents/{id}/versions/{version}/content", "get"),
        ("/api/v1/documents/{id}/history", "get"),
        ("/api/v1/documents/{id}/versions/{version}/restore", "post"),
        ("/api/v1/documents/{id}/lock", "post"),
        ("/api/v1/documents/{id}/lock", "delete"),
        ("/api/v1/documents/{id}", "delete"),
        ("/api/v1/documents/{id}/restore", "post"),
        ("/api/v1/documents/{id}/links", "get"),
        ("/api/v1/documents/{id}/links", "post"),
        ("/api/v1/documents/{id}/links", "delete"),
        ("/api/v1/records/{object}/{id}/documents", "get"),
        ("/api/v1/departments/{id}/document-quota", "get"),
        ("/api/v1/departments/{id}/document-quota", "put"),
        ("/api/v1/documents/{id}/shares", "get"),
        ("/api/v1/documents/{id}/shares", "post"),
        ("/api/v1/documents/{id}/shares/{share}", "delete"),
        ("/api/v1/plugins/{id}/jobs", "get"),
        ("/api/v1/plugins/{id}/jobs/{job}/retry", "post"),
        ("/api/v1/plugins/{id}/jobs/{job}", "delete"),
        ("/api/v1/plugins/{id}/steps", "get"),
        ("/api/v1/plugins/{id}/steps/{step}/run", "post"),
        ("/api/v1/x/{plugin}", "get"),
        ("/api/v1/x/{plugin}/{path}", "get"),
        ("/public/{plugin}/{path}", "get"),
        ("/api/v1/x/{plugin}", "post"),
        ("/api/v1/x/{plugin}/{path}", "post"),
        ("/public/{plugin}/{path}", "post"),
        ("/api/v1/x/{plugin}", "put"),
        ("/api/v1/x/{plugin}/{path}", "put"),
        ("/public/{plugin}/{path}", "put"),
        ("/api/v1/x/{plugin}", "patch"),
        ("/api/v1/x/{plugin}/{path}", "patch"),
        ("/public/{plugin}/{path}", "patch"),
        ("/api/v1/x/{plugin}", "delete"),
        ("/api/v1/x/{plugin}/{path}", "delete"),
        ("/public/{plugin}/{path}", "delete"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is documented"
        );
    }
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        documented,
        expected.len(),
        "no route is documented that this test does not know"
    );
    // Every documented route really exists: none answers with the 404 of an unknown endpoint.
    let api = srv.admin().await;
    for (path, method) in expected {
        let concrete = path
            .replace("{object}", "contacts")
            .replace("{id}", "0")
            .replace("{field}", "zzz");
        let res = api
            .send(
                api.request(method.to_uppercase().parse().unwrap(), &concrete)
                    .json(&json!({})),
            )
            .await;
        assert_ne!(res.body["detail"], "no such endpoint", "{method} {path}");
        assert_ne!(
            res.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn sigterm_stops_the_server_gracefully() {
    let mut srv =
        Server::start_with(Backend::Sqlite, Options::default().env("RUST_LOG", "info")).await;
    let pid = srv.pid().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(srv.wait().await, Some(0), "{}", srv.log());
    assert!(srv.log().contains("shutting down"));
}

#[tokio::test]
async fn the_command_line_migrates_creates_admins_and_explains_itself() {
    let bin = crm_binary(false);
    let help = std::process::Command::new(&bin)
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for word in [
        "serve",
        "migrate",
        "admin",
        "CRM_DATABASE_URL",
        "CRM_LISTEN",
        "CRM_DATA_DIR",
    ] {
        assert!(text.contains(word), "--help mentions {word}:\n{text}");
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(&bin)
            .args(args)
            .env("CRM_DATA_DIR", dir.path())
            .env_remove("CRM_DATABASE_URL")
            .env_remove("CRM_ADMIN_PASSWORD")
            .output()
            .unwrap()
    };
    let migrate = run(&["migrate"]);
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    assert!(dir.path().join("crm.db").exists());
    let weak = run(&[
        "admin",
        "create",
        "--email",
        "boss@example.com",
        "--password",
        "short",
    ]);
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("password"));
    let ok = run(&[
        "admin",
        "create",
        "--email",
        "boss@example.com",
        "--password",
        "long-enough-1",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let again = run(&[
        "admin",
        "create",
        "--email",
        "boss@example.com",
        "--password",
        "long-enough-1",
    ]);
    assert!(!again.status.success(), "the email is taken");
    let bad_url = std::process::Command::new(&bin)
        .arg("migrate")
        .env("CRM_DATABASE_URL", "mysql://nope")
        .output()
        .unwrap();
    assert!(!bad_url.status.success());
    assert!(String::from_utf8_lossy(&bad_url.stderr).contains("sqlite: or postgres:"));
}

#[tokio::test]
async fn demo_mode_fills_an_empty_crm_once() {
    let srv = Server::start_with(Backend::Sqlite, Options::default().env("CRM_DEMO", "1")).await;
    let api = srv.admin().await;
    let companies = api.get("/api/v1/records/companies").await;
    assert_eq!(companies.body["items"].as_array().unwrap().len(), 3);
    let deals = api.get("/api/v1/records/deals?filter[status]=won").await;
    let won = &deals.body["items"][0];
    let company = api
        .get(&format!(
            "/api/v1/records/companies/{}",
            won["company"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        company.status,
        StatusCode::OK,
        "demo references point at real records"
    );
    let history = api
        .get(&format!(
            "/api/v1/records/deals/{}/history",
            won["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        history.body[0]["action"], "created",
        "demo data goes through the write path and is audited"
    );

    // The first-party plugins are built, installed and enabled for the
    // organisation in the background (a cargo build the first time).
    crm_tests::eventually(
        std::time::Duration::from_secs(300),
        "the demo enabled its plugins",
        || async {
            let plugins = api.get("/api/v1/plugins").await;
            let enabled = plugins
                .body
                .as_array()?
                .iter()
                .filter(|p| {
                    p["approved"] == true
                        && p["departments"] == json!(["00000000-0000-0000-0000-000000000001"])
                })
                .count();
            (enabled == 3).then_some(())
        },
    )
    .await;
    let deal = api.create("deals", json!({"name": "Demo roll-out"})).await;
    assert_eq!(
        deal["stage"], "lead-in",
        "the pipelines plugin runs: {deal}"
    );
    let board = api.get("/api/v1/x/pipelines/board").await;
    assert_eq!(board.status, StatusCode::OK, "{}", board.body);
}
