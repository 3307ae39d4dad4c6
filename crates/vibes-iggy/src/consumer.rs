//! [`IggyMember`]: the Iggy part of a member of a real Iggy consumer group; read
//! positions, polling, commits and seeks are vibes-log's
//! [`GroupConsumer`](vibes_log::backend::group::GroupConsumer).
//!
//! Each member has its own connection (Iggy tracks membership per client), joins the
//! group, and reads only the partitions the server assigns it. It reads by offset from
//! positions the group consumer keeps, so records polled and not committed are
//! delivered again after a restart; a commit stores the group's offset on the server
//! (Iggy stores the last consumed offset, so a commit of next offset `n` is stored as
//! `n - 1`).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use iggy::prelude::{
    Client, Consumer, ConsumerGroupClient, ConsumerGroupDetails, ConsumerOffsetClient, Identifier,
    IggyClient, IggyError, IggyTimestamp, MessageClient, PollingStrategy,
};
use jiff::Timestamp;
use tokio::sync::Notify;
use vibes_log::backend::StoredRecord;
use vibes_log::backend::group::{Assignment, CommitOutcome, GroupConsumer, GroupMember};
use vibes_log::{ConsumerOptions, GroupName, LogError, Missing, Offset, TopicName, Watermarks};

use crate::error::{from_iggy, is_member_lost};
use crate::shared::{Shared, stored_record, stream_id, topic_id};

/// The Iggy part of one member of an Iggy consumer group.
pub(crate) struct IggyMember {
    shared: Arc<Shared>,
    /// The member's own connection; `None` once shut down.
    client: Option<IggyClient>,
    topic: TopicName,
    group: GroupName,
    stream_id: Identifier,
    topic_id: Identifier,
    group_id: Identifier,
    partitions: u32,
    /// The group's members and their partitions when the assignment was last learned;
    /// empty when it must be learned again.
    layout: Vec<Vec<u32>>,
    /// Set when the server no longer knows this member: the next assignment joins
    /// the group again.
    lost: bool,
    /// When the group was last looked at, and the log's membership count then: a
    /// poll asks the server again only after `max_poll_interval`, or at once when a
    /// member joined or left through the same log.
    looked: Option<(u64, std::time::Instant)>,
}

