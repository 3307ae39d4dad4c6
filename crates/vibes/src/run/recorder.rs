//! Appending a run's events on a thread of their own, behind a bounded queue.
//!
//! The async side (the stdout pump and the sampler) sends each line's events, and each
//! `run.*` event, into a queue of [`QUEUE`] messages; one thread takes whatever waits
//! (up to [`MAX_BATCH`] events) and appends it in one call, with the configured
//! durability. When appends are slower than the agent writes, the queue fills and the
//! senders wait; the pump then stops taking lines, the supervisor's line queue and the
//! pipe fill, and the agent blocks in its next write to stdout until the log catches
//! up. Nothing is dropped. If an append fails the thread ends with the error, and every
//! later send fails with [`Gone`].

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use tokio::sync::mpsc;
use vibes_events::Event;

use crate::commands::MAX_BATCH;
use crate::producer::Producer;

/// Messages (a line's events, or one `run.*` event) waiting to be appended, at most.
pub const QUEUE: usize = 64;

/// The recorder's thread has ended (an append failed); nothing more is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// Where a run's events go to be appended.
#[derive(Debug, Clone)]
pub struct Recorder {
    queue: mpsc::Sender<Vec<Event>>,
}

/// The thread's end of the queue.
#[derive(Debug)]
pub struct Queue(mpsc::Receiver<Vec<Event>>);

/// What was appended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Events stored.
    pub stored: u64,
    /// Events stored, by type.
    pub by_type: BTreeMap<String, u64>,
}

/// A recorder and the queue its thread drains ([`Queue::record`]).
pub fn channel() -> (Recorder, Queue) {
    let (queue, receiver) = mpsc::channel(QUEUE);
    (Recorder { queue }, Queue(receiver))
}

impl Recorder {
    /// Queues `events`, waiting while the queue is full.
    pub async fn send(&self, events: Vec<Event>) -> Result<(), Gone> {
        if events.is_empty() {
            return Ok(());
        }
        self.queue.send(events).await.map_err(|_| Gone)
    }
}

impl Queue {
    /// Appends everything queued until every [`Recorder`] is dropped. Blocks: run it on
    /// a thread of its own.
    ///
    /// Errors: an append failed (with how many events were stored before it).
    pub fn record(mut self, producer: &Producer<'_>) -> Result<Recorded> {
        let mut recorded = Recorded::default();
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = self.0.blocking_recv() {
            batch.extend(first);
            while batch.len() < MAX_BATCH {
                match self.0.try_recv() {
                    Ok(more) => batch.extend(more),
                    Err(_) => break,
                }
            }
            producer.append(&batch).with_context(|| {
                format!("{} events stored before this failure", recorded.stored)
            })?;
            recorded.stored += batch.len() as u64;
            for event in batch.drain(..) {
                *recorded
                    .by_type
                    .entry(event.event_type().to_owned())
                    .or_default() += 1;
            }
        }
        Ok(recorded)
    }
}
