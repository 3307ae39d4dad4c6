//! The JSON side of the stream-json parser: the fields each line type keeps, moving the
//! rest into an event's extra map, and taking typed values out of a line's object.

use serde_json::{Map, Value};
use vibes_events::{Event, ModelUsage};

use super::ENVELOPE;

pub(super) const SESSION_START_FIELDS: [&str; 8] = [
    "session_id",
    "model",
    "tools",
    "cwd",
    "permission_mode",
    "api_key_source",
    "claude_code_version",
    "mcp_servers",
];
pub(super) const SESSION_END_FIELDS: [&str; 15] = [
    "session_id",
    "num_turns",
    "duration_ms",
    "total_cost_usd",
    "result",
    "is_error",
    "subtype",
    "duration_api_ms",
    "usage",
    "model_usage",
    "permission_denials",
    "errors",
    "api_error_status",
    "stop_reason",
    "terminal_reason",
];
pub(super) const COMPACT_FIELDS: [&str; 5] = [
    "session_id",
    "trigger",
    "pre_tokens",
    "post_tokens",
    "duration_ms",
];
pub(super) const RATE_LIMIT_FIELDS: [&str; 4] =
    ["status", "session_id", "rate_limit_type", "resets_at"];

/// Moves `fields` into the event's extra map, prefixing with `claude_` any key that
/// would collide with the envelope or with one of `own` (the type's fields).
pub(super) fn add_extra(event: &mut Event, fields: Map<String, Value>, own: &[&str]) {
    for (key, value) in fields {
        let key = if ENVELOPE.contains(&key.as_str()) || own.contains(&key.as_str()) {
            format!("claude_{key}")
        } else {
            key
        };
        event.extra.insert(key, value);
    }
}

pub(super) fn model_usage(usage: Value) -> ModelUsage {
    let mut out = ModelUsage::default();
    let Value::Object(fields) = usage else {
        out.other.insert("value".to_owned(), usage);
        return out;
    };
    for (key, value) in fields {
        let target = match key.as_str() {
            "inputTokens" | "input_tokens" => &mut out.input_tokens,
            "outputTokens" | "output_tokens" => &mut out.output_tokens,
            "cacheReadInputTokens" | "cache_read_input_tokens" => &mut out.cache_read_input_tokens,
            "cacheCreationInputTokens" | "cache_creation_input_tokens" => {
                &mut out.cache_creation_input_tokens
            }
            "costUSD" | "cost_usd" if value.is_number() => {
                out.cost_usd = value.as_f64().unwrap_or(0.0);
                continue;
            }
            _ => {
                out.other.insert(key, value);
                continue;
            }
        };
        match value.as_u64() {
            Some(n) => *target = n,
            None => {
                out.other.insert(key, value);
            }
        }
    }
    out
}

/// Flattens tool-result content to text; see the [parser's docs](super). The content
/// is taken, so its text moves into the result rather than being copied (tool results
/// are most of a transcript's bytes).
pub(crate) fn flatten_content(content: Option<Value>) -> String {
    match content {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        Some(Value::Array(blocks)) => {
            let mut parts: Vec<String> = blocks.into_iter().map(flatten_block).collect();
            if parts.len() == 1 {
                parts.pop().unwrap_or_default()
            } else {
                parts.join("\n")
            }
        }
        Some(other) => other.to_string(),
    }
}

fn flatten_block(block: Value) -> String {
    // The kind is told first, so a text block's text can move out of the block.
    enum Kind {
        Untyped,
        Text,
        Other(String),
    }
    let kind = match block.get("type").and_then(Value::as_str) {
        None => Kind::Untyped,
        Some("text") => Kind::Text,
        Some(other) => Kind::Other(other.to_owned()),
    };
    let (kind, block) = match (kind, block) {
        (Kind::Untyped, Value::String(s)) => return s,
        (Kind::Untyped, other) => return other.to_string(),
        (Kind::Text, Value::Object(mut map)) => {
            return match map.remove("text") {
                Some(Value::String(text)) => text,
                _ => "[text block]".to_owned(),
            };
        }
        (Kind::Text, _) => return "[text block]".to_owned(),
        (Kind::Other(kind), block) => (kind, block),
    };
    match kind.as_str() {
        "image" => {
            let source = block.get("source");
            let is_base64 =
                source.and_then(|s| s.get("type")).and_then(Value::as_str) == Some("base64");
            let data = source.and_then(|s| s.get("data")).and_then(Value::as_str);
            match (is_base64, data) {
                (true, Some(data)) => {
                    let media = source
                        .and_then(|s| s.get("media_type"))
                        .and_then(Value::as_str)
                        .unwrap_or("unknown");
                    format!("[image {media}, {} bytes]", base64_decoded_len(data))
                }
                _ => "[image block]".to_owned(),
            }
        }
        other => format!("[{other} block]"),
    }
}

/// The number of bytes `data` decodes to, from its length and padding (whitespace is
/// ignored; works with and without padding).
fn base64_decoded_len(data: &str) -> usize {
    let bytes = data.as_bytes();
    let chars = bytes.iter().filter(|b| !b.is_ascii_whitespace()).count();
    let padding = bytes
        .iter()
        .rev()
        .filter(|b| !b.is_ascii_whitespace())
        .take(2)
        .take_while(|&&b| b == b'=')
        .count();
    (chars - padding) * 3 / 4
}

/// serde_json's message without its `at line 1` part: the input is one line.
pub(crate) fn json_reason(err: &serde_json::Error) -> String {
    let message = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    match message.strip_suffix(&suffix) {
        Some(reason) => format!("{reason} at column {}", err.column()),
        None => message,
    }
}

pub(crate) fn take_string(obj: &mut Map<String, Value>, key: &str) -> Option<String> {
    match obj.remove(key) {
        Some(Value::String(s)) => Some(s),
        Some(Value::Null) | None => None,
        Some(other) => {
            obj.insert(key.to_owned(), other);
            None
        }
    }
}

pub(crate) fn take_u64(obj: &mut Map<String, Value>, key: &str) -> Option<u64> {
    let n = obj.get(key)?.as_u64()?;
    obj.remove(key);
    Some(n)
}

pub(super) fn take_f64(obj: &mut Map<String, Value>, key: &str) -> Option<f64> {
    let n = obj.get(key)?.as_f64()?;
    obj.remove(key);
    Some(n)
}
