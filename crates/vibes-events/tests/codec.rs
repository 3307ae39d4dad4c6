//! The flat JSON encoding: every type round-trips, unknown types and fields survive,
//! and bad input is a clear error.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use vibes_events::{ApiCall, ApiError, ApiUsage, Interrupt, TurnDuration};
use vibes_events::{
    BeadAbandoned, BeadClosed, BeadComment, BeadCreated, BeadStatus, BeadUpdated, Compact,
    DrainPause, DrainResume, DrainStart, DrainStop, ErrorEvent, Event, EventData, EventId,
    EventKind, IterationEnd, IterationStart, McpServer, ModelUsage, RateLimit, SessionEnd,
    SessionStart, Severity, Text, Thinking, Timestamp, ToolResult, ToolUse, Usage, source,
};
use vibes_events::{RunExit, RunLimit, RunSample, RunStart};

fn ts(s: &str) -> Timestamp {
    s.parse().expect("valid timestamp")
}

/// One fully populated event of every known kind: every optional field set, so the
/// round trip exercises all of them.
fn samples() -> Vec<Event> {
    let t = ts("2026-03-01T10:20:30.123456789Z");
    let mut start = SessionStart::new(
        "claude-sonnet-4-5-20250929",
        vec!["Bash".into(), "Read".into()],
    );
    start.session_id = Some("sess-1".into());
    start.cwd = Some("/home/dev/repo".into());
    start.permission_mode = Some("acceptEdits".into());
    start.api_key_source = Some("none".into());
    start.claude_code_version = Some("2.1.7".into());
    start.mcp_servers = Some(vec![McpServer::new("github", "connected")]);

    let mut end = SessionEnd::new("sess-1", 139, 515_335, 2.458_377_000_000_000_3);
    end.result = Some("done".into());
    end.is_error = true;
    end.subtype = Some("error_max_turns".into());
    end.duration_api_ms = Some(400_000);
    let mut usage = Usage::default();
    usage.input_tokens = 10;
    usage.output_tokens = 25;
    usage.cache_creation_input_tokens = 21_570;
    usage.cache_read_input_tokens = 7;
    usage.other.insert("service_tier".into(), json!("standard"));
    end.usage = Some(usage);
    let mut model = ModelUsage::default();
    model.input_tokens = 1;
    model.cost_usd = 0.135_487_5;
    model.other.insert("contextWindow".into(), json!(200_000));
    end.model_usage = Some(BTreeMap::from([("claude-opus-4-5".to_string(), model)]));
    end.permission_denials = Some(vec![json!({"tool_name": "Bash"})]);
    end.errors = Some(vec!["max turns reached".into()]);
    end.api_error_status = Some(429);
    end.stop_reason = Some("end_turn".into());
    end.terminal_reason = Some("max_turns".into());

    let mut compact = Compact::default();
    compact.session_id = Some("sess-1".into());
    compact.trigger = Some("auto".into());
    compact.pre_tokens = Some(155_000);
    compact.post_tokens = Some(32_000);
    compact.duration_ms = Some(4_200);

    let mut text = Text::new("Looking at the failing test now.");
    text.session_id = Some("sess-1".into());
    text.message_id = Some("msg_01".into());
    text.parent_tool_use_id = Some("toolu_parent".into());

    let mut thinking = Thinking::new("The test expects UTC.");
    thinking.signature = Some("EqQBCkYIBxgCKkB".into());
    thinking.session_id = Some("sess-1".into());
    thinking.message_id = Some("msg_01".into());
    thinking.parent_tool_use_id = Some("toolu_parent".into());

    let mut tool_use = ToolUse::new(
        "toolu_01",
        "Bash",
        json!({"command": "git status", "timeout": 120000}),
    );
    tool_use.session_id = Some("sess-1".into());
    tool_use.message_id = Some("msg_02".into());
    tool_use.parent_tool_use_id = Some("toolu_parent".into());

    let mut tool_result = ToolResult::new("toolu_01", "On branch main\nnothing to commit", true);
    tool_result.tool_name = Some("Bash".into());
    tool_result.session_id = Some("sess-1".into());
    tool_result.parent_tool_use_id = Some("toolu_parent".into());

    let mut rate = RateLimit::new("allowed_warning");
    rate.session_id = Some("sess-1".into());
    rate.rate_limit_type = Some("five_hour".into());
    rate.resets_at = Some(ts("2026-03-01T15:00:00Z"));
    rate.message = Some("Claude Opus limit reached, now using Sonnet 4".into());
    rate.fallback_model = Some("Sonnet 4".into());

    let mut api_usage = ApiUsage::new(3, 8, 121_689, 42, 17_842);
    api_usage
        .other
        .insert("service_tier".into(), json!("standard"));
    let mut api_call = ApiCall::new(api_usage);
    api_call.message_id = Some("msg_01".into());
    api_call.request_id = Some("req_01".into());
    api_call.model = Some("claude-opus-4-6".into());
    api_call.stop_reason = Some("end_turn".into());
    api_call.output_final = true;
    api_call.session_id = Some("sess-1".into());
    api_call.agent_id = Some("acompact-946d2b".into());
    api_call.is_sidechain = true;

    let mut api_error = ApiError::new("overloaded");
    api_error.status = Some(529);
    api_error.retry_attempt = Some(1);
    api_error.max_retries = Some(10);
    api_error.retry_in_ms = Some(559);
    api_error.cause = Some("FailedToOpenSocket".into());
    api_error.request_id = Some("req_02".into());
    api_error.session_id = Some("sess-1".into());
    api_error.agent_id = Some("aac57f5".into());

    let mut turn = TurnDuration::new(1_341_830);
    turn.session_id = Some("sess-1".into());
    turn.agent_id = Some("aac57f5".into());

    let mut interrupt = Interrupt::default();
    interrupt.during_tool_use = true;
    interrupt.session_id = Some("sess-1".into());
    interrupt.agent_id = Some("aac57f5".into());

    let mut created = BeadCreated::new("bd-042", "Fix the flaky router test");
    created.actor = Some("claude".into());
    created.status = Some("open".into());
    created.priority = Some(0);
    created.issue_type = Some("bug".into());

    let mut fields = Map::new();
    fields.insert("priority".into(), json!(1));
    fields.insert("assignee".into(), Value::Null);
    let mut updated = BeadUpdated::new("bd-042", fields);
    updated.actor = Some("dev".into());

    let mut status = BeadStatus::new("bd-042", "open", "in_progress");
    status.actor = Some("claude".into());

    let mut closed = BeadClosed::new("bd-042");
    closed.reason = Some("fixed in 3f2a".into());
    closed.actor = Some("claude".into());

    let mut comment = BeadComment::new("bd-042", "Repro: run with --test-threads=1");
    comment.actor = Some("dev".into());

    let mut drain_start = DrainStart::new("/home/dev/repo");
    drain_start.config = Some("max_failures = 3".into());

    let mut pause = DrainPause::default();
    pause.reason = Some("rate limited".into());
    let mut stop = DrainStop::default();
    stop.reason = Some("queue empty".into());

    let mut iteration_end = IterationEnd::new("bd-042", false, 8, 115_000, 0.42);
    iteration_end.error = Some("tests failed".into());
    iteration_end.session_id = Some("sess-1".into());

    let mut error = ErrorEvent::new("line 17: expected value", Severity::Warning);
    error.bead_id = Some("bd-042".into());
    error.session_id = Some("sess-1".into());

    let mut run_start = RunStart::new("run-1", vec!["claude".into(), "-p".into()]);
    run_start.name = Some("fixer".into());
    run_start.pid = Some(4242);
    run_start.max_rss_bytes = Some(2 << 30);
    run_start.max_cost_usd = Some(1.5);
    let mut sample = RunSample::new("run-1");
    sample.session_id = Some("sess-1".into());
    sample.processes = 3;
    sample.cpu_ms = 1_250;
    sample.cpu_percent = 12.5;
    sample.rss_bytes = 180 << 20;
    sample.cost_usd = Some(0.25);
    let mut limit = RunLimit::new("run-1", "rss", 2.5e9, 2.0e9);
    limit.session_id = Some("sess-1".into());
    let mut exit = RunExit::new("run-1", 61_000);
    exit.signal = Some(15);
    exit.stopped_by = Some("rss".into());

    let data: Vec<EventData> = vec![
        start.into(),
        end.into(),
        compact.into(),
        text.into(),
        thinking.into(),
        tool_use.into(),
        tool_result.into(),
        rate.into(),
        api_call.into(),
        api_error.into(),
        turn.into(),
        interrupt.into(),
        created.into(),
        updated.into(),
        status.into(),
        closed.into(),
        comment.into(),
        BeadAbandoned::new("bd-042", 3, 3, "tests failed").into(),
        drain_start.into(),
        pause.into(),
        DrainResume::default().into(),
        stop.into(),
        IterationStart::new("bd-042", "Fix the flaky router test", 1, 2).into(),
        iteration_end.into(),
        run_start.into(),
        sample.into(),
        limit.into(),
        exit.into(),
        error.into(),
    ];
    data.into_iter()
        .map(|d| Event::new(source::CLAUDE, d).with_timestamp(t))
        .collect()
}

