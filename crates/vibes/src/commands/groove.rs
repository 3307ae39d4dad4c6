//! `vibes groove gaps|gap|novelty|suggest|apply|dismiss|resolve|reopen`: the groove
//! plugin's view of failures across sessions, and a person's decisions about gaps.
//!
//! Reports come from the plugin's state, brought up to date with the log by
//! [`plugin_query::load`]. A decision is a `groove.decision` event appended to the
//! event topic (its id derived from its content and time, so giving the same decision
//! twice stores it once); the plugin folds it in like any other event.

use anyhow::{Context, Result, bail};
use jiff::Timestamp;
use serde_json::Value;
use vibes_plugin::{Plugin, QueryArgs};
use vibes_plugin_groove::Groove;
use vibes_plugin_groove::decision::{self, Action};

use super::plugin_query;
use crate::cli::{GlobalArgs, GrooveCommand, GrooveDecisionArgs};
use crate::output::{DataOut, Outcome};
use crate::producer::Producer;
use crate::storage::Storage;

pub fn run(storage: &Storage, command: &GrooveCommand, global: &GlobalArgs) -> Result<Outcome> {
    let mut groove = Groove::new();
    let loaded = plugin_query::load(storage, &mut groove, global)?;
    let query = |name: &str, args: QueryArgs| {
        groove
            .query(name, &args)
            .with_context(|| format!("groove query {name}"))
    };
    let text = match command {
        GrooveCommand::Gaps(args) => {
            let mut q = QueryArgs::new();
            if args.all {
                q = q.with("all", "all");
            }
            let answer = query("gaps", q)?;
            if args.json {
                json(&answer)?
            } else {
                gaps_text(&answer, args.all)
            }
        }
        GrooveCommand::Gap(args) => {
            let answer = query("gap", QueryArgs::new().with("id", &args.id))?;
            if args.json {
                json(&answer)?
            } else {
                gap_text(&answer)
            }
        }
        GrooveCommand::Novelty(args) => {
            let mut q = QueryArgs::new();
            if let Some(since) = &args.since {
                q = q.with("since", since_time(since)?.to_string());
            }
            let answer = query("novelty", q)?;
            if args.json {
                json(&answer)?
            } else {
                novelty_text(&answer)
            }
        }
        GrooveCommand::Suggest(args) => {
            let answer = query("suggest", QueryArgs::new())?;
            if args.json {
                json(&answer)?
            } else {
                suggest_text(&answer)?
            }
        }
        GrooveCommand::Apply(args) => decide(storage, &groove, Action::Apply, args)?,
        GrooveCommand::Dismiss(args) => decide(storage, &groove, Action::Dismiss, args)?,
        GrooveCommand::Resolve(args) => decide(storage, &groove, Action::Resolve, args)?,
        GrooveCommand::Reopen(args) => decide(storage, &groove, Action::Reopen, args)?,
    };
    let mut out = DataOut::new(false);
    let _ = out.line(text.trim_end())?;
    let _ = out.flush()?;
    Ok(Outcome::partial_if(loaded.skipped > 0))
}

fn json(value: &Value) -> Result<String> {
    serde_json::to_string_pretty(value).context("encoding the answer")
}

/// `--since`: an RFC 3339 time, or a duration before now (`2h`, `3days`).
fn since_time(text: &str) -> Result<Timestamp> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    let ago = humantime::parse_duration(text).with_context(|| {
        format!("--since {text:?} is neither an RFC 3339 time nor a duration such as 2h")
    })?;
    let ago = jiff::SignedDuration::try_from(ago).context("--since is too long ago")?;
    Timestamp::now()
        .checked_sub(ago)
        .with_context(|| format!("--since {text:?} is too long ago"))
}

