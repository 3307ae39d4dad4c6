//! What the MCP tools answer from: the open storage and the plugins' states, each
//! kept between requests and brought up to date again only when the event topic has
//! grown since (its high-water marks differ), with [`plugin_query::load`] as every
//! command does.

use anyhow::Result;
use vibes_events::Event;
use vibes_log::{EventLog, Offset};
use vibes_plugin::Plugin;
use vibes_plugin_groove::Groove;
use vibes_plugin_sessions::Sessions;
use vibes_plugin_usage::Usage;

use crate::cli::{ColorChoice, GlobalArgs};
use crate::commands::plugin_query;
use crate::storage::Storage;

/// The storage and the plugin states the tools read.
#[derive(Debug)]
pub struct Engine {
    pub(crate) storage: Storage,
    pub(crate) global: GlobalArgs,
    sessions: Cached<Sessions>,
    groove: Cached<Groove>,
    usage: Cached<Usage>,
    /// Plugin loads done (a cached state reused is not one).
    pub(crate) loads: u64,
}

/// A plugin's state and the event topic's high-water marks it was brought up to.
#[derive(Debug)]
struct Cached<P> {
    plugin: Option<P>,
    marks: Vec<Offset>,
}

impl<P> Default for Cached<P> {
    fn default() -> Self {
        Cached {
            plugin: None,
            marks: Vec::new(),
        }
    }
}

impl Engine {
    /// An engine over `storage`; no plugin is loaded until a tool needs it.
    pub fn new(storage: Storage) -> Self {
        Engine {
            storage,
            // Only `quiet` matters to what the tools call: no progress bars.
            global: GlobalArgs {
                config: None,
                data_dir: None,
                backend: None,
                verbose: 0,
                quiet: true,
                color: ColorChoice::Never,
            },
            sessions: Cached::default(),
            groove: Cached::default(),
            usage: Cached::default(),
            loads: 0,
        }
    }

    /// The event topic, `None` when nothing was stored yet.
    pub fn events(&self) -> Result<Option<EventLog<Event>>> {
        self.storage.existing_events()
    }

    /// The sessions plugin, up to date with the log.
    pub fn sessions(&mut self) -> Result<&Sessions> {
        let marks = self.marks()?;
        fresh(
            &self.storage,
            &self.global,
            &mut self.sessions,
            marks,
            &mut self.loads,
            Sessions::new,
        )
    }

    /// The groove plugin, up to date with the log.
    pub fn groove(&mut self) -> Result<&Groove> {
        let marks = self.marks()?;
        fresh(
            &self.storage,
            &self.global,
            &mut self.groove,
            marks,
            &mut self.loads,
            Groove::new,
        )
    }

    /// The usage plugin, up to date with the log.
    pub fn usage(&mut self) -> Result<&Usage> {
        let marks = self.marks()?;
        fresh(
            &self.storage,
            &self.global,
            &mut self.usage,
            marks,
            &mut self.loads,
            Usage::new,
        )
    }

    /// Closes the storage (see [`Storage::close`]).
    pub fn close(self) {
        self.storage.close();
    }

    /// The high-water mark of every partition of the event topic (none when it does
    /// not exist).
    fn marks(&self) -> Result<Vec<Offset>> {
        let Some(log) = self.events()? else {
            return Ok(Vec::new());
        };
        (0..log.partitions())
            .map(|p| Ok(self.storage.block_on(log.watermarks(p))?.high))
            .collect()
    }
}

/// The cached state when the log has not grown since it was loaded, else a fresh one
/// loaded now.
fn fresh<'a, P: Plugin + 'static>(
    storage: &Storage,
    global: &GlobalArgs,
    cached: &'a mut Cached<P>,
    marks: Vec<Offset>,
    loads: &mut u64,
    new: fn() -> P,
) -> Result<&'a P> {
    if cached.plugin.is_none() || cached.marks != marks {
        let mut plugin = new();
        plugin_query::load(storage, &mut plugin, global)?;
        *loads += 1;
        cached.marks = marks;
        cached.plugin = Some(plugin);
    }
    cached
        .plugin
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("plugin state missing after a load"))
}
