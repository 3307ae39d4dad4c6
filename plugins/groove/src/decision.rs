//! A person's decisions about gaps (apply, dismiss, resolve, reopen), as events in
//! the log: `groove.decision` with `action`, `gap_id` and optionally `solution_id`.

use serde_json::{Map, Value, json};
use vibes_events::{Event, EventData, EventId, Timestamp};

/// The event type of a decision.
pub const DECISION_TYPE: &str = "groove.decision";

/// What a person decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Applied a solution: the gap is in progress and feedback follows.
    Apply,
    /// Not worth fixing: the gap stays quiet.
    Dismiss,
    /// Fixed.
    Resolve,
    /// Not fixed after all.
    Reopen,
}

impl Action {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Apply => "apply",
            Action::Dismiss => "dismiss",
            Action::Resolve => "resolve",
            Action::Reopen => "reopen",
        }
    }

    /// The action named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "apply" => Action::Apply,
            "dismiss" => Action::Dismiss,
            "resolve" => Action::Resolve,
            "reopen" => Action::Reopen,
            _ => return None,
        })
    }
}

/// A decision read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What.
    pub action: Action,
    /// About which gap.
    pub gap_id: String,
    /// Which solution (apply only; the first one when absent).
    pub solution_id: Option<String>,
}

/// The decision `event` carries; `Ok(None)` when it is no decision, an error naming
/// the field when it is a malformed one.
pub fn read(event: &Event) -> Result<Option<Decision>, String> {
    if event.event_type() != DECISION_TYPE {
        return Ok(None);
    }
    let field = |name: &str| event.extra.get(name).and_then(Value::as_str);
    let action = field("action").ok_or("a groove.decision needs a string field `action`")?;
    let action = Action::parse(action).ok_or_else(|| {
        format!("groove.decision action {action:?} is none of apply, dismiss, resolve, reopen")
    })?;
    let gap_id = field("gap_id").ok_or("a groove.decision needs a string field `gap_id`")?;
    Ok(Some(Decision {
        action,
        gap_id: gap_id.to_owned(),
        solution_id: field("solution_id").map(str::to_owned),
    }))
}

/// The event recording a decision taken at `at` (the time the person gives or the
/// host's clock when they give none): its id derives from its content and that time,
/// so writing the same decision twice stores it once.
pub fn event(action: Action, gap_id: &str, solution_id: Option<&str>, at: Timestamp) -> Event {
    let mut extra = Map::new();
    extra.insert("action".into(), json!(action.as_str()));
    extra.insert("gap_id".into(), json!(gap_id));
    if let Some(s) = solution_id {
        extra.insert("solution_id".into(), json!(s));
    }
    let key = format!(
        "groove/decision/v1\0{}\0{gap_id}\0{}\0{}",
        action.as_str(),
        solution_id.unwrap_or(""),
        at.as_millisecond()
    );
    Event {
        id: EventId::derived(at, key.as_bytes()),
        timestamp: at,
        source: vibes_events::source::VIBES.to_owned(),
        data: EventData::Unknown {
            event_type: DECISION_TYPE.to_owned(),
        },
        extra,
    }
}
