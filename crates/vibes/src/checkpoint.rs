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

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{self, Write as _};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

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
    let mut whole = [0u8; HASHED as usize];
    let buf = &mut whole[..usize::try_from(len.min(HASHED)).unwrap_or(0)];
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

/// One line of a checkpoint journal, as written.
#[derive(Serialize)]
struct Entry<'a> {
    /// A hash of the input's absolute path.
    key: &'a str,
    saved: &'a RawValue,
}

/// One line of a checkpoint journal, as read.
#[derive(Deserialize)]
struct ReadEntry {
    key: String,
    saved: Box<RawValue>,
}

/// The checkpoints of one kind of ingest, kept in one journal,
/// `<data_dir>/state/checkpoints/<kind>.jsonl`: a line per saved checkpoint, the
/// last line of an input winning. A save appends the lines of every checkpoint it
/// is given in one write, so a pass over thousands of files costs a few appends,
/// not a file per input; when most lines are stale the journal is rewritten
/// (atomically: a reader sees the old one or the new one).
///
/// A torn last line (a crash during an append) is ignored: its inputs are read again
/// from their previous checkpoint, which stores nothing twice by id. The same holds
/// if two ingests save at once and a rewrite by one drops a line of the other.
#[derive(Debug)]
pub struct Checkpoints {
    path: PathBuf,
    journal: Mutex<Journal>,
}

#[derive(Debug, Default)]
struct Journal {
    /// The newest saved checkpoint of each input, as JSON, by key.
    entries: HashMap<String, Box<RawValue>>,
    /// Lines in the file (stale ones included).
    lines: usize,
    /// The file does not end with a whole line: rewrite before appending.
    torn: bool,
    /// Where saves append, once the first one opened it.
    file: Option<File>,
}

/// A rewrite happens once stale lines outnumber live ones by this much.
const STALE_SLACK: usize = 256;

