//! The MCP server: the tools of [`tools`] with their schemas, sessions as resources,
//! and the instructions a client hands its model. A tool runs on a blocking thread
//! with the [`Engine`] locked (one at a time); what it returns is structured content,
//! and any failure, a bad argument included, is a tool error with the reason.

use std::sync::{Arc, Mutex};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorCode,
    Implementation, ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde_json::Value;

use super::engine::Engine;
use super::tools::{self, ToolError};

/// What the server tells a client's model it is for.
pub const INSTRUCTIONS: &str = "\
vibes records what AI coding agents (Claude Code sessions, tool calls and their results, \
API usage, bead issues) do, in a local event log. Use these tools to look back at that \
history: what failed before and what fixed it, how much the agents spent, what a session did.
- recent_failures: the latest failed tool calls (tool, command head, error line, session, \
time); filter by tool or command head (`make test`) before running a command that failed before.
- capability_gaps / gap_details: failures that keep coming back across sessions, with \
solutions seen to work (settings.json rules, CLAUDE.md notes, observed fixes).
- list_sessions / session_summary: sessions newest first; one session's model, turns, tools, \
errors, cost and outcome with its failed tool calls. Also the resource vibes://sessions/{id}.
- search_events: raw events by type glob (claude.tool_*), source, session, time range and text.
- usage: API calls, tokens and cost by day, model or project.
Results are bounded: long strings end in `[cut: N more characters]`, and a page with more \
after it has `next_offset`: call again with offset set to it.";

/// The URI prefix of a session resource.
const SESSION_URI: &str = "vibes://sessions/";

/// Sessions listed as resources.
const LISTED_SESSIONS: u64 = 50;

/// The MCP server over one [`Engine`].
#[derive(Debug, Clone)]
pub struct VibesServer {
    engine: Arc<Mutex<Engine>>,
    tool_router: ToolRouter<Self>,
}

/// A tool's answer as a call result: structured content, or a tool error.
fn result(answer: Result<Value, ToolError>) -> CallToolResult {
    match answer {
        Ok(value) => CallToolResult::structured(value),
        Err(error) => CallToolResult::error(vec![ContentBlock::text(error.to_string())]),
    }
}

#[tool_router]
impl VibesServer {
    /// A server answering from `engine`.
    pub fn new(engine: Engine) -> Self {
        VibesServer {
            engine: Arc::new(Mutex::new(engine)),
            tool_router: Self::tool_router(),
        }
    }

    /// The engine, once the server is done with it.
    pub fn engine(&self) -> Arc<Mutex<Engine>> {
        Arc::clone(&self.engine)
    }

    /// Runs `work` on a blocking thread with the engine locked.
    async fn run<F>(&self, work: F) -> Result<Value, ToolError>
    where
        F: FnOnce(&mut Engine) -> Result<Value, ToolError> + Send + 'static,
    {
        let engine = Arc::clone(&self.engine);
        tokio::task::spawn_blocking(move || {
            let mut engine = engine
                .lock()
                .map_err(|_| ToolError::Failed(anyhow::anyhow!("an earlier call panicked")))?;
            work(&mut engine)
        })
        .await
        .unwrap_or_else(|e| Err(ToolError::Failed(anyhow::anyhow!("the call failed: {e}"))))
    }

