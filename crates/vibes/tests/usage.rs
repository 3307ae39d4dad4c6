//! `vibes usage`: reports over the real transcripts of ../shared/fixtures/claude-projects
//! (stored through the library, as `vibes ingest claude-projects` will), and over
//! hand-built calls where the arithmetic must be exact.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{Value, json};
use tempfile::TempDir;
use vibes::config::{Config, FlagValues};
use vibes::producer::Producer;
use vibes::storage::Storage;
use vibes_events::{ApiCall, ApiUsage, Event, SessionStart};
use vibes_sources::transcript::{TranscriptFile, TranscriptReader};

mod common;

const PROJECTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/claude-projects"
);

const LIVECD: &str = "-home-ubuntu-Documents-livecd-gen/155c3456-9cd0-4d8f-8db3-d0560ca1851c.jsonl";
const SAMPLE: &str = "sample-project/fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl";
const SPOTTER: &str = "-home-dev-spotter/ae4a77f8-aedd-4bc1-888f-c94edc91af04.jsonl";
const SPOTTER_AGENT: &str =
    "-home-dev-spotter/ae4a77f8-aedd-4bc1-888f-c94edc91af04/subagents/agent-aac57f5.jsonl";
const SPOTTER_COMPACT: &str =
    "-home-dev-spotter/ae4a77f8-aedd-4bc1-888f-c94edc91af04/subagents/agent-acompact-946d2b.jsonl";

/// A data dir and a private home for one test.
struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("config.toml"), "").expect("config");
        Sandbox { dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Stores `events` in the data dir through the library, as an ingest command does.
    fn store(&self, events: &[Event]) {
        let mut flags = FlagValues::default();
        flags.set("data_dir", "--data-dir", self.data().display().to_string());
        let config =
            Config::load(Some(&self.path("config.toml")), |_| None, &flags).expect("config loads");
        let storage = Storage::open(config).expect("storage opens");
        let producer = Producer::open(&storage, Some("never")).expect("producer");
        for chunk in events.chunks(1000) {
            producer.append(chunk).expect("stored");
        }
        storage.close();
    }

    /// `vibes --config <empty> --data-dir <data> usage args...`
    fn usage(&self, args: &[&str]) -> Command {
        let mut cmd = common::vibes(&self.path("home"));
        cmd.arg("--config")
            .arg(self.path("config.toml"))
            .arg("--data-dir")
            .arg(self.data())
            .arg("usage")
            .args(args);
        Command::from_std(cmd)
    }

    /// The JSON report of `usage args... --json`.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.usage(&all).assert().success().get_output().clone();
        serde_json::from_slice(&out.stdout).expect("JSON report")
    }
}

fn projects() -> Option<PathBuf> {
    let dir = PathBuf::from(PROJECTS);
    if std::env::var_os("CI").is_some() {
        assert!(dir.is_dir(), "CI must have the fixtures at {PROJECTS}");
    }
    dir.is_dir().then_some(dir)
}

/// Every event of the transcript at `relative` under the projects dir.
fn transcript(dir: &Path, relative: &str) -> Vec<Event> {
    let path = dir.join(relative);
    let file = TranscriptFile::from_path(&path).expect("a projects layout path");
    let mut reader = TranscriptReader::new(file);
    let mut events = Vec::new();
    reader
        .read_from(std::fs::File::open(&path).expect("fixture"), |e| {
            events.push(e);
        })
        .expect("read");
    reader.finish(|e| events.push(e));
    events
}

fn session<'a>(report: &'a Value, id_prefix: &str) -> &'a Value {
    report["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["session_id"].as_str().unwrap().starts_with(id_prefix))
        .unwrap_or_else(|| panic!("no session {id_prefix} in {report:#}"))
}

fn tokens(input: u64, output: u64, cache_creation: u64, cache_read: u64) -> Value {
    json!({"input": input, "output": output, "cache_creation": cache_creation, "cache_read": cache_read})
}

fn ts(text: &str) -> jiff::Timestamp {
    text.parse().expect("a timestamp")
}

fn time(value: &Value) -> jiff::Timestamp {
    ts(value.as_str().expect("a time"))
}

fn cost(value: &Value) -> f64 {
    value["cost_usd"].as_f64().expect("a priced cost")
}

