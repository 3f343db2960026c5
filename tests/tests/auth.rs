//! Login, logout, API tokens and users, over HTTP.

use crm_tests::reqwest::StatusCode;
use crm_tests::{ADMIN_EMAIL, Backend, Options, Server, json, on_both_backends};

on_both_backends!(
    login_returns_a_token_that_logout_revokes,
    wrong_credentials_and_missing_tokens_are_401,
    api_tokens_can_be_created_listed_and_revoked,
    an_expired_session_is_refused,
    users_are_created_by_admins_only,
);

async fn login_returns_a_token_that_logout_revokes(backend: Backend) {
    let srv = Server::start(backend).await;
    let api = srv.admin().await;
    let me = api.get("/api/v1/auth/me").await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["email"], ADMIN_EMAIL);
    assert_eq!(me.body["is_admin"], true);
    assert!(me.body.get("password_hash").is_none());
    // Emails are matched without regard to case.
    srv.login("Admin@Example.COM", crm_tests::ADMIN_PASSWORD)
        .await;
    assert_eq!(
        api.post("/api/v1/auth/logout", json!({})).await.status,
        StatusCode::NO_CONTENT
    );
    let after = api.get("/api/v1/auth/me").await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(after.header("www-authenticate"), Some("Bearer"));
}

async fn wrong_credentials_and_missing_tokens_are_401(backend: Backend) {
    let srv = Server::start(backend).await;
    let anon = srv.anonymous();
    let wrong = anon
        .post(
            "/api/v1/auth/login",
            json!({"email": ADMIN_EMAIL, "password": "nope-nope"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let unknown = anon
        .post(
            "/api/v1/auth/login",
            json!({"email": "ghost@example.com", "password": "nope-nope"}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.body["detail"], unknown.body["detail"],
        "the answer does not reveal which emails exist"
    );
    assert_eq!(
        anon.post("/api/v1/auth/login", json!({"email": ADMIN_EMAIL}))
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        anon.get("/api/v1/records/contacts").await.status,
        StatusCode::UNAUTHORIZED
    );
    let forged = crm_tests::Client {
        token: Some("crm_forged".into()),
        ..anon.clone()
    };
    let res = forged.get("/api/v1/records/contacts").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.header("content-type"), Some("application/problem+json"));
    let basic = anon
        .send(
            anon.request(crm_tests::reqwest::Method::GET, "/api/v1/objects")
                .header("authorization", "Basic YTpi"),
        )
        .await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
}

async fn api_tokens_can_be_created_listed_and_revoked(backend: Backend) {
    let srv = Server::start(backend).await;
    let api = srv.admin().await;
    let created = api
        .post(
            "/api/v1/auth/tokens",
            json!({"name": "mail sync", "expires_in_days": 30}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let token = created.body["token"].as_str().unwrap().to_string();
    let id = created.body["id"].as_str().unwrap().to_string();
    let integration = crm_tests::Client {
        token: Some(token),
        ..srv.anonymous()
    };
    let contact = integration
        .create("contacts", json!({"last_name": "From Mail"}))
        .await;
    assert_eq!(
        contact["owner"],
        api.get("/api/v1/auth/me").await.body["id"]
    );

    let listed = api.get("/api/v1/auth/tokens").await;
    let tokens = listed.body.as_array().unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0]["name"], "mail sync");
    assert!(
        tokens[0].get("token").is_none(),
        "the secret is shown only once"
    );

    assert_eq!(
        api.delete(&format!("/api/v1/auth/tokens/{id}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        integration.get("/api/v1/records/contacts").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.delete(&format!("/api/v1/auth/tokens/{id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let bad = api
        .post(
            "/api/v1/auth/tokens",
            json!({"name": "", "expires_in_days": 0}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn an_expired_session_is_refused(backend: Backend) {
    let srv = Server::start_with(backend, Options::default().env("CRM_SESSION_HOURS", "0")).await;
    let api = srv.admin().await;
    assert_eq!(
        api.get("/api/v1/auth/me").await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn users_are_created_by_admins_only(backend: Backend) {
    let srv = Server::start(backend).await;
    let (id, member) = srv.user("sam@example.com", false).await;
    let forbidden = member
        .post(
            "/api/v1/users",
            json!({"email": "x@example.com", "name": "X", "password": "password-123"}),
        )
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let admin = srv.admin().await;
    let dup = admin
        .post(
            "/api/v1/users",
            json!({"email": "SAM@example.com", "name": "Sam", "password": "password-123"}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(dup.error_fields(), ["email"]);
    let weak = admin
        .post(
            "/api/v1/users",
            json!({"email": "nope", "name": "", "password": "short"}),
        )
        .await;
    let mut fields = weak.error_fields();
    fields.sort();
    assert_eq!(fields, ["email", "name", "password"]);
    assert_eq!(
        member.get(&format!("/api/v1/users/{id}")).await.body["email"],
        "sam@example.com"
    );
    assert_eq!(
        member
            .get("/api/v1/users")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
