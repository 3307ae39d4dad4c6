//! Claude Code session and content events: `session.*`, `claude.*`.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

fn is_false(b: &bool) -> bool {
    !*b
}

/// `session.start`: a Claude session began (stream-json `system/init`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionStart {
    /// The Claude session id. Extension: the seed's type lacks it; it is the partition key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Model name, e.g. `claude-sonnet-4-5-20250929`.
    pub model: String,
    /// Names of the tools the session may call.
    pub tools: Vec<String>,
    /// Working directory of the session. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Permission mode (`default`, `acceptEdits`, `bypassPermissions`, ...). Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_mode: Option<String>,
    /// Where the API key came from (`apiKeySource` in stream-json). Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_source: Option<String>,
    /// Claude Code CLI version (2.x prints it). Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claude_code_version: Option<String>,
    /// Connected MCP servers and their status. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_servers: Option<Vec<McpServer>>,
}

impl SessionStart {
    /// A session start with the seed's fields; the extensions are empty.
    pub fn new(model: impl Into<String>, tools: Vec<String>) -> Self {
        Self {
            session_id: None,
            model: model.into(),
            tools,
            cwd: None,
            permission_mode: None,
            api_key_source: None,
            claude_code_version: None,
            mcp_servers: None,
        }
    }
}

/// An MCP server listed in a session's init line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct McpServer {
    /// Server name.
    pub name: String,
    /// Connection status (`connected`, `failed`, ...).
    pub status: String,
}

impl McpServer {
    /// An MCP server entry.
    pub fn new(name: impl Into<String>, status: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            status: status.into(),
        }
    }
}

/// `session.end`: a Claude session completed (stream-json `result`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionEnd {
    /// The Claude session id.
    pub session_id: String,
    /// Number of turns the session took.
    pub num_turns: u32,
    /// Wall-clock duration in milliseconds.
    pub duration_ms: u64,
    /// Total cost in US dollars.
    pub total_cost_usd: f64,
    /// The final result text; absent or null on many errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Whether the session failed. Extension. Decide failure from this, never from
    /// `subtype` alone: a bad model name gives `subtype: success` with `is_error: true`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_error: bool,
    /// Result subtype: `success`, `error_max_turns`, `error_during_execution`, ... Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtype: Option<String>,
    /// Time spent waiting for the API, in milliseconds. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_api_ms: Option<u64>,
    /// Token usage over the whole session. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Usage and cost per model (`modelUsage`). Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_usage: Option<BTreeMap<String, ModelUsage>>,
    /// Tool calls the permission system refused. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_denials: Option<Vec<Value>>,
    /// Error messages reported with the result. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<String>>,
    /// HTTP status of the API error that ended the session, if any. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_error_status: Option<u16>,
    /// Why the last API response stopped (`end_turn`, `max_tokens`, ...). Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// Why the session loop ended, as Claude Code reports it. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_reason: Option<String>,
}

impl SessionEnd {
    /// A session end with the seed's fields; the extensions are empty and `is_error` is false.
    pub fn new(
        session_id: impl Into<String>,
        num_turns: u32,
        duration_ms: u64,
        total_cost_usd: f64,
    ) -> Self {
        Self {
            session_id: session_id.into(),
            num_turns,
            duration_ms,
            total_cost_usd,
            result: None,
            is_error: false,
            subtype: None,
            duration_api_ms: None,
            usage: None,
            model_usage: None,
            permission_denials: None,
            errors: None,
            api_error_status: None,
            stop_reason: None,
            terminal_reason: None,
        }
    }
}

/// Token counts of an API message or a whole session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Usage {
    /// Uncached input tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache.
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the prompt cache.
    #[serde(default)]
    pub cache_read_input_tokens: u64,
    /// Any further counters (`service_tier`, `server_tool_use`, ...), kept verbatim.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Usage and cost of one model within a session (`modelUsage` in stream-json).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelUsage {
    /// Uncached input tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    #[serde(default)]
    pub cache_read_input_tokens: u64,
    /// Input tokens written to the prompt cache.
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
    /// Cost in US dollars.
    #[serde(default)]
    pub cost_usd: f64,
    /// Any further fields (`contextWindow`, `webSearchRequests`, ...), kept verbatim.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `session.compact`: Claude compacted its context (stream-json `compact_boundary`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Compact {
    /// The Claude session id. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// What triggered it: `manual` or `auto`. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// Context size in tokens before compaction. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_tokens: Option<u64>,
    /// Context size in tokens after compaction. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_tokens: Option<u64>,
    /// How long compaction took, in milliseconds. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// `claude.text`: assistant text output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Text {
    /// The text.
    pub text: String,
    /// The Claude session id. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Id of the API message the block belongs to. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Set inside a sub-agent: the Task tool call that spawned it. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_tool_use_id: Option<String>,
}

