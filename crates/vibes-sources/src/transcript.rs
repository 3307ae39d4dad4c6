//! Claude Code's on-disk session transcripts: `~/.claude/projects/<slug>/<session>.jsonl`
//! and, from 2.1, `<slug>/<session>/subagents/agent-<id>.jsonl`.
//!
//! A [`TranscriptReader`] reads one file incrementally: it is fed bytes as the file
//! grows ([`TranscriptReader::feed`], [`TranscriptReader::read_from`]), parses every
//! complete line and keeps a partial last line until its newline arrives (not parsed,
//! not lost). Its [`Checkpoint`] (byte offset, line number and two bits of state) lets a
//! later reader resume exactly where this one stopped; the resumed reader yields the
//! same events, with the same ids, as a reader that read the whole file.
//!
//! # Mapping
//!
//! | transcript line | events |
//! |---|---|
//! | `assistant` with `message.usage` | `claude.api_call` (one per line: see below) |
//! | `assistant` `text` / `thinking` / `tool_use` (`server_tool_use`) block | `claude.text` / `claude.thinking` / `claude.tool_use` |
//! | `assistant` with `isApiErrorMessage` (or model `<synthetic>`) | `claude.rate_limit` when the text reports a usage limit, else `claude.api_error`; no call, no text |
//! | the first `assistant` line naming a model, in a session's main file | `session.start` first |
//! | `user` `tool_result` block | `claude.tool_result` (with `is_error`) |
//! | `user` text "[Request interrupted by user...]" | `claude.interrupt` |
//! | `user` with `isCompactSummary` | `session.compact`, unless it follows the `compact_boundary` already reported |
//! | `system/compact_boundary` | `session.compact` (`compactMetadata`) |
//! | `system/turn_duration` | `claude.turn_duration` |
//! | `system/api_error` | `claude.api_error` (status, message, retry attempt, delay, maximum, cause) |
//! | `system` warning "... limit reached ..." | `claude.rate_limit` (`fallback` with the model switched to, or `rejected`) |
//!
//! Lines that carry no fact of the taxonomy are counted in
//! [`TranscriptSummary::skipped`] under a key naming them (`progress/hook_progress`,
//! `file-history-snapshot`, `summary`, `system/stop_hook_summary`, `user/text`,
//! `user/meta`, ...). Line types this reader does not know are counted in
//! [`TranscriptSummary::unknown`] (key = the type; `system/<subtype>` for unknown
//! system subtypes) and are never an error: new ones keep appearing.
//!
//! One API response is written as several `assistant` lines, one per content block,
//! each repeating `message.id`, `requestId` and a streaming snapshot of
//! `message.usage`. The reader turns every such line into a `claude.api_call` (a
//! *copy*), because it cannot know which copy is the last; counting calls once, keeping
//! the largest copy, is [`ApiCalls`](crate::calls::ApiCalls)' job. `progress` lines
//! (2.1's `agent_progress` echoes a subagent's messages) are never counted as calls:
//! the subagent's own file has them.
//!
//! Every event carries the line's own timestamp (transcript timestamps are real but
//! not monotonic), the session id (the line's `sessionId`, else the file's), and in
//! [`Event::extra`] the line's `uuid` and, where the type has no field for them,
//! `agent_id` and `is_sidechain`.
//!
//! # Ids
//!
//! Every event's id is [`EventId::derived`](vibes_events::EventId::derived) from the
//! line's timestamp and a key made of what the transcript says, never of the time it
//! was read:
//! - `claude.tool_use` and `claude.tool_result`: the session and the tool call id;
//! - `claude.text` and `claude.thinking`: session, message id, the block's position in
//!   the line and a hash of its text;
//! - `claude.api_call`: session, message id, request id and the line's `uuid`;
//! - anything else: session, event type and the line's `uuid`.
//!
//! A line without `uuid` uses the file's identity (project, session, agent) and the
//! line's byte offset instead. Reading a file again, or the rest of it after more was
//! written, thus yields the same ids, and any re-delivery de-duplicates.
//!
//! # Malformed lines
//!
//! A line that is not JSON, not an object, has no `type`, or that would yield events
//! but has no valid `timestamp`, is reported in [`TranscriptSummary::malformed`] as a
//! [`TranscriptError`] naming the file, the 1-based line number and the line's byte
//! offset; its good parts are still emitted when it has any, and reading goes on with
//! the next line. No input makes the reader panic.
//!
//! This file reads: the file identity, checkpoints, lines and the counts. Mapping one
//! line onto events (the table above, and the ids) is the `map` module.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::path::Path;

