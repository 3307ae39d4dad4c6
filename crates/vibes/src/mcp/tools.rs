//! What each MCP tool answers, as plain functions over the [`Engine`]: their inputs
//! (with the JSON schemas clients see) and their bounded JSON outputs. The transport
//! and the protocol are in `server`.

use std::fmt;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use vibes_events::{Filter, TypePattern};
use vibes_plugin::{Plugin, QueryArgs, QueryError};
use vibes_plugin_sessions::SessionStats;

use super::engine::Engine;
use super::page::{bound, page};
use crate::commands::{session, usage as usage_command};
use crate::failures::{self, FailedCall, InOrder};
use crate::search::{self, Contains, Selection};
use crate::usage::render::{self, Context as RenderContext};
use crate::usage::report::{self, Filter as UsageFilter, Period};

/// Why a tool gave no answer; the client sees the text as a tool error.
#[derive(Debug)]
pub enum ToolError {
    /// An argument is wrong: which and why.
    BadArgument(String),
    /// What was asked for does not exist.
    NotFound(String),
    /// Reading the log or a plugin's state failed.
    Failed(anyhow::Error),
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolError::BadArgument(why) => write!(f, "bad argument: {why}"),
            ToolError::NotFound(what) => write!(f, "not found: {what}"),
            ToolError::Failed(error) => write!(f, "failed: {error:#}"),
        }
    }
}

impl From<anyhow::Error> for ToolError {
    fn from(error: anyhow::Error) -> Self {
        ToolError::Failed(error)
    }
}

impl From<QueryError> for ToolError {
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::BadArgument(why) => ToolError::BadArgument(why),
            QueryError::NotFound(what) => ToolError::NotFound(what),
            other => ToolError::Failed(anyhow::anyhow!("{other}")),
        }
    }
}

type Answer = Result<Value, ToolError>;

/// `limit` checked against `1..=max`, `default` when not given.
fn limit(given: Option<u64>, default: u64, max: u64) -> Result<usize, ToolError> {
    match given.unwrap_or(default) {
        n @ 1.. if n <= max => Ok(n as usize),
        n => Err(ToolError::BadArgument(format!(
            "limit {n} is out of range: give 1 to {max}"
        ))),
    }
}

/// An RFC 3339 time argument.
fn time(name: &str, text: Option<&str>) -> Result<Option<Timestamp>, ToolError> {
    text.map(|t| {
        t.parse::<Timestamp>().map_err(|_| {
            ToolError::BadArgument(format!(
                "{name} {t:?} is not an RFC 3339 time (such as 2026-11-22T09:30:00Z)"
            ))
        })
    })
    .transpose()
}

