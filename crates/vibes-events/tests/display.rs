//! Specification of the one-line display of events (`vibes tail` output).
//!
//! Why one file over 900 lines: it is one specification, a short test per event type
//! and rule (126 of them), in the order of the taxonomy; split, a type's line and the
//! rules it shares would be looked for in several places.
//!
//! Covers every event type's summary, the seed's tool one-liners and status symbols,
//! truncation at character boundaries, the single-line guarantee, colour only on
//! request, the `HH:MM:SS.mmm source summary` line, and duration and cost formatting.

use std::borrow::Cow;

use serde_json::{Map, Value, json};
use vibes_events::display::{
    COMMAND_WIDTH, DEFAULT_TEXT_WIDTH, DisplayOptions, status_symbol, truncate,
};
use vibes_events::{ApiCall, ApiError, ApiUsage, Interrupt, TurnDuration};
use vibes_events::{
    BeadAbandoned, BeadClosed, BeadComment, BeadCreated, BeadStatus, BeadUpdated, Compact,
    DrainPause, DrainResume, DrainStart, DrainStop, ErrorEvent, Event, EventData, IterationEnd,
    IterationStart, RateLimit, SessionEnd, SessionStart, Severity, Text, Thinking, Timestamp,
    ToolResult, ToolUse,
};
use vibes_events::{RunExit, RunLimit, RunSample, RunStart};

const ESC: char = '\u{1b}';

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// The fixed timestamp every line test uses.
fn fixed() -> Timestamp {
    ts("2024-01-15T14:23:05.123Z")
}

/// The plain, default-width summary of an event carrying `data`.
fn summary(data: impl Into<EventData>) -> String {
    Event::claude(data).summary().to_string()
}

/// The summary of an event carrying `data`, rendered with `options`.
fn summary_with(data: impl Into<EventData>, options: DisplayOptions) -> String {
    Event::claude(data).summary_with(options).to_string()
}

/// The summary of a `claude.tool_use` event.
fn tool(name: &str, input: Value) -> String {
    summary(ToolUse::new("toolu_01", name, input))
}

/// An event of a type this version does not know, decoded from JSON.
fn unknown(json: &str) -> Event {
    Event::from_json(json).expect("an unknown type decodes")
}

/// `s` with every `ESC [ ... m` sequence removed.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ESC && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn session_end(duration_ms: u64, cost: f64) -> SessionEnd {
    SessionEnd::new("abcdef0123456789", 3, duration_ms, cost)
}

/// The summary of a successful `iteration.end` with these stats.
fn iteration_done(duration_ms: u64, cost: f64) -> String {
    summary(IterationEnd::new("bd-042", true, 4, duration_ms, cost))
}

fn status(new_status: &str) -> String {
    summary(BeadStatus::new("bd-042", "open", new_status))
}

/// One event of every type (several for types with branches), all from a fixed time.
fn one_of_each() -> Vec<Event> {
    let mut start = SessionStart::new("claude-sonnet-4-5", vec!["Bash".into()]);
    start.session_id = Some("0123456789abcdef".into());
    let mut failed_end = session_end(850, 0.1355);
    failed_end.is_error = true;
    let mut compact = Compact::default();
    compact.trigger = Some("auto".into());
    compact.pre_tokens = Some(1000);
    compact.post_tokens = Some(100);
    let mut named_result = ToolResult::new("toolu_01", "done", false);
    named_result.tool_name = Some("Read".into());
    let mut fields = Map::new();
    fields.insert("title".into(), json!("New title"));
    let mut closed = BeadClosed::new("bd-042");
    closed.reason = Some("fixed".into());
    let mut pause = DrainPause::default();
    pause.reason = Some("rate limited".into());
    let mut failed_iteration = IterationEnd::new("bd-042", false, 2, 12_345, 2.4567);
    failed_iteration.error = Some("tests fail".into());
    let data: Vec<EventData> = vec![
        start.into(),
        session_end(12_345, 2.4567).into(),
        failed_end.into(),
        compact.into(),
        Text::new("Hello").into(),
        Thinking::new("hmm").into(),
        Thinking::new("").into(),
        ToolUse::new("toolu_01", "Bash", json!({"command": "git status"})).into(),
        ToolUse::new("toolu_02", "Read", json!({"file_path": "/src/lib.rs"})).into(),
        ToolResult::new("toolu_01", "ok", false).into(),
        ToolResult::new("toolu_01", "boom", true).into(),
        named_result.into(),
        RateLimit::new("allowed").into(),
        api_call_sample(Some("end_turn")).into(),
        api_call_sample(None).into(),
        api_error_sample().into(),
        ApiError::new("boom").into(),
        TurnDuration::new(1_341_830).into(),
        Interrupt::default().into(),
        BeadCreated::new("bd-042", "Fix it").into(),
        BeadUpdated::new("bd-042", fields).into(),
        BeadStatus::new("bd-042", "open", "in_progress").into(),
        BeadStatus::new("bd-042", "in_progress", "closed").into(),
        BeadStatus::new("bd-042", "in_progress", "failed").into(),
        closed.into(),
        BeadComment::new("bd-042", "LGTM").into(),
        BeadAbandoned::new("bd-042", 3, 3, "tests fail").into(),
        DrainStart::new("/repo").into(),
        pause.into(),
        DrainResume::default().into(),
        DrainStop::default().into(),
        IterationStart::new("bd-042", "Fix it", 1, 1).into(),
        IterationEnd::new("bd-042", true, 4, 515_000, 0.5).into(),
        failed_iteration.into(),
        RunStart::new("run-1", vec!["claude".into()]).into(),
        RunSample::new("run-1").into(),
        RunLimit::new("run-1", "cost", 2.5, 2.0).into(),
        RunExit::new("run-1", 1_000).into(),
        ErrorEvent::new("careful", Severity::Warning).into(),
        ErrorEvent::new("broken", Severity::Error).into(),
        ErrorEvent::new("dead", Severity::Fatal).into(),
    ];
    let mut events: Vec<Event> = data
        .into_iter()
        .map(|d| Event::claude(d).with_timestamp(fixed()))
        .collect();
    events.push(unknown(
        r#"{"type":"custom.thing","timestamp":"2024-01-15T14:23:05.123Z","source":"claude","a":1}"#,
    ));
    events
}

// ---------------------------------------------------------------------------------------
// session.*
// ---------------------------------------------------------------------------------------

