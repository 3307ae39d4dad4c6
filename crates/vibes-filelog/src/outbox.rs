//! [`Outbox`]: a durable outbox in front of any backend, so that appends survive a
//! backend that cannot be reached.
//!
//! The outbox is itself a [`LogBackend`] wrapping another (`Arc<dyn LogBackend>`, in
//! practice a remote one such as Apache Iggy). An append goes to the backend when it
//! answers. When it cannot be reached (a [transient](LogError::is_transient) error),
//! the records go to a local **queue** instead: a [`FileLog`] in the outbox directory
//! with the same topics and partitions, fsync'd before the append returns. A forwarder
//! task ships the queue to the backend in order once it answers again, with durability
//! `always`, and then commits what it shipped in the queue (consumer group
//! `forwarder`), so an outbox left by one run is shipped by the next. While a partition
//! has records waiting, new appends to it join the queue, so each partition keeps its
//! order.
//!
//! [`LogBackend::append_receipt`] says which happened: `Stored` with the backend's
//! offsets, or `Queued`. [`LogBackend::append`] never claims an offset the backend did
//! not assign: when its records had to be queued it waits until the forwarder has
//! stored them and returns their real offsets. Everything else (topics, watermarks,
//! reads, consumers, groups) is the backend's: queued records are invisible to readers
//! until they are shipped.
//!
//! A send that failed after the backend had stored it (a reply lost to a timeout),
//! then queued and sent again, would store the records twice; before each send the
//! forwarder therefore reads the latest [`DEDUP_WINDOW`] records of the partition with
//! [`LogBackend::read`] and leaves out records whose id is there.
//!
//! This file is the outbox's appends, lanes and queue; the forwarder is the `forward`
//! module.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot};
use vibes_log::backend::local::validate_batch;
use vibes_log::backend::{
    AppendAck, GroupInfo, LogBackend, Receipt, Record, RecordConsumer, StoredRecord, TopicInfo,
};
use vibes_log::{
    AppendOptions, ConsumerOptions, Durability, GroupName, LogError, Missing, Offset, TopicConfig,
    TopicName, Watermarks,
};

mod forward;

use forward::forwarder_group;

use crate::blocking::blocking;
use crate::{FileLog, FileLogOptions};

/// How many of the latest records of a partition the forwarder checks for ids it is
/// about to send, by default.
pub const DEDUP_WINDOW: u64 = 10_000;

/// The queue's consumer group whose commits mark what was shipped.
const FORWARDER_GROUP: &str = "forwarder";

/// Taken (without waiting) by a forwarder for each pass, so that two processes on one
/// outbox never ship the same records at once.
const FORWARDER_LOCK: &str = "forwarder.lock";

/// Records shipped per send, at least (a queued append is never split).
const FORWARD_BATCH: u64 = 1000;

/// Options of an [`Outbox`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboxOptions {
    /// How often the forwarder tries again while records wait. Default 500 ms.
    pub retry_interval: Duration,
    /// How many of the latest records of a partition are checked for ids about to be
    /// sent. Default [`DEDUP_WINDOW`].
    pub dedup_window: u64,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        OutboxOptions {
            retry_interval: Duration::from_millis(500),
            dedup_window: DEDUP_WINDOW,
        }
    }
}

impl OutboxOptions {
    /// Sets the retry interval (at least 1 ms).
    #[must_use]
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Sets the de-duplication window (in records).
    #[must_use]
    pub fn dedup_window(mut self, records: u64) -> Self {
        self.dedup_window = records;
        self
    }
}

/// Records waiting in the outbox for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboxDepth {
    /// The topic.
    pub topic: TopicName,
    /// The partition.
    pub partition: u32,
    /// Records not yet shipped to the backend.
    pub waiting: u64,
    /// Why the last attempt to ship them failed, if it did.
    pub last_error: Option<String>,
}

