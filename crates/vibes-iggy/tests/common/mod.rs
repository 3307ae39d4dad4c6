//! A real iggy-server for tests, run by `IggyManager` from `IGGY_SERVER_BIN` (or
//! `iggy-server` on PATH) in a temp dir on free ports, stopped with SIGTERM.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use rustix::process::{Pid, Signal};
use tempfile::TempDir;
use vibes_iggy::config::ServerBinary;
use vibes_iggy::{Connection, IggyConfig, IggyManager};
use vibes_supervisor::State;

pub struct TestServer {
    manager: Option<IggyManager>,
    pub config: IggyConfig,
    pub dir: TempDir,
}

impl TestServer {
    /// Starts a managed server in a new temp dir; returns once it is ready.
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let ServerBinary { path, .. } = IggyConfig::default()
            .resolve_server_bin()
            .unwrap_or_else(|e| panic!("these tests need an iggy-server: {e}"));
        let config = IggyConfig {
            server_bin: Some(path),
            data_dir: Some(dir.path().to_owned()),
            ..IggyConfig::default()
        };
        let manager = IggyManager::start(&config)
            .await
            .expect("start iggy-server");
        TestServer {
            manager: Some(manager),
            config,
            dir,
        }
    }

    fn manager(&self) -> &IggyManager {
        self.manager.as_ref().expect("running")
    }

    /// Root credentials and the TCP address.
    pub fn connection(&self) -> Connection {
        self.manager().connection()
    }

    /// Kills the server with SIGKILL, as a crash would; its supervisor starts it again
    /// on the same ports. Returns once it runs again.
    pub async fn kill_9_and_wait_for_restart(&self) {
        let manager = self.manager();
        let old = manager.pid().expect("a running server");
        let mut states = manager.subscribe();
        rustix::process::kill_process(Pid::from_raw(old as i32).expect("pid"), Signal::KILL)
            .expect("kill -9");
        tokio::time::timeout(
            Duration::from_secs(60),
            states.wait_for(|s| matches!(s, State::Running { pid } if *pid != old)),
        )
        .await
        .expect("restarted within a minute")
        .expect("the manager is alive");
    }

    /// Stops the server with SIGTERM, keeping its data for [`start_again`](Self::start_again).
    pub async fn stop_for_now(&mut self) {
        if let Some(manager) = self.manager.take() {
            manager.stop().await.expect("graceful stop");
        }
    }

    /// Starts the server again on the same data (on new free ports).
    pub async fn start_again(&mut self) {
        self.manager = Some(
            IggyManager::start(&self.config)
                .await
                .expect("start iggy-server again"),
        );
    }

    /// Stops the server with SIGTERM (the manager's graceful stop).
    pub async fn stop(mut self) {
        if let Some(manager) = self.manager.take() {
            manager.stop().await.expect("graceful stop");
        }
    }
}

/// Runs every conformance behaviour (or those whose name contains
/// `CONFORMANCE_ONLY`) on `harness`, each on its own thread and runtime so that one
/// that panics is reported and the others still run. Returns how many ran and the
/// names of those that failed.
pub fn run_conformance(
    harness: std::sync::Arc<dyn vibes_log::testkit::Harness>,
) -> (usize, Vec<&'static str>) {
    let only = std::env::var("CONFORMANCE_ONLY").ok();
    let mut failures = Vec::new();
    let mut ran = 0;
    for name in vibes_log::testkit::BEHAVIOURS {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        ran += 1;
        let h = std::sync::Arc::clone(&harness);
        let result = std::thread::spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(vibes_log::testkit::run(name, &*h));
        })
        .join();
        match result {
            Ok(()) => eprintln!("ok    {name}"),
            Err(_) => {
                eprintln!("FAIL  {name}");
                failures.push(*name);
            }
        }
    }
    (ran, failures)
}
