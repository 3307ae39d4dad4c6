//! What a backend implementor needs: the byte-level traits every log backend
//! implements once ([`LogBackend`], [`RecordConsumer`]), the records they store,
//! [`group`], consumer-group positions written once for every backend (a backend
//! supplies a [`GroupMember`](group::GroupMember): fetching, commit I/O and the
//! assignment), and [`local`], group membership for backends within this process's
//! reach.
//!
//! Applications and plugins do not need this module: they use
//! [`EventLog`](crate::EventLog) and [`EventConsumer`](crate::EventConsumer), and hold a
//! backend only as the `Arc<dyn LogBackend>` the host opened for them.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

pub mod group;
pub mod local;

pub use crate::record::{AppendAck, MAX_PAYLOAD_BYTES, Record, StoredRecord, partition_for_key};

use crate::error::{LogError, Result};
use crate::name::{GroupName, TopicName};
use crate::position::{SeekPosition, StartFrom};
use crate::record::{AppendOptions, Offset, Watermarks};

/// How to create a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicConfig {
    /// Partition count (at least 1).
    pub partitions: u32,
}

impl TopicConfig {
    /// A topic with this many partitions.
    pub fn partitions(partitions: u32) -> Self {
        TopicConfig { partitions }
    }

    /// Checks the config for `topic`: `ZeroPartitions` for zero partitions.
    pub fn check(&self, topic: &TopicName) -> Result<()> {
        if self.partitions == 0 {
            return Err(LogError::ZeroPartitions {
                topic: topic.to_string(),
            });
        }
        Ok(())
    }
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig { partitions: 1 }
    }
}

/// A topic and the state of its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Its name.
    pub name: TopicName,
    /// Watermarks of each partition, by partition number.
    pub partitions: Vec<Watermarks>,
}

/// A consumer group's committed positions on one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// The group.
    pub group: GroupName,
    /// Per partition, the next offset the group will read, if it committed one.
    pub committed: Vec<Option<Offset>>,
}

/// How to create a consumer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerOptions {
    /// Where to start on partitions the group has no commit for.
    pub start: StartFrom,
}

impl ConsumerOptions {
    /// Start at `start` where the group has no commit.
    pub fn start(start: StartFrom) -> Self {
        ConsumerOptions { start }
    }
}

/// What became of an append: stored by the backend, or durably queued to be stored
/// later (by a decorator such as an outbox in front of a backend that cannot be
/// reached). See [`LogBackend::append_receipt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Receipt {
    /// Stored at these offsets, as durable as the append asked.
    Stored(AppendAck),
    /// Durable in a local queue (fsync'd), to be appended to `partition` later, in
    /// order, by whoever queued it. Offsets are not known yet: only the backend that
    /// finally stores the records assigns them.
    Queued {
        /// The partition the records will be appended to.
        partition: u32,
        /// How many records were queued.
        count: usize,
    },
}

impl Receipt {
    /// The partition the records went, or will go, to.
    pub fn partition(&self) -> u32 {
        match self {
            Receipt::Stored(ack) => ack.partition,
            Receipt::Queued { partition, .. } => *partition,
        }
    }

    /// The acknowledgement, if the records are stored.
    pub fn stored(&self) -> Option<&AppendAck> {
        match self {
            Receipt::Stored(ack) => Some(ack),
            Receipt::Queued { .. } => None,
        }
    }
}

/// A log backend: stores records in partitioned topics and serves consumer groups.
///
/// Every method is safe to call concurrently. Errors are [`LogError`](crate::LogError)
/// variants; which ones each method returns is stated on it.
#[async_trait]
pub trait LogBackend: Send + Sync + fmt::Debug {
    /// A short name for messages: `memory`, `file`, `iggy`.
    fn kind(&self) -> &'static str;

    /// Whether this backend stores [`Record::headers`](crate::Record::headers). The
    /// typed layer builds them only when it does. Default: no.
    fn wants_headers(&self) -> bool {
        false
    }

    /// Creates `topic` if it does not exist; returns its state either way.
    ///
    /// Errors: `PartitionCountMismatch` if it exists with another partition count,
    /// `ZeroPartitions`, `Io`/`Backend` on storage failure.
    async fn ensure_topic(&self, topic: &TopicName, config: TopicConfig) -> Result<TopicInfo>;

    /// The state of `topic`. Errors: `NotFound` (topic).
    async fn topic_info(&self, topic: &TopicName) -> Result<TopicInfo>;

    /// Every topic, sorted by name.
    async fn list_topics(&self) -> Result<Vec<TopicName>>;

    /// Appends `records` to one partition, all or nothing: on success they are stored
    /// contiguously at the acknowledged offsets, durable as `options` (or the backend's
    /// default) asks; on error none of them is visible to readers.
    ///
    /// Errors: `NotFound` (topic, or partition past the count), `EmptyBatch`,
    /// `TooLarge` (a payload over [`MAX_PAYLOAD_BYTES`]), `Unsupported` (a record this
    /// backend cannot hold), `Poisoned` after an earlier failed fsync, `Io`/`Backend`.
    async fn append(
        &self,
        topic: &TopicName,
        partition: u32,
        records: Vec<Record>,
        options: AppendOptions,
    ) -> Result<AppendAck>;