/// Checks the decision against the state (the gap exists; for apply, the solution),
/// then appends it.
fn decide(
    storage: &Storage,
    groove: &Groove,
    action: Action,
    args: &GrooveDecisionArgs,
) -> Result<String> {
    let gap = groove
        .hook()
        .gaps()
        .get(&args.id)
        .with_context(|| format!("no gap {} (see `vibes groove gaps --all`)", args.id))?;
    if args.solution.is_some() && action != Action::Apply {
        bail!("--solution goes with apply only");
    }
    if action == Action::Apply {
        match &args.solution {
            Some(sid) if !gap.solutions.iter().any(|s| &s.id == sid) => bail!(
                "gap {} has no solution {sid}; it has: {}",
                gap.id,
                gap.solutions
                    .iter()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None if gap.solutions.is_empty() => {
                bail!("gap {} has no solution to apply", gap.id)
            }
            _ => {}
        }
    }
    let at = match &args.at {
        Some(text) => text
            .parse::<Timestamp>()
            .with_context(|| format!("--at {text:?} is not an RFC 3339 time"))?,
        None => Timestamp::now(),
    };
    let event = decision::event(action, &gap.id, args.solution.as_deref(), at);
    let producer = Producer::open(storage, None)?;
    producer.append(std::slice::from_ref(&event))?;
    Ok(format!(
        "recorded {} of gap {}{} as event {} in {}",
        action.as_str(),
        gap.id,
        args.solution
            .as_deref()
            .map(|s| format!(" (solution {s})"))
            .unwrap_or_default(),
        event.id,
        storage.describe()
    ))
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// `` Bash `make test` ``: the tool, with its command head when it has one.
pub fn subject(v: &Value) -> String {
    let head = s(&v["head"]);
    if head.is_empty() {
        s(&v["tool"])
    } else {
        format!("{} `{head}`", s(&v["tool"]))
    }
}

fn gaps_text(answer: &Value, all: bool) -> String {
    let gaps = answer["gaps"].as_array().map_or(&[][..], Vec::as_slice);
    if gaps.is_empty() {
        return if all {
            "no gaps: no failure has come back in 3 sessions".to_owned()
        } else {
            "no open gaps (--all shows resolved and dismissed ones)".to_owned()
        };
    }
    let mut text = format!(
        "{:<18}  {:<11}  {:<8}  {:>8}  {:>8}  {:>11}  {:<17}  FAILING\n",
        "GAP", "STATUS", "SEVERITY", "SESSIONS", "FAILURES", "UNRECOVERED", "KIND"
    );
    for g in gaps {
        text.push_str(&format!(
            "{:<18}  {:<11}  {:<8}  {:>8}  {:>8}  {:>11}  {:<17}  {}\n",
            s(&g["id"]),
            s(&g["status"]),
            s(&g["severity"]),
            s(&g["sessions"]),
            s(&g["failures"]),
            s(&g["unrecovered"]),
            s(&g["kind"]),
            subject(g)
        ));
        text.push_str(&format!("{:<20}e.g. {}\n", "", s(&g["example"])));
    }
    text
}

fn gap_text(g: &Value) -> String {
    let c = &g["cluster"];
    let mut text = format!(
        "gap {} ({}, severity {})\n{} fails with {}\n{} sessions, {} failures: {} recovered, {} unrecovered; opened {}, last change {}\n",
        s(&g["id"]),
        s(&g["status"]),
        s(&g["severity"]),
        subject(g),
        s(&g["kind"]),
        s(&c["sessions"]),
        s(&c["failures"]),
        s(&c["recovered"]),
        s(&c["unrecovered"]),
        s(&g["created"]),
        s(&g["updated"]),
    );
    text.push_str("examples:\n");
    for e in c["examples"].as_array().map_or(&[][..], Vec::as_slice) {
        text.push_str(&format!("  {}\n", s(e)));
    }
    let solutions = g["solutions"].as_array().map_or(&[][..], Vec::as_slice);
    if solutions.is_empty() {
        text.push_str("no solutions yet\n");
    } else {
        text.push_str("solutions:\n");
    }
    for (i, sol) in solutions.iter().enumerate() {
        text.push_str(&format!(
            "  {}. {} [{} -> {}] confidence {}\n     {}\n     {}\n",
            i + 1,
            s(&sol["id"]),
            s(&sol["kind"]),
            s(&sol["target"]),
            s(&sol["confidence"]),
            s(&sol["title"]),
            s(&sol["text"]),
        ));
    }
    if let Some(applied) = g["applied"].as_object() {
        text.push_str(&format!(
            "applied {} at {}; last feedback adjustment {}\n",
            s(&applied["solution_id"]),
            s(&applied["at"]),
            s(&applied["last_adjustment"])
        ));
    }
    text
}

fn novelty_text(answer: &Value) -> String {
    let items = answer["novelty"].as_array().map_or(&[][..], Vec::as_slice);
    if items.is_empty() {
        return "no failures seen".to_owned();
    }
    let mut text = String::new();
    for k in items {
        let fp = &k["fingerprint"];
        text.push_str(&format!(
            "{}  {}  {}  {} (seen {}x, first in {})\n    {}\n",
            s(&k["first_seen"]),
            s(&fp["id"]),
            s(&fp["kind"]),
            subject(fp),
            s(&k["seen"]),
            s(&k["first_session"]),
            s(&fp["line"]),
        ));
    }
    text
}

fn suggest_text(answer: &Value) -> Result<String> {
    let rules = &answer["settings_json"];
    let notes = answer["claude_md"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let other = answer["other"].as_array().map_or(&[][..], Vec::as_slice);
    let no_rules = rules["permissions"]["allow"]
        .as_array()
        .is_none_or(Vec::is_empty);
    if no_rules && notes.is_empty() && other.is_empty() {
        return Ok("nothing to suggest: no open gap has a solution".to_owned());
    }
    let mut text = String::new();
    if !no_rules {
        text.push_str("# .claude/settings.json\n");
        text.push_str(&serde_json::to_string_pretty(rules)?);
        text.push_str("\n\n");
    }
    if !notes.is_empty() {
        text.push_str("# CLAUDE.md\n");
        for n in notes {
            text.push_str(&format!("- {}\n", s(&n["text"])));
        }
        text.push('\n');
    }
    for o in other {
        text.push_str(&format!(
            "# {} (gap {})\n{}\n",
            s(&o["title"]),
            s(&o["gap_id"]),
            s(&o["text"])
        ));
    }
    Ok(text)
}
