//! One partition: a directory of segments, recovered on open, appended to by one writer
//! thread per process (cross-process writers take turns on `writer.lock`), read by
//! anyone.

use std::fs::{self, File, OpenOptions};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use jiff::Timestamp;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, oneshot};
use vibes_log::backend::local::append_time;
use vibes_log::backend::{AppendAck, Record, StoredRecord};
use vibes_log::{Durability, LogError, Offset, RecordAddress, TopicName, Watermarks};

use crate::format::{self, FrameError, HEADER_LEN, INDEX_ENTRY_LEN, IndexEntry, MAX_BATCH_LEN};
use crate::fsutil::{create_dir_durable, io_err, sync_dir, write_atomic};
use crate::options::FileLogOptions;
use crate::quarantine::{self, Quarantined};
use crate::segment::{
    BatchMeta, Damaged, SYNCED_MARK, ScanEnd, Segment, index_batch, log_name, parse_log_name,
    write_synced_mark,
};

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

fn lock_path(dir: &Path) -> PathBuf {
    dir.join("writer.lock")
}

fn open_lock(dir: &Path) -> Result<File, LogError> {
    let path = lock_path(dir);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io_err("opening lock file", &path, e))
}

/// Holds the cross-process writer lock of a partition while alive.
struct WriterLock<'a> {
    file: &'a File,
}

impl<'a> WriterLock<'a> {
    fn acquire(file: &'a File, dir: &Path) -> Result<Self, LogError> {
        file.lock()
            .map_err(|e| io_err("locking", &lock_path(dir), e))?;
        Ok(WriterLock { file })
    }
}

impl Drop for WriterLock<'_> {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
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
#[derive(Debug, Clone, Copy)]
enum Judge {
    /// Bytes known to be whole: a sealed segment, or the active one up to the view's
    /// end. Every bad frame is damage; a damaged range at the end holds offsets up to
    /// `end_offset` (the next segment's base, or the view's high-water mark) if known.
    Known { end_offset: Option<Offset> },
    /// The tail of the active segment. A bad frame before the synced mark is damage;
    /// at or after it, it is damage only if an intact batch follows and no write can
    /// be in progress (`locked`: the writer lock is held); otherwise it is the tail:
    /// a write in progress, or a torn write only a writer may cut.
    Tail { locked: bool },
}

/// Where a walk ended.
#[derive(Debug)]
struct Walk {
    /// The byte after the last batch or damaged range taken in.
    end: u64,
    /// The offset after the last batch or damaged range taken in.
    next: Offset,
    /// A bad tail at `end` (only with [`Judge::Tail`]): why the frame there is bad.
    tail: Option<String>,
}

/// Walks the batches of `segment` from `position` (where offset `next` starts) to
/// `end`, calling `found` for each intact batch and `damaged` for each damaged range
/// (also recorded in the segment), which it steps over: nothing here fails on damage.
fn walk(
    segment: &Segment,
    mut position: u64,
    end: u64,
    mut next: Offset,
    judge: Judge,
    mut found: impl FnMut(&BatchMeta),
    mut damaged: impl FnMut(&Damaged),
) -> Result<Walk, LogError> {
    let mut mark = None;
    loop {
        let outcome = segment.scan(position, end, next, |meta, _| {
            found(&meta);
            position = meta.position + meta.len;
            next = meta.base_offset + meta.count;
        })?;
        let (at, reason) = match outcome {
            ScanEnd::Clean => {
                return Ok(Walk {
                    end: position.max(end),
                    next,
                    tail: None,
                });
            }
            ScanEnd::Incomplete { position } => (
                position,
                "incomplete batch: the segment ends inside it".to_owned(),
            ),
            ScanEnd::Invalid { position, reason } => (position, reason),
        };
        let range = match judge {
            Judge::Known { end_offset } => {
                segment.damaged_range(at, end, next, reason, end_offset, None)?
            }
            Judge::Tail { locked } => {
                let synced = match mark {
                    Some(mark) => mark,
                    None => *mark.insert(segment.synced_mark()?),
                };
                if at < synced {
                    segment.damaged_range(at, end, next, reason, None, Some(synced))?
                } else {
                    let intact = if locked {
                        segment.next_intact(at + 1, end, next)?
                    } else {
                        None
                    };
                    let Some((intact_at, base)) = intact else {
                        return Ok(Walk {
                            end: at,
                            next,
                            tail: Some(reason),
                        });
                    };
                    Damaged {
                        position: at,
                        end: intact_at,
                        first_offset: next,
                        end_offset: base,
                        reason,
                    }
                }
            }
        };
        segment.note_damage(&range);
        damaged(&range);
        position = range.end;
        next = range.end_offset;
        if position >= end {
            return Ok(Walk {
                end: position,
                next,
                tail: None,
            });
        }
    }
}

