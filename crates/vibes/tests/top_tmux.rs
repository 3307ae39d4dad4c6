//! `vibes top` in a real terminal: tmux runs it on an empty data dir, another process
//! ingests the example session, and the screen (read with `tmux capture-pane`) shows
//! the session and its failures. Needs tmux: `cargo test -p vibes --test top_tmux --
//! --ignored` (`.ci/run` installs tmux and runs it).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(args)
        .output()
        .expect("running tmux");
    assert!(
        out.status.success(),
        "tmux {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A detached tmux session `name` of `size` (`WxH`) running `command`.
fn new_session(name: &str, size: &str, command: &str) {
    let (width, height) = size.split_once('x').expect("a WxH size");
    tmux(&[
        "new-session",
        "-d",
        "-s",
        name,
        "-x",
        width,
        "-y",
        height,
        command,
    ]);
}

/// The screen once `done` says so, or the last screen after `within`.
fn wait_for(session: &str, within: Duration, done: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let screen = tmux(&["capture-pane", "-p", "-t", session]);
        if done(&screen) || started.elapsed() > within {
            return screen;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "needs tmux"]
fn top_shows_a_session_ingested_by_another_process_and_its_failures() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let data = dir.path().join("data");
    let bin = env!("CARGO_BIN_EXE_vibes");
    let session = format!("vibes-top-test-{}", std::process::id());
    let command = format!(
        "{bin} --data-dir {} top; echo top exited $?; sleep 60",
        data.display()
    );
    new_session(&session, "200x50", &command);
    let screen = wait_for(&session, Duration::from_secs(20), |s| {
        s.contains("records read")
    });
    assert!(screen.contains("1 coders"), "{screen}");
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sessions/fix-flaky-test.jsonl");
    let ingest = Command::new(bin)
        .arg("--data-dir")
        .arg(&data)
        .args(["ingest", "claude"])
        .arg(&example)
        .output()
        .expect("running vibes ingest");
    assert!(ingest.status.success(), "{ingest:?}");
    let screen = wait_for(&session, Duration::from_secs(20), |s| {
        s.contains("25 records read") && s.contains("test_failure")
    });
    let ledger = screen
        .lines()
        .find(|l| l.contains("ledger"))
        .unwrap_or_else(|| panic!("no ledger coder on the screen:\n{screen}"));
    assert!(ledger.contains("5f0c2a1e"), "{screen}");
    assert!(ledger.contains("completed"), "{screen}");
    assert!(ledger.contains("$0.19"), "{screen}");
    // Its two failures, with their fingerprints.
    let failures: Vec<&str> = screen
        .lines()
        .filter(|l| l.contains("5f0c2a1e f-"))
        .collect();
    assert_eq!(failures.len(), 2, "{screen}");
    assert!(
        screen.contains("Bash `cargo test` test_failure"),
        "{screen}"
    );
    assert!(screen.contains("Edit edit_mismatch"), "{screen}");
    // `q` quits and gives the terminal back.
    tmux(&["send-keys", "-t", &session, "q"]);
    let screen = wait_for(&session, Duration::from_secs(10), |s| {
        s.contains("top exited")
    });
    tmux(&["kill-session", "-t", &session]);
    assert!(screen.contains("top exited 0"), "{screen}");
    assert!(
        !screen.contains("records read"),
        "the alternate screen is gone: {screen}"
    );
}

/// Whether process `pid` still exists (a zombie counts as gone: it has exited).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let rest = &stat[stat.rfind(')')? + 1..];
            rest.split_whitespace().next().map(|state| state != "Z")
        })
        .unwrap_or(false)
}

#[test]
#[ignore = "needs tmux"]
fn top_exits_when_its_terminal_goes_away() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let data = dir.path().join("data");
    let bin = env!("CARGO_BIN_EXE_vibes");
    let session = format!("vibes-top-hangup-{}", std::process::id());
    // `exec`, so the pane's process is vibes itself and goes with the pane.
    let command = format!("exec {bin} --data-dir {} top", data.display());
    new_session(&session, "120x40", &command);
    let screen = wait_for(&session, Duration::from_secs(20), |s| {
        s.contains("records read")
    });
    assert!(screen.contains("records read"), "{screen}");
    let pid: u32 = tmux(&["display", "-p", "-t", &session, "#{pane_pid}"])
        .trim()
        .parse()
        .expect("a pane pid");
    assert!(alive(pid));
    // The pane and its terminal vanish (tmux sends SIGHUP and closes the pty), as
    // when a tmux window or an ssh session is killed.
    tmux(&["kill-session", "-t", &session]);
    let started = Instant::now();
    while alive(pid) && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let still = alive(pid);
    if still {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    assert!(
        !still,
        "vibes top (pid {pid}) still ran 10 s after its terminal went away"
    );
}
