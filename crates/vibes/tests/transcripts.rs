//! `vibes ingest claude-projects` through the real binary: the facts of every fixture
//! transcript as `vibes stats --json` and `vibes tail --json` show them, and the
//! incremental cases (a line split across two runs, a truncated file, a replaced file,
//! a subagent folder appearing during `--follow`, copies of one call in two files, an
//! unknown line type, malformed JSON).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;
use vibes_events::Event;
use vibes_sources::calls::ApiCalls;

mod common;

const PROJECTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/claude-projects"
);
const SPOTTER: &str = "-home-dev-spotter";
const SPOTTER_SESSION: &str = "ae4a77f8-aedd-4bc1-888f-c94edc91af04";

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

    fn command(&self, data: &str) -> std::process::Command {
        let mut cmd = common::vibes(&self.path("home"));
        cmd.arg("--data-dir").arg(self.path(data));
        cmd
    }

    /// `vibes --data-dir <sandbox>/<data> args...`
    fn run(&self, data: &str, args: &[&str]) -> Output {
        Command::from_std(self.command(data))
            .args(args)
            .output()
            .expect("run vibes")
    }

    /// `ingest claude-projects <dir>` into `data`; returns the exit code and stderr.
    fn ingest(&self, data: &str, dir: &Path) -> (i32, String) {
        let out = Command::from_std(self.command(data))
            .args(["ingest", "claude-projects"])
            .arg(dir)
            .output()
            .expect("run vibes");
        (out.status.code().unwrap_or(-1), stderr(&out))
    }

    /// Every stored event.
    fn events(&self, data: &str) -> Vec<Event> {
        let out = self.run(data, &["tail", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .lines()
            .map(|l| Event::from_json(l).expect("an event"))
            .collect()
    }

    fn stats(&self, data: &str) -> Value {
        let out = self.run(data, &["stats", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).expect("stats JSON")
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn fixtures() -> Option<PathBuf> {
    let dir = PathBuf::from(PROJECTS);
    if std::env::var_os("CI").is_some() {
        assert!(dir.is_dir(), "CI must have the fixtures at {PROJECTS}");
    }
    dir.is_dir().then_some(dir)
}

macro_rules! fixtures_or_skip {
    () => {
        match fixtures() {
            Some(dir) => dir,
            None => {
                eprintln!("skipping: fixtures not present at {PROJECTS}");
                return;
            }
        }
    };
}

fn spotter_file(dir: &Path) -> PathBuf {
    dir.join(SPOTTER).join(format!("{SPOTTER_SESSION}.jsonl"))
}

/// The string field `key` of `event` (its own field or an extra one).
fn field(event: &Event, key: &str) -> Option<String> {
    let json: Value = serde_json::from_str(&event.to_json().expect("json")).expect("json");
    json.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The events of one transcript file: its session, and its agent (`None` for the
/// session's own file).
fn of_file<'a>(events: &'a [Event], session: &str, agent: Option<&str>) -> Vec<&'a Event> {
    events
        .iter()
        .filter(|e| e.partition_key() == Some(session))
        .filter(|e| field(e, "agent_id").as_deref() == agent)
        .collect()
}

fn ids(events: &[Event]) -> BTreeSet<u128> {
    events.iter().map(|e| e.id.as_u128()).collect()
}

fn count_type(events: &[&Event], event_type: &str) -> usize {
    events
        .iter()
        .filter(|e| e.event_type() == event_type)
        .count()
}

/// One file's facts from SOURCES.md.
struct Facts {
    session: &'static str,
    agent: Option<&'static str>,
    calls: usize,
    tokens: [u64; 4],
    tool_uses: usize,
    tool_errors: usize,
    first: &'static str,
    last: &'static str,
    models: &'static [(&'static str, usize)],
}

const FACTS: [Facts; 5] = [
    Facts {
        session: "155c3456-9cd0-4d8f-8db3-d0560ca1851c",
        agent: None,
        calls: 130,
        tokens: [668, 26_855, 360_705, 7_374_640],
        tool_uses: 119,
        tool_errors: 5,
        first: "2025-08-25T16:33:38.974Z",
        last: "2025-08-25T17:05:36.149Z",
        models: &[
            ("claude-opus-4-1-20250805", 37),
            ("claude-sonnet-4-20250514", 93),
        ],
    },
    Facts {
        session: "fe5e1c67-53e7-4862-81ae-d0e013e3270b",
        agent: None,
        calls: 170,
        tokens: [818, 51_933, 137_976, 3_647_854],
        tool_uses: 167,
        tool_errors: 23,
        first: "2025-09-03T00:52:31.217Z",
        last: "2025-09-03T01:02:03.665Z",
        models: &[("claude-sonnet-4-20250514", 170)],
    },
    Facts {
        session: SPOTTER_SESSION,
        agent: None,
        calls: 217,
        tokens: [242, 49_467, 237_121, 16_553_628],
        tool_uses: 242,
        tool_errors: 12,
        first: "2026-02-12T14:11:56.103Z",
        last: "2026-02-12T15:05:00.730Z",
        models: &[("claude-haiku-4-5-20251001", 133), ("claude-opus-4-6", 84)],
    },
    Facts {
        session: SPOTTER_SESSION,
        agent: Some("aac57f5"),
        calls: 3,
        tokens: [2_408, 7, 18_814, 29_274],
        tool_uses: 12,
        tool_errors: 0,
        first: "2026-02-12T14:12:32.522Z",
        last: "2026-02-12T14:13:05.048Z",
        models: &[("claude-sonnet-4-5-20250929", 3)],
    },
    Facts {
        session: SPOTTER_SESSION,
        agent: Some("acompact-946d2b"),
        calls: 1,
        tokens: [3, 8, 121_689, 17_842],
        tool_uses: 0,
        tool_errors: 0,
        first: "2026-02-12T14:47:09.231Z",
        last: "2026-02-12T14:48:36.518Z",
        models: &[("claude-opus-4-6", 1)],
    },
];

impl Facts {
    /// The fixture file these facts are about.
    fn path(&self, dir: &Path) -> PathBuf {
        let project = match self.session {
            "155c3456-9cd0-4d8f-8db3-d0560ca1851c" => "-home-ubuntu-Documents-livecd-gen",
            "fe5e1c67-53e7-4862-81ae-d0e013e3270b" => "sample-project",
            _ => SPOTTER,
        };
        match self.agent {
            None => dir.join(project).join(format!("{}.jsonl", self.session)),
            Some(agent) => dir
                .join(project)
                .join(self.session)
                .join("subagents")
                .join(format!("agent-{agent}.jsonl")),
        }
    }
}

#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn every_fixture_transcript_gives_the_facts_of_its_sources_md() {
    let dir = fixtures_or_skip!();
    let sb = Sandbox::new();
    let (code, err) = sb.ingest("data", &dir);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(
            "  files      5 read: new 5 (3 session files, 2 subagent files); 0 unchanged\n"
        ),
        "{err}"
    );
    assert!(
        err.contains("  api calls  521 calls (from 900 copies)"),
        "{err}"
    );
    assert!(err.contains("  tools      540 uses, 40 errors\n"), "{err}");
    assert!(err.contains(", 0 of unknown types, 0 malformed\n"), "{err}");
    let events = sb.events("data");
    for facts in &FACTS {
        let name = format!("{} {:?}", facts.session, facts.agent);
        let mine = of_file(&events, facts.session, facts.agent);
        let mut calls = ApiCalls::new();
        for event in &mine {
            calls.add(event);
        }
        let totals = calls.totals();
        assert_eq!(calls.len(), facts.calls, "{name}: calls");
        assert_eq!(
            [
                totals.input_tokens,
                totals.output_tokens,
                totals.cache_creation_input_tokens(),
                totals.cache_read_input_tokens
            ],
            facts.tokens,
            "{name}: tokens"
        );
        assert_eq!(
            count_type(&mine, "claude.tool_use"),
            facts.tool_uses,
            "{name}"
        );
        let errors = mine
            .iter()
            .filter(|e| e.event_type() == "claude.tool_result")
            .filter(|e| {
                let json: Value = serde_json::from_str(&e.to_json().unwrap()).unwrap();
                json["is_error"] == true
            })
            .count();
        assert_eq!(errors, facts.tool_errors, "{name}: tool errors");
        let by_model: BTreeMap<String, usize> = calls
            .by_model()
            .into_iter()
            .map(|(m, t)| (m, t.calls as usize))
            .collect();
        let expected: BTreeMap<String, usize> = facts
            .models
            .iter()
            .map(|(m, n)| ((*m).to_owned(), *n))
            .collect();
        assert_eq!(by_model, expected, "{name}: models");

        // First and last timestamps are the lines' own, including lines that carry
        // no event: the summary of ingesting the file alone reports them.
        let alone = sb.path(&format!("alone-{}", facts.agent.unwrap_or(facts.session)));
        let copy = alone.join(facts.path(&dir).strip_prefix(&dir).expect("under dir"));
        std::fs::create_dir_all(copy.parent().expect("parent")).expect("mkdir");
        std::fs::copy(facts.path(&dir), &copy).expect("copy");
        let data = format!("data-{}", facts.agent.unwrap_or(facts.session));
        let (code, err) = sb.ingest(&data, &alone);
        assert_eq!(code, 0, "{err}");
        let time = err
            .lines()
            .find_map(|l| l.strip_prefix("  time       "))
            .expect("a time line");
        let (first, rest) = time.split_once(" → ").expect("first → last");
        let last = rest.split(' ').next().expect("last");
        let ts = |s: &str| s.parse::<jiff::Timestamp>().expect("timestamp");
        assert_eq!(ts(first), ts(facts.first), "{name}: first");
        assert_eq!(ts(last), ts(facts.last), "{name}: last");
    }

    // The other signals: the limit warning, the interrupt, the compaction.
    let livecd = of_file(&events, FACTS[0].session, None);
    let limits: Vec<_> = livecd
        .iter()
        .filter(|e| e.event_type() == "claude.rate_limit")
        .collect();
    assert_eq!(limits.len(), 1);
    assert_eq!(
        limits[0].timestamp,
        "2025-08-25T16:42:45.467Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
    );
    assert_eq!(field(limits[0], "status").as_deref(), Some("fallback"));
    assert!(
        field(limits[0], "fallback_model").is_some_and(|m| m.contains("Sonnet")),
        "{limits:?}"
    );
    assert_eq!(count_type(&livecd, "claude.interrupt"), 1);
    let spotter = of_file(&events, SPOTTER_SESSION, None);
    assert_eq!(count_type(&spotter, "session.compact"), 1, "one compaction");
    assert!(count_type(&spotter, "claude.turn_duration") > 0);

    // vibes stats sees the same sessions, tool uses and errors; the subagents'
    // tools count in their parent session.
    let stats = sb.stats("data");
    let sessions: BTreeMap<&str, &Value> = stats["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| (s["session_id"].as_str().expect("id"), s))
        .collect();
    assert_eq!(sessions.len(), 3);
    for (id, uses, errors, model) in [
        (FACTS[0].session, 119, 5, "claude-opus-4-1-20250805"),
        (FACTS[1].session, 167, 23, "claude-sonnet-4-20250514"),
        (SPOTTER_SESSION, 242 + 12, 12, "claude-opus-4-6"),
    ] {
        assert_eq!(sessions[id]["tool_calls_total"], uses, "{id}");
        assert_eq!(sessions[id]["tool_errors"], errors, "{id}");
        assert_eq!(sessions[id]["model"], model, "{id}");
    }

    // tail --session reads a transcript session like a stream-json one.
    let out = sb.run("data", &["tail", "--json", "--session", FACTS[1].session]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        of_file(&events, FACTS[1].session, None).len()
    );

    // A second run reads nothing and stores nothing.
    let (code, err) = sb.ingest("data", &dir);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("  files      0 read (0 session files, 0 subagent files); 5 unchanged\n"),
        "{err}"
    );
    assert!(err.contains("  events     0 stored\n"), "{err}");
    assert_eq!(sb.events("data").len(), events.len());
}

