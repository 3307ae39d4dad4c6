//! One run of a plugin: topics, group, snapshot, replay, then the live loop of poll,
//! filter, handle, store outputs, commit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::DerefMut;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::watch;
use vibes_events::{Event, EventId};
use vibes_log::{
    AppendOptions, ConsumerOptions, DecodeError, Delivered, EventConsumer, EventLog, Offset,
    RecordAddress, StartFrom,
};

use super::decode::Decoder;
use super::rebuild::Progress;
use super::snapshot::{Pending, SnapshotStore};
use super::{Runtime, dedup};
use crate::emitter::{Emitter, Output};
use crate::error::{PluginError, RuntimeError};
use crate::plugin::{Input, Manifest, Plugin};
use crate::status::{PluginState, StatusHandle};

use crate::DEAD_LETTER_TYPE;

/// How often the lag is measured while records keep arriving.
const LAG_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// One item of a poll, in log order.
enum Item {
    Event(Box<Delivered<Event>>),
    Undecodable(DecodeError),
    /// A record the filter does not want, seen from its type and source only.
    Skipped(RecordAddress),
}

impl Item {
    fn address(&self) -> RecordAddress {
        match self {
            Item::Event(d) => d.address,
            Item::Undecodable(e) => e.address,
            Item::Skipped(address) => *address,
        }
    }
}

/// Everything one run keeps besides the plugin.
struct Run<'a> {
    manifest: Manifest,
    input_name: String,
    status: &'a StatusHandle,
    outputs: HashMap<String, EventLog<Event>>,
    snapshots: Option<SnapshotStore>,
    /// Per partition: inputs before this offset were handled (and their outputs stored)
    /// by an earlier run; handling them again only rebuilds state.
    replay_until: BTreeMap<u32, Offset>,
    /// Per partition: the group's commit as this run last stored it.
    committed: BTreeMap<u32, Offset>,
    /// Outputs stored after the last commit, not to be stored again.
    already_stored: HashSet<EventId>,
    handled: u64,
    handled_at_snapshot: u64,
    options: AppendOptions,
    /// The plugin was restored from a snapshot without the part of its state only
    /// handling needs (a catch-up with nothing to read); this loads it.
    pending: Option<Pending>,
}

/// When idle and live, a plugin snapshots once it handled this fraction of its
/// `snapshot_every` since the last snapshot.
const IDLE_SNAPSHOT_FRACTION: u64 = 10;

/// Periodic snapshots come at least this fraction of the events already covered apart
/// (see `Run::maybe_snapshot`).
const SNAPSHOT_GROWTH: u64 = 8;

/// A catch-up's periodic snapshots come at least as many events apart as the last one
/// covered: they only keep an interrupted catch-up from starting over, so doubling is
/// enough (at most half the work lost, about twice the final state written in all).
const CATCH_UP_SNAPSHOT_GROWTH: u64 = 1;

/// Idle snapshots come at least this fraction of the events already covered apart:
/// more often than periodic ones (nothing else waits), still a bounded number of times.
const IDLE_SNAPSHOT_GROWTH: u64 = 16;

