//! Checking and repairing a partition: every header and batch read, damaged ranges
//! moved to quarantine files, gaps of offsets recorded, a torn tail cut.

use std::fs::{self, OpenOptions};
use std::ops::Range;
use std::path::PathBuf;

use vibes_log::{LogError, Offset};

use super::lock::{WriterLock, open_lock};
use super::recover::recover;
use super::walk::{Judge, walk};
use super::{CatchUp, Shared};
use crate::format::{self, HEADER_LEN};
use crate::fsutil::{io_err, sync_dir, write_atomic};
use crate::quarantine::{self, Quarantined};
use crate::segment::{Damaged, Segment, log_name, write_synced_mark};

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
            let synced = (HEADER_LEN + rest.len()) as u64;
            let mut contents = format::encode_segment_header(range.end_offset, synced).to_vec();
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
