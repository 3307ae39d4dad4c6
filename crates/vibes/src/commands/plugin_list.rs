//! `vibes plugins`: every compiled-in plugin with its state, lag and errors.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use serde::Serialize;
use vibes_log::{LogError, TopicName};
use vibes_plugin::{PluginState, PluginStatus};

use super::serve::{Published, serving};
use crate::cli::PluginsArgs;
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
    /// From the running `serve`, when one runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    live: Option<PluginStatus>,
}

pub fn run(storage: &Storage, args: &PluginsArgs) -> Result<Outcome> {
    let published: Option<Published> = if serving(&storage.config.data_dir) {
        std::fs::read(plugins::status_file(storage))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
    } else {
        None
    };
    let runtime = plugins::runtime(storage);
    let mut rows = Vec::new();
    for (name, factory) in plugins::registry() {
        let manifest = factory().manifest();
        let input = runtime.input_of(&manifest);
        let live = published
            .as_ref()
            .and_then(|p| p.plugins.iter().find(|s| s.name == name).cloned());
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
            let _ = writeln!(
                s,
                "  processed {}, restarts {}{}",
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
        Err(LogError::NotFound { .. }) => return Ok(Default::default()),
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
        Err(LogError::NotFound { .. }) => Ok(0),
        Err(e) => Err(e).with_context(|| format!("reading {topic}")),
    }
}