/// When a run ends.
pub(super) enum Until<'a> {
    /// When `stop` turns true (a running host's shutdown).
    Shutdown(&'a mut watch::Receiver<bool>),
    /// Once every input record stored when the run started is handled, with a snapshot
    /// of the state then; `progress` is told after each batch.
    CaughtUp(&'a mut (dyn FnMut(Progress) + Send)),
}

/// A plugin a run can lock: the shared box of a running host, or a plugin borrowed for
/// one catch-up.
pub(super) trait PluginCell: DerefMut<Target = dyn Plugin> + Send {}

impl<P: DerefMut<Target = dyn Plugin> + Send> PluginCell for P {}

pub(super) async fn run_once<P: PluginCell>(
    runtime: &Runtime,
    plugin: &Mutex<P>,
    status: &StatusHandle,
    until: Until<'_>,
) -> Result<(), RuntimeError> {
    let manifest = plugin.lock().manifest();
    manifest.check()?;
    let name = manifest.name.clone();
    let input_name = runtime.input_of(&manifest);
    status.update(|s| {
        s.state = PluginState::Starting;
        s.input = input_name.clone();
    });
    let backend = Arc::clone(runtime.backend());
    let input = runtime
        .open_log(&name, &input_name, runtime.options.input_partitions)
        .await?;

    let mut outputs = HashMap::new();
    let mut output_topics = Vec::new();
    let specs = manifest
        .outputs
        .iter()
        .map(|o| (o.topic.clone(), o.partitions))
        .chain([("dead-letter".to_owned(), 1)]);
    for (topic, partitions) in specs {
        let log = runtime
            .open_log(&name, &manifest.output_topic(&topic), partitions)
            .await?;
        output_topics.push(log.topic().clone());
        outputs.insert(topic, log);
    }
    let snapshots = if manifest.snapshot_every > 0 {
        SnapshotStore::open(
            Arc::clone(&backend),
            &manifest.snapshot_topic(),
            &name,
            true,
        )
        .await?
    } else {
        None
    };

    let mut consumer = input
        .consumer_with(
            &manifest.group(),
            ConsumerOptions::start(StartFrom::Beginning),
        )
        .await
        .map_err(|e| RuntimeError::log(&name, format!("joining group {}", manifest.group()), e))?;
    let assignment = consumer.assignment();
    let committed: BTreeMap<u32, Offset> = assignment
        .iter()
        .filter_map(|&p| consumer.position(p).map(|o| (p, o)))
        .collect();

    let mut run = Run {
        input_name: input_name.clone(),
        status,
        outputs,
        snapshots,
        replay_until: committed.clone(),
        committed: committed.clone(),
        already_stored: dedup::stored_after_commit(
            &backend,
            &name,
            &output_topics,
            &input_name,
            &committed,
        )
        .await?,
        handled: 0,
        handled_at_snapshot: 0,
        options: runtime.append_options(),
        manifest,
        pending: None,
    };
    // A catch-up reads up to the ends as they are now; when the snapshot already
    // reaches them, it reads nothing, and the part of the state only handling needs is
    // not loaded.
    let ends = match &until {
        Until::Shutdown(_) => None,
        Until::CaughtUp(_) => Some(high_marks(&input, &assignment, &name).await?),
    };
    run.start_position(plugin, &mut consumer, ends.as_ref())
        .await?;
    let (stop, mut catch_up) = match (until, ends) {
        (Until::CaughtUp(progress), Some(ends)) => (
            None,
            Some(CatchUp::new(&input, ends, positions(&consumer), progress, &name).await?),
        ),
        (Until::Shutdown(stop), _) => (Some(stop), None),
        (Until::CaughtUp(_), None) => unreachable!("a catch-up measures its ends"),
    };
    // A catch-up is never shut down; the sender lives as long as the run, so waiting
    // on the receiver waits forever rather than seeing a closed channel.
    let (_never_stop, mut never) = watch::channel(false);
    let stop = stop.unwrap_or(&mut never);
    // Where the handled input ends: the consumer's positions right after the poll of
    // the last batch handled. The consumer itself may be a poll further on.
    let mut at = positions(&consumer);
    run.update_lag(&input, at.clone()).await;
    let mut lag_measured = Instant::now();
    let mut stores = 0u64;
    let mut live = run.replay_done(&at);
    // A full poll is followed at once by the next one, which decodes on the blocking
    // pool while this one is handled, stored and committed.
    let mut ahead: Option<Result<Polled, vibes_log::LogError>> = None;
    // Records the filter does not want are passed over from their type and source.
    let decoder = Decoder::new(&input_name, &run.manifest.filter);
    status.update(|s| {
        s.state = if live {
            PluginState::Live
        } else {
            PluginState::Replaying
        }
    });

    loop {
        if *stop.borrow() || catch_up.as_ref().is_some_and(|c| c.reached(&at)) {
            break;
        }
        let polled = match ahead.take() {
            Some(polled) => polled,
            None => tokio::select! {
                polled = poll_records(
                    &mut consumer,
                    runtime.options.poll_max,
                    runtime.options.poll_timeout,
                    &decoder,
                ) => polled,
                _ = stop.wait_for(|stop| *stop) => break,
            },
        };
        let polled = match polled {
            Ok(polled) => {
                if polled.full {
                    ahead = Some(
                        poll_records(
                            &mut consumer,
                            runtime.options.poll_max,
                            Duration::ZERO,
                            &decoder,
                        )
                        .await,
                    );
                }
                polled
            }
            // Damaged records the consumer has already stepped past (the file log
            // reports each damaged batch once per reader): the plugin goes on with what
            // follows, and its status says what was skipped.
            Err(e @ vibes_log::LogError::Corrupt { .. }) => {
                tracing::warn!(plugin = %name, "skipping damaged input records: {e}");
                status.update(|s| s.last_error = Some(format!("damaged input skipped: {e}")));
                continue;
            }
            Err(e) => return Err(RuntimeError::log(&name, format!("polling {input_name}"), e)),
        };
        at = polled.positions.clone();
        let batch = polled.decode(&decoder, &name).await?;
        let idle = batch.is_empty();
        if idle && catch_up.is_some() {
            // Nothing more arrives for a catch-up (its ends were measured at the start).
            break;
        }
        if !idle {
            let mut items: Vec<Item> = batch
                .events
                .into_iter()
                .map(|d| Item::Event(Box::new(d)))
                .chain(batch.failures.into_iter().map(Item::Undecodable))
                .chain(batch.skipped.into_iter().map(Item::Skipped))
                .collect();
            // Log order within each partition, partitions in the order the poll gave.
            let mut rank: Vec<u32> = Vec::new();
            for item in &items {
                let p = item.address().partition;
                if !rank.contains(&p) {
                    rank.push(p);
                }
            }
            items.sort_by_key(|i| {
                let a = i.address();
                (rank.iter().position(|&p| p == a.partition), a.offset)
            });
            let live = items.iter().any(|i| !run.is_replay(i.address()));
            run.complete_restore(plugin).await?;
            let outputs = run.handle_all(plugin, &items);
            run.store(outputs).await?;
            stores += u64::from(live);
            if runtime.options.abort_after_stores == Some(stores) {
                std::process::abort();
            }
            run.commit(&mut consumer, &items).await?;
            let every = run.manifest.snapshot_every;
            let growth = if catch_up.is_some() {
                CATCH_UP_SNAPSHOT_GROWTH
            } else {
                SNAPSHOT_GROWTH
            };
            run.maybe_snapshot(plugin, at.clone(), every, growth)
                .await?;
            if let Some(catch_up) = &mut catch_up {
                catch_up.report(items.len() as u64);
            }
        }
        if !live && run.replay_done(&at) {
            live = true;
            status.update(|s| s.state = PluginState::Live);
        }
        if idle && live {
            // Caught up with nothing new: a good moment for a snapshot, so a query
            // rebuilding the plugin elsewhere replays little.
            let every = (run.manifest.snapshot_every / IDLE_SNAPSHOT_FRACTION).max(1);
            run.maybe_snapshot(plugin, at.clone(), every, IDLE_SNAPSHOT_GROWTH)
                .await?;
        }
        if idle || lag_measured.elapsed() >= LAG_EVERY {
            run.update_lag(&input, at.clone()).await;
            lag_measured = Instant::now();
        }
    }
    if catch_up.is_some_and(|c| c.read > 0) {
        // Only when it read enough to be worth rewriting the whole state: a query after
        // a few new records would otherwise spend more on the snapshot than on them.
        // What it left out is read again by the next catch-up (at most 1/8 of what
        // the snapshot covers), its outputs not stored twice.
        run.maybe_snapshot(plugin, at.clone(), 1, SNAPSHOT_GROWTH)
            .await?;
    }
    run.update_lag(&input, at).await;
    Ok(())
}

/// What a run that stops once caught up keeps: where each partition ended when it
/// started, and how far it has read.
struct CatchUp<'a> {
    ends: BTreeMap<u32, Offset>,
    progress: &'a mut (dyn FnMut(Progress) + Send),
    read: u64,
    total: u64,
}

