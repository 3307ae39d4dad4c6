//! bd ("beads") issue tracker: `bead.*` events from diffing `.beads/issues.jsonl`.
//!
//! bd keeps one issue per line in `.beads/issues.jsonl` and rewrites the whole file on
//! every change. [`BdSnapshot::parse`] reads such a file into a map from issue id to the
//! issue's full JSON object (no field is lost; text such as ANSI-coloured descriptions is
//! kept byte for byte). [`diff`] compares two snapshots and produces events, and
//! [`BdWatcher`] polls the file, debounces bd's rewrites and diffs each new state against
//! the previous one.
//!
//! # Mapping
//!
//! For each issue id, in id order, events come in this order:
//!
//! | change | event |
//! |---|---|
//! | id not in the old snapshot | `bead.created` (`title`, `status`, `priority`, `issue_type`; actor `created_by`) |
//! | `status` changed (both old and new are strings) | `bead.status` (`old_status`, `new_status`) |
//! | ... and the new status is `closed` | also `bead.closed` (reason `close_reason`) |
//! | any other field changed | one `bead.updated` whose `fields` hold every changed field |
//! | a comment not seen before | `bead.comment` per comment (text `text`, actor `author`) |
//!
//! Details:
//! - `bead.updated` compares every top-level key of the old and new object except `id`,
//!   `status`, `comments` and `updated_at`; when the same diff emits `bead.closed` for the
//!   issue, `closed_at` and `close_reason` are excluded too (the close event reports
//!   them). A changed or added field is given with its new value, a removed field with
//!   `null`. So a pure `updated_at` bump is no event, and reopening an issue gives
//!   `bead.status` plus `bead.updated` with `closed_at: null` (and `close_reason: null`
//!   if bd dropped it). Values are compared as JSON values (so `1` and `1.0` differ).
//! - A status that is missing or not a string on either side is not a `bead.status`: the
//!   change then shows in `bead.updated` under `status`.
//! - The actor of `bead.status`, `bead.closed` and `bead.updated` is the new issue's
//!   `updated_by`, else its `assignee` (non-empty strings only), else none. bd's export
//!   records no "who changed it", so this is a best guess.
//! - A comment is identified by its `id` (any JSON value) when it has one, else by
//!   (`author`, `text`, `created_at`). A comment whose `text` is not a string gives its
//!   JSON text (an absent `text` gives `""`).
//! - A new issue that already carries comments gives `bead.created` then one
//!   `bead.comment` per comment.
//! - An issue that disappears from the file gives no event: bd deletes by turning the
//!   issue into a tombstone (`status: tombstone`, reported as `bead.status` plus
//!   `bead.updated` with `deleted_at`, `deleted_by`, `delete_reason`), so a missing line
//!   is more likely a partly written file than a deletion.
//!
//! # Timestamps
//!
//! `bead.created` uses the issue's `created_at`, `bead.closed` its `closed_at`,
//! `bead.comment` the comment's `created_at`, and the others the issue's `updated_at`.
//! When that field is missing or not RFC 3339, `bead.closed` and `bead.comment` fall
//! back to the issue's `updated_at`; when nothing parses, the event is stamped now.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use jiff::Timestamp;
use serde_json::{Map, Value};
use vibes_events::{BeadClosed, BeadComment, BeadCreated, BeadStatus, BeadUpdated, Event};

/// A line of an issues file that could not be read as an issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BdLineError {
    /// 1-based line number.
    pub line: usize,
    /// Short reason: bad JSON, not an object, no string `id`.
    pub reason: String,
}

impl fmt::Display for BdLineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for BdLineError {}

/// The parsed state of an issues file: each issue by id, as its full JSON object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BdSnapshot {
    issues: BTreeMap<String, Map<String, Value>>,
}

