//! Drain-orchestrator events: `drain.*` and `iteration.*`.

use serde::{Deserialize, Serialize};

/// `drain.start`: a drain (a loop that works through ready beads) started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DrainStart {
    /// Directory the drain works in.
    pub work_dir: String,
    /// The configuration it runs with, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

impl DrainStart {
    /// A start event.
    pub fn new(work_dir: impl Into<String>) -> Self {
        Self {
            work_dir: work_dir.into(),
            config: None,
        }
    }
}

/// `drain.pause`: a pause was requested.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DrainPause {
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `drain.resume`: the drain resumed after a pause.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DrainResume {}

/// `drain.stop`: the drain stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DrainStop {
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `iteration.start`: work on a bead began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IterationStart {
    /// Bead id.
    pub bead_id: String,
    /// Bead title.
    pub title: String,
    /// Bead priority.
    pub priority: i64,
    /// Attempt number, from 1.
    pub attempt: u32,
}

impl IterationStart {
    /// A start event.
    pub fn new(
        bead_id: impl Into<String>,
        title: impl Into<String>,
        priority: i64,
        attempt: u32,
    ) -> Self {
        Self {
            bead_id: bead_id.into(),
            title: title.into(),
            priority,
            attempt,
        }
    }
}

/// `iteration.end`: work on a bead completed, successfully or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IterationEnd {
    /// Bead id.
    pub bead_id: String,
    /// Whether the iteration succeeded.
    pub success: bool,
    /// Turns of the Claude session.
    pub num_turns: u32,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// Cost in US dollars.
    pub total_cost_usd: f64,
    /// The error, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The Claude session that did the work. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

impl IterationEnd {
    /// An end event without error or session.
    pub fn new(
        bead_id: impl Into<String>,
        success: bool,
        num_turns: u32,
        duration_ms: u64,
        total_cost_usd: f64,
    ) -> Self {
        Self {
            bead_id: bead_id.into(),
            success,
            num_turns,
            duration_ms,
            total_cost_usd,
            error: None,
            session_id: None,
        }
    }
}
