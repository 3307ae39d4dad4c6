//! `vibes stats`: per-session statistics over everything stored.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context, Result};
use jiff::Timestamp;
use serde::Serialize;
use vibes_events::{Event, EventData, EventId};
use vibes_log::{ConsumerOptions, StartFrom};

use super::{EndsNow, private_group};
use crate::cli::StatsArgs;
use crate::output::{self, DataOut, Outcome};
use crate::storage::Storage;

/// What one session did, built from its events.
#[derive(Debug, Default, Serialize)]
pub struct SessionStats {
    pub session_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub model: Option<String>,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub turns: u64,
    pub tool_calls: BTreeMap<String, u64>,
    pub tool_calls_total: u64,
    pub tool_errors: u64,
    pub cost_usd: f64,
    pub duration_ms: u64,
    /// `success`, `error`, or `running` (no session.end yet).
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome_reason: Option<String>,
    pub events: u64,
}

/// Sums over every session shown.
#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub sessions: u64,
    pub turns: u64,
    pub tool_calls: u64,
    pub tool_errors: u64,
    pub cost_usd: f64,
    pub duration_ms: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub running: u64,
}

/// Folds events into per-session statistics. An event seen twice (same id) counts once.
#[derive(Debug, Default)]
pub struct Aggregator {
    sessions: BTreeMap<String, SessionStats>,
    seen: HashSet<EventId>,
    pub duplicates: u64,
}

impl Aggregator {
    pub fn add(&mut self, event: &Event) {
        let session_id = match &event.data {
            EventData::SessionStart(_)
            | EventData::SessionEnd(_)
            | EventData::SessionCompact(_)
            | EventData::Text(_)
            | EventData::Thinking(_)
            | EventData::ToolUse(_)
            | EventData::ToolResult(_)
            | EventData::RateLimit(_) => event.partition_key(),
            _ => None,
        };
        let Some(session_id) = session_id else {
            return;
        };
        if !self.seen.insert(event.id) {
            self.duplicates += 1;
            return;
        }
        let stats = self
            .sessions
            .entry(session_id.to_owned())
            .or_insert_with(|| SessionStats {
                session_id: session_id.to_owned(),
                outcome: "running",
                ..SessionStats::default()
            });
        stats.events += 1;
        if stats.start.is_none_or(|s| event.timestamp < s) {
            stats.start = Some(event.timestamp);
        }
        if stats.name.is_none()
            && let Some(name) = event.extra.get("session_name").and_then(|v| v.as_str())
        {
            stats.name = Some(name.to_owned());
        }
        match &event.data {
            EventData::SessionStart(d) => stats.model = Some(d.model.clone()),
            EventData::ToolUse(d) => {
                *stats.tool_calls.entry(d.tool_name.clone()).or_default() += 1;
                stats.tool_calls_total += 1;
            }
            EventData::ToolResult(d) if d.is_error => stats.tool_errors += 1,
            EventData::SessionEnd(d) => {
                stats.end = Some(
                    stats
                        .end
                        .map_or(event.timestamp, |e| e.max(event.timestamp)),
                );
                stats.turns += u64::from(d.num_turns);
                stats.cost_usd += d.total_cost_usd;
                stats.duration_ms += d.duration_ms;
                if d.is_error {
                    stats.outcome = "error";
                    let reason = d
                        .errors
                        .as_ref()
                        .and_then(|e| e.first().cloned())
                        .or_else(|| d.result.clone())
                        .or_else(|| d.subtype.clone())
                        .unwrap_or_else(|| "error".to_owned());
                    stats.outcome_reason = Some(reason);
                } else {
                    stats.outcome = "success";
                    stats.outcome_reason = None;
                }
                if stats.model.is_none()
                    && let Some(usage) = &d.model_usage
                {
                    stats.model = usage.keys().next().cloned();
                }
            }
            _ => {}
        }
    }

    pub fn finish(self, only: Option<&str>) -> (Vec<SessionStats>, Totals) {
        let mut sessions: Vec<SessionStats> = self
            .sessions
            .into_values()
            .filter(|s| only.is_none_or(|id| s.session_id == id))
            .collect();
        sessions.sort_by(|a, b| a.start.cmp(&b.start).then(a.session_id.cmp(&b.session_id)));
        let mut totals = Totals::default();
        for s in &sessions {
            totals.sessions += 1;
            totals.turns += s.turns;
            totals.tool_calls += s.tool_calls_total;
            totals.tool_errors += s.tool_errors;
            totals.cost_usd += s.cost_usd;
            totals.duration_ms += s.duration_ms;
            match s.outcome {
                "success" => totals.succeeded += 1,
                "error" => totals.failed += 1,
                _ => totals.running += 1,
            }
        }
        (sessions, totals)
    }
}