impl BdSnapshot {
    /// Parses an issues file: one JSON object per line, blank lines skipped.
    ///
    /// A malformed line (bad JSON, not an object, no string `id`) is reported with its
    /// line number and skipped; it never stops the parse. When an id occurs on several
    /// lines the last one wins, silently. A trailing `\r` is ignored.
    pub fn parse(bytes: &[u8]) -> (BdSnapshot, Vec<BdLineError>) {
        let mut issues = BTreeMap::new();
        let mut errors = Vec::new();
        for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let error = |reason: String| BdLineError {
                line: index + 1,
                reason,
            };
            match serde_json::from_slice::<Value>(line) {
                Err(e) => errors.push(error(format!("bad JSON: {e}"))),
                Ok(Value::Object(map)) => match map.get("id") {
                    Some(Value::String(id)) => {
                        issues.insert(id.clone(), map);
                    }
                    _ => errors.push(error("no string `id`".to_owned())),
                },
                Ok(_) => errors.push(error("not a JSON object".to_owned())),
            }
        }
        (BdSnapshot { issues }, errors)
    }

    /// Number of issues.
    pub fn len(&self) -> usize {
        self.issues.len()
    }

    /// Whether there are no issues.
    pub fn is_empty(&self) -> bool {
        self.issues.is_empty()
    }

    /// The issue with this id.
    pub fn get(&self, id: &str) -> Option<&Map<String, Value>> {
        self.issues.get(id)
    }

    /// All issues, by id.
    pub fn issues(&self) -> &BTreeMap<String, Map<String, Value>> {
        &self.issues
    }

    /// The snapshot as an issues file: one issue per line, by id. Parsing the result
    /// with [`BdSnapshot::parse`] gives back an equal snapshot.
    pub fn to_jsonl(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for issue in self.issues.values() {
            // A map of JSON values always encodes.
            if serde_json::to_writer(&mut out, issue).is_ok() {
                out.push(b'\n');
            }
        }
        out
    }

    /// Issues of `self`, plus those of `older` whose id `self` lacks.
    fn merged_with(mut self, older: &BdSnapshot) -> BdSnapshot {
        for (id, issue) in &older.issues {
            if !self.issues.contains_key(id) {
                self.issues.insert(id.clone(), issue.clone());
            }
        }
        self
    }
}

/// The events that turn `old` into `new`; see the [module docs](self) for the rules.
pub fn diff(old: &BdSnapshot, new: &BdSnapshot) -> Vec<Event> {
    let mut events = Vec::new();
    for (id, issue) in &new.issues {
        match old.issues.get(id) {
            None => created(id, issue, &mut events),
            Some(before) => changed(id, before, issue, &mut events),
        }
    }
    events
}

fn str_field<'a>(issue: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    issue.get(key).and_then(Value::as_str)
}

fn time_field(map: &Map<String, Value>, key: &str) -> Option<Timestamp> {
    str_field(map, key).and_then(|s| s.parse().ok())
}

fn stamp(event: Event, time: Option<Timestamp>) -> Event {
    match time {
        Some(t) => event.with_timestamp(t),
        None => event,
    }
}

fn actor(issue: &Map<String, Value>) -> Option<String> {
    ["updated_by", "assignee"]
        .iter()
        .find_map(|k| str_field(issue, k).filter(|s| !s.is_empty()))
        .map(str::to_owned)
}

fn created(id: &str, issue: &Map<String, Value>, events: &mut Vec<Event>) {
    let mut data = BeadCreated::new(id, str_field(issue, "title").unwrap_or_default());
    data.actor = str_field(issue, "created_by").map(str::to_owned);
    data.status = str_field(issue, "status").map(str::to_owned);
    data.priority = issue.get("priority").and_then(Value::as_i64);
    data.issue_type = str_field(issue, "issue_type").map(str::to_owned);
    events.push(stamp(Event::bd(data), time_field(issue, "created_at")));
    comments(id, None, issue, events);
}

fn changed(id: &str, old: &Map<String, Value>, new: &Map<String, Value>, events: &mut Vec<Event>) {
    let updated_at = time_field(new, "updated_at");
    let who = actor(new);
    let mut closed = false;
    let mut status_reported = false;
    if let (Some(Value::String(was)), Some(Value::String(is))) =
        (old.get("status"), new.get("status"))
        && was != is
    {
        status_reported = true;
        let mut data = BeadStatus::new(id, was, is);
        data.actor.clone_from(&who);
        events.push(stamp(Event::bd(data), updated_at));
        if is == "closed" {
            closed = true;
            let mut data = BeadClosed::new(id);
            data.reason = str_field(new, "close_reason").map(str::to_owned);
            data.actor.clone_from(&who);
            let time = time_field(new, "closed_at").or(updated_at);
            events.push(stamp(Event::bd(data), time));
        }
    }
    let skip = |key: &str| {
        ["id", "comments", "updated_at"].contains(&key)
            || (key == "status" && status_reported)
            || (closed && ["closed_at", "close_reason"].contains(&key))
    };
    let mut fields = Map::new();
    for (key, value) in new {
        if !skip(key) && old.get(key) != Some(value) {
            fields.insert(key.clone(), value.clone());
        }
    }
    for key in old.keys() {
        if !skip(key) && !new.contains_key(key) {
            fields.insert(key.clone(), Value::Null);
        }
    }
    if !fields.is_empty() {
        let mut data = BeadUpdated::new(id, fields);
        data.actor = who;
        events.push(stamp(Event::bd(data), updated_at));
    }
    comments(id, Some(old), new, events);
}

