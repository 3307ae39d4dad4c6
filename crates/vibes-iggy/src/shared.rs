//! [`Shared`]: the connection state one [`IggyLog`](crate::IggyLog) and its consumers
//! share (the client and its replacement, the request timeout, topics' partition
//! counts, the append signal), and how vibes names and records map to Iggy's. The log
//! and the consumer both build on this module; neither reaches into the other.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use iggy::prelude::{
    Client, Consumer, Identifier, IggyClient, IggyMessage, MessageClient, PollingStrategy,
    TopicClient, TopicDetails,
};
use jiff::Timestamp;
use tokio::sync::Notify;
use vibes_log::backend::StoredRecord;
use vibes_log::{LogError, RecordAddress, TopicName, Watermarks};

use crate::connection::Connection;
use crate::error::from_iggy;
use crate::options::IggyLogOptions;

/// The user header that carries a record's partition key.
pub(crate) const KEY_HEADER: &str = "vibes-key";

/// The least time between two replacements of a log's connection.
const MIN_RECONNECT_GAP: Duration = Duration::from_secs(1);

/// What every handle and consumer of one `IggyLog` shares.
pub(crate) struct Shared {
    /// The connection; replaced by [`Shared::reconnect`] when it stops working.
    client: parking_lot::RwLock<Arc<IggyClient>>,
    /// When the client was last replaced.
    reconnected_at: parking_lot::Mutex<Option<std::time::Instant>>,
    /// Whether a replacement is being connected in the background.
    reconnecting: AtomicBool,
    pub(crate) connection: Connection,
    pub(crate) options: IggyLogOptions,
    /// Partition counts of topics seen, so appends need not ask.
    partitions: parking_lot::Mutex<HashMap<TopicName, u32>>,
    /// Notified after every append through this log, to wake its consumers.
    pub(crate) appended: Arc<Notify>,
    /// Changes whenever a member of a group joins or leaves through this log, so the
    /// other members of this process look at their group again at once.
    pub(crate) membership: std::sync::atomic::AtomicU64,
}

impl Shared {
    /// Connects with `connection`.
    pub(crate) async fn connect(
        connection: Connection,
        options: IggyLogOptions,
    ) -> Result<Shared, LogError> {
        let client = connection.connect().await?;
        Ok(Shared {
            client: parking_lot::RwLock::new(Arc::new(client)),
            reconnected_at: parking_lot::Mutex::new(None),
            reconnecting: AtomicBool::new(false),
            connection,
            options,
            partitions: parking_lot::Mutex::new(HashMap::new()),
            appended: Arc::new(Notify::new()),
            membership: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub(crate) fn client(&self) -> Arc<IggyClient> {
        Arc::clone(&self.client.read())
    }

    /// Replaces the connection with a new one, at most once per `MIN_RECONNECT_GAP`.
    /// The SDK reconnects on its own, but a client whose requests were cancelled
    /// mid-reconnect can stay disconnected long after the server is back.
    pub(crate) async fn reconnect(&self) -> Result<(), LogError> {
        {
            let mut at = self.reconnected_at.lock();
            if at.is_some_and(|t| t.elapsed() < MIN_RECONNECT_GAP) {
                return Ok(());
            }
            *at = Some(std::time::Instant::now());
        }
        let fresh = Arc::new(self.connection.connect().await?);
        let old = std::mem::replace(&mut *self.client.write(), fresh);
        tokio::spawn(async move {
            let _ = old.shutdown().await;
        });
        tracing::info!(address = %self.connection.tcp_address, "reconnected to iggy-server");
        Ok(())
    }

    /// After a call failed with `error`: if the server could not be reached, replaces
    /// the connection in the background (see [`Shared::reconnect`]), so that a caller
    /// retrying later (an outbox's forwarder) finds a working one once the server is
    /// back. Returns `error`.
    pub(crate) fn heal(self: &Arc<Self>, error: LogError) -> LogError {
        if error.is_transient() && !self.reconnecting.swap(true, Ordering::AcqRel) {
            let shared = Arc::clone(self);
            tokio::spawn(async move {
                if let Err(e) = shared.reconnect().await {
                    tracing::debug!("iggy-server still unreachable: {e}");
                }
                shared.reconnecting.store(false, Ordering::Release);
            });
        }
        error
    }

    pub(crate) async fn topic_details(&self, topic: &TopicName) -> Result<TopicDetails, LogError> {
        let client = self.client();
        let (sid, tid) = (stream_id(topic)?, topic_id(topic)?);
        let details = self
            .within_timeout(client.get_topic(&sid, &tid), || {
                format!("reading topic {topic}")
            })
            .await?
            .map_err(|e| from_iggy(e, format!("reading topic {topic}")))?;
        let details = details.ok_or_else(|| LogError::no_such_topic(topic))?;
        self.partitions
            .lock()
            .insert(topic.clone(), details.partitions_count);
        Ok(details)
    }

    pub(crate) async fn partition_count(&self, topic: &TopicName) -> Result<u32, LogError> {
        if let Some(n) = self.partitions.lock().get(topic) {
            return Ok(*n);
        }
        Ok(self.topic_details(topic).await?.partitions_count)
    }

    pub(crate) async fn watermarks(
        &self,
        topic: &TopicName,
        partition: u32,
    ) -> Result<Watermarks, LogError> {
        let details = self.topic_details(topic).await?;
        let p = details
            .partitions
            .iter()
            .find(|p| p.id == partition)
            .ok_or_else(|| {
                LogError::no_such_partition(topic, details.partitions_count, partition)
            })?;
        Ok(watermarks(p.current_offset, p.messages_count))
    }

    /// Reads `count` messages of `partition` from `offset` without any consumer state.
    pub(crate) async fn read(
        &self,
        topic: &TopicName,
        partition: u32,
        strategy: PollingStrategy,
        count: u32,
    ) -> Result<Vec<IggyMessage>, LogError> {
        let client = self.client();
        let (sid, tid) = (stream_id(topic)?, topic_id(topic)?);
        let consumer = reader();
        let poll = client.poll_messages(
            &sid,
            &tid,
            Some(partition),
            &consumer,
            &strategy,
            count,
            false,
        );
        let polled = self
            .within_timeout(poll, || format!("reading {topic} partition {partition}"))
            .await?
            .map_err(|e| from_iggy(e, format!("reading {topic} partition {partition}")))?;
        Ok(polled.messages)
    }

    /// `call`, failing with a transient error if the server does not answer within
    /// the request timeout.
    pub(crate) async fn within_timeout<T>(
        &self,
        call: impl Future<Output = T>,
        what: impl FnOnce() -> String,
    ) -> Result<T, LogError> {
        let timeout = self.options.request_timeout;
        tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| LogError::Backend {
                message: format!("{}: no answer from iggy-server within {timeout:?}", what()),
                transient: true,
                source: None,
            })
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The SDK client has no Drop: close it on the runtime when the last handle goes.
        let client = Arc::clone(&self.client.read());
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = client.shutdown().await;
            });
        }
    }
}

