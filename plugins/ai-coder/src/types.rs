//! The coder event types (seed 002's names with the taxonomy's dot: `ai_coder.created`,
//! ...), the topics they go to, and one coder event as the aggregator keeps it, with
//! the validation every event passes before it is written.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use vibes_events::Timestamp;
use vibes_plugin::PluginError;

/// The topics of the plugin's stream.
pub mod topics {
    /// Every coder event (the twenty types of [`super::CODER_TYPES`]).
    pub const EVENTS: &str = "events";
    /// The aggregator's own events: failure alerts, completion metrics, system warnings.
    pub const ALERTS: &str = "alerts";
}

/// Lifecycle: the coder was first seen.
pub const CREATED: &str = "ai_coder.created";
/// Lifecycle: the coder started (again, after an end).
pub const STARTED: &str = "ai_coder.started";
/// Lifecycle: interrupted by the person, or stopped by a rejected rate limit.
pub const PAUSED: &str = "ai_coder.paused";
/// Lifecycle: activity after a pause.
pub const RESUMED: &str = "ai_coder.resumed";
/// Lifecycle: ended well.
pub const COMPLETED: &str = "ai_coder.completed";
/// Lifecycle: ended with an error.
pub const FAILED: &str = "ai_coder.failed";
/// Lifecycle: stopped from outside (a limit of `vibes run`, the person, the parent).
pub const STOPPED: &str = "ai_coder.stopped";
/// Lifecycle: the aggregator forgot the coder (bounded state).
pub const DELETED: &str = "ai_coder.deleted";
/// Progress: a turn ended, or the todo list changed.
pub const PROGRESS: &str = "ai_coder.progress";
/// Progress: a todo item was completed.
pub const MILESTONE: &str = "ai_coder.milestone";
/// Progress: text the coder wrote.
pub const OUTPUT: &str = "ai_coder.output";
/// Workspace: a file tool created a file.
pub const FILE_CREATED: &str = "ai_coder.file_created";
/// Workspace: a file tool changed a file.
pub const FILE_MODIFIED: &str = "ai_coder.file_modified";
/// Workspace: the coder ran a command that deleted a file.
pub const FILE_DELETED: &str = "ai_coder.file_deleted";
/// Workspace: the coder ran a git command that syncs the workspace.
pub const WORKSPACE_SYNC: &str = "ai_coder.workspace_sync";
/// Provider: one API call (counted once, its largest copy).
pub const API_CALL: &str = "ai_coder.api_call";
/// Provider: an API request failed.
pub const API_ERROR: &str = "ai_coder.api_error";
/// Provider: a rate limit was reached (a report other than `allowed`).
pub const RATE_LIMIT: &str = "ai_coder.rate_limit";
/// Resource: one sample of the run's process tree.
pub const RESOURCE_USAGE: &str = "ai_coder.resource_usage";
/// Resource: a limit of the run was passed.
pub const RESOURCE_LIMIT: &str = "ai_coder.resource_limit";

/// Aggregator: a coder failed 3 times within 10 minutes of event time.
pub const FAILURE_ALERT: &str = "ai_coder.failure_alert";
/// Aggregator: time from created to completed.
pub const COMPLETION_METRICS: &str = "ai_coder.completion_metrics";
/// Aggregator: a rate or resource limit.
pub const SYSTEM_WARNING: &str = "ai_coder.system_warning";

/// The twenty coder event types, in the seed's order.
pub const CODER_TYPES: [&str; 20] = [
    CREATED,
    STARTED,
    PAUSED,
    RESUMED,
    COMPLETED,
    FAILED,
    STOPPED,
    DELETED,
    PROGRESS,
    MILESTONE,
    OUTPUT,
    FILE_CREATED,
    FILE_MODIFIED,
    FILE_DELETED,
    WORKSPACE_SYNC,
    API_CALL,
    API_ERROR,
    RATE_LIMIT,
    RESOURCE_USAGE,
    RESOURCE_LIMIT,
];

/// The aggregator's own types.
pub const ALERT_TYPES: [&str; 3] = [FAILURE_ALERT, COMPLETION_METRICS, SYSTEM_WARNING];

/// The `&'static` name of a coder event type, if `name` is one.
pub fn coder_type(name: &str) -> Option<&'static str> {
    CODER_TYPES.iter().copied().find(|t| *t == name)
}

/// The envelope and identity fields of a coder event; the rest are its data.
const RESERVED: [&str; 7] = [
    "id",
    "type",
    "timestamp",
    "source",
    "cause",
    "coder_id",
    "coder_name",
];

/// One coder event: its type, the coder, the time of the source event, and the
/// type-specific fields (`session_id` among them when the coder has a session).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoderEvent {
    /// Position in the aggregator's sequence (1, 2, ...): the history's cursor.
    #[serde(default)]
    pub seq: u64,
    /// `ai_coder.*`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The coder.
    pub coder_id: String,
    /// Its name.
    pub coder_name: String,
    /// When the source event happened.
    pub timestamp: Timestamp,
    /// Everything else.
    pub data: Map<String, Value>,
}