#[test]
fn samples_cover_every_known_kind() {
    let kinds: Vec<EventKind> = samples().iter().filter_map(|e| e.data.kind()).collect();
    assert_eq!(kinds, EventKind::ALL);
}

#[test]
fn every_known_type_round_trips_losslessly() {
    for event in samples() {
        let json = event.to_json().unwrap();
        let back = Event::from_json(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(back, event, "{json}");
        assert_eq!(back.to_json().unwrap(), json, "re-encoding is stable");
    }
}

#[test]
fn encoding_is_flat_with_envelope_fields() {
    for event in samples() {
        let value: Value = serde_json::from_str(&event.to_json().unwrap()).unwrap();
        let object = value.as_object().unwrap();
        assert_eq!(object["id"], json!(event.id.to_string()));
        assert_eq!(object["type"], json!(event.event_type()));
        assert_eq!(object["timestamp"], json!("2026-03-01T10:20:30.123456789Z"));
        assert_eq!(object["source"], json!("claude"));
    }
}

#[test]
fn kind_names_round_trip_and_match_data() {
    for event in samples() {
        let kind = event.data.kind().unwrap();
        assert_eq!(kind.as_str(), event.event_type());
        assert_eq!(kind.as_str().parse::<EventKind>().unwrap(), kind);
    }
    assert!("claude.nope".parse::<EventKind>().is_err());
}

const SEED_TOOL_USE: &str = r#"{
  "type": "claude.tool_use",
  "timestamp": "2024-01-15T14:23:05Z",
  "source": "claude",
  "tool_id": "tool_abc123",
  "tool_name": "Bash",
  "input": {"command": "git status"}
}"#;