/// A copy of the spotter session file (no subagents) in `<root>/<project>/`.
fn spotter_tree(sb: &Sandbox, dir: &Path, name: &str) -> (PathBuf, PathBuf, Vec<u8>) {
    let root = sb.path(name);
    let file = root.join(SPOTTER).join(format!("{SPOTTER_SESSION}.jsonl"));
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    let bytes = std::fs::read(spotter_file(dir)).expect("fixture");
    (root, file, bytes)
}

/// The events of the whole spotter session file, ingested in one run.
fn reference(sb: &Sandbox, dir: &Path) -> Vec<Event> {
    let (root, file, bytes) = spotter_tree(sb, dir, "reference");
    std::fs::write(&file, &bytes).expect("write");
    let (code, err) = sb.ingest("reference-data", &root);
    assert_eq!(code, 0, "{err}");
    sb.events("reference-data")
}

#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn a_line_split_across_two_runs_is_stored_once_whole() {
    let dir = fixtures_or_skip!();
    let sb = Sandbox::new();
    let whole = reference(&sb, &dir);
    let (root, file, bytes) = spotter_tree(&sb, &dir, "tree");
    let cut = bytes.len() / 2;
    assert_ne!(bytes[cut - 1], b'\n', "the cut is inside a line");
    let line_start = bytes[..cut]
        .iter()
        .rposition(|&b| b == b'\n')
        .expect("lines")
        + 1;
    std::fs::write(&file, &bytes[..cut]).expect("write");
    let (code, err) = sb.ingest("data", &root);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            ": an incomplete last line ({} bytes) waits for its newline\n",
            cut - line_start
        )),
        "{err}"
    );
    assert!(err.contains(" 0 malformed\n"), "{err}");
    let first = sb.events("data");

    std::fs::write(&file, &bytes).expect("write the rest");
    let (code, err) = sb.ingest("data", &root);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("  files      1 read: grown 1 "), "{err}");
    let events = sb.events("data");
    assert_eq!(events.len(), whole.len(), "each event stored once");
    assert_eq!(ids(&events), ids(&whole));
    assert!(first.len() < events.len());
    let mut payloads: Vec<String> = events.iter().map(|e| e.to_json().unwrap()).collect();
    let mut expected: Vec<String> = whole.iter().map(|e| e.to_json().unwrap()).collect();
    payloads.sort();
    expected.sort();
    // A tool result whose call was read by the first run has no tool name in the
    // second (the name is the reader's memory, not the line's); all else is equal.
    let strip = |s: &String| {
        let mut v: Value = serde_json::from_str(s).unwrap();
        v.as_object_mut().unwrap().remove("tool_name");
        v
    };
    let payloads: Vec<Value> = payloads.iter().map(strip).collect();
    let expected: Vec<Value> = expected.iter().map(strip).collect();
    assert_eq!(payloads, expected);
}

