//! Tests of the Claude stream-json parser: over the real recordings in
//! `../shared/fixtures/claude-stream` (ignored without them: `cfg(fixtures)`,
//! build/fixtures_cfg.rs), over the example session in
//! `tests/data/` and over inputs built here.
//!
//! Why one file over 900 lines: the recordings, the example session and the built
//! inputs check one parser with the same helpers, one test per mapping rule of the
//! parser's table.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;

use serde_json::{Value, json};
use vibes_events::{EventData, Severity, Timestamp};
use vibes_sources::claude::{ClaudeParser, LineOutcome, ParseSummary, parse_reader};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/claude-stream"
);

fn fixtures_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(FIXTURES);
    dir.is_dir().then_some(dir)
}

fn parse_file(path: impl Into<PathBuf>) -> (Vec<vibes_events::Event>, ParseSummary) {
    let file = File::open(path.into()).expect("open input");
    // A small buffer, so that long lines span many refills of the reader.
    let reader = BufReader::with_capacity(4096, file);
    let mut events = Vec::new();
    let summary = parse_reader(reader, |e| events.push(e)).expect("read input");
    (events, summary)
}

fn parse_bytes(input: &[u8]) -> (Vec<vibes_events::Event>, ParseSummary) {
    let mut events = Vec::new();
    let summary = parse_reader(input, |e| events.push(e)).expect("read input");
    (events, summary)
}

fn of_type<'a>(events: &'a [vibes_events::Event], ty: &str) -> Vec<&'a vibes_events::Event> {
    events.iter().filter(|e| e.event_type() == ty).collect()
}

fn tool_results(events: &[vibes_events::Event]) -> Vec<&vibes_events::ToolResult> {
    events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::ToolResult(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn session_end(events: &[vibes_events::Event]) -> &vibes_events::SessionEnd {
    let ends: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::SessionEnd(end) => Some(end),
            _ => None,
        })
        .collect();
    assert_eq!(ends.len(), 1, "exactly one session.end");
    ends[0]
}

fn errors(
    events: &[vibes_events::Event],
) -> Vec<(&vibes_events::ErrorEvent, &vibes_events::Event)> {
    events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::Error(err) => Some((err, e)),
            _ => None,
        })
        .collect()
}

/// Every event has a partition key equal to `session_id`, and timestamps strictly increase.
fn assert_session_and_order(events: &[vibes_events::Event], session_id: &str) {
    for event in events {
        assert_eq!(
            event.partition_key(),
            Some(session_id),
            "partition key of {}",
            event.event_type()
        );
        assert_eq!(event.source, "claude");
    }
    for pair in events.windows(2) {
        assert!(
            pair[0].timestamp < pair[1].timestamp,
            "timestamps strictly increase"
        );
    }
}

