//! Claude Code's `claude -p --output-format stream-json --verbose` output.
//!
//! The input is one JSON object per line. [`ClaudeParser`] maps each line onto zero or
//! more vibes events; [`parse_reader`] drives it over a [`BufRead`] line by line, with no
//! line-length limit (a line holding a base64 image can exceed 1 MiB) and without ever
//! holding more than one line in memory.
//!
//! # Mapping
//!
//! | stream-json line | event |
//! |---|---|
//! | `system/init` | `session.start`; init fields the type lacks go into [`Event::extra`] |
//! | `assistant` `text` block | `claude.text` |
//! | `assistant` `thinking` block | `claude.thinking` (with `signature`) |
//! | `assistant` `tool_use` / `server_tool_use` / `mcp_tool_use` block | `claude.tool_use` |
//! | `assistant` `*_tool_result` block (e.g. `web_search_tool_result`) | `claude.tool_result` |
//! | `assistant` top-level `error` (e.g. `rate_limit`) | `error` (warning), after the blocks |
//! | `user` `tool_result` block | `claude.tool_result` |
//! | `system/compact_boundary` | `session.compact` |
//! | `rate_limit_event` | `claude.rate_limit` |
//! | `result` | `session.end` |
//!
//! Everything else is counted in [`ParseSummary::skipped`] by a key naming it and is
//! never an error: `stream_event`, `control_response`, `command_lifecycle`,
//! `conversation_reset`, unknown types (key = the type), other `system` subtypes (key
//! `system/<subtype>`), user lines that carry no tool result (`user/text`, or
//! `user/<first block type>`), synthetic and replayed user lines (`user/synthetic`,
//! `user/replay`: the compaction summary and echoed prompts, which are not tool
//! output), and assistant content blocks of unknown types (`assistant/<block type>`; an
//! assistant line with only such blocks counts as skipped).
//!
//! Details:
//! - Tool results carry the tool's name, looked up from the earlier `tool_use` with the
//!   same id; a result for an id never seen has no name but is still emitted.
//! - Tool result content is flattened to text: a string as is; array blocks joined with
//!   `"\n"`, where text blocks give their text, base64 images give
//!   `[image <media type>, <decoded bytes> bytes]` (computed from the base64 length, not
//!   decoded), other images `[image block]` and other blocks `[<type> block]`; any other
//!   JSON value is written as JSON.
//! - `result` decides failure from `is_error` only (never from `subtype`); the cost is
//!   `total_cost_usd`, else the old `cost_usd`, else 0. Fields `session.end` lacks
//!   (`uuid`, `ttft_ms`, ...) go into [`Event::extra`], as do unknown
//!   `compact_metadata` and `rate_limit_info` fields.
//! - Extra keys that would collide with the event's own fields or the envelope are
//!   prefixed with `claude_`.
//!
//! # Session ids
//!
//! Every event carries a session id in the field that is its partition key: the line's
//! own `session_id` when it has one, else the last one seen in the stream (normally the
//! init's). A `result` with no session id at all is malformed (its type requires one).
//!
//! # Timestamps
//!
//! stream-json lines carry no time. Each event is stamped with the time it was parsed,
//! forced to be strictly increasing within one parser: every event is at least 1 µs
//! after the previous one (when the clock has not moved that far, the event gets the
//! previous timestamp plus 1 µs). So sorting by timestamp, even at microsecond
//! precision, keeps the stream's order.
//!
//! # Ids
//!
//! An event's id is a function of what the stream says, never of when it was read, so
//! parsing a recording again (or again after more lines were appended) yields the same
//! ids for the same events and a re-delivery de-duplicates. It is an
//! [`EventId::derived_untimed`] id (the stream has no time to put in a v7 id) of the
//! session id, the event type and: the tool call id for `claude.tool_use` and
//! `claude.tool_result`; else the line's `uuid` and the event's position among the
//! line's events; else (lines without `uuid`, malformed lines) the line's number and
//! that position. [`ClaudeParser::session_name`] does not change ids.
//!
//! # Malformed lines
//!
//! A line that is not valid JSON, not an object, has no `type`, or is a known type
//! missing a required field is reported in [`ParseSummary::malformed`] with its line
//! number and a short reason, and becomes an `error` event (severity warning, the
//! session id if known, message `line 17: <reason>`, extra field `line: 17`). Parsing
//! goes on with the next line. Good blocks of a partly bad line are still emitted.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{self, BufRead};

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value};
use vibes_events::{
    Compact, ErrorEvent, Event, EventData, EventId, McpServer, RateLimit, SessionEnd, SessionStart,
    Severity, Text, Thinking, ToolResult, ToolUse, Usage,
};

