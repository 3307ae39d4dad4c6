//! `iggy-sdk`: what a user of the Iggy SDK alone gets from the server `iggy-fsync`
//! runs (fsync on), the limit for the adapter. A bare `IggyClient` sends the same
//! 256-byte records in the same batches, each followed by a flush with fsync (what
//! `iggy-fsync`'s durability `always` asks the server for), and reads them back by
//! offset in polls of the same size. It learns no offsets, takes no lock and sends no
//! headers: the adapter's extra work.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use iggy::prelude::{
    Client, CompressionAlgorithm, Consumer, Identifier, IggyClient, IggyExpiry, IggyMessage,
    MaxTopicSize, MessageClient, Partitioning, PollingStrategy, StreamClient, TopicClient,
};
use tokio::runtime::Runtime;

use crate::Result;
use crate::report::Measurement;

const STREAM: &str = "bench";
const TOPIC: &str = "events";

/// A fresh server in `dir` as `iggy-fsync` runs it (fsync on), a signed-in client,
/// the bench topic (one partition); `work` runs with them, then the client is shut
/// down and the server stopped (an error if it does not stop cleanly).
fn with_server<T>(
    dir: &Path,
    runtime: &Arc<Runtime>,
    work: impl AsyncFnOnce(&IggyClient) -> Result<T>,
) -> Result<T> {
    let mut server = super::iggy::start(dir, true, runtime)?;
    let connection = server.connection()?;
    let result = runtime.block_on(async {
        let client = connection.connect().await?;
        let result = async {
            client.create_stream(STREAM).await?;
            client
                .create_topic(
                    &Identifier::named(STREAM)?,
                    TOPIC,
                    1,
                    CompressionAlgorithm::None,
                    None,
                    IggyExpiry::ServerDefault,
                    MaxTopicSize::ServerDefault,
                )
                .await?;
            work(&client).await
        }
        .await;
        let _ = client.shutdown().await;
        result
    });
    server.close()?;
    result
}

/// Messages of `payloads`, in batches of `batch`, ids from 1.
fn messages(payloads: &[bytes::Bytes], batch: usize) -> Result<Vec<Vec<IggyMessage>>> {
    let mut id = 0u128;
    payloads
        .chunks(batch)
        .map(|chunk| {
            chunk
                .iter()
                .map(|payload| {
                    id += 1;
                    Ok(IggyMessage::builder()
                        .id(id)
                        .payload(payload.clone())
                        .build()?)
                })
                .collect()
        })
        .collect()
}

/// Sends `batches` one call each, each followed by a flush with fsync.
async fn send(client: &IggyClient, batches: &mut [Vec<IggyMessage>]) -> Result<()> {
    let (stream, topic) = (Identifier::named(STREAM)?, Identifier::named(TOPIC)?);
    for batch in batches {
        client
            .send_messages(&stream, &topic, &Partitioning::partition_id(0), batch)
            .await?;
        client
            .flush_unsaved_buffer(&stream, &topic, 0, true)
            .await?;
    }
    Ok(())
}

/// Reads `count` messages back from offset 0 in polls of `poll`; checks each offset
/// and payload size.
async fn replay(client: &IggyClient, count: u64, poll: u32, size: usize) -> Result<()> {
    let (stream, topic) = (Identifier::named(STREAM)?, Identifier::named(TOPIC)?);
    let consumer = Consumer::new(Identifier::numeric(1)?);
    let mut next = 0u64;
    while next < count {
        let polled = client
            .poll_messages(
                &stream,
                &topic,
                Some(0),
                &consumer,
                &PollingStrategy::offset(next),
                poll,
                false,
            )
            .await?;
        if polled.messages.is_empty() {
            return Err(format!("iggy-sdk replay: nothing at offset {next} of {count}").into());
        }
        for message in &polled.messages {
            if message.header.offset != next || message.payload.len() != size {
                return Err(format!(
                    "iggy-sdk replay: offset {} ({} bytes) where {next} was expected",
                    message.header.offset,
                    message.payload.len()
                )
                .into());
            }
            next += 1;
        }
    }
    Ok(())
}

/// `batch_append` and `replay_raw` of the bare SDK: `payloads` in batches of `batch`,
/// then read back in polls of `poll`.
pub(crate) fn batch_and_replay(
    dir: &Path,
    runtime: &Arc<Runtime>,
    payloads: &[bytes::Bytes],
    batch: usize,
    poll: u32,
) -> Result<(Measurement, Measurement)> {
    let size = payloads.first().map_or(0, bytes::Bytes::len);
    let bytes = (payloads.len() * size) as f64;
    let mut batches = messages(payloads, batch)?;
    with_server(dir, runtime, async |client| {
        let began = Instant::now();
        send(client, &mut batches).await?;
        let appended = began.elapsed().as_secs_f64();
        let began = Instant::now();
        replay(client, payloads.len() as u64, poll, size).await?;
        let replayed = began.elapsed().as_secs_f64();
        let row = |workload: &str, seconds: f64| Measurement {
            events_per_s: Some(payloads.len() as f64 / seconds),
            mb_per_s: Some(bytes / 1e6 / seconds),
            seconds: Some(seconds),
            ..Measurement::new(workload, "iggy-sdk")
        };
        Ok((row("batch_append", appended), row("replay_raw", replayed)))
    })
}

/// `single_append_1` of the bare SDK: each of `payloads` sent alone and flushed.
pub(crate) fn single(
    dir: &Path,
    runtime: &Arc<Runtime>,
    payloads: &[bytes::Bytes],
) -> Result<Measurement> {
    let mut batches = messages(payloads, 1)?;
    with_server(dir, runtime, async |client| {
        let began = Instant::now();
        send(client, &mut batches).await?;
        let seconds = began.elapsed().as_secs_f64();
        Ok(Measurement {
            events_per_s: Some(payloads.len() as f64 / seconds),
            seconds: Some(seconds),
            ..Measurement::new("single_append_1", "iggy-sdk")
        })
    })
}
