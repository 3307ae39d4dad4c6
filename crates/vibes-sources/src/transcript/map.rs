//! Mapping one transcript line onto events: the table in the [parent's docs](super),
//! line type by line type (`assistant`, `user`, `system`), with the ids each event
//! gets. The reader in the parent module splits the file into lines and keeps the
//! state between them.

use std::collections::HashMap;
use std::fmt::Write as _;

use jiff::Timestamp;
use serde_json::{Map, Value};
use vibes_events::{
    ApiCall, ApiError, ApiUsage, Compact, Event, EventData, EventId, Interrupt, RateLimit,
    SessionStart, Text, Thinking, ToolResult, ToolUse, TurnDuration,
};

use super::{Checkpoint, INTERRUPT, LineCtx};
use crate::claude::{flatten_content, take_string, take_u64};

/// How a line that produced no events is counted.
pub(super) enum Skip {
    Known(String),
    Unknown(String),
}

impl LineCtx<'_> {
    /// The id of an event of this line from `parts` of what the transcript says.
    fn id(&self, parts: &[&str]) -> EventId {
        let mut key = String::from("claude-transcript\0");
        key.push_str(&self.session_id);
        for part in parts {
            key.push('\0');
            key.push_str(part);
        }
        EventId::derived(self.timestamp.unwrap_or_default(), key.as_bytes())
    }

    /// The line's own identity: its `uuid`, else the file and byte offset.
    fn line_key(&self) -> String {
        match &self.uuid {
            Some(uuid) => format!("uuid\0{uuid}"),
            None => format!("at\0{}\0{}", self.file.identity(), self.offset),
        }
    }

    /// Wraps `data` as an event of this line with id `id`; `own_agent` says whether
    /// the type has its own `agent_id`/`is_sidechain` fields.
    fn push(&mut self, data: impl Into<EventData>, id: EventId, own_agent: bool) {
        let mut event = Event::claude(data)
            .with_id(id)
            .with_timestamp(self.timestamp.unwrap_or_default());
        if let Some(uuid) = &self.uuid {
            event.extra.insert("uuid".to_owned(), uuid.clone().into());
        }
        if !own_agent {
            if let Some(agent) = &self.agent_id {
                event
                    .extra
                    .insert("agent_id".to_owned(), agent.clone().into());
            }
            if self.is_sidechain {
                event.extra.insert("is_sidechain".to_owned(), true.into());
            }
        }
        self.events.push(event);
    }

    /// The id of a line-level event of `event_type`.
    fn line_id(&self, event_type: &str) -> EventId {
        self.id(&[event_type, &self.line_key()])
    }
}

