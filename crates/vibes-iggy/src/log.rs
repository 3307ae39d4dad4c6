//! [`IggyLog`]: the vibes log on an iggy-server.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use iggy::prelude::{
    Client, CompressionAlgorithm, Consumer, ConsumerGroupClient, ConsumerOffsetClient, HeaderKind,
    Identifier, IggyError, IggyExpiry, IggyMessage, MaxTopicSize, MessageClient, Partitioning,
    PollingStrategy, StreamClient, TopicClient,
};
use jiff::Timestamp;
use vibes_log::backend::local::validate_batch;
use vibes_log::backend::{
    AppendAck, GroupInfo, LogBackend, Record, RecordConsumer, StoredRecord, TopicInfo,
};
use vibes_log::{
    AppendOptions, ConsumerOptions, Durability, GroupName, LogError, Offset, TopicConfig,
    TopicName, Watermarks,
};

use crate::connection::Connection;
use crate::consumer::IggyMember;
use crate::error::from_iggy;
use crate::options::IggyLogOptions;
use crate::shared::{KEY_HEADER, Shared, stored_record, stream_id, topic_id, watermarks};

/// The most messages one group send carries; callers beyond wait for the next.
const MAX_GROUP_MESSAGES: usize = 10_000;

/// One partition's appends in this process, committed in groups: callers queue their
/// batches, and one task at a time sends every queued batch as one message set,
/// flushes once if any asked for it, and learns where the set landed once; each caller
/// then gets its share of the offsets (its batch is contiguous in the set, as it is
/// in the partition).
#[derive(Debug, Default)]
struct Appender {
    state: parking_lot::Mutex<AppenderState>,
}

#[derive(Debug, Default)]
struct AppenderState {
    queue: Vec<Queued>,
    /// A task is sending (it takes what is queued when it is done).
    sending: bool,
    /// The high-water mark after this process's last append: where the next set is
    /// looked for first.
    high: Option<Offset>,
}

/// Each partition's [`Appender`].
type Appenders = HashMap<(TopicName, u32), Arc<Appender>>;

/// One caller's batch, waiting for its group.
#[derive(Debug)]
struct Queued {
    messages: Vec<IggyMessage>,
    /// How many records it holds (its messages leave it when sent).
    count: usize,
    flush: bool,
    reply: tokio::sync::oneshot::Sender<Result<(Offset, Timestamp), LogError>>,
}

/// The vibes log on Apache Iggy. A vibes topic `stream/topic` is the Iggy stream and
/// topic of those names; vibes partition `p` is Iggy partition `p`; offsets are the
/// server's.
///
/// Cloning gives another handle to the same connection. Call [`IggyLog::shutdown`]
/// when done: the SDK client has no `Drop`.
#[derive(Clone)]
pub struct IggyLog {
    shared: Arc<Shared>,
    /// Per partition: this process's appends, committed in groups.
    appenders: Arc<parking_lot::Mutex<Appenders>>,
}

impl fmt::Debug for IggyLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IggyLog")
            .field("connection", &self.shared.connection)
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

impl IggyLog {
    /// Connects to the server.
    ///
    /// Errors: `Backend` (transient) if the server cannot be reached within the
    /// connection's timeout, `Backend` if signing in fails.
    pub async fn connect(
        connection: Connection,
        options: IggyLogOptions,
    ) -> Result<Self, LogError> {
        Ok(IggyLog {
            shared: Arc::new(Shared::connect(connection, options).await?),
            appenders: Arc::default(),
        })
    }

    /// The connection settings.
    pub fn connection(&self) -> &Connection {
        &self.shared.connection
    }

    /// Closes the connection. Consumers created from this log keep their own.
    pub async fn shutdown(&self) {
        if let Err(e) = self.shared.client().shutdown().await {
            tracing::debug!("iggy client shutdown: {e}");
        }
    }

