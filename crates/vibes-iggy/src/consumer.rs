//! [`IggyConsumer`]: a member of a real Iggy consumer group.
//!
//! Each member has its own connection (Iggy tracks membership per client), joins the
//! group, and reads only the partitions the server assigns it. It reads by offset from
//! positions it keeps itself, so records polled and not committed are delivered again
//! after a restart; a commit stores the group's offset on the server (Iggy stores the
//! last consumed offset, so a commit of next offset `n` is stored as `n - 1`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use iggy::prelude::{
    Client, Consumer, ConsumerGroupClient, ConsumerGroupDetails, ConsumerOffsetClient, Identifier,
    IggyClient, IggyError, IggyTimestamp, MessageClient, PollingStrategy,
};
use vibes_log::backend::{RecordConsumer, StoredRecord};
use vibes_log::{ConsumerOptions, GroupName, LogError, Offset, SeekPosition, StartFrom, TopicName};

use crate::error::{from_iggy, is_member_lost};
use crate::log::{Shared, stored_record, stream_id, topic_id};

/// The shortest wait between polls of an idle consumer; it doubles up to the log's
/// `max_poll_interval`.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(1);

/// One member of an Iggy consumer group.
pub(crate) struct IggyConsumer {
    shared: Arc<Shared>,
    /// The member's own connection; `None` once shut down.
    client: Option<IggyClient>,
    topic: TopicName,
    group: GroupName,
    stream_id: Identifier,
    topic_id: Identifier,
    group_id: Identifier,
    partitions: u32,
    start: StartFrom,
    /// Next offset to read, per owned partition.
    positions: BTreeMap<u32, Offset>,
    /// The group's commit as last stored or read, per owned partition.
    committed: BTreeMap<u32, Option<Offset>>,
    /// The group's members and their partitions when the assignment was last learned.
    layout: Vec<Vec<u32>>,
    /// Where the next poll starts its round over the owned partitions.
    next_partition: usize,
}

impl fmt::Debug for IggyConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IggyConsumer")
            .field("topic", &self.topic)
            .field("group", &self.group)
            .field("positions", &self.positions)
            .finish_non_exhaustive()
    }
}

impl IggyConsumer {
    /// Connects, creates the group if needed and joins it.
    pub(crate) async fn join(
        shared: Arc<Shared>,
        topic: &TopicName,
        group: &GroupName,
        options: ConsumerOptions,
    ) -> Result<IggyConsumer, LogError> {
        let partitions = shared.partition_count(topic).await?;
        let client = shared.connection.connect().await?;
        let mut consumer = IggyConsumer {
            stream_id: stream_id(topic)?,
            topic_id: topic_id(topic)?,
            group_id: Identifier::named(group.as_str())
                .map_err(|e| from_iggy(e, format!("group name {group}")))?,
            shared,
            client: Some(client),
            topic: topic.clone(),
            group: group.clone(),
            partitions,
            start: options.start,
            positions: BTreeMap::new(),
            committed: BTreeMap::new(),
            layout: Vec::new(),
            next_partition: 0,
        };
        if let Err(e) = consumer.enter_group().await {
            consumer.close().await;
            return Err(e);
        }
        Ok(consumer)
    }

    fn client(&self) -> Result<&IggyClient, LogError> {
        self.client.as_ref().ok_or(LogError::Closed)
    }

    fn group_consumer(&self) -> Consumer {
        Consumer::group(self.group_id.clone())
    }

    /// Creates the group if it does not exist, joins it and learns the assignment.
    async fn enter_group(&mut self) -> Result<(), LogError> {
        let client = self.client()?;
        match client
            .create_consumer_group(&self.stream_id, &self.topic_id, self.group.as_str())
            .await
        {
            Ok(_) | Err(IggyError::ConsumerGroupNameAlreadyExists(..)) => {}
            Err(e) => {
                return Err(from_iggy(
                    e,
                    format!("creating consumer group {} on {}", self.group, self.topic),
                ));
            }
        }
        client
            .join_consumer_group(&self.stream_id, &self.topic_id, &self.group_id)
            .await
            .map_err(|e| from_iggy(e, format!("joining consumer group {}", self.group)))?;
        self.refresh_assignment().await
    }

