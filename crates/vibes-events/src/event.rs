//! The event envelope: id, type, timestamp, source, the type's data, and any extra fields.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::direct::Slots;
use crate::source;
use crate::taxonomy::{EventData, EventKind};

/// An event's unique id: a UUIDv7, so ids sort by creation time.
///
/// Ids exist for de-duplication: a producer that retries an append sends the same id,
/// and consumers or backends drop the repeat. Any UUID is accepted on input; the ids
/// vibes mints are version 7, except [`EventId::derived_untimed`] ids (version 8) for
/// sources whose input carries no time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(Uuid);

impl EventId {
    /// A fresh UUIDv7 for the current time.
    pub fn new() -> Self {
        EventId(Uuid::now_v7())
    }

    /// Wraps an existing UUID.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        EventId(uuid)
    }

    /// The UUID.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// The id as a 128-bit integer (Apache Iggy's message id type).
    pub const fn as_u128(&self) -> u128 {
        self.0.as_u128()
    }

    /// The id from a 128-bit integer.
    pub const fn from_u128(value: u128) -> Self {
        EventId(Uuid::from_u128(value))
    }

    /// The id of an event a source read, derived from what the source says: a UUIDv7
    /// whose time bits are `timestamp` (the time the source gives the event, never the
    /// time it was read) and whose other bits come from a 128-bit XXH3 hash of `key`.
    ///
    /// `key` must name the fact, not the reading of it: e.g. session, message and block
    /// ids, or a file's identity and a line's position. Reading the same input again
    /// then yields the same ids, and any re-delivery de-duplicates.
    pub fn derived(timestamp: Timestamp, key: &[u8]) -> Self {
        Self::derive(timestamp, key)
    }

    /// The id of an event whose source gives it no time (e.g. Claude Code's
    /// stream-json): a UUIDv8 (RFC 9562's custom version) whose 122 free bits come from
    /// a 128-bit XXH3 hash of `key`. Unlike [`EventId::derived`] ids, these do not sort
    /// by time; like them, the same `key` always gives the same id.
    pub fn derived_untimed(key: &[u8]) -> Self {
        let hash = xxhash_rust::xxh3::xxh3_128(key).to_be_bytes();
        EventId(uuid::Builder::from_custom_bytes(hash).into_uuid())
    }

    /// A UUIDv7 derived from an event's content: the millisecond timestamp goes where v7
    /// puts it, and the 74 random bits come from a 128-bit XXH3 hash of the event's
    /// canonical encoding (keys of unknown fields sorted). The same id-less input thus
    /// always decodes to the same id, and a retried append de-duplicates.
    fn derive(timestamp: Timestamp, canonical: &[u8]) -> Self {
        let millis = u64::try_from(timestamp.as_millisecond()).unwrap_or(0) & ((1 << 48) - 1);
        let hash = xxhash_rust::xxh3::xxh3_128(canonical).to_le_bytes();
        let mut rand = [0u8; 10];
        rand.copy_from_slice(&hash[..10]);
        EventId(uuid::Builder::from_unix_timestamp_millis(millis, &rand).into_uuid())
    }
}

impl Default for EventId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl FromStr for EventId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(EventId)
    }
}

/// One event of the unified taxonomy.
///
/// On the wire an event is one flat JSON object:
/// `{"id", "type", "timestamp", "source", ...fields of the type, ...extra fields}`.
/// Decoding then encoding loses nothing: fields a type does not define (from a newer
/// producer, or from an unknown type) are kept in [`Event::extra`] and written back.
///
/// Decoding rules:
/// - `type`, `timestamp` (RFC 3339, any offset; kept as a UTC instant with nanoseconds)
///   and `source` are required.
/// - `id` is optional on input. When absent, the id is derived from the event's
///   content (see [`EventId`]), so decoding the same id-less JSON twice yields the same
///   id.
/// - A known type whose fields are missing or mistyped is an error naming the type and
///   the field; an unknown type is never an error.
/// - A key given twice is an error.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Unique id, for de-duplication.
    pub id: EventId,
    /// When the event happened.
    pub timestamp: Timestamp,
    /// Who produced it; see [`crate::source`] for the well-known names.
    pub source: String,
    /// The type and its fields.
    pub data: EventData,
    /// Fields the type does not define, kept verbatim. Keys must not collide with the
    /// envelope (`id`, `type`, `timestamp`, `source`) or with the type's own fields;
    /// encoding an event whose extra keys collide is an error.
    pub extra: Map<String, Value>,
}

const ENVELOPE: [&str; 4] = ["id", "type", "timestamp", "source"];

impl Event {
    /// A new event from `source`, now, with a fresh id.
    pub fn new(source: impl Into<String>, data: impl Into<EventData>) -> Self {
        Event {
            id: EventId::new(),
            timestamp: Timestamp::now(),
            source: source.into(),
            data: data.into(),
            extra: Map::new(),
        }
    }

    /// A new event from Claude ([`source::CLAUDE`]).
    pub fn claude(data: impl Into<EventData>) -> Self {
        Self::new(source::CLAUDE, data)
    }

    /// A new event from bd ([`source::BD`]).
    pub fn bd(data: impl Into<EventData>) -> Self {
        Self::new(source::BD, data)
    }