    /// Whether the server answers a ping now.
    pub async fn ping(&self) -> bool {
        iggy::prelude::SystemClient::ping(&*self.shared.client())
            .await
            .is_ok()
    }
}

impl IggyLog {
    /// One append, as [`LogBackend::append`] describes it.
    async fn append_once(
        &self,
        topic: &TopicName,
        partition: u32,
        records: Vec<Record>,
        options: AppendOptions,
    ) -> Result<AppendAck, LogError> {
        let shared = &self.shared;
        let partitions = shared.partition_count(topic).await?;
        validate_batch(topic, partitions, partition, &records)?;
        let count = records.len();
        let messages = records
            .into_iter()
            .map(|r| to_message(topic, r))
            .collect::<Result<Vec<_>, _>>()?;
        let durability = options.durability.unwrap_or(shared.options.durability);
        let appender = self.appender(topic, partition);
        let (reply, answer) = tokio::sync::oneshot::channel();
        let start = {
            let mut state = appender.state.lock();
            state.queue.push(Queued {
                messages,
                count,
                flush: durability == Durability::Always,
                reply,
            });
            !std::mem::replace(&mut state.sending, true)
        };
        if start {
            // A task, not this caller: a caller that stops waiting must not stop the
            // sends of the others.
            tokio::spawn(send_groups(
                Arc::clone(shared),
                topic.clone(),
                partition,
                appender,
            ));
        }
        let (base, timestamp) = answer.await.map_err(|_| LogError::Backend {
            message: format!("the append to {topic} partition {partition} was dropped unanswered"),
            transient: true,
            source: None,
        })??;
        shared.appended.notify_waiters();
        Ok(AppendAck {
            partition,
            base_offset: base,
            last_offset: base + count as u64 - 1,
            timestamp,
        })
    }
}

/// Sends what `appender` has queued, group by group, until nothing is left.
async fn send_groups(
    shared: Arc<Shared>,
    topic: TopicName,
    partition: u32,
    appender: Arc<Appender>,
) {
    // Should this task end otherwise than by finding the queue empty (a panic, its
    // runtime shutting down), the next append must find no sender to wait for (it
    // then starts one), and those queued get their reply channels dropped: an error,
    // not a wait for ever.
    struct Sending(Arc<Appender>, bool);
    impl Drop for Sending {
        fn drop(&mut self) {
            if !self.1 {
                let mut state = self.0.state.lock();
                state.sending = false;
                state.queue.clear();
            }
        }
    }
    let mut sending = Sending(Arc::clone(&appender), false);
    loop {
        let (mut group, high) = {
            let mut state = appender.state.lock();
            if state.queue.is_empty() {
                // Under the lock: an append queued after this starts the next task.
                state.sending = false;
                sending.1 = true;
                return;
            }
            let mut taken = 0;
            let mut n = 0;
            for q in &state.queue {
                if taken > 0 && n + q.messages.len() > MAX_GROUP_MESSAGES {
                    break;
                }
                n += q.messages.len();
                taken += 1;
            }
            (state.queue.drain(..taken).collect::<Vec<_>>(), state.high)
        };
        let result = send_group(&shared, &topic, partition, &mut group, high).await;
        match result {
            Ok((base, timestamp)) => {
                let mut offset = base;
                for q in group {
                    let _ = q.reply.send(Ok((offset, timestamp)));
                    offset += q.count as u64;
                }
                appender.state.lock().high = Some(offset);
            }
            Err(e) => {
                // Nothing of the set is known to be stored where it can be found: the
                // next set is looked for from the server's end again.
                appender.state.lock().high = None;
                let (message, transient) = (e.to_string(), e.is_transient());
                let mut first = Some(e);
                for q in group {
                    let error = first.take().unwrap_or_else(|| LogError::Backend {
                        message: message.clone(),
                        transient,
                        source: None,
                    });
                    let _ = q.reply.send(Err(error));
                }
            }
        }
    }
}

