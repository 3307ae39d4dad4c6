//! End-to-end tests of the `vibes` binary: every command, on the embedded file log in a
//! temporary data directory, with bad input of every kind the issue names.
//!
//! Why one file over 900 lines: every test drives the binary through the `Sandbox`
//! below, and each file under tests/ is one more test binary linked against the
//! host's whole dependency tree, which a split by command would pay for on every build.
//! The commands' sections are marked by `// ----` rules; commands with a world of their
//! own (`run`, `serve`, `mcp`, `groove`, `coders`, transcripts, usage) have their files.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

mod common;

use common::{BIN, EXAMPLE};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures");

/// A private home, config dir and data dir for one test.
struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn data(&self) -> PathBuf {
        self.path("data")
    }

    /// The environment every run gets: nothing from the caller's.
    fn env(&self, cmd: &mut std::process::Command) {
        common::isolate(cmd, &self.path("home"));
    }

    /// `vibes --data-dir <data> ...`
    fn vibes(&self) -> Command {
        let mut cmd = common::vibes(&self.path("home"));
        cmd.arg("--data-dir").arg(self.data());
        Command::from_std(cmd)
    }

    /// `vibes` without a data dir flag.
    fn vibes_bare(&self) -> Command {
        Command::from_std(common::vibes(&self.path("home")))
    }

    /// Starts `vibes --data-dir <data> args...` with stdout piped.
    fn spawn(&self, args: &[&str]) -> Child {
        common::vibes(&self.path("home"))
            .arg("--data-dir")
            .arg(self.data())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vibes")
    }

    fn ingest_example(&self) {
        self.vibes()
            .args(["ingest", "claude", EXAMPLE])
            .assert()
            .code(0);
    }

    /// `vibes stats --json`.
    fn stats(&self) -> Value {
        let out = self
            .vibes()
            .args(["stats", "--json"])
            .output()
            .expect("run stats");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).expect("stats JSON")
    }

    /// Every stored event, as JSON.
    fn events(&self) -> Vec<Value> {
        let out = self
            .vibes()
            .args(["tail", "--json"])
            .output()
            .expect("run tail");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_lines(&out.stdout)
    }
}

fn json_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8(bytes.to_vec())
        .expect("utf-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect()
}

/// Reads lines of a child's stdout on a thread.
fn line_reader(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for `n` lines, up to a generous deadline.
fn take_lines(rx: &mpsc::Receiver<String>, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = Vec::new();
    while lines.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => panic!(
                "only {} of {n} lines before the deadline: {lines:?}",
                lines.len()
            ),
        }
    }
    lines
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

// ---------------------------------------------------------------------------
// ingest claude

#[test]
fn ingest_example_session_stores_it_and_prints_a_summary() {
    let sb = Sandbox::new();
    let out = sb
        .vibes()
        .args(["ingest", "claude", EXAMPLE])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty(), "summary goes to stderr only");
    let err = stderr(&out);
    for expected in [
        "  session    5f0c2a1e-8d4b-4c1f-9e7a-3b2d6c8f1a04\n",
        "  events     25 stored: claude.text 3, claude.thinking 2, claude.tool_result 9, claude.tool_use 9, session.end 1, session.start 1\n",
        "  tools      9 calls, 2 errors\n",
        "  turns      14\n",
        "  cost       $0.1873\n",
        "  duration   1m 34s\n",
        "  lines      26 read, 0 blank, 1 skipped (system/status 1), 0 malformed\n",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    let events = sb.events();
    assert_eq!(events.len(), 25);
    assert_eq!(events[0]["type"], "session.start");
    assert_eq!(events[24]["type"], "session.end");
    assert!(
        events
            .iter()
            .all(|e| e["session_id"] == "5f0c2a1e-8d4b-4c1f-9e7a-3b2d6c8f1a04")
    );
}

#[test]
fn ingest_reads_stdin() {
    let sb = Sandbox::new();
    sb.vibes()
        .args(["ingest", "claude", "-", "--session-name", "flaky"])
        .pipe_stdin(EXAMPLE)
        .expect("stdin file")
        .assert()
        .code(0)
        .stderr(predicates::str::contains(
            "ingested stdin into vibes/events",
        ));
    let events = sb.events();
    assert_eq!(events.len(), 25);
    assert!(events.iter().all(|e| e["session_name"] == "flaky"));
}

#[test]
fn ingesting_the_same_file_twice_stores_nothing_new_unless_forced() {
    let sb = Sandbox::new();
    sb.ingest_example();
    sb.vibes()
        .args(["ingest", "claude", EXAMPLE])
        .assert()
        .code(0)
        .stderr(predicates::str::contains(
            ": nothing new since the last run: 26 lines read; nothing stored. Use --force to read it again.",
        ));
    assert_eq!(sb.events().len(), 25);
    sb.vibes()
        .args(["ingest", "claude", "--force", EXAMPLE])
        .assert()
        .code(0)
        .stderr(predicates::str::contains(
            "  read       from the start (--force; the last run had read ",
        ));
    // Stored again, with the same ids: the log has both copies, stats counts one.
    let events = sb.events();
    assert_eq!(events.len(), 50);
    assert_eq!(events[0]["id"], events[25]["id"]);
    let stats = sb.stats();
    assert_eq!(stats["totals"]["tool_calls"], 9);
    assert_eq!(stats["totals"]["tool_errors"], 2);
}

#[test]
fn malformed_json_is_reported_with_its_line_and_the_rest_is_stored() {
    let sb = Sandbox::new();
    let example = std::fs::read_to_string(EXAMPLE).expect("example");
    let mut lines: Vec<&str> = example.lines().collect();
    lines.insert(3, r#"{"type":"assistant","message":{"content":[}"#);
    let input = sb.path("broken.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").expect("write");
    let out = sb
        .vibes()
        .args(["ingest", "claude"])
        .arg(&input)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("  malformed  line 4: expected value at column 43\n"),
        "{err}"
    );
    assert!(err.contains("26 stored"), "{err}");
    let events = sb.events();
    assert_eq!(events.len(), 26, "25 good events plus one warning");
    let warning = events
        .iter()
        .find(|e| e["type"] == "error")
        .expect("a warning event");
    assert_eq!(warning["severity"], "warning");
    assert_eq!(warning["line"], 4);
    assert_eq!(events.last().expect("events")["type"], "session.end");
}

#[test]
fn a_cut_last_line_waits_for_the_rest_and_is_stored_when_it_comes() {
    let sb = Sandbox::new();
    let example = std::fs::read(EXAMPLE).expect("example");
    // Cut the last line (the result) in half, without its newline.
    let last_start = example[..example.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .expect("several lines")
        + 1;
    let cut = last_start + (example.len() - last_start) / 2;
    let input = sb.path("growing.jsonl");
    std::fs::write(&input, &example[..cut]).expect("write");
    let out = sb
        .vibes()
        .args(["ingest", "claude"])
        .arg(&input)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "  waiting    an incomplete last line ({} bytes) waits for its newline\n",
            cut - last_start
        )),
        "{err}"
    );
    assert!(err.contains("  lines      25 read, "), "{err}");
    assert_eq!(sb.events().len(), 24, "the events before the cut");

    std::fs::write(&input, &example).expect("write the rest");
    let out = sb
        .vibes()
        .args(["ingest", "claude"])
        .arg(&input)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "  read       from byte {last_start} (line 26), where the last run stopped\n"
        )),
        "{err}"
    );
    assert!(
        err.contains("  events     1 stored: session.end 1\n"),
        "{err}"
    );
    let events = sb.events();
    assert_eq!(events.len(), 25);
    assert_eq!(events[24]["type"], "session.end");
}