impl<'a> CatchUp<'a> {
    /// A catch-up to `highs` (each partition's end when the run started) from
    /// `positions`.
    async fn new(
        input: &EventLog<Event>,
        highs: BTreeMap<u32, Offset>,
        positions: Vec<(u32, Option<Offset>)>,
        progress: &'a mut (dyn FnMut(Progress) + Send),
        name: &str,
    ) -> Result<Self, RuntimeError> {
        let mut ends = BTreeMap::new();
        let mut total = 0;
        for (p, position) in positions {
            let Some(&high) = highs.get(&p) else {
                continue;
            };
            let from = match position {
                Some(position) => position,
                None => {
                    input
                        .watermarks(p)
                        .await
                        .map_err(|e| {
                            RuntimeError::log(name, format!("reading {}", input.topic()), e)
                        })?
                        .low
                }
            };
            if from < high {
                total += high - from;
                ends.insert(p, high);
            }
        }
        progress(Progress { read: 0, total });
        Ok(CatchUp {
            ends,
            progress,
            read: 0,
            total,
        })
    }

    /// Whether every partition with records to read has been handled to its end, at
    /// `positions` (a position is unknown until the first poll after a seek).
    fn reached(&self, positions: &[(u32, Option<Offset>)]) -> bool {
        self.ends.iter().all(|(p, end)| {
            positions
                .iter()
                .any(|(q, pos)| q == p && pos.is_some_and(|pos| pos >= *end))
        })
    }

