//! Which stored events a reader wants, and a one-off search of the log for them: the
//! rule `vibes tail` filters with and `search_events` of `vibes mcp` pages through.

use anyhow::{Context, Result};
use jiff::Timestamp;
use vibes_events::{Event, Filter};
use vibes_log::EventLog;

use crate::cli::GlobalArgs;
use crate::commands::session;
use crate::storage::Storage;

/// Records read per request.
const STEP: usize = 4096;

/// Which events to take.
#[derive(Debug, Default)]
pub struct Selection {
    /// Types and sources.
    pub filter: Filter,
    /// Only this session's (or bead's) events: its partition key.
    pub session: Option<String>,
    /// Only events whose own timestamp is at or after this.
    pub since: Option<Timestamp>,
    /// Only events whose own timestamp is before this.
    pub until: Option<Timestamp>,
    /// Only events whose JSON contains this text.
    pub contains: Option<Contains>,
}

impl Selection {
    /// Events whose type matches one of `types` (globs; none: any), whose source is one
    /// of `sources` (none: any), and of session (or bead) `session` if given: the
    /// filters of `vibes tail` and of the HTTP API.
    pub fn new(types: &[String], sources: &[String], session: Option<String>) -> Self {
        Selection {
            filter: Filter::all()
                .types(
                    types
                        .iter()
                        .map(|t| vibes_events::TypePattern::new(t.clone())),
                )
                .sources(sources.iter().cloned()),
            session,
            ..Selection::default()
        }
    }

    /// Whether `event` passes.
    pub fn matches(&self, event: &Event) -> bool {
        self.filter.matches(event)
            && self
                .session
                .as_deref()
                .is_none_or(|s| event.partition_key() == Some(s))
            && self.since.is_none_or(|t| event.timestamp >= t)
            && self.until.is_none_or(|t| event.timestamp < t)
            && self.contains.as_ref().is_none_or(|c| {
                event
                    .to_json()
                    .is_ok_and(|json| c.found_in(json.as_bytes()))
            })
    }

    /// Whether the record `payload` (an event's JSON) may pass, judged without decoding
    /// it: its type, source and text. `true` for what cannot be judged so.
    fn may_match(&self, payload: &[u8]) -> bool {
        self.filter.matches_json(payload)
            && self.contains.as_ref().is_none_or(|c| c.found_in(payload))
    }
}

/// Text to find in an event's canonical JSON, ASCII letters in any case. The text is
/// escaped as JSON escapes it, so a quote or a newline in it matches one in a value.
#[derive(Debug, Clone)]
pub struct Contains {
    needle: Vec<u8>,
}

impl Contains {
    /// The text `text`; `None` when it is empty.
    pub fn new(text: &str) -> Option<Self> {
        if text.is_empty() {
            return None;
        }
        let quoted = serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""));
        let escaped = &quoted[1..quoted.len() - 1];
        Some(Contains {
            needle: escaped.as_bytes().to_ascii_lowercase(),
        })
    }

    /// Whether `json` holds the text.
    pub fn found_in(&self, json: &[u8]) -> bool {
        json.windows(self.needle.len())
            .any(|w| w.eq_ignore_ascii_case(&self.needle))
    }
}

/// One page of a search.
#[derive(Debug, Default)]
pub struct Found {
    /// The events, in stored order (partition by partition).
    pub events: Vec<Event>,
    /// Whether more events match after these.
    pub more: bool,
    /// Records read.
    pub scanned: u64,
    /// Records that did not decode (reported on stderr).
    pub undecodable: u64,
}

/// The matching events of `log` after the first `skip`, at most `limit` of them, as
/// stored when the search began. One session's come from the sessions plugin's index
/// ([`session::print_indexed`]); otherwise every partition is read from its start,
/// passing over records whose type, source or text cannot match before decoding them.
pub fn search(
    storage: &Storage,
    log: &EventLog<Event>,
    selection: &Selection,
    skip: u64,
    limit: usize,
    global: &GlobalArgs,
) -> Result<Found> {
    let mut found = Found::default();
    let mut seen = 0u64;
    // Takes one matching event; returns whether to go on.
    let mut take = |event: Event, found: &mut Found| {
        seen += 1;
        if seen <= skip {
            return true;
        }
        if found.events.len() == limit {
            found.more = true;
            return false;
        }
        found.events.push(event);
        true
    };
    if let Some(key) = &selection.session {
        let mut page = Found::default();
        let done = session::print_indexed(
            storage,
            log,
            key,
            global,
            &mut |event| {
                page.scanned += 1;
                Ok(!selection.matches(event) || take(event.clone(), &mut page))
            },
            None,
        )?;
        page.undecodable = done.undecodable;
        return Ok(page);
    }
    let topic = log.topic().clone();
    'partitions: for partition in 0..log.partitions() {
        let marks = storage.block_on(log.watermarks(partition))?;
        let mut next = marks.low;
        while next < marks.high {
            let want = usize::try_from(marks.high - next).map_or(STEP, |n| n.min(STEP));
            let records = storage
                .block_on(storage.backend.read(&topic, partition, next, want))
                .with_context(|| format!("reading partition {partition} of {topic}"))?;
            let Some(last) = records.last() else {
                break;
            };
            next = last.address.offset + 1;
            for record in &records {
                if record.address.offset >= marks.high {
                    break;
                }
                found.scanned += 1;
                if !selection.may_match(&record.payload) {
                    continue;
                }
                let Some(event) = decode_or_warn(record, &topic, &mut found.undecodable) else {
                    continue;
                };
                if selection.matches(&event) && !take(event, &mut found) {
                    break 'partitions;
                }
            }
        }
    }
    Ok(found)
}

/// The event `record` holds; `None`, counted in `undecodable` and said on stderr
/// (topic, partition, offset, why), when it does not decode.
pub(crate) fn decode_or_warn(
    record: &vibes_log::backend::StoredRecord,
    topic: &impl std::fmt::Display,
    undecodable: &mut u64,
) -> Option<Event> {
    match Event::from_json_slice(&record.payload) {
        Ok(event) => Some(event),
        Err(e) => {
            *undecodable += 1;
            eprintln!(
                "warning: skipped a record that does not decode: {topic} partition {} offset {}: {e}",
                record.address.partition, record.address.offset
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_finds_text_as_json_escapes_it_in_any_case() {
        let c = Contains::new("Say \"Hi\"").expect("not empty");
        assert!(c.found_in(br#"{"text":"they say \"hi\" twice"}"#));
        assert!(!c.found_in(br#"{"text":"they say hi twice"}"#));
        let line = Contains::new("a\nb").expect("not empty");
        assert!(line.found_in(br#"{"text":"a\nb"}"#));
        assert!(Contains::new("").is_none());
    }
}
