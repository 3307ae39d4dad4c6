//! Rebuilding a plugin's state in-process, to answer a query without a running host:
//! the newest snapshot, then every input record after it up to the end as it is now.
//! Nothing is written and nothing is committed.

use std::collections::BTreeMap;

use vibes_events::Event;
use vibes_log::backend::LogBackend;
use vibes_log::{DecodeError, EventBatch, LogError, Missing, Offset, RecordAddress, TopicName};

use super::Runtime;
use super::decode::Decoder;
use super::run::{handle_caught, reaches};
use super::snapshot::SnapshotStore;
use crate::emitter::Emitter;
use crate::error::RuntimeError;
use crate::plugin::{Input, Plugin};

/// How far a rebuild has come, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Input records read so far.
    pub read: u64,
    /// Input records to read in all.
    pub total: u64,
}

/// What a rebuild read.
#[derive(Debug, Clone, Default)]
pub struct Rebuilt {
    /// Input records read (after the snapshot, if one was restored).
    pub read: u64,
    /// Handled events covered by the snapshot it started from, if any.
    pub from_snapshot: Option<u64>,
    /// Records that did not decode, with their addresses (skipped).
    pub undecodable: Vec<DecodeError>,
    /// Records the plugin refused or panicked on (skipped), with the error.
    pub refused: Vec<(RecordAddress, String)>,
    /// Where reading stopped: per partition, the offset of the next record to read.
    pub positions: BTreeMap<u32, Offset>,
}

/// Records read per step.
const STEP: usize = 4096;

impl Runtime {
    /// Rebuilds `plugin` (fresh) from the log as it is now: the newest snapshot its
    /// manifest version can restore, then the input after it. Records it cannot
    /// handle (or decode) are skipped and listed in the report (a running host sends them to the dead-letter topic).
    /// `progress` is called after each step.
    pub async fn rebuild(
        &self,
        plugin: &mut dyn Plugin,
        mut progress: impl FnMut(Progress),
    ) -> Result<Rebuilt, RuntimeError> {
        let mut report = Rebuilt::default();
        let manifest = plugin.manifest();
        manifest.check()?;
        let name = manifest.name.clone();
        let input_name = self.input_of(&manifest);
        let input = TopicName::new(&input_name)
            .map_err(|e| RuntimeError::log(&name, format!("naming {input_name}"), e))?;
        let info = match self.backend.topic_info(&input).await {
            Ok(info) => info,
            Err(LogError::NotFound {
                kind: Missing::Topic,
                ..
            }) => return Ok(report),
            Err(e) => return Err(RuntimeError::log(&name, format!("opening {input_name}"), e)),
        };
        let mut from: BTreeMap<u32, Offset> = info
            .partitions
            .iter()
            .enumerate()
            .map(|(p, marks)| (p as u32, marks.low))
            .collect();
        let ends: BTreeMap<u32, Offset> = info
            .partitions
            .iter()
            .enumerate()
            .map(|(p, marks)| (p as u32, marks.high))
            .collect();
        // A snapshot that reaches the ends leaves nothing to handle: the part of the
        // state only handling needs is not read.
        let handling = |positions: &BTreeMap<u32, Offset>| !reaches(positions, &ends);
        if manifest.snapshot_every > 0
            && let Some(store) = SnapshotStore::open(
                std::sync::Arc::clone(&self.backend),
                &manifest.snapshot_topic(),
                &name,
                false,
            )
            .await?
            && let Some(snapshot) = store
                .load_usable(
                    manifest.version,
                    &input_name,
                    &from.keys().copied().collect::<Vec<_>>(),
                    handling,
                )
                .await
            // Left pending only when the snapshot reaches the ends: nothing is handled.
            && let Some((header, _pending)) = snapshot.restore_into(plugin)
        {
            from = header.positions;
            report.from_snapshot = Some(header.handled);
        }
        let total = ends
            .iter()
            .map(|(p, end)| end.saturating_sub(from[p]))
            .sum();
        let mut done = Progress { read: 0, total };
        progress(done);
        let mut emitter = Emitter::discarding(&name);
        report.positions = from.clone();
        // Reading and decoding run ahead of the plugin, a step or two, on other
        // threads: the plugin folds one step while the next is read and decoded.
        let decoder = Decoder::new(&input_name, &manifest.filter);
        let (steps, mut ready) = tokio::sync::mpsc::channel(READ_AHEAD);
        tokio::spawn(read_ahead(
            ReadAhead {
                backend: std::sync::Arc::clone(&self.backend),
                input,
                plugin: name.clone(),
                decoder: decoder.clone(),
                from,
                ends,
            },
            steps,
        ));
        while let Some(step) = ready.recv().await {
            let step = step?;
            let batch = decoder.finish(step.decoding, &name).await?;
            done.read += step.read;
            report.positions.insert(step.partition, step.next);
            report.undecodable.extend(batch.failures);
            for delivered in &batch.events {
                let event = &delivered.event;
                if !manifest.filter.matches(event) {
                    continue;
                }
                emitter.begin(&input_name, delivered.address, event);
                let input = Input {
                    event,
                    address: delivered.address,
                    appended: delivered.timestamp,
                };
                if let Err(e) = handle_caught(plugin, &input, &mut emitter) {
                    report.refused.push((delivered.address, e.to_string()));
                }
            }
            // Freeing a step's events is a good part of a plugin's time; it is not
            // on the way of the next step.
            drop(tokio::task::spawn_blocking(move || drop(batch.events)));
            progress(done);
        }
        report.read = done.read;
        Ok(report)
    }
}

/// Steps read and decoded ahead of the plugin, at most.
const READ_AHEAD: usize = 2;

/// One step read and decoded: the records of `partition` up to `next`.
struct Step {
    partition: u32,
    /// The offset of the next record to read in the partition.
    next: Offset,
    /// Records read in this step.
    read: u64,
    /// Its records, decoding on the blocking pool.
    decoding: tokio::task::JoinHandle<EventBatch<Event>>,
}

/// What [`read_ahead`] reads: each partition from `from` to `ends`.
struct ReadAhead {
    backend: std::sync::Arc<dyn LogBackend>,
    input: TopicName,
    plugin: String,
    decoder: Decoder,
    from: BTreeMap<u32, Offset>,
    ends: BTreeMap<u32, Offset>,
}

/// Reads every partition in turn, a step at a time, starts decoding each step on the
/// blocking pool (the records the filter wants; see [`vibes_log::decode_batch`]) and
/// sends it, in order, while it reads the next. Stops at the first error (sent) or when
/// the receiver is gone.
async fn read_ahead(what: ReadAhead, steps: tokio::sync::mpsc::Sender<Result<Step, RuntimeError>>) {
    let ReadAhead {
        backend,
        input,
        plugin,
        decoder,
        from,
        ends,
    } = what;
    for (&partition, &end) in &ends {
        let mut next = from[&partition];
        while next < end {
            let want = usize::try_from(end - next).unwrap_or(STEP).min(STEP);
            let records = match backend.read(&input, partition, next, want).await {
                Ok(records) => records,
                Err(e) => {
                    let e = RuntimeError::log(&plugin, format!("reading {input}"), e);
                    let _ = steps.send(Err(e)).await;
                    return;
                }
            };
            let Some(last) = records.last() else {
                break;
            };
            next = last.address.offset + 1;
            let read = records.len() as u64;
            let decoding = decoder.spawn(records);
            let step = Step {
                partition,
                next,
                read,
                decoding,
            };
            if steps.send(Ok(step)).await.is_err() {
                return;
            }
        }
    }
}
