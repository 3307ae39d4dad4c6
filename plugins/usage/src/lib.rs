//! The usage plugin: every Claude API call counted once, the state behind `vibes usage`.
//!
//! Reads: `claude.api_call` (copies of calls, from Claude Code transcripts) and
//! `session.start` (for each session's project, its `cwd`) of the host's event topic.
//! Writes nothing. Its state is one row per call, keyed by (`message_id`,
//! `request_id`), with the largest copy's tokens, the model, the earliest copy's time,
//! the session and subagent, and whether the output count is final: the counting
//! rules of docs/SOURCES.md ("Counting API calls"), the same as
//! `vibes_sources::calls::ApiCalls`, with the copy-level rules shared through
//! `vibes_events` ([`ApiCall::key`](vibes_events::ApiCall::key),
//! [`ApiUsage::supersedes`](vibes_events::ApiUsage::supersedes)). A call from model
//! `<synthetic>` (Claude Code's stand-in for an error) is not a call.
//!
//! The host aggregates and prices the calls ([`Usage::calls`]); the plugin only counts.
//! Snapshots every 20,000 events, so a report restores the table and replays only the
//! records after it. Answers:
//! - `totals`: calls, copies, calls whose output is not final, tokens by kind;
//! - `session ID`: the same for one session.
//!
//! Depends on `vibes-events` and `vibes-plugin` only.

mod table;
mod tokens;

use serde::Serialize;
use serde_json::{Value, json};
use vibes_events::EventData;
use vibes_plugin::{Emitter, Input, Manifest, Plugin, PluginError, QueryArgs, QueryError};

pub use table::CallView;
pub use tokens::Tokens;

use table::Table;

/// The plugin's name (and stream).
pub const NAME: &str = "usage";

/// The model Claude Code names in place of an error response: not a call.
pub const SYNTHETIC_MODEL: &str = "<synthetic>";

/// The plugin; see the [crate docs](crate).
#[derive(Debug, Default)]
pub struct Usage {
    table: Table,
}

/// Sums over calls, as the queries answer them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Calls.
    pub calls: u64,
    /// Calls whose output count may not be final.
    pub not_final: u64,
    /// Tokens by kind.
    pub tokens: Tokens,
}

impl Totals {
    /// Adds one call.
    pub fn add(&mut self, call: &CallView<'_>) {
        self.calls += 1;
        self.not_final += u64::from(!call.output_final);
        self.tokens += call.tokens;
    }
}

impl Usage {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every call once, in no meaningful order (the order is deterministic).
    pub fn calls(&self) -> impl Iterator<Item = CallView<'_>> {
        self.table.calls()
    }

    /// Distinct calls.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no call was seen.
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// Copies folded in, duplicates included.
    pub fn copies(&self) -> u64 {
        self.table.copies()
    }

    /// Folds in one event (what `handle` does); returns whether it was a call.
    pub fn add(&mut self, event: &vibes_events::Event) -> bool {
        match &event.data {
            EventData::ApiCall(call) => {
                if call.model.as_deref() == Some(SYNTHETIC_MODEL) {
                    return false;
                }
                let session = call.session_id.as_deref().or(event.partition_key());
                self.table
                    .add_copy(call, session, event.timestamp, event.id.as_u128());
                true
            }
            EventData::SessionStart(start) => {
                if let (Some(session), Some(cwd)) = (event.partition_key(), start.cwd.as_deref()) {
                    self.table.set_project(session, cwd);
                }
                false
            }
            _ => false,
        }
    }

    fn totals(&self, session: Option<&str>) -> Totals {
        let mut totals = Totals::default();
        for call in self
            .calls()
            .filter(|c| session.is_none_or(|s| c.session_id == Some(s)))
        {
            totals.add(&call);
        }
        totals
    }
}

impl Plugin for Usage {
    fn manifest(&self) -> Manifest {
        Manifest::new(NAME, "every Claude API call counted once (vibes usage)")
            .filter(vibes_events::Filter::all().types(["claude.api_call", "session.start"]))
            .query("totals", "calls, copies and tokens by kind", &[])
            .query("session", "calls and tokens of one session", &["id"])
            .snapshot_every(20_000)
    }

    fn handle(&mut self, input: &Input<'_>, _out: &mut Emitter) -> Result<(), PluginError> {
        self.add(input.event);
        Ok(())
    }

    fn query(&self, name: &str, args: &QueryArgs) -> Result<Value, QueryError> {
        match name {
            "totals" => {
                let totals = self.totals(None);
                Ok(json!({
                    "calls": totals.calls,
                    "copies": self.copies(),
                    "not_final": totals.not_final,
                    "tokens": totals.tokens,
                }))
            }
            "session" => {
                let id = args.require("id")?;
                let totals = self.totals(Some(id));
                if totals.calls == 0 {
                    return Err(QueryError::NotFound(format!("no calls of session {id}")));
                }
                Ok(json!({
                    "session_id": id,
                    "calls": totals.calls,
                    "not_final": totals.not_final,
                    "tokens": totals.tokens,
                }))
            }
            other => Err(QueryError::BadArgument(format!("no query {other}"))),
        }
    }

    fn save(&self) -> Option<Vec<u8>> {
        self.table.encode().ok()
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        self.table = Table::decode(bytes)
            .map_err(|e| PluginError::new(format!("the snapshot does not decode: {e}")))?;
        Ok(())
    }
}
