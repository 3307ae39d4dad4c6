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

mod index;
mod seen;
mod stats;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vibes_events::{Event, EventData};
use vibes_plugin::{Emitter, Input, Manifest, Plugin, PluginError, QueryArgs, QueryError, saved};

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
/// Saved as: the magic line, the length of the JSON part (8 bytes, little-endian), the
/// JSON part (statistics, addresses and how many ids each key holds), then each key's
/// id fingerprints as 8 little-endian bytes each, keys in the JSON part's order.
#[derive(Debug, Default)]
pub struct Sessions {
    /// By partition key (a session id, a bead id, ...).
    keys: BTreeMap<String, Keyed>,
    /// Events that were stored more than once (same id), counted once.
    duplicates: u64,
}

/// What is known of one partition key.
#[derive(Debug, Default)]
struct Keyed {
    /// Statistics, once a session event of this key was seen.
    stats: Option<SessionStats>,
    index: AddressIndex,
    /// Fingerprints of the ids indexed, so a repeated event counts once (saved apart,
    /// in binary).
    seen: Seen,
}

/// The JSON part of a saved state (keys `N` and their parts `K`: borrowed to save,
/// owned to read).
#[derive(Serialize, Deserialize)]
struct SavedPart<N: Ord, K> {
    keys: BTreeMap<N, K>,
    duplicates: u64,
}

/// One key in the JSON part: its statistics, its addresses, and how many fingerprints
/// of the binary tail are its.
#[derive(Serialize, Deserialize)]
struct SavedKey<S, I> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stats: Option<S>,
    index: I,
    ids: u64,
}

/// The first bytes of a saved state.
const SAVED_MAGIC: &[u8] = b"vibes-sessions/2\n";

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
    /// (newly counted).
    pub fn add(&mut self, event: &Event, address: vibes_log::RecordAddress) -> bool {
        let Some(key) = event.partition_key() else {
            return false;
        };
        let keyed = self.keys.entry(key.to_owned()).or_default();
        if !keyed.seen.insert(fingerprint(event)) {
            self.duplicates += 1;
            return false;
        }
        keyed.index.add(address);
        let Some(id) = session_of(event) else {
            return false;
        };
        keyed
            .stats
            .get_or_insert_with(|| SessionStats::new(id))
            .add(event);
        std::matches!(event.data, EventData::SessionEnd(_))
    }

    fn stats(&self) -> impl Iterator<Item = &SessionStats> {
        self.keys.values().filter_map(|k| k.stats.as_ref())
    }

    /// Every session's statistics (only `only` if given), by start time, and totals.
    pub fn report(&self, only: Option<&str>) -> (Vec<&SessionStats>, Totals) {
        let mut sessions: Vec<&SessionStats> = self
            .stats()
            .filter(|s| only.is_none_or(|id| s.session_id == id))
            .collect();
        sessions.sort_by(|a, b| a.start.cmp(&b.start).then(a.session_id.cmp(&b.session_id)));
        let totals = Totals::of(sessions.iter().copied());
        (sessions, totals)
    }

    /// The record addresses of one partition key (a session or bead id), each event
    /// once.
    pub fn addresses(&self, key: &str) -> Option<&AddressIndex> {
        self.keys.get(key).map(|k| &k.index)
    }

    /// Events stored more than once.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// The saved form (see the type's doc).
    fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        let part = SavedPart {
            keys: self
                .keys
                .iter()
                .map(|(k, v)| {
                    let keyed = SavedKey {
                        stats: v.stats.as_ref(),
                        index: &v.index,
                        ids: v.seen.len() as u64,
                    };
                    (k.as_str(), keyed)
                })
                .collect(),
            duplicates: self.duplicates,
        };
        let json = serde_json::to_vec(&part)?;
        let ids: usize = self.keys.values().map(|k| k.seen.len()).sum();
        let mut out = saved::frame(SAVED_MAGIC, &json, ids * 8);
        for keyed in self.keys.values() {
            keyed.seen.write_to(&mut out);
        }
        Ok(out)
    }

    /// Reads the saved form; the error says what does not fit.
    fn decode(bytes: &[u8]) -> Result<Sessions, String> {
        let (json, mut ids) = saved::unframe(SAVED_MAGIC, bytes)?
            .ok_or("it is not a saved sessions state of this version")?;
        let part: SavedPart<String, SavedKey<SessionStats, AddressIndex>> =
            serde_json::from_slice(json).map_err(|e| e.to_string())?;
        let mut state = Sessions {
            keys: BTreeMap::new(),
            duplicates: part.duplicates,
        };
        for (key, saved) in part.keys {
            let n = usize::try_from(saved.ids)
                .ok()
                .and_then(|n| n.checked_mul(8))
                .filter(|n| *n <= ids.len())
                .ok_or_else(|| format!("the ids of key {key} run past the end"))?;
            let (mine, others) = ids.split_at(n);
            let seen = Seen::read_from(mine).map_err(|e| format!("key {key}: {e}"))?;
            ids = others;
            let keyed = Keyed {
                stats: saved.stats,
                index: saved.index,
                seen,
            };
            state.keys.insert(key, keyed);
        }
        if !ids.is_empty() {
            return Err(format!(
                "{} bytes are left after the last key's ids",
                ids.len()
            ));
        }
        Ok(state)
    }

    fn session(&self, id: &str) -> Result<&SessionStats, QueryError> {
        self.keys
            .get(id)
            .and_then(|k| k.stats.as_ref())
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
                "where one session's (or bead's) records are stored",
                &["id"],
            )
            .query(
                "sessions",
                "every session with its start, end and outcome",
                &[],
            )
            .version(2)
            .snapshot_every(50_000)
    }

    fn handle(&mut self, input: &Input<'_>, out: &mut Emitter) -> Result<(), PluginError> {
        if self.add(input.event, input.address)
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
                let (sessions, totals) = self.report(only);
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
        self.encode().ok()
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        *self = Self::decode(bytes)
            .map_err(|e| PluginError::new(format!("the snapshot does not decode: {e}")))?;
        Ok(())
    }
}
