//! The usage plugin, folded by an ingest that fills an empty log: the ingest counts the
//! calls it stores with the plugin's own fold (`transcripts::PassReport::calls`, fed
//! every `claude.api_call` and `session.start`), so instead of the first `vibes usage`
//! reading them all back, it has the runtime adopt that state at the end
//! ([`vibes_plugin::Runtime::adopt`]: a snapshot and the group's commit at the log's
//! ends). This module checks that the appends landed where such a fold needs them.
//!
//! Only when that state is exactly what a catch-up would build: the file backend (on
//! Iggy other members may run), every partition empty when the ingest began, every
//! append stored at the next offset of its partition (no other writer in between, no
//! outbox queue), and no `serve` running at the end (this process takes its lock, as a
//! catch-up does). Otherwise nothing is adopted, and the next report catches up as
//! usual. The usage plugin's handling depends on the events only (`Usage::add`), never
//! on the times the log appended them, which an appender does not learn.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use vibes_log::Offset;
use vibes_plugin::Folded;
use vibes_plugin_usage::Usage;

use crate::commands::serve;
use crate::config::BackendKind;
use crate::plugins;
use crate::producer::{Ack, Producer};
use crate::storage::Storage;

/// Where an ingest's appends must land for its fold to be the whole input; see the
/// [module docs](self).
#[derive(Debug)]
pub struct UsageFold {
    from: BTreeMap<u32, Offset>,
    /// Per partition: the offset the next append must get.
    next: BTreeMap<u32, Offset>,
}

impl UsageFold {
    /// A fold, when the backend is the file log and every partition of `producer`'s
    /// topic is empty.
    pub fn start(storage: &Storage, producer: &Producer<'_>) -> Result<Option<UsageFold>> {
        if storage.config.backend != BackendKind::File {
            return Ok(None);
        }
        let log = producer.log();
        let mut from = BTreeMap::new();
        for p in 0..log.partitions() {
            let marks = storage
                .block_on(log.watermarks(p))
                .with_context(|| format!("reading {} partition {p}", log.topic()))?;
            if marks.high != marks.low {
                return Ok(None);
            }
            from.insert(p, marks.high);
        }
        Ok(Some(UsageFold {
            next: from.clone(),
            from,
        }))
    }

    /// One append went through, with `acks` for all its records in order. Returns
    /// `None` (the fold is over) when a record did not land at its partition's next
    /// offset.
    pub fn stored(mut self, acks: &[Ack]) -> Option<Self> {
        for ack in acks {
            let Ack::Stored(address) = ack else {
                return None;
            };
            let next = self.next.get_mut(&address.partition)?;
            if address.offset != *next {
                return None;
            }
            *next += 1;
        }
        Some(self)
    }

    /// Has the runtime adopt `usage`, the fold of every `handled` event the plugin
    /// wants among those stored, unless a `serve` runs; returns whether it did.
    pub fn finish(self, storage: &Storage, usage: &Usage, handled: u64) -> Result<bool> {
        let Some(_lock) = serve::try_lock_serve(&storage.config.data_dir)? else {
            return Ok(false);
        };
        let folded = Folded {
            from: self.from,
            to: self.next,
            handled,
        };
        let runtime = plugins::catch_up_runtime(storage);
        storage
            .block_on(runtime.adopt(usage, &folded))
            .context("saving the usage plugin's state")
    }
}
