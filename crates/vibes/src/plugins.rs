//! The plugins compiled into the host, and the runtime they run on.

use std::sync::Arc;

use anyhow::{Result, bail};
use vibes_plugin::{Plugin, PluginFactory, Runtime, RuntimeOptions};

use crate::storage::Storage;
use crate::usage::PriceTable;
use crate::usage::coder_prices::CoderPrices;

/// Every plugin the host knows, by name, in the order `serve` starts them.
pub fn registry() -> Vec<(&'static str, PluginFactory)> {
    vec![
        (
            vibes_plugin_sessions::NAME,
            Arc::new(|| Box::new(vibes_plugin_sessions::Sessions::new()) as Box<dyn Plugin>),
        ),
        (
            vibes_plugin_usage::NAME,
            Arc::new(|| Box::new(vibes_plugin_usage::Usage::new()) as Box<dyn Plugin>),
        ),
        (
            vibes_plugin_groove::NAME,
            Arc::new(|| Box::new(vibes_plugin_groove::Groove::new()) as Box<dyn Plugin>),
        ),
        (
            vibes_plugin_ai_coder::NAME,
            Arc::new(|| Box::new(ai_coder()) as Box<dyn Plugin>),
        ),
    ]
}

/// The ai-coder plugin, pricing calls with the compiled-in price table. Always that
/// table (not a `usage.prices` override): `serve` and every command must price alike,
/// or each would discard the other's snapshots (they record the table they priced with).
pub fn ai_coder() -> vibes_plugin_ai_coder::AiCoder {
    let prices: Arc<dyn vibes_plugin_ai_coder::Prices> = match PriceTable::builtin() {
        Ok(table) => Arc::new(CoderPrices(table)),
        // A test keeps a broken built-in table from shipping; without it, tokens only.
        Err(_) => Arc::new(vibes_plugin_ai_coder::NoPrices),
    };
    vibes_plugin_ai_coder::AiCoder::with_prices(prices)
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
    Runtime::new(Arc::clone(&storage.backend), options(storage))
}

/// Records per poll of a one-off catch-up ([`Runtime::catch_up`]): it commits once per
/// poll, so larger polls mean fewer commits over a long backlog.
const CATCH_UP_POLL: usize = 16 * 1024;

/// The runtime of a one-off catch-up in a command: as [`runtime`], with larger polls.
pub fn catch_up_runtime(storage: &Storage) -> Runtime {
    let options = options(storage).poll(CATCH_UP_POLL, std::time::Duration::from_millis(250));
    Runtime::new(Arc::clone(&storage.backend), options)
}

fn options(storage: &Storage) -> RuntimeOptions {
    let config = &storage.config;
    let mut options = RuntimeOptions::new(config.topic.as_str())
        .input_partitions(config.partitions)
        .durability(config.log_durability());
    // Crash tests only: abort between storing a batch's outputs and committing it.
    options.abort_after_stores = std::env::var(FAULT_ABORT_AFTER_STORES)
        .ok()
        .and_then(|n| n.parse().ok());
    options
}

/// The environment variable of the crash tests' fault injection (see
/// [`RuntimeOptions::abort_after_stores`]).
pub const FAULT_ABORT_AFTER_STORES: &str = "VIBES_FAULT_ABORT_AFTER_STORES";
