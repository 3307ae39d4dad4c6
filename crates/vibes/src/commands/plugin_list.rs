//! `vibes plugins`: every compiled-in plugin with its state, lag and errors.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use serde::Serialize;
use vibes_log::{LogError, Missing, TopicName};
use vibes_plugin::{PluginState, PluginStatus};

use crate::cli::PluginsArgs;
use crate::members;
use crate::output::{DataOut, Outcome};
use crate::plugins;
use crate::storage::Storage;

/// One plugin as `vibes plugins` shows it.
#[derive(Debug, Serialize)]
struct Row {
    name: String,
    about: String,
    state: PluginState,
    /// Input records not yet committed by its group, per partition.
    lag: std::collections::BTreeMap<u32, u64>,
    /// Records in its dead-letter topic.
    dead_letters: u64,
    /// Records in its output topics.
    outputs: u64,
    /// From the running `serve`s, when any runs (their statuses merged: counts summed,
    /// lag per partition from the member that reads it).
    #[serde(skip_serializing_if = "Option::is_none")]
    live: Option<PluginStatus>,
    /// How many `serve` processes run it (more than one only on Iggy).
    members: usize,
}

pub fn run(storage: &Storage, args: &PluginsArgs) -> Result<Outcome> {
    let published = members::running(&storage.config.data_dir);
    let runtime = plugins::runtime(storage);
    let mut rows = Vec::new();
    for (name, factory) in plugins::registry() {
        let manifest = factory().manifest();
        let input = runtime.input_of(&manifest);
        let statuses: Vec<&PluginStatus> = published
            .iter()
            .filter_map(|p| p.plugins.iter().find(|s| s.name == name))
            .collect();
        let members = statuses.len();
        let live = merge(&statuses);
        let lag = match &live {
            Some(status) => status.lag.clone(),
            None => stored_lag(storage, &input, &manifest.group())?,
        };
        let dead_letters = records_in(storage, &manifest.dead_letter_topic())?;
        let mut outputs = 0;
        for output in &manifest.outputs {
            outputs += records_in(storage, &manifest.output_topic(&output.topic))?;
        }
        rows.push(Row {
            name: name.to_owned(),
            about: manifest.about.clone(),
            state: live.as_ref().map_or(PluginState::Stopped, |s| s.state),
            lag,
            dead_letters,
            outputs,
            live,
            members,
        });
    }
    let mut out = DataOut::new(false);
    let text = if args.json {
        serde_json::to_string_pretty(&rows).context("encoding the plugins")?
    } else {
        render(&rows)
    };
    let _ = out.line(text.trim_end())?;
    let _ = out.flush()?;
    Ok(Outcome::Clean)
}

/// One status for the members running a plugin: the least advanced state (a failing
/// member shows), counts summed, each partition's lag and last offset from the member
/// reporting it, the first error.
fn merge(statuses: &[&PluginStatus]) -> Option<PluginStatus> {
    let (first, rest) = statuses.split_first()?;
    let mut merged = (*first).clone();
    let rank = |state: PluginState| match state {
        PluginState::Failed => 0,
        PluginState::Starting => 1,
        PluginState::Replaying => 2,
        PluginState::Live => 3,
        PluginState::Stopped => 4,
    };
    for status in rest {
        if rank(status.state) < rank(merged.state) {
            merged.state = status.state;
        }
        merged.processed += status.processed;
        merged.skipped += status.skipped;
        merged.outputs += status.outputs;
        merged.dead_letters += status.dead_letters;
        merged.restarts += status.restarts;
        merged.snapshots += status.snapshots;
        merged
            .last_offset
            .extend(status.last_offset.iter().map(|(p, o)| (*p, *o)));
        merged.lag.extend(status.lag.iter().map(|(p, l)| (*p, *l)));
        if merged.last_error.is_none() {
            merged.last_error.clone_from(&status.last_error);
        }
    }
    Some(merged)
}

fn render(rows: &[Row]) -> String {
    let mut s = String::new();
    for row in rows {
        let lag: u64 = row.lag.values().sum();
        let _ = writeln!(
            s,
            "{}  {}  lag {lag}  outputs {}  dead letters {}",
            row.name, row.state, row.outputs, row.dead_letters
        );
        let _ = writeln!(s, "  {}", row.about);
        if let Some(live) = &row.live {
            let members = if row.members > 1 {
                format!(" ({} serve processes)", row.members)
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "  processed {}, restarts {}{}{members}",
                live.processed,
                live.restarts,
                live.restored_from_snapshot
                    .map_or_else(String::new, |n| format!(
                        ", started from a snapshot of {n} events"
                    ))
            );
            if let Some(error) = &live.last_error {
                let _ = writeln!(s, "  last error: {error}");
            }
        }
    }
    s
}

/// Per partition, records of `topic` after `group`'s commit (all of them without one).
fn stored_lag(
    storage: &Storage,
    topic: &str,
    group: &str,
) -> Result<std::collections::BTreeMap<u32, u64>> {
    let name = TopicName::new(topic).with_context(|| format!("naming {topic}"))?;
    let info = match storage.block_on(storage.backend.topic_info(&name)) {
        Ok(info) => info,
        Err(LogError::NotFound {
            kind: Missing::Topic,
            ..
        }) => return Ok(Default::default()),
        Err(e) => return Err(e).with_context(|| format!("reading {topic}")),
    };
    let groups = storage
        .block_on(storage.backend.groups(&name))
        .with_context(|| format!("reading the groups of {topic}"))?;
    let committed = groups.into_iter().find(|g| g.group.as_str() == group);
    Ok(info
        .partitions
        .iter()
        .enumerate()
        .map(|(p, marks)| {
            let next = committed
                .as_ref()
                .and_then(|g| g.committed.get(p).copied().flatten())
                .unwrap_or(marks.low);
            (p as u32, marks.high.saturating_sub(next))
        })
        .collect())
}

/// Records held in `topic` (0 if it does not exist).
fn records_in(storage: &Storage, topic: &str) -> Result<u64> {
    let name = TopicName::new(topic).with_context(|| format!("naming {topic}"))?;
    match storage.block_on(storage.backend.topic_info(&name)) {
        Ok(info) => Ok(info.partitions.iter().map(|m| m.len()).sum()),
        Err(LogError::NotFound {
            kind: Missing::Topic,
            ..
        }) => Ok(0),
        Err(e) => Err(e).with_context(|| format!("reading {topic}")),
    }
}
