//! What the workloads need from a log, as blocking calls, so that one workload function
//! drives the tokio-based vibes logs and SQLite alike; and its implementation over
//! `vibes-log` (every vibes backend: the file log in each durability mode, memory,
//! Iggy).

use std::ops::{Range, RangeInclusive};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::runtime::Runtime;
use vibes_events::Event;
use vibes_log::backend::{LogBackend, Record, RecordConsumer};
use vibes_log::{AppendOptions, ConsumerOptions, Durability, EventConsumer, EventLog, GroupName};

use super::iggy::ManagedIggy;
use crate::Result;

/// An event log under test. Offsets are whatever the store assigns (dense, rising).
pub(crate) trait Store: Send + Sync {
    /// Appends one event; returns its offset.
    fn append(&self, event: &Event) -> Result<u64>;

    /// Appends `events` in one call (all or nothing), encoding them inside the call;
    /// returns their offsets.
    fn append_batch(&self, events: &[Event]) -> Result<RangeInclusive<u64>>;

    /// Appends already encoded events in one call (all or nothing); returns their
    /// offsets. The storage engine's own cost, without serde.
    fn append_records(&self, records: &[Record]) -> Result<RangeInclusive<u64>>;

    /// One concurrent producer per element of `producers`, each appending its events
    /// one call at a time. Returns every offset assigned, in no particular order.
    fn append_concurrently(&self, producers: Vec<Vec<Event>>) -> Result<Vec<u64>>;

    /// Stores `count` copies of `payload` as fast as the store allows, trading away
    /// durability; returns the offsets assigned.
    fn load_raw(&self, count: usize, payload: &Bytes) -> Result<Range<u64>>;

    /// The offset the next record will get.
    fn high_water_mark(&self) -> Result<u64>;

    /// A byte-level reader from the first record on.
    fn raw_reader(&self, group: &str) -> Result<Box<dyn RawReader>>;

    /// A reader of decoded events from the first record on.
    fn typed_reader(&self, group: &str) -> Result<Box<dyn TypedReader>>;

