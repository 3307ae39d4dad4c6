//! `vibes plugin NAME QUERY [ARGS]`: answers a plugin's query from the stored log,
//! rebuilding the plugin's state in this process.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use vibes_plugin::{Plugin, Progress, QueryArgs, Rebuilt};

use crate::cli::{GlobalArgs, PluginArgs};
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
    let rebuilt = rebuild(storage, &mut *plugin, global)?;
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
    Ok(Outcome::partial_if(!rebuilt.undecodable.is_empty()))
}

/// Rebuilds `plugin` from the stored log (from its newest snapshot on), with a progress
/// bar on a terminal once that takes over a second. Records that do not decode are
/// reported on stderr.
pub fn rebuild(storage: &Storage, plugin: &mut dyn Plugin, global: &GlobalArgs) -> Result<Rebuilt> {
    let name = plugin.manifest().name;
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
    Ok(rebuilt)
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
