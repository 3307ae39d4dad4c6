//! One coder's status: what `coders` and `coder ID` answer.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vibes_events::Timestamp;

use crate::calls::Calls;
use crate::prices::Prices;
use crate::todos::TodoList;
use crate::workspace::Effect;

/// Calls awaiting their result, per coder; beyond this the oldest is forgotten.
pub const MAX_PENDING_TOOLS: usize = 256;
/// Task calls remembered per coder to name the subagents they spawn.
pub const MAX_TASKS: usize = 64;

/// Where a coder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Working: it made a call, used a tool or wrote since its last turn ended.
    Running,
    /// Its turn ended; it waits for the person (or its parent).
    Waiting,
    /// Interrupted, or held by a rejected rate limit.
    Paused,
    /// Ended well.
    Completed,
    /// Ended with an error.
    Failed,
    /// Stopped from outside.
    Stopped,
}

impl Status {
    /// The name events and queries use.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Waiting => "waiting",
            Status::Paused => "paused",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Stopped => "stopped",
        }
    }

    /// Whether the coder has ended.
    pub fn is_finished(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Stopped)
    }
}

/// A tool call awaiting its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PendingTool {
    /// A call with an effect on the workspace.
    Effect(Effect),
    /// A Task call: the subagent it spawns is `<session>/<tool id>` in stream-json.
    Task,
}

/// What `vibes run` reported about the run the coder is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    /// The run.
    pub run_id: String,
    /// Its limits.
    pub max_rss_bytes: Option<u64>,
    /// Its limits.
    pub max_cost_usd: Option<f64>,
    /// Its limits.
    pub timeout_ms: Option<u64>,
    /// The last sample: resident memory of the tree.
    pub rss_bytes: Option<u64>,
    /// The last sample: CPU, percent of a core.
    pub cpu_percent: Option<f64>,
    /// The last sample: processes.
    pub processes: Option<u32>,
    /// Samples seen.
    pub samples: u64,
    /// The limit that was passed.
    pub limit: Option<String>,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Exit signal.
    pub exit_signal: Option<i32>,
    /// What stopped it.
    pub stopped_by: Option<String>,
}

/// One coder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coder {
    /// Its id: the session id, `<session>/<agent>` or `run:<run_id>`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The Claude session it is (or is part of).
    pub session_id: Option<String>,
    /// The main coder of a subagent.
    pub parent: Option<String>,
    /// Where it is.
    pub status: Status,
    /// Why it ended, or was paused.
    pub reason: Option<String>,
    /// First seen.
    pub created: Timestamp,
    /// Ended, if it has.
    pub ended: Option<Timestamp>,
    /// Its newest event (event time).
    pub last_activity: Timestamp,
    /// The model it uses now.
    pub model: Option<String>,
    /// Turns.
    pub turns: u32,
    /// Tool calls.
    pub tool_calls: u64,
    /// Tool calls that failed.
    pub tool_errors: u64,
    /// API errors.
    pub api_errors: u64,
    /// Rate limits reached.
    pub rate_limits: u64,
    /// Times it failed.
    pub failures: u32,
    /// Its API calls.
    pub calls: Calls,
    /// The cost its agent or `vibes run` reported, in USD.
    pub reported_cost_usd: Option<f64>,
    /// Its todo list.
    pub todos: TodoList,
    /// Files created, modified, deleted; workspace syncs.
    pub files: [u64; 4],
    /// Subagents it spawned.
    pub children: u32,
    /// Its run, when `vibes run` supervised it.
    pub run: Option<RunView>,
    /// Calls awaiting their result (tool id, what it does).
    pub pending_tools: Vec<(String, PendingTool)>,
    /// Calls whose result never came before the cap forgot them.
    pub forgotten_tools: u64,
    /// Task calls (tool id, description), to name subagents.
    pub tasks: Vec<(String, String)>,
    /// Handled-event count at its last activity (least recent is evicted first).
    pub touched: u64,
}

impl Coder {
    /// A coder first seen at `at`.
    pub fn new(id: String, name: String, session_id: Option<String>, at: Timestamp) -> Self {
        Coder {
            id,
            name,
            session_id,
            parent: None,
            status: Status::Running,
            reason: None,
            created: at,
            ended: None,
            last_activity: at,
            model: None,
            turns: 0,
            tool_calls: 0,
            tool_errors: 0,
            api_errors: 0,
            rate_limits: 0,
            failures: 0,
            calls: Calls::default(),
            reported_cost_usd: None,
            todos: TodoList::default(),
            files: [0; 4],
            children: 0,
            run: None,
            pending_tools: Vec::new(),
            forgotten_tools: 0,
            tasks: Vec::new(),
            touched: 0,
        }
    }

