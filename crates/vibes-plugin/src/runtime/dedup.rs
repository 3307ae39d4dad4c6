//! Which outputs a restarted plugin must not store again.
//!
//! The runtime stores a batch's outputs, then commits its inputs. A crash in between
//! leaves outputs stored whose inputs will be delivered again. Outputs are stored in
//! the order their inputs were handled, and each names its cause, so the outputs
//! stored after the last commit are found by reading each output partition backwards
//! until an output whose cause lies before the commit. Their ids (derived from the
//! cause, so a replay derives the same ones) are what the replayed inputs must not
//! store again.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use vibes_events::{Event, EventId};
use vibes_log::backend::LogBackend;
use vibes_log::{Offset, TopicName};

use crate::emitter::cause_of;
use crate::error::RuntimeError;

/// Records read per step backwards.
const STEP: u64 = 256;

/// Scans at most this many records per partition: outputs after one commit are one
/// batch's; this bounds the work if other writers share the topic.
const MAX_SCAN: u64 = 1_000_000;

/// The ids of outputs in `topics` caused by inputs of `input` at or after `committed`
/// (per input partition).
pub(crate) async fn stored_after_commit(
    backend: &Arc<dyn LogBackend>,
    plugin: &str,
    topics: &[TopicName],
    input: &str,
    committed: &BTreeMap<u32, Offset>,
) -> Result<HashSet<EventId>, RuntimeError> {
    let mut ids = HashSet::new();
    for topic in topics {
        let info = backend
            .topic_info(topic)
            .await
            .map_err(|e| RuntimeError::log(plugin, format!("reading {topic}"), e))?;
        for (partition, marks) in info.partitions.iter().enumerate() {
            let partition = partition as u32;
            let mut end = marks.high;
            let floor = marks.low.max(marks.high.saturating_sub(MAX_SCAN));
            'scan: while end > floor {
                let from = end.saturating_sub(STEP).max(floor);
                let records = backend
                    .read(topic, partition, from, (end - from) as usize)
                    .await
                    .map_err(|e| RuntimeError::log(plugin, format!("reading {topic}"), e))?;
                for record in records.iter().rev() {
                    let Ok(event) = Event::from_json_slice(&record.payload) else {
                        continue;
                    };
                    let Some((cause_topic, cause)) = cause_of(&event) else {
                        continue;
                    };
                    if cause_topic != input {
                        continue;
                    }
                    match committed.get(&cause.partition) {
                        Some(&next) if cause.offset < next => break 'scan,
                        Some(_) => {
                            ids.insert(event.id);
                        }
                        None => {}
                    }
                }
                end = from;
            }
        }
    }
    Ok(ids)
}
