//! The runtime: runs a plugin on a log as a consumer group, keeps it running, and
//! rebuilds a plugin's state in-process for a one-off query.

mod adopt;
mod catch_up;
mod decode;
mod dedup;
mod follow;
mod rebuild;
mod run;
mod snapshot;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vibes_events::Event;
use vibes_log::backend::LogBackend;
use vibes_log::{Durability, EventLog, JsonCodec, LogError, Missing, TopicConfig, TopicName};

use crate::error::{QueryError, RuntimeError};
use crate::plugin::{Manifest, Plugin, QueryArgs};
use crate::status::{PluginState, PluginStatus, StatusHandle};

pub use adopt::Folded;
pub use follow::{Followed, Follower};
pub use rebuild::{Progress, Rebuilt};

/// Makes a fresh plugin: the runtime starts each run (and each restart) from one.
pub type PluginFactory = Arc<dyn Fn() -> Box<dyn Plugin> + Send + Sync>;

/// A plugin shared between its runtime and whoever queries it.
pub type SharedPlugin = Arc<Mutex<Box<dyn Plugin>>>;

/// How the runtime runs plugins.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RuntimeOptions {
    /// The topic a plugin reads when its manifest names none.
    pub default_input: String,
    /// Partitions of the input topic if the runtime has to create it.
    pub input_partitions: u32,
    /// Records per poll.
    pub poll_max: usize,
    /// How long a poll waits for records before the runtime checks for shutdown.
    pub poll_timeout: Duration,
    /// Durability of output, dead-letter and snapshot appends (`None`: the backend's).
    pub durability: Option<Durability>,
    /// First restart delay after a failure; it doubles up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest restart delay.
    pub max_backoff: Duration,
    /// Fault injection for crash tests: abort the process right after the outputs of
    /// this many batches of new (not replayed) input are stored, before their commit. Never set it otherwise.
    #[doc(hidden)]
    pub abort_after_stores: Option<u64>,
}

impl RuntimeOptions {
    /// Options for plugins whose default input is `topic`.
    pub fn new(default_input: impl Into<String>) -> Self {
        RuntimeOptions {
            default_input: default_input.into(),
            input_partitions: 1,
            poll_max: 1024,
            poll_timeout: Duration::from_millis(250),
            durability: None,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            abort_after_stores: None,
        }
    }

    /// Creating a missing input topic with `n` partitions.
    #[must_use]
    pub fn input_partitions(mut self, n: u32) -> Self {
        self.input_partitions = n;
        self
    }

    /// Appending outputs with `durability`.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = Some(durability);
        self
    }

    /// Restart delays from `min` doubling to `max`.
    #[must_use]
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min;
        self.max_backoff = max;
        self
    }

    /// Polls of up to `max` records, waiting up to `timeout`.
    #[must_use]
    pub fn poll(mut self, max: usize, timeout: Duration) -> Self {
        self.poll_max = max.max(1);
        self.poll_timeout = timeout;
        self
    }
}

/// Runs plugins on one log backend.
#[derive(Clone)]
pub struct Runtime {
    backend: Arc<dyn LogBackend>,
    options: RuntimeOptions,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("backend", &self.backend.kind())
            .field("options", &self.options)
            .finish()
    }
}

/// Asks running plugins to stop: each finishes the batch in hand, commits it and ends.
#[derive(Debug, Clone)]
pub struct Shutdown(Arc<watch::Sender<bool>>);

impl Shutdown {
    /// A trigger nobody has pulled yet.
    pub fn new() -> Self {
        Shutdown(Arc::new(watch::channel(false).0))
    }

    /// Asks every plugin started with this trigger to stop.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    fn subscribe(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

/// A plugin running under [`Runtime::spawn`].
pub struct RunningPlugin {
    manifest: Manifest,
    status: StatusHandle,
    plugin: Arc<Mutex<SharedPlugin>>,
    task: JoinHandle<()>,
}

impl fmt::Debug for RunningPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningPlugin")
            .field("name", &self.manifest.name)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl RunningPlugin {
    /// Its manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Its status now.
    pub fn status(&self) -> PluginStatus {
        self.status.get()
    }

    /// The handle its status is read through.
    pub fn status_handle(&self) -> &StatusHandle {
        &self.status
    }

    /// Answers a query from the state it has now.
    pub fn query(&self, name: &str, args: &QueryArgs) -> Result<serde_json::Value, QueryError> {
        self.handle().query(name, args)
    }

    /// A cheap, cloneable handle on its manifest, status and queries, for readers that
    /// outlive a borrow of it (the HTTP API of `vibes serve`).
    pub fn handle(&self) -> PluginHandle {
        PluginHandle {
            manifest: Arc::new(self.manifest.clone()),
            status: self.status.clone(),
            plugin: Arc::clone(&self.plugin),
        }
    }

    /// Waits until it has stopped (after [`Shutdown::trigger`]).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// The readable side of a [`RunningPlugin`]: its manifest, its status and its queries,
/// answered from the state the running plugin has now (after a restart, from the new
/// instance's).
#[derive(Clone)]
pub struct PluginHandle {
    manifest: Arc<Manifest>,
    status: StatusHandle,
    plugin: Arc<Mutex<SharedPlugin>>,
}

impl fmt::Debug for PluginHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginHandle")
            .field("name", &self.manifest.name)
            .finish_non_exhaustive()
    }
}

impl PluginHandle {
    /// Its manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Its status now.
    pub fn status(&self) -> PluginStatus {
        self.status.get()
    }