#[test]
fn session_start_shows_short_session_id_model_and_tool_count() {
    let mut start = SessionStart::new(
        "claude-sonnet-4-5",
        vec!["Bash".into(), "Read".into(), "Edit".into()],
    );
    start.session_id = Some("0123456789abcdef".into());
    assert_eq!(
        summary(start),
        "▶ session 01234567 started: claude-sonnet-4-5 (3 tools)"
    );
}

#[test]
fn session_start_without_session_id_omits_it() {
    let start = SessionStart::new("claude-opus-4", vec![]);
    assert_eq!(summary(start), "▶ session started: claude-opus-4 (0 tools)");
}

#[test]
fn session_end_success_shows_ended_with_default_subtype_and_stats() {
    assert_eq!(
        summary(session_end(12_345, 2.4567)),
        "✓ session abcdef01 ended: success, 3 turns, 12.3s, $2.46"
    );
}

#[test]
fn session_end_is_error_shows_failed_with_default_subtype() {
    let mut end = session_end(850, 0.1355);
    end.is_error = true;
    assert_eq!(
        summary(end),
        "✗ session abcdef01 failed: error, 3 turns, 850ms, $0.1355"
    );
}

#[test]
fn session_end_failure_is_decided_by_is_error_not_subtype() {
    let mut end = session_end(850, 0.1355);
    end.is_error = true;
    end.subtype = Some("success".into());
    assert_eq!(
        summary(end),
        "✗ session abcdef01 failed: success, 3 turns, 850ms, $0.1355"
    );
}

#[test]
fn session_end_shows_subtype_when_present() {
    let mut end = session_end(515_000, 1.0);
    end.is_error = true;
    end.subtype = Some("error_max_turns".into());
    assert_eq!(
        summary(end),
        "✗ session abcdef01 failed: error_max_turns, 3 turns, 8m35s, $1.00"
    );
}

#[test]
fn session_compact_with_both_token_counts_shows_before_and_after() {
    let mut compact = Compact::default();
    compact.trigger = Some("auto".into());
    compact.pre_tokens = Some(150_000);
    compact.post_tokens = Some(30_000);
    assert_eq!(
        summary(compact),
        "⇣ context compacted (auto): 150000 → 30000 tokens"
    );
}

#[test]
fn session_compact_with_only_pre_tokens_shows_tokens_before() {
    let mut compact = Compact::default();
    compact.trigger = Some("manual".into());
    compact.pre_tokens = Some(150_000);
    assert_eq!(
        summary(compact),
        "⇣ context compacted (manual): 150000 tokens before"
    );
}

#[test]
fn session_compact_without_token_counts_or_trigger_is_bare() {
    assert_eq!(summary(Compact::default()), "⇣ context compacted");
}

// ---------------------------------------------------------------------------------------
// claude.*
// ---------------------------------------------------------------------------------------

#[test]
fn text_shows_the_text_itself() {
    assert_eq!(summary(Text::new("Hello, world")), "Hello, world");
}

#[test]
fn thinking_with_text_is_prefixed_with_thinking() {
    assert_eq!(summary(Thinking::new("let me see")), "thinking: let me see");
}

#[test]
fn empty_thinking_shows_placeholder() {
    assert_eq!(summary(Thinking::new("")), "(thinking)");
}

#[test]
fn tool_result_ok_shows_check_tool_name_and_content() {
    let mut result = ToolResult::new("toolu_01", "3 files changed", false);
    result.tool_name = Some("Bash".into());
    assert_eq!(summary(result), "✓ Bash: 3 files changed");
}

#[test]
fn tool_result_error_shows_cross() {
    let mut result = ToolResult::new("toolu_01", "command not found", true);
    result.tool_name = Some("Bash".into());
    assert_eq!(summary(result), "✗ Bash: command not found");
}

#[test]
fn tool_result_without_tool_name_falls_back_to_tool_id() {
    assert_eq!(
        summary(ToolResult::new("toolu_01", "done", false)),
        "✓ toolu_01: done"
    );
    assert_eq!(
        summary(ToolResult::new("toolu_02", "denied", true)),
        "✗ toolu_02: denied"
    );
}

fn api_call_sample(stop_reason: Option<&str>) -> ApiCall {
    let mut call = ApiCall::new(ApiUsage::new(3, 8, 121_689, 0, 17_842));
    call.model = Some("claude-opus-4-6".into());
    call.stop_reason = stop_reason.map(str::to_owned);
    call.output_final = stop_reason.is_some();
    call
}

fn api_error_sample() -> ApiError {
    let mut error = ApiError::new("overloaded");
    error.status = Some(529);
    error.retry_attempt = Some(1);
    error.max_retries = Some(10);
    error.retry_in_ms = Some(559);
    error
}

#[test]
fn api_call_shows_model_tokens_and_stop_reason() {
    assert_eq!(
        summary(api_call_sample(Some("end_turn"))),
        "⇄ claude-opus-4-6: 3 in, 8 out, 121689 cache write, 17842 cache read (end_turn)"
    );
}

#[test]
fn api_call_without_stop_reason_says_its_output_is_a_lower_bound() {
    let mut call = api_call_sample(None);
    call.agent_id = Some("aac57f5".into());
    assert_eq!(
        summary(call),
        "⇄ claude-opus-4-6 [agent aac57f5]: 3 in, 8 out, 121689 cache write, 17842 cache read (output so far)"
    );
}

#[test]
fn api_error_shows_status_message_and_retry() {
    assert_eq!(
        summary(api_error_sample()),
        "✗ API error 529: overloaded (retry 1/10 in 559ms)"
    );
    assert_eq!(
        summary(ApiError::new("socket closed")),
        "✗ API error: socket closed"
    );
}

#[test]
fn turn_duration_and_interrupt() {
    assert_eq!(summary(TurnDuration::new(1_341_830)), "⏱ turn took 22m21s");
    assert_eq!(summary(Interrupt::default()), "⏹ interrupted by the user");
    let mut during = Interrupt::default();
    during.during_tool_use = true;
    assert_eq!(summary(during), "⏹ interrupted by the user during tool use");
}

#[test]
fn rate_limit_names_the_fallback_model() {
    let mut limit = RateLimit::new("fallback");
    limit.fallback_model = Some("Sonnet 4".into());
    assert_eq!(summary(limit), "⏳ rate limit fallback, now using Sonnet 4");
}

