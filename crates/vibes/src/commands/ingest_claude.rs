//! `vibes ingest claude [FILE|-]`: stores a Claude Code stream-json session.
//!
//! A file is read incrementally: its checkpoint (see [`crate::checkpoint`]) says where
//! the last run stopped, so a run after the file grew stores only the new lines, and a
//! file truncated or replaced since is read again from the start. A last line without
//! its newline that is not yet valid JSON waits for the rest (the file is being
//! written); one that is complete JSON is stored. `--force` reads the file from its
//! first byte again; stdin has no checkpoint. Every id is a function of the stream's
//! content and the line's number, so whatever is read twice counts once.

use std::fmt::Write as _;
use std::fs::File;
use std::path::PathBuf;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use vibes_events::Event;
use vibes_sources::claude::{ClaudeParser, LineOutcome, ParseSummary};

use super::{Input, MAX_BATCH};
use crate::checkpoint::{Checkpoints, FileMark, Saved, Verdict, mtime_ns};
use crate::cli::{GlobalArgs, IngestClaudeArgs};
use crate::output::{self, Outcome};
use crate::producer::Producer;
use crate::storage::Storage;

/// Malformed lines listed one by one in the summary; the rest are counted.
const LIST_MALFORMED: usize = 20;

/// The parser's state at a checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct StreamState {
    /// Lines read before the offset.
    line: u64,
    /// The session id seen last.
    session_id: Option<String>,
    /// The last line read had no newline (it was complete JSON): a newline right at
    /// the offset ends it and is not a line of its own.
    unterminated: bool,
}

/// Where this run starts, and why.
struct Start {
    verdict: Verdict,
    forced: bool,
    offset: u64,
    state: StreamState,
    /// The offset the checkpoint had, when there was one.
    previous: Option<u64>,
}

pub fn run(storage: &Storage, args: &IngestClaudeArgs, global: &GlobalArgs) -> Result<Outcome> {
    let mut input = Input::open(args.input.as_deref())?;
    let checkpoints = match (&input.path, storage.state_dir()) {
        (Some(_), Some(state)) => Some(Checkpoints::open(&state, "claude")?),
        _ => None,
    };
    let mtime = match &input.file {
        Some(file) => Some(mtime_ns(
            &file
                .metadata()
                .with_context(|| format!("cannot read {}", input.name))?,
        )),
        None => None,
    };
    let start = start(&input, checkpoints.as_ref(), args.force)?;
    if start.verdict == Verdict::Unchanged {
        let held = input.len.unwrap_or(0).saturating_sub(start.offset);
        let waiting = if held > 0 {
            format!(" (an incomplete last line of {held} bytes waits for its newline)")
        } else {
            String::new()
        };
        eprintln!(
            "{}: nothing new since the last run: {} read{waiting}; nothing stored. \
             Use --force to read it again.",
            input.name,
            output::count(start.state.line, "line"),
        );
        return Ok(Outcome::Clean);
    }
    if start.offset > 0 {
        input.start_at(start.offset, start.state.line)?;
    }

    let producer = Producer::open(storage, None)?;
    let mut parser = ClaudeParser::new().resume_session(start.state.session_id.clone());
    if let Some(name) = &args.session_name {
        parser = parser.session_name(name.clone());
    }
    let progress = progress_bar(&input, start.offset, global);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut stored = 0u64;
    let mut line = Vec::new();
    let mut offset = start.offset;
    let mut unterminated = start.state.unterminated;
    let mut skip_newline = start.state.unterminated && !start.verdict.from_start();
    let mut held = 0u64;
    let target = input_checkpoint(&input, checkpoints)?;
    let save = |offset: u64, line: u64, unterminated: bool, parser: &ClaudeParser, seen| {
        save_checkpoint(
            target.as_ref(),
            offset,
            StreamState {
                line,
                session_id: parser.session_id().map(str::to_owned),
                unterminated,
            },
            seen,
        )
    };
    loop {
        let read = input.next_line(&mut line)?;
        if read == 0 {
            break;
        }
        progress.inc(read as u64);
        if std::mem::take(&mut skip_newline) && (line == b"\n" || line == b"\r\n") {
            // The newline of the complete line the last run stored.
            offset += read as u64;
            input.line_number -= 1;
            unterminated = false;
            continue;
        }
        let complete = line.ends_with(b"\n");
        if !complete
            && input.file.is_some()
            && serde_json::from_slice::<serde::de::IgnoredAny>(&line).is_err()
        {
            // A file's last line, still being written: it waits for its newline.
            input.line_number -= 1;
            held = read as u64;
            break;
        }
        offset += read as u64;
        unterminated = !complete;
        let line_number = input.line_number;
        let outcome = parser.parse_line(&line, line_number);
        if let LineOutcome::Malformed { reason, .. } = &outcome {
            tracing::debug!(input = %input.name, line = line_number, "{reason}");
        }
        batch.extend(outcome.into_events());
        if input.batch_due(batch.len()) {
            stored += append(&producer, &mut batch, stored)?;
            save(offset, input.line_number, unterminated, &parser, None)?;
        }
    }
    stored += append(&producer, &mut batch, stored)?;
    save(
        offset,
        input.line_number,
        unterminated,
        &parser,
        mtime.map(|m| (offset + held, m)),
    )?;
    progress.finish_and_clear();
    storage.enforce_retention()?;

    let summary = parser.summary().clone();
    eprint!(
        "{}",
        render_summary(
            &input.name,
            storage,
            &parser,
            stored,
            &summary,
            &start,
            held
        )
    );
    Ok(Outcome::partial_if(!summary.malformed.is_empty()))
}

