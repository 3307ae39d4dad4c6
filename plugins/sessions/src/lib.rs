//! The sessions plugin: per-session statistics (the fold behind `vibes stats`) and the
//! record addresses of every session and bead (every partition key), so
//! `vibes tail --session ID` reads only that id's records.
//!
//! Reads: session and Claude events of the host's event topic. Writes: a
//! `sessions.summary` event into `sessions/summaries` when a session ends (again when
//! a later end of the same session changes it). Answers:
//! - `stats [session]`: `{"sessions": [...], "totals": {...}}`, sessions by start time;
//! - `session ID`: one session's statistics;
//! - `addresses ID`: `{"session_id", "records", "runs": [{"partition","start","len"}]}`
//!   for any partition key (a session or a bead id);
//! - `sessions`: every session id with its start, end and outcome.
//!
//! Each event id counts once, so a session stored twice is counted once and indexed
//! once (ids are remembered per key as 64-bit fingerprints: two distinct events of one
//! key collide with odds below n²/2⁶⁴). The state is saved in snapshots every 50,000
//! events.
//!
//! Depends on `vibes-events`, `vibes-log` and `vibes-plugin` only.

mod frozen;
mod index;
mod seen;
mod stats;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use serde_json::{Value, json};
use vibes_events::{Event, EventData};
use vibes_plugin::{Emitter, Input, Manifest, Plugin, PluginError, QueryArgs, QueryError};

use frozen::Frozen;
pub use index::{AddressIndex, Run};
use seen::Seen;
pub use stats::{SessionStats, Totals, session_of};

/// The plugin's name (and stream).
pub const NAME: &str = "sessions";

/// The output topic of session summaries.
pub const SUMMARIES: &str = "summaries";

/// The type of a session summary event.
pub const SUMMARY_TYPE: &str = "sessions.summary";

/// The plugin: its state is every session's statistics and every key's addresses.
///
/// Saved as a directory of keys (see the `frozen` module for the layout): per key its
/// statistics, its address runs and how many ids it holds. The id fingerprints, which
/// only handling needs, are saved apart ([`Plugin::save_for_handling`]). A restored
/// state decodes a key when it is first asked about or changed, so answering about
/// one session costs that session, not the whole state.
#[derive(Debug, Default)]
pub struct Sessions {
    /// By partition key (a session id, a bead id, ...): the keys new or changed since
    /// the restore.
    keys: BTreeMap<String, Keyed>,
    /// The restored keys not changed since.
    frozen: Frozen,
    /// Events that were stored more than once (same id), counted once.
    duplicates: u64,
}

/// What is known of one partition key.
#[derive(Debug, Default)]
struct Keyed {
    /// Statistics, once a session event of this key was seen.
    stats: Option<SessionStats>,
    index: AddressIndex,
    /// Fingerprints of the ids indexed, so a repeated event counts once.
    seen: Seen,
}

/// One key of the state, new or changed (`Live`) or as restored (`Frozen`).
enum Slot<'a> {
    Live(&'a str, &'a Keyed),
    Frozen(&'a str),
}

/// The 64 bits of an id that a derived or random UUID fills from its hash or random
/// part.
fn fingerprint(event: &Event) -> u64 {
    event.id.as_u128() as u64
}

