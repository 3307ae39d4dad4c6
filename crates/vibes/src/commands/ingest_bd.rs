//! `vibes ingest bd PATH [--follow] [--replay]`: stores bead events from a bd issue
//! file, diffing each issue against its previous state.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use vibes_events::Event;
use vibes_sources::bd::{BdChange, BdSnapshot, BdWatchOptions, BdWatcher};

use super::write_state_file;
use crate::cli::IngestBdArgs;
use crate::output::{self, Outcome};
use crate::producer::Producer;
use crate::storage::Storage;

pub fn run(storage: &Storage, args: &IngestBdArgs) -> Result<Outcome> {
    let path = resolve(&args.path)?;
    let options = BdWatchOptions {
        debounce: storage.config.bd_debounce,
        poll_interval: storage.config.bd_poll_interval,
        replay: args.replay,
    };
    let mut watcher = BdWatcher::new(&path, options);
    let state = storage
        .state_dir()
        .map(|dir| StateFile::for_issues(&dir, &path));
    let previous = match &state {
        Some(state) if !args.replay => state.load()?,
        _ => None,
    };
    let producer = Producer::open(storage, None)?;
    let resumed = previous.is_some();
    let first = match previous {
        Some(previous) => watcher.resume(previous),
        None => watcher.baseline(),
    }
    .with_context(|| format!("reading {}", path.display()))?;
    let malformed = report_errors(&path, &first);
    let stored = store(storage, &producer, &first.events)?;
    if let Some(state) = &state {
        state.save(watcher.snapshot())?;
    }
    let issues = watcher.snapshot().len();
    let watching = if args.follow {
        "; watching for changes"
    } else {
        ""
    };
    if resumed {
        eprintln!(
            "{}: {}; stored {} for changes since the last run{watching}",
            path.display(),
            output::count(issues as u64, "issue"),
            output::count(stored as u64, "event")
        );
    } else if args.replay {
        eprintln!(
            "{}: {}; stored {} into {}{watching}",
            path.display(),
            output::count(issues as u64, "issue"),
            output::count(stored as u64, "event"),
            storage.describe()
        );
    } else {
        eprintln!(
            "{}: {} taken as the baseline{}",
            path.display(),
            output::count(issues as u64, "issue"),
            if args.follow {
                watching
            } else {
                "; nothing stored (the next run stores what changed; --replay stores every issue as bead.created)"
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
        let stored = store(storage, &producer, &change.events)?;
        if let Some(state) = &state {
            state.save(watcher.snapshot())?;
        }
        if stored > 0 {
            let kinds = change
                .events
                .iter()
                .map(|e| e.summary().to_string())
                .collect::<Vec<_>>();
            eprintln!(
                "stored {}: {}",
                output::count(stored as u64, "event"),
                kinds.join("; ")
            );
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

fn store(storage: &Storage, producer: &Producer<'_>, events: &[Event]) -> Result<usize> {
    if events.is_empty() {
        return Ok(0);
    }
    producer.append(events).context("storing bead events")?;
    storage.enforce_retention()?;
    Ok(events.len())
}

/// The issues as last stored, kept between runs in `<data_dir>/state/bd/`, so a run
/// stores what changed since the previous one. Saved after the events are stored: a
/// crash in between stores those changes again on the next run (at least once).
#[derive(Debug)]
struct StateFile {
    path: PathBuf,
}

impl StateFile {
    fn for_issues(state_dir: &Path, issues: &Path) -> StateFile {
        let absolute = std::path::absolute(issues).unwrap_or_else(|_| issues.to_owned());
        let key = xxhash_rust::xxh3::xxh3_64(absolute.as_os_str().as_encoded_bytes());
        StateFile {
            path: state_dir.join("bd").join(format!("{key:016x}.jsonl")),
        }
    }

    fn load(&self) -> Result<Option<BdSnapshot>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                let (snapshot, errors) = BdSnapshot::parse(&bytes);
                if !errors.is_empty() {
                    tracing::warn!(
                        state = %self.path.display(),
                        "{} unreadable lines in the saved bd state; those issues count as new",
                        errors.len()
                    );
                }
                Ok(Some(snapshot))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => {
                Err(anyhow::Error::new(e).context(format!("reading {}", self.path.display())))
            }
        }
    }

    fn save(&self, snapshot: &BdSnapshot) -> Result<()> {
        write_state_file(&self.path, &snapshot.to_jsonl())
    }
}