const SEED_BEAD_STATUS: &str = r#"{
  "type": "bead.status",
  "timestamp": "2024-01-15T14:23:10Z",
  "source": "bd",
  "bead_id": "bd-042",
  "old_status": "open",
  "new_status": "in_progress",
  "actor": "claude"
}"#;

const SEED_ITERATION_END: &str = r#"{
  "type": "iteration.end",
  "timestamp": "2024-01-15T14:25:00Z",
  "source": "atari",
  "bead_id": "bd-042",
  "success": true,
  "num_turns": 8,
  "duration_ms": 115000,
  "total_cost_usd": 0.42
}"#;

/// Re-encodes `input` and checks it is the input plus an `id`, field for field.
fn assert_reencodes_verbatim(input: &str) -> Event {
    let event = Event::from_json(input).unwrap();
    let mut out: Value = serde_json::from_str(&event.to_json().unwrap()).unwrap();
    let id = out
        .as_object_mut()
        .unwrap()
        .remove("id")
        .expect("encoded event has an id");
    assert_eq!(id, json!(event.id.to_string()));
    let original: Value = serde_json::from_str(input).unwrap();
    assert_eq!(out, original);
    event
}

#[test]
fn seed_tool_use_example_decodes_and_reencodes_verbatim() {
    let event = assert_reencodes_verbatim(SEED_TOOL_USE);
    let EventData::ToolUse(call) = &event.data else {
        panic!("decoded as {:?}", event.data)
    };
    assert_eq!(call.tool_id, "tool_abc123");
    assert_eq!(call.tool_name, "Bash");
    assert_eq!(call.input, json!({"command": "git status"}));
    assert_eq!(event.timestamp, ts("2024-01-15T14:23:05Z"));
    assert_eq!(event.source, source::CLAUDE);
}

