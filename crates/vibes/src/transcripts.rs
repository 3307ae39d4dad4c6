//! Claude Code transcripts on disk, read incrementally: finding the files under project
//! folders, and one pass that reads what every file gained since the last pass (or
//! the last run) in parallel, stores the events and checkpoints each file.
//!
//! Files: `<project>/<session>.jsonl` and `<project>/<session>/subagents/agent-*.jsonl`
//! (see `vibes_sources::transcript`). A pass gives each changed file to one of a
//! bounded pool of threads (one per core); a thread reads its file in chunks with a
//! [`TranscriptReader`] and sends the events, in file order, in batches with the
//! checkpoint after them. The calling thread appends the batches (many files' in one
//! append, up to `MAX_BATCH` events) and only then saves their checkpoints
//! ([`crate::checkpoint`]). A bounded channel between them keeps memory bounded: no
//! file is read whole.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use vibes_events::{Event, EventData};
use vibes_log::EventLog;
use vibes_log::backend::Record;
use vibes_plugin_usage::Usage;
use vibes_sources::transcript::{
    Checkpoint, TranscriptError, TranscriptFile, TranscriptReader, TranscriptSummary,
};

use crate::checkpoint::{Checkpoints, FileMark, Saved, Verdict, mtime_ns};
use crate::commands::MAX_BATCH;
use crate::fold::UsageFold;
use crate::producer::Producer;

/// Bytes read from a file at a time.
const CHUNK: usize = 256 * 1024;

/// The checkpoint kind of transcripts (`<data_dir>/state/checkpoints/claude-projects.jsonl`).
pub const CHECKPOINT_KIND: &str = "claude-projects";

/// The reader's state at a checkpoint; the offset is the mark's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReaderState {
    pub line: u64,
    pub session_started: bool,
    pub compact_boundary: Option<String>,
}

impl ReaderState {
    fn of(checkpoint: &Checkpoint) -> ReaderState {
        ReaderState {
            line: checkpoint.line,
            session_started: checkpoint.session_started,
            compact_boundary: checkpoint.compact_boundary.clone(),
        }
    }

    fn at(&self, offset: u64) -> Checkpoint {
        Checkpoint {
            offset,
            line: self.line,
            session_started: self.session_started,
            compact_boundary: self.compact_boundary.clone(),
        }
    }
}

/// One transcript file being followed.
#[derive(Debug)]
pub struct Tracked {
    pub path: PathBuf,
    pub file: TranscriptFile,
    /// The last checkpoint saved (or loaded).
    saved: Option<Saved<ReaderState>>,
    /// The reader of the last pass, with its partial last line and the tool names it
    /// saw; a new pass goes on with it while the file only grew.
    reader: Option<TranscriptReader>,
    /// The file vanished.
    gone: bool,
}

/// The transcript files under some folders, each with its checkpoint.
#[derive(Debug, Default)]
pub struct Tree {
    pub files: Vec<Tracked>,
    known: HashSet<PathBuf>,
}

impl Tree {
    /// Adds the transcript files under `roots` not tracked yet, with their saved
    /// checkpoints; returns how many were added. A root is a projects folder (its
    /// subfolders are projects) or one project's folder.
    pub fn discover(
        &mut self,
        roots: &[PathBuf],
        checkpoints: Option<&Checkpoints>,
    ) -> Result<usize> {
        let mut found = Vec::new();
        for root in roots {
            collect_project(root, &mut found);
            for dir in subdirs(root) {
                collect_project(&dir, &mut found);
            }
        }
        let mut added = 0;
        for path in found {
            if self.known.contains(&path) {
                continue;
            }
            let Some(file) = TranscriptFile::from_path(&path) else {
                continue;
            };
            let saved = match checkpoints {
                Some(c) => c.load(&path)?,
                None => None,
            };
            self.known.insert(path.clone());
            self.files.push(Tracked {
                path,
                file,
                saved,
                reader: None,
                gone: false,
            });
            added += 1;
        }
        Ok(added)
    }

