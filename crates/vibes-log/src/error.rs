//! The one error type of the log API.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

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
    /// A topic, partition or consumer group does not exist: `kind` says which, for
    /// callers to match on.
    #[error("no such {kind}: {what}")]
    NotFound {
        /// What kind of thing is missing.
        kind: Missing,
        /// Which one, and where it was looked for (`vibes/events`, `3 of vibes/events,
        /// which has 2 partitions`).
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
    /// A topic asked for with zero partitions.
    #[error("topic {topic} needs at least one partition")]
    ZeroPartitions {
        /// The topic.
        topic: String,
    },
    /// An append without records.
    #[error("an append to {topic} needs at least one record")]
    EmptyBatch {
        /// The topic.
        topic: String,
    },
    /// A record or batch larger than the backend stores.
    #[error("{what} has {size} bytes; at most {limit} are allowed")]
    TooLarge {
        /// What is too large (`record 2 of the batch for vibes/events`).
        what: String,
        /// Its size in bytes.
        size: usize,
        /// The most the backend stores.
        limit: usize,
    },
    /// A record this backend cannot store as it is (Iggy: an empty payload, id 0, a key
    /// over 255 bytes); other backends may store it.
    #[error("{backend} cannot store {what}")]
    Unsupported {
        /// The backend's [`kind`](crate::backend::LogBackend::kind).
        backend: &'static str,
        /// What it cannot store, and where.
        what: String,
    },
    /// A consumer named a partition of its topic that its group gave to another member.
    #[error("partition {partition} of {topic} is not assigned to this member of group `{group}`")]
    NotAssigned {
        /// The topic.
        topic: String,
        /// The consumer group.
        group: String,
        /// The partition.
        partition: u32,
    },
    /// An event the codec could not encode.
    #[error("cannot encode an event for {topic}: {source}")]
    Encode {
        /// The topic it was for.
        topic: String,
        /// The codec's error.
        #[source]
        source: CodecError,
    },
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

    /// The [`LogError::NotFound`] of a partition past a topic's partition count.
    pub fn no_such_partition(topic: &impl fmt::Display, partitions: u32, partition: u32) -> Self {
        LogError::NotFound {
            kind: Missing::Partition,
            what: format!("{partition} of {topic}, which has {partitions}"),
        }
    }

    /// The [`LogError::NotFound`] of a topic.
    pub fn no_such_topic(topic: &impl fmt::Display) -> Self {
        LogError::NotFound {
            kind: Missing::Topic,
            what: topic.to_string(),
        }
    }
}

/// What kind of thing a [`LogError::NotFound`] did not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Missing {
    /// A topic (on Iggy: its stream or topic).
    Topic,
    /// A partition: past the topic's partition count.
    Partition,
    /// A consumer group.
    Group,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Missing::Topic => "topic",
            Missing::Partition => "partition",
            Missing::Group => "consumer group",
        })
    }
}

/// Why a [`Codec`](crate::Codec) could not encode or decode: the codec's own error,
/// kept whole (its type, its message, its sources). Cheap to clone.
#[derive(Debug, Clone)]
pub struct CodecError(Arc<dyn StdError + Send + Sync>);

impl CodecError {
    /// The codec error `error`.
    pub fn new(error: impl StdError + Send + Sync + 'static) -> Self {
        CodecError(Arc::new(error))
    }

    /// A codec error that is only a message.
    pub fn message(message: impl Into<String>) -> Self {
        CodecError(Arc::from(Box::<dyn StdError + Send + Sync>::from(
            message.into(),
        )))
    }

    /// The codec's error as its own type, if it is a `T`.
    pub fn downcast_ref<T: StdError + 'static>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl StdError for CodecError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

/// A record whose payload the typed layer could not decode.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot decode record {address} of {topic}: {source}")]
pub struct DecodeError {
    /// The topic.
    pub topic: String,
    /// Where the record is.
    pub address: RecordAddress,
    /// Why it did not decode: the codec's error.
    #[source]
    pub source: CodecError,
}
