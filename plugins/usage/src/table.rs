//! The call table: every API call once, by the counting rules of `vibes_sources::calls`
//! (docs/SOURCES.md, "Counting API calls"), in a compact form that snapshots small and
//! restores fast. Names (sessions, models, agents, projects) are interned; a call is a
//! row of numbers.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use vibes_events::{ApiCall, ApiUsage};
use vibes_plugin::saved;

use crate::tokens::Tokens;

/// No name.
const NONE: u32 = u32::MAX;

/// The start of a saved table ([`Table::encode`]).
const SAVED_MAGIC: &[u8] = b"vibes-usage-table-2\n";
/// Bytes of one saved call: key (16), session, agent, model (4 each), time (8),
/// tokens (5 x 8), flags (1), all little-endian.
const ROW_BYTES: usize = 16 + 12 + 8 + 40 + 1;

const FINAL: u8 = 1;
const SIDECHAIN: u8 = 2;

/// One call: session, agent, model (name indexes or [`NONE`]), its earliest copy's
/// time in nanoseconds since the Unix epoch, its largest copy's tokens, and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Row(u32, u32, u32, i64, [u64; 5], u8);

/// What the table holds; see the [module docs](self).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Table {
    names: Vec<String>,
    #[serde(skip)]
    index: BTreeMap<String, u32>,
    /// Calls by the XXH3-128 of their key.
    calls: BTreeMap<u128, Row>,
    /// Session → project (names).
    projects: BTreeMap<u32, u32>,
    /// Copies folded in.
    copies: u64,
}

/// One call as the table has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallView<'a> {
    /// The session.
    pub session_id: Option<&'a str>,
    /// The session's project (the `cwd` its start reported), if known.
    pub project: Option<&'a str>,
    /// The subagent that made it; `None` for the main session.
    pub agent_id: Option<&'a str>,
    /// The model that answered.
    pub model: Option<&'a str>,
    /// Its earliest copy's time.
    pub first: Timestamp,
    /// Its largest copy's tokens.
    pub tokens: Tokens,
    /// Whether a copy carried a stop reason (else `tokens.output` is a lower bound).
    pub output_final: bool,
    /// Whether it was made on a side chain.
    pub is_sidechain: bool,
}