#[test]
fn rate_limit_with_status_only() {
    assert_eq!(summary(RateLimit::new("allowed")), "⏳ rate limit allowed");
}

#[test]
fn rate_limit_with_type_and_reset_time_in_utc() {
    let mut limit = RateLimit::new("allowed_warning");
    limit.rate_limit_type = Some("five_hour".into());
    limit.resets_at = Some(ts("2024-01-15T21:00:00+02:00"));
    assert_eq!(
        summary(limit),
        "⏳ rate limit allowed_warning (five_hour), resets 2024-01-15 19:00 UTC"
    );
}

// ---------------------------------------------------------------------------------------
// Tool one-liners (claude.tool_use)
// ---------------------------------------------------------------------------------------

#[test]
fn bash_tool_use_shows_command_after_dollar() {
    assert_eq!(
        tool(
            "Bash",
            json!({"command": "git status", "description": "status"})
        ),
        "$ git status"
    );
}

#[test]
fn read_tool_use_shows_file_path() {
    assert_eq!(
        tool(
            "Read",
            json!({"file_path": "/repo/src/main.rs", "limit": 10})
        ),
        "Read: /repo/src/main.rs"
    );
}

#[test]
fn edit_tool_use_shows_file_path() {
    assert_eq!(
        tool(
            "Edit",
            json!({"file_path": "/repo/src/lib.rs", "old_string": "a", "new_string": "b"})
        ),
        "Edit: /repo/src/lib.rs"
    );
}

#[test]
fn write_tool_use_shows_file_path() {
    assert_eq!(
        tool(
            "Write",
            json!({"file_path": "/repo/NOTES.md", "content": "x"})
        ),
        "Write: /repo/NOTES.md"
    );
}

#[test]
fn glob_tool_use_shows_pattern() {
    assert_eq!(tool("Glob", json!({"pattern": "**/*.rs"})), "Glob: **/*.rs");
}

#[test]
fn grep_tool_use_shows_pattern() {
    assert_eq!(
        tool("Grep", json!({"pattern": "fn main", "path": "src"})),
        "Grep: fn main"
    );
}

#[test]
fn unknown_tool_shows_tool_name() {
    assert_eq!(
        tool("mcp__github__create_issue", json!({"title": "x"})),
        "Tool: mcp__github__create_issue"
    );
    assert_eq!(tool("Task", json!({})), "Tool: Task");
}

#[test]
fn bash_without_command_falls_back_to_tool_name() {
    assert_eq!(
        tool("Bash", json!({"description": "no command"})),
        "Tool: Bash"
    );
}

#[test]
fn bash_with_non_string_command_falls_back_to_tool_name() {
    assert_eq!(
        tool("Bash", json!({"command": ["ls", "-la"]})),
        "Tool: Bash"
    );
}

#[test]
fn file_tool_without_its_field_falls_back_to_tool_name() {
    assert_eq!(tool("Read", json!({"path": "/x"})), "Tool: Read");
    assert_eq!(tool("Grep", json!({"file_path": "/x"})), "Tool: Grep");
}

#[test]
fn tool_input_that_is_not_an_object_falls_back_to_tool_name() {
    assert_eq!(tool("Write", json!("just a string")), "Tool: Write");
}

#[test]
fn bash_command_of_exactly_60_chars_is_not_cut() {
    let command = "x".repeat(COMMAND_WIDTH);
    assert_eq!(COMMAND_WIDTH, 60);
    assert_eq!(
        tool("Bash", json!({ "command": command })),
        format!("$ {command}")
    );
}

#[test]
fn bash_command_longer_than_60_chars_is_cut_to_60_with_ellipsis() {
    let command = format!(
        "cargo test --workspace --all-features -- {}",
        "a".repeat(40)
    );
    assert!(command.chars().count() > 60);
    let shown = tool("Bash", json!({ "command": command }));
    let rest = shown.strip_prefix("$ ").expect("starts with `$ `");
    assert_eq!(rest.chars().count(), 60);
    assert!(rest.ends_with('…'));
    let kept: String = command.chars().take(59).collect();
    assert_eq!(rest, format!("{kept}…"));
}

#[test]
fn bash_command_cut_never_splits_a_multibyte_char() {
    let command = format!("echo {}", "日本語".repeat(30));
    let shown = tool("Bash", json!({ "command": command }));
    let rest = shown.strip_prefix("$ ").expect("starts with `$ `");
    assert_eq!(rest.chars().count(), 60);
    let kept: String = command.chars().take(59).collect();
    assert_eq!(rest, format!("{kept}…"));
}

#[test]
fn multi_line_bash_command_renders_on_one_line() {
    assert_eq!(
        tool("Bash", json!({"command": "cd /repo &&\n\tmake test"})),
        "$ cd /repo &&  make test"
    );
}

// ---------------------------------------------------------------------------------------
// bead.*
// ---------------------------------------------------------------------------------------

#[test]
fn bead_created_shows_plus_id_and_title() {
    assert_eq!(
        summary(BeadCreated::new("bd-042", "Fix the parser")),
        "+ bd-042 Fix the parser"
    );
}

#[test]
fn bead_updated_lists_changed_field_names() {
    let mut fields = Map::new();
    fields.insert("priority".into(), json!(1));
    fields.insert("title".into(), json!("New title"));
    assert_eq!(
        summary(BeadUpdated::new("bd-042", fields)),
        "~ bd-042 updated: priority, title"
    );
}

#[test]
fn status_symbol_in_progress_is_arrow() {
    assert_eq!(status_symbol("in_progress"), "→");
}

#[test]
fn status_symbol_closed_and_completed_are_check() {
    assert_eq!(status_symbol("closed"), "✓");
    assert_eq!(status_symbol("completed"), "✓");
}

#[test]
fn status_symbol_failed_is_cross() {
    assert_eq!(status_symbol("failed"), "✗");
}

#[test]
fn status_symbol_other_statuses_are_bullet() {
    for other in ["open", "blocked", "deferred", "tombstone", ""] {
        assert_eq!(status_symbol(other), "•", "status {other:?}");
    }
}

#[test]
fn bead_status_in_progress_shows_arrow_id_and_status() {
    assert_eq!(status("in_progress"), "→ bd-042 in_progress");
}

#[test]
fn bead_status_closed_shows_check() {
    assert_eq!(status("closed"), "✓ bd-042 closed");
}

#[test]
fn bead_status_completed_shows_check() {
    assert_eq!(status("completed"), "✓ bd-042 completed");
}