pub(super) fn assistant(
    mut obj: Map<String, Value>,
    ctx: &mut LineCtx<'_>,
    tool_names: &mut HashMap<String, String>,
    session_started: &mut bool,
) -> Option<Skip> {
    let Some(Value::Object(mut message)) = obj.remove("message") else {
        ctx.problems
            .push("assistant line without object `message`".to_owned());
        return None;
    };
    let model = take_string(&mut message, "model");
    let message_id = take_string(&mut message, "id");
    let request_id = take_string(&mut obj, "requestId");
    let content = match message.remove("content") {
        Some(Value::Array(blocks)) => blocks,
        Some(Value::String(text)) => vec![serde_json::json!({"type": "text", "text": text})],
        _ => Vec::new(),
    };
    let synthetic = model.as_deref() == Some("<synthetic>");
    if obj.get("isApiErrorMessage").and_then(Value::as_bool) == Some(true) || synthetic {
        return api_error_message(&obj, &content, ctx);
    }

    if !*session_started
        && ctx.file.agent_id.is_none()
        && ctx.timestamp.is_some()
        && let Some(model) = &model
    {
        let mut start = SessionStart::new(model.clone(), Vec::new());
        start.session_id = Some(ctx.session_id.clone());
        start.cwd = obj.get("cwd").and_then(Value::as_str).map(str::to_owned);
        start.claude_code_version = obj
            .get("version")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let id = ctx.id(&["session.start"]);
        ctx.push(start, id, false);
        if let Some(branch) = obj.get("gitBranch").and_then(Value::as_str)
            && let Some(event) = ctx.events.last_mut()
        {
            event
                .extra
                .insert("git_branch".to_owned(), branch.to_owned().into());
        }
        *session_started = true;
    }

    if let Some(usage) = message.remove("usage").filter(|u| !u.is_null()) {
        match api_usage(usage) {
            Ok(usage) => {
                let mut call = ApiCall::new(usage);
                call.stop_reason = take_string(&mut message, "stop_reason");
                call.output_final = call.stop_reason.is_some();
                call.message_id.clone_from(&message_id);
                call.request_id.clone_from(&request_id);
                call.model.clone_from(&model);
                call.session_id = Some(ctx.session_id.clone());
                call.agent_id.clone_from(&ctx.agent_id);
                call.is_sidechain = ctx.is_sidechain;
                let id = ctx.id(&[
                    "claude.api_call",
                    message_id.as_deref().unwrap_or(""),
                    request_id.as_deref().unwrap_or(""),
                    &ctx.line_key(),
                ]);
                ctx.push(call, id, true);
            }
            Err(problem) => ctx.problems.push(problem),
        }
    }

    let msg_key = message_id.clone().unwrap_or_else(|| ctx.line_key());
    for (index, block) in content.into_iter().enumerate() {
        let Value::Object(mut block) = block else {
            ctx.problems
                .push("assistant content block is not an object".to_owned());
            continue;
        };
        let block_type = take_string(&mut block, "type").unwrap_or_default();
        match block_type.as_str() {
            "text" => {
                let Some(text) = take_string(&mut block, "text") else {
                    ctx.problems
                        .push("text block without string `text`".to_owned());
                    continue;
                };
                let id = ctx.id(&["claude.text", &msg_key, &index.to_string(), &hash(&text)]);
                let mut data = Text::new(text);
                data.session_id = Some(ctx.session_id.clone());
                data.message_id.clone_from(&message_id);
                ctx.push(data, id, false);
            }
            "thinking" | "redacted_thinking" => {
                let text = take_string(&mut block, "thinking").unwrap_or_default();
                let signature = take_string(&mut block, "signature");
                let id = ctx.id(&[
                    "claude.thinking",
                    &msg_key,
                    &index.to_string(),
                    &hash(&text),
                ]);
                let mut data = Thinking::new(text);
                data.signature = signature;
                data.session_id = Some(ctx.session_id.clone());
                data.message_id.clone_from(&message_id);
                ctx.push(data, id, false);
            }
            "tool_use" | "server_tool_use" | "mcp_tool_use" => {
                let (Some(tool_id), Some(name)) = (
                    take_string(&mut block, "id"),
                    take_string(&mut block, "name"),
                ) else {
                    ctx.problems
                        .push(format!("{block_type} block without string `id` and `name`"));
                    continue;
                };
                let input = block
                    .remove("input")
                    .unwrap_or_else(|| Value::Object(Map::new()));
                tool_names.insert(tool_id.clone(), name.clone());
                let id = ctx.id(&["claude.tool_use", &tool_id]);
                let mut data = ToolUse::new(tool_id, name, input);
                data.session_id = Some(ctx.session_id.clone());
                data.message_id.clone_from(&message_id);
                ctx.push(data, id, false);
                if block_type != "tool_use"
                    && let Some(event) = ctx.events.last_mut()
                {
                    event
                        .extra
                        .insert("block_type".to_owned(), block_type.clone().into());
                }
            }
            "" => ctx.skipped_blocks.push("assistant/untyped".to_owned()),
            other => ctx.skipped_blocks.push(format!("assistant/{other}")),
        }
    }
    if ctx.events.is_empty() && ctx.problems.is_empty() && ctx.skipped_blocks.is_empty() {
        return Some(Skip::Known("assistant/empty".to_owned()));
    }
    None
}

