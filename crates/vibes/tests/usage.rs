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

const BIN: &str = env!("CARGO_BIN_EXE_vibes");
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
        let mut cmd = std::process::Command::new(BIN);
        cmd.env_clear()
            .env("HOME", self.path("home"))
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .arg("--config")
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
