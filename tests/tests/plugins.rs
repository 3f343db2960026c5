//! Plugins through the real host: packages built from the crates in plugins/ and
//! tests/plugins/ with `crm plugin pack`, installed over HTTP, run by Wasmtime.

use std::time::{Duration, Instant};

use crm_tests::reqwest::{Method, StatusCode};
use crm_tests::{Backend, Client, Server, json, on_both_backends, package_of, plugin_package};

on_both_backends!(
    a_plugin_cleans_contacts_only_in_departments_that_enabled_it,
    hostile_plugins_are_stopped_and_the_host_keeps_serving,
    a_plugin_reads_only_what_it_was_granted_and_the_caller_may_read,
    bad_packages_are_refused_with_clear_reasons,
);

const ROOT: &str = "00000000-0000-0000-0000-000000000001";

async fn upload(api: &Client, package: Vec<u8>) -> crm_tests::Response {
    api.raw(
        Method::POST,
        "/api/v1/plugins",
        "application/x-tar",
        package,
    )
    .await
}

/// Installs, approves and enables a plugin in `department`.
async fn install(admin: &Client, dir: &str, department: &str) -> String {
    let res = upload(admin, plugin_package(dir)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let id = res.body["id"].as_str().unwrap().to_string();
    let approved = admin
        .post(&format!("/api/v1/plugins/{id}/approve"), json!({}))
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    let enabled = admin
        .post(
            &format!("/api/v1/plugins/{id}/enable"),
            json!({"department": department}),
        )
        .await;
    assert_eq!(enabled.status, StatusCode::OK, "{}", enabled.body);
    id
}

async fn department(admin: &Client, name: &str) -> String {
    let res = admin
        .post("/api/v1/departments", json!({"name": name}))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    res.body["id"].as_str().unwrap().to_string()
}

async fn a_plugin_cleans_contacts_only_in_departments_that_enabled_it(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = department(&admin, "Sales").await;
    let support = department(&admin, "Support").await;
    let (_, sam) = srv.member("sam@example.com", &sales, "member").await;
    let (_, sue) = srv.member("sue@example.com", &support, "member").await;

    let res = upload(&admin, plugin_package("plugins/data-quality")).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(
        res.body["approved"], false,
        "nothing runs before an admin approves it"
    );
    assert_eq!(
        res.body["manifest"]["hooks"]["before_save"],
        json!(["contacts", "leads", "companies"])
    );
    let early = admin
        .post(
            "/api/v1/plugins/data-quality/enable",
            json!({"department": sales}),
        )
        .await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.body);
    assert_eq!(
        sam.post("/api/v1/plugins/data-quality/approve", json!({}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    install(&admin, "plugins/data-quality", &sales).await;

    let cleaned = sam
        .create(
            "contacts",
            json!({"last_name": "Karimi", "phone": " +98 (21) 123-45 "}),
        )
        .await;
    assert_eq!(cleaned["phone"], "+982112345");
    let refused = sam
        .post(
            "/api/v1/records/contacts",
            json!({"last_name": "Bad", "email": "bad@mailinator.com"}),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(refused.error_fields(), vec!["email"]);
    assert!(
        refused.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("throwaway"),
        "the plugin's own message reaches the client: {}",
        refused.body
    );
    let search = admin.get("/api/v1/records/contacts?q=bad").await;
    assert_eq!(
        search.body["items"],
        json!([]),
        "nothing of a refused create is stored"
    );

    // Support did not enable it: its hook never runs for support's records.
    let untouched = sue
        .create(
            "contacts",
            json!({"last_name": "Okafor", "phone": "0712 345 678", "email": "x@mailinator.com"}),
        )
        .await;
    assert_eq!(untouched["phone"], "0712 345 678");

    // Disabled for sales, it stops at once.
    let off = admin
        .post(
            "/api/v1/plugins/data-quality/disable",
            json!({"department": sales}),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK);
    assert_eq!(off.body["departments"], json!([]));
    sam.create(
        "contacts",
        json!({"last_name": "Later", "email": "y@mailinator.com"}),
    )
    .await;
}

async fn hostile_plugins_are_stopped_and_the_host_keeps_serving(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    install(&admin, "tests/plugins/hostile", ROOT).await;
    for (name, says) in [
        ("loop", "100 ms time limit"),
        ("bomb", "64 MiB of memory"),
        ("panic", "trap"),
        ("recurse", "stack"),
        ("huge", "bytes"),
        ("flood", "host calls"),
    ] {
        let started = Instant::now();
        let res = admin
            .post("/api/v1/records/companies", json!({"name": name}))
            .await;
        let took = started.elapsed();
        assert_eq!(res.status, StatusCode::BAD_GATEWAY, "{name}: {}", res.body);
        let detail = res.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("hostile 0.1.0"), "{name}: {detail}");
        assert!(detail.contains(says), "{name}: {detail}");
        assert!(took < Duration::from_secs(5), "{name} took {took:?}");
        // The host and the plugin's other calls go on.
        admin
            .create("companies", json!({"name": format!("After {name}")}))
            .await;
    }
    let all = admin.get("/api/v1/records/companies?limit=200").await;
    let names: Vec<&str> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        names.len(),
        6,
        "only the good creates were stored: {names:?}"
    );
    assert!(names.iter().all(|n| n.starts_with("After ")));
    assert_eq!(srv.anonymous().get("/healthz").await.status, StatusCode::OK);
}

async fn a_plugin_reads_only_what_it_was_granted_and_the_caller_may_read(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = department(&admin, "Sales").await;
    let support = department(&admin, "Support").await;
    install(&admin, "tests/plugins/hostile", sales.as_str()).await;
    let (_, sam) = srv.member("sam@example.com", &sales, "member").await;
    let sales_deal = admin
        .create("deals", json!({"name": "Sales deal", "department": sales}))
        .await;
    let support_deal = admin
        .create(
            "deals",
            json!({"name": "Support deal", "department": support}),
        )
        .await;
    let company = admin
        .create("companies", json!({"name": "Acme", "department": sales}))
        .await;
    let peek = |what: String| {
        let sam = sam.clone();
        async move {
            let r = sam
                .post(
                    "/api/v1/records/companies",
                    json!({"name": format!("peek:{what}")}),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            r.body["description"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        }
    };
    let id = |v: &serde_json::Value| v["id"].as_str().unwrap().to_string();
    assert_eq!(
        peek(format!("deals/{}", id(&sales_deal))).await,
        "read Sales deal"
    );
    assert_eq!(
        peek(format!("deals/{}", id(&support_deal))).await,
        "refused: record not found",
        "the plugin acts with the caller's rights"
    );
    assert_eq!(
        peek(format!("companies/{}", id(&company))).await,
        "refused: the plugin was not granted reading companies"
    );
}

async fn bad_packages_are_refused_with_clear_reasons(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let manifest = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/plugins/hostile/plugin.toml"
    ))
    .unwrap();
    let good = plugin_package("tests/plugins/hostile");
    let mut wasm = None;
    let mut archive = tar::Archive::new(good.as_slice());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy() == "plugin.wasm" {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            wasm = Some(bytes);
        }
    }
    let wasm = wasm.expect("the package holds plugin.wasm");
    let text = String::from_utf8(manifest.clone()).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not a tar file", b"hello".to_vec(), "package"),
        (
            "no component",
            package_of(&[("plugin.toml", &manifest)]),
            "plugin.wasm",
        ),
        (
            "not wasm",
            package_of(&[("plugin.toml", &manifest), ("plugin.wasm", b"MZ\x90\x00")]),
            "not a WebAssembly component",
        ),
        (
            "a core module",
            package_of(&[
                ("plugin.toml", &manifest),
                ("plugin.wasm", b"\0asm\x01\0\0\0"),
            ]),
            "core WebAssembly module",
        ),
        (
            "an unknown API version",
            package_of(&[
                (
                    "plugin.toml",
                    text.replace("api = \"0.1.0\"", "api = \"9.9.9\"")
                        .as_bytes(),
                ),
                ("plugin.wasm", &wasm),
            ]),
            "crm:plugin@9.9.9 is not supported",
        ),
        (
            "an unknown capability",
            package_of(&[
                (
                    "plugin.toml",
                    text.replace("[capabilities]", "[capabilities]\nfilesystem = [\"/\"]")
                        .as_bytes(),
                ),
                ("plugin.wasm", &wasm),
            ]),
            "filesystem",
        ),
        (
            "an unknown object",
            package_of(&[
                (
                    "plugin.toml",
                    text.replace("read = [\"deals\"]", "read = [\"secrets\"]")
                        .as_bytes(),
                ),
                ("plugin.wasm", &wasm),
            ]),
            "'secrets' is not an object",
        ),
    ];
    for (what, package, says) in cases {
        let res = upload(&admin, package).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}: {}",
            res.body
        );
        assert!(res.body.to_string().contains(says), "{what}: {}", res.body);
    }
    assert_eq!(
        admin.get("/api/v1/plugins").await.body,
        json!([]),
        "nothing was installed"
    );
    let (_, member) = srv.member("mia@example.com", ROOT, "member").await;
    assert_eq!(upload(&member, good).await.status, StatusCode::FORBIDDEN);
}