/// An assistant line Claude Code wrote in place of a response: a usage limit or an
/// API error.
pub(super) fn api_error_message(
    obj: &Map<String, Value>,
    content: &[Value],
    ctx: &mut LineCtx<'_>,
) -> Option<Skip> {
    let text = content
        .iter()
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n");
    if let Some(mut limit) = limit_warning(&text) {
        limit.session_id = Some(ctx.session_id.clone());
        let id = ctx.line_id("claude.rate_limit");
        ctx.push(limit, id, false);
        return None;
    }
    if text.is_empty() && obj.get("isApiErrorMessage").and_then(Value::as_bool) != Some(true) {
        return Some(Skip::Known("assistant/synthetic".to_owned()));
    }
    let mut error = ApiError::new(if text.is_empty() {
        obj.get("error")
            .and_then(Value::as_str)
            .unwrap_or("API error")
            .to_owned()
    } else {
        text.clone()
    });
    error.status = obj
        .get("apiErrorStatus")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .or_else(|| status_in_text(&text));
    error.session_id = Some(ctx.session_id.clone());
    error.agent_id.clone_from(&ctx.agent_id);
    let id = ctx.line_id("claude.api_error");
    ctx.push(error, id, true);
    if let Some(code) = obj.get("error").filter(|e| !e.is_null())
        && let Some(event) = ctx.events.last_mut()
    {
        event.extra.insert("claude_error".to_owned(), code.clone());
    }
    None
}

pub(super) fn user(
    mut obj: Map<String, Value>,
    ctx: &mut LineCtx<'_>,
    tool_names: &HashMap<String, String>,
    checkpoint: &Checkpoint,
) -> Option<Skip> {
    if obj.get("isCompactSummary").and_then(Value::as_bool) == Some(true) {
        let parent = obj.get("parentUuid").and_then(Value::as_str);
        if parent.is_some() && parent == checkpoint.compact_boundary.as_deref() {
            return Some(Skip::Known("user/compact_summary".to_owned()));
        }
        let mut compact = Compact::default();
        compact.session_id = Some(ctx.session_id.clone());
        let id = ctx.line_id("session.compact");
        ctx.push(compact, id, false);
        return None;
    }
    if obj.get("isMeta").and_then(Value::as_bool) == Some(true) {
        return Some(Skip::Known("user/meta".to_owned()));
    }
    let Some(Value::Object(mut message)) = obj.remove("message") else {
        ctx.problems
            .push("user line without object `message`".to_owned());
        return None;
    };
    let blocks = match message.remove("content") {
        Some(Value::String(text)) => {
            return interrupt(&text, ctx);
        }
        Some(Value::Array(blocks)) => blocks,
        _ => {
            ctx.problems
                .push("user line without string or array `message.content`".to_owned());
            return None;
        }
    };
    for block in blocks {
        let Value::Object(mut block) = block else {
            ctx.problems
                .push("user content block is not an object".to_owned());
            continue;
        };
        match block.get("type").and_then(Value::as_str) {
            Some("tool_result") => {
                let Some(tool_id) = take_string(&mut block, "tool_use_id") else {
                    ctx.problems
                        .push("tool_result block without string `tool_use_id`".to_owned());
                    continue;
                };
                let content = block.remove("content");
                let is_error = block.get("is_error").and_then(Value::as_bool) == Some(true);
                let id = ctx.id(&["claude.tool_result", &tool_id]);
                let mut data = ToolResult::new(tool_id, flatten_content(content), is_error);
                data.tool_name = tool_names.get(&data.tool_id).cloned();
                data.session_id = Some(ctx.session_id.clone());
                ctx.push(data, id, false);
            }
            Some("text") => {
                let text = block.get("text").and_then(Value::as_str).unwrap_or("");
                if interrupt(text, ctx).is_some() {
                    ctx.skipped_blocks.push("user/text".to_owned());
                }
            }
            Some(other) => ctx.skipped_blocks.push(format!("user/{other}")),
            None => ctx.skipped_blocks.push("user/untyped".to_owned()),
        }
    }
    if ctx.events.is_empty() && ctx.problems.is_empty() && ctx.skipped_blocks.is_empty() {
        return Some(Skip::Known("user/empty".to_owned()));
    }
    None
}

/// Emits `claude.interrupt` when `text` reports one; otherwise says how to count it.
pub(super) fn interrupt(text: &str, ctx: &mut LineCtx<'_>) -> Option<Skip> {
    if !text.trim_start().starts_with(INTERRUPT) {
        return Some(Skip::Known("user/text".to_owned()));
    }
    let mut data = Interrupt::default();
    data.during_tool_use = text.contains("for tool use");
    data.session_id = Some(ctx.session_id.clone());
    data.agent_id.clone_from(&ctx.agent_id);
    let id = ctx.line_id("claude.interrupt");
    ctx.push(data, id, true);
    None
}