/// One group: its batches sent as one message set, flushed if any asked, and where
/// the set landed (its base offset and append time).
async fn send_group(
    shared: &Shared,
    topic: &TopicName,
    partition: u32,
    group: &mut [Queued],
    high: Option<Offset>,
) -> Result<(Offset, Timestamp), LogError> {
    let (sid, tid) = (stream_id(topic)?, topic_id(topic)?);
    let flush = group.iter().any(|q| q.flush);
    let ids: Vec<u128> = group
        .iter()
        .flat_map(|q| q.messages.iter().map(|m| m.header.id))
        .collect();
    let mut messages: Vec<IggyMessage> = group
        .iter_mut()
        .flat_map(|q| std::mem::take(&mut q.messages))
        .collect();
    let store = async {
        // Where a search for the set starts if another producer appends right after
        // it: the end after this process's last append, or, before its first, the end
        // as the server reports it now.
        let from = match high {
            Some(offset) => offset,
            None => shared.watermarks(topic, partition).await?.high,
        };
        shared
            .client()
            .send_messages(
                &sid,
                &tid,
                &Partitioning::partition_id(partition),
                &mut messages,
            )
            .await
            .map_err(|e| from_iggy(e, format!("appending to {topic} partition {partition}")))?;
        if flush {
            shared
                .client()
                .flush_unsaved_buffer(&sid, &tid, partition, true)
                .await
                .map_err(|e| from_iggy(e, format!("flushing {topic} partition {partition}")))?;
        }
        locate(shared, topic, partition, &ids, from).await
    };
    shared
        .within_timeout(store, || {
            format!("appending to {topic} partition {partition}")
        })
        .await?
}

impl IggyLog {
    fn appender(&self, topic: &TopicName, partition: u32) -> Arc<Appender> {
        Arc::clone(
            self.appenders
                .lock()
                .entry((topic.clone(), partition))
                .or_default(),
        )
    }
}

/// Finds where the batch whose ids are `ids` was stored: first at the end of the
/// partition (the usual case), else by scanning forward from `from`.
async fn locate(
    shared: &Shared,
    topic: &TopicName,
    partition: u32,
    ids: &[u128],
    from: Offset,
) -> Result<(Offset, Timestamp), LogError> {
    let n = ids.len() as u32;
    // Usually the set is right where this process's last one ended: its first message
    // there says so (a set is stored whole and in order, and ids are unique), and
    // carries the append time. One message is read, not the set.
    let first = shared
        .read(topic, partition, PollingStrategy::offset(from), 1)
        .await?;
    if let Some(message) = first.first()
        && message.header.offset == from
        && message.header.id == ids[0]
        && let Ok(time) = Timestamp::from_microsecond(message.header.timestamp as i64)
    {
        return Ok((from, time));
    }
    // Another producer appended after us: scan from where we were.
    let mut offset = from;
    let mut last_match = None;
    loop {
        let chunk = shared
            .read(topic, partition, PollingStrategy::offset(offset), 1000)
            .await?;
        let Some(last) = chunk.last() else { break };
        let next = last.header.offset + 1;
        for (i, message) in chunk.iter().enumerate() {
            if message.header.id == ids[0] {
                let window = &chunk[i..];
                if window.len() >= ids.len() {
                    if let Some(found) = match_batch(&window[..ids.len()], ids) {
                        last_match = Some(found);
                    }
                } else {
                    // The batch crosses the chunk boundary: read it whole.
                    let whole = shared
                        .read(
                            topic,
                            partition,
                            PollingStrategy::offset(message.header.offset),
                            n,
                        )
                        .await?;
                    if let Some(found) = match_batch(&whole, ids) {
                        last_match = Some(found);
                    }
                }
            }
        }
        offset = next;
    }
    last_match.ok_or_else(|| LogError::Backend {
        message: format!(
            "the server accepted a batch of {n} records for {topic} partition {partition}, but they are not there"
        ),
        transient: false,
        source: None,
    })
}

