//! Process engine benchmark: instances through five service-task steps (a real
//! plugin step, `process-steps/set`, on a fresh Wasmtime instance each) on
//! PostgreSQL through a release `crm serve`, beside the raw insert rate of the same
//! database measured in the same run (16 connections, one row per statement); and
//! how late timers fire under that load.
//!
//! Run with `cargo bench -p crm-tests --bench processes` (`CRM_BENCH_INSTANCES`
//! sets the number of instances, default 3,000). Targets are reported as PASS or
//! MISS, never asserted.

mod common;

use std::time::{Duration, Instant};

use common::*;
use crm_tests::reqwest::StatusCode;
use crm_tests::{Backend, Options, Server, json, plugin_package};
use sqlx::Row;

/// Instances per second through five steps (issue 8).
const TARGET_RATE: f64 = 1_000.0;
/// Timers fire at most this late at p99 under load (issue 8).
const TARGET_LATE: Duration = Duration::from_secs(1);
const TASKS: usize = 16;
const TIMERS: usize = 200;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let started = Instant::now();
    let instances: usize = std::env::var("CRM_BENCH_INSTANCES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3_000);
    println!();
    println!("crm process benchmark: release `crm serve`, PostgreSQL, plugin process-steps");
    println!("{}", "=".repeat(78));
    let srv = Server::start_with(
        Backend::Postgres,
        Options {
            release: true,
            ..Default::default()
        },
    )
    .await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    progress("building and installing plugins/process-steps");
    admin
        .install_plugin(plugin_package("plugins/process-steps"), &sales)
        .await;
    let (_, sam) = srv.member("sam@example.com", &sales, "member").await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(TASKS as u32)
        .connect(&srv.database_url)
        .await
        .expect("the server's database");

    println!();
    println!("[1] Baseline: INSERT one row per statement, {TASKS} connections, 5 s");
    sqlx::query(
        "CREATE TABLE bench_raw (id TEXT PRIMARY KEY, data TEXT NOT NULL, at TEXT NOT NULL)",
    )
    .execute(&pool)
    .await
    .expect("scratch table");
    let raw = {
        let pool = pool.clone();
        run_load(TASKS, 1_000_000, Duration::from_secs(5), move |i| {
            let pool = pool.clone();
            async move {
                sqlx::query("INSERT INTO bench_raw (id, data, at) VALUES ($1, $2, $3)")
                    .bind(format!("row-{i}"))
                    .bind(r#"{"step":1}"#)
                    .bind(now_text())
                    .execute(&pool)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        })
        .await
    };
    row(
        "raw inserts",
        &format!("{:.0}/s", raw.rate()),
        &format!("{}   THE baseline", latencies(&raw)),
    );

    let step = |n: usize| {
        json!({"id": format!("s{n}"), "type": "service_task", "step": "process-steps/set",
               "config": {"variables": {format!("v{n}"): n}}})
    };
    let five = json!({
        "name": "Five steps",
        "nodes": [{"id": "start", "type": "start"}, step(1), step(2), step(3), step(4), step(5), {"id": "end", "type": "end"}],
        "flows": [
            {"id": "f0", "from": "start", "to": "s1"}, {"id": "f1", "from": "s1", "to": "s2"},
            {"id": "f2", "from": "s2", "to": "s3"}, {"id": "f3", "from": "s3", "to": "s4"},
            {"id": "f4", "from": "s4", "to": "s5"}, {"id": "f5", "from": "s5", "to": "end"}
        ]
    });
    let timer = json!({
        "name": "Wait three seconds",
        "nodes": [{"id": "start", "type": "start"}, {"id": "wait", "type": "timer", "duration": "PT3S"}, {"id": "end", "type": "end"}],
        "flows": [{"id": "f0", "from": "start", "to": "wait"}, {"id": "f1", "from": "wait", "to": "end"}]
    });
    for (key, definition) in [("five", five), ("timer", timer)] {
        let res = admin
            .put(&format!("/api/v1/processes/{key}"), definition)
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    }

    println!();
    println!(
        "[2] {instances} instances x 5 service tasks, started by {TASKS} clients, with {TIMERS} 3 s timers among them"
    );
    let load_started = Instant::now();
    let starts = {
        let sam = sam.clone();
        run_load(
            TASKS,
            instances + TIMERS,
            Duration::from_secs(300),
            move |i| {
                let sam = sam.clone();
                // Every (instances / TIMERS)-th start is a timer.
                let key = if TIMERS > 0 && i % (instances / TIMERS + 1) == 0 {
                    "timer"
                } else {
                    "five"
                };
                async move {
                    let res = sam
                        .post(&format!("/api/v1/processes/{key}/instances"), json!({}))
                        .await;
                    (res.status == StatusCode::CREATED)
                        .then_some(())
                        .ok_or_else(|| format!("{}: {}", res.status, res.body))
                }
            },
        )
        .await
    };
    assert_eq!(starts.errors, 0, "{:?}", starts.first_error);
    let total_five: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM process_instances WHERE process_key = 'five'")
            .fetch_one(&pool)
            .await
            .expect("count");
    // Until every instance completed (or five minutes).
    loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM process_instances WHERE status <> 'completed'",
        )
        .fetch_one(&pool)
        .await
        .expect("count");
        if open == 0 || load_started.elapsed() > Duration::from_secs(300) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = load_started.elapsed();
    let completed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM process_instances WHERE process_key = 'five' AND status = 'completed'",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    let rate = completed as f64 / elapsed.as_secs_f64();
    row(
        "starts (POST .../instances)",
        &format!("{:.0}/s", starts.rate()),
        &latencies(&starts),
    );
    row(
        "instances through 5 steps",
        &format!("{rate:.0}/s"),
        &format!(
            "{completed} of {total_five} in {:.1} s   {:.3}x the raw insert rate  {}",
            elapsed.as_secs_f64(),
            rate / raw.rate(),
            target(
                rate >= TARGET_RATE && completed == total_five,
                "at least 1,000/s"
            )
        ),
    );

    // How late each timer's token moved on after it was due.
    let rows = sqlx::query(
        "SELECT t.due_at, h.at FROM process_tokens t JOIN process_history h \
         ON h.instance_id = t.instance_id AND h.node = t.node AND h.event = 'completed' WHERE t.node = 'wait'",
    )
    .fetch_all(&pool)
    .await
    .expect("timers");
    let mut late: Vec<Duration> = rows
        .iter()
        .filter_map(|r| {
            let due = parse_time(&r.get::<String, _>("due_at"))?;
            let at = parse_time(&r.get::<String, _>("at"))?;
            Some(Duration::from_secs_f64((at - due).max(0.0)))
        })
        .collect();
    late.sort_unstable();
    let p = |q: f64| {
        late.get(((q * late.len() as f64).ceil() as usize).clamp(1, late.len().max(1)) - 1)
            .copied()
            .unwrap_or_default()
    };
    row(
        "timer lateness",
        &format!("{} timers", late.len()),
        &format!(
            "p50 {} / p99 {} / max {}   {}",
            ms(p(0.50)),
            ms(p(0.99)),
            ms(late.last().copied().unwrap_or_default()),
            target(
                late.len() == TIMERS && p(0.99) <= TARGET_LATE,
                "p99 at most 1 s"
            )
        ),
    );

    println!();
    println!("whole run: {:.0} s", started.elapsed().as_secs_f64());
}

/// Seconds since 1970 of a server timestamp (`2026-11-23T19:41:03.123456Z`).
fn parse_time(at: &str) -> Option<f64> {
    let (date, clock) = at.trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut c = clock.split(':');
    let (h, min) = (
        c.next()?.parse::<f64>().ok()?,
        c.next()?.parse::<f64>().ok()?,
    );
    let s: f64 = c.next()?.parse().ok()?;
    // Days from civil (H. Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days as f64 * 86_400.0 + h * 3_600.0 + min * 60.0 + s)
}