fn object(pairs: Value) -> Map<String, Value> {
    match pairs {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Input of `search_events`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchEvents {
    /// Only these event types; globs allowed (`claude.tool_*`, `session.end`).
    #[serde(default)]
    pub types: Vec<String>,
    /// Only events from these sources (`claude`, `bd`, `vibes`, a plugin's name).
    #[serde(default)]
    pub sources: Vec<String>,
    /// Only this session's (or bead's) events.
    pub session_id: Option<String>,
    /// Only events at or after this RFC 3339 time (the event's own timestamp).
    pub since: Option<String>,
    /// Only events before this RFC 3339 time.
    pub until: Option<String>,
    /// Only events whose JSON contains this text (any case).
    pub contains: Option<String>,
    /// Events to return, 1 to 100 (default 20).
    pub limit: Option<u64>,
    /// Matching events to skip: the `next_offset` of the previous page.
    pub offset: Option<u64>,
}

/// Events in stored order, oldest first; each is the canonical event JSON.
pub fn search_events(engine: &mut Engine, args: SearchEvents) -> Answer {
    let limit = limit(args.limit, 20, 100)?;
    let offset = args.offset.unwrap_or(0);
    let selection = Selection {
        filter: Filter::all()
            .types(args.types.into_iter().map(TypePattern::new))
            .sources(args.sources),
        session: args.session_id,
        since: time("since", args.since.as_deref())?,
        until: time("until", args.until.as_deref())?,
        contains: args.contains.as_deref().and_then(Contains::new),
    };
    let Some(log) = engine.events()? else {
        return Ok(page(
            "events",
            Vec::new(),
            offset,
            false,
            object(json!({"note": "no events stored yet"})),
        ));
    };
    let found = search::search(
        &engine.storage,
        &log,
        &selection,
        offset,
        limit,
        &engine.global,
    )?;
    let events = found
        .events
        .iter()
        .map(|e| serde_json::to_value(e).map_err(|e| ToolError::Failed(e.into())))
        .collect::<Result<Vec<_>, _>>()?;
    let mut extra = object(json!({"scanned": found.scanned}));
    if found.undecodable > 0 {
        extra.insert("undecodable_skipped".to_owned(), json!(found.undecodable));
    }
    Ok(page("events", events, offset, found.more, extra))
}

/// Input of `list_sessions`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListSessions {
    /// Only sessions with this outcome (`success`, `error`, `running`, ...).
    pub outcome: Option<String>,
    /// Sessions to return, 1 to 100 (default 20).
    pub limit: Option<u64>,
    /// Sessions to skip: the `next_offset` of the previous page.
    pub offset: Option<u64>,
}

/// One session's line in a list.
fn session_line(s: &SessionStats) -> Value {
    json!({
        "session_id": s.session_id,
        "name": s.name,
        "model": s.model,
        "start": s.start,
        "end": s.end,
        "turns": s.turns,
        "tool_calls": s.tool_calls_total,
        "tool_errors": s.tool_errors,
        "cost_usd": s.cost_usd,
        "outcome": s.outcome,
    })
}

/// Sessions, the most recently started first, with totals over all of them.
pub fn list_sessions(engine: &mut Engine, args: ListSessions) -> Answer {
    let limit = limit(args.limit, 20, 100)?;
    let offset = args.offset.unwrap_or(0);
    let (sessions, totals) = engine
        .sessions()?
        .report(None)
        .map_err(|e| anyhow::anyhow!("the sessions plugin's state: {e}"))?;
    let chosen: Vec<&SessionStats> = sessions
        .iter()
        .rev()
        .map(|s| &**s)
        .filter(|s| args.outcome.as_deref().is_none_or(|o| s.outcome == o))
        .collect();
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(chosen.len());
    let end = start.saturating_add(limit).min(chosen.len());
    let items = chosen[start..end].iter().map(|s| session_line(s)).collect();
    let extra = object(json!({"matching": chosen.len(), "totals": totals}));
    Ok(page("sessions", items, offset, end < chosen.len(), extra))
}

/// Input of `session_summary`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionSummary {
    /// The session id (see `list_sessions`).
    pub session_id: String,
    /// Failed tool calls to list, 1 to 100 (default 20); all are counted.
    pub failures_limit: Option<u64>,
}

/// One session as `vibes stats --session` shows it, with its failed tool calls.
pub fn session_summary(engine: &mut Engine, args: SessionSummary) -> Answer {
    let failures_limit = limit(args.failures_limit, 20, 100)?;
    let id = args.session_id;
    let stats = engine
        .sessions()?
        .query("session", &QueryArgs::new().with("id", &id))
        .map_err(|e| match e {
            QueryError::NotFound(_) => {
                ToolError::NotFound(format!("no session {id} (list_sessions gives the ids)"))
            }
            other => other.into(),
        })?;
    let failures = session_failures(engine, &id)?;
    let total = failures.len();
    let listed: Vec<&FailedCall> = failures.iter().take(failures_limit).collect();
    Ok(bound(json!({
        "session": stats,
        "failed_tool_calls": listed,
        "failed_tool_calls_total": total,
        "failed_tool_calls_listed": listed.len(),
    })))
}

/// Every failed tool call of session `id`, in order, from its indexed records.
fn session_failures(engine: &mut Engine, id: &str) -> Result<Vec<FailedCall>, ToolError> {
    let Some(log) = engine.events()? else {
        return Ok(Vec::new());
    };
    let mut pairing = InOrder::default();
    session::print_indexed(
        &engine.storage,
        &log,
        id,
        &engine.global,
        &mut |event| {
            pairing.add(event);
            Ok(true)
        },
        None,
    )?;
    Ok(pairing.finish())
}

