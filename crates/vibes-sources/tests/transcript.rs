//! Tests of the transcript reader and the call tally: over the real transcripts in
//! `../shared/fixtures/claude-projects` (ignored without them: `cfg(fixtures)`,
//! build/fixtures_cfg.rs; their facts are listed in the
//! SOURCES.md there) and over inputs built here.
//!
//! Why one file over 900 lines: the fixture tests and the built inputs check one
//! reader with the same line builders and event helpers defined here; each fixture's
//! facts are a test, as SOURCES.md lists them.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use vibes_events::{ApiCall, ApiUsage, Event, EventData, Timestamp};
use vibes_sources::calls::{ApiCalls, CallTotals};
use vibes_sources::transcript::{
    TranscriptFile, TranscriptReader, TranscriptSummary, limit_warning,
};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/claude-projects"
);

fn fixtures_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(FIXTURES);
    dir.is_dir().then_some(dir)
}

const SPOTTER: &str = "-home-dev-spotter";
const SPOTTER_SESSION: &str = "ae4a77f8-aedd-4bc1-888f-c94edc91af04";

fn ts(s: &str) -> Timestamp {
    s.parse().expect("valid timestamp")
}

/// Reads a whole file in 4 KiB chunks (so lines span reads) and finishes it.
fn read_file(path: &Path) -> (Vec<Event>, TranscriptSummary) {
    let file = TranscriptFile::from_path(path).expect("a projects layout path");
    let bytes = std::fs::read(path).expect("read fixture");
    let mut reader = TranscriptReader::new(file);
    let mut events = Vec::new();
    for chunk in bytes.chunks(4096) {
        reader.feed(chunk, |e| events.push(e));
    }
    assert_eq!(
        reader.pending_bytes(),
        0,
        "fixture files end with a newline"
    );
    reader.finish(|e| events.push(e));
    assert_eq!(reader.checkpoint().offset, bytes.len() as u64);
    (events, reader.summary().clone())
}

fn read_bytes(file: TranscriptFile, bytes: &[u8]) -> (Vec<Event>, TranscriptSummary) {
    let mut reader = TranscriptReader::new(file);
    let mut events = Vec::new();
    reader.feed(bytes, |e| events.push(e));
    reader.finish(|e| events.push(e));
    (events, reader.summary().clone())
}

fn tally(events: &[Event]) -> ApiCalls {
    let mut calls = ApiCalls::new();
    for event in events {
        calls.add(event);
    }
    calls
}

fn of_type<'a>(events: &'a [Event], ty: &str) -> Vec<&'a Event> {
    events.iter().filter(|e| e.event_type() == ty).collect()
}

fn tokens(t: &CallTotals) -> (u64, u64, u64, u64) {
    (
        t.input_tokens,
        t.output_tokens,
        t.cache_creation_input_tokens(),
        t.cache_read_input_tokens,
    )
}

fn models(calls: &ApiCalls) -> BTreeMap<String, u64> {
    calls
        .by_model()
        .into_iter()
        .map(|(m, t)| (m, t.calls))
        .collect()
}

fn tool_errors(events: &[Event]) -> u64 {
    events
        .iter()
        .filter(|e| matches!(&e.data, EventData::ToolResult(r) if r.is_error))
        .count() as u64
}

/// Tool calls without a result in the same events.
fn unanswered(events: &[Event]) -> usize {
    let results: HashSet<&str> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::ToolResult(r) => Some(r.tool_id.as_str()),
            _ => None,
        })
        .collect();
    events
        .iter()
        .filter(
            |e| matches!(&e.data, EventData::ToolUse(t) if !results.contains(t.tool_id.as_str())),
        )
        .count()
}

/// Every event has a distinct id, the file's session as partition key, and source claude.
fn assert_ids_and_sessions(events: &[Event], session: &str) {
    let ids: HashSet<_> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), events.len(), "every event has its own id");
    for event in events {
        assert_eq!(
            event.partition_key(),
            Some(session),
            "{}",
            event.event_type()
        );
        assert_eq!(event.source, "claude");
        assert_eq!(
            event.id.as_u128() >> 80,
            event.timestamp.as_millisecond() as u128,
            "id time bits are the line's timestamp"
        );
    }
}

/// Facts SOURCES.md lists for one file.
struct Facts {
    lines: u64,
    calls: u64,
    tokens: (u64, u64, u64, u64),
    tool_uses: u64,
    tool_errors: u64,
    first: &'static str,
    last: &'static str,
    models: &'static [(&'static str, u64)],
}

fn check_facts(path: &Path, facts: &Facts) -> (Vec<Event>, TranscriptSummary, ApiCalls) {
    let (events, summary) = read_file(path);
    let calls = tally(&events);
    let totals = calls.totals();
    let name = path.display();
    assert_eq!(summary.lines, facts.lines, "{name}: lines");
    assert!(
        summary.malformed.is_empty(),
        "{name}: {:?}",
        summary.malformed
    );
    assert!(summary.unknown.is_empty(), "{name}: {:?}", summary.unknown);
    assert_eq!(totals.calls, facts.calls, "{name}: API calls");
    assert_eq!(tokens(&totals), facts.tokens, "{name}: tokens");
    assert_eq!(
        totals.cache_creation_1h_input_tokens, 0,
        "{name}: all cache writes here are 5-minute writes"
    );
    assert_eq!(summary.tool_uses, facts.tool_uses, "{name}: tool_use");
    assert_eq!(
        of_type(&events, "claude.tool_use").len() as u64,
        facts.tool_uses
    );
    assert_eq!(tool_errors(&events), facts.tool_errors, "{name}: is_error");
    assert_eq!(summary.tool_errors, facts.tool_errors);
    assert_eq!(
        summary.first_timestamp,
        Some(ts(facts.first)),
        "{name}: first"
    );
    assert_eq!(summary.last_timestamp, Some(ts(facts.last)), "{name}: last");
    assert_eq!(summary.min_timestamp, Some(ts(facts.first)));
    assert_eq!(summary.max_timestamp, Some(ts(facts.last)));
    let expected: BTreeMap<String, u64> = facts
        .models
        .iter()
        .map(|(m, n)| ((*m).to_owned(), *n))
        .collect();
    assert_eq!(models(&calls), expected, "{name}: models");
    (events, summary, calls)
}

