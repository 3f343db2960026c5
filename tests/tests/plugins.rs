//! Plugins through the real host: packages built from the crates in plugins/ and
//! tests/plugins/ with `crm plugin pack`, installed over HTTP, run by Wasmtime.

use std::time::{Duration, Instant};

use crm_tests::reqwest::{Method, StatusCode};
use crm_tests::{
    Backend, Client, Server, eventually, json, on_both_backends, package_of, plugin_package,
};

/// `crm plugin new` makes a crate that passes its own tests, packs, installs and runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_plugin_from_crm_plugin_new_tests_packs_and_runs() {
    let binary = crm_tests::crm_binary(false);
    // The workspace's target dir: the scaffold's dependencies are already built there.
    let target = binary
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir");
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("hello-plugin");
    let created = std::process::Command::new(&binary)
        .args(["plugin", "new", "hello-plugin", "--dir"])
        .arg(&dir)
        .output()
        .expect("crm runs");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let again = std::process::Command::new(&binary)
        .args(["plugin", "new", "hello-plugin", "--dir"])
        .arg(&dir)
        .output()
        .expect("crm runs");
    assert!(
        !again.status.success(),
        "an existing folder is never overwritten"
    );
    let bad = std::process::Command::new(&binary)
        .args(["plugin", "new", "Hello_Plugin"])
        .current_dir(tmp.path())
        .output()
        .expect("crm runs");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("lower-case"));

    let tested = std::process::Command::new(env!("CARGO"))
        .arg("test")
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("cargo runs");
    let said = String::from_utf8_lossy(&tested.stdout);
    assert!(
        tested.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&tested.stderr)
    );
    assert!(said.contains("test result: ok. 2 passed"), "{said}");

    let package = plugin_package(dir.to_str().unwrap());
    let srv = Server::start(Backend::Sqlite).await;
    let admin = srv.admin().await;
    let res = upload(&admin, package).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    for (path, body) in [
        ("/api/v1/plugins/hello-plugin/approve", json!({})),
        (
            "/api/v1/plugins/hello-plugin/enable",
            json!({"department": ROOT}),
        ),
    ] {
        assert_eq!(admin.post(path, body).await.status, StatusCode::OK);
    }
    let trimmed = admin
        .create(
            "contacts",
            json!({"last_name": " Karimi ", "phone": "+98211234"}),
        )
        .await;
    assert_eq!(trimmed["last_name"], "Karimi");
    let refused = admin
        .post("/api/v1/records/contacts", json!({"last_name": "Nobody"}))
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(refused.error_fields(), vec!["email"]);
}

/// Longest wait for background after-save delivery (retries with backoff included).
const DELIVERY: Duration = Duration::from_secs(20);

on_both_backends!(
    a_plugin_cleans_contacts_only_in_departments_that_enabled_it,
    hostile_plugins_are_stopped_and_the_host_keeps_serving,
    a_plugin_reads_only_what_it_was_granted_and_the_caller_may_read,
    bad_packages_are_refused_with_clear_reasons,
    after_save_scores_leads_and_tells_the_owner_once,
    a_failing_after_save_is_retried_then_kept_as_a_dead_letter_an_admin_replays,
    a_plugin_that_keeps_failing_is_suspended_and_admins_are_told,
    plugin_writes_and_storage_stay_within_its_grants,
    plugin_routes_answer_signed_in_users_of_enabled_departments,
    public_routes_are_only_the_declared_paths_and_are_rate_limited,
    hostile_routes_are_stopped_and_answered_with_clear_errors,
    jobs_run_once_due_as_the_plugin_itself_and_failures_are_kept,
    a_web_lead_posted_to_a_public_route_is_created_and_scored_by_a_job,
    plugins_offer_process_steps_an_admin_can_try,
    crm_plugin_install_installs_into_a_running_servers_database,
    an_upgrade_needs_no_restart_and_calls_in_flight_finish_on_the_old_version,
    a_plugin_built_against_an_older_0_1_api_still_runs,
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
    admin.install_plugin(plugin_package(dir), department).await
}