mod json;

use json::{
    COMPACT_FIELDS, RATE_LIMIT_FIELDS, SESSION_END_FIELDS, SESSION_START_FIELDS, add_extra,
    model_usage, take_f64,
};
pub(crate) use json::{flatten_content, json_reason, take_string, take_u64};

/// What one input line turned into.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LineOutcome {
    /// An empty or whitespace-only line; skipped.
    Blank,
    /// A line of a type this parser does not map; counted under `key` and skipped.
    Skipped {
        /// The key it is counted under in [`ParseSummary::skipped`].
        key: String,
    },
    /// The events the line maps to, in order.
    Events(Vec<Event>),
    /// A malformed line: the reason, and the events produced for it: those of any good
    /// parts of the line, then the `error` event reporting it.
    Malformed {
        /// Short reason, e.g. `expected value at column 3`.
        reason: String,
        /// The events, the last one being the `error` event.
        events: Vec<Event>,
    },
}

impl LineOutcome {
    /// The events the line produced (none for blank and skipped lines).
    pub fn events(&self) -> &[Event] {
        match self {
            LineOutcome::Events(events) | LineOutcome::Malformed { events, .. } => events,
            LineOutcome::Blank | LineOutcome::Skipped { .. } => &[],
        }
    }

    /// Takes the events out.
    pub fn into_events(self) -> Vec<Event> {
        match self {
            LineOutcome::Events(events) | LineOutcome::Malformed { events, .. } => events,
            LineOutcome::Blank | LineOutcome::Skipped { .. } => Vec::new(),
        }
    }
}

/// A line that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedLine {
    /// 1-based line number.
    pub line: u64,
    /// Short reason.
    pub reason: String,
}

/// Counts over everything a parser has read.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ParseSummary {
    /// Lines read, blank ones included.
    pub lines: u64,
    /// Empty or whitespace-only lines.
    pub blank_lines: u64,
    /// Events produced, by event type (`claude.text`, `error`, ...).
    pub events_by_type: BTreeMap<String, u64>,
    /// `claude.tool_use` events.
    pub tool_calls: u64,
    /// `claude.tool_result` events with `is_error`.
    pub tool_errors: u64,
    /// Turns, from the `result` lines' `num_turns` (summed if there are several).
    pub turns: u64,
    /// Cost in US dollars, from the `result` lines (summed if there are several).
    pub cost_usd: f64,
    /// Duration in milliseconds, from the `result` lines (summed if there are several).
    pub duration_ms: u64,
    /// Lines (and unknown assistant content blocks) skipped, by a key naming their type;
    /// see the [module docs](self).
    pub skipped: BTreeMap<String, u64>,
    /// Malformed lines, in input order.
    pub malformed: Vec<MalformedLine>,
}

impl ParseSummary {
    /// How many events of `event_type` were produced.
    pub fn events_of(&self, event_type: &str) -> u64 {
        self.events_by_type.get(event_type).copied().unwrap_or(0)
    }

    /// Total events produced.
    pub fn events(&self) -> u64 {
        self.events_by_type.values().sum()
    }
}

/// A streaming parser of Claude Code stream-json output.
///
/// It keeps the state that spans lines: the current session id, the names of tools
/// called so far (to name their results), the last timestamp and the running
/// [`ParseSummary`]. Feed it lines in order with [`ClaudeParser::parse_line`] or let
/// [`ClaudeParser::parse_reader`] do it.
#[derive(Debug, Default)]
pub struct ClaudeParser {
    session_name: Option<String>,
    session_id: Option<String>,
    tool_names: HashMap<String, String>,
    last_timestamp: Option<Timestamp>,
    summary: ParseSummary,
}