use jiff::Timestamp;
use serde_json::{Map, Value};
use vibes_events::{Event, EventData};

mod map;

use map::{Skip, assistant, system, user};
pub use map::{api_usage, limit_warning};

/// Which transcript a reader reads: its path (for error messages) and the identity the
/// layout on disk gives it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TranscriptFile {
    /// The file's path, as shown in error messages.
    pub path: String,
    /// The project folder's name (`-home-dev-spotter`).
    pub project: String,
    /// The session id: the file name of a session file, the parent folder's name of a
    /// subagent file.
    pub session_id: String,
    /// For a subagent file (`agent-<id>.jsonl`), the agent id.
    pub agent_id: Option<String>,
}

impl TranscriptFile {
    /// A session's main file.
    pub fn session(
        path: impl Into<String>,
        project: impl Into<String>,
        session_id: impl Into<String>,
    ) -> Self {
        Self {
            path: path.into(),
            project: project.into(),
            session_id: session_id.into(),
            agent_id: None,
        }
    }

    /// A subagent's file of the session.
    pub fn subagent(
        path: impl Into<String>,
        project: impl Into<String>,
        session_id: impl Into<String>,
        agent_id: impl Into<String>,
    ) -> Self {
        Self {
            agent_id: Some(agent_id.into()),
            ..Self::session(path, project, session_id)
        }
    }

    /// The identity of a file laid out as under `~/.claude/projects`:
    /// `<project>/<session>.jsonl` or `<project>/<session>/subagents/agent-<id>.jsonl`.
    /// `None` for any other path.
    pub fn from_path(path: &Path) -> Option<Self> {
        let name = |p: &Path| p.file_name()?.to_str().map(str::to_owned);
        let file = name(path)?;
        let stem = file.strip_suffix(".jsonl")?;
        let parent = path.parent()?;
        let shown = path.display().to_string();
        if let Some(agent) = stem.strip_prefix("agent-")
            && name(parent).as_deref() == Some("subagents")
        {
            let session_dir = parent.parent()?;
            let project = name(session_dir.parent()?)?;
            return Some(Self::subagent(shown, project, name(session_dir)?, agent));
        }
        Some(Self::session(shown, name(parent)?, stem))
    }

    /// The file's identity as key bytes: project, session and agent.
    fn identity(&self) -> String {
        format!(
            "{}\0{}\0{}",
            self.project,
            self.session_id,
            self.agent_id.as_deref().unwrap_or("")
        )
    }
}

/// Where a reader stopped, and the little state that spans lines. Persist all of it
/// to resume with [`TranscriptReader::resume`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    /// Byte offset just after the last complete line read.
    pub offset: u64,
    /// Complete lines read so far (the next line's number is this plus one).
    pub line: u64,
    /// Whether `session.start` was already emitted for this file.
    pub session_started: bool,
    /// The `uuid` of the last `compact_boundary` line, so that its summary line does not
    /// report the same compaction again.
    pub compact_boundary: Option<String>,
}

/// A malformed line: which file, which line, where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: line {line} (byte offset {offset}): {reason}")]
pub struct TranscriptError {
    /// The file's path.
    pub path: String,
    /// 1-based line number.
    pub line: u64,
    /// Byte offset of the line's first byte in the file.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

/// Counts over the lines a reader has read (since it was created or resumed).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct TranscriptSummary {
    /// Complete lines read, blank ones included.
    pub lines: u64,
    /// Empty or whitespace-only lines.
    pub blank_lines: u64,
    /// Lines with `"isSidechain": true`.
    pub sidechain_lines: u64,
    /// Events produced, by event type.
    pub events_by_type: BTreeMap<String, u64>,
    /// `claude.tool_use` events.
    pub tool_uses: u64,
    /// `claude.tool_result` events with `is_error`.
    pub tool_errors: u64,
    /// Known lines (or content blocks) that carry no fact of the taxonomy, by a key
    /// naming them; see the [module docs](self).
    pub skipped: BTreeMap<String, u64>,
    /// Lines of a type this reader does not know, by type.
    pub unknown: BTreeMap<String, u64>,
    /// Malformed lines, in file order.
    pub malformed: Vec<TranscriptError>,
    /// The timestamp of the first line that has one.
    pub first_timestamp: Option<Timestamp>,
    /// The timestamp of the last line that has one.
    pub last_timestamp: Option<Timestamp>,
    /// The earliest timestamp of any line.
    pub min_timestamp: Option<Timestamp>,
    /// The latest timestamp of any line.
    pub max_timestamp: Option<Timestamp>,
    /// Lines whose timestamp is earlier than that of the previous line with one.
    pub backwards_timestamps: u64,
}