    /// Forgets the files that vanished (their checkpoints stay, should they return).
    pub fn forget_gone(&mut self) {
        let known = &mut self.known;
        self.files.retain(|t| {
            if t.gone {
                known.remove(&t.path);
            }
            !t.gone
        });
    }

    /// Bytes not read yet, over every file (for a progress bar).
    pub fn unread_bytes(&self) -> u64 {
        self.files
            .iter()
            .filter_map(|t| {
                let len = std::fs::metadata(&t.path).ok()?.len();
                Some(len.saturating_sub(t.saved.as_ref().map_or(0, |s| s.mark.offset)))
            })
            .sum()
    }
}

/// `<dir>/*.jsonl` (sessions) and `<dir>/*/subagents/agent-*.jsonl` (their subagents).
fn collect_project(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in entries(dir) {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => {
                for agent in entries(&path.join("subagents")) {
                    let name = agent.file_name();
                    let name = name.to_string_lossy();
                    if name.starts_with("agent-")
                        && name.ends_with(".jsonl")
                        && agent.file_type().is_ok_and(|t| t.is_file())
                    {
                        found.push(agent.path());
                    }
                }
            }
            Ok(t) if t.is_file() && path.extension().is_some_and(|e| e == "jsonl") => {
                found.push(path);
            }
            _ => {}
        }
    }
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    entries(dir)
        .into_iter()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// The entries of `dir`, sorted by name; none when it cannot be read (it may not
/// exist yet, or vanish while being listed).
fn entries(dir: &Path) -> Vec<std::fs::DirEntry> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut entries: Vec<_> = read.filter_map(Result::ok).collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    entries
}

/// What one pass did.
#[derive(Debug, Default)]
pub struct PassReport {
    /// Files by what they were found to be (`new`, `grown`, `unchanged`, ...).
    pub files: BTreeMap<&'static str, u64>,
    /// Files read that are sessions' own files, and subagents' files.
    pub session_files: u64,
    pub subagent_files: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Events stored, by type.
    pub events: BTreeMap<String, u64>,
    pub stored: u64,
    /// The API calls among the stored events, each counted once: the usage plugin's
    /// own fold of them (and of the sessions' starts, for their projects), which the
    /// first ingest into an empty log hands to the runtime ([`UsageFold`]).
    pub calls: Usage,
    /// The events `calls` folded in.
    pub folded: u64,
    pub tool_uses: u64,
    pub tool_errors: u64,
    pub lines: u64,
    pub blank_lines: u64,
    pub skipped: BTreeMap<String, u64>,
    pub unknown: BTreeMap<String, u64>,
    pub malformed: Vec<TranscriptError>,
    /// Files whose last line waits for its newline, with its size.
    pub waiting: Vec<(String, u64)>,
    /// The earliest and latest line timestamps read (the lines' own times).
    pub span: Option<(jiff::Timestamp, jiff::Timestamp)>,
    /// Files that vanished during the pass.
    pub vanished: u64,
    /// Files that could not be read, with why.
    pub failed: Vec<String>,
}

impl PassReport {
    /// Files read (with new bytes or from the start).
    pub fn files_read(&self) -> u64 {
        self.files
            .iter()
            .filter(|(k, _)| **k != Verdict::Unchanged.name())
            .map(|(_, n)| n)
            .sum()
    }

    fn count(&mut self, batch: &Counted) {
        self.stored += batch.events;
        for (event_type, n) in &batch.by_type {
            *self.events.entry(event_type.clone()).or_default() += n;
        }
        self.tool_uses += batch.tool_uses;
        self.tool_errors += batch.tool_errors;
        for event in &batch.calls {
            self.calls.add(event);
            self.folded += 1;
        }
    }

