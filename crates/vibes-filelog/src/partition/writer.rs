//! The writer thread of a partition: appends gathered into write groups, one write
//! and at most one fsync per group, under the cross-process writer lock; segments
//! rolled when full.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use jiff::Timestamp;
use vibes_log::backend::AppendAck;
use vibes_log::backend::local::append_time;
use vibes_log::{Durability, LogError, Offset};

use super::lock::{WriterLock, open_lock};
use super::recover::recover;
use super::retention::apply_retention;
use super::{AppendRequest, CatchUp, Shared, View};
use crate::format::{self, HEADER_LEN, INDEX_ENTRY_LEN, MAX_BATCH_LEN};
use crate::fsutil::{io_err, sync_dir};
use crate::segment::{BatchMeta, Segment, write_synced_mark};

/// The writer thread's own handles, kept between write groups.
struct Writer {
    lock_file: Arc<File>,
    /// Write handle of the active segment, with its base offset.
    log: Option<(Offset, File)>,
    /// Write handle of the active segment's index.
    index: Option<(Offset, File)>,
    /// When unsynced writes of `interval` appends must be fsync'd at the latest.
    sync_due: Option<Instant>,
    /// Whether anything was written since the last fsync.
    dirty: bool,
    /// Base offset of the active segment and the end of what this writer wrote to it.
    written: Option<(Offset, u64)>,
    /// A synced mark was written since the last fsync (the next one makes it durable).
    mark_pending: bool,
    buf: Vec<u8>,
}

impl Writer {
    /// After a completed data fsync: records in the segment header that what this
    /// writer wrote is durable. The mark itself becomes durable with the next fsync.
    fn mark_synced(&mut self) {
        if let (Some((base, file)), Some((written_base, end))) = (&self.log, self.written)
            && *base == written_base
        {
            match write_synced_mark(file, end) {
                Ok(()) => self.mark_pending = true,
                Err(e) => {
                    tracing::warn!(error = %e, "could not write the synced mark; recovery treats the unmarked tail as unsynced")
                }
            }
        }
    }
}

/// Most appends one write group takes.
const MAX_GROUP: usize = 4096;
/// Longest a write group waits for the producers of the previous group to come back.
const GATHER: Duration = Duration::from_micros(100);

