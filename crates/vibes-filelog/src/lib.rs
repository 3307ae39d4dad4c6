//! vibes-filelog: the embedded default backend of vibes.
//!
//! A [`FileLog`] keeps topics as directories of partitions, each a sequence of
//! append-only segment files of checksummed batches with a sparse index. It implements
//! [`vibes_log::LogBackend`], so everything written against `vibes-log` runs on it.
//!
//! - **Durability** per log, overridable per append: `Always` (fdatasync before the
//!   acknowledgement; concurrent appends share one fsync), `Interval`, `Never`.
//!   Directories are fsync'd when segments are created or deleted. A failed write or
//!   fsync poisons the partition: later appends fail with `Poisoned`.
//! - **Recovery** on open reads only the tail of each partition's last segment: a torn
//!   final batch is cut off, a missing or short index is rebuilt, and damage anywhere
//!   else is `Corrupt` with file and byte position (cut there only when
//!   [`FileLogOptions::repair`] asks).
//! - **Processes** share a data directory: appends take turns on a per-partition lock
//!   file, and readers see other processes' records within a few milliseconds.
//!
//! The byte layout, the fsync protocol and the crash analysis are in docs/FORMAT.md;
//! [`format`] is the code. Unix only (it relies on `pread`/`pwrite` and `flock`).
//!
//! Depends on `vibes-log` (and through it `vibes-events`) only among vibes crates; it
//! must never depend on another backend or the host.
#![warn(missing_docs)]

#[cfg(feature = "fault-injection")]
pub mod fault;
#[cfg(not(feature = "fault-injection"))]
mod fault;
pub mod format;
mod fsutil;
mod log;
mod offsets;
mod options;
mod partition;
mod segment;

pub use log::FileLog;
pub use options::{FileLogOptions, Retention};