#[test]
fn a_truncated_last_line_from_stdin_is_malformed_and_the_rest_is_stored() {
    let sb = Sandbox::new();
    let example = std::fs::read(EXAMPLE).expect("example");
    let last_start = example[..example.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .expect("several lines")
        + 1;
    let cut = last_start + (example.len() - last_start) / 2;
    let out = sb
        .vibes()
        .args(["ingest", "claude", "-"])
        .write_stdin(example[..cut].to_vec())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("  malformed  line 26: EOF while parsing a string at column "),
        "{err}"
    );
    let events = sb.events();
    assert_eq!(
        events.len(),
        25,
        "24 events before the cut plus one warning"
    );
    assert!(!types(&events).contains(&"session.end"));
}

#[test]
fn unknown_line_types_are_counted_and_skipped() {
    let sb = Sandbox::new();
    let mut input = std::fs::read_to_string(EXAMPLE).expect("example");
    input.push_str("{\"type\":\"hologram\",\"session_id\":\"x\"}\n");
    input.push_str("{\"type\":\"hologram\"}\n");
    input.push('\n');
    let path = sb.path("unknown.jsonl");
    std::fs::write(&path, input).expect("write");
    let out = sb
        .vibes()
        .args(["ingest", "claude"])
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains(
            "  lines      29 read, 1 blank, 3 skipped (hologram 2, system/status 1), 0 malformed\n"
        ),
        "{err}"
    );
    assert_eq!(sb.events().len(), 25);
}

#[test]
fn a_two_megabyte_line_is_stored_whole() {
    let sb = Sandbox::new();
    let big = "x".repeat(2 * 1024 * 1024);
    let lines = [
        r#"{"type":"system","subtype":"init","session_id":"s-big","model":"m","tools":["Read"]}"#.to_owned(),
        r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t1","name":"Read","input":{"file_path":"/big"}}]},"session_id":"s-big"}"#.to_owned(),
        format!(
            r#"{{"type":"user","message":{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"t1","content":"{big}"}}]}},"session_id":"s-big"}}"#
        ),
    ];
    let path = sb.path("big.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    sb.vibes()
        .args(["ingest", "claude"])
        .arg(&path)
        .assert()
        .code(0);
    let events = sb.events();
    assert_eq!(
        types(&events),
        ["session.start", "claude.tool_use", "claude.tool_result"]
    );
    assert_eq!(events[2]["content"].as_str().map(str::len), Some(big.len()));
    assert_eq!(events[2]["tool_name"], "Read");
}

#[test]
fn a_missing_input_file_is_exit_2() {
    let sb = Sandbox::new();
    let missing = sb.path("nope.jsonl");
    let out = sb
        .vibes()
        .args(["ingest", "claude"])
        .arg(&missing)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "error: cannot open {}: No such file or directory (os error 2)\n",
            missing.display()
        )
    );
}

#[test]
fn an_unwritable_data_dir_is_exit_2_naming_it() {
    let sb = Sandbox::new();
    // A path under a regular file cannot be created, even by root.
    let blocker = sb.path("blocker");
    std::fs::write(&blocker, "a file").expect("write");
    let data = blocker.join("data");
    let out = sb
        .vibes_bare()
        .arg("--data-dir")
        .arg(&data)
        .args(["ingest", "claude", EXAMPLE])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "error: cannot open the event log in {} (set another with --data-dir or VIBES_DATA_DIR): ",
            data.display()
        )),
        "{err}"
    );
    assert!(err.contains("Not a directory"), "{err}");
}

#[test]
fn the_memory_backend_parses_and_keeps_nothing() {
    let sb = Sandbox::new();
    sb.vibes()
        .args(["--backend", "memory", "ingest", "claude", EXAMPLE])
        .assert()
        .code(0)
        .stderr(predicates::str::contains(
            "into vibes/events (in memory, gone at exit)",
        ));
    assert!(!sb.data().exists());
}

// ---------------------------------------------------------------------------
// config

#[test]
fn an_invalid_config_value_names_key_file_line_and_what_is_allowed() {
    let sb = Sandbox::new();
    let config = sb.path("vibes.toml");
    std::fs::write(&config, "# vibes\n[log]\ndurability = \"sometimes\"\n").expect("write");
    let out = sb
        .vibes()
        .arg("--config")
        .arg(&config)
        .args(["ingest", "claude", EXAMPLE])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "error: invalid value \"sometimes\" for `log.durability` in {}:3:14: expected always, interval or never\n",
            config.display()
        )
    );
    assert!(!sb.data().exists(), "nothing is done with a bad config");
}

#[test]
fn an_invalid_environment_value_names_the_variable() {
    let sb = Sandbox::new();
    let out = sb
        .vibes()
        .env("VIBES_BACKEND", "postgres")
        .args(["topics"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: invalid value \"postgres\" for `backend` in environment variable VIBES_BACKEND: expected memory, file or iggy\n"
    );
}

#[test]
fn a_bad_duration_and_an_unknown_key_are_errors() {
    let sb = Sandbox::new();
    let config = sb.path("vibes.toml");
    std::fs::write(&config, "[bd]\ndebounce = \"soon\"\n").expect("write");
    let out = sb
        .vibes()
        .arg("--config")
        .arg(&config)
        .arg("topics")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "error: invalid value \"soon\" for `bd.debounce` in {}:2:12: expected a duration such as 500ms, 5s or 2m (",
            config.display()
        )),
        "{err}"
    );

    std::fs::write(&config, "backend = \"file\"\nbakend = \"memory\"\n").expect("write");
    let out = sb
        .vibes()
        .arg("--config")
        .arg(&config)
        .arg("topics")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "error: invalid config file {}: line 2, column 1: unknown key `bakend` (`vibes config show` lists every key)\n",
            config.display()
        )),
        "{err}"
    );
}

#[test]
fn a_named_config_file_must_exist() {
    let sb = Sandbox::new();
    let config = sb.path("missing.toml");
    sb.vibes()
        .arg("--config")
        .arg(&config)
        .arg("topics")
        .assert()
        .code(2)
        .stderr(format!(
            "error: cannot read config file {}: No such file or directory (os error 2)\n",
            config.display()
        ));
}

#[test]
fn config_show_says_where_each_value_came_from() {
    let sb = Sandbox::new();
    let config_dir = sb.path("home/.config/vibes");
    std::fs::create_dir_all(&config_dir).expect("mkdir");
    let file = config_dir.join("config.toml");
    std::fs::write(&file, "[log]\npartitions = 2\n").expect("write");
    let out = sb
        .vibes()
        .env("VIBES_LOG_DURABILITY", "never")
        .args(["config", "show"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("# config file: {} (in use)\n", file.display())),
        "{text}"
    );
    let line = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key} in {text}"))
            .to_owned()
    };
    assert!(line("data_dir").ends_with("# flag --data-dir"));
    assert!(line("log.partitions").starts_with("log.partitions = 2 "));
    assert!(line("log.partitions").ends_with(&format!("# {}:2:14", file.display())));
    assert!(line("log.durability").starts_with("log.durability = \"never\""));
    assert!(line("log.durability").ends_with("# environment variable VIBES_LOG_DURABILITY"));
    assert!(line("backend").ends_with("# default"));
    // What it prints is itself a valid config.
    let body: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    let parsed: toml::Table = toml::from_str(&body).expect("config show prints TOML");
    assert_eq!(parsed["log"]["partitions"].as_integer(), Some(2));
}

// ---------------------------------------------------------------------------
// tail