    /// Answers a query from the state it has now.
    pub fn query(&self, name: &str, args: &QueryArgs) -> Result<serde_json::Value, QueryError> {
        let plugin = Arc::clone(&self.plugin.lock());
        let plugin = plugin.lock();
        query_plugin(&**plugin, &self.manifest, name, args)
    }
}

/// Checks that `manifest` declares `name`, then asks `plugin`.
pub(crate) fn query_plugin(
    plugin: &dyn Plugin,
    manifest: &Manifest,
    name: &str,
    args: &QueryArgs,
) -> Result<serde_json::Value, QueryError> {
    if manifest.find_query(name).is_none() {
        return Err(QueryError::UnknownQuery {
            plugin: manifest.name.clone(),
            query: name.to_owned(),
            known: manifest
                .queries
                .iter()
                .map(|q| q.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    plugin.query(name, args)
}

impl Runtime {
    /// A runtime over `backend`.
    pub fn new(backend: Arc<dyn LogBackend>, options: RuntimeOptions) -> Self {
        Runtime { backend, options }
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn LogBackend> {
        &self.backend
    }

    /// Its options.
    pub fn options(&self) -> &RuntimeOptions {
        &self.options
    }

    /// The options of its appends (outputs, dead letters, snapshots).
    pub(crate) fn append_options(&self) -> vibes_log::AppendOptions {
        self.options
            .durability
            .map(vibes_log::AppendOptions::durability)
            .unwrap_or_default()
    }

    /// The topic a plugin with `manifest` reads.
    pub fn input_of(&self, manifest: &Manifest) -> String {
        if manifest.input.is_empty() {
            self.options.default_input.clone()
        } else {
            manifest.input.clone()
        }
    }

    /// Runs a plugin on the current tokio runtime until `shutdown` is triggered,
    /// restarting it from a fresh instance (and so rebuilding its state) after each
    /// failure, with a delay that doubles up to the options' maximum and resets once a
    /// run has reached the live state.
    ///
    /// Errors: the manifest is invalid.
    pub fn spawn(
        &self,
        factory: PluginFactory,
        shutdown: &Shutdown,
    ) -> Result<RunningPlugin, RuntimeError> {
        let first = factory();
        let manifest = first.manifest();
        manifest.check()?;
        let status = StatusHandle::new(&manifest.name);
        let plugin: Arc<Mutex<SharedPlugin>> = Arc::new(Mutex::new(Arc::new(Mutex::new(first))));
        let task = tokio::spawn(supervise(
            self.clone(),
            factory,
            Arc::clone(&plugin),
            status.clone(),
            shutdown.subscribe(),
        ));
        Ok(RunningPlugin {
            manifest,
            status,
            plugin,
            task,
        })
    }

    /// One run of `plugin` until `shutdown` is triggered or the log fails: what
    /// [`spawn`](Self::spawn) supervises. The plugin must be fresh (its state is
    /// rebuilt from the log).
    pub async fn run(
        &self,
        plugin: &SharedPlugin,
        status: &StatusHandle,
        shutdown: &Shutdown,
    ) -> Result<(), RuntimeError> {
        let mut stop = shutdown.subscribe();
        run::run_once(self, &**plugin, status, run::Until::Shutdown(&mut stop)).await
    }

    /// Opens `topic` as an event log with the partition count it has, creating it with
    /// `partitions` if it does not exist.
    pub(crate) async fn open_log(
        &self,
        plugin: &str,
        topic: &str,
        partitions: u32,
    ) -> Result<EventLog<Event>, RuntimeError> {
        let name = TopicName::new(topic)
            .map_err(|e| RuntimeError::log(plugin, format!("naming {topic}"), e))?;
        let partitions = match self.backend.topic_info(&name).await {
            Ok(info) => info.partitions.len() as u32,
            Err(LogError::NotFound {
                kind: Missing::Topic,
                ..
            }) => partitions,
            Err(e) => return Err(RuntimeError::log(plugin, format!("opening {topic}"), e)),
        };
        EventLog::open_with(
            Arc::clone(&self.backend),
            topic,
            TopicConfig::partitions(partitions),
            JsonCodec,
        )
        .await
        .map_err(|e| RuntimeError::log(plugin, format!("opening {topic}"), e))
    }
}

async fn supervise(
    runtime: Runtime,
    factory: PluginFactory,
    slot: Arc<Mutex<SharedPlugin>>,
    status: StatusHandle,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = runtime.options.min_backoff;
    let mut first = true;
    loop {
        let plugin = if first {
            Arc::clone(&slot.lock())
        } else {
            let fresh: SharedPlugin = Arc::new(Mutex::new(factory()));
            *slot.lock() = Arc::clone(&fresh);
            fresh
        };
        first = false;
        let result =
            run::run_once(&runtime, &*plugin, &status, run::Until::Shutdown(&mut stop)).await;
        let reached_live = status.get().state == PluginState::Live;
        match result {
            Ok(()) => {
                status.update(|s| s.state = PluginState::Stopped);
                return;
            }
            Err(error) => {
                if reached_live {
                    backoff = runtime.options.min_backoff;
                }
                status.update(|s| {
                    s.state = PluginState::Failed;
                    s.last_error = Some(error.to_string());
                    s.restarts += 1;
                });
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|stop| *stop) => {
                status.update(|s| s.state = PluginState::Stopped);
                return;
            }
        }
        backoff = (backoff * 2).min(runtime.options.max_backoff);
    }
}
