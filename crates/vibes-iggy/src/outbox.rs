//! [`OutboxedIggy`]: appends that survive an unreachable server.
//!
//! An append goes to Iggy when the server answers. When it cannot be reached (a
//! transient error), the records go to a durable local outbox instead, a vibes-filelog
//! log with the same topics and partitions, fsync'd before the append returns. A
//! forwarder ships the outbox to Iggy in order once the server answers again and
//! commits what it shipped. While a partition has records waiting, new appends to it
//! join the queue, so each partition keeps its order.
//!
//! A send that failed after the server had already stored it, then queued and sent
//! again, would store the records twice; the forwarder therefore skips records whose
//! event id is among the last [`DEDUP_WINDOW`] records of the Iggy partition.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use iggy::prelude::PollingStrategy;
use tokio::sync::Notify;
use vibes_filelog::{FileLog, FileLogOptions};
use vibes_log::backend::{AppendAck, LogBackend, Record, RecordConsumer, StoredRecord};
use vibes_log::{
    AppendOptions, ConsumerOptions, Durability, GroupName, LogError, Offset, SeekPosition,
    StartFrom, TopicConfig, TopicName,
};

use crate::IggyLog;

/// How many of the latest records of an Iggy partition the forwarder checks for ids it
/// is about to send.
pub const DEDUP_WINDOW: u32 = 10_000;

/// The outbox consumer group whose commits mark what was shipped.
const FORWARDER_GROUP: &str = "forwarder";

/// How often the forwarder retries while the server is unreachable.
const RETRY_INTERVAL: Duration = Duration::from_millis(500);

/// Records shipped per send.
const FORWARD_BATCH: usize = 1000;

/// Serialises one partition's appends and forwarding steps.
type PartitionLock = Arc<tokio::sync::Mutex<()>>;

/// Where an append went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// Stored in Iggy at these offsets.
    Stored(AppendAck),
    /// Durable in the local outbox (fsync'd), to be appended to Iggy partition
    /// `partition` later, in order. The Iggy offsets are not known yet;
    /// `outbox_offsets` are the records' positions in the outbox.
    Queued {
        /// The Iggy partition they will be appended to.
        partition: u32,
        /// First and last position in the outbox partition.
        outbox_offsets: (Offset, Offset),
    },
}

/// Records waiting in the outbox for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxDepth {
    /// The topic.
    pub topic: TopicName,
    /// The partition.
    pub partition: u32,
    /// Records not yet shipped to Iggy.
    pub waiting: u64,
}

/// Appends to Iggy through a local outbox when the server is unreachable; see the
/// [module docs](self).
#[derive(Clone)]
pub struct OutboxedIggy {
    inner: Arc<Inner>,
}

struct Inner {
    iggy: IggyLog,
    outbox: FileLog,
    /// One lock per partition: an append and a forwarding step never interleave.
    locks: parking_lot::Mutex<HashMap<(TopicName, u32), PartitionLock>>,
    /// Records waiting, per partition.
    waiting: parking_lot::Mutex<BTreeMap<(TopicName, u32), u64>>,
    /// The forwarder's readers of the outbox, per topic.
    readers: tokio::sync::Mutex<HashMap<TopicName, Box<dyn RecordConsumer>>>,
    wake: Arc<Notify>,
    closed: AtomicBool,
}

impl fmt::Debug for OutboxedIggy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxedIggy")
            .field("iggy", &self.inner.iggy)
            .field("outbox", &self.inner.outbox)
            .finish_non_exhaustive()
    }
}

impl OutboxedIggy {
    /// Opens the outbox in `dir` (creating it) in front of `iggy`, counts what is
    /// waiting from an earlier run, and starts the forwarder on the current tokio
    /// runtime.
    pub async fn open(iggy: IggyLog, dir: &Path) -> Result<Self, LogError> {
        let outbox = FileLog::open(
            dir,
            FileLogOptions::default().durability(Durability::Always),
        )?;
        let inner = Arc::new(Inner {
            iggy,
            outbox,
            locks: parking_lot::Mutex::new(HashMap::new()),
            waiting: parking_lot::Mutex::new(BTreeMap::new()),
            readers: tokio::sync::Mutex::new(HashMap::new()),
            wake: Arc::new(Notify::new()),
            closed: AtomicBool::new(false),
        });
        inner.count_waiting().await?;
        let forwarder = Arc::downgrade(&inner);
        let wake = Arc::clone(&inner.wake);
        tokio::spawn(async move {
            loop {
                let notified = wake.notified();
                let Some(inner) = forwarder.upgrade() else {
                    break;
                };
                if inner.closed.load(Ordering::Acquire) {
                    break;
                }
                if inner.total_waiting() > 0
                    && let Err(e) = inner.forward().await
                {
                    tracing::debug!("outbox forwarding paused: {e}");
                    if e.is_transient()
                        && let Err(e) = inner.iggy.shared.reconnect().await
                    {
                        tracing::debug!("iggy-server still unreachable: {e}");
                    }
                }
                let retry = inner.total_waiting() > 0;
                drop(inner);
                if retry {
                    let _ = tokio::time::timeout(RETRY_INTERVAL, notified).await;
                } else {
                    notified.await;
                }
            }
        });
        Ok(OutboxedIggy { inner })
    }

