//! `vibes run` over the stand-in agent (src/bin/stand_in_agent.rs): what it records,
//! the limits that stop it, its exit status, and that nothing outlives it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{EXAMPLE, vibes};
use serde_json::Value;

/// The stand-in agent.
const AGENT: &str = env!("CARGO_BIN_EXE_vibes-stand-in-agent");

/// Longer than anything here should take; only a failing test waits this long.
const PATIENCE: Duration = Duration::from_secs(60);

/// A real recorded session: the long fixture when the shared fixtures are there, else
/// the repository's example session.
fn recording() -> PathBuf {
    let fixture = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/claude-stream/presmihaylov-ccagent__claude_response1.jsonl"
    ));
    if fixture.is_file() {
        fixture
    } else {
        PathBuf::from(EXAMPLE)
    }
}

fn data_dir(home: &Path) -> String {
    home.join("data").display().to_string()
}

/// `vibes run ARGS -- AGENT AGENT_ARGS` with its log under `home`.
fn run(home: &Path, args: &[&str], agent: &[&str]) -> Output {
    vibes(home)
        .args(["--data-dir", &data_dir(home), "run"])
        .args(args)
        .arg("--")
        .arg(AGENT)
        .args(agent)
        .output()
        .expect("run vibes")
}

/// Every stored event, in log order, as JSON.
fn events(home: &Path) -> Vec<Value> {
    let out = vibes(home)
        .args(["--data-dir", &data_dir(home), "tail", "--json"])
        .output()
        .expect("run vibes tail");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON event"))
        .collect()
}

fn of_type<'a>(events: &'a [Value], ty: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == ty).collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether `pid` is a live process (a zombie is dead: in a container whose PID 1 does
/// not reap, a killed orphan stays one).
fn is_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, None | Some("Z" | "X"))
}

fn dies_within(pid: u32, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if !is_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    !is_alive(pid)
}

/// Waits for the pid file `path` and reads it.
fn pid_in(path: &Path) -> u32 {
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text.trim().parse().expect("a pid");
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills `pid` (a grandchild a test left behind on purpose).
fn kill(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}

#[test]
fn a_run_records_start_the_session_samples_and_exit_and_returns_the_agents_code() {
    let home = tempfile::tempdir().expect("temp dir");
    let session = recording();
    let gc_file = home.path().join("grandchild.pid");
    let out = run(
        home.path(),
        &["--name", "demo"],
        &[
            "--stderr",
            "agent says hello on stderr",
            "--grandchild",
            gc_file.to_str().expect("UTF-8"),
            "--play",
            session.to_str().expect("UTF-8"),
            "--sleep-ms",
            "2500",
            "--exit",
            "3",
        ],
    );
    let grandchild = pid_in(&gc_file);
    kill(grandchild);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("agent says hello on stderr\n"), "{err}");
    assert!(err.contains("exited with code 3"), "{err}");

    let events = events(home.path());
    let runs: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"].as_str().is_some_and(|t| t.starts_with("run.")))
        .collect();
    let start = runs.first().expect("run events");
    assert_eq!(start["type"], "run.start");
    assert_eq!(start["name"], "demo");
    assert_eq!(start["command"][0], AGENT);
    let run_id = start["run_id"].as_str().expect("run_id");
    let exit = runs.last().expect("run events");
    assert_eq!(exit["type"], "run.exit");
    assert_eq!(exit["run_id"], run_id);
    assert_eq!(exit["code"], 3);
    assert!(exit.get("stopped_by").is_none(), "{exit}");
    assert!(exit["duration_ms"].as_u64().expect("duration") >= 2500);

    // The session's events are those `vibes ingest claude` makes of the same
    // recording, with the same ids.
    let ingested_home = tempfile::tempdir().expect("temp dir");
    let ingest = vibes(ingested_home.path())
        .args([
            "--data-dir",
            &data_dir(ingested_home.path()),
            "ingest",
            "claude",
        ])
        .arg(&session)
        .output()
        .expect("run vibes ingest");
    assert!(ingest.status.success(), "{}", stderr(&ingest));
    let ids = |events: &[Value]| -> Vec<String> {
        let mut ids: Vec<String> = events
            .iter()
            .filter(|e| e["source"] == "claude")
            .map(|e| e["id"].as_str().expect("id").to_owned())
            .collect();
        ids.sort();
        ids
    };
    let ingested = ids(&self::events(ingested_home.path()));
    assert!(ingested.len() > 2, "{ingested:?}");
    assert_eq!(ids(&events), ingested);
    let session_id = of_type(&events, "session.start")[0]["session_id"].clone();
    assert_eq!(exit["session_id"], session_id);

    // Samples every second while it slept: plausible, and counting the grandchild.
    let samples = of_type(&events, "run.sample");
    assert!(samples.len() >= 2, "{samples:?}");
    for sample in &samples {
        assert_eq!(sample["run_id"], run_id);
        assert!(sample["rss_bytes"].as_u64().expect("rss") > 0, "{sample}");
        assert!(sample["open_files"].as_u64().expect("fds") >= 3, "{sample}");
        assert!(
            sample["cost_usd"].as_f64().expect("cost") >= 0.0,
            "{sample}"
        );
    }
    assert!(
        samples.iter().any(|s| s["processes"] == 2),
        "no sample counted the grandchild: {samples:?}"
    );
    // The stream was read and priced before the agent slept.
    let last = samples.last().expect("a sample");
    assert_eq!(last["session_id"], session_id);
    if session.ends_with("claude_response1.jsonl") {
        // 54 API calls of claude-sonnet-4: the session reports $2.46 in all.
        let cost = last["cost_usd"].as_f64().expect("cost");
        assert!((2.0..3.0).contains(&cost), "{cost}");
    }
}