#[test]
fn tail_prints_the_readable_format_without_colour_when_piped() {
    let sb = Sandbox::new();
    sb.ingest_example();
    let out = sb.vibes().args(["tail", "-n", "3"]).output().expect("run");
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(!text.contains('\u{1b}'), "no colour on a pipe");
    assert!(
        lines[0]
            .ends_with(" claude ▶ session 5f0c2a1e started: claude-sonnet-4-5-20250929 (9 tools)"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains(" claude thinking: The user says"),
        "{}",
        lines[1]
    );
    let colored = sb
        .vibes()
        .args(["--color", "always", "tail", "-n", "1"])
        .output()
        .expect("run");
    assert!(stdout(&colored).contains('\u{1b}'));
}

#[test]
fn tail_filters_by_type_source_and_session() {
    let sb = Sandbox::new();
    sb.ingest_example();
    let count = |args: &[&str]| {
        let out = sb
            .vibes()
            .args(["tail", "--json"])
            .args(args)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0));
        json_lines(&out.stdout).len()
    };
    assert_eq!(count(&["--type", "claude.tool_*"]), 18);
    assert_eq!(count(&["--type", "session.*", "--type", "claude.text"]), 5);
    assert_eq!(count(&["--source", "claude"]), 25);
    assert_eq!(count(&["--source", "bd"]), 0);
    assert_eq!(
        count(&["--session", "5f0c2a1e-8d4b-4c1f-9e7a-3b2d6c8f1a04"]),
        25
    );
    assert_eq!(count(&["--session", "another"]), 0);
    assert_eq!(count(&["--limit", "4"]), 4);
}

