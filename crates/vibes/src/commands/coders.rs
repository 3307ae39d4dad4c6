//! `vibes coders [--all] [--json]` and `vibes coders watch`: the ai-coder plugin's
//! status table of coders (agent sessions, their subagents, supervised runs).
//!
//! The state comes from the plugin brought up to date with the log by
//! [`plugin_query::load`]; `watch` does that again every interval, so it follows what
//! `ingest`, `vibes run` or a `serve` store meanwhile. On a terminal it redraws the
//! table in place; otherwise it prints the table again whenever it changed.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use vibes_plugin::{Plugin, QueryArgs};

use super::plugin_query;
use crate::cli::{CodersArgs, CodersCommand, CodersWatchArgs, GlobalArgs};
use crate::output::{self, DataOut, Outcome};
use crate::plugins;
use crate::storage::Storage;

pub fn run(storage: &Storage, args: &CodersArgs, global: &GlobalArgs) -> Result<Outcome> {
    match &args.command {
        Some(CodersCommand::Watch(watch_args)) => watch(storage, watch_args, global),
        None => {
            let (answer, skipped) = status(storage, args.all, global)?;
            let text = if args.json {
                serde_json::to_string_pretty(&answer).context("encoding the coders")?
            } else {
                render(&answer, args.all)
            };
            let mut out = DataOut::new(false);
            let _ = out.line(text.trim_end())?;
            let _ = out.flush()?;
            Ok(Outcome::partial_if(skipped > 0))
        }
    }
}

/// The `coders` answer of the plugin brought up to date, and what loading skipped.
fn status(storage: &Storage, all: bool, global: &GlobalArgs) -> Result<(Value, u64)> {
    let mut plugin = plugins::ai_coder();
    let loaded = plugin_query::load(storage, &mut plugin, global)?;
    let mut q = QueryArgs::new();
    if all {
        q = q.with("all", "true");
    }
    let answer = plugin
        .query("coders", &q)
        .context("ai-coder query coders")?;
    Ok((answer, loaded.skipped))
}

fn watch(storage: &Storage, args: &CodersWatchArgs, global: &GlobalArgs) -> Result<Outcome> {
    if !(args.interval.is_finite() && args.interval >= 0.05) {
        bail!("--interval {} must be at least 0.05 seconds", args.interval);
    }
    let interval = Duration::from_secs_f64(args.interval);
    let terminal = output::stdout_is_terminal();
    let mut out = DataOut::new(true);
    let mut shown: Option<String> = None;
    let mut skipped = 0;
    let mut refreshes = 0u64;
    loop {
        let (answer, s) = status(storage, args.all, global)?;
        skipped += s;
        let table = render(&answer, args.all);
        let line = if terminal {
            // Home, clear, then the table: a redraw in place.
            Some(format!("\x1b[H\x1b[2J{}", table.trim_end()))
        } else if shown.as_deref() != Some(table.as_str()) {
            let separator = if shown.is_some() { "\n" } else { "" };
            Some(format!("{separator}{}", table.trim_end()))
        } else {
            None
        };
        if let Some(line) = line {
            if out.line(&line)?.is_err() {
                break;
            }
            shown = Some(table);
        }
        refreshes += 1;
        if args.count.is_some_and(|n| refreshes >= n) {
            break;
        }
        std::thread::sleep(interval);
    }
    let _ = out.flush()?;
    Ok(Outcome::partial_if(skipped > 0))
}

/// `claude-sonnet-4-5-20250929` as `sonnet-4-5`.
fn short_model(model: &str) -> String {
    let model = model.strip_prefix("claude-").unwrap_or(model);
    match model.rsplit_once('-') {
        Some((head, date)) if date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) => {
            head.to_owned()
        }
        _ => model.to_owned(),
    }
}

/// A coder id shortened for the table: 8 characters of the session, 16 of the agent.
fn short_id(id: &str) -> String {
    let cut = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    match id.split_once('/') {
        Some((session, agent)) => format!("{}/{}", cut(session, 8), cut(agent, 16)),
        None => cut(id, 8),
    }
}

fn money(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_owned(), |c| format!("${c:.2}"))
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

/// The status table.
pub fn render(answer: &Value, all: bool) -> String {
    let coders = answer["coders"].as_array().map_or(&[][..], Vec::as_slice);
    if coders.is_empty() {
        return if all {
            "no coders yet: ingest agent sessions (`vibes ingest claude-projects`) or run one with `vibes run`".to_owned()
        } else {
            "no live coders (`vibes coders --all` shows ended ones too)".to_owned()
        };
    }
    let header = [
        "CODER", "ID", "STATUS", "MODEL", "ELAPSED", "TURNS", "TOOLS", "ERRORS", "COST", "BURN/H",
        "TODO",
    ];
    let mut rows: Vec<[String; 11]> = Vec::with_capacity(coders.len());
    for c in coders {
        let name = text(&c["coder_name"]);
        let name = if c["parent"].is_string() {
            format!("  {name}")
        } else {
            name.to_owned()
        };
        let progress = &c["progress"];
        let todo = match progress["total"].as_u64() {
            Some(total) if total > 0 => format!("{}/{total}", progress["done"]),
            _ => "-".to_owned(),
        };
        rows.push([
            vibes_events::display::truncate(&name, 40).to_string(),
            short_id(text(&c["coder_id"])),
            text(&c["status"]).to_owned(),
            c["model"]
                .as_str()
                .map_or_else(|| "-".to_owned(), short_model),
            output::human_ms(c["elapsed_ms"].as_u64().unwrap_or(0)),
            c["turns"].to_string(),
            c["tool_calls"].to_string(),
            c["errors"].to_string(),
            money(&c["cost_usd"]),
            money(&c["burn_usd_per_hour"]),
            todo,
        ]);
    }
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // Numbers align right, words left.
    let right = [
        false, false, false, false, true, true, true, true, true, true, true,
    ];
    let mut s = String::new();
    let line = |s: &mut String, cells: &[String]| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            if i > 0 {
                l.push_str("  ");
            }
            if right[i] {
                l.push_str(&" ".repeat(pad));
                l.push_str(cell);
            } else {
                l.push_str(cell);
                if i + 1 < cells.len() {
                    l.push_str(&" ".repeat(pad));
                }
            }
        }
        let _ = writeln!(s, "{}", l.trim_end());
    };
    line(&mut s, &header.map(str::to_owned));
    for row in &rows {
        line(&mut s, row);
    }
    let mut by_status = std::collections::BTreeMap::<&str, u64>::new();
    for c in coders {
        *by_status.entry(text(&c["status"])).or_default() += 1;
    }
    let counts: Vec<String> = by_status.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let _ = writeln!(
        s,
        "\n{} ({})",
        output::count(coders.len() as u64, "coder"),
        counts.join(", ")
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_and_ids_are_shortened_for_the_table() {
        assert_eq!(short_model("claude-sonnet-4-5-20250929"), "sonnet-4-5");
        assert_eq!(short_model("claude-opus-4-6"), "opus-4-6");
        assert_eq!(short_model("gpt-5"), "gpt-5");
        assert_eq!(
            short_id("155c3456-9cd0-4d8f-8db3-d0560ca1851c/sidechain"),
            "155c3456/sidechain"
        );
        assert_eq!(short_id("run:r1"), "run:r1");
    }
}
