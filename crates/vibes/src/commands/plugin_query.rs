//! `vibes plugin NAME QUERY [ARGS]`: answers a plugin's query from the stored log,
//! rebuilding the plugin's state in this process.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use vibes_plugin::{Plugin, Progress, QueryArgs};

use super::serve;
use crate::cli::{GlobalArgs, PluginArgs};
use crate::config::BackendKind;
use crate::output::{self, DataOut, Outcome};
use crate::plugins;
use crate::storage::Storage;

/// A progress bar appears once a rebuild has taken this long.
const SHOW_PROGRESS_AFTER: Duration = Duration::from_secs(1);

pub fn run(storage: &Storage, args: &PluginArgs, global: &GlobalArgs) -> Result<Outcome> {
    let mut plugin = plugins::instance(&args.name)?;
    let manifest = plugin.manifest();
    let Some(spec) = manifest.find_query(&args.query) else {
        anyhow::bail!(
            "plugin {} has no query {:?}; it answers: {}",
            manifest.name,
            args.query,
            manifest
                .queries
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let query_args = QueryArgs::parse(spec, &args.args)?;
    let loaded = load(storage, &mut *plugin, global)?;
    let answer = plugin
        .query(&args.query, &query_args)
        .with_context(|| format!("plugin {} query {}", manifest.name, args.query))?;
    let text = if args.json {
        serde_json::to_string(&answer)
    } else {
        serde_json::to_string_pretty(&answer)
    }
    .context("encoding the answer")?;
    let mut out = DataOut::new(false);
    let _ = out.line(&text)?;
    let _ = out.flush()?;
    Ok(Outcome::partial_if(loaded.skipped > 0))
}

/// What bringing a plugin up to date with the log skipped: records that do not decode
/// or that the plugin refused (reported on stderr).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Records skipped.
    pub skipped: u64,
}

/// Brings `plugin` (fresh) to the state of the log as it is now, with a progress bar
/// on a terminal once that takes over a second.
///
/// When no `serve` holds the data directory (file backend), this process takes its
/// serve lock and catches the plugin's group up exactly as `serve` would: outputs
/// stored, group committed, and a snapshot saved at the end, so the next command
/// starts from there. Otherwise (a `serve` runs, or the backend is Iggy, where other
/// members may run) it rebuilds the state read-only from the newest snapshot, which a
/// running `serve` keeps fresh by saving one when it goes idle.
pub fn load(
    storage: &Storage,
    plugin: &mut (dyn Plugin + 'static),
    global: &GlobalArgs,
) -> Result<Loaded> {
    let name = plugin.manifest().name;
    let lock = match storage.config.backend {
        BackendKind::File => serve::try_lock_serve(&storage.config.data_dir)?,
        BackendKind::Iggy | BackendKind::Memory => None,
    };
    let Some(_lock) = lock else {
        let runtime = plugins::runtime(storage);
        let mut bar = ReadBar::new(&format!("rebuilding {name}"), global);
        let rebuilt = storage
            .block_on(runtime.rebuild(plugin, |progress| bar.update(progress)))
            .with_context(|| format!("rebuilding plugin {name} from the log"))?;
        bar.finish();
        for failure in &rebuilt.undecodable {
            eprintln!("warning: skipped a record that does not decode: {failure}");
        }
        for (address, error) in &rebuilt.refused {
            tracing::warn!(plugin = %name, %address, %error, "the plugin could not handle a record");
        }
        let skipped = rebuilt.undecodable.len() + rebuilt.refused.len();
        return Ok(Loaded {
            skipped: skipped as u64,
        });
    };
    let runtime = plugins::catch_up_runtime(storage);
    let mut bar = ReadBar::new(&format!("catching {name} up"), global);
    let status = storage
        .block_on(runtime.catch_up(plugin, |progress| bar.update(progress)))
        .with_context(|| format!("catching plugin {name} up with the log"))?;
    bar.finish();
    tracing::debug!(
        plugin = %name,
        read = status.processed,
        from_snapshot = ?status.restored_from_snapshot,
        snapshots = status.snapshots,
        "caught up"
    );
    if status.dead_letters > 0 {
        eprintln!(
            "warning: {} records could not be handled and were sent to {} (last: {})",
            status.dead_letters,
            plugin.manifest().dead_letter_topic(),
            status.last_error.as_deref().unwrap_or("-")
        );
    }
    Ok(Loaded {
        skipped: status.dead_letters,
    })
}

/// A progress bar over the records a plugin reads in-process, shown on a terminal once
/// the reading has taken over a second.
#[derive(Debug)]
pub struct ReadBar {
    what: String,
    show: bool,
    started: Instant,
    bar: Option<ProgressBar>,
}

impl ReadBar {
    /// A bar for `what` (`rebuilding sessions`), unless stderr is no terminal or
    /// `--quiet` was given.
    pub fn new(what: &str, global: &GlobalArgs) -> Self {
        ReadBar {
            what: what.to_owned(),
            show: output::stderr_is_terminal() && !global.quiet,
            started: Instant::now(),
            bar: None,
        }
    }

    /// Shows `progress`.
    pub fn update(&mut self, progress: Progress) {
        if !self.show || self.started.elapsed() < SHOW_PROGRESS_AFTER {
            return;
        }
        let what = &self.what;
        let bar = self.bar.get_or_insert_with(|| {
            let bar =
                ProgressBar::with_draw_target(Some(progress.total), ProgressDrawTarget::stderr());
            if let Ok(style) =
                ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} records, eta {eta}")
            {
                bar.set_style(style);
            }
            bar.set_message(what.clone());
            bar
        });
        bar.set_position(progress.read);
    }

    /// Clears the bar.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