/// Maps a system line; also returns the `uuid` of a compaction boundary.
pub(super) fn system(
    mut obj: Map<String, Value>,
    ctx: &mut LineCtx<'_>,
) -> (Option<Skip>, Option<String>) {
    let subtype = obj
        .get("subtype")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    match subtype.as_str() {
        "compact_boundary" => {
            let mut compact = Compact::default();
            compact.session_id = Some(ctx.session_id.clone());
            let mut rest = Map::new();
            if let Some(Value::Object(mut meta)) = obj.remove("compactMetadata") {
                compact.trigger = take_string(&mut meta, "trigger");
                compact.pre_tokens = take_u64(&mut meta, "preTokens");
                compact.post_tokens = take_u64(&mut meta, "postTokens");
                compact.duration_ms = take_u64(&mut meta, "durationMs");
                rest = meta;
            }
            let id = ctx.line_id("session.compact");
            ctx.push(compact, id, false);
            if let Some(event) = ctx.events.last_mut() {
                for (key, value) in rest {
                    event.extra.entry(format!("claude_{key}")).or_insert(value);
                }
            }
            (None, ctx.uuid.clone())
        }
        "turn_duration" => {
            let Some(ms) = obj.get("durationMs").and_then(Value::as_f64) else {
                ctx.problems
                    .push("turn_duration without number `durationMs`".to_owned());
                return (None, None);
            };
            let mut data = TurnDuration::new(ms.max(0.0).round() as u64);
            data.session_id = Some(ctx.session_id.clone());
            data.agent_id.clone_from(&ctx.agent_id);
            let id = ctx.line_id("claude.turn_duration");
            ctx.push(data, id, true);
            (None, None)
        }
        "api_error" => {
            let data = retry_error(&obj, ctx);
            let id = ctx.line_id("claude.api_error");
            ctx.push(data, id, true);
            (None, None)
        }
        "" | "informational" | "warning" => {
            let text = obj.get("content").and_then(Value::as_str).unwrap_or("");
            match limit_warning(text) {
                Some(mut limit) => {
                    limit.session_id = Some(ctx.session_id.clone());
                    let id = ctx.line_id("claude.rate_limit");
                    ctx.push(limit, id, false);
                    (None, None)
                }
                None if subtype.is_empty() => (Some(Skip::Known("system".to_owned())), None),
                None => (Some(Skip::Known(format!("system/{subtype}"))), None),
            }
        }
        "stop_hook_summary"
        | "local_command"
        | "away_summary"
        | "model_refusal_fallback"
        | "agents_killed"
        | "hook_started"
        | "hook_response"
        | "status"
        | "init" => (Some(Skip::Known(format!("system/{subtype}"))), None),
        other => (Some(Skip::Unknown(format!("system/{other}"))), None),
    }
}

