//! One partition: a directory of segments, recovered on open, appended to by one writer
//! thread per process (cross-process writers take turns on `writer.lock`), read by
//! anyone.
//!
//! One job per module: [`lock`] (the writer lock), [`walk`] (batches and damage in a
//! segment), [`recover`] (opening the files), [`read`] (records, times, resuming after
//! damage), [`writer`] (the writer thread), [`check`] (check and repair) and
//! [`retention`] (deleting sealed segments). This file holds the state they share: the
//! view of the files, the handle, and catching up with other processes.

mod check;
mod lock;
mod read;
mod recover;
mod retention;
mod walk;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, Sender};
use std::thread;

use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, oneshot};
use vibes_log::backend::{AppendAck, Record};
use vibes_log::{Durability, LogError, Offset, TopicName, Watermarks};

pub use check::{Damage, PartitionCheck};
pub(crate) use retention::{apply_retention_now, trim_before};

use crate::format::HEADER_LEN;
use crate::fsutil::{create_dir_durable, sync_dir};
use crate::options::FileLogOptions;
use crate::segment::{BatchMeta, Segment, index_batch, log_name};
use lock::{WriterLock, open_lock};
use recover::recover;
use walk::{Judge, walk};
use writer::writer_loop;

/// What this process knows of a partition: its segments and where its data ends.
#[derive(Debug)]
struct View {
    /// Sorted by base offset; the last is the active segment.
    segments: Vec<Arc<Segment>>,
    /// Next offset to be assigned.
    high: Offset,
    /// End of the last complete batch in the active segment.
    end: u64,
    /// Append time of the newest batch, microseconds.
    last_timestamp_us: i64,
}

impl View {
    fn active(&self) -> &Arc<Segment> {
        self.segments
            .last()
            .expect("a partition has at least one segment")
    }

    /// Takes a batch found in the active segment into the view, once: batches the view
    /// already holds (found earlier by another reader or written by this process) are
    /// skipped by position.
    fn apply(&mut self, meta: &BatchMeta, interval: u32) {
        if meta.position < self.end {
            return;
        }
        let active = Arc::clone(self.active());
        let mut index = active.index.write();
        index_batch(
            index.get_or_insert_with(Vec::new),
            active.base,
            meta,
            interval,
        );
        self.high = meta.base_offset + meta.count;
        self.end = meta.position + meta.len;
        self.last_timestamp_us = meta.timestamp_us;
    }
}

/// An append waiting for the writer thread.
pub(crate) struct AppendRequest {
    pub(crate) records: Vec<Record>,
    pub(crate) durability: Durability,
    pub(crate) reply: oneshot::Sender<Result<AppendAck, LogError>>,
}

/// State shared by the partition's handle and its writer thread.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) topic: TopicName,
    pub(crate) number: u32,
    dir: PathBuf,
    options: Arc<FileLogOptions>,
    view: RwLock<View>,
    signal: Arc<Notify>,
    poisoned: Mutex<Option<String>>,
    /// The active segment's length when the watcher last looked.
    seen_len: std::sync::atomic::AtomicU64,
}

/// A partition handle. Dropping it ends the writer thread once it has finished the
/// appends already queued.
#[derive(Debug)]
pub(crate) struct Partition {
    pub(crate) shared: Arc<Shared>,
    writer: Mutex<Option<Sender<AppendRequest>>>,
}

impl Partition {
    /// Opens the partition directory, creating it if needed, and recovers its last
    /// segment (under the writer lock, so no other process is mid-write).
    pub(crate) fn open(
        topic: TopicName,
        number: u32,
        dir: PathBuf,
        options: Arc<FileLogOptions>,
        signal: Arc<Notify>,
    ) -> Result<Partition, LogError> {
        create_dir_durable(&dir)?;
        let lock_file = open_lock(&dir)?;
        let view = {
            let _lock = WriterLock::acquire(&lock_file, &dir)?;
            recover(&dir, &options, false)?
        };
        Ok(Partition {
            shared: Arc::new(Shared {
                topic,
                number,
                dir,
                options,
                view: RwLock::new(view),
                signal,
                poisoned: Mutex::new(None),
                seen_len: std::sync::atomic::AtomicU64::new(0),
            }),
            writer: Mutex::new(None),
        })
    }

    /// Queues an append for the writer thread (started on first use).
    pub(crate) fn submit(&self, request: AppendRequest) -> Result<(), LogError> {
        let mut writer = self.writer.lock();
        if writer.is_none() {
            let (tx, rx) = mpsc::channel();
            let shared = Arc::clone(&self.shared);
            thread::Builder::new()
                .name(format!("vibes-writer-{}-{}", shared.topic, shared.number))
                .spawn(move || writer_loop(shared, rx))
                .map_err(|e| LogError::io("starting the partition writer thread", e))?;
            *writer = Some(tx);
        }
        writer
            .as_ref()
            .expect("started above")
            .send(request)
            .map_err(|_| LogError::Closed)
    }
}

/// How a walk over a segment judges a frame that is not a valid batch.
impl Shared {
    fn poisoned(&self) -> Option<LogError> {
        self.poisoned
            .lock()
            .as_ref()
            .map(|reason| LogError::Poisoned {
                reason: reason.clone(),
            })
    }