impl TranscriptSummary {
    /// How many events of `event_type` were produced.
    pub fn events_of(&self, event_type: &str) -> u64 {
        self.events_by_type.get(event_type).copied().unwrap_or(0)
    }

    fn skip(&mut self, key: impl Into<String>) {
        *self.skipped.entry(key.into()).or_default() += 1;
    }

    fn saw_timestamp(&mut self, ts: Timestamp) {
        if self.last_timestamp.is_some_and(|last| ts < last) {
            self.backwards_timestamps += 1;
        }
        self.first_timestamp.get_or_insert(ts);
        self.last_timestamp = Some(ts);
        self.min_timestamp = Some(self.min_timestamp.map_or(ts, |m| m.min(ts)));
        self.max_timestamp = Some(self.max_timestamp.map_or(ts, |m| m.max(ts)));
    }
}

/// An incremental reader of one transcript file; see the [module docs](self).
#[derive(Debug)]
pub struct TranscriptReader {
    file: TranscriptFile,
    checkpoint: Checkpoint,
    pending: Vec<u8>,
    tool_names: HashMap<String, String>,
    summary: TranscriptSummary,
}

/// The line being mapped: its identity and what it produced.
struct LineCtx<'a> {
    file: &'a TranscriptFile,
    offset: u64,
    timestamp: Option<Timestamp>,
    session_id: String,
    agent_id: Option<String>,
    is_sidechain: bool,
    uuid: Option<String>,
    events: Vec<Event>,
    problems: Vec<String>,
    skipped_blocks: Vec<String>,
}

/// Marks an interrupt in user text.
const INTERRUPT: &str = "[Request interrupted by user";

impl TranscriptReader {
    /// A reader of `file` from its first byte.
    pub fn new(file: TranscriptFile) -> Self {
        Self::resume(file, Checkpoint::default())
    }

    /// A reader of `file` that goes on from `checkpoint` (the caller feeds the bytes
    /// from `checkpoint.offset` on).
    pub fn resume(file: TranscriptFile, checkpoint: Checkpoint) -> Self {
        Self {
            file,
            checkpoint,
            pending: Vec::new(),
            tool_names: HashMap::new(),
            summary: TranscriptSummary::default(),
        }
    }

    /// The file this reader reads.
    pub fn file(&self) -> &TranscriptFile {
        &self.file
    }

    /// Where to resume: just after the last complete line.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Bytes of an incomplete last line, held until its newline arrives.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// The counts so far.
    pub fn summary(&self) -> &TranscriptSummary {
        &self.summary
    }

    /// Feeds the next bytes of the file: parses every line they complete and hands its
    /// events to `on_event`; an incomplete last line is kept for the next call.
    pub fn feed(&mut self, mut bytes: &[u8], mut on_event: impl FnMut(Event)) {
        while let Some(end) = memchr::memchr(b'\n', bytes) {
            let (line, rest) = bytes.split_at(end + 1);
            bytes = rest;
            if self.pending.is_empty() {
                self.complete_line(line, &mut on_event);
            } else {
                let mut whole = std::mem::take(&mut self.pending);
                whole.extend_from_slice(line);
                self.complete_line(&whole, &mut on_event);
            }
        }
        self.pending.extend_from_slice(bytes);
    }