/// Input of `recent_failures`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecentFailures {
    /// Only calls of this tool (`Bash`, `Edit`, ...; any case).
    pub tool: Option<String>,
    /// Only shell calls with this command head or one starting with it (`make`,
    /// `make test`, `cargo build`).
    pub head: Option<String>,
    /// Only this session's failures.
    pub session_id: Option<String>,
    /// Failures to return, 1 to 100 (default 20).
    pub limit: Option<u64>,
    /// Failures to skip: the `next_offset` of the previous page.
    pub offset: Option<u64>,
}

/// Failed tool calls, newest first.
pub fn recent_failures(engine: &mut Engine, args: RecentFailures) -> Answer {
    let limit = limit(args.limit, 20, 100)?;
    let offset = args.offset.unwrap_or(0);
    let Some(log) = engine.events()? else {
        return Ok(page(
            "failures",
            Vec::new(),
            offset,
            false,
            object(json!({"note": "no events stored yet"})),
        ));
    };
    let keep = |f: &FailedCall| {
        args.tool.as_deref().is_none_or(|t| {
            f.tool
                .as_deref()
                .is_some_and(|ft| ft.eq_ignore_ascii_case(t))
        }) && args.head.as_deref().is_none_or(|h| {
            let h = h.trim();
            f.head == h || f.head.starts_with(&format!("{h} "))
        }) && args
            .session_id
            .as_deref()
            .is_none_or(|s| f.session_id.as_deref() == Some(s))
    };
    let want = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .saturating_add(limit);
    let found = failures::recent(&engine.storage, &log, want, &keep)?;
    let items: Vec<Value> = found
        .failures
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .map(|f| json!(f))
        .collect();
    let mut extra = object(json!({"scanned": found.scanned}));
    if found.undecodable > 0 {
        extra.insert("undecodable_skipped".to_owned(), json!(found.undecodable));
    }
    Ok(page("failures", items, offset, found.more, extra))
}

/// Input of `capability_gaps`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CapabilityGaps {
    /// Resolved and dismissed gaps too (default: open gaps only).
    #[serde(default)]
    pub all: bool,
    /// Gaps to return, 1 to 100 (default 20).
    pub limit: Option<u64>,
    /// Gaps to skip: the `next_offset` of the previous page.
    pub offset: Option<u64>,
}

/// Capability gaps (failures of one tool, command head and kind in 3+ sessions),
/// worst first: the groove plugin's `gaps` query, as `vibes groove gaps --json`.
pub fn capability_gaps(engine: &mut Engine, args: CapabilityGaps) -> Answer {
    let limit = limit(args.limit, 20, 100)?;
    let offset = args.offset.unwrap_or(0);
    let mut q = QueryArgs::new();
    if args.all {
        q = q.with("all", "all");
    }
    let answer = engine.groove()?.query("gaps", &q)?;
    let gaps = match answer.get("gaps") {
        Some(Value::Array(gaps)) => gaps.clone(),
        _ => Vec::new(),
    };
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(gaps.len());
    let end = start.saturating_add(limit).min(gaps.len());
    let extra = object(json!({"matching": gaps.len()}));
    Ok(page(
        "gaps",
        gaps[start..end].to_vec(),
        offset,
        end < gaps.len(),
        extra,
    ))
}

/// Input of `coder_status`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CoderStatus {
    /// Ended coders too (default: the ones still running or waiting).
    #[serde(default)]
    pub all: bool,
    /// Coders to return, 1 to 100 (default 20).
    pub limit: Option<u64>,
    /// Coders to skip: the `next_offset` of the previous page.
    pub offset: Option<u64>,
}

/// Each coder (a Claude session or one of its subagents) with its status, model,
/// elapsed time, turns, tool calls, errors, cost and burn rate: the ai-coder plugin's
/// `coders` query, as `vibes coders --json`.
pub fn coder_status(engine: &mut Engine, args: CoderStatus) -> Answer {
    let limit = limit(args.limit, 20, 100)?;
    let offset = args.offset.unwrap_or(0);
    let mut q = QueryArgs::new();
    if args.all {
        q = q.with("all", "true");
    }
    let answer = engine.ai_coder()?.query("coders", &q)?;
    let coders = crate::commands::coders::coders(&answer).to_vec();
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(coders.len());
    let end = start.saturating_add(limit).min(coders.len());
    let extra = object(json!({
        "matching": coders.len(),
        "summary": crate::commands::coders::summary(&coders),
    }));
    Ok(page(
        "coders",
        coders[start..end].to_vec(),
        offset,
        end < coders.len(),
        extra,
    ))
}