impl CoderEvent {
    /// A coder event of `event_type` about `coder_id` at `timestamp`.
    pub fn new(
        event_type: &str,
        coder_id: &str,
        coder_name: &str,
        timestamp: Timestamp,
        data: Map<String, Value>,
    ) -> Self {
        CoderEvent {
            seq: 0,
            event_type: event_type.to_owned(),
            coder_id: coder_id.to_owned(),
            coder_name: coder_name.to_owned(),
            timestamp,
            data,
        }
    }

    /// A coder event written by another producer into the event topic, as the seed's
    /// `EmitAICoderEvent` takes it: its `type` must be one of the twenty coder types
    /// and it must name a `coder_id`; `coder_name` defaults to the id and the time is
    /// the input event's. The rest of its fields are its data.
    pub fn from_input(
        event_type: &str,
        fields: &Map<String, Value>,
        timestamp: Timestamp,
    ) -> Result<Self, PluginError> {
        let coder_id = match fields.get("coder_id") {
            Some(Value::String(s)) => s.as_str(),
            Some(other) => {
                return Err(PluginError::new(format!(
                    "{event_type}: coder_id must be a string, not {other}"
                )));
            }
            None => "",
        };
        let coder_name = match fields.get("coder_name") {
            Some(Value::String(s)) if !s.is_empty() => s.as_str(),
            _ => coder_id,
        };
        let data = fields
            .iter()
            .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let event = CoderEvent::new(event_type, coder_id, coder_name, timestamp, data);
        event.validate()?;
        Ok(event)
    }

    /// The seed's emission rules, made errors: the type must be a coder type and the
    /// coder id must not be empty.
    pub fn validate(&self) -> Result<(), PluginError> {
        if self.event_type.is_empty() {
            return Err(PluginError::new("a coder event needs a type"));
        }
        if ALERT_TYPES.contains(&self.event_type.as_str()) {
            return Err(PluginError::new(format!(
                "{} is the aggregator's own event; only the plugin writes it",
                self.event_type
            )));
        }
        if coder_type(&self.event_type).is_none() {
            return Err(PluginError::new(format!(
                "{} is not a coder event type (they are: {})",
                self.event_type,
                CODER_TYPES.join(", ")
            )));
        }
        if self.coder_id.is_empty() {
            return Err(PluginError::new(format!(
                "a {} event needs a coder_id",
                self.event_type
            )));
        }
        Ok(())
    }

    /// The fields of the event as written: `coder_id`, `coder_name`, then the data.
    pub fn fields(&self) -> Value {
        let mut fields = Map::with_capacity(self.data.len() + 2);
        fields.insert("coder_id".into(), Value::String(self.coder_id.clone()));
        fields.insert("coder_name".into(), Value::String(self.coder_name.clone()));
        for (k, v) in &self.data {
            fields.insert(k.clone(), v.clone());
        }
        Value::Object(fields)
    }

    /// As queries show it: `seq`, `type`, `timestamp`, then the fields.
    pub fn to_json(&self) -> Value {
        let mut value = self.fields();
        if let Value::Object(map) = &mut value {
            map.insert("seq".into(), self.seq.into());
            map.insert("type".into(), Value::String(self.event_type.clone()));
            map.insert(
                "timestamp".into(),
                Value::String(self.timestamp.to_string()),
            );
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn an_input_event_needs_a_known_type_and_a_coder_id() {
        let at = Timestamp::from_second(1_700_000_000).unwrap();
        let ok = CoderEvent::from_input(
            PROGRESS,
            &fields(json!({"coder_id": "c1", "progress": 0.5})),
            at,
        )
        .unwrap();
        assert_eq!(ok.coder_name, "c1", "the name defaults to the id");
        assert_eq!(ok.timestamp, at, "the time is the input's");
        assert_eq!(ok.data["progress"], 0.5);
        assert!(!ok.data.contains_key("coder_id"));

        let missing = CoderEvent::from_input(PROGRESS, &fields(json!({"x": 1})), at);
        assert!(missing.unwrap_err().message().contains("needs a coder_id"));
        let empty = CoderEvent::from_input(STARTED, &fields(json!({"coder_id": ""})), at);
        assert!(empty.unwrap_err().message().contains("needs a coder_id"));
        let not_string = CoderEvent::from_input(STARTED, &fields(json!({"coder_id": 7})), at);
        assert!(
            not_string
                .unwrap_err()
                .message()
                .contains("must be a string")
        );
        let unknown =
            CoderEvent::from_input("ai_coder.exploded", &fields(json!({"coder_id": "c"})), at);
        assert!(
            unknown
                .unwrap_err()
                .message()
                .contains("not a coder event type")
        );
        let alert = CoderEvent::from_input(FAILURE_ALERT, &fields(json!({"coder_id": "c"})), at);
        assert!(alert.unwrap_err().message().contains("aggregator's own"));
        let untyped = CoderEvent::new("", "c", "c", at, Map::new());
        assert!(
            untyped
                .validate()
                .unwrap_err()
                .message()
                .contains("needs a type")
        );
    }
}
