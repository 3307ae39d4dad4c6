//! [`IggyManager`]: vibes runs its own iggy-server under `vibes-supervisor`.
//!
//! # The data directory
//!
//! ```text
//! <data_dir>/
//!   root-credentials      the root password (mode 0600), made on the first start
//!   manager.lock          held (flock) by the manager while its server may run
//!   server.pid            "<pid>\n<program>\n" of the running server
//!   server.toml           optional: server settings vibes does not set (env wins)
//!   server/               the server's own data (IGGY_SYSTEM_PATH)
//!     runtime/current_config.toml   written by the server once it listens
//!   logs/iggy-server.{stdout,stderr}.log   its output, size-capped and rotated
//! ```
//!
//! # Readiness and health
//!
//! Ready: the server has written `server/runtime/current_config.toml` (it does so
//! once every listener is bound), the TCP and HTTP addresses there are the ones it
//! was given, `GET /ping` on the HTTP address answers 200, and the TCP address
//! accepts a connection. The file of an earlier run is deleted before the first start
//! and whenever a run ends; a restarted run must also answer on the same ports, so an
//! old file cannot pass for a new one.
//!
//! Healthy: an SDK ping, every 5 s, over a client the health probe keeps signed in
//! between checks; 3 failures in a row make the run failed and it is restarted. The
//! client is kept because every sign-in makes the server verify the password hash
//! (Argon2), which is deliberately expensive, and a new client per check would also log
//! a connect and a disconnect each time; so a check is one ping, and only a failed
//! ping drops the client (the next check signs in again). The ping goes over the
//! binary protocol the log itself uses; a server stopped with SIGSTOP (alive but
//! answering nothing) fails it and is replaced.
//!
//! # Ports
//!
//! A configured port 0 is resolved to a free port once, when the manager starts
//! (bind, read the port, close), and the server is given that port; restarts reuse
//! it, so clients holding a [`Connection`] reconnect to the same address. A fixed
//! port that already answers is refused before anything starts
//! ([`ManagerError::PortInUse`]): iggy-server binds with `SO_REUSEPORT`, so a second
//! server of the same user would otherwise share the port silently and take half of
//! the connections. A port taken by another program between the check and the bind
//! makes the server exit, which is a start-up error carrying the server's output.
//!
//! # Modules
//!
//! One job each: [`error`](ManagerError) (what can go wrong), `layout` (the data
//! directory, its lock and the pid file), `credentials` (the root password),
//! `addresses` (bound addresses, ports), `http` (the hand-written `/ping` client),
//! `env` (the server's environment), `probes` (readiness, health and the supervisor's
//! options). This file starts, stops and inspects a server with them.

mod addresses;
mod credentials;
mod env;
mod error;
mod http;
mod layout;
mod probes;

use std::fmt;
use std::fs::{self, File};
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iggy::prelude::Client;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vibes_supervisor::{Events, State, StopOutcome, Supervisor};

pub use addresses::BoundAddresses;
pub use error::ManagerError;

use addresses::{connectable, resolve_port};
use credentials::root_password;
use env::{server_env, server_spec};
use http::{answers, pings};
use layout::{
    Layout, io_error, is_running, lock_data_dir, read_pid_file, remove_if_present,
    remove_stale_temps, write_pid_file,
};
use probes::{Probes, supervisor_options};

use crate::config::{ConfigError, IggyConfig, Mode, SUPPORTED_VERSIONS, Secret, ServerBinary};
use crate::connection::Connection;
use crate::preflight::server_version;

/// The root user of a managed server.
pub const ROOT_USERNAME: &str = "iggy";

/// The supervised child's name: in log file names and `tracing` fields.
const CHILD_NAME: &str = "iggy-server";

/// Time one readiness or health check may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Time an HTTP `/ping` or TCP connect inside a check may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// Time the check that a fixed port is free may wait for a connection.
const PORT_CHECK_TIMEOUT: Duration = Duration::from_millis(500);