#[test]
fn seed_bead_status_example_decodes_and_reencodes_verbatim() {
    let event = assert_reencodes_verbatim(SEED_BEAD_STATUS);
    let EventData::BeadStatus(status) = &event.data else {
        panic!("decoded as {:?}", event.data)
    };
    assert_eq!(
        (
            status.bead_id.as_str(),
            status.old_status.as_str(),
            status.new_status.as_str()
        ),
        ("bd-042", "open", "in_progress")
    );
    assert_eq!(status.actor.as_deref(), Some("claude"));
    assert_eq!(event.partition_key(), Some("bd-042"));
}

#[test]
fn seed_iteration_end_example_decodes_and_reencodes_verbatim() {
    let event = assert_reencodes_verbatim(SEED_ITERATION_END);
    let EventData::IterationEnd(end) = &event.data else {
        panic!("decoded as {:?}", event.data)
    };
    assert!(end.success);
    assert_eq!(
        (end.num_turns, end.duration_ms, end.total_cost_usd),
        (8, 115_000, 0.42)
    );
    assert_eq!(end.error, None);
    assert_eq!(event.source, source::INTERNAL);
}

#[test]
fn missing_id_is_derived_from_content_deterministically() {
    let a = Event::from_json(SEED_TOOL_USE).unwrap();
    let b = Event::from_json(SEED_TOOL_USE).unwrap();
    assert_eq!(a.id, b.id, "the same id-less input decodes to the same id");
    assert_eq!(a.id.as_uuid().get_version_num(), 7);
    let millis = a.timestamp.as_millisecond() as u64;
    assert_eq!(
        a.id.as_u128() >> 80,
        u128::from(millis),
        "v7 time bits are the event's"
    );

    let other = SEED_TOOL_USE.replace("git status", "git diff");
    assert_ne!(Event::from_json(&other).unwrap().id, a.id);

    // Key order does not matter: the id comes from the decoded content.
    let reordered = r#"{"input":{"command":"git status"},"tool_name":"Bash","tool_id":"tool_abc123",
        "source":"claude","timestamp":"2024-01-15T14:23:05Z","type":"claude.tool_use"}"#;
    assert_eq!(Event::from_json(reordered).unwrap().id, a.id);
}

#[test]
fn api_call_encodes_flat_with_nested_usage_and_explicit_finality() {
    let mut call = ApiCall::new(ApiUsage::new(1, 2, 3, 4, 5));
    call.message_id = Some("msg_1".into());
    let event = Event::claude(call).with_timestamp(ts("2026-02-12T14:47:09.231Z"));
    let value: Value = serde_json::from_str(&event.to_json().unwrap()).unwrap();
    assert_eq!(value["type"], json!("claude.api_call"));
    assert_eq!(value["message_id"], json!("msg_1"));
    assert_eq!(
        value["usage"],
        json!({"input_tokens": 1, "output_tokens": 2, "cache_creation_5m_input_tokens": 3,
               "cache_creation_1h_input_tokens": 4, "cache_read_input_tokens": 5})
    );
    assert_eq!(value["output_final"], json!(false), "a lower bound says so");
    assert!(value.get("is_sidechain").is_none());
    let EventData::ApiCall(back) = Event::from_json(&event.to_json().unwrap()).unwrap().data else {
        panic!("decodes as claude.api_call")
    };
    assert_eq!(back.usage.cache_creation_input_tokens(), 7);
}

#[test]
fn api_error_without_message_is_a_clear_error() {
    let json = r#"{"type":"claude.api_error","timestamp":"2026-01-01T00:00:00Z","source":"claude","status":529}"#;
    let err = Event::from_json(json).unwrap_err().to_string();
    assert!(
        err.contains("claude.api_error") && err.contains("message"),
        "{err}"
    );
}