async fn a_plugin_cleans_contacts_only_in_departments_that_enabled_it(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let support = admin.department("Support").await;
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
        ("bomb", "48 MiB of memory"),
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
    let sales = admin.department("Sales").await;
    let support = admin.department("Support").await;
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
                    text.replace("api = \"0.1.2\"", "api = \"9.9.9\"")
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
        (
            "a component missing exports of the world",
            plugin_package("tests/plugins/partial"),
            "crm:plugin/routes@0.1",
        ),
        (
            "a manifest claiming an older API than the component's",
            package_of(&[
                (
                    "plugin.toml",
                    text.replace("api = \"0.1.2\"", "api = \"0.1.0\"")
                        .replace("documents = true\n", "")
                        .as_bytes(),
                ),
                ("plugin.wasm", &wasm),
            ]),
            "but its manifest says api = \\\"0.1.0\\\"",
        ),
        (
            "a field with a bad definition",
            package_of(&[
                (
                    "plugin.toml",
                    format!("{text}\n[[fields.deals]]\nname = \"Bad Name\"\ntype = \"text\"\n")
                        .as_bytes(),
                ),
                ("plugin.wasm", &wasm),
            ]),
            "fields.deals.Bad Name",
        ),
        (
            "a field on an unknown object",
            package_of(&[
                (
                    "plugin.toml",
                    format!("{text}\n[[fields.secrets]]\nname = \"code\"\ntype = \"text\"\n")
                        .as_bytes(),
                ),
                ("plugin.wasm", &wasm),
            ]),
            "'secrets' is not an object",
        ),
        (
            "an object of its own named as a standard one",
            package_of(&[
                (
                    "plugin.toml",
                    format!("{text}\n[[objects]]\nname = \"deals\"\n").as_bytes(),
                ),
                ("plugin.wasm", &wasm),
            ]),
            "'deals' is a standard object",
        ),
        (
            "assigning records it may not write",
            package_of(&[
                (
                    "plugin.toml",
                    text.replace(
                        "[capabilities]\n",
                        "[capabilities]\nassign = [\"contacts\"]\n",
                    )
                    .as_bytes(),
                ),
                ("plugin.wasm", &wasm),
            ]),
            "assigning contacts records needs writing them",
        ),
        (
            "documents asked for on an API without them",
            package_of(&[
                (
                    "plugin.toml",
                    text.replace("api = \"0.1.2\"", "api = \"0.1.0\"")
                        .as_bytes(),
                ),
                ("plugin.wasm", &wasm),
            ]),
            "capabilities.documents",
        ),
        (
            "a deadline above the ceiling",
            package_of(&[
                (
                    "plugin.toml",
                    text.replace("route_ms = 500", "route_ms = 600000")
                        .as_bytes(),
                ),
                ("plugin.wasm", &wasm),
            ]),
            "limits.route_ms",
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

async fn after_save_scores_leads_and_tells_the_owner_once(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let support = admin.department("Support").await;
    let (_, sam) = srv.member("sam@example.com", &sales, "member").await;
    let (_, sue) = srv.member("sue@example.com", &support, "member").await;
    install(&admin, "plugins/data-quality", &sales).await;

    // Support did not enable it: its leads are never scored. Created first, so the
    // sales lead scored below proves delivery went past it.
    let support_lead = sue
        .create(
            "leads",
            json!({"first_name": "Juma", "last_name": "Otieno", "email": "juma@acme.example", "source": "Referral"}),
        )
        .await;
    let lead = sam
        .create(
            "leads",
            json!({"first_name": "Leyla", "last_name": "Karimi", "email": "leyla@acme.example",
                   "phone": "+98 21 1234", "company_name": "Acme", "source": "Referral"}),
        )
        .await;
    let id = lead["id"].as_str().unwrap().to_string();
    assert_eq!(lead["phone"], "+98211234", "before-save ran first");
    let scored = eventually(DELIVERY, "the lead to be scored", || async {
        let res = sam.get(&format!("/api/v1/records/leads/{id}")).await;
        (res.body["score"] == 100).then_some(res.body)
    })
    .await;
    assert_eq!(
        scored["version"], 2,
        "the plugin's own update does not call its after-save again"
    );
    let untouched = sue
        .get(&format!(
            "/api/v1/records/leads/{}",
            support_lead["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(untouched.body["score"], json!(null), "{}", untouched.body);
    // Who changed the score, as the audit history shows it.
    let history = sam
        .get(&format!("/api/v1/records/leads/{id}/history"))
        .await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.body);

    // The owner is told once, even after more saves (kv remembers).
    let res = sam
        .patch(
            &format!("/api/v1/records/leads/{id}"),
            json!({"notes": "Called back"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let notes = sam
        .create("leads", json!({"last_name": "Sync point"}))
        .await;
    let sync_id = notes["id"].as_str().unwrap().to_string();
    eventually(DELIVERY, "the sync lead to be scored", || async {
        let res = sam.get(&format!("/api/v1/records/leads/{sync_id}")).await;
        res.body["score"].is_number().then_some(())
    })
    .await;
    let inbox = sam.get("/api/v1/notifications?unread=true").await;
    assert_eq!(inbox.status, StatusCode::OK, "{}", inbox.body);
    let items = inbox.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", inbox.body);
    assert_eq!(items[0]["source"], "plugin:data-quality");
    assert!(items[0]["title"].as_str().unwrap().contains("Leyla Karimi"));
    let note = items[0]["id"].as_str().unwrap().to_string();

    // Nobody else reads or marks it.
    assert_eq!(
        sue.get("/api/v1/notifications").await.body["items"],
        json!([])
    );
    assert_eq!(
        sue.post(&format!("/api/v1/notifications/{note}/read"), json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let read = sam
        .post(&format!("/api/v1/notifications/{note}/read"), json!({}))
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert_eq!(read.body["marked"], 1);
    assert_eq!(
        sam.get("/api/v1/notifications?unread=true").await.body["items"],
        json!([])
    );
    let all = sam.get("/api/v1/notifications").await;
    assert_eq!(all.body["items"][0]["id"], note.as_str());
    assert!(all.body["items"][0]["read_at"].is_string());
    assert_eq!(
        sam.get("/api/v1/notifications?unread=maybe").await.status,
        StatusCode::BAD_REQUEST
    );
}

async fn a_failing_after_save_is_retried_then_kept_as_a_dead_letter_an_admin_replays(
    backend: Backend,
) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    install(&admin, "tests/plugins/hostile", ROOT).await;
    let failing = admin
        .create("companies", json!({"name": "after-save-fails"}))
        .await;
    let letters = eventually(DELIVERY, "a dead letter", || async {
        let res = admin.get("/api/v1/plugins/hostile/dead-letters").await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        (!res.body.as_array().unwrap().is_empty()).then_some(res.body)
    })
    .await;
    let letter = &letters[0];
    assert_eq!(letter["attempts"], 4, "{letter}");
    assert_eq!(letter["error"], "asked to fail");
    let events = admin
        .get(&format!(
            "/api/v1/events?after={}&limit=1",
            letter["event_seq"].as_i64().unwrap() - 1
        ))
        .await;
    assert_eq!(events.body[0]["record_id"], failing["id"]);

    // Later changes are not held up by it.
    let later = admin.create("companies", json!({"name": "Later"})).await;
    let later_id = later["id"].as_str().unwrap().to_string();
    eventually(DELIVERY, "the later company to be delivered", || async {
        let res = admin
            .post(
                "/api/v1/records/companies",
                json!({"name": format!("kv-peek:seen/{later_id}")}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        (res.body["description"] == "kv: 1").then_some(())
    })
    .await;

    // Members may not read or replay dead letters.
    let (_, member) = srv.member("m@example.com", ROOT, "member").await;
    let letter_id = letter["id"].as_str().unwrap();
    assert_eq!(
        member
            .get("/api/v1/plugins/hostile/dead-letters")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let replay = format!("/api/v1/plugins/hostile/dead-letters/{letter_id}/replay");
    assert_eq!(
        member.post(&replay, json!({})).await.status,
        StatusCode::FORBIDDEN
    );
    // Still failing: the replay says why and counts the attempt.
    let again = admin.post(&replay, json!({})).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["delivered"], false);
    assert_eq!(again.body["error"], "asked to fail");
    assert_eq!(
        admin.get("/api/v1/plugins/hostile/dead-letters").await.body[0]["attempts"],
        5
    );
    // Fixed: the replay delivers it and the dead letter is gone.
    admin.create("companies", json!({"name": "forgive"})).await;
    let fixed = admin.post(&replay, json!({})).await;
    assert_eq!(fixed.body["delivered"], true, "{}", fixed.body);
    assert_eq!(
        admin.get("/api/v1/plugins/hostile/dead-letters").await.body,
        json!([])
    );
    assert_eq!(
        admin.post(&replay, json!({})).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn a_plugin_that_keeps_failing_is_suspended_and_admins_are_told(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    install(&admin, "tests/plugins/hostile", ROOT).await;
    for _ in 0..10 {
        let res = admin
            .post("/api/v1/records/companies", json!({"name": "panic"}))
            .await;
        assert_eq!(res.status, StatusCode::BAD_GATEWAY, "{}", res.body);
    }
    let plugin = admin.get("/api/v1/plugins/hostile").await;
    let why = plugin.body["suspended"].as_str().unwrap_or_default();
    assert!(why.contains("failed 10 times in a row"), "{}", plugin.body);
    // Switched off: writes go through without it.
    let res = admin
        .post("/api/v1/records/companies", json!({"name": "panic"}))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let told = admin.get("/api/v1/notifications").await;
    assert_eq!(told.body["items"][0]["source"], "system", "{}", told.body);
    assert!(
        told.body["items"][0]["title"]
            .as_str()
            .unwrap()
            .contains("hostile")
    );
    // Resumed by an admin, it runs again.
    let resumed = admin
        .post("/api/v1/plugins/hostile/resume", json!({}))
        .await;
    assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.body);
    assert_eq!(resumed.body["suspended"], json!(null));
    let res = admin
        .post("/api/v1/records/companies", json!({"name": "panic"}))
        .await;
    assert_eq!(res.status, StatusCode::BAD_GATEWAY, "{}", res.body);
}

async fn plugin_writes_and_storage_stay_within_its_grants(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    install(&admin, "tests/plugins/hostile", &sales).await;
    install(&admin, "plugins/data-quality", &sales).await;
    let (sam_id, sam) = srv.member("sam@example.com", &sales, "member").await;

    // Owners are given only with capabilities.assign, which hostile lacks.
    let given = sam
        .get(&format!("/api/v1/x/hostile/give-deal?{sam_id}"))
        .await;
    assert_eq!(given.status, StatusCode::FORBIDDEN, "{}", given.body);
    assert!(
        given.text.contains("not granted assigning deals"),
        "{}",
        given.text
    );

    // No record writes inside before-save.
    let res = sam
        .create("companies", json!({"name": "write-in-before-save"}))
        .await;
    let said = res["description"].as_str().unwrap();
    assert!(
        said.contains("refused") && said.contains("inside before-save"),
        "{said}"
    );
    assert_eq!(
        admin.get("/api/v1/records/deals?q=sneaky").await.body["items"],
        json!([])
    );

    // kv is private: data-quality remembers the hot lead; hostile cannot see it.
    let lead = sam
        .create(
            "leads",
            json!({"first_name": "Ana", "last_name": "Diaz", "email": "ana@acme.example",
                   "phone": "+34 91 123", "company_name": "Acme", "source": "Partner"}),
        )
        .await;
    let id = lead["id"].as_str().unwrap().to_string();
    eventually(DELIVERY, "the owner to be told", || async {
        let res = sam.get("/api/v1/notifications").await;
        (!res.body["items"].as_array().unwrap().is_empty()).then_some(())
    })
    .await;
    let peek = sam
        .create("companies", json!({"name": format!("kv-peek:hot/{id}")}))
        .await;
    assert_eq!(peek["description"], "kv: none");
    let peek_id = peek["id"].as_str().unwrap().to_string();
    let seen_once = || async {
        let res = sam
            .create(
                "companies",
                json!({"name": format!("kv-peek:seen/{peek_id}")}),
            )
            .await;
        res["description"].as_str().unwrap().to_string()
    };
    eventually(
        DELIVERY,
        "hostile's after-save to count the company",
        || async { (seen_once().await == "kv: 1").then_some(()) },
    )
    .await;

    // Uninstalled and installed again, its data is still there; purged, it is gone.
    assert_eq!(
        admin.delete("/api/v1/plugins/hostile").await.status,
        StatusCode::NO_CONTENT
    );
    install(&admin, "tests/plugins/hostile", &sales).await;
    assert_eq!(seen_once().await, "kv: 1", "kv survived the reinstall");
    assert_eq!(
        admin
            .delete("/api/v1/plugins/hostile?purge=true")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    install(&admin, "tests/plugins/hostile", &sales).await;
    assert_eq!(seen_once().await, "kv: none", "purged with the plugin");
    assert_eq!(
        admin
            .delete("/api/v1/plugins/hostile?purge=maybe")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

async fn plugin_routes_answer_signed_in_users_of_enabled_departments(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let support = admin.department("Support").await;
    install(&admin, "tests/plugins/hostile", sales.as_str()).await;
    let (sam_id, sam) = srv.member("sam@example.com", &sales, "member").await;
    let (_, sue) = srv.member("sue@example.com", &support, "member").await;
    admin
        .create("deals", json!({"name": "Sales deal", "department": sales}))
        .await;
    admin
        .create(
            "deals",
            json!({"name": "Support deal", "department": support}),
        )
        .await;

    let echo = sam
        .send(
            sam.request(Method::POST, "/api/v1/x/hostile/echo?a=1&b=two")
                .header("x-custom", "yes")
                .body("12345"),
        )
        .await;
    assert_eq!(echo.status, StatusCode::OK, "{}", echo.body);
    assert_eq!(echo.body["method"], "POST");
    assert_eq!(echo.body["path"], "/echo");
    assert_eq!(echo.body["query"], "a=1&b=two");
    assert_eq!(
        echo.body["user"],
        sam_id.as_str(),
        "the plugin knows its caller"
    );
    assert_eq!(echo.body["body_bytes"], 5);
    let headers = echo.body["headers"].to_string();
    assert!(headers.contains("x-custom"), "{headers}");
    assert!(
        !headers.contains("authorization"),
        "credentials never reach a plugin: {headers}"
    );
    // The plugin acts as the caller: a member of sales reads sales' deals only.
    let deals = sam.get("/api/v1/x/hostile/deals").await;
    assert_eq!(deals.body, json!(["Sales deal"]), "{}", deals.body);
    // The admin sits above sales (root department), so the plugin serves it too; with
    // the admin's rights it still reads only departments that enabled it.
    assert_eq!(
        admin.get("/api/v1/x/hostile/deals").await.body,
        json!(["Sales deal"])
    );

    let refused = sue.get("/api/v1/x/hostile/echo").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.text.contains("not enabled in your departments"));
    assert_eq!(
        srv.anonymous().get("/api/v1/x/hostile/echo").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sam.get("/api/v1/x/data-quality/check").await.status,
        StatusCode::NOT_FOUND,
        "not installed"
    );
    let unknown = sam.get("/api/v1/x/hostile/nothing-here").await;
    assert_eq!(
        unknown.status,
        StatusCode::NOT_FOUND,
        "the plugin's own 404"
    );

    // What a plugin answers cannot set cookies on the CRM's origin, and runs sandboxed.
    let cookie = sam.get("/api/v1/x/hostile/cookie").await;
    assert_eq!(cookie.status, StatusCode::OK);
    assert_eq!(cookie.header("x-hostile"), Some("yes"));
    assert_eq!(cookie.header("set-cookie"), None);
    assert!(
        cookie
            .header("content-security-policy")
            .unwrap_or("")
            .starts_with("sandbox")
    );

    // A body over the limit is refused before the plugin runs.
    // (On a connection of its own: the server answers before reading the body and
    // closes the connection.)
    let alone = Client {
        http: crm_tests::reqwest::Client::new(),
        ..sam.clone()
    };
    let big = alone
        .send(
            alone
                .request(Method::POST, "/api/v1/x/hostile/echo")
                .body(vec![b'x'; 2 << 20]),
        )
        .await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", big.body);

    // Disabled in sales: its routes stop at once.
    let off = admin
        .post(
            "/api/v1/plugins/hostile/disable",
            json!({"department": sales}),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK);
    assert_eq!(
        sam.get("/api/v1/x/hostile/echo").await.status,
        StatusCode::FORBIDDEN
    );
}

async fn public_routes_are_only_the_declared_paths_and_are_rate_limited(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let support = admin.department("Support").await;
    install(&admin, "tests/plugins/hostile", sales.as_str()).await;
    admin
        .create("deals", json!({"name": "Sales deal", "department": sales}))
        .await;
    admin
        .create(
            "deals",
            json!({"name": "Support deal", "department": support}),
        )
        .await;
    let anyone = srv.anonymous();
    let echo = anyone.get("/public/hostile/open/echo").await;
    assert_eq!(echo.status, StatusCode::OK, "{}", echo.body);
    assert_eq!(
        echo.body["user"],
        serde_json::Value::Null,
        "no caller on public routes"
    );
    // The plugin acts as itself: it reads the deals of the departments where it is
    // enabled, nothing else.
    let deals = anyone.get("/public/hostile/open/deals").await;
    assert_eq!(deals.body, json!(["Sales deal"]), "{}", deals.body);
    assert_eq!(
        anyone.get("/public/hostile/echo").await.status,
        StatusCode::NOT_FOUND,
        "only paths the manifest declares are public"
    );
    assert_eq!(
        anyone.get("/public/nobody/open/echo").await.status,
        StatusCode::NOT_FOUND
    );
    for sneaky in [
        "/public/hostile/openx/echo",
        "/public/hostile/open/../echo",
        "/public/hostile/open/%2e%2e/echo",
        "/public/hostile/open/..%2Fecho",
    ] {
        assert_eq!(
            anyone.get(sneaky).await.status,
            StatusCode::NOT_FOUND,
            "{sneaky} is not below a declared public path"
        );
    }

    let mut limited = None;
    for _ in 0..60 {
        let r = anyone.get("/public/hostile/open/echo").await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status, StatusCode::OK);
    }
    let limited = limited.expect("a burst of public requests is limited");
    assert!(limited.header("retry-after").is_some());
    assert!(
        limited.text.contains("too many requests"),
        "{}",
        limited.text
    );
    // Signed-in routes have their own, larger budget per user.
    assert_eq!(
        admin.get("/api/v1/x/hostile/echo").await.status,
        StatusCode::OK
    );
}

async fn hostile_routes_are_stopped_and_answered_with_clear_errors(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    install(&admin, "tests/plugins/hostile", ROOT).await;
    for (path, says) in [
        ("/loop", "500 ms time limit"),
        ("/panic", "trap"),
        ("/huge", "bytes"),
        ("/bad-status", "status 42"),
    ] {
        let started = Instant::now();
        let res = admin.get(&format!("/api/v1/x/hostile{path}")).await;
        assert_eq!(res.status, StatusCode::BAD_GATEWAY, "{path}: {}", res.body);
        let detail = res.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(says), "{path}: {detail}");
        assert!(started.elapsed() < Duration::from_secs(5), "{path}");
        assert_eq!(
            admin.get("/api/v1/x/hostile/echo").await.status,
            StatusCode::OK
        );
    }
    assert_eq!(srv.anonymous().get("/healthz").await.status, StatusCode::OK);
}

async fn jobs_run_once_due_as_the_plugin_itself_and_failures_are_kept(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    install(&admin, "tests/plugins/hostile", sales.as_str()).await;
    let (_, sam) = srv.member("sam@example.com", &sales, "member").await;

    let scheduled = sam
        .post("/api/v1/x/hostile/schedule", json!({"name": "count"}))
        .await;
    assert_eq!(scheduled.status, StatusCode::CREATED, "{}", scheduled.body);
    let deals = eventually(Duration::from_secs(10), "the job ran", || async {
        let r = admin.get("/api/v1/records/deals").await;
        let items = r.body["items"].as_array().cloned().unwrap_or_default();
        (!items.is_empty()).then_some(items)
    })
    .await;
    assert_eq!(deals.len(), 1);
    assert_eq!(
        deals[0]["owner"], "plugin:hostile",
        "a job acts as the plugin itself"
    );
    assert_eq!(
        deals[0]["department"],
        sales.as_str(),
        "in a department where it is enabled"
    );
    let runs = sam.get("/api/v1/x/hostile/kv/jobs/count").await;
    assert_eq!(runs.body["value"], "1", "ran once: {}", runs.body);
    let pending = admin.get("/api/v1/plugins/hostile/jobs").await;
    assert_eq!(pending.body, json!([]), "a job that ran is gone");

    // A later job can be cancelled before it is due.
    let later = sam
        .post(
            "/api/v1/x/hostile/schedule",
            json!({"name": "count", "seconds": 3600}),
        )
        .await;
    let later_id = later.body["id"].as_str().unwrap().to_string();
    let listed = admin
        .get("/api/v1/plugins/hostile/jobs?status=scheduled")
        .await;
    assert_eq!(listed.body[0]["id"], later_id.as_str());
    let cancelled = sam
        .post(&format!("/api/v1/x/hostile/cancel/{later_id}"), json!({}))
        .await;
    assert_eq!(cancelled.body["cancelled"], true, "{}", cancelled.body);

    // A job that keeps failing is retried, then kept as failed for an admin.
    let failing = sam
        .post("/api/v1/x/hostile/schedule", json!({"name": "fail"}))
        .await;
    let failing_id = failing.body["id"].as_str().unwrap().to_string();
    let failed = eventually(
        Duration::from_secs(30),
        "the job failed every attempt",
        || async {
            let r = admin
                .get("/api/v1/plugins/hostile/jobs?status=failed")
                .await;
            r.body.as_array().and_then(|a| a.first().cloned())
        },
    )
    .await;
    assert_eq!(failed["id"], failing_id.as_str());
    assert_eq!(failed["attempts"], 3, "{failed}");
    assert!(
        failed["last_error"]
            .as_str()
            .unwrap()
            .contains("asked to fail (attempt 3)")
    );
    let retried = admin
        .post(
            &format!("/api/v1/plugins/hostile/jobs/{failing_id}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_eq!(retried.body["status"], "scheduled");
    let gone = admin
        .delete(&format!("/api/v1/plugins/hostile/jobs/{failing_id}"))
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let (_, member) = srv.member("mia@example.com", &sales, "member").await;
    assert_eq!(
        member.get("/api/v1/plugins/hostile/jobs").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        admin
            .get("/api/v1/plugins/hostile/jobs?status=odd")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

async fn a_web_lead_posted_to_a_public_route_is_created_and_scored_by_a_job(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    install(&admin, "plugins/data-quality", sales.as_str()).await;
    let anyone = srv.anonymous();
    let refused = anyone
        .post(
            "/public/data-quality/web-lead",
            json!({"last_name": "Karimi", "email": "x@mailinator.com"}),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    let posted = anyone
        .post(
            "/public/data-quality/web-lead",
            json!({"first_name": "Leyla", "last_name": "Karimi", "email": "leyla@acme.example",
                   "phone": "+98 21 1234", "company_name": "Acme"}),
        )
        .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.body);
    let id = posted.body["id"].as_str().unwrap().to_string();
    let lead = eventually(
        Duration::from_secs(10),
        "the job scored the web lead",
        || async {
            let r = admin.get(&format!("/api/v1/records/leads/{id}")).await;
            r.body["score"].as_i64().is_some().then_some(r.body)
        },
    )
    .await;
    assert_eq!(lead["score"], 90, "{lead}");
    assert_eq!(lead["phone"], "+98211234");
    assert_eq!(lead["source"], "Web");
    assert_eq!(lead["department"], sales.as_str());
    let (_, sam) = srv.member("sam@example.com", &sales, "member").await;
    let checked = sam
        .post(
            "/api/v1/x/data-quality/check",
            json!({"email": "a@b.c", "phone": "0712 345"}),
        )
        .await;
    assert_eq!(
        checked.body,
        json!({"email_useful": false, "phone": "0712345"})
    );
}

async fn plugins_offer_process_steps_an_admin_can_try(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    install(&admin, "plugins/data-quality", ROOT).await;
    let steps = admin.get("/api/v1/plugins/data-quality/steps").await;
    assert_eq!(steps.status, StatusCode::OK, "{}", steps.body);
    let names: Vec<&str> = steps
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["normalise-phone", "check-email"]);
    assert_eq!(steps.body[0]["config_schema"]["type"], "object");

    let ran = admin
        .post(
            "/api/v1/plugins/data-quality/steps/normalise-phone/run",
            json!({"config": {"field": "mobile"}, "record": {"mobile": "+1 (555) 010"}}),
        )
        .await;
    assert_eq!(ran.status, StatusCode::OK, "{}", ran.body);
    assert_eq!(
        ran.body,
        json!({"variables": {"mobile": "+1555010"}, "next": null})
    );
    let branched = admin
        .post(
            "/api/v1/plugins/data-quality/steps/check-email/run",
            json!({"record": {"email": "x@mailinator.com"}}),
        )
        .await;
    assert_eq!(branched.body["next"], "not-useful");
    let unknown = admin
        .post(
            "/api/v1/plugins/data-quality/steps/nope/run",
            json!({"record": {}}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unknown.text.contains("no step type 'nope'"),
        "{}",
        unknown.text
    );
    let (_, member) = srv.member("mia@example.com", ROOT, "member").await;
    assert_eq!(
        member
            .post(
                "/api/v1/plugins/data-quality/steps/check-email/run",
                json!({})
            )
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        admin.get("/api/v1/plugins/nobody/steps").await.status,
        StatusCode::NOT_FOUND
    );
}

async fn crm_plugin_install_installs_into_a_running_servers_database(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let file = tempfile::Builder::new()
        .suffix(".crmplugin")
        .tempfile()
        .unwrap();
    std::fs::write(file.path(), plugin_package("plugins/data-quality")).unwrap();
    let install = |extra: &[&str]| {
        std::process::Command::new(crm_tests::crm_binary(false))
            .args(["plugin", "install"])
            .arg(file.path())
            .args(extra)
            .env("CRM_DATA_DIR", srv.data_dir.path())
            .env("CRM_DATABASE_URL", &srv.database_url)
            .output()
            .expect("crm runs")
    };
    let refused = install(&["--enable", "no-such-department"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("department: is not a department"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let done = install(&["--enable", ROOT]);
    let said = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(
        said.contains("installed data-quality 0.1.0 (approved: true"),
        "{said}"
    );
    // The running server picks it up without a restart: its hook cleans phones.
    let contact = eventually(
        Duration::from_secs(10),
        "the server runs the new plugin",
        || async {
            let r = admin
                .post(
                    "/api/v1/records/contacts",
                    json!({"last_name": "Karimi", "phone": "+98 21 1234"}),
                )
                .await;
            (r.body["phone"] == "+98211234").then_some(r.body)
        },
    )
    .await;
    assert_eq!(contact["last_name"], "Karimi");
    let garbage = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(garbage.path(), b"not a package").unwrap();
    let bad = std::process::Command::new(crm_tests::crm_binary(false))
        .args(["plugin", "install"])
        .arg(garbage.path())
        .env("CRM_DATA_DIR", srv.data_dir.path())
        .env("CRM_DATABASE_URL", &srv.database_url)
        .output()
        .expect("crm runs");
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("package: is not"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

async fn an_upgrade_needs_no_restart_and_calls_in_flight_finish_on_the_old_version(
    backend: Backend,
) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    install(&admin, "tests/plugins/hostile", ROOT).await;
    let package = plugin_package("tests/plugins/hostile");
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut archive = tar::Archive::new(package.as_slice());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        if name == "plugin.toml" {
            bytes = String::from_utf8(bytes)
                .unwrap()
                .replace("version = \"0.1.0\"", "version = \"0.2.0\"")
                .into_bytes();
        }
        files.push((name, bytes));
    }
    let upgrade = package_of(
        &files
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect::<Vec<_>>(),
    );

    // A call that runs until its 500 ms limit, started before the upgrade.
    let slow = {
        let admin = admin.clone();
        tokio::spawn(async move { admin.get("/api/v1/x/hostile/loop").await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let upgraded = upload(&admin, upgrade).await;
    assert_eq!(upgraded.status, StatusCode::CREATED, "{}", upgraded.body);
    assert_eq!(upgraded.body["version"], "0.2.0");
    assert_eq!(upgraded.body["approved"], true, "it asks for nothing more");
    let in_flight = slow.await.unwrap();
    assert_eq!(in_flight.status, StatusCode::BAD_GATEWAY);
    assert!(
        in_flight.text.contains("hostile 0.1.0 failed"),
        "the call in flight finished on the old version: {}",
        in_flight.text
    );
    let after = admin.get("/api/v1/x/hostile/loop").await;
    assert!(
        after.text.contains("hostile 0.2.0 failed"),
        "{}",
        after.text
    );
    assert_eq!(
        admin.get("/api/v1/x/hostile/echo").await.status,
        StatusCode::OK,
        "no restart"
    );
}

/// tests/plugins/legacy is built against the frozen crm:plugin@0.1.0 (no SDK): its
/// imports and exports say `@0.1.0` while the host binds 0.1.2. It installs, its
/// hook patches records, its route calls the host's `records.get`.
async fn a_plugin_built_against_an_older_0_1_api_still_runs(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let installed = install(&admin, "tests/plugins/legacy", &sales).await;
    let info = admin.get(&format!("/api/v1/plugins/{installed}")).await;
    assert_eq!(info.body["api"], "0.1.0", "{}", info.body);

    let company = admin
        .create("companies", json!({"name": "Acme", "department": sales}))
        .await;
    assert_eq!(
        company["description"], "checked by a crm:plugin@0.1.0 plugin",
        "{company}"
    );
    let id = company["id"].as_str().unwrap();
    let read = admin.get(&format!("/api/v1/x/legacy/company/{id}")).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert!(read.text.contains("\"name\":\"Acme\""), "{}", read.text);
    assert_eq!(
        admin.get("/api/v1/x/legacy/about").await.text,
        "crm:plugin@0.1.0"
    );
}