    fn finished(&mut self, tracked: FileDone) {
        *self.files.entry(tracked.verdict.name()).or_default() += 1;
        if tracked.verdict == Verdict::Unchanged {
            return;
        }
        if tracked.subagent {
            self.subagent_files += 1;
        } else {
            self.session_files += 1;
        }
        let (before, after) = (&tracked.before, &tracked.after);
        self.lines += after.lines - before.lines;
        self.blank_lines += after.blank_lines - before.blank_lines;
        add_delta(&mut self.skipped, &before.skipped, &after.skipped);
        add_delta(&mut self.unknown, &before.unknown, &after.unknown);
        self.malformed
            .extend_from_slice(&after.malformed[before.malformed.len()..]);
        if let (Some(min), Some(max)) = (after.min_timestamp, after.max_timestamp) {
            self.span = Some(match self.span {
                Some((lo, hi)) => (lo.min(min), hi.max(max)),
                None => (min, max),
            });
        }
        if tracked.pending > 0 {
            self.waiting.push((tracked.path, tracked.pending));
        }
    }
}

fn add_delta(
    into: &mut BTreeMap<String, u64>,
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) {
    for (key, n) in after {
        let new = n - before.get(key).copied().unwrap_or(0);
        if new > 0 {
            *into.entry(key.clone()).or_default() += new;
        }
    }
}

/// What a batch of events holds, counted on the reading thread.
#[derive(Debug, Default)]
struct Counted {
    events: u64,
    by_type: Vec<(String, u64)>,
    tool_uses: u64,
    tool_errors: u64,
    /// The batch's events the usage plugin wants (`claude.api_call`, `session.start`),
    /// in order: calls are counted once across files.
    calls: Vec<Event>,
}

impl Counted {
    fn add(&mut self, event: &Event) {
        self.events += 1;
        let event_type = event.event_type();
        match self.by_type.iter_mut().find(|(t, _)| *t == event_type) {
            Some((_, n)) => *n += 1,
            None => self.by_type.push((event_type.to_owned(), 1)),
        }
        match &event.data {
            EventData::ToolUse(_) => self.tool_uses += 1,
            EventData::ToolResult(r) if r.is_error => self.tool_errors += 1,
            _ => {}
        }
    }
}

/// From a reading thread to the storing one.
enum Msg {
    /// Events of one file, in order and encoded for the log (encoding is most of
    /// the cost of storing, so the reading threads share it), and the file's
    /// checkpoint after them.
    Batch {
        path: PathBuf,
        records: Vec<(u32, Record)>,
        counted: Box<Counted>,
        saved: Box<Saved<ReaderState>>,
        bytes: u64,
    },
    /// A file is done (or could not be read).
    Done(Box<Result<FileDone, (String, io::Error)>>),
    /// This many files were found unchanged (not opened).
    Unchanged(u64),
}

/// A file's share of a pass.
struct FileDone {
    path: String,
    verdict: Verdict,
    subagent: bool,
    /// The reader's counts before and after the pass.
    before: TranscriptSummary,
    after: TranscriptSummary,
    /// Bytes of the partial last line.
    pending: u64,
}

/// Where a pass stores: the producer and the checkpoints (none without a state
/// directory: every run then reads every file, and ids de-duplicate).
#[derive(Debug)]
pub struct Sink<'a> {
    pub producer: &'a Producer<'a>,
    pub checkpoints: Option<&'a Checkpoints>,
}