#[test]
fn derived_ids_are_a_function_of_timestamp_and_key() {
    let t = ts("2026-02-12T14:11:56.103Z");
    let a = EventId::derived(t, b"session\0msg_1\0text\0-0");
    assert_eq!(a, EventId::derived(t, b"session\0msg_1\0text\0-0"));
    assert_eq!(a.as_uuid().get_version_num(), 7);
    assert_eq!(
        a.as_u128() >> 80,
        t.as_millisecond() as u128,
        "time bits are the event's"
    );
    assert_ne!(a, EventId::derived(t, b"session\0msg_1\0text\0-1"));
    let later = ts("2026-02-12T14:11:57.103Z");
    assert_ne!(a, EventId::derived(later, b"session\0msg_1\0text\0-0"));

    let u = EventId::derived_untimed(b"s1\0line 3");
    assert_eq!(u, EventId::derived_untimed(b"s1\0line 3"));
    assert_eq!(u.as_uuid().get_version_num(), 8);
    assert_ne!(u, EventId::derived_untimed(b"s1\0line 4"));
}

#[test]
fn given_id_is_kept() {
    let json = r#"{"id":"01890a5d-ac96-774b-bcce-b302099a8057","type":"drain.resume",
        "timestamp":"2024-01-15T14:25:00Z","source":"atari"}"#;
    let event = Event::from_json(json).unwrap();
    assert_eq!(event.id.to_string(), "01890a5d-ac96-774b-bcce-b302099a8057");
    assert_eq!(event.data, EventData::DrainResume(DrainResume::default()));
}

#[test]
fn new_events_get_fresh_v7_ids_in_order() {
    let a = Event::claude(Text::new("a"));
    let b = Event::claude(Text::new("b"));
    assert_ne!(a.id, b.id);
    assert_eq!(a.id.as_uuid().get_version_num(), 7);
    assert!(a.id < b.id, "v7 ids sort by creation");
}

#[test]
fn unknown_type_keeps_every_field_and_reencodes_unchanged() {
    let input = r#"{"id":"01890a5d-ac96-774b-bcce-b302099a8057","type":"groove.novelty_detected",
        "timestamp":"2026-01-09T08:00:00.5Z","source":"groove","session_id":"sess-9",
        "fingerprint":{"hash":"ab12","dims":[1,2.5,-3]},"cluster":null,"score":0.1,
        "big":18446744073709551615,"neg":-9223372036854775808,"flag":true,"note":"héllo ✓"}"#;
    let event = Event::from_json(input).unwrap();
    assert_eq!(
        event.data,
        EventData::Unknown {
            event_type: "groove.novelty_detected".into()
        }
    );
    assert_eq!(event.data.kind(), None);
    assert_eq!(event.event_type(), "groove.novelty_detected");
    assert_eq!(event.extra.len(), 8);
    assert_eq!(event.partition_key(), Some("sess-9"));

    let out: Value = serde_json::from_str(&event.to_json().unwrap()).unwrap();
    let original: Value = serde_json::from_str(input).unwrap();
    assert_eq!(out, original);
    assert_eq!(Event::from_json(&event.to_json().unwrap()).unwrap(), event);
}

#[test]
fn unknown_fields_on_known_types_are_kept() {
    let input = r#"{"type":"claude.text","timestamp":"2024-01-15T14:23:05Z","source":"claude",
        "text":"hi","model":"claude-opus-4-5","usage":{"output_tokens":5}}"#;
    let event = Event::from_json(input).unwrap();
    assert_eq!(event.data, EventData::Text(Text::new("hi")));
    assert_eq!(event.extra["model"], json!("claude-opus-4-5"));
    assert_eq!(event.extra["usage"], json!({"output_tokens": 5}));
    let out: Value = serde_json::from_str(&event.to_json().unwrap()).unwrap();
    assert_eq!(out["model"], json!("claude-opus-4-5"));
    assert_eq!(out["usage"], json!({"output_tokens": 5}));
}

#[test]
fn floats_round_trip_bit_exactly() {
    for cost in [
        0.1 + 0.2,
        2.458_377_000_000_000_3,
        1e-300,
        f64::MAX,
        0.135_487_5,
    ] {
        let event = Event::internal(IterationEnd::new("bd-1", true, 1, 1, cost));
        let back = Event::from_json(&event.to_json().unwrap()).unwrap();
        let EventData::IterationEnd(end) = back.data else {
            panic!()
        };
        assert_eq!(end.total_cost_usd.to_bits(), cost.to_bits(), "{cost}");
    }
}

