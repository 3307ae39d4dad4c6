//! The typed API users code against: [`EventLog`], [`EventConsumer`], [`EventBatch`].
//! Events are encoded by a [`Codec`] (JSON by default) here and nowhere else; backends
//! see bytes.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::{ConsumerOptions, LogBackend, Receipt, RecordConsumer, TopicConfig};
use crate::error::{CodecError, DecodeError, LogError, Result};
use crate::name::{GroupName, TopicName};
use crate::position::SeekPosition;
use crate::record::{
    AppendOptions, Offset, Record, RecordAddress, StoredRecord, Watermarks, partition_for_key,
};

/// What the log needs to know about an event besides its bytes.
pub trait LogEvent: Send + Sync + 'static {
    /// The event's unique id, stored as the record id for de-duplication.
    fn event_id(&self) -> u128;
    /// The key that picks the partition (`None`: partition 0).
    fn partition_key(&self) -> Option<&str>;
    /// Headers for backends that store them beside the payload (see
    /// [`LogBackend::wants_headers`]). Default: none.
    fn headers(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

impl LogEvent for vibes_events::Event {
    fn event_id(&self) -> u128 {
        self.id.as_u128()
    }

    fn partition_key(&self) -> Option<&str> {
        vibes_events::Event::partition_key(self)
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("type", self.event_type().to_owned()),
            ("source", self.source.clone()),
        ]
    }
}

/// Turns events into record payloads and back.
pub trait Codec<E>: Send + Sync + 'static {
    /// Encodes an event. The error is the codec's own, saying why it cannot be encoded.
    fn encode(&self, event: &E) -> Result<Vec<u8>, CodecError>;
    /// Decodes a payload. The error is the codec's own, saying why it does not decode.
    fn decode(&self, payload: &[u8]) -> Result<E, CodecError>;
}

/// JSON via serde: the default codec, and the format of vibes events on the wire.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonCodec;

impl<E: Serialize + DeserializeOwned + 'static> Codec<E> for JsonCodec {
    fn encode(&self, event: &E) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(event).map_err(CodecError::new)
    }

    fn decode(&self, payload: &[u8]) -> Result<E, CodecError> {
        vibes_events::json::from_slice(payload).map_err(CodecError::new)
    }
}

/// A typed, partitioned, append-only event log on some backend.
pub struct EventLog<E, C = JsonCodec> {
    backend: Arc<dyn LogBackend>,
    topic: TopicName,
    partitions: u32,
    codec: Arc<C>,
    /// Whether the backend stores record headers.
    headers: bool,
    _events: PhantomData<fn() -> E>,
}

impl<E, C> Clone for EventLog<E, C> {
    fn clone(&self) -> Self {
        EventLog {
            backend: Arc::clone(&self.backend),
            topic: self.topic.clone(),
            partitions: self.partitions,
            codec: Arc::clone(&self.codec),
            headers: self.headers,
            _events: PhantomData,
        }
    }
}

impl<E, C> fmt::Debug for EventLog<E, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLog")
            .field("backend", &self.backend.kind())
            .field("topic", &self.topic)
            .field("partitions", &self.partitions)
            .finish()
    }
}

impl<E: LogEvent> EventLog<E, JsonCodec>
where
    JsonCodec: Codec<E>,
{
    /// Opens (creating if needed) a one-partition topic `stream/topic` of JSON events.
    pub async fn open(backend: Arc<dyn LogBackend>, topic: &str) -> Result<Self> {
        Self::open_with(backend, topic, TopicConfig::default(), JsonCodec).await
    }
}

impl<E: LogEvent, C: Codec<E>> EventLog<E, C> {
    /// Opens (creating if needed) `topic` with `config`, encoding with `codec`.
    ///
    /// Errors: `InvalidName`, `PartitionCountMismatch` if the topic exists with another
    /// partition count, backend errors.
    pub async fn open_with(
        backend: Arc<dyn LogBackend>,
        topic: &str,
        config: TopicConfig,
        codec: C,
    ) -> Result<Self> {
        let topic = TopicName::new(topic)?;
        let info = backend.ensure_topic(&topic, config).await?;
        Ok(EventLog {
            headers: backend.wants_headers(),
            backend,
            partitions: info.partitions.len() as u32,
            topic,
            codec: Arc::new(codec),
            _events: PhantomData,
        })
    }

    /// The topic.
    pub fn topic(&self) -> &TopicName {
        &self.topic
    }

