//! Quarantine files: the damaged bytes a repair moved out of a segment, beside the
//! segments of their partition. A file's name says which partition and which offsets
//! the bytes held, `partition-<p>-offsets-<first>..<end>.quarantine` (`.<n>` before
//! the extension if that name is taken), and is the record of that gap of offsets:
//! readers and `vibes topics` show it, and a check accepts it.

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use vibes_log::{LogError, Offset};

use crate::fsutil::{io_err, write_atomic};

const EXTENSION: &str = ".quarantine";

/// Damaged bytes a repair moved out of the log, and the offsets they held.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quarantined {
    /// The partition.
    pub partition: u32,
    /// The offsets the bytes held (may be empty when damage held none, e.g. garbage
    /// between two batches).
    pub offsets: Range<Offset>,
    /// The quarantine file.
    pub file: PathBuf,
    /// Its size: the damaged bytes (0 when the bytes were already missing).
    pub bytes: u64,
}

fn name(partition: u32, offsets: &Range<Offset>, n: u32) -> String {
    let suffix = if n == 0 {
        String::new()
    } else {
        format!(".{n}")
    };
    format!(
        "partition-{partition}-offsets-{}..{}{suffix}{EXTENSION}",
        offsets.start, offsets.end
    )
}

/// The partition and offsets a quarantine file name encodes.
fn parse(name: &str) -> Option<(u32, Range<Offset>)> {
    let rest = name.strip_prefix("partition-")?.strip_suffix(EXTENSION)?;
    let (partition, rest) = rest.split_once("-offsets-")?;
    let (first, end) = rest.split_once("..")?;
    let end = end.split_once('.').map_or(end, |(end, _)| end);
    let (first, end): (Offset, Offset) = (first.parse().ok()?, end.parse().ok()?);
    (first <= end).then_some((partition.parse().ok()?, first..end))
}

/// The quarantine files of the partition in `dir`, by offset.
pub(crate) fn list(dir: &Path, partition: u32) -> Result<Vec<Quarantined>, LogError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("listing", dir, e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_err("listing", dir, e))?;
        let Some((p, offsets)) = entry.file_name().to_str().and_then(parse) else {
            continue;
        };
        if p != partition {
            continue;
        }
        let bytes = entry
            .metadata()
            .map_err(|e| io_err("reading the size of", &entry.path(), e))?
            .len();
        found.push(Quarantined {
            partition,
            offsets,
            file: entry.path(),
            bytes,
        });
    }
    found.sort_by_key(|q| (q.offsets.start, q.offsets.end));
    Ok(found)
}

/// Stores `bytes` durably in a new quarantine file for `offsets` of `partition`.
pub(crate) fn store(
    dir: &Path,
    partition: u32,
    offsets: Range<Offset>,
    bytes: &[u8],
) -> Result<PathBuf, LogError> {
    let mut n = 0;
    let path = loop {
        let path = dir.join(name(partition, &offsets, n));
        if !path.exists() {
            break path;
        }
        n += 1;
    };
    write_atomic(&path, bytes)?;
    Ok(path)
}

/// The quarantine record that covers the gap `offsets`, if any.
pub(crate) fn covering(records: &[Quarantined], offsets: &Range<Offset>) -> Option<Quarantined> {
    records
        .iter()
        .find(|q| q.offsets.start <= offsets.start && offsets.end <= q.offsets.end)
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_others_are_not_quarantine_files() {
        assert_eq!(name(3, &(0..25), 0), "partition-3-offsets-0..25.quarantine");
        assert_eq!(parse(&name(3, &(0..25), 0)), Some((3, 0..25)));
        assert_eq!(parse(&name(0, &(7..7), 2)), Some((0, 7..7)));
        for other in [
            "00000000000000000000.log",
            "partition-0-offsets-9..3.quarantine",
            "partition-x-offsets-0..1.quarantine",
            "partition-0-offsets-0..1.quarantine.tmp",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }
}
