//! `vibes stats`: per-session statistics over everything stored, from the sessions
//! plugin's state (its newest snapshot, then the records after it).

use std::fmt::Write as _;

use anyhow::{Context, Result};
use jiff::Timestamp;
use serde::Serialize;
use vibes_plugin_sessions::{SessionStats, Sessions, Totals};

use crate::cli::{GlobalArgs, StatsArgs};
use crate::output::{self, DataOut, Outcome};
use crate::storage::Storage;

pub fn run(storage: &Storage, args: &StatsArgs, global: &GlobalArgs) -> Result<Outcome> {
    let mut plugin = Sessions::new();
    let loaded = super::plugin_query::load(storage, &mut plugin, global)?;
    if plugin.duplicates() > 0 {
        tracing::info!(
            duplicates = plugin.duplicates(),
            "events stored more than once were counted once"
        );
    }
    let (sessions, totals) = plugin
        .report(args.session.as_deref())
        .map_err(|e| anyhow::anyhow!("the sessions plugin's state: {e}"))?;
    let sessions: Vec<&SessionStats> = sessions.iter().map(|s| &**s).collect();
    if let Some(id) = &args.session
        && sessions.is_empty()
    {
        anyhow::bail!("no session {id} in {}", storage.describe());
    }
    let mut out = DataOut::new(false);
    let text = if args.json {
        #[derive(Serialize)]
        struct Report<'a> {
            sessions: &'a [&'a SessionStats],
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
    Ok(Outcome::partial_if(loaded.skipped > 0))
}

/// The human-readable report.
pub fn render(sessions: &[&SessionStats], totals: &Totals) -> String {
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
