//! `vibes ingest claude-projects [DIR...] [--follow]`: stores Claude Code's session
//! transcripts, reading only what each file gained since the last run.
//!
//! The events go to the host's event topic like `ingest claude`'s, keyed by session
//! id, so `vibes stats`, `vibes tail --session` and the plugins see sessions from
//! either source alike. Reading, storing and checkpointing are [`crate::transcripts`];
//! this module finds the folders, prints the summary and, with `--follow`, polls the
//! folders until SIGINT or SIGTERM.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::checkpoint::Checkpoints;
use crate::cli::{GlobalArgs, IngestProjectsArgs};
use crate::fold::UsageFold;
use crate::output::{self, Outcome};
use crate::producer::Producer;
use crate::storage::Storage;
use crate::transcripts::{self, PassReport, Sink, Tree};

/// How often `--follow` looks for new files and new lines.
const POLL: Duration = Duration::from_millis(250);

/// Malformed lines (and waiting files) listed one by one; the rest are counted.
const LIST: usize = 20;

pub fn run(storage: &Storage, args: &IngestProjectsArgs, global: &GlobalArgs) -> Result<Outcome> {
    let roots = roots(&args.dirs, std::env::var_os("CLAUDE_CONFIG_DIR"))?;
    let checkpoints = storage
        .state_dir()
        .map(|dir| Checkpoints::open(&dir, transcripts::CHECKPOINT_KIND))
        .transpose()?;
    let producer = Producer::open(storage, None)?;
    let sink = Sink {
        producer: &producer,
        checkpoints: checkpoints.as_ref(),
    };
    let threads = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    // Registered before the first pass, so a signal during it stops the run after it.
    let mut stop = if args.follow {
        Some(Stop::listen(storage)?)
    } else {
        None
    };

    // Filling an empty log: the usage plugin is folded on the way, so the first report
    // need not read it all back.
    let mut fold = UsageFold::start(storage, &producer)?;
    let mut tree = Tree::default();
    tree.discover(&roots, checkpoints.as_ref())?;
    let progress = progress_bar(&tree, global);
    let report = transcripts::pass(&mut tree, &sink, threads, &progress, &mut fold)?;
    if let Some(fold) = fold
        && report.stored > 0
    {
        let adopted = fold.finish(storage, &report.calls, report.folded)?;
        tracing::debug!(adopted, "the usage plugin folded while ingesting");
    }
    progress.finish_and_clear();
    storage.enforce_retention()?;
    eprint!(
        "{}",
        render(&roots, storage, &report, checkpoints.is_some())
    );
    let mut problems = report_has_problems(&report);
    let Some(stop) = &mut stop else {
        return Ok(Outcome::partial_if(problems));
    };

    eprintln!(
        "watching {} for new lines (Ctrl-C to stop)",
        output::count(tree.files.len() as u64, "file")
    );
    let mut stored = 0u64;
    while !stop.wait(storage, POLL) {
        tree.discover(&roots, checkpoints.as_ref())?;
        let report =
            transcripts::pass(&mut tree, &sink, threads, &ProgressBar::hidden(), &mut None)?;
        if report.stored > 0 {
            storage.enforce_retention()?;
            stored += report.stored;
        }
        eprint!("{}", render_follow(&report));
        problems |= report_has_problems(&report);
    }
    eprintln!(
        "stopped: {} stored while watching, every file checkpointed",
        output::count(stored, "event")
    );
    Ok(Outcome::partial_if(problems))
}

/// The folders to read: those given, else `~/.claude/projects` and
/// `<each path in CLAUDE_CONFIG_DIR (comma separated)>/projects` that exist.
fn roots(given: &[PathBuf], config_dirs: Option<std::ffi::OsString>) -> Result<Vec<PathBuf>> {
    if !given.is_empty() {
        for dir in given {
            let meta =
                std::fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
            if !meta.is_dir() {
                bail!("{} is not a folder", dir.display());
            }
        }
        return Ok(given.to_vec());
    }
    let mut candidates = Vec::new();
    if let Some(home) = dirs::home_dir() {
        candidates.push(home.join(".claude").join("projects"));
    }
    if let Some(dirs) = config_dirs {
        for dir in dirs.to_string_lossy().split(',') {
            let dir = dir.trim();
            if !dir.is_empty() {
                candidates.push(PathBuf::from(dir).join("projects"));
            }
        }
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    for dir in &candidates {
        if dir.is_dir() && !roots.contains(dir) {
            roots.push(dir.clone());
        }
    }
    if roots.is_empty() {
        let looked = candidates
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        bail!("no Claude Code projects folder: looked in {looked}; name one as DIR");
    }
    Ok(roots)
}

/// SIGINT and SIGTERM, caught: `--follow` stops between passes, after storing and
/// checkpointing what it read.
struct Stop {
    interrupt: Signal,
    terminate: Signal,
}

impl Stop {
    fn listen(storage: &Storage) -> Result<Stop> {
        storage.block_on(async {
            Ok(Stop {
                interrupt: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
                terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            })
        })
    }

    /// Waits `pause`; whether a signal came (during it or since the last wait).
    fn wait(&mut self, storage: &Storage, pause: Duration) -> bool {
        storage.block_on(async {
            tokio::select! {
                _ = self.interrupt.recv() => true,
                _ = self.terminate.recv() => true,
                () = tokio::time::sleep(pause) => false,
            }
        })
    }
}

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stop").finish_non_exhaustive()
    }
}