/// A durable outbox in front of a backend; see the [module docs](self). Its
/// [`kind`](LogBackend::kind) and [`wants_headers`](LogBackend::wants_headers) are the
/// backend's.
///
/// Cloning gives another handle to the same outbox. Call [`Outbox::shutdown`] when
/// done; dropping every handle also stops the forwarder, leaving what waits for the
/// next open.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<dyn LogBackend>,
    queue: FileLog,
    dir: PathBuf,
    options: OutboxOptions,
    /// Partition counts of topics seen through the outbox or in the queue, so that
    /// appends can be queued while the backend cannot say.
    partitions: Mutex<HashMap<TopicName, u32>>,
    lanes: Mutex<HashMap<(TopicName, u32), Arc<Lane>>>,
    /// Wakes the forwarder (which holds its own handle, to wait on it without keeping
    /// the outbox alive).
    wake: Arc<Notify>,
    /// Held for a forwarding pass: one at a time in this process.
    forwarding: tokio::sync::Mutex<()>,
    closed: AtomicBool,
    /// Whether an outage was reported and not yet its end, and records shipped since:
    /// an outage is one warning when it starts and one when everything is shipped, not
    /// a line per append or per retry.
    outage: AtomicBool,
    shipped_in_outage: AtomicU64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: let the forwarder see that and end.
        self.wake.notify_one();
    }
}

/// One partition of the outbox.
#[derive(Default)]
struct Lane {
    /// Held by an append and by a forwarding step: they never interleave.
    state: tokio::sync::Mutex<LaneState>,
    /// Records waiting (readable without the lock, for `depth`).
    waiting: AtomicU64,
    last_error: Mutex<Option<String>>,
}

#[derive(Default)]
struct LaneState {
    /// Appends of this run queued here and not yet shipped, in queue order. The
    /// forwarder never splits one across two sends.
    pending: VecDeque<Pending>,
}

struct Pending {
    /// Queue offsets of its records.
    first: Offset,
    last: Offset,
    /// Where an `append` waits for the records' real offsets.
    reply: Option<oneshot::Sender<Result<AppendAck, LogError>>>,
}