/// `tail --session` reads the sessions plugin's index of the session's records; `--from
/// beginning` scans the log instead. Both print the same events, but an event stored
/// twice (same id) is printed once from the index.
#[test]
fn tail_session_reads_the_sessions_index_and_follows_after_it() {
    const MAIN: &str = "5f0c2a1e-8d4b-4c1f-9e7a-3b2d6c8f1a04";
    let sb = Sandbox::new();
    sb.ingest_example();
    let other = |n: u32| {
        format!(
            r#"{{"id":"0192f1a0-0000-7000-8000-0000000000{n:02}","type":"plugin.note","source":"test","timestamp":"2026-11-22T10:00:{n:02}Z","session_id":"s-other","n":{n}}}"#
        )
    };
    let keyed_main = r#"{"id":"0192f1a0-0000-7000-8000-0000000000aa","type":"plugin.note","source":"test","timestamp":"2026-11-22T10:01:00Z","session_id":"5f0c2a1e-8d4b-4c1f-9e7a-3b2d6c8f1a04"}"#;
    let input = format!("{}\n{}\n{keyed_main}\n", other(1), other(2));
    sb.vibes().arg("emit").write_stdin(input).assert().code(0);
    let tail = |args: &[&str]| {
        let out = sb
            .vibes()
            .args(["tail", "--json"])
            .args(args)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        json_lines(&out.stdout)
    };
    let indexed = tail(&["--session", MAIN]);
    assert_eq!(indexed.len(), 26, "25 Claude events and the keyed note");
    assert_eq!(indexed, tail(&["--session", MAIN, "--from", "beginning"]));
    assert_eq!(
        tail(&["--session", MAIN, "--type", "claude.text"]),
        tail(&[
            "--session",
            MAIN,
            "--type",
            "claude.text",
            "--from",
            "beginning"
        ])
    );
    assert_eq!(tail(&["--session", MAIN, "--limit", "3"]), indexed[..3]);
    assert_eq!(tail(&["--session", "s-other"]).len(), 2);
    assert!(tail(&["--session", "nobody"]).is_empty());

    // The note stored again: the scan shows both copies, the index one.
    sb.vibes()
        .arg("emit")
        .write_stdin(format!("{keyed_main}\n"))
        .assert()
        .code(0);
    assert_eq!(tail(&["--session", MAIN, "--from", "beginning"]).len(), 27);
    assert_eq!(tail(&["--session", MAIN]), indexed);

    // Following goes on after the indexed records without repeating them.
    let mut follower = sb.spawn(&["tail", "-f", "--json", "--session", "s-other"]);
    let rx = line_reader(&mut follower);
    let first = take_lines(&rx, 2);
    assert!(
        first[0].contains(r#""n":1"#) && first[1].contains(r#""n":2"#),
        "{first:?}"
    );
    sb.vibes()
        .arg("emit")
        .write_stdin(format!("{keyed_main}\n{}\n", other(3)))
        .assert()
        .code(0);
    let next = take_lines(&rx, 1);
    assert!(next[0].contains(r#""n":3"#), "{next:?}");
    assert!(
        rx.recv_timeout(Duration::from_millis(1500)).is_err(),
        "nothing else of s-other"
    );
    stop(follower);
}

#[test]
fn tail_starts_where_from_says() {
    let sb = Sandbox::new();
    sb.ingest_example();
    let run = |from: &str| {
        sb.vibes()
            .args(["tail", "--json", "--from", from])
            .output()
            .expect("run")
    };
    let all = sb.events();
    let out = run("20");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_lines(&out.stdout), all[20..]);
    assert_eq!(json_lines(&run("beginning").stdout).len(), 25);
    assert_eq!(json_lines(&run("end").stdout).len(), 0);
    assert_eq!(json_lines(&run("25").stdout).len(), 0);
    assert_eq!(json_lines(&run("2000-01-01T00:00:00Z").stdout).len(), 25);
    assert_eq!(json_lines(&run("2999-01-01T00:00:00Z").stdout).len(), 0);

    let past = run("26");
    assert_eq!(past.status.code(), Some(2));
    assert_eq!(
        stderr(&past),
        "error: --from 26 is past the end of vibes/events: the highest offset stored is 24\n"
    );
}

#[test]
fn an_unknown_from_form_is_exit_2() {
    let sb = Sandbox::new();
    sb.vibes()
        .args(["tail", "--from", "yesterday"])
        .assert()
        .code(2)
        .stderr(
            "error: invalid --from \"yesterday\": expected beginning, end, an offset (such as 120) \
             or an RFC 3339 time (such as 2026-11-22T09:30:00Z)\n",
        );
}

#[test]
fn tail_with_a_group_resumes_after_its_commits() {
    let sb = Sandbox::new();
    sb.ingest_example();
    let first = sb
        .vibes()
        .args(["tail", "--json", "--group", "reader", "--limit", "10"])
        .output()
        .expect("run");
    let first = json_lines(&first.stdout);
    assert_eq!(first.len(), 10);
    let topics = stdout(&sb.vibes().arg("topics").output().expect("run"));
    assert!(
        topics.contains("  group reader  next offsets 0:10  lag 15"),
        "{topics}"
    );

    let rest = json_lines(
        &sb.vibes()
            .args(["tail", "--json", "--group", "reader"])
            .output()
            .expect("run")
            .stdout,
    );
    assert_eq!(rest.len(), 15);
    assert_eq!(rest[0], sb.events()[10]);
    let again = sb
        .vibes()
        .args(["tail", "--json", "--group", "reader"])
        .output()
        .expect("run");
    assert!(again.stdout.is_empty(), "nothing new for the group");
}

#[test]
fn tail_follow_sees_events_another_process_appends() {
    let sb = Sandbox::new();
    sb.ingest_example();
    let mut follower = sb.spawn(&["tail", "-f", "--json", "--from", "end"]);
    let rx = line_reader(&mut follower);
    // Give the follower time to reach the end before appending.
    std::thread::sleep(Duration::from_millis(500));
    let input = (0..3)
        .map(|i| {
            format!(
                r#"{{"type":"drain.start","source":"drainer","timestamp":"2026-11-22T10:00:0{i}Z","work_dir":"/w{i}"}}"#
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    sb.vibes().arg("emit").write_stdin(input).assert().code(0);
    let lines = take_lines(&rx, 3);
    stop(follower);
    let seen: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert!(seen.iter().all(|e| e["type"] == "drain.start"), "{seen:?}");
    assert_eq!(seen[2]["timestamp"], "2026-11-22T10:00:02Z");
}

#[test]
fn tail_into_a_closed_pipe_ends_quietly() {
    let sb = Sandbox::new();
    let events: String = (0..3000)
        .map(|i| {
            format!(
                "{{\"type\":\"error\",\"source\":\"test\",\"timestamp\":\"2026-11-22T10:00:00Z\",\"message\":\"event {i} {}\",\"severity\":\"warning\"}}\n",
                "padding ".repeat(20)
            )
        })
        .collect();
    sb.vibes().arg("emit").write_stdin(events).assert().code(0);
    let mut tail = sb.spawn(&["tail", "--json"]);
    let mut stdout = tail.stdout.take().expect("stdout");
    let mut first = [0u8; 64];
    stdout.read_exact(&mut first).expect("some output");
    drop(stdout);
    let status = tail.wait().expect("wait");
    let mut err = String::new();
    tail.stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn tail_of_an_empty_log_says_so() {
    let sb = Sandbox::new();
    let out = sb.vibes().arg("tail").output().expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    assert_eq!(
        stderr(&out),
        format!(
            "no events stored yet in vibes/events in {}\n",
            sb.data().display()
        )
    );
}

// ---------------------------------------------------------------------------
// emit

#[test]
fn emit_keeps_given_ids_assigns_missing_ones_and_prints_acks() {
    let sb = Sandbox::new();
    let input = [
        r#"{"id":"0192f1a0-0000-7000-8000-000000000001","type":"bead.status","source":"bd","timestamp":"2026-11-22T10:00:00Z","bead_id":"bd-1","old_status":"open","new_status":"in_progress"}"#,
        "",
        r#"{"type":"iteration.start","source":"drainer","timestamp":"2026-11-22T10:00:01Z","bead_id":"bd-1","title":"Fix it","priority":1,"attempt":1}"#,
        r#"{"type":"plugin.custom","source":"groove","timestamp":"2026-11-22T10:00:02Z","anything":[1,2]}"#,
    ]
    .join("\n");
    let out = sb
        .vibes()
        .args(["emit", "--print-acks", "--durability", "always"])
        .write_stdin(input)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "vibes/events 0 0\nvibes/events 0 1\nvibes/events 0 2\n"
    );
    assert_eq!(
        stderr(&out),
        format!(
            "emitted 3 events into vibes/events in {}\n",
            sb.data().display()
        )
    );
    let events = sb.events();
    assert_eq!(events[0]["id"], "0192f1a0-0000-7000-8000-000000000001");
    assert!(events[1]["id"].as_str().is_some_and(|id| id.len() == 36));
    assert_eq!(events[2]["type"], "plugin.custom");
    assert_eq!(events[2]["anything"], serde_json::json!([1, 2]));
}

#[test]
fn emit_rejects_an_invalid_line_with_its_number_and_stores_the_others() {
    let sb = Sandbox::new();
    let good = r#"{"type":"drain.pause","source":"drainer","timestamp":"2026-11-22T10:00:00Z"}"#;
    let input = format!("{good}\n{{\"type\": \"drain.pause\"\n[1,2]\n{good}\n");
    let out = sb
        .vibes()
        .args(["emit", "--print-acks"])
        .write_stdin(input)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("stdin:2: rejected: "), "{err}");
    assert!(err.contains("stdin:3: rejected: "), "{err}");
    assert!(err.ends_with("; rejected 2 lines\n"), "{err}");
    assert_eq!(stdout(&out), "vibes/events 0 0\nvibes/events 0 1\n");
    assert_eq!(sb.events().len(), 2);
}

#[test]
fn emit_with_an_unknown_durability_is_exit_2() {
    let sb = Sandbox::new();
    sb.vibes()
        .args(["emit", "--durability", "eventually"])
        .write_stdin("")
        .assert()
        .code(2)
        .stderr(
            "error: invalid value \"eventually\" for `log.durability` in flag --durability: expected always, interval or never\n",
        );
}

// ---------------------------------------------------------------------------
// stats, topics

#[test]
fn stats_reports_each_session_and_totals() {
    let sb = Sandbox::new();
    sb.ingest_example();
    let failing = [
        r#"{"type":"system","subtype":"init","session_id":"s-fail","model":"claude-opus-4-1","tools":["Bash"]}"#,
        r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"make"}}]},"session_id":"s-fail"}"#,
        r#"{"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":3,"duration_ms":5000,"total_cost_usd":0.5,"session_id":"s-fail","errors":["reached the turn limit"]}"#,
    ]
    .join("\n");
    sb.vibes()
        .args(["ingest", "claude", "-"])
        .write_stdin(failing)
        .assert()
        .code(0);

    let out = sb.vibes().arg("stats").output().expect("run");
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("session 5f0c2a1e-8d4b-4c1f-9e7a-3b2d6c8f1a04\n"),
        "{text}"
    );
    assert!(
        text.contains("  tools     9 calls: Bash 3, Edit 3, Read 2, Grep 1\n"),
        "{text}"
    );
    assert!(
        text.contains("  outcome   error: reached the turn limit\n"),
        "{text}"
    );
    assert!(
        text.ends_with(
            "total: 2 sessions (1 succeeded, 1 failed, 0 running), 17 turns, 10 tool calls, 2 tool errors, $0.6873, 1m 39s\n"
        ),
        "{text}"
    );

    let json: Value = serde_json::from_slice(
        &sb.vibes()
            .args([
                "stats",
                "--json",
                "--session",
                "5f0c2a1e-8d4b-4c1f-9e7a-3b2d6c8f1a04",
            ])
            .output()
            .expect("run")
            .stdout,
    )
    .expect("json");
    let session = &json["sessions"][0];
    assert_eq!(session["model"], "claude-sonnet-4-5-20250929");
    assert_eq!(session["turns"], 14);
    assert_eq!(session["tool_calls"]["Edit"], 3);
    assert_eq!(session["tool_calls_total"], 9);
    assert_eq!(session["tool_errors"], 2);
    assert_eq!(session["cost_usd"], 0.1873);
    assert_eq!(session["duration_ms"], 94312);
    assert_eq!(session["outcome"], "success");
    assert_eq!(json["totals"]["sessions"], 1);

    sb.vibes()
        .args(["stats", "--session", "nope"])
        .assert()
        .code(2)
        .stderr(format!(
            "error: no session nope in vibes/events in {}\n",
            sb.data().display()
        ));
}

#[test]
fn stats_count_an_event_stored_twice_once() {
    let sb = Sandbox::new();
    let line = r#"{"id":"0192f1a0-0000-7000-8000-0000000000aa","type":"claude.tool_use","source":"claude","timestamp":"2026-11-22T10:00:00Z","tool_id":"t1","tool_name":"Bash","input":{},"session_id":"s1"}"#;
    sb.vibes()
        .arg("emit")
        .write_stdin(format!("{line}\n{line}\n"))
        .assert()
        .code(0);
    let json: Value = serde_json::from_slice(
        &sb.vibes()
            .args(["stats", "--json"])
            .output()
            .expect("run")
            .stdout,
    )
    .expect("json");
    assert_eq!(json["sessions"][0]["tool_calls_total"], 1);
    assert_eq!(json["sessions"][0]["outcome"], "running");
}