fn progress_bar(tree: &Tree, global: &GlobalArgs) -> ProgressBar {
    if !output::stderr_is_terminal() || global.quiet {
        return ProgressBar::hidden();
    }
    let bar =
        ProgressBar::with_draw_target(Some(tree.unread_bytes()), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

fn report_has_problems(report: &PassReport) -> bool {
    !report.malformed.is_empty() || !report.failed.is_empty()
}

/// The summary of a run.
fn render(roots: &[PathBuf], storage: &Storage, r: &PassReport, checkpoints: bool) -> String {
    let mut s = String::new();
    let roots = roots
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(s, "ingested {roots} into {}", storage.describe());
    let by_kind = r
        .files
        .iter()
        .filter(|(k, _)| **k != "unchanged")
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sep = if by_kind.is_empty() { "" } else { ": " };
    let _ = writeln!(
        s,
        "  files      {} read{sep}{by_kind} ({}, {}); {} unchanged",
        r.files_read(),
        output::count(r.session_files, "session file"),
        output::count(r.subagent_files, "subagent file"),
        r.files.get("unchanged").copied().unwrap_or(0),
    );
    if !checkpoints {
        let _ = writeln!(
            s,
            "  note       no checkpoints on this backend: every run reads every file (ids de-duplicate)"
        );
    }
    let _ = writeln!(s, "  bytes      {} read", output::human_bytes(r.bytes));
    if let Some((first, last)) = r.span {
        let _ = writeln!(
            s,
            "  time       {first} → {last} (the lines' own timestamps)"
        );
    }
    let by_type = r
        .events
        .iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sep = if by_type.is_empty() { "" } else { ": " };
    let _ = writeln!(s, "  events     {} stored{sep}{by_type}", r.stored);
    let _ = writeln!(s, "  api calls  {}", calls(r));
    let _ = writeln!(
        s,
        "  tools      {} uses, {} errors",
        r.tool_uses, r.tool_errors
    );
    let skipped: u64 = r.skipped.values().sum();
    let unknown: u64 = r.unknown.values().sum();
    let _ = writeln!(
        s,
        "  lines      {} read, {} blank, {skipped} skipped, {unknown} of unknown types, {} malformed",
        r.lines,
        r.blank_lines,
        r.malformed.len()
    );
    if !r.skipped.is_empty() {
        let _ = writeln!(s, "  skipped    {}", counts(&r.skipped));
    }
    if !r.unknown.is_empty() {
        let _ = writeln!(s, "  unknown    {}", counts(&r.unknown));
    }
    problems(&mut s, r);
    s
}

/// What one `--follow` pass stored, when it stored or found anything.
fn render_follow(r: &PassReport) -> String {
    let mut s = String::new();
    if r.stored > 0 {
        let _ = writeln!(
            s,
            "stored {} from {} ({})",
            output::count(r.stored, "event"),
            output::count(r.files_read(), "file"),
            calls(r)
        );
    }
    for (kind, n) in &r.files {
        if std::matches!(*kind, "truncated" | "replaced") {
            let _ = writeln!(
                s,
                "{} {kind}: read again from the start",
                output::count(*n, "file")
            );
        }
    }
    if !r.unknown.is_empty() {
        let _ = writeln!(s, "  unknown    {}", counts(&r.unknown));
    }
    problems(&mut s, r);
    s
}

fn calls(r: &PassReport) -> String {
    let copies = match r.calls.copies() {
        1 => "1 copy".to_owned(),
        n => format!("{n} copies"),
    };
    let calls = r.calls.len() as u64;
    let mut text = format!("{} (from {copies})", output::count(calls, "call"));
    let not_final = r.calls.calls().filter(|c| !c.output_final).count();
    if not_final > 0 {
        let _ = write!(
            text,
            "; {not_final} without a stop reason, their output counts are lower bounds"
        );
    }
    text
}

fn counts(map: &std::collections::BTreeMap<String, u64>) -> String {
    map.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Malformed lines, waiting lines, vanished and unreadable files.
fn problems(s: &mut String, r: &PassReport) {
    for bad in r.malformed.iter().take(LIST) {
        let _ = writeln!(s, "  malformed  {bad}");
    }
    if r.malformed.len() > LIST {
        let _ = writeln!(s, "  malformed  ... and {} more", r.malformed.len() - LIST);
    }
    for (path, bytes) in r.waiting.iter().take(LIST) {
        let _ = writeln!(
            s,
            "  waiting    {path}: an incomplete last line ({bytes} bytes) waits for its newline"
        );
    }
    if r.waiting.len() > LIST {
        let _ = writeln!(
            s,
            "  waiting    ... and {} more files",
            r.waiting.len() - LIST
        );
    }
    if r.vanished > 0 {
        let _ = writeln!(s, "  vanished   {}", output::count(r.vanished, "file"));
    }
    for failed in &r.failed {
        let _ = writeln!(s, "  failed     {failed}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_roots_are_home_and_each_config_dir_that_exists() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::create_dir_all(a.join("projects")).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let env = format!("{}, {},", a.display(), b.display());
        let roots = roots(&[], Some(env.into())).unwrap();
        assert!(roots.contains(&a.join("projects")), "{roots:?}");
        assert!(!roots.contains(&b.join("projects")), "{roots:?}");

        let given = roots_err(&[dir.path().join("missing")]);
        assert!(given.contains("missing"), "{given}");
    }

    fn roots_err(given: &[PathBuf]) -> String {
        format!("{:#}", roots(given, None).expect_err("an error"))
    }
}
