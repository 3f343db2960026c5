//! Configuration from the environment (see the README for the full list).

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything `crm serve` needs to know, read once at start.
#[derive(Clone, Debug)]
pub struct Config {
    /// `CRM_LISTEN`, default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// `CRM_DATA_DIR`, default `./data`.
    pub data_dir: PathBuf,
    /// `CRM_DATABASE_URL`; `None` means the embedded SQLite file in the data dir.
    pub database_url: Option<String>,
    /// `CRM_MAX_BODY_BYTES`, default 1 MiB.
    pub max_body_bytes: usize,
    /// `CRM_MAX_UPLOAD_BYTES`: the largest document file, default 2 GiB.
    pub max_upload_bytes: u64,
    /// `CRM_DOCUMENT_STORE`: `local` (default: files under the data dir) or
    /// `s3://bucket[/prefix]` (with `CRM_S3_ENDPOINT` for S3-compatible servers and
    /// the usual `AWS_*` variables for credentials and region).
    pub document_store: String,
    /// `CRM_SESSION_HOURS`: lifetime of a login token, default 12 hours.
    pub session_hours: i64,
    /// `CRM_LOG_FORMAT`: `json` for structured logs, anything else for human-readable ones.
    pub log_json: bool,
    /// `CRM_PROCESS_RETRY_MS`: waits before each retry of a failed process step, in
    /// milliseconds, comma-separated (default `1000,5000,30000`: three retries, then
    /// an incident). Tests shorten it.
    pub process_retries: Vec<std::time::Duration>,
    /// `CRM_WEBHOOK_RETRY_MS`: waits between a webhook delivery's attempts; after
    /// the last, the delivery has failed (replay sends it again).
    pub webhook_retries: Vec<std::time::Duration>,
    /// `CRM_WEBHOOK_TIMEOUT_MS`: how long a webhook endpoint has to answer.
    pub webhook_timeout: std::time::Duration,
    /// `CRM_PROCESS_LEASE_SECS`: how long a host's claim on a process token lasts
    /// (default 90, longer than any step's deadline); a stopped host's tokens run
    /// again elsewhere after it. Tests shorten it.
    pub process_lease: std::time::Duration,
    /// `CRM_PROCESS_SCHEDULE_MIN_SECS`: the shortest period a scheduled process may
    /// have (default 60: every minute at most). Tests shorten it.
    pub process_schedule_min: std::time::Duration,
    /// `CRM_SMTP_URL`: where queued emails are sent (`smtp://user:pass@host:587?tls=required`,
    /// `smtps://host:465`, `smtp://relay:25`); unset, they stay queued.
    pub smtp_url: Option<String>,
    /// `CRM_SMTP_FROM`: the sender of those emails (default `crm@localhost`).
    pub smtp_from: String,
    /// `CRM_PUBLIC_URL`: where people reach this server (`https://crm.example.com`),
    /// for links in emails; unset, emails give the page's path.
    pub public_url: Option<String>,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let listen = env_or("CRM_LISTEN", "127.0.0.1:8080")
            .parse()
            .map_err(|e| anyhow::anyhow!("CRM_LISTEN is not a socket address: {e}"))?;
        let max_body_bytes = env_or("CRM_MAX_BODY_BYTES", "1048576")
            .parse()
            .map_err(|e| anyhow::anyhow!("CRM_MAX_BODY_BYTES is not a number: {e}"))?;
        let max_upload_bytes = env_or("CRM_MAX_UPLOAD_BYTES", "2147483648")
            .parse()
            .map_err(|e| anyhow::anyhow!("CRM_MAX_UPLOAD_BYTES is not a number: {e}"))?;
        let session_hours = env_or("CRM_SESSION_HOURS", "12")
            .parse()
            .map_err(|e| anyhow::anyhow!("CRM_SESSION_HOURS is not a number: {e}"))?;
        let process_retries = millis_list("CRM_PROCESS_RETRY_MS", "1000,5000,30000")?;
        let webhook_retries = millis_list(
            "CRM_WEBHOOK_RETRY_MS",
            "10000,30000,120000,600000,1800000,3600000",
        )?;
        let webhook_timeout = env_or("CRM_WEBHOOK_TIMEOUT_MS", "10000")
            .parse()
            .map(std::time::Duration::from_millis)
            .map_err(|e| anyhow::anyhow!("CRM_WEBHOOK_TIMEOUT_MS is not a number: {e}"))?;
        let process_lease = env_or("CRM_PROCESS_LEASE_SECS", "90")
            .parse()
            .map(std::time::Duration::from_secs)
            .map_err(|e| anyhow::anyhow!("CRM_PROCESS_LEASE_SECS is not a number: {e}"))?;
        let process_schedule_min = env_or("CRM_PROCESS_SCHEDULE_MIN_SECS", "60")
            .parse()
            .map(std::time::Duration::from_secs)
            .map_err(|e| anyhow::anyhow!("CRM_PROCESS_SCHEDULE_MIN_SECS is not a number: {e}"))?;
        Ok(Config {
            smtp_url: std::env::var("CRM_SMTP_URL").ok().filter(|s| !s.is_empty()),
            smtp_from: env_or("CRM_SMTP_FROM", "crm@localhost"),
            public_url: std::env::var("CRM_PUBLIC_URL")
                .ok()
                .map(|u| u.trim_end_matches('/').to_string())
                .filter(|u| !u.is_empty()),
            listen,
            process_schedule_min,
            process_retries,
            process_lease,
            webhook_retries,
            webhook_timeout,
            data_dir: PathBuf::from(env_or("CRM_DATA_DIR", "./data")),
            database_url: std::env::var("CRM_DATABASE_URL")
                .ok()
                .filter(|s| !s.is_empty()),
            max_body_bytes,
            max_upload_bytes,
            document_store: env_or("CRM_DOCUMENT_STORE", "local"),
            session_hours,
            log_json: std::env::var("CRM_LOG_FORMAT").is_ok_and(|v| v == "json"),
        })
    }

    /// The database to open: `CRM_DATABASE_URL`, or `crm.db` in the data dir.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("crm.db").display()
            ),
        }
    }
}

/// A comma-separated list of milliseconds (waits between retries).
fn millis_list(name: &str, default: &str) -> anyhow::Result<Vec<std::time::Duration>> {
    env_or(name, default)
        .split(',')
        .map(|ms| ms.trim().parse().map(std::time::Duration::from_millis))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{name} is not a list of milliseconds: {e}"))
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| default.to_string())
}