impl Checkpoints {
    /// The checkpoints of `kind` under `state_dir`, loaded. Checkpoints an earlier
    /// version kept as one file per input (`checkpoints/<kind>/<key>.json`) are
    /// taken over into the journal, then removed.
    ///
    /// Errors: the journal exists but cannot be read.
    pub fn open(state_dir: &Path, kind: &str) -> Result<Checkpoints> {
        let dir = state_dir.join("checkpoints");
        let path = dir.join(format!("{kind}.jsonl"));
        let mut journal = Journal::default();
        match std::fs::read(&path) {
            Ok(bytes) => journal.load(&bytes, &path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("reading {}", path.display())));
            }
        }
        let checkpoints = Checkpoints {
            path,
            journal: Mutex::new(journal),
        };
        checkpoints.take_over(&dir.join(kind))?;
        Ok(checkpoints)
    }

    /// Imports the per-input files of an earlier version from `legacy`, then removes
    /// them: the journal is written first, so a crash in between loses nothing.
    fn take_over(&self, legacy: &Path) -> Result<()> {
        let Ok(read) = std::fs::read_dir(legacy) else {
            return Ok(());
        };
        let mut journal = self.lock();
        let mut files = Vec::new();
        for entry in read.filter_map(Result::ok) {
            let path = entry.path();
            let name = entry.file_name();
            let Some(key) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                files.push(path);
                continue;
            };
            if let Ok(bytes) = std::fs::read(&path)
                && let Ok(json) = serde_json::from_slice::<Box<RawValue>>(&bytes)
            {
                journal.entries.entry(key.to_owned()).or_insert(json);
            }
            files.push(path);
        }
        self.rewrite(&mut journal)?;
        for file in files {
            let _ = std::fs::remove_file(file);
        }
        let _ = std::fs::remove_dir(legacy);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.journal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn key_for(input: &Path) -> String {
        let absolute = std::path::absolute(input).unwrap_or_else(|_| input.to_owned());
        let key = xxhash_rust::xxh3::xxh3_128(absolute.as_os_str().as_encoded_bytes());
        format!("{key:032x}")
    }

    /// The checkpoint of `input`, if one was saved. An unreadable one is reported and
    /// ignored: the file is then read from the start, which stores nothing twice by id.
    pub fn load<R: DeserializeOwned>(&self, input: &Path) -> Result<Option<Saved<R>>> {
        let journal = self.lock();
        let Some(json) = journal.entries.get(&Self::key_for(input)) else {
            return Ok(None);
        };
        match serde_json::from_str(json.get()) {
            Ok(saved) => Ok(Some(saved)),
            Err(e) => {
                tracing::warn!(
                    checkpoints = %self.path.display(),
                    input = %input.display(),
                    "ignoring an unreadable checkpoint (the file is read from the start): {e}"
                );
                Ok(None)
            }
        }
    }

    /// Saves the checkpoint of `input`.
    pub fn save<R: Serialize>(&self, input: &Path, saved: &Saved<R>) -> Result<()> {
        self.save_all(std::iter::once((input, saved)))
    }

    /// Saves the checkpoints of several inputs in one append.
    pub fn save_all<'a, R: Serialize + 'a>(
        &self,
        saves: impl IntoIterator<Item = (&'a Path, &'a Saved<R>)>,
    ) -> Result<()> {
        let mut journal = self.lock();
        let mut lines = Vec::new();
        for (input, saved) in saves {
            let json = serde_json::value::to_raw_value(saved).context("encoding a checkpoint")?;
            let key = Self::key_for(input);
            serde_json::to_writer(
                &mut lines,
                &Entry {
                    key: &key,
                    saved: &json,
                },
            )
            .context("encoding a checkpoint")?;
            lines.push(b'\n');
            journal.lines += 1;
            journal.entries.insert(key, json);
        }
        if lines.is_empty() {
            return Ok(());
        }
        if journal.torn || journal.lines > 2 * journal.entries.len() + STALE_SLACK {
            return self.rewrite(&mut journal);
        }
        if journal.file.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .with_context(|| format!("opening {}", self.path.display()))?;
            journal.file = Some(file);
        }
        let file = journal.file.as_mut().expect("opened above");
        file.write_all(&lines)
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// Writes the journal anew with one line per input.
    fn rewrite(&self, journal: &mut Journal) -> Result<()> {
        let mut out = Vec::new();
        let mut keys: Vec<&String> = journal.entries.keys().collect();
        keys.sort();
        for key in keys {
            serde_json::to_writer(
                &mut out,
                &Entry {
                    key,
                    saved: &journal.entries[key],
                },
            )
            .context("encoding a checkpoint")?;
            out.push(b'\n');
        }
        write_state_file(&self.path, &out)?;
        journal.lines = journal.entries.len();
        journal.torn = false;
        // The old handle points at the replaced file.
        journal.file = None;
        Ok(())
    }
}

