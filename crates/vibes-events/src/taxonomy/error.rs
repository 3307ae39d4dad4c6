//! The `error` event.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `error`: any error condition worth recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorEvent {
    /// What went wrong.
    pub message: String,
    /// How bad it is.
    pub severity: Severity,
    /// The bead concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bead_id: Option<String>,
    /// The Claude session concerned, if any. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

impl ErrorEvent {
    /// An error event.
    pub fn new(message: impl Into<String>, severity: Severity) -> Self {
        Self {
            message: message.into(),
            severity,
            bead_id: None,
            session_id: None,
        }
    }
}

/// Severity of an [`ErrorEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something was off but work went on (e.g. a malformed input line was skipped).
    Warning,
    /// An operation failed.
    Error,
    /// The producer cannot go on.
    Fatal,
}

impl Severity {
    /// The wire name: `warning`, `error` or `fatal`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Fatal => "fatal",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