macro_rules! fixtures_or_skip {
    () => {
        match fixtures_dir() {
            Some(dir) => dir,
            None => {
                eprintln!("skipping: fixtures not present at {FIXTURES}");
                return;
            }
        }
    };
}

// ---------------------------------------------------------------------------
// Real transcripts

#[test]
fn fixtures_dir_resolves_to_shared_fixtures() {
    if let Ok(path) = PathBuf::from(FIXTURES).canonicalize() {
        assert!(
            path.ends_with("shared/fixtures/claude-projects"),
            "{}",
            path.display()
        );
    }
    if std::env::var_os("CI").is_some() {
        assert!(
            fixtures_dir().is_some(),
            "CI must have the fixtures at {FIXTURES}"
        );
    }
}

#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn fixture_1_0_90_session_with_a_model_fallback() {
    let dir = fixtures_or_skip!();
    let path = dir
        .join("-home-ubuntu-Documents-livecd-gen")
        .join("155c3456-9cd0-4d8f-8db3-d0560ca1851c.jsonl");
    let (events, summary, calls) = check_facts(
        &path,
        &Facts {
            lines: 354,
            calls: 130,
            tokens: (668, 26_855, 360_705, 7_374_640),
            tool_uses: 119,
            tool_errors: 5,
            first: "2025-08-25T16:33:38.974Z",
            last: "2025-08-25T17:05:36.149Z",
            models: &[
                ("claude-opus-4-1-20250805", 37),
                ("claude-sonnet-4-20250514", 93),
            ],
        },
    );
    assert_ids_and_sessions(&events, "155c3456-9cd0-4d8f-8db3-d0560ca1851c");
    assert_eq!(unanswered(&events), 1, "one tool_use without result");
    assert_eq!(summary.sidechain_lines, 10);
    assert_eq!(summary.skipped.get("summary"), Some(&8));

    let limits = of_type(&events, "claude.rate_limit");
    assert_eq!(limits.len(), 1, "one limit warning");
    assert_eq!(limits[0].timestamp, ts("2025-08-25T16:42:45.467Z"));
    let EventData::RateLimit(limit) = &limits[0].data else {
        unreachable!()
    };
    assert_eq!(limit.status, "fallback");
    assert_eq!(limit.fallback_model.as_deref(), Some("Sonnet 4"));
    assert_eq!(
        limit.message.as_deref(),
        Some("Claude Opus limit reached, now using Sonnet 4")
    );
    // The model does change after the warning.
    let after: HashSet<_> = calls
        .calls()
        .filter(|c| c.first_seen > limits[0].timestamp)
        .filter_map(|c| c.model.as_deref())
        .collect();
    assert_eq!(after, HashSet::from(["claude-sonnet-4-20250514"]));

    let interrupts = of_type(&events, "claude.interrupt");
    assert_eq!(interrupts.len(), 1, "one user interrupt");
    assert_eq!(interrupts[0].timestamp, ts("2025-08-25T16:58:38.465Z"));

    let starts = of_type(&events, "session.start");
    assert_eq!(starts.len(), 1);
    let EventData::SessionStart(start) = &starts[0].data else {
        unreachable!()
    };
    assert_eq!(start.model, "claude-opus-4-1-20250805");
    assert_eq!(start.claude_code_version.as_deref(), Some("1.0.90"));
    assert!(of_type(&events, "session.compact").is_empty());
}

#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn fixture_1_0_98_session_with_sidechains() {
    let dir = fixtures_or_skip!();
    let path = dir
        .join("sample-project")
        .join("fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl");
    let (events, summary, calls) = check_facts(
        &path,
        &Facts {
            lines: 438,
            calls: 170,
            tokens: (818, 51_933, 137_976, 3_647_854),
            tool_uses: 167,
            tool_errors: 23,
            first: "2025-09-03T00:52:31.217Z",
            last: "2025-09-03T01:02:03.665Z",
            models: &[("claude-sonnet-4-20250514", 170)],
        },
    );
    assert_ids_and_sessions(&events, "fe5e1c67-53e7-4862-81ae-d0e013e3270b");
    assert_eq!(summary.sidechain_lines, 405);
    assert_eq!(
        calls.sidechain_totals().calls,
        161,
        "161 calls on side chains"
    );
    assert!(of_type(&events, "claude.rate_limit").is_empty());
}

