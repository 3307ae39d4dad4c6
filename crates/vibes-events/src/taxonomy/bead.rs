//! Issue-tracker events: `bead.*` (bd, "beads").

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `bead.created`: a new bead (issue) appeared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BeadCreated {
    /// Bead id, e.g. `bd-042`.
    pub bead_id: String,
    /// Title.
    pub title: String,
    /// Who did it, when known. The seed makes it mandatory; a file watcher cannot always
    /// tell, so it is optional here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Status at creation. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Priority (0 is the highest and is valid). Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Issue type: `task`, `epic`, `bug`, ... Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_type: Option<String>,
}

impl BeadCreated {
    /// A created event with the seed's fields.
    pub fn new(bead_id: impl Into<String>, title: impl Into<String>) -> Self {
        Self {
            bead_id: bead_id.into(),
            title: title.into(),
            actor: None,
            status: None,
            priority: None,
            issue_type: None,
        }
    }
}

/// `bead.updated`: fields of a bead other than its status changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BeadUpdated {
    /// Bead id.
    pub bead_id: String,
    /// The changed fields with their new values (null for a removed field).
    pub fields: Map<String, Value>,
    /// Who did it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

impl BeadUpdated {
    /// An update event.
    pub fn new(bead_id: impl Into<String>, fields: Map<String, Value>) -> Self {
        Self {
            bead_id: bead_id.into(),
            fields,
            actor: None,
        }
    }
}

/// `bead.status`: a bead's status changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BeadStatus {
    /// Bead id.
    pub bead_id: String,
    /// Status before the change.
    pub old_status: String,
    /// Status after the change.
    pub new_status: String,
    /// Who did it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

impl BeadStatus {
    /// A status change.
    pub fn new(
        bead_id: impl Into<String>,
        old_status: impl Into<String>,
        new_status: impl Into<String>,
    ) -> Self {
        Self {
            bead_id: bead_id.into(),
            old_status: old_status.into(),
            new_status: new_status.into(),
            actor: None,
        }
    }
}

/// `bead.closed`: a bead was closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BeadClosed {
    /// Bead id.
    pub bead_id: String,
    /// Close reason, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who did it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

impl BeadClosed {
    /// A close event without reason or actor.
    pub fn new(bead_id: impl Into<String>) -> Self {
        Self {
            bead_id: bead_id.into(),
            reason: None,
            actor: None,
        }
    }
}

/// `bead.comment`: a comment was added to a bead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BeadComment {
    /// Bead id.
    pub bead_id: String,
    /// The comment text.
    pub comment: String,
    /// Author, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

impl BeadComment {
    /// A comment event.
    pub fn new(bead_id: impl Into<String>, comment: impl Into<String>) -> Self {
        Self {
            bead_id: bead_id.into(),
            comment: comment.into(),
            actor: None,
        }
    }
}

/// `bead.abandoned`: work on a bead stopped after `max_failures` failed attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BeadAbandoned {
    /// Bead id.
    pub bead_id: String,
    /// Attempts made.
    pub attempts: u32,
    /// The configured limit.
    pub max_failures: u32,
    /// The error of the last attempt.
    pub last_error: String,
}

impl BeadAbandoned {
    /// An abandon event.
    pub fn new(
        bead_id: impl Into<String>,
        attempts: u32,
        max_failures: u32,
        last_error: impl Into<String>,
    ) -> Self {
        Self {
            bead_id: bead_id.into(),
            attempts,
            max_failures,
            last_error: last_error.into(),
        }
    }
}