/// Where to start reading `input`, from its checkpoint (if any).
fn start(input: &Input, checkpoints: Option<&Checkpoints>, force: bool) -> Result<Start> {
    let fresh = |verdict, previous| Start {
        verdict,
        forced: force,
        offset: 0,
        state: StreamState::default(),
        previous,
    };
    let (Some(checkpoints), Some(path), Some(file)) = (checkpoints, &input.path, &input.file)
    else {
        return Ok(fresh(Verdict::New, None));
    };
    let Some(saved) = checkpoints.load::<StreamState>(path)? else {
        return Ok(fresh(Verdict::New, None));
    };
    let previous = Some(saved.mark.offset);
    if force {
        return Ok(fresh(Verdict::Replaced, previous));
    }
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {}", input.name))?;
    let verdict = saved
        .mark
        .verdict(file, &meta)
        .with_context(|| format!("reading {}", input.name))?;
    Ok(if verdict.from_start() {
        fresh(verdict, previous)
    } else {
        Start {
            verdict,
            forced: false,
            offset: saved.mark.offset,
            state: saved.reader,
            previous,
        }
    })
}

/// Where the checkpoints of `input` go, and its path and a handle to mark it by, when
/// it has checkpoints.
type Target = (Checkpoints, PathBuf, File);

fn input_checkpoint(input: &Input, checkpoints: Option<Checkpoints>) -> Result<Option<Target>> {
    let (Some(checkpoints), Some(path), Some(file)) = (checkpoints, &input.path, &input.file)
    else {
        return Ok(None);
    };
    let file = file
        .try_clone()
        .with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Some((checkpoints, path.clone(), file)))
}

/// Saves the checkpoint at `offset`, after the events before it were stored; `seen` is
/// the size read to and the modification time before reading, at the end of a run.
fn save_checkpoint(
    target: Option<&Target>,
    offset: u64,
    state: StreamState,
    seen: Option<(u64, i128)>,
) -> Result<()> {
    let Some((checkpoints, path, file)) = target else {
        return Ok(());
    };
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut mark =
        FileMark::of(file, &meta, offset).with_context(|| format!("reading {}", path.display()))?;
    if let Some((len, mtime)) = seen {
        mark = mark.seen(len, mtime);
    }
    checkpoints.save(
        path,
        &Saved {
            path: path.display().to_string(),
            mark,
            reader: state,
        },
    )
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

fn progress_bar(input: &Input, from: u64, global: &GlobalArgs) -> ProgressBar {
    match input.len {
        Some(len) if output::stderr_is_terminal() && !global.quiet => {
            let bar = ProgressBar::with_draw_target(
                Some(len.saturating_sub(from)),
                ProgressDrawTarget::stderr(),
            );
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
    parser: &ClaudeParser,
    stored: u64,
    summary: &ParseSummary,
    start: &Start,
    held: u64,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "ingested {input} into {}", storage.describe());
    let _ = writeln!(s, "  read       {}", read_from(start));
    let _ = writeln!(
        s,
        "  session    {}",
        parser.session_id().unwrap_or("(none seen)")
    );
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
    if held > 0 {
        let _ = writeln!(
            s,
            "  waiting    an incomplete last line ({held} bytes) waits for its newline"
        );
    }
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

/// Where this run read from, in words.
fn read_from(start: &Start) -> String {
    let previous = start.previous.unwrap_or(0);
    match start.verdict {
        _ if start.forced => {
            format!("from the start (--force; the last run had read {previous} bytes)")
        }
        Verdict::New => "from the start (first run)".to_owned(),
        Verdict::Grown => format!(
            "from byte {} (line {}), where the last run stopped",
            start.offset,
            start.state.line + 1
        ),
        Verdict::Truncated => format!(
            "from the start: the file is shorter than the {previous} bytes the last run read"
        ),
        Verdict::Replaced => {
            format!("from the start: the file's first {previous} bytes changed since the last run")
        }
        Verdict::Unchanged => "nothing (unchanged)".to_owned(),
    }
}