    /// The Iggy log behind the outbox (for reading and topic management).
    pub fn iggy(&self) -> &IggyLog {
        &self.inner.iggy
    }

    /// Appends `records` to `partition` of `topic`: to Iggy, or to the outbox while the
    /// server cannot be reached or the partition still has records waiting.
    ///
    /// Errors: those of Iggy that are not about reaching it (`NotFound`,
    /// `InvalidArgument`, ...), and outbox storage errors.
    pub async fn append(
        &self,
        topic: &TopicName,
        partition: u32,
        records: Vec<Record>,
        options: AppendOptions,
    ) -> Result<Receipt, LogError> {
        let inner = &self.inner;
        let lock = inner.lock(topic, partition);
        let _guard = lock.lock().await;
        let queued_before = inner.waiting_in(topic, partition) > 0;
        if !queued_before {
            match inner
                .iggy
                .append(topic, partition, records.clone(), options)
                .await
            {
                Ok(ack) => return Ok(Receipt::Stored(ack)),
                Err(e) if e.is_transient() => {
                    tracing::warn!(%topic, partition, "iggy-server unreachable, appending to the outbox: {e}");
                }
                Err(e) => return Err(e),
            }
        }
        let partitions = inner.partitions_of(topic).await?;
        inner
            .outbox
            .ensure_topic(topic, TopicConfig::partitions(partitions))
            .await?;
        let n = records.len() as u64;
        let ack = inner
            .outbox
            .append(
                topic,
                partition,
                records,
                AppendOptions::durability(Durability::Always),
            )
            .await?;
        *inner
            .waiting
            .lock()
            .entry((topic.clone(), partition))
            .or_default() += n;
        inner.wake.notify_one();
        Ok(Receipt::Queued {
            partition,
            outbox_offsets: (ack.base_offset, ack.last_offset),
        })
    }

    /// Records waiting in the outbox, per partition that has any.
    pub fn depth(&self) -> Vec<OutboxDepth> {
        self.inner
            .waiting
            .lock()
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|((topic, partition), waiting)| OutboxDepth {
                topic: topic.clone(),
                partition: *partition,
                waiting: *waiting,
            })
            .collect()
    }

    /// Ships what is waiting now, without waiting for the forwarder. Returns how many
    /// records were sent. Errors when the server cannot be reached.
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

    /// Stops the forwarder and closes the Iggy connection. Waiting records stay in the
    /// outbox for the next run.
    pub async fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.wake.notify_one();
        self.inner.iggy.shutdown().await;
    }
}

impl Inner {
    fn lock(&self, topic: &TopicName, partition: u32) -> PartitionLock {
        self.locks
            .lock()
            .entry((topic.clone(), partition))
            .or_default()
            .clone()
    }

    fn waiting_in(&self, topic: &TopicName, partition: u32) -> u64 {
        self.waiting
            .lock()
            .get(&(topic.clone(), partition))
            .copied()
            .unwrap_or(0)
    }

    fn total_waiting(&self) -> u64 {
        self.waiting.lock().values().sum()
    }