/// Decodes standard base64 (a tiny decoder, independent of the parser's length formula)
/// and returns the bytes.
fn decode_base64(data: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in data.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => panic!("unexpected base64 byte {c}"),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Real recordings

#[test]
fn fixtures_dir_resolves_to_shared_fixtures() {
    let resolved = PathBuf::from(FIXTURES).canonicalize();
    if let Ok(path) = resolved {
        assert!(
            path.ends_with("shared/fixtures/claude-stream"),
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
fn fixture_long_session() {
    let Some(dir) = fixtures_dir() else {
        eprintln!("skipping: fixtures not present at {FIXTURES}");
        return;
    };
    let (events, summary) = parse_file(dir.join("presmihaylov-ccagent__claude_response1.jsonl"));

    assert_eq!(summary.lines, 142);
    assert_eq!(summary.blank_lines, 1);
    assert!(summary.malformed.is_empty(), "{:?}", summary.malformed);
    assert!(summary.skipped.is_empty(), "{:?}", summary.skipped);
    assert_eq!(summary.tool_calls, 53);
    assert_eq!(summary.tool_errors, 7);
    assert_eq!(summary.turns, 139);
    assert_eq!(summary.duration_ms, 515_335);
    assert_eq!(summary.cost_usd, 2.4637934999999995);
    assert_eq!(summary.events_of("claude.tool_use"), 53);
    assert_eq!(summary.events_of("claude.tool_result"), 53);
    assert_eq!(summary.events_of("claude.text"), 33);
    assert_eq!(summary.events_of("session.start"), 1);
    assert_eq!(summary.events_of("session.end"), 1);
    assert_eq!(summary.events_of("error"), 0);
    assert_eq!(summary.events(), events.len() as u64);
    assert_eq!(of_type(&events, "claude.tool_use").len(), 53);
    assert_eq!(of_type(&events, "claude.text").len(), 33);

    let EventData::SessionStart(start) = &events[0].data else {
        panic!("first event is {}", events[0].event_type());
    };
    let session_id = start.session_id.clone().unwrap();
    assert_eq!(session_id, "13fd3e32-9028-43ba-9306-4e08bca82525");
    assert_eq!(start.model, "claude-sonnet-4-20250514");
    assert_eq!(start.permission_mode.as_deref(), Some("acceptEdits"));
    assert_eq!(start.api_key_source.as_deref(), Some("none"));
    assert_eq!(start.cwd.as_deref(), Some("/Users/pmihaylov/prg/ccpg/cc1"));
    assert!(
        start
            .tools
            .iter()
            .any(|t| t == "mcp__context7__resolve-library-id")
    );
    assert_eq!(start.mcp_servers.as_ref().unwrap().len(), 2);
    assert!(events[0].extra.contains_key("slash_commands"));

    let results = tool_results(&events);
    assert!(
        results.iter().all(|r| r.tool_name.is_some()),
        "every result is named"
    );
    assert_eq!(results.iter().filter(|r| r.is_error).count(), 7);

    let end = session_end(&events);
    assert!(!end.is_error);
    assert_eq!(end.subtype.as_deref(), Some("success"));
    assert_eq!(end.num_turns, 139);
    assert_eq!(end.total_cost_usd, 2.4637934999999995);
    assert_eq!(
        end.usage.as_ref().unwrap().cache_read_input_tokens,
        4_940_732
    );
    assert_session_and_order(&events, &session_id);
}

#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn fixture_session_with_image() {
    let Some(dir) = fixtures_dir() else {
        eprintln!("skipping: fixtures not present at {FIXTURES}");
        return;
    };
    let path = dir.join("presmihaylov-ccagent__claude-session-with-image.log");
    let (events, summary) = parse_file(&path);

    // Independently: find the image in the raw file and decode it.
    let mut raw = String::new();
    File::open(&path).unwrap().read_to_string(&mut raw).unwrap();
    assert!(
        !raw.ends_with('\n'),
        "the recording has no trailing newline"
    );
    let image_line: Value = raw
        .lines()
        .find(|l| l.contains(r#""type":"image""#))
        .map(|l| serde_json::from_str(l).unwrap())
        .expect("a line with an image");
    let block = &image_line["message"]["content"][0];
    let data = block["content"][0]["source"]["data"].as_str().unwrap();
    let decoded = decode_base64(data);
    assert_eq!(&decoded[..8], b"\x89PNG\r\n\x1a\n", "the decoder works");
    let tool_id = block["tool_use_id"].as_str().unwrap();

    assert_eq!(summary.lines, 26, "the last line, without newline, is read");
    assert_eq!(summary.blank_lines, 0);
    assert!(summary.malformed.is_empty(), "{:?}", summary.malformed);
    assert_eq!(summary.events_of("session.start"), 1);
    assert_eq!(summary.events_of("session.end"), 1);
    assert_eq!(summary.turns, 153);

    let results = tool_results(&events);
    let image = results.iter().find(|r| r.tool_id == tool_id).unwrap();
    assert_eq!(
        image.content,
        format!("[image image/png, {} bytes]", decoded.len())
    );
    assert!(image.content.starts_with("[image image/png, "));
    assert!(image.tool_name.is_some());
    assert!(results.iter().all(|r| r.tool_name.is_some()));

    let end = session_end(&events);
    assert_eq!(end.total_cost_usd, 0.3451878);
    assert!(end.model_usage.is_some());
    assert_eq!(end.permission_denials.as_deref(), Some(&[][..]));
    assert_session_and_order(&events, "3fef54b1-0b2f-4ef9-89a7-928aed9f993f");
}

#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn fixture_basic_query() {
    let Some(dir) = fixtures_dir() else {
        eprintln!("skipping: fixtures not present at {FIXTURES}");
        return;
    };
    let (events, summary) =
        parse_file(dir.join("charlieyou-claude-agent-sdk-gleam__basic_query.ndjson"));
    let types: Vec<_> = events.iter().map(|e| e.event_type()).collect();
    assert_eq!(types, ["session.start", "claude.text", "session.end"]);
    let EventData::SessionStart(start) = &events[0].data else {
        unreachable!()
    };
    assert_eq!(start.claude_code_version.as_deref(), Some("2.1.7"));
    assert_eq!(start.mcp_servers.as_deref(), Some(&[][..]));
    assert_eq!(
        events[0].extra["uuid"],
        "99724e0b-d1e8-4b06-a504-11672c2be669"
    );
    let EventData::Text(text) = &events[1].data else {
        unreachable!()
    };
    assert_eq!(text.text, "4");
    assert_eq!(
        text.message_id.as_deref(),
        Some("msg_01Y1Lo6gYUXN71XaAq7sjUPm")
    );
    let end = session_end(&events);
    assert_eq!(end.total_cost_usd, 0.1354875);
    assert_eq!(end.result.as_deref(), Some("4"));
    assert_eq!(summary.cost_usd, 0.1354875);
    assert_session_and_order(&events, "1d1e46f9-35c7-4834-b529-846d5bb82288");
}

// ---------------------------------------------------------------------------
// The example session in tests/data

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/session.jsonl");
const SID: &str = "7c1d0e5a-1111-4a2b-9c3d-000000000001";

#[test]
fn example_session_maps_every_line() {
    let (events, summary) = parse_file(EXAMPLE);
    let types: Vec<_> = events.iter().map(|e| e.event_type()).collect();
    assert_eq!(
        types,
        [
            "session.start",
            "claude.thinking",
            "claude.text",
            "claude.tool_use",
            "claude.tool_result",
            "claude.tool_use",
            "claude.tool_result",
            "claude.rate_limit",
            "session.compact",
            "claude.tool_use",
            "claude.tool_result",
            "claude.text",
            "claude.text",
            "error",
            "session.end",
        ]
    );
    assert_eq!(summary.lines, 16);
    assert_eq!(summary.blank_lines, 1);
    assert_eq!(summary.tool_calls, 3);
    assert_eq!(summary.tool_errors, 1);
    assert_eq!(summary.turns, 6);
    assert_eq!(summary.duration_ms, 48_210);
    assert!(summary.malformed.is_empty());
    let skipped: Vec<_> = summary
        .skipped
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        skipped,
        [
            ("stream_event", 1),
            ("system/status", 1),
            ("user/synthetic", 1)
        ]
    );
    assert_session_and_order(&events, SID);

    // session.start: mapped fields, and every other init field kept in extra.
    let EventData::SessionStart(start) = &events[0].data else {
        unreachable!()
    };
    assert_eq!(start.api_key_source.as_deref(), Some("ANTHROPIC_API_KEY"));
    assert_eq!(start.claude_code_version.as_deref(), Some("2.1.12"));
    let servers = start.mcp_servers.as_ref().unwrap();
    assert_eq!(
        (servers[1].name.as_str(), servers[1].status.as_str()),
        ("jira", "failed")
    );
    let extra: Vec<_> = events[0].extra.keys().map(String::as_str).collect();
    assert_eq!(
        extra,
        [
            "agents",
            "capabilities",
            "output_style",
            "plugins",
            "skills",
            "slash_commands",
            "uuid"
        ]
    );
    // The event encodes (no extra key collides) and round-trips.
    let json = events[0].to_json().unwrap();
    assert_eq!(vibes_events::Event::from_json(&json).unwrap(), events[0]);

    let EventData::Thinking(thinking) = &events[1].data else {
        unreachable!()
    };
    assert!(thinking.text.starts_with("The user wants"));
    assert_eq!(
        thinking.signature.as_deref(),
        Some("EqQBCkYIBxgCKkB0c2lnbmF0dXJl")
    );
    assert_eq!(thinking.message_id.as_deref(), Some("msg_01A"));

    let EventData::ToolUse(bash) = &events[3].data else {
        unreachable!()
    };
    assert_eq!(
        (bash.tool_id.as_str(), bash.tool_name.as_str()),
        ("toolu_01Bash", "Bash")
    );
    assert_eq!(bash.input["command"], "cargo test -p shop");

    let results = tool_results(&events);
    assert_eq!(results[0].tool_name.as_deref(), Some("Bash"));
    assert!(results[0].is_error);
    assert_eq!(
        results[0].content,
        "test cart::total ... FAILED\nerror: test failed"
    );
    assert_eq!(results[1].tool_name.as_deref(), Some("Read"));
    assert_eq!(
        results[1].content,
        "Screenshot of the cart page\n[image image/png, 8 bytes]\n[document block]"
    );
    assert!(!results[1].is_error);

    // server_tool_use and its result block inside the assistant message.
    let EventData::ToolUse(search) = &events[9].data else {
        unreachable!()
    };
    assert_eq!(search.tool_name, "web_search");
    assert_eq!(events[9].extra["block_type"], "server_tool_use");
    assert_eq!(results[2].tool_name.as_deref(), Some("web_search"));
    assert_eq!(results[2].content, "[web_search_result block]");

    // The assistant line's top-level error, after its text.
    let EventData::Text(api_error) = &events[12].data else {
        unreachable!()
    };
    assert_eq!(api_error.text, "API Error: Rate limit reached");
    let (err, err_event) = errors(&events)[0];
    assert_eq!(err.severity, Severity::Warning);
    assert_eq!(err.message, "assistant error: rate_limit");
    assert_eq!(err_event.extra["claude_error"], "rate_limit");

    let end = session_end(&events);
    assert_eq!(end.stop_reason.as_deref(), Some("end_turn"));
    assert_eq!(end.terminal_reason.as_deref(), Some("completed"));
    assert_eq!(end.duration_api_ms, Some(40_102));
    assert_eq!(end.permission_denials.as_ref().unwrap().len(), 1);
    let usage = end.usage.as_ref().unwrap();
    assert_eq!((usage.input_tokens, usage.output_tokens), (18, 144));
    assert_eq!(usage.other["service_tier"], "standard");
    let model = &end.model_usage.as_ref().unwrap()["claude-sonnet-4-5-20250929"];
    assert_eq!(model.input_tokens, 18);
    assert_eq!(model.output_tokens, 144);
    assert_eq!(model.cache_read_input_tokens, 42_000);
    assert_eq!(model.cache_creation_input_tokens, 9_000);
    assert_eq!(model.cost_usd, 0.0873);
    assert_eq!(model.other["contextWindow"], 200_000);
    assert_eq!(model.other["webSearchRequests"], 1);
    assert!(!model.other.contains_key("costUSD"));
    let last = events.last().unwrap();
    assert_eq!(last.extra["uuid"], "aa000000-0000-4000-8000-00000000000f");
    assert!(last.to_json().is_ok());
}

#[test]
fn rate_limit_and_compact_mapping() {
    let (events, _) = parse_file(EXAMPLE);
    let EventData::RateLimit(limit) = &of_type(&events, "claude.rate_limit")[0].data else {
        unreachable!()
    };
    assert_eq!(limit.status, "allowed_warning");
    assert_eq!(limit.rate_limit_type.as_deref(), Some("five_hour"));
    assert_eq!(
        limit.resets_at,
        Some(Timestamp::from_second(1_767_225_600).unwrap())
    );
    assert_eq!(limit.session_id.as_deref(), Some(SID));
    assert_eq!(
        of_type(&events, "claude.rate_limit")[0].extra["utilization"],
        0.91
    );

    let EventData::SessionCompact(compact) = &of_type(&events, "session.compact")[0].data else {
        unreachable!()
    };
    assert_eq!(compact.trigger.as_deref(), Some("auto"));
    assert_eq!(compact.pre_tokens, Some(155_000));
    assert_eq!(compact.post_tokens, Some(21_000));
    assert_eq!(compact.duration_ms, Some(8_400));
    assert_eq!(compact.session_id.as_deref(), Some(SID));
}

#[test]
fn session_name_is_added_to_every_event() {
    let mut parser = ClaudeParser::new().session_name("fix-cart-total");
    let mut events = Vec::new();
    let file = BufReader::new(File::open(EXAMPLE).unwrap());
    let summary = parser.parse_reader(file, |e| events.push(e)).unwrap();
    assert_eq!(summary.events(), 15);
    assert!(
        events
            .iter()
            .all(|e| e.extra["session_name"] == "fix-cart-total")
    );
    assert_eq!(parser.session_id(), Some(SID));
}

// ---------------------------------------------------------------------------
// Inputs built here

fn init_line(session_id: &str) -> String {
    json!({"type":"system","subtype":"init","session_id":session_id,"model":"m","tools":["Bash","Read"]})
        .to_string()
}

fn tool_use_line(id: &str, name: &str) -> String {
    json!({"type":"assistant","session_id":"s1","parent_tool_use_id":null,
        "message":{"id":"msg_1","content":[{"type":"tool_use","id":id,"name":name,"input":{}}]}})
    .to_string()
}

fn tool_result_line(id: &str, content: Value) -> String {
    json!({"type":"user","session_id":"s1","parent_tool_use_id":null,
        "message":{"role":"user","content":[{"type":"tool_result","tool_use_id":id,"content":content}]}})
    .to_string()
}

fn result_line(extra: Value) -> String {
    let mut line = json!({"type":"result","subtype":"success","is_error":false,"duration_ms":10,
        "num_turns":2,"session_id":"s1"});
    line.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    line.to_string()
}

#[test]
fn malformed_line_in_the_middle_is_reported_and_parsing_goes_on() {
    let input = format!(
        "{}\n{}\n{{\"type\": \"assistant\", oops}}\n{}\n",
        init_line("s1"),
        tool_use_line("toolu_1", "Bash"),
        tool_result_line("toolu_1", json!("ok")),
    );
    let (events, summary) = parse_bytes(input.as_bytes());
    let types: Vec<_> = events.iter().map(|e| e.event_type()).collect();
    assert_eq!(
        types,
        [
            "session.start",
            "claude.tool_use",
            "error",
            "claude.tool_result"
        ]
    );
    assert_eq!(summary.malformed.len(), 1);
    assert_eq!(summary.malformed[0].line, 3);
    assert_eq!(
        summary.malformed[0].reason,
        "key must be a string at column 23"
    );
    let (err, event) = errors(&events)[0];
    assert_eq!(err.message, "line 3: key must be a string at column 23");
    assert_eq!(err.severity, Severity::Warning);
    assert_eq!(err.session_id.as_deref(), Some("s1"));
    assert_eq!(event.extra["line"], 3);
    assert_eq!(event.source, "claude");
    // The result after the bad line is still named from the tool_use before it.
    assert_eq!(tool_results(&events)[0].tool_name.as_deref(), Some("Bash"));
}

#[test]
fn truncated_last_line_is_one_malformed_report() {
    let full = tool_result_line("toolu_1", json!("a long output"));
    let input = format!(
        "{}\n{}\n{}",
        init_line("s1"),
        tool_use_line("toolu_1", "Bash"),
        &full[..40]
    );
    let (events, summary) = parse_bytes(input.as_bytes());
    assert_eq!(summary.lines, 3);
    assert_eq!(summary.malformed.len(), 1);
    assert_eq!(summary.malformed[0].line, 3);
    assert!(
        summary.malformed[0].reason.starts_with("EOF while parsing"),
        "{}",
        summary.malformed[0].reason
    );
    assert_eq!(summary.events_of("error"), 1);
    assert_eq!(summary.events_of("claude.tool_result"), 0);
    assert_eq!(events.last().unwrap().event_type(), "error");
}

#[test]
fn unknown_and_unmapped_line_types_are_counted_and_skipped() {
    let lines = [
        init_line("s1"),
        json!({"type":"stream_event","event":{"type":"message_start"},"session_id":"s1"}).to_string(),
        json!({"type":"control_response","response":{}}).to_string(),
        json!({"type":"command_lifecycle","state":"started"}).to_string(),
        json!({"type":"conversation_reset"}).to_string(),
        json!({"type":"system","subtype":"hook_started","hook":"x"}).to_string(),
        json!({"type":"system","subtype":"task_progress"}).to_string(),
        json!({"type":"system","subtype":"thinking_tokens","estimated_tokens":12}).to_string(),
        json!({"type":"brand_new_type","x":1}).to_string(),
        json!({"type":"brand_new_type"}).to_string(),
        json!({"type":"user","session_id":"s1","message":{"role":"user","content":"hi"}}).to_string(),
        json!({"type":"user","session_id":"s1","isReplay":true,"message":{"role":"user","content":"hi"}})
            .to_string(),
        json!({"type":"assistant","session_id":"s1","message":{"id":"m","content":[{"type":"redacted_thinking","data":"x"}]}})
            .to_string(),
    ];
    let (events, summary) = parse_bytes(lines.join("\n").as_bytes());
    assert_eq!(events.len(), 1, "only the init maps to an event");
    assert!(summary.malformed.is_empty());
    let skipped: Vec<_> = summary
        .skipped
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        skipped,
        [
            ("assistant", 1),
            ("assistant/redacted_thinking", 1),
            ("brand_new_type", 2),
            ("command_lifecycle", 1),
            ("control_response", 1),
            ("conversation_reset", 1),
            ("stream_event", 1),
            ("system/hook_started", 1),
            ("system/task_progress", 1),
            ("system/thinking_tokens", 1),
            ("user/replay", 1),
            ("user/text", 1),
        ]
    );

    let mut parser = ClaudeParser::new();
    assert_eq!(
        parser.parse_line(br#"{"type":"stream_event"}"#, 1),
        LineOutcome::Skipped {
            key: "stream_event".to_owned()
        }
    );
}

#[test]
fn two_megabyte_line_is_parsed() {
    // 1.5 MB of base64 image and 600 kB of text in one tool result.
    let image = "QUJD".repeat(375_000) + "QQ==";
    let text = "x".repeat(600_000);
    let line = tool_result_line(
        "toolu_big",
        json!([
            {"type":"text","text":text},
            {"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":image}}
        ]),
    );
    assert!(line.len() > 2_000_000);
    let input = format!(
        "{}\n{}\n{line}\n{}\n",
        init_line("s1"),
        tool_use_line("toolu_big", "Read"),
        result_line(json!({}))
    );
    let file = BufReader::with_capacity(8 * 1024, input.as_bytes());
    let mut events = Vec::new();
    let summary = parse_reader(file, |e| events.push(e)).unwrap();
    assert!(summary.malformed.is_empty());
    let result = tool_results(&events)[0];
    assert_eq!(result.tool_name.as_deref(), Some("Read"));
    assert_eq!(
        result.content.len(),
        600_000 + 1 + "[image image/jpeg, 1125001 bytes]".len()
    );
    assert!(
        result
            .content
            .ends_with("x\n[image image/jpeg, 1125001 bytes]")
    );
    assert_eq!(decode_base64(&image).len(), 1_125_001);
    assert_eq!(summary.events_of("session.end"), 1);
}

#[test]
fn blank_lines_and_crlf() {
    let input = format!(
        "\r\n{}\r\n   \r\n\t\n{}\r\n\n{}",
        init_line("s1"),
        tool_use_line("toolu_1", "Bash"),
        result_line(json!({}))
    );
    let (events, summary) = parse_bytes(input.as_bytes());
    assert_eq!(summary.lines, 7);
    assert_eq!(summary.blank_lines, 4);
    assert!(summary.malformed.is_empty(), "{:?}", summary.malformed);
    let types: Vec<_> = events.iter().map(|e| e.event_type()).collect();
    assert_eq!(types, ["session.start", "claude.tool_use", "session.end"]);

    let mut parser = ClaudeParser::new();
    assert_eq!(parser.parse_line(b" \r\n", 1), LineOutcome::Blank);
    assert_eq!(parser.summary().blank_lines, 1);
}

#[test]
fn tool_result_for_unknown_tool_id_is_still_emitted() {
    let input = format!(
        "{}\n{}\n",
        init_line("s1"),
        tool_result_line("toolu_never_seen", json!("done"))
    );
    let (events, summary) = parse_bytes(input.as_bytes());
    let results = tool_results(&events);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].tool_id, "toolu_never_seen");
    assert_eq!(results[0].tool_name, None);
    assert_eq!(results[0].content, "done");
    assert_eq!(results[0].session_id.as_deref(), Some("s1"));
    assert_eq!(summary.tool_errors, 0);
}