#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn fixture_2_1_session_with_compaction_and_subagents() {
    let dir = fixtures_or_skip!();
    let main = dir.join(SPOTTER).join(format!("{SPOTTER_SESSION}.jsonl"));
    let (events, summary, calls) = check_facts(
        &main,
        &Facts {
            lines: 2_385,
            calls: 217,
            tokens: (242, 49_467, 237_121, 16_553_628),
            tool_uses: 242,
            tool_errors: 12,
            first: "2026-02-12T14:11:56.103Z",
            last: "2026-02-12T15:05:00.730Z",
            models: &[("claude-haiku-4-5-20251001", 133), ("claude-opus-4-6", 84)],
        },
    );
    assert_ids_and_sessions(&events, SPOTTER_SESSION);
    assert_eq!(summary.backwards_timestamps, 231);
    let progress: u64 = summary
        .skipped
        .iter()
        .filter(|(k, _)| k.starts_with("progress/"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(progress, 1_697, "progress lines are counted, not mapped");
    assert_eq!(
        calls.totals().not_final,
        217,
        "no copy in this file has a stop reason"
    );
    assert!(calls.totals().is_lower_bound());

    // Keeping the first copy instead of the largest under-counts output.
    let mut first_copy: BTreeMap<(String, String), u64> = BTreeMap::new();
    for event in &events {
        if let EventData::ApiCall(c) = &event.data {
            first_copy
                .entry((c.message_id.clone().unwrap(), c.request_id.clone().unwrap()))
                .or_insert(c.usage.output_tokens);
        }
    }
    assert_eq!(first_copy.values().sum::<u64>(), 9_935);

    // Compaction: one compact_boundary plus its isCompactSummary line are one event.
    let compacts = of_type(&events, "session.compact");
    assert_eq!(compacts.len(), 1);
    let EventData::SessionCompact(compact) = &compacts[0].data else {
        unreachable!()
    };
    assert_eq!(compact.trigger.as_deref(), Some("manual"));
    assert_eq!(compact.pre_tokens, Some(142_431));
    assert_eq!(compacts[0].timestamp, ts("2026-02-12T14:48:36.922Z"));
    assert_eq!(summary.skipped.get("user/compact_summary"), Some(&1));

    let turns: Vec<u64> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::TurnDuration(t) => Some(t.duration_ms),
            _ => None,
        })
        .collect();
    assert_eq!(turns, [1_341_830, 790_696]);
}

#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn fixture_2_1_subagent_files() {
    let dir = fixtures_or_skip!();
    let subagents = dir.join(SPOTTER).join(SPOTTER_SESSION).join("subagents");
    let (events, summary, calls) = check_facts(
        &subagents.join("agent-aac57f5.jsonl"),
        &Facts {
            lines: 40,
            calls: 3,
            tokens: (2_408, 7, 18_814, 29_274),
            tool_uses: 12,
            tool_errors: 0,
            first: "2026-02-12T14:12:32.522Z",
            last: "2026-02-12T14:13:05.048Z",
            models: &[("claude-sonnet-4-5-20250929", 3)],
        },
    );
    assert_ids_and_sessions(&events, SPOTTER_SESSION);
    assert_eq!(summary.sidechain_lines, 40);
    assert!(
        of_type(&events, "session.start").is_empty(),
        "a subagent file starts no session"
    );
    for call in calls.calls() {
        assert_eq!(call.agent_id.as_deref(), Some("aac57f5"));
        assert!(call.is_sidechain);
    }
    for event in of_type(&events, "claude.tool_use") {
        assert_eq!(event.extra["agent_id"], json!("aac57f5"));
    }

    let (events, _, calls) = check_facts(
        &subagents.join("agent-acompact-946d2b.jsonl"),
        &Facts {
            lines: 2,
            calls: 1,
            tokens: (3, 8, 121_689, 17_842),
            tool_uses: 0,
            tool_errors: 0,
            first: "2026-02-12T14:47:09.231Z",
            last: "2026-02-12T14:48:36.518Z",
            models: &[("claude-opus-4-6", 1)],
        },
    );
    assert_ids_and_sessions(&events, SPOTTER_SESSION);
    assert_eq!(
        calls.calls().next().unwrap().agent_id.as_deref(),
        Some("acompact-946d2b")
    );
}

#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn fixture_2_1_session_and_subagents_counted_together() {
    let dir = fixtures_or_skip!();
    let session = dir.join(SPOTTER);
    let paths = [
        session.join(format!("{SPOTTER_SESSION}.jsonl")),
        session
            .join(SPOTTER_SESSION)
            .join("subagents/agent-aac57f5.jsonl"),
        session
            .join(SPOTTER_SESSION)
            .join("subagents/agent-acompact-946d2b.jsonl"),
    ];
    let mut calls = ApiCalls::new();
    let mut all = Vec::new();
    for path in &paths {
        let (events, _) = read_file(path);
        for event in &events {
            calls.add(event);
        }
        all.extend(events);
    }
    let totals = calls.totals();
    assert_eq!(totals.calls, 217 + 3 + 1);
    assert_eq!(
        tokens(&totals),
        (
            242 + 2_408 + 3,
            49_467 + 7 + 8,
            237_121 + 18_814 + 121_689,
            16_553_628 + 29_274 + 17_842
        )
    );
    let ids: HashSet<_> = all.iter().map(|e| e.id).collect();
    assert_eq!(
        ids.len(),
        all.len(),
        "ids are distinct across the three files"
    );
    // Re-adding every file (a re-delivery) changes nothing.
    for event in &all {
        calls.add(event);
    }
    assert_eq!(calls.totals(), totals);
}

#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn fixtures_read_twice_give_identical_events() {
    let dir = fixtures_or_skip!();
    let path = dir
        .join("-home-ubuntu-Documents-livecd-gen")
        .join("155c3456-9cd0-4d8f-8db3-d0560ca1851c.jsonl");
    let (first, _) = read_file(&path);
    let (second, _) = read_file(&path);
    assert_eq!(first, second);
}

