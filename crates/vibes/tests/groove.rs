//! `vibes groove` through the binary, over three sessions made from the real
//! stream-json recording in ../shared/fixtures/claude-stream (its session id changed
//! per copy, so the same failures come back in three sessions).

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

mod common;

const RECORDING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/claude-stream/presmihaylov-ccagent__claude_response1.jsonl"
);
const SESSION: &str = "13fd3e32-9028-43ba-9306-4e08bca82525";
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
        // The ignored Iggy test names the server binary this way.
        if let Some(server) = std::env::var_os("IGGY_SERVER_BIN") {
            cmd.env("IGGY_SERVER_BIN", server);
        }
        cmd.arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(args)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "warn");
        cmd
    }

    fn vibes(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        Command::from_std(self.command(args)).assert()
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.vibes(args).success();
        serde_json::from_slice(&out.get_output().stdout).expect("JSON output")
    }

    fn stdout(&self, args: &[&str]) -> String {
        let out = self.vibes(args).success();
        String::from_utf8(out.get_output().stdout.clone()).unwrap()
    }

    /// The recording as session `n`.
    fn copy(&self, n: u32) -> PathBuf {
        let text = std::fs::read_to_string(RECORDING).unwrap();
        let session = format!("{}{n}", &SESSION[..SESSION.len() - 1]);
        let text = text
            .replace(SESSION, &session)
            .replace("toolu_", &format!("toolu_{n}_"));
        let path = self.dir.path().join(format!("s{n}.jsonl"));
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn ingest(sandbox: &Sandbox, path: &Path) {
    sandbox
        .vibes(&["ingest", "claude", path.to_str().unwrap()])
        .success();
}

fn gap_of<'a>(gaps: &'a Value, head: &str) -> &'a Value {
    gaps["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["head"] == head)
        .unwrap_or_else(|| panic!("no gap of {head}: {gaps}"))
}

#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn gaps_suggestions_and_decisions_over_three_real_sessions() {
    if !Path::new(RECORDING).is_file() {
        eprintln!("skipped: {RECORDING} is absent");
        return;
    }
    let sandbox = Sandbox::new();
    ingest(&sandbox, &sandbox.copy(1));
    ingest(&sandbox, &sandbox.copy(2));
    assert_eq!(
        sandbox.stdout(&["groove", "gaps"]).trim(),
        "no open gaps (--all shows resolved and dismissed ones)"
    );
    ingest(&sandbox, &sandbox.copy(3));

    let gaps = sandbox.json(&["groove", "gaps", "--json"]);
    assert_eq!(gaps["gaps"].as_array().unwrap().len(), 4, "{gaps}");
    let mkdir = gap_of(&gaps, "mkdir");
    assert_eq!(mkdir["kind"], "permission_denied");
    assert_eq!(
        mkdir["status"], "confirmed",
        "never recovered in 3 sessions"
    );
    let lint = gap_of(&gaps, "make lint-fix");
    assert_eq!(lint["status"], "detected", "always recovered");
    assert_eq!(lint["failures"], 9);
    assert_eq!(lint["unrecovered"], 0);

    let table = sandbox.stdout(&["groove", "gaps"]);
    assert!(table.starts_with("GAP "), "{table}");
    assert!(table.contains("Bash `make lint-fix`"), "{table}");

    let suggest = sandbox.stdout(&["groove", "suggest"]);
    assert!(suggest.contains("\"Bash(mkdir:*)\""), "{suggest}");
    assert!(suggest.contains("# CLAUDE.md"), "{suggest}");

    let lint_id = lint["id"].as_str().unwrap();
    let detail = sandbox.stdout(&["groove", "gap", lint_id]);
    assert!(
        detail.contains("Before running `make lint-fix` again: edit *.go."),
        "{detail}"
    );

    // Decisions: checked against the state, then stored as events and folded in.
    let mkdir_id = mkdir["id"].as_str().unwrap();
    let wrong = sandbox
        .vibes(&["groove", "apply", mkdir_id, "--solution", "s-nope"])
        .failure();
    let stderr = String::from_utf8_lossy(&wrong.get_output().stderr).into_owned();
    assert!(stderr.contains("has no solution s-nope"), "{stderr}");
    sandbox
        .vibes(&["groove", "dismiss", "g-0000000000000000"])
        .failure();
    for _ in 0..2 {
        let said = sandbox.stdout(&["groove", "apply", mkdir_id, "--at", "2026-01-01T00:00:00Z"]);
        assert!(
            said.starts_with(&format!("recorded apply of gap {mkdir_id}")),
            "{said}"
        );
    }
    let gap = sandbox.json(&["groove", "gap", mkdir_id, "--json"]);
    assert_eq!(gap["status"], "in_progress");
    assert_eq!(gap["applied"]["at"], "2026-01-01T00:00:00Z");
    let changes = sandbox.stdout(&[
        "tail",
        "--topic",
        "groove.openworld/gaps",
        "--type",
        "groove.gap_status_changed",
    ]);
    assert_eq!(
        changes.matches("confirmed → in_progress").count(),
        1,
        "the same decision twice is one change: {changes}"
    );
    let novelty = sandbox.stdout(&[
        "tail",
        "--topic",
        "groove.openworld/novelty",
        "--type",
        "groove.novelty_detected",
    ]);
    assert_eq!(novelty.lines().count(), 6, "{novelty}");
    assert!(novelty.contains("✦ new failure: Bash `mkdir` permission_denied"));
    let listed = sandbox.stdout(&["groove", "novelty", "--since", "1h"]);
    assert_eq!(
        listed.lines().filter(|l| !l.starts_with(' ')).count(),
        6,
        "{listed}"
    );
}

