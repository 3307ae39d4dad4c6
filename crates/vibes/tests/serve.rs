//! `vibes serve`, `vibes plugins` and `vibes plugin` as a user runs them: plugins follow
//! other processes' appends, a second serve is refused, shutdown commits, and a serve
//! killed with SIGKILL at random points and resumed stores exactly the outputs of an
//! uninterrupted run.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;
use vibes_filelog::{FileLog, FileLogOptions};
use vibes_log::TopicName;
use vibes_log::backend::LogBackend;

mod common;

use common::EXAMPLE;

struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, data: &Path, args: &[&str]) -> Command {
        let mut cmd = common::vibes(&self.dir.path().join("home"));
        cmd.env("RUST_LOG", "info")
            .arg("--data-dir")
            .arg(data)
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_in(&self.data(), args)
    }

    fn run_in(&self, data: &Path, args: &[&str]) -> Output {
        self.command(data, args).output().expect("vibes runs")
    }

    /// Starts `vibes serve` and waits until it says it is serving.
    fn serve(&self, data: &Path) -> Child {
        self.serve_logged(self.command(data, &["serve", "--http", "off"]))
            .0
    }

    /// Starts `command` (a `serve`) and waits until it says it is serving; returns it
    /// with every stderr line so far and a receiver of the rest.
    fn serve_logged(
        &self,
        mut command: Command,
    ) -> (Child, Vec<String>, std::sync::mpsc::Receiver<String>) {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("serve says it is serving: {seen:?}"));
            let serving = line.starts_with("serving ");
            seen.push(line);
            if serving {
                break;
            }
        }
        (child, seen, rx)
    }
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

fn interrupt(child: &mut Child) -> std::process::ExitStatus {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("SIGINT");
    child.wait().expect("serve exits")
}

fn kill9(child: &mut Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
}

fn plugins_json(sb: &Sandbox, data: &Path) -> Value {
    serde_json::from_str(&ok(&sb.run_in(data, &["plugins", "--json"]))).expect("json")
}

/// Waits until the running serve reports `sessions` live with no lag and `outputs`
/// records written.
fn wait_caught_up(sb: &Sandbox, data: &Path, outputs: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let plugins = plugins_json(sb, data);
        let sessions = &plugins[0];
        let lag: u64 = sessions["lag"]
            .as_object()
            .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
        if sessions["state"] == "live" && lag == 0 && sessions["outputs"] == outputs {
            return;
        }
        assert!(Instant::now() < deadline, "never caught up: {plugins:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The example session's 25 events as stored, one JSON line each.
fn example_events(sb: &Sandbox) -> Vec<Value> {
    let scratch = sb.dir.path().join("scratch");
    ok(&sb.run_in(&scratch, &["ingest", "claude", EXAMPLE]));
    ok(&sb.run_in(&scratch, &["tail", "--json"]))
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

/// `copies` sessions like the example, each with its own session id and event ids.
fn many_sessions(sb: &Sandbox, copies: usize) -> String {
    let events = example_events(sb);
    let mut lines = String::new();
    for copy in 0..copies {
        for (n, event) in events.iter().enumerate() {
            let mut event = event.clone();
            event["session_id"] = Value::from(format!("session-{copy:04}"));
            event["id"] = Value::from(format!("01900000-0000-7000-8000-{:06x}{:06x}", copy, n));
            lines.push_str(&event.to_string());
            lines.push('\n');
        }
    }
    lines
}

fn emit(sb: &Sandbox, data: &Path, lines: &str) {
    let file = sb.dir.path().join("events.jsonl");
    std::fs::write(&file, lines).expect("write events");
    ok(&sb.run_in(data, &["emit", file.to_str().unwrap()]));
}

/// Every payload of `topic` in `data`, in order.
fn payloads(data: &Path, topic: &str) -> Vec<Vec<u8>> {
    let log = FileLog::open(data, FileLogOptions::default()).expect("open the log");
    let backend: Arc<dyn LogBackend> = Arc::new(log);
    let topic = TopicName::new(topic).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let marks = backend.watermarks(&topic, 0).await.expect("topic exists");
            backend
                .read(&topic, 0, 0, marks.len() as usize)
                .await
                .expect("read")
                .into_iter()
                .map(|r| r.payload.to_vec())
                .collect()
        })
}

#[test]
fn serve_follows_another_process_and_commits_when_interrupted() {
    let sb = Sandbox::new();
    let data = sb.data();
    let mut serve = sb.serve(&data);
    ok(&sb.run(&["ingest", "claude", EXAMPLE]));
    wait_caught_up(&sb, &data, 1);
    let status = interrupt(&mut serve);
    assert!(status.success(), "serve exits 0 on SIGINT: {status:?}");

    let plugins = plugins_json(&sb, &data);
    assert_eq!(plugins[0]["name"], "sessions");
    assert_eq!(plugins[0]["state"], "stopped");
    assert_eq!(
        plugins[0]["lag"]["0"], 0,
        "its commit covers everything: {plugins:#}"
    );
    let topics = ok(&sb.run(&["topics"]));
    assert!(
        topics.contains("group plugin-sessions  next offsets 0:25  lag 0"),
        "{topics}"
    );
    let summary: Value = serde_json::from_slice(&payloads(&data, "sessions/summaries")[0]).unwrap();
    assert_eq!(summary["type"], "sessions.summary");
    assert_eq!(summary["tool_calls_total"], 9);
    assert_eq!(summary["tool_errors"], 2);
    assert_eq!(summary["outcome"], "success");
    assert_eq!(
        summary["cause"]["offset"], 24,
        "caused by the session's end"
    );
}

#[test]
fn a_second_serve_on_one_data_dir_is_refused() {
    let sb = Sandbox::new();
    let data = sb.data();
    let mut first = sb.serve(&data);
    let second = sb.run(&["serve", "--http", "off"]);
    assert_eq!(second.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!(
            "another `vibes serve` (pid {}) already serves {}",
            first.id(),
            data.display()
        )),
        "{stderr}"
    );
    assert!(interrupt(&mut first).success());
    // Once the first has stopped, serving works again.
    let mut again = sb.serve(&data);
    assert!(interrupt(&mut again).success());
}