#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn fixture_resumed_at_every_line_gives_the_rest_with_the_same_ids() {
    let dir = fixtures_or_skip!();
    for path in [
        dir.join(SPOTTER)
            .join(SPOTTER_SESSION)
            .join("subagents/agent-aac57f5.jsonl"),
        dir.join("sample-project")
            .join("fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl"),
    ] {
        let bytes = std::fs::read(&path).unwrap();
        let file = TranscriptFile::from_path(&path).unwrap();
        let (full, _) = read_bytes(file.clone(), &bytes);
        let ends: Vec<usize> = bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i + 1)
            .collect();
        for &end in ends.iter().step_by(3) {
            let mut first = TranscriptReader::new(file.clone());
            let mut before = Vec::new();
            first.feed(&bytes[..end], |e| before.push(e));
            let checkpoint = first.checkpoint().clone();
            assert_eq!(checkpoint.offset, end as u64);

            let mut resumed = TranscriptReader::resume(file.clone(), checkpoint);
            let mut after = Vec::new();
            resumed.feed(&bytes[end..], |e| after.push(e));
            let key = |e: &Event| (e.id, e.event_type().to_owned(), e.timestamp);
            let expected: Vec<_> = full[before.len()..].iter().map(key).collect();
            let got: Vec<_> = after.iter().map(key).collect();
            assert_eq!(got, expected, "{} resumed at byte {end}", path.display());
            assert_eq!(
                resumed.checkpoint().line,
                ends.len() as u64,
                "line numbers continue"
            );
        }
    }
}

#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn fixture_fed_in_odd_chunks_gives_the_same_events() {
    let dir = fixtures_or_skip!();
    let path = dir
        .join(SPOTTER)
        .join(SPOTTER_SESSION)
        .join("subagents/agent-aac57f5.jsonl");
    let bytes = std::fs::read(&path).unwrap();
    let file = TranscriptFile::from_path(&path).unwrap();
    let (whole, _) = read_bytes(file.clone(), &bytes);
    for size in [1, 7, 333, 65_536] {
        let mut reader = TranscriptReader::new(file.clone());
        let mut events = Vec::new();
        for chunk in bytes.chunks(size) {
            reader.feed(chunk, |e| events.push(e));
        }
        assert_eq!(events, whole, "chunks of {size} bytes");
    }
}

// ---------------------------------------------------------------------------
// Built inputs

const SESSION: &str = "0000aaaa-1111-2222-3333-444455556666";

fn main_file() -> TranscriptFile {
    TranscriptFile::session("proj/s.jsonl", "proj", SESSION)
}

fn agent_file() -> TranscriptFile {
    TranscriptFile::subagent("proj/s/subagents/agent-a1.jsonl", "proj", SESSION, "a1")
}

fn line(value: Value) -> String {
    format!("{value}\n")
}

fn assistant(
    uuid: &str,
    time: &str,
    msg: &str,
    req: &str,
    block: Value,
    output: u64,
    stop: Value,
) -> Value {
    json!({
        "type": "assistant", "uuid": uuid, "timestamp": time, "sessionId": SESSION,
        "requestId": req, "isSidechain": false,
        "message": {"id": msg, "model": "claude-opus-4-6", "role": "assistant",
            "content": [block], "stop_reason": stop,
            "usage": {"input_tokens": 3, "output_tokens": output,
                "cache_creation_input_tokens": 100, "cache_read_input_tokens": 1000,
                "cache_creation": {"ephemeral_5m_input_tokens": 60, "ephemeral_1h_input_tokens": 40},
                "service_tier": "standard"}}
    })
}

fn text(t: &str) -> Value {
    json!({"type": "text", "text": t})
}

fn tool_use(id: &str) -> Value {
    json!({"type": "tool_use", "id": id, "name": "Bash", "input": {"command": "ls"}})
}

fn tool_result_line(uuid: &str, time: &str, tool: &str, is_error: bool) -> Value {
    json!({"type": "user", "uuid": uuid, "timestamp": time, "sessionId": SESSION,
        "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": tool, "content": "out", "is_error": is_error}]}})
}

fn small_session() -> String {
    [
        line(json!({"type": "summary", "summary": "s", "leafUuid": "x"})),
        line(
            json!({"type": "user", "uuid": "u1", "timestamp": "2026-01-01T10:00:00Z",
            "sessionId": SESSION, "message": {"role": "user", "content": "héllo wörld ✓"}}),
        ),
        line(assistant(
            "a1",
            "2026-01-01T10:00:01Z",
            "msg_1",
            "req_1",
            text("Looking…"),
            5,
            Value::Null,
        )),
        line(assistant(
            "a2",
            "2026-01-01T10:00:02Z",
            "msg_1",
            "req_1",
            tool_use("toolu_1"),
            40,
            json!("tool_use"),
        )),
        line(tool_result_line(
            "u2",
            "2026-01-01T10:00:03Z",
            "toolu_1",
            true,
        )),
        line(
            json!({"type": "system", "subtype": "turn_duration", "durationMs": 4000,
            "uuid": "s1", "timestamp": "2026-01-01T10:00:04Z", "sessionId": SESSION}),
        ),
    ]
    .concat()
}