    /// Reads `reader` to its end, feeding every byte; returns how many were read. An
    /// incomplete last line stays pending (a file being written may complete it).
    pub fn read_from<R: Read>(
        &mut self,
        mut reader: R,
        mut on_event: impl FnMut(Event),
    ) -> io::Result<u64> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            total += n as u64;
            self.feed(&buf[..n], &mut on_event);
        }
    }

    /// Declares the file complete: a pending last line without a newline is parsed as
    /// a line (a truncated one is reported malformed). Call it only when nothing more
    /// will be written, e.g. for a finished session's file.
    pub fn finish(&mut self, mut on_event: impl FnMut(Event)) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.complete_line(&line, &mut on_event);
        }
    }

    /// Parses one complete line (with its newline, if any) and advances the checkpoint.
    fn complete_line(&mut self, line: &[u8], on_event: &mut impl FnMut(Event)) {
        let offset = self.checkpoint.offset;
        self.checkpoint.offset += line.len() as u64;
        self.checkpoint.line += 1;
        self.summary.lines += 1;
        let line_number = self.checkpoint.line;
        let (events, problems) = self.map_line(trim_line(line), offset);
        if !problems.is_empty() {
            self.summary.malformed.push(TranscriptError {
                path: self.file.path.clone(),
                line: line_number,
                offset,
                reason: problems.join("; "),
            });
        }
        for event in events {
            *self
                .summary
                .events_by_type
                .entry(event.event_type().to_owned())
                .or_default() += 1;
            match &event.data {
                EventData::ToolUse(_) => self.summary.tool_uses += 1,
                EventData::ToolResult(r) if r.is_error => self.summary.tool_errors += 1,
                _ => {}
            }
            on_event(event);
        }
    }

    /// The events of one line (without its newline) and its problems.
    fn map_line(&mut self, line: &[u8], offset: u64) -> (Vec<Event>, Vec<String>) {
        if line.iter().all(u8::is_ascii_whitespace) {
            self.summary.blank_lines += 1;
            return (Vec::new(), Vec::new());
        }
        let parsed = if line.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            vibes_events::json::from_slice::<LineObject>(line).map(|o| Some(o.0))
        } else {
            serde_json::from_slice::<serde::de::IgnoredAny>(line).map(|_| None)
        };
        let obj = match parsed {
            Ok(Some(obj)) => obj,
            Ok(None) => return (Vec::new(), vec!["not a JSON object".to_owned()]),
            Err(err) => return (Vec::new(), vec![crate::claude::json_reason(&err)]),
        };
        let mut problems = Vec::new();
        let timestamp = match obj.get("timestamp") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => match s.parse::<Timestamp>() {
                Ok(ts) => Some(ts),
                Err(_) => {
                    problems.push(format!("invalid `timestamp` {}", clip(s, 40)));
                    None
                }
            },
            Some(_) => {
                problems.push("`timestamp` is not a string".to_owned());
                None
            }
        };
        if let Some(ts) = timestamp {
            self.summary.saw_timestamp(ts);
        }
        let is_sidechain = obj.get("isSidechain").and_then(Value::as_bool) == Some(true);
        if is_sidechain {
            self.summary.sidechain_lines += 1;
        }
        let Some(line_type) = obj.get("type").and_then(Value::as_str).map(str::to_owned) else {
            problems.push("missing string field `type`".to_owned());
            return (Vec::new(), problems);
        };
        let mut ctx = LineCtx {
            file: &self.file,
            offset,
            timestamp,
            session_id: obj
                .get("sessionId")
                .and_then(Value::as_str)
                .unwrap_or(&self.file.session_id)
                .to_owned(),
            agent_id: obj
                .get("agentId")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| self.file.agent_id.clone()),
            is_sidechain,
            uuid: obj.get("uuid").and_then(Value::as_str).map(str::to_owned),
            events: Vec::new(),
            problems,
            skipped_blocks: Vec::new(),
        };
        let skip = match line_type.as_str() {
            "assistant" => assistant(
                obj,
                &mut ctx,
                &mut self.tool_names,
                &mut self.checkpoint.session_started,
            ),
            "user" => user(obj, &mut ctx, &self.tool_names, &self.checkpoint),
            "system" => {
                let (skip, boundary) = system(obj, &mut ctx);
                if boundary.is_some() {
                    self.checkpoint.compact_boundary = boundary;
                }
                skip
            }
            "summary"
            | "file-history-snapshot"
            | "queue-operation"
            | "last-prompt"
            | "custom-title"
            | "tag"
            | "attachment" => Some(Skip::Known(line_type.clone())),
            "progress" => {
                let kind = obj
                    .get("data")
                    .and_then(|d| d.get("type"))
                    .and_then(Value::as_str)
                    .unwrap_or("unknown");
                Some(Skip::Known(format!("progress/{kind}")))
            }
            other => Some(Skip::Unknown(other.to_owned())),
        };
        for key in std::mem::take(&mut ctx.skipped_blocks) {
            self.summary.skip(key);
        }
        match skip {
            Some(Skip::Known(key)) => self.summary.skip(key),
            Some(Skip::Unknown(key)) => *self.summary.unknown.entry(key).or_default() += 1,
            None => {}
        }
        if !ctx.events.is_empty() && ctx.timestamp.is_none() {
            if !ctx.problems.iter().any(|p| p.contains("timestamp")) {
                ctx.problems
                    .push(format!("{line_type} line without `timestamp`"));
            }
            ctx.events.clear();
        }
        (ctx.events, ctx.problems)
    }
}