/// `messages` are exactly the batch `ids`: its base offset and append time.
fn match_batch(messages: &[IggyMessage], ids: &[u128]) -> Option<(Offset, Timestamp)> {
    if messages.len() != ids.len() || messages.iter().zip(ids).any(|(m, id)| m.header.id != *id) {
        return None;
    }
    let first = messages.first()?;
    let time = Timestamp::from_microsecond(first.header.timestamp as i64).ok()?;
    Some((first.header.offset, time))
}

fn to_message(topic: &TopicName, record: Record) -> Result<IggyMessage, LogError> {
    let unsupported = |what: String| LogError::Unsupported {
        backend: "iggy",
        what,
    };
    if record.payload.is_empty() {
        return Err(unsupported(format!("an empty payload (for {topic})")));
    }
    if record.id == 0 {
        return Err(unsupported(format!(
            "record id 0 (for {topic}): Iggy reserves it and assigns a random id instead"
        )));
    }
    // Written straight in Iggy's wire layout (the SDK's builder would take a map of
    // owned keys and values per message and encode it): a key header (raw bytes),
    // then the others (strings), the last of a repeated name kept, as in a map.
    let mut fields: Vec<(&str, HeaderKind, &[u8])> = Vec::with_capacity(3);
    if let Some(key) = &record.key {
        if key.is_empty() || key.len() > 255 {
            return Err(unsupported(format!(
                "a partition key of {} bytes (for {topic}): it takes 1 to 255",
                key.len()
            )));
        }
        fields.push((KEY_HEADER, HeaderKind::Raw, &key[..]));
    }
    // A record without headers (one that waited in an outbox, which keeps payloads
    // only, or one from a producer of raw records) gets those of its event.
    let derived;
    let named = if record.headers.is_empty() {
        derived = crate::headers::from_payload(&record.payload);
        &derived
    } else {
        &record.headers
    };
    for (name, value) in named {
        if name.is_empty() || name.len() > 255 {
            return Err(from_iggy(
                IggyError::InvalidHeaderKey,
                format!("header name {name}"),
            ));
        }
        // Headers are a convenience for other readers; one that Iggy cannot hold
        // (empty, or over 255 bytes) is left out, the payload still has it all.
        if value.is_empty() || value.len() > 255 {
            continue;
        }
        fields.retain(|(n, _, _)| *n != name.as_str());
        fields.push((name, HeaderKind::String, value.as_bytes()));
    }
    let headers = crate::headers::encode(&fields);
    let size = record.payload.len();
    let mut message = IggyMessage::builder()
        .id(record.id)
        .payload(record.payload)
        .build()
        .map_err(|e| match e {
            IggyError::TooBigMessagePayload => LogError::TooLarge {
                what: format!("a record payload for {topic} on Iggy"),
                size,
                limit: iggy_common::MAX_PAYLOAD_SIZE as usize,
            },
            e => from_iggy(e, format!("building a message for {topic}")),
        })?;
    if let Some(headers) = headers {
        message.header.user_headers_length = u32::try_from(headers.len()).unwrap_or(u32::MAX);
        message.user_headers = Some(headers);
    }
    Ok(message)
}

