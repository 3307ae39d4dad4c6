//! The call table: every API call once, by the counting rules of `vibes_sources::calls`
//! (docs/SOURCES.md, "Counting API calls"), in a compact form that snapshots small and
//! restores fast. Names (sessions, models, agents, projects) are interned; a call is a
//! row of numbers.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use vibes_events::{ApiCall, ApiUsage};

use crate::tokens::Tokens;

/// No name.
const NONE: u32 = u32::MAX;

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
    pub(crate) fn reindex(&mut self) {
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
        self.calls.values().map(|row| CallView {
            session_id: self.name(row.0),
            project: self.projects.get(&row.0).and_then(|&p| self.name(p)),
            agent_id: self.name(row.1),
            model: self.name(row.2),
            first: Timestamp::from_nanosecond(i128::from(row.3)).unwrap_or_default(),
            tokens: Tokens::from_array(row.4),
            output_final: row.5 & FINAL != 0,
            is_sidechain: row.5 & SIDECHAIN != 0,
        })
    }
}

/// `at` in nanoseconds since the epoch (timestamps are within ±292 years of it).
fn nanos(at: Timestamp) -> i64 {
    i64::try_from(at.as_nanosecond()).unwrap_or(if at.as_second() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}