/// Keeps the pid file in step with the server, and removes the runtime config of a run
/// that ended so the next run's readiness cannot read it. Holds the data directory's
/// lock until supervision has ended.
async fn keep_records(mut events: Events, layout: Layout, program: PathBuf, lock: File) {
    while let Some(state) = events.next().await {
        let result = match state {
            State::Running { pid } => write_pid_file(&layout.pid_file, pid, &program),
            State::Backoff { .. } => remove_if_present(&layout.pid_file)
                .and_then(|()| remove_if_present(&layout.runtime_config)),
            State::Stopped | State::Failed { .. } => remove_if_present(&layout.pid_file),
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(
                dir = %layout.data_dir.display(),
                error = %e,
                "cannot update the iggy-server pid file"
            );
        }
    }
    drop(lock);
}

/// A running iggy-server that vibes started and supervises: restarted with growing
/// delays when it exits or stops answering, stopped with SIGTERM (then SIGKILL after
/// `stop_grace`) by [`stop`](Self::stop).
///
/// Dropping it without `stop` stops the server in the background; call `stop` to know
/// it has ended. See the [module docs](self) for the data directory, readiness and
/// health, and ports.
pub struct IggyManager {
    supervisor: Supervisor,
    data_dir: PathBuf,
    pid_file: PathBuf,
    addresses: BoundAddresses,
    password: Secret,
    connect_timeout: Duration,
    records: Option<JoinHandle<()>>,
}

impl fmt::Debug for IggyManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IggyManager")
            .field("data_dir", &self.data_dir)
            .field("tcp_address", &self.addresses.tcp)
            .field("http_address", &self.addresses.http)
            .field("state", &self.supervisor.state())
            .finish_non_exhaustive()
    }
}

impl IggyManager {
    /// Starts a managed iggy-server as `config` says and returns once it is ready and
    /// its root user can sign in.
    ///
    /// In order: the configuration is checked; the binary is found and must say it is
    /// one of [`SUPPORTED_VERSIONS`]; a fixed TCP or HTTP port that already answers is refused; the data
    /// directory is created (mode 0700) and locked; the root password is read, or made
    /// on the first start; ports 0 are resolved; a stale runtime config is removed;
    /// then the server runs under the supervisor.
    ///
    /// # Errors
    ///
    /// [`ManagerError::Config`], [`BinaryNotFound`](ManagerError::BinaryNotFound),
    /// [`WrongVersion`](ManagerError::WrongVersion),
    /// [`UnknownVersion`](ManagerError::UnknownVersion),
    /// [`PortInUse`](ManagerError::PortInUse),
    /// [`AlreadyRunning`](ManagerError::AlreadyRunning),
    /// [`Credentials`](ManagerError::Credentials),
    /// [`CredentialsLost`](ManagerError::CredentialsLost), [`Io`](ManagerError::Io),
    /// [`Supervisor`](ManagerError::Supervisor) (the server exited during start-up or
    /// was not ready within `startup_timeout`; with its output),
    /// [`SignIn`](ManagerError::SignIn).
    pub async fn start(config: &IggyConfig) -> Result<IggyManager, ManagerError> {
        config.validate()?;
        if config.mode != Mode::Managed {
            return Err(ManagerError::Config(ConfigError::Invalid {
                field: "mode",
                reason: "is \"external\": connect with IggyConfig::external_connection".into(),
            }));
        }
        let ServerBinary { path: binary, .. } = config.resolve_server_bin()?;
        check_version(&binary).await?;

        let tcp: SocketAddr = config
            .tcp_address
            .parse()
            .map_err(|_| invalid_address("tcp_address"))?;
        let http: SocketAddr = config
            .http_address
            .parse()
            .map_err(|_| invalid_address("http_address"))?;
        for (address, field) in [(tcp, "tcp_address"), (http, "http_address")] {
            if address.port() != 0 && answers(address, PORT_CHECK_TIMEOUT).await {
                return Err(ManagerError::PortInUse { address, field });
            }
        }

        let layout = Layout::new(config.data_dir()?);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&layout.data_dir)
            .map_err(io_error(&layout.data_dir))?;
        let lock = lock_data_dir(&layout)?;
        remove_stale_temps(&layout)?;
        if let Some((pid, program)) = read_pid_file(&layout.pid_file)
            && is_running(pid, &program)
        {
            return Err(ManagerError::AlreadyRunning {
                data_dir: layout.data_dir.clone(),
                pid: Some(pid),
            });
        }
        remove_if_present(&layout.pid_file).map_err(io_error(&layout.pid_file))?;
        let password = root_password(&layout)?;

        let tcp = resolve_port(tcp, "tcp_address")?;
        let http = resolve_port(http, "http_address")?;
        remove_if_present(&layout.runtime_config).map_err(io_error(&layout.runtime_config))?;