#[test]
fn small_session_maps_every_line() {
    let (events, summary) = read_bytes(main_file(), small_session().as_bytes());
    let types: Vec<&str> = events.iter().map(Event::event_type).collect();
    assert_eq!(
        types,
        [
            "session.start",
            "claude.api_call",
            "claude.text",
            "claude.api_call",
            "claude.tool_use",
            "claude.tool_result",
            "claude.turn_duration"
        ]
    );
    assert_eq!(summary.skipped.get("summary"), Some(&1));
    assert_eq!(summary.skipped.get("user/text"), Some(&1));
    assert_eq!((summary.tool_uses, summary.tool_errors), (1, 1));
    let EventData::ApiCall(call) = &events[3].data else {
        unreachable!()
    };
    assert_eq!(call.message_id.as_deref(), Some("msg_1"));
    assert_eq!(call.request_id.as_deref(), Some("req_1"));
    assert_eq!(call.model.as_deref(), Some("claude-opus-4-6"));
    assert_eq!(call.stop_reason.as_deref(), Some("tool_use"));
    assert!(call.output_final);
    assert_eq!(
        (
            call.usage.input_tokens,
            call.usage.output_tokens,
            call.usage.cache_creation_5m_input_tokens,
            call.usage.cache_creation_1h_input_tokens,
            call.usage.cache_read_input_tokens
        ),
        (3, 40, 60, 40, 1000)
    );
    assert_eq!(call.usage.other["service_tier"], json!("standard"));
    let EventData::ToolResult(result) = &events[5].data else {
        unreachable!()
    };
    assert_eq!(result.tool_name.as_deref(), Some("Bash"));
    assert!(result.is_error);
    assert_eq!(events[5].extra["uuid"], json!("u2"));
    assert_eq!(events[5].timestamp, ts("2026-01-01T10:00:03Z"));

    let calls = tally(&events);
    assert_eq!(calls.len(), 1, "two copies, one call");
    let record = calls.get("msg_1", Some("req_1")).unwrap();
    assert_eq!(record.usage.output_tokens, 40, "the largest copy");
    assert!(record.output_final);
    assert_eq!(record.copies, 2);
    assert_eq!(calls.totals().not_final, 0);
}

#[test]
fn a_line_split_across_two_reads_waits_for_its_newline() {
    let input = small_session();
    let (whole, _) = read_bytes(main_file(), input.as_bytes());
    // Split inside every line, including inside multi-byte characters.
    for split in 1..input.len() {
        let mut reader = TranscriptReader::new(main_file());
        let mut events = Vec::new();
        reader.feed(&input.as_bytes()[..split], |e| events.push(e));
        let complete = input.as_bytes()[..split]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        assert_eq!(reader.checkpoint().offset, complete as u64);
        assert_eq!(reader.pending_bytes(), split - complete);
        reader.feed(&input.as_bytes()[split..], |e| events.push(e));
        assert_eq!(events, whole, "split at byte {split}");
        assert!(reader.summary().malformed.is_empty());
    }
}

#[test]
fn a_truncated_file_keeps_its_complete_lines_and_holds_the_rest() {
    let input = small_session();
    let cut = input.len() - 25; // inside the last line
    let mut reader = TranscriptReader::new(main_file());
    let mut events = Vec::new();
    reader.feed(&input.as_bytes()[..cut], |e| events.push(e));
    assert_eq!(events.len(), 6, "everything but the turn duration");
    assert!(
        reader.summary().malformed.is_empty(),
        "a partial line is not an error yet"
    );
    assert!(reader.pending_bytes() > 0);
    let last_start = input[..cut].rfind('\n').unwrap() + 1;
    assert_eq!(reader.checkpoint().offset, last_start as u64);

    // Declared complete, the cut line is one malformed line naming file, line and offset.
    reader.finish(|e| events.push(e));
    let malformed = &reader.summary().malformed;
    assert_eq!(malformed.len(), 1);
    assert_eq!(malformed[0].line, 6);
    assert_eq!(malformed[0].offset, last_start as u64);
    assert_eq!(malformed[0].path, "proj/s.jsonl");
    assert!(
        malformed[0].to_string().starts_with(&format!(
            "proj/s.jsonl: line 6 (byte offset {last_start}): EOF while parsing"
        )),
        "{}",
        malformed[0]
    );
    assert_eq!(
        events.len(),
        6,
        "nothing accepted is lost, nothing invented"
    );
}

#[test]
fn the_rest_of_a_truncated_line_completes_it() {
    let input = small_session();
    let cut = input.len() - 25;
    let mut reader = TranscriptReader::new(main_file());
    let mut events = Vec::new();
    reader.feed(&input.as_bytes()[..cut], |e| events.push(e));
    let checkpoint = reader.checkpoint().clone();
    // Resumed from the checkpoint, the file's grown tail gives the last line.
    let mut resumed = TranscriptReader::resume(main_file(), checkpoint.clone());
    resumed.feed(&input.as_bytes()[checkpoint.offset as usize..], |e| {
        events.push(e)
    });
    let (whole, _) = read_bytes(main_file(), input.as_bytes());
    assert_eq!(events, whole);
}

