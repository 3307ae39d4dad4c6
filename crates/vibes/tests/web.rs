//! The web page of `vibes serve` in a real headless Chromium, driven over WebDriver
//! (Debian's chromium and chromium-driver): it loads, events that another process
//! appends show up in the firehose within a second, a filter narrows them, a session
//! row opens its timeline, and the gaps and AI-coder views answer. Screenshots of each view are saved under
//! target/tmp/web-screenshots/.
//!
//! `cargo test -p vibes --test web -- --ignored` (`.ci/run` does, after installing
//! chromium and chromium-driver when they are missing).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

mod common;

use common::EXAMPLE;
use common::http::{Serve, request};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver process and one browser session in it.
struct Browser {
    driver: Child,
    addr: String,
    session: String,
}

impl Browser {
    fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts (apt-get install chromium chromium-driver)");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "chromedriver listens");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
        };
        let created = browser.call(
            "POST",
            "/session",
            json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900"]
                }
            }}}),
        );
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("a session: {created}"))
            .to_owned();
        browser
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let body = body.to_string();
        let answer = request(
            &self.addr,
            method,
            path,
            &[("Content-Type", "application/json")],
            if method == "GET" || method == "DELETE" {
                b""
            } else {
                body.as_bytes()
            },
        );
        let value: Value = answer.json();
        assert_eq!(answer.status, 200, "{method} {path}: {value}");
        value
            .get("value")
            .cloned()
            .unwrap_or(Value::Null)
            .pipe_session(value)
    }

    fn at(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    fn open(&self, url: &str) {
        self.call("POST", &self.at("/url"), json!({ "url": url }));
    }

    fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.at("/execute/sync"),
            json!({ "script": script, "args": [] }),
        )
    }

    /// Waits until `script` returns true.
    fn wait_for(&self, what: &str, script: &str, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if self.script(script) == Value::Bool(true) {
                return started.elapsed();
            }
            if started.elapsed() >= within {
                let page = self.script("return document.body.innerText");
                panic!("{what} within {within:?}; the page shows: {page}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn element(&self, css: &str) -> String {
        let found = self.call(
            "POST",
            &self.at("/element"),
            json!({"using": "css selector", "value": css}),
        );
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("element {css}: {found}"))
            .to_owned()
    }

    fn click(&self, css: &str) {
        let id = self.element(css);
        self.call("POST", &self.at(&format!("/element/{id}/click")), json!({}));
    }

    fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.call("POST", &self.at(&format!("/element/{id}/clear")), json!({}));
        self.call(
            "POST",
            &self.at(&format!("/element/{id}/value")),
            json!({ "text": text }),
        );
    }

    fn screenshot(&self, name: &str) -> PathBuf {
        let data = self.call("GET", &self.at("/screenshot"), Value::Null);
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().expect("base64"))
            .expect("a PNG");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("screenshot written");
        path
    }
}

/// WebDriver answers `{"value": ...}`; a new session's value holds its id.
trait PipeSession {
    fn pipe_session(self, whole: Value) -> Value;
}