impl Sessions {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one event stored at `address`; returns whether it was a session's end
    /// (newly counted). An error says which restored key does not decode.
    pub fn add(
        &mut self,
        event: &Event,
        address: vibes_log::RecordAddress,
    ) -> Result<bool, String> {
        let Some(key) = event.partition_key() else {
            return Ok(false);
        };
        let keyed = match self.keys.entry(key.to_owned()) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                let keyed = match self.frozen.thaw(key)? {
                    Some((stats, index, seen)) => Keyed { stats, index, seen },
                    None => Keyed::default(),
                };
                v.insert(keyed)
            }
        };
        if !keyed.seen.insert(fingerprint(event)) {
            self.duplicates += 1;
            return Ok(false);
        }
        keyed.index.add(address);
        let Some(id) = session_of(event) else {
            return Ok(false);
        };
        keyed
            .stats
            .get_or_insert_with(|| SessionStats::new(id))
            .add(event);
        Ok(std::matches!(event.data, EventData::SessionEnd(_)))
    }

    /// Every session's statistics (only `only` if given), by start time, and totals.
    /// An error says which restored key does not decode.
    pub fn report(
        &self,
        only: Option<&str>,
    ) -> Result<(Vec<Cow<'_, SessionStats>>, Totals), String> {
        let mut sessions: Vec<Cow<'_, SessionStats>> = self
            .keys
            .values()
            .filter_map(|k| k.stats.as_ref())
            .filter(|s| only.is_none_or(|id| s.session_id == id))
            .map(Cow::Borrowed)
            .collect();
        match only {
            Some(id) => sessions.extend(self.frozen.stats(id)?.map(Cow::Owned)),
            None => sessions.extend(self.frozen.all_stats()?.into_iter().map(Cow::Owned)),
        }
        sessions.sort_by(|a, b| a.start.cmp(&b.start).then(a.session_id.cmp(&b.session_id)));
        let totals = Totals::of(sessions.iter().map(|s| &**s));
        Ok((sessions, totals))
    }

    /// The record addresses of one partition key (a session or bead id), each event
    /// once.
    pub fn addresses(&self, key: &str) -> Option<Cow<'_, AddressIndex>> {
        match self.keys.get(key) {
            Some(keyed) => Some(Cow::Borrowed(&keyed.index)),
            None => self.frozen.index(key).map(Cow::Owned),
        }
    }

    /// Events stored more than once.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Every key in ascending order, new or changed ones and restored ones merged.
    fn each_key(&self, mut f: impl FnMut(Slot<'_>)) {
        let mut live = self.keys.iter().peekable();
        let mut frozen = self.frozen.keys().peekable();
        loop {
            match (live.peek(), frozen.peek()) {
                (Some((l, _)), Some(fz)) if l.as_str() > *fz => {
                    f(Slot::Frozen(fz));
                    frozen.next();
                }
                (Some((l, keyed)), _) => {
                    f(Slot::Live(l, keyed));
                    live.next();
                }
                (None, Some(fz)) => {
                    f(Slot::Frozen(fz));
                    frozen.next();
                }
                (None, None) => break,
            }
        }
    }

    /// The saved form of everything but the fingerprints (see the type's doc).
    fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = frozen::MAGIC.to_vec();
        out.extend_from_slice(&self.duplicates.to_le_bytes());
        let count = self.keys.len() + self.frozen.keys().count();
        out.extend_from_slice(&(count as u32).to_le_bytes());
        let mut failed = None;
        self.each_key(|slot| match slot {
            Slot::Live(key, keyed) => {
                let ids = keyed.seen.len() as u64;
                if let Err(e) =
                    frozen::write_entry(&mut out, key, keyed.stats.as_ref(), &keyed.index, ids)
                {
                    failed = Some(e);
                }
            }
            Slot::Frozen(key) => self.frozen.write_entry(key, &mut out),
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// The fingerprints, key by key.
    fn encode_seen(&self) -> Vec<u8> {
        let ids =
            self.keys.values().map(|k| k.seen.len() as u64).sum::<u64>() + self.frozen.id_count();
        let mut out = Vec::with_capacity(usize::try_from(ids * 8).unwrap_or(0));
        self.each_key(|slot| match slot {
            Slot::Live(_, keyed) => keyed.seen.write_to(&mut out),
            Slot::Frozen(key) => self.frozen.write_ids(key, &mut out),
        });
        out
    }

    fn session(&self, id: &str) -> Result<Cow<'_, SessionStats>, QueryError> {
        let stats = match self.keys.get(id) {
            Some(keyed) => keyed.stats.as_ref().map(Cow::Borrowed),
            None => self
                .frozen
                .stats(id)
                .map_err(QueryError::Failed)?
                .map(Cow::Owned),
        };
        stats.ok_or_else(|| QueryError::NotFound(format!("no session {id}")))
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
                "where one session's (or bead's) records are stored",
                &["id"],
            )
            .query(
                "sessions",
                "every session with its start, end and outcome",
                &[],
            )
            .version(4)
            .snapshot_every(50_000)
    }

    fn handle(&mut self, input: &Input<'_>, out: &mut Emitter) -> Result<(), PluginError> {
        if self
            .add(input.event, input.address)
            .map_err(PluginError::new)?
            && let Some(id) = session_of(input.event)
        {
            let stats = self
                .session(id)
                .map_err(|e| PluginError::new(e.to_string()))?;
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
                let (sessions, totals) = self.report(only).map_err(QueryError::Failed)?;
                Ok(json!({ "sessions": sessions, "totals": totals }))
            }
            "session" => Ok(json!(self.session(args.require("id")?)?)),
            "addresses" => {
                let id = args.require("id")?;
                let index = self
                    .addresses(id)
                    .ok_or_else(|| QueryError::NotFound(format!("no records with key {id}")))?;
                Ok(json!({
                    "session_id": id,
                    "records": index.len(),
                    "runs": index.runs(),
                }))
            }
            "sessions" => Ok(Value::Array(
                self.report(None)
                    .map_err(QueryError::Failed)?
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
        // Restored without its ids, the state cannot save them: no snapshot then (the
        // runtime restores them before it saves, so this does not happen).
        if self.frozen.lacks_ids() {
            return None;
        }
        self.encode().ok()
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        let (frozen, duplicates) = Frozen::parse(bytes)
            .and_then(|f| {
                f.ok_or_else(|| "it is not a saved sessions state of this version".to_owned())
            })
            .map_err(|e| PluginError::new(format!("the snapshot does not decode: {e}")))?;
        *self = Sessions {
            keys: BTreeMap::new(),
            frozen,
            duplicates,
        };
        Ok(())
    }

    fn save_for_handling(&self) -> Option<Vec<u8>> {
        Some(self.encode_seen())
    }

    fn restore_for_handling(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        self.frozen.restore_ids(bytes).map_err(|e| {
            // Everything is replayed into this state next: it must be as new.
            *self = Sessions::default();
            PluginError::new(format!("the saved ids do not decode: {e}"))
        })
    }
}
