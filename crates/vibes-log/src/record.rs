//! Records: what a backend stores, and where.

use std::fmt;

use bytes::Bytes;
use jiff::Timestamp;

/// Position of a record within its partition. Offsets are dense, start at 0, and are
/// assigned only by the backend.
pub type Offset = u64;

/// Where a record is: its partition and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordAddress {
    /// Partition, from 0.
    pub partition: u32,
    /// Offset within the partition.
    pub offset: Offset,
}

impl fmt::Display for RecordAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "partition {} offset {}", self.partition, self.offset)
    }
}

/// A record to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Records with the same key go to the same partition and keep their order.
    pub key: Option<Bytes>,
    /// The event's id, for de-duplication (a UUID as an integer).
    pub id: u128,
    /// The encoded event.
    pub payload: Bytes,
    /// Name and value pairs a backend may store beside the payload (Iggy message
    /// headers), so that other readers can route without decoding. The typed layer
    /// fills them (event `type` and `source`) only for backends that
    /// [want them](crate::LogBackend::wants_headers); the payload stays the whole event.
    pub headers: Vec<(String, String)>,
}

impl Record {
    /// A record without headers.
    pub fn new(key: Option<Bytes>, id: u128, payload: impl Into<Bytes>) -> Self {
        Record {
            key,
            id,
            payload: payload.into(),
            headers: Vec::new(),
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A record as stored: with its address and the time the backend appended it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Where it is.
    pub address: RecordAddress,
    /// When the backend appended it (microsecond precision; never decreasing within a
    /// partition).
    pub timestamp: Timestamp,
    /// Its key.
    pub key: Option<Bytes>,
    /// The event id.
    pub id: u128,
    /// The encoded event.
    pub payload: Bytes,
}

/// How durable an append must be before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Durability {
    /// Stored on disk (fsync'd) before the acknowledgement. Concurrent appends share
    /// one fsync (group commit).
    Always,
    /// Written to the OS before the acknowledgement and fsync'd at least this often:
    /// a power loss can lose up to this much.
    Interval(std::time::Duration),
    /// Written to the OS before the acknowledgement; fsync'd only when the OS chooses.
    /// Survives a process crash, not a power loss.
    Never,
}

/// Options of one append.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppendOptions {
    /// Overrides the log's durability for this append.
    pub durability: Option<Durability>,
}

impl AppendOptions {
    /// With this durability.
    pub fn durability(durability: Durability) -> Self {
        AppendOptions {
            durability: Some(durability),
        }
    }
}

/// What a backend acknowledges for an append: the records are stored, contiguously, at
/// `base_offset ..= last_offset` of `partition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendAck {
    /// The partition.
    pub partition: u32,
    /// Offset of the first record.
    pub base_offset: Offset,
    /// Offset of the last record.
    pub last_offset: Offset,
    /// The append time given to the records.
    pub timestamp: Timestamp,
}

impl AppendAck {
    /// Addresses of the appended records, in order.
    pub fn addresses(&self) -> impl Iterator<Item = RecordAddress> + '_ {
        (self.base_offset..=self.last_offset).map(|offset| RecordAddress {
            partition: self.partition,
            offset,
        })
    }
}

/// The offsets a partition holds: `low..high`. `high` is the offset the next record
/// gets (the high-water mark); `low` rises when retention deletes old records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    /// Lowest offset still held.
    pub low: Offset,
    /// Next offset to be assigned.
    pub high: Offset,
}

impl Watermarks {
    /// Records held.
    pub fn len(&self) -> u64 {
        self.high - self.low
    }

    /// Whether the partition holds no records.
    pub fn is_empty(&self) -> bool {
        self.high == self.low
    }
}

/// The partition a key maps to: XXH3-64 of the key modulo the partition count, the
/// same on every backend. Records without a key go to partition 0, so that keyless
/// events (drain control, for one) keep their order.
pub fn partition_for_key(key: Option<&[u8]>, partitions: u32) -> u32 {
    match key {
        Some(key) if partitions > 1 => {
            (xxhash_rust::xxh3::xxh3_64(key) % u64::from(partitions)) as u32
        }
        _ => 0,
    }
}

/// Largest payload any backend accepts, in bytes (16 MiB). Claude lines with inline
/// images exceed 1 MiB; nothing legitimate comes near this.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;