#[test]
fn timestamps_keep_nanoseconds_and_normalise_offsets_to_utc() {
    let json = r#"{"type":"drain.resume","timestamp":"2025-12-30T12:34:56.123456789-08:00","source":"atari"}"#;
    let event = Event::from_json(json).unwrap();
    assert_eq!(event.timestamp, ts("2025-12-30T20:34:56.123456789Z"));
    let out: Value = serde_json::from_str(&event.to_json().unwrap()).unwrap();
    assert_eq!(out["timestamp"], json!("2025-12-30T20:34:56.123456789Z"));
}

#[test]
fn new_events_have_sub_second_utc_timestamps() {
    let event = Event::claude(Text::new("x"));
    let out: Value = serde_json::from_str(&event.to_json().unwrap()).unwrap();
    let stamp = out["timestamp"].as_str().unwrap();
    assert!(stamp.ends_with('Z'), "{stamp}");
    assert!(
        stamp.contains('.') || event.timestamp.subsec_nanosecond() == 0,
        "{stamp}"
    );
}

fn decode_error(json: &str) -> String {
    Event::from_json(json).expect_err(json).to_string()
}

#[test]
fn missing_envelope_fields_are_named() {
    assert!(
        decode_error(r#"{"timestamp":"2024-01-15T14:23:05Z","source":"x"}"#)
            .contains("missing field `type`")
    );
    assert!(decode_error(r#"{"type":"x","source":"x"}"#).contains("missing field `timestamp`"));
    assert!(
        decode_error(r#"{"type":"x","timestamp":"2024-01-15T14:23:05Z"}"#)
            .contains("missing field `source`")
    );
}

#[test]
fn known_type_with_missing_field_names_type_and_field() {
    let err = decode_error(
        r#"{"type":"claude.tool_use","timestamp":"2024-01-15T14:23:05Z","source":"claude","tool_id":"t"}"#,
    );
    assert!(err.contains("invalid `claude.tool_use` event"), "{err}");
    assert!(err.contains("tool_name"), "{err}");
}

#[test]
fn known_type_with_mistyped_field_is_an_error() {
    let err = decode_error(
        r#"{"type":"iteration.end","timestamp":"2024-01-15T14:25:00Z","source":"atari",
        "bead_id":"bd-1","success":"yes","num_turns":8,"duration_ms":1,"total_cost_usd":0.4}"#,
    );
    assert!(err.contains("invalid `iteration.end` event"), "{err}");
}

#[test]
fn bad_envelope_values_are_errors() {
    let bad_time = decode_error(r#"{"type":"x","timestamp":"yesterday","source":"x"}"#);
    assert!(
        bad_time.contains("line 1"),
        "position is reported: {bad_time}"
    );
    assert!(
        Event::from_json(r#"{"type":"x","timestamp":"2024-01-15T14:23:05","source":"x"}"#).is_err(),
        "a timestamp without offset is ambiguous"
    );
    assert!(
        Event::from_json(
            r#"{"id":"not-a-uuid","type":"x","timestamp":"2024-01-15T14:23:05Z","source":"x"}"#
        )
        .is_err()
    );
    assert!(
        Event::from_json(r#"{"type":7,"timestamp":"2024-01-15T14:23:05Z","source":"x"}"#).is_err()
    );
    assert!(Event::from_json(r#"["claude.text"]"#).is_err());
    assert!(Event::from_json(r#"{"type":"error","timestamp":"2024-01-15T14:23:05Z","source":"x","message":"m","severity":"meh"}"#).is_err());
}

#[test]
fn duplicate_keys_are_errors_not_silent_overwrites() {
    let err =
        decode_error(r#"{"type":"x","type":"y","timestamp":"2024-01-15T14:23:05Z","source":"x"}"#);
    assert!(err.contains("duplicate field `type`"), "{err}");
    let err =
        decode_error(r#"{"type":"x","timestamp":"2024-01-15T14:23:05Z","source":"x","a":1,"a":2}"#);
    assert!(err.contains("duplicate field `a`"), "{err}");
}

#[test]
fn extra_key_colliding_with_a_defined_field_fails_to_encode() {
    let event = Event::claude(Text::new("hi")).with_extra("text", "shadow");
    let err = event.to_json().unwrap_err().to_string();
    assert!(err.contains("`text`"), "{err}");
    let event = Event::claude(Text::new("hi")).with_extra("source", "elsewhere");
    assert!(event.to_json().is_err());
    let event = Event::claude(Text::new("hi")).with_extra("lang", "en");
    assert!(event.to_json().is_ok());
}

#[test]
fn partition_keys_follow_session_and_bead() {
    let by_kind: Vec<(String, Option<String>)> = samples()
        .iter()
        .map(|e| {
            (
                e.event_type().to_owned(),
                e.partition_key().map(str::to_owned),
            )
        })
        .collect();
    for (kind, key) in by_kind {
        let expected = match kind.split('.').next().unwrap() {
            "session" | "claude" => Some("sess-1"),
            "bead" | "iteration" => Some("bd-042"),
            "error" => Some("sess-1"),
            "drain" => None,
            "run" => Some("run-1"),
            other => panic!("unexpected family {other}"),
        };
        assert_eq!(key.as_deref(), expected, "{kind}");
    }
    let mut error = ErrorEvent::new("m", Severity::Error);
    error.bead_id = Some("bd-7".into());
    assert_eq!(Event::internal(error).partition_key(), Some("bd-7"));
}

#[test]
fn event_id_parses_and_converts() {
    let id: EventId = "01890a5d-ac96-774b-bcce-b302099a8057".parse().unwrap();
    assert_eq!(EventId::from_u128(id.as_u128()), id);
    assert!("01890a5d".parse::<EventId>().is_err());
}

/// The same event with its keys in another order: `type` last, as some producers
/// write it (vibes writes it first, and then decodes the data straight into its
/// struct; otherwise through a map).
fn type_last(event: &Event) -> String {
    let value: Value = serde_json::from_str(&event.to_json().unwrap()).unwrap();
    let mut fields: Vec<(String, Value)> = value.as_object().unwrap().clone().into_iter().collect();
    let at = fields.iter().position(|(k, _)| k == "type").unwrap();
    let ty = fields.remove(at);
    fields.push(ty);
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), v))
        .collect();
    format!("{{{}}}", body.join(","))
}

#[test]
fn key_order_does_not_change_what_decodes() {
    for event in samples() {
        let event = event.with_extra("x_extra", json!({"kept": [1, 2]}));
        let first = event.to_json().unwrap();
        assert!(first.starts_with(r#"{"id":"#) && first.contains(r#","type":"#));
        let last = type_last(&event);
        assert!(
            last.ends_with('}') && !last.starts_with(r#"{"type""#),
            "{last}"
        );
        let a = Event::from_json(&first).unwrap_or_else(|e| panic!("{first}: {e}"));
        let b = Event::from_json(&last).unwrap_or_else(|e| panic!("{last}: {e}"));
        assert_eq!(a, event, "{first}");
        assert_eq!(b, event, "{last}");
    }
}

#[test]
fn a_known_type_first_still_refuses_repeats_and_mistyped_fields() {
    let start = r#"{"type":"claude.text","timestamp":"2024-01-15T14:23:05Z","source":"claude""#;
    for (rest, expected) in [
        (r#","text":"a","text":"b"}"#, "duplicate field `text`"),
        (
            r#","text":"a","type":"claude.text"}"#,
            "duplicate field `type`",
        ),
        (r#","text":"a","source":"x"}"#, "duplicate field `source`"),
        (r#","text":"a","z":1,"z":2}"#, "duplicate field `z`"),
        (r#","text":7}"#, "invalid `claude.text` event"),
        (r#","session_id":"s"}"#, "missing field `text`"),
    ] {
        let err = decode_error(&format!("{start}{rest}"));
        assert!(err.contains(expected), "{rest}: {err}");
    }
    // The envelope may come after the type.
    let event = Event::from_json(
        r#"{"type":"claude.text","text":"hi","source":"claude","timestamp":"2024-01-15T14:23:05Z","id":"01890a5d-ac96-774b-bcce-b302099a8057"}"#,
    )
    .unwrap();
    assert_eq!(event.id.to_string(), "01890a5d-ac96-774b-bcce-b302099a8057");
    assert_eq!(event.source, "claude");
}