impl Table {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = u32::try_from(self.names.len()).unwrap_or(NONE - 1);
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), i);
        i
    }

    fn intern_opt(&mut self, name: Option<&str>) -> u32 {
        name.map_or(NONE, |n| self.intern(n))
    }

    fn name(&self, i: u32) -> Option<&str> {
        self.names.get(i as usize).map(String::as_str)
    }

    /// Rebuilds the name index after a restore.
    fn reindex(&mut self) {
        self.index = self
            .names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), u32::try_from(i).unwrap_or(NONE - 1)))
            .collect();
    }

    /// Folds in one copy of a call of `session`, seen at `at`; `fallback` identifies a
    /// copy without a message id (its event id).
    pub(crate) fn add_copy(
        &mut self,
        call: &ApiCall,
        session: Option<&str>,
        at: Timestamp,
        fallback: u128,
    ) {
        self.copies += 1;
        let key = match call.key() {
            Some((message, request)) => {
                let mut bytes = Vec::with_capacity(message.len() + request.len() + 3);
                bytes.extend_from_slice(b"m\0");
                bytes.extend_from_slice(message.as_bytes());
                bytes.push(0);
                bytes.extend_from_slice(request.as_bytes());
                xxhash_rust::xxh3::xxh3_128(&bytes)
            }
            None => {
                let mut bytes = b"e\0".to_vec();
                bytes.extend_from_slice(&fallback.to_le_bytes());
                xxhash_rust::xxh3::xxh3_128(&bytes)
            }
        };
        let ns = nanos(at);
        let session = self.intern_opt(session);
        let agent = self.intern_opt(call.agent_id.as_deref());
        let model = self.intern_opt(call.model.as_deref());
        let flags = |final_: bool, sidechain: bool| {
            (if final_ { FINAL } else { 0 }) | (if sidechain { SIDECHAIN } else { 0 })
        };
        let Some(row) = self.calls.get_mut(&key) else {
            let tokens = Tokens::from(&call.usage).as_array();
            let row = Row(
                session,
                agent,
                model,
                ns,
                tokens,
                flags(call.is_final(), call.is_sidechain),
            );
            self.calls.insert(key, row);
            return;
        };
        row.3 = row.3.min(ns);
        let kept = Tokens::from_array(row.4);
        let kept = ApiUsage::new(
            kept.input,
            kept.output,
            kept.cache_creation_5m,
            kept.cache_creation_1h,
            kept.cache_read,
        );
        if call.usage.supersedes(&kept) {
            row.4 = Tokens::from(&call.usage).as_array();
            if model != NONE {
                row.2 = model;
            }
        }
        if call.is_final() {
            row.5 |= FINAL;
        }
        if row.2 == NONE {
            row.2 = model;
        }
        if row.1 != NONE && agent == NONE {
            // The main session's copy wins: the subagent's was a replay.
            row.1 = NONE;
            row.0 = session;
            row.5 = (row.5 & FINAL) | flags(false, call.is_sidechain);
        }
    }

    /// Records `project` as the project of `session`, unless it has one.
    pub(crate) fn set_project(&mut self, session: &str, project: &str) {
        let session = self.intern(session);
        if !self.projects.contains_key(&session) {
            let project = self.intern(project);
            self.projects.insert(session, project);
        }
    }

    /// Copies folded in.
    pub(crate) fn copies(&self) -> u64 {
        self.copies
    }

    /// Distinct calls.
    pub(crate) fn len(&self) -> usize {
        self.calls.len()
    }

    /// Every call, in key order.
    pub(crate) fn calls(&self) -> impl Iterator<Item = CallView<'_>> {
        // Each name's project, by name index, looked up once rather than per call.
        let mut project_of = vec![NONE; self.names.len()];
        for (&session, &project) in &self.projects {
            if let Some(slot) = project_of.get_mut(session as usize) {
                *slot = project;
            }
        }
        self.calls.values().map(move |row| CallView {
            session_id: self.name(row.0),
            project: project_of.get(row.0 as usize).and_then(|&p| self.name(p)),
            agent_id: self.name(row.1),
            model: self.name(row.2),
            first: timestamp(row.3),
            tokens: Tokens::from_array(row.4),
            output_final: row.5 & FINAL != 0,
            is_sidechain: row.5 & SIDECHAIN != 0,
        })
    }
}

/// The part of a saved table that is not a call row.
#[derive(Serialize, Deserialize)]
struct SavedNames {
    names: Vec<String>,
    projects: BTreeMap<u32, u32>,
    copies: u64,
}

impl Table {
    /// The table as bytes: [`SAVED_MAGIC`], the length of a small JSON part (names,
    /// projects, copies) as 8 little-endian bytes, that part, then every call as
    /// [`ROW_BYTES`] fixed-width bytes in key order, so that a restore copies numbers
    /// instead of parsing about 100 bytes of JSON per call.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        let json = serde_json::to_vec(&SavedNames {
            names: self.names.clone(),
            projects: self.projects.clone(),
            copies: self.copies,
        })?;
        let mut out = saved::frame(SAVED_MAGIC, &json, self.calls.len() * ROW_BYTES);
        for (key, row) in &self.calls {
            out.extend_from_slice(&key.to_le_bytes());
            for name in [row.0, row.1, row.2] {
                out.extend_from_slice(&name.to_le_bytes());
            }
            out.extend_from_slice(&row.3.to_le_bytes());
            for count in row.4 {
                out.extend_from_slice(&count.to_le_bytes());
            }
            out.push(row.5);
        }
        Ok(out)
    }

    /// Reads what [`Table::encode`] wrote, or a table saved as JSON before it (older
    /// snapshots stay readable). Errors say what is wrong.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Table, String> {
        let Some((json, rows)) = saved::unframe(SAVED_MAGIC, bytes)? else {
            let mut table: Table = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
            table.reindex();
            return Ok(table);
        };
        let saved: SavedNames = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        if !rows.len().is_multiple_of(ROW_BYTES) {
            return Err(format!(
                "{} bytes of calls is not a whole number of {ROW_BYTES}-byte calls",
                rows.len()
            ));
        }
        let mut calls = Vec::with_capacity(rows.len() / ROW_BYTES);
        for row in rows.chunks_exact(ROW_BYTES) {
            let mut at = 0;
            let mut take = |n: usize| {
                let part = &row[at..at + n];
                at += n;
                part
            };
            let key = u128::from_le_bytes(take(16).try_into().unwrap_or_default());
            let mut name = || u32::from_le_bytes(take(4).try_into().unwrap_or_default());
            let (session, agent, model) = (name(), name(), name());
            let first = i64::from_le_bytes(take(8).try_into().unwrap_or_default());
            let mut tokens = [0u64; 5];
            for count in &mut tokens {
                *count = u64::from_le_bytes(take(8).try_into().unwrap_or_default());
            }
            let flags = take(1)[0];
            calls.push((key, Row(session, agent, model, first, tokens, flags)));
        }
        if calls.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err("the calls are not in ascending key order".to_owned());
        }
        let mut table = Table {
            names: saved.names,
            index: BTreeMap::new(),
            calls: calls.into_iter().collect(),
            projects: saved.projects,
            copies: saved.copies,
        };
        table.reindex();
        Ok(table)
    }
}

