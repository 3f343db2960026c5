//! Access benchmark: what record scope costs. Lists over 1,000,000 records as an
//! organisation admin (no condition), a member (department scope) and a user who sees
//! only its own records, and record creates as admin and as member, in one run.
//!
//! Run with `cargo bench -p crm-tests --bench access` (it builds and starts a release
//! `crm serve` on SQLite). Targets are reported as PASS or MISS, never asserted.
//! See BENCHMARKS.md for the figures.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use crm_tests::reqwest::StatusCode;
use crm_tests::{Backend, Client, Options, Server, json};
use sqlx::{AssertSqlSafe, Row};

/// Departments the records are spread over, round robin.
const DEPARTMENTS: usize = 10;
/// The own-scope user owns every this-many-th record (1,000 of 1,000,000).
const OWN_EVERY: usize = 1_000;
const LIST_QUERIES: usize = 300;
const LIST_CLIENTS: usize = 4;
const LIST_TIME: Duration = Duration::from_secs(30);
const CREATE_CLIENTS: usize = 16;
const CREATES: usize = 10_000;
const CREATE_TIME: Duration = Duration::from_secs(60);
const TARGET_SCOPED_LIST_P50: Duration = Duration::from_millis(30);
/// The permission check may cost at most 10% of the admin's throughput.
const TARGET_RATIO: f64 = 0.9;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let started = Instant::now();
    println!();
    println!("crm access benchmark: release `crm serve`, SQLite, loopback HTTP");
    println!("{}", "=".repeat(78));
    let srv = Server::start_with(
        Backend::Sqlite,
        Options {
            release: true,
            ..Default::default()
        },
    )
    .await;
    let admin = srv.admin().await;
    let res = admin
        .post(
            "/api/v1/objects",
            json!({"name": "bench_items", "fields": [
                {"name": "name", "type": "text"},
                {"name": "code", "type": "integer", "indexed": true}
            ]}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let mut departments = Vec::new();
    for d in 0..DEPARTMENTS {
        let res = admin
            .post(
                "/api/v1/departments",
                json!({"name": format!("Department {d}")}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        departments.push(res.body["id"].as_str().unwrap().to_string());
    }
    let res = admin
        .post(
            "/api/v1/roles",
            json!({"name": "own_only", "label": "Own records only",
                   "permissions": {"*": {"read": "own", "create": "own"}}}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let (_, member) = srv
        .member("member@example.com", &departments[0], "member")
        .await;
    let (own_id, own) = srv
        .member("own@example.com", &departments[0], "own_only")
        .await;

    let (pool, admin_id) = open_server_db(&srv).await;
    progress("seeding");
    let seed_time = seed(&pool, |i| {
        let owner = if i % OWN_EVERY == 0 {
            own_id.clone()
        } else {
            admin_id.clone()
        };
        (owner, Some(departments[i % DEPARTMENTS].clone()))
    })
    .await;
    row(
        "seeding (not measured)",
        &format!(
            "{} records over {DEPARTMENTS} departments in {:.1} s; the own-scope user owns {}",
            thousands(SEED_ROWS as f64),
            seed_time.as_secs_f64(),
            thousands((SEED_ROWS / OWN_EVERY) as f64)
        ),
        "",
    );

    // Baseline: the admin's page as a bare SELECT through sqlx.
    let bare = "SELECT id, object, version, owner_id, department_id, created_at, updated_at, data AS data \
                FROM records WHERE object = 'bench_items' ORDER BY id DESC LIMIT 51";
    println!("\n[1] First page of a list (limit=50), 1 client, {LIST_QUERIES} requests each");
    progress("lists");
    let baseline = {
        let pool = pool.clone();
        run_load(1, LIST_QUERIES, LIST_TIME, move |_| {
            let pool = pool.clone();
            async move {
                let rows = sqlx::query(bare)
                    .fetch_all(&pool)
                    .await
                    .map_err(|e| e.to_string())?;
                if rows.len() == 51 {
                    Ok(())
                } else {
                    Err(format!("{} rows", rows.len()))
                }
            }
        })
        .await
    };
    row("baseline: bare SELECT via sqlx", &latencies(&baseline), "");
    let path = Arc::new("/api/v1/records/bench_items?limit=50".to_string());
    let as_admin = list_load(&admin, path.clone(), 1, LIST_QUERIES).await;
    row(
        "org admin (scope all)",
        &latencies(&as_admin),
        &format!(
            "p50 {:.1}x bare",
            ratio(as_admin.pct(0.5), baseline.pct(0.5))
        ),
    );
    let as_member = list_load(&member, path.clone(), 1, LIST_QUERIES).await;
    row(
        "member (department scope)",
        &latencies(&as_member),
        &format!(
            "p50 {:.1}x admin  {}",
            ratio(as_member.pct(0.5), as_admin.pct(0.5)),
            target(
                as_member.errors == 0 && as_member.pct(0.5) < TARGET_SCOPED_LIST_P50,
                "p50 < 30 ms"
            )
        ),
    );
    let as_own = list_load(&own, path.clone(), 1, LIST_QUERIES).await;
    row(
        "own-scope user (1,000 of 1M)",
        &latencies(&as_own),
        &format!(
            "p50 {:.1}x admin  {}",
            ratio(as_own.pct(0.5), as_admin.pct(0.5)),
            target(
                as_own.errors == 0 && as_own.pct(0.5) < TARGET_SCOPED_LIST_P50,
                "p50 < 30 ms"
            )
        ),
    );
    for (who, run) in [("member", &as_member), ("own", &as_own)] {
        if let Some(e) = &run.first_error {
            row(
                &format!("{who} errors"),
                &format!("{}: {e}", run.errors),
                "",
            );
        }
    }
    // The shape the host generates (records/query.rs): the first page of each branch
    // of the read scope on its own index, then the first page of their union.
    let plans = [
        ("plan: member", "department_id = 'x'"),
        ("plan: own-scope", "owner_id = 'x'"),
    ];
    for (label, scope) in plans {
        let page = |cond: &str| {
            format!(
                "SELECT id FROM (SELECT id FROM records WHERE object = 'bench_items' AND {cond} ORDER BY id DESC LIMIT 51)"
            )
        };
        let sql = format!(
            "EXPLAIN QUERY PLAN SELECT id, data FROM records WHERE id IN ({} UNION ALL {}) ORDER BY id DESC LIMIT 51",
            page(scope),
            page(
                "id IN (SELECT s.record_id FROM record_shares s WHERE s.object = 'bench_items' AND (s.user_id = 'x' OR s.department_id IN ('x')))"
            )
        );
        let plan: Vec<String> = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .expect("query plan")
            .iter()
            .map(|r| r.get::<String, _>("detail"))
            .collect();
        row(label, &plan.join("; "), "");
    }

    println!("\n[2] List throughput, {LIST_CLIENTS} clients (two alternating rounds)");
    // Alternated, so neither role gains from running first or last (the database
    // grows and checkpoints as the run goes on).
    let (mut admin_runs, mut member_runs) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        admin_runs.push(list_load(&admin, path.clone(), LIST_CLIENTS, LIST_QUERIES).await);
        member_runs.push(list_load(&member, path.clone(), LIST_CLIENTS, LIST_QUERIES).await);
    }
    let (admin_rate, member_rate) = (Run::merge(admin_runs), Run::merge(member_runs));
    let list_ratio = member_rate.rate() / admin_rate.rate();
    row(
        "org admin",
        &format!("{} lists/s", thousands(admin_rate.rate())),
        "baseline",
    );
    row(
        "member",
        &format!("{} lists/s", thousands(member_rate.rate())),
        &format!(
            "{list_ratio:.2}x admin  {}",
            target(list_ratio >= TARGET_RATIO, ">= 0.90x")
        ),
    );

    println!(
        "\n[3] Record create over HTTP, {CREATE_CLIENTS} clients, {CREATES} each (two alternating rounds)"
    );
    progress("creates");
    let (mut admin_runs, mut member_runs) = (Vec::new(), Vec::new());
    for round in 0..2 {
        admin_runs.push(create_load(&admin, "admin", round).await);
        member_runs.push(create_load(&member, "member", round).await);
    }
    let (admin_creates, member_creates) = (Run::merge(admin_runs), Run::merge(member_runs));
    let create_ratio = member_creates.rate() / admin_creates.rate();
    row(
        "org admin",
        &format!(
            "{} creates/s, p99 {}",
            thousands(admin_creates.rate()),
            ms(admin_creates.pct(0.99))
        ),
        "baseline",
    );
    row(
        "member (department checks)",
        &format!(
            "{} creates/s, p99 {}",
            thousands(member_creates.rate()),
            ms(member_creates.pct(0.99))
        ),
        &format!(
            "{create_ratio:.2}x admin  {}",
            target(create_ratio >= TARGET_RATIO, ">= 0.90x")
        ),
    );
    for (who, run) in [("admin", &admin_creates), ("member", &member_creates)] {
        if let Some(e) = &run.first_error {
            row(
                &format!("{who} create errors"),
                &format!("{}: {e}", run.errors),
                "",
            );
        }
    }
    println!("\nwhole run: {:.0} s", started.elapsed().as_secs_f64());
}

/// `total` GETs of `path` from `clients` concurrent clients, each page checked to hold
/// a full page of 50 items.
async fn list_load(api: &Client, path: Arc<String>, clients: usize, total: usize) -> Run {
    let expected = 50;
    let api = api.clone();
    run_load(clients, total, LIST_TIME, move |_| {
        let (api, path) = (api.clone(), path.clone());
        async move {
            let res = api.get(&path).await;
            let n = res.body["items"].as_array().map_or(0, Vec::len);
            if res.status == StatusCode::OK && n == expected {
                Ok(())
            } else {
                Err(format!("{}: {n} items", res.status))
            }
        }
    })
    .await
}

async fn create_load(api: &Client, who: &'static str, round: usize) -> Run {
    let api = api.clone();
    run_load(CREATE_CLIENTS, CREATES / 2, CREATE_TIME, move |i| {
        let i = round * CREATES + i;
        let api = api.clone();
        async move {
            let res = api
                .post(
                    "/api/v1/records/contacts",
                    json!({"last_name": format!("{who} {i}"), "email": format!("{who}{i}@example.com")}),
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
