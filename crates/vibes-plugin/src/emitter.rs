//! [`Emitter`]: how a plugin writes events, with ids derived from their cause.

use jiff::Timestamp;
use serde_json::{Map, Value};
use vibes_events::{Event, EventData, EventId};
use vibes_log::RecordAddress;

use crate::error::PluginError;

/// The field every output carries: the address and id of the input that caused it.
pub const CAUSE_FIELD: &str = "cause";

/// Collects the events one [`Plugin::handle`](crate::Plugin::handle) call writes.
///
/// Every event gets an id derived from the plugin, the input event's id and its
/// position among this call's outputs, and a `cause` field naming the input's address
/// and id. So the same input always yields the same output ids and bytes: the runtime
/// recognises outputs it already stored when it replays after a crash.
#[derive(Debug)]
pub struct Emitter {
    plugin: String,
    source: String,
    /// Whether outputs are kept; a rebuild drops them (see [`Emitter::keeps_outputs`]).
    keep: bool,
    /// The topic of the inputs, set by `begin`.
    input_topic: String,
    cause: Option<Cause>,
    /// Where the current input's outputs start in `pending`.
    start: usize,
    pending: Vec<Output>,
}

/// An event ready to store in one of the plugin's topics.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The topic within the plugin's stream.
    pub topic: String,
    /// The event, with its derived id and cause.
    pub event: Event,
}

#[derive(Debug, Clone)]
struct Cause {
    address: RecordAddress,
    id: EventId,
    timestamp: Timestamp,
}

impl Emitter {
    pub(crate) fn new(plugin: &str) -> Self {
        Emitter {
            plugin: plugin.to_owned(),
            source: plugin.to_owned(),
            keep: true,
            input_topic: String::new(),
            cause: None,
            start: 0,
            pending: Vec::new(),
        }
    }

    /// An emitter that checks what it is given as [`Emitter::new`]'s does and keeps
    /// nothing: for a rebuild, whose outputs were stored by the run that first handled
    /// the inputs.
    pub(crate) fn discarding(plugin: &str) -> Self {
        Emitter {
            keep: false,
            ..Emitter::new(plugin)
        }
    }

    /// Whether the outputs are kept. They are not while the runtime rebuilds a state
    /// for a query or a view: the run that handled those inputs first stored them.
    /// A plugin may then skip building outputs, provided it still checks them with
    /// [`Emitter::check_fields`], so handling succeeds or fails as when they are kept.
    pub fn keeps_outputs(&self) -> bool {
        self.keep
    }

