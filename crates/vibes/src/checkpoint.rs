//! Per-file checkpoints of the incremental ingests (`ingest claude FILE`, `ingest
//! claude-projects`): where a file was read up to, and enough of its identity to tell
//! whether the bytes before that point are still the ones that were read.
//!
//! A checkpoint is saved only after every event of the lines before its offset was
//! appended, so a crash re-reads at most the lines whose events were not acknowledged
//! (their ids are content-derived: consumers count them once).
//!
//! On the next run a file is, compared with its checkpoint ([`FileMark::verdict`]):
//! - **unchanged**: same device, inode, size and modification time as when it was last
//!   read to its end; it is not even opened;
//! - **grown** (resumable): its first bytes and the bytes just before the offset hash as
//!   they did ([`HASHED`] bytes each), so reading goes on at the offset. A file moved
//!   or copied under the same name with the same content counts as this, whatever its
//!   inode;
//! - **truncated**: shorter than the offset; read again from the start;
//! - **replaced**: the first bytes or those before the offset differ; read again from
//!   the start.
//!
//! A file read again from the start yields the same ids for every line whose content
//! did not change, so the records it stores again are duplicates by id, which every
//! consumer counts once (`vibes stats`, the sessions plugin, `vibes_sources::calls`).
//! Only a truncation or a rewrite of content already read stores such duplicates; a
//! file that merely grew, or was copied with the same content, never does.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::commands::write_state_file;

/// Bytes hashed at the head of a file and just before its offset.
pub const HASHED: u64 = 4096;

/// What was seen of a file at a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMark {
    /// Device and inode.
    pub dev: u64,
    pub ino: u64,
    /// Byte offset just after the last line whose events are stored.
    pub offset: u64,
    /// XXH3-64 of the first `min(offset, HASHED)` bytes.
    pub head: u64,
    /// XXH3-64 of the `min(offset, HASHED)` bytes before `offset`.
    pub anchor: u64,
    /// When the file was read to its end: its size then and its modification time
    /// (ns) before reading, so an unchanged file is skipped without opening it.
    pub seen: Option<(u64, i128)>,
}

/// How a file compares with its checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Never read (no checkpoint).
    New,
    /// Nothing changed since it was read to its end.
    Unchanged,
    /// The bytes read are still there: go on at the offset.
    Grown,
    /// Shorter than the offset: read again from the start.
    Truncated,
    /// Different bytes before the offset: read again from the start.
    Replaced,
}

impl Verdict {
    /// Whether reading starts from the first byte.
    pub fn from_start(self) -> bool {
        std::matches!(self, Verdict::New | Verdict::Truncated | Verdict::Replaced)
    }

    pub fn name(self) -> &'static str {
        match self {
            Verdict::New => "new",
            Verdict::Unchanged => "unchanged",
            Verdict::Grown => "grown",
            Verdict::Truncated => "truncated",
            Verdict::Replaced => "replaced",
        }
    }
}

/// A file's modification time in nanoseconds.
pub fn mtime_ns(meta: &Metadata) -> i128 {
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

impl FileMark {
    /// The mark of `file` (with metadata `meta`) at `offset`; reads the hashed bytes.
    pub fn of(file: &File, meta: &Metadata, offset: u64) -> io::Result<FileMark> {
        let span = offset.min(HASHED);
        Ok(FileMark {
            dev: meta.dev(),
            ino: meta.ino(),
            offset,
            head: hash_at(file, 0, span)?,
            anchor: hash_at(file, offset - span, span)?,
            seen: None,
        })
    }

    /// Records that the file was read to `len` bytes, its modification time having been
    /// `mtime` before the read began.
    #[must_use]
    pub fn seen(mut self, len: u64, mtime: i128) -> FileMark {
        self.seen = Some((len, mtime));
        self
    }

    /// Whether `meta` shows the file exactly as it was when last read to its end.
    pub fn unchanged(&self, meta: &Metadata) -> bool {
        self.dev == meta.dev()
            && self.ino == meta.ino()
            && self.seen == Some((meta.len(), mtime_ns(meta)))
    }

    /// How `file` (with metadata `meta`) compares with this mark; see the
    /// [module docs](self).
    pub fn verdict(&self, file: &File, meta: &Metadata) -> io::Result<Verdict> {
        if self.unchanged(meta) {
            return Ok(Verdict::Unchanged);
        }
        if meta.len() < self.offset {
            return Ok(Verdict::Truncated);
        }
        let span = self.offset.min(HASHED);
        let same = hash_at(file, 0, span)? == self.head
            && hash_at(file, self.offset - span, span)? == self.anchor;
        Ok(if same {
            Verdict::Grown
        } else {
            Verdict::Replaced
        })
    }
}

/// XXH3-64 of `len` bytes of `file` at `at` (fewer if the file ends first).
fn hash_at(file: &File, at: u64, len: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], at + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(xxhash_rust::xxh3::xxh3_64(&buf[..filled]))
}

