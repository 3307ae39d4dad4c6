//! Walking the batches of a segment: intact ones found, damaged ranges recorded and
//! stepped over, a bad tail told apart from damage.

use vibes_log::{LogError, Offset};

use crate::segment::{BatchMeta, Damaged, ScanEnd, Segment};

/// How a walk over a segment judges a frame that is not a valid batch.
#[derive(Debug, Clone, Copy)]
pub(super) enum Judge {
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
pub(super) struct Walk {
    /// The byte after the last batch or damaged range taken in.
    pub(super) end: u64,
    /// The offset after the last batch or damaged range taken in.
    pub(super) next: Offset,
    /// A bad tail at `end` (only with [`Judge::Tail`]): why the frame there is bad.
    pub(super) tail: Option<String>,
}

/// Walks the batches of `segment` from `position` (where offset `next` starts) to
/// `end`, calling `found` for each intact batch and `damaged` for each damaged range
/// (also recorded in the segment), which it steps over: nothing here fails on damage.
pub(super) fn walk(
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
