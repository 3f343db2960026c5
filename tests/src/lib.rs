//! Test harness: starts the real `crm` binary on a free port with a temporary data
//! dir, on SQLite or on PostgreSQL (a fresh schema per server), and talks HTTP to it
//! as a client would. Used by the black-box tests in `tests/` and the benchmarks.

pub mod browser;
pub mod smtp;
pub mod web;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub use reqwest;
pub use serde_json::json;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin-password-1";

/// Which database a server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// PostgreSQL for tests: `CRM_TEST_POSTGRES_URL`, default the local `test` database.
pub fn postgres_url() -> String {
    std::env::var("CRM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Builds (once per test process) and returns the `crm` binary. `CRM_BIN` overrides;
/// `release` selects the release profile (for benchmarks).
pub fn crm_binary(release: bool) -> PathBuf {
    static DEBUG: OnceLock<PathBuf> = OnceLock::new();
    static RELEASE: OnceLock<PathBuf> = OnceLock::new();
    if let Ok(bin) = std::env::var("CRM_BIN") {
        return PathBuf::from(bin);
    }
    let cell = if release { &RELEASE } else { &DEBUG };
    cell.get_or_init(|| {
        let mut cmd = std::process::Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "-p",
            "crm-host",
            "--bin",
            "crm",
            "--message-format=json-render-diagnostics",
        ]);
        if release {
            cmd.arg("--release");
        }
        // Variables cargo set for this test process (its package's name, version,
        // manifest) and the `[env]` of .cargo/config.toml: build scripts watch them
        // (ring's watches CARGO_PKG_NAME), so passed on they made this build compile
        // ring, the TLS crates and crm-host again (50 s) whenever a plain
        // `cargo build` or `cargo test` had come between.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            let per_package = [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
            ]
            .iter()
            .any(|p| name.starts_with(p));
            if per_package
                || [
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "LIBSQLITE3_FLAGS",
                ]
                .contains(&name.as_ref())
            {
                cmd.env_remove(name.as_ref());
            }
        }
        let out = cmd.stderr(Stdio::inherit()).output().expect("cargo runs");
        assert!(out.status.success(), "building crm failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "crm")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reports the crm executable")
    })
    .clone()
}