impl Text {
    /// A text event with only the seed's field.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            session_id: None,
            message_id: None,
            parent_tool_use_id: None,
        }
    }
}

/// `claude.thinking`: extended thinking content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Thinking {
    /// The thinking text; may be empty (redacted or summarised thinking).
    pub text: String,
    /// The block's signature, kept so that nothing the input had is lost. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The Claude session id. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Id of the API message the block belongs to. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Set inside a sub-agent. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_tool_use_id: Option<String>,
}

impl Thinking {
    /// A thinking event with only the seed's field.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            signature: None,
            session_id: None,
            message_id: None,
            parent_tool_use_id: None,
        }
    }
}

/// `claude.tool_use`: Claude invoked a tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ToolUse {
    /// The tool call id (`toolu_...`); its result carries the same id.
    pub tool_id: String,
    /// Tool name (`Bash`, `Read`, `mcp__server__tool`, ...).
    pub tool_name: String,
    /// The tool's input, normally a JSON object.
    pub input: Value,
    /// The Claude session id. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Id of the API message the block belongs to. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Set inside a sub-agent. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_tool_use_id: Option<String>,
}

impl ToolUse {
    /// A tool call with the seed's fields.
    pub fn new(tool_id: impl Into<String>, tool_name: impl Into<String>, input: Value) -> Self {
        Self {
            tool_id: tool_id.into(),
            tool_name: tool_name.into(),
            input,
            session_id: None,
            message_id: None,
            parent_tool_use_id: None,
        }
    }
}

/// `claude.tool_result`: the result of a tool call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ToolResult {
    /// Id of the tool call this answers.
    pub tool_id: String,
    /// The result as text. Array content is flattened to text by the source and images
    /// are summarised as `[image image/png, N bytes]`.
    pub content: String,
    /// Whether the tool failed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_error: bool,
    /// Name of the tool this answers. Extension: stream-json only carries the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// The Claude session id. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Set inside a sub-agent. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_tool_use_id: Option<String>,
}

impl ToolResult {
    /// A tool result with the seed's fields.
    pub fn new(tool_id: impl Into<String>, content: impl Into<String>, is_error: bool) -> Self {
        Self {
            tool_id: tool_id.into(),
            content: content.into(),
            is_error,
            tool_name: None,
            session_id: None,
            parent_tool_use_id: None,
        }
    }
}

/// `claude.rate_limit`: the API reported the state of a rate limit
/// (stream-json `rate_limit_event`). Extension: the seed has no such type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RateLimit {
    /// `allowed`, `allowed_warning`, `rejected`, ...
    pub status: String,
    /// The Claude session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Which limit: `five_hour`, `seven_day`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_type: Option<String>,
    /// When the limit resets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resets_at: Option<Timestamp>,
    /// The warning as Claude Code wrote it, when the report came as text (transcripts:
    /// "Claude Opus limit reached, now using Sonnet 4").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The model Claude Code switched to because of the limit, as the text names it
    /// (`Sonnet 4`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_model: Option<String>,
}

impl RateLimit {
    /// A rate-limit report with only its status.
    pub fn new(status: impl Into<String>) -> Self {
        Self {
            status: status.into(),
            session_id: None,
            rate_limit_type: None,
            resets_at: None,
            message: None,
            fallback_model: None,
        }
    }
}

/// `claude.api_call`: one copy of one API response, with its token usage (Claude Code
/// transcripts). Extension: the seed has no such type.
///
/// Claude Code writes one response as several lines, one per content block, each
/// repeating the message id, request id and usage; the usage is a streaming snapshot,
/// so later copies may report more output tokens. A consumer counts one call per
/// (`message_id`, `request_id`) and keeps the copy with the largest usage; copies with
/// equal content share one event id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApiCall {
    /// The API message id (`msg_...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The API request id (`req_...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The model that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Token counts of this copy.
    pub usage: ApiUsage,
    /// Why the response stopped (`end_turn`, `tool_use`, `max_tokens`, ...), when this
    /// copy says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// Whether this copy's output count is final: a stop reason was written with it.
    /// When false, `usage.output_tokens` is a lower bound.
    #[serde(default)]
    pub output_final: bool,
    /// The Claude session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The subagent that made the call (`agentId`), when it was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Whether the call was made on a side chain (a subagent or compaction).
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_sidechain: bool,
}

