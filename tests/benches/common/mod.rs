//! What the benchmarks share: the load runner, the server's SQLite options, bulk
//! seeding of records, and printing. Each bench uses part of it.
#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Connection};

/// Records of `bench_items` seeded for the list benchmarks.
pub const SEED_ROWS: usize = 1_000_000;
/// Distinct `code` values: each matches SEED_ROWS / CODES records (10).
pub const CODES: u64 = 100_000;
pub const ROWS_PER_STATEMENT: usize = 100;
pub const ROWS_PER_TRANSACTION: usize = 10_000;

// ---------------------------------------------------------------------------------
// Load runner

/// The outcome of a batch of operations: how many succeeded, how long it took, and
/// the latency of each successful one (sorted).
pub struct Run {
    pub done: usize,
    pub errors: usize,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
}

impl Run {
    pub fn rate(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64()
    }
    /// Nearest-rank percentile, `p` in 0..=1.
    pub fn pct(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = (p * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }
    /// Several runs of the same operation as one: their counts, time and latencies.
    pub fn merge(runs: Vec<Run>) -> Run {
        let mut merged = Run {
            done: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            latencies: Vec::new(),
        };
        for r in runs {
            merged.done += r.done;
            merged.errors += r.errors;
            merged.first_error = merged.first_error.or(r.first_error);
            merged.elapsed += r.elapsed;
            merged.latencies.extend(r.latencies);
        }
        merged.latencies.sort_unstable();
        merged
    }

    pub fn max(&self) -> Duration {
        self.latencies.last().copied().unwrap_or_default()
    }
}

/// Runs `op(0..total)` on `tasks` concurrent tasks, each timing its own operations,
/// until `total` were started or `limit` passed.
pub async fn run_load<F, Fut>(tasks: usize, total: usize, limit: Duration, op: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (op, next, first_error) = (op.clone(), next.clone(), first_error.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(total / tasks + 1);
                let mut errors = 0;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total || start.elapsed() > limit {
                        break;
                    }
                    let t = Instant::now();
                    match op(i).await {
                        Ok(()) => latencies.push(t.elapsed()),
                        Err(e) => {
                            errors += 1;
                            first_error.lock().unwrap().get_or_insert(e);
                        }
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(total);
    let mut errors = 0;
    for h in handles {
        let (l, e) = h.await.expect("a load task panicked");
        latencies.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let first_error = first_error.lock().unwrap().take();
    Run {
        done: latencies.len(),
        errors,
        first_error,
        elapsed,
        latencies,
    }
}

/// SQLite opened as `crm` opens it (host/src/db/mod.rs).
pub fn sqlite_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
}

/// A release `crm serve` on SQLite, its admin, and a department "Sales" (its id),
/// with `plugin` (a crate under the workspace, such as `plugins/forms`) installed,
/// approved and enabled there.
pub async fn release_server_with(plugin: &str) -> (crm_tests::Server, crm_tests::Client, String) {
    let srv = crm_tests::Server::start_with(
        crm_tests::Backend::Sqlite,
        crm_tests::Options {
            release: true,
            ..Default::default()
        },
    )
    .await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    progress(&format!("building and installing {plugin}"));
    admin
        .install_plugin(crm_tests::plugin_package(plugin), &sales)
        .await;
    (srv, admin, sales)
}

/// The running server's SQLite file, opened beside it for seeding, and the id of its
/// admin (who owns the seeded records).
pub async fn open_server_db(srv: &crm_tests::Server) -> (SqlitePool, String) {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(sqlite_options(&srv.data_dir.path().join("crm.db")))
        .await
        .expect("the server's SQLite file opens");
    let admin: String = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(crm_tests::ADMIN_EMAIL)
        .fetch_one(&pool)
        .await
        .expect("the admin exists");
    (pool, admin)
}

/// Bulk-inserts SEED_ROWS records of `bench_items` straight into the server's file,
/// shaped as the server stores them, record `i` placed at `placement(i)` (owner,
/// department); returns how long it took.
pub async fn seed(
    pool: &SqlitePool,
    placement: impl Fn(usize) -> (String, Option<String>),
) -> Duration {
    let values = vec!["(?, 'bench_items', 1, ?, ?, ?, ?, ?, ?, ?)"; ROWS_PER_STATEMENT].join(", ");
    let sql: Arc<str> = format!(
        "INSERT INTO records (id, object, version, owner_id, department_id, created_by, updated_by, created_at, updated_at, data) VALUES {values}"
    )
    .into();
    let start = Instant::now();
    let mut conn = pool.acquire().await.expect("connection");
    for tx_start in (0..SEED_ROWS).step_by(ROWS_PER_TRANSACTION) {
        let mut tx = conn.begin().await.expect("begin");
        let tx_end = (tx_start + ROWS_PER_TRANSACTION).min(SEED_ROWS);
        for stmt_start in (tx_start..tx_end).step_by(ROWS_PER_STATEMENT) {
            let now = now_text();
            let mut q = sqlx::query(AssertSqlSafe(sql.clone()));
            for i in stmt_start..stmt_start + ROWS_PER_STATEMENT {
                let (owner, department) = placement(i);
                q = q
                    .bind(uuid::Uuid::now_v7().to_string())
                    .bind(owner.clone())
                    .bind(department)
                    .bind(owner.clone())
                    .bind(owner)
                    .bind(now.clone())
                    .bind(now.clone())
                    .bind(format!(
                        r#"{{"name":"Item {i}","code":{}}}"#,
                        i as u64 % CODES
                    ));
            }
            q.execute(&mut *tx).await.expect("seed insert");
        }
        tx.commit().await.expect("commit");
    }
    drop(conn);
    start.elapsed()
}

// ---------------------------------------------------------------------------------
// Helpers

/// Marks the start of a phase on stderr (stdout keeps only the results).
pub fn progress(phase: &str) {
    eprintln!("bench: {phase}");
}

/// Resident memory of a process in MB (VmRSS).
pub fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// User + system CPU seconds of a process so far (Linux clock ticks of 1/100 s).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Now as the server writes timestamps: `YYYY-MM-DDTHH:MM:SS.ffffffZ`, UTC.
pub fn now_text() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    let secs = d.as_secs() as i64;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        sod / 3_600,
        sod % 3_600 / 60,
        sod % 60,
        d.subsec_micros()
    )
}

/// A small xorshift generator: random existing codes without another dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn new() -> Rng {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
        Rng(seed | 1)
    }
    pub fn code(&mut self) -> i64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % CODES) as i64
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

pub fn latencies(run: &Run) -> String {
    format!(
        "{} / {} / {}",
        ms(run.pct(0.50)),
        ms(run.pct(0.99)),
        ms(run.max())
    )
}

pub fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

pub fn pass(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

pub fn target(ok: bool, what: &str) -> String {
    format!("target {what} {}", pass(ok))
}

/// 12345.6 -> "12,346".
pub fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn row(label: &str, value: &str, note: &str) {
    println!("    {label:<34} {value}   {note}");
}

pub fn summary(label: &str, value: &str, ratio: &str, target: &str) {
    println!("  {label:<32} {value:>14}  {ratio:>14}  {target}");
}