impl fmt::Debug for Outbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox")
            .field("backend", &self.inner.backend)
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// Opens the outbox in `dir` (creating it) in front of `backend`, counts what is
    /// waiting from an earlier run, and starts the forwarder on the current tokio
    /// runtime (so it must be called within one).
    ///
    /// Errors: `Io`/`Corrupt` when the queue cannot be opened or read.
    pub async fn open(
        backend: Arc<dyn LogBackend>,
        dir: impl AsRef<Path>,
        options: OutboxOptions,
    ) -> Result<Self, LogError> {
        let dir = dir.as_ref().to_owned();
        let queue = {
            let dir = dir.clone();
            blocking(move || {
                FileLog::open(
                    &dir,
                    FileLogOptions::default().durability(Durability::Always),
                )
            })
            .await?
        };
        let inner = Arc::new(Inner {
            backend,
            queue,
            dir,
            options,
            partitions: Mutex::new(HashMap::new()),
            lanes: Mutex::new(HashMap::new()),
            wake: Arc::new(Notify::new()),
            outage: AtomicBool::new(false),
            shipped_in_outage: AtomicU64::new(0),
            forwarding: tokio::sync::Mutex::new(()),
            closed: AtomicBool::new(false),
        });
        for depth in waiting(&inner.queue).await? {
            inner
                .partitions
                .lock()
                .insert(depth.topic.clone(), depth.partitions);
            if depth.waiting > 0 {
                tracing::info!(topic = %depth.topic, partition = depth.partition, waiting = depth.waiting, "records left in the outbox by an earlier run will be shipped");
                inner
                    .lane(&depth.topic, depth.partition)
                    .waiting
                    .store(depth.waiting, Ordering::SeqCst);
            }
        }
        tokio::spawn(forwarder(Arc::downgrade(&inner), Arc::clone(&inner.wake)));
        Ok(Outbox { inner })
    }

    /// What waits in the outbox in `dir`, per partition that has anything waiting,
    /// without opening it for appends or starting a forwarder (for status reports).
    /// Nothing if there is no outbox there.
    ///
    /// Errors: `Io`/`Corrupt` when the queue cannot be read.
    pub async fn waiting_in(dir: impl AsRef<Path>) -> Result<Vec<OutboxDepth>, LogError> {
        let dir = dir.as_ref().to_owned();
        let queue = {
            let dir = dir.clone();
            blocking(move || {
                if dir.join("topics").is_dir() {
                    FileLog::open(&dir, FileLogOptions::default()).map(Some)
                } else {
                    Ok(None)
                }
            })
            .await?
        };
        let Some(queue) = queue else {
            return Ok(Vec::new());
        };
        Ok(waiting(&queue)
            .await?
            .into_iter()
            .filter(|d| d.waiting > 0)
            .map(|d| OutboxDepth {
                topic: d.topic,
                partition: d.partition,
                waiting: d.waiting,
                last_error: None,
            })
            .collect())
    }

    /// The backend behind the outbox.
    pub fn backend(&self) -> &Arc<dyn LogBackend> {
        &self.inner.backend
    }

    /// The outbox directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Records waiting in the outbox, per partition that has any.
    pub fn depth(&self) -> Vec<OutboxDepth> {
        let lanes = self.inner.all_lanes();
        let mut depth: Vec<OutboxDepth> = lanes
            .into_iter()
            .filter_map(|((topic, partition), lane)| {
                let waiting = lane.waiting.load(Ordering::SeqCst);
                (waiting > 0).then(|| OutboxDepth {
                    topic,
                    partition,
                    waiting,
                    last_error: lane.last_error.lock().clone(),
                })
            })
            .collect();
        depth.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        depth
    }

    /// Ships what is waiting now, without waiting for the forwarder. Returns how many
    /// records were sent (records found already stored are not counted).
    ///
    /// Errors: the first failure to ship (the backend unreachable, say); the other
    /// partitions are still tried.
    pub async fn forward_now(&self) -> Result<u64, LogError> {
        self.inner.forward().await
    }

    /// Waits until nothing is waiting, up to `timeout`; returns whether it drained.
    pub async fn drained(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.inner.total_waiting() == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            self.inner.wake.notify_one();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the forwarder. Records still waiting stay in the outbox for the next run;
    /// appends waiting for them to be stored fail, saying so. The backend is not
    /// closed: it belongs to whoever opened it.
    pub async fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.wake.notify_one();
        let lanes = self.inner.all_lanes();
        for ((topic, partition), lane) in lanes {
            let mut state = lane.state.lock().await;
            for pending in &mut state.pending {
                if let Some(reply) = pending.reply.take() {
                    let _ = reply.send(Err(self.inner.closed_error(&topic, partition, pending)));
                }
            }
        }
    }

    /// Appends to the backend, or queues; `reply` is kept for queued records, to be
    /// answered with their real offsets once they are shipped.
    async fn append_or_queue(
        &self,
        topic: &TopicName,
        partition: u32,
        records: Vec<Record>,
        options: AppendOptions,
        reply: Option<oneshot::Sender<Result<AppendAck, LogError>>>,
    ) -> Result<Receipt, LogError> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::SeqCst) {
            return Err(LogError::Closed);
        }
        let lane = inner.lane(topic, partition);
        let mut state = lane.state.lock().await;
        let mut unreachable = None;
        if lane.waiting.load(Ordering::SeqCst) == 0 {
            match inner
                .backend
                .append(topic, partition, records.clone(), options)
                .await
            {
                Ok(ack) => {
                    // Learn the topic's partition count while the backend answers, so
                    // appends can be queued during a later outage even when the topic
                    // was created by someone else.
                    let known = inner.partitions.lock().contains_key(topic);
                    if !known && let Ok(info) = inner.backend.topic_info(topic).await {
                        inner.remember_partitions(&info);
                    }
                    return Ok(Receipt::Stored(ack));
                }
                Err(e) if e.is_transient() => {
                    if !inner.outage.swap(true, Ordering::SeqCst) {
                        tracing::warn!(
                            "the {} backend is unreachable ({e}); appends are queued in the outbox in {} and shipped once it answers",
                            inner.backend.kind(),
                            inner.dir.display()
                        );
                    } else {
                        tracing::debug!(%topic, partition, "backend unreachable, queueing: {e}");
                    }
                    unreachable = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        let Some(partitions) = inner.partitions.lock().get(topic).copied() else {
            // Neither the backend nor the queue has told us the topic's partitions.
            return Err(unreachable.unwrap_or_else(|| LogError::NotFound {
                kind: Missing::Topic,
                what: format!("{topic} (in the outbox in {})", inner.dir.display()),
            }));
        };
        validate_batch(topic, partitions, partition, &records)?;
        inner
            .queue
            .ensure_topic(topic, TopicConfig::partitions(partitions))
            .await
            .map_err(|e| inner.queue_error(e))?;
        let count = records.len();
        let ack = inner
            .queue
            .append(
                topic,
                partition,
                records,
                AppendOptions::durability(Durability::Always),
            )
            .await
            .map_err(|e| inner.queue_error(e))?;
        state.pending.push_back(Pending {
            first: ack.base_offset,
            last: ack.last_offset,
            reply,
        });
        lane.waiting.fetch_add(count as u64, Ordering::SeqCst);
        drop(state);
        inner.wake.notify_one();
        Ok(Receipt::Queued { partition, count })
    }
}

/// What waits in a queue, per partition of every topic, with the topic's partition
/// count.
struct QueueDepth {
    topic: TopicName,
    partitions: u32,
    partition: u32,
    waiting: u64,
}

async fn waiting(queue: &FileLog) -> Result<Vec<QueueDepth>, LogError> {
    let group = forwarder_group();
    let mut out = Vec::new();
    for topic in queue.list_topics().await? {
        let info = queue.topic_info(&topic).await?;
        let groups = queue.groups(&topic).await?;
        let committed = groups.iter().find(|g| g.group == group);
        let partitions = info.partitions.len() as u32;
        for (p, marks) in info.partitions.iter().enumerate() {
            let done = committed
                .and_then(|g| g.committed.get(p).copied().flatten())
                .unwrap_or(marks.low)
                .max(marks.low);
            out.push(QueueDepth {
                topic: topic.clone(),
                partitions,
                partition: p as u32,
                waiting: marks.high.saturating_sub(done),
            });
        }
    }
    Ok(out)
}

/// Ships waiting records whenever woken, and every retry interval while any wait.
/// Ends when the outbox is shut down or dropped.
async fn forwarder(inner: std::sync::Weak<Inner>, wake: Arc<Notify>) {
    loop {
        // Armed before looking, so a wake-up while shipping is not missed.
        let notified = wake.notified();
        let Some(outbox) = inner.upgrade() else {
            return;
        };
        if outbox.closed.load(Ordering::SeqCst) {
            return;
        }
        if outbox.total_waiting() > 0
            && let Err(e) = outbox.forward().await
        {
            tracing::debug!("outbox forwarding paused: {e}");
        }
        let retry = (outbox.total_waiting() > 0).then_some(outbox.options.retry_interval);
        drop(outbox);
        match retry {
            Some(interval) => {
                let _ = tokio::time::timeout(interval, notified).await;
            }
            None => notified.await,
        }
    }
}

impl Inner {
    fn lane(&self, topic: &TopicName, partition: u32) -> Arc<Lane> {
        Arc::clone(
            self.lanes
                .lock()
                .entry((topic.clone(), partition))
                .or_default(),
        )
    }

    /// Every lane, taken out of the map so that no lock is held while they are used.
    fn all_lanes(&self) -> Vec<((TopicName, u32), Arc<Lane>)> {
        self.lanes
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect()
    }

    fn total_waiting(&self) -> u64 {
        self.lanes
            .lock()
            .values()
            .map(|l| l.waiting.load(Ordering::SeqCst))
            .sum()
    }

    fn remember_partitions(&self, info: &TopicInfo) {
        self.partitions
            .lock()
            .insert(info.name.clone(), info.partitions.len() as u32);
    }

    /// A queue failure, saying it is the outbox's.
    fn queue_error(&self, error: LogError) -> LogError {
        match error {
            LogError::Io { context, source } => LogError::Io {
                context: format!("outbox in {}: {context}", self.dir.display()),
                source,
            },
            other => other,
        }
    }

    fn closed_error(&self, topic: &TopicName, partition: u32, pending: &Pending) -> LogError {
        LogError::Backend {
            message: format!(
                "the outbox closed before records {}..={} queued for {topic} partition {partition} \
                 were stored in the {} backend; they stay in {} and the next open ships them",
                pending.first,
                pending.last,
                self.backend.kind(),
                self.dir.display()
            ),
            transient: false,
            source: None,
        }
    }
}

#[async_trait]
impl LogBackend for Outbox {
    fn kind(&self) -> &'static str {
        self.inner.backend.kind()
    }

    fn wants_headers(&self) -> bool {
        self.inner.backend.wants_headers()
    }

    async fn ensure_topic(
        &self,
        topic: &TopicName,
        config: TopicConfig,
    ) -> Result<TopicInfo, LogError> {
        let info = self.inner.backend.ensure_topic(topic, config).await?;
        self.inner.remember_partitions(&info);
        Ok(info)
    }

    async fn topic_info(&self, topic: &TopicName) -> Result<TopicInfo, LogError> {
        let info = self.inner.backend.topic_info(topic).await?;
        self.inner.remember_partitions(&info);
        Ok(info)
    }

    async fn list_topics(&self) -> Result<Vec<TopicName>, LogError> {
        self.inner.backend.list_topics().await
    }

    /// Stored in the backend, or queued and then stored by the forwarder: either way
    /// the acknowledgement carries the offsets the backend assigned. While the backend
    /// cannot be reached this waits (as long as the outage lasts); a caller that must
    /// not wait uses [`append_receipt`](LogBackend::append_receipt).
    async fn append(
        &self,
        topic: &TopicName,
        partition: u32,
        records: Vec<Record>,
        options: AppendOptions,
    ) -> Result<AppendAck, LogError> {
        let (reply, stored) = oneshot::channel();
        match self
            .append_or_queue(topic, partition, records, options, Some(reply))
            .await?
        {
            Receipt::Stored(ack) => Ok(ack),
            _ => stored.await.unwrap_or_else(|_| {
                Err(LogError::Backend {
                    message: format!(
                        "the outbox in {} closed before records queued for {topic} partition \
                         {partition} were stored; the next open ships them",
                        self.inner.dir.display()
                    ),
                    transient: false,
                    source: None,
                })
            }),
        }
    }

    async fn append_receipt(
        &self,
        topic: &TopicName,
        partition: u32,
        records: Vec<Record>,
        options: AppendOptions,
    ) -> Result<Receipt, LogError> {
        self.append_or_queue(topic, partition, records, options, None)
            .await
    }

    async fn watermarks(&self, topic: &TopicName, partition: u32) -> Result<Watermarks, LogError> {
        self.inner.backend.watermarks(topic, partition).await
    }

    async fn read(
        &self,
        topic: &TopicName,
        partition: u32,
        from: Offset,
        max: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        self.inner.backend.read(topic, partition, from, max).await
    }

    async fn trim(
        &self,
        topic: &TopicName,
        partition: u32,
        before: Offset,
    ) -> Result<u64, LogError> {
        self.inner.backend.trim(topic, partition, before).await
    }

    async fn consumer(
        &self,
        topic: &TopicName,
        group: &GroupName,
        options: ConsumerOptions,
    ) -> Result<Box<dyn RecordConsumer>, LogError> {
        self.inner.backend.consumer(topic, group, options).await
    }

    async fn groups(&self, topic: &TopicName) -> Result<Vec<GroupInfo>, LogError> {
        self.inner.backend.groups(topic).await
    }
}