/// Recovers a partition: finds its segments, checks the tail of the last one, and
/// rebuilds a missing or short index. Reads only the tail. Damage before the synced
/// mark (or followed by intact batches) is recorded and stepped over, never cut; a
/// torn tail after the mark is cut if `cut` (a writer), else the view ends before it.
fn recover(dir: &Path, options: &FileLogOptions, cut: bool) -> Result<View, LogError> {
    remove_stale_temp_files(dir);
    let mut bases = list_segments(dir)?;
    if bases.is_empty() {
        let segment = Segment::create(dir, 0)?;
        sync_dir(dir)?;
        bases.push(0);
        return Ok(View {
            segments: vec![Arc::new(segment)],
            high: 0,
            end: HEADER_LEN as u64,
            last_timestamp_us: 0,
        });
    }
    let mut segments = Vec::with_capacity(bases.len());
    for &base in &bases[..bases.len() - 1] {
        segments.push(Arc::new(Segment::open(dir, base)?));
    }
    let active_base = *bases.last().expect("not empty");
    let mut active = Segment::open(dir, active_base)?;
    let len = active.len()?;
    if len < HEADER_LEN as u64 {
        // Created but the header never made it to disk: the segment holds nothing.
        tracing::warn!(file = %active.log_path.display(), len, "rewriting the header of a segment cut short at creation");
        active = Segment::create(dir, active_base)?;
        sync_dir(dir)?;
    } else {
        active.check_header()?;
    }
    let (loaded, whole) = active.load_index_file()?;
    let mut entries: Vec<IndexEntry> = loaded
        .iter()
        .copied()
        .filter(|e| u64::from(e.position) < len)
        .collect();
    // Start the scan at the last entry that points at a batch with the expected offset.
    let (mut start, mut next) = (HEADER_LEN as u64, active.base);
    while let Some(last) = entries.last().copied() {
        let position = u64::from(last.position);
        let bytes = active.read_bytes(position, format::BATCH_HEADER_LEN)?;
        let base_here = (bytes.len() == format::BATCH_HEADER_LEN)
            .then(|| u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")));
        if base_here == Some(active.base + u64::from(last.relative_offset)) {
            start = position;
            next = active.base + u64::from(last.relative_offset);
            entries.pop();
            break;
        }
        entries.pop();
    }
    let mut metas = Vec::new();
    let walked = walk(
        &active,
        start,
        len,
        next,
        Judge::Tail { locked: true },
        |meta| metas.push(*meta),
        |range| {
            tracing::error!(
                file = %active.log_path.display(),
                position = range.position,
                offsets = %format_args!("{}..{}", range.first_offset, range.end_offset),
                reason = %range.reason,
                "damaged batch kept in place (vibes doctor --repair quarantines it)"
            );
        },
    )?;
    if let Some(reason) = &walked.tail {
        if cut {
            tracing::warn!(
                file = %active.log_path.display(),
                position = walked.end,
                dropped_bytes = len - walked.end,
                reason = %format!("torn tail after the last fsync: {reason}"),
                "cutting the log"
            );
            let file = OpenOptions::new()
                .write(true)
                .open(&active.log_path)
                .map_err(|e| io_err("opening for repair", &active.log_path, e))?;
            file.set_len(walked.end)
                .and_then(|()| file.sync_all())
                .map_err(|e| io_err("cutting", &active.log_path, e))?;
        } else {
            tracing::debug!(
                file = %active.log_path.display(),
                position = walked.end,
                "a torn tail or a write in progress: left for the writer"
            );
        }
    }
    let mut view = View {
        segments: Vec::new(),
        high: walked.next,
        end: walked.end,
        last_timestamp_us: 0,
    };
    // Rebuild the entries from the scan start on, then compare with the file.
    let interval = options.index_interval_bytes;
    let mut rebuilt = entries;
    for meta in &metas {
        index_batch(&mut rebuilt, active.base, meta, interval);
        view.last_timestamp_us = meta.timestamp_us;
    }
    if !whole || rebuilt != loaded {
        active.write_index_file(&rebuilt)?;
    }
    if metas.is_empty() {
        // No batch from the scan start on: the newest append time is that of the last
        // batch before it, in this segment or else the one before, so that append times
        // keep never decreasing across a reopen.
        let before = last_batch_time(&active, &rebuilt, start)?;
        let previous = match segments.last() {
            Some(previous) if before.is_none() => {
                let (entries, _) = previous.load_index_file()?;
                last_batch_time(previous, &entries, previous.len()?)?
            }
            _ => None,
        };
        view.last_timestamp_us = before.or(previous).unwrap_or(0);
    }
    *active.index.write() = Some(rebuilt);
    segments.push(Arc::new(active));
    view.segments = segments;
    Ok(view)
}

/// The append time of the last valid batch of `segment` before byte `end`, scanning
/// from the last of `entries` before `end` (or the first batch).
fn last_batch_time(
    segment: &Segment,
    entries: &[IndexEntry],
    end: u64,
) -> Result<Option<i64>, LogError> {
    let (start, next) = entries
        .iter()
        .rev()
        .find(|e| u64::from(e.position) < end)
        .map_or((HEADER_LEN as u64, segment.base), |e| {
            (
                u64::from(e.position),
                segment.base + u64::from(e.relative_offset),
            )
        });
    let mut last = None;
    // Damage ends the scan early; the time found so far is the best floor there is.
    segment.scan(start, end, next, |meta, _| last = Some(meta.timestamp_us))?;
    Ok(last)
}

fn list_segments(dir: &Path) -> Result<Vec<Offset>, LogError> {
    let mut bases = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_err("listing", dir, e))? {
        let entry = entry.map_err(|e| io_err("listing", dir, e))?;
        if let Some(base) = entry.file_name().to_str().and_then(parse_log_name) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.contains(".tmp-") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

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

    /// Makes sure a segment's index is in memory: loaded from its file, checked against
    /// the log from its last entry on, and rebuilt (and rewritten) if short or missing.
    /// Damage found on the way is recorded in the segment, not an error.
    fn ensure_index(
        &self,
        segment: &Segment,
        end: u64,
        end_offset: Option<Offset>,
    ) -> Result<(), LogError> {
        if segment.index.read().is_some() {
            return Ok(());
        }
        let (loaded, whole) = segment.load_index_file()?;
        let mut entries: Vec<IndexEntry> = loaded
            .iter()
            .copied()
            .filter(|e| u64::from(e.position) < end)
            .collect();
        // Start from the last entry that holds what it says (a damaged index is rebuilt).
        let (mut start, mut next) = (HEADER_LEN as u64, segment.base);
        while let Some(last) = entries.pop() {
            if segment.entry_holds(&last)? {
                start = u64::from(last.position);
                next = segment.base + u64::from(last.relative_offset);
                break;
            }
        }
        self.index_from(
            segment, entries, start, next, end, end_offset, &loaded, whole,
        )
    }

    /// Indexes `segment` from byte `start` (offset `next`) to `end`, after `entries`,
    /// and installs the result (rewriting the file if it differs from `loaded`).
    #[allow(clippy::too_many_arguments)]
    fn index_from(
        &self,
        segment: &Segment,
        mut entries: Vec<IndexEntry>,
        start: u64,
        next: Offset,
        end: u64,
        end_offset: Option<Offset>,
        loaded: &[IndexEntry],
        whole: bool,
    ) -> Result<(), LogError> {
        let interval = self.options.index_interval_bytes;
        walk(
            segment,
            start,
            end,
            next,
            Judge::Known { end_offset },
            |meta| index_batch(&mut entries, segment.base, meta, interval),
            |_| {},
        )?;
        if (!whole || entries != loaded)
            && let Err(e) = segment.write_index_file(&entries)
        {
            tracing::warn!(file = %segment.index_path.display(), error = %e, "could not rewrite a rebuilt index");
        }
        *segment.index.write() = Some(entries);
        Ok(())
    }

    /// Rebuilds a segment's index from its first batch (an entry did not hold what it
    /// says: the index file is damaged).
    fn rebuild_index(
        &self,
        segment: &Segment,
        end: u64,
        end_offset: Option<Offset>,
    ) -> Result<(), LogError> {
        tracing::warn!(file = %segment.index_path.display(), "an index entry does not match the log; rebuilding the index");
        self.index_from(
            segment,
            Vec::new(),
            HEADER_LEN as u64,
            segment.base,
            end,
            end_offset,
            &[],
            false,
        )
    }

    /// Where to start reading `segment` for `offset` (or, with `time`, for the first
    /// batch appended at or after it): an index entry, verified against the log; a
    /// damaged index is rebuilt first.
    fn start_in(
        &self,
        segment: &Segment,
        end: u64,
        end_offset: Option<Offset>,
        offset: Offset,
        time: Option<i64>,
    ) -> Result<Option<(u64, Offset)>, LogError> {
        self.ensure_index(segment, end, end_offset)?;
        let find = |segment: &Segment| match time {
            Some(time) => segment.start_for_time(time),
            None => segment.start_for(offset),
        };
        let Some((position, at)) = find(segment) else {
            return Ok(None);
        };
        if position == HEADER_LEN as u64 || segment.holds_batch_at(position, at)? {
            return Ok(Some((position, at)));
        }
        self.rebuild_index(segment, end, end_offset)?;
        Ok(find(segment))
    }

    /// The end of `segments[i]` as read (the view's end for the active one) and the
    /// offset there, if known (the next segment's base, or the high-water mark).
    fn segment_end(
        segments: &[Arc<Segment>],
        i: usize,
        end: u64,
        high: Offset,
    ) -> Result<(u64, Option<Offset>), LogError> {
        Ok(match segments.get(i + 1) {
            Some(next) => (segments[i].len()?, Some(next.base)),
            None => (end, Some(high)),
        })
    }

    /// Up to `max` records from offset `from` on. Damage at `from` is `Corrupt`, with
    /// the offsets it held and where reading can resume; damage after `from` ends the
    /// records returned before it.
    pub(crate) fn read(&self, from: Offset, max: usize) -> Result<Vec<StoredRecord>, LogError> {
        self.refresh()?;
        let (segments, high, end) = {
            let view = self.view.read();
            (view.segments.clone(), view.high, view.end)
        };
        let mut out = Vec::new();
        let mut next = from.max(segments[0].base);
        let mut i = segments
            .partition_point(|s| s.base <= next)
            .saturating_sub(1);
        while out.len() < max && next < high && i < segments.len() {
            let segment = &segments[i];
            let (segment_end, end_offset) = Self::segment_end(&segments, i, end, high)?;
            let Some((position, at_offset)) =
                self.start_in(segment, segment_end, end_offset, next, None)?
            else {
                // The previous segment ended before this one begins.
                if !out.is_empty() {
                    break;
                }
                let gap = next..segment.base;
                let recorded = quarantine::list(&self.dir, self.number)?;
                return Err(match quarantine::covering(&recorded, &gap) {
                    Some(q) => LogError::Corrupt {
                        position: 0,
                        reason: format!(
                            "offsets {}..{} quarantined in {} by a repair; reading goes on at offset {}",
                            q.offsets.start,
                            q.offsets.end,
                            q.file.display(),
                            segment.base
                        ),
                        file: q.file,
                    },
                    None => segment.corrupt(
                        0,
                        format!(
                            "segment starts at offset {}, but the segment before it ends at offset {next}: offsets {next}..{} are missing (a consumer moves on to offset {})",
                            segment.base, segment.base, segment.base
                        ),
                    ),
                });
            };
            let (after, stopped) = self.read_segment(
                segment,
                position,
                at_offset,
                (segment_end, end_offset),
                next,
                max,
                &mut out,
            )?;
            next = after;
            if stopped {
                break;
            }
            i += 1;
        }
        Ok(out)
    }

    /// Reads records of `segment` from byte `position` (where offset `at_offset`
    /// starts) to `end` (where offset `end_offset` starts, if known), keeping those at
    /// `from` or later, until `out` holds `max`. Steps over damaged ranges wholly
    /// before `from`. Returns the next offset to read, and whether damage stopped it.
    #[allow(clippy::too_many_arguments)]
    fn read_segment(
        &self,
        segment: &Segment,
        mut position: u64,
        mut at_offset: Offset,
        (end, end_offset): (u64, Option<Offset>),
        from: Offset,
        max: usize,
        out: &mut Vec<StoredRecord>,
    ) -> Result<(Offset, bool), LogError> {
        const CHUNK: usize = 256 * 1024;
        let mut want_at_least = 0;
        while position < end && out.len() < max {
            let want = CHUNK.max(want_at_least).min((end - position) as usize);
            let chunk = segment.read_bytes(position, want)?;
            let mut at = 0usize;
            let mut needed_next = None;
            let mut bad = None;
            while at < chunk.len() && out.len() < max {
                let here = position + at as u64;
                let batch = match format::decode_batch(&chunk.slice(at..)) {
                    Ok(batch) => batch,
                    Err(FrameError::Incomplete { needed, .. }) if here + (needed as u64) <= end => {
                        needed_next = Some(needed);
                        break;
                    }
                    Err(e) => {
                        bad = Some((here, e.to_string()));
                        break;
                    }
                };
                if batch.base_offset != at_offset {
                    bad = Some((
                        here,
                        format!(
                            "batch starts at offset {}, expected {at_offset}",
                            batch.base_offset
                        ),
                    ));
                    break;
                }
                let Ok(timestamp) = Timestamp::from_microsecond(batch.timestamp_us) else {
                    bad = Some((
                        here,
                        format!("batch time {} µs is out of range", batch.timestamp_us),
                    ));
                    break;
                };
                let count = batch.records.len() as u64;
                for (i, record) in batch.records.into_iter().enumerate() {
                    let offset = at_offset + i as u64;
                    if offset < from || out.len() >= max {
                        continue;
                    }
                    out.push(StoredRecord {
                        address: RecordAddress {
                            partition: self.number,
                            offset,
                        },
                        timestamp,
                        key: record.key,
                        id: record.id,
                        payload: record.payload,
                    });
                }
                at_offset += count;
                at += batch.frame_len;
            }
            if let Some((here, reason)) = bad {
                let range = match segment.damage_at(here) {
                    Some(range) => range,
                    None => {
                        let range = segment
                            .damaged_range(here, end, at_offset, reason, end_offset, None)?;
                        segment.note_damage(&range);
                        range
                    }
                };
                if from >= range.end_offset && range.end > here {
                    // Wholly before what was asked for: step over it.
                    position = range.end;
                    at_offset = range.end_offset;
                    want_at_least = 0;
                    continue;
                }
                if !out.is_empty() {
                    return Ok((at_offset, true));
                }
                return Err(damage_error(segment, &range));
            }
            if at == 0 {
                match needed_next {
                    Some(needed) if needed > want => want_at_least = needed,
                    _ => return Err(segment.corrupt(position, "segment ends inside a batch")),
                }
            } else {
                want_at_least = 0;
            }
            position += at as u64;
        }
        Ok((at_offset.max(from), false))
    }

    /// The offset a consumer resumes at after reading from `from` failed on damage:
    /// the end of the damaged range that holds `from`, if one is known.
    pub(crate) fn resume_after_damage(&self, from: Offset) -> Option<Offset> {
        let segments = self.view.read().segments.clone();
        let i = segments
            .partition_point(|s| s.base <= from)
            .saturating_sub(1);
        let segment = segments.get(i)?;
        let known = segment.damage.read();
        known
            .iter()
            .find(|d| d.first_offset <= from && from < d.end_offset)
            .map(|d| d.end_offset)
            .or_else(|| {
                // A gap between segments: resume at the next one.
                segments
                    .get(i + 1)
                    .map(|next| next.base)
                    .filter(|&base| base > from)
            })
    }

    /// The gaps of offsets repairs moved to quarantine files.
    pub(crate) fn quarantined(&self) -> Result<Vec<Quarantined>, LogError> {
        quarantine::list(&self.dir, self.number)
    }

    /// The first offset appended at or after `time`, or the high-water mark.
    pub(crate) fn offset_for_timestamp(&self, time: Timestamp) -> Result<Offset, LogError> {
        self.refresh()?;
        let time_us = time.as_microsecond();
        let (segments, high, end) = {
            let view = self.view.read();
            (view.segments.clone(), view.high, view.end)
        };
        for (i, segment) in segments.iter().enumerate() {
            let (segment_end, end_offset) = Self::segment_end(&segments, i, end, high)?;
            let Some((position, offset)) =
                self.start_in(segment, segment_end, end_offset, 0, Some(time_us))?
            else {
                continue;
            };
            let mut found = None;
            walk(
                segment,
                position,
                segment_end,
                offset,
                Judge::Known { end_offset },
                |meta| {
                    if found.is_none() && meta.timestamp_us >= time_us {
                        found = Some(meta.base_offset);
                    }
                },
                |_| {},
            )?;
            if let Some(offset) = found {
                return Ok(offset);
            }
        }
        Ok(high)
    }

    /// Bytes on disk of the partition's segments.
    pub(crate) fn bytes_on_disk(&self) -> Result<u64, LogError> {
        let segments = self.view.read().segments.clone();
        segments.iter().map(|s| s.len()).sum()
    }

    /// Whether the files hold more than this process has seen (another process wrote).
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

/// The error for reading at a damaged range: where it is, what it held, where reading
/// can resume.
fn damage_error(segment: &Segment, range: &Damaged) -> LogError {
    segment.corrupt(
        range.position,
        format!(
            "{}; the damaged bytes {}..{} held offsets {}..{}, which cannot be read (a consumer moves on to offset {}; `vibes doctor --repair` quarantines them)",
            range.reason, range.position, range.end, range.first_offset, range.end_offset, range.end_offset
        ),
    )
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

fn writer_loop(shared: Arc<Shared>, requests: Receiver<AppendRequest>) {
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
                let _ = request.reply.send(Err(LogError::InvalidArgument(format!(
                    "a batch of {frame} bytes exceeds the {MAX_BATCH_LEN} byte limit"
                ))));
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

/// What [`FileLog::check`](crate::FileLog::check) found in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionCheck {
    /// The partition.
    pub partition: u32,
    /// Segment files it had.
    pub segments: usize,
    /// Intact records: every one can be read.
    pub records: u64,
    /// Every damaged range found, in offset order (with `repaired`, as it was before
    /// the repair moved it to a quarantine file).
    pub damage: Vec<Damage>,
    /// Bytes after the last intact batch that no completed fsync covered: a torn
    /// write, which the next writer cuts (and a repair cuts now).
    pub torn_tail_bytes: u64,
    /// Gaps of offsets whose bytes were moved to quarantine files (by this repair or an
    /// earlier one).
    pub quarantined: Vec<Quarantined>,
    /// Whether this check moved the damage it lists to quarantine files.
    pub repaired: bool,
}

/// A damaged range a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Damage {
    /// The damaged file.
    pub file: PathBuf,
    /// Byte position of the first damaged byte (0 for a bad header or missing offsets).
    pub position: u64,
    /// Damaged bytes, up to the next intact batch.
    pub len: u64,
    /// The offsets they held: none of them can be read.
    pub offsets: Range<Offset>,
    /// What is wrong.
    pub reason: String,
}

impl Shared {
    /// Reads every segment of the partition, checking every header and batch and that
    /// each segment starts where the previous one ended. With `repair`, moves each
    /// damaged range to a quarantine file, keeping every intact batch readable at its
    /// offset, records gaps of missing offsets, and cuts a torn tail. Holds the writer
    /// lock throughout.
    pub(crate) fn check(&self, repair: bool) -> Result<PartitionCheck, LogError> {
        let lock_file = open_lock(&self.dir)?;
        let _lock = WriterLock::acquire(&lock_file, &self.dir)?;
        let mut view = self.view.write();
        match self.catch_up(&mut view, true)? {
            CatchUp::Current => {}
            CatchUp::BadTail if !repair => {}
            CatchUp::BadTail | CatchUp::Stale => *view = recover(&self.dir, &self.options, repair)?,
        }
        let recorded = quarantine::list(&self.dir, self.number)?;
        let segments = view.segments.clone();
        let (high, end) = (view.high, view.end);
        let torn_tail_bytes = view.active().len()?.saturating_sub(end);
        let mut next = segments[0].base;
        let mut records = 0;
        let mut damage = Vec::new();
        let mut ranges: Vec<(usize, Damaged)> = Vec::new();
        let mut gaps = Vec::new();
        for (i, segment) in segments.iter().enumerate() {
            if segment.base > next {
                let gap = next..segment.base;
                if quarantine::covering(&recorded, &gap).is_none() {
                    damage.push(Damage {
                        file: segment.log_path.clone(),
                        position: 0,
                        len: 0,
                        offsets: gap.clone(),
                        reason: format!(
                            "segment starts at offset {}, but the segment before it ends at offset {next}",
                            segment.base
                        ),
                    });
                    gaps.push(gap);
                }
            } else if segment.base < next {
                damage.push(Damage {
                    file: segment.log_path.clone(),
                    position: 0,
                    len: 0,
                    offsets: segment.base..next,
                    reason: format!(
                        "segment starts at offset {}, but the segment before it holds offsets up to {next} (a repair interrupted by a crash? run the repair again)",
                        segment.base
                    ),
                });
            }
            let (segment_end, end_offset) = Self::segment_end(&segments, i, end, high)?;
            if let Err(LogError::Corrupt { reason, .. }) = segment.check_header() {
                let held = segment.base..end_offset.unwrap_or(segment.base).max(segment.base);
                damage.push(Damage {
                    file: segment.log_path.clone(),
                    position: 0,
                    len: segment_end,
                    offsets: held.clone(),
                    reason: format!("{reason} (not repaired: move the file away by hand)"),
                });
                next = held.end;
                continue;
            }
            let walked = walk(
                segment,
                HEADER_LEN as u64,
                segment_end,
                segment.base,
                Judge::Known { end_offset },
                |meta| records += meta.count,
                |range| ranges.push((i, range.clone())),
            )?;
            for (_, range) in ranges.iter().filter(|(at, _)| *at == i) {
                damage.push(Damage {
                    file: segment.log_path.clone(),
                    position: range.position,
                    len: range.end - range.position,
                    offsets: range.first_offset..range.end_offset,
                    reason: range.reason.clone(),
                });
            }
            next = walked.next;
        }
        let repaired = repair && (!ranges.is_empty() || !gaps.is_empty());
        if repaired {
            for gap in gaps {
                quarantine::store(&self.dir, self.number, gap, &[])?;
            }
            // Last range first: splitting a segment leaves the ranges before it in place.
            for (i, range) in ranges.iter().rev() {
                self.quarantine_range(&segments[*i], range, *i + 1 == segments.len())?;
            }
            sync_dir(&self.dir)?;
            *view = recover(&self.dir, &self.options, true)?;
        }
        Ok(PartitionCheck {
            partition: self.number,
            segments: segments.len(),
            records,
            damage,
            torn_tail_bytes: if repair { 0 } else { torn_tail_bytes },
            quarantined: quarantine::list(&self.dir, self.number)?,
            repaired,
        })
    }

    /// Moves one damaged range out of `segment` into a quarantine file. Intact batches
    /// after it in the segment move to a new segment named after the first of them, so
    /// they keep their offsets; the segment is then cut where the damage began. Each
    /// step is durable before the next, and nothing is removed before its copy is.
    fn quarantine_range(
        &self,
        segment: &Segment,
        range: &Damaged,
        active: bool,
    ) -> Result<(), LogError> {
        let len = segment.len()?;
        let damaged = segment.read_bytes(range.position, (range.end - range.position) as usize)?;
        let file = quarantine::store(
            &self.dir,
            self.number,
            range.first_offset..range.end_offset,
            &damaged,
        )?;
        tracing::warn!(
            from = %segment.log_path.display(),
            position = range.position,
            bytes = damaged.len(),
            offsets = %format_args!("{}..{}", range.first_offset, range.end_offset),
            to = %file.display(),
            "repair: damaged bytes quarantined"
        );
        if range.end < len {
            let rest = segment.read_bytes(range.end, (len - range.end) as usize)?;
            let mut header = format::encode_header(format::SEGMENT_MAGIC, range.end_offset);
            let synced = (HEADER_LEN + rest.len()) as u64;
            header[SYNCED_MARK..SYNCED_MARK + 4]
                .copy_from_slice(&u32::try_from(synced).unwrap_or(0).to_le_bytes());
            let mut contents = header.to_vec();
            contents.extend_from_slice(&rest);
            let target = self.dir.join(log_name(range.end_offset));
            if range.end_offset == segment.base {
                // The damage held no offsets and began the segment: the segment is
                // rewritten without it, under the same name.
                return write_atomic(&target, &contents);
            }
            if target.exists() && fs::read(&target).ok().as_deref() != Some(&contents[..]) {
                return Err(LogError::Corrupt {
                    file: target,
                    position: 0,
                    reason: format!(
                        "cannot move the batches after the damage in {} here: the file exists with other contents",
                        segment.log_path.display()
                    ),
                });
            }
            write_atomic(&target, &contents)?;
        }
        let cut = OpenOptions::new()
            .write(true)
            .open(&segment.log_path)
            .map_err(|e| io_err("opening for repair", &segment.log_path, e))?;
        cut.set_len(range.position)
            .and_then(|()| write_synced_mark(&cut, range.position))
            .and_then(|()| cut.sync_all())
            .map_err(|e| io_err("cutting", &segment.log_path, e))?;
        if active && range.end >= len && range.end_offset > range.first_offset {
            // Appends continue after the quarantined offsets, in a segment of their own.
            let next = self.dir.join(log_name(range.end_offset));
            if !next.exists() {
                Segment::create(&self.dir, range.end_offset)?;
            }
        }
        Ok(())
    }
}

/// Deletes whole sealed segments past the retention limits, oldest first.
pub(crate) fn apply_retention_now(shared: &Shared) -> Result<usize, LogError> {
    let dir = shared.dir.clone();
    let lock_file = open_lock(&dir)?;
    let _lock = WriterLock::acquire(&lock_file, &dir)?;
    let mut view = shared.view.write();
    if let CatchUp::Stale = shared.catch_up(&mut view, true)? {
        *view = recover(&shared.dir, &shared.options, false)?;
    }
    let before = view.segments.len();
    apply_retention(shared, &mut view)?;
    Ok(before - view.segments.len())
}

/// Deletes the sealed segments of `shared` whose records all lie before `before` (the
/// next segment starts at or before it); returns how many records went.
pub(crate) fn trim_before(shared: &Shared, before: Offset) -> Result<u64, LogError> {
    let dir = shared.dir.clone();
    let lock_file = open_lock(&dir)?;
    let _lock = WriterLock::acquire(&lock_file, &dir)?;
    let mut view = shared.view.write();
    if let CatchUp::Stale = shared.catch_up(&mut view, true)? {
        *view = recover(&shared.dir, &shared.options, false)?;
    }
    let mut deleted = 0;
    // Never the active segment: a segment goes only when its successor exists.
    while deleted + 1 < view.segments.len() && view.segments[deleted + 1].base <= before {
        delete_segment_files(&view.segments[deleted])?;
        tracing::debug!(file = %view.segments[deleted].log_path.display(), "trimmed a sealed segment");
        deleted += 1;
    }
    if deleted == 0 {
        return Ok(0);
    }
    let low = view.segments[deleted].base;
    let gone = low - view.segments[0].base;
    view.segments.drain(..deleted);
    sync_dir(&shared.dir)?;
    Ok(gone)
}

fn delete_segment_files(segment: &Segment) -> Result<(), LogError> {
    for path in [&segment.log_path, &segment.index_path] {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("deleting", path, e)),
        }
    }
    Ok(())
}

fn apply_retention(shared: &Shared, view: &mut View) -> Result<(), LogError> {
    let retention = shared.options.retention;
    if retention.max_age.is_none() && retention.max_bytes.is_none() {
        return Ok(());
    }
    let mut total: u64 = 0;
    let mut sizes = Vec::with_capacity(view.segments.len());
    for segment in &view.segments {
        let len = segment.len()?;
        total += len;
        sizes.push(len);
    }
    let now = SystemTime::now();
    let mut deleted = 0;
    // Never the active segment.
    while deleted + 1 < view.segments.len() {
        let segment = &view.segments[deleted];
        let too_old = retention.max_age.is_some_and(|age| {
            segment
                .file
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|modified| now.duration_since(modified).is_ok_and(|d| d > age))
        });
        let too_big = retention.max_bytes.is_some_and(|max| total > max);
        if !too_old && !too_big {
            break;
        }
        total -= sizes[deleted];
        delete_segment_files(segment)?;
        tracing::info!(file = %segment.log_path.display(), "retention deleted a sealed segment");
        deleted += 1;
    }
    if deleted > 0 {
        view.segments.drain(..deleted);
        sync_dir(&shared.dir)?;
    }
    Ok(())
}