/// The top-level fields the mapping reads (this file and the `map` module); every
/// other field is skipped while parsing (still checked to be JSON) rather than built
/// into values. `toolUseResult`, for one, repeats a tool's whole result in another
/// shape and is about a third of a typical transcript's bytes; `slug`, `userType`,
/// `todos` and the like are on many lines and make no fact.
const USED_FIELDS: &[&str] = &[
    "type",
    "timestamp",
    "sessionId",
    "agentId",
    "uuid",
    "isSidechain",
    "message",
    "requestId",
    "isApiErrorMessage",
    "apiErrorStatus",
    "error",
    "cwd",
    "version",
    "gitBranch",
    "isCompactSummary",
    "parentUuid",
    "isMeta",
    "subtype",
    "compactMetadata",
    "durationMs",
    "content",
    "retryAttempt",
    "maxRetries",
    "retryInMs",
    "data",
];

/// A line's top-level object, its [`USED_FIELDS`] only. As with a plain `Map`, a
/// repeated key keeps its last value.
struct LineObject(Map<String, Value>);

impl<'de> serde::Deserialize<'de> for LineObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = LineObject;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<LineObject, A::Error> {
                let mut obj = Map::new();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let key = key.as_ref();
                    if !USED_FIELDS.contains(&key) {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    } else if key == "data" {
                        // Only a progress line's `data.type` is used.
                        let data = map.next_value::<DataType>()?;
                        let mut kept = Map::new();
                        if let Some(kind) = data.kind {
                            kept.insert("type".to_owned(), kind);
                        }
                        obj.insert(key.to_owned(), Value::Object(kept));
                    } else {
                        let value = map.next_value::<Value>()?;
                        obj.insert(key.to_owned(), value);
                    }
                }
                Ok(LineObject(obj))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// The `type` of a line's `data` (when it is an object), the rest skipped.
struct DataType {
    kind: Option<Value>,
}

impl<'de> serde::Deserialize<'de> for DataType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = DataType;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<DataType, A::Error> {
                let mut kind = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "type" {
                        kind = Some(map.next_value::<Value>()?);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(DataType { kind })
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<DataType, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(DataType { kind: None })
            }

            fn visit_bool<E>(self, _: bool) -> Result<DataType, E> {
                Ok(DataType { kind: None })
            }

            fn visit_i64<E>(self, _: i64) -> Result<DataType, E> {
                Ok(DataType { kind: None })
            }

            fn visit_u64<E>(self, _: u64) -> Result<DataType, E> {
                Ok(DataType { kind: None })
            }

            fn visit_f64<E>(self, _: f64) -> Result<DataType, E> {
                Ok(DataType { kind: None })
            }

            fn visit_str<E>(self, _: &str) -> Result<DataType, E> {
                Ok(DataType { kind: None })
            }

            fn visit_unit<E>(self) -> Result<DataType, E> {
                Ok(DataType { kind: None })
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

/// At most `max` characters of `text`, cut at a character boundary.
fn clip(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
}