#[test]
fn bead_status_failed_shows_cross() {
    assert_eq!(status("failed"), "✗ bd-042 failed");
}

#[test]
fn bead_status_other_shows_bullet() {
    assert_eq!(status("blocked"), "• bd-042 blocked");
    assert_eq!(status("open"), "• bd-042 open");
}

#[test]
fn bead_closed_with_reason_shows_reason() {
    let mut closed = BeadClosed::new("bd-042");
    closed.reason = Some("fixed in abc123".into());
    assert_eq!(summary(closed), "✓ bd-042 closed: fixed in abc123");
}

#[test]
fn bead_closed_without_reason_has_no_colon() {
    assert_eq!(summary(BeadClosed::new("bd-042")), "✓ bd-042 closed");
}

#[test]
fn bead_comment_shows_pen_id_and_comment() {
    assert_eq!(
        summary(BeadComment::new("bd-042", "looks good")),
        "✎ bd-042: looks good"
    );
}

#[test]
fn bead_abandoned_shows_attempts_and_last_error() {
    assert_eq!(
        summary(BeadAbandoned::new("bd-042", 3, 3, "tests fail")),
        "✗ bd-042 abandoned after 3/3 attempts: tests fail"
    );
}

// ---------------------------------------------------------------------------------------
// drain.* and iteration.*
// ---------------------------------------------------------------------------------------

#[test]
fn drain_start_shows_work_dir() {
    assert_eq!(
        summary(DrainStart::new("/home/me/repo")),
        "▶ drain started in /home/me/repo"
    );
}

#[test]
fn drain_pause_with_reason_shows_reason() {
    let mut pause = DrainPause::default();
    pause.reason = Some("rate limited".into());
    assert_eq!(summary(pause), "⏸ drain paused: rate limited");
}

#[test]
fn drain_pause_without_reason_is_bare() {
    assert_eq!(summary(DrainPause::default()), "⏸ drain paused");
}

#[test]
fn drain_resume_is_shown() {
    assert_eq!(summary(DrainResume::default()), "▶ drain resumed");
}

#[test]
fn drain_stop_with_reason_shows_reason() {
    let mut stop = DrainStop::default();
    stop.reason = Some("no ready beads".into());
    assert_eq!(summary(stop), "■ drain stopped: no ready beads");
}

#[test]
fn drain_stop_without_reason_is_bare() {
    assert_eq!(summary(DrainStop::default()), "■ drain stopped");
}

// ---------------------------------------------------------------------------------------
// run.*
// ---------------------------------------------------------------------------------------

#[test]
fn run_start_shows_name_command_and_pid() {
    let mut start = RunStart::new("run-1", vec!["claude".into(), "-p".into(), "fix it".into()]);
    start.name = Some("fixer".into());
    start.pid = Some(4242);
    assert_eq!(summary(start), "▶ run fixer: claude -p fix it (pid 4242)");
    assert_eq!(
        summary(RunStart::new("run-1", vec!["agent".into()])),
        "▶ run: agent"
    );
}

#[test]
fn run_sample_shows_cpu_memory_processes_files_and_cost() {
    let mut sample = RunSample::new("run-1");
    sample.cpu_percent = 37.4;
    sample.rss_bytes = 150 << 20;
    sample.processes = 3;
    sample.open_files = 12;
    assert_eq!(
        summary(sample.clone()),
        "· cpu 37%, rss 150.0 MiB, 3 processes, 12 files open"
    );
    sample.cost_usd = Some(1.234);
    assert!(summary(sample).ends_with(", 12 files open, $1.23"));
}

#[test]
fn run_limit_shows_values_in_the_limits_unit() {
    assert_eq!(
        summary(RunLimit::new(
            "run-1",
            "rss",
            (3u64 << 30) as f64,
            (2u64 << 30) as f64
        )),
        "✋ run over its rss limit: 3.00 GiB of 2.00 GiB"
    );
    assert_eq!(
        summary(RunLimit::new("run-1", "cost", 5.5, 5.0)),
        "✋ run over its cost limit: $5.50 of $5.00"
    );
    assert_eq!(
        summary(RunLimit::new("run-1", "timeout", 61_000.0, 60_000.0)),
        "✋ run over its timeout limit: 1m01s of 1m00s"
    );
}

#[test]
fn run_exit_shows_code_or_signal_duration_and_what_stopped_it() {
    let mut exit = RunExit::new("run-1", 12_300);
    exit.code = Some(0);
    assert!(exit.success());
    assert_eq!(summary(exit), "■ run exited with code 0 after 12.3s");
    let mut killed = RunExit::new("run-1", 500);
    killed.signal = Some(9);
    killed.stopped_by = Some("rss".into());
    assert!(!killed.success());
    assert_eq!(
        summary(killed),
        "■ run killed by signal 9 after 500ms, stopped by rss"
    );
}

#[test]
fn iteration_start_shows_id_title_priority_and_attempt() {
    assert_eq!(
        summary(IterationStart::new("bd-042", "Fix the parser", 0, 2)),
        "→ bd-042 Fix the parser (P0, attempt 2)"
    );
}

#[test]
fn iteration_end_success_shows_done_with_stats() {
    assert_eq!(
        summary(IterationEnd::new("bd-042", true, 4, 515_000, 0.1355)),
        "✓ bd-042 done: 4 turns, 8m35s, $0.1355"
    );
}

#[test]
fn iteration_end_failure_with_error_shows_error_then_stats() {
    let mut end = IterationEnd::new("bd-042", false, 4, 3_720_000, 2.4567);
    end.error = Some("tests fail".into());
    assert_eq!(
        summary(end),
        "✗ bd-042 failed: tests fail (4 turns, 1h02m, $2.46)"
    );
}

#[test]
fn iteration_end_failure_without_error_shows_stats_only() {
    assert_eq!(
        summary(IterationEnd::new("bd-042", false, 1, 850, 0.05)),
        "✗ bd-042 failed (1 turns, 850ms, $0.0500)"
    );
}

#[test]
fn iteration_end_success_flag_wins_over_error_text() {
    let mut end = IterationEnd::new("bd-042", true, 4, 850, 0.05);
    end.error = Some("flaky warning".into());
    assert_eq!(summary(end), "✓ bd-042 done: 4 turns, 850ms, $0.0500");
}

// ---------------------------------------------------------------------------------------
// error and unknown types
// ---------------------------------------------------------------------------------------

