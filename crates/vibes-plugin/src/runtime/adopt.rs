//! Adopting a state a writer folded itself: a process that filled an empty input and
//! handed the plugin every record it appended, in order, saves that state as the
//! plugin's snapshot and commits the plugin's group through it, so the plugin's next
//! run or catch-up starts there instead of reading everything back.

use std::collections::BTreeMap;
use std::sync::Arc;

use vibes_log::{ConsumerOptions, Offset, RecordAddress, StartFrom};

use super::Runtime;
use super::snapshot::SnapshotStore;
use crate::error::RuntimeError;
use crate::plugin::Plugin;

/// Where the input's partitions were empty and where they end: what a writer claims
/// to have folded into a plugin ([`Runtime::adopt`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Folded {
    /// Per partition: its end when the writer started (nothing was retained before it).
    pub from: BTreeMap<u32, Offset>,
    /// Per partition: its end after the writer's last append.
    pub to: BTreeMap<u32, Offset>,
    /// The events the plugin handled (its filter wanted).
    pub handled: u64,
}

impl Runtime {
    /// Saves `plugin`'s state as its snapshot at `folded.to` and commits its group
    /// through there, when that state is the fold of the plugin's whole input up to
    /// `folded.to`. The caller vouches that it handed the plugin, in order, every
    /// record of the input in `folded.from..folded.to` that the plugin's filter wants,
    /// starting from a fresh plugin, and that its handling depends on the events only
    /// (not on the times the log appended them, which the caller does not know).
    ///
    /// What can be checked is, and saves nothing when it fails (returns `false`; the
    /// next run or catch-up then reads the input as usual): the plugin takes snapshots
    /// and declares no outputs (a fold elsewhere stores none); it has no snapshot and
    /// its group no commit; `folded.from` is where every partition begins now
    /// (nothing before the writer's records) and `folded.to` where it ends (nothing
    /// after them); and this process is the group's only member.
    ///
    /// The snapshot is saved before the commit, so a crash in between leaves a
    /// snapshot that a run restores (its inputs counted as done), never a commit
    /// without the state behind it. As for [`catch_up`](Self::catch_up), the caller
    /// must make sure no other member of the group runs meanwhile.
    pub async fn adopt(&self, plugin: &dyn Plugin, folded: &Folded) -> Result<bool, RuntimeError> {
        let manifest = plugin.manifest();
        manifest.check()?;
        let name = manifest.name.clone();
        let declined = |why: &str| {
            tracing::debug!(plugin = %name, "not adopting a folded state: {why}");
            Ok(false)
        };
        if !manifest.outputs.is_empty() || manifest.snapshot_every == 0 {
            return declined("it declares outputs or takes no snapshots");
        }
        let input_name = self.input_of(&manifest);
        let input = self
            .open_log(&name, &input_name, self.options.input_partitions)
            .await?;
        let Some(snapshots) = SnapshotStore::open(
            Arc::clone(self.backend()),
            &manifest.snapshot_topic(),
            &name,
            true,
        )
        .await?
        else {
            return declined("no snapshot topic");
        };
        if snapshots.latest_header().await?.is_some() {
            return declined("it has a snapshot");
        }
        let mut consumer = input
            .consumer_with(
                &manifest.group(),
                ConsumerOptions::start(StartFrom::Beginning),
            )
            .await
            .map_err(|e| {
                RuntimeError::log(&name, format!("joining group {}", manifest.group()), e)
            })?;
        let assignment = consumer.assignment();
        let partitions: Vec<u32> = folded.to.keys().copied().collect();
        if assignment != partitions || folded.from.keys().ne(folded.to.keys()) {
            return declined("its group has other members, or the partitions differ");
        }
        for &p in &assignment {
            let committed = consumer.committed_offset(p).await.map_err(|e| {
                RuntimeError::log(&name, format!("reading the commits of {input_name}"), e)
            })?;
            if committed.is_some() {
                return declined("its group has committed");
            }
        }
        for (&p, &to) in &folded.to {
            let marks = input
                .watermarks(p)
                .await
                .map_err(|e| RuntimeError::log(&name, format!("reading {input_name}"), e))?;
            if marks.low != folded.from[&p] || marks.high != to {
                return declined("the input holds records the fold did not see");
            }
        }
        let state = plugin.save();
        let Some(state) = state else {
            return declined("it saves no state");
        };
        let handling = plugin.save_for_handling();
        snapshots
            .save(
                manifest.version,
                &input_name,
                folded.to.clone(),
                folded.handled,
                &state,
                handling.as_deref(),
                self.append_options(),
            )
            .await?;
        for (&partition, &to) in &folded.to {
            if to > folded.from[&partition] {
                consumer
                    .commit_through(RecordAddress {
                        partition,
                        offset: to - 1,
                    })
                    .await
                    .map_err(|e| {
                        RuntimeError::log(
                            &name,
                            format!("committing {input_name} partition {partition}"),
                            e,
                        )
                    })?;
            }
        }
        tracing::debug!(plugin = %name, handled = folded.handled, bytes = state.len(), "adopted a folded state");
        Ok(true)
    }
}