/// How a comment is recognised across snapshots.
#[derive(PartialEq, Eq, Hash)]
enum CommentKey {
    Id(String),
    Content(Option<String>, Option<String>, Option<String>),
}

fn comment_key(comment: &Value) -> CommentKey {
    match comment.get("id") {
        Some(id) if !id.is_null() => CommentKey::Id(id.to_string()),
        _ => {
            let text = |k: &str| comment.get(k).map(Value::to_string);
            CommentKey::Content(text("author"), text("text"), text("created_at"))
        }
    }
}

fn comment_list(issue: &Map<String, Value>) -> &[Value] {
    issue
        .get("comments")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn comments(
    id: &str,
    old: Option<&Map<String, Value>>,
    new: &Map<String, Value>,
    events: &mut Vec<Event>,
) {
    let seen: HashSet<CommentKey> = old
        .map(comment_list)
        .unwrap_or_default()
        .iter()
        .map(comment_key)
        .collect();
    for comment in comment_list(new) {
        if seen.contains(&comment_key(comment)) {
            continue;
        }
        let text = match comment.get("text") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let mut data = BeadComment::new(id, text);
        data.actor = comment
            .get("author")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let time = comment
            .as_object()
            .and_then(|c| time_field(c, "created_at"))
            .or_else(|| time_field(new, "updated_at"));
        events.push(stamp(Event::bd(data), time));
    }
}

/// Settings of a [`BdWatcher`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BdWatchOptions {
    /// How long the file's metadata must stay unchanged before it is read. Default
    /// 200 ms.
    pub debounce: Duration,
    /// Sleep between polls in [`BdWatcher::next_change`]. Default 100 ms.
    pub poll_interval: Duration,
    /// Whether [`BdWatcher::baseline`] reports the issues present at start-up as new.
    /// Default false.
    pub replay: bool,
}

impl Default for BdWatchOptions {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(200),
            poll_interval: Duration::from_millis(100),
            replay: false,
        }
    }
}

/// What one read of the issues file gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BdChange {
    /// Events, in the order of [`diff`].
    pub events: Vec<Event>,
    /// All malformed lines of the file as read.
    pub errors: Vec<BdLineError>,
}

impl BdChange {
    /// Whether there are neither events nor errors.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.errors.is_empty()
    }
}

/// What identifies one version of the file; `None` in [`BdWatcher`] means "missing".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileState {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// A file modified this recently before it was read may change again without its
/// metadata changing (timestamps have coarse granularity), so it is read once more.
const RACY: Duration = Duration::from_millis(100);

/// Watches a bd issues file by polling its metadata, and diffs each new state.
///
/// - Polling compares the file's device, inode, length, mtime and ctime, so a
///   replacement by rename (new inode), a truncation and an in-place rewrite are all
///   seen. Any change leads to reading the whole file and diffing it against the
///   previous state.
/// - Debounce: after a change is seen, the file is read only once its metadata has
///   stayed the same for [`BdWatchOptions::debounce`], so bd's rewrite in several
///   writes gives one change with the final state.
/// - A missing file (at start or later) is an empty file, not an error, and is not
///   logged. Other I/O errors are returned.
/// - Issues that vanish from the file are kept in the watcher's state (see [`diff`] on
///   disappearance), so a file that is briefly empty or partly written, then complete
///   again, is diffed against the issues as last seen, not reported as all new.
/// - When the file was modified within 100 ms of being read, it is read once more after
///   the debounce even if its metadata did not change, since a quick rewrite of the
///   same length may keep the same timestamps.
#[derive(Debug)]
pub struct BdWatcher {
    path: PathBuf,
    options: BdWatchOptions,
    snapshot: BdSnapshot,
    started: bool,
    /// State of the file at the last read.
    read_state: Option<FileState>,
    /// When the last read happened and whether it was racy.
    read_at: Option<(Instant, bool)>,
    /// A change seen but not yet stable: the state and since when it holds.
    pending: Option<(Option<FileState>, Instant)>,
    /// Malformed lines of the last read.
    errors: Vec<BdLineError>,
}

impl BdWatcher {
    /// A watcher of `path`; nothing is read until [`baseline`](Self::baseline) or
    /// [`check`](Self::check).
    pub fn new(path: impl Into<PathBuf>, options: BdWatchOptions) -> Self {
        Self {
            path: path.into(),
            options,
            snapshot: BdSnapshot::default(),
            started: false,
            read_state: None,
            read_at: None,
            pending: None,
            errors: Vec::new(),
        }
    }

    /// The watched path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The issues as last read (including issues that have since vanished).
    pub fn snapshot(&self) -> &BdSnapshot {
        &self.snapshot
    }