#[test]
fn plugin_queries_and_stats_answer_from_the_log() {
    let sb = Sandbox::new();
    ok(&sb.run(&["ingest", "claude", EXAMPLE]));
    let stats: Value = serde_json::from_str(&ok(&sb.run(&["stats", "--json"]))).unwrap();
    let answer: Value =
        serde_json::from_str(&ok(&sb.run(&["plugin", "sessions", "stats", "--json"]))).unwrap();
    assert_eq!(stats, answer, "`vibes stats` is the plugin's stats query");
    assert_eq!(answer["totals"]["tool_calls"], 9);
    let id = answer["sessions"][0]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let addresses: Value = serde_json::from_str(&ok(&sb.run(&[
        "plugin",
        "sessions",
        "addresses",
        &id,
        "--json",
    ])))
    .unwrap();
    assert_eq!(addresses["records"], 25);
    assert_eq!(
        addresses["runs"],
        serde_json::json!([{"partition": 0, "start": 0, "len": 25}])
    );
    let unknown = sb.run(&["plugin", "sessions", "session", "no-such-session"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no session no-such-session"));
    let no_plugin = sb.run(&["plugin", "nope", "stats"]);
    assert_eq!(no_plugin.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&no_plugin.stderr)
            .contains("no plugin \"nope\"; this vibes has: sessions")
    );
}

#[test]
fn serve_killed_at_random_points_stores_exactly_the_outputs_of_an_uninterrupted_run() {
    const SESSIONS: usize = 300;
    let sb = Sandbox::new();
    let calm = sb.dir.path().join("calm");
    let killed = sb.dir.path().join("killed");
    let lines = many_sessions(&sb, SESSIONS);
    emit(&sb, &calm, &lines);
    emit(&sb, &killed, &lines);

    let mut serve = sb.serve(&calm);
    wait_caught_up(&sb, &calm, SESSIONS as u64);
    assert!(interrupt(&mut serve).success());
    let expected = payloads(&calm, "sessions/summaries");
    assert_eq!(expected.len(), SESSIONS);

    // Kill at pseudo-random moments (a fixed sequence, so a failure reproduces).
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut kills = 0;
    for _ in 0..8 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let delay = Duration::from_millis(5 + (seed >> 33) % 120);
        let mut serve = sb.serve(&killed);
        std::thread::sleep(delay);
        kill9(&mut serve);
        kills += 1;
    }
    // And abort exactly between storing a batch's outputs and committing it: the
    // window a restart must not store twice.
    for stores in [1, 2, 1, 3] {
        let output = sb
            .command(&killed, &["serve", "--http", "off"])
            .env("VIBES_FAULT_ABORT_AFTER_STORES", stores.to_string())
            .output()
            .expect("serve runs");
        assert_eq!(
            output.status.signal(),
            Some(6),
            "the fault aborts it: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut serve = sb.serve(&killed);
    wait_caught_up_from_log(&killed, SESSIONS);
    assert!(interrupt(&mut serve).success());
    let got = payloads(&killed, "sessions/summaries");
    assert_eq!(kills, 8);
    assert_eq!(got.len(), expected.len(), "no output lost or stored twice");
    assert!(
        got == expected,
        "outputs differ byte for byte from the uninterrupted run"
    );
    let dead = payloads(&killed, "sessions/dead-letter");
    assert!(dead.is_empty());
}

/// Waits until `sessions/summaries` in `data` holds `n` records (the published status
/// counts only this process's outputs, so it cannot tell after a kill).
fn wait_caught_up_from_log(data: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while payloads_len(data) < n {
        assert!(Instant::now() < deadline, "never caught up");
        std::thread::sleep(Duration::from_millis(100));
    }
    // And nothing more arrives.
    std::thread::sleep(Duration::from_millis(300));
}

fn payloads_len(data: &Path) -> usize {
    let topic = data.join("topics").join("sessions");
    if !topic.exists() {
        return 0;
    }
    payloads(data, "sessions/summaries").len()
}

/// With `backend = "iggy"` in managed mode, `serve` starts the server itself when none
/// runs; a second `serve` connects to it and joins each plugin's group as another
/// member; the first one's shutdown stops the server. Nothing of this is an ERROR line.
#[test]
#[ignore = "needs iggy-server (IGGY_SERVER_BIN)"]
fn serve_on_iggy_runs_the_managed_server_and_a_second_serve_joins() {
    let bin = std::env::var_os("IGGY_SERVER_BIN")
        .expect("IGGY_SERVER_BIN names an iggy-server 0.8 binary");
    let sb = Sandbox::new();
    let data = sb.data();
    let iggy = |args: &[&str]| {
        let mut cmd = sb.command(&data, &["--backend", "iggy"]);
        // What a user sees by default.
        cmd.args(args)
            .env("IGGY_SERVER_BIN", &bin)
            .env("RUST_LOG", "warn");
        cmd
    };
    let (mut first, first_lines, first_rest) = sb.serve_logged(iggy(&["serve", "--http", "off"]));
    assert_eq!(first_lines.len(), 2, "{first_lines:#?}");
    assert!(
        first_lines[0].starts_with("started the managed iggy-server: pid "),
        "{first_lines:?}"
    );
    ok(&iggy(&["ingest", "claude", EXAMPLE])
        .output()
        .expect("ingest"));
    let plugins = |want: &dyn Fn(&Value) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = ok(&iggy(&["plugins", "--json"]).output().expect("plugins"));
            let json: Value = serde_json::from_str(&out).expect("json");
            if want(&json[0]) {
                return json[0].clone();
            }
            assert!(Instant::now() < deadline, "{json:#}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let one = plugins(&|s| s["live"]["processed"] == 25 && s["outputs"] == 1);
    assert_eq!(one["members"], 1);
    assert_eq!(one["state"], "live");

    let (mut second, second_lines, second_rest) =
        sb.serve_logged(iggy(&["serve", "--http", "off"]));
    assert_eq!(
        second_lines.len(),
        1,
        "it connects, it starts no server: {second_lines:?}"
    );
    plugins(&|s| s["members"] == 2);
    // Both members follow new appends; the sessions plugin keeps counting once.
    ok(&iggy(&["ingest", "claude", EXAMPLE, "--force"])
        .output()
        .expect("ingest again"));
    let stats: Value =
        serde_json::from_str(&ok(&iggy(&["stats", "--json"]).output().expect("stats")))
            .expect("json");
    assert_eq!(stats["totals"]["tool_calls"], 9, "{stats:#}");

    assert!(interrupt(&mut second).success());
    assert!(interrupt(&mut first).success());
    let rest: Vec<String> = first_rest
        .try_iter()
        .chain(second_rest.try_iter())
        .collect();
    let all: Vec<&String> = first_lines
        .iter()
        .chain(&second_lines)
        .chain(&rest)
        .collect();
    assert!(
        all.iter().all(|l| !l.contains("ERROR")),
        "no ERROR lines: {all:#?}"
    );
    let status = iggy(&["iggy", "status"]).output().expect("status");
    let text = String::from_utf8_lossy(&status.stdout).to_string()
        + &String::from_utf8_lossy(&status.stderr);
    assert!(
        text.contains("not running") || !status.status.success(),
        "the server stopped with the first serve: {text}"
    );
}