/// The writer thread: takes append requests until the partition handle is dropped,
/// then makes what it wrote durable.
pub(super) fn writer_loop(shared: Arc<Shared>, requests: Receiver<AppendRequest>) {
    let mut last_group = 0usize;
    let mut writer = match open_lock(&shared.dir) {
        Ok(lock_file) => Writer {
            lock_file: Arc::new(lock_file),
            log: None,
            index: None,
            sync_due: None,
            dirty: false,
            written: None,
            mark_pending: false,
            buf: Vec::new(),
        },
        Err(e) => {
            let error = shared.poison(format!("cannot open the writer lock: {e}"));
            for request in requests {
                let _ = request.reply.send(Err(clone_error(&error)));
            }
            return;
        }
    };
    loop {
        let first = match writer.sync_due {
            Some(deadline) => {
                match requests.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(request) => request,
                    Err(RecvTimeoutError::Timeout) => {
                        sync_now(&shared, &mut writer);
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            None => match requests.recv() {
                Ok(request) => request,
                Err(_) => break,
            },
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match requests.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        // Concurrent producers re-submit one by one after their acks; when the last
        // group was shared, wait briefly for them so that the next fsync serves as many
        // again. A lone producer (last group of one) never waits.
        if last_group > 1 && group.len() < last_group {
            let deadline = Instant::now() + GATHER;
            while group.len() < last_group.min(MAX_GROUP) {
                match requests.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(request) => group.push(request),
                    Err(_) => break,
                }
            }
        }
        last_group = group.len();
        write_group(&shared, &mut writer, group);
    }
    // Closing: make what was written durable, whatever its mode promised, and then the
    // synced mark that says so.
    if writer.dirty {
        sync_now(&shared, &mut writer);
    }
    if writer.mark_pending
        && shared.poisoned().is_none()
        && let Some((_, file)) = &writer.log
        && let Err(e) = crate::fault::sync_data(file)
    {
        shared.poison(format!("fsync failed: {e}"));
    }
}

/// fsyncs what was written, then writes the synced mark.
fn sync_now(shared: &Shared, writer: &mut Writer) {
    if let Some((_, file)) = &writer.log {
        match crate::fault::sync_data(file) {
            Ok(()) => writer.mark_synced(),
            Err(e) => {
                shared.poison(format!("fsync failed: {e}"));
            }
        }
    }
    writer.sync_due = None;
    writer.dirty = false;
}

/// A copy of `error` for each request of a failed group (errors are not `Clone`).
fn clone_error(error: &LogError) -> LogError {
    match error {
        LogError::Poisoned { reason } => LogError::Poisoned {
            reason: reason.clone(),
        },
        other => LogError::Backend {
            message: other.to_string(),
            transient: false,
            source: None,
        },
    }
}

/// Appends a group of requests with one write (per segment) and at most one fsync.
fn write_group(shared: &Shared, writer: &mut Writer, group: Vec<AppendRequest>) {
    if let Some(error) = shared.poisoned() {
        for request in group {
            let _ = request.reply.send(Err(clone_error(&error)));
        }
        return;
    }
    let mut group: Vec<AppendRequest> = group
        .into_iter()
        .filter_map(|request| {
            let frame = format::batch_frame_len(
                request
                    .records
                    .iter()
                    .map(|r| (r.key.as_ref().map(Bytes::len), r.payload.len())),
            );
            if frame > MAX_BATCH_LEN {
                let _ = request.reply.send(Err(LogError::TooLarge {
                    what: "a batch's frame".to_owned(),
                    size: frame,
                    limit: MAX_BATCH_LEN,
                }));
                None
            } else {
                Some(request)
            }
        })
        .collect();
    if group.is_empty() {
        return;
    }
    match append_locked(shared, writer, &group) {
        Ok((acks, needs_sync)) => {
            let mut result = Ok(());
            if needs_sync {
                let file = &writer.log.as_ref().expect("written above").1;
                match crate::fault::sync_data(file) {
                    Ok(()) => writer.mark_synced(),
                    Err(e) => result = Err(shared.poison(format!("fsync failed: {e}"))),
                }
                writer.sync_due = None;
                writer.dirty = false;
            } else {
                writer.dirty = true;
                let now = Instant::now();
                for request in &group {
                    if let Durability::Interval(every) = request.durability {
                        let due = now + every;
                        writer.sync_due = Some(writer.sync_due.map_or(due, |d| d.min(due)));
                    }
                }
            }
            shared.signal.notify_waiters();
            for (request, ack) in group.drain(..).zip(acks) {
                let reply = match &result {
                    Ok(()) => Ok(ack),
                    Err(e) => Err(clone_error(e)),
                };
                let _ = request.reply.send(reply);
            }
        }
        Err(error) => {
            for request in group {
                let _ = request.reply.send(Err(clone_error(&error)));
            }
        }
    }
}

/// Under the cross-process lock: catch up with other writers, recover a torn tail they
/// left, write the group, publish it to readers, extend the index. Returns the acks and
/// whether an fsync is due.
fn append_locked(
    shared: &Shared,
    writer: &mut Writer,
    group: &[AppendRequest],
) -> Result<(Vec<AppendAck>, bool), LogError> {
    let lock_file = Arc::clone(&writer.lock_file);
    let _lock = WriterLock::acquire(&lock_file, &shared.dir)?;
    let mut view = shared.view.write();
    match shared.catch_up(&mut view, true)? {
        CatchUp::Current => {}
        // Holding the lock, an incomplete or invalid tail is a crashed writer's, and a
        // stale view needs a listing: recover either way.
        CatchUp::BadTail | CatchUp::Stale => {
            drop(view);
            let recovered = recover(&shared.dir, &shared.options, true)?;
            view = shared.view.write();
            *view = recovered;
            writer.log = None;
            writer.index = None;
            writer.written = None;
        }
    }
    let options = &shared.options;
    let mut timestamp = append_time(Timestamp::from_microsecond(view.last_timestamp_us).ok());
    let mut acks = Vec::with_capacity(group.len());
    let mut pending: Vec<BatchMeta> = Vec::new();
    writer.buf.clear();
    for request in group {
        let frame_len = format::batch_frame_len(
            request
                .records
                .iter()
                .map(|r| (r.key.as_ref().map(Bytes::len), r.payload.len())),
        ) as u64;
        let used = view.end + writer.buf.len() as u64;
        if used > HEADER_LEN as u64 && used + frame_len > options.segment_bytes {
            flush(shared, writer, &mut view, &mut pending)?;
            // Batches of this group may already be written: refuse further writes
            // rather than let a retry store them twice.
            roll(shared, writer, &mut view)
                .map_err(|e| shared.poison(format!("rolling to a new segment failed: {e}")))?;
            timestamp = append_time(Timestamp::from_microsecond(view.last_timestamp_us).ok());
        }
        let position = view.end + writer.buf.len() as u64;
        let base_offset = view.high + pending.iter().map(|m| m.count).sum::<u64>();
        let count = request.records.len() as u64;
        format::encode_batch(
            &mut writer.buf,
            base_offset,
            timestamp.as_microsecond(),
            request
                .records
                .iter()
                .map(|r| (r.id, r.key.as_deref(), &r.payload[..])),
        );
        pending.push(BatchMeta {
            position,
            len: frame_len,
            base_offset,
            count,
            timestamp_us: timestamp.as_microsecond(),
        });
        acks.push(AppendAck {
            partition: shared.number,
            base_offset,
            last_offset: base_offset + count - 1,
            timestamp,
        });
    }
    flush(shared, writer, &mut view, &mut pending)?;
    drop(view);
    let needs_sync = group.iter().any(|r| r.durability == Durability::Always)
        || writer.sync_due.is_some_and(|due| Instant::now() >= due);
    Ok((acks, needs_sync))
}

/// Writes the buffered batches to the active segment, publishes them, and appends the
/// index entries they earned.
fn flush(
    shared: &Shared,
    writer: &mut Writer,
    view: &mut View,
    pending: &mut Vec<BatchMeta>,
) -> Result<(), LogError> {
    if writer.buf.is_empty() {
        return Ok(());
    }
    let active = Arc::clone(view.active());
    let log = writer_handle(&mut writer.log, &active.log_path, active.base)?;
    if let Err(e) = log.write_all_at(&writer.buf, view.end) {
        return Err(shared.poison(format!("writing {}: {e}", active.log_path.display())));
    }
    for meta in pending.drain(..) {
        view.apply(&meta, shared.options.index_interval_bytes);
    }
    writer.written = Some((active.base, view.end));
    writer.buf.clear();
    // Write every entry the file lacks. The file, not this process's memory, says what
    // is there (after a recovery or another process's writes they can differ); entries
    // are a function of the batches, so the file's entries are a prefix of ours.
    let index = writer_handle(&mut writer.index, &active.index_path, active.base)?;
    let in_file = index
        .metadata()
        .map(|m| (m.len().saturating_sub(HEADER_LEN as u64) / INDEX_ENTRY_LEN as u64) as usize)
        .map_err(|e| io_err("reading the length of", &active.index_path, e))?;
    let missing: Vec<u8> = active
        .index
        .read()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .skip(in_file)
        .flat_map(|entry| entry.encode())
        .collect();
    if !missing.is_empty() {
        let at = (HEADER_LEN + in_file * INDEX_ENTRY_LEN) as u64;
        // The index is derived data: a failed write only costs a rebuild on recovery.
        if let Err(e) = index.write_all_at(&missing, at) {
            tracing::warn!(file = %active.index_path.display(), error = %e, "index write failed; it will be rebuilt");
        }
    }
    Ok(())
}

/// The writer's handle for `path`, reopened if the file was replaced or the segment
/// changed.
fn writer_handle<'a>(
    slot: &'a mut Option<(Offset, File)>,
    path: &Path,
    base: Offset,
) -> Result<&'a File, LogError> {
    use std::os::unix::fs::MetadataExt;
    // Recovery in any process may replace a file (an index rewritten by rename): a
    // handle to the old inode would write into a file no one reads.
    let stale = slot.as_ref().is_none_or(|(b, file)| {
        *b != base
            || match (file.metadata(), fs::metadata(path)) {
                (Ok(open), Ok(named)) => open.ino() != named.ino() || open.dev() != named.dev(),
                _ => true,
            }
    });
    if stale {
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| io_err("opening for writing", path, e))?;
        *slot = Some((base, file));
    }
    Ok(&slot.as_ref().expect("set above").1)
}

/// Seals the active segment (fsync'd, with a whole index) and starts the next one;
/// then applies retention.
fn roll(shared: &Shared, writer: &mut Writer, view: &mut View) -> Result<(), LogError> {
    let active = Arc::clone(view.active());
    // Sealed segments are durable whatever durability wrote them, also when another
    // process wrote them and this one never opened the segment for writing.
    let log = writer_handle(&mut writer.log, &active.log_path, active.base)?;
    if let Err(e) = crate::fault::sync_data(log) {
        return Err(shared.poison(format!("fsync before sealing failed: {e}")));
    }
    let entries = active.index.read().clone().unwrap_or_default();
    active.write_index_file(&entries)?;
    let next = Segment::create(&shared.dir, view.high)?;
    sync_dir(&shared.dir)?;
    view.segments.push(Arc::new(next));
    view.end = HEADER_LEN as u64;
    writer.log = None;
    writer.index = None;
    writer.sync_due = None;
    writer.dirty = false;
    writer.written = None;
    writer.mark_pending = false;
    apply_retention(shared, view)
}