#[test]
fn array_content_is_flattened() {
    let mut parser = ClaudeParser::new();
    parser.parse_line(tool_use_line("toolu_1", "Read").as_bytes(), 1);
    let line = tool_result_line(
        "toolu_1",
        json!([
            {"type":"text","text":"first"},
            {"type":"text","text":"second"},
            // 7 chars unpadded -> 5 bytes; 8 with one "=" -> 5 bytes.
            {"type":"image","source":{"type":"base64","media_type":"image/png","data":"aGVsbG8"}},
            {"type":"image","source":{"type":"base64","media_type":"image/gif","data":"aGVsbG8="}},
            {"type":"image","source":{"type":"url","url":"https://example.com/a.png"}},
            {"type":"tool_reference","name":"x"}
        ]),
    );
    let events = parser.parse_line(line.as_bytes(), 2).into_events();
    let EventData::ToolResult(result) = &events[0].data else {
        unreachable!()
    };
    assert_eq!(
        result.content,
        "first\nsecond\n[image image/png, 5 bytes]\n[image image/gif, 5 bytes]\n[image block]\n[tool_reference block]"
    );
    assert_eq!(decode_base64("aGVsbG8="), b"hello");

    // A non-string, non-array content is kept as JSON; absent content is empty.
    let obj = tool_result_line("toolu_1", json!({"stdout": "ok"}));
    let events = parser.parse_line(obj.as_bytes(), 3).into_events();
    let EventData::ToolResult(result) = &events[0].data else {
        unreachable!()
    };
    assert_eq!(result.content, r#"{"stdout":"ok"}"#);
}

#[test]
fn result_is_error_wins_over_subtype() {
    let line = result_line(
        json!({"is_error":true,"subtype":"success","result":"model not found",
        "total_cost_usd":0,"api_error_status":404,"errors":["bad model", {"code": 7}]}),
    );
    let (events, _) = parse_bytes(line.as_bytes());
    let end = session_end(&events);
    assert!(end.is_error);
    assert_eq!(end.subtype.as_deref(), Some("success"));
    assert_eq!(end.api_error_status, Some(404));
    assert_eq!(
        end.errors.as_ref().unwrap(),
        &["bad model", r#"{"code":7}"#]
    );

    let line =
        result_line(json!({"subtype":"error_during_execution","is_error":false,"result":null}));
    let (events, _) = parse_bytes(line.as_bytes());
    let end = session_end(&events);
    assert!(!end.is_error, "subtype alone does not make a failure");
    assert_eq!(end.result, None);
}

#[test]
fn old_cost_usd_field() {
    let (events, summary) = parse_bytes(result_line(json!({"cost_usd": 0.42})).as_bytes());
    assert_eq!(session_end(&events).total_cost_usd, 0.42);
    assert_eq!(summary.cost_usd, 0.42);
    assert_eq!(summary.turns, 2);

    let (events, _) = parse_bytes(result_line(json!({})).as_bytes());
    assert_eq!(session_end(&events).total_cost_usd, 0.0);
}

#[test]
fn known_types_missing_required_fields_are_malformed() {
    let lines = [
        json!({"type":"assistant","session_id":"s1"}).to_string(),
        json!({"type":"system","subtype":"init","session_id":"s1","tools":[]}).to_string(),
        json!({"type":"user","session_id":"s1","message":{"content":[{"type":"tool_result"}]}})
            .to_string(),
        json!({"type":"rate_limit_event","rate_limit_info":{}}).to_string(),
        json!([1, 2]).to_string(),
        json!({"no_type": true}).to_string(),
    ];
    let (events, summary) = parse_bytes(lines.join("\n").as_bytes());
    let numbers: Vec<_> = summary.malformed.iter().map(|m| m.line).collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5, 6]);
    assert_eq!(
        summary.malformed[0].reason,
        "assistant line without object `message`"
    );
    assert_eq!(
        summary.malformed[1].reason,
        "system/init without string `model`"
    );
    assert_eq!(summary.malformed[4].reason, "not a JSON object");
    assert_eq!(events.len(), 6);
    assert!(events.iter().all(|e| e.event_type() == "error"));
    assert!(events.iter().all(|e| e.partition_key() == Some("s1")));

    // A result without any session id cannot make a session.end.
    let mut parser = ClaudeParser::new();
    let outcome = parser.parse_line(br#"{"type":"result","is_error":false}"#, 9);
    let LineOutcome::Malformed { reason, events } = outcome else {
        panic!("expected malformed, got {outcome:?}");
    };
    assert_eq!(reason, "result without `session_id`");
    assert_eq!(events.len(), 1);
}

#[test]
fn partly_bad_assistant_line_keeps_its_good_blocks() {
    let line = json!({"type":"assistant","session_id":"s1","message":{"id":"m1","content":[
        {"type":"text","text":"hello"},
        {"type":"tool_use","name":"Bash","input":{}}
    ]}})
    .to_string();
    let mut parser = ClaudeParser::new();
    let LineOutcome::Malformed { reason, events } = parser.parse_line(line.as_bytes(), 4) else {
        panic!("expected malformed");
    };
    assert_eq!(reason, "tool_use block without string `id` and `name`");
    let types: Vec<_> = events.iter().map(|e| e.event_type()).collect();
    assert_eq!(types, ["claude.text", "error"]);
}

#[test]
fn sub_agent_and_thinking_fields() {
    let line = json!({"type":"assistant","session_id":"s2","parent_tool_use_id":"toolu_task",
        "message":{"id":"msg_9","content":[{"type":"thinking","thinking":"","signature":"sig"},
        {"type":"tool_use","id":"toolu_2","name":"Grep","input":{"pattern":"fn"},"caller":{"type":"direct"}}]}})
    .to_string();
    let (events, _) = parse_bytes(line.as_bytes());
    let EventData::Thinking(thinking) = &events[0].data else {
        unreachable!()
    };
    assert_eq!(thinking.text, "");
    assert_eq!(thinking.signature.as_deref(), Some("sig"));
    assert_eq!(thinking.parent_tool_use_id.as_deref(), Some("toolu_task"));
    let EventData::ToolUse(tool) = &events[1].data else {
        unreachable!()
    };
    assert_eq!(tool.parent_tool_use_id.as_deref(), Some("toolu_task"));
    assert_eq!(tool.message_id.as_deref(), Some("msg_9"));
    assert_eq!(tool.session_id.as_deref(), Some("s2"));
    assert_eq!(events[1].extra["caller"], json!({"type":"direct"}));
}

#[test]
fn timestamps_of_a_burst_are_at_least_one_microsecond_apart() {
    // Many events from one line are stamped in a tight loop, faster than the clock moves.
    let blocks: Vec<Value> = (0..5000)
        .map(|i| json!({"type":"text","text":i.to_string()}))
        .collect();
    let line = json!({"type":"assistant","session_id":"s1","message":{"id":"m","content":blocks}});
    let (events, summary) = parse_bytes(line.to_string().as_bytes());
    assert_eq!(summary.events_of("claude.text"), 5000);
    assert_session_and_order(&events, "s1");
    let first = events[0].timestamp;
    let last = events[4999].timestamp;
    assert!(last.duration_since(first) >= jiff::SignedDuration::from_micros(4999));
}

// ---------------------------------------------------------------------------
// Ids that survive re-delivery

fn ids(events: &[vibes_events::Event]) -> Vec<vibes_events::EventId> {
    events.iter().map(|e| e.id).collect()
}

/// Parses `first` (the session so far), then `whole` (the same session after it wrote
/// more lines), as `vibes ingest claude` does on each run; the events of the shared
/// prefix keep their ids, so the second run's repeats de-duplicate.
fn assert_prefix_keeps_ids(first: &[u8], whole: &[u8]) -> (Vec<vibes_events::Event>, usize) {
    let (early, _) = parse_bytes(first);
    let (late, _) = parse_bytes(whole);
    assert!(late.len() > early.len(), "the appended lines add events");
    assert_eq!(ids(&late[..early.len()]), ids(&early));
    let union: std::collections::HashSet<_> = ids(&early).into_iter().chain(ids(&late)).collect();
    assert_eq!(
        union.len(),
        late.len(),
        "both runs together hold each event once"
    );
    (late, early.len())
}

#[test]
fn reparsing_gives_the_same_ids_though_not_the_same_timestamps() {
    let input = std::fs::read(EXAMPLE).unwrap();
    let (a, _) = parse_bytes(&input);
    std::thread::sleep(std::time::Duration::from_millis(2));
    let (b, _) = parse_bytes(&input);
    assert_eq!(ids(&a), ids(&b));
    assert!(
        b[0].timestamp > a[0].timestamp,
        "timestamps are the read time"
    );
    let distinct: std::collections::HashSet<_> = ids(&a).into_iter().collect();
    assert_eq!(distinct.len(), a.len(), "every event has its own id");
    for event in &a {
        assert_eq!(
            event.id.as_uuid().get_version_num(),
            8,
            "content ids, no time"
        );
    }
    // A session name is ours, not the stream's: it does not change ids.
    let mut named = Vec::new();
    ClaudeParser::new()
        .session_name("flaky")
        .parse_reader(&input[..], |e| named.push(e))
        .unwrap();
    assert_eq!(ids(&named), ids(&a));
}

#[test]
fn appended_lines_keep_the_ids_of_the_prefix_example() {
    let input = std::fs::read_to_string(EXAMPLE).unwrap();
    let lines: Vec<&str> = input.split_inclusive('\n').collect();
    for cut in 1..lines.len() {
        assert_prefix_keeps_ids(lines[..cut].concat().as_bytes(), input.as_bytes());
    }
}

#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn appended_lines_keep_the_ids_of_the_prefix_fixture() {
    let Some(dir) = fixtures_dir() else {
        eprintln!("skipping: fixtures not present at {FIXTURES}");
        return;
    };
    // The session of the report: 141 events, 53 tool calls, 7 tool errors.
    let input =
        std::fs::read_to_string(dir.join("presmihaylov-ccagent__claude_response1.jsonl")).unwrap();
    let lines: Vec<&str> = input.split_inclusive('\n').collect();
    let (late, _) = assert_prefix_keeps_ids(lines[..90].concat().as_bytes(), input.as_bytes());
    assert_eq!(late.len(), 141);
    assert_eq!(of_type(&late, "claude.tool_use").len(), 53);
    assert_eq!(tool_results(&late).iter().filter(|r| r.is_error).count(), 7);
}

#[test]
fn lines_without_uuid_are_told_apart_by_position() {
    // Two identical text lines of one message, no uuid: two events, two ids, stable.
    let text = r#"{"type":"assistant","session_id":"s1","message":{"id":"m1","content":[{"type":"text","text":"same"}]}}"#;
    let input = format!("{}\n{text}\n{text}\n", init_line("s1"));
    let (a, _) = parse_bytes(input.as_bytes());
    assert_eq!(a.len(), 3);
    assert_ne!(a[1].id, a[2].id);
    let (b, _) = parse_bytes(input.as_bytes());
    assert_eq!(ids(&a), ids(&b));
}