pub fn run(storage: &Storage, args: &StatsArgs) -> Result<Outcome> {
    let mut aggregator = Aggregator::default();
    let mut undecodable = 0u64;
    if let Some(log) = storage.existing_events()? {
        let group = private_group("stats");
        let mut consumer = storage
            .block_on(log.consumer_with(&group, ConsumerOptions::start(StartFrom::Beginning)))
            .context("reading events")?;
        let ends = EndsNow::read(storage, &log, &consumer)?;
        while !ends.reached(&consumer) {
            let batch = storage
                .block_on(consumer.poll(4096, Duration::from_millis(200)))
                .context("reading events")?;
            for failure in &batch.failures {
                undecodable += 1;
                eprintln!("warning: skipped a record that does not decode: {failure}");
            }
            for delivered in &batch.events {
                if ends.includes(delivered.address) {
                    aggregator.add(&delivered.event);
                }
            }
        }
    }
    if aggregator.duplicates > 0 {
        tracing::info!(
            duplicates = aggregator.duplicates,
            "events stored more than once were counted once"
        );
    }
    let (sessions, totals) = aggregator.finish(args.session.as_deref());
    if let Some(id) = &args.session
        && sessions.is_empty()
    {
        anyhow::bail!("no session {id} in {}", storage.describe());
    }
    let mut out = DataOut::new(false);
    let text = if args.json {
        #[derive(Serialize)]
        struct Report<'a> {
            sessions: &'a [SessionStats],
            totals: &'a Totals,
        }
        serde_json::to_string_pretty(&Report {
            sessions: &sessions,
            totals: &totals,
        })
        .context("encoding stats")?
    } else {
        render(&sessions, &totals)
    };
    let _ = out.line(text.trim_end())?;
    let _ = out.flush()?;
    Ok(Outcome::partial_if(undecodable > 0))
}

/// The human-readable report.
pub fn render(sessions: &[SessionStats], totals: &Totals) -> String {
    let mut s = String::new();
    for stats in sessions {
        let name = stats
            .name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        let _ = writeln!(s, "session {}{name}", stats.session_id);
        let _ = writeln!(
            s,
            "  model     {}",
            stats.model.as_deref().unwrap_or("unknown")
        );
        let _ = writeln!(s, "  start     {}", time(stats.start));
        let _ = writeln!(s, "  end       {}", time(stats.end));
        let _ = writeln!(s, "  turns     {}", stats.turns);
        let by_tool = {
            let mut tools: Vec<(&String, &u64)> = stats.tool_calls.iter().collect();
            tools.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            tools
                .iter()
                .map(|(t, n)| format!("{t} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let sep = if by_tool.is_empty() { "" } else { ": " };
        let _ = writeln!(
            s,
            "  tools     {} calls{sep}{by_tool}",
            stats.tool_calls_total
        );
        let _ = writeln!(s, "  errors    {} tool errors", stats.tool_errors);
        let _ = writeln!(s, "  cost      ${:.4}", stats.cost_usd);
        let _ = writeln!(s, "  duration  {}", output::human_ms(stats.duration_ms));
        match &stats.outcome_reason {
            Some(reason) => {
                let _ = writeln!(
                    s,
                    "  outcome   {}: {}",
                    stats.outcome,
                    vibes_events::display::truncate(reason, 120)
                );
            }
            None => {
                let _ = writeln!(s, "  outcome   {}", stats.outcome);
            }
        }
        s.push('\n');
    }
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let _ = writeln!(
        s,
        "total: {} ({} succeeded, {} failed, {} running), {}, {}, {}, ${:.4}, {}",
        plural(totals.sessions, "session", "sessions"),
        totals.succeeded,
        totals.failed,
        totals.running,
        plural(totals.turns, "turn", "turns"),
        plural(totals.tool_calls, "tool call", "tool calls"),
        plural(totals.tool_errors, "tool error", "tool errors"),
        totals.cost_usd,
        output::human_ms(totals.duration_ms),
    );
    s
}

fn time(t: Option<Timestamp>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| t.strftime("%Y-%m-%d %H:%M:%S%.3fZ").to_string(),
    )
}
