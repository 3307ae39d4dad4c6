//! `vibes ingest bd PATH [--follow] [--replay]`: stores bead events from a bd issue
//! file, diffing each issue against its previous state.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use vibes_events::Event;
use vibes_log::EventLog;
use vibes_sources::bd::{BdChange, BdWatchOptions, BdWatcher};

use crate::cli::IngestBdArgs;
use crate::output::Outcome;
use crate::storage::Storage;

pub(crate) fn run(storage: &Storage, args: &IngestBdArgs) -> Result<Outcome> {
    let path = resolve(&args.path)?;
    let options = BdWatchOptions {
        debounce: storage.config.bd_debounce,
        poll_interval: storage.config.bd_poll_interval,
        replay: args.replay,
    };
    let mut watcher = BdWatcher::new(&path, options);
    let log = storage.events()?;
    let baseline = watcher
        .baseline()
        .with_context(|| format!("reading {}", path.display()))?;
    let malformed = report_errors(&path, &baseline);
    let stored = store(storage, &log, &baseline.events)?;
    let issues = watcher.snapshot().len();
    if args.replay {
        eprintln!(
            "{}: {issues} issues; stored {stored} events into {}",
            path.display(),
            storage.describe()
        );
    } else {
        eprintln!(
            "{}: {issues} issues taken as the baseline{}",
            path.display(),
            if args.follow {
                "; watching for changes"
            } else {
                "; nothing stored (use --replay to store them as bead.created, --follow to store changes)"
            }
        );
    }
    if !args.follow {
        return Ok(Outcome::partial_if(malformed));
    }
    loop {
        let change = watcher
            .next_change(Duration::from_secs(3600))
            .with_context(|| format!("watching {}", path.display()))?;
        let Some(change) = change else { continue };
        report_errors(&path, &change);
        let stored = store(storage, &log, &change.events)?;
        if stored > 0 {
            let kinds = change
                .events
                .iter()
                .map(|e| e.summary().to_string())
                .collect::<Vec<_>>();
            eprintln!("stored {stored} events: {}", kinds.join("; "));
        }
    }
}

/// The issue file for `path`: the file itself, `<dir>/issues.jsonl`, or
/// `<dir>/.beads/issues.jsonl`.
fn resolve(path: &Path) -> Result<PathBuf> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot open {}", path.display()))?;
    if !meta.is_dir() {
        return Ok(path.to_owned());
    }
    for candidate in [
        path.join("issues.jsonl"),
        path.join(".beads").join("issues.jsonl"),
    ] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "no bd issue file in {}: looked for issues.jsonl and .beads/issues.jsonl",
        path.display()
    )
}

fn report_errors(path: &Path, change: &BdChange) -> bool {
    for error in &change.errors {
        eprintln!(
            "{}:{}: skipped: {}",
            path.display(),
            error.line,
            error.reason
        );
    }
    !change.errors.is_empty()
}

fn store(storage: &Storage, log: &EventLog<Event>, events: &[Event]) -> Result<usize> {
    if events.is_empty() {
        return Ok(0);
    }
    storage
        .block_on(log.append_batch(events))
        .context("storing bead events")?;
    storage.enforce_retention()?;
    Ok(events.len())
}
