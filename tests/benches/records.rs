//! Records benchmark: raw SQLite insert baseline, record creates over HTTP, a filtered
//! list over 1,000,000 records, and the memory of `crm serve`, in one run.
//!
//! Run with `cargo bench -p crm-tests --bench records` (it builds and starts a release
//! `crm serve`). `CRM_BENCH_POSTGRES=1` also runs the create load on PostgreSQL
//! (`CRM_TEST_POSTGRES_URL`, default the local `test` database). It is a benchmark,
//! not a test: targets are reported as PASS or MISS, never asserted.
//! See BENCHMARKS.md for the figures and how to read them.

mod common;

use common::*;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_tests::reqwest::header::CONTENT_TYPE;
use crm_tests::reqwest::{Method, StatusCode};
use crm_tests::{Backend, Client, Options, Server, json};
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Connection, Row};

/// Raw insert baseline: at most this many rows, or this long, per variant.
const RAW_ROWS: usize = 20_000;
const RAW_TIME: Duration = Duration::from_secs(6);
/// Record creates over HTTP.
const CLIENTS: usize = 16;
const WARMUP_CREATES: usize = 1_000;
const CREATES: usize = 20_000;
const CREATE_TIME: Duration = Duration::from_secs(60);
/// The filtered list.
const LIST_QUERIES: usize = 300;
const LIST_TIME: Duration = Duration::from_secs(30);
/// Targets stated by the issue.
const TARGET_CREATES_PER_S: f64 = 5_000.0;
const TARGET_CREATE_P99: Duration = Duration::from_millis(20);
const TARGET_LIST_P50: Duration = Duration::from_millis(20);
const TARGET_IDLE_RSS_MB: f64 = 50.0;