/// What a line handler decided, besides the events it pushed.
enum Disposition {
    Mapped,
    Skipped(String),
}

/// Events and problems of the line being parsed.
#[derive(Default)]
struct LineOut {
    events: Vec<Event>,
    problems: Vec<String>,
    /// The line's `uuid`, if it has one: part of its events' ids.
    uuid: Option<String>,
}

const ENVELOPE: [&str; 4] = ["id", "type", "timestamp", "source"];

impl ClaudeParser {
    /// A parser with no state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Names the session: every event this parser produces gets an extra field
    /// `session_name` with this value (e.g. the bead or task the run worked on).
    #[must_use]
    pub fn session_name(mut self, name: impl Into<String>) -> Self {
        self.session_name = Some(name.into());
        self
    }

    /// Goes on after lines another parser read: `session_id` is the session id that
    /// parser saw last ([`ClaudeParser::session_id`]), so events of lines without one
    /// get the same session (and ids) as in a single read. Pass the line numbers on
    /// from where that parser stopped.
    #[must_use]
    pub fn resume_session(mut self, session_id: Option<String>) -> Self {
        self.session_id = session_id;
        self
    }

    /// The session id seen last, if any.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// The counts so far.
    pub fn summary(&self) -> &ParseSummary {
        &self.summary
    }

    /// The counts, consuming the parser.
    pub fn into_summary(self) -> ParseSummary {
        self.summary
    }