/// Builds (once per test process) the package of the plugin crate at `dir`
/// (relative to the workspace root) with `crm plugin pack`, and returns its bytes.
pub fn plugin_package(dir: &str) -> Vec<u8> {
    static PACKAGES: OnceLock<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>> =
        OnceLock::new();
    let cache = PACKAGES.get_or_init(Default::default);
    let mut cache = cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(p) = cache.get(dir) {
        return p.clone();
    }
    // The plugin is built for wasm32-wasip2; add the target on a fresh machine (a
    // no-op when it is there; without rustup the build says what is missing).
    static TARGET: OnceLock<()> = OnceLock::new();
    TARGET.get_or_init(|| {
        let _ = std::process::Command::new("rustup")
            .args(["target", "add", "wasm32-wasip2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    });
    // The checkout being tested: cargo sets CARGO_MANIFEST_DIR when it runs a test
    // or bench. The compile-time value can name another checkout when two share a
    // target dir (cargo reuses the compiled crate), as `.ci/run` in a clone does.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let root = PathBuf::from(manifest_dir).join("..");
    let out = tempfile::Builder::new()
        .suffix(".crmplugin")
        .tempfile()
        .expect("temp file");
    let status = std::process::Command::new(crm_binary(false))
        .args(["plugin", "pack"])
        .arg(root.join(dir))
        .arg("--out")
        .arg(out.path())
        .env("CARGO", env!("CARGO"))
        .stdout(Stdio::null())
        .status()
        .expect("crm plugin pack runs");
    assert!(status.success(), "packing {dir} failed");
    let bytes = std::fs::read(out.path()).expect("package");
    cache.insert(dir.to_string(), bytes.clone());
    bytes
}

/// A package made of the given files (for malformed packages).
pub fn package_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, *bytes)
            .expect("tar entry");
    }
    tar.into_inner().expect("tar")
}

/// A running `crm serve` with its own data dir (and PostgreSQL schema).
pub struct Server {
    child: Child,
    options: Options,
    pub backend: Backend,
    pub base: String,
    pub data_dir: tempfile::TempDir,
    pub database_url: String,
    pg_schema: Option<String>,
    pub http: reqwest::Client,
}

/// Options for starting a server.
#[derive(Default, Clone)]
pub struct Options {
    pub env: Vec<(String, String)>,
    pub release: bool,
}

impl Options {
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
}

impl Server {
    pub async fn start(backend: Backend) -> Server {
        Self::start_with(backend, Options::default()).await
    }

    pub async fn start_with(backend: Backend, options: Options) -> Server {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let (database_url, pg_schema) = match backend {
            Backend::Sqlite => (
                format!(
                    "sqlite://{}?mode=rwc",
                    data_dir.path().join("crm.db").display()
                ),
                None,
            ),
            Backend::Postgres => {
                let schema = format!("crm_t_{}", uuid::Uuid::new_v4().simple());
                run_postgres(&format!("CREATE SCHEMA {schema}")).await;
                (with_search_path(&postgres_url(), &schema), Some(schema))
            }
        };
        let (child, base) = spawn(&options, data_dir.path(), &database_url, "127.0.0.1:0").await;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .expect("client");
        Server {
            child,
            options,
            backend,
            base,
            data_dir,
            database_url,
            pg_schema,
            http,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The server's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the server at once (SIGKILL: no shutdown, as a crash or power cut).
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("the server is killed");
    }

    /// Starts the server again on the same address, data and database, after
    /// [`Self::kill`]: clients and their tokens go on working.
    pub async fn restart(&mut self) {
        let listen = self.base.trim_start_matches("http://").to_string();
        let (child, base) = spawn(
            &self.options,
            self.data_dir.path(),
            &self.database_url,
            &listen,
        )
        .await;
        self.child = child;
        self.base = base;
    }

    /// Waits for the process to exit (after a signal) and returns its exit code.
    pub async fn wait(&mut self) -> Option<i32> {
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .ok()?
            .ok()?
            .code()
    }

    /// Logs in and returns a client acting as that user.
    pub async fn login(&self, email: &str, password: &str) -> Client {
        let anon = self.anonymous();
        let res = anon
            .post(
                "/api/v1/auth/login",
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::OK,
            "login of {email} failed: {}",
            res.body
        );
        let token = res.body["token"].as_str().expect("token").to_string();
        Client {
            token: Some(token),
            ..anon
        }
    }

    pub async fn admin(&self) -> Client {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Creates a user (as admin) and logs in as them.
    pub async fn user(&self, email: &str, is_admin: bool) -> (String, Client) {
        let admin = self.admin().await;
        let res = admin
            .post("/api/v1/users", json!({"email": email, "name": email, "password": "password-123", "is_admin": is_admin}))
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        let id = res.body["id"].as_str().unwrap().to_string();
        (id, self.login(email, "password-123").await)
    }

    /// Creates a user with `role` in `department` (as admin) and logs in as them.
    pub async fn member(&self, email: &str, department: &str, role: &str) -> (String, Client) {
        let admin = self.admin().await;
        let res = admin
            .post("/api/v1/users", json!({"email": email, "name": email, "password": "password-123", "department": department, "role": role}))
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        let id = res.body["id"].as_str().unwrap().to_string();
        (id, self.login(email, "password-123").await)
    }

    pub fn anonymous(&self) -> Client {
        Client {
            base: self.base.clone(),
            token: None,
            http: self.http.clone(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if let Some(schema) = self.pg_schema.take() {
            // Drop runs outside async context guarantees: use a thread with its own runtime.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(run_postgres(&format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE"
                )));
            })
            .join();
        }
    }
}

fn with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

async fn run_postgres(sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&postgres_url())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {} is needed for these tests: {e}",
                postgres_url()
            )
        });
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut conn)
        .await
        .expect("PostgreSQL statement");
}

/// An HTTP client acting as one user (or nobody).
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub token: Option<String>,
    pub http: reqwest::Client,
}