/// The SQL `crm` generates for `GET /api/v1/records/bench_items?filter[code]=N&limit=50`
/// on SQLite (see host/src/records/query.rs): the list baseline runs exactly this.
const LIST_SQL: &str = "SELECT id, object, version, owner_id, department_id, created_at, updated_at, data AS data \
     FROM records WHERE object = 'bench_items' AND CAST((data->>'code') AS BIGINT) = $1 ORDER BY id DESC LIMIT 51";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let started = Instant::now();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!("crm records benchmark: {cpus} CPUs, release `crm serve`, loopback HTTP");
    println!("{}", "=".repeat(78));

    // 1. Baseline.
    println!("\n[1] Baseline: raw sqlx single-row INSERT (autocommit, one statement per row)");
    println!(
        "    fresh SQLite file, WAL, synchronous=NORMAL, busy_timeout=10s, native sqlite driver"
    );
    progress("raw inserts");
    let raw = raw_sqlite_inserts().await;
    let raw_rate = raw.sequential.rate();
    row(
        "sequential, 1 task",
        &format!(
            "{} rows/s   ({} rows in {:.2} s)",
            thousands(raw_rate),
            raw.sequential.done,
            raw.sequential.elapsed.as_secs_f64()
        ),
        "THE baseline",
    );
    row("  latency p50 / p99 / max", &latencies(&raw.sequential), "");
    row(
        "16 tasks, pool of 8 connections",
        &format!(
            "{} rows/s   ({} rows in {:.2} s)",
            thousands(raw.concurrent.rate()),
            raw.concurrent.done,
            raw.concurrent.elapsed.as_secs_f64()
        ),
        &format!("{:.2}x baseline (info)", raw.concurrent.rate() / raw_rate),
    );

    // 2. Idle memory of a fresh server (then the same server takes the load).
    println!("\n[2] Memory of `crm serve` (SQLite)");
    let srv = Server::start_with(
        Backend::Sqlite,
        Options {
            release: true,
            ..Default::default()
        },
    )
    .await;
    let pid = srv.pid().expect("the server runs");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = rss_mb(pid).unwrap_or(f64::NAN);
    row(
        "VmRSS, fresh server idle 2 s",
        &format!("{idle_rss:.1} MB"),
        &target(idle_rss < TARGET_IDLE_RSS_MB, "< 50 MB"),
    );

    // The writer's work without HTTP, on a copy of the fresh server's schema.
    let writes = writer_emulation(&srv.data_dir.path().join("crm.db")).await;

    // 3. Record creates over HTTP.
    println!(
        "\n[3] Record create over HTTP: POST /api/v1/records/contacts, {CLIENTS} clients, SQLite"
    );
    let api = srv.admin().await;
    let creates = http_creates(&api, pid).await;
    print_creates(&creates, raw_rate, &raw.sequential);
    print_writer_emulation(&writes, raw_rate);
    let loaded_rss = rss_mb(pid).unwrap_or(f64::NAN);
    row(
        "VmRSS after the create load",
        &format!("{loaded_rss:.1} MB"),
        "info",
    );

    // 4. Filtered list over 1,000,000 records.
    println!(
        "\n[4] List with a filter on an indexed custom field, {} records of the object",
        thousands(SEED_ROWS as f64)
    );
    let list = filtered_list(&srv, &api).await;
    row(
        "seeding (not measured)",
        &format!(
            "{} rows in {:.1} s = {} rows/s, {} per transaction",
            thousands(SEED_ROWS as f64),
            list.seed_time.as_secs_f64(),
            thousands(SEED_ROWS as f64 / list.seed_time.as_secs_f64()),
            thousands(ROWS_PER_TRANSACTION as f64)
        ),
        "",
    );
    row("query plan (SQLite)", &list.plan, "");
    row(
        "baseline: same SELECT via sqlx",
        &format!(
            "p50 {} / p99 {} / max {}  ({} queries, {} rows each)",
            ms(list.sql.pct(0.50)),
            ms(list.sql.pct(0.99)),
            ms(list.sql.max()),
            list.sql.done,
            list.rows_per_page
        ),
        "",
    );
    row(
        "GET ?filter[code]=N&limit=50",
        &format!(
            "p50 {} / p99 {} / max {}  ({} requests, 1 client)",
            ms(list.http.pct(0.50)),
            ms(list.http.pct(0.99)),
            ms(list.http.max()),
            list.http.done
        ),
        &format!(
            "p50 {:.1}x, p99 {:.1}x baseline",
            ratio(list.http.pct(0.50), list.sql.pct(0.50)),
            ratio(list.http.pct(0.99), list.sql.pct(0.99))
        ),
    );
    if list.http.errors > 0 || list.sql.errors > 0 {
        row(
            "errors",
            &format!(
                "http {} / sql {}: {}",
                list.http.errors,
                list.sql.errors,
                list.http
                    .first_error
                    .as_deref()
                    .or(list.sql.first_error.as_deref())
                    .unwrap_or("")
            ),
            "",
        );
    }
    let list_ok = list.http.errors == 0 && list.http.pct(0.50) < TARGET_LIST_P50;
    row("target p50", "< 20 ms", &target(list_ok, "p50 < 20 ms"));
    let final_rss = rss_mb(pid).unwrap_or(f64::NAN);
    row(
        "VmRSS after the list run",
        &format!("{final_rss:.1} MB"),
        "info",
    );
    drop(srv);

    // Optional: the same create load on PostgreSQL.
    let pg = if std::env::var("CRM_BENCH_POSTGRES").is_ok_and(|v| v == "1") {
        Some(postgres_creates().await)
    } else {
        println!(
            "\n[5] PostgreSQL: skipped (set CRM_BENCH_POSTGRES=1 to run the create load on it)"
        );
        None
    };

    println!("\n{}", "=".repeat(78));
    println!("Summary (ratios against the sequential raw insert rate of [1] unless stated)");
    let creates_ok = creates.errors == 0 && creates.rate() >= TARGET_CREATES_PER_S;
    let p99_ok = creates.errors == 0 && creates.pct(0.99) < TARGET_CREATE_P99;
    summary(
        "raw SQLite insert, sequential",
        &format!("{} rows/s", thousands(raw_rate)),
        "baseline",
        "",
    );
    summary(
        "HTTP creates, 16 clients",
        &format!("{} /s", thousands(creates.rate())),
        &format!("{:.2}x", creates.rate() / raw_rate),
        &target(creates_ok, ">= 5,000/s"),
    );
    summary(
        "HTTP create p99",
        &ms(creates.pct(0.99)),
        &format!(
            "{:.0}x raw p99",
            ratio(creates.pct(0.99), raw.sequential.pct(0.99))
        ),
        &target(p99_ok, "< 20 ms"),
    );
    summary(
        "filtered list p50 (1M records)",
        &ms(list.http.pct(0.50)),
        &format!("{:.1}x SQL", ratio(list.http.pct(0.50), list.sql.pct(0.50))),
        &target(list_ok, "< 20 ms"),
    );
    summary(
        "idle VmRSS",
        &format!("{idle_rss:.1} MB"),
        "",
        &target(idle_rss < TARGET_IDLE_RSS_MB, "< 50 MB"),
    );
    if let Some(pg) = pg {
        summary(
            "PostgreSQL HTTP creates",
            &format!("{} /s", thousands(pg.creates.rate())),
            &format!("{:.2}x PG raw", pg.creates.rate() / pg.raw.rate()),
            &target(
                pg.creates.errors == 0 && pg.creates.rate() >= TARGET_CREATES_PER_S,
                ">= 5,000/s",
            ),
        );
        summary(
            "PostgreSQL HTTP create p99",
            &ms(pg.creates.pct(0.99)),
            "",
            &target(
                pg.creates.errors == 0 && pg.creates.pct(0.99) < TARGET_CREATE_P99,
                "< 20 ms",
            ),
        );
    }
    println!(
        "\nwhole run: {:.0} s (including the server build check and seeding)",
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------
// 1. Raw insert baseline

struct RawInserts {
    sequential: Run,
    concurrent: Run,
}

async fn raw_sqlite_inserts() -> RawInserts {
    let dir = tempfile::tempdir().expect("temp dir");
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(sqlite_options(&dir.path().join("raw.db")))
        .await
        .expect("SQLite opens");
    sqlx::query(
        "CREATE TABLE records (id TEXT PRIMARY KEY, object TEXT NOT NULL, version BIGINT NOT NULL, \
         created_at TEXT NOT NULL, updated_at TEXT NOT NULL, data TEXT NOT NULL)",
    )
    .execute(&pool)
    .await
    .expect("table");
    let insert = |prefix: &'static str, pool: SqlitePool| {
        move |i: usize| {
            let pool = pool.clone();
            async move {
                let now = now_text();
                sqlx::query(
                    "INSERT INTO records (id, object, version, created_at, updated_at, data) \
                     VALUES ($1, $2, 1, $3, $3, $4)",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind("contacts")
                .bind(&now)
                .bind(contact_json(prefix, i))
                .execute(&pool)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
            }
        }
    };
    run_load(1, 500, RAW_TIME, insert("warm", pool.clone())).await;
    let sequential = run_load(1, RAW_ROWS, RAW_TIME, insert("seq", pool.clone())).await;
    let concurrent = run_load(CLIENTS, RAW_ROWS, RAW_TIME, insert("conc", pool.clone())).await;
    pool.close().await;
    RawInserts {
        sequential,
        concurrent,
    }
}

fn contact_json(prefix: &str, i: usize) -> String {
    format!(r#"{{"last_name":"{prefix} {i}","email":"{prefix}{i}@example.com"}}"#)
}

// ---------------------------------------------------------------------------------
// 3. Creates over HTTP

/// A create load against a running server; CPU use of both sides is measured too.
struct Creates {
    run: Run,
    /// CPU seconds of the server process and of this (client) process during the run.
    server_cpu: Option<f64>,
    client_cpu: Option<f64>,
}

impl std::ops::Deref for Creates {
    type Target = Run;
    fn deref(&self) -> &Run {
        &self.run
    }
}

async fn http_creates(api: &Client, server: u32) -> Creates {
    let create = |prefix: &'static str| {
        let api = api.clone();
        move |i: usize| {
            let request = api
                .request(Method::POST, "/api/v1/records/contacts")
                .header(CONTENT_TYPE, "application/json")
                .body(contact_json(prefix, i));
            async move {
                let res = request.send().await.map_err(|e| e.to_string())?;
                let status = res.status();
                let body = res.bytes().await.map_err(|e| e.to_string())?;
                if status == StatusCode::CREATED {
                    Ok(())
                } else {
                    Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
                }
            }
        }
    };
    progress("create warm-up");
    run_load(CLIENTS, WARMUP_CREATES, CREATE_TIME, create("warm")).await;
    progress("creates");
    let client = std::process::id();
    let before = (cpu_seconds(server), cpu_seconds(client));
    let run = run_load(CLIENTS, CREATES, CREATE_TIME, create("bench")).await;
    let after = (cpu_seconds(server), cpu_seconds(client));
    Creates {
        run,
        server_cpu: before.0.zip(after.0).map(|(b, a)| a - b),
        client_cpu: before.1.zip(after.1).map(|(b, a)| a - b),
    }
}

fn print_creates(c: &Creates, raw_rate: f64, raw: &Run) {
    row(
        "warm-up (not measured)",
        &format!("{WARMUP_CREATES} creates"),
        "",
    );
    row(
        "measured",
        &format!(
            "{} creates in {:.2} s, {} errors",
            c.done,
            c.elapsed.as_secs_f64(),
            c.errors
        ),
        if c.done < CREATES {
            "stopped by the time limit"
        } else {
            ""
        },
    );
    if let Some(e) = &c.first_error {
        row("first error", e, "");
    }
    row(
        "throughput",
        &format!("{} creates/s", thousands(c.rate())),
        &format!(
            "{:.2}x raw insert rate   target >= 5,000/s {}",
            c.rate() / raw_rate,
            pass(c.errors == 0 && c.rate() >= TARGET_CREATES_PER_S)
        ),
    );
    row(
        "latency p50 / p99 / max",
        &latencies(c),
        &format!(
            "{:.0}x / {:.0}x / {:.0}x raw insert   target p99 < 20 ms {}",
            ratio(c.pct(0.50), raw.pct(0.50)),
            ratio(c.pct(0.99), raw.pct(0.99)),
            ratio(c.max(), raw.max()),
            pass(c.errors == 0 && c.pct(0.99) < TARGET_CREATE_P99)
        ),
    );
    let wall = c.elapsed.as_secs_f64();
    if let (Some(server), Some(client)) = (c.server_cpu, c.client_cpu) {
        row(
            "CPU during the run",
            &format!(
                "server {:.0}% of a core, bench client {:.0}%",
                100.0 * server / wall,
                100.0 * client / wall
            ),
            &format!(
                "{:.0} us server CPU per create",
                1e6 * server / c.done.max(1) as f64
            ),
        );
    }
}

/// The database work of a create without HTTP, measured on a copy of the server's
/// schema (all its indexes, including the expression indexes of the standard objects).
struct WriterEmulation {
    indexes: i64,
    single: Run,
    group: Run,
    group_no_savepoints: Run,
}

/// Writes per emulated group commit: one per client, the most the writer can batch.
const BATCH: usize = CLIENTS;

async fn writer_emulation(server_db: &Path) -> WriterEmulation {
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("copy.db");
    let mut source = sqlx::SqliteConnection::connect_with(&sqlite_options(server_db))
        .await
        .expect("the server's SQLite file opens");
    sqlx::query("VACUUM INTO $1")
        .bind(copy.display().to_string())
        .execute(&mut source)
        .await
        .expect("copy of the server's database");
    source.close().await.expect("close");
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(sqlite_options(&copy))
        .await
        .expect("copy opens");
    let indexes: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'",
    )
    .fetch_one(&pool)
    .await
    .expect("index count");
    let owner: String = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(crm_tests::ADMIN_EMAIL)
        .fetch_one(&pool)
        .await
        .expect("the admin exists");
    let owner: Arc<str> = owner.into();

    let single = {
        let (pool, owner) = (pool.clone(), owner.clone());
        run_load(1, RAW_ROWS, RAW_TIME, move |i| {
            let (pool, owner) = (pool.clone(), owner.clone());
            async move {
                let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
                insert_record(&mut conn, &owner, "single", i)
                    .await
                    .map(|_| ())
            }
        })
        .await
    };
    let group = |savepoints: bool| {
        let (pool, owner) = (pool.clone(), owner.clone());
        move |batch: usize| {
            let (pool, owner) = (pool.clone(), owner.clone());
            async move {
                let prefix = if savepoints { "sp" } else { "nosp" };
                let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
                for i in batch * BATCH..(batch + 1) * BATCH {
                    if savepoints {
                        let mut sp = tx.begin().await.map_err(|e| e.to_string())?;
                        insert_write(&mut sp, &owner, prefix, i).await?;
                        sp.commit().await.map_err(|e| e.to_string())?;
                    } else {
                        insert_write(&mut tx, &owner, prefix, i).await?;
                    }
                }
                tx.commit().await.map_err(|e| e.to_string())
            }
        }
    };
    let batches = RAW_ROWS / BATCH;
    let group_run = run_load(1, batches, RAW_TIME, group(true)).await;
    let group_no_savepoints = run_load(1, batches, RAW_TIME, group(false)).await;
    pool.close().await;
    WriterEmulation {
        indexes,
        single,
        group: group_run,
        group_no_savepoints,
    }
}