/// Reads what every file of `tree` gained since the last pass, on up to `threads`
/// threads, stores it and saves the checkpoints; `progress` counts the bytes read.
///
/// Errors: storing or saving a checkpoint failed (what was stored before stays, with
/// its checkpoints). A file that cannot be read is reported in the result, not an
/// error.
///
/// With `fold`, every append is checked to land where the fold expects; it ends
/// (`None`) when one does not.
pub fn pass(
    tree: &mut Tree,
    sink: &Sink<'_>,
    threads: usize,
    progress: &ProgressBar,
    fold: &mut Option<UsageFold>,
) -> Result<PassReport> {
    let threads = threads.clamp(1, tree.files.len().max(1));
    let (tx, rx) = sync_channel::<Msg>(threads * 2);
    // The files with most to read go first, so that no big file is left to one thread
    // at the end while the others have nothing to do.
    let mut work: Vec<(u64, &mut Tracked, io::Result<std::fs::Metadata>)> = tree
        .files
        .iter_mut()
        .map(|tracked| {
            let meta = std::fs::metadata(&tracked.path);
            let read = tracked.saved.as_ref().map_or(0, |s| s.mark.offset);
            let unread = meta.as_ref().map_or(0, |m| m.len().saturating_sub(read));
            (unread, tracked, meta)
        })
        .collect();
    work.sort_by_key(|(unread, _, _)| std::cmp::Reverse(*unread));
    let queue = Mutex::new(work.into_iter());
    let log = sink.producer.log();
    let wanted = vibes_plugin::Plugin::manifest(&Usage::new()).filter;
    let wanted = &wanted;
    let report = std::thread::scope(|scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let queue = &queue;
            scope.spawn(move || {
                let mut buf = vec![0u8; CHUNK];
                // Unchanged files are told in one message at the end: on a re-run
                // nearly every file is one, and a message each would wake the
                // storing thread thousands of times for nothing.
                let mut unchanged = 0u64;
                loop {
                    let next = queue
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .next();
                    let Some((_, tracked, meta)) = next else {
                        break;
                    };
                    let done = read_file(tracked, meta, log, wanted, &mut buf, &tx)
                        .map_err(|e| (tracked.path.display().to_string(), e));
                    if matches!(&done, Ok(d) if d.verdict == Verdict::Unchanged) {
                        unchanged += 1;
                        continue;
                    }
                    if tx.send(Msg::Done(Box::new(done))).is_err() {
                        // The storing side stopped (it failed): so do we.
                        break;
                    }
                }
                let _ = tx.send(Msg::Unchanged(unchanged));
            });
        }
        drop(tx);
        store(rx, sink, progress, fold)
    })?;
    tree.forget_gone();
    Ok(report)
}

/// Receives the readers' batches, appends them and saves the checkpoints after them.
fn store(
    rx: Receiver<Msg>,
    sink: &Sink<'_>,
    progress: &ProgressBar,
    fold: &mut Option<UsageFold>,
) -> Result<PassReport> {
    let mut report = PassReport::default();
    let mut pending: Vec<(u32, Record)> = Vec::new();
    let mut marks: HashMap<PathBuf, Saved<ReaderState>> = HashMap::new();
    // Batches wait for more until MAX_BATCH events or the end of the pass: an append
    // per file would make a pass over many grown files one durable append (and its
    // sync) each.
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Batch {
                path,
                records,
                counted,
                saved,
                bytes,
            } => {
                report.bytes += bytes;
                progress.inc(bytes);
                report.count(&counted);
                pending.extend(records);
                marks.insert(path, *saved);
                if pending.len() >= MAX_BATCH {
                    flush(sink, &mut pending, &mut marks, report.stored, fold)?;
                }
            }
            Msg::Unchanged(n) => {
                if n > 0 {
                    *report.files.entry(Verdict::Unchanged.name()).or_default() += n;
                }
            }
            Msg::Done(done) => match *done {
                Ok(done) => report.finished(done),
                Err((path, e)) if e.kind() == io::ErrorKind::NotFound => {
                    tracing::debug!(path, "vanished");
                    report.vanished += 1;
                }
                Err((path, e)) => report.failed.push(format!("{path}: {e}")),
            },
        }
    }
    flush(sink, &mut pending, &mut marks, report.stored, fold)?;
    Ok(report)
}

/// Appends `records` (telling the fold where they landed), then saves the checkpoints
/// that follow them.
fn flush(
    sink: &Sink<'_>,
    records: &mut Vec<(u32, Record)>,
    marks: &mut HashMap<PathBuf, Saved<ReaderState>>,
    counted: u64,
    fold: &mut Option<UsageFold>,
) -> Result<()> {
    if !records.is_empty() {
        let unstored = records.len() as u64;
        let acks = sink
            .producer
            .append_encoded(std::mem::take(records))
            .with_context(|| format!("{} events stored before this failure", counted - unstored))?;
        *fold = fold.take().and_then(|f| f.stored(&acks));
    }
    if let Some(checkpoints) = sink.checkpoints {
        checkpoints.save_all(marks.iter().map(|(path, saved)| (path.as_path(), saved)))?;
    }
    marks.clear();
    Ok(())
}

