//! One module per subcommand.

pub mod coders;
pub mod config;
pub mod doctor;
pub mod emit;
pub mod groove;
pub mod iggy;
pub mod ingest_bd;
pub mod ingest_claude;
pub mod ingest_projects;
pub mod mcp;
pub mod plugin_list;
pub mod plugin_query;
pub mod run;
pub mod serve;
pub mod session;
pub mod stats;
pub mod tail;
pub mod top;
pub mod topics;
pub mod usage;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::Context;
use vibes_events::Event;
use vibes_log::{EventConsumer, EventLog, Offset, RecordAddress};

use crate::storage::Storage;

/// An input named on the command line: a file, or stdin for `-` or nothing.
pub struct Input {
    /// For messages: the path, or `stdin`.
    pub name: String,
    /// The path when it is a file.
    pub path: Option<PathBuf>,
    /// Its size when it is a regular file.
    pub len: Option<u64>,
    pub reader: BufReader<Box<dyn Read>>,
    /// Another handle on the file, for its metadata, checkpoint marks and a start
    /// offset (see [`Input::start_at`]).
    pub file: Option<File>,
    /// Lines read so far.
    pub line_number: u64,
}

/// Events stored per append at most; see [`Input::batch_due`].
pub const MAX_BATCH: usize = 1024;

impl Input {
    /// Reads the next line, with its ending, into `line` (cleared first) and counts
    /// it. Returns the bytes read: 0 at the end of the input.
    pub fn next_line(&mut self, line: &mut Vec<u8>) -> anyhow::Result<usize> {
        line.clear();
        let read = self
            .reader
            .read_until(b'\n', line)
            .with_context(|| format!("reading {} after line {}", self.name, self.line_number))?;
        if read > 0 {
            self.line_number += 1;
        }
        Ok(read)
    }

    /// Whether `pending` events should be stored now: the batch is full, or the input
    /// has nothing more buffered, so a live producer (`claude | vibes ingest claude`)
    /// sees its events stored as they happen.
    pub fn batch_due(&self, pending: usize) -> bool {
        pending >= MAX_BATCH || (pending > 0 && self.reader.buffer().is_empty())
    }

    pub fn open(path: Option<&Path>) -> anyhow::Result<Input> {
        const BUFFER: usize = 256 * 1024;
        match path {
            None => Ok(Self::stdin()),
            Some(p) if p.as_os_str() == "-" => Ok(Self::stdin()),
            Some(p) => {
                let file = File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
                let meta = file
                    .metadata()
                    .with_context(|| format!("cannot read {}", p.display()))?;
                if meta.is_dir() {
                    anyhow::bail!("{} is a directory, not a file", p.display());
                }
                let handle = file
                    .try_clone()
                    .with_context(|| format!("cannot open {}", p.display()))?;
                Ok(Input {
                    file: Some(handle),
                    name: p.display().to_string(),
                    path: Some(p.to_owned()),
                    len: meta.is_file().then_some(meta.len()),
                    reader: BufReader::with_capacity(BUFFER, Box::new(file)),
                    line_number: 0,
                })
            }
        }
    }

    /// Makes reading start at byte `offset` of the file, counting `lines` lines as read
    /// already. Call it before reading anything.
    pub fn start_at(&mut self, offset: u64, lines: u64) -> anyhow::Result<()> {
        use std::io::{Seek, SeekFrom};
        let mut file = self
            .file
            .as_ref()
            .context("only a file can be read from an offset")?;
        file.seek(SeekFrom::Start(offset))
            .with_context(|| format!("seeking to byte {offset} of {}", self.name))?;
        self.line_number = lines;
        Ok(())
    }

    fn stdin() -> Input {
        Input {
            name: "stdin".to_owned(),
            path: None,
            len: None,
            reader: BufReader::with_capacity(256 * 1024, Box::new(io::stdin())),
            file: None,
            line_number: 0,
        }
    }
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("name", &self.name)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Replaces the host state file `path` with `contents`, creating its directory: the
/// one atomic, durable write of every vibes crate ([`vibes_log::durable`]), so a
/// reader sees the old file or the new one, and after a crash one of them.
pub fn write_state_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("a state file lives in a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    vibes_log::durable::write_atomic(path, contents)?;
    Ok(())
}

/// A consumer-group name for a reader that never commits, so nothing is stored for it.
pub fn private_group(command: &str) -> String {
    format!(
        "vibes-{command}-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond()
    )
}

/// Where each partition a reader owns ends now: a reader that stops there reads what
/// was stored when it started, and nothing appended since.
#[derive(Debug)]
pub struct EndsNow(BTreeMap<u32, Offset>);

impl EndsNow {
    pub fn read(
        storage: &Storage,
        log: &EventLog<Event>,
        consumer: &EventConsumer<Event>,
    ) -> anyhow::Result<Self> {
        let mut ends = BTreeMap::new();
        for p in consumer.assignment() {
            ends.insert(p, storage.block_on(log.watermarks(p))?.high);
        }
        Ok(EndsNow(ends))
    }

    /// Whether `consumer` has read up to every end.
    pub fn reached(&self, consumer: &EventConsumer<Event>) -> bool {
        self.0
            .iter()
            .all(|(p, end)| consumer.position(*p).is_none_or(|pos| pos >= *end))
    }

    /// Whether the record at `address` was stored before the ends were read.
    pub fn includes(&self, address: RecordAddress) -> bool {
        self.0
            .get(&address.partition)
            .is_some_and(|end| address.offset < *end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_file_is_written_whole_in_a_directory_made_for_it_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("bd").join("snapshot.jsonl");
        write_state_file(&path, b"one\n").unwrap();
        write_state_file(&path, b"two\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two\n");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["snapshot.jsonl"]);
    }

    #[test]
    fn a_state_file_that_cannot_be_written_says_which_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taken");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"").unwrap();
        let err = write_state_file(&path, b"x").unwrap_err().to_string();
        assert!(err.starts_with("renaming into place "), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
}
