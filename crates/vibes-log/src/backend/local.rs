//! Consumer groups for backends whose data lives in this process's reach (memory,
//! local files): group membership, read positions, seek and the waiting poll are
//! written once here over [`LocalStore`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::backend::{ConsumerOptions, RecordConsumer};
use crate::error::{LogError, Result};
use crate::name::{GroupName, TopicName};
use crate::position::{SeekPosition, StartFrom};
use crate::record::{MAX_PAYLOAD_BYTES, Offset, Record, StoredRecord, Watermarks};

/// The append time for a new batch: now at microsecond precision, never before
/// `last`, so that times never decrease within a partition.
pub fn append_time(last: Option<Timestamp>) -> Timestamp {
    let now = Timestamp::now();
    let micros = Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now);
    match last {
        Some(last) if last > micros => last,
        _ => micros,
    }
}

/// Checks an append before anything of it is stored: the partition exists, the batch is
/// not empty, and no payload exceeds [`MAX_PAYLOAD_BYTES`].
pub fn validate_batch(
    topic: &TopicName,
    partitions: u32,
    partition: u32,
    records: &[Record],
) -> Result<()> {
    if partition >= partitions {
        return Err(LogError::no_such_partition(topic, partitions, partition));
    }
    if records.is_empty() {
        return Err(LogError::InvalidArgument(
            "an append needs at least one record".into(),
        ));
    }
    if let Some((i, r)) = records
        .iter()
        .enumerate()
        .find(|(_, r)| r.payload.len() > MAX_PAYLOAD_BYTES)
    {
        return Err(LogError::InvalidArgument(format!(
            "record {i} of the batch has a {} byte payload; at most {MAX_PAYLOAD_BYTES} are allowed",
            r.payload.len()
        )));
    }
    Ok(())
}

/// What a local backend provides so that [`LocalConsumer`] can serve groups on it.
#[async_trait]
pub trait LocalStore: Send + Sync + fmt::Debug + 'static {
    /// Partition count of `topic`. Errors: `NotFound`.
    fn partitions(&self, topic: &TopicName) -> Result<u32>;

    /// Up to `max` records of `partition` from offset `from` on (from the lowest held
    /// offset if `from` is below it). Never waits.
    async fn read(
        &self,
        topic: &TopicName,
        partition: u32,
        from: Offset,
        max: usize,
    ) -> Result<Vec<StoredRecord>>;

    /// The offsets `partition` holds.
    async fn watermarks(&self, topic: &TopicName, partition: u32) -> Result<Watermarks>;

    /// After a `read` from `from` failed with [`LogError::Corrupt`]: the offset after the
    /// damaged records that hold `from`, where a consumer resumes, if the store knows
    /// it. The default knows none (the consumer then stays where it is).
    async fn resume_after_damage(
        &self,
        _topic: &TopicName,
        _partition: u32,
        _from: Offset,
    ) -> Result<Option<Offset>> {
        Ok(None)
    }

    /// The first offset whose record was appended at or after `time`; the high-water
    /// mark if there is none.
    async fn offset_for_timestamp(
        &self,
        topic: &TopicName,
        partition: u32,
        time: Timestamp,
    ) -> Result<Offset>;

    /// The group's committed next offset for `partition`.
    async fn load_commit(
        &self,
        topic: &TopicName,
        group: &GroupName,
        partition: u32,
    ) -> Result<Option<Offset>>;

    /// Stores the group's committed next offset for `partition`; durable when it returns.
    async fn store_commit(
        &self,
        topic: &TopicName,
        group: &GroupName,
        partition: u32,
        next_offset: Offset,
    ) -> Result<()>;

    /// A signal notified (`notify_waiters`) after every append to `topic` that this
    /// store learns of, including appends by other processes if the store can see them.
    fn append_signal(&self, topic: &TopicName) -> Result<Arc<Notify>>;

    /// The group membership registry of this store.
    fn coordinator(&self) -> &Arc<GroupCoordinator>;
}

/// Group membership within one process: members of a group split the topic's
/// partitions; every join or leave starts a new generation with a new assignment.
#[derive(Debug, Default)]
pub struct GroupCoordinator {
    groups: Mutex<HashMap<(TopicName, GroupName), GroupMembers>>,
    next_member: AtomicU64,
}

#[derive(Debug, Default)]
struct GroupMembers {
    generation: u64,
    members: BTreeSet<u64>,
}

impl GroupCoordinator {
    /// Adds a member to `group` on `topic`.
    pub fn join(self: &Arc<Self>, topic: &TopicName, group: &GroupName) -> Membership {
        let member = self.next_member.fetch_add(1, Ordering::Relaxed);
        let key = (topic.clone(), group.clone());
        let mut groups = self.groups.lock();
        let entry = groups.entry(key.clone()).or_default();
        entry.generation += 1;
        entry.members.insert(member);
        Membership {
            coordinator: Arc::clone(self),
            key,
            member,
        }
    }