    /// Asks the server which partitions this member owns, and starts reading newly
    /// owned ones after the group's commit (or where `start` says).
    async fn refresh_assignment(&mut self) -> Result<(), LogError> {
        let details = self.group_details().await?;
        self.layout = layout_of(&details);
        let owned = self.discover_assignment(details).await?;
        self.positions.retain(|p, _| owned.contains(p));
        self.committed.retain(|p, _| owned.contains(p));
        for p in owned {
            if self.positions.contains_key(&p) {
                continue;
            }
            let committed = self.load_commit(p).await?;
            let position = match committed {
                Some(next) => next,
                None => {
                    let marks = self.shared.watermarks(&self.topic, p).await?;
                    match self.start {
                        StartFrom::Beginning => marks.low,
                        StartFrom::End => marks.high,
                    }
                }
            };
            self.positions.insert(p, position);
            self.committed.insert(p, committed);
        }
        Ok(())
    }

    /// The partitions the server assigns this member.
    ///
    /// Iggy reports members without saying which one is the caller, so the member is
    /// found by the partitions the server picks for it: a poll without a partition
    /// (asking for an offset past the end, so nothing is read) answers with the next
    /// partition of the caller's, round robin.
    async fn discover_assignment(
        &self,
        details: ConsumerGroupDetails,
    ) -> Result<BTreeSet<u32>, LogError> {
        let client = self.client()?;
        let members = details.members;
        if members.len() == 1 {
            return Ok(members[0].partitions.iter().copied().collect());
        }
        let mut picked = BTreeSet::new();
        let mut zero_or_none = false;
        for _ in 0..self.partitions {
            let polled = client
                .poll_messages(
                    &self.stream_id,
                    &self.topic_id,
                    None,
                    &self.group_consumer(),
                    &PollingStrategy::offset(u64::MAX),
                    1,
                    false,
                )
                .await
                .map_err(|e| from_iggy(e, format!("polling {}", self.topic)))?;
            // (0, 0) is both "no partition" and "partition 0, at most one record".
            if polled.partition_id == 0 && polled.current_offset == 0 {
                zero_or_none = true;
            } else {
                picked.insert(polled.partition_id);
            }
        }
        let member_with = |p: u32| members.iter().find(|m| m.partitions.contains(&p));
        if let Some(member) = picked.iter().find_map(|p| member_with(*p)) {
            return Ok(member.partitions.iter().copied().collect());
        }
        if zero_or_none && let Some(member) = member_with(0) {
            // Partition 0 holds at most one record: ours if we may read it.
            let probe = client
                .poll_messages(
                    &self.stream_id,
                    &self.topic_id,
                    Some(0),
                    &self.group_consumer(),
                    &PollingStrategy::offset(0),
                    1,
                    false,
                )
                .await
                .map_err(|e| from_iggy(e, format!("polling {}", self.topic)))?;
            if !probe.messages.is_empty() {
                return Ok(member.partitions.iter().copied().collect());
            }
        }
        Ok(BTreeSet::new())
    }

    async fn group_details(&self) -> Result<ConsumerGroupDetails, LogError> {
        self.client()?
            .get_consumer_group(&self.stream_id, &self.topic_id, &self.group_id)
            .await
            .map_err(|e| from_iggy(e, format!("reading consumer group {}", self.group)))?
            .ok_or_else(|| LogError::NotFound {
                what: format!("consumer group {} of {}", self.group, self.topic),
            })
    }

    /// Asks for the assignment again if the group's members or their partitions
    /// changed since it was last learned.
    async fn follow_rebalance(&mut self) -> Result<(), LogError> {
        let details = self.group_details().await?;
        if details.members.is_empty() {
            return Err(LogError::Backend {
                message: format!("consumer group {} has no members", self.group),
                transient: true,
                source: Some(Box::new(IggyError::StaleClient)),
            });
        }
        if layout_of(&details) != self.layout {
            self.refresh_assignment().await?;
        }
        Ok(())
    }

    async fn load_commit(&self, partition: u32) -> Result<Option<Offset>, LogError> {
        let info = self
            .client()?
            .get_consumer_offset(
                &self.group_consumer(),
                &self.stream_id,
                &self.topic_id,
                Some(partition),
            )
            .await
            .map_err(|e| from_iggy(e, format!("reading the commit of group {}", self.group)))?;
        Ok(info.map(|i| i.stored_offset + 1))
    }