    fn report(&mut self, read: u64) {
        self.read += read;
        (self.progress)(Progress {
            read: self.read,
            total: self.total.max(self.read),
        });
    }
}

impl Run<'_> {
    fn name(&self) -> &str {
        &self.manifest.name
    }

    /// Restores the newest usable snapshot and seeks to it, or seeks to the beginning
    /// to replay everything. With `ends` (a catch-up's), a snapshot that reaches them
    /// is restored without the part only handling needs.
    async fn start_position<P: PluginCell>(
        &mut self,
        plugin: &Mutex<P>,
        consumer: &mut EventConsumer<Event>,
        ends: Option<&BTreeMap<u32, Offset>>,
    ) -> Result<(), RuntimeError> {
        let name = self.name().to_owned();
        let mut from: BTreeMap<u32, Offset> = BTreeMap::new();
        let owned: Vec<u32> = self.committed.keys().copied().collect();
        let handling =
            |positions: &BTreeMap<u32, Offset>| ends.is_none_or(|e| !reaches(positions, e));
        if let Some(store) = &self.snapshots
            && let Some(snapshot) = store
                .load_usable(self.manifest.version, &self.input_name, &owned, handling)
                .await
            && let Some((header, pending)) = snapshot.restore_into(&mut **plugin.lock())
        {
            self.pending = pending;
            from = header.positions;
            self.handled = header.handled;
            self.handled_at_snapshot = header.handled;
            self.status
                .update(|s| s.restored_from_snapshot = Some(header.handled));
        }
        if from.is_empty() {
            self.status.update(|s| s.restored_from_snapshot = None);
        }
        let partitions: Vec<u32> = self.committed.keys().copied().collect();
        for p in partitions {
            let target = match from.get(&p) {
                Some(&offset) => vibes_log::SeekPosition::Offset(offset),
                None => vibes_log::SeekPosition::Beginning,
            };
            if let Some(&offset) = from.get(&p)
                && offset > self.replay_until[&p]
            {
                // The snapshot was saved after a batch whose commit was lost: its
                // inputs and outputs are done.
                self.replay_until.insert(p, offset);
            }
            consumer.seek_partition(p, target).await.map_err(|e| {
                RuntimeError::log(
                    &name,
                    format!("seeking partition {p} of {}", self.input_name),
                    e,
                )
            })?;
        }
        Ok(())
    }

    /// Loads the part of the state only handling needs, if the restore skipped it.
    async fn complete_restore<P: PluginCell>(
        &mut self,
        plugin: &Mutex<P>,
    ) -> Result<(), RuntimeError> {
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        let Some(store) = &self.snapshots else {
            return Ok(());
        };
        let bytes = store.load_pending(&pending).await?;
        store.restore_pending(&pending, &bytes, &mut **plugin.lock())
    }

    fn replay_done(&self, positions: &[(u32, Option<Offset>)]) -> bool {
        self.replay_until.iter().all(|(p, until)| {
            positions
                .iter()
                .find(|(q, _)| q == p)
                .and_then(|(_, pos)| *pos)
                .is_none_or(|pos| pos >= *until)
        })
    }

    fn is_replay(&self, address: RecordAddress) -> bool {
        self.replay_until
            .get(&address.partition)
            .is_some_and(|until| address.offset < *until)
    }

    /// Hands every item to the plugin; returns the outputs to store (those of replayed
    /// inputs dropped).
    fn handle_all<P: PluginCell>(&mut self, plugin: &Mutex<P>, items: &[Item]) -> Vec<Output> {
        let mut emitter = Emitter::new(&self.manifest.name);
        let mut handled = 0u64;
        let mut skipped = 0u64;
        let mut dead = 0u64;
        let mut last_error = None;
        let mut last_offsets = BTreeMap::new();
        {
            let mut plugin = plugin.lock();
            for item in items {
                let address = item.address();
                last_offsets.insert(address.partition, address.offset);
                let replay = self.is_replay(address);
                let mark = emitter.mark();
                let failure = match item {
                    Item::Skipped(_) => {
                        skipped += 1;
                        continue;
                    }
                    Item::Event(delivered) => {
                        if !self.manifest.filter.matches(&delivered.event) {
                            skipped += 1;
                            continue;
                        }
                        emitter.begin(&self.input_name, address, &delivered.event);
                        let input = Input {
                            event: &delivered.event,
                            address,
                            appended: delivered.timestamp,
                        };
                        handled += 1;
                        handle_caught(&mut **plugin, &input, &mut emitter)
                            .err()
                            .map(|error| (error, Some(&delivered.event)))
                    }
                    Item::Undecodable(error) => {
                        let stand_in = stand_in_event(&self.input_name, error);
                        emitter.begin(&self.input_name, address, &stand_in);
                        Some((
                            PluginError::new(format!("does not decode: {}", error.source)),
                            None,
                        ))
                    }
                };
                if let Some((error, event)) = failure {
                    emitter.discard_from(mark);
                    if !replay {
                        dead += 1;
                        last_error = Some(format!("{} at {address}: {error}", self.input_name));
                    }
                    let _ = emitter.emit(
                        "dead-letter",
                        DEAD_LETTER_TYPE,
                        json!({
                            "plugin": self.manifest.name,
                            "error": error.message(),
                            "topic": self.input_name,
                            "partition": address.partition,
                            "offset": address.offset,
                            "event": event.map(|e| e.to_json().unwrap_or_default()),
                        }),
                    );
                }
                if replay {
                    emitter.discard_from(mark);
                }
            }
        }
        self.handled += handled;
        self.status.update(|s| {
            s.processed += handled;
            s.skipped += skipped;
            s.dead_letters += dead;
            for (p, o) in &last_offsets {
                s.last_offset.insert(*p, *o);
            }
            if let Some(error) = last_error {
                s.last_error = Some(error);
            }
        });
        if dead > 0 {
            tracing::warn!(plugin = %self.manifest.name, records = dead, "records sent to the dead-letter topic");
        }
        emitter.take()
    }

    /// Stores outputs per topic, in order, skipping those stored before a crash.
    async fn store(&mut self, outputs: Vec<Output>) -> Result<(), RuntimeError> {
        let mut by_topic: Vec<(String, Vec<Event>)> = Vec::new();
        for output in outputs {
            if !self.already_stored.is_empty() && self.already_stored.remove(&output.event.id) {
                continue;
            }
            match by_topic.iter_mut().find(|(t, _)| *t == output.topic) {
                Some((_, events)) => events.push(output.event),
                None => by_topic.push((output.topic, vec![output.event])),
            }
        }
        let mut stored = 0u64;
        for (topic, events) in by_topic {
            let Some(log) = self.outputs.get(&topic) else {
                return Err(RuntimeError::Stored {
                    plugin: self.manifest.name.clone(),
                    reason: format!(
                        "it emitted into {topic:?}, which its manifest does not declare"
                    ),
                });
            };
            log.append_batch_with(&events, self.options)
                .await
                .map_err(|e| {
                    RuntimeError::log(
                        &self.manifest.name,
                        format!("storing outputs in {}", log.topic()),
                        e,
                    )
                })?;
            stored += events.len() as u64;
        }
        if stored > 0 {
            self.status.update(|s| s.outputs += stored);
        }
        Ok(())
    }

    /// Commits each partition through the last item of the batch, once past what an
    /// earlier run committed.
    async fn commit(
        &mut self,
        consumer: &mut EventConsumer<Event>,
        items: &[Item],
    ) -> Result<(), RuntimeError> {
        let mut last: BTreeMap<u32, Offset> = BTreeMap::new();
        for item in items {
            let a = item.address();
            last.insert(a.partition, a.offset);
        }
        for (partition, offset) in last {
            if self.committed.get(&partition).is_some_and(|&c| offset < c) {
                continue;
            }
            consumer
                .commit_through(RecordAddress { partition, offset })
                .await
                .map_err(|e| {
                    RuntimeError::log(
                        &self.manifest.name,
                        format!("committing {} partition {partition}", self.input_name),
                        e,
                    )
                })?;
            self.committed.insert(partition, offset + 1);
        }
        Ok(())
    }

    /// Saves a snapshot once `after` events were handled since the last (`0`: now), and
    /// at least `1/growth` of what the last one covered, if the plugin takes snapshots.
    /// The second rule saves a state that grows with the log a bounded number of times
    /// (the bytes written stay within about `growth + 1` times the final state's).
    async fn maybe_snapshot<P: PluginCell>(
        &mut self,
        plugin: &Mutex<P>,
        positions: Vec<(u32, Option<Offset>)>,
        after: u64,
        growth: u64,
    ) -> Result<(), RuntimeError> {
        if self.snapshots.is_none() {
            return Ok(());
        }
        let after = if after == 0 {
            0
        } else {
            after.max(self.handled_at_snapshot / growth)
        };
        if self.manifest.snapshot_every == 0 || self.handled < self.handled_at_snapshot + after {
            return Ok(());
        }
        let positions: BTreeMap<u32, Offset> = positions
            .into_iter()
            .filter_map(|(p, o)| o.map(|o| (p, o)))
            .collect();
        self.complete_restore(plugin).await?;
        let Some(store) = &self.snapshots else {
            return Ok(());
        };
        let (state, handling) = {
            let plugin = plugin.lock();
            let Some(state) = plugin.save() else {
                return Ok(());
            };
            (state, plugin.save_for_handling())
        };
        let saved = store
            .save(
                self.manifest.version,
                &self.input_name,
                positions,
                self.handled,
                &state,
                handling.as_deref(),
                self.options,
            )
            .await?;
        self.handled_at_snapshot = self.handled;
        if saved {
            self.status.update(|s| s.snapshots += 1);
            tracing::debug!(plugin = %self.manifest.name, bytes = state.len(), handled = self.handled, "snapshot saved");
        }
        Ok(())
    }

    async fn update_lag(&self, input: &EventLog<Event>, positions: Vec<(u32, Option<Offset>)>) {
        let mut lag = BTreeMap::new();
        for (p, pos) in positions {
            if let (Ok(marks), Some(pos)) = (input.watermarks(p).await, pos) {
                lag.insert(p, marks.high.saturating_sub(pos));
            }
        }
        self.status.update(|s| s.lag = lag);
    }
}

