//! The plugins compiled into the host, and the runtime they run on.

use std::sync::Arc;

use anyhow::{Result, bail};
use vibes_plugin::{Plugin, PluginFactory, Runtime, RuntimeOptions};

use crate::storage::Storage;

/// Every plugin the host knows, by name, in the order `serve` starts them.
pub fn registry() -> Vec<(&'static str, PluginFactory)> {
    vec![(
        vibes_plugin_sessions::NAME,
        Arc::new(|| Box::new(vibes_plugin_sessions::Sessions::new()) as Box<dyn Plugin>),
    )]
}

/// The names of every compiled-in plugin, comma-separated.
pub fn known() -> String {
    registry()
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The factory of plugin `name`, or an error listing the known ones.
pub fn factory(name: &str) -> Result<PluginFactory> {
    match registry().into_iter().find(|(n, _)| *n == name) {
        Some((_, factory)) => Ok(factory),
        None => bail!("no plugin {name:?}; this vibes has: {}", known()),
    }
}

/// A fresh instance of plugin `name`.
pub fn instance(name: &str) -> Result<Box<dyn Plugin>> {
    Ok(factory(name)?())
}

/// The runtime over the storage's backend, reading the configured event topic and
/// storing with the configured durability.
pub fn runtime(storage: &Storage) -> Runtime {
    let config = &storage.config;
    let mut options = RuntimeOptions::new(config.topic.as_str())
        .input_partitions(config.partitions)
        .durability(config.log_durability());
    // Crash tests only: abort between storing a batch's outputs and committing it.
    options.abort_after_stores = std::env::var(FAULT_ABORT_AFTER_STORES)
        .ok()
        .and_then(|n| n.parse().ok());
    Runtime::new(Arc::clone(&storage.backend), options)
}

/// The environment variable of the crash tests' fault injection (see
/// [`RuntimeOptions::abort_after_stores`]).
pub const FAULT_ABORT_AFTER_STORES: &str = "VIBES_FAULT_ABORT_AFTER_STORES";