#[test]
fn topics_lists_partitions_sizes_and_groups() {
    let sb = Sandbox::new();
    sb.ingest_example();
    sb.vibes()
        .args(["tail", "--group", "g1", "--limit", "5"])
        .assert()
        .code(0);
    let out = sb.vibes().arg("topics").output().expect("run");
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("vibes/events  1 partition, 25 records, "),
        "{text}"
    );
    assert!(lines[0].ends_with(" KiB on disk"), "{text}");
    assert!(
        lines[1].starts_with("  partition 0  offsets 0..25  25 records  "),
        "{text}"
    );
    assert_eq!(lines[2], "  group g1  next offsets 0:5  lag 20");
}

// ---------------------------------------------------------------------------
// doctor

#[test]
fn doctor_passes_on_a_healthy_setup() {
    let sb = Sandbox::new();
    sb.ingest_example();
    let out = sb.vibes().arg("doctor").output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.lines().all(|l| l.starts_with("ok  ")), "{text}");
    assert!(text.contains(&format!(
        "ok    data dir    {} exists and is writable\n",
        sb.data().display()
    )));
    assert!(
        text.contains("ok    log         vibes/events: 25 records in 1 segment, all intact\n"),
        "{text}"
    );
}

#[test]
fn doctor_shows_what_waits_in_the_outbox_in_front_of_iggy() {
    let sb = Sandbox::new();
    let doctor = || {
        let out = sb
            .vibes()
            .args(["--backend", "iggy", "doctor"])
            .output()
            .expect("run");
        stdout(&out)
    };
    let text = doctor();
    assert!(
        text.contains("ok    outbox      empty (everything reached iggy-server)\n"),
        "{text}"
    );
    // What a run leaves in the outbox when the server went away: a file log of the
    // records, nothing shipped yet.
    let queue = vibes_filelog::FileLog::open(
        sb.data().join("outbox"),
        vibes_filelog::FileLogOptions::default(),
    )
    .expect("queue");
    let topic = vibes_log::TopicName::new("vibes/events").unwrap();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(async {
            use vibes_log::backend::{LogBackend, Record};
            queue
                .ensure_topic(&topic, vibes_log::TopicConfig::partitions(1))
                .await
                .expect("topic");
            let records = (1..=3u128)
                .map(|id| Record::new(None, id, format!("{{\"n\":{id}}}")))
                .collect();
            queue
                .append(&topic, 0, records, vibes_log::AppendOptions::default())
                .await
                .expect("append");
        });
    drop(queue);
    let text = doctor();
    assert!(
        text.contains(
            "ok    outbox      3 records waiting for iggy-server (vibes/events partition 0: 3); \
             the next command that reaches it ships them\n"
        ),
        "{text}"
    );
}

#[test]
fn doctor_reports_a_bad_config_with_the_fix() {
    let sb = Sandbox::new();
    let out = sb
        .vibes()
        .env("VIBES_LOG_PARTITIONS", "0")
        .arg("doctor")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.starts_with(
            "FAIL  config      invalid value \"0\" for `log.partitions` in environment variable VIBES_LOG_PARTITIONS: expected a whole number from 1 to 1024\n      "
        ),
        "{text}"
    );
    assert!(
        text.contains("fix: correct the value named above"),
        "{text}"
    );
}

#[test]
fn doctor_reports_an_unusable_data_dir() {
    let sb = Sandbox::new();
    let blocker = sb.path("blocker");
    std::fs::write(&blocker, "a file").expect("write");
    let out = sb
        .vibes_bare()
        .arg("--data-dir")
        .arg(blocker.join("data"))
        .arg("doctor")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "FAIL  data dir    {} cannot be created: {} is not a directory\n",
            blocker.join("data").display(),
            blocker.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("fix: choose another directory with --data-dir"),
        "{text}"
    );
}

/// A plugin reading past damaged records goes on with the intact ones after them and
/// says what it skipped (it never stops, nor stalls on the damage at each restart).
#[test]
fn a_plugin_skips_damaged_input_and_goes_on() {
    let sb = Sandbox::new();
    sb.ingest_example();
    sb.vibes()
        .arg("emit")
        .write_stdin(
            r#"{"type":"session.start","source":"claude","timestamp":"2026-11-22T10:00:00Z","session_id":"s-after","model":"claude-opus-4-5","tools":[]}"#,
        )
        .assert()
        .code(0);
    let segment = segment_file(&sb.data());
    let mut bytes = std::fs::read(&segment).expect("segment");
    bytes[100] ^= 0xff;
    std::fs::write(&segment, &bytes).expect("write");
    for run in 0..2 {
        let out = sb
            .vibes()
            .args(["stats", "--json"])
            .output()
            .expect("stats");
        assert_eq!(out.status.code(), Some(0), "run {run}: {}", stderr(&out));
        let stats: Value = serde_json::from_slice(&out.stdout).expect("json");
        let ids: Vec<&str> = stats["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .map(|s| s["session_id"].as_str().expect("id"))
            .collect();
        assert_eq!(ids, ["s-after"], "run {run}");
        if run == 0 {
            assert!(
                stderr(&out).contains("skipping damaged input records"),
                "{}",
                stderr(&out)
            );
        }
    }
}

#[test]
fn doctor_finds_damage_and_repair_keeps_the_intact_batch_after_it() {
    let sb = Sandbox::new();
    sb.ingest_example();
    let ingested = sb.events().len();
    sb.vibes()
        .arg("emit")
        .write_stdin(
            r#"{"type":"drain.pause","source":"drainer","timestamp":"2026-11-22T10:00:00Z"}"#,
        )
        .assert()
        .code(0);
    let segment = segment_file(&sb.data());
    // Flip a byte inside the first batch: damage with a valid batch after it.
    let mut bytes = std::fs::read(&segment).expect("segment");
    bytes[100] ^= 0xff;
    std::fs::write(&segment, &bytes).expect("write");

    let out = sb.vibes().arg("doctor").output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "FAIL  log         vibes/events partition 0: damaged at {} byte 24 (",
            segment.display()
        )),
        "{text}"
    );
    assert!(text.contains(&format!("offsets 0..{ingested})")), "{text}");
    assert!(
        text.contains("fix: `vibes doctor --repair` moves the damaged bytes of partition 0 to a quarantine file"),
        "{text}"
    );

    let repaired = sb
        .vibes()
        .args(["doctor", "--repair"])
        .output()
        .expect("run");
    assert_eq!(repaired.status.code(), Some(0), "{}", stdout(&repaired));
    assert!(stdout(&repaired).contains("repaired: quarantined"));
    let after = sb.vibes().arg("doctor").output().expect("run");
    assert_eq!(after.status.code(), Some(0), "{}", stdout(&after));
    let quarantine = sb.data().join(format!(
        "topics/vibes/events/0/partition-0-offsets-0..{ingested}.quarantine"
    ));
    assert!(
        stdout(&after).contains(&format!(
            "vibes/events partition 0: offsets 0..{ingested} quarantined in {}",
            quarantine.display()
        )),
        "{}",
        stdout(&after)
    );
    // The second batch survived the repair at its offset.
    let out = sb.vibes().args(["tail", "--json"]).output().expect("tail");
    assert_eq!(
        out.status.code(),
        Some(0),
        "a repaired gap is a note: {}",
        stderr(&out)
    );
    let events = json_lines(&out.stdout);
    assert_eq!(types(&events), ["drain.pause"], "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("offsets 0..{ingested} quarantined in")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_flipped_byte_in_the_only_synced_batch_is_reported_by_every_command_never_cut() {
    let sb = Sandbox::new();
    sb.ingest_example();
    let ingested = sb.events().len();
    let segment = segment_file(&sb.data());
    let mut bytes = std::fs::read(&segment).expect("segment");
    let len = bytes.len();
    bytes[len / 2] ^= 0x01;
    std::fs::write(&segment, &bytes).expect("write");
    let size = || std::fs::metadata(&segment).expect("segment").len() as usize;

    let out = sb.vibes().args(["tail", "--json"]).output().expect("tail");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(json_lines(&out.stdout).is_empty());
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "corrupt data in {} at byte 24: checksum mismatch",
            segment.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("held offsets 0..{ingested}")),
        "{err}"
    );
    assert_eq!(size(), len, "tail cut nothing");

    let out = sb.vibes().arg("topics").output().expect("topics");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(size(), len, "topics cut nothing");

    let out = sb.vibes().arg("doctor").output().expect("doctor");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("FAIL  log"), "{}", stdout(&out));
    assert_eq!(size(), len, "doctor cut nothing");

    // A writer keeps the damaged batch and appends after its offsets.
    sb.vibes()
        .args(["emit"])
        .write_stdin(
            r#"{"type":"drain.pause","source":"drainer","timestamp":"2026-11-22T10:00:00Z"}"#,
        )
        .assert()
        .code(0);
    assert!(size() > len, "the writer cut nothing");
    let out = sb
        .vibes()
        .args(["tail", "--json", "--from", &ingested.to_string()])
        .output()
        .expect("tail");
    assert_eq!(
        types(&json_lines(&out.stdout)),
        ["drain.pause"],
        "{}",
        stderr(&out)
    );

    sb.vibes().args(["doctor", "--repair"]).assert().code(0);
    let out = sb.vibes().arg("topics").output().expect("topics");
    assert!(
        stdout(&out).contains(&format!(
            "partition 0  offsets 0..{ingested} quarantined in "
        )),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains(&format!(
            "partition 0  offsets 0..{}  1 records",
            ingested + 1
        )),
        "quarantined offsets are not counted as records: {}",
        stdout(&out)
    );
}