#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn a_truncated_file_is_read_again_and_counts_stay_true() {
    let dir = fixtures_or_skip!();
    let sb = Sandbox::new();
    let whole = reference(&sb, &dir);
    let (root, file, bytes) = spotter_tree(&sb, &dir, "tree");
    std::fs::write(&file, &bytes).expect("write");
    assert_eq!(sb.ingest("data", &root).0, 0);
    let half = bytes[..bytes.len() / 2]
        .iter()
        .rposition(|&b| b == b'\n')
        .expect("lines")
        + 1;
    // Truncated in place (same inode), as `truncate` or a rewrite would.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .expect("open")
        .set_len(half as u64)
        .expect("truncate");
    let (code, err) = sb.ingest("data", &root);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("  files      1 read: truncated 1 "), "{err}");
    // Read again from the start: the log holds copies with the same ids, and every
    // count (which goes by id) stays true.
    let events = sb.events("data");
    assert!(events.len() > whole.len());
    assert_eq!(ids(&events), ids(&whole));
    let stats = sb.stats("data");
    assert_eq!(stats["totals"]["tool_calls"], 242);
    assert_eq!(stats["totals"]["tool_errors"], 12);
    let mut calls = ApiCalls::new();
    events.iter().for_each(|e| {
        calls.add(e);
    });
    assert_eq!(calls.len(), 217);
    assert_eq!(calls.totals().output_tokens, 49_467);

    // Written again to its full length: it grew from the truncated length.
    std::fs::write(&file, &bytes).expect("write");
    let (code, err) = sb.ingest("data", &root);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("  files      1 read: grown 1 "), "{err}");
    assert_eq!(ids(&sb.events("data")), ids(&whole));
}