#[test]
fn interleaved_copies_of_one_call_in_two_files_count_once() {
    // The main file has two copies; a subagent file replays the message with more output.
    let main = [
        line(assistant(
            "m1",
            "2026-01-01T10:00:01Z",
            "msg_1",
            "req_1",
            text("a"),
            5,
            Value::Null,
        )),
        line(assistant(
            "m2",
            "2026-01-01T10:00:03Z",
            "msg_1",
            "req_1",
            tool_use("toolu_1"),
            30,
            Value::Null,
        )),
    ];
    let mut replay = assistant(
        "r1",
        "2026-01-01T10:00:03Z",
        "msg_1",
        "req_1",
        tool_use("toolu_1"),
        50,
        json!("tool_use"),
    );
    replay["agentId"] = json!("a1");
    replay["isSidechain"] = json!(true);
    let mut other = assistant(
        "r2",
        "2026-01-01T10:00:04Z",
        "msg_2",
        "req_2",
        text("b"),
        9,
        Value::Null,
    );
    other["isSidechain"] = json!(true);

    let mut main_reader = TranscriptReader::new(main_file());
    let mut agent_reader = TranscriptReader::new(agent_file());
    let mut copies = Vec::new();
    main_reader.feed(main[0].as_bytes(), |e| copies.push(e));
    agent_reader.feed(line(replay).as_bytes(), |e| copies.push(e));
    main_reader.feed(main[1].as_bytes(), |e| copies.push(e));
    agent_reader.feed(line(other).as_bytes(), |e| copies.push(e));
    let calls: Vec<&Event> = of_type(&copies, "claude.api_call");
    assert_eq!(calls.len(), 4);

    // Any order of the copies gives the same tally.
    let orders: [[usize; 4]; 4] = [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]];
    for order in orders {
        let mut tally = ApiCalls::new();
        for i in order {
            assert!(tally.add(calls[i]));
        }
        assert_eq!(tally.len(), 2);
        let totals = tally.totals();
        assert_eq!(
            totals.output_tokens,
            50 + 9,
            "largest copy of msg_1, plus msg_2"
        );
        assert_eq!(totals.input_tokens, 6);
        assert_eq!(totals.cache_creation_5m_input_tokens, 120);
        assert_eq!(totals.cache_creation_1h_input_tokens, 80);
        assert_eq!(totals.not_final, 1, "msg_2 never got a stop reason");
        let record = tally.get("msg_1", Some("req_1")).unwrap();
        assert_eq!(record.copies, 3);
        assert!(record.output_final);
        assert_eq!(record.stop_reason.as_deref(), Some("tool_use"));
        assert_eq!(record.agent_id, None, "the subagent's copy was a replay");
        assert!(!record.is_sidechain);
        assert_eq!(record.first_seen, ts("2026-01-01T10:00:01Z"));
        let agent = tally.get("msg_2", Some("req_2")).unwrap();
        assert_eq!(agent.agent_id.as_deref(), Some("a1"));
        assert!(agent.is_sidechain);
    }
    // The same tool call copied with its timestamp into another file is one event id.
    let tool_ids: HashSet<_> = of_type(&copies, "claude.tool_use")
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(tool_ids.len(), 1);
}

#[test]
fn unknown_line_types_are_counted_and_reading_goes_on() {
    let input = [
        line(json!({"type": "hologram", "timestamp": "2026-01-01T10:00:00Z", "uuid": "h"})),
        line(json!({"type": "system", "subtype": "quantum_flux", "timestamp": "2026-01-01T10:00:00Z"})),
        line(json!({"type": "progress", "data": {"type": "bash_progress"}, "timestamp": "2026-01-01T10:00:00Z"})),
        line(json!({"type": "file-history-snapshot", "messageId": "m", "snapshot": {}})),
        line(assistant("a1", "2026-01-01T10:00:01Z", "msg_1", "req_1",
            json!({"type": "citation_block", "x": 1}), 5, Value::Null)),
        line(tool_result_line("u1", "2026-01-01T10:00:02Z", "toolu_9", false)),
    ]
    .concat();
    let (events, summary) = read_bytes(main_file(), input.as_bytes());
    assert_eq!(summary.unknown.get("hologram"), Some(&1));
    assert_eq!(summary.unknown.get("system/quantum_flux"), Some(&1));
    assert_eq!(summary.skipped.get("progress/bash_progress"), Some(&1));
    assert_eq!(summary.skipped.get("file-history-snapshot"), Some(&1));
    assert_eq!(summary.skipped.get("assistant/citation_block"), Some(&1));
    assert!(summary.malformed.is_empty());
    let types: Vec<&str> = events.iter().map(Event::event_type).collect();
    assert_eq!(
        types,
        ["session.start", "claude.api_call", "claude.tool_result"],
        "the call of a line with an unknown block still counts"
    );
}

#[test]
fn skipped_parts_of_a_line_still_parse_as_json_and_odd_shapes_are_not_errors() {
    let mut result = tool_result_line("u1", "2026-01-01T10:00:02Z", "toolu_9", true);
    result["toolUseResult"] = json!({"stdout": "out", "stderr": "", "nested": [1, {"a": null}]});
    let input = [
        line(json!({"type": "progress", "data": "just text", "timestamp": "2026-01-01T10:00:00Z"})),
        line(json!({"type": "progress", "data": [1, 2], "timestamp": "2026-01-01T10:00:00Z"})),
        line(json!({"type": "progress", "data": {"hookName": "x", "type": "hook_progress", "more": {"deep": [true]}}})),
        line(result),
        // A syntax error inside a skipped field is still a malformed line.
        "{\"type\":\"user\",\"toolUseResult\":{\"a\":[1,}}\n".to_owned(),
    ]
    .concat();
    let (events, summary) = read_bytes(main_file(), input.as_bytes());
    assert_eq!(summary.skipped.get("progress/unknown"), Some(&2));
    assert_eq!(summary.skipped.get("progress/hook_progress"), Some(&1));
    let types: Vec<&str> = events.iter().map(Event::event_type).collect();
    assert_eq!(types, ["claude.tool_result"]);
    match &events[0].data {
        vibes_events::EventData::ToolResult(r) => assert!(r.is_error && r.content == "out"),
        other => panic!("{other:?}"),
    }
    assert_eq!(summary.malformed.len(), 1, "{:?}", summary.malformed);
    assert_eq!(summary.malformed[0].line, 5);
}