#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn fixture_sessions_give_the_facts_of_their_sources_md() {
    let Some(dir) = projects() else {
        eprintln!("skipping: fixtures not present at {PROJECTS}");
        return;
    };
    let sandbox = Sandbox::new();
    for file in [LIVECD, SAMPLE, SPOTTER_COMPACT, SPOTTER_AGENT, SPOTTER] {
        sandbox.store(&transcript(&dir, file));
    }
    let report = sandbox.json(&["session", "--timezone", "UTC"]);

    let livecd = session(&report, "155c3456");
    assert_eq!(livecd["api_calls"], 130);
    assert_eq!(livecd["tokens"], tokens(668, 26_855, 360_705, 7_374_640));
    assert_eq!(
        livecd["models"],
        json!(["claude-opus-4-1-20250805", "claude-sonnet-4-20250514"])
    );
    assert_eq!(livecd["project"], "/home/ubuntu/Documents/livecd-gen");
    // first/last are the first and last API call; SOURCES.md's span is over every
    // line, and its first line is the user's prompt, which is no call (its last line
    // is one).
    assert_eq!(time(&livecd["first"]), ts("2025-08-25T16:35:02.800Z"));
    assert_eq!(time(&livecd["last"]), ts("2025-08-25T17:05:36.149Z"));
    assert_eq!((cost(livecd) * 100.0).round() / 100.0, 7.34);

    let sample = session(&report, "fe5e1c67");
    assert_eq!(sample["api_calls"], 170);
    assert_eq!(sample["tokens"], tokens(818, 51_933, 137_976, 3_647_854));
    assert_eq!(sample["models"], json!(["claude-sonnet-4-20250514"]));
    assert_eq!((cost(sample) * 100.0).round() / 100.0, 2.39);
    assert_eq!(time(&sample["last"]), ts("2025-09-03T01:02:03.665Z"));

    // The 2.1 session: its own file and its two subagent files (same session id).
    let spotter = session(&report, "ae4a77f8");
    assert_eq!(spotter["api_calls"], 217 + 3 + 1);
    assert_eq!(
        spotter["tokens"],
        tokens(
            242 + 2_408 + 3,
            49_467 + 7 + 8,
            237_121 + 18_814 + 121_689,
            16_553_628 + 29_274 + 17_842
        )
    );
    assert_eq!(
        spotter["models"],
        json!([
            "claude-haiku-4-5-20251001",
            "claude-opus-4-6",
            "claude-sonnet-4-5-20250929"
        ])
    );
    // Each file's cost in SOURCES.md is rounded to cents: their sum is within 1.5 cents.
    assert!(
        (cost(spotter) - (5.32 + 0.09 + 0.77)).abs() < 0.015,
        "{}",
        cost(spotter)
    );
    let spotter_calls: Vec<jiff::Timestamp> = [SPOTTER, SPOTTER_AGENT, SPOTTER_COMPACT]
        .iter()
        .flat_map(|f| transcript(&dir, f))
        .filter(|e| e.event_type() == "claude.api_call")
        .map(|e| e.timestamp)
        .collect();
    assert_eq!(
        time(&spotter["first"]),
        *spotter_calls.iter().min().unwrap()
    );
    assert_eq!(time(&spotter["last"]), *spotter_calls.iter().max().unwrap());
    assert_eq!(
        spotter["project"],
        "/home/USER/projects/spotter-worktrees/spotter-4te"
    );
    // None of the 2.1 calls carried a stop reason: the output is a lower bound.
    assert_eq!(spotter["output_final"], false);
    assert_eq!(report["sessions"].as_array().unwrap().len(), 3);
}

// ---------------------------------------------------------------------------
// Hand-built calls

/// One copy of call `message` of `session`, at `at`, with `usage`.
fn copy(
    session: &str,
    message: &str,
    model: &str,
    at: &str,
    usage: ApiUsage,
    stop: Option<&str>,
) -> Event {
    let mut call = ApiCall::new(usage);
    call.message_id = Some(message.to_owned());
    call.request_id = Some(format!("req_{message}"));
    call.model = Some(model.to_owned());
    call.session_id = Some(session.to_owned());
    call.stop_reason = stop.map(str::to_owned);
    call.output_final = stop.is_some();
    let at: jiff::Timestamp = at.parse().unwrap();
    let id = vibes_events::EventId::derived(at, format!("{session}/{message}/{at}").as_bytes());
    Event::claude(call).with_id(id).with_timestamp(at)
}