#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn a_file_replaced_under_the_same_name_is_read_from_the_start() {
    let dir = fixtures_or_skip!();
    let sb = Sandbox::new();
    let (root, file, bytes) = spotter_tree(&sb, &dir, "tree");
    std::fs::write(&file, &bytes).expect("write");
    assert_eq!(sb.ingest("data", &root).0, 0);
    let before = sb.events("data");

    // Another session's lines, longer than what was read, under the same name.
    let other = std::fs::read(FACTS[0].path(&dir)).expect("fixture");
    let mut replacement = other.clone();
    while replacement.len() <= bytes.len() {
        replacement.extend_from_slice(&other);
    }
    let tmp = root.join("new.tmp");
    std::fs::write(&tmp, &replacement).expect("write");
    std::fs::rename(&tmp, &file).expect("replace");
    let (code, err) = sb.ingest("data", &root);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("  files      1 read: replaced 1 "), "{err}");
    let events = sb.events("data");
    let livecd = of_file(&events, FACTS[0].session, None);
    let mut calls = ApiCalls::new();
    livecd.iter().for_each(|e| {
        calls.add(e);
    });
    assert_eq!(
        calls.len(),
        130,
        "the new content was read from its first line"
    );
    assert!(ids(&before).is_subset(&ids(&events)));
}

