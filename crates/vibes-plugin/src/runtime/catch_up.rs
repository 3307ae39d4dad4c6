//! Catching a plugin up in-process, as the one member of its group: what `serve` would
//! do with everything stored so far, then a snapshot, so the next query (or the next
//! `serve`) starts from there instead of replaying the log.

use parking_lot::Mutex;

use super::Runtime;
use super::rebuild::Progress;
use super::run::{self, Until};
use crate::error::RuntimeError;
use crate::plugin::Plugin;
use crate::status::{PluginStatus, StatusHandle};

impl Runtime {
    /// Runs `plugin` (fresh) as its group until it has handled every input record
    /// stored when the call started, exactly as a running host would: from its newest
    /// snapshot and its group's commit, storing its outputs, sending what it cannot
    /// handle to its dead-letter topic and committing after each batch. Then it saves a
    /// snapshot of the state when the plugin takes snapshots and it handled at least
    /// one record and an eighth of the records the restored snapshot covers (fewer are
    /// cheaper to read again next time than to save the whole state for), and returns
    /// the run's status, with `plugin` holding the state.
    ///
    /// The caller must make sure no other member of the group runs meanwhile (a host
    /// holds its `serve` lock); otherwise use [`rebuild`](Self::rebuild), which writes
    /// nothing. `progress` is told after each batch.
    pub async fn catch_up(
        &self,
        plugin: &mut (dyn Plugin + 'static),
        mut progress: impl FnMut(Progress) + Send,
    ) -> Result<PluginStatus, RuntimeError> {
        let status = StatusHandle::new(&plugin.manifest().name);
        let cell = Mutex::new(plugin);
        run::run_once(self, &cell, &status, Until::CaughtUp(&mut progress)).await?;
        Ok(status.get())
    }
}