    /// Reads the file as the starting state.
    ///
    /// Without [`replay`](BdWatchOptions::replay) the result has no events: the file as
    /// it is now is the baseline. With it, the result is the diff from an empty file:
    /// `bead.created` for every issue, by id (followed by `bead.comment` for its
    /// comments). Malformed lines are in [`BdChange::errors`]. Calling it again re-reads
    /// the file and starts over.
    pub fn baseline(&mut self) -> io::Result<BdChange> {
        self.started = true;
        self.pending = None;
        let (snapshot, errors) = self.read()?;
        let events = if self.options.replay {
            diff(&BdSnapshot::default(), &snapshot)
        } else {
            Vec::new()
        };
        self.snapshot = snapshot;
        self.errors.clone_from(&errors);
        Ok(BdChange { events, errors })
    }

    /// Reads the file as the starting state, reporting what changed since `previous`
    /// (the [`snapshot`](Self::snapshot) an earlier run saved): the diff from `previous`
    /// to the file, so changes made while nothing was watching are not lost. Issues in
    /// `previous` that the file lacks are kept, as in [`check`](Self::check). Ignores
    /// [`replay`](BdWatchOptions::replay).
    pub fn resume(&mut self, previous: BdSnapshot) -> io::Result<BdChange> {
        self.started = true;
        self.pending = None;
        let (snapshot, errors) = self.read()?;
        let events = diff(&previous, &snapshot);
        self.snapshot = snapshot.merged_with(&previous);
        self.errors.clone_from(&errors);
        Ok(BdChange { events, errors })
    }

    /// One non-blocking poll step.
    ///
    /// Returns `Some` when a debounced change was read and gave events, or malformed
    /// lines other than those of the previous read; `None` otherwise (nothing changed,
    /// change not yet stable, or a rewrite with no effect such as an `updated_at`
    /// bump). A returned change lists all malformed lines of the file as read. If [`baseline`](Self::baseline)
    /// was not called, it is called first and its result returned when not empty.
    pub fn check(&mut self) -> io::Result<Option<BdChange>> {
        if !self.started {
            let change = self.baseline()?;
            return Ok((!change.is_empty()).then_some(change));
        }
        let state = stat(&self.path)?;
        let now = Instant::now();
        let debounce = self.options.debounce;
        match self.pending {
            Some((pending, since)) if pending == state => {
                if now.duration_since(since) < debounce {
                    return Ok(None);
                }
            }
            _ if self.pending.is_some() || state != self.read_state => {
                self.pending = Some((state, now));
                if !debounce.is_zero() {
                    return Ok(None);
                }
            }
            _ => match self.read_at {
                // Unchanged metadata: re-read only a racily read file.
                Some((at, true)) if now.duration_since(at) >= RACY.max(debounce) => {}
                _ => return Ok(None),
            },
        }
        self.pending = None;
        let (snapshot, errors) = self.read()?;
        let events = diff(&self.snapshot, &snapshot);
        self.snapshot = snapshot.merged_with(&self.snapshot);
        let new_errors = !errors.is_empty() && errors != self.errors;
        self.errors.clone_from(&errors);
        Ok((!events.is_empty() || new_errors).then_some(BdChange { events, errors }))
    }

    /// Polls until a change is read or `timeout` has passed, sleeping
    /// [`poll_interval`](BdWatchOptions::poll_interval) between polls.
    pub fn next_change(&mut self, timeout: Duration) -> io::Result<Option<BdChange>> {
        let start = Instant::now();
        loop {
            if let Some(change) = self.check()? {
                return Ok(Some(change));
            }
            let elapsed = start.elapsed();
            if elapsed >= timeout {
                return Ok(None);
            }
            std::thread::sleep(self.options.poll_interval.min(timeout - elapsed));
        }
    }

    /// Reads and parses the file, recording its state as taken before the read (a change
    /// during the read is then seen by the next poll).
    fn read(&mut self) -> io::Result<(BdSnapshot, Vec<BdLineError>)> {
        let state = stat(&self.path)?;
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let racy = state.is_some_and(|s| {
            let mtime = SystemTime::UNIX_EPOCH
                .checked_add(Duration::new(
                    u64::try_from(s.mtime.0).unwrap_or(0),
                    u32::try_from(s.mtime.1).unwrap_or(0),
                ))
                .unwrap_or(SystemTime::UNIX_EPOCH);
            SystemTime::now()
                .duration_since(mtime)
                .map_or(true, |age| age < RACY)
        });
        self.read_state = state;
        self.read_at = Some((Instant::now(), racy));
        Ok(BdSnapshot::parse(&bytes))
    }
}

fn stat(path: &Path) -> io::Result<Option<FileState>> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(FileState {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