    fn poison(&self, reason: String) -> LogError {
        tracing::error!(topic = %self.topic, partition = self.number, %reason, "partition refuses further writes");
        *self.poisoned.lock() = Some(reason.clone());
        LogError::Poisoned { reason }
    }

    /// Takes in batches other processes appended (and segments they started), and
    /// forgets leading segments retention deleted (in any process). Never
    /// changes a file: an incomplete or invalid batch at the tail is left for a writer.
    /// A view whose active segment was deleted (retention elsewhere) is reloaded from
    /// the directory, under the writer lock.
    fn refresh(&self) -> Result<(), LogError> {
        let unchanged = {
            let view = self.view.read();
            let len = view.active().len()?;
            let rolled =
                view.high != view.active().base && self.dir.join(log_name(view.high)).exists();
            len == view.end && !rolled
        };
        if !unchanged {
            let stale = {
                let mut view = self.view.write();
                self.catch_up(&mut view, false)? == CatchUp::Stale
            };
            if stale {
                let lock_file = open_lock(&self.dir)?;
                let _lock = WriterLock::acquire(&lock_file, &self.dir)?;
                *self.view.write() = recover(&self.dir, &self.options, false)?;
            }
        }
        self.drop_deleted_segments()
    }

    /// Brings `view` up to date with the files. `locked`: the caller holds the writer
    /// lock, so a segment file still without its header is a crashed roll, which it
    /// completes.
    fn catch_up(&self, view: &mut View, locked: bool) -> Result<CatchUp, LogError> {
        loop {
            let active = Arc::clone(view.active());
            if !active.log_path.exists() {
                // Deleted under us (retention in another process): the view may be
                // several segments behind, so only a fresh listing can tell.
                return Ok(CatchUp::Stale);
            }
            let len = active.len()?;
            if len < view.end {
                // The file shrank: a repair in another process rewrote it.
                return Ok(CatchUp::Stale);
            }
            if len > view.end {
                let mut metas = Vec::new();
                let walked = walk(
                    &active,
                    view.end,
                    len,
                    view.high,
                    Judge::Tail { locked },
                    |meta| metas.push(*meta),
                    |_| {},
                )?;
                for meta in &metas {
                    view.apply(meta, self.options.index_interval_bytes);
                }
                if walked.end > view.end {
                    view.end = walked.end;
                    view.high = walked.next;
                }
                if walked.tail.is_some() {
                    return Ok(CatchUp::BadTail);
                }
            }
            let next = self.dir.join(log_name(view.high));
            if view.high == active.base || !next.exists() {
                return Ok(CatchUp::Current);
            }
            // Another process sealed the active segment and started the next one.
            let mut segment = Segment::open(&self.dir, view.high)?;
            if segment.len()? < HEADER_LEN as u64 {
                if !locked {
                    // Being created right now, or a crashed roll: a writer decides.
                    return Ok(CatchUp::Current);
                }
                tracing::warn!(file = %segment.log_path.display(), "completing a roll cut short before the segment header was written");
                segment = Segment::create(&self.dir, view.high)?;
                sync_dir(&self.dir)?;
            }
            segment.check_header()?;
            *segment.index.write() = Some(Vec::new());
            view.segments.push(Arc::new(segment));
            view.end = HEADER_LEN as u64;
        }
    }

    /// The offsets held, up to date with other processes.
    pub(crate) fn watermarks(&self) -> Result<Watermarks, LogError> {
        self.refresh()?;
        let view = self.view.read();
        Ok(Watermarks {
            low: view.segments[0].base,
            high: view.high,
        })
    }

    /// Forgets segments that retention (in any process) deleted.
    fn drop_deleted_segments(&self) -> Result<(), LogError> {
        let first_gone = {
            let view = self.view.read();
            view.segments.len() > 1 && !view.segments[0].log_path.exists()
        };
        if first_gone {
            let mut view = self.view.write();
            while view.segments.len() > 1 && !view.segments[0].log_path.exists() {
                view.segments.remove(0);
            }
        }
        Ok(())
    }

    /// Bytes on disk of the partition's segments.
    pub(crate) fn bytes_on_disk(&self) -> Result<u64, LogError> {
        let segments = self.view.read().segments.clone();
        segments.iter().map(|s| s.len()).sum()
    }

    /// Whether the files changed since the last call in a way this process has not
    /// taken in (another process appended or rolled). A tail that stays unreadable (a
    /// crashed writer's, until the next writer recovers it) counts once, not forever.
    pub(crate) fn changed_on_disk(&self) -> bool {
        let view = self.view.read();
        let rolled = view.high != view.active().base && self.dir.join(log_name(view.high)).exists();
        let len = view.active().len().unwrap_or(view.end);
        let seen = self
            .seen_len
            .swap(len, std::sync::atomic::Ordering::Relaxed);
        rolled || (len > view.end && len != seen)
    }
}

/// How a catch-up with the files ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CatchUp {
    /// The view holds everything complete in the files.
    Current,
    /// The active segment ends in an incomplete or invalid batch: a writer in progress,
    /// or a crashed one whose tail the next lock holder must recover.
    BadTail,
    /// The active segment was deleted: the view must be rebuilt from a listing.
    Stale,
}