/// Reads what `tracked` gained (through `buf`) and sends it in batches, encoded for
/// `log`; `meta` is the file's metadata as the pass found it.
fn read_file(
    tracked: &mut Tracked,
    meta: io::Result<std::fs::Metadata>,
    log: &EventLog<Event>,
    wanted: &vibes_events::Filter,
    buf: &mut [u8],
    tx: &SyncSender<Msg>,
) -> io::Result<FileDone> {
    let path = tracked.path.clone();
    let shown = path.display().to_string();
    let subagent = tracked.file.agent_id.is_some();
    let done = |verdict, before, after, pending| FileDone {
        path: shown.clone(),
        verdict,
        subagent,
        before,
        after,
        pending,
    };
    let meta = match meta {
        Ok(meta) => meta,
        Err(e) => {
            tracked.gone = e.kind() == io::ErrorKind::NotFound;
            return Err(e);
        }
    };
    if tracked
        .saved
        .as_ref()
        .is_some_and(|s| s.mark.unchanged(&meta))
    {
        let summary = TranscriptSummary::default();
        return Ok(done(Verdict::Unchanged, summary.clone(), summary, 0));
    }
    let file = File::open(&tracked.path)?;
    let meta = file.metadata()?;
    let mtime = mtime_ns(&meta);
    let verdict = match &tracked.saved {
        None => Verdict::New,
        Some(saved) => saved.mark.verdict(&file, &meta)?,
    };
    let mut reader = match (&tracked.saved, verdict) {
        (Some(saved), Verdict::Grown | Verdict::Unchanged) => tracked
            .reader
            .take()
            .filter(|r| r.checkpoint().offset == saved.mark.offset)
            .unwrap_or_else(|| {
                TranscriptReader::resume(tracked.file.clone(), saved.reader.at(saved.mark.offset))
            }),
        _ => TranscriptReader::new(tracked.file.clone()),
    };
    let before = reader.summary().clone();
    let mut at = reader.checkpoint().offset + reader.pending_bytes() as u64;
    let mut records = Vec::new();
    let mut counted = Counted::default();
    let mut failed = None;
    let mut unsent = 0u64;
    let saved_at = |reader: &TranscriptReader, seen: Option<(u64, i128)>| {
        let checkpoint = reader.checkpoint();
        let mut mark = FileMark::of(&file, &meta, checkpoint.offset)?;
        if let Some((len, mtime)) = seen {
            mark = mark.seen(len, mtime);
        }
        io::Result::Ok(Saved {
            path: shown.clone(),
            mark,
            reader: ReaderState::of(checkpoint),
        })
    };
    let send = |records: Vec<(u32, Record)>, counted: Counted, saved, bytes| {
        tx.send(Msg::Batch {
            path: path.clone(),
            records,
            counted: Box::new(counted),
            saved: Box::new(saved),
            bytes,
        })
        .map_err(|_| io::Error::other("the storing side stopped"))
    };
    loop {
        let n = match file.read_at(buf, at) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        at += n as u64;
        unsent += n as u64;
        reader.feed(&buf[..n], |event| {
            counted.add(&event);
            match log.encode(&event) {
                Ok(record) => records.push(record),
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
            if wanted.matches(&event) {
                counted.calls.push(event);
            }
        });
        if let Some(e) = failed.take() {
            // An event the log cannot encode is a bug, not bad input: stop here,
            // before its checkpoint, rather than lose it.
            return Err(io::Error::other(format!("cannot encode an event: {e}")));
        }
        if records.len() >= MAX_BATCH {
            let saved = saved_at(&reader, None)?;
            send(
                std::mem::take(&mut records),
                std::mem::take(&mut counted),
                saved,
                std::mem::take(&mut unsent),
            )?;
        }
    }
    let saved = saved_at(&reader, Some((at, mtime)))?;
    send(records, counted, saved.clone(), unsent)?;
    tracked.saved = Some(saved);
    let after = reader.summary().clone();
    let pending = reader.pending_bytes() as u64;
    tracked.reader = Some(reader);
    Ok(done(verdict, before, after, pending))
}