#[test]
fn readers_in_other_processes_never_cut_a_torn_tail_and_the_next_writer_does() {
    let sb = Sandbox::new();
    sb.ingest_example();
    let ingested = sb.events().len();
    let segment = segment_file(&sb.data());
    let synced = std::fs::metadata(&segment).expect("segment").len();
    // A write cut short after the last fsync: the start of a batch that never ended.
    let mut torn = 500u32.to_le_bytes().to_vec();
    torn.extend_from_slice(&[0xAB; 100]);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &torn))
        .expect("append");
    let size = || std::fs::metadata(&segment).expect("segment").len();

    for args in [&["tail", "--json"][..], &["topics"], &["doctor"]] {
        let out = sb.vibes().args(args).output().expect("run");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(size(), synced + torn.len() as u64, "{args:?} cut nothing");
    }
    let doctor = sb.vibes().arg("doctor").output().expect("doctor");
    assert!(
        stdout(&doctor).contains("104 bytes after the last fsync are a torn write"),
        "{}",
        stdout(&doctor)
    );
    sb.vibes()
        .arg("emit")
        .write_stdin(
            r#"{"type":"drain.pause","source":"drainer","timestamp":"2026-11-22T10:00:00Z"}"#,
        )
        .assert()
        .code(0);
    assert!(
        size() < synced + torn.len() as u64 + 100,
        "the writer cut the torn bytes"
    );
    let events = sb.events();
    assert_eq!(events.len(), ingested + 1);
}

fn segment_file(data: &Path) -> PathBuf {
    let dir = data.join("topics/vibes/events/0");
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("partition dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.remove(0)
}

// ---------------------------------------------------------------------------
// ingest bd

const BD_BEFORE: &str = r#"{"id":"bd-a1","title":"Add socket server","status":"open","priority":2,"issue_type":"task","created_at":"2026-01-02T10:00:00Z","updated_at":"2026-01-02T10:00:00Z"}
{"id":"bd-b2","title":"Fix flaky test","status":"in_progress","priority":0,"issue_type":"bug","created_at":"2026-01-02T10:05:00Z","updated_at":"2026-01-02T10:06:00Z"}
"#;

#[test]
fn ingest_bd_replay_stores_every_issue_as_created() {
    let sb = Sandbox::new();
    let beads = sb.path("project/.beads");
    std::fs::create_dir_all(&beads).expect("mkdir");
    std::fs::write(beads.join("issues.jsonl"), BD_BEFORE).expect("write");
    let out = sb
        .vibes()
        .args(["ingest", "bd", "--replay"])
        .arg(sb.path("project"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("2 issues; stored 2 events"),
        "{}",
        stderr(&out)
    );
    let events = sb.events();
    assert_eq!(types(&events), ["bead.created", "bead.created"]);
    assert_eq!(events[0]["bead_id"], "bd-a1");
}

#[test]
fn ingest_bd_without_replay_takes_the_file_as_baseline() {
    let sb = Sandbox::new();
    let file = sb.path("issues.jsonl");
    std::fs::write(&file, format!("{BD_BEFORE}{{\"id\":\"bd-x\",\"title\":\n")).expect("write");
    let out = sb
        .vibes()
        .args(["ingest", "bd"])
        .arg(&file)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "a malformed line is reported");
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}:3: skipped: ", file.display())),
        "{err}"
    );
    assert!(
        err.contains("2 issues taken as the baseline; nothing stored"),
        "{err}"
    );
    assert_eq!(sb.events().len(), 0);
}

#[test]
fn ingest_bd_stores_what_changed_since_the_last_run() {
    let sb = Sandbox::new();
    let file = sb.path("issues.jsonl");
    std::fs::write(&file, BD_BEFORE).expect("write");
    sb.vibes()
        .args(["ingest", "bd"])
        .arg(&file)
        .assert()
        .code(0);
    let after = BD_BEFORE.replace(
        r#""status":"in_progress","priority":0"#,
        r#""status":"blocked","priority":0"#,
    );
    std::fs::write(&file, after).expect("write");
    let out = sb
        .vibes()
        .args(["ingest", "bd"])
        .arg(&file)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).ends_with("2 issues; stored 1 event for changes since the last run\n"),
        "{}",
        stderr(&out)
    );
    let events = sb.events();
    assert_eq!(types(&events), ["bead.status"]);
    assert_eq!(events[0]["bead_id"], "bd-b2");
    assert_eq!(events[0]["new_status"], "blocked");
    // Nothing changed since: nothing stored.
    sb.vibes()
        .args(["ingest", "bd"])
        .arg(&file)
        .assert()
        .code(0);
    assert_eq!(sb.events().len(), 1);
}

#[test]
fn ingest_bd_follow_stores_changes_as_they_happen() {
    let sb = Sandbox::new();
    let file = sb.path("issues.jsonl");
    std::fs::write(&file, BD_BEFORE).expect("write");
    let mut watcher = sb.spawn(&[
        "ingest",
        "bd",
        "--follow",
        file.to_str().expect("utf-8 path"),
    ]);
    // Wait for the baseline, then change a status by replacing the file.
    let mut err = BufReader::new(watcher.stderr.take().expect("stderr"));
    let mut line = String::new();
    err.read_line(&mut line).expect("baseline line");
    assert!(
        line.contains("2 issues taken as the baseline; watching for changes"),
        "{line}"
    );
    let after = BD_BEFORE.replace(
        r#""status":"open","priority":2"#,
        r#""status":"in_progress","priority":2"#,
    );
    let tmp = sb.path("issues.jsonl.tmp");
    std::fs::write(&tmp, after).expect("write");
    std::fs::rename(&tmp, &file).expect("rename");

    let mut follower = sb.spawn(&["tail", "-f", "--json"]);
    let rx = line_reader(&mut follower);
    let lines = take_lines(&rx, 1);
    stop(follower);
    stop(watcher);
    let event: Value = serde_json::from_str(&lines[0]).expect("json");
    assert_eq!(event["type"], "bead.status");
    assert_eq!(event["bead_id"], "bd-a1");
    assert_eq!(event["new_status"], "in_progress");
}