    /// Its partition count.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn LogBackend> {
        &self.backend
    }

    /// The partition `event` goes to.
    pub fn partition_of(&self, event: &E) -> u32 {
        partition_for_key(event.partition_key().map(str::as_bytes), self.partitions)
    }

    /// The record `event` is stored as on this log's backend: encoded payload, key, id,
    /// and headers if the backend wants them. For producers that append records
    /// themselves (an outbox in front of the backend, for one).
    ///
    /// Errors: `Encode` if the event cannot be encoded.
    pub fn record(&self, event: &E) -> Result<Record> {
        let payload = self
            .codec
            .encode(event)
            .map_err(|source| LogError::Encode {
                topic: self.topic.to_string(),
                source,
            })?;
        let key = event
            .partition_key()
            .map(|k| Bytes::copy_from_slice(k.as_bytes()));
        let mut record = Record::new(key, event.event_id(), payload);
        if self.headers {
            record.headers = event
                .headers()
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect();
        }
        Ok(record)
    }

    /// Appends one event; returns where it was stored once it is as durable as the
    /// log's default asks.
    pub async fn append(&self, event: &E) -> Result<RecordAddress> {
        self.append_with(event, AppendOptions::default()).await
    }

    /// [`EventLog::append`] with per-append options (durability).
    pub async fn append_with(&self, event: &E, options: AppendOptions) -> Result<RecordAddress> {
        let partition = self.partition_of(event);
        let record = self.record(event)?;
        let ack = self
            .backend
            .append(&self.topic, partition, vec![record], options)
            .await?;
        Ok(RecordAddress {
            partition,
            offset: ack.base_offset,
        })
    }

    /// Appends events; returns their addresses in the same order.
    ///
    /// The events of each partition are appended in one backend call: all or nothing,
    /// contiguous, in the given order. On a one-partition topic (the default) the whole
    /// batch is therefore atomic. On several partitions, an error can leave the
    /// partitions appended before it stored; the error says which failed.
    pub async fn append_batch(&self, events: &[E]) -> Result<Vec<RecordAddress>> {
        self.append_batch_with(events, AppendOptions::default())
            .await
    }

    /// [`EventLog::append_batch`] with per-append options.
    pub async fn append_batch_with(
        &self,
        events: &[E],
        options: AppendOptions,
    ) -> Result<Vec<RecordAddress>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut addresses = vec![
            RecordAddress {
                partition: 0,
                offset: 0
            };
            events.len()
        ];
        for PartitionBatch {
            partition,
            indices,
            records,
        } in self.records_by_partition(events)?
        {
            let ack = self
                .backend
                .append(&self.topic, partition, records, options)
                .await?;
            for (index, address) in indices.into_iter().zip(ack.addresses()) {
                addresses[index] = address;
            }
        }
        Ok(addresses)
    }

    /// [`EventLog::append_batch_with`], saying for each event whether it is stored (with
    /// its address) or durably queued to be stored later: on a backend that queues
    /// while its store cannot be reached (an outbox), this answers without waiting for
    /// the store; elsewhere every event is `Stored`. See
    /// [`LogBackend::append_receipt`].
    ///
    /// Same atomicity as `append_batch_with`: one backend call per partition.
    pub async fn append_batch_receipts(
        &self,
        events: &[E],
        options: AppendOptions,
    ) -> Result<Vec<EventReceipt>> {
        let batches = self.records_by_partition(events)?;
        self.append_partition_batches(batches, events.len(), options)
            .await
    }

    /// The partition and record of `event`: what [`append_encoded`](Self::append_encoded)
    /// takes, so that producers can encode on several threads and append on one.
    ///
    /// Errors: `Encode` if the event cannot be encoded.
    pub fn encode(&self, event: &E) -> Result<(u32, Record)> {
        Ok((self.partition_of(event), self.record(event)?))
    }

    /// [`append_batch_receipts`](Self::append_batch_receipts) for events already
    /// encoded by [`encode`](Self::encode), in the order given; same atomicity (one
    /// backend call per partition).
    pub async fn append_encoded(
        &self,
        encoded: Vec<(u32, Record)>,
        options: AppendOptions,
    ) -> Result<Vec<EventReceipt>> {
        let count = encoded.len();
        self.append_partition_batches(group_by_partition(encoded), count, options)
            .await
    }

    async fn append_partition_batches(
        &self,
        batches: Vec<PartitionBatch>,
        count: usize,
        options: AppendOptions,
    ) -> Result<Vec<EventReceipt>> {
        let mut receipts = vec![EventReceipt::Queued { partition: 0 }; count];
        for PartitionBatch {
            partition,
            indices,
            records,
        } in batches
        {
            match self
                .backend
                .append_receipt(&self.topic, partition, records, options)
                .await?
            {
                Receipt::Stored(ack) => {
                    for (index, address) in indices.into_iter().zip(ack.addresses()) {
                        receipts[index] = EventReceipt::Stored(address);
                    }
                }
                Receipt::Queued { partition, .. } => {
                    for index in indices {
                        receipts[index] = EventReceipt::Queued { partition };
                    }
                }
            }
        }
        Ok(receipts)
    }

    /// `events` as records, grouped by partition in order of first appearance, each
    /// group keeping the events' order: what [`append_batch_with`](Self::append_batch_with)
    /// sends, one backend call per group. For producers that append records themselves.
    ///
    /// Errors: `Encode` if an event cannot be encoded.
    pub fn records_by_partition(&self, events: &[E]) -> Result<Vec<PartitionBatch>> {
        let encoded = events
            .iter()
            .map(|event| self.encode(event))
            .collect::<Result<Vec<_>>>()?;
        Ok(group_by_partition(encoded))
    }

    /// A new member of consumer group `group`, starting after the group's last commit
    /// (from the beginning where it has none).
    pub async fn consumer(&self, group: &str) -> Result<EventConsumer<E, C>> {
        self.consumer_with(group, ConsumerOptions::default()).await
    }

    /// [`EventLog::consumer`] with options.
    pub async fn consumer_with(
        &self,
        group: &str,
        options: ConsumerOptions,
    ) -> Result<EventConsumer<E, C>> {
        let group = GroupName::new(group)?;
        let inner = self.backend.consumer(&self.topic, &group, options).await?;
        Ok(EventConsumer {
            inner,
            codec: Arc::clone(&self.codec),
            _events: PhantomData,
        })
    }

    /// The offset the next record of `partition` gets, as the backend reports it now.
    pub async fn high_water_mark(&self, partition: u32) -> Result<Offset> {
        Ok(self.watermarks(partition).await?.high)
    }

    /// The offsets `partition` holds.
    pub async fn watermarks(&self, partition: u32) -> Result<Watermarks> {
        self.backend.watermarks(&self.topic, partition).await
    }
}

