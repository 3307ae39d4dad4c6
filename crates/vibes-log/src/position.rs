//! Where a consumer reads from.

use jiff::Timestamp;

use crate::record::Offset;

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
