//! [`InMemoryLog`]: the log with every semantic of a real backend and no storage, for
//! tests and ephemeral use.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use crate::backend::local::{
    GroupCoordinator, LocalMember, LocalStore, append_time, validate_batch,
};
use crate::backend::{
    ConsumerOptions, GroupInfo, LogBackend, RecordConsumer, TopicConfig, TopicInfo,
};
use crate::error::{LogError, Result};
use crate::name::{GroupName, TopicName};
use crate::record::{
    AppendAck, AppendOptions, Offset, Record, RecordAddress, StoredRecord, Watermarks,
};

/// An event log held in memory. Cloning gives another handle to the same log, which is
/// how a test "restarts" a process on it: commits and records survive as long as one
/// handle does. Durability options are accepted and have no effect.
#[derive(Clone, Default)]
pub struct InMemoryLog {
    store: Arc<MemoryStore>,
}

impl fmt::Debug for InMemoryLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryLog")
            .field("topics", &self.store.topics.read().len())
            .finish()
    }
}

impl InMemoryLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }
}

#[derive(Default)]
pub(crate) struct MemoryStore {
    topics: RwLock<BTreeMap<TopicName, Arc<MemoryTopic>>>,
    commits: Mutex<HashMap<(TopicName, GroupName), BTreeMap<u32, Offset>>>,
    coordinator: Arc<GroupCoordinator>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

struct MemoryTopic {
    partitions: Vec<Mutex<MemoryPartition>>,
    signal: Arc<Notify>,
}

#[derive(Default)]
struct MemoryPartition {
    records: Vec<StoredRecord>,
    last_timestamp: Option<Timestamp>,
}

impl MemoryStore {
    fn topic(&self, topic: &TopicName) -> Result<Arc<MemoryTopic>> {
        self.topics
            .read()
            .get(topic)
            .cloned()
            .ok_or_else(|| LogError::no_such_topic(topic))
    }

    fn partition<'a>(
        topic_name: &TopicName,
        topic: &'a MemoryTopic,
        partition: u32,
    ) -> Result<&'a Mutex<MemoryPartition>> {
        topic.partitions.get(partition as usize).ok_or_else(|| {
            LogError::no_such_partition(topic_name, topic.partitions.len() as u32, partition)
        })
    }

    fn info(&self, name: &TopicName, topic: &MemoryTopic) -> TopicInfo {
        TopicInfo {
            name: name.clone(),
            partitions: topic
                .partitions
                .iter()
                .map(|p| Watermarks {
                    low: 0,
                    high: p.lock().records.len() as Offset,
                })
                .collect(),
        }
    }
}

#[async_trait]
impl LocalStore for MemoryStore {
    fn partitions(&self, topic: &TopicName) -> Result<u32> {
        Ok(self.topic(topic)?.partitions.len() as u32)
    }

    async fn read(
        &self,
        topic: &TopicName,
        partition: u32,
        from: Offset,
        max: usize,
    ) -> Result<Vec<StoredRecord>> {
        let t = self.topic(topic)?;
        let p = Self::partition(topic, &t, partition)?.lock();
        let start = (from as usize).min(p.records.len());
        let end = start.saturating_add(max).min(p.records.len());
        Ok(p.records[start..end].to_vec())
    }

    async fn watermarks(&self, topic: &TopicName, partition: u32) -> Result<Watermarks> {
        let t = self.topic(topic)?;
        let high = Self::partition(topic, &t, partition)?.lock().records.len() as Offset;
        Ok(Watermarks { low: 0, high })
    }

    async fn offset_for_timestamp(
        &self,
        topic: &TopicName,
        partition: u32,
        time: Timestamp,
    ) -> Result<Offset> {
        let t = self.topic(topic)?;
        let p = Self::partition(topic, &t, partition)?.lock();
        Ok(p.records.partition_point(|r| r.timestamp < time) as Offset)
    }

    async fn load_commit(
        &self,
        topic: &TopicName,
        group: &GroupName,
        partition: u32,
    ) -> Result<Option<Offset>> {
        Ok(self
            .commits
            .lock()
            .get(&(topic.clone(), group.clone()))
            .and_then(|c| c.get(&partition).copied()))
    }

