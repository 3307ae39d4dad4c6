//! Consumer-group positions, written once for every backend: [`GroupConsumer`] keeps a
//! member's read positions, takes up new assignments, polls, commits, seeks and checks
//! what it is asked, over a [`GroupMember`] that does only the backend's part:
//! fetching records, reading and storing commits, and saying which partitions the
//! member owns.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::backend::{ConsumerOptions, RecordConsumer};
use crate::error::{LogError, Result};
use crate::name::{GroupName, TopicName};
use crate::position::{SeekPosition, StartFrom};
use crate::record::{Offset, StoredRecord, Watermarks};

/// The shortest wait between two reads of an idle member whose backend asks to be
/// read again ([`GroupMember::max_idle_interval`]); it doubles up to that interval.
const MIN_IDLE_INTERVAL: Duration = Duration::from_millis(1);

/// Which partitions a member owns, as [`GroupMember::assignment`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignment {
    /// The same as when last asked.
    Same,
    /// These partitions now. Those the member kept keep their read positions; new
    /// ones start after the group's commit; those given away are dropped, uncommitted.
    Changed(Vec<u32>),
    /// The member had to join its group anew (the server forgot it, or its connection
    /// was replaced) and owns these partitions: every read position starts again after
    /// the group's commit, so records polled and not committed come again.
    Rejoined(Vec<u32>),
}

/// What became of a [`GroupMember::store_commit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Stored, durable as the backend makes commits.
    Stored,
    /// Not stored: the partition had already moved to another member, which reads it
    /// again from the group's last commit. The next [`GroupMember::assignment`] says so.
    Moved,
}

/// A backend's part of one consumer-group member: the I/O that [`GroupConsumer`]
/// cannot do itself. Offsets are those of the member's topic.
#[async_trait]
pub trait GroupMember: Send + Sync + fmt::Debug + 'static {
    /// The partitions this member owns now, if they changed since the last call (the
    /// first call always answers `Changed` or `Rejoined`). A backend that must join
    /// its group again to answer does so here.
    async fn assignment(&mut self) -> Result<Assignment>;

    /// Up to `max` records of `partition` from offset `from` on (from the lowest held
    /// offset if `from` is below it). Never waits.
    async fn fetch(
        &mut self,
        partition: u32,
        from: Offset,
        max: usize,
    ) -> Result<Vec<StoredRecord>>;

    /// The offsets `partition` holds.
    async fn watermarks(&self, partition: u32) -> Result<Watermarks>;

    /// The first offset of `partition` whose record was appended at or after `time`,
    /// if there is one.
    async fn offset_for_timestamp(&self, partition: u32, time: Timestamp)
    -> Result<Option<Offset>>;

    /// The group's committed next offset for `partition`, as the backend has it.
    async fn load_commit(&self, partition: u32) -> Result<Option<Offset>>;

    /// Stores the group's committed next offset for `partition`.
    async fn store_commit(&mut self, partition: u32, next_offset: Offset) -> Result<CommitOutcome>;

    /// Notified (`notify_waiters`) after appends this member should wake for.
    fn append_signal(&self) -> Arc<Notify>;

    /// After a `fetch` from `from` failed with [`LogError::Corrupt`]: the offset after
    /// the damaged records that hold `from`, where the member resumes, if the backend
    /// knows it. The default knows none (the member then stays where it is).
    async fn resume_after_damage(&self, partition: u32, from: Offset) -> Result<Option<Offset>> {
        let _ = (partition, from);
        Ok(None)
    }

    /// The longest an idle poll waits before reading again without a signal, for
    /// backends whose signal does not see every append (another process's, on a
    /// server). The default, `None`, waits for the signal or the poll's timeout.
    fn max_idle_interval(&self) -> Option<Duration> {
        None
    }
}

/// A member of a consumer group over any backend's [`GroupMember`]: the one
/// implementation of [`RecordConsumer`].
pub struct GroupConsumer<M: GroupMember> {
    member: M,
    topic: TopicName,
    group: GroupName,
    partitions: u32,
    start: StartFrom,
    /// Owned partitions and the next offset to read from each.
    positions: BTreeMap<u32, Offset>,
    /// The group's commit as this member last stored or read it, per owned partition:
    /// an unchanged position is not committed again.
    committed: BTreeMap<u32, Offset>,
    signal: Arc<Notify>,
    /// Partition to read first on the next poll, so no partition starves.
    next_first: usize,
    /// Damage a poll stepped over while it had records to deliver: reported by the
    /// next poll.
    pending_damage: Option<LogError>,
}

impl<M: GroupMember> fmt::Debug for GroupConsumer<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("member", &self.member)
            .field("topic", &self.topic)
            .field("group", &self.group)
            .field("positions", &self.positions)
            .finish_non_exhaustive()
    }
}