impl Journal {
    fn load(&mut self, bytes: &[u8], path: &Path) {
        let mut rest = bytes;
        let mut line_number = 0u64;
        while !rest.is_empty() {
            let Some(end) = rest.iter().position(|&b| b == b'\n') else {
                tracing::warn!(
                    checkpoints = %path.display(),
                    "ignoring a torn last line (its inputs are read again from their previous checkpoint)"
                );
                self.torn = true;
                break;
            };
            let (line, after) = rest.split_at(end + 1);
            rest = after;
            line_number += 1;
            self.lines += 1;
            match serde_json::from_slice::<ReadEntry>(line) {
                Ok(entry) => {
                    self.entries.insert(entry.key, entry.saved);
                }
                Err(e) => tracing::warn!(
                    checkpoints = %path.display(),
                    line = line_number,
                    "ignoring an unreadable checkpoint line: {e}"
                ),
            }
        }
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

    fn saved(input: &Path, reader: u64) -> Saved<u64> {
        Saved {
            path: input.display().to_string(),
            mark: mark_after(input),
            reader,
        }
    }

    #[test]
    fn checkpoints_round_trip_across_opens_and_the_last_save_wins() {
        let dir = tempfile::tempdir().unwrap();
        let inputs: Vec<PathBuf> = (0..3)
            .map(|i| dir.path().join(format!("{i}.jsonl")))
            .collect();
        for input in &inputs {
            std::fs::write(input, "{}\n").unwrap();
        }
        let store = Checkpoints::open(dir.path(), "test").unwrap();
        assert!(store.load::<u64>(&inputs[0]).unwrap().is_none());
        let first: Vec<Saved<u64>> = inputs.iter().map(|p| saved(p, 1)).collect();
        store
            .save_all(inputs.iter().map(PathBuf::as_path).zip(&first))
            .unwrap();
        store.save(&inputs[1], &saved(&inputs[1], 2)).unwrap();
        drop(store);

        let journal = dir.path().join("checkpoints/test.jsonl");
        assert_eq!(
            std::fs::read_to_string(&journal).unwrap().lines().count(),
            4
        );
        let store = Checkpoints::open(dir.path(), "test").unwrap();
        assert_eq!(
            store.load::<u64>(&inputs[0]).unwrap(),
            Some(first[0].clone())
        );
        assert_eq!(store.load::<u64>(&inputs[1]).unwrap().unwrap().reader, 2);
        assert_eq!(store.load::<u64>(&inputs[2]).unwrap().unwrap().reader, 1);
        // Another reader type cannot read it: ignored, as an unreadable checkpoint.
        assert!(store.load::<Vec<String>>(&inputs[0]).unwrap().is_none());
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_the_next_save_rewrites_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jsonl");
        let b = dir.path().join("b.jsonl");
        std::fs::write(&a, "{}\n").unwrap();
        std::fs::write(&b, "{}\n").unwrap();
        let store = Checkpoints::open(dir.path(), "test").unwrap();
        store.save(&a, &saved(&a, 1)).unwrap();
        store.save(&b, &saved(&b, 1)).unwrap();
        drop(store);
        let journal = dir.path().join("checkpoints/test.jsonl");
        let whole = std::fs::read_to_string(&journal).unwrap();
        // A crash in the middle of the second line's append, then a malformed line.
        let torn = format!("{{not json}}\n{}", &whole[..whole.len() - 10]);
        std::fs::write(&journal, torn).unwrap();

        let store = Checkpoints::open(dir.path(), "test").unwrap();
        assert!(store.load::<u64>(&a).unwrap().is_some());
        assert!(store.load::<u64>(&b).unwrap().is_none());
        store.save(&b, &saved(&b, 5)).unwrap();
        let text = std::fs::read_to_string(&journal).unwrap();
        assert!(text.ends_with('\n') && text.lines().count() == 2, "{text}");
        let store = Checkpoints::open(dir.path(), "test").unwrap();
        assert_eq!(store.load::<u64>(&b).unwrap().unwrap().reader, 5);
    }

    #[test]
    fn stale_lines_are_compacted_away() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jsonl");
        std::fs::write(&a, "{}\n").unwrap();
        let store = Checkpoints::open(dir.path(), "test").unwrap();
        for i in 0..(STALE_SLACK as u64 + 10) {
            store.save(&a, &saved(&a, i)).unwrap();
        }
        let journal = dir.path().join("checkpoints/test.jsonl");
        let lines = std::fs::read_to_string(&journal).unwrap().lines().count();
        assert!(lines < STALE_SLACK, "{lines} lines");
        let store = Checkpoints::open(dir.path(), "test").unwrap();
        assert_eq!(
            store.load::<u64>(&a).unwrap().unwrap().reader,
            STALE_SLACK as u64 + 9
        );
    }

    #[test]
    fn per_file_checkpoints_of_an_earlier_version_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jsonl");
        std::fs::write(&a, "{}\n").unwrap();
        let legacy = dir.path().join("checkpoints/test");
        std::fs::create_dir_all(&legacy).unwrap();
        let old = saved(&a, 3);
        std::fs::write(
            legacy.join(format!("{}.json", Checkpoints::key_for(&a))),
            serde_json::to_vec(&old).unwrap(),
        )
        .unwrap();
        let store = Checkpoints::open(dir.path(), "test").unwrap();
        assert_eq!(store.load::<u64>(&a).unwrap(), Some(old.clone()));
        assert!(!legacy.exists());
        let store = Checkpoints::open(dir.path(), "test").unwrap();
        assert_eq!(store.load::<u64>(&a).unwrap(), Some(old));
    }
}
