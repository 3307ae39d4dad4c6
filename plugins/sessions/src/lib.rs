//! The sessions plugin: per-session statistics (the fold behind `vibes stats`) and each
//! session's record addresses (so `vibes tail --session` reads only that session).
//!
//! Reads: session and Claude events of the host's event topic. Writes: a
//! `sessions.summary` event into `sessions/summaries` when a session ends (again when
//! a later end of the same session changes it). Answers:
//! - `stats [session]`: `{"sessions": [...], "totals": {...}}`, sessions by start time;
//! - `session ID`: one session's statistics;
//! - `addresses ID`: `{"session_id", "records", "runs": [{"partition","start","len"}]}`;
//! - `sessions`: every session id with its start, end and outcome.
//!
//! Each event id counts once, so a session stored twice is counted once. The state is
//! saved in snapshots every 50,000 events.
//!
//! Depends on `vibes-events`, `vibes-log` and `vibes-plugin` only.

mod index;
mod stats;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vibes_events::{Event, EventData};
use vibes_plugin::{Emitter, Input, Manifest, Plugin, PluginError, QueryArgs, QueryError};

pub use index::{AddressIndex, Run};
pub use stats::{SessionStats, Totals, session_of};

/// The plugin's name (and stream).
pub const NAME: &str = "sessions";

/// The output topic of session summaries.
pub const SUMMARIES: &str = "summaries";

/// The type of a session summary event.
pub const SUMMARY_TYPE: &str = "sessions.summary";

/// The plugin: its state is every session's statistics and addresses.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Sessions {
    sessions: BTreeMap<String, Session>,
    /// Events that were stored more than once (same id), counted once.
    duplicates: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Session {
    stats: SessionStats,
    index: AddressIndex,
    /// Ids counted, so a repeated event counts once.
    seen: BTreeSet<u128>,
}

impl Sessions {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one event stored at `address`; returns whether it was a session's end
    /// (newly counted).
    pub fn add(&mut self, event: &Event, address: vibes_log::RecordAddress) -> bool {
        let Some(id) = session_of(event) else {
            return false;
        };
        let session = self
            .sessions
            .entry(id.to_owned())
            .or_insert_with(|| Session {
                stats: SessionStats::new(id),
                ..Session::default()
            });
        if !session.seen.insert(event.id.as_u128()) {
            self.duplicates += 1;
            return false;
        }
        session.index.add(address);
        session.stats.add(event);
        std::matches!(event.data, EventData::SessionEnd(_))
    }

    /// Every session's statistics (only `only` if given), by start time, and totals.
    pub fn report(&self, only: Option<&str>) -> (Vec<&SessionStats>, Totals) {
        let mut sessions: Vec<&SessionStats> = self
            .sessions
            .values()
            .map(|s| &s.stats)
            .filter(|s| only.is_none_or(|id| s.session_id == id))
            .collect();
        sessions.sort_by(|a, b| a.start.cmp(&b.start).then(a.session_id.cmp(&b.session_id)));
        let totals = Totals::of(sessions.iter().copied());
        (sessions, totals)
    }

    /// One session's record addresses.
    pub fn addresses(&self, session: &str) -> Option<&AddressIndex> {
        self.sessions.get(session).map(|s| &s.index)
    }

    /// Events stored more than once.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    fn session(&self, id: &str) -> Result<&Session, QueryError> {
        self.sessions
            .get(id)
            .ok_or_else(|| QueryError::NotFound(format!("no session {id}")))
    }
}

impl Plugin for Sessions {
    fn manifest(&self) -> Manifest {
        Manifest::new(NAME, "per-session statistics and record addresses")
            .output(SUMMARIES)
            .query(
                "stats",
                "statistics of every session (or one) and totals",
                &["session"],
            )
            .query("session", "one session's statistics", &["id"])
            .query(
                "addresses",
                "where one session's records are stored",
                &["id"],
            )
            .query(
                "sessions",
                "every session with its start, end and outcome",
                &[],
            )
            .snapshot_every(50_000)
    }

    fn handle(&mut self, input: &Input<'_>, out: &mut Emitter) -> Result<(), PluginError> {
        if self.add(input.event, input.address)
            && let Some(id) = session_of(input.event)
        {
            let stats = &self.sessions[id].stats;
            let fields = serde_json::to_value(stats)
                .map_err(|e| PluginError::new(format!("encoding a summary: {e}")))?;
            out.emit(SUMMARIES, SUMMARY_TYPE, fields)?;
        }
        Ok(())
    }

    fn query(&self, name: &str, args: &QueryArgs) -> Result<Value, QueryError> {
        match name {
            "stats" => {
                let only = args.get("session");
                if let Some(id) = only {
                    self.session(id)?;
                }
                let (sessions, totals) = self.report(only);
                Ok(json!({ "sessions": sessions, "totals": totals }))
            }
            "session" => {
                let session = self.session(args.require("id")?)?;
                Ok(json!(session.stats))
            }
            "addresses" => {
                let id = args.require("id")?;
                let session = self.session(id)?;
                Ok(json!({
                    "session_id": id,
                    "records": session.index.len(),
                    "runs": session.index.runs(),
                }))
            }
            "sessions" => Ok(Value::Array(
                self.report(None)
                    .0
                    .iter()
                    .map(|s| {
                        json!({
                            "session_id": s.session_id,
                            "start": s.start,
                            "end": s.end,
                            "outcome": s.outcome,
                        })
                    })
                    .collect(),
            )),
            other => Err(QueryError::BadArgument(format!("no query {other}"))),
        }
    }

    fn save(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(self).ok()
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        *self = serde_json::from_slice(bytes)
            .map_err(|e| PluginError::new(format!("the snapshot does not decode: {e}")))?;
        Ok(())
    }
}