#[async_trait]
impl LogBackend for IggyLog {
    fn kind(&self) -> &'static str {
        "iggy"
    }

    fn wants_headers(&self) -> bool {
        true
    }

    async fn ensure_topic(
        &self,
        topic: &TopicName,
        config: TopicConfig,
    ) -> Result<TopicInfo, LogError> {
        config.check(topic)?;
        let shared = &self.shared;
        let sid = stream_id(topic)?;
        let stream = shared
            .client()
            .get_stream(&sid)
            .await
            .map_err(|e| from_iggy(e, format!("reading stream {}", topic.stream())))?;
        if stream.is_none() {
            match shared.client().create_stream(topic.stream()).await {
                Ok(_) | Err(IggyError::StreamNameAlreadyExists(_)) => {}
                Err(e) => return Err(from_iggy(e, format!("creating stream {}", topic.stream()))),
            }
        }
        let existing = shared
            .client()
            .get_topic(&sid, &topic_id(topic)?)
            .await
            .map_err(|e| from_iggy(e, format!("reading topic {topic}")))?;
        if existing.is_none() {
            match shared
                .client()
                .create_topic(
                    &sid,
                    topic.topic(),
                    config.partitions,
                    CompressionAlgorithm::None,
                    None,
                    IggyExpiry::ServerDefault,
                    MaxTopicSize::ServerDefault,
                )
                .await
            {
                Ok(_) | Err(IggyError::TopicNameAlreadyExists(..)) => {}
                Err(e) => return Err(from_iggy(e, format!("creating topic {topic}"))),
            }
        }
        let details = shared.topic_details(topic).await?;
        if details.partitions_count != config.partitions {
            return Err(LogError::PartitionCountMismatch {
                topic: topic.to_string(),
                existing: details.partitions_count,
                requested: config.partitions,
            });
        }
        self.topic_info(topic).await
    }

    async fn topic_info(&self, topic: &TopicName) -> Result<TopicInfo, LogError> {
        let details = self
            .shared
            .topic_details(topic)
            .await
            .map_err(|e| self.shared.heal(e))?;
        let mut partitions: Vec<_> = details.partitions.iter().collect();
        partitions.sort_by_key(|p| p.id);
        Ok(TopicInfo {
            name: topic.clone(),
            partitions: partitions
                .iter()
                .map(|p| watermarks(p.current_offset, p.messages_count))
                .collect(),
        })
    }

    async fn list_topics(&self) -> Result<Vec<TopicName>, LogError> {
        let client = self.shared.client();
        let mut names = Vec::new();
        let streams = client
            .get_streams()
            .await
            .map_err(|e| from_iggy(e, "listing streams"))?;
        for stream in streams {
            let sid = Identifier::numeric(stream.id).map_err(|e| from_iggy(e, "stream id"))?;
            let topics = client
                .get_topics(&sid)
                .await
                .map_err(|e| from_iggy(e, format!("listing topics of {}", stream.name)))?;
            for topic in topics {
                // Streams and topics that are not valid vibes names are not vibes topics.
                if let Ok(name) = TopicName::new(&format!("{}/{}", stream.name, topic.name)) {
                    names.push(name);
                }
            }
        }
        names.sort();
        Ok(names)
    }

    async fn append(
        &self,
        topic: &TopicName,
        partition: u32,
        records: Vec<Record>,
        options: AppendOptions,
    ) -> Result<AppendAck, LogError> {
        self.append_once(topic, partition, records, options)
            .await
            .map_err(|e| self.shared.heal(e))
    }

    async fn watermarks(&self, topic: &TopicName, partition: u32) -> Result<Watermarks, LogError> {
        self.shared
            .watermarks(topic, partition)
            .await
            .map_err(|e| self.shared.heal(e))
    }

    async fn read(
        &self,
        topic: &TopicName,
        partition: u32,
        from: Offset,
        max: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        let marks = self
            .shared
            .watermarks(topic, partition)
            .await
            .map_err(|e| self.shared.heal(e))?;
        let from = from.max(marks.low);
        if from >= marks.high || max == 0 {
            return Ok(Vec::new());
        }
        let count = u32::try_from(max.min((marks.high - from) as usize)).unwrap_or(u32::MAX);
        let messages = self
            .shared
            .read(topic, partition, PollingStrategy::offset(from), count)
            .await
            .map_err(|e| self.shared.heal(e))?;
        Ok(messages
            .into_iter()
            .map(|m| stored_record(partition, m))
            .collect())
    }

    async fn consumer(
        &self,
        topic: &TopicName,
        group: &GroupName,
        options: ConsumerOptions,
    ) -> Result<Box<dyn RecordConsumer>, LogError> {
        let consumer = IggyMember::join(Arc::clone(&self.shared), topic, group, options).await?;
        Ok(Box::new(consumer))
    }

    async fn groups(&self, topic: &TopicName) -> Result<Vec<GroupInfo>, LogError> {
        let shared = &self.shared;
        let (sid, tid) = (stream_id(topic)?, topic_id(topic)?);
        let partitions = shared.partition_count(topic).await?;
        let groups = shared
            .client()
            .get_consumer_groups(&sid, &tid)
            .await
            .map_err(|e| from_iggy(e, format!("listing the consumer groups of {topic}")))?;
        let mut infos = Vec::new();
        for group in groups {
            let Ok(name) = GroupName::new(&group.name) else {
                continue;
            };
            let consumer = Consumer::group(
                Identifier::named(&group.name).map_err(|e| from_iggy(e, "group name"))?,
            );
            let mut committed = Vec::with_capacity(partitions as usize);
            for p in 0..partitions {
                let offset = shared
                    .client()
                    .get_consumer_offset(&consumer, &sid, &tid, Some(p))
                    .await
                    .map_err(|e| from_iggy(e, format!("reading the offsets of group {name}")))?;
                committed.push(offset.map(|o| o.stored_offset + 1));
            }
            // Listed are the groups that committed (a group is created when a member
            // joins, before it has committed anything).
            if committed.iter().any(Option::is_some) {
                infos.push(GroupInfo {
                    group: name,
                    committed,
                });
            }
        }
        infos.sort_by(|a, b| a.group.as_str().cmp(b.group.as_str()));
        Ok(infos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_headers(message: &IggyMessage) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = message
            .user_headers_map()
            .expect("headers decode")
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k.as_bytes()).into_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        headers.sort();
        headers
    }

    #[test]
    fn a_record_without_headers_gets_those_of_its_event() {
        let topic = TopicName::new("vibes/events").unwrap();
        let payload = br#"{"id":"x","type":"claude.text","source":"claude","text":"hi"}"#;
        let bare = Record::new(Some(bytes::Bytes::from_static(b"s-1")), 7, &payload[..]);
        let message = to_message(&topic, bare).expect("message");
        assert_eq!(
            user_headers(&message),
            [
                ("source".to_owned(), "claude".to_owned()),
                ("type".to_owned(), "claude.text".to_owned()),
                (KEY_HEADER.to_owned(), "s-1".to_owned()),
            ]
        );
        // Headers given are used as given.
        let given = Record::new(None, 8, &payload[..]).with_header("type", "other");
        let message = to_message(&topic, given).expect("message");
        assert_eq!(
            user_headers(&message),
            [("type".to_owned(), "other".to_owned())]
        );
    }

    #[test]
    fn a_read_record_has_the_key_it_was_sent_with_among_its_headers() {
        let topic = TopicName::new("vibes/events").unwrap();
        let payload = br#"{"id":"x","type":"claude.text","source":"claude","text":"hi"}"#;
        for key in [&b"s-1"[..], b"k", &[0xff; 255][..]] {
            let record = Record::new(Some(bytes::Bytes::copy_from_slice(key)), 7, &payload[..]);
            let stored = crate::shared::stored_record(3, to_message(&topic, record).unwrap());
            assert_eq!(stored.key.as_deref(), Some(key));
            assert_eq!(stored.address.partition, 3);
        }
        // No key header among others, and no headers at all: no key.
        let typed = Record::new(None, 8, &payload[..]).with_header("type", "other");
        let stored = crate::shared::stored_record(0, to_message(&topic, typed).unwrap());
        assert_eq!(stored.key, None);
        let mut bare = to_message(&topic, Record::new(None, 9, &payload[..])).unwrap();
        bare.user_headers = None;
        assert_eq!(crate::shared::stored_record(0, bare).key, None);
    }
}