fn start(session: &str, cwd: &str, at: &str) -> Event {
    let mut start = SessionStart::new("claude-sonnet-4-5-20250929", Vec::new());
    start.session_id = Some(session.to_owned());
    start.cwd = Some(cwd.to_owned());
    let at: jiff::Timestamp = at.parse().unwrap();
    let id = vibes_events::EventId::derived(at, format!("{session}/start").as_bytes());
    Event::claude(start).with_id(id).with_timestamp(at)
}

fn usage(input: u64, output: u64, w5m: u64, w1h: u64, read: u64) -> ApiUsage {
    ApiUsage::new(input, output, w5m, w1h, read)
}

#[test]
fn copies_of_one_call_in_two_files_count_once_with_the_largest_and_json_names_hold() {
    let sandbox = Sandbox::new();
    // The session's own file and a subagent's replay of the same call, stored
    // interleaved in two batches; the largest copy (output 900) arrives in the middle.
    let mut replay = copy(
        "s1",
        "msg_a",
        "claude-opus-4-6",
        "2026-01-05T10:00:03Z",
        usage(10, 900, 1_000, 0, 5_000),
        None,
    );
    if let vibes_events::EventData::ApiCall(call) = &mut replay.data {
        call.agent_id = Some("agent1".to_owned());
        call.is_sidechain = true;
    }
    sandbox.store(&[
        start("s1", "/home/dev/app", "2026-01-05T09:59:59Z"),
        copy(
            "s1",
            "msg_a",
            "claude-opus-4-6",
            "2026-01-05T10:00:01Z",
            usage(10, 5, 1_000, 0, 5_000),
            None,
        ),
        replay,
    ]);
    sandbox.store(&[
        copy(
            "s1",
            "msg_a",
            "claude-opus-4-6",
            "2026-01-05T10:00:02Z",
            usage(10, 300, 1_000, 0, 5_000),
            Some("end_turn"),
        ),
        copy(
            "s1",
            "msg_b",
            "claude-opus-4-6",
            "2026-01-05T10:05:00Z",
            usage(20, 40, 0, 2_000, 6_000),
            Some("tool_use"),
        ),
    ]);
    let report = sandbox.json(&["session", "--timezone", "UTC"]);
    let sessions = report["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    let s = &sessions[0];
    let mut keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "api_calls",
            "cost_usd",
            "first",
            "last",
            "models",
            "output_final",
            "project",
            "session_id",
            "tokens",
            "unpriced_models"
        ]
    );
    assert_eq!(s["session_id"], "s1");
    assert_eq!(s["project"], "/home/dev/app");
    assert_eq!(s["api_calls"], 2);
    assert_eq!(s["tokens"], tokens(30, 940, 3_000, 11_000));
    assert_eq!(s["first"], "2026-01-05T10:00:01Z");
    assert_eq!(s["last"], "2026-01-05T10:05:00Z");
    assert_eq!(s["models"], json!(["claude-opus-4-6"]));
    assert_eq!(
        s["output_final"], true,
        "a copy of each call had a stop reason"
    );
    // Opus 4.6: $5 in, $25 out, $6.25 5m write, $10 1h write, $0.50 read per MTok.
    let expected =
        (30.0 * 5.0 + 940.0 * 25.0 + 1_000.0 * 6.25 + 2_000.0 * 10.0 + 11_000.0 * 0.5) / 1e6;
    assert!(
        (cost(s) - expected).abs() < 1e-12,
        "{} vs {expected}",
        cost(s)
    );

    // Stored again (a re-ingest): nothing changes.
    sandbox.store(&[copy(
        "s1",
        "msg_a",
        "claude-opus-4-6",
        "2026-01-05T10:00:02Z",
        usage(10, 300, 1_000, 0, 5_000),
        Some("end_turn"),
    )]);
    let again = sandbox.json(&["session", "--timezone", "UTC"]);
    assert_eq!(again["sessions"], report["sessions"]);
}

