//! `vibes emit [FILE|-]`: appends taxonomy events given as JSON lines. A line without a
//! `timestamp` gets its time of arrival, one without a `source` gets `emit`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

use anyhow::{Context, Result};
use vibes_events::Event;

use super::{Input, MAX_BATCH};
use crate::cli::EmitArgs;
use crate::output::{self, DataOut, Outcome};
use crate::producer::Producer;
use crate::storage::Storage;

pub fn run(storage: &Storage, args: &EmitArgs) -> Result<Outcome> {
    let mut input = Input::open(args.input.as_deref())?;
    let producer = Producer::open(storage, args.durability.as_deref())?;
    let mut acks = args.print_acks.then(|| DataOut::new(false));
    let mut batch: Vec<Event> = Vec::with_capacity(MAX_BATCH);
    let mut line = Vec::new();
    let mut stored = 0u64;
    let mut rejected = 0u64;
    while input.next_line(&mut line)? > 0 {
        let line_number = input.line_number;
        match parse_line(&line) {
            Ok(Some(event)) => batch.push(event),
            Ok(None) => {}
            Err(e) => {
                rejected += 1;
                eprintln!("{}:{line_number}: rejected: {e}", input.name);
            }
        }
        if input.batch_due(batch.len()) && !flush(&producer, &mut batch, &mut acks, &mut stored)? {
            return Ok(Outcome::Clean);
        }
    }
    if !flush(&producer, &mut batch, &mut acks, &mut stored)? {
        return Ok(Outcome::Clean);
    }
    storage.enforce_retention()?;
    eprintln!(
        "emitted {} into {}{}",
        output::count(stored, "event"),
        storage.describe(),
        if rejected > 0 {
            format!("; rejected {}", output::count(rejected, "line"))
        } else {
            String::new()
        }
    );
    Ok(Outcome::partial_if(rejected > 0))
}

/// Appends and empties `batch`, printing acks. Returns false if the acks' reader went
/// away (then there is no one left to tell, and the command stops).
fn flush(
    producer: &Producer<'_>,
    batch: &mut Vec<Event>,
    acks: &mut Option<DataOut>,
    stored: &mut u64,
) -> Result<bool> {
    if batch.is_empty() {
        return Ok(true);
    }
    let results = producer
        .append(batch)
        .with_context(|| format!("{stored} events stored before this failure"))?;
    *stored += batch.len() as u64;
    batch.clear();
    if let Some(out) = acks {
        for ack in results {
            let line = ack.line(producer.log().topic());
            if out.line(&line)?.is_err() {
                return Ok(false);
            }
        }
        if out.flush()?.is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One line of `vibes emit` input (or of a `POST /api/events` body) as an event: the
/// rule both share. A blank line is `None`; a line without `timestamp` or `source` gets
/// them (see [`with_defaults`]); anything else that is not a taxonomy event is an error
/// saying why.
pub fn parse_line(line: &[u8]) -> Result<Option<Event>, serde_json::Error> {
    let text = trim(line);
    if text.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    Event::from_json_slice(&with_defaults(text)).map(Some)
}

fn trim(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
}

/// The source of events whose line names none.
pub const DEFAULT_SOURCE: &str = "emit";

/// `line` with `"timestamp"` (now) and `"source"` (`emit`) added when it is a JSON
/// object lacking them; any other line is returned as it is, for the decoder to judge.
pub fn with_defaults(line: &[u8]) -> Cow<'_, [u8]> {
    let Some(keys) = top_level_keys(line) else {
        return Cow::Borrowed(line);
    };
    let mut fill = String::new();
    if !keys.timestamp {
        let now = jiff::Timestamp::now();
        fill.push_str(&format!("\"timestamp\":\"{now}\","));
    }
    if !keys.source {
        fill.push_str(&format!("\"source\":\"{DEFAULT_SOURCE}\","));
    }
    if fill.is_empty() {
        return Cow::Borrowed(line);
    }
    let Some(open) = line.iter().position(|b| *b == b'{') else {
        return Cow::Borrowed(line);
    };
    let rest = &line[open + 1..];
    if rest.iter().all(u8::is_ascii_whitespace) || rest.trim_ascii_start().starts_with(b"}") {
        fill.pop();
    }
    let mut out = Vec::with_capacity(line.len() + fill.len());
    out.extend_from_slice(&line[..=open]);
    out.extend_from_slice(fill.as_bytes());
    out.extend_from_slice(rest);
    Cow::Owned(out)
}

#[derive(Debug, Default)]
struct Keys {
    timestamp: bool,
    source: bool,
}

/// Which envelope keys a JSON object names at its top level; `None` if `line` is not
/// one JSON object.
fn top_level_keys(line: &[u8]) -> Option<Keys> {
    struct KeysVisitor;
    impl<'de> Visitor<'de> for KeysVisitor {
        type Value = Keys;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
            let mut keys = Keys::default();
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                match key.as_ref() {
                    "timestamp" => keys.timestamp = true,
                    "source" => keys.source = true,
                    _ => {}
                }
                map.next_value::<IgnoredAny>()?;
            }
            Ok(keys)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(line);
    let keys = (&mut de).deserialize_map(KeysVisitor).ok()?;
    de.end().ok()?;
    Some(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_timestamp_and_source_are_filled_in() {
        let line = br#"{"type":"error","message":"boom","severity":"error"}"#;
        let event = Event::from_json_slice(&with_defaults(line)).expect("decodes");
        assert_eq!(event.source, DEFAULT_SOURCE);
        let age = jiff::Timestamp::now().duration_since(event.timestamp);
        assert!(
            age.as_secs_f64().abs() < 60.0,
            "stamped on arrival: {age:?}"
        );
    }

    #[test]
    fn given_values_are_kept_and_other_lines_untouched() {
        let line =
            br#"{"type":"error","timestamp":"2024-01-01T00:00:00Z","source":"me","message":"x"}"#;
        assert!(std::matches!(with_defaults(line), Cow::Borrowed(_)));
        for bad in [&b"not json"[..], b"[1,2]", b"{\"a\":1} trailing", b""] {
            assert_eq!(&*with_defaults(bad), bad, "left for the decoder to reject");
        }
        let empty = with_defaults(b" { } ");
        let value: serde_json::Value = serde_json::from_slice(&empty).expect("still JSON");
        assert_eq!(value["source"], DEFAULT_SOURCE);
    }

    #[test]
    fn a_key_given_twice_is_still_refused() {
        let line = br#"{"type":"error","message":"a","message":"b"}"#;
        assert!(Event::from_json_slice(&with_defaults(line)).is_err());
    }
}
