//! How a file log behaves: durability, segment size, index density, retention.

use std::time::Duration;

use vibes_log::Durability;

/// Options of a [`FileLog`](crate::FileLog).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileLogOptions {
    /// Durability of appends that do not ask for their own. Default: `Always`.
    pub durability: Durability,
    /// A segment is sealed and a new one started once it would exceed this many bytes.
    /// Default 64 MiB; at most 2 GiB, so that positions (32-bit in the index) fit even
    /// with a maximal batch past the limit.
    pub segment_bytes: u64,
    /// An index entry is written at least every this many bytes of log. Default 4 KiB.
    pub index_interval_bytes: u32,
    /// What to delete. Only whole sealed segments are ever deleted.
    pub retention: Retention,
    /// How often a waiting consumer checks for records appended by other processes.
    /// Appends in this process wake consumers at once. Default 5 ms.
    pub external_check_interval: Duration,
}

impl Default for FileLogOptions {
    fn default() -> Self {
        FileLogOptions {
            durability: Durability::Always,
            segment_bytes: 64 * 1024 * 1024,
            index_interval_bytes: 4096,
            retention: Retention::default(),
            external_check_interval: Duration::from_millis(5),
        }
    }
}

impl FileLogOptions {
    /// Sets the default durability.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets the segment size (clamped to 4 KiB ..= 2 GiB).
    #[must_use]
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes.clamp(4096, 1 << 31);
        self
    }

    /// Sets the index interval (at least 1 byte).
    #[must_use]
    pub fn index_interval_bytes(mut self, bytes: u32) -> Self {
        self.index_interval_bytes = bytes.max(1);
        self
    }

    /// Sets retention.
    #[must_use]
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }
}

/// Which sealed segments to delete. Both limits apply; none is set by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// Delete sealed segments whose newest record is older than this.
    pub max_age: Option<Duration>,
    /// Delete the oldest sealed segments while a partition holds more bytes than this.
    pub max_bytes: Option<u64>,
}

impl Retention {
    /// Keep everything.
    pub fn keep_all() -> Self {
        Self::default()
    }

    /// Sets the age limit.
    #[must_use]
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// Sets the size limit per partition.
    #[must_use]
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }
}
