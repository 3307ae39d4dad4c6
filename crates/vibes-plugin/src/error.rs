//! The errors of plugins and of the runtime.

use std::fmt;

use vibes_log::LogError;

/// Why a plugin could not handle an event: the record goes to the dead-letter topic
/// with this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError(String);

impl PluginError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        PluginError(message.into())
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PluginError {}

/// Why a query has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The plugin answers no query of that name.
    #[error("plugin {plugin} has no query {query} (it answers: {known})")]
    UnknownQuery {
        /// The plugin.
        plugin: String,
        /// The query asked for.
        query: String,
        /// The queries it answers, comma-separated.
        known: String,
    },
    /// An argument is missing or invalid.
    #[error("{0}")]
    BadArgument(String),
    /// The thing asked about does not exist (no such session, say).
    #[error("{0}")]
    NotFound(String),
    /// The state could not answer: a part of it restored from a snapshot does not
    /// decode (the message says which).
    #[error("the plugin's state cannot answer: {0}")]
    Failed(String),
}

/// A manifest that cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin {plugin}: {reason}")]
pub struct ManifestError {
    /// The plugin's name as declared.
    pub plugin: String,
    /// What is wrong.
    pub reason: String,
}

impl ManifestError {
    pub(crate) fn new(plugin: &str, reason: impl Into<String>) -> Self {
        ManifestError {
            plugin: plugin.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Why a plugin run stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The log failed; `doing` says at what.
    #[error("plugin {plugin}: {doing}: {source}")]
    Log {
        /// The plugin.
        plugin: String,
        /// What the runtime was doing.
        doing: String,
        /// The log's error.
        #[source]
        source: LogError,
    },
    /// Stored runtime data (a snapshot, a dead letter) is not what the runtime wrote.
    #[error("plugin {plugin}: {reason}")]
    Stored {
        /// The plugin.
        plugin: String,
        /// What is wrong, with the topic and offset.
        reason: String,
    },
}

impl RuntimeError {
    pub(crate) fn log(plugin: &str, doing: impl Into<String>, source: LogError) -> Self {
        RuntimeError::Log {
            plugin: plugin.to_owned(),
            doing: doing.into(),
            source,
        }
    }

    /// Whether retrying may succeed (a transient log error).
    pub fn is_transient(&self) -> bool {
        match self {
            RuntimeError::Log { source, .. } => source.is_transient(),
            _ => false,
        }
    }
}
