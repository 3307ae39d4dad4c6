//! Driving a plugin in tests: [`run`] appends a list of events to an in-memory log,
//! runs the plugin under the real runtime until it has handled all of them, and returns
//! what it wrote and a way to query it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use vibes_events::Event;
use vibes_log::backend::LogBackend;
use vibes_log::{EventLog, InMemoryLog, TopicName};

use crate::error::{QueryError, RuntimeError};
use crate::plugin::{Manifest, Plugin, QueryArgs};
use crate::runtime::{Runtime, RuntimeOptions, SharedPlugin, Shutdown, query_plugin};
use crate::status::{PluginState, PluginStatus, StatusHandle};

/// The input topic of the harness.
pub const INPUT: &str = "vibes/events";

/// A log and a runtime for tests.
#[derive(Debug, Clone)]
pub struct Harness {
    log: InMemoryLog,
    runtime: Runtime,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

/// What one run of a plugin produced.
pub struct Outcome {
    plugin: SharedPlugin,
    manifest: Manifest,
    /// The plugin's status when the run ended.
    pub status: PluginStatus,
    /// Every event in each of the plugin's topics (by full topic name), dead letters
    /// included, in log order.
    pub outputs: BTreeMap<String, Vec<Event>>,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outcome")
            .field("status", &self.status)
            .field("outputs", &self.outputs)
            .finish_non_exhaustive()
    }
}

impl Outcome {
    /// The events of output topic `topic` (its name within the plugin's stream).
    pub fn topic(&self, topic: &str) -> &[Event] {
        self.outputs
            .get(&self.manifest.output_topic(topic))
            .map_or(&[], Vec::as_slice)
    }

    /// The dead letters.
    pub fn dead_letters(&self) -> &[Event] {
        self.topic("dead-letter")
    }

    /// Answers a query from the plugin's final state.
    pub fn query(&self, name: &str, args: &QueryArgs) -> Result<serde_json::Value, QueryError> {
        query_plugin(&**self.plugin.lock(), &self.manifest, name, args)
    }
}

impl Harness {
    /// An empty in-memory log.
    pub fn new() -> Self {
        let log = InMemoryLog::new();
        let backend: Arc<dyn LogBackend> = Arc::new(log.clone());
        let runtime = Runtime::new(
            backend,
            RuntimeOptions::new(INPUT)
                .poll(256, Duration::from_millis(20))
                .backoff(Duration::from_millis(10), Duration::from_millis(100)),
        );
        Harness { log, runtime }
    }

    /// The log.
    pub fn log(&self) -> &InMemoryLog {
        &self.log
    }

    /// The runtime over it.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Appends `events` to the input topic.
    pub async fn append(&self, events: &[Event]) {
        let log: EventLog<Event> = EventLog::open(Arc::new(self.log.clone()), INPUT)
            .await
            .expect("the harness opens its input topic");
        log.append_batch(events)
            .await
            .expect("the harness appends to memory");
    }

    /// Runs a fresh `plugin` until it has handled everything in the input, then shuts
    /// it down (committing) and returns its outputs. Call again with a fresh plugin to
    /// restart it on the same log.
    pub async fn run(&self, plugin: Box<dyn Plugin>) -> Result<Outcome, RuntimeError> {
        let shared: SharedPlugin = Arc::new(Mutex::new(plugin));
        let manifest = shared.lock().manifest();
        let status = StatusHandle::new(&manifest.name);
        let shutdown = Shutdown::new();
        let task = {
            let runtime = self.runtime.clone();
            let shared = Arc::clone(&shared);
            let status = status.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move { runtime.run(&shared, &status, &shutdown).await })
        };
        let ends = self.input_ends().await;
        loop {
            let now = status.get();
            // Each partition read to its end: its last offset is the end's, or (nothing
            // was read, as after restoring a snapshot that covers everything) its lag,
            // measured once its position is known, is 0.
            let caught_up = now.state == PluginState::Live
                && ends.iter().all(|(p, end)| {
                    *end == 0
                        || now.last_offset.get(p) == Some(&(end - 1))
                        || now.lag.get(p) == Some(&0)
                })
                && now.total_lag() == 0;
            if caught_up || task.is_finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        shutdown.trigger();
        task.await.expect("the plugin task does not panic")?;
        let mut outputs = BTreeMap::new();
        let stream = format!("{}/", manifest.stream);
        for topic in self
            .runtime
            .backend()
            .list_topics()
            .await
            .expect("memory lists topics")
        {
            if topic.as_str().starts_with(&stream) && topic.topic() != "snapshots" {
                outputs.insert(topic.to_string(), self.read_all(&topic).await);
            }
        }
        Ok(Outcome {
            plugin: shared,
            manifest,
            status: status.get(),
            outputs,
        })
    }

    async fn input_ends(&self) -> BTreeMap<u32, u64> {
        let topic = TopicName::new(INPUT).expect("valid");
        match self.runtime.backend().topic_info(&topic).await {
            Ok(info) => info
                .partitions
                .iter()
                .enumerate()
                .map(|(p, m)| (p as u32, m.high))
                .collect(),
            Err(_) => BTreeMap::new(),
        }
    }

    /// Every event of `topic`, all partitions, in order.
    pub async fn read_all(&self, topic: &TopicName) -> Vec<Event> {
        let backend = self.runtime.backend();
        let info = backend.topic_info(topic).await.expect("topic exists");
        let mut events = Vec::new();
        for (p, marks) in info.partitions.iter().enumerate() {
            let records = backend
                .read(topic, p as u32, marks.low, marks.len() as usize)
                .await
                .expect("memory reads");
            events.extend(
                records
                    .iter()
                    .map(|r| Event::from_json_slice(&r.payload).expect("outputs decode")),
            );
        }
        events
    }
}

/// Runs `plugin` over `events` on a fresh in-memory log.
pub async fn run(plugin: Box<dyn Plugin>, events: &[Event]) -> Result<Outcome, RuntimeError> {
    let harness = Harness::new();
    harness.append(events).await;
    harness.run(plugin).await
}