    /// Number of live members of `group` on `topic`.
    pub fn members(&self, topic: &TopicName, group: &GroupName) -> usize {
        self.groups
            .lock()
            .get(&(topic.clone(), group.clone()))
            .map_or(0, |g| g.members.len())
    }
}

/// One member's place in a group; leaving happens on drop.
#[derive(Debug)]
pub struct Membership {
    coordinator: Arc<GroupCoordinator>,
    key: (TopicName, GroupName),
    member: u64,
}

impl Membership {
    /// The current generation and this member's partitions in it: with members sorted
    /// by join order, the member at index `i` of `n` owns partitions `p` with
    /// `p % n == i`.
    pub fn assignment(&self, partitions: u32) -> (u64, Vec<u32>) {
        let groups = self.coordinator.groups.lock();
        let group = groups.get(&self.key).expect("a member's group exists");
        let n = group.members.len() as u32;
        let index = group
            .members
            .iter()
            .position(|&m| m == self.member)
            .expect("a live member is listed") as u32;
        let owned = (0..partitions).filter(|p| p % n == index).collect();
        (group.generation, owned)
    }

    fn generation(&self) -> u64 {
        let groups = self.coordinator.groups.lock();
        groups.get(&self.key).map_or(0, |g| g.generation)
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut groups = self.coordinator.groups.lock();
        if let Some(group) = groups.get_mut(&self.key) {
            group.members.remove(&self.member);
            group.generation += 1;
            if group.members.is_empty() {
                groups.remove(&self.key);
            }
        }
    }
}

/// A consumer-group member over a [`LocalStore`].
pub struct LocalConsumer<S: LocalStore> {
    store: Arc<S>,
    topic: TopicName,
    group: GroupName,
    partitions: u32,
    options: ConsumerOptions,
    membership: Membership,
    generation: u64,
    /// Owned partitions and the next offset to read from each.
    positions: BTreeMap<u32, Offset>,
    /// What this member last committed, to skip rewriting unchanged commits.
    committed: BTreeMap<u32, Offset>,
    signal: Arc<Notify>,
    /// Partition to read first on the next poll, so no partition starves.
    next_first: usize,
    /// Damage a poll stepped over while it had records to deliver: reported by the
    /// next poll.
    pending_damage: Option<LogError>,
}

impl<S: LocalStore> fmt::Debug for LocalConsumer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalConsumer")
            .field("topic", &self.topic)
            .field("group", &self.group)
            .field("positions", &self.positions)
            .finish_non_exhaustive()
    }
}

impl<S: LocalStore> LocalConsumer<S> {
    /// Joins `group` on `topic` and positions the member on its partitions.
    pub async fn new(
        store: Arc<S>,
        topic: &TopicName,
        group: &GroupName,
        options: ConsumerOptions,
    ) -> Result<Self> {
        let partitions = store.partitions(topic)?;
        let signal = store.append_signal(topic)?;
        let membership = store.coordinator().join(topic, group);
        let mut consumer = LocalConsumer {
            store,
            topic: topic.clone(),
            group: group.clone(),
            partitions,
            options,
            membership,
            generation: 0,
            positions: BTreeMap::new(),
            committed: BTreeMap::new(),
            signal,
            next_first: 0,
            pending_damage: None,
        };
        consumer.refresh_assignment().await?;
        Ok(consumer)
    }

    /// Takes up a new assignment if the group changed: newly owned partitions start
    /// after the group's commit; partitions given away are dropped, uncommitted.
    async fn refresh_assignment(&mut self) -> Result<()> {
        if self.membership.generation() == self.generation {
            return Ok(());
        }
        let (generation, owned) = self.membership.assignment(self.partitions);
        self.positions.retain(|p, _| owned.contains(p));
        self.committed.retain(|p, _| owned.contains(p));
        for partition in owned {
            if self.positions.contains_key(&partition) {
                continue;
            }
            let start = match self
                .store
                .load_commit(&self.topic, &self.group, partition)
                .await?
            {
                Some(next) => {
                    self.committed.insert(partition, next);
                    next
                }
                None => {
                    let marks = self.store.watermarks(&self.topic, partition).await?;
                    match self.options.start {
                        StartFrom::Beginning => marks.low,
                        StartFrom::End => marks.high,
                    }
                }
            };
            self.positions.insert(partition, start);
        }
        self.generation = generation;
        Ok(())
    }