#[test]
fn malformed_json_is_reported_with_file_line_and_offset_and_the_rest_is_kept() {
    let good = small_session();
    let lines: Vec<&str> = good.split_inclusive('\n').collect();
    let bad = "{\"type\":\"user\",\"message\": oops}\n";
    let not_object = "[1,2,3]\n";
    let no_type = "{\"uuid\":\"z\"}\n";
    let input = format!(
        "{}{}{bad}{not_object}{no_type}{}",
        lines[0],
        lines[1],
        lines[2..].concat()
    );
    let (events, summary) = read_bytes(main_file(), input.as_bytes());
    let (whole, _) = read_bytes(main_file(), good.as_bytes());
    assert_eq!(
        events, whole,
        "every good line still gives its events, with the same ids"
    );
    let offset = (lines[0].len() + lines[1].len()) as u64;
    let reported: Vec<(u64, u64)> = summary
        .malformed
        .iter()
        .map(|m| (m.line, m.offset))
        .collect();
    assert_eq!(
        reported,
        [
            (3, offset),
            (4, offset + bad.len() as u64),
            (5, offset + (bad.len() + not_object.len()) as u64)
        ]
    );
    assert!(
        summary.malformed[0]
            .reason
            .contains("expected value at column"),
        "{}",
        summary.malformed[0]
    );
    assert_eq!(summary.malformed[1].reason, "not a JSON object");
    assert_eq!(summary.malformed[2].reason, "missing string field `type`");
}

#[test]
fn a_line_without_timestamp_gives_no_events_and_is_reported() {
    let mut result = tool_result_line("u1", "x", "toolu_1", false);
    result.as_object_mut().unwrap().remove("timestamp");
    let mut bad_time = tool_result_line("u2", "yesterday ✓✓✓", "toolu_2", false);
    bad_time["timestamp"] = json!("ünïcödé ".repeat(20));
    let input = [line(result), line(bad_time)].concat();
    let (events, summary) = read_bytes(main_file(), input.as_bytes());
    assert!(events.is_empty());
    assert_eq!(summary.malformed.len(), 2);
    assert_eq!(summary.malformed[0].reason, "user line without `timestamp`");
    assert!(
        summary.malformed[1]
            .reason
            .starts_with("invalid `timestamp` ünïcödé")
    );
}

#[test]
fn api_errors_limits_interrupts_and_compaction() {
    let input = [
        line(json!({"type": "system", "subtype": "api_error", "level": "error",
            "uuid": "e1", "timestamp": "2026-01-01T10:00:00Z", "sessionId": SESSION,
            "error": {"status": 529, "error": {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
                "cause": {"code": "ECONNRESET"}, "requestID": "req_9"},
            "retryInMs": 558.94, "retryAttempt": 1, "maxRetries": 10})),
        line(json!({"type": "assistant", "uuid": "e2", "timestamp": "2026-01-01T10:00:01Z",
            "sessionId": SESSION, "isApiErrorMessage": true,
            "message": {"id": "x", "model": "<synthetic>", "role": "assistant",
                "content": [{"type": "text", "text": "API Error: 502 Bad Gateway"}],
                "usage": {"input_tokens": 0, "output_tokens": 0}}})),
        line(json!({"type": "assistant", "uuid": "e3", "timestamp": "2026-01-01T10:00:02Z",
            "sessionId": SESSION, "isApiErrorMessage": true,
            "message": {"id": "y", "model": "<synthetic>", "role": "assistant",
                "content": [{"type": "text", "text": "Claude AI usage limit reached|1767265200"}]}})),
        line(json!({"type": "user", "uuid": "i1", "timestamp": "2026-01-01T10:00:03Z",
            "sessionId": SESSION, "message": {"role": "user",
                "content": [{"type": "text", "text": "[Request interrupted by user for tool use]"}]}})),
        line(json!({"type": "system", "subtype": "compact_boundary", "uuid": "c1",
            "timestamp": "2026-01-01T10:00:04Z", "sessionId": SESSION,
            "compactMetadata": {"trigger": "auto", "preTokens": 150000, "future": 1}})),
        line(json!({"type": "user", "uuid": "c2", "parentUuid": "c1", "isCompactSummary": true,
            "timestamp": "2026-01-01T10:00:05Z", "sessionId": SESSION,
            "message": {"role": "user", "content": "This session is being continued..."}})),
        // A 1.x compaction: a summary line without a boundary.
        line(json!({"type": "user", "uuid": "c3", "parentUuid": "q", "isCompactSummary": true,
            "timestamp": "2026-01-01T10:00:06Z", "sessionId": SESSION,
            "message": {"role": "user", "content": "This session is being continued..."}})),
    ]
    .concat();
    let (events, summary) = read_bytes(main_file(), input.as_bytes());
    assert!(summary.malformed.is_empty(), "{:?}", summary.malformed);
    let types: Vec<&str> = events.iter().map(Event::event_type).collect();
    assert_eq!(
        types,
        [
            "claude.api_error",
            "claude.api_error",
            "claude.rate_limit",
            "claude.interrupt",
            "session.compact",
            "session.compact"
        ]
    );
    let EventData::ApiError(retry) = &events[0].data else {
        unreachable!()
    };
    assert_eq!(retry.status, Some(529));
    assert_eq!(retry.message, "Overloaded");
    assert_eq!(
        (retry.retry_attempt, retry.max_retries, retry.retry_in_ms),
        (Some(1), Some(10), Some(559))
    );
    assert_eq!(retry.cause.as_deref(), Some("ECONNRESET"));
    assert_eq!(retry.request_id.as_deref(), Some("req_9"));
    let EventData::ApiError(synthetic) = &events[1].data else {
        unreachable!()
    };
    assert_eq!(synthetic.status, Some(502));
    assert_eq!(synthetic.message, "API Error: 502 Bad Gateway");
    let EventData::RateLimit(limit) = &events[2].data else {
        unreachable!()
    };
    assert_eq!(limit.status, "rejected");
    assert_eq!(
        limit.resets_at,
        Some(Timestamp::from_second(1_767_265_200).unwrap())
    );
    let EventData::Interrupt(interrupt) = &events[3].data else {
        unreachable!()
    };
    assert!(interrupt.during_tool_use);
    let EventData::SessionCompact(compact) = &events[4].data else {
        unreachable!()
    };
    assert_eq!(
        (compact.trigger.as_deref(), compact.pre_tokens),
        (Some("auto"), Some(150_000))
    );
    assert_eq!(events[4].extra["claude_future"], json!(1));
    assert_eq!(summary.skipped.get("user/compact_summary"), Some(&1));
    assert!(
        tally(&events).is_empty(),
        "synthetic messages are no API calls"
    );

    // Resumed between a boundary and its summary line, the checkpoint remembers the
    // boundary, so the compaction is not reported twice.
    let cut = input.match_indices('\n').nth(4).unwrap().0 + 1;
    let mut reader = TranscriptReader::new(main_file());
    reader.feed(&input.as_bytes()[..cut], |_| {});
    assert_eq!(reader.checkpoint().compact_boundary.as_deref(), Some("c1"));
    let mut resumed = TranscriptReader::resume(main_file(), reader.checkpoint().clone());
    let mut rest = Vec::new();
    resumed.feed(&input.as_bytes()[cut..], |e| rest.push(e));
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0], events[5]);
}

