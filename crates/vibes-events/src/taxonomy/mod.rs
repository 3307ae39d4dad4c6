//! The event types: one struct per `type`, gathered in [`EventData`].

mod bead;
mod claude;
mod drain;
mod error;
mod run;

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

pub use bead::{BeadAbandoned, BeadClosed, BeadComment, BeadCreated, BeadStatus, BeadUpdated};
pub use claude::{
    ApiCall, ApiError, ApiUsage, Compact, Interrupt, McpServer, ModelUsage, RateLimit, SessionEnd,
    SessionStart, Text, Thinking, ToolResult, ToolUse, TurnDuration, Usage,
};
pub use drain::{DrainPause, DrainResume, DrainStart, DrainStop, IterationEnd, IterationStart};
pub use error::{ErrorEvent, Severity};
pub use run::{RunExit, RunLimit, RunSample, RunStart};

/// Declares every known event type once: its [`EventKind`] and [`EventData`] variant,
/// the struct holding its fields and its wire name. Everything that dispatches on the
/// type is generated from this one list, so nothing can fall out of sync.
macro_rules! taxonomy {
    ($( $(#[$doc:meta])* $variant:ident($ty:ty) = $name:literal; )+) => {
        /// The known event types, without their data.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum EventKind {
            $( $(#[$doc])* $variant, )+
        }

        impl EventKind {
            /// Every known kind, in taxonomy order.
            pub const ALL: &'static [EventKind] = &[ $(EventKind::$variant,)+ ];

            /// The wire name, e.g. `claude.tool_use`.
            pub const fn as_str(self) -> &'static str {
                match self { $(EventKind::$variant => $name,)+ }
            }

            /// The kind with this wire name, if it is a known one.
            pub fn from_name(name: &str) -> Option<EventKind> {
                match name { $($name => Some(EventKind::$variant),)+ _ => None }
            }
        }

        /// The type-specific part of an [`Event`](crate::Event).
        ///
        /// Every known `type` has a variant; any other type decodes into
        /// [`EventData::Unknown`], whose fields are kept in the event's `extra` map, so
        /// events from newer producers pass through unchanged.
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum EventData {
            $( $(#[$doc])* $variant($ty), )+
            /// An event of a type this version does not know.
            Unknown {
                /// Its `type`, as it was on the wire.
                event_type: String,
            },
        }

        $(
            impl From<$ty> for EventData {
                fn from(data: $ty) -> Self {
                    EventData::$variant(data)
                }
            }
        )+

        impl EventData {
            /// The known kind, or `None` for [`EventData::Unknown`].
            pub fn kind(&self) -> Option<EventKind> {
                match self {
                    $(EventData::$variant(_) => Some(EventKind::$variant),)+
                    EventData::Unknown { .. } => None,
                }
            }

            /// The wire `type`.
            pub fn event_type(&self) -> &str {
                match self {
                    $(EventData::$variant(_) => $name,)+
                    EventData::Unknown { event_type } => event_type,
                }
            }

            /// Names of the fields this type defines (empty for unknown types).
            pub(crate) fn field_names(&self) -> &'static [&'static str] {
                match self {
                    $(EventData::$variant(_) => struct_fields::<$ty>(),)+
                    EventData::Unknown { .. } => &[],
                }
            }

            /// Decodes the data of an event of type `event_type` from the event's
            /// non-envelope fields. The fields the type defines are taken out of `fields`;
            /// what remains are fields the type does not know.
            pub(crate) fn take_from(
                event_type: String,
                fields: &mut Map<String, Value>,
            ) -> Result<EventData, String> {
                match event_type.as_str() {
                    $($name => take_struct::<$ty>($name, fields).map(EventData::$variant),)+
                    _ => Ok(EventData::Unknown { event_type }),
                }
            }
        }

        impl EventData {
            /// Decodes the data of a known `kind` from the rest of an event object,
            /// its fields straight into the type's struct (see [`crate::direct`]).
            pub(crate) fn deserialize_known<'de, A: serde::de::MapAccess<'de>>(
                kind: EventKind,
                map: A,
                slots: crate::direct::Slots<'_>,
            ) -> Result<EventData, A::Error> {
                use std::sync::OnceLock;
                match kind {
                    $(EventKind::$variant => {
                        static FIELDS: OnceLock<&'static [&'static str]> = OnceLock::new();
                        let fields = FIELDS.get_or_init(struct_fields::<$ty>);
                        let rest = crate::direct::Rest { map, fields, slots };
                        <$ty as serde::Deserialize>::deserialize(rest)
                            .map(EventData::$variant)
                            .map_err(|e| serde::de::Error::custom(format_args!("invalid `{}` event: {e}", $name)))
                    })+
                }
            }
        }

        impl Serialize for EventData {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                match self {
                    $(EventData::$variant(data) => data.serialize(serializer),)+
                    EventData::Unknown { .. } => serializer.serialize_map(Some(0))?.end(),
                }
            }
        }
    };
}

taxonomy! {
    /// `session.start`
    SessionStart(SessionStart) = "session.start";
    /// `session.end`
    SessionEnd(SessionEnd) = "session.end";
    /// `session.compact`
    SessionCompact(Compact) = "session.compact";
    /// `claude.text`
    Text(Text) = "claude.text";
    /// `claude.thinking`
    Thinking(Thinking) = "claude.thinking";
    /// `claude.tool_use`
    ToolUse(ToolUse) = "claude.tool_use";
    /// `claude.tool_result`
    ToolResult(ToolResult) = "claude.tool_result";
    /// `claude.rate_limit` (extension)
    RateLimit(RateLimit) = "claude.rate_limit";
    /// `claude.api_call` (extension)
    ApiCall(ApiCall) = "claude.api_call";
    /// `claude.api_error` (extension)
    ApiError(ApiError) = "claude.api_error";
    /// `claude.turn_duration` (extension)
    TurnDuration(TurnDuration) = "claude.turn_duration";
    /// `claude.interrupt` (extension)
    Interrupt(Interrupt) = "claude.interrupt";
    /// `bead.created`
    BeadCreated(BeadCreated) = "bead.created";
    /// `bead.updated`
    BeadUpdated(BeadUpdated) = "bead.updated";
    /// `bead.status`
    BeadStatus(BeadStatus) = "bead.status";
    /// `bead.closed`
    BeadClosed(BeadClosed) = "bead.closed";
    /// `bead.comment`
    BeadComment(BeadComment) = "bead.comment";
    /// `bead.abandoned`
    BeadAbandoned(BeadAbandoned) = "bead.abandoned";
    /// `drain.start`
    DrainStart(DrainStart) = "drain.start";
    /// `drain.pause`
    DrainPause(DrainPause) = "drain.pause";
    /// `drain.resume`
    DrainResume(DrainResume) = "drain.resume";
    /// `drain.stop`
    DrainStop(DrainStop) = "drain.stop";
    /// `iteration.start`
    IterationStart(IterationStart) = "iteration.start";
    /// `iteration.end`
    IterationEnd(IterationEnd) = "iteration.end";
    /// `run.start` (extension)
    RunStart(RunStart) = "run.start";
    /// `run.sample` (extension)
    RunSample(RunSample) = "run.sample";
    /// `run.limit` (extension)
    RunLimit(RunLimit) = "run.limit";
    /// `run.exit` (extension)
    RunExit(RunExit) = "run.exit";
    /// `error`
    Error(ErrorEvent) = "error";
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown event kind name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type `{0}`")]
pub struct UnknownEventKind(pub String);

impl FromStr for EventKind {
    type Err = UnknownEventKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventKind::from_name(s).ok_or_else(|| UnknownEventKind(s.to_owned()))
    }
}

impl EventData {
    /// The partition key this data names: the session id for session and Claude events,
    /// the bead id for bead and iteration events, the run id for run events, either
    /// session or bead for errors. Drain events have none.
    pub fn partition_key(&self) -> Option<&str> {
        match self {
            EventData::SessionStart(d) => d.session_id.as_deref(),
            EventData::SessionEnd(d) => Some(&d.session_id),
            EventData::SessionCompact(d) => d.session_id.as_deref(),
            EventData::Text(d) => d.session_id.as_deref(),
            EventData::Thinking(d) => d.session_id.as_deref(),
            EventData::ToolUse(d) => d.session_id.as_deref(),
            EventData::ToolResult(d) => d.session_id.as_deref(),
            EventData::RateLimit(d) => d.session_id.as_deref(),
            EventData::ApiCall(d) => d.session_id.as_deref(),
            EventData::ApiError(d) => d.session_id.as_deref(),
            EventData::TurnDuration(d) => d.session_id.as_deref(),
            EventData::Interrupt(d) => d.session_id.as_deref(),
            EventData::BeadCreated(d) => Some(&d.bead_id),
            EventData::BeadUpdated(d) => Some(&d.bead_id),
            EventData::BeadStatus(d) => Some(&d.bead_id),
            EventData::BeadClosed(d) => Some(&d.bead_id),
            EventData::BeadComment(d) => Some(&d.bead_id),
            EventData::BeadAbandoned(d) => Some(&d.bead_id),
            EventData::IterationStart(d) => Some(&d.bead_id),
            EventData::IterationEnd(d) => Some(&d.bead_id),
            EventData::RunStart(d) => Some(&d.run_id),
            EventData::RunSample(d) => Some(&d.run_id),
            EventData::RunLimit(d) => Some(&d.run_id),
            EventData::RunExit(d) => Some(&d.run_id),
            EventData::Error(d) => d.session_id.as_deref().or(d.bead_id.as_deref()),
            EventData::DrainStart(_)
            | EventData::DrainPause(_)
            | EventData::DrainResume(_)
            | EventData::DrainStop(_)
            | EventData::Unknown { .. } => None,
        }
    }
}

fn take_struct<T: DeserializeOwned>(
    event_type: &str,
    fields: &mut Map<String, Value>,
) -> Result<T, String> {
    let mut own = Map::new();
    for &name in struct_fields::<T>() {
        if let Some((key, value)) = fields.remove_entry(name) {
            own.insert(key, value);
        }
    }
    T::deserialize(Value::Object(own)).map_err(|e| format!("invalid `{event_type}` event: {e}"))
}

/// The field names serde's derive gives a struct, read by asking the derived
/// `Deserialize` impl to describe itself to a probe that records them.
fn struct_fields<T: DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{self, Visitor};

    struct Probe<'a>(&'a mut &'static [&'static str]);

    impl<'de> de::Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("field probe"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("field probe"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}