    async fn store_commit(
        &self,
        topic: &TopicName,
        group: &GroupName,
        partition: u32,
        next_offset: Offset,
    ) -> Result<()> {
        self.commits
            .lock()
            .entry((topic.clone(), group.clone()))
            .or_default()
            .insert(partition, next_offset);
        Ok(())
    }

    fn append_signal(&self, topic: &TopicName) -> Result<Arc<Notify>> {
        Ok(Arc::clone(&self.topic(topic)?.signal))
    }

    fn coordinator(&self) -> &Arc<GroupCoordinator> {
        &self.coordinator
    }
}

#[async_trait]
impl LogBackend for InMemoryLog {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn ensure_topic(&self, topic: &TopicName, config: TopicConfig) -> Result<TopicInfo> {
        config.check(topic)?;
        let mut topics = self.store.topics.write();
        let entry = topics.entry(topic.clone()).or_insert_with(|| {
            Arc::new(MemoryTopic {
                partitions: (0..config.partitions).map(|_| Mutex::default()).collect(),
                signal: Arc::new(Notify::new()),
            })
        });
        let existing = entry.partitions.len() as u32;
        if existing != config.partitions {
            return Err(LogError::PartitionCountMismatch {
                topic: topic.to_string(),
                existing,
                requested: config.partitions,
            });
        }
        let entry = Arc::clone(entry);
        drop(topics);
        Ok(self.store.info(topic, &entry))
    }

    async fn topic_info(&self, topic: &TopicName) -> Result<TopicInfo> {
        let t = self.store.topic(topic)?;
        Ok(self.store.info(topic, &t))
    }

    async fn list_topics(&self) -> Result<Vec<TopicName>> {
        Ok(self.store.topics.read().keys().cloned().collect())
    }

    async fn append(
        &self,
        topic: &TopicName,
        partition: u32,
        records: Vec<Record>,
        _options: AppendOptions,
    ) -> Result<AppendAck> {
        let t = self.store.topic(topic)?;
        validate_batch(topic, t.partitions.len() as u32, partition, &records)?;
        let ack =
            {
                let mut p = MemoryStore::partition(topic, &t, partition)?.lock();
                let timestamp = append_time(p.last_timestamp);
                p.last_timestamp = Some(timestamp);
                let base_offset = p.records.len() as Offset;
                let count = records.len() as Offset;
                p.records
                    .extend(records.into_iter().zip(base_offset..).map(|(r, offset)| {
                        StoredRecord {
                            address: RecordAddress { partition, offset },
                            timestamp,
                            key: r.key,
                            id: r.id,
                            payload: r.payload,
                        }
                    }));
                AppendAck {
                    partition,
                    base_offset,
                    last_offset: base_offset + count - 1,
                    timestamp,
                }
            };
        t.signal.notify_waiters();
        Ok(ack)
    }

    async fn watermarks(&self, topic: &TopicName, partition: u32) -> Result<Watermarks> {
        LocalStore::watermarks(&*self.store, topic, partition).await
    }

    async fn read(
        &self,
        topic: &TopicName,
        partition: u32,
        from: Offset,
        max: usize,
    ) -> Result<Vec<StoredRecord>> {
        LocalStore::read(&*self.store, topic, partition, from, max).await
    }

    async fn consumer(
        &self,
        topic: &TopicName,
        group: &GroupName,
        options: ConsumerOptions,
    ) -> Result<Box<dyn RecordConsumer>> {
        let consumer = LocalMember::join(Arc::clone(&self.store), topic, group, options).await?;
        Ok(Box::new(consumer))
    }

    async fn groups(&self, topic: &TopicName) -> Result<Vec<GroupInfo>> {
        let partitions = self.store.topic(topic)?.partitions.len() as u32;
        let commits = self.store.commits.lock();
        let mut groups: Vec<GroupInfo> = commits
            .iter()
            .filter(|((t, _), _)| t == topic)
            .map(|((_, group), offsets)| GroupInfo {
                group: group.clone(),
                committed: (0..partitions).map(|p| offsets.get(&p).copied()).collect(),
            })
            .collect();
        groups.sort_by(|a, b| a.group.cmp(&b.group));
        Ok(groups)
    }
}