    /// Remembers a call awaiting its result.
    pub fn await_tool(&mut self, tool_id: &str, pending: PendingTool) {
        if self.pending_tools.len() >= MAX_PENDING_TOOLS {
            self.pending_tools.remove(0);
            self.forgotten_tools += 1;
        }
        self.pending_tools.push((tool_id.to_owned(), pending));
    }

    /// Takes the call `tool_id` awaits, if remembered.
    pub fn take_tool(&mut self, tool_id: &str) -> Option<PendingTool> {
        let at = self
            .pending_tools
            .iter()
            .position(|(id, _)| id == tool_id)?;
        Some(self.pending_tools.remove(at).1)
    }

    /// Remembers a Task call's description.
    pub fn remember_task(&mut self, tool_id: &str, description: &str) {
        if self.tasks.len() >= MAX_TASKS {
            self.tasks.remove(0);
        }
        self.tasks
            .push((tool_id.to_owned(), description.to_owned()));
    }

    /// The description of Task call `tool_id`.
    pub fn task(&self, tool_id: &str) -> Option<&str> {
        self.tasks
            .iter()
            .find(|(id, _)| id == tool_id)
            .map(|(_, d)| d.as_str())
    }

    /// Milliseconds from created to ended, or to its newest event (event time).
    pub fn elapsed_ms(&self) -> u64 {
        let end = self.ended.unwrap_or(self.last_activity);
        u64::try_from(end.as_millisecond() - self.created.as_millisecond()).unwrap_or(0)
    }

    /// The cost: what the agent reported when it did (Claude Code's own total), else
    /// the priced calls; and which it is.
    pub fn cost(&self, prices: &dyn Prices) -> (Option<f64>, &'static str) {
        if let Some(reported) = self.reported_cost_usd {
            return (Some(reported), "reported");
        }
        let priced = self.calls.cost_with_pending(prices);
        if self.calls.count > 0 && (priced > 0.0 || self.calls.unpriced == 0) {
            (Some(priced), "priced")
        } else {
            (None, "unknown")
        }
    }

    /// The summary lifecycle events carry when the coder ends.
    pub fn summary(&self) -> Value {
        json!({
            "duration_ms": self.elapsed_ms(),
            "turns": self.turns,
            "tool_calls": self.tool_calls,
            "api_calls": self.calls.count,
            "errors": self.tool_errors + self.api_errors,
            "tokens": self.calls.tokens.total(),
        })
    }

    /// As `coders` and `coder ID` show it.
    pub fn view(&self, prices: &dyn Prices) -> Value {
        let elapsed = self.elapsed_ms();
        let (cost, cost_source) = self.cost(prices);
        let hours = elapsed as f64 / 3_600_000.0;
        let burn = cost.filter(|_| elapsed >= 60_000).map(|c| c / hours);
        let minutes = elapsed as f64 / 60_000.0;
        let tokens_per_minute =
            (elapsed >= 60_000).then(|| self.calls.tokens.total() as f64 / minutes);
        json!({
            "coder_id": self.id,
            "coder_name": self.name,
            "session_id": self.session_id,
            "parent": self.parent,
            "status": self.status.as_str(),
            "reason": self.reason,
            "model": self.model,
            "created": self.created,
            "ended": self.ended,
            "last_activity": self.last_activity,
            "elapsed_ms": elapsed,
            "turns": self.turns,
            "tool_calls": self.tool_calls,
            "errors": self.tool_errors + self.api_errors,
            "tool_errors": self.tool_errors,
            "api_errors": self.api_errors,
            "rate_limits": self.rate_limits,
            "failures": self.failures,
            "api_calls": self.calls.count,
            "pending_call": self.calls.has_pending(),
            "late_copies": self.calls.late_copies,
            "tokens": self.calls.tokens,
            "cost_usd": cost,
            "cost_source": cost_source,
            "unpriced_calls": self.calls.unpriced,
            "burn_usd_per_hour": burn,
            "tokens_per_minute": tokens_per_minute,
            "progress": {
                "done": self.todos.done,
                "total": self.todos.total,
                "fraction": self.todos.fraction(),
            },
            "files": {
                "created": self.files[0],
                "modified": self.files[1],
                "deleted": self.files[2],
                "syncs": self.files[3],
            },
            "children": self.children,
            "run": self.run,
        })
    }
}