#[test]
fn ingest_bd_of_a_directory_without_issues_is_exit_2() {
    let sb = Sandbox::new();
    let dir = sb.path("empty");
    std::fs::create_dir_all(&dir).expect("mkdir");
    sb.vibes()
        .args(["ingest", "bd"])
        .arg(&dir)
        .assert()
        .code(2)
        .stderr(format!(
            "error: no bd issue file in {}: looked for issues.jsonl and .beads/issues.jsonl\n",
            dir.display()
        ));
}

// ---------------------------------------------------------------------------
// Real recordings (present in CI, see ../shared/fixtures)

fn fixtures() -> Option<PathBuf> {
    let dir = PathBuf::from(FIXTURES);
    if std::env::var_os("CI").is_some() {
        assert!(dir.is_dir(), "CI must have the fixtures at {FIXTURES}");
    }
    dir.is_dir().then_some(dir)
}

#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn fixture_long_session_counts() {
    let Some(dir) = fixtures() else {
        eprintln!("skipping: fixtures not present at {FIXTURES}");
        return;
    };
    let sb = Sandbox::new();
    let out = sb
        .vibes()
        .args(["ingest", "claude"])
        .arg(dir.join("claude-stream/presmihaylov-ccagent__claude_response1.jsonl"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("  tools      53 calls, 7 errors\n"), "{err}");
    assert!(err.contains("  turns      139\n"), "{err}");
    assert!(
        err.contains("  lines      142 read, 1 blank, 0 skipped, 0 malformed\n"),
        "{err}"
    );
    let json: Value = serde_json::from_slice(
        &sb.vibes()
            .args(["stats", "--json"])
            .output()
            .expect("run")
            .stdout,
    )
    .expect("json");
    assert_eq!(json["totals"]["tool_calls"], 53);
    assert_eq!(json["totals"]["tool_errors"], 7);
    assert_eq!(json["totals"]["turns"], 139);
    assert_eq!(json["totals"]["cost_usd"], 2.4637934999999995);
}

/// The issue's report: a session ingested, then ingested again after it wrote more,
/// stored every event twice and stats said 77 tool calls and 8 errors instead of 53
/// and 7. Here the file grows twice, once at a line's end and once in the middle of
/// a line; each run stores only the new lines.
#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn ingest_claude_of_a_growing_file_stores_only_the_new_lines() {
    let Some(dir) = fixtures() else {
        eprintln!("skipping: fixtures not present at {FIXTURES}");
        return;
    };
    let sb = Sandbox::new();
    let full =
        std::fs::read(dir.join("claude-stream/presmihaylov-ccagent__claude_response1.jsonl"))
            .expect("fixture");
    let line_end = full[..full.len() / 3]
        .iter()
        .rposition(|&b| b == b'\n')
        .expect("lines")
        + 1;
    let mid_line = full.len() * 2 / 3;
    assert_ne!(full[mid_line - 1], b'\n');
    let input = sb.path("session.jsonl");
    let mut stored = 0;
    for end in [line_end, mid_line, full.len()] {
        std::fs::write(&input, &full[..end]).expect("write");
        let out = sb
            .vibes()
            .args(["ingest", "claude"])
            .arg(&input)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let err = stderr(&out);
        let line = err
            .lines()
            .find(|l| l.starts_with("  events     "))
            .expect("an events line");
        stored += line["  events     ".len()..]
            .split(' ')
            .next()
            .and_then(|n| n.parse::<usize>().ok())
            .expect("a count");
    }
    let events = sb.events();
    assert_eq!(stored, 141, "every event stored once");
    assert_eq!(events.len(), 141);
    let ids: std::collections::BTreeSet<&str> = events
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 141);
    let stats = sb.stats();
    assert_eq!(stats["totals"]["tool_calls"], 53);
    assert_eq!(stats["totals"]["tool_errors"], 7);
    assert_eq!(stats["totals"]["turns"], 139);

    // The same content under the same name, as a new file one line shorter: replaced,
    // read again from the start; the log gets copies with the same ids, stats does
    // not change.
    let cut = full[..full.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .expect("lines")
        + 1;
    std::fs::write(sb.path("new.jsonl"), &full[..cut]).expect("write");
    std::fs::rename(sb.path("new.jsonl"), &input).expect("rename");
    let out = sb
        .vibes()
        .args(["ingest", "claude"])
        .arg(&input)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("  read       from the start: the file is shorter than the "),
        "{}",
        stderr(&out)
    );
    let stats = sb.stats();
    assert_eq!(stats["totals"]["tool_calls"], 53);
    assert_eq!(stats["totals"]["tool_errors"], 7);
}

#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn fixture_bd_file_replays_every_issue() {
    let Some(dir) = fixtures() else {
        eprintln!("skipping: fixtures not present at {FIXTURES}");
        return;
    };
    let sb = Sandbox::new();
    let out = sb
        .vibes()
        .args(["ingest", "bd", "--replay"])
        .arg(dir.join("bd/NavarrePratt-atari__issues.jsonl"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(": 84 issues; stored "),
        "{}",
        stderr(&out)
    );
    let created = sb
        .events()
        .iter()
        .filter(|e| e["type"] == "bead.created")
        .count();
    assert_eq!(created, 84);
}

#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn every_fixture_recording_ingests_cleanly() {
    let Some(dir) = fixtures() else {
        eprintln!("skipping: fixtures not present at {FIXTURES}");
        return;
    };
    let sb = Sandbox::new();
    let mut sessions = 0;
    for entry in std::fs::read_dir(dir.join("claude-stream")).expect("fixtures") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        sessions += 1;
        let out = sb
            .vibes()
            .args(["ingest", "claude"])
            .arg(&path)
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            path.display(),
            stderr(&out)
        );
    }
    let json: Value = serde_json::from_slice(
        &sb.vibes()
            .args(["stats", "--json"])
            .output()
            .expect("run")
            .stdout,
    )
    .expect("json");
    assert_eq!(json["totals"]["sessions"], sessions);
}

// ---------------------------------------------------------------------------
// The progress bar (needs a terminal: util-linux `script` provides one)

/// A recording big enough that ingesting it takes a while: `n` large tool results.
fn big_recording(path: &Path, n: usize) {
    let mut text = String::from(
        r#"{"type":"system","subtype":"init","session_id":"s-prog","model":"m","tools":["Read"]}"#,
    );
    text.push('\n');
    let content = "y".repeat(64 * 1024);
    for i in 0..n {
        text.push_str(&format!(
            r#"{{"type":"user","message":{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"t{i}","content":"{content}"}}]}},"session_id":"s-prog"}}"#
        ));
        text.push('\n');
    }
    std::fs::write(path, text).expect("write");
}

#[test]
fn a_progress_bar_is_drawn_only_on_a_terminal() {
    let sb = Sandbox::new();
    let input = sb.path("big.jsonl");
    big_recording(&input, 300);
    let data = sb.data();
    let command = format!(
        "{BIN} --data-dir '{}' ingest claude '{}'",
        data.display(),
        input.display()
    );
    let mut script = std::process::Command::new("script");
    sb.env(&mut script);
    let out = script
        .env("TERM", "xterm")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("util-linux script runs");
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let terminal = stdout(&out);
    assert!(
        terminal.contains("MiB/"),
        "a progress bar with sizes: {terminal}"
    );
    assert!(terminal.contains("ingested "), "{terminal}");

    let piped = sb
        .vibes()
        .args(["ingest", "claude", "--force"])
        .arg(&input)
        .output()
        .expect("run");
    assert_eq!(piped.status.code(), Some(0));
    assert!(!stderr(&piped).contains("MiB/"), "{}", stderr(&piped));
}