/// Whether `positions` reach `ends` in every partition.
pub(super) fn reaches(positions: &BTreeMap<u32, Offset>, ends: &BTreeMap<u32, Offset>) -> bool {
    ends.iter()
        .all(|(p, end)| positions.get(p).is_some_and(|pos| pos >= end))
}

/// The end (high watermark) of each of `partitions` of `input` now.
async fn high_marks(
    input: &EventLog<Event>,
    partitions: &[u32],
    name: &str,
) -> Result<BTreeMap<u32, Offset>, RuntimeError> {
    let mut highs = BTreeMap::new();
    for &p in partitions {
        let marks = input
            .watermarks(p)
            .await
            .map_err(|e| RuntimeError::log(name, format!("reading {}", input.topic()), e))?;
        highs.insert(p, marks.high);
    }
    Ok(highs)
}

/// The read position of every partition `consumer` owns.
/// One poll's records, decoding or to decode, and the consumer's positions right
/// after it.
struct Polled {
    records: Decoding,
    positions: Vec<(u32, Option<Offset>)>,
    /// The poll returned as many records as asked for: more are likely waiting.
    full: bool,
}

enum Decoding {
    /// Few records: decoded on the spot when handled.
    Here(Vec<vibes_log::backend::StoredRecord>),
    /// Many: decoding on the blocking pool.
    Pool(tokio::task::JoinHandle<vibes_log::EventBatch<Event>>),
}

