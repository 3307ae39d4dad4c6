//! The coder events of the real Claude Code transcripts in
//! `../shared/fixtures/claude-projects` and the stream-json recordings in
//! `../shared/fixtures/claude-stream` (skipped with a note when they are absent). The
//! API call, tool call and error counts are the facts of their SOURCES.md; the file
//! and sync counts were computed from the raw lines (successful tool results of Write,
//! Edit and MultiEdit, and of Bash commands running `git commit`/`git push`).

mod common;

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use common::{json_of, of_type};
use serde_json::Value;
use vibes_events::Event;
use vibes_plugin::QueryArgs;
use vibes_plugin::testing::{Outcome, run};
use vibes_plugin_ai_coder::AiCoder;
use vibes_sources::claude::ClaudeParser;
use vibes_sources::transcript::{TranscriptFile, TranscriptReader};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures");

fn fixture(rel: &str) -> Option<PathBuf> {
    let path = PathBuf::from(FIXTURES).join(rel);
    if path.is_file() {
        Some(path)
    } else {
        eprintln!("skipped: {} is absent", path.display());
        None
    }
}

fn transcript(path: &Path) -> Vec<Event> {
    let file = TranscriptFile::from_path(path).expect("a projects layout path");
    let mut reader = TranscriptReader::new(file);
    let mut events = Vec::new();
    reader.feed(&std::fs::read(path).unwrap(), |e| events.push(e));
    reader.finish(|e| events.push(e));
    assert!(reader.summary().malformed.is_empty());
    events
}

/// The main file, then its subagent files, as `vibes ingest claude-projects` stores them.
fn session(rels: &[&str]) -> Option<Vec<Event>> {
    let mut events = Vec::new();
    for rel in rels {
        events.extend(transcript(&fixture(&format!("claude-projects/{rel}"))?));
    }
    Some(events)
}

struct Facts {
    calls: u64,
    tool_uses: u64,
    tool_errors: u64,
    created: usize,
    modified: usize,
    syncs: usize,
    rate_limits: usize,
}

fn sum(coders: &[Value], key: &str) -> u64 {
    coders.iter().map(|c| c[key].as_u64().unwrap()).sum()
}