/// A saved checkpoint: the file's path (for people reading the state), its mark, and
/// the reader's own state at the mark's offset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saved<R> {
    pub path: String,
    pub mark: FileMark,
    pub reader: R,
}

/// The checkpoints of one kind of ingest, one small JSON file per input file in
/// `<data_dir>/state/checkpoints/<kind>/`, named by a hash of the input's absolute path
/// and replaced atomically.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    dir: PathBuf,
}

impl Checkpoints {
    pub fn new(state_dir: &Path, kind: &str) -> Checkpoints {
        Checkpoints {
            dir: state_dir.join("checkpoints").join(kind),
        }
    }

    fn file_for(&self, input: &Path) -> PathBuf {
        let absolute = std::path::absolute(input).unwrap_or_else(|_| input.to_owned());
        let key = xxhash_rust::xxh3::xxh3_128(absolute.as_os_str().as_encoded_bytes());
        self.dir.join(format!("{key:032x}.json"))
    }

    /// The checkpoint of `input`, if one was saved. An unreadable one is reported and
    /// ignored: the file is then read from the start, which stores nothing twice by id.
    pub fn load<R: DeserializeOwned>(&self, input: &Path) -> Result<Option<Saved<R>>> {
        let path = self.file_for(input);
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(saved) => Ok(Some(saved)),
                Err(e) => {
                    tracing::warn!(
                        checkpoint = %path.display(),
                        input = %input.display(),
                        "ignoring an unreadable checkpoint (the file is read from the start): {e}"
                    );
                    Ok(None)
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context(format!("reading {}", path.display()))),
        }
    }

    /// Saves the checkpoint of `input` (atomically: a reader sees the old one or this).
    pub fn save<R: Serialize>(&self, input: &Path, saved: &Saved<R>) -> Result<()> {
        let json = serde_json::to_vec(saved).context("encoding a checkpoint")?;
        write_state_file(&self.file_for(input), &json)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn mark_after(path: &Path) -> FileMark {
        let file = File::open(path).unwrap();
        let meta = file.metadata().unwrap();
        FileMark::of(&file, &meta, meta.len())
            .unwrap()
            .seen(meta.len(), mtime_ns(&meta))
    }

    fn verdict(mark: &FileMark, path: &Path) -> Verdict {
        let file = File::open(path).unwrap();
        let meta = file.metadata().unwrap();
        mark.verdict(&file, &meta).unwrap()
    }

    #[test]
    fn a_file_is_unchanged_grown_truncated_or_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let lines: String = (0..500).map(|i| format!("{{\"n\":{i}}}\n")).collect();
        std::fs::write(&path, &lines).unwrap();
        let mark = mark_after(&path);
        assert_eq!(verdict(&mark, &path), Verdict::Unchanged);

        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"n\":500}\n")
            .unwrap();
        assert_eq!(verdict(&mark, &path), Verdict::Grown);

        std::fs::write(&path, &lines[..lines.len() / 2]).unwrap();
        assert_eq!(verdict(&mark, &path), Verdict::Truncated);

        // Same length, one byte different just before the offset.
        let mut other = lines.clone().into_bytes();
        let last = other.len() - 3;
        other[last] = b'7';
        std::fs::write(&path, &other).unwrap();
        assert_eq!(verdict(&mark, &path), Verdict::Replaced);

        // A copy with the same content and more, under a new inode, goes on.
        let copy = dir.path().join("b.jsonl");
        std::fs::write(&copy, format!("{lines}{{\"n\":500}}\n")).unwrap();
        std::fs::rename(&copy, &path).unwrap();
        assert_eq!(verdict(&mark, &path), Verdict::Grown);
    }

    #[test]
    fn checkpoints_round_trip_and_an_unreadable_one_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = Checkpoints::new(dir.path(), "test");
        let input = dir.path().join("x.jsonl");
        std::fs::write(&input, "{}\n").unwrap();
        assert!(store.load::<u64>(&input).unwrap().is_none());
        let saved = Saved {
            path: input.display().to_string(),
            mark: mark_after(&input),
            reader: 7u64,
        };
        store.save(&input, &saved).unwrap();
        assert_eq!(store.load::<u64>(&input).unwrap(), Some(saved));
        std::fs::write(store.file_for(&input), b"{not json").unwrap();
        assert!(store.load::<u64>(&input).unwrap().is_none());
    }
}
