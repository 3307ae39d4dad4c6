//! [`IggyLogOptions`]: how an [`IggyLog`](crate::IggyLog) behaves.

use std::time::Duration;

use vibes_log::Durability;

/// Options of an [`IggyLog`](crate::IggyLog).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IggyLogOptions {
    /// Durability of appends that do not ask for their own. `Always` makes each append
    /// wait for the server to write and fsync the partition's buffered messages;
    /// `Interval` and `Never` are acknowledged once the server holds them in memory
    /// (it saves them on its own schedule; see docs/IGGY.md). Default: `Always`.
    pub durability: Durability,
    /// Longest wait between two polls of the server by an idle consumer. Appends made
    /// through the same `IggyLog` wake its consumers at once. Default 50 ms.
    pub max_poll_interval: Duration,
    /// How long an append waits for the server before it fails with a transient
    /// error (the SDK would otherwise wait for its reconnection). An append that timed
    /// out may still have been stored. Default 5 s.
    pub request_timeout: Duration,
}

impl Default for IggyLogOptions {
    fn default() -> Self {
        IggyLogOptions {
            durability: Durability::Always,
            max_poll_interval: Duration::from_millis(50),
            request_timeout: Duration::from_secs(5),
        }
    }
}

impl IggyLogOptions {
    /// Sets the default durability.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets how long an append waits for the server (at least 1 ms).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Sets the longest idle poll interval (at least 1 ms).
    #[must_use]
    pub fn max_poll_interval(mut self, interval: Duration) -> Self {
        self.max_poll_interval = interval.max(Duration::from_millis(1));
        self
    }
}
