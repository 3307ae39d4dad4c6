//! The Apache Iggy backend: every store is a fresh iggy-server that `IggyManager` runs
//! on loopback (free ports) with its data in the workload's temporary directory, and
//! an `IggyLog` connected to it, driven through [`VibesStore`] like every vibes log.
//!
//! `iggy-fsync`: the server fsyncs (`IggyConfig { fsync: true, .. }`) and appends are
//! acknowledged with `Durability::Always`, after `IggyLog` has asked the server to
//! flush and fsync the partition. `iggy-nofsync`: `fsync: false` and `Durability::Never`,
//! acknowledged once the server holds the messages in memory.
//!
//! The server binary is found as vibes finds it (`iggy.server_bin`, `IGGY_SERVER_BIN`,
//! `iggy-server` on `PATH`); without one the suite skips the Iggy backends and says
//! why ([`server_missing`]).

use std::path::Path;
use std::sync::Arc;

use tokio::runtime::Runtime;
use vibes_iggy::{IggyConfig, IggyLog, IggyLogOptions, IggyManager};
use vibes_log::Durability;
use vibes_supervisor::StopOutcome;

use super::store::VibesStore;
use crate::Result;

/// The configuration of a benchmark server: the defaults (one shard, a 512 MiB pool
/// cap, loopback on port 0) with its data under `dir`.
fn config(dir: &Path, fsync: bool) -> IggyConfig {
    IggyConfig {
        data_dir: Some(dir.join("iggy")),
        fsync,
        ..IggyConfig::default()
    }
}

/// Why the Iggy backends cannot run here (no iggy-server binary, and how to get one),
/// or `None` if they can.
pub(crate) fn server_missing() -> Option<String> {
    IggyConfig::default()
        .resolve_server_bin()
        .err()
        .map(|e| e.to_string())
}

/// Starts the benchmark server of `iggy-fsync` (`fsync`) or `iggy-nofsync` in `dir`.
pub(crate) fn start(dir: &Path, fsync: bool, runtime: &Arc<Runtime>) -> Result<ManagedIggy> {
    let manager = runtime.block_on(IggyManager::start(&config(dir, fsync)))?;
    Ok(ManagedIggy {
        runtime: Arc::clone(runtime),
        manager: Some(manager),
        log: None,
    })
}

/// Starts a server in `dir` and opens the bench topic on it.
pub(crate) fn open(dir: &Path, fsync: bool, runtime: &Arc<Runtime>) -> Result<VibesStore> {
    let durability = if fsync {
        Durability::Always
    } else {
        Durability::Never
    };
    let options = IggyLogOptions::default().durability(durability);
    let mut server = start(dir, fsync, runtime)?;
    let log = runtime.block_on(IggyLog::connect(server.connection()?, options))?;
    server.log = Some(log.clone());
    // On an error the server is stopped when `server` is dropped.
    VibesStore::open(Arc::new(log), runtime).map(|store| store.served_by(server))
}

/// A managed iggy-server and the log connected to it. [`close`](Self::close) (or
/// dropping it) closes the log's connection and stops the server with SIGTERM,
/// waiting until it has exited.
pub(crate) struct ManagedIggy {
    runtime: Arc<Runtime>,
    manager: Option<IggyManager>,
    /// A handle to the store's log, to close its connection (the SDK client has no
    /// `Drop`, and the store is dropped outside the runtime).
    log: Option<IggyLog>,
}

impl ManagedIggy {
    /// How to reach the server while it runs.
    pub(crate) fn connection(&self) -> Result<vibes_iggy::Connection> {
        let manager = self.manager.as_ref().ok_or("the server was stopped")?;
        Ok(manager.connection())
    }

    /// Closes the connection and stops the server; an error if it did not exit on
    /// SIGTERM within its grace period.
    pub(crate) fn close(&mut self) -> Result<()> {
        let (log, manager) = (self.log.take(), self.manager.take());
        self.runtime.block_on(async {
            if let Some(log) = log {
                log.shutdown().await;
            }
            let Some(manager) = manager else {
                return Ok(());
            };
            match manager.stop().await? {
                StopOutcome::Exited(_) => Ok(()),
                StopOutcome::Killed(_) => {
                    Err("iggy-server did not exit on SIGTERM in time and was killed".into())
                }
                StopOutcome::NotRunning => {
                    Err("iggy-server was not running when it was stopped (it crashed)".into())
                }
                other => Err(format!("iggy-server stopped unexpectedly: {other:?}").into()),
            }
        })
    }
}

impl Drop for ManagedIggy {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            eprintln!("vibes-bench: stopping iggy-server: {e}");
        }
    }
}