    /// Checks the field names of an event of type `event_type` as
    /// [`emit`](Self::emit) does: none may be an envelope key (`id`, `type`,
    /// `timestamp`, `source`) or `cause`.
    pub fn check_fields<'k>(
        &self,
        event_type: &str,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> Result<(), PluginError> {
        for key in keys {
            if ["id", "type", "timestamp", "source", CAUSE_FIELD].contains(&key) {
                return Err(PluginError::new(format!(
                    "a {event_type} event may not set the field {key:?}"
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn begin(&mut self, input_topic: &str, address: RecordAddress, event: &Event) {
        if self.input_topic != input_topic {
            input_topic.clone_into(&mut self.input_topic);
        }
        self.cause = Some(Cause {
            address,
            id: event.id,
            timestamp: event.timestamp,
        });
        self.start = self.pending.len();
    }

    /// Drops what the current input emitted (its handling failed).
    pub(crate) fn discard_from(&mut self, mark: usize) {
        self.pending.truncate(mark);
    }

    pub(crate) fn mark(&self) -> usize {
        self.pending.len()
    }

    pub(crate) fn take(&mut self) -> Vec<Output> {
        self.start = 0;
        std::mem::take(&mut self.pending)
    }

    /// The time of the input being handled: the timestamp outputs get by default.
    pub fn now(&self) -> Timestamp {
        self.cause
            .as_ref()
            .map_or(Timestamp::UNIX_EPOCH, |c| c.timestamp)
    }

    /// Writes an event of type `event_type` into the plugin's topic `topic`, with the
    /// input's timestamp and the given fields (a flat JSON object, like any event).
    ///
    /// Errors: `fields` is not an object, or uses an envelope key (`id`, `type`,
    /// `timestamp`, `source`) or `cause`.
    pub fn emit(
        &mut self,
        topic: &str,
        event_type: &str,
        fields: Value,
    ) -> Result<(), PluginError> {
        let timestamp = self.now();
        self.emit_at(topic, event_type, timestamp, fields)
    }

    /// [`emit`](Self::emit) with an explicit timestamp.
    pub fn emit_at(
        &mut self,
        topic: &str,
        event_type: &str,
        timestamp: Timestamp,
        fields: Value,
    ) -> Result<(), PluginError> {
        let Value::Object(fields) = fields else {
            return Err(PluginError::new(format!(
                "the fields of a {event_type} event must be a JSON object"
            )));
        };
        self.check_fields(event_type, fields.keys().map(String::as_str))?;
        if !self.keep {
            return self.cause().map(drop);
        }
        let mut event = Event {
            id: EventId::from_u128(0),
            timestamp,
            source: self.source.clone(),
            data: EventData::Unknown {
                event_type: event_type.to_owned(),
            },
            extra: Map::new(),
        };
        event.extra = fields;
        self.push(topic, event)
    }

    /// Writes a taxonomy event (or any [`Event`]) into topic `topic`. Its id is
    /// replaced by the derived one and its `cause` set; its source is kept.
    pub fn emit_event(&mut self, topic: &str, event: Event) -> Result<(), PluginError> {
        if !self.keep {
            return self.cause().map(drop);
        }
        self.push(topic, event)
    }

    /// The input being handled; outputs exist only while handling one.
    fn cause(&self) -> Result<&Cause, PluginError> {
        self.cause
            .as_ref()
            .ok_or_else(|| PluginError::new("events can only be emitted while handling an input"))
    }

    fn push(&mut self, topic: &str, mut event: Event) -> Result<(), PluginError> {
        let cause = self.cause()?;
        let index = self.pending.len() - self.start;
        event.id = derive_id(&self.plugin, cause.id, index as u64, event.timestamp);
        event.extra.insert(
            CAUSE_FIELD.to_owned(),
            cause_value(&self.input_topic, cause),
        );
        self.pending.push(Output {
            topic: topic.to_owned(),
            event,
        });
        Ok(())
    }
}

fn cause_value(input_topic: &str, cause: &Cause) -> Value {
    serde_json::json!({
        "topic": input_topic,
        "partition": cause.address.partition,
        "offset": cause.address.offset,
        "id": cause.id.to_string(),
    })
}

/// The id of output number `index` of input `input` in plugin `plugin`: a UUIDv7 whose
/// time bits are the output's timestamp and whose other bits are an XXH3-128 of the
/// plugin, the input id and the index. Never the clock, never random.
pub fn derive_id(plugin: &str, input: EventId, index: u64, timestamp: Timestamp) -> EventId {
    let mut key = Vec::with_capacity(plugin.len() + 48);
    key.extend_from_slice(b"vibes-plugin-output/v1\0");
    key.extend_from_slice(plugin.as_bytes());
    key.push(0);
    key.extend_from_slice(&input.as_u128().to_le_bytes());
    key.extend_from_slice(&index.to_le_bytes());
    EventId::derived(timestamp, &key)
}

/// The input address an output names in its `cause` field.
pub(crate) fn cause_of(event: &Event) -> Option<(String, RecordAddress)> {
    let cause = event.extra.get(CAUSE_FIELD)?;
    let topic = cause.get("topic")?.as_str()?.to_owned();
    let partition = u32::try_from(cause.get("partition")?.as_u64()?).ok()?;
    let offset = cause.get("offset")?.as_u64()?;
    Some((topic, RecordAddress { partition, offset }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vibes_events::Event;
    use vibes_log::RecordAddress;

    use super::*;

    fn input() -> Event {
        Event::from_json(
            r#"{"id":"0193a5c0-0000-7000-8000-000000000001","type":"test.in","timestamp":"2026-01-01T00:00:00Z","source":"t"}"#,
        )
        .expect("a test event")
    }

    /// What `emitter` says to a good output, bad ones, and one outside handling.
    fn answers(mut emitter: Emitter) -> (Vec<Result<(), String>>, Vec<Output>) {
        let mut said = vec![
            emitter
                .emit("x", "t.out", json!({"a": 1}))
                .map_err(|e| e.to_string()),
        ];
        emitter.begin(
            "vibes/events",
            RecordAddress {
                partition: 0,
                offset: 7,
            },
            &input(),
        );
        for fields in [json!({"a": 1}), json!([1]), json!({"b": 2, "cause": 3})] {
            said.push(
                emitter
                    .emit("x", "t.out", fields)
                    .map_err(|e| e.to_string()),
            );
        }
        said.push(emitter.emit_event("y", input()).map_err(|e| e.to_string()));
        (said, emitter.take())
    }

    #[test]
    fn a_discarding_emitter_accepts_and_refuses_as_a_keeping_one_and_keeps_nothing() {
        let (kept_said, kept) = answers(Emitter::new("p"));
        let (dropped_said, dropped) = answers(Emitter::discarding("p"));
        assert_eq!(kept_said, dropped_said);
        assert!(
            kept_said[0]
                .as_ref()
                .is_err_and(|e| e.contains("while handling"))
        );
        assert_eq!(kept_said[1], Ok(()));
        assert!(
            kept_said[2]
                .as_ref()
                .is_err_and(|e| e.contains("JSON object"))
        );
        assert!(
            kept_said[3]
                .as_ref()
                .is_err_and(|e| e.contains("\"cause\""))
        );
        assert_eq!(kept_said[4], Ok(()));
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].event.extra["a"], json!(1));
        assert_eq!(kept[0].event.extra[CAUSE_FIELD]["offset"], json!(7));
        assert_eq!(
            kept[0].event.extra[CAUSE_FIELD]["topic"],
            json!("vibes/events")
        );
        assert!(dropped.is_empty());
        assert!(Emitter::new("p").keeps_outputs());
        assert!(!Emitter::discarding("p").keeps_outputs());
    }
}