    /// The partition count of `topic`: from Iggy, else from the outbox (the server may
    /// be the thing that is down).
    async fn partitions_of(&self, topic: &TopicName) -> Result<u32, LogError> {
        match self.iggy.shared.partition_count(topic).await {
            Ok(n) => Ok(n),
            Err(e) if e.is_transient() => match self.outbox.topic_info(topic).await {
                Ok(info) => Ok(info.partitions.len() as u32),
                Err(_) => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Counts the records each outbox partition holds past the forwarder's commit.
    async fn count_waiting(&self) -> Result<(), LogError> {
        let group = forwarder_group();
        for topic in self.outbox.list_topics().await? {
            let info = self.outbox.topic_info(&topic).await?;
            let groups = self.outbox.groups(&topic).await?;
            let committed = groups.iter().find(|g| g.group == group);
            for (p, marks) in info.partitions.iter().enumerate() {
                let done = committed
                    .and_then(|g| g.committed.get(p).copied().flatten())
                    .unwrap_or(marks.low);
                let waiting = marks.high.saturating_sub(done.max(marks.low));
                if waiting > 0 {
                    self.waiting
                        .lock()
                        .insert((topic.clone(), p as u32), waiting);
                }
            }
        }
        Ok(())
    }

    /// Ships every waiting record, each partition in order.
    async fn forward(&self) -> Result<u64, LogError> {
        let topics: BTreeSet<TopicName> = self
            .waiting
            .lock()
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|((topic, _), _)| topic.clone())
            .collect();
        let mut sent = 0;
        for topic in topics {
            sent += self.forward_topic(&topic).await?;
        }
        Ok(sent)
    }

    async fn forward_topic(&self, topic: &TopicName) -> Result<u64, LogError> {
        let mut readers = self.readers.lock().await;
        let reader = match readers.entry(topic.clone()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(
                self.outbox
                    .consumer(
                        topic,
                        &forwarder_group(),
                        ConsumerOptions::start(StartFrom::Beginning),
                    )
                    .await?,
            ),
        };
        let mut sent = 0;
        loop {
            let records = reader.poll(FORWARD_BATCH, Duration::ZERO).await?;
            if records.is_empty() {
                // Everything read: what is left waiting is what arrived since.
                for p in reader.assignment() {
                    let high = self.outbox.watermarks(topic, p).await?.high;
                    let position = reader.position(p).unwrap_or(high);
                    let mut waiting = self.waiting.lock();
                    if high > position {
                        waiting.insert((topic.clone(), p), high - position);
                    } else {
                        waiting.remove(&(topic.clone(), p));
                    }
                }
                return Ok(sent);
            }
            let mut by_partition: BTreeMap<u32, Vec<StoredRecord>> = BTreeMap::new();
            for r in records {
                by_partition.entry(r.address.partition).or_default().push(r);
            }
            let mut failure = None;
            for (p, records) in by_partition {
                let first = records[0].address.offset;
                let next = records[records.len() - 1].address.offset + 1;
                if failure.is_none() {
                    match self.ship(topic, p, records).await {
                        Ok(n) => {
                            // Shipped: the outbox commit says so, also to the next run.
                            reader.commit_offset(p, next).await?;
                            sent += n;
                            continue;
                        }
                        Err(e) => failure = Some(e),
                    }
                }
                // Not shipped: read these again next time.
                reader
                    .seek_partition(p, SeekPosition::Offset(first))
                    .await?;
            }
            if let Some(e) = failure {
                return Err(e);
            }
        }
    }

    /// Sends one partition's records (in outbox order) to Iggy, leaving out those Iggy
    /// already has, and marks them shipped.
    async fn ship(
        &self,
        topic: &TopicName,
        partition: u32,
        records: Vec<StoredRecord>,
    ) -> Result<u64, LogError> {
        let lock = self.lock(topic, partition);
        let _guard = lock.lock().await;
        let recent = self.recent_ids(topic, partition).await?;
        let count = records.len() as u64;
        let batch: Vec<Record> = records
            .into_iter()
            .filter(|r| !recent.contains(&r.id))
            .map(|r| {
                let mut record = Record::new(r.key, r.id, r.payload);
                record.headers = crate::headers::from_payload(&record.payload);
                record
            })
            .collect();
        let n = batch.len() as u64;
        if !batch.is_empty() {
            self.iggy
                .append(topic, partition, batch, AppendOptions::default())
                .await?;
        }
        {
            let mut waiting = self.waiting.lock();
            let left = waiting.entry((topic.clone(), partition)).or_default();
            *left = left.saturating_sub(count);
        }
        tracing::info!(%topic, partition, sent = n, skipped = count - n, "outbox records shipped to iggy-server");
        Ok(n)
    }

    /// Ids of the latest records of an Iggy partition.
    async fn recent_ids(
        &self,
        topic: &TopicName,
        partition: u32,
    ) -> Result<HashSet<u128>, LogError> {
        let messages = self
            .iggy
            .shared
            .read(topic, partition, PollingStrategy::last(), DEDUP_WINDOW)
            .await?;
        Ok(messages.iter().map(|m| m.header.id).collect())
    }
}

fn forwarder_group() -> GroupName {
    GroupName::new(FORWARDER_GROUP).expect("a valid group name")
}