/// The Iggy stream of a vibes topic `stream/topic`.
pub(crate) fn stream_id(topic: &TopicName) -> Result<Identifier, LogError> {
    Identifier::named(topic.stream()).map_err(|e| from_iggy(e, format!("stream name of {topic}")))
}

/// The Iggy topic of a vibes topic `stream/topic`.
pub(crate) fn topic_id(topic: &TopicName) -> Result<Identifier, LogError> {
    Identifier::named(topic.topic()).map_err(|e| from_iggy(e, format!("topic name of {topic}")))
}

/// The offsets an Iggy partition holds, from its current offset and message count.
pub(crate) fn watermarks(current_offset: u64, messages_count: u64) -> Watermarks {
    let high = if messages_count == 0 && current_offset == 0 {
        0
    } else {
        current_offset + 1
    };
    Watermarks {
        low: high.saturating_sub(messages_count),
        high,
    }
}

/// A stored Iggy message as a vibes record.
pub(crate) fn stored_record(partition: u32, message: IggyMessage) -> StoredRecord {
    let key = message.user_headers.as_ref().and_then(key_header);
    let micros = message.header.timestamp;
    StoredRecord {
        address: RecordAddress {
            partition,
            offset: message.header.offset,
        },
        timestamp: Timestamp::from_microsecond(micros as i64).unwrap_or(Timestamp::UNIX_EPOCH),
        key,
        id: message.header.id,
        payload: message.payload,
    }
}

/// The value of the [`KEY_HEADER`] in a message's encoded headers, as a slice of them:
/// found by walking the headers as they are on the wire (checked first), rather than
/// decoding them all into a map for each message read.
fn key_header(headers: &bytes::Bytes) -> Option<bytes::Bytes> {
    let wire = iggy_binary_protocol::primitives::user_headers::WireUserHeaders::from_bytes(
        headers.clone(),
    )
    .ok()?;
    let entry = wire
        .iter()
        .find(|entry| entry.key == KEY_HEADER.as_bytes())?;
    Some(headers.slice_ref(entry.value))
}

/// The consumer used for reads that keep no position on the server.
fn reader() -> Consumer {
    Consumer::new(Identifier::numeric(1).expect("1 is a valid numeric id"))
}