    async fn store_commit(&mut self, partition: u32, next: Offset) -> Result<(), LogError> {
        if self.committed.get(&partition) == Some(&Some(next)) {
            return Ok(());
        }
        let client = self.client()?;
        let consumer = self.group_consumer();
        let result = if next == 0 {
            // Iggy stores the last consumed offset; "nothing consumed" is no offset.
            match client
                .delete_consumer_offset(&consumer, &self.stream_id, &self.topic_id, Some(partition))
                .await
            {
                Err(IggyError::ConsumerOffsetNotFound(_)) => Ok(()),
                other => other,
            }
        } else {
            client
                .store_consumer_offset(
                    &consumer,
                    &self.stream_id,
                    &self.topic_id,
                    Some(partition),
                    next - 1,
                )
                .await
        };
        match result {
            Ok(()) => {
                self.committed.insert(partition, (next > 0).then_some(next));
                Ok(())
            }
            Err(IggyError::NotResolvedConsumer(_)) => {
                // The partition moved to another member since it was read here; its
                // new owner reads again from the group's last commit.
                tracing::warn!(
                    topic = %self.topic, group = %self.group, partition,
                    "commit skipped: the partition now belongs to another member"
                );
                self.layout.clear();
                Ok(())
            }
            Err(e) => Err(from_iggy(
                e,
                format!(
                    "committing group {} on {} partition {partition}",
                    self.group, self.topic
                ),
            )),
        }
    }

    fn not_owned(&self, partition: u32) -> LogError {
        if partition >= self.partitions {
            return LogError::no_such_partition(&self.topic, self.partitions, partition);
        }
        LogError::InvalidArgument(format!(
            "partition {partition} of {} is not assigned to this member of group {}",
            self.topic, self.group
        ))
    }

    async fn resolve(&self, partition: u32, position: SeekPosition) -> Result<Offset, LogError> {
        let marks = self.shared.watermarks(&self.topic, partition).await?;
        if let Some(offset) = position.resolve_within(&self.topic, partition, marks)? {
            return Ok(offset);
        }
        let SeekPosition::Timestamp(t) = position else {
            unreachable!("only a time needs the server");
        };
        let micros = u64::try_from(t.as_microsecond()).unwrap_or(0);
        let found = self
            .shared
            .read(
                &self.topic,
                partition,
                PollingStrategy::timestamp(IggyTimestamp::from(micros)),
                1,
            )
            .await?;
        Ok(found
            .first()
            .map_or(marks.high, |m| m.header.offset.max(marks.low)))
    }

    /// Replaces this member's connection and joins the group again; reading resumes
    /// from the group's commits.
    async fn reconnect(&mut self) -> Result<(), LogError> {
        let fresh = self.shared.connection.connect().await?;
        if let Some(old) = self.client.replace(fresh) {
            tokio::spawn(async move {
                let _ = old.shutdown().await;
            });
        }
        self.positions.clear();
        self.committed.clear();
        self.enter_group().await
    }

    /// Leaves the group and closes the connection.
    async fn close(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = client
                .leave_consumer_group(&self.stream_id, &self.topic_id, &self.group_id)
                .await;
            let _ = client.shutdown().await;
        }
    }

    /// One round over the owned partitions; the records of the first that has any.
    async fn poll_once(&mut self, max: u32) -> Result<Vec<StoredRecord>, LogError> {
        let owned: Vec<u32> = self.positions.keys().copied().collect();
        for i in 0..owned.len() {
            let p = owned[(self.next_partition + i) % owned.len()];
            let position = self.positions[&p];
            let polled = self
                .client()?
                .poll_messages(
                    &self.stream_id,
                    &self.topic_id,
                    Some(p),
                    &self.group_consumer(),
                    &PollingStrategy::offset(position),
                    max,
                    false,
                )
                .await;
            let polled = match polled {
                Ok(polled) => polled,
                Err(IggyError::ConsumerGroupMemberNotFound(..)) => {
                    // The server forgot this member (a reconnect, a restart): join again.
                    self.positions.clear();
                    self.committed.clear();
                    self.enter_group().await?;
                    return Ok(Vec::new());
                }
                Err(e) => {
                    return Err(from_iggy(
                        e,
                        format!("polling {} partition {p}", self.topic),
                    ));
                }
            };
            let records: Vec<StoredRecord> = polled
                .messages
                .into_iter()
                .filter(|m| m.header.offset >= position)
                .map(|m| stored_record(p, m))
                .collect();
            if let Some(last) = records.last() {
                self.positions.insert(p, last.address.offset + 1);
                self.next_partition = (self.next_partition + i + 1) % owned.len();
                return Ok(records);
            }
        }
        Ok(Vec::new())
    }
}