// ---------------------------------------------------------------------------
// The Iggy backend

#[test]
fn iggy_backend_without_a_running_managed_server_says_how_to_start_one() {
    let sb = Sandbox::new();
    let out = sb
        .vibes()
        .args(["--backend", "iggy", "ingest", "claude", EXAMPLE])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "error: backend iggy (managed): no managed iggy-server runs from {}; start one with `vibes iggy start` or `vibes serve`\n",
            sb.data().join("iggy").display()
        )
    );
    let status = sb
        .vibes()
        .args(["--backend", "iggy", "iggy", "status"])
        .output()
        .expect("run");
    assert_eq!(status.status.code(), Some(1));
    assert!(
        stdout(&status).contains("server    not running (start it with `vibes iggy start`)"),
        "{}",
        stdout(&status)
    );
}

#[test]
fn an_external_iggy_server_needs_credentials_from_config_or_environment() {
    let sb = Sandbox::new();
    let config = sb.path("vibes.toml");
    std::fs::write(
        &config,
        "backend = \"iggy\"\n[iggy]\nmode = \"external\"\ntcp_address = \"127.0.0.1:1\"\n",
    )
    .expect("write");
    let out = sb
        .vibes()
        .arg("--config")
        .arg(&config)
        .arg("topics")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.starts_with("error: backend iggy (external): "), "{err}");
    assert!(err.contains("IGGY_PASSWORD"), "{err}");
}

#[test]
fn an_invalid_iggy_value_names_the_key_the_file_and_the_line() {
    let sb = Sandbox::new();
    let config = sb.path("vibes.toml");
    std::fs::write(&config, "[iggy]\nmode = \"sideways\"\n").expect("write");
    let out = sb
        .vibes()
        .arg("--config")
        .arg(&config)
        .arg("topics")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "error: invalid value \"sideways\" for `iggy.mode` in {}:2:8: expected managed or external\n",
            config.display()
        )
    );
}

#[test]
fn config_show_prints_the_iggy_keys_with_origins_and_without_secrets() {
    let sb = Sandbox::new();
    let config = sb.path("vibes.toml");
    std::fs::write(
        &config,
        "[iggy]\nmode = \"external\"\nusername = \"vibes\"\npassword = \"hunter2-but-longer\"\n",
    )
    .expect("write");
    let out = sb
        .vibes()
        .arg("--config")
        .arg(&config)
        .env("VIBES_IGGY_CONNECT_TIMEOUT", "3s")
        .args(["config", "show"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let line = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key} in {text}"))
            .to_owned()
    };
    let mode = line("iggy.mode");
    assert!(mode.starts_with("iggy.mode = \"external\" "), "{mode}");
    assert!(
        mode.ends_with(&format!("# {}:2:8", config.display())),
        "{mode}"
    );
    let password = line("iggy.password");
    assert!(
        password.starts_with("iggy.password = \"***\" "),
        "{password}"
    );
    let timeout = line("iggy.connect_timeout");
    assert!(
        timeout.starts_with("iggy.connect_timeout = \"3s\" "),
        "{timeout}"
    );
    assert!(
        timeout.ends_with("# environment variable VIBES_IGGY_CONNECT_TIMEOUT"),
        "{timeout}"
    );
    assert!(line("iggy.stop_grace").ends_with("# default"));
    assert!(!text.contains("hunter2"), "{text}");
}

/// The managed server's binary, when this machine has one.
fn iggy_server_bin() -> PathBuf {
    std::env::var_os("IGGY_SERVER_BIN")
        .map(PathBuf::from)
        .expect("IGGY_SERVER_BIN names an iggy-server 0.8 binary")
}

#[test]
#[ignore = "needs iggy-server (IGGY_SERVER_BIN)"]
fn every_command_works_on_a_managed_iggy_server() {
    let sb = Sandbox::new();
    let bin = iggy_server_bin();
    let with_server = |cmd: &mut std::process::Command| {
        cmd.env("IGGY_SERVER_BIN", &bin);
    };
    let mut start = common::vibes(&sb.path("home"));
    with_server(&mut start);
    let mut server = start
        .arg("--data-dir")
        .arg(sb.data())
        .args(["--backend", "iggy", "iggy", "start"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vibes iggy start");
    let mut err = BufReader::new(server.stderr.take().expect("stderr"));
    let mut line = String::new();
    err.read_line(&mut line).expect("start line");
    assert!(line.starts_with("iggy-server running: pid "), "{line}");

    let vibes = || {
        let mut cmd = sb.vibes();
        cmd.env("IGGY_SERVER_BIN", &bin).args(["--backend", "iggy"]);
        cmd
    };
    vibes()
        .args(["ingest", "claude", EXAMPLE])
        .assert()
        .code(0)
        .stderr(predicates::str::contains(
            "  tools      9 calls, 2 errors\n",
        ));
    let events = json_lines(
        &vibes()
            .args(["tail", "--json"])
            .output()
            .expect("tail")
            .stdout,
    );
    assert_eq!(events.len(), 25);
    assert_eq!(events[0]["type"], "session.start");
    let stats: Value = serde_json::from_slice(
        &vibes()
            .args(["stats", "--json"])
            .output()
            .expect("stats")
            .stdout,
    )
    .expect("json");
    assert_eq!(stats["totals"]["tool_calls"], 9);
    vibes()
        .args(["tail", "--group", "g1", "-n", "5"])
        .assert()
        .code(0);
    let topics = stdout(&vibes().arg("topics").output().expect("topics"));
    assert!(
        topics.contains("vibes/events  1 partition, 25 records"),
        "{topics}"
    );
    assert!(
        topics.contains("  group g1  next offsets 0:5  lag 20"),
        "{topics}"
    );
    assert!(topics.contains("outbox: empty"), "{topics}");
    vibes()
        .args(["emit", "--print-acks"])
        .write_stdin(r#"{"type":"drain.pause","source":"d","timestamp":"2026-11-22T10:00:00Z"}"#)
        .assert()
        .code(0)
        .stdout("vibes/events 0 25\n");
    vibes().args(["iggy", "status"]).assert().code(0);
    let doctor = vibes().arg("doctor").output().expect("doctor");
    assert_eq!(doctor.status.code(), Some(0), "{}", stdout(&doctor));
    assert!(stdout(&doctor).contains("ok    iggy-server  running (pid "));

    vibes().args(["iggy", "stop"]).assert().code(0);
    let status = server.wait().expect("vibes iggy start exits");
    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    err.read_to_string(&mut rest).expect("rest of stderr");
    assert!(rest.contains("iggy-server stopped (Exited("), "{rest}");
}

#[test]
fn a_relative_data_dir_is_taken_from_the_working_directory() {
    let home = tempfile::tempdir().expect("temp dir");
    let work = home.path().join("work");
    std::fs::create_dir(&work).expect("work dir");
    let run = |args: &[&str]| {
        common::vibes(home.path())
            .current_dir(&work)
            .arg("--data-dir")
            .arg("data")
            .args(args)
            .output()
            .expect("run vibes")
    };
    let ingest = run(&["ingest", "claude", common::EXAMPLE]);
    assert_eq!(ingest.status.code(), Some(0), "{}", stderr(&ingest));
    assert!(
        work.join("data").is_dir(),
        "the data dir is under the working directory"
    );
    let stats = run(&["stats", "--json"]);
    assert_eq!(stats.status.code(), Some(0), "{}", stderr(&stats));
    let stats: Value = serde_json::from_slice(&stats.stdout).expect("stats JSON");
    assert_eq!(stats["totals"]["sessions"], 1, "{stats}");
}
