//! Builders of hand-written Claude session event streams.
#![allow(dead_code, unreachable_pub)]

use serde_json::{Value, json};
use vibes_events::{Event, EventId, SessionEnd, Timestamp, ToolResult, ToolUse};
use vibes_plugin::testing::Outcome;

/// A stream under construction: every event gets the next second and an id derived
/// from its content, so building the same stream twice gives the same events.
#[derive(Debug, Default)]
pub struct Stream {
    pub events: Vec<Event>,
    clock: i64,
}

impl Stream {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, event: Event, key: &str) {
        self.clock += 1;
        let at = Timestamp::from_second(1_770_000_000 + self.clock).unwrap();
        let id = EventId::derived(at, key.as_bytes());
        self.events.push(event.with_id(id).with_timestamp(at));
    }

    /// A call of `tool` with `input` and its result.
    pub fn call(&mut self, session: &str, tool: &str, input: Value, output: &str, is_error: bool) {
        let tool_id = format!("toolu_{}_{}", session, self.events.len());
        let mut use_ = ToolUse::new(&tool_id, tool, input);
        use_.session_id = Some(session.to_owned());
        self.push(Event::claude(use_), &format!("use/{tool_id}"));
        let mut result = ToolResult::new(&tool_id, output, is_error);
        result.session_id = Some(session.to_owned());
        self.push(Event::claude(result), &format!("result/{tool_id}"));
    }

    /// A Bash call of `command`.
    pub fn bash(&mut self, session: &str, command: &str, output: &str, is_error: bool) {
        self.call(
            session,
            "Bash",
            json!({ "command": command }),
            output,
            is_error,
        );
    }

    /// A successful edit of `path`.
    pub fn edit(&mut self, session: &str, path: &str) {
        self.call(
            session,
            "Edit",
            json!({ "file_path": path, "old_string": "a", "new_string": "b" }),
            "The file has been updated.",
            false,
        );
    }

    /// The session's end.
    pub fn end(&mut self, session: &str) {
        self.push(
            Event::claude(SessionEnd::new(session, 3, 1000, 0.01)),
            &format!("end/{session}"),
        );
    }

    /// A person's decision.
    pub fn decide(&mut self, action: &str, gap_id: &str, solution_id: Option<&str>) {
        let action = vibes_plugin_groove::decision::Action::parse(action).unwrap();
        self.clock += 1;
        let at = Timestamp::from_second(1_770_000_000 + self.clock).unwrap();
        self.events.push(vibes_plugin_groove::decision::event(
            action,
            gap_id,
            solution_id,
            at,
        ));
    }
}

pub const LINT_FAIL: &str = "make: *** [lint-fix] Error 1\n\ngolangci-lint run --fix\nservices/agents.go:12:3: undefined: NewJobsService (typecheck)";

/// Session `s` fails `make lint-fix` once and ends.
pub fn lint_failure(stream: &mut Stream, s: &str) {
    stream.bash(s, "cd /repo && make lint-fix", LINT_FAIL, true);
    stream.end(s);
}

/// Session `s` runs `make lint-fix` cleanly and ends.
pub fn lint_clean(stream: &mut Stream, s: &str) {
    stream.bash(s, "make lint-fix", "golangci-lint run --fix", false);
    stream.end(s);
}

/// The types of the events in `topic`.
pub fn types(outcome: &Outcome, topic: &str) -> Vec<String> {
    outcome
        .topic(topic)
        .iter()
        .map(|e| e.event_type().to_owned())
        .collect()
}

/// The events of `topic` with type `ty`, as JSON.
pub fn of_type(outcome: &Outcome, topic: &str, ty: &str) -> Vec<Value> {
    outcome
        .topic(topic)
        .iter()
        .filter(|e| e.event_type() == ty)
        .map(|e| serde_json::to_value(e).unwrap())
        .collect()
}

/// Every output, as JSON lines, topic by topic.
pub fn all_outputs(outcome: &Outcome) -> Vec<String> {
    outcome
        .outputs
        .iter()
        .flat_map(|(topic, events)| {
            events
                .iter()
                .map(move |e| format!("{topic} {}", e.to_json().unwrap()))
        })
        .collect()
}
