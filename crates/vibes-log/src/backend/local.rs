//! Consumer groups for backends whose data lives in this process's reach (memory,
//! local files): group membership within the process ([`GroupCoordinator`]) and a
//! [`GroupMember`] over any [`LocalStore`]; read positions, seek, commit and the
//! waiting poll are [`GroupConsumer`]'s, as for every backend.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use jiff::Timestamp;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::backend::ConsumerOptions;
use crate::backend::group::{Assignment, CommitOutcome, GroupConsumer, GroupMember};
use crate::error::{LogError, Result};
use crate::name::{GroupName, TopicName};
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
        return Err(LogError::EmptyBatch {
            topic: topic.to_string(),
        });
    }
    if let Some((i, r)) = records
        .iter()
        .enumerate()
        .find(|(_, r)| r.payload.len() > MAX_PAYLOAD_BYTES)
    {
        return Err(LogError::TooLarge {
            what: format!("the payload of record {i} of the batch for {topic}"),
            size: r.payload.len(),
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    Ok(())
}

/// What a local backend provides so that [`LocalMember`] can serve groups on it.
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

    /// Which partitions of `topic` the members of `group` in this process may read. The
    /// default, for a store no other process reads, is all of them; a store shared
    /// between processes hands each process a share ([`GroupShare`]).
    fn group_share(&self, topic: &TopicName, group: &GroupName) -> Result<Arc<dyn GroupShare>> {
        let _ = (topic, group);
        Ok(Arc::new(WholeTopic))
    }
}

/// The partitions of a topic that one process's members of a group may read: the
/// members in the process split these among themselves ([`Membership::assignment`]).
/// For a store that several processes use, each process holds a share, and shares
/// move when processes join, leave or die.
pub trait GroupShare: Send + Sync + fmt::Debug {
    /// A number that changes whenever the partitions held do. Asked on every poll, so
    /// cheap: no I/O (a store that watches other processes does so elsewhere).
    fn generation(&self) -> u64;

    /// The partitions held now (of `partitions`), in order; asked when the
    /// [`generation`](Self::generation) changed.
    fn held(&self, partitions: u32) -> Vec<u32>;

    /// Whether `partition` is still held: a commit to one given up is refused.
    fn holds(&self, partition: u32) -> bool;

    /// How long an idle member may go without asking [`generation`](Self::generation)
    /// again, for
    /// shares that change without this process knowing; `None` for those that do not.
    fn rescan_interval(&self) -> Option<std::time::Duration> {
        None
    }
}

/// Every partition: the share of the one process that uses a store.
#[derive(Debug)]
pub struct WholeTopic;

impl GroupShare for WholeTopic {
    fn generation(&self) -> u64 {
        0
    }

    fn held(&self, partitions: u32) -> Vec<u32> {
        (0..partitions).collect()
    }

    fn holds(&self, _partition: u32) -> bool {
        true
    }
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
    /// The current generation and this member's partitions in it, of the `held` ones
    /// (in order): with members sorted by join order, the member at index `i` of `n`
    /// owns the held partitions at positions `k` with `k % n == i` (with every
    /// partition held, partitions `p` with `p % n == i`).
    pub fn assignment(&self, held: &[u32]) -> (u64, Vec<u32>) {
        let groups = self.coordinator.groups.lock();
        let group = groups.get(&self.key).expect("a member's group exists");
        let n = group.members.len();
        let index = group
            .members
            .iter()
            .position(|&m| m == self.member)
            .expect("a live member is listed");
        let owned = held
            .iter()
            .enumerate()
            .filter(|(k, _)| k % n == index)
            .map(|(_, &p)| p)
            .collect();
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

/// The part of a consumer-group member a [`LocalStore`] does: fetching from the store,
/// its commits, and the assignment of the store's [`GroupCoordinator`]. The rest is
/// [`GroupConsumer`]'s.
pub struct LocalMember<S: LocalStore> {
    store: Arc<S>,
    topic: TopicName,
    group: GroupName,
    partitions: u32,
    membership: Membership,
    /// The partitions this process may read (dropped last: the membership leaves first).
    share: Arc<dyn GroupShare>,
    /// The generation of the group, and of the share, whose assignment was last taken up.
    generation: Option<(u64, u64)>,
    signal: Arc<Notify>,
}

impl<S: LocalStore> fmt::Debug for LocalMember<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalMember")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl<S: LocalStore> LocalMember<S> {
    /// Joins `group` on `topic` and positions the new member on its partitions.
    pub async fn join(
        store: Arc<S>,
        topic: &TopicName,
        group: &GroupName,
        options: ConsumerOptions,
    ) -> Result<GroupConsumer<LocalMember<S>>> {
        let partitions = store.partitions(topic)?;
        let signal = store.append_signal(topic)?;
        let share = store.group_share(topic, group)?;
        let membership = store.coordinator().join(topic, group);
        let member = LocalMember {
            store,
            topic: topic.clone(),
            group: group.clone(),
            partitions,
            membership,
            share,
            generation: None,
            signal,
        };
        GroupConsumer::new(member, topic, group, partitions, options).await
    }
}

#[async_trait]
impl<S: LocalStore> GroupMember for LocalMember<S> {
    async fn assignment(&mut self) -> Result<Assignment> {
        // The generation first: should the share change after it, the next poll sees
        // a new one and takes the assignment up again.
        let share_generation = self.share.generation();
        let now = (self.membership.generation(), share_generation);
        if self.generation == Some(now) {
            return Ok(Assignment::Same);
        }
        let held = self.share.held(self.partitions);
        let (generation, owned) = self.membership.assignment(&held);
        self.generation = Some((generation, share_generation));
        Ok(Assignment::Changed(owned))
    }

    async fn fetch(
        &mut self,
        partition: u32,
        from: Offset,
        max: usize,
    ) -> Result<Vec<StoredRecord>> {
        self.store.read(&self.topic, partition, from, max).await
    }

    async fn watermarks(&self, partition: u32) -> Result<Watermarks> {
        self.store.watermarks(&self.topic, partition).await
    }

    async fn offset_for_timestamp(
        &self,
        partition: u32,
        time: Timestamp,
    ) -> Result<Option<Offset>> {
        self.store
            .offset_for_timestamp(&self.topic, partition, time)
            .await
            .map(Some)
    }

    async fn load_commit(&self, partition: u32) -> Result<Option<Offset>> {
        self.store
            .load_commit(&self.topic, &self.group, partition)
            .await
    }

    async fn store_commit(&mut self, partition: u32, next_offset: Offset) -> Result<CommitOutcome> {
        if !self.share.holds(partition) {
            return Ok(CommitOutcome::Moved);
        }
        self.store
            .store_commit(&self.topic, &self.group, partition, next_offset)
            .await?;
        Ok(CommitOutcome::Stored)
    }

    fn append_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.signal)
    }

    fn max_idle_interval(&self) -> Option<std::time::Duration> {
        self.share.rescan_interval()
    }

    async fn resume_after_damage(&self, partition: u32, from: Offset) -> Result<Option<Offset>> {
        self.store
            .resume_after_damage(&self.topic, partition, from)
            .await
    }
}
