//! Deleting whole sealed segments: by the retention limits (age, bytes) and by an
//! explicit trim before an offset. Never the active segment.

use std::fs;
use std::time::SystemTime;

use vibes_log::{LogError, Offset};

use super::lock::{WriterLock, open_lock};
use super::recover::recover;
use super::{CatchUp, Shared, View};
use crate::fsutil::{io_err, sync_dir};
use crate::segment::Segment;

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

/// Deletes a segment's log and index files (either may already be gone).
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

/// Deletes the oldest sealed segments while the partition is past a retention limit.
pub(super) fn apply_retention(shared: &Shared, view: &mut View) -> Result<(), LogError> {
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
