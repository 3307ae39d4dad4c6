//! The one error type of the log API.

use std::error::Error as StdError;
use std::io;
use std::path::PathBuf;

use crate::record::{Offset, RecordAddress};

/// Result of log operations.
pub type Result<T, E = LogError> = std::result::Result<T, E>;

/// Everything that can go wrong in the log layer, on any backend.
///
/// Variants are what a caller can act on; [`LogError::is_transient`] says whether
/// retrying the same call may succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// A topic, partition or group does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. "topic `vibes/events`".
        what: String,
    },
    /// A topic or group name is not allowed.
    #[error("invalid name `{name}`: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A seek or read asked for an offset outside the records the partition holds.
    #[error(
        "{requested} is out of range for {topic} partition {partition}: \
         it holds offsets {low}..{high}"
    )]
    OffsetOutOfRange {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// What was asked for, described (`offset 42`, `42 from the end`).
        requested: String,
        /// Lowest offset still held.
        low: Offset,
        /// Next offset to be assigned.
        high: Offset,
    },
    /// A topic exists with another partition count than the one asked for.
    #[error("topic {topic} has {existing} partitions, not {requested}")]
    PartitionCountMismatch {
        /// The topic.
        topic: String,
        /// Partitions it has.
        existing: u32,
        /// Partitions asked for.
        requested: u32,
    },
    /// A call's arguments are invalid (an empty batch, a partition past the count, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The log or consumer was closed.
    #[error("the log is closed")]
    Closed,
    /// A record's payload did not decode. The consumer has moved past it.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Stored data is damaged where no crash can have left it so.
    #[error("corrupt data in {} at byte {position}: {reason}", file.display())]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte position of the damage.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// An earlier write or fsync failed, so the log refuses writes until reopened:
    /// after a failed fsync the state of the file on disk is unknown.
    #[error("log refuses writes after an earlier failure: {reason}")]
    Poisoned {
        /// The failure that poisoned the log.
        reason: String,
    },
    /// A backend-specific failure, classified by the backend.
    #[error("{message}")]
    Backend {
        /// What failed.
        message: String,
        /// Whether retrying may help (a connection drop, a timeout).
        transient: bool,
        /// The backend's error.
        #[source]
        source: Option<Box<dyn StdError + Send + Sync>>,
    },
}

impl LogError {
    /// Whether retrying the same operation may succeed: interrupted or timed-out I/O and
    /// transient backend errors. Corruption, poisoning, bad names or offsets, and decode
    /// errors are permanent.
    pub fn is_transient(&self) -> bool {
        match self {
            LogError::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            LogError::Backend { transient, .. } => *transient,
            _ => false,
        }
    }

    /// An [`LogError::Io`] with context.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        LogError::Io {
            context: context.into(),
            source,
        }
    }

    /// The `InvalidArgument` for a partition past a topic's partition count.
    pub fn no_such_partition(
        topic: &impl std::fmt::Display,
        partitions: u32,
        partition: u32,
    ) -> Self {
        LogError::InvalidArgument(format!(
            "{topic} has {partitions} partitions; there is no partition {partition}"
        ))
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        LogError::NotFound { what: what.into() }
    }
}

/// A record whose payload the typed layer could not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode record {address} of {topic}: {reason}")]
pub struct DecodeError {
    /// The topic.
    pub topic: String,
    /// Where the record is.
    pub address: RecordAddress,
    /// Why it did not decode.
    pub reason: String,
}