/// Input of `gap_details`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GapDetails {
    /// The gap id (`g-...`, see `capability_gaps`).
    pub gap_id: String,
}

/// One gap with its cluster, examples and ranked solutions, as `vibes groove gap`.
pub fn gap_details(engine: &mut Engine, args: GapDetails) -> Answer {
    let answer = engine
        .groove()?
        .query("gap", &QueryArgs::new().with("id", &args.gap_id))
        .map_err(|e| match e {
            QueryError::NotFound(_) => ToolError::NotFound(format!(
                "no gap {} (capability_gaps with all=true lists every gap)",
                args.gap_id
            )),
            other => other.into(),
        })?;
    Ok(bound(answer))
}

/// How `usage` groups calls.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UsageBy {
    /// Per day.
    Day,
    /// Per model.
    Model,
    /// Per project.
    Project,
}

/// Input of `usage`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageArgs {
    /// Group by `day`, `model` or `project`.
    pub by: UsageBy,
    /// First day counted, YYYY-MM-DD.
    pub since: Option<String>,
    /// Last day counted, YYYY-MM-DD.
    pub until: Option<String>,
    /// Only this project: its path, its last path component, or its folder under
    /// ~/.claude/projects.
    pub project: Option<String>,
    /// Time zone of days: an IANA name (Europe/Berlin), UTC or an offset (+05:30);
    /// default this machine's.
    pub timezone: Option<String>,
    /// Rows to return, 1 to 100 (default 31).
    pub limit: Option<u64>,
    /// Rows to skip: the `next_offset` of the previous page.
    pub offset: Option<u64>,
}

/// Claude API calls (each counted once), tokens and cost by day, model or project,
/// from the usage plugin, priced as `vibes usage` prices them.
pub fn usage(engine: &mut Engine, args: UsageArgs) -> Answer {
    let limit = limit(args.limit, 31, 100)?;
    let offset = args.offset.unwrap_or(0);
    let day = |name: &str, text: Option<&str>| {
        text.map(|t| {
            report::parse_day(t).map_err(|e| ToolError::BadArgument(format!("{name}: {e:#}")))
        })
        .transpose()
    };
    let filter = UsageFilter {
        since: day("since", args.since.as_deref())?,
        until: day("until", args.until.as_deref())?,
        project: args.project,
    };
    let (tz, tz_name) = usage_command::time_zone(args.timezone.as_deref())
        .map_err(|e| ToolError::BadArgument(format!("{e:#}").replace("--timezone", "timezone")))?;
    let prices = usage_command::price_table(&engine.storage, None)?;
    let plugin = engine.usage()?;
    let calls = report::priced_calls(plugin, &prices, &filter, &tz);
    let (name, key, rows) = match args.by {
        UsageBy::Day => (
            "daily",
            "period",
            report::by_period(calls, Period::Daily, &tz),
        ),
        UsageBy::Model => ("model", "model", report::by_model(calls)),
        UsageBy::Project => ("project", "project", report::by_project(calls)),
    };
    let total = report::total(&rows);
    let ctx = RenderContext {
        tz: &tz,
        tz_name: &tz_name,
        prices: &prices.version,
        breakdown: false,
    };
    let mut full = object(render::keyed_json(name, key, &rows, &total, &ctx));
    let all = match full.remove("rows") {
        Some(Value::Array(rows)) => rows,
        _ => Vec::new(),
    };
    let start = usize::try_from(offset).unwrap_or(usize::MAX).min(all.len());
    let end = start.saturating_add(limit).min(all.len());
    full.insert("matching".to_owned(), json!(all.len()));
    Ok(page(
        "rows",
        all[start..end].to_vec(),
        offset,
        end < all.len(),
        full,
    ))
}
