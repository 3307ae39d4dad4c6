//! Reading a partition: records from an offset, the offset for a time, where a
//! consumer resumes after damage; segment indexes loaded, checked and rebuilt on the
//! way.

use std::sync::Arc;

use jiff::Timestamp;
use vibes_log::backend::StoredRecord;
use vibes_log::{LogError, Offset, RecordAddress};

use super::Shared;
use super::walk::{Judge, walk};
use crate::format::{self, FrameError, HEADER_LEN, IndexEntry};
use crate::quarantine::{self, Quarantined};
use crate::segment::{Damaged, Segment, index_batch};

impl Shared {
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
    pub(super) fn segment_end(
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