#[test]
fn error_warning_shows_warning_sign_and_severity() {
    assert_eq!(
        summary(ErrorEvent::new("skipped malformed line", Severity::Warning)),
        "⚠ warning: skipped malformed line"
    );
}

#[test]
fn error_error_shows_cross_and_severity() {
    assert_eq!(
        summary(ErrorEvent::new("append failed", Severity::Error)),
        "✗ error: append failed"
    );
}

#[test]
fn error_fatal_shows_cross_and_severity() {
    assert_eq!(
        summary(ErrorEvent::new("cannot connect", Severity::Fatal)),
        "✗ fatal: cannot connect"
    );
}

#[test]
fn unknown_type_shows_type_and_field_count() {
    let event = unknown(
        r#"{"type":"custom.thing","timestamp":"2024-01-15T14:23:05Z","source":"x","a":1,"b":"two"}"#,
    );
    assert!(matches!(event.data, EventData::Unknown { .. }));
    assert_eq!(event.summary().to_string(), "custom.thing (2 fields)");
}

#[test]
fn unknown_type_with_one_field_uses_singular() {
    let event =
        unknown(r#"{"type":"custom.thing","timestamp":"2024-01-15T14:23:05Z","source":"x","a":1}"#);
    assert_eq!(event.summary().to_string(), "custom.thing (1 field)");
}

#[test]
fn unknown_type_without_fields_shows_zero_fields() {
    let event =
        unknown(r#"{"type":"custom.thing","timestamp":"2024-01-15T14:23:05Z","source":"x"}"#);
    assert_eq!(event.summary().to_string(), "custom.thing (0 fields)");
}

// ---------------------------------------------------------------------------------------
// Durations and costs
// ---------------------------------------------------------------------------------------

#[test]
fn duration_under_a_second_is_in_milliseconds() {
    assert_eq!(
        iteration_done(850, 2.0),
        "✓ bd-042 done: 4 turns, 850ms, $2.00"
    );
    assert_eq!(iteration_done(0, 2.0), "✓ bd-042 done: 4 turns, 0ms, $2.00");
    assert_eq!(
        iteration_done(999, 2.0),
        "✓ bd-042 done: 4 turns, 999ms, $2.00"
    );
}

#[test]
fn duration_under_a_minute_is_seconds_with_one_decimal() {
    assert_eq!(
        iteration_done(12_345, 2.0),
        "✓ bd-042 done: 4 turns, 12.3s, $2.00"
    );
    assert_eq!(
        iteration_done(1_000, 2.0),
        "✓ bd-042 done: 4 turns, 1.0s, $2.00"
    );
}

#[test]
fn duration_under_an_hour_is_minutes_and_padded_seconds() {
    assert_eq!(
        iteration_done(515_000, 2.0),
        "✓ bd-042 done: 4 turns, 8m35s, $2.00"
    );
    assert_eq!(
        iteration_done(60_000, 2.0),
        "✓ bd-042 done: 4 turns, 1m00s, $2.00"
    );
    assert_eq!(
        iteration_done(65_000, 2.0),
        "✓ bd-042 done: 4 turns, 1m05s, $2.00"
    );
}

#[test]
fn duration_of_an_hour_or_more_is_hours_and_padded_minutes() {
    assert_eq!(
        iteration_done(3_720_000, 2.0),
        "✓ bd-042 done: 4 turns, 1h02m, $2.00"
    );
    assert_eq!(
        iteration_done(3_600_000, 2.0),
        "✓ bd-042 done: 4 turns, 1h00m, $2.00"
    );
    assert_eq!(
        iteration_done(36_000_000, 2.0),
        "✓ bd-042 done: 4 turns, 10h00m, $2.00"
    );
}

#[test]
fn durations_render_the_same_in_session_end() {
    assert_eq!(
        summary(session_end(3_720_000, 2.4567)),
        "✓ session abcdef01 ended: success, 3 turns, 1h02m, $2.46"
    );
    assert_eq!(
        summary(session_end(515_000, 0.1355)),
        "✓ session abcdef01 ended: success, 3 turns, 8m35s, $0.1355"
    );
}

#[test]
fn cost_of_a_dollar_or_more_has_two_decimals() {
    assert_eq!(
        iteration_done(850, 2.4567),
        "✓ bd-042 done: 4 turns, 850ms, $2.46"
    );
    assert_eq!(
        iteration_done(850, 1.0),
        "✓ bd-042 done: 4 turns, 850ms, $1.00"
    );
    assert_eq!(
        iteration_done(850, 123.456),
        "✓ bd-042 done: 4 turns, 850ms, $123.46"
    );
}

#[test]
fn cost_below_a_dollar_has_four_decimals() {
    assert_eq!(
        iteration_done(850, 0.1355),
        "✓ bd-042 done: 4 turns, 850ms, $0.1355"
    );
    assert_eq!(
        iteration_done(850, 0.99),
        "✓ bd-042 done: 4 turns, 850ms, $0.9900"
    );
    assert_eq!(
        iteration_done(850, 0.0),
        "✓ bd-042 done: 4 turns, 850ms, $0.0000"
    );
}

// ---------------------------------------------------------------------------------------
// display::truncate
// ---------------------------------------------------------------------------------------

#[test]
fn truncate_returns_input_borrowed_when_it_fits() {
    for (text, max) in [
        ("abc", 3),
        ("abc", 10),
        ("", 0),
        ("", 5),
        ("日本語", 3),
        ("😀é", 2),
    ] {
        let out = truncate(text, max);
        let is_input = matches!(out, Cow::Borrowed(s) if std::ptr::eq(s, text));
        assert!(
            is_input,
            "{text:?} at {max} should be the input itself, got {out:?}"
        );
    }
}

#[test]
fn truncate_cuts_to_exactly_max_chars_ending_with_ellipsis() {
    let out = truncate("abcdefghij", 5);
    assert!(matches!(out, Cow::Owned(_)));
    assert_eq!(out, "abcd…");
    assert_eq!(out.chars().count(), 5);
}

#[test]
fn truncate_to_one_char_is_just_the_ellipsis() {
    assert_eq!(truncate("abc", 1), "…");
}

#[test]
fn truncate_to_zero_chars_is_empty() {
    assert_eq!(truncate("abc", 0), "");
}

#[test]
fn truncate_never_splits_two_byte_chars() {
    assert_eq!(truncate("éééééé", 4), "ééé…");
    assert_eq!(truncate("aéaéaé", 3), "aé…");
}

#[test]
fn truncate_never_splits_three_byte_chars() {
    assert_eq!(truncate("日本語のテキスト", 4), "日本語…");
}

#[test]
fn truncate_never_splits_four_byte_chars() {
    assert_eq!(truncate("😀😃😄😁", 3), "😀😃…");
}

#[test]
fn truncate_at_every_width_keeps_a_char_prefix_of_exact_length() {
    let text = "aé日😀bè本😃c";
    let chars: Vec<char> = text.chars().collect();
    for max in 1..chars.len() {
        let out = truncate(text, max);
        let expected: String = chars[..max - 1].iter().chain(['…'].iter()).collect();
        assert_eq!(out, expected, "max {max}");
        assert_eq!(out.chars().count(), max, "max {max}");
    }
    assert_eq!(truncate(text, chars.len()), text);
}

#[test]
fn truncate_keeps_control_characters() {
    assert_eq!(truncate("a\nb\u{1b}[31m", 20), "a\nb\u{1b}[31m");
}

// ---------------------------------------------------------------------------------------
// Free-text width
// ---------------------------------------------------------------------------------------

#[test]
fn text_width_cuts_claude_text_to_exact_width_with_ellipsis() {
    let out = summary_with(
        Text::new("abcdefghij"),
        DisplayOptions::plain().text_width(5),
    );
    assert_eq!(out, "abcd…");
    assert_eq!(out.chars().count(), 5);
}

#[test]
fn text_width_leaves_text_that_fits_unchanged() {
    assert_eq!(
        summary_with(Text::new("abcde"), DisplayOptions::plain().text_width(5)),
        "abcde"
    );
}

#[test]
fn text_width_cut_keeps_two_byte_chars_whole() {
    let out = summary_with(Text::new("ééééééé"), DisplayOptions::plain().text_width(5));
    assert_eq!(out, "éééé…");
    assert_eq!(out.chars().count(), 5);
}

#[test]
fn text_width_cut_keeps_three_byte_chars_whole() {
    let out = summary_with(
        Text::new("ab日本語のテキスト"),
        DisplayOptions::plain().text_width(5),
    );
    assert_eq!(out, "ab日本…");
}

#[test]
fn text_width_cut_keeps_emoji_whole() {
    let out = summary_with(
        Text::new("😀😃😄😁😆"),
        DisplayOptions::plain().text_width(3),
    );
    assert_eq!(out, "😀😃…");
}

#[test]
fn text_width_at_every_width_keeps_a_char_prefix_of_exact_length() {
    let text = "aé日😀bè本😃c";
    let chars: Vec<char> = text.chars().collect();
    for width in 1..chars.len() {
        let out = summary_with(Text::new(text), DisplayOptions::plain().text_width(width));
        let expected: String = chars[..width - 1].iter().chain(['…'].iter()).collect();
        assert_eq!(out, expected, "width {width}");
    }
}

#[test]
fn text_width_zero_is_treated_as_one() {
    assert_eq!(DisplayOptions::plain().text_width(0).text_width, 1);
    assert_eq!(
        summary_with(Text::new("abc"), DisplayOptions::plain().text_width(0)),
        "…"
    );
}

#[test]
fn default_text_width_is_120_chars() {
    assert_eq!(DEFAULT_TEXT_WIDTH, 120);
    let fits = "x".repeat(120);
    assert_eq!(summary(Text::new(fits.clone())), fits);
    let out = summary(Text::new("x".repeat(200)));
    assert_eq!(out, format!("{}…", "x".repeat(119)));
}

#[test]
fn text_width_applies_to_other_free_text_fields() {
    let options = DisplayOptions::plain().text_width(5);
    assert_eq!(
        summary_with(BeadComment::new("bd-1", "a long comment"), options),
        "✎ bd-1: a lo…"
    );
    assert_eq!(
        summary_with(Thinking::new("pondering"), options),
        "thinking: pond…"
    );
    let mut result = ToolResult::new("toolu_01", "lots of output", false);
    result.tool_name = Some("Bash".into());
    assert_eq!(summary_with(result, options), "✓ Bash: lots…");
}

#[test]
fn bash_command_width_does_not_follow_text_width() {
    let command = "x".repeat(50);
    let out = summary_with(
        ToolUse::new("toolu_01", "Bash", json!({ "command": command })),
        DisplayOptions::plain().text_width(10),
    );
    assert_eq!(out, format!("$ {command}"));
}

// ---------------------------------------------------------------------------------------
// Single-line guarantee
// ---------------------------------------------------------------------------------------

#[test]
fn newlines_and_tabs_render_as_spaces() {
    let out = summary(Text::new("one\ntwo\tthree\r\nfour"));
    assert_eq!(out, "one two three  four");
}

#[test]
fn ansi_escape_in_text_renders_in_caret_notation() {
    let out = summary(Text::new("\u{1b}[31mred\u{1b}[0m"));
    assert_eq!(out, "^[[31mred^[[0m");
    assert!(!out.contains(ESC));
}

#[test]
fn ansi_escape_in_text_never_reaches_the_plain_line() {
    let event =
        Event::bd(BeadComment::new("bd-042", "see \u{1b}[1mbold\u{1b}[0m")).with_timestamp(fixed());
    let line = event.line(DisplayOptions::plain()).to_string();
    assert!(!line.contains(ESC), "{line:?}");
    assert!(line.ends_with("✎ bd-042: see ^[[1mbold^[[0m"), "{line:?}");
}

#[test]
fn other_control_characters_render_in_caret_notation() {
    assert_eq!(summary(Text::new("a\u{7}b\u{0}c\u{7f}d")), "a^Gb^@c^?d");
}

#[test]
fn caret_notation_counts_toward_text_width() {
    let out = summary_with(
        Text::new("\u{1b}\u{1b}\u{1b}"),
        DisplayOptions::plain().text_width(5),
    );
    assert_eq!(out, "^[^[…");
}

#[test]
fn multi_line_tool_result_renders_on_one_line() {
    let result = ToolResult::new("toolu_01", "line 1\nline 2\n", false);
    assert_eq!(summary(result), "✓ toolu_01: line 1 line 2 ");
}

#[test]
fn every_summary_is_a_single_line() {
    for event in one_of_each() {
        let out = event.summary().to_string();
        assert!(!out.is_empty(), "{}", event.event_type());
        assert!(
            !out.contains(['\n', '\r']),
            "{}: {out:?}",
            event.event_type()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Colour only when asked
// ---------------------------------------------------------------------------------------

#[test]
fn summary_has_no_ansi_codes_by_default() {
    for event in one_of_each() {
        let out = event.summary().to_string();
        assert!(!out.contains(ESC), "{}: {out:?}", event.event_type());
    }
}

#[test]
fn plain_line_has_no_ansi_codes() {
    for event in one_of_each() {
        let out = event.line(DisplayOptions::plain()).to_string();
        assert!(!out.contains(ESC), "{}: {out:?}", event.event_type());
    }
}

#[test]
fn colored_line_has_ansi_codes_and_strips_to_the_plain_line() {
    for event in one_of_each() {
        let colored = event.line(DisplayOptions::colored()).to_string();
        let plain = event.line(DisplayOptions::plain()).to_string();
        assert!(
            colored.contains("\u{1b}["),
            "{}: {colored:?}",
            event.event_type()
        );
        assert_eq!(strip_ansi(&colored), plain, "{}", event.event_type());
    }
}

#[test]
fn colored_summary_strips_to_the_plain_summary() {
    for event in one_of_each() {
        let colored = event.summary_with(DisplayOptions::colored()).to_string();
        let plain = event.summary().to_string();
        assert_eq!(strip_ansi(&colored), plain, "{}", event.event_type());
    }
}

#[test]
fn colored_summary_has_ansi_codes() {
    let events = [
        Event::bd(BeadStatus::new("bd-042", "open", "in_progress")),
        Event::bd(BeadStatus::new("bd-042", "in_progress", "closed")),
        Event::bd(BeadStatus::new("bd-042", "in_progress", "failed")),
        Event::claude(ToolUse::new("toolu_01", "Bash", json!({"command": "ls"}))),
        Event::claude(ToolResult::new("toolu_01", "boom", true)),
        Event::internal(ErrorEvent::new("careful", Severity::Warning)),
        Event::claude(session_end(850, 0.5)),
    ];
    for event in events {
        let colored = event.summary_with(DisplayOptions::colored()).to_string();
        assert!(
            colored.contains("\u{1b}["),
            "{}: {colored:?}",
            event.event_type()
        );
        assert!(
            colored.ends_with("\u{1b}[0m"),
            "{}: {colored:?}",
            event.event_type()
        );
    }
}

#[test]
fn colored_output_still_escapes_control_characters_in_text() {
    let event = Event::bd(BeadComment::new("bd-042", "\u{1b}[31mred"));
    let colored = event.summary_with(DisplayOptions::colored()).to_string();
    assert!(colored.contains("^[[31mred"), "{colored:?}");
    assert_eq!(strip_ansi(&colored), "✎ bd-042: ^[[31mred");
}

#[test]
fn color_option_can_be_switched_off_again() {
    let event = Event::bd(BeadStatus::new("bd-042", "open", "closed"));
    let out = event
        .summary_with(DisplayOptions::colored().color(false))
        .to_string();
    assert_eq!(out, "✓ bd-042 closed");
}

// ---------------------------------------------------------------------------------------
// Event::line
// ---------------------------------------------------------------------------------------

#[test]
fn line_shows_time_source_and_summary() {
    let event = Event::claude(ToolUse::new(
        "toolu_01",
        "Bash",
        json!({"command": "git status"}),
    ))
    .with_timestamp(fixed());
    assert_eq!(
        event.line(DisplayOptions::plain()).to_string(),
        "14:23:05.123 claude $ git status"
    );
}

#[test]
fn line_time_has_three_digit_milliseconds_even_on_a_whole_second() {
    let event = Event::claude(Text::new("hi")).with_timestamp(ts("2024-01-15T14:23:05Z"));
    assert_eq!(
        event.line(DisplayOptions::plain()).to_string(),
        "14:23:05.000 claude hi"
    );
}

#[test]
fn line_time_is_in_utc() {
    let event = Event::claude(Text::new("hi")).with_timestamp(ts("2024-01-15T16:23:05.123+02:00"));
    assert_eq!(
        event.line(DisplayOptions::plain()).to_string(),
        "14:23:05.123 claude hi"
    );
}

#[test]
fn line_time_drops_sub_millisecond_digits() {
    let event = Event::claude(Text::new("hi")).with_timestamp(ts("2024-01-15T14:23:05.123999Z"));
    assert_eq!(
        event.line(DisplayOptions::plain()).to_string(),
        "14:23:05.123 claude hi"
    );
}

#[test]
fn line_of_an_unknown_event_uses_its_summary() {
    let event = unknown(
        r#"{"type":"custom.thing","timestamp":"2024-01-15T14:23:05.123Z","source":"claude","a":1}"#,
    );
    assert_eq!(
        event.line(DisplayOptions::plain()).to_string(),
        "14:23:05.123 claude custom.thing (1 field)"
    );
}

#[test]
fn line_uses_the_text_width_of_its_options() {
    let event = Event::claude(Text::new("abcdefghij")).with_timestamp(fixed());
    assert_eq!(
        event
            .line(DisplayOptions::plain().text_width(5))
            .to_string(),
        "14:23:05.123 claude abcd…"
    );
}

#[test]
fn line_escapes_control_characters_in_source() {
    let event = Event::new("cla\nude", Text::new("hi")).with_timestamp(fixed());
    assert_eq!(
        event.line(DisplayOptions::plain()).to_string(),
        "14:23:05.123 cla ude hi"
    );
}

#[test]
fn line_pads_a_short_source_to_six_chars() {
    let event = Event::bd(BeadClosed::new("bd-042")).with_timestamp(fixed());
    assert_eq!(
        event.line(DisplayOptions::plain()).to_string(),
        "14:23:05.123 bd     ✓ bd-042 closed"
    );
    let event = Event::internal(DrainResume::default()).with_timestamp(fixed());
    assert_eq!(
        event.line(DisplayOptions::plain()).to_string(),
        "14:23:05.123 atari  ▶ drain resumed"
    );
}

#[test]
fn line_does_not_pad_a_source_of_six_chars_or_more() {
    let event = Event::new("watcher", Text::new("hi")).with_timestamp(fixed());
    assert_eq!(
        event.line(DisplayOptions::plain()).to_string(),
        "14:23:05.123 watcher hi"
    );
}

#[test]
fn colored_line_pads_a_short_source_like_the_plain_line() {
    let event = Event::bd(BeadClosed::new("bd-042")).with_timestamp(fixed());
    let colored = event.line(DisplayOptions::colored()).to_string();
    assert_eq!(strip_ansi(&colored), "14:23:05.123 bd     ✓ bd-042 closed");
}

#[test]
fn session_ids_are_escaped_so_output_stays_on_one_line() {
    let end = Event::claude(SessionEnd::new("ab\ncd\u{1b}[31m", 1, 850, 0.5));
    let out = end.summary().to_string();
    assert_eq!(
        out,
        "✓ session ab cd^[… ended: success, 1 turns, 850ms, $0.5000"
    );
    let mut start = SessionStart::new("m", vec![]);
    start.session_id = Some("\u{1b}[31mxyz\n".into());
    let out = Event::claude(start).summary().to_string();
    assert_eq!(out, "▶ session ^[[31mx… started: m (0 tools)");
}

// ---------------------------------------------------------------------------------------
// The groove plugin's events
// ---------------------------------------------------------------------------------------

fn groove(event_type: &str, fields: Value) -> String {
    let mut event = json!({
        "id": "019b76da-a800-75aa-a164-2157726f4182",
        "type": event_type,
        "timestamp": "2026-01-01T00:00:00Z",
        "source": "groove",
    });
    event
        .as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    let event = Event::from_json(&event.to_string()).unwrap();
    event.summary().to_string()
}

#[test]
fn groove_events_have_their_own_one_liners() {
    let fp = json!({"id": "f-1", "tool": "Bash", "head": "make lint-fix", "kind": "lint_error",
        "line": "<path>:<n>: undefined: X"});
    assert_eq!(
        groove(
            "groove.novelty_detected",
            json!({"fingerprint": fp, "cluster_id": "c-1"})
        ),
        "✦ new failure: Bash `make lint-fix` lint_error: <path>:<n>: undefined: X"
    );
    let cluster = json!({"id": "c-1", "tool": "Edit", "head": "", "kind": "no_op_edit",
        "sessions": 3, "failures": 6, "recovered": 6});
    assert_eq!(
        groove("groove.cluster_updated", json!({"cluster": cluster})),
        "↻ Edit no_op_edit failed in 3 sessions (6 failures, 6 recovered)"
    );
    let gap = json!({"id": "g-1", "tool": "Bash", "head": "mkdir", "kind": "permission_denied",
        "sessions": 3});
    assert_eq!(
        groove("groove.gap_created", json!({"gap": gap})),
        "◆ gap g-1 opened: Bash `mkdir` permission_denied in 3 sessions"
    );
    assert_eq!(
        groove(
            "groove.gap_status_changed",
            json!({"gap_id": "g-1", "old": "confirmed", "new": "resolved", "reason": "3 clean sessions"})
        ),
        "◆ gap g-1 confirmed → resolved (3 clean sessions)"
    );
    assert_eq!(
        groove(
            "groove.solutions_generated",
            json!({"gap_id": "g-1", "solutions": [{"title": "allow Bash(mkdir:*)"}, {"title": "b"}]})
        ),
        "✎ gap g-1: 2 solutions, first: allow Bash(mkdir:*)"
    );
    assert_eq!(
        groove(
            "groove.strategy_feedback",
            json!({"learning_id": "s-1", "gap_id": "g-1", "adjustment": 0.67, "before": 1.0, "after": 0.33})
        ),
        "± solution s-1 of gap g-1: failure rate 1.0 → 0.33 (+0.67)"
    );
    assert_eq!(
        groove(
            "groove.decision",
            json!({"action": "apply", "gap_id": "g-1", "solution_id": "s-1"})
        ),
        "☛ apply gap g-1 with solution s-1"
    );
    // A groove type missing its fields falls back to the generic line.
    assert_eq!(
        groove("groove.gap_created", json!({})),
        "groove.gap_created (0 fields)"
    );
}

// ---------------------------------------------------------------------------------------
// The ai-coder plugin's events
// ---------------------------------------------------------------------------------------

#[test]
fn ai_coder_events_have_their_own_one_liners() {
    let coder = |event_type: &str, fields: Value| {
        let mut all = json!({"coder_id": "s1", "coder_name": "proj"});
        all.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        groove(event_type, all)
    };
    assert_eq!(coder("ai_coder.created", json!({})), "● proj created");
    assert_eq!(
        coder("ai_coder.failed", json!({"reason": "error_max_turns"})),
        "● proj failed (error_max_turns)"
    );
    assert_eq!(
        coder("ai_coder.progress", json!({"done": 1, "total": 3})),
        "▸ proj: 1 of 3 todos done"
    );
    assert_eq!(
        coder(
            "ai_coder.progress",
            json!({"description": "turn 2 took 5 s"})
        ),
        "▸ proj: turn 2 took 5 s"
    );
    assert_eq!(
        coder("ai_coder.milestone", json!({"milestone": "write tests"})),
        "★ proj: write tests"
    );
    assert_eq!(
        coder("ai_coder.file_created", json!({"file_path": "/a/b.rs"})),
        "+ proj created /a/b.rs"
    );
    assert_eq!(
        coder(
            "ai_coder.workspace_sync",
            json!({"command": "git push origin main"})
        ),
        "⇅ proj: git push origin main"
    );
    assert_eq!(
        coder(
            "ai_coder.api_call",
            json!({"model": "claude-opus-4-6", "tokens_used": 1200, "cost_usd": 0.0123})
        ),
        "⇄ proj API call claude-opus-4-6 (1200 tokens, $0.0123)"
    );
    assert_eq!(
        coder(
            "ai_coder.resource_limit",
            json!({"limit": "rss", "observed": 70, "threshold": 64})
        ),
        "✗ proj passed its rss limit: 70 > 64"
    );
    assert_eq!(
        coder(
            "ai_coder.failure_alert",
            json!({"failure_count": 3, "window_minutes": 10})
        ),
        "‼ proj failed 3 times within 10 minutes"
    );
    assert_eq!(
        coder("ai_coder.completion_metrics", json!({"duration_ms": 90000})),
        "✓ proj completed 1m30s after it was created"
    );
    // An ai_coder type this version does not know keeps the generic line.
    assert_eq!(
        coder("ai_coder.teleported", json!({})),
        "ai_coder.teleported (2 fields)"
    );
}
