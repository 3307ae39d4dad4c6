//! `vibes ingest claude [FILE|-]`: stores a Claude Code stream-json session.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use vibes_events::Event;
use vibes_sources::claude::{ClaudeParser, ParseSummary};
use xxhash_rust::xxh3::Xxh3;

use super::{Input, MAX_BATCH, write_state_file};
use crate::cli::{GlobalArgs, IngestClaudeArgs};
use crate::output::{self, Outcome};
use crate::producer::Producer;
use crate::storage::Storage;

/// Malformed lines listed one by one in the summary; the rest are counted.
const LIST_MALFORMED: usize = 20;

pub fn run(storage: &Storage, args: &IngestClaudeArgs, global: &GlobalArgs) -> Result<Outcome> {
    let mut input = Input::open(args.input.as_deref())?;
    let ledger = match (&input.path, storage.state_dir()) {
        (Some(path), Some(state)) => Some(Ledger::for_file(path, &state)?),
        _ => None,
    };
    if let Some(ledger) = &ledger
        && !args.force
        && let Some(entry) = ledger.previous()?
    {
        eprintln!(
            "{} was already ingested at {} ({} events, session {}); nothing stored. \
             Use --force to store it again.",
            input.name,
            entry.at,
            entry.events,
            entry.session.as_deref().unwrap_or("unknown"),
        );
        return Ok(Outcome::Clean);
    }

    let producer = Producer::open(storage, None)?;
    let mut parser = ClaudeParser::new();
    if let Some(name) = &args.session_name {
        parser = parser.session_name(name.clone());
    }
    let progress = progress_bar(&input, global);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut stored = 0u64;
    let mut line = Vec::new();
    loop {
        let read = input.next_line(&mut line)?;
        if read == 0 {
            break;
        }
        let line_number = input.line_number;
        progress.inc(read as u64);
        let outcome = parser.parse_line(&line, line_number);
        if let vibes_sources::claude::LineOutcome::Malformed { reason, .. } = &outcome {
            tracing::debug!(input = %input.name, line = line_number, "{reason}");
        }
        batch.extend(outcome.into_events());
        if input.batch_due(batch.len()) {
            stored += append(&producer, &mut batch, stored)?;
        }
    }
    stored += append(&producer, &mut batch, stored)?;
    progress.finish_and_clear();
    storage.enforce_retention()?;

    let summary = parser.summary().clone();
    if let Some(ledger) = &ledger {
        ledger.record(&LedgerEntry {
            path: input.name.clone(),
            at: jiff::Timestamp::now().to_string(),
            events: stored,
            session: parser.session_id().map(str::to_owned),
        })?;
    }
    eprint!(
        "{}",
        render_summary(&input.name, storage, parser.session_id(), stored, &summary)
    );
    Ok(Outcome::partial_if(!summary.malformed.is_empty()))
}

/// Appends and empties `batch`; returns how many were stored.
fn append(producer: &Producer<'_>, batch: &mut Vec<Event>, stored_before: u64) -> Result<u64> {
    if batch.is_empty() {
        return Ok(0);
    }
    producer
        .append(batch)
        .with_context(|| format!("{stored_before} events stored before this failure"))?;
    let n = batch.len() as u64;
    batch.clear();
    Ok(n)
}

fn progress_bar(input: &Input, global: &GlobalArgs) -> ProgressBar {
    match input.len {
        Some(len) if output::stderr_is_terminal() && !global.quiet => {
            let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
            ) {
                bar.set_style(style);
            }
            bar
        }
        _ => ProgressBar::hidden(),
    }
}

fn render_summary(
    input: &str,
    storage: &Storage,
    session: Option<&str>,
    stored: u64,
    summary: &ParseSummary,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "ingested {input} into {}", storage.describe());
    let _ = writeln!(s, "  session    {}", session.unwrap_or("(none seen)"));
    let by_type = summary
        .events_by_type
        .iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(s, "  events     {stored} stored: {by_type}");
    let _ = writeln!(
        s,
        "  tools      {} calls, {} errors",
        summary.tool_calls, summary.tool_errors
    );
    let _ = writeln!(s, "  turns      {}", summary.turns);
    let _ = writeln!(s, "  cost       ${:.4}", summary.cost_usd);
    let _ = writeln!(s, "  duration   {}", output::human_ms(summary.duration_ms));
    let skipped: u64 = summary.skipped.values().sum();
    let skipped_detail = if summary.skipped.is_empty() {
        String::new()
    } else {
        let kinds = summary
            .skipped
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(" ({kinds})")
    };
    let _ = writeln!(
        s,
        "  lines      {} read, {} blank, {skipped} skipped{skipped_detail}, {} malformed",
        summary.lines,
        summary.blank_lines,
        summary.malformed.len()
    );
    for bad in summary.malformed.iter().take(LIST_MALFORMED) {
        let _ = writeln!(s, "  malformed  line {}: {}", bad.line, bad.reason);
    }
    if summary.malformed.len() > LIST_MALFORMED {
        let _ = writeln!(
            s,
            "  malformed  ... and {} more",
            summary.malformed.len() - LIST_MALFORMED
        );
    }
    s
}

/// Remembers which file contents were ingested, so running the same command twice does
/// not store a session twice. Keyed by a hash of the content, not the path.
#[derive(Debug)]
struct Ledger {
    path: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
struct LedgerEntry {
    path: String,
    at: String,
    events: u64,
    session: Option<String>,
}

impl Ledger {
    fn for_file(file: &Path, state_dir: &Path) -> Result<Ledger> {
        let mut hasher = Xxh3::new();
        let mut reader =
            fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(
                        anyhow::Error::new(e).context(format!("reading {}", file.display()))
                    );
                }
            };
            hasher.update(&buf[..n]);
        }
        Ok(Ledger {
            path: state_dir
                .join("ingested")
                .join("claude")
                .join(format!("{:032x}.json", hasher.digest128())),
        })
    }

    fn previous(&self) -> Result<Option<LedgerEntry>> {
        match fs::read(&self.path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(entry) => Ok(Some(entry)),
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), "ignoring an unreadable ingest record: {e}");
                    Ok(None)
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => {
                Err(anyhow::Error::new(e).context(format!("reading {}", self.path.display())))
            }
        }
    }

    fn record(&self, entry: &LedgerEntry) -> Result<()> {
        let json = serde_json::to_vec_pretty(entry).context("encoding the ingest record")?;
        write_state_file(&self.path, &json)
    }
}