impl fmt::Debug for IggyMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IggyMember")
            .field("topic", &self.topic)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl IggyMember {
    /// Connects, creates the group if needed, joins it, and positions the new member
    /// on the partitions the server assigns it.
    pub(crate) async fn join(
        shared: Arc<Shared>,
        topic: &TopicName,
        group: &GroupName,
        options: ConsumerOptions,
    ) -> Result<GroupConsumer<IggyMember>, LogError> {
        let partitions = shared.partition_count(topic).await?;
        let client = shared.connection.connect().await?;
        let mut member = IggyMember {
            stream_id: stream_id(topic)?,
            topic_id: topic_id(topic)?,
            group_id: Identifier::named(group.as_str())
                .map_err(|e| from_iggy(e, format!("group name {group}")))?,
            shared,
            client: Some(client),
            topic: topic.clone(),
            group: group.clone(),
            partitions,
            layout: Vec::new(),
            lost: false,
            looked: None,
        };
        if let Err(e) = member.enter_group().await {
            member.close().await;
            return Err(e);
        }
        GroupConsumer::new(member, topic, group, partitions, options).await
    }

    fn client(&self) -> Result<&IggyClient, LogError> {
        self.client.as_ref().ok_or(LogError::Closed)
    }

    fn group_consumer(&self) -> Consumer {
        Consumer::group(self.group_id.clone())
    }

    /// Creates the group if it does not exist and joins it; the assignment is learned
    /// anew on the next [`GroupMember::assignment`].
    async fn enter_group(&mut self) -> Result<(), LogError> {
        self.layout.clear();
        self.lost = false;
        self.looked = None;
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
        self.shared.membership.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// The partitions the server assigns this member, if the group's members or their
    /// partitions changed since they were last learned.
    async fn follow_rebalance(&mut self) -> Result<Option<BTreeSet<u32>>, LogError> {
        let membership = self.shared.membership.load(Ordering::Acquire);
        if let Some((seen, at)) = self.looked
            && seen == membership
            && !self.layout.is_empty()
            && at.elapsed() < self.shared.options.max_poll_interval
        {
            // Another process's member joining or leaving is seen within that time;
            // until then a poll of a partition that moved reads records again (at
            // least once), and their commit is refused by the server.
            return Ok(None);
        }
        self.looked = Some((membership, std::time::Instant::now()));
        let details = self.group_details().await?;
        if details.members.is_empty() {
            return Err(LogError::Backend {
                message: format!("consumer group {} has no members", self.group),
                transient: true,
                source: Some(Box::new(IggyError::StaleClient)),
            });
        }
        let layout = layout_of(&details);
        if layout == self.layout {
            return Ok(None);
        }
        Ok(Some(self.learn(layout, details).await?))
    }

    /// The partitions `details` give this member; `layout` is remembered only if that
    /// could be told, so that the next assignment asks again if not.
    async fn learn(
        &mut self,
        layout: Vec<Vec<u32>>,
        details: ConsumerGroupDetails,
    ) -> Result<BTreeSet<u32>, LogError> {
        match self.discover_assignment(details).await? {
            Some(owned) => {
                self.layout = layout;
                Ok(owned)
            }
            None => {
                self.layout.clear();
                Ok(BTreeSet::new())
            }
        }
    }

    /// The partitions the server assigns this member.
    ///
    /// Iggy reports members without saying which one is the caller, so the member is
    /// found by the partitions the server picks for it: a poll without a partition
    /// (asking for an offset past the end, so nothing is read) answers with the next
    /// partition of the caller's, round robin. `None` when that cannot be told yet:
    /// the answer was "partition 0, empty", which is also what a member with no
    /// partitions gets, and some member has none.
    async fn discover_assignment(
        &self,
        details: ConsumerGroupDetails,
    ) -> Result<Option<BTreeSet<u32>>, LogError> {
        let client = self.client()?;
        let members = details.members;
        let partitions_of = |m: &iggy_common::ConsumerGroupMember| {
            Some(m.partitions.iter().copied().collect::<BTreeSet<u32>>())
        };
        if members.len() == 1 {
            return Ok(partitions_of(&members[0]));
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
            return Ok(partitions_of(member));
        }
        if zero_or_none && let Some(member) = member_with(0) {
            // "No partition" is the answer only to a member that has none.
            if members.iter().all(|m| !m.partitions.is_empty()) {
                return Ok(partitions_of(member));
            }
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
                return Ok(partitions_of(member));
            }
            // Empty: ours, or another's while we have none.
            return Ok(None);
        }
        Ok(Some(BTreeSet::new()))
    }

    async fn group_details(&self) -> Result<ConsumerGroupDetails, LogError> {
        self.client()?
            .get_consumer_group(&self.stream_id, &self.topic_id, &self.group_id)
            .await
            .map_err(|e| from_iggy(e, format!("reading consumer group {}", self.group)))?
            .ok_or_else(|| LogError::NotFound {
                kind: Missing::Group,
                what: format!("{} of {}", self.group, self.topic),
            })
    }

    /// Joins the group again (the server forgot this member) and learns what it owns.
    async fn rejoin(&mut self) -> Result<Assignment, LogError> {
        self.enter_group().await?;
        let details = self.group_details().await?;
        let owned = self.learn(layout_of(&details), details).await?;
        Ok(Assignment::Rejoined(owned.into_iter().collect()))
    }

    /// Replaces this member's connection; the caller joins the group again.
    async fn reconnect(&mut self) -> Result<(), LogError> {
        let fresh = self.shared.connection.connect().await?;
        if let Some(old) = self.client.replace(fresh) {
            tokio::spawn(async move {
                let _ = old.shutdown().await;
            });
        }
        Ok(())
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
}

#[async_trait]
impl GroupMember for IggyMember {
    async fn assignment(&mut self) -> Result<Assignment, LogError> {
        if self.lost {
            return self.rejoin().await;
        }
        match self.follow_rebalance().await {
            Ok(None) => Ok(Assignment::Same),
            Ok(Some(owned)) => Ok(Assignment::Changed(owned.into_iter().collect())),
            Err(e) if is_member_lost(&e) => {
                // The server forgot this member (it restarted, or the connection was
                // re-established): join again and resume from the commits.
                tracing::info!(topic = %self.topic, group = %self.group, "rejoining the consumer group");
                self.rejoin().await
            }
            Err(e) if e.is_transient() => {
                // A connection the SDK did not bring back: replace it, then rejoin.
                self.reconnect().await.map_err(|_| e)?;
                self.rejoin().await
            }
            Err(e) => Err(e),
        }
    }

    async fn fetch(
        &mut self,
        partition: u32,
        from: Offset,
        max: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        if self.lost {
            return Ok(Vec::new());
        }
        let max = u32::try_from(max.max(1)).unwrap_or(u32::MAX);
        let polled = self
            .client()?
            .poll_messages(
                &self.stream_id,
                &self.topic_id,
                Some(partition),
                &self.group_consumer(),
                &PollingStrategy::offset(from),
                max,
                false,
            )
            .await;
        match polled {
            Ok(polled) => Ok(polled
                .messages
                .into_iter()
                .map(|m| stored_record(partition, m))
                .collect()),
            Err(IggyError::ConsumerGroupMemberNotFound(..)) => {
                // The server forgot this member (a reconnect, a restart): the next
                // assignment joins again.
                self.lost = true;
                Ok(Vec::new())
            }
            Err(e) => Err(from_iggy(
                e,
                format!("polling {} partition {partition}", self.topic),
            )),
        }
    }

    async fn watermarks(&self, partition: u32) -> Result<Watermarks, LogError> {
        self.shared.watermarks(&self.topic, partition).await
    }

    async fn offset_for_timestamp(
        &self,
        partition: u32,
        time: Timestamp,
    ) -> Result<Option<Offset>, LogError> {
        let micros = u64::try_from(time.as_microsecond()).unwrap_or(0);
        let found = self
            .shared
            .read(
                &self.topic,
                partition,
                PollingStrategy::timestamp(IggyTimestamp::from(micros)),
                1,
            )
            .await?;
        Ok(found.first().map(|m| m.header.offset))
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

    async fn store_commit(
        &mut self,
        partition: u32,
        next: Offset,
    ) -> Result<CommitOutcome, LogError> {
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
            Ok(()) => Ok(CommitOutcome::Stored),
            Err(IggyError::NotResolvedConsumer(_)) => {
                // The partition moved to another member since it was read here; its
                // new owner reads again from the group's last commit.
                tracing::warn!(
                    topic = %self.topic, group = %self.group, partition,
                    "commit skipped: the partition now belongs to another member"
                );
                self.layout.clear();
                Ok(CommitOutcome::Moved)
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

    fn append_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.shared.appended)
    }

    /// Appends by other processes wake no one here: an idle member asks the server
    /// again, at most this long apart.
    fn max_idle_interval(&self) -> Option<Duration> {
        Some(self.shared.options.max_poll_interval)
    }
}

impl Drop for IggyMember {
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
                    let shared = Arc::clone(&self.shared);
                    handle.spawn(async move {
                        let _ = client
                            .leave_consumer_group(&stream_id, &topic_id, &group_id)
                            .await;
                        // The other members of this log look at the group again.
                        shared.membership.fetch_add(1, Ordering::AcqRel);
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
