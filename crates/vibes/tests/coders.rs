//! `vibes coders`, `vibes coders watch`, `vibes plugin ai-coder ...` and the ai-coder
//! lines of `vibes tail`, through the binary: over the example session and over
//! `run.*` and session events written with `vibes emit`.

use std::io::Write;
use std::process::Stdio;

use assert_cmd::Command;
use serde_json::{Value, json};
use tempfile::TempDir;

mod common;

use common::EXAMPLE;

struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("config.toml"), "").expect("config");
        Sandbox { dir }
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = common::vibes(&self.dir.path().join("home"));
        cmd.arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(args)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "warn");
        cmd
    }

    fn stdout(&self, args: &[&str]) -> String {
        let out = Command::from_std(self.command(args)).assert().success();
        String::from_utf8(out.get_output().stdout.clone()).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.stdout(args)).expect("JSON output")
    }

    fn emit(&self, events: &[Value]) {
        let mut child = self
            .command(&["emit"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        for e in events {
            writeln!(stdin, "{e}").unwrap();
        }
        drop(stdin);
        assert!(child.wait().unwrap().success());
    }
}

fn event(n: u32, ty: &str, fields: Value) -> Value {
    let mut e = json!({
        "id": format!("019c0000-0000-7000-8000-{n:012}"),
        "type": ty,
        "timestamp": format!("2026-02-01T10:{:02}:{:02}Z", n / 60, n % 60),
        "source": "test",
    });
    e.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    e
}

/// A supervised run named `fixer` whose session passes its memory limit.
fn run_events() -> Vec<Value> {
    vec![
        event(
            1,
            "run.start",
            json!({"run_id": "r1", "name": "fixer", "command": ["claude"], "max_rss_bytes": 67108864}),
        ),
        event(
            2,
            "session.start",
            json!({"session_id": "s-run", "model": "claude-sonnet-4-5-20250929", "tools": [], "cwd": "/w/repo"}),
        ),
        event(
            3,
            "claude.tool_use",
            json!({"session_id": "s-run", "tool_id": "t1", "tool_name": "Write", "input": {"file_path": "/w/repo/a.rs", "content": "fn a() {}"}}),
        ),
        event(
            4,
            "claude.tool_result",
            json!({"session_id": "s-run", "tool_id": "t1", "content": "File created successfully at: /w/repo/a.rs"}),
        ),
        event(
            5,
            "run.sample",
            json!({"run_id": "r1", "session_id": "s-run", "processes": 2, "cpu_ms": 900, "cpu_percent": 55.0, "rss_bytes": 50331648, "read_bytes": 0, "write_bytes": 4096, "open_files": 12}),
        ),
        event(
            65,
            "run.limit",
            json!({"run_id": "r1", "session_id": "s-run", "limit": "rss", "observed": 80000000.0, "threshold": 67108864.0}),
        ),
        event(
            66,
            "run.exit",
            json!({"run_id": "r1", "session_id": "s-run", "signal": 9, "duration_ms": 65000, "stopped_by": "rss"}),
        ),
    ]
}

#[test]
fn coders_shows_the_status_table_and_its_json() {
    let sandbox = Sandbox::new();
    sandbox.stdout(&["ingest", "claude", EXAMPLE]);
    // The example session has ended: no live coder, and the table says how to see it.
    let live = sandbox.stdout(&["coders"]);
    assert!(live.contains("no live coders"), "{live}");
    let all = sandbox.stdout(&["coders", "--all"]);
    let lines: Vec<&str> = all.lines().collect();
    assert!(lines[0].starts_with("CODER"), "{all}");
    for column in [
        "STATUS", "MODEL", "ELAPSED", "TURNS", "TOOLS", "ERRORS", "COST", "BURN/H",
    ] {
        assert!(lines[0].contains(column), "{column}: {all}");
    }
    assert!(lines[1].contains("completed"), "{all}");
    assert!(lines[1].contains("sonnet-4-5"), "{all}");
    assert!(all.contains("1 coder (1 completed)"), "{all}");

    let json = sandbox.json(&["coders", "--all", "--json"]);
    let coders = json["coders"].as_array().unwrap();
    assert_eq!(coders.len(), 1);
    let coder = &coders[0];
    assert_eq!(coder["status"], "completed");
    assert!(coder["tool_calls"].as_u64().unwrap() > 0);
    assert_eq!(coder["cost_source"], "reported");

    // The same state answers through the generic plugin query.
    let id = coder["coder_id"].as_str().unwrap();
    let one = sandbox.json(&["plugin", "ai-coder", "coder", id]);
    assert_eq!(one["coder_id"], id);
    assert_eq!(one["status"], "completed");
    let history = sandbox.json(&[
        "plugin",
        "ai-coder",
        "history",
        &format!("coder={id}"),
        "type=ai_coder.completed",
    ]);
    assert_eq!(history["count"], 1);
    let metrics = sandbox.json(&[
        "plugin",
        "ai-coder",
        "alerts",
        "type=ai_coder.completion_metrics",
    ]);
    assert_eq!(metrics["alerts"].as_array().unwrap().len(), 1);
}

#[test]
fn a_run_names_its_coder_and_its_limit_stops_it_with_a_warning() {
    let sandbox = Sandbox::new();
    sandbox.emit(&run_events());
    let all = sandbox.stdout(&["coders", "--all"]);
    let row = all
        .lines()
        .find(|l| l.starts_with("fixer"))
        .unwrap_or_else(|| panic!("{all}"));
    assert!(row.contains("stopped"), "{row}");
    // From the session's start (second 2) to the exit (second 66), in event time.
    assert!(row.contains("1m 4s"), "elapsed over event time: {row}");
    let coder = sandbox.json(&["plugin", "ai-coder", "coder", "s-run"]);
    assert_eq!(coder["coder_name"], "fixer");
    assert_eq!(coder["reason"], "stopped by rss");
    assert_eq!(coder["files"]["created"], 1);
    assert_eq!(coder["run"]["rss_bytes"], 50331648);
    let alerts = sandbox.json(&[
        "plugin",
        "ai-coder",
        "alerts",
        "type=ai_coder.system_warning",
    ]);
    let alerts = alerts["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["warning"], "resource_limit");

    // The plugin stored its events; `tail` shows them with their own lines.
    let tail = sandbox.stdout(&["tail", "--topic", "ai-coder/events"]);
    assert!(tail.contains("● fixer stopped (stopped by rss)"), "{tail}");
    // Before the run named its session, the coder had the directory's name.
    assert!(tail.contains("+ repo created /w/repo/a.rs"), "{tail}");
    assert!(
        tail.contains("▣ fixer: 48 MiB, 55.0% CPU, 2 processes"),
        "{tail}"
    );
    assert!(tail.contains("✗ fixer passed its rss limit"), "{tail}");
    let alerts = sandbox.stdout(&["tail", "--topic", "ai-coder/alerts"]);
    assert!(
        alerts.contains("⚠ fixer: AI coder resource limit exceeded"),
        "{alerts}"
    );
}

#[test]
fn watch_prints_the_table_again_only_when_it_changes_off_a_terminal() {
    let sandbox = Sandbox::new();
    sandbox.emit(&run_events()[..4]);
    let out = sandbox.stdout(&["coders", "watch", "--count", "3", "--interval", "0.05"]);
    assert_eq!(
        out.matches("CODER").count(),
        1,
        "unchanged: printed once\n{out}"
    );
    assert!(out.contains("running"), "{out}");

    // New events between refreshes are followed.
    let watch = sandbox
        .command(&[
            "coders",
            "watch",
            "--all",
            "--count",
            "40",
            "--interval",
            "0.1",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(600));
    sandbox.emit(&run_events()[4..]);
    let output = watch.wait_with_output().unwrap();
    assert!(output.status.success());
    let out = String::from_utf8(output.stdout).unwrap();
    assert!(out.matches("CODER").count() >= 2, "{out}");
    let last = out.rsplit("CODER").next().unwrap();
    assert!(last.contains("stopped"), "{out}");

    let bad = Command::from_std(sandbox.command(&["coders", "watch", "--interval", "0"]))
        .assert()
        .failure();
    let stderr = String::from_utf8(bad.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("--interval 0 must be at least 0.05 seconds"),
        "{stderr}"
    );
}