impl<M: GroupMember> GroupConsumer<M> {
    /// The member `member` of `group` on `topic` (of `partitions` partitions),
    /// positioned on the partitions it owns.
    pub async fn new(
        member: M,
        topic: &TopicName,
        group: &GroupName,
        partitions: u32,
        options: ConsumerOptions,
    ) -> Result<Self> {
        let signal = member.append_signal();
        let mut consumer = GroupConsumer {
            member,
            topic: topic.clone(),
            group: group.clone(),
            partitions,
            start: options.start,
            positions: BTreeMap::new(),
            committed: BTreeMap::new(),
            signal,
            next_first: 0,
            pending_damage: None,
        };
        consumer.refresh_assignment().await?;
        Ok(consumer)
    }

    /// Takes up a new assignment if the member's partitions changed.
    async fn refresh_assignment(&mut self) -> Result<()> {
        let owned = match self.member.assignment().await? {
            Assignment::Same => return Ok(()),
            Assignment::Changed(owned) => owned,
            Assignment::Rejoined(owned) => {
                self.positions.clear();
                self.committed.clear();
                owned
            }
        };
        self.positions.retain(|p, _| owned.contains(p));
        self.committed.retain(|p, _| owned.contains(p));
        for partition in owned {
            if self.positions.contains_key(&partition) {
                continue;
            }
            let start = match self.member.load_commit(partition).await? {
                Some(next) => {
                    self.committed.insert(partition, next);
                    next
                }
                None => {
                    let marks = self.member.watermarks(partition).await?;
                    match self.start {
                        StartFrom::Beginning => marks.low,
                        StartFrom::End => marks.high,
                    }
                }
            };
            self.positions.insert(partition, start);
        }
        Ok(())
    }

    /// One round over the owned partitions, starting one further each time, until
    /// `max` records are read.
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
            let records = match self.member.fetch(partition, from, max - out.len()).await {
                Ok(records) => records,
                Err(error @ LogError::Corrupt { .. }) => {
                    // Step over the damaged records (never stall on them, never go
                    // back), and say so: now, or on the next poll if records came first.
                    if let Some(next) = self
                        .member
                        .resume_after_damage(partition, from)
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
            // A backend may answer from before `from`; those were delivered already.
            let fresh = records.into_iter().filter(|r| r.address.offset >= from);
            let before = out.len();
            out.extend(fresh);
            if let Some(last) = out[before..].last() {
                self.positions.insert(partition, last.address.offset + 1);
            }
        }
        Ok(out)
    }

    /// The offset `position` means on `partition`.
    async fn resolve(&self, partition: u32, position: SeekPosition) -> Result<Offset> {
        let marks = self.member.watermarks(partition).await?;
        if let Some(offset) = position.resolve_within(&self.topic, partition, marks)? {
            return Ok(offset);
        }
        let SeekPosition::Timestamp(time) = position else {
            unreachable!("only a time needs the backend");
        };
        let found = self.member.offset_for_timestamp(partition, time).await?;
        Ok(found.map_or(marks.high, |offset| offset.clamp(marks.low, marks.high)))
    }

    /// The error for a partition this member does not own: past the count, or owned
    /// by another member.
    fn not_owned(&self, partition: u32) -> LogError {
        if partition >= self.partitions {
            return LogError::no_such_partition(&self.topic, self.partitions, partition);
        }
        LogError::NotAssigned {
            topic: self.topic.to_string(),
            group: self.group.to_string(),
            partition,
        }
    }

    async fn store_commit(&mut self, partition: u32, next: Offset) -> Result<()> {
        match self.member.store_commit(partition, next).await? {
            CommitOutcome::Stored => {
                self.committed.insert(partition, next);
            }
            CommitOutcome::Moved => {}
        }
        Ok(())
    }
}

#[async_trait]
impl<M: GroupMember> RecordConsumer for GroupConsumer<M> {
    fn topic(&self) -> &TopicName {
        &self.topic
    }

    fn group(&self) -> &GroupName {
        &self.group
    }

    async fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<StoredRecord>> {
        if let Some(damage) = self.pending_damage.take() {
            return Err(damage);
        }
        let deadline = Instant::now() + timeout;
        let signal = Arc::clone(&self.signal);
        let idle = self.member.max_idle_interval();
        let mut interval = MIN_IDLE_INTERVAL;
        loop {
            // Created before reading, so an append that lands after the read wakes us.
            let mut appended = std::pin::pin!(signal.notified());
            appended.as_mut().enable();
            self.refresh_assignment().await?;
            let records = self.read_available(max.max(1)).await?;
            let now = Instant::now();
            if !records.is_empty() || now >= deadline {
                return Ok(records);
            }
            let wake = match idle {
                Some(_) => (now + interval).min(deadline),
                None => deadline,
            };
            // Timing out is the normal way an empty poll ends.
            if tokio::time::timeout_at(wake, appended).await.is_ok() {
                interval = MIN_IDLE_INTERVAL;
            } else if let Some(longest) = idle {
                interval = (interval * 2).min(longest);
            }
        }
    }

