//! The forwarder of an [`Outbox`](super::Outbox): ships what waits in the queue to the
//! backend, partition by partition in order, leaving out what a lost reply already
//! stored, and commits what it shipped; one process at a time (`forwarder.lock`).

use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::atomic::Ordering;

use jiff::Timestamp;
use vibes_log::backend::{AppendAck, LogBackend, Record, StoredRecord};
use vibes_log::{AppendOptions, Durability, GroupName, LogError, Offset, TopicName, Watermarks};

use super::{FORWARD_BATCH, FORWARDER_GROUP, FORWARDER_LOCK, Inner, Lane, LaneState, Pending};
use crate::blocking::blocking;
use crate::fsutil::{create_dir_durable, io_err};

impl Inner {
    /// Ships every waiting record, each partition in order, unless another process's
    /// forwarder is at it. Returns how many records were sent.
    pub(super) async fn forward(&self) -> Result<u64, LogError> {
        let _pass = self.forwarding.lock().await;
        let path = self.dir.join(FORWARDER_LOCK);
        let lock = blocking(move || try_lock(&path)).await?;
        let Some(_lock) = lock else {
            tracing::debug!(dir = %self.dir.display(), "another process is shipping this outbox");
            return Ok(0);
        };
        let lanes: BTreeSet<(TopicName, u32)> = self
            .lanes
            .lock()
            .iter()
            .filter(|(_, lane)| lane.waiting.load(Ordering::SeqCst) > 0)
            .map(|(key, _)| key.clone())
            .collect();
        let mut sent = 0;
        let mut first_error = None;
        for (topic, partition) in lanes {
            if self.closed.load(Ordering::SeqCst) {
                break;
            }
            let lane = self.lane(&topic, partition);
            match self.forward_lane(&topic, partition, &lane).await {
                Ok(n) => {
                    sent += n;
                    *lane.last_error.lock() = None;
                }
                Err(e) => {
                    let message = e.to_string();
                    let mut last = lane.last_error.lock();
                    if last.as_deref() != Some(message.as_str()) {
                        if e.is_transient() {
                            tracing::debug!(%topic, partition, "outbox cannot ship yet: {message}");
                        } else {
                            tracing::warn!(%topic, partition, "outbox cannot ship: {message}");
                        }
                    }
                    *last = Some(message);
                    first_error.get_or_insert(e);
                }
            }
        }
        if self.outage.load(Ordering::SeqCst) {
            let shipped = self.shipped_in_outage.fetch_add(sent, Ordering::SeqCst) + sent;
            if first_error.is_none()
                && self.total_waiting() == 0
                && self.outage.swap(false, Ordering::SeqCst)
            {
                self.shipped_in_outage.store(0, Ordering::SeqCst);
                let noun = if shipped == 1 { "record" } else { "records" };
                tracing::warn!(
                    "the {} backend answers again: {shipped} {noun} queued in the outbox shipped",
                    self.backend.kind()
                );
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(sent),
        }
    }

    /// Ships one partition's waiting records, step by step.
    pub(super) async fn forward_lane(
        &self,
        topic: &TopicName,
        partition: u32,
        lane: &Lane,
    ) -> Result<u64, LogError> {
        let mut sent = 0;
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return Ok(sent);
            }
            let mut state = lane.state.lock().await;
            match self.ship_step(topic, partition, lane, &mut state).await? {
                Some(n) => sent += n,
                None => return Ok(sent),
            }
        }
    }

    /// Ships the next run of waiting records of one partition (at least
    /// [`FORWARD_BATCH`], never part of a queued append) and commits them in the
    /// queue. `None` when nothing waits.
    pub(super) async fn ship_step(
        &self,
        topic: &TopicName,
        partition: u32,
        lane: &Lane,
        state: &mut LaneState,
    ) -> Result<Option<u64>, LogError> {
        let queue = &self.queue;
        let high = queue
            .watermarks(topic, partition)
            .await
            .map_err(|e| self.queue_error(e))?
            .high;
        let next = self.committed(topic, partition).await?;
        // Appends of this run that another process's forwarder shipped: their records
        // are before `next`, and they are answered from the backend's records below.
        let from = state.pending.front().map_or(next, |p| p.first.min(next));
        if next >= high && state.pending.is_empty() {
            lane.waiting.store(0, Ordering::SeqCst);
            return Ok(None);
        }
        let mut end = next.saturating_add(FORWARD_BATCH).min(high).max(next);
        for pending in &state.pending {
            if pending.first < end {
                end = end.max(pending.last + 1);
            }
        }
        let records = queue
            .read(topic, partition, from, (end - from) as usize)
            .await
            .map_err(|e| self.queue_error(e))?;
        if records.first().map(|r| r.address.offset) != Some(from)
            || records.len() as u64 != end - from
        {
            return Err(LogError::Backend {
                message: format!(
                    "outbox in {}: {topic} partition {partition} should hold records {from}..{end} \
                     but {} came back from {:?}",
                    self.dir.display(),
                    records.len(),
                    records.first().map(|r| r.address.offset)
                ),
                transient: false,
                source: None,
            });
        }
        let stored = self.recent(topic, partition).await?;
        // Where each record of `from..end` is in the backend (by queue offset).
        let mut addresses: Vec<Option<(Offset, Timestamp)>> = Vec::with_capacity(records.len());
        let mut batch = Vec::new();
        let mut batch_at = Vec::new();
        for (i, record) in records.into_iter().enumerate() {
            let offset = record.address.offset;
            if let Some(&found) = stored.get(&record.id) {
                addresses.push(Some(found));
            } else if offset < next {
                // Shipped by another forwarder, yet not among the latest records.
                addresses.push(None);
            } else {
                addresses.push(None);
                batch_at.push(i);
                batch.push(to_record(record));
            }
        }
        let shipped = batch.len() as u64;
        let skipped = (end - next) - shipped;
        if !batch.is_empty() {
            // Shipped records are dropped from the queue (committed) next, so they are
            // made as durable as the backend allows first.
            let ack = self
                .backend
                .append(
                    topic,
                    partition,
                    batch,
                    AppendOptions::durability(Durability::Always),
                )
                .await?;
            for (&i, address) in batch_at.iter().zip(ack.addresses()) {
                addresses[i] = Some((address.offset, ack.timestamp));
            }
        }
        if end > next {
            self.commit(topic, partition, end).await?;
        }
        lane.waiting
            .store(high.saturating_sub(end.max(next)), Ordering::SeqCst);
        while state.pending.front().is_some_and(|p| p.last < end) {
            let mut pending = state.pending.pop_front().expect("checked above");
            let Some(reply) = pending.reply.take() else {
                continue;
            };
            let span = (pending.first - from) as usize..=(pending.last - from) as usize;
            let _ = reply.send(self.acknowledge(topic, partition, &pending, &addresses[span]));
        }
        if shipped > 0 || skipped > 0 {
            tracing::info!(%topic, partition, sent = shipped, skipped, backend = self.backend.kind(), "outbox records shipped");
        }
        Ok(Some(shipped))
    }

    /// The acknowledgement of a queued append whose records are at `addresses` in the
    /// backend: contiguous, as an append's are, or an error saying where they are.
    pub(super) fn acknowledge(
        &self,
        topic: &TopicName,
        partition: u32,
        pending: &Pending,
        addresses: &[Option<(Offset, Timestamp)>],
    ) -> Result<AppendAck, LogError> {
        let Some(Some((base, timestamp))) = addresses.first().copied() else {
            return Err(self.lost_track(topic, partition, pending));
        };
        let contiguous = addresses
            .iter()
            .enumerate()
            .all(|(i, a)| a.is_some_and(|(offset, _)| offset == base + i as u64));
        if !contiguous {
            if addresses.iter().any(Option::is_none) {
                return Err(self.lost_track(topic, partition, pending));
            }
            let offsets: Vec<Offset> = addresses.iter().flatten().map(|(o, _)| *o).collect();
            return Err(LogError::Backend {
                message: format!(
                    "the records queued for {topic} partition {partition} are stored, but not \
                     together: some ids were stored before; they are at offsets {offsets:?}"
                ),
                transient: false,
                source: None,
            });
        }
        Ok(AppendAck {
            partition,
            base_offset: base,
            last_offset: base + addresses.len() as u64 - 1,
            timestamp,
        })
    }

    pub(super) fn lost_track(
        &self,
        topic: &TopicName,
        partition: u32,
        pending: &Pending,
    ) -> LogError {
        LogError::Backend {
            message: format!(
                "records {}..={} of the outbox in {} were shipped to {topic} partition \
                 {partition} by another process, and are no longer among its latest {} \
                 records, so their offsets are unknown",
                pending.first,
                pending.last,
                self.dir.display(),
                self.options.dedup_window
            ),
            transient: false,
            source: None,
        }
    }

    /// Where the latest records of a backend partition are, by id (the first of each).
    pub(super) async fn recent(
        &self,
        topic: &TopicName,
        partition: u32,
    ) -> Result<HashMap<u128, (Offset, Timestamp)>, LogError> {
        let marks: Watermarks = self.backend.watermarks(topic, partition).await?;
        let mut from = marks
            .high
            .saturating_sub(self.options.dedup_window)
            .max(marks.low);
        let mut found = HashMap::new();
        while from < marks.high {
            let records = self
                .backend
                .read(topic, partition, from, (marks.high - from) as usize)
                .await?;
            let Some(last) = records.last() else { break };
            from = last.address.offset + 1;
            for r in records {
                found.entry(r.id).or_insert((r.address.offset, r.timestamp));
            }
        }
        Ok(found)
    }

    /// The next queue offset to ship: the forwarder group's commit, or the lowest held.
    pub(super) async fn committed(
        &self,
        topic: &TopicName,
        partition: u32,
    ) -> Result<Offset, LogError> {
        let low = self.queue.watermarks(topic, partition).await?.low;
        let committed = self
            .queue
            .load_commit(topic, &forwarder_group(), partition)
            .await
            .map_err(|e| self.queue_error(e))?;
        Ok(committed.unwrap_or(low).max(low))
    }

    pub(super) async fn commit(
        &self,
        topic: &TopicName,
        partition: u32,
        next: Offset,
    ) -> Result<(), LogError> {
        self.queue
            .store_commit(topic, &forwarder_group(), partition, next)
            .await
            .map_err(|e| self.queue_error(e))
    }
}

/// A queued record as it is sent again. The queue keeps no headers; a backend that
/// wants them derives them from the payload.
pub(super) fn to_record(record: StoredRecord) -> Record {
    Record::new(record.key, record.id, record.payload)
}

/// Takes the forwarder lock of an outbox without waiting; `None` if another process
/// holds it.
pub(super) fn try_lock(path: &Path) -> Result<Option<File>, LogError> {
    if let Some(dir) = path.parent() {
        create_dir_durable(dir)?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io_err("opening lock file", path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(io_err("locking", path, e)),
    }
}

pub(super) fn forwarder_group() -> GroupName {
    GroupName::new(FORWARDER_GROUP).expect("a valid group name")
}