        let env = server_env(config, &layout, tcp, http, &password);
        let spec = server_spec(&binary, &layout, env);
        let expected = BoundAddresses { tcp, http };
        let mut health_connection = Connection::new(
            connectable(tcp).to_string(),
            ROOT_USERNAME,
            password.expose().to_owned(),
        );
        health_connection.connect_timeout = PROBE_TIMEOUT / 2;
        let probes = Arc::new(Probes {
            runtime_config: layout.runtime_config.clone(),
            expected,
            bound: Mutex::new(None),
            connection: health_connection,
            health_client: tokio::sync::Mutex::new(None),
        });
        let started = std::time::Instant::now();
        let supervisor = Supervisor::start(spec, supervisor_options(config, &probes)).await?;
        let addresses = probes.bound().unwrap_or(expected).connectable();
        tracing::info!(
            tcp = %addresses.tcp,
            http = %addresses.http,
            pid = ?supervisor.pid(),
            after = ?started.elapsed(),
            "managed iggy-server is ready"
        );

        // Changes from now on reach `keep_records`; the state before is recorded here.
        let events = supervisor.events();
        if let Some(pid) = supervisor.pid()
            && let Err(e) = write_pid_file(&layout.pid_file, pid, &binary)
        {
            tracing::warn!(error = %e, "cannot write the iggy-server pid file");
        }
        let credentials = layout.credentials.clone();
        let records = tokio::spawn(keep_records(events, layout.clone(), binary, lock));
        let manager = IggyManager {
            supervisor,
            data_dir: layout.data_dir,
            pid_file: layout.pid_file,
            addresses,
            password,
            connect_timeout: config.connect_timeout,
            records: Some(records),
        };
        match manager.connection().connect().await {
            Ok(client) => {
                let _ = client.shutdown().await;
                Ok(manager)
            }
            Err(source) => {
                let address = manager.addresses.tcp;
                if let Err(e) = manager.stop().await {
                    tracing::warn!(error = %e, "stopping iggy-server after a failed sign-in");
                }
                Err(ManagerError::SignIn {
                    address,
                    credentials,
                    source: Box::new(source),
                })
            }
        }
    }

    /// How to reach the server: its TCP address and the root user's credentials.
    pub fn connection(&self) -> Connection {
        let mut connection = Connection::new(
            self.addresses.tcp.to_string(),
            ROOT_USERNAME,
            self.password.expose(),
        );
        connection.connect_timeout = self.connect_timeout;
        connection
    }

    /// The server's TCP (binary protocol) address, as bound (a wildcard IP given as
    /// loopback). Stays the same across restarts.
    pub fn tcp_address(&self) -> SocketAddr {
        self.addresses.tcp
    }

    /// The server's HTTP address (`/ping`, the REST API, `/metrics`).
    pub fn http_address(&self) -> SocketAddr {
        self.addresses.http
    }

    /// The server's process id while it runs (not between a crash and its restart).
    pub fn pid(&self) -> Option<u32> {
        self.supervisor.pid()
    }

    /// The supervisor's state on a watch channel (the latest state only; see
    /// [`Supervisor::subscribe`]).
    pub fn subscribe(&self) -> watch::Receiver<State> {
        self.supervisor.subscribe()
    }

    /// Every state change from now on, none missed (see [`Supervisor::events`]).
    pub fn events(&self) -> Events {
        self.supervisor.events()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stops the server: SIGTERM, so that it saves what it buffers and exits; SIGKILL
    /// if it has not exited after `stop_grace`. Returns once it has ended, the pid file
    /// is gone and the data directory is unlocked.
    ///
    /// # Errors
    ///
    /// [`ManagerError::Supervisor`] if the server could not be signalled or waited for.
    pub async fn stop(mut self) -> Result<StopOutcome, ManagerError> {
        let outcome = self.supervisor.stop().await;
        if let Some(records) = self.records.take() {
            // Ends after the final state; bounded in case supervision ended oddly.
            let abort = records.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), records)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        if let Err(e) = remove_if_present(&self.pid_file) {
            tracing::warn!(error = %e, "cannot remove the iggy-server pid file");
        }
        Ok(outcome?)
    }

    /// What is known about a managed server of `config` without starting one: whether
    /// one runs from its data directory (its pid file names a live process running the
    /// recorded program), the addresses it bound, and whether `/ping` answers. For
    /// `vibes iggy status`; works from another process than the manager's.
    ///
    /// # Errors
    ///
    /// [`ManagerError::Config`] when the data directory is unknown.
    pub async fn status(config: &IggyConfig) -> Result<ServerStatus, ManagerError> {
        let layout = Layout::new(config.data_dir()?);
        let pid = read_pid_file(&layout.pid_file)
            .filter(|(pid, program)| is_running(*pid, program))
            .map(|(pid, _)| pid);
        let addresses = match pid {
            Some(_) => fs::read_to_string(&layout.runtime_config)
                .ok()
                .and_then(|text| BoundAddresses::parse(&text).ok())
                .map(BoundAddresses::connectable),
            None => None,
        };
        let ping = match addresses {
            Some(addresses) => pings(addresses.http).await,
            None => false,
        };
        Ok(ServerStatus {
            data_dir: layout.data_dir,
            pid,
            addresses,
            ping,
        })
    }
}