/// The usage plugin's snapshot topic holds records.
fn has_usage_snapshot(sb: &Sandbox, data: &str) -> bool {
    let dir = sb.path(data).join("topics/usage/snapshots/0");
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| {
            e.path().extension().is_some_and(|x| x == "log")
                && e.metadata().is_ok_and(|m| m.len() > 64)
        })
    })
}

/// The first ingest into an empty data dir folds the usage plugin on the way: its
/// snapshot is there before any report, and the reports equal those of a data dir
/// that held an event before its ingest (nothing folded, the report catches up from
/// the log), also after a second ingest of new lines.
#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn the_first_ingest_leaves_the_usage_report_ready_and_equal_to_one_caught_up() {
    let dir = fixtures_or_skip!();
    let sb = Sandbox::new();
    let (root, file, bytes) = spotter_tree(&sb, &dir, "tree");
    let cut = bytes[..bytes.len() / 2]
        .iter()
        .rposition(|&b| b == b'\n')
        .expect("lines")
        + 1;
    std::fs::write(&file, &bytes[..cut]).expect("write");

    let bead = r#"{"type":"bead.status","source":"bd","timestamp":"2026-01-01T00:00:00Z","bead_id":"bd-1","old_status":"open","new_status":"closed"}"#;
    Command::from_std(sb.command("caught-up"))
        .arg("emit")
        .write_stdin(format!("{bead}\n"))
        .assert()
        .code(0);
    let session_report = |data: &str| {
        let out = sb.run(data, &["usage", "session", "--json", "--timezone", "UTC"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        serde_json::from_slice::<Value>(&out.stdout).expect("report JSON")
    };
    for data in ["folded", "caught-up"] {
        let (code, err) = sb.ingest(data, &root);
        assert_eq!(code, 0, "{err}");
    }
    assert!(has_usage_snapshot(&sb, "folded"), "the ingest saved one");
    assert!(!has_usage_snapshot(&sb, "caught-up"), "nothing was folded");
    let folded = session_report("folded");
    assert!(
        folded["sessions"][0]["api_calls"].as_u64().unwrap() > 0,
        "{folded:#}"
    );
    assert_eq!(folded, session_report("caught-up"));

    // New lines: the log is no longer empty, so they are read back by the report.
    std::fs::write(&file, &bytes).expect("write the rest");
    for data in ["folded", "caught-up"] {
        let (code, err) = sb.ingest(data, &root);
        assert_eq!(code, 0, "{err}");
    }
    let grown = session_report("folded");
    assert_ne!(grown, folded);
    assert_eq!(grown, session_report("caught-up"));
}

#[test]
fn copies_of_one_call_interleaved_in_two_files_count_once() {
    let sb = Sandbox::new();
    let root = sb.path("tree");
    let session = "11111111-2222-3333-4444-555555555555";
    let main = root.join("proj").join(format!("{session}.jsonl"));
    let agent = root
        .join("proj")
        .join(session)
        .join("subagents")
        .join("agent-a1.jsonl");
    std::fs::create_dir_all(agent.parent().unwrap()).unwrap();
    let copy = |uuid: &str, ts: &str, output: u64, stop: &str, agent: Option<&str>| {
        let agent = agent.map_or(String::new(), |a| format!(r#""agentId":"{a}","#));
        format!(
            r#"{{"type":"assistant","sessionId":"{session}",{agent}"uuid":"{uuid}","timestamp":"{ts}","requestId":"req_1","message":{{"id":"msg_1","model":"claude-opus-4-6","stop_reason":{stop},"content":[{{"type":"text","text":"{uuid}"}}],"usage":{{"input_tokens":10,"output_tokens":{output},"cache_creation_input_tokens":100,"cache_read_input_tokens":1000}}}}}}"#
        ) + "\n"
    };
    std::fs::write(
        &main,
        copy("u1", "2026-01-01T00:00:01Z", 3, "null", None)
            + &copy("u3", "2026-01-01T00:00:03Z", 40, "\"end_turn\"", None),
    )
    .unwrap();
    std::fs::write(
        &agent,
        copy("u2", "2026-01-01T00:00:02Z", 12, "null", Some("a1")),
    )
    .unwrap();
    let (code, err) = sb.ingest("data", &root);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("  api calls  1 call (from 3 copies)\n"),
        "{err}"
    );
    // Another copy appears later: still one call, by the counting rules over the log.
    std::fs::write(
        &agent,
        copy("u2", "2026-01-01T00:00:02Z", 12, "null", Some("a1"))
            + &copy("u4", "2026-01-01T00:00:04Z", 7, "null", Some("a1")),
    )
    .unwrap();
    let (code, err) = sb.ingest("data", &root);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("  api calls  1 call (from 1 copy)"), "{err}");
    let events = sb.events("data");
    let copies: Vec<&Event> = events
        .iter()
        .filter(|e| e.event_type() == "claude.api_call")
        .collect();
    assert_eq!(
        copies.len(),
        4,
        "every copy is stored, each with its own id"
    );
    assert_eq!(ids(&events.clone()).len(), events.len());
    let mut calls = ApiCalls::new();
    copies.iter().for_each(|e| {
        calls.add(e);
    });
    assert_eq!(calls.len(), 1);
    let call = calls.get("msg_1", Some("req_1")).expect("the call");
    assert_eq!(call.usage.output_tokens, 40, "the largest copy");
    assert!(call.output_final);
    assert_eq!(call.agent_id, None, "the session's own copy wins");
    assert_eq!(call.copies, 4);
}

#[test]
fn unknown_line_types_are_counted_and_malformed_json_is_reported_with_file_line_and_offset() {
    let sb = Sandbox::new();
    let root = sb.path("tree");
    let session = "66666666-2222-3333-4444-555555555555";
    let file = root.join("proj").join(format!("{session}.jsonl"));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let tool = |id: &str, ts: &str| {
        format!(
            r#"{{"type":"assistant","sessionId":"{session}","uuid":"{id}","timestamp":"{ts}","message":{{"id":"m-{id}","model":"claude-opus-4-6","content":[{{"type":"tool_use","id":"t-{id}","name":"Bash","input":{{}}}}]}}}}"#
        ) + "\n"
    };
    let lines = [
        tool("a", "2026-01-01T00:00:01Z"),
        r#"{"type":"hologram","timestamp":"2026-01-01T00:00:02Z"}"#.to_owned() + "\n",
        r#"{"type":"assistant","message":{"content":[}"#.to_owned() + "\n",
        tool("b", "2026-01-01T00:00:03Z"),
    ];
    std::fs::write(&file, lines.concat()).unwrap();
    let offset = lines[0].len() + lines[1].len();
    let (code, err) = sb.ingest("data", &root);
    assert_eq!(code, 1, "malformed input is exit 1: {err}");
    assert!(
        err.contains(&format!(
            "  malformed  {}: line 3 (byte offset {offset}): ",
            file.display()
        )),
        "{err}"
    );
    assert!(err.contains("  unknown    hologram 1\n"), "{err}");
    assert!(err.contains(", 1 of unknown types, 1 malformed\n"), "{err}");
    let events = sb.events("data");
    assert_eq!(
        count_type(&events.iter().collect::<Vec<_>>(), "claude.tool_use"),
        2,
        "the lines after the bad one are kept"
    );
}

/// Reads a child's stderr lines on a thread.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let err = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn follow_reads_a_subagent_folder_that_appears_and_stops_on_sigterm() {
    let dir = fixtures_or_skip!();
    let sb = Sandbox::new();
    let (root, file, bytes) = spotter_tree(&sb, &dir, "tree");
    std::fs::write(&file, &bytes).expect("write");
    let mut child = sb
        .command("data")
        .args(["ingest", "claude-projects", "--follow"])
        .arg(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let lines = stderr_lines(&mut child);
    let mut seen = Vec::new();
    wait_for("the first pass", || {
        seen.extend(lines.try_iter());
        seen.iter().any(|l| l.starts_with("watching "))
    });

    // A subagent folder appears, with its file.
    let source = dir
        .join(SPOTTER)
        .join(SPOTTER_SESSION)
        .join("subagents/agent-aac57f5.jsonl");
    let agent = root
        .join(SPOTTER)
        .join(SPOTTER_SESSION)
        .join("subagents/agent-aac57f5.jsonl");
    std::fs::create_dir_all(agent.parent().unwrap()).unwrap();
    std::fs::copy(&source, &agent).expect("copy");
    wait_for("the subagent's events in the log", || {
        let events = sb.events("data");
        let mut calls = ApiCalls::new();
        for e in of_file(&events, SPOTTER_SESSION, Some("aac57f5")) {
            calls.add(e);
        }
        calls.len() == 3
            && count_type(
                &of_file(&events, SPOTTER_SESSION, Some("aac57f5")),
                "claude.tool_use",
            ) == 12
    });

    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    seen.extend(lines.iter());
    assert!(seen.iter().any(|l| l.starts_with("stopped: ")), "{seen:?}");
    // Everything read was checkpointed: a run now finds nothing new.
    let (code, err) = sb.ingest("data", &root);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("  files      0 read (0 session files, 0 subagent files); 2 unchanged\n"),
        "{err}"
    );
}