async fn insert_record(
    conn: &mut sqlx::SqliteConnection,
    owner: &str,
    prefix: &str,
    i: usize,
) -> Result<String, String> {
    let (id, now) = (uuid::Uuid::now_v7().to_string(), now_text());
    sqlx::query(
        "INSERT INTO records (id, object, version, owner_id, department_id, created_by, updated_by, created_at, updated_at, data) \
         VALUES ($1, 'contacts', 1, $2, NULL, $2, $2, $3, $3, $4)",
    )
    .bind(&id)
    .bind(owner)
    .bind(&now)
    .bind(contact_json(prefix, i))
    .execute(&mut *conn)
    .await
    .map_err(|e| e.to_string())?;
    Ok(id)
}

/// What the server's writer stores for one create: record, audit entry, outbox event.
async fn insert_write(
    conn: &mut sqlx::SqliteConnection,
    owner: &str,
    prefix: &str,
    i: usize,
) -> Result<(), String> {
    let id = insert_record(conn, owner, prefix, i).await?;
    let now = now_text();
    let changes = format!(
        r#"{{"last_name":{{"old":null,"new":"{prefix} {i}"}},"email":{{"old":null,"new":"{prefix}{i}@example.com"}},"owner":{{"old":null,"new":"{owner}"}}}}"#
    );
    sqlx::query(
        "INSERT INTO audit_log (id, object, record_id, action, actor_id, record_version, at, changes) \
         VALUES ($1, 'contacts', $2, 'created', $3, 1, $4, $5)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(&id)
    .bind(owner)
    .bind(&now)
    .bind(&changes)
    .execute(&mut *conn)
    .await
    .map_err(|e| e.to_string())?;
    sqlx::query(
        "INSERT INTO outbox (id, topic, object, record_id, record_version, actor_id, payload, created_at) \
         VALUES ($1, 'record.created', 'contacts', $2, 1, $3, $4, $5)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(&id)
    .bind(owner)
    .bind(format!(
        r#"{{"record":{{"id":"{id}","object":"contacts","version":1,"data":{}}},"changes":{changes}}}"#,
        contact_json(prefix, i)
    ))
    .bind(&now)
    .execute(&mut *conn)
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

fn print_writer_emulation(w: &WriterEmulation, raw_rate: f64) {
    println!(
        "    where the time goes (info): the same writes without HTTP, native sqlx, 1 task, on a copy of"
    );
    println!(
        "    the server's schema ({} indexes on records: partial field indexes of every object)",
        w.indexes
    );
    let line = |label: &str, rate: f64| {
        row(
            label,
            &format!("{} records/s", thousands(rate)),
            &format!("{:.2}x raw insert rate", rate / raw_rate),
        )
    };
    line("record row only, autocommit", w.single.rate());
    line(
        "group of 16: savepoint+3 inserts each",
        w.group.rate() * BATCH as f64,
    );
    line(
        "group of 16, no savepoints",
        w.group_no_savepoints.rate() * BATCH as f64,
    );
    for run in [&w.single, &w.group, &w.group_no_savepoints] {
        if let Some(e) = &run.first_error {
            row("emulation error", e, "");
        }
    }
}

// ---------------------------------------------------------------------------------
// 4. Filtered list over 1,000,000 records

struct List {
    seed_time: Duration,
    plan: String,
    rows_per_page: usize,
    sql: Run,
    http: Run,
}

async fn filtered_list(srv: &Server, api: &Client) -> List {
    let res = api
        .post(
            "/api/v1/objects",
            json!({
                "name": "bench_items",
                "fields": [
                    {"name": "name", "type": "text"},
                    {"name": "code", "type": "integer", "indexed": true}
                ]
            }),
        )
        .await;
    assert_eq!(
        res.status,
        StatusCode::CREATED,
        "creating the object: {}",
        res.body
    );
    let (pool, admin) = open_server_db(srv).await;
    progress("seeding");
    let seed_time = seed(&pool, |_| (admin.clone(), None)).await;

    let plan: Vec<String> = sqlx::query(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {LIST_SQL}")))
        .bind(1_i64)
        .fetch_all(&pool)
        .await
        .expect("query plan")
        .iter()
        .map(|r| r.get::<String, _>("detail"))
        .collect();

    progress("list via sqlx");
    let mut rng = Rng::new();
    let sql = {
        let pool = pool.clone();
        let codes: Vec<i64> = (0..LIST_QUERIES + 20).map(|_| rng.code()).collect();
        let codes = Arc::new(codes);
        let query = move |i: usize| {
            let (pool, code) = (pool.clone(), codes[i]);
            async move {
                let rows = sqlx::query(LIST_SQL)
                    .bind(code)
                    .fetch_all(&pool)
                    .await
                    .map_err(|e| e.to_string())?;
                for r in &rows {
                    let _: (String, String, i64, Option<String>, Option<String>) = (
                        r.try_get("id").map_err(|e| e.to_string())?,
                        r.try_get("object").map_err(|e| e.to_string())?,
                        r.try_get("version").map_err(|e| e.to_string())?,
                        r.try_get("owner_id").map_err(|e| e.to_string())?,
                        r.try_get("department_id").map_err(|e| e.to_string())?,
                    );
                    let _: (String, String, String) = (
                        r.try_get("created_at").map_err(|e| e.to_string())?,
                        r.try_get("updated_at").map_err(|e| e.to_string())?,
                        r.try_get("data").map_err(|e| e.to_string())?,
                    );
                }
                rows_seen(rows.len())
            }
        };
        run_load(1, 20, LIST_TIME, {
            let q = query.clone();
            move |i| q(LIST_QUERIES + i)
        })
        .await;
        run_load(1, LIST_QUERIES, LIST_TIME, query).await
    };
    let rows_per_page = (SEED_ROWS as u64 / CODES) as usize;

    progress("list via HTTP");
    let http = {
        let api = api.clone();
        let codes: Arc<Vec<i64>> = Arc::new((0..LIST_QUERIES + 20).map(|_| rng.code()).collect());
        let get = move |i: usize| {
            let request = api.request(
                Method::GET,
                &format!(
                    "/api/v1/records/bench_items?filter[code]={}&limit=50",
                    codes[i]
                ),
            );
            async move {
                let res = request.send().await.map_err(|e| e.to_string())?;
                let status = res.status();
                let body = res.bytes().await.map_err(|e| e.to_string())?;
                if status != StatusCode::OK {
                    return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
                }
                Ok(body)
            }
        };
        // Each page is parsed and its items counted (a few microseconds, timed too).
        run_load(1, 20, LIST_TIME, {
            let g = get.clone();
            move |i| {
                let f = g(LIST_QUERIES + i);
                async move { f.await.and_then(|b| page_size(&b)) }
            }
        })
        .await;
        run_load(1, LIST_QUERIES, LIST_TIME, move |i| {
            let f = get(i);
            async move { f.await.and_then(|b| page_size(&b)) }
        })
        .await
    };
    pool.close().await;
    List {
        seed_time,
        plan: plan.join("; "),
        rows_per_page,
        sql,
        http,
    }
}

/// Every code matches exactly SEED_ROWS / CODES records.
fn rows_seen(n: usize) -> Result<(), String> {
    let expected = (SEED_ROWS as u64 / CODES) as usize;
    if n == expected {
        Ok(())
    } else {
        Err(format!("expected {expected} rows, got {n}"))
    }
}

fn page_size(body: &[u8]) -> Result<(), String> {
    let page: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    rows_seen(page["items"].as_array().map_or(0, Vec::len))
}

// ---------------------------------------------------------------------------------
// 5. PostgreSQL (optional)

struct Postgres {
    raw: Run,
    creates: Creates,
}

async fn postgres_creates() -> Postgres {
    println!("\n[5] PostgreSQL ({})", crm_tests::postgres_url());
    // Baseline: sequential single-row inserts into a records-shaped table of a
    // throwaway schema (a logged table, so every commit is durable as the server's).
    let schema = format!("crm_bench_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&crm_tests::postgres_url())
        .await
        .expect("PostgreSQL answers");
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE SCHEMA {schema}; CREATE TABLE {schema}.records (id TEXT PRIMARY KEY, object TEXT NOT NULL, \
         version BIGINT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, data JSONB NOT NULL)"
    )))
    .execute(&pool)
    .await
    .expect("baseline table");
    let sql: Arc<str> = format!(
        "INSERT INTO {schema}.records (id, object, version, created_at, updated_at, data) \
         VALUES ($1, $2, 1, $3, $3, CAST($4 AS JSONB))"
    )
    .into();
    let insert = {
        let pool = pool.clone();
        move |i: usize| {
            let (pool, sql) = (pool.clone(), sql.clone());
            async move {
                sqlx::query(AssertSqlSafe(sql))
                    .bind(uuid::Uuid::now_v7().to_string())
                    .bind("contacts")
                    .bind(now_text())
                    .bind(contact_json("seq", i))
                    .execute(&pool)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    };
    let raw = run_load(1, RAW_ROWS, RAW_TIME, insert).await;
    sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&pool)
        .await
        .expect("drop baseline schema");
    pool.close().await;
    row(
        "raw INSERT, sequential, 1 task",
        &format!(
            "{} rows/s   ({} rows in {:.2} s)",
            thousands(raw.rate()),
            raw.done,
            raw.elapsed.as_secs_f64()
        ),
        "PG baseline",
    );
    row("  latency p50 / p99 / max", &latencies(&raw), "");

    let srv = Server::start_with(
        Backend::Postgres,
        Options {
            release: true,
            ..Default::default()
        },
    )
    .await;
    let api = srv.admin().await;
    let creates = http_creates(&api, srv.pid().expect("the server runs")).await;
    println!("    HTTP creates, {CLIENTS} clients (ratios against the PostgreSQL baseline):");
    print_creates(&creates, raw.rate(), &raw);
    drop(srv);
    Postgres { raw, creates }
}