/// Polls up to `max` records of `consumer`; a full poll starts decoding at once on the
/// blocking pool, a smaller one is decoded when handled.
async fn poll_records(
    consumer: &mut EventConsumer<Event>,
    max: usize,
    timeout: Duration,
    decoder: &Decoder,
) -> Result<Polled, vibes_log::LogError> {
    let records = consumer.poll_records(max, timeout).await?;
    let full = !records.is_empty() && records.len() >= max;
    let records = if full {
        Decoding::Pool(decoder.spawn(records))
    } else {
        Decoding::Here(records)
    };
    Ok(Polled {
        records,
        positions: positions(consumer),
        full,
    })
}

impl Polled {
    /// The decoded batch: the records the filter wants decoded, the others skipped.
    async fn decode(
        self,
        decoder: &Decoder,
        plugin: &str,
    ) -> Result<vibes_log::EventBatch<Event>, RuntimeError> {
        match self.records {
            Decoding::Here(records) => Ok(decoder.decode(records)),
            Decoding::Pool(handle) => decoder.finish(handle, plugin).await,
        }
    }
}

fn positions(consumer: &EventConsumer<Event>) -> Vec<(u32, Option<Offset>)> {
    consumer
        .assignment()
        .into_iter()
        .map(|p| (p, consumer.position(p)))
        .collect()
}

