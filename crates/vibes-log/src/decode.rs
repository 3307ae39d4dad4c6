//! Decoding stored records into events, spread over the machine's cores when a batch
//! is large: decoding JSON is most of what a reader of the log spends, and each record
//! decodes on its own.

use std::num::NonZeroUsize;

use crate::backend::StoredRecord;
use crate::error::DecodeError;
use crate::typed::{Codec, Delivered, EventBatch};

/// Below this many wanted records a batch decodes on the calling thread: starting a
/// thread costs about what decoding a few dozen events does.
const PARALLEL_FROM: usize = 256;

/// At most this many threads decode one batch.
const MAX_THREADS: usize = 4;

/// Decodes `records` of `topic` with `codec`, in their order: those `wanted` says yes
/// to become events or failures, the others are passed over undecoded (their addresses
/// in [`EventBatch::skipped`]). A large batch is split over up to four threads (as many
/// as the machine has cores); the result is the same as decoding one by one.
pub fn decode_batch<E: Send, C: Codec<E>>(
    codec: &C,
    topic: &str,
    records: Vec<StoredRecord>,
    wanted: impl Fn(&StoredRecord) -> bool,
) -> EventBatch<E> {
    let mut batch = EventBatch::default();
    let mut todo = Vec::with_capacity(records.len());
    for record in records {
        if wanted(&record) {
            todo.push(record);
        } else {
            batch.skipped.push(record.address);
        }
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(MAX_THREADS)
        .min(todo.len() / (PARALLEL_FROM / 2).max(1))
        .max(1);
    if threads == 1 || todo.len() < PARALLEL_FROM {
        decode_into(codec, topic, &todo, &mut batch);
        return batch;
    }
    let per = todo.len().div_ceil(threads);
    let parts: Vec<EventBatch<E>> = std::thread::scope(|scope| {
        let mut chunks = todo.chunks(per);
        let first = chunks.next().unwrap_or(&[]);
        let others: Vec<_> = chunks
            .map(|chunk| {
                scope.spawn(move || {
                    let mut part = EventBatch::default();
                    decode_into(codec, topic, chunk, &mut part);
                    part
                })
            })
            .collect();
        let mut parts = Vec::with_capacity(threads);
        let mut own = EventBatch::default();
        decode_into(codec, topic, first, &mut own);
        parts.push(own);
        for handle in others {
            match handle.join() {
                Ok(part) => parts.push(part),
                // A codec that panics panics the caller, as it would without threads.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        parts
    });
    for part in parts {
        batch.events.extend(part.events);
        batch.failures.extend(part.failures);
    }
    batch
}

fn decode_into<E, C: Codec<E>>(
    codec: &C,
    topic: &str,
    records: &[StoredRecord],
    batch: &mut EventBatch<E>,
) {
    for record in records {
        match codec.decode(&record.payload) {
            Ok(event) => batch.events.push(Delivered {
                address: record.address,
                timestamp: record.timestamp,
                event,
            }),
            Err(source) => batch.failures.push(DecodeError {
                topic: topic.to_owned(),
                address: record.address,
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use jiff::Timestamp;

    use super::*;
    use crate::record::RecordAddress;
    use crate::typed::JsonCodec;

    fn record(offset: u64, payload: String) -> StoredRecord {
        StoredRecord {
            address: RecordAddress {
                partition: 0,
                offset,
            },
            timestamp: Timestamp::UNIX_EPOCH,
            key: None,
            id: u128::from(offset),
            payload: Bytes::from(payload),
        }
    }

    #[test]
    fn a_large_batch_decodes_in_order_with_failures_and_skips_where_they_were() {
        // Numbers; every 7th record is not JSON, every 5th is not wanted.
        let records: Vec<StoredRecord> = (0..5000u64)
            .map(|n| {
                let payload = if n % 7 == 3 {
                    format!("not json {n}")
                } else {
                    n.to_string()
                };
                record(n, payload)
            })
            .collect();
        let wanted = |r: &StoredRecord| !r.address.offset.is_multiple_of(5);
        let batch: EventBatch<u64> = decode_batch(&JsonCodec, "t/x", records, wanted);
        let expected: Vec<u64> = (0..5000u64)
            .filter(|n| !n.is_multiple_of(5) && n % 7 != 3)
            .collect();
        let got: Vec<u64> = batch.events.iter().map(|d| d.event).collect();
        assert_eq!(got, expected, "every wanted record that decodes, in order");
        assert!(batch.events.iter().all(|d| d.address.offset == d.event));
        let failed: Vec<u64> = batch.failures.iter().map(|f| f.address.offset).collect();
        let expected_failed: Vec<u64> = (0..5000u64)
            .filter(|n| !n.is_multiple_of(5) && n % 7 == 3)
            .collect();
        assert_eq!(failed, expected_failed);
        assert!(
            batch
                .failures
                .iter()
                .all(|f| f.topic == "t/x" && f.source.downcast_ref::<serde_json::Error>().is_some())
        );
        let skipped: Vec<u64> = batch.skipped.iter().map(|a| a.offset).collect();
        assert_eq!(skipped, (0..5000u64).step_by(5).collect::<Vec<_>>());
    }

    #[test]
    fn a_small_batch_decodes_too() {
        let records = vec![record(0, "1".into()), record(1, "x".into())];
        let batch: EventBatch<u64> = decode_batch(&JsonCodec, "t/x", records, |_| true);
        assert_eq!(batch.events.len(), 1);
        assert_eq!(batch.failures.len(), 1);
        assert!(batch.skipped.is_empty());
    }
}
