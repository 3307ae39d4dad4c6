//! Where the host's commands append: the log itself, or, on Iggy, the outbox in front of
//! it (which queues appends while the server cannot be reached).

use std::fmt;

use anyhow::{Context, Result};
use vibes_events::Event;
use vibes_iggy::{OutboxedIggy, Receipt};
use vibes_log::{AppendOptions, EventLog, PartitionBatch, RecordAddress};

use crate::storage::Storage;

/// What became of one appended event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Stored in the log at this address.
    Stored(RecordAddress),
    /// Durable in the local outbox, to be appended to this partition when the server
    /// answers again; its offset is not known yet.
    Queued { partition: u32 },
}

impl Ack {
    /// `<topic> <partition> <offset>`, or `<topic> <partition> queued`.
    pub fn line(&self, topic: &impl fmt::Display) -> String {
        match self {
            Ack::Stored(a) => format!("{topic} {} {}", a.partition, a.offset),
            Ack::Queued { partition } => format!("{topic} {partition} queued"),
        }
    }
}

/// Appends events for a command.
#[derive(Debug)]
pub struct Producer<'a> {
    storage: &'a Storage,
    log: EventLog<Event>,
    outbox: Option<OutboxedIggy>,
}

impl<'a> Producer<'a> {
    /// A producer of the configured topic (created if it is new).
    pub fn open(storage: &'a Storage) -> Result<Self> {
        Ok(Producer {
            log: storage.events()?,
            outbox: storage.outbox().cloned(),
            storage,
        })
    }

    /// The topic.
    pub fn log(&self) -> &EventLog<Event> {
        &self.log
    }

    /// Appends `events` (each partition's share in one backend call) and says what became
    /// of each, in order.
    pub fn append(&self, events: &[Event], options: AppendOptions) -> Result<Vec<Ack>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let Some(outbox) = &self.outbox else {
            let addresses = self
                .storage
                .block_on(self.log.append_batch_with(events, options))
                .context("storing events")?;
            return Ok(addresses.into_iter().map(Ack::Stored).collect());
        };
        let mut acks = vec![Ack::Queued { partition: 0 }; events.len()];
        let batches = self
            .log
            .records_by_partition(events)
            .context("encoding events")?;
        for PartitionBatch {
            partition,
            indices,
            records,
        } in batches
        {
            let receipt = self
                .storage
                .block_on(outbox.append(self.log.topic(), partition, records, options))
                .context("storing events")?;
            match receipt {
                Receipt::Stored(ack) => {
                    for (i, address) in indices.into_iter().zip(ack.addresses()) {
                        acks[i] = Ack::Stored(address);
                    }
                }
                Receipt::Queued { partition, .. } => {
                    for i in indices {
                        acks[i] = Ack::Queued { partition };
                    }
                }
            }
        }
        Ok(acks)
    }
}