/// What became of one event appended with [`EventLog::append_batch_receipts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventReceipt {
    /// Stored at this address.
    Stored(RecordAddress),
    /// Durable in a local queue, to be appended to `partition` later, in order; its
    /// offset is not known yet.
    Queued {
        /// The partition it will be appended to.
        partition: u32,
    },
}

/// Encoded events grouped by partition in order of first appearance, each group
/// keeping their order.
fn group_by_partition(encoded: Vec<(u32, Record)>) -> Vec<PartitionBatch> {
    let mut batches: Vec<PartitionBatch> = Vec::new();
    for (index, (partition, record)) in encoded.into_iter().enumerate() {
        match batches.iter_mut().find(|b| b.partition == partition) {
            Some(batch) => {
                batch.indices.push(index);
                batch.records.push(record);
            }
            None => batches.push(PartitionBatch {
                partition,
                indices: vec![index],
                records: vec![record],
            }),
        }
    }
    batches
}

/// The records of one partition's share of a batch of events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionBatch {
    /// The partition.
    pub partition: u32,
    /// Positions in the batch of the events these records encode, in order.
    pub indices: Vec<usize>,
    /// The records, in the same order.
    pub records: Vec<Record>,
}

/// An event as delivered by [`EventConsumer::poll`].
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered<E> {
    /// Where it is stored.
    pub address: RecordAddress,
    /// When the backend appended it.
    pub timestamp: Timestamp,
    /// The event.
    pub event: E,
}

/// What one poll returned: the events, and the records that did not decode (each with
/// its address). Both are in offset order per partition, and the consumer's position
/// is past all of them.
#[derive(Debug, Clone)]
pub struct EventBatch<E> {
    /// Decoded events.
    pub events: Vec<Delivered<E>>,
    /// Records that did not decode.
    pub failures: Vec<DecodeError>,
    /// Records passed over undecoded ([`EventConsumer::poll_where`]): their addresses.
    pub skipped: Vec<RecordAddress>,
}

impl<E> Default for EventBatch<E> {
    fn default() -> Self {
        EventBatch {
            events: Vec::new(),
            failures: Vec::new(),
            skipped: Vec::new(),
        }
    }
}