    async fn commit(&mut self) -> Result<()> {
        let positions: Vec<(u32, Offset)> = self.positions.iter().map(|(&p, &o)| (p, o)).collect();
        for (partition, next) in positions {
            if self.committed.get(&partition) != Some(&next) {
                self.store_commit(partition, next).await?;
            }
        }
        Ok(())
    }

    async fn commit_offset(&mut self, partition: u32, next_offset: Offset) -> Result<()> {
        if !self.positions.contains_key(&partition) {
            return Err(self.not_owned(partition));
        }
        let marks = self.member.watermarks(partition).await?;
        if next_offset > marks.high {
            return Err(LogError::OffsetOutOfRange {
                topic: self.topic.to_string(),
                partition,
                requested: format!("commit of offset {next_offset}"),
                low: marks.low,
                high: marks.high,
            });
        }
        self.store_commit(partition, next_offset).await
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
        self.member.load_commit(partition).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use bytes::Bytes;

    use super::*;
    use crate::record::RecordAddress;

    /// One partition of `records` numbered from 0, with a scripted assignment.
    #[derive(Debug, Default)]
    struct Scripted {
        records: u64,
        /// Answers of `assignment` still to give; then `Same`.
        answers: VecDeque<Assignment>,
        /// The group's commit.
        stored: Option<Offset>,
        /// Whether the next commit finds the partition moved to another member.
        moved: bool,
        store_calls: usize,
    }

    #[async_trait]
    impl GroupMember for Scripted {
        async fn assignment(&mut self) -> Result<Assignment> {
            Ok(self.answers.pop_front().unwrap_or(Assignment::Same))
        }

        async fn fetch(
            &mut self,
            partition: u32,
            from: Offset,
            max: usize,
        ) -> Result<Vec<StoredRecord>> {
            Ok((from..self.records)
                .take(max)
                .map(|offset| StoredRecord {
                    address: RecordAddress { partition, offset },
                    timestamp: Timestamp::UNIX_EPOCH,
                    key: None,
                    id: u128::from(offset),
                    payload: Bytes::new(),
                })
                .collect())
        }

        async fn watermarks(&self, _partition: u32) -> Result<Watermarks> {
            Ok(Watermarks {
                low: 0,
                high: self.records,
            })
        }

        async fn offset_for_timestamp(&self, _: u32, _: Timestamp) -> Result<Option<Offset>> {
            Ok(None)
        }

        async fn load_commit(&self, _partition: u32) -> Result<Option<Offset>> {
            Ok(self.stored)
        }

        async fn store_commit(&mut self, _: u32, next_offset: Offset) -> Result<CommitOutcome> {
            self.store_calls += 1;
            if std::mem::take(&mut self.moved) {
                return Ok(CommitOutcome::Moved);
            }
            self.stored = Some(next_offset);
            Ok(CommitOutcome::Stored)
        }

        fn append_signal(&self) -> Arc<Notify> {
            Arc::new(Notify::new())
        }
    }

    async fn consumer(member: Scripted) -> GroupConsumer<Scripted> {
        let topic = TopicName::new("t/x").unwrap();
        let group = GroupName::new("g").unwrap();
        GroupConsumer::new(member, &topic, &group, 1, ConsumerOptions::default())
            .await
            .unwrap()
    }

    fn offsets(records: &[StoredRecord]) -> Vec<Offset> {
        records.iter().map(|r| r.address.offset).collect()
    }

    #[tokio::test]
    async fn a_rejoined_member_reads_again_from_the_groups_commit() {
        let member = Scripted {
            records: 5,
            answers: VecDeque::from([Assignment::Changed(vec![0])]),
            ..Scripted::default()
        };
        let mut c = consumer(member).await;
        let got = c.poll(10, Duration::ZERO).await.unwrap();
        assert_eq!(offsets(&got), [0, 1, 2, 3, 4]);
        c.commit_offset(0, 2).await.unwrap();
        c.member.answers.push_back(Assignment::Changed(vec![0]));
        assert!(
            c.poll(10, Duration::ZERO).await.unwrap().is_empty(),
            "a partition kept keeps its position"
        );
        c.member.answers.push_back(Assignment::Rejoined(vec![0]));
        let again = c.poll(10, Duration::ZERO).await.unwrap();
        assert_eq!(
            offsets(&again),
            [2, 3, 4],
            "from the commit, after a rejoin"
        );
    }

    #[tokio::test]
    async fn a_commit_the_backend_did_not_store_is_tried_again() {
        let member = Scripted {
            records: 3,
            answers: VecDeque::from([Assignment::Changed(vec![0])]),
            ..Scripted::default()
        };
        let mut c = consumer(member).await;
        c.poll(10, Duration::ZERO).await.unwrap();
        c.member.moved = true;
        c.commit().await.unwrap();
        assert_eq!(c.member.stored, None, "the partition had moved");
        c.commit().await.unwrap();
        assert_eq!(c.member.stored, Some(3), "the next commit stores it");
        c.commit().await.unwrap();
        assert_eq!(
            c.member.store_calls, 2,
            "an unchanged position is not stored again"
        );
    }
}