#[test]
fn a_memory_limit_stops_the_agent_and_says_so() {
    let home = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let out = run(
        home.path(),
        &["--max-rss", "64MiB", "--stop-grace", "2s"],
        &["--burn-mb", "160", "--sleep-ms", "60000"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(124), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "{err}");
    assert!(err.contains("passed --max-rss 64.0 MiB"), "{err}");
    assert!(err.contains("stopped by its rss limit"), "{err}");

    let events = events(home.path());
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    let limit_at = types
        .iter()
        .position(|t| *t == "run.limit")
        .expect("run.limit");
    assert_eq!(types.last(), Some(&"run.exit"), "{types:?}");
    assert!(limit_at < types.len() - 1);
    let limit = &events[limit_at];
    assert_eq!(limit["limit"], "rss");
    assert_eq!(limit["threshold"], 64.0 * 1024.0 * 1024.0);
    assert!(limit["observed"].as_f64().expect("observed") > 64.0 * 1024.0 * 1024.0);
    let exit = events.last().expect("run.exit");
    assert_eq!(exit["stopped_by"], "rss");
    assert_eq!(exit["signal"], 15, "{exit}");
}

#[test]
fn a_timeout_stops_the_agent_and_says_so() {
    let home = tempfile::tempdir().expect("temp dir");
    let out = run(
        home.path(),
        &["--timeout", "1500ms"],
        &["--sleep-ms", "60000"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(124), "{err}");
    assert!(err.contains("passed --timeout 1.5s"), "{err}");
    let events = events(home.path());
    let limit = of_type(&events, "run.limit");
    assert_eq!(limit.len(), 1, "{events:?}");
    assert_eq!(limit[0]["limit"], "timeout");
    assert_eq!(limit[0]["threshold"], 1500.0);
    let exit = of_type(&events, "run.exit");
    assert_eq!(exit[0]["stopped_by"], "timeout");
    let took = exit[0]["duration_ms"].as_u64().expect("duration");
    assert!((1500..30_000).contains(&took), "{took}");
    assert_eq!(of_type(&events, "run.start")[0]["timeout_ms"], 1500);
}

#[test]
fn a_cost_limit_stops_the_agent_once_its_calls_cost_more() {
    let home = tempfile::tempdir().expect("temp dir");
    let session = recording();
    let out = run(
        home.path(),
        &["--max-cost", "0.05"],
        &[
            "--delay-ms",
            "20",
            "--play",
            session.to_str().expect("UTF-8"),
            "--sleep-ms",
            "60000",
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(124), "{err}");
    assert!(err.contains("passed --max-cost $0.0500"), "{err}");
    let events = events(home.path());
    let limit = of_type(&events, "run.limit");
    assert_eq!(limit[0]["limit"], "cost");
    assert!(limit[0]["observed"].as_f64().expect("observed") > 0.05);
    assert_eq!(of_type(&events, "run.exit")[0]["stopped_by"], "cost");
}

#[test]
fn the_agents_failure_and_stderr_come_through() {
    let home = tempfile::tempdir().expect("temp dir");
    let out = run(home.path(), &[], &["--fail", "the model is gone"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("error: the model is gone\n"), "{err}");
    let events = events(home.path());
    let exit = of_type(&events, "run.exit");
    assert_eq!(exit[0]["code"], 1);

    // A program that does not exist: as a shell says it, and nothing recorded.
    let out = vibes(home.path())
        .args(["--data-dir", &data_dir(home.path()), "run", "--"])
        .arg(home.path().join("no-such-agent"))
        .output()
        .expect("run vibes");
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot start"), "{}", stderr(&out));
    assert_eq!(self::events(home.path()).len(), events.len());
}

#[test]
fn a_malformed_stdout_line_is_reported_with_its_number_and_the_rest_kept() {
    let home = tempfile::tempdir().expect("temp dir");
    let init = r#"{"type":"system","subtype":"init","session_id":"s-bad","model":"m","tools":[]}"#;
    let text = r#"{"type":"assistant","session_id":"s-bad","message":{"id":"msg_1","model":"m","content":[{"type":"text","text":"still here"}]}}"#;
    let out = run(
        home.path(),
        &[],
        &[
            "--stdout",
            init,
            "--stdout",
            "this is not json",
            "--stdout",
            text,
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("stdout line 2 is not stream-json"), "{err}");
    assert!(
        err.contains("3 lines, 0 blank, 0 skipped, 1 malformed"),
        "{err}"
    );
    let events = events(home.path());
    let error = of_type(&events, "error");
    assert_eq!(error.len(), 1, "{events:?}");
    assert_eq!(error[0]["line"], 2);
    assert_eq!(error[0]["session_id"], "s-bad");
    let texts = of_type(&events, "claude.text");
    assert_eq!(texts.len(), 1);
    assert_eq!(texts[0]["text"], "still here");
}

#[test]
fn nothing_outlives_a_host_killed_with_sigkill() {
    let home = tempfile::tempdir().expect("temp dir");
    let (agent_file, gc_file) = (home.path().join("agent.pid"), home.path().join("gc.pid"));
    let mut host = vibes(home.path())
        .args(["--data-dir", &data_dir(home.path()), "run", "--"])
        .arg(AGENT)
        .args(["--pid-file", agent_file.to_str().expect("UTF-8")])
        .args(["--grandchild", gc_file.to_str().expect("UTF-8")])
        .args(["--sleep-ms", "600000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start vibes run");
    let agent = pid_in(&agent_file);
    let grandchild = pid_in(&gc_file);
    assert!(is_alive(agent) && is_alive(grandchild));
    host.kill().expect("SIGKILL vibes");
    host.wait().expect("reap vibes");
    let agent_died = dies_within(agent, PATIENCE);
    let grandchild_died = dies_within(grandchild, PATIENCE);
    if !grandchild_died {
        kill(grandchild);
    }
    assert!(agent_died, "the agent {agent} outlived vibes run");
    assert!(
        grandchild_died,
        "the grandchild {grandchild} outlived vibes run"
    );
}

#[test]
fn sigterm_to_the_host_stops_the_agent_and_records_the_interrupt() {
    let home = tempfile::tempdir().expect("temp dir");
    let agent_file = home.path().join("agent.pid");
    let host = vibes(home.path())
        .args(["--data-dir", &data_dir(home.path()), "run", "--"])
        .arg(AGENT)
        .args(["--pid-file", agent_file.to_str().expect("UTF-8")])
        .args(["--sleep-ms", "600000"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vibes run");
    let agent = pid_in(&agent_file);
    let status = Command::new("kill")
        .args(["-TERM", &host.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = host.wait_with_output().expect("wait for vibes");
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    assert!(stderr(&out).contains("interrupted; stopping the agent"));
    assert!(!is_alive(agent));
    let events = events(home.path());
    let exit = of_type(&events, "run.exit");
    assert_eq!(exit[0]["stopped_by"], "interrupted");
    assert_eq!(exit[0]["signal"], 15);
}