impl ApiCall {
    /// A call with only its usage.
    pub fn new(usage: ApiUsage) -> Self {
        Self {
            message_id: None,
            request_id: None,
            model: None,
            usage,
            stop_reason: None,
            output_final: false,
            session_id: None,
            agent_id: None,
            is_sidechain: false,
        }
    }

    /// The key a call is counted once by: (`message_id`, `request_id`, or `""` without
    /// one). `None` for a copy without a message id, which cannot be matched with
    /// other copies and counts alone.
    pub fn key(&self) -> Option<(&str, &str)> {
        let message = self.message_id.as_deref()?;
        Some((message, self.request_id.as_deref().unwrap_or("")))
    }

    /// Whether this copy's output count is final (it carried a stop reason).
    pub fn is_final(&self) -> bool {
        self.output_final || self.stop_reason.is_some()
    }
}

/// Token counts of one API call, with cache writes split by cache lifetime.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApiUsage {
    /// Uncached input tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache with a 5-minute lifetime.
    #[serde(default)]
    pub cache_creation_5m_input_tokens: u64,
    /// Input tokens written to the prompt cache with a 1-hour lifetime.
    #[serde(default)]
    pub cache_creation_1h_input_tokens: u64,
    /// Input tokens read from the prompt cache.
    #[serde(default)]
    pub cache_read_input_tokens: u64,
    /// Any further counters (`service_tier`, `server_tool_use`, ...), kept verbatim.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl ApiUsage {
    /// Usage with the four counters of the API and cache writes of both lifetimes.
    pub fn new(
        input_tokens: u64,
        output_tokens: u64,
        cache_creation_5m_input_tokens: u64,
        cache_creation_1h_input_tokens: u64,
        cache_read_input_tokens: u64,
    ) -> Self {
        Self {
            input_tokens,
            output_tokens,
            cache_creation_5m_input_tokens,
            cache_creation_1h_input_tokens,
            cache_read_input_tokens,
            other: Map::new(),
        }
    }

    /// All cache writes, both lifetimes.
    pub fn cache_creation_input_tokens(&self) -> u64 {
        self.cache_creation_5m_input_tokens
            .saturating_add(self.cache_creation_1h_input_tokens)
    }

    /// Whether a copy of a call with this usage replaces the copy kept so far, `kept`:
    /// copies are streaming snapshots whose output grows, so the largest wins (the most
    /// output tokens, then the most tokens in all).
    pub fn supersedes(&self, kept: &ApiUsage) -> bool {
        self.copy_size() > kept.copy_size()
    }

    fn copy_size(&self) -> (u64, u64) {
        let all = self
            .input_tokens
            .saturating_add(self.output_tokens)
            .saturating_add(self.cache_creation_input_tokens())
            .saturating_add(self.cache_read_input_tokens);
        (self.output_tokens, all)
    }
}

/// `claude.api_error`: an API request failed (transcripts: a `system/api_error` retry
/// line, or an assistant line Claude Code wrote in place of a response). Extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApiError {
    /// What went wrong, as reported.
    pub message: String,
    /// HTTP status, when there was a response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Which retry this was (1 for the first retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_attempt: Option<u32>,
    /// How many retries Claude Code allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// How long Claude Code waits before the next retry, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u64>,
    /// The underlying cause (e.g. a network error code such as `FailedToOpenSocket`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The API request id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The Claude session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The subagent whose request failed, when it was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

impl ApiError {
    /// An API error with only its message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            status: None,
            retry_attempt: None,
            max_retries: None,
            retry_in_ms: None,
            cause: None,
            request_id: None,
            session_id: None,
            agent_id: None,
        }
    }
}

/// `claude.turn_duration`: how long one turn (a user prompt to Claude's final answer)
/// took, as Claude Code measured it. Extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TurnDuration {
    /// Wall-clock duration in milliseconds.
    pub duration_ms: u64,
    /// The Claude session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The subagent, when the turn was one's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

impl TurnDuration {
    /// A turn of `duration_ms`.
    pub fn new(duration_ms: u64) -> Self {
        Self {
            duration_ms,
            session_id: None,
            agent_id: None,
        }
    }
}

/// `claude.interrupt`: the user interrupted Claude ("[Request interrupted by user]").
/// Extension.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Interrupt {
    /// Whether Claude was waiting for a tool when interrupted ("... for tool use").
    #[serde(default, skip_serializing_if = "is_false")]
    pub during_tool_use: bool,
    /// The Claude session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The subagent that was interrupted, when it was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}