#[test]
fn limit_warnings_in_claude_codes_words() {
    let fallback = limit_warning("Claude Opus limit reached, now using Sonnet 4").unwrap();
    assert_eq!(
        (fallback.status.as_str(), fallback.fallback_model.as_deref()),
        ("fallback", Some("Sonnet 4"))
    );
    let reset = limit_warning("Claude AI usage limit reached|1756152000").unwrap();
    assert_eq!(reset.resets_at, Some(ts("2025-08-25T20:00:00Z")));
    let plain = limit_warning("5-hour limit reached ∙ resets 3pm").unwrap();
    assert_eq!((plain.status.as_str(), plain.resets_at), ("rejected", None));
    assert!(limit_warning("All tests pass").is_none());
    assert!(
        limit_warning("limit reached|99999999999999999999999")
            .unwrap()
            .resets_at
            .is_none()
    );
}

#[test]
fn ids_depend_on_what_the_transcript_says_only() {
    let (a, _) = read_bytes(main_file(), small_session().as_bytes());
    let (b, _) = read_bytes(main_file(), small_session().as_bytes());
    assert_eq!(
        a.iter().map(|e| e.id).collect::<Vec<_>>(),
        b.iter().map(|e| e.id).collect::<Vec<_>>()
    );
    // The same lines later in a file (after a prefix) keep the ids of their facts.
    let prefixed = format!(
        "{}{}",
        line(json!({"type": "summary", "summary": "earlier", "leafUuid": "y"})),
        small_session()
    );
    let (c, _) = read_bytes(main_file(), prefixed.as_bytes());
    assert_eq!(
        a.iter().map(|e| e.id).collect::<Vec<_>>(),
        c.iter().map(|e| e.id).collect::<Vec<_>>()
    );
}

#[test]
fn paths_give_the_file_identity() {
    let main = TranscriptFile::from_path(Path::new(
        "/home/u/.claude/projects/-home-dev-spotter/ae4a77f8.jsonl",
    ))
    .unwrap();
    assert_eq!(
        (
            main.project.as_str(),
            main.session_id.as_str(),
            main.agent_id
        ),
        ("-home-dev-spotter", "ae4a77f8", None)
    );
    let agent = TranscriptFile::from_path(Path::new(
        "/p/-home-dev-spotter/ae4a77f8/subagents/agent-acompact-946d2b.jsonl",
    ))
    .unwrap();
    assert_eq!(
        (
            agent.project.as_str(),
            agent.session_id.as_str(),
            agent.agent_id.as_deref()
        ),
        ("-home-dev-spotter", "ae4a77f8", Some("acompact-946d2b"))
    );
    assert!(TranscriptFile::from_path(Path::new("/p/notes.txt")).is_none());
}

#[test]
fn no_input_panics() {
    let input = small_session();
    // Every prefix, finished as if the file ended there.
    for end in 0..=input.len() {
        let mut reader = TranscriptReader::new(main_file());
        reader.feed(&input.as_bytes()[..end], |_| {});
        reader.finish(|_| {});
    }
    let odd = [
        "{\"type\":\"assistant\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"message\":{\"content\":5,\"usage\":{\"output_tokens\":-1}}}",
        "{\"type\":\"assistant\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"message\":{\"content\":[1,null,{}],\"usage\":7}}",
        "{\"type\":\"user\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"message\":{\"content\":[{\"type\":\"tool_result\"}]}}",
        "{\"type\":\"system\",\"subtype\":\"api_error\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"error\":\"x\",\"retryInMs\":-5}",
        "{\"type\":\"system\",\"subtype\":\"turn_duration\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"durationMs\":\"long\"}",
        "{\"type\":7}",
        "\u{feff}{\"type\":\"summary\"}",
        "\u{0}\u{1}\u{ff}",
        "   ",
    ];
    let input = odd.join("\n");
    let (_, summary) = read_bytes(main_file(), input.as_bytes());
    assert_eq!(summary.lines, odd.len() as u64);
    assert_eq!(summary.blank_lines, 1);
    assert_eq!(summary.skipped.get("summary"), Some(&1), "a BOM is ignored");
    assert!(summary.malformed.len() >= 5, "{:?}", summary.malformed);
    let mut bytes = input.into_bytes();
    bytes.extend_from_slice(&[0xff, 0xfe, b'\n']);
    let (_, summary) = read_bytes(main_file(), &bytes);
    assert!(summary.malformed.last().unwrap().line >= 9);
    let _ = ApiCall::new(ApiUsage::default());
}