#[test]
fn an_unpriced_model_shows_as_unpriced_never_as_zero_and_is_named() {
    let sandbox = Sandbox::new();
    sandbox.store(&[
        copy(
            "s1",
            "m1",
            "acme-model-9",
            "2026-01-05T10:00:00Z",
            usage(1, 2, 0, 0, 0),
            Some("end_turn"),
        ),
        copy(
            "s2",
            "m2",
            "claude-haiku-4-5-20251001",
            "2026-01-05T11:00:00Z",
            usage(1_000_000, 0, 0, 0, 0),
            Some("end_turn"),
        ),
    ]);
    let report = sandbox.json(&["session", "--timezone", "UTC"]);
    let s1 = session(&report, "s1");
    assert_eq!(s1["cost_usd"], Value::Null);
    assert_eq!(s1["unpriced_models"], json!(["acme-model-9"]));
    assert_eq!(cost(session(&report, "s2")), 1.0);
    // The total counts the priced call and names the unpriced model.
    assert_eq!(report["totals"]["cost_usd"], 1.0);
    assert_eq!(report["totals"]["unpriced_models"], json!(["acme-model-9"]));

    let out = sandbox
        .usage(&["daily", "--timezone", "UTC"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("≥$1.00"), "{text}");
    assert!(!text.contains("$0.00"), "{text}");
    assert!(
        text.contains("unpriced: acme-model-9 (1 calls) has no price"),
        "{text}"
    );
    // A price file gives it a price; a broken one is named with its line.
    std::fs::write(
        sandbox.path("prices.toml"),
        "version = \"test\"\n[models.acme-model-9]\ninput = 1.0\noutput = 1.0\ncache_write_5m = 0.0\ncache_write_1h = 0.0\ncache_read = 0.0\n",
    )
    .unwrap();
    let prices = sandbox.path("prices.toml");
    let priced = sandbox.json(&["session", "--prices", prices.to_str().unwrap()]);
    assert_eq!(cost(session(&priced, "s1")), 3.0 / 1e6);
    assert_eq!(
        priced["prices"],
        format!("2026-03-13 + {} (test)", prices.display())
    );
    std::fs::write(
        sandbox.path("bad.toml"),
        "version = \"test\"\n\n[models.acme-model-9]\ninput = \"free\"\n",
    )
    .unwrap();
    let bad = sandbox.path("bad.toml");
    let out = sandbox
        .usage(&["daily", "--prices", bad.to_str().unwrap()])
        .assert()
        .code(2);
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains(&format!("{}:4:", bad.display())),
        "{stderr}"
    );
}

