//! Opening a partition's files: the segments listed, the active one's tail checked
//! (and cut by a writer if torn), its index rebuilt if short or missing.

use std::fs::{self, OpenOptions};
use std::path::Path;
use std::sync::Arc;

use vibes_log::durable::is_temp_name;
use vibes_log::{LogError, Offset};

use super::View;
use super::walk::{Judge, walk};
use crate::format::{self, HEADER_LEN, IndexEntry};
use crate::fsutil::{io_err, sync_dir};
use crate::options::FileLogOptions;
use crate::segment::{Segment, index_batch, parse_log_name};

/// Recovers a partition: finds its segments, checks the tail of the last one, and
/// rebuilds a missing or short index. Reads only the tail. Damage before the synced
/// mark (or followed by intact batches) is recorded and stepped over, never cut; a
/// torn tail after the mark is cut if `cut` (a writer), else the view ends before it.
pub(super) fn recover(dir: &Path, options: &FileLogOptions, cut: bool) -> Result<View, LogError> {
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
        let base_here = format::claimed_header(&bytes).map(|h| h.base_offset);
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

/// The base offsets of the segment files in `dir`, in order.
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

/// Removes temporary files an interrupted atomic write left behind.
fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if is_temp_name(&name) {
            let _ = fs::remove_file(entry.path());
        }
    }
}