impl<E> EventBatch<E> {
    /// Whether the poll returned nothing at all.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.failures.is_empty() && self.skipped.is_empty()
    }

    /// Records returned: events plus failures plus those skipped.
    pub fn len(&self) -> usize {
        self.events.len() + self.failures.len() + self.skipped.len()
    }

    /// The decoded events, in order.
    pub fn iter(&self) -> impl Iterator<Item = &E> {
        self.events.iter().map(|d| &d.event)
    }
}

impl<E> IntoIterator for EventBatch<E> {
    type Item = Delivered<E>;
    type IntoIter = std::vec::IntoIter<Delivered<E>>;

    fn into_iter(self) -> Self::IntoIter {
        self.events.into_iter()
    }
}

/// A typed member of a consumer group.
pub struct EventConsumer<E, C = JsonCodec> {
    inner: Box<dyn RecordConsumer>,
    codec: Arc<C>,
    _events: PhantomData<fn() -> E>,
}

impl<E, C> fmt::Debug for EventConsumer<E, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventConsumer")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<E: Send, C: Codec<E>> EventConsumer<E, C> {
    /// Up to `max` events; returns as soon as any are available, or empty after
    /// `timeout`. Records that do not decode come back in [`EventBatch::failures`] and
    /// are not delivered again (the position moves past them).
    pub async fn poll(&mut self, max: usize, timeout: Duration) -> Result<EventBatch<E>> {
        self.poll_where(max, timeout, |_| true).await
    }

    /// Up to `max` records as stored, undecoded (see [`poll`](Self::poll)): for a
    /// reader that decodes them elsewhere, e.g. on another thread while it handles
    /// the previous batch. Decode them with this consumer's codec.
    pub async fn poll_records(
        &mut self,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<StoredRecord>> {
        self.inner.poll(max, timeout).await
    }

    /// [`poll`](Self::poll), decoding only the records `wanted` says yes to (it sees
    /// the stored record, headers and payload); the others come back as addresses in
    /// [`EventBatch::skipped`], so a reader that wants few of many records need not
    /// decode the rest.
    pub async fn poll_where(
        &mut self,
        max: usize,
        timeout: Duration,
        wanted: impl Fn(&StoredRecord) -> bool,
    ) -> Result<EventBatch<E>> {
        let records = self.inner.poll(max, timeout).await?;
        let topic = self.inner.topic().to_string();
        Ok(crate::decode::decode_batch(
            &*self.codec,
            &topic,
            records,
            wanted,
        ))
    }

    /// Commits everything polled so far: the group resumes after it.
    pub async fn commit(&mut self) -> Result<()> {
        self.inner.commit().await
    }

    /// Commits up to and including the record at `address`.
    pub async fn commit_through(&mut self, address: RecordAddress) -> Result<()> {
        self.inner
            .commit_offset(address.partition, address.offset + 1)
            .await
    }

    /// Moves the read position of every partition this member owns.
    pub async fn seek(&mut self, position: SeekPosition) -> Result<()> {
        self.inner.seek(position).await
    }

    /// Moves the read position of one owned partition.
    pub async fn seek_partition(&mut self, partition: u32, position: SeekPosition) -> Result<()> {
        self.inner.seek_partition(partition, position).await
    }

    /// The group's committed next offset for `partition`, as the backend has it.
    pub async fn committed_offset(&self, partition: u32) -> Result<Option<Offset>> {
        self.inner.committed(partition).await
    }

    /// The next offset this member reads from `partition`, if it owns it.
    pub fn position(&self, partition: u32) -> Option<Offset> {
        self.inner.position(partition)
    }

    /// The partitions this member owns now.
    pub fn assignment(&self) -> Vec<u32> {
        self.inner.assignment()
    }

    /// The consumer group.
    pub fn group(&self) -> &GroupName {
        self.inner.group()
    }

    /// The byte-level consumer underneath.
    pub fn into_inner(self) -> Box<dyn RecordConsumer> {
        self.inner
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Small {
        name: String,
    }

    #[test]
    fn json_round_trips_and_says_what_serde_json_says_of_bad_input() {
        let small = Small {
            name: "café ✓".to_owned(),
        };
        let bytes = JsonCodec.encode(&small).expect("encodes");
        assert_eq!(Codec::<Small>::decode(&JsonCodec, &bytes).ok(), Some(small));
        let bad = b"{\"name\":\"caf\xe9\"}";
        let expected = serde_json::from_slice::<Small>(bad).expect_err("not UTF-8");
        let got = Codec::<Small>::decode(&JsonCodec, bad).expect_err("not UTF-8");
        assert_eq!(got.to_string(), CodecError::new(expected).to_string());
    }
}
