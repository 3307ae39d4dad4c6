//! What a running plugin reports: its state, counts, positions and lag.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Where a plugin is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginState {
    /// Creating its topics, joining its group, loading its snapshot.
    Starting,
    /// Rebuilding its state from the log up to where it committed last.
    Replaying,
    /// Handling new events as they arrive.
    Live,
    /// Its last run failed; it restarts after a backoff (see `last_error`).
    Failed,
    /// Not running (shut down, or never started in this process).
    Stopped,
}

impl fmt::Display for PluginState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginState::Starting => "starting",
            PluginState::Replaying => "replaying",
            PluginState::Live => "live",
            PluginState::Failed => "failed",
            PluginState::Stopped => "stopped",
        })
    }
}

/// A plugin's counters and positions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginStatus {
    /// The plugin.
    pub name: String,
    /// Its state.
    pub state: PluginState,
    /// The topic it reads.
    pub input: String,
    /// Events handled since this process started it (replayed ones included).
    pub processed: u64,
    /// Events its filter skipped.
    pub skipped: u64,
    /// Events it wrote (this process, not counting replays).
    pub outputs: u64,
    /// Records sent to its dead-letter topic (this process).
    pub dead_letters: u64,
    /// Per input partition, the offset of the last record it read.
    pub last_offset: BTreeMap<u32, u64>,
    /// Per input partition, records appended that it has not read yet.
    pub lag: BTreeMap<u32, u64>,
    /// How many times it was restarted after a failure.
    pub restarts: u32,
    /// The error of its last failed run (or last dead letter), if any.
    pub last_error: Option<String>,
    /// Handled events covered by the snapshot it started from, if any.
    pub restored_from_snapshot: Option<u64>,
    /// Snapshots it saved (this process).
    pub snapshots: u64,
}

impl PluginStatus {
    /// A plugin that has not started.
    pub fn new(name: &str) -> Self {
        PluginStatus {
            name: name.to_owned(),
            state: PluginState::Stopped,
            input: String::new(),
            processed: 0,
            skipped: 0,
            outputs: 0,
            dead_letters: 0,
            last_offset: BTreeMap::new(),
            lag: BTreeMap::new(),
            restarts: 0,
            last_error: None,
            restored_from_snapshot: None,
            snapshots: 0,
        }
    }

    /// Total lag over all partitions.
    pub fn total_lag(&self) -> u64 {
        self.lag.values().sum()
    }
}

/// A shared, updatable [`PluginStatus`]: the runtime writes it, the host reads it.
#[derive(Debug, Clone)]
pub struct StatusHandle(Arc<Mutex<PluginStatus>>);

impl StatusHandle {
    /// A handle for plugin `name`, stopped.
    pub fn new(name: &str) -> Self {
        StatusHandle(Arc::new(Mutex::new(PluginStatus::new(name))))
    }

    /// A copy of the status now.
    pub fn get(&self) -> PluginStatus {
        self.0.lock().clone()
    }

    /// Changes the status; logs a state change once.
    pub(crate) fn update(&self, change: impl FnOnce(&mut PluginStatus)) {
        let mut status = self.0.lock();
        let before = status.state;
        change(&mut status);
        if status.state != before {
            match status.state {
                PluginState::Failed => tracing::warn!(
                    plugin = %status.name,
                    error = status.last_error.as_deref().unwrap_or(""),
                    "plugin failed"
                ),
                state => {
                    tracing::info!(plugin = %status.name, %state, processed = status.processed, "plugin state")
                }
            }
        }
    }
}
