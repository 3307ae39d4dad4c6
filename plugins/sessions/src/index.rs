//! Where a session's records are: runs of consecutive offsets per partition, so a
//! session ingested in one go costs one entry however long it is.

use serde::{Deserialize, Serialize};
use vibes_log::RecordAddress;

/// Consecutive records `start .. start + len` of `partition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// The partition.
    pub partition: u32,
    /// First offset.
    pub start: u64,
    /// Records in the run.
    pub len: u64,
}

/// A session's record addresses, in the order they were added.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressIndex {
    runs: Vec<Run>,
}

impl AddressIndex {
    /// Adds `address`; extends the last run when it follows it directly.
    pub fn add(&mut self, address: RecordAddress) {
        if let Some(last) = self.runs.last_mut()
            && last.partition == address.partition
            && last.start + last.len == address.offset
        {
            last.len += 1;
            return;
        }
        self.runs.push(Run {
            partition: address.partition,
            start: address.offset,
            len: 1,
        });
    }

    /// An index of `runs`, in that order.
    pub fn from_runs(runs: Vec<Run>) -> Self {
        AddressIndex { runs }
    }

    /// The runs.
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// Records indexed.
    pub fn len(&self) -> u64 {
        self.runs.iter().map(|r| r.len).sum()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}