fn interrupt(child: &mut Child) -> std::process::ExitStatus {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("SIGINT");
    child.wait().expect("serve exits")
}

/// Runs `serve` with `extra` arguments, ingests the example session, waits until the
/// groove plugin has handled it, and checks its stream's three topics and its outputs
/// while serve runs, then stops it with SIGINT.
fn serve_runs_groove(sandbox: &Sandbox, extra: &[&str]) {
    let mut args = extra.to_vec();
    args.extend(["serve", "--http", "off"]);
    let mut serve = sandbox
        .command(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let mut ingest = extra.to_vec();
    ingest.extend(["ingest", "claude", EXAMPLE]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ingested = false;
    let groove = loop {
        if !ingested {
            ingested = sandbox
                .command(&ingest)
                .output()
                .expect("ingest")
                .status
                .success();
        }
        let mut list = extra.to_vec();
        list.extend(["plugins", "--json"]);
        let out = sandbox.command(&list).output().expect("plugins");
        let json: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let groove = json
            .as_array()
            .and_then(|a| a.iter().find(|p| p["name"] == "groove"))
            .cloned();
        if let Some(g) = groove
            && ingested
            && g["outputs"] == 4
        {
            break g;
        }
        assert!(
            Instant::now() < deadline,
            "groove never caught up: {json:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(groove["dead_letters"], 0, "{groove:#}");
    // Read while serve runs (on Iggy, the managed server stops with it).
    let mut topics = extra.to_vec();
    topics.push("topics");
    let out = sandbox.command(&topics).output().expect("topics");
    let text = String::from_utf8_lossy(&out.stdout);
    for topic in ["novelty", "gaps", "feedback"] {
        assert!(
            text.contains(&format!("groove.openworld/{topic}")),
            "{text}"
        );
    }
    let mut tail = extra.to_vec();
    tail.extend(["tail", "--topic", "groove.openworld/novelty"]);
    let out = sandbox.command(&tail).output().expect("tail");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("✦ new failure: Bash `cargo test` test_failure: thread <str> panicked at <path>:<n>:<n>:"),
        "{text}"
    );
    assert!(text.contains("✦ new failure: Edit edit_mismatch"), "{text}");
    assert!(interrupt(&mut serve).success());
}

#[test]
fn serve_runs_groove_on_the_file_backend() {
    serve_runs_groove(&Sandbox::new(), &[]);
}

#[test]
#[ignore = "needs iggy-server (IGGY_SERVER_BIN)"]
fn serve_runs_groove_on_iggy_with_its_own_stream() {
    assert!(
        std::env::var_os("IGGY_SERVER_BIN").is_some(),
        "IGGY_SERVER_BIN names an iggy-server 0.8 binary"
    );
    serve_runs_groove(&Sandbox::new(), &["--backend", "iggy"]);
}