#[test]
fn periods_follow_the_time_zone_and_filters_pick_days_and_projects() {
    let sandbox = Sandbox::new();
    sandbox.store(&[
        start("s1", "/home/dev/app", "2026-01-31T22:00:00Z"),
        start("s2", "/srv/other", "2026-02-01T00:00:00Z"),
        // 23:30 UTC on Saturday 31 January is 08:30 on Sunday 1 February in Tokyo.
        copy(
            "s1",
            "m1",
            "claude-opus-4-6",
            "2026-01-31T23:30:00Z",
            usage(100, 10, 0, 0, 0),
            Some("end_turn"),
        ),
        copy(
            "s2",
            "m2",
            "claude-opus-4-6",
            "2026-02-02T12:00:00Z",
            usage(200, 20, 0, 0, 0),
            Some("end_turn"),
        ),
    ]);
    let days = |tz: &str| -> Vec<(String, u64)> {
        sandbox.json(&["daily", "--timezone", tz])["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["period"].as_str().unwrap().to_owned(),
                    r["api_calls"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        days("UTC"),
        [("2026-01-31".to_owned(), 1), ("2026-02-02".to_owned(), 1)]
    );
    assert_eq!(
        days("Asia/Tokyo"),
        [("2026-02-01".to_owned(), 1), ("2026-02-02".to_owned(), 1)]
    );
    assert_eq!(days("+09:00"), days("Asia/Tokyo"));
    let months = sandbox.json(&["monthly", "--timezone", "UTC"]);
    assert_eq!(months["rows"][0]["period"], "2026-01");
    assert_eq!(months["rows"][1]["period"], "2026-02");
    let months = sandbox.json(&["monthly", "--timezone", "Asia/Tokyo"]);
    assert_eq!(months["rows"].as_array().unwrap().len(), 1);
    assert_eq!(months["rows"][0]["api_calls"], 2);
    // Weeks from Monday: Saturday 31 Jan is in the week of 26 Jan (UTC), Sunday 1 Feb
    // (Tokyo) too, Monday 2 Feb starts the next.
    let weeks = sandbox.json(&["weekly", "--timezone", "Asia/Tokyo"]);
    assert_eq!(weeks["rows"][0]["period"], "2026-01-26");
    assert_eq!(weeks["rows"][1]["period"], "2026-02-02");

    // --since/--until are days in the time zone, both included.
    let since = sandbox.json(&[
        "daily",
        "--timezone",
        "Asia/Tokyo",
        "--since",
        "20260201",
        "--until",
        "2026-02-01",
    ]);
    assert_eq!(since["totals"]["api_calls"], 1);
    assert_eq!(since["rows"][0]["period"], "2026-02-01");
    let since = sandbox.json(&["daily", "--timezone", "UTC", "--since", "2026-02-01"]);
    assert_eq!(since["totals"]["tokens"]["input"], 200);
    // --project by path, last component, or Claude Code's folder name.
    for p in ["/home/dev/app", "app", "-home-dev-app"] {
        let only = sandbox.json(&["session", "--project", p]);
        assert_eq!(only["sessions"].as_array().unwrap().len(), 1, "{p}");
        assert_eq!(only["sessions"][0]["session_id"], "s1", "{p}");
    }
    assert_eq!(
        sandbox.json(&["session", "--project", "nope"])["sessions"],
        json!([])
    );
    sandbox
        .usage(&["daily", "--timezone", "Mars/Olympus"])
        .assert()
        .code(2);
}

#[test]
fn blocks_split_on_five_hours_and_the_active_one_burns_at_the_given_now() {
    let sandbox = Sandbox::new();
    sandbox.store(&[
        copy(
            "s1",
            "m1",
            "claude-opus-4-6",
            "2026-03-01T08:20:00Z",
            usage(1_000, 200, 0, 0, 0),
            Some("end_turn"),
        ),
        copy(
            "s1",
            "m2",
            "claude-opus-4-6",
            "2026-03-01T09:20:00Z",
            usage(2_000, 400, 0, 0, 0),
            Some("end_turn"),
        ),
        // Six hours later: a gap, then a block from 15:00.
        copy(
            "s1",
            "m3",
            "claude-opus-4-6",
            "2026-03-01T15:30:00Z",
            usage(1_000, 200, 0, 0, 0),
            Some("end_turn"),
        ),
        copy(
            "s1",
            "m4",
            "claude-opus-4-6",
            "2026-03-01T16:30:00Z",
            usage(1_000, 200, 0, 0, 0),
            Some("end_turn"),
        ),
    ]);
    let report = sandbox.json(&[
        "blocks",
        "--timezone",
        "UTC",
        "--now",
        "2026-03-01T17:00:00Z",
    ]);
    let blocks = report["blocks"].as_array().unwrap();
    let shape: Vec<(&str, bool, bool, u64)> = blocks
        .iter()
        .map(|b| {
            (
                b["start"].as_str().unwrap(),
                b["gap"].as_bool().unwrap(),
                b["active"].as_bool().unwrap(),
                b["api_calls"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("2026-03-01T08:00:00Z", false, false, 2),
            ("2026-03-01T14:20:00Z", true, false, 0),
            ("2026-03-01T15:00:00Z", false, true, 2),
        ]
    );
    let active = &blocks[2];
    assert_eq!(active["end"], "2026-03-01T20:00:00Z");
    // 2,400 input and output tokens over the 60 minutes between its calls.
    assert_eq!(active["burn_rate"]["tokens_per_minute"], 40.0);
    let cost_so_far = cost(active);
    assert!((cost_so_far - (2_000.0 * 5.0 + 400.0 * 25.0) / 1e6).abs() < 1e-12);
    let per_hour = active["burn_rate"]["cost_per_hour"].as_f64().unwrap();
    assert!((per_hour - cost_so_far).abs() < 1e-12);
    assert_eq!(active["projection"]["remaining_minutes"], 180.0);
    assert_eq!(active["projection"]["tokens"], 2_400.0 + 40.0 * 180.0);
    let projected = active["projection"]["cost_usd"].as_f64().unwrap();
    assert!((projected - cost_so_far * 4.0).abs() < 1e-12);
    assert_eq!(blocks[0]["burn_rate"], Value::Null);
    // Judged at another time, nothing is active.
    let later = sandbox.json(&["blocks", "--now", "2026-03-02T00:00:00Z"]);
    assert!(
        later["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["active"] == false)
    );
    // The text report shows the burn line.
    let out = sandbox
        .usage(&[
            "blocks",
            "--timezone",
            "UTC",
            "--now",
            "2026-03-01T17:00:00Z",
        ])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("active, 3h 00m left"), "{text}");
    assert!(text.contains("burn 40 tokens/min"), "{text}");
}