/// A `system/api_error` retry line as `claude.api_error`.
pub(super) fn retry_error(obj: &Map<String, Value>, ctx: &LineCtx<'_>) -> ApiError {
    let error = obj.get("error");
    let field = |path: &[&str]| {
        let mut v = error?;
        for key in path {
            v = v.get(key)?;
        }
        Some(v)
    };
    let message = [
        &["message"][..],
        &["error", "message"],
        &["error", "error", "message"],
    ]
    .iter()
    .find_map(|path| field(path).and_then(Value::as_str))
    .or_else(|| obj.get("content").and_then(Value::as_str))
    .or_else(|| error.and_then(Value::as_str))
    .unwrap_or("API error")
    .to_owned();
    let mut data = ApiError::new(message);
    data.status = field(&["status"])
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok());
    data.retry_attempt = obj
        .get("retryAttempt")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok());
    data.max_retries = obj
        .get("maxRetries")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok());
    data.retry_in_ms = obj
        .get("retryInMs")
        .and_then(Value::as_f64)
        .map(|ms| ms.max(0.0).round() as u64);
    data.cause = field(&["cause"]).map(|cause| {
        ["code", "message"]
            .iter()
            .find_map(|k| cause.get(k).and_then(Value::as_str))
            .map(str::to_owned)
            .unwrap_or_else(|| match cause {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
    });
    data.request_id = field(&["requestID"])
        .or_else(|| field(&["request_id"]))
        .and_then(Value::as_str)
        .map(str::to_owned);
    data.session_id = Some(ctx.session_id.clone());
    data.agent_id.clone_from(&ctx.agent_id);
    data
}

/// A usage-limit or model-fallback warning in Claude Code's words, if `text` is one:
/// "Claude Opus limit reached, now using Sonnet 4" (status `fallback`, with the model
/// switched to), "Claude AI usage limit reached|1756152000" (status `rejected`, reset
/// at that Unix time), or any other "... limit reached ..." / "hit your limit" text
/// (status `rejected`).
pub fn limit_warning(text: &str) -> Option<RateLimit> {
    let lower = text.to_lowercase();
    if !(lower.contains("limit reached") || lower.contains("hit your limit")) {
        return None;
    }
    let mut limit = match lower.find("now using ") {
        Some(at) => {
            let model = text
                .get(at + "now using ".len()..)
                .unwrap_or("")
                .trim()
                .trim_end_matches(['.', '!'])
                .to_owned();
            let mut limit = RateLimit::new("fallback");
            limit.fallback_model = (!model.is_empty()).then_some(model);
            limit
        }
        None => RateLimit::new("rejected"),
    };
    if let Some((_, tail)) = text.split_once('|') {
        let digits: String = tail
            .trim()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        limit.resets_at = digits
            .parse::<i64>()
            .ok()
            .and_then(|s| Timestamp::from_second(s).ok());
    }
    limit.message = Some(text.to_owned());
    Some(limit)
}

/// The status in "API Error: 502 ..." text.
pub(super) fn status_in_text(text: &str) -> Option<u16> {
    let rest = text.trim_start().strip_prefix("API Error: ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|s| (100..600).contains(s))
}

/// `message.usage` of an assistant message (in a transcript or a stream-json line) as
/// [`ApiUsage`]. Without a `cache_creation` split (before the 1-hour cache existed)
/// every cache write is a 5-minute one.
///
/// # Errors
///
/// `usage` is not an object, or a count in it is not a count (the message names it).
pub fn api_usage(usage: Value) -> Result<ApiUsage, String> {
    let Value::Object(mut fields) = usage else {
        return Err("`message.usage` is not an object".to_owned());
    };
    let mut count = |key: &str| -> Result<u64, String> {
        match fields.remove(key) {
            None | Some(Value::Null) => Ok(0),
            Some(v) => v
                .as_u64()
                .ok_or_else(|| format!("`message.usage.{key}` is not a count")),
        }
    };
    let input = count("input_tokens")?;
    let output = count("output_tokens")?;
    let cache_read = count("cache_read_input_tokens")?;
    let cache_total = count("cache_creation_input_tokens")?;
    let split = match fields.remove("cache_creation") {
        Some(Value::Object(mut split)) => {
            let mut part = |key: &str| split.remove(key).and_then(|v| v.as_u64());
            let five = part("ephemeral_5m_input_tokens");
            let hour = part("ephemeral_1h_input_tokens");
            if !split.is_empty() {
                fields.insert("cache_creation".to_owned(), Value::Object(split));
            }
            Some((five.unwrap_or(0), hour.unwrap_or(0)))
        }
        Some(other) if !other.is_null() => {
            fields.insert("cache_creation".to_owned(), other);
            None
        }
        _ => None,
    };
    let (five, hour) = match split {
        Some((five, hour)) if five + hour == cache_total || cache_total == 0 => (five, hour),
        // The split disagrees with the total: the total wins; the hour part is kept.
        Some((_, hour)) => (cache_total.saturating_sub(hour), hour.min(cache_total)),
        None => (cache_total, 0),
    };
    let mut out = ApiUsage::new(input, output, five, hour, cache_read);
    out.other = fields;
    Ok(out)
}

/// A hex XXH3-128 of `text`, to tell blocks of one message apart.
pub(super) fn hash(text: &str) -> String {
    let mut out = String::with_capacity(32);
    let _ = write!(out, "{:032x}", xxhash_rust::xxh3::xxh3_128(text.as_bytes()));
    out
}
