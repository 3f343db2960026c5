//! Import and export benchmark: 1,000,000 contacts imported from a CSV file into a
//! release `crm serve` on SQLite (through the records service: validation, rights,
//! audit, events) and exported again as CSV, each beside a raw sqlx baseline measured
//! in the same run: multi-row inserts of the same number of records straight into the
//! file (10,000 per transaction), and a plain SELECT of the exported rows.
//!
//! Run with `cargo bench -p crm-tests --bench imports`. A benchmark, not a test:
//! targets are reported as PASS or MISS, never asserted. See BENCHMARKS.md.

mod common;

use common::*;
use std::time::{Duration, Instant};

use crm_tests::reqwest::{Method, StatusCode};
use crm_tests::{Backend, Options, Server, json};
use futures_util::StreamExt;

const ROWS: usize = 1_000_000;
const TARGET_IMPORT_PER_S: f64 = 20_000.0;
const TARGET_EXPORT_PER_S: f64 = 50_000.0;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let started = Instant::now();
    println!();
    println!("crm import/export benchmark: release `crm serve` on SQLite, loopback HTTP");
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
    let pid = srv.pid().expect("the server runs");
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

    // [1] The baseline: the same number of records inserted raw.
    progress("baseline: raw multi-row inserts");
    let (pool, admin_id) = open_server_db(&srv).await;
    let raw = seed(&pool, |_| (admin_id.clone(), None)).await;
    pool.close().await;
    let raw_rate = SEED_ROWS as f64 / raw.as_secs_f64();

    // [2] The import: a 1,000,000-row file with a duplicate key column.
    progress("building the CSV file");
    let mut csv = String::with_capacity(ROWS * 64);
    csv.push_str("First name,Last name,Email,Phone,Customer since\n");
    for i in 0..ROWS {
        csv.push_str(&format!(
            "Ana{i},Karimi{},ana{i}@acme.example,+98 21 {:07},2026-0{}-1{}\n",
            i % 977,
            i % 10_000_000,
            1 + i % 9,
            i % 10
        ));
    }
    let file_mb = csv.len() as f64 / 1e6;
    progress("uploading");
    let upload_start = Instant::now();
    let up = admin
        .raw(
            Method::POST,
            "/api/v1/imports?object=contacts&name=contacts.csv",
            "text/csv",
            csv.into_bytes(),
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    let upload = upload_start.elapsed();
    let id = up.body["id"].as_str().expect("an import id").to_string();
    let rss_before = rss_mb(pid).unwrap_or(0.0);
    progress("importing 1,000,000 contacts");
    let run = admin
        .post(&format!("/api/v1/imports/{id}/run"), json!({}))
        .await;
    assert_eq!(run.status, StatusCode::ACCEPTED, "{}", run.body);
    let import_start = Instant::now();
    let (mut rss_peak, mut rss_half) = (rss_before, None);
    let import = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let rss = rss_mb(pid).unwrap_or(0.0);
        rss_peak = rss_peak.max(rss);
        let got = admin.get(&format!("/api/v1/imports/{id}")).await;
        let done = got.body["rows_done"].as_i64().unwrap_or(0);
        if rss_half.is_none() && done >= ROWS as i64 / 2 {
            rss_half = Some(rss);
        }
        if got.body["status"] != "running" {
            break got.body;
        }
    };
    let import_time = import_start.elapsed();
    let rss_end = rss_mb(pid).unwrap_or(0.0);
    // The write-ahead log left behind: a log that only grows slows every later read.
    let wal_mb = |srv: &Server| {
        std::fs::metadata(srv.data_dir.path().join("crm.db-wal"))
            .map(|m| m.len() as f64 / 1e6)
            .unwrap_or(0.0)
    };
    let wal_end = wal_mb(&srv);
    assert_eq!(import["status"], "done", "{import}");
    assert_eq!(import["created"], ROWS, "{import}");
    let import_rate = ROWS as f64 / import_time.as_secs_f64();

    // [3] Export: the same contacts streamed as CSV, beside a raw SELECT of them.
    progress("baseline: raw SELECT of the contacts");
    let (pool, _) = open_server_db(&srv).await;
    let select_start = Instant::now();
    let mut rows = sqlx::query_as::<_, (String, String)>(
        "SELECT id, data FROM records WHERE object = 'contacts' ORDER BY id DESC",
    )
    .fetch(&pool);
    let mut selected = 0usize;
    while let Some(row) = rows.next().await {
        row.expect("a row");
        selected += 1;
    }
    drop(rows);
    let select = select_start.elapsed();
    pool.close().await;
    progress("exporting 1,000,000 contacts");
    let export_start = Instant::now();
    let mut res = admin
        .request(Method::GET, "/api/v1/records/contacts/export")
        .send()
        .await
        .expect("the export starts");
    assert_eq!(res.status(), StatusCode::OK);
    let (mut lines, mut bytes) = (0usize, 0usize);
    while let Some(chunk) = res.chunk().await.expect("the export streams") {
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    let export = export_start.elapsed();
    let exported = lines - 1;
    let export_rate = exported as f64 / export.as_secs_f64();
    let select_rate = selected as f64 / select.as_secs_f64();
    progress("exporting them again as an XLSX workbook");
    let xlsx_start = Instant::now();
    let mut res = admin
        .request(Method::GET, "/api/v1/records/contacts/export?format=xlsx")
        .send()
        .await
        .expect("the workbook export starts");
    assert_eq!(res.status(), StatusCode::OK);
    // Rows counted by their closing tags, a tag cut between two chunks included.
    let (mut xlsx_rows, mut xlsx_bytes, mut tail) = (0usize, 0usize, Vec::new());
    while let Some(chunk) = res.chunk().await.expect("the workbook streams") {
        xlsx_bytes += chunk.len();
        tail.extend_from_slice(&chunk);
        xlsx_rows += tail.windows(6).filter(|w| *w == b"</row>").count();
        let keep = tail.len().min(5);
        tail.drain(..tail.len() - keep);
    }
    let xlsx = xlsx_start.elapsed();
    let xlsx_exported = xlsx_rows - 1;
    let xlsx_rate = xlsx_exported as f64 / xlsx.as_secs_f64();

    println!(
        "\n[1] Baseline: raw multi-row INSERTs into records (100 per statement, 10,000 per transaction)"
    );
    row(
        "raw sqlx inserts",
        &format!("{} rows/s", thousands(raw_rate)),
        &format!(
            "({} rows in {:.1} s)   THE baseline",
            thousands(SEED_ROWS as f64),
            raw.as_secs_f64()
        ),
    );
    println!(
        "\n[2] Import of {} contacts from CSV ({file_mb:.0} MB), match on email",
        thousands(ROWS as f64)
    );
    row(
        "upload (stream to disk, UTF-8 check, count)",
        &format!("{:.1} s", upload.as_secs_f64()),
        "(info)",
    );
    row(
        "import run",
        &format!("{} rows/s", thousands(import_rate)),
        &format!(
            "({:.1} s)   {:.2}x raw inserts   {}",
            import_time.as_secs_f64(),
            import_rate / raw_rate,
            target(import_rate >= TARGET_IMPORT_PER_S, ">= 20,000 rows/s")
        ),
    );
    row(
        "server memory (RSS)",
        &format!(
            "{rss_before:.0} MB before, {:.0} MB half-way, {rss_end:.0} MB at the end, peak {rss_peak:.0} MB",
            rss_half.unwrap_or(0.0)
        ),
        "(constant memory: the half-way and end figures stay close)",
    );
    row(
        "SQLite write-ahead log",
        &format!(
            "{wal_end:.0} MB at the end of the import, {:.0} MB after the exports",
            wal_mb(&srv)
        ),
        "(reads look through what is left in it)",
    );
    println!(
        "\n[3] Export of {} contacts as CSV, streamed",
        thousands(exported as f64)
    );
    row(
        "raw SELECT (baseline)",
        &format!("{} rows/s", thousands(select_rate)),
        &format!(
            "({} rows in {:.1} s)",
            thousands(selected as f64),
            select.as_secs_f64()
        ),
    );
    row(
        "export",
        &format!("{} rows/s", thousands(export_rate)),
        &format!(
            "({:.1} s, {:.0} MB)   {:.2}x the SELECT   {}",
            export.as_secs_f64(),
            bytes as f64 / 1e6,
            export_rate / select_rate,
            target(export_rate >= TARGET_EXPORT_PER_S, ">= 50,000 rows/s")
        ),
    );
    row(
        "export as XLSX",
        &format!("{} rows/s", thousands(xlsx_rate)),
        &format!(
            "({} rows, {:.1} s, {:.0} MB)   {:.2}x the SELECT   {}",
            thousands(xlsx_exported as f64),
            xlsx.as_secs_f64(),
            xlsx_bytes as f64 / 1e6,
            xlsx_rate / select_rate,
            target(xlsx_rate >= TARGET_EXPORT_PER_S, ">= 50,000 rows/s")
        ),
    );
    println!("\nSummary");
    summary(
        "import",
        &format!("{} rows/s", thousands(import_rate)),
        &format!("{:.2}x raw", import_rate / raw_rate),
        &target(import_rate >= TARGET_IMPORT_PER_S, ">= 20,000/s"),
    );
    summary(
        "export",
        &format!("{} rows/s", thousands(export_rate)),
        &format!("{:.2}x SELECT", export_rate / select_rate),
        &target(export_rate >= TARGET_EXPORT_PER_S, ">= 50,000/s"),
    );
    summary(
        "export XLSX",
        &format!("{} rows/s", thousands(xlsx_rate)),
        &format!("{:.2}x SELECT", xlsx_rate / select_rate),
        &target(xlsx_rate >= TARGET_EXPORT_PER_S, ">= 50,000/s"),
    );
    println!("\n(total {:.0} s)", started.elapsed().as_secs_f64());
}
