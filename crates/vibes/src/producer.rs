//! How the host's commands append, and what they report of each event: stored at an
//! address, or (on Iggy, whose backend is the outbox in front of the server) queued
//! while the server cannot be reached.

use std::fmt;

use anyhow::{Context, Result};
use vibes_events::Event;
use vibes_log::backend::Record;
use vibes_log::{AppendOptions, EventLog, EventReceipt, RecordAddress};

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

impl TryFrom<EventReceipt> for Ack {
    type Error = anyhow::Error;

    fn try_from(receipt: EventReceipt) -> Result<Self> {
        match receipt {
            EventReceipt::Stored(address) => Ok(Ack::Stored(address)),
            EventReceipt::Queued { partition } => Ok(Ack::Queued { partition }),
            other => anyhow::bail!(
                "the log answered an append with {other:?}, which this host does not know"
            ),
        }
    }
}

/// Appends events for a command, with the durability every command uses: the
/// command's `--durability` flag if it has one and it was given, else `log.durability`
/// (see [`Storage::append_options`]).
#[derive(Debug)]
pub struct Producer<'a> {
    storage: &'a Storage,
    log: EventLog<Event>,
    options: AppendOptions,
}

impl<'a> Producer<'a> {
    /// A producer of the configured topic (created if it is new); `durability_flag` is
    /// the command's `--durability` value, if any.
    ///
    /// Errors: the flag is not a durability level; the topic cannot be opened.
    pub fn open(storage: &'a Storage, durability_flag: Option<&str>) -> Result<Self> {
        Ok(Producer {
            options: storage.append_options(durability_flag)?,
            log: storage.events()?,
            storage,
        })
    }

    /// The topic.
    pub fn log(&self) -> &EventLog<Event> {
        &self.log
    }

    /// Appends `events` (each partition's share in one backend call) and says what became
    /// of each, in order. On Iggy, events the outbox had to queue are `Queued` rather
    /// than waited for.
    /// Appends events already encoded with [`EventLog::encode`] (on other threads,
    /// say), in order; acknowledged as [`append`](Self::append) acknowledges.
    pub fn append_encoded(&self, encoded: Vec<(u32, Record)>) -> Result<Vec<Ack>> {
        let receipts = self
            .storage
            .block_on(self.log.append_encoded(encoded, self.options))
            .context("storing events")?;
        receipts.into_iter().map(Ack::try_from).collect()
    }

    pub fn append(&self, events: &[Event]) -> Result<Vec<Ack>> {
        let encoded = events
            .iter()
            .map(|event| self.log.encode(event))
            .collect::<Result<Vec<_>, _>>()
            .context("storing events")?;
        self.append_encoded(encoded)
    }
}