    /// A new event from the drain orchestrator ([`source::INTERNAL`]).
    pub fn internal(data: impl Into<EventData>) -> Self {
        Self::new(source::INTERNAL, data)
    }

    /// Replaces the timestamp.
    #[must_use]
    pub fn with_timestamp(mut self, timestamp: Timestamp) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// Replaces the id.
    #[must_use]
    pub fn with_id(mut self, id: EventId) -> Self {
        self.id = id;
        self
    }

    /// Adds an extra field (one the type does not define).
    #[must_use]
    pub fn with_extra(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }

    /// The wire `type`, e.g. `claude.tool_use`.
    pub fn event_type(&self) -> &str {
        self.data.event_type()
    }

    /// The key that decides the event's partition in a log: the session id, the bead id,
    /// or for unknown types a string `session_id` or `bead_id` field. Events with the
    /// same key keep their order.
    pub fn partition_key(&self) -> Option<&str> {
        match &self.data {
            EventData::Unknown { .. } => ["session_id", "bead_id"]
                .iter()
                .find_map(|k| self.extra.get(*k).and_then(Value::as_str)),
            data => data.partition_key(),
        }
    }

    /// Encodes the event as one line of flat JSON (no trailing newline).
    ///
    /// Fails only when an [`Event::extra`] key collides with a defined field.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// Encodes the event as flat JSON bytes.
    pub fn to_json_vec(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Decodes an event from JSON text; see [`Event`] for the rules.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// Decodes an event from JSON bytes; see [`Event`] for the rules.
    pub fn from_json_slice(json: &[u8]) -> Result<Self, serde_json::Error> {
        crate::json::from_slice(json)
    }

    fn check_extra(&self) -> Result<(), String> {
        if self.extra.is_empty() {
            return Ok(());
        }
        let own = self.data.field_names();
        match self
            .extra
            .keys()
            .find(|k| ENVELOPE.contains(&k.as_str()) || own.contains(&k.as_str()))
        {
            Some(key) => Err(format!(
                "extra field `{key}` collides with a field of `{}` events",
                self.event_type()
            )),
            None => Ok(()),
        }
    }
}

/// The wire shape, borrowed from an [`Event`]; `id` is left out when computing the
/// canonical bytes an id is derived from.
#[derive(Serialize)]
struct Wire<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a EventId>,
    #[serde(rename = "type")]
    event_type: &'a str,
    timestamp: &'a Timestamp,
    source: &'a str,
    #[serde(flatten)]
    data: &'a EventData,
    #[serde(flatten)]
    extra: &'a Map<String, Value>,
}

impl<'a> Wire<'a> {
    fn of(event: &'a Event, id: Option<&'a EventId>) -> Self {
        Wire {
            id,
            event_type: event.event_type(),
            timestamp: &event.timestamp,
            source: &event.source,
            data: &event.data,
            extra: &event.extra,
        }
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.check_extra().map_err(serde::ser::Error::custom)?;
        Wire::of(self, Some(&self.id)).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EventVisitor)
    }
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object with `type`, `timestamp` and `source`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        fn set<T, E: de::Error>(slot: &mut Option<T>, value: T, key: &str) -> Result<(), E> {
            match slot.replace(value) {
                Some(_) => Err(E::custom(format_args!("duplicate field `{key}`"))),
                None => Ok(()),
            }
        }

        let mut id = None;
        let mut event_type: Option<String> = None;
        let mut timestamp = None;
        let mut source: Option<String> = None;
        let mut rest = Map::new();
        let mut data = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "id" => set(&mut id, map.next_value::<EventId>()?, "id")?,
                "type" => {
                    let name: String = map.next_value()?;
                    // A known type before any of its data (as vibes writes events):
                    // the rest of the object goes straight into its struct.
                    if rest.is_empty()
                        && let Some(kind) = EventKind::from_name(&name)
                    {
                        let slots = Slots {
                            id: &mut id,
                            timestamp: &mut timestamp,
                            source: &mut source,
                            extra: &mut rest,
                        };
                        data = Some(EventData::deserialize_known(kind, &mut map, slots)?);
                    }
                    set(&mut event_type, name, "type")?;
                    if data.is_some() {
                        break;
                    }
                }
                "timestamp" => set(&mut timestamp, map.next_value::<Timestamp>()?, "timestamp")?,
                "source" => set(&mut source, map.next_value()?, "source")?,
                _ => {
                    let value = map.next_value::<Value>()?;
                    if rest.contains_key(&key) {
                        return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
                    }
                    rest.insert(key, value);
                }
            }
        }
        let event_type = event_type.ok_or_else(|| de::Error::missing_field("type"))?;
        let timestamp = timestamp.ok_or_else(|| de::Error::missing_field("timestamp"))?;
        let source = source.ok_or_else(|| de::Error::missing_field("source"))?;
        let data = match data {
            Some(data) => data,
            None => EventData::take_from(event_type, &mut rest).map_err(de::Error::custom)?,
        };
        let mut event = Event {
            id: EventId::from_u128(0),
            timestamp,
            source,
            data,
            extra: rest,
        };
        event.id = match id {
            Some(id) => id,
            None => {
                let canonical =
                    serde_json::to_vec(&Wire::of(&event, None)).map_err(de::Error::custom)?;
                EventId::derive(event.timestamp, &canonical)
            }
        };
        Ok(event)
    }
}