impl PipeSession for Value {
    fn pipe_session(self, whole: Value) -> Value {
        if self.get("sessionId").is_some() || whole.get("sessionId").is_none() {
            self
        } else {
            whole
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = request(
                &self.addr,
                "DELETE",
                &format!("/session/{}", self.session),
                &[],
                b"",
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
#[ignore = "needs chromium"]
fn the_page_shows_live_events_filters_them_and_opens_a_session() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (home, data) = (dir.path().join("home"), dir.path().join("data"));
    let vibes = |args: &[&str]| {
        let out = common::vibes(&home)
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .expect("vibes runs");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    vibes(&["ingest", "claude", EXAMPLE]);
    let serve = Serve::start(&home, &data, "127.0.0.1:0", &[]);
    let page = format!("http://{}/", serve.addr);
    let browser = Browser::start();

    // The page loads with the recent history in the firehose, in tail's display.
    browser.open(&page);
    browser.wait_for(
        "the history in the firehose",
        "return document.querySelectorAll('#firehose .event').length === 25",
        Duration::from_secs(10),
    );
    let text = browser.script("return document.getElementById('firehose').textContent");
    assert!(
        text.as_str()
            .expect("text")
            .contains("▶ session 5f0c2a1e started: claude-sonnet-4-5-20250929"),
        "{text}"
    );
    let coloured =
        browser.script("return document.querySelectorAll('#firehose .s-red').length > 0");
    assert_eq!(
        coloured,
        Value::Bool(true),
        "failures in red, as tail colours them"
    );

    // An event appended by `vibes emit` in another process shows within a second.
    let line = "{\"type\":\"error\",\"message\":\"from another process\",\"severity\":\"error\"}\n";
    let input = dir.path().join("one.jsonl");
    std::fs::write(&input, line).expect("input");
    vibes(&["emit", input.to_str().expect("path")]);
    let took = browser.wait_for(
        "the emitted event in the firehose",
        "return document.getElementById('firehose').textContent.includes('from another process')",
        Duration::from_secs(1),
    );
    eprintln!("the emitted event showed after {took:?}");
    browser.screenshot("firehose");

    // A filter narrows the firehose to what it matches.
    browser.type_into("#filter-type", "claude.tool_result");
    browser.click("#apply");
    browser.wait_for(
        "the filtered firehose",
        "const rows = [...document.querySelectorAll('#firehose .event')]; \
         return rows.length === 9 && rows.every(r => r.dataset.type === 'claude.tool_result')",
        Duration::from_secs(5),
    );
    // Paused, nothing new shows; resumed, what came meanwhile does.
    browser.click("#pause");
    let input2 = dir.path().join("two.jsonl");
    std::fs::write(&input2, "{\"type\":\"claude.tool_result\",\"tool_id\":\"t-9\",\"content\":\"while paused\",\"is_error\":false}\n").expect("input");
    vibes(&["emit", input2.to_str().expect("path")]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        browser.script(
            "return document.getElementById('firehose').textContent.includes('while paused')"
        ),
        Value::Bool(false)
    );
    browser.click("#pause");
    browser.wait_for(
        "what came while paused",
        "return document.querySelectorAll('#firehose .event').length === 10 && document.getElementById('firehose').textContent.includes('while paused')",
        Duration::from_secs(2),
    );
    browser.screenshot("firehose-filtered");

    // Sessions: the table, and a row opens the session's timeline with its tool calls
    // and failures expanded.
    browser.click("#nav-sessions");
    browser.wait_for(
        "the sessions table",
        "return document.querySelectorAll('#sessions-table tbody tr').length === 1",
        Duration::from_secs(5),
    );
    let row =
        browser.script("return document.querySelector('#sessions-table tbody tr').textContent");
    let row = row.as_str().expect("text");
    for cell in [
        "5f0c2a1e",
        "claude-sonnet-4-5-20250929",
        "success",
        "14",
        "9",
        "2",
        "$0.1873",
        "1m 34s",
    ] {
        assert!(row.contains(cell), "{cell} in {row}");
    }
    browser.screenshot("sessions");
    browser.click("#sessions-table tbody tr");
    browser.wait_for(
        "the session's timeline",
        "return document.querySelectorAll('#timeline .event').length === 25",
        Duration::from_secs(5),
    );
    let expanded = browser.script(
        "return [document.querySelectorAll('#timeline pre').length, document.querySelectorAll('#timeline pre.failure').length]",
    );
    assert_eq!(
        expanded,
        json!([11, 2]),
        "9 tool calls and 2 failures expanded"
    );
    browser.screenshot("session-timeline");

    // The groove view answers (no gaps from one session).
    browser.click("#nav-gaps");
    browser.wait_for(
        "the gaps view",
        "return document.getElementById('gaps-status').textContent === '0 gaps'",
        Duration::from_secs(5),
    );
    browser.screenshot("gaps");

    // The AI-coder view: its live coders, alerts and stats from the running plugin.
    browser.wait_for(
        "the AI-coder tab",
        "return !document.getElementById('nav-ai-coder').hidden",
        Duration::from_secs(10),
    );
    browser.click("#nav-ai-coder");
    browser.wait_for(
        "the AI-coder view",
        "return ['coders', 'alerts', 'stats'].every(q => document.querySelector(`#ai-coder [data-query=${q}]`))",
        Duration::from_secs(5),
    );
    let stats = browser
        .script("return document.querySelector('#ai-coder [data-query=stats] pre').textContent");
    let stats: Value = serde_json::from_str(stats.as_str().expect("text")).expect("the stats JSON");
    assert!(stats.is_object(), "{stats}");
    browser.screenshot("ai-coder");
}
