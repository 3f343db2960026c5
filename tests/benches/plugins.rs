//! Plugin benchmark: what a sandboxed hook costs, each figure beside its baseline in
//! the same run.
//!
//! 1. A before-save hook call on a fresh pooled instance (data-quality, through the
//!    host's runtime), against the same hook compiled natively and called directly
//!    (JSON in, logic, JSON out: the same SDK glue).
//! 2. The first compile of the component, and loading it from the compiled-code cache
//!    (what a restart pays).
//! 3. Record creates over HTTP in a department with the hook enabled, against one
//!    without, in alternating rounds.
//! 4. The server's memory with 20 plugins installed.
//!
//! Run with `cargo bench -p crm-tests --bench plugins` (`CRM_BENCH_HOOK_ONLY=1` stops
//! after [2]). Targets are reported as PASS or
//! MISS, never asserted. See BENCHMARKS.md for the figures.

mod common;

use std::time::{Duration, Instant};

use common::*;
use crm_host::plugins::runtime::{Limits, Runtime};
use crm_tests::reqwest::StatusCode;
use crm_tests::{Backend, Client, Options, Server, json, package_of, plugin_package};

const ROOT: &str = "00000000-0000-0000-0000-000000000001";
const CONTACT: &str = r#"{"id":"0193","object":"contacts","version":1,"owner":"u","department":"d","last_name":"Karimi","email":"leyla@acme.example","phone":" +98 (21) 123-45 "}"#;
const NATIVE_CALLS: usize = 20_000;
const HOOK_CALLS: usize = 2_000;
const CREATE_CLIENTS: usize = 16;
const CREATES: usize = 5_000;
const PLUGINS: usize = 20;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let started = Instant::now();
    println!();
    println!("crm plugin benchmark: data-quality's before-save hook, release build");
    println!("{}", "=".repeat(78));
    let package = plugin_package("plugins/data-quality");
    let wasm = file_in(&package, "plugin.wasm");

    println!("\n[1] One before-save hook call (a contact whose phone it normalises)");
    let native = native_calls();
    row(
        "baseline: native Rust call",
        &format!("median {}", us(native)),
        "same SDK glue and logic, compiled for this CPU",
    );
    let hook = hook_calls(&package).await;
    row(
        "fresh pooled instance + call",
        &format!("median {}", us(hook)),
        &format!(
            "{:.0}x native  {}",
            ratio(hook, native),
            target(hook <= Duration::from_micros(20), "median <= 20 us")
        ),
    );

    println!("\n[2] Loading the component");
    let cache = tempfile::tempdir().expect("temp dir");
    let runtime = Runtime::new(cache.path(), Limits::default()).expect("runtime");
    let t = Instant::now();
    runtime
        .load(crm_host::plugins::manifest::CURRENT_API, &wasm, "bench")
        .expect("the plugin loads");
    let compile = t.elapsed();
    row("first compile (cold cache)", &ms(compile), "baseline");
    let mut cached = Vec::new();
    for _ in 0..20 {
        // A fresh runtime each time, as after a restart: only the disk cache helps.
        let runtime = Runtime::new(cache.path(), Limits::default()).expect("runtime");
        let t = Instant::now();
        runtime
            .load(crm_host::plugins::manifest::CURRENT_API, &wasm, "bench")
            .expect("the plugin loads");
        cached.push(t.elapsed());
    }
    cached.sort_unstable();
    let cached = cached[cached.len() / 2];
    row(
        "load from the cache (median of 20)",
        &ms(cached),
        &format!(
            "{:.1}% of a compile  {}",
            100.0 * cached.as_secs_f64() / compile.as_secs_f64(),
            target(cached < Duration::from_millis(5), "< 5 ms")
        ),
    );

    if std::env::var("CRM_BENCH_HOOK_ONLY").is_ok() {
        return;
    }
    println!(
        "\n[3] Record create over HTTP, {CREATE_CLIENTS} clients, {CREATES} per round, release `crm serve`, SQLite"
    );
    let srv = Server::start_with(
        Backend::Sqlite,
        Options {
            release: true,
            ..Default::default()
        },
    )
    .await;
    let admin = srv.admin().await;
    let with_hook = admin.department("With the hook").await;
    let without = admin.department("Without").await;
    admin.install_plugin(package.clone(), &with_hook).await;
    let (mut plain_runs, mut hooked_runs) = (Vec::new(), Vec::new());
    for round in 0..2 {
        plain_runs.push(create_load(&admin, &without, round).await);
        hooked_runs.push(create_load(&admin, &with_hook, round).await);
    }
    let (plain, hooked) = (Run::merge(plain_runs), Run::merge(hooked_runs));
    let create_ratio = hooked.rate() / plain.rate();
    row(
        "no hook",
        &format!(
            "{} creates/s, p99 {}",
            thousands(plain.rate()),
            ms(plain.pct(0.99))
        ),
        "baseline",
    );
    row(
        "one before-save hook",
        &format!(
            "{} creates/s, p99 {}",
            thousands(hooked.rate()),
            ms(hooked.pct(0.99))
        ),
        &format!(
            "{create_ratio:.2}x  {}",
            target(create_ratio >= 0.8, ">= 0.80x")
        ),
    );
    for (who, run) in [("no hook", &plain), ("hook", &hooked)] {
        if let Some(e) = &run.first_error {
            row(
                &format!("{who} errors"),
                &format!("{}: {e}", run.errors),
                "",
            );
        }
    }

    println!("\n[4] Memory of `crm serve` with {PLUGINS} plugins installed");
    let pid = srv.pid().expect("server pid");
    let before = rss_mb(pid).unwrap_or(0.0);
    row(
        "VmRSS with 1 plugin, after [3]",
        &format!("{before:.1} MB"),
        "baseline",
    );
    let manifest = String::from_utf8(file_in(&package, "plugin.toml")).expect("utf-8");
    for i in 1..PLUGINS {
        let id = format!("data-quality-{i}");
        let toml = manifest.replace("id = \"data-quality\"", &format!("id = \"{id}\""));
        let copy = package_of(&[("plugin.toml", toml.as_bytes()), ("plugin.wasm", &wasm)]);
        assert_eq!(admin.install_plugin(copy, &with_hook).await, id);
    }
    // Every plugin's hook runs once, so each has been instantiated.
    let res = admin
        .post(
            "/api/v1/records/contacts",
            json!({"last_name": "All plugins", "phone": "+1 555", "department": with_hook}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let after = rss_mb(pid).unwrap_or(0.0);
    row(
        &format!("VmRSS with {PLUGINS} plugins"),
        &format!("{after:.1} MB"),
        &format!(
            "+{:.1} MB  {}",
            after - before,
            target(after < 150.0, "< 150 MB")
        ),
    );
    println!("\nwhole run: {:.0} s", started.elapsed().as_secs_f64());
}

/// The hook compiled for this machine, called as the SDK glue calls it in the guest.
fn native_calls() -> Duration {
    let mut times = Vec::with_capacity(NATIVE_CALLS);
    for _ in 0..NATIVE_CALLS {
        let context = crm_plugin_sdk::SaveContext {
            object: "contacts".into(),
            operation: "create".into(),
            actor: "u".into(),
            department: Some("d".into()),
        };
        let t = Instant::now();
        let patch = crm_plugin_sdk::__before_save::<data_quality::DataQuality>(
            context,
            std::hint::black_box(CONTACT.to_string()),
        );
        times.push(t.elapsed());
        assert!(matches!(patch, Ok(Some(_))));
    }
    times.sort_unstable();
    times[times.len() / 2]
}

/// The same hook through the host: installed, approved and enabled in a real app
/// (SQLite in a temporary dir), called as the records service calls it.
async fn hook_calls(package: &[u8]) -> Duration {
    use crm_host::plugins::runtime::v0_1::crm::plugin::types::SaveContext;
    let dir = tempfile::tempdir().expect("temp dir");
    // The defaults, on a data dir of its own.
    let mut config = crm_host::config::Config::from_env().expect("the default settings");
    config.data_dir = dir.path().to_path_buf();
    config.database_url = None;
    let db = crm_host::server::open_database(&config)
        .await
        .expect("database");
    let app = crm_host::server::build(config, db).await.expect("app");
    app.plugins.install(package).await.expect("install");
    app.plugins.approve("data-quality").await.expect("approve");
    app.plugins
        .enable("data-quality", ROOT)
        .await
        .expect("enable");
    let plugin = app
        .plugins
        .before_save_hooks("contacts", Some(ROOT))
        .pop()
        .expect("the hook is enabled");
    let actor = crm_host::auth::Actor {
        user_id: "u".into(),
        email: "u@example.com".into(),
        name: "U".into(),
        token_id: String::new(),
        plugin: None,
    };
    let context = SaveContext {
        object: "contacts".into(),
        operation: "create".into(),
        actor: "u".into(),
        department: Some(ROOT.into()),
    };
    // More calls on request, for profiling the call path.
    let calls = std::env::var("CRM_BENCH_HOOK_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(HOOK_CALLS);
    let mut times = Vec::with_capacity(calls);
    for i in 0..calls + 100 {
        let host = plugin.host_context(&app.records, &actor, Some(ROOT.into()), false);
        let t = Instant::now();
        let patch = app
            .plugins
            .runtime()
            .before_save(&plugin.loaded, host, &context, CONTACT)
            .await;
        let took = t.elapsed();
        assert!(matches!(patch, Ok(Some(_))), "{patch:?}");
        // The first 100 warm the pool's slots.
        if i >= 100 {
            times.push(took);
        }
    }
    times.sort_unstable();
    times[times.len() / 2]
}

fn file_in(package: &[u8], name: &str) -> Vec<u8> {
    use std::io::Read;
    let mut archive = tar::Archive::new(package);
    for entry in archive.entries().expect("tar") {
        let mut entry = entry.expect("entry");
        if entry.path().expect("path").to_string_lossy() == name {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("read");
            return bytes;
        }
    }
    panic!("{name} is not in the package");
}

async fn create_load(api: &Client, department: &str, round: usize) -> Run {
    let (api, department) = (api.clone(), department.to_string());
    run_load(CREATE_CLIENTS, CREATES, Duration::from_secs(60), move |i| {
        let (api, department) = (api.clone(), department.clone());
        async move {
            let res = api
                .post(
                    "/api/v1/records/contacts",
                    json!({"last_name": format!("Contact {round} {i}"), "phone": format!("+98 (21) {i}"),
                           "email": format!("c{round}x{i}@acme.example"), "department": department}),
                )
                .await;
            if res.status == StatusCode::CREATED {
                Ok(())
            } else {
                Err(format!("{}: {}", res.status, res.body))
            }
        }
    })
    .await
}

fn us(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}