/// A response: status, headers and the JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    /// The body as text (for answers that are not JSON, such as CSV).
    pub text: String,
    /// The body as sent (for files such as workbooks).
    pub bytes: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The `field` names of a validation problem.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["field"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Client {
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut rb = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        rb
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Response {
        let res = rb.send().await.expect("request reaches the server");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Response {
            status,
            headers,
            body,
            text: String::from_utf8_lossy(&bytes).into_owned(),
            bytes: bytes.to_vec(),
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(self.request(Method::GET, path)).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.send(self.request(Method::POST, path).json(&body))
            .await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Response {
        self.send(self.request(Method::PATCH, path).json(&body))
            .await
    }
    pub async fn patch_if(&self, path: &str, version: i64, body: Value) -> Response {
        self.send(
            self.request(Method::PATCH, path)
                .header("If-Match", format!("\"{version}\""))
                .json(&body),
        )
        .await
    }
    pub async fn put(&self, path: &str, body: Value) -> Response {
        self.send(self.request(Method::PUT, path).json(&body)).await
    }
    pub async fn delete(&self, path: &str) -> Response {
        self.send(self.request(Method::DELETE, path)).await
    }
    /// Sends a raw body with a content type (for malformed input).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        self.send(
            self.request(method, path)
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }

    /// Creates a department (as an admin) and answers its id, asserting success.
    pub async fn department(&self, name: &str) -> String {
        let res = self
            .post("/api/v1/departments", serde_json::json!({"name": name}))
            .await;
        assert_eq!(res.status, reqwest::StatusCode::CREATED, "{}", res.body);
        res.body["id"].as_str().expect("an id").to_string()
    }

    /// Uploads a plugin package, approves it and enables it in `department` (as an
    /// organisation admin); answers the plugin's id.
    pub async fn install_plugin(&self, package: Vec<u8>, department: &str) -> String {
        let res = self
            .raw(
                Method::POST,
                "/api/v1/plugins",
                "application/x-tar",
                package,
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        let id = res.body["id"].as_str().expect("a plugin id").to_string();
        for (path, body) in [
            (
                format!("/api/v1/plugins/{id}/approve"),
                serde_json::json!({}),
            ),
            (
                format!("/api/v1/plugins/{id}/enable"),
                serde_json::json!({"department": department}),
            ),
        ] {
            let res = self.post(&path, body).await;
            assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        }
        id
    }

    pub async fn create(&self, object: &str, body: Value) -> Value {
        let res = self.post(&format!("/api/v1/records/{object}"), body).await;
        assert_eq!(
            res.status,
            StatusCode::CREATED,
            "creating a {object} record: {}",
            res.body
        );
        res.body
    }
}

/// Runs each listed `async fn name(backend: Backend)` as two tests, `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::Backend::Postgres).await
                }
            }
        )*
    };
}

/// Polls `check` every 50 ms until it answers `Some`, for at most `within`; then
/// panics naming `what`. For work the host does in the background (after-save
/// delivery), never to wait out a fixed time.
pub async fn eventually<T, F, Fut>(within: std::time::Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Starts `crm serve` on a data dir and database; answers the child and its address.
async fn spawn(
    options: &Options,
    data_dir: &std::path::Path,
    database_url: &str,
    listen: &str,
) -> (Child, String) {
    let mut cmd = Command::new(crm_binary(options.release));
    cmd.arg("serve")
        .env("CRM_LISTEN", listen)
        .env("CRM_DATA_DIR", data_dir)
        .env("CRM_DATABASE_URL", database_url)
        .env("CRM_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("CRM_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env(
            "RUST_LOG",
            std::env::var("CRM_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(data_dir.join("server.log"))
                .expect("log file"),
        ))
        .kill_on_drop(true);
    for (k, v) in &options.env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("crm starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let base = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("crm listening on ") {
                return Some(url.to_string());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .unwrap_or_else(|| {
        let log = std::fs::read_to_string(data_dir.join("server.log")).unwrap_or_default();
        panic!("crm did not start; its log:\n{log}")
    });
    // Keep draining stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, base)
}