    #[tool(
        description = "Search stored events (oldest first) by type glob, source, session, time range and text; paged by offset.",
        annotations(read_only_hint = true)
    )]
    async fn search_events(
        &self,
        Parameters(args): Parameters<tools::SearchEvents>,
    ) -> CallToolResult {
        result(self.run(move |e| tools::search_events(e, args)).await)
    }

    #[tool(
        description = "Sessions, the most recently started first: model, start, end, turns, tool calls and errors, cost, outcome; with totals.",
        annotations(read_only_hint = true)
    )]
    async fn list_sessions(
        &self,
        Parameters(args): Parameters<tools::ListSessions>,
    ) -> CallToolResult {
        result(self.run(move |e| tools::list_sessions(e, args)).await)
    }

    #[tool(
        description = "One session as `vibes stats` shows it (model, turns, tools by name, errors, cost, duration, outcome) with its failed tool calls.",
        annotations(read_only_hint = true)
    )]
    async fn session_summary(
        &self,
        Parameters(args): Parameters<tools::SessionSummary>,
    ) -> CallToolResult {
        result(self.run(move |e| tools::session_summary(e, args)).await)
    }

    #[tool(
        description = "The latest failed tool calls, newest first: tool, command head, call, error kind and line, session, time. Filter by tool or command head (`make test`) to see how a command failed before.",
        annotations(read_only_hint = true)
    )]
    async fn recent_failures(
        &self,
        Parameters(args): Parameters<tools::RecentFailures>,
    ) -> CallToolResult {
        result(self.run(move |e| tools::recent_failures(e, args)).await)
    }

    #[tool(
        description = "Capability gaps: failures of one tool, command head and kind that came back in 3 or more sessions, worst first (the groove plugin).",
        annotations(read_only_hint = true)
    )]
    async fn capability_gaps(
        &self,
        Parameters(args): Parameters<tools::CapabilityGaps>,
    ) -> CallToolResult {
        result(self.run(move |e| tools::capability_gaps(e, args)).await)
    }

    #[tool(
        description = "One capability gap: its failure cluster, examples and ranked solutions (settings.json rules, CLAUDE.md notes, fixes seen to work).",
        annotations(read_only_hint = true)
    )]
    async fn gap_details(&self, Parameters(args): Parameters<tools::GapDetails>) -> CallToolResult {
        result(self.run(move |e| tools::gap_details(e, args)).await)
    }

    #[tool(
        description = "Claude API calls (each counted once), tokens and cost by day, model or project.",
        annotations(read_only_hint = true)
    )]
    async fn usage(&self, Parameters(args): Parameters<tools::UsageArgs>) -> CallToolResult {
        result(self.run(move |e| tools::usage(e, args)).await)
    }
}

#[tool_handler]
impl ServerHandler for VibesServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(
            Implementation::new("vibes", env!("CARGO_PKG_VERSION"))
                .with_title("vibes: the event history of AI coding agents"),
        )
        .with_instructions(INSTRUCTIONS)
    }

    /// As the router calls tools, except that arguments that do not fit a tool's
    /// schema are a tool error saying what was wrong (the model can correct them),
    /// not a protocol error; an unknown tool stays a protocol error.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.clone();
        let known = self.tool_router.get(&name).is_some();
        let call = ToolCallContext::new(self, request, context);
        match self.tool_router.call(call).await {
            Err(error) if known && error.code == ErrorCode::INVALID_PARAMS => {
                Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                    "bad argument for {name}: {}",
                    error.message
                ))])
                .into())
            }
            other => other,
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let args = tools::ListSessions {
            limit: Some(LISTED_SESSIONS),
            ..Default::default()
        };
        let listed = self
            .run(move |e| tools::list_sessions(e, args))
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let resources = listed["sessions"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter_map(|s| {
                let id = s["session_id"].as_str()?;
                let name = s["name"].as_str().unwrap_or(id);
                Some(
                    Resource::new(format!("{SESSION_URI}{id}"), name.to_owned())
                        .with_description(format!(
                            "session {id}: {} turns, {} tool calls ({} errors), outcome {}",
                            s["turns"], s["tool_calls"], s["tool_errors"], s["outcome"]
                        ))
                        .with_mime_type("application/json"),
                )
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(format!("{SESSION_URI}{{session_id}}"), "session")
                .with_description(
                    "one session's summary with its failed tool calls (as session_summary)",
                )
                .with_mime_type("application/json"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri;
        let Some(id) = uri.strip_prefix(SESSION_URI).filter(|id| !id.is_empty()) else {
            return Err(ErrorData::resource_not_found(
                format!("no resource {uri}: session resources are {SESSION_URI}<session id>"),
                None,
            ));
        };
        let args = tools::SessionSummary {
            session_id: id.to_owned(),
            failures_limit: None,
        };
        let summary = self
            .run(move |e| tools::session_summary(e, args))
            .await
            .map_err(|e| match e {
                ToolError::NotFound(what) => ErrorData::resource_not_found(what, None),
                other => ErrorData::internal_error(other.to_string(), None),
            })?;
        let text = serde_json::to_string_pretty(&summary)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let contents = ResourceContents::TextResourceContents {
            uri,
            mime_type: Some("application/json".to_owned()),
            text,
            meta: None,
        };
        Ok(ReadResourceResult::new(vec![contents]).into())
    }
}
