//! Readiness and health of a managed server, and the supervisor options that run
//! them (see the module docs of [`manager`](super)).

use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use iggy::prelude::{Client, IggyClient, SystemClient};
use vibes_supervisor::{Backoff, Probe, SupervisorOptions};

use super::addresses::BoundAddresses;
use super::http::{answers, pings};
use super::{PROBE_TIMEOUT, REQUEST_TIMEOUT};
use crate::config::IggyConfig;
use crate::connection::Connection;

/// What the readiness and health probes share.
#[derive(Debug)]
pub(super) struct Probes {
    pub(super) runtime_config: PathBuf,
    /// The addresses the server was told to bind.
    pub(super) expected: BoundAddresses,
    /// What the last successful readiness check read.
    pub(super) bound: Mutex<Option<BoundAddresses>>,
    /// How the health probe signs in.
    pub(super) connection: Connection,
    /// The health probe's signed-in client, kept between checks so that a check is
    /// one ping, not a sign-in (each sign-in verifies an Argon2 password hash).
    pub(super) health_client: tokio::sync::Mutex<Option<IggyClient>>,
}

impl Drop for Probes {
    fn drop(&mut self) {
        // The SDK client has no Drop: close the health probe's connection on the runtime.
        if let Some(client) = self.health_client.get_mut().take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(async move {
                let _ = client.shutdown().await;
            });
        }
    }
}

impl Probes {
    /// Ready: the runtime config names the expected ports, `/ping` answers 200 and
    /// the TCP port accepts a connection.
    async fn ready(&self) -> bool {
        let Ok(text) = fs::read_to_string(&self.runtime_config) else {
            return false;
        };
        let Ok(bound) = BoundAddresses::parse(&text) else {
            return false; // not written in full yet
        };
        if bound.tcp.port() != self.expected.tcp.port()
            || bound.http.port() != self.expected.http.port()
        {
            return false;
        }
        let target = bound.connectable();
        if !pings(target.http).await || !answers(target.tcp, REQUEST_TIMEOUT).await {
            return false;
        }
        *self.bound.lock().unwrap_or_else(PoisonError::into_inner) = Some(bound);
        true
    }

    /// An SDK ping over a kept connection. A failed ping drops the connection; the
    /// next check signs in again.
    async fn healthy(&self) -> bool {
        let mut slot = self.health_client.lock().await;
        if slot.is_none() {
            match self.connection.connect().await {
                Ok(client) => *slot = Some(client),
                Err(e) => {
                    tracing::debug!("health check cannot connect to iggy-server: {e}");
                    return false;
                }
            }
        }
        let Some(client) = slot.as_ref() else {
            return false;
        };
        if client.ping().await.is_ok() {
            return true;
        }
        if let Some(client) = slot.take() {
            let _ = client.shutdown().await;
        }
        false
    }

    /// The addresses the last successful readiness check read.
    pub(super) fn bound(&self) -> Option<BoundAddresses> {
        *self.bound.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How the supervisor runs the server: probes, intervals, backoff, restart limits.
pub(super) fn supervisor_options(config: &IggyConfig, probes: &Arc<Probes>) -> SupervisorOptions {
    let ready = Arc::clone(probes);
    let healthy = Arc::clone(probes);
    SupervisorOptions::new()
        .readiness(Probe::new(move |_pid| {
            let probes = Arc::clone(&ready);
            async move { probes.ready().await }
        }))
        .readiness_interval(Duration::from_millis(50))
        .startup_timeout(config.startup_timeout)
        .health(Probe::new(move |_pid| {
            let probes = Arc::clone(&healthy);
            async move { probes.healthy().await }
        }))
        .health_interval(Duration::from_secs(5))
        .health_failures(3)
        .probe_timeout(PROBE_TIMEOUT)
        .backoff(Backoff::new(
            Duration::from_millis(500),
            Duration::from_secs(30),
        ))
        .stable_after(Duration::from_secs(60))
        .restart_limit(10, Duration::from_secs(600))
        .stop_grace(config.stop_grace)
}