    /// [`append`](LogBackend::append), but a backend that can queue records durably
    /// while its store cannot be reached (an outbox) says so instead of waiting: the
    /// answer is [`Receipt::Queued`] when the records were queued, and
    /// [`Receipt::Stored`] with the real offsets otherwise. `append` on such a backend
    /// waits until queued records are stored and returns their real offsets.
    ///
    /// The default is `Stored` with what `append` returns. Errors: those of `append`.
    async fn append_receipt(
        &self,
        topic: &TopicName,
        partition: u32,
        records: Vec<Record>,
        options: AppendOptions,
    ) -> Result<Receipt> {
        self.append(topic, partition, records, options)
            .await
            .map(Receipt::Stored)
    }

    /// The offsets `partition` holds. Errors: `NotFound` (topic or partition).
    async fn watermarks(&self, topic: &TopicName, partition: u32) -> Result<Watermarks>;

    /// Up to `max` records of `partition` from offset `from` on, in offset order,
    /// without any consumer group: for readers that know where records are (an index
    /// of a session's addresses, say). `from` below the lowest held offset starts at
    /// the lowest; at or past the high-water mark the answer is empty. Never waits.
    ///
    /// Errors: `NotFound` (topic, or partition past the count).
    async fn read(
        &self,
        topic: &TopicName,
        partition: u32,
        from: Offset,
        max: usize,
    ) -> Result<Vec<StoredRecord>>;

    /// Deletes records of `partition` before offset `before`, as far as the backend
    /// can: in whole units of its storage (a file log's sealed segments), so it may
    /// delete fewer, and it never deletes a record at or after `before`. Returns how
    /// many records went. For topics whose old records are superseded (a plugin's
    /// snapshots). The default deletes nothing.
    ///
    /// Errors: `NotFound` (topic, or partition past the count).
    async fn trim(&self, topic: &TopicName, partition: u32, before: Offset) -> Result<u64> {
        let _ = before;
        let info = self.topic_info(topic).await?;
        let partitions = u32::try_from(info.partitions.len()).unwrap_or(u32::MAX);
        if partition >= partitions {
            return Err(LogError::no_such_partition(topic, partitions, partition));
        }
        Ok(0)
    }

    /// A new member of consumer group `group` on `topic`. Members of one group share the
    /// topic's partitions; each partition is read by one member at a time. A member
    /// starts on each partition right after the group's last commit.
    ///
    /// Errors: `NotFound` (topic), `Io`/`Backend`.
    async fn consumer(
        &self,
        topic: &TopicName,
        group: &GroupName,
        options: ConsumerOptions,
    ) -> Result<Box<dyn RecordConsumer>>;

    /// The groups that committed on `topic` and where.
    async fn groups(&self, topic: &TopicName) -> Result<Vec<GroupInfo>>;
}

/// One member of a consumer group, reading records. Every backend's is a
/// [`GroupConsumer`](group::GroupConsumer) over its [`GroupMember`](group::GroupMember).
///
/// Delivery is at-least-once: records polled but not committed are delivered again to
/// whoever next owns their partition (this member after a restart, or another member).
#[async_trait]
pub trait RecordConsumer: Send + fmt::Debug {
    /// The topic.
    fn topic(&self) -> &TopicName;

    /// The group.
    fn group(&self) -> &GroupName;

    /// Up to `max` records from the partitions this member owns, in offset order within
    /// each partition. Returns as soon as at least one record is available; waits up to
    /// `timeout` otherwise and then returns an empty batch. Never busy-waits.
    ///
    /// [`LogError::Corrupt`] means stored records are damaged. Where the backend knows
    /// the damaged offsets (the file log does), the member has moved past them when
    /// the error is returned: the next poll goes on after them, so a consumer reports
    /// the error and carries on, never stalling or going back.
    async fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<StoredRecord>>;

    /// Commits the current position of every owned partition: the group resumes after
    /// everything polled so far.
    async fn commit(&mut self) -> Result<()>;

    /// Commits `next_offset` (the next offset to read) for `partition`.
    ///
    /// Errors: `NotFound` (partition past the count), `NotAssigned` if this member
    /// does not own `partition`, `OffsetOutOfRange` past the high-water mark.
    async fn commit_offset(&mut self, partition: u32, next_offset: Offset) -> Result<()>;

    /// Moves the read position of every owned partition.
    ///
    /// Errors: `OffsetOutOfRange` if the position is outside a partition's records.
    async fn seek(&mut self, position: SeekPosition) -> Result<()>;

    /// Moves the read position of one owned partition.
    ///
    /// Errors: `NotFound` (partition past the count), `NotAssigned` if this member
    /// does not own `partition`, `OffsetOutOfRange` outside its records.
    async fn seek_partition(&mut self, partition: u32, position: SeekPosition) -> Result<()>;

    /// The partitions this member owns now (membership changes as members come and go).
    fn assignment(&self) -> Vec<u32>;

    /// The next offset this member will read from `partition`, if it owns it.
    fn position(&self, partition: u32) -> Option<Offset>;

    /// The group's committed next offset for `partition`, as the backend has it.
    /// Errors: `NotFound` (partition past the count).
    async fn committed(&self, partition: u32) -> Result<Option<Offset>>;
}