fn invalid_address(field: &'static str) -> ManagerError {
    ManagerError::Config(ConfigError::Invalid {
        field,
        reason: "is not an ip:port".into(),
    })
}

/// Refuses a binary that is not an iggy-server of [`SUPPORTED_VERSIONS`].
async fn check_version(binary: &Path) -> Result<(), ManagerError> {
    let path = binary.to_owned();
    let version = tokio::task::spawn_blocking(move || server_version(&path))
        .await
        .unwrap_or_else(|e| Err(format!("the version check did not finish: {e}")));
    match version {
        Ok(version) if version.is_supported() => Ok(()),
        Ok(version) => Err(ManagerError::WrongVersion {
            binary: binary.to_owned(),
            found: version.text,
            expected: SUPPORTED_VERSIONS,
        }),
        Err(detail) => Err(ManagerError::UnknownVersion {
            binary: binary.to_owned(),
            detail,
        }),
    }
}

impl IggyManager {
    /// How to reach the managed server that another process runs from this data
    /// directory: its bound TCP address and the root credentials. Never creates
    /// credentials.
    ///
    /// # Errors
    ///
    /// [`ManagerError::NotRunning`] when no server runs there, or it has not written
    /// its addresses yet; [`ManagerError::Credentials`] when the credentials file is
    /// missing or not private.
    pub async fn connect_running(config: &IggyConfig) -> Result<Connection, ManagerError> {
        let status = IggyManager::status(config).await?;
        let Some(addresses) = status.addresses.filter(|_| status.running()) else {
            return Err(ManagerError::NotRunning {
                data_dir: status.data_dir,
            });
        };
        let layout = Layout::new(status.data_dir);
        if !layout.credentials.exists() {
            return Err(ManagerError::Credentials {
                path: layout.credentials.clone(),
                source: io::Error::new(io::ErrorKind::NotFound, "the file is missing"),
            });
        }
        let password = root_password(&layout)?;
        let mut connection = Connection::new(
            addresses.tcp.to_string(),
            ROOT_USERNAME,
            password.expose().to_owned(),
        );
        connection.connect_timeout = config.connect_timeout;
        Ok(connection)
    }
}

/// A managed server as [`IggyManager::status`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStatus {
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Its process id, if it runs.
    pub pid: Option<u32>,
    /// The addresses it bound (connectable form), if it runs and has written them.
    pub addresses: Option<BoundAddresses>,
    /// Whether `GET /ping` answered 200.
    pub ping: bool,
}

impl ServerStatus {
    /// Whether a server runs from the data directory.
    pub fn running(&self) -> bool {
        self.pid.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::layout::tests::dead_pid;
    use super::*;

    #[tokio::test]
    async fn status_of_a_data_dir_without_a_server_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let config = IggyConfig {
            data_dir: Some(dir.path().to_owned()),
            ..IggyConfig::default()
        };
        let layout = Layout::new(dir.path().to_owned());
        // A pid file left by a server that is gone.
        write_pid_file(&layout.pid_file, dead_pid(), Path::new("/x/iggy-server")).unwrap();
        let status = IggyManager::status(&config).await.unwrap();
        assert!(!status.running());
        assert_eq!(status.addresses, None);
        assert!(!status.ping);
        assert_eq!(status.data_dir, dir.path());
    }
}
