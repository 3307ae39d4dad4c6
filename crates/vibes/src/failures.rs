//! Failed tool calls: a `claude.tool_result` with `is_error` paired with the
//! `claude.tool_use` it answers, described as the groove plugin fingerprints failures
//! (tool, command head, error kind, telling line). One session's failures, read in
//! stored order, and the most recent failures of the whole log, read from its end
//! backwards, are both made here.

use std::collections::HashMap;

use anyhow::{Context, Result};
use jiff::Timestamp;
use serde::Serialize;
use vibes_events::display::truncate;
use vibes_events::{Event, EventData, Filter, ToolResult, ToolUse};
use vibes_log::{EventLog, Offset};
use vibes_plugin_groove::fingerprint::{
    SCAN_BYTES, command_head, cut_bytes, fingerprint, strip_ansi, telling_line_as_is,
};

use crate::storage::Storage;

/// The longest call description kept, in characters.
const CALL_CHARS: usize = 200;

/// Records read per request when reading the log backwards.
const STEP: u64 = 4096;

/// One failed tool call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedCall {
    /// The session it happened in, when the events say.
    pub session_id: Option<String>,
    /// When the failing result was recorded.
    pub at: Timestamp,
    /// The tool (`Bash`, `Edit`, ...); `None` when neither the call nor the result
    /// names it.
    pub tool: Option<String>,
    /// The command head for shell tools (`make test`, `cargo build`), else empty.
    pub head: String,
    /// What was called, as `vibes tail` shows the call (`$ make test`,
    /// `Read: src/lib.rs`), cut to 200 characters; `None` when the call was not found.
    pub call: Option<String>,
    /// The error kind (groove's classification: `test_failure`, `permission_denied`, ...).
    pub kind: String,
    /// The telling line of the error, as it was (not normalised).
    pub error_line: String,
    /// The groove fingerprint id, shared by failures that are the same failure.
    pub fingerprint: String,
    /// The tool call id.
    pub tool_use_id: String,
}

impl FailedCall {
    /// The failure of `result` (an error result in `event`), answering `call` if known.
    fn new(event: &Event, result: &ToolResult, call: Option<(&Event, &ToolUse)>) -> Self {
        let tool = call
            .map(|(_, u)| u.tool_name.clone())
            .or_else(|| result.tool_name.clone());
        let tool_name = tool.as_deref().unwrap_or("");
        let head = call.map_or_else(String::new, |(_, u)| command_head(tool_name, &u.input));
        let print = fingerprint(tool_name, &head, &result.content);
        let error_line = telling_line_as_is(&strip_ansi(cut_bytes(&result.content, SCAN_BYTES)));
        FailedCall {
            session_id: result
                .session_id
                .clone()
                .or_else(|| event.partition_key().map(str::to_owned)),
            at: event.timestamp,
            tool,
            head,
            call: call.map(|(e, _)| truncate(&e.summary().to_string(), CALL_CHARS).into_owned()),
            kind: print.kind.as_str().to_owned(),
            error_line,
            fingerprint: print.id,
            tool_use_id: result.tool_id.clone(),
        }
    }
}

/// The two event types a failure is made of.
fn tool_filter() -> Filter {
    Filter::all().types(["claude.tool_use", "claude.tool_result"])
}

/// Pairs the events of one session, given in stored order, into its failed calls.
#[derive(Debug, Default)]
pub struct InOrder {
    calls: HashMap<String, Event>,
    failures: Vec<FailedCall>,
}

impl InOrder {
    /// Takes the next event.
    pub fn add(&mut self, event: &Event) {
        match &event.data {
            EventData::ToolUse(u) => {
                self.calls.insert(u.tool_id.clone(), event.clone());
            }
            EventData::ToolResult(r) if r.is_error => {
                let call = self.calls.remove(&r.tool_id);
                let call = call.as_ref().and_then(|e| match &e.data {
                    EventData::ToolUse(u) => Some((e, u)),
                    _ => None,
                });
                self.failures.push(FailedCall::new(event, r, call));
            }
            EventData::ToolResult(r) => {
                self.calls.remove(&r.tool_id);
            }
            _ => {}
        }
    }

    /// The failures, in stored order.
    pub fn finish(self) -> Vec<FailedCall> {
        self.failures
    }
}

/// What [`recent`] found.
#[derive(Debug, Default)]
pub struct Recent {
    /// Newest first.
    pub failures: Vec<FailedCall>,
    /// Whether older failures that `keep` accepts exist beyond these.
    pub more: bool,
    /// Records read.
    pub scanned: u64,
    /// Records that did not decode (reported on stderr).
    pub undecodable: u64,
}

/// The newest `want` failed calls of `log` that `keep` accepts (newest first), reading
/// each partition from its end backwards until it has them.
pub fn recent(
    storage: &Storage,
    log: &EventLog<Event>,
    want: usize,
    keep: &dyn Fn(&FailedCall) -> bool,
) -> Result<Recent> {
    let mut found = Recent::default();
    let filter = tool_filter();
    let topic = log.topic().clone();
    for partition in 0..log.partitions() {
        let marks = storage.block_on(log.watermarks(partition))?;
        // Error results whose call is further back, by tool call id: (position in
        // `mine`, result event).
        let mut pending: HashMap<String, (usize, Event)> = HashMap::new();
        let mut mine: Vec<Option<FailedCall>> = Vec::new();
        let mut end: Offset = marks.high;
        // Complete failures at the front of `mine` (newest first) that `keep` accepts.
        let ready = |mine: &[Option<FailedCall>]| {
            mine.iter()
                .take_while(|f| f.is_some())
                .flatten()
                .filter(|f| keep(f))
                .count()
        };
        while end > marks.low && ready(&mine) <= want {
            let start = end.saturating_sub(STEP).max(marks.low);
            let count = usize::try_from(end - start).unwrap_or(STEP as usize);
            let records = storage
                .block_on(storage.backend.read(&topic, partition, start, count))
                .with_context(|| format!("reading partition {partition} of {topic}"))?;
            found.scanned += records.len() as u64;
            for record in records.iter().rev() {
                if record.address.offset >= end || !filter.matches_json(&record.payload) {
                    continue;
                }
                let Some(event) =
                    crate::search::decode_or_warn(record, &topic, &mut found.undecodable)
                else {
                    continue;
                };
                match &event.data {
                    EventData::ToolResult(r) if r.is_error => {
                        pending.insert(r.tool_id.clone(), (mine.len(), event.clone()));
                        mine.push(None);
                    }
                    EventData::ToolUse(u) => {
                        if let Some((at, result_event)) = pending.remove(&u.tool_id)
                            && let EventData::ToolResult(r) = &result_event.data
                        {
                            mine[at] = Some(FailedCall::new(&result_event, r, Some((&event, u))));
                        }
                    }
                    _ => {}
                }
            }
            end = start;
        }
        // Read to the start: results whose call was never stored are described
        // without it. (Stopped early, they lie past the failures taken.)
        if end <= marks.low {
            for (at, event) in pending.into_values() {
                if let EventData::ToolResult(r) = &event.data {
                    mine[at] = Some(FailedCall::new(&event, r, None));
                }
            }
        }
        found
            .failures
            .extend(mine.into_iter().map_while(|f| f).filter(|f| keep(f)));
    }
    found
        .failures
        .sort_by(|a, b| b.at.cmp(&a.at).then(a.tool_use_id.cmp(&b.tool_use_id)));
    found.more = found.failures.len() > want;
    found.failures.truncate(want);
    Ok(found)
}