/// `at` in nanoseconds since the epoch (timestamps are within ±292 years of it).
/// The time `nanos` after the Unix epoch (the inverse of [`nanos`]), without the
/// 128-bit division of `Timestamp::from_nanosecond`.
fn timestamp(nanos: i64) -> Timestamp {
    let (secs, sub) = (
        nanos.div_euclid(1_000_000_000),
        nanos.rem_euclid(1_000_000_000),
    );
    Timestamp::new(secs, i32::try_from(sub).unwrap_or(0)).unwrap_or_default()
}

fn nanos(at: Timestamp) -> i64 {
    i64::try_from(at.as_nanosecond()).unwrap_or(if at.as_second() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_come_back_as_they_were_stored_either_side_of_the_epoch() {
        for nanos in [
            0,
            1,
            -1,
            999_999_999,
            -999_999_999,
            1_000_000_000,
            -1_000_000_001,
            1_772_409_721_369_000_123,
            -62_000_000_000_000_000,
        ] {
            let expected = Timestamp::from_nanosecond(i128::from(nanos)).unwrap();
            assert_eq!(timestamp(nanos), expected, "{nanos}");
            assert_eq!(super::nanos(timestamp(nanos)), nanos);
        }
    }

    fn table() -> Table {
        let mut table = Table::default();
        for (i, (message, agent)) in [("msg_a", None), ("msg_b", Some("a1")), ("msg_a", None)]
            .into_iter()
            .enumerate()
        {
            let mut call = ApiCall::new(ApiUsage::new(1, 10 * i as u64, 2, 3, 4));
            call.message_id = Some(message.to_owned());
            call.request_id = Some("req_1".to_owned());
            call.model = Some("claude-x".to_owned());
            call.agent_id = agent.map(str::to_owned);
            let at = Timestamp::from_second(1_700_000_000 + i as i64).unwrap();
            table.add_copy(&call, Some("s1"), at, i as u128);
        }
        table.set_project("s1", "/home/dev/app");
        table
    }

    #[test]
    fn a_saved_table_restores_equal_and_keeps_interning() {
        let table = table();
        let bytes = table.encode().unwrap();
        assert!(bytes.starts_with(SAVED_MAGIC));
        let mut restored = Table::decode(&bytes).unwrap();
        assert_eq!(restored, table);
        assert_eq!(restored.len(), 2);
        // The name index works after a restore: a known name is not added again.
        let before = restored.names.len();
        restored.set_project("s1", "/elsewhere");
        assert_eq!(restored.names.len(), before);
        assert_eq!(restored.encode().unwrap(), bytes);
    }

    #[test]
    fn a_table_saved_as_json_still_restores() {
        let table = table();
        let json = serde_json::to_vec(&table).unwrap();
        assert_eq!(Table::decode(&json).unwrap(), table);
    }

    #[test]
    fn damaged_bytes_are_an_error_saying_what_is_wrong() {
        let bytes = table().encode().unwrap();
        let cut = Table::decode(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(cut.contains("not a whole number"), "{cut}");
        let short = Table::decode(&bytes[..SAVED_MAGIC.len() + 3]).unwrap_err();
        assert!(short.contains("length of its JSON part"), "{short}");
        let mut swapped = bytes.clone();
        let rows = swapped.len() - 2 * ROW_BYTES;
        let (a, b) = swapped[rows..].split_at_mut(ROW_BYTES);
        a.swap_with_slice(b);
        let order = Table::decode(&swapped).unwrap_err();
        assert!(order.contains("ascending"), "{order}");
        assert!(Table::decode(b"garbage").is_err());
    }
}
