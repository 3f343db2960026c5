//! A headless Chromium driven over WebDriver (Debian's chromium and chromium-driver),
//! for end-to-end tests of the web pages: a few plain HTTP calls to chromedriver,
//! no browser-automation framework.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The key WebDriver gives an element reference under.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a step waits for an element to appear: a ceiling, not a speed check.
/// Six browsers, their servers and plugin builds share two cores in a full run;
/// 10 s was once too short for a page after enabling a plugin.
const WAIT: Duration = Duration::from_secs(30);

/// Browsers open at once: each test's Chromium and server share two cores with the
/// others, so more at a time only makes every step slower.
static OPEN: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

pub struct Browser {
    driver: Child,
    _turn: tokio::sync::SemaphorePermit<'static>,
    http: reqwest::Client,
    session: String,
    shots: PathBuf,
}

/// Whether this machine can run browser tests (`.ci/run` installs chromium).
pub fn available() -> bool {
    std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session; screenshots go to
    /// `<out_dir>/screenshots`.
    pub async fn start(out_dir: &str) -> Browser {
        assert!(
            available(),
            "browser tests need {CHROMIUM} and {CHROMEDRIVER}: apt-get install chromium chromium-driver (.ci/run does)"
        );
        let turn = OPEN
            .acquire()
            .await
            .expect("the browser semaphore is never closed");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(started.elapsed() < WAIT, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900", "--lang=en-GB"]
            }
        }}});
        let res: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session json");
        let id = res["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromium did not start: {res}"));
        let shots = PathBuf::from(out_dir).join("screenshots");
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        Browser {
            driver,
            _turn: turn,
            http,
            session: format!("{base}/session/{id}"),
            shots,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut rb = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            rb = rb.json(&body);
        }
        let res: Value = rb
            .send()
            .await
            .expect("webdriver call")
            .json()
            .await
            .expect("webdriver json");
        res["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn current_url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The element `css` selects, waiting for it to appear.
    pub async fn find(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            let found = self
                .call(
                    reqwest::Method::POST,
                    "/element",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            if let Some(id) = found[ELEMENT].as_str() {
                return id.to_string();
            }
            assert!(
                started.elapsed() < WAIT,
                "no element matches {css} on {}",
                self.current_url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Does `action` (a path under the element) on the element `css` selects. An
    /// element gone stale, because the page was replaced between finding and acting,
    /// is found again; any other WebDriver error fails the test.
    async fn on_element(
        &self,
        css: &str,
        method: reqwest::Method,
        action: &str,
        body: Option<Value>,
    ) -> Value {
        let started = Instant::now();
        loop {
            let el = self.find(css).await;
            let value = self
                .call(
                    method.clone(),
                    &format!("/element/{el}/{action}"),
                    body.clone(),
                )
                .await;
            match value.get("error").and_then(Value::as_str) {
                None => return value,
                Some("stale element reference") if started.elapsed() < WAIT => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Some(error) => panic!(
                    "{action} on {css} failed ({error}): {}",
                    value["message"].as_str().unwrap_or_default()
                ),
            }
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        self.on_element(css, reqwest::Method::POST, "clear", Some(json!({})))
            .await;
        self.on_element(
            css,
            reqwest::Method::POST,
            "value",
            Some(json!({ "text": text })),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        self.on_element(css, reqwest::Method::POST, "click", Some(json!({})))
            .await;
    }

    pub async fn text(&self, css: &str) -> String {
        self.on_element(css, reqwest::Method::GET, "text", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Runs `script` in the page and answers what it returns; a script that throws
    /// fails the test (a silent failure once let a step act on the page before it).
    pub async fn script(&self, script: &str) -> Value {
        let value = self.try_script(script).await;
        if let Some(error) = value.get("error") {
            panic!(
                "the script failed ({error}): {}\n{script}",
                value["message"].as_str().unwrap_or_default()
            );
        }
        value
    }

    /// Runs `script`; what WebDriver answered, an error object when it threw.
    async fn try_script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Waits until `script` returns `true` in the page (a page still loading, where
    /// the script throws, counts as not yet).
    pub async fn wait_until(&self, what: &str, script: &str) {
        let started = Instant::now();
        while self.try_script(script).await != Value::Bool(true) {
            assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a screenshot of the page as `<name>.png` and answers its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .expect("a base64 screenshot");
        assert!(bytes.starts_with(b"\x89PNG"), "the screenshot is a PNG");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, bytes).expect("screenshot written");
        path
    }
}

impl Browser {
    /// Ends the session (Chromium exits) and stops chromedriver.
    pub async fn quit(mut self) {
        let _ = self.http.delete(&self.session).send().await;
        let _ = self.driver.kill().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.start_kill();
    }
}