    /// Releases what the store holds beyond its files (a server it runs); an error if
    /// that does not go cleanly. Dropping the store without it releases them too.
    fn close(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// Calls `visit(offset, payload)` for each record of a poll.
pub(crate) type VisitRaw<'a> = &'a mut dyn FnMut(u64, &[u8]) -> Result<()>;
/// Calls `visit(offset, event)` for each event of a poll.
pub(crate) type VisitTyped<'a> = &'a mut dyn FnMut(u64, &Event) -> Result<()>;

pub(crate) trait RawReader: Send {
    /// Up to `max` records after those already read, as soon as there are any, or
    /// none after `timeout`. Returns how many it visited.
    fn poll(&mut self, max: usize, timeout: Duration, visit: VisitRaw<'_>) -> Result<usize>;
}

pub(crate) trait TypedReader: Send {
    /// As [`RawReader::poll`], decoding each record into an [`Event`].
    fn poll(&mut self, max: usize, timeout: Duration, visit: VisitTyped<'_>) -> Result<usize>;
}

/// Records per append when loading fast.
const LOAD_BATCH: usize = 1000;

/// A vibes log on any backend, through the typed `EventLog` API as users write it.
pub(crate) struct VibesStore {
    runtime: Arc<Runtime>,
    log: EventLog<Event>,
    /// The server `log` talks to, if the store runs one; declared after `log`, so that
    /// a dropped store drops it last.
    server: Option<ManagedIggy>,
}

impl VibesStore {
    pub(crate) fn open(backend: Arc<dyn LogBackend>, runtime: &Arc<Runtime>) -> Result<Self> {
        let log = runtime.block_on(EventLog::open(backend, "bench/events"))?;
        Ok(VibesStore {
            runtime: Arc::clone(runtime),
            log,
            server: None,
        })
    }

    /// The store, owning the server its log talks to: [`Store::close`] stops it.
    pub(crate) fn served_by(mut self, server: ManagedIggy) -> Self {
        self.server = Some(server);
        self
    }
}

impl Store for VibesStore {
    fn append(&self, event: &Event) -> Result<u64> {
        Ok(self.runtime.block_on(self.log.append(event))?.offset)
    }

    fn append_batch(&self, events: &[Event]) -> Result<RangeInclusive<u64>> {
        let addresses = self.runtime.block_on(self.log.append_batch(events))?;
        match (addresses.first(), addresses.last()) {
            (Some(first), Some(last)) => Ok(first.offset..=last.offset),
            _ => Err("append_batch acknowledged no records".into()),
        }
    }

    fn append_records(&self, records: &[Record]) -> Result<RangeInclusive<u64>> {
        let (backend, topic) = (self.log.backend(), self.log.topic());
        let ack = self.runtime.block_on(backend.append(
            topic,
            0,
            records.to_vec(),
            AppendOptions::default(),
        ))?;
        Ok(ack.base_offset..=ack.last_offset)
    }

    fn append_concurrently(&self, producers: Vec<Vec<Event>>) -> Result<Vec<u64>> {
        self.runtime.block_on(async {
            let tasks: Vec<_> = producers
                .into_iter()
                .map(|events| {
                    let log = self.log.clone();
                    tokio::spawn(async move {
                        let mut offsets = Vec::with_capacity(events.len());
                        for event in &events {
                            offsets.push(log.append(event).await?.offset);
                        }
                        Ok::<_, vibes_log::LogError>(offsets)
                    })
                })
                .collect();
            let mut offsets = Vec::new();
            for task in tasks {
                offsets.extend(task.await??);
            }
            Ok(offsets)
        })
    }

    fn load_raw(&self, count: usize, payload: &Bytes) -> Result<Range<u64>> {
        let (backend, topic) = (self.log.backend(), self.log.topic());
        let options = AppendOptions::durability(Durability::Never);
        let mut written: Option<Range<u64>> = None;
        let mut id = 0u128;
        for start in (0..count).step_by(LOAD_BATCH) {
            let records = (start..count.min(start + LOAD_BATCH))
                .map(|_| {
                    id += 1;
                    Record::new(None, id, payload.clone())
                })
                .collect();
            let ack = self
                .runtime
                .block_on(backend.append(topic, 0, records, options))?;
            let range = written.get_or_insert(ack.base_offset..ack.base_offset);
            if ack.base_offset != range.end {
                return Err(format!(
                    "a batch was stored at offset {}, expected {}",
                    ack.base_offset, range.end
                )
                .into());
            }
            range.end = ack.last_offset + 1;
        }
        Ok(written.unwrap_or(0..0))
    }

    fn high_water_mark(&self) -> Result<u64> {
        Ok(self.runtime.block_on(self.log.high_water_mark(0))?)
    }

    fn raw_reader(&self, group: &str) -> Result<Box<dyn RawReader>> {
        let group = GroupName::new(group)?;
        let consumer = self.runtime.block_on(self.log.backend().consumer(
            self.log.topic(),
            &group,
            ConsumerOptions::default(),
        ))?;
        Ok(Box::new(VibesRawReader(OnRuntime::new(
            &self.runtime,
            consumer,
        ))))
    }

    fn typed_reader(&self, group: &str) -> Result<Box<dyn TypedReader>> {
        let consumer = self.runtime.block_on(self.log.consumer(group))?;
        Ok(Box::new(VibesTypedReader(OnRuntime::new(
            &self.runtime,
            consumer,
        ))))
    }

    fn close(mut self: Box<Self>) -> Result<()> {
        match self.server.as_mut() {
            Some(server) => server.close(),
            None => Ok(()),
        }
    }
}

/// A value that is dropped inside its runtime: an Iggy consumer closes its connection
/// and leaves its group on the runtime when dropped, and cannot outside of one.
struct OnRuntime<T> {
    runtime: Arc<Runtime>,
    /// `Some` until dropped.
    value: Option<T>,
}

impl<T> OnRuntime<T> {
    fn new(runtime: &Arc<Runtime>, value: T) -> Self {
        OnRuntime {
            runtime: Arc::clone(runtime),
            value: Some(value),
        }
    }

    /// Runs `f` on the value, blocking on the runtime.
    fn block_on<'a, F: Future>(&'a mut self, f: impl FnOnce(&'a mut T) -> F) -> F::Output {
        let value = self.value.as_mut().expect("present until dropped");
        self.runtime.block_on(f(value))
    }
}

impl<T> Drop for OnRuntime<T> {
    fn drop(&mut self) {
        let _entered = self.runtime.enter();
        drop(self.value.take());
    }
}

struct VibesRawReader(OnRuntime<Box<dyn RecordConsumer>>);

impl RawReader for VibesRawReader {
    fn poll(&mut self, max: usize, timeout: Duration, visit: VisitRaw<'_>) -> Result<usize> {
        let records = self.0.block_on(|c| c.poll(max, timeout))?;
        for record in &records {
            visit(record.address.offset, &record.payload)?;
        }
        Ok(records.len())
    }
}

struct VibesTypedReader(OnRuntime<EventConsumer<Event>>);

impl TypedReader for VibesTypedReader {
    fn poll(&mut self, max: usize, timeout: Duration, visit: VisitTyped<'_>) -> Result<usize> {
        let batch = self.0.block_on(|c| c.poll(max, timeout))?;
        if let Some(failure) = batch.failures.first() {
            return Err(format!(
                "{} records did not decode, the first: {failure}",
                batch.failures.len()
            )
            .into());
        }
        for delivered in &batch.events {
            visit(delivered.address.offset, &delivered.event)?;
        }
        Ok(batch.events.len())
    }
}