/// An event standing for a record that does not decode, so its dead letter gets an id
/// derived from its address.
fn stand_in_event(topic: &str, error: &DecodeError) -> Event {
    let mut bytes = topic.as_bytes().to_vec();
    bytes.extend_from_slice(&error.address.partition.to_le_bytes());
    bytes.extend_from_slice(&error.address.offset.to_le_bytes());
    Event {
        id: EventId::derived_untimed(&bytes),
        timestamp: jiff::Timestamp::UNIX_EPOCH,
        source: "vibes".to_owned(),
        data: vibes_events::EventData::Unknown {
            event_type: "vibes.undecodable".to_owned(),
        },
        extra: serde_json::Map::new(),
    }
}

/// `plugin.handle`, with a panic turned into the error `panicked: <message>`.
pub(super) fn handle_caught(
    plugin: &mut dyn Plugin,
    input: &Input<'_>,
    out: &mut Emitter,
) -> Result<(), PluginError> {
    match catch_unwind(AssertUnwindSafe(|| plugin.handle(input, out))) {
        Ok(result) => result,
        Err(panic) => {
            let message = if let Some(s) = panic.downcast_ref::<&str>() {
                (*s).to_owned()
            } else if let Some(s) = panic.downcast_ref::<String>() {
                s.clone()
            } else {
                "a panic without a message".to_owned()
            };
            Err(PluginError::new(format!("panicked: {message}")))
        }
    }
}
