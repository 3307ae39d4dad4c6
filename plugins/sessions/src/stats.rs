//! Per-session statistics and their totals: the fold behind `vibes stats`.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use vibes_events::{Event, EventData};

/// What one session did, built from its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionStats {
    /// The session id.
    pub session_id: String,
    /// The `session_name` given at ingest, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The model, from session.start (or the end's per-model usage).
    pub model: Option<String>,
    /// Earliest event time.
    pub start: Option<Timestamp>,
    /// Time of its session.end, if it ended.
    pub end: Option<Timestamp>,
    /// Turns, from session.end.
    pub turns: u64,
    /// Tool calls by tool name.
    pub tool_calls: BTreeMap<String, u64>,
    /// Tool calls in all.
    pub tool_calls_total: u64,
    /// Tool results with is_error.
    pub tool_errors: u64,
    /// Cost in USD, from session.end.
    pub cost_usd: f64,
    /// Duration in ms, from session.end.
    pub duration_ms: u64,
    /// `success`, `error`, or `running` (no session.end yet).
    pub outcome: String,
    /// Why it ended in error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome_reason: Option<String>,
    /// Events counted (each id once).
    pub events: u64,
}

/// Sums over sessions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Sessions.
    pub sessions: u64,
    /// Turns.
    pub turns: u64,
    /// Tool calls.
    pub tool_calls: u64,
    /// Tool errors.
    pub tool_errors: u64,
    /// Cost in USD.
    pub cost_usd: f64,
    /// Duration in ms.
    pub duration_ms: u64,
    /// Sessions that ended in success.
    pub succeeded: u64,
    /// Sessions that ended in error.
    pub failed: u64,
    /// Sessions without an end.
    pub running: u64,
}

/// The session an event belongs to, for the types this plugin counts.
pub fn session_of(event: &Event) -> Option<&str> {
    match &event.data {
        EventData::SessionStart(_)
        | EventData::SessionEnd(_)
        | EventData::SessionCompact(_)
        | EventData::Text(_)
        | EventData::Thinking(_)
        | EventData::ToolUse(_)
        | EventData::ToolResult(_)
        | EventData::RateLimit(_) => event.partition_key(),
        _ => None,
    }
}

impl SessionStats {
    /// A session seen for the first time.
    pub fn new(session_id: &str) -> Self {
        SessionStats {
            session_id: session_id.to_owned(),
            outcome: "running".to_owned(),
            ..SessionStats::default()
        }
    }

    /// Adds one event of this session (the caller counts each id once).
    pub fn add(&mut self, event: &Event) {
        self.events += 1;
        if self.start.is_none_or(|s| event.timestamp < s) {
            self.start = Some(event.timestamp);
        }
        if self.name.is_none()
            && let Some(name) = event.extra.get("session_name").and_then(|v| v.as_str())
        {
            self.name = Some(name.to_owned());
        }
        match &event.data {
            EventData::SessionStart(d) => self.model = Some(d.model.clone()),
            EventData::ToolUse(d) => {
                *self.tool_calls.entry(d.tool_name.clone()).or_default() += 1;
                self.tool_calls_total += 1;
            }
            EventData::ToolResult(d) if d.is_error => self.tool_errors += 1,
            EventData::SessionEnd(d) => {
                self.end = Some(self.end.map_or(event.timestamp, |e| e.max(event.timestamp)));
                self.turns += u64::from(d.num_turns);
                self.cost_usd += d.total_cost_usd;
                self.duration_ms += d.duration_ms;
                if d.is_error {
                    self.outcome = "error".to_owned();
                    let reason = d
                        .errors
                        .as_ref()
                        .and_then(|e| e.first().cloned())
                        .or_else(|| d.result.clone())
                        .or_else(|| d.subtype.clone())
                        .unwrap_or_else(|| "error".to_owned());
                    self.outcome_reason = Some(reason);
                } else {
                    self.outcome = "success".to_owned();
                    self.outcome_reason = None;
                }
                if self.model.is_none()
                    && let Some(usage) = &d.model_usage
                {
                    self.model = usage.keys().next().cloned();
                }
            }
            _ => {}
        }
    }
}

impl Totals {
    /// The totals of `sessions`.
    pub fn of<'a>(sessions: impl IntoIterator<Item = &'a SessionStats>) -> Totals {
        let mut totals = Totals::default();
        for s in sessions {
            totals.sessions += 1;
            totals.turns += s.turns;
            totals.tool_calls += s.tool_calls_total;
            totals.tool_errors += s.tool_errors;
            totals.cost_usd += s.cost_usd;
            totals.duration_ms += s.duration_ms;
            match s.outcome.as_str() {
                "success" => totals.succeeded += 1,
                "error" => totals.failed += 1,
                _ => totals.running += 1,
            }
        }
        totals
    }
}