    /// Reads `reader` to its end, line by line, and hands every event to `on_event`.
    ///
    /// There is no line-length limit; one line buffer is reused. A last line without a
    /// newline is parsed like the others, and `\r\n` endings are accepted. Line numbers
    /// continue from the lines this parser has already read. Returns the parser's
    /// summary; fails only when reading fails.
    pub fn parse_reader<R: BufRead>(
        &mut self,
        mut reader: R,
        mut on_event: impl FnMut(Event),
    ) -> io::Result<ParseSummary> {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf)? == 0 {
                break;
            }
            let line_number = self.summary.lines + 1;
            for event in self.parse_line(&buf, line_number).into_events() {
                on_event(event);
            }
        }
        Ok(self.summary.clone())
    }

    /// Parses one line (with or without its `\n` / `\r\n` ending). `line_number` is
    /// 1-based and is only used to report a malformed line.
    pub fn parse_line(&mut self, line: &[u8], line_number: u64) -> LineOutcome {
        self.summary.lines += 1;
        let line = trim_line(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            self.summary.blank_lines += 1;
            return LineOutcome::Blank;
        }
        let value: Value = match vibes_events::json::from_slice(line) {
            Ok(value) => value,
            Err(err) => return self.finish(line_number, LineOut::fail(json_reason(&err)), None),
        };
        let Value::Object(obj) = value else {
            return self.finish(line_number, LineOut::fail("not a JSON object"), None);
        };
        if let Some(id) = obj.get("session_id").and_then(Value::as_str) {
            self.session_id = Some(id.to_owned());
        }
        let Some(line_type) = obj.get("type").and_then(Value::as_str) else {
            return self.finish(
                line_number,
                LineOut::fail("missing string field `type`"),
                None,
            );
        };
        let line_type = line_type.to_owned();
        let mut out = LineOut {
            uuid: obj.get("uuid").and_then(Value::as_str).map(str::to_owned),
            ..LineOut::default()
        };
        let result = match line_type.as_str() {
            "system" => {
                let subtype = obj.get("subtype").and_then(Value::as_str).unwrap_or("");
                match subtype {
                    "init" => self.init(obj, &mut out),
                    "compact_boundary" => self.compact(obj, &mut out),
                    "" => Ok(Disposition::Skipped("system".to_owned())),
                    other => Ok(Disposition::Skipped(format!("system/{other}"))),
                }
            }
            "assistant" => self.assistant(obj, &mut out),
            "user" => self.user(obj, &mut out),
            "result" => self.result(obj, &mut out),
            "rate_limit_event" => self.rate_limit(obj, &mut out),
            other => Ok(Disposition::Skipped(other.to_owned())),
        };
        let skipped = match result {
            Ok(Disposition::Mapped) => None,
            Ok(Disposition::Skipped(key)) => Some(key),
            Err(reason) => {
                out.problems.push(reason);
                None
            }
        };
        self.finish(line_number, out, skipped)
    }

    /// Stamps and counts the line's events, reports problems and builds the outcome.
    fn finish(
        &mut self,
        line_number: u64,
        mut out: LineOut,
        skipped: Option<String>,
    ) -> LineOutcome {
        let reason = (!out.problems.is_empty()).then(|| out.problems.join("; "));
        if let Some(reason) = &reason {
            let mut error =
                ErrorEvent::new(format!("line {line_number}: {reason}"), Severity::Warning);
            error.session_id.clone_from(&self.session_id);
            out.events
                .push(Event::claude(error).with_extra("line", line_number));
            self.summary.malformed.push(MalformedLine {
                line: line_number,
                reason: reason.clone(),
            });
        }
        for (index, event) in out.events.iter_mut().enumerate() {
            event.timestamp = self.next_timestamp();
            event.id = event_id(event, out.uuid.as_deref(), line_number, index);
            if let Some(name) = &self.session_name {
                event
                    .extra
                    .insert("session_name".to_owned(), name.clone().into());
            }
            *self
                .summary
                .events_by_type
                .entry(event.event_type().to_owned())
                .or_default() += 1;
            match &event.data {
                EventData::ToolUse(_) => self.summary.tool_calls += 1,
                EventData::ToolResult(r) if r.is_error => {
                    self.summary.tool_errors += 1;
                }
                _ => {}
            }
        }
        match (reason, skipped) {
            (Some(reason), _) => LineOutcome::Malformed {
                reason,
                events: out.events,
            },
            (None, Some(key)) if out.events.is_empty() => {
                *self.summary.skipped.entry(key.clone()).or_default() += 1;
                LineOutcome::Skipped { key }
            }
            (None, _) => LineOutcome::Events(out.events),
        }
    }

    /// Now, but at least 1 µs after the previous event (see the module docs).
    fn next_timestamp(&mut self) -> Timestamp {
        let now = Timestamp::now();
        let ts = match self.last_timestamp {
            Some(last) => last
                .checked_add(SignedDuration::from_micros(1))
                .map_or(last, |min| now.max(min)),
            None => now,
        };
        self.last_timestamp = Some(ts);
        ts
    }

    fn init(
        &mut self,
        mut obj: Map<String, Value>,
        out: &mut LineOut,
    ) -> Result<Disposition, String> {
        let session_id =
            take_string(&mut obj, "session_id").ok_or("system/init without string `session_id`")?;
        let model = take_string(&mut obj, "model").ok_or("system/init without string `model`")?;
        let tools = match obj.remove("tools") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(tools)) => tools
                .into_iter()
                .filter_map(|t| match t {
                    Value::String(s) => Some(s),
                    _ => None,
                })
                .collect(),
            Some(_) => return Err("system/init `tools` is not an array".to_owned()),
        };
        let mut start = SessionStart::new(model, tools);
        start.session_id = Some(session_id);
        start.cwd = take_string(&mut obj, "cwd");
        start.permission_mode = take_string(&mut obj, "permissionMode");
        start.api_key_source = take_string(&mut obj, "apiKeySource");
        start.claude_code_version = take_string(&mut obj, "claude_code_version");
        if let Some(Value::Array(servers)) = obj.get("mcp_servers") {
            start.mcp_servers = Some(
                servers
                    .iter()
                    .map(|s| {
                        let field = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or("");
                        McpServer::new(field("name"), field("status"))
                    })
                    .collect(),
            );
            obj.remove("mcp_servers");
        }
        obj.remove("type");
        obj.remove("subtype");
        let mut event = Event::claude(start);
        add_extra(&mut event, obj, &SESSION_START_FIELDS);
        out.events.push(event);
        Ok(Disposition::Mapped)
    }

    fn compact(
        &mut self,
        mut obj: Map<String, Value>,
        out: &mut LineOut,
    ) -> Result<Disposition, String> {
        let mut compact = Compact::default();
        compact.session_id.clone_from(&self.session_id);
        let mut rest = Map::new();
        if let Some(Value::Object(mut meta)) = obj.remove("compact_metadata") {
            compact.trigger = take_string(&mut meta, "trigger");
            compact.pre_tokens = take_u64(&mut meta, "pre_tokens");
            compact.post_tokens = take_u64(&mut meta, "post_tokens");
            compact.duration_ms = take_u64(&mut meta, "duration_ms");
            rest = meta;
        }
        let mut event = Event::claude(compact);
        add_extra(&mut event, rest, &COMPACT_FIELDS);
        out.events.push(event);
        Ok(Disposition::Mapped)
    }

    fn rate_limit(
        &mut self,
        mut obj: Map<String, Value>,
        out: &mut LineOut,
    ) -> Result<Disposition, String> {
        let Some(Value::Object(mut info)) = obj.remove("rate_limit_info") else {
            return Err("rate_limit_event without object `rate_limit_info`".to_owned());
        };
        let status = take_string(&mut info, "status")
            .ok_or("rate_limit_event without string `rate_limit_info.status`")?;
        let mut limit = RateLimit::new(status);
        limit.session_id.clone_from(&self.session_id);
        limit.rate_limit_type = take_string(&mut info, "rateLimitType");
        limit.resets_at = match info.remove("resetsAt") {
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .and_then(|s| Timestamp::from_second(s).ok()),
            _ => None,
        };
        let mut event = Event::claude(limit);
        add_extra(&mut event, info, &RATE_LIMIT_FIELDS);
        out.events.push(event);
        Ok(Disposition::Mapped)
    }

    fn assistant(
        &mut self,
        mut obj: Map<String, Value>,
        out: &mut LineOut,
    ) -> Result<Disposition, String> {
        let Some(Value::Object(mut message)) = obj.remove("message") else {
            return Err("assistant line without object `message`".to_owned());
        };
        let Some(Value::Array(content)) = message.remove("content") else {
            return Err("assistant line without array `message.content`".to_owned());
        };
        let message_id = take_string(&mut message, "id");
        let parent = take_string(&mut obj, "parent_tool_use_id");
        let session_id = self.session_id.clone();
        let mut skipped = None;
        for block in content {
            let Value::Object(mut block) = block else {
                out.problems
                    .push("assistant content block is not an object".to_owned());
                continue;
            };
            let block_type = take_string(&mut block, "type").unwrap_or_default();
            match block_type.as_str() {
                "text" => match take_string(&mut block, "text") {
                    Some(text) => {
                        let mut data = Text::new(text);
                        data.session_id.clone_from(&session_id);
                        data.message_id.clone_from(&message_id);
                        data.parent_tool_use_id.clone_from(&parent);
                        out.events.push(Event::claude(data));
                    }
                    None => out
                        .problems
                        .push("text block without string `text`".to_owned()),
                },
                "thinking" => {
                    let mut data =
                        Thinking::new(take_string(&mut block, "thinking").unwrap_or_default());
                    data.signature = take_string(&mut block, "signature");
                    data.session_id.clone_from(&session_id);
                    data.message_id.clone_from(&message_id);
                    data.parent_tool_use_id.clone_from(&parent);
                    out.events.push(Event::claude(data));
                }
                "tool_use" | "server_tool_use" | "mcp_tool_use" => {
                    let (Some(id), Some(name)) = (
                        take_string(&mut block, "id"),
                        take_string(&mut block, "name"),
                    ) else {
                        out.problems
                            .push(format!("{block_type} block without string `id` and `name`"));
                        continue;
                    };
                    let input = block
                        .remove("input")
                        .unwrap_or_else(|| Value::Object(Map::new()));
                    self.tool_names.insert(id.clone(), name.clone());
                    let mut data = ToolUse::new(id, name, input);
                    data.session_id.clone_from(&session_id);
                    data.message_id.clone_from(&message_id);
                    data.parent_tool_use_id.clone_from(&parent);
                    let mut event = Event::claude(data);
                    if block_type != "tool_use" {
                        event
                            .extra
                            .insert("block_type".to_owned(), block_type.clone().into());
                    }
                    if let Some(caller) = block.remove("caller") {
                        event.extra.insert("caller".to_owned(), caller);
                    }
                    out.events.push(event);
                }
                t if t.ends_with("_tool_result") && block.contains_key("tool_use_id") => {
                    match self.tool_result(block, session_id.clone(), parent.clone()) {
                        Ok(mut event) => {
                            event
                                .extra
                                .insert("block_type".to_owned(), block_type.clone().into());
                            out.events.push(event);
                        }
                        Err(problem) => out.problems.push(problem),
                    }
                }
                other => {
                    let key = format!("assistant/{other}");
                    *self.summary.skipped.entry(key.clone()).or_default() += 1;
                    skipped.get_or_insert(key);
                }
            }
        }
        if let Some(error) = obj.remove("error").filter(|e| !e.is_null()) {
            let text = match &error {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let mut data = ErrorEvent::new(format!("assistant error: {text}"), Severity::Warning);
            data.session_id.clone_from(&session_id);
            out.events
                .push(Event::claude(data).with_extra("claude_error", error));
        }
        // An assistant line with only unknown blocks was counted per block already.
        match skipped {
            Some(_) if out.events.is_empty() && out.problems.is_empty() => {
                Ok(Disposition::Skipped("assistant".to_owned()))
            }
            _ if out.events.is_empty() && out.problems.is_empty() => {
                Ok(Disposition::Skipped("assistant/empty".to_owned()))
            }
            _ => Ok(Disposition::Mapped),
        }
    }

    fn user(
        &mut self,
        mut obj: Map<String, Value>,
        out: &mut LineOut,
    ) -> Result<Disposition, String> {
        if obj.get("isReplay").and_then(Value::as_bool) == Some(true) {
            return Ok(Disposition::Skipped("user/replay".to_owned()));
        }
        if obj.get("isSynthetic").and_then(Value::as_bool) == Some(true) {
            return Ok(Disposition::Skipped("user/synthetic".to_owned()));
        }
        let Some(Value::Object(mut message)) = obj.remove("message") else {
            return Err("user line without object `message`".to_owned());
        };
        let parent = take_string(&mut obj, "parent_tool_use_id");
        let blocks = match message.remove("content") {
            Some(Value::String(_)) => return Ok(Disposition::Skipped("user/text".to_owned())),
            Some(Value::Array(blocks)) => blocks,
            _ => return Err("user line without string or array `message.content`".to_owned()),
        };
        let mut other_block = None;
        for block in blocks {
            let Value::Object(block) = block else {
                out.problems
                    .push("user content block is not an object".to_owned());
                continue;
            };
            match block.get("type").and_then(Value::as_str) {
                Some("tool_result") => {
                    match self.tool_result(block, self.session_id.clone(), parent.clone()) {
                        Ok(event) => out.events.push(event),
                        Err(problem) => out.problems.push(problem),
                    }
                }
                other => {
                    other_block.get_or_insert_with(|| other.unwrap_or("unknown").to_owned());
                }
            }
        }
        if out.events.is_empty() && out.problems.is_empty() {
            let kind = other_block.unwrap_or_else(|| "empty".to_owned());
            return Ok(Disposition::Skipped(format!("user/{kind}")));
        }
        Ok(Disposition::Mapped)
    }

    fn tool_result(
        &self,
        mut block: Map<String, Value>,
        session_id: Option<String>,
        parent: Option<String>,
    ) -> Result<Event, String> {
        let tool_id = take_string(&mut block, "tool_use_id")
            .ok_or("tool_result block without string `tool_use_id`")?;
        let content = block.remove("content");
        let is_error = block
            .get("is_error")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            || content
                .as_ref()
                .and_then(|c| c.get("type"))
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("_error"));
        let mut data = ToolResult::new(tool_id, flatten_content(content), is_error);
        data.tool_name = self.tool_names.get(&data.tool_id).cloned();
        data.session_id = session_id;
        data.parent_tool_use_id = parent;
        Ok(Event::claude(data))
    }

    fn result(
        &mut self,
        mut obj: Map<String, Value>,
        out: &mut LineOut,
    ) -> Result<Disposition, String> {
        obj.remove("type");
        let session_id = take_string(&mut obj, "session_id")
            .or_else(|| self.session_id.clone())
            .ok_or("result without `session_id`")?;
        let num_turns = take_u64(&mut obj, "num_turns").unwrap_or(0);
        let duration_ms = take_u64(&mut obj, "duration_ms").unwrap_or(0);
        let cost = match take_f64(&mut obj, "total_cost_usd") {
            Some(cost) => cost,
            None => take_f64(&mut obj, "cost_usd").unwrap_or(0.0),
        };
        let mut end = SessionEnd::new(
            session_id,
            u32::try_from(num_turns).unwrap_or(u32::MAX),
            duration_ms,
            cost,
        );
        end.result = take_string(&mut obj, "result");
        if let Some(is_error) = obj.get("is_error").and_then(Value::as_bool) {
            end.is_error = is_error;
            obj.remove("is_error");
        }
        end.subtype = take_string(&mut obj, "subtype");
        end.duration_api_ms = take_u64(&mut obj, "duration_api_ms");
        if let Some(usage) = obj.remove("usage").filter(|u| !u.is_null()) {
            match serde_json::from_value::<Usage>(usage.clone()) {
                Ok(usage) => end.usage = Some(usage),
                Err(_) => {
                    obj.insert("claude_usage".to_owned(), usage);
                }
            }
        }
        if let Some(Value::Object(models)) = obj.remove("modelUsage") {
            end.model_usage = Some(
                models
                    .into_iter()
                    .map(|(model, usage)| (model, model_usage(usage)))
                    .collect(),
            );
        }
        if let Some(Value::Array(denials)) = obj.remove("permission_denials") {
            end.permission_denials = Some(denials);
        }
        if let Some(Value::Array(errors)) = obj.remove("errors") {
            end.errors = Some(
                errors
                    .into_iter()
                    .map(|e| match e {
                        Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect(),
            );
        }
        end.api_error_status =
            take_u64(&mut obj, "api_error_status").and_then(|s| u16::try_from(s).ok());
        end.stop_reason = take_string(&mut obj, "stop_reason");
        end.terminal_reason = take_string(&mut obj, "terminal_reason");

        self.summary.turns += num_turns;
        self.summary.cost_usd += cost;
        self.summary.duration_ms += duration_ms;
        let mut event = Event::claude(end);
        add_extra(&mut event, obj, &SESSION_END_FIELDS);
        out.events.push(event);
        Ok(Disposition::Mapped)
    }
}

impl LineOut {
    fn fail(reason: impl Into<String>) -> Self {
        LineOut {
            problems: vec![reason.into()],
            ..LineOut::default()
        }
    }
}

/// The id of the `index`th event of line `line_number` (see the module docs): derived
/// from the session, the event type and what names the fact in the stream: the tool
/// call id for tool calls and results, else the line's `uuid`, else the line's position.
fn event_id(event: &Event, uuid: Option<&str>, line_number: u64, index: usize) -> EventId {
    let mut key = String::from("claude-stream\0");
    key.push_str(event.partition_key().unwrap_or(""));
    key.push('\0');
    key.push_str(event.event_type());
    key.push('\0');
    match (&event.data, uuid) {
        (EventData::ToolUse(t), _) => key.push_str(&t.tool_id),
        (EventData::ToolResult(r), _) => key.push_str(&r.tool_id),
        (_, Some(uuid)) => {
            let _ = write!(key, "uuid\0{uuid}\0{index}");
        }
        (_, None) => {
            let _ = write!(key, "line\0{line_number}\0{index}");
        }
    }
    EventId::derived_untimed(key.as_bytes())
}

/// Parses a whole stream with a fresh [`ClaudeParser`]; see
/// [`ClaudeParser::parse_reader`].
pub fn parse_reader<R: BufRead>(
    reader: R,
    on_event: impl FnMut(Event),
) -> io::Result<ParseSummary> {
    ClaudeParser::new().parse_reader(reader, on_event)
}

fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
}
