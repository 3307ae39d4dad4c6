//! Counting API calls once: [`ApiCalls`] folds `claude.api_call` events (copies of
//! calls) into one record per call.
//!
//! # Counting rules
//!
//! - A call is identified by (`message_id`, `request_id`). Every copy with the same
//!   pair, from any file (a session's own file, its subagent files, a replay of a
//!   parent's message in a subagent's file), is the same call and is counted once.
//!   A copy without a message id cannot be matched with others and counts alone
//!   (keyed by its event id, so a re-delivered copy still counts once).
//! - Copies are streaming snapshots: input and cache counts agree, output grows. The
//!   record keeps the largest copy: the one with the most output tokens, then the most
//!   tokens in all.
//! - A call is final when any copy carried a stop reason. Otherwise its output count
//!   may still be short of the truth, and the totals' [`CallTotals::not_final`] says
//!   how many calls make them a lower bound.
//! - A call is attributed to the main session when any copy came from it (a
//!   subagent's copy of a parent's message is a replay), else to the subagent of its
//!   first copy.
//! - Copies arrive in any order (transcript timestamps are not monotonic, files are
//!   read one after another): the result does not depend on the order.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use vibes_events::{ApiCall, ApiUsage, Event, EventData};

/// One API call, from its largest copy.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CallRecord {
    /// The API message id.
    pub message_id: Option<String>,
    /// The API request id.
    pub request_id: Option<String>,
    /// The model that answered.
    pub model: Option<String>,
    /// The largest copy's usage.
    pub usage: ApiUsage,
    /// The stop reason, if any copy had one.
    pub stop_reason: Option<String>,
    /// Whether any copy carried a stop reason (the output count is final).
    pub output_final: bool,
    /// The session.
    pub session_id: Option<String>,
    /// The subagent that made the call; `None` for the main session.
    pub agent_id: Option<String>,
    /// Whether the call was on a side chain.
    pub is_sidechain: bool,
    /// How many copies were folded in.
    pub copies: u64,
    /// The earliest timestamp of any copy.
    pub first_seen: Timestamp,
}

/// Sums over calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallTotals {
    /// Calls.
    pub calls: u64,
    /// Calls whose output count may not be final (no stop reason seen); while this is
    /// not 0, `output_tokens` is a lower bound.
    pub not_final: u64,
    /// Uncached input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cache writes with a 5-minute lifetime.
    pub cache_creation_5m_input_tokens: u64,
    /// Cache writes with a 1-hour lifetime.
    pub cache_creation_1h_input_tokens: u64,
    /// Cache reads.
    pub cache_read_input_tokens: u64,
}

impl CallTotals {
    /// All cache writes.
    pub fn cache_creation_input_tokens(&self) -> u64 {
        self.cache_creation_5m_input_tokens + self.cache_creation_1h_input_tokens
    }

    /// Whether the output count is only a lower bound.
    pub fn is_lower_bound(&self) -> bool {
        self.not_final > 0
    }

    fn add(&mut self, record: &CallRecord) {
        let u = &record.usage;
        self.calls += 1;
        self.not_final += u64::from(!record.output_final);
        self.input_tokens += u.input_tokens;
        self.output_tokens += u.output_tokens;
        self.cache_creation_5m_input_tokens += u.cache_creation_5m_input_tokens;
        self.cache_creation_1h_input_tokens += u.cache_creation_1h_input_tokens;
        self.cache_read_input_tokens += u.cache_read_input_tokens;
    }
}

/// The calls seen so far, each counted once; see the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct ApiCalls {
    calls: HashMap<(String, String), CallRecord>,
    copies: u64,
}

impl ApiCalls {
    /// No calls.
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds in `event` if it is a `claude.api_call`; returns whether it was.
    pub fn add(&mut self, event: &Event) -> bool {
        match &event.data {
            EventData::ApiCall(call) => {
                let fallback = event.id.to_string();
                self.add_call(call, event.timestamp, &fallback);
                true
            }
            _ => false,
        }
    }

    /// Folds in one copy of a call, seen at `timestamp`. `fallback_key` identifies the
    /// copy when it has no message id (normally its event id).
    pub fn add_call(&mut self, call: &ApiCall, timestamp: Timestamp, fallback_key: &str) {
        self.copies += 1;
        let key = match call.key() {
            Some((message, request)) => (message.to_owned(), request.to_owned()),
            None => (String::new(), format!("\0{fallback_key}")),
        };
        let record = self.calls.entry(key).or_insert_with(|| CallRecord {
            message_id: call.message_id.clone(),
            request_id: call.request_id.clone(),
            model: call.model.clone(),
            usage: call.usage.clone(),
            stop_reason: None,
            output_final: false,
            session_id: call.session_id.clone(),
            agent_id: call.agent_id.clone(),
            is_sidechain: call.is_sidechain,
            copies: 0,
            first_seen: timestamp,
        });
        record.copies += 1;
        record.first_seen = record.first_seen.min(timestamp);
        if call.usage.supersedes(&record.usage) {
            record.usage = call.usage.clone();
            if call.model.is_some() {
                record.model.clone_from(&call.model);
            }
        }
        if call.is_final() {
            record.output_final = true;
            if call.stop_reason.is_some() {
                record.stop_reason.clone_from(&call.stop_reason);
            }
        }
        if record.model.is_none() {
            record.model.clone_from(&call.model);
        }
        if record.agent_id.is_some() && call.agent_id.is_none() {
            // The main session's copy wins: the subagent's was a replay.
            record.agent_id = None;
            record.is_sidechain = call.is_sidechain;
            record.session_id.clone_from(&call.session_id);
        }
    }

    /// Number of distinct calls.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether no call was seen.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Copies folded in (events added), duplicates included.
    pub fn copies(&self) -> u64 {
        self.copies
    }

    /// The calls, in no particular order.
    pub fn calls(&self) -> impl Iterator<Item = &CallRecord> {
        self.calls.values()
    }

    /// The record of the call (`message_id`, `request_id`).
    pub fn get(&self, message_id: &str, request_id: Option<&str>) -> Option<&CallRecord> {
        self.calls
            .get(&(message_id.to_owned(), request_id.unwrap_or("").to_owned()))
    }

    /// Sums over every call.
    pub fn totals(&self) -> CallTotals {
        let mut totals = CallTotals::default();
        for record in self.calls.values() {
            totals.add(record);
        }
        totals
    }

    /// Sums per model (`unknown` for calls that name none).
    pub fn by_model(&self) -> BTreeMap<String, CallTotals> {
        let mut out: BTreeMap<String, CallTotals> = BTreeMap::new();
        for record in self.calls.values() {
            let model = record.model.as_deref().unwrap_or("unknown").to_owned();
            out.entry(model).or_default().add(record);
        }
        out
    }

    /// Sums over the calls of side chains (subagents, compaction, 1.x sidechain lines).
    pub fn sidechain_totals(&self) -> CallTotals {
        let mut totals = CallTotals::default();
        for record in self.calls.values().filter(|r| r.is_sidechain) {
            totals.add(record);
        }
        totals
    }
}
