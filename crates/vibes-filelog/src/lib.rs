//! vibes-filelog: the embedded default backend of vibes.
//!
//! A [`FileLog`] keeps topics as directories of partitions, each a sequence of
//! append-only segment files of checksummed batches with a sparse index. It implements
//! [`vibes_log::backend::LogBackend`], so everything written against `vibes-log` runs on it.
//!
//! - **Durability** per log, overridable per append: `Always` (fdatasync before the
//!   acknowledgement; concurrent appends share one fsync), `Interval`, `Never`.
//!   Directories are fsync'd when segments are created or deleted. A failed write or
//!   fsync poisons the partition: later appends fail with `Poisoned`.
//! - **Recovery** reads only the tail of each partition's last segment. Only a writer
//!   cuts, and only a torn tail: bytes after the last completed fsync, which a synced
//!   mark in the segment header tells apart. Damage anywhere else is kept: reading it
//!   is `Corrupt` with file and byte position (a consumer moves past it), and
//!   [`FileLog::check`] with `repair` moves it to a quarantine file, keeping every
//!   intact batch. A missing, short or damaged index is rebuilt.
//! - **Processes** share a data directory: appends take turns on a per-partition lock
//!   file, and readers see other processes' records within a few milliseconds.
//! - **Async callers never block on disk**: appends wait on the partition's writer
//!   thread; every other file operation of an async method runs on tokio's blocking
//!   pool, so a runtime's workers stay free for other tasks.
//! - **[`Outbox`]**: a durable outbox in front of any other backend (a remote one, such
//!   as Apache Iggy): appends that cannot reach it are fsync'd into a local queue, a
//!   `FileLog`, and shipped in order, once, when it answers again. See [`outbox`].
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use vibes_events::{Event, Text};
//! use vibes_filelog::{FileLog, FileLogOptions};
//! use vibes_log::EventLog;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! # let dir = tempfile::tempdir().unwrap();
//! let backend = Arc::new(FileLog::open(dir.path(), FileLogOptions::default())?);
//! let log = EventLog::<Event>::open(backend, "vibes/events").await?;
//! let events = [Event::claude(Text::new("hello")), Event::claude(Text::new("again"))];
//! log.append_batch(&events).await?; // acknowledged once fsync'd (durability `always`)
//!
//! let mut consumer = log.consumer("stats").await?; // resumes after its last commit
//! let batch = consumer.poll(1000, Duration::from_secs(1)).await?;
//! assert_eq!(batch.events.len(), 2);
//! assert_eq!(batch.events[1].event.summary().to_string(), "again");
//! consumer.commit().await?;
//! # Ok::<_, vibes_log::LogError>(())
//! # }).unwrap();
//! ```
//!
//! The byte layout, the fsync protocol and the crash analysis are in docs/FORMAT.md;
//! [`format`] is the code. Unix only (it relies on `pread`/`pwrite` and `flock`).
//!
//! Depends on `vibes-log` (and through it `vibes-events`) only among vibes crates; it
//! must never depend on another backend or the host.
#![warn(missing_docs)]

mod blocking;
#[cfg(feature = "fault-injection")]
pub mod fault;
#[cfg(not(feature = "fault-injection"))]
mod fault;
pub mod format;
mod fsutil;
mod group_share;
mod log;
mod offsets;
mod options;
pub mod outbox;
mod partition;
mod quarantine;
mod segment;

pub use log::FileLog;
pub use offsets::DamagedCommit;
pub use options::{FileLogOptions, Retention};
pub use outbox::{Outbox, OutboxDepth, OutboxOptions};
pub use partition::{Damage, PartitionCheck};
pub use quarantine::Quarantined;
