//! Where a consumer reads from.

use jiff::Timestamp;

use crate::error::LogError;
use crate::name::TopicName;
use crate::record::{Offset, Watermarks};

/// Where to move a consumer's read position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeekPosition {
    /// The oldest record still held.
    Beginning,
    /// After the newest record: only records appended from now on.
    End,
    /// This offset. An offset past the end, or one retention has already deleted, is
    /// [`LogError::OffsetOutOfRange`](crate::LogError::OffsetOutOfRange), never a
    /// silent move elsewhere. The end itself (the high-water mark) is allowed.
    Offset(Offset),
    /// The first record appended at or after this time (the end if there is none).
    Timestamp(Timestamp),
    /// `n` records before the end. More than the partition holds is
    /// [`LogError::OffsetOutOfRange`](crate::LogError::OffsetOutOfRange).
    FromEnd(u64),
}

impl SeekPosition {
    /// The offset this position names in a partition holding `marks`, for every
    /// position but [`Timestamp`](SeekPosition::Timestamp), which needs the backend's
    /// time index: `Ok(None)`. Errors: `OffsetOutOfRange` outside `marks`.
    pub fn resolve_within(
        self,
        topic: &TopicName,
        partition: u32,
        marks: Watermarks,
    ) -> Result<Option<Offset>, LogError> {
        let out_of_range = || LogError::OffsetOutOfRange {
            topic: topic.to_string(),
            partition,
            requested: self.describe(),
            low: marks.low,
            high: marks.high,
        };
        match self {
            SeekPosition::Beginning => Ok(Some(marks.low)),
            SeekPosition::End => Ok(Some(marks.high)),
            SeekPosition::Offset(offset) if (marks.low..=marks.high).contains(&offset) => {
                Ok(Some(offset))
            }
            SeekPosition::Offset(_) => Err(out_of_range()),
            SeekPosition::FromEnd(n) if n <= marks.len() => Ok(Some(marks.high - n)),
            SeekPosition::FromEnd(_) => Err(out_of_range()),
            SeekPosition::Timestamp(_) => Ok(None),
        }
    }

    /// Describes the position for error messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            SeekPosition::Beginning => "the beginning".to_owned(),
            SeekPosition::End => "the end".to_owned(),
            SeekPosition::Offset(o) => format!("offset {o}"),
            SeekPosition::Timestamp(t) => format!("time {t}"),
            SeekPosition::FromEnd(n) => format!("{n} records before the end"),
        }
    }
}

/// Where a consumer of a group that has no commit for a partition starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StartFrom {
    /// The oldest record held (the default: a new group sees everything).
    #[default]
    Beginning,
    /// Records appended from now on.
    End,
}