#[async_trait]
impl RecordConsumer for IggyConsumer {
    fn topic(&self) -> &TopicName {
        &self.topic
    }

    fn group(&self) -> &GroupName {
        &self.group
    }

    async fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<StoredRecord>, LogError> {
        let max = u32::try_from(max.max(1)).unwrap_or(u32::MAX);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut interval = MIN_POLL_INTERVAL;
        loop {
            if let Err(e) = self.follow_rebalance().await {
                if is_member_lost(&e) {
                    // The server forgot this member (it restarted, or the connection
                    // was re-established): join again and resume from the commits.
                    tracing::info!(topic = %self.topic, group = %self.group, "rejoining the consumer group");
                    self.positions.clear();
                    self.committed.clear();
                    self.enter_group().await?;
                } else if e.is_transient() {
                    // A connection the SDK did not bring back: replace it, then rejoin.
                    self.reconnect().await.map_err(|_| e)?;
                } else {
                    return Err(e);
                }
            }
            // Armed before reading, so an append in between is not missed.
            let shared = Arc::clone(&self.shared);
            let appended = shared.appended.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            let records = self.poll_once(max).await?;
            if !records.is_empty() {
                return Ok(records);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let wake = (now + interval).min(deadline);
            tokio::select! {
                () = appended => interval = MIN_POLL_INTERVAL,
                () = tokio::time::sleep_until(wake) => {
                    interval = (interval * 2).min(self.shared.options.max_poll_interval);
                }
            }
        }
    }

    async fn commit(&mut self) -> Result<(), LogError> {
        let positions: Vec<(u32, Offset)> = self.positions.iter().map(|(p, o)| (*p, *o)).collect();
        for (partition, next) in positions {
            self.store_commit(partition, next).await?;
        }
        Ok(())
    }

    async fn commit_offset(&mut self, partition: u32, next_offset: Offset) -> Result<(), LogError> {
        if !self.positions.contains_key(&partition) {
            return Err(self.not_owned(partition));
        }
        let marks = self.shared.watermarks(&self.topic, partition).await?;
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

    async fn seek(&mut self, position: SeekPosition) -> Result<(), LogError> {
        let owned: Vec<u32> = self.positions.keys().copied().collect();
        let mut resolved = Vec::with_capacity(owned.len());
        for p in owned {
            resolved.push((p, self.resolve(p, position).await?));
        }
        for (p, offset) in resolved {
            self.positions.insert(p, offset);
        }
        Ok(())
    }

    async fn seek_partition(
        &mut self,
        partition: u32,
        position: SeekPosition,
    ) -> Result<(), LogError> {
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

    async fn committed(&self, partition: u32) -> Result<Option<Offset>, LogError> {
        if partition >= self.partitions {
            return Err(LogError::no_such_partition(
                &self.topic,
                self.partitions,
                partition,
            ));
        }
        self.load_commit(partition).await
    }
}

impl Drop for IggyConsumer {
    fn drop(&mut self) {
        // The SDK client has no Drop: leave the group and close the connection on the
        // runtime, so the server hands this member's partitions to the others.
        if let Some(client) = self.client.take() {
            let (stream_id, topic_id, group_id) = (
                self.stream_id.clone(),
                self.topic_id.clone(),
                self.group_id.clone(),
            );
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn(async move {
                        let _ = client
                            .leave_consumer_group(&stream_id, &topic_id, &group_id)
                            .await;
                        let _ = client.shutdown().await;
                    });
                }
                // Outside a runtime nothing can run the goodbye; the server drops the
                // member when the connection closes, at the latest when the process ends.
                Err(_) => tracing::debug!(
                    "an Iggy consumer was dropped outside a runtime; its connection closes when the process exits"
                ),
            }
        }
    }
}

/// Members and their partitions, in a comparable form.
fn layout_of(details: &ConsumerGroupDetails) -> Vec<Vec<u32>> {
    let mut layout: Vec<Vec<u32>> = details
        .members
        .iter()
        .map(|m| {
            let mut partitions = m.partitions.clone();
            partitions.sort_unstable();
            partitions
        })
        .collect();
    layout.sort();
    layout
}