fn check(out: &Outcome, facts: &Facts, what: &str) -> Vec<Value> {
    assert!(
        out.dead_letters().is_empty(),
        "{what}: {:?}",
        out.dead_letters()
    );
    let coders = out
        .query("coders", &QueryArgs::new().with("all", "true"))
        .unwrap()["coders"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(sum(&coders, "api_calls"), facts.calls, "{what}: calls");
    // Each call is reported once; a call still pending (the file ends inside it: no
    // session end in a transcript) is counted, not yet reported.
    let pending = coders.iter().filter(|c| c["pending_call"] == true).count() as u64;
    let reported = of_type(out, "events", "ai_coder.api_call").len() as u64;
    assert_eq!(reported + pending, facts.calls, "{what}: reported calls");
    assert_eq!(
        sum(&coders, "late_copies"),
        0,
        "{what}: every copy joined its call"
    );
    assert_eq!(
        sum(&coders, "tool_calls"),
        facts.tool_uses,
        "{what}: tool calls"
    );
    assert_eq!(
        sum(&coders, "tool_errors"),
        facts.tool_errors,
        "{what}: tool errors"
    );
    assert_eq!(
        of_type(out, "events", "ai_coder.file_created").len(),
        facts.created,
        "{what}"
    );
    assert_eq!(
        of_type(out, "events", "ai_coder.file_modified").len(),
        facts.modified,
        "{what}"
    );
    assert_eq!(
        of_type(out, "events", "ai_coder.workspace_sync").len(),
        facts.syncs,
        "{what}"
    );
    assert_eq!(
        of_type(out, "events", "ai_coder.rate_limit").len(),
        facts.rate_limits,
        "{what}"
    );
    assert_eq!(
        of_type(out, "alerts", "ai_coder.system_warning").len(),
        facts.rate_limits,
        "{what}: one warning per limit"
    );
    // None of these transcripts has an API error.
    assert!(
        of_type(out, "events", "ai_coder.api_error").is_empty(),
        "{what}"
    );
    coders
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_1_0_90_session_with_its_usage_limit_and_side_chain() {
    let Some(events) =
        session(&["-home-ubuntu-Documents-livecd-gen/155c3456-9cd0-4d8f-8db3-d0560ca1851c.jsonl"])
    else {
        return;
    };
    let out = run(Box::new(AiCoder::new()), &events).await.unwrap();
    let facts = Facts {
        calls: 130,
        tool_uses: 119,
        tool_errors: 5,
        created: 0,
        modified: 14,
        syncs: 6,
        rate_limits: 1,
    };
    let coders = check(&out, &facts, "155c3456");
    let ids: Vec<&str> = coders
        .iter()
        .map(|c| c["coder_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "155c3456-9cd0-4d8f-8db3-d0560ca1851c",
            "155c3456-9cd0-4d8f-8db3-d0560ca1851c/sidechain"
        ]
    );
    let main = &coders[0];
    assert_eq!(main["coder_name"], "livecd-gen");
    // Created with its first event (the file's first lines carry none).
    assert_eq!(
        main["created"],
        serde_json::to_value(events[0].timestamp).unwrap()
    );
    assert_eq!(main["children"], 1);
    // The limit warning at 16:42:45.467Z (Opus -> Sonnet); then Sonnet answers.
    let limit = &of_type(&out, "events", "ai_coder.rate_limit")[0];
    assert_eq!(limit["timestamp"], "2025-08-25T16:42:45.467Z");
    assert_eq!(main["model"], "claude-sonnet-4-20250514");
    // One user interrupt: paused, and resumed by what came after it.
    assert_eq!(of_type(&out, "events", "ai_coder.paused").len(), 1);
    assert_eq!(of_type(&out, "events", "ai_coder.resumed").len(), 1);
    let syncs: Vec<String> = of_type(&out, "events", "ai_coder.workspace_sync")
        .iter()
        .map(|e| e["operation"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(syncs.iter().filter(|s| *s == "git commit").count(), 3);
    assert_eq!(syncs.iter().filter(|s| *s == "git push").count(), 3);
    // TodoWrite progress (21 calls) and milestones.
    let progress = of_type(&out, "events", "ai_coder.progress");
    assert_eq!(progress.iter().filter(|p| p["stage"] == "todo").count(), 21);
    assert!(!of_type(&out, "events", "ai_coder.milestone").is_empty());
    // Tokens of the calls, counted once with their largest copy (SOURCES.md).
    let tokens: u64 = coders
        .iter()
        .map(|c| c["tokens"]["output"].as_u64().unwrap())
        .sum();
    assert_eq!(tokens, 26_855);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_2_1_session_with_its_subagent_and_compaction_files() {
    let dir = "-home-dev-spotter/ae4a77f8-aedd-4bc1-888f-c94edc91af04";
    let Some(events) = session(&[
        &format!("{dir}.jsonl"),
        &format!("{dir}/subagents/agent-aac57f5.jsonl"),
        &format!("{dir}/subagents/agent-acompact-946d2b.jsonl"),
    ]) else {
        return;
    };
    let out = run(Box::new(AiCoder::new()), &events).await.unwrap();
    let facts = Facts {
        calls: 217 + 3 + 1,
        tool_uses: 242 + 12,
        tool_errors: 12,
        created: 6,
        modified: 65,
        syncs: 6,
        rate_limits: 0,
    };
    let coders = check(&out, &facts, "ae4a77f8");
    let by_id = |id: &str| coders.iter().find(|c| c["coder_id"] == id).unwrap();
    let main = by_id("ae4a77f8-aedd-4bc1-888f-c94edc91af04");
    assert_eq!(main["api_calls"], 217);
    assert_eq!(
        main["tokens"]["output"], 49_467,
        "the largest copies, not the first"
    );
    assert_eq!(main["turns"], 2, "two turn_duration lines");
    let agent = by_id("ae4a77f8-aedd-4bc1-888f-c94edc91af04/aac57f5");
    assert_eq!(agent["api_calls"], 3);
    assert_eq!(agent["tool_calls"], 12);
    assert_eq!(agent["model"], "claude-sonnet-4-5-20250929");
    assert_eq!(agent["parent"], "ae4a77f8-aedd-4bc1-888f-c94edc91af04");
    let compact = by_id("ae4a77f8-aedd-4bc1-888f-c94edc91af04/acompact-946d2b");
    assert_eq!(compact["api_calls"], 1);
    assert_eq!(compact["tokens"]["cache_write"], 121_689);
    let created: Vec<Value> = of_type(&out, "events", "ai_coder.file_created");
    assert!(created.iter().all(|e| e["file_size"].as_u64().unwrap() > 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_1_0_98_session_whose_subagents_write_the_files() {
    let Some(events) = session(&["sample-project/fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl"])
    else {
        return;
    };
    let out = run(Box::new(AiCoder::new()), &events).await.unwrap();
    let facts = Facts {
        calls: 170,
        tool_uses: 167,
        tool_errors: 23,
        created: 25,
        modified: 6,
        syncs: 0,
        rate_limits: 0,
    };
    let coders = check(&out, &facts, "fe5e1c67");
    let side = coders
        .iter()
        .find(|c| c["coder_id"].as_str().unwrap().ends_with("/sidechain"))
        .unwrap();
    assert_eq!(
        side["api_calls"], 161,
        "161 of the calls are on the side chain"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_json_session_ends_completed_with_its_own_counts() {
    let Some(path) = fixture("claude-stream/presmihaylov-ccagent__claude_response1.jsonl") else {
        return;
    };
    let mut events = Vec::new();
    ClaudeParser::new()
        .parse_reader(BufReader::new(File::open(&path).unwrap()), |e| {
            events.push(e)
        })
        .unwrap();
    let out = run(Box::new(AiCoder::new()), &events).await.unwrap();
    assert!(out.dead_letters().is_empty());
    let coders = out
        .query("coders", &QueryArgs::new().with("all", "true"))
        .unwrap()["coders"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(coders.len(), 1);
    let coder = &coders[0];
    // SOURCES.md: 53 tool_use blocks, 7 failing results, 33 text blocks, num_turns 139.
    assert_eq!(coder["status"], "completed");
    assert_eq!(coder["tool_calls"], 53);
    assert_eq!(coder["tool_errors"], 7);
    assert_eq!(coder["turns"], 139);
    assert_eq!(coder["cost_source"], "reported");
    assert!((coder["cost_usd"].as_f64().unwrap() - 2.46).abs() < 0.01);
    assert_eq!(of_type(&out, "events", "ai_coder.output").len(), 33);
    let metrics = of_type(&out, "alerts", "ai_coder.completion_metrics");
    assert_eq!(metrics.len(), 1);
    assert_eq!(
        json_of(&out, "events").last().unwrap()["type"],
        "ai_coder.completed"
    );
}