    async fn read_available(&mut self, max: usize) -> Result<Vec<StoredRecord>> {
        let owned: Vec<u32> = self.positions.keys().copied().collect();
        let mut out = Vec::new();
        if owned.is_empty() {
            return Ok(out);
        }
        let first = self.next_first % owned.len();
        self.next_first = self.next_first.wrapping_add(1);
        for &partition in owned[first..].iter().chain(&owned[..first]) {
            if out.len() >= max {
                break;
            }
            let from = self.positions[&partition];
            let records = match self
                .store
                .read(&self.topic, partition, from, max - out.len())
                .await
            {
                Ok(records) => records,
                Err(error @ LogError::Corrupt { .. }) => {
                    // Step over the damaged records (never stall on them, never go
                    // back), and say so: now, or on the next poll if records came first.
                    if let Some(next) = self
                        .store
                        .resume_after_damage(&self.topic, partition, from)
                        .await?
                        .filter(|&next| next > from)
                    {
                        self.positions.insert(partition, next);
                    }
                    if out.is_empty() {
                        return Err(error);
                    }
                    self.pending_damage = Some(error);
                    break;
                }
                Err(error) => return Err(error),
            };
            if let Some(last) = records.last() {
                self.positions.insert(partition, last.address.offset + 1);
            }
            out.extend(records);
        }
        Ok(out)
    }

    async fn resolve(&self, partition: u32, position: SeekPosition) -> Result<Offset> {
        let marks = self.store.watermarks(&self.topic, partition).await?;
        match (
            position.resolve_within(&self.topic, partition, marks)?,
            position,
        ) {
            (Some(offset), _) => Ok(offset),
            (None, SeekPosition::Timestamp(time)) => {
                self.store
                    .offset_for_timestamp(&self.topic, partition, time)
                    .await
            }
            (None, _) => unreachable!("only a time needs the backend"),
        }
    }

    fn not_owned(&self, partition: u32) -> LogError {
        LogError::InvalidArgument(format!(
            "partition {partition} of {} is not assigned to this member of group `{}`",
            self.topic, self.group
        ))
    }
}

#[async_trait]
impl<S: LocalStore> RecordConsumer for LocalConsumer<S> {
    fn topic(&self) -> &TopicName {
        &self.topic
    }

    fn group(&self) -> &GroupName {
        &self.group
    }

    async fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<StoredRecord>> {
        let deadline = Instant::now() + timeout;
        let signal = Arc::clone(&self.signal);
        if let Some(damage) = self.pending_damage.take() {
            return Err(damage);
        }
        loop {
            // Armed before reading, so an append that lands after the read wakes us.
            let appended = signal.notified();
            self.refresh_assignment().await?;
            let records = self.read_available(max.max(1)).await?;
            if !records.is_empty() {
                return Ok(records);
            }
            if Instant::now() >= deadline {
                return Ok(records);
            }
            // Timing out is the normal way an empty poll ends.
            let _ = tokio::time::timeout_at(deadline, appended).await;
        }
    }

    async fn commit(&mut self) -> Result<()> {
        let positions: Vec<(u32, Offset)> = self.positions.iter().map(|(&p, &o)| (p, o)).collect();
        for (partition, next) in positions {
            if self.committed.get(&partition) == Some(&next) {
                continue;
            }
            self.store
                .store_commit(&self.topic, &self.group, partition, next)
                .await?;
            self.committed.insert(partition, next);
        }
        Ok(())
    }

    async fn commit_offset(&mut self, partition: u32, next_offset: Offset) -> Result<()> {
        if !self.positions.contains_key(&partition) {
            return Err(self.not_owned(partition));
        }
        let marks = self.store.watermarks(&self.topic, partition).await?;
        if next_offset > marks.high {
            return Err(LogError::OffsetOutOfRange {
                topic: self.topic.to_string(),
                partition,
                requested: format!("commit of offset {next_offset}"),
                low: marks.low,
                high: marks.high,
            });
        }
        self.store
            .store_commit(&self.topic, &self.group, partition, next_offset)
            .await?;
        self.committed.insert(partition, next_offset);
        Ok(())
    }

    async fn seek(&mut self, position: SeekPosition) -> Result<()> {
        self.refresh_assignment().await?;
        // Resolve every partition first, so that an error leaves all positions as
        // they were.
        let mut resolved = Vec::with_capacity(self.positions.len());
        for &partition in self.positions.keys() {
            resolved.push((partition, self.resolve(partition, position).await?));
        }
        self.positions.extend(resolved);
        Ok(())
    }

    async fn seek_partition(&mut self, partition: u32, position: SeekPosition) -> Result<()> {
        self.refresh_assignment().await?;
        if !self.positions.contains_key(&partition) {
            return Err(self.not_owned(partition));
        }
        let offset = self.resolve(partition, position).await?;
        self.positions.insert(partition, offset);
        Ok(())
    }

    fn assignment(&self) -> Vec<u32> {
        self.positions.keys().copied().collect()
    }

    fn position(&self, partition: u32) -> Option<Offset> {
        self.positions.get(&partition).copied()
    }

    async fn committed(&self, partition: u32) -> Result<Option<Offset>> {
        if partition >= self.partitions {
            return Err(LogError::no_such_partition(
                &self.topic,
                self.partitions,
                partition,
            ));
        }
        self.store
            .load_commit(&self.topic, &self.group, partition)
            .await
    }
}
