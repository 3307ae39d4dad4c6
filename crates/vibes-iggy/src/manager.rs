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
//! Healthy: `GET /ping` answers 200, every 5 s; 3 failures in a row make the run
//! failed and it is restarted. HTTP rather than an SDK ping: an SDK client must sign
//! in, and every sign-in makes the server verify the password hash (Argon2), which
//! is deliberately expensive, every 5 s for the server's whole life; a new client per
//! check would also log a connect and a disconnect each time. `/ping` is served by
//! the same shard as the data on the default single-shard server, so a hung shard
//! fails it too.
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

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use iggy::prelude::{Client, IggyClient, SystemClient};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vibes_log::LogError;
use vibes_supervisor::{
    Backoff, ChildSpec, Events, Probe, State, StopOutcome, Supervisor, SupervisorOptions,
};

use crate::config::{ConfigError, IggyConfig, Mode, Secret, ServerBinary};
use crate::connection::Connection;
use crate::preflight::{SUPPORTED_VERSIONS, server_version};

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

/// Why a managed server could not be started or stopped. Every message says what to
/// do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// The configuration cannot work (or is for an external server).
    #[error(transparent)]
    Config(ConfigError),
    /// No iggy-server binary; `how_to_get` says how to get one and point vibes at it.
    #[error("{how_to_get}")]
    BinaryNotFound {
        /// What was looked for, and how to get the server.
        how_to_get: String,
    },
    /// The binary is not an iggy-server vibes works with.
    #[error(
        "{} says {found:?}, but vibes needs iggy-server {expected}: install iggy-server 0.8.0 \
         (https://github.com/apache/iggy/releases, server-0.8.0) and point IGGY_SERVER_BIN or \
         iggy.server_bin at it",
        binary.display()
    )]
    WrongVersion {
        /// The binary.
        binary: PathBuf,
        /// What its `--version` printed.
        found: String,
        /// The versions vibes works with.
        expected: &'static str,
    },
    /// `<binary> --version` did not say which version it is.
    #[error(
        "cannot tell which iggy-server {} is: {detail}; is it an iggy-server {} binary for this \
         machine?",
        binary.display(),
        SUPPORTED_VERSIONS
    )]
    UnknownVersion {
        /// The binary.
        binary: PathBuf,
        /// What running it gave.
        detail: String,
    },
    /// A fixed TCP or HTTP port already accepts connections.
    #[error(
        "{address} (iggy.{field}) already accepts connections: another iggy-server, probably a \
         stray one from an earlier run, is listening there. Find it with `ss -ltnp 'sport = \
         :{port}'` (or `lsof -i :{port}`) and stop it, or set iggy.{field} to another port \
         (port 0 picks a free one)",
        port = .address.port()
    )]
    PortInUse {
        /// The configured address.
        address: SocketAddr,
        /// The setting it came from: `tcp_address` or `http_address`.
        field: &'static str,
    },
    /// Another manager runs a server from this data directory, or a server started from
    /// it earlier still runs.
    #[error(
        "an iggy-server from {} is already running{}: two servers must never share a data \
         directory. Stop the other vibes (or that process), or set iggy.data_dir to another \
         directory",
        data_dir.display(),
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    AlreadyRunning {
        /// The data directory.
        data_dir: PathBuf,
        /// The server's process id, when known.
        pid: Option<u32>,
    },
    /// No managed server runs from the data directory.
    #[error(
        "no managed iggy-server runs from {}; start one with `vibes iggy start` or `vibes serve`",
        data_dir.display()
    )]
    NotRunning {
        /// The data directory.
        data_dir: PathBuf,
    },
    /// The root credentials file cannot be read, created or trusted.
    #[error("root credentials at {}: {source}", path.display())]
    Credentials {
        /// The credentials file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// The server's data exists but the root password it was created with is gone.
    #[error(
        "the iggy-server data in {} was created with a root password that was kept in {}, \
         which is missing. Restore that file from a backup, or move {} away to start with an \
         empty server",
        server_dir.display(),
        path.display(),
        server_dir.display()
    )]
    CredentialsLost {
        /// The missing credentials file.
        path: PathBuf,
        /// The server's data directory.
        server_dir: PathBuf,
    },
    /// A directory or file of the data directory cannot be prepared.
    #[error("cannot prepare {}: {source}", path.display())]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// Starting or stopping the supervised server failed: it could not be spawned,
    /// exited during start-up, or was not ready in time. Carries the server's last
    /// output (see [`vibes_supervisor::Error::output_tail`]).
    #[error(transparent)]
    Supervisor(#[from] vibes_supervisor::Error),
    /// The server is ready but the root user cannot sign in; it has been stopped.
    #[error(
        "iggy-server at {address} is ready but signing in as {ROOT_USERNAME} failed: {source}. \
         The server keeps the root password it was first started with; if {} was changed \
         since, restore it",
        credentials.display()
    )]
    SignIn {
        /// The server's TCP address.
        address: SocketAddr,
        /// The root credentials file.
        credentials: PathBuf,
        /// What the client said.
        #[source]
        source: Box<LogError>,
    },
}

impl From<ConfigError> for ManagerError {
    fn from(error: ConfigError) -> Self {
        match error {
            ConfigError::BinaryNotFound { how_to_get } => {
                ManagerError::BinaryNotFound { how_to_get }
            }
            other => ManagerError::Config(other),
        }
    }
}

/// The addresses a server bound, from its `runtime/current_config.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundAddresses {
    /// The TCP (binary protocol) address.
    pub tcp: SocketAddr,
    /// The HTTP address.
    pub http: SocketAddr,
}

impl BoundAddresses {
    /// Reads the TCP and HTTP addresses from the text of `current_config.toml`. Both
    /// listeners must be enabled and bound (port above 0).
    pub(crate) fn parse(text: &str) -> Result<BoundAddresses, String> {
        #[derive(Deserialize)]
        struct Listener {
            enabled: bool,
            address: String,
        }
        #[derive(Deserialize)]
        struct RuntimeConfig {
            tcp: Listener,
            http: Listener,
        }
        let config: RuntimeConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        let bound = |name: &str, listener: &Listener| -> Result<SocketAddr, String> {
            if !listener.enabled {
                return Err(format!("{name} is not enabled"));
            }
            let address: SocketAddr = listener
                .address
                .parse()
                .map_err(|_| format!("{name} address {:?} is not ip:port", listener.address))?;
            if address.port() == 0 {
                return Err(format!("{name} is not bound yet"));
            }
            Ok(address)
        };
        Ok(BoundAddresses {
            tcp: bound("tcp", &config.tcp)?,
            http: bound("http", &config.http)?,
        })
    }

    /// The addresses a client connects to: a wildcard address (`0.0.0.0`, `::`) becomes
    /// the loopback address of its family.
    fn connectable(self) -> BoundAddresses {
        BoundAddresses {
            tcp: connectable(self.tcp),
            http: connectable(self.http),
        }
    }
}

/// `address`, with a wildcard IP replaced by the loopback IP of its family.
fn connectable(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, address.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, address.port()).into(),
        _ => address,
    }
}

/// The files of a data directory (see the module docs).
#[derive(Debug, Clone)]
struct Layout {
    data_dir: PathBuf,
    server_dir: PathBuf,
    runtime_config: PathBuf,
    credentials: PathBuf,
    pid_file: PathBuf,
    lock_file: PathBuf,
    server_config: PathBuf,
    logs: PathBuf,
}

impl Layout {
    fn new(data_dir: PathBuf) -> Self {
        let server_dir = data_dir.join("server");
        Layout {
            runtime_config: server_dir.join("runtime").join("current_config.toml"),
            credentials: data_dir.join("root-credentials"),
            pid_file: data_dir.join("server.pid"),
            lock_file: data_dir.join("manager.lock"),
            server_config: data_dir.join("server.toml"),
            logs: data_dir.join("logs"),
            server_dir,
            data_dir,
        }
    }

    /// Whether the server has been started here before: its state log has entries.
    fn server_initialized(&self) -> bool {
        fs::metadata(self.server_dir.join("state").join("log")).is_ok_and(|m| m.len() > 0)
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ManagerError + '_ {
    move |source| ManagerError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Removes `path`; a file that is not there is fine.
fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes `contents` to `path` by way of a temporary file created with `mode` and a
/// rename, so that a reader sees the old file or the new one, never a part.
fn write_atomically(path: &Path, contents: &str, mode: u32) -> io::Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    remove_if_present(&tmp)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// A new root password: 32 bytes from the OS random source, as 64 hex digits.
fn random_password() -> io::Result<Secret> {
    let mut bytes = [0u8; 32];
    let mut filled = 0;
    while filled < bytes.len() {
        match rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Secret::new(hex))
}

/// The root password of the server in `layout`: read from its credentials file, or, on
/// the first start, generated and stored there (mode 0600 from creation on). Refuses
/// a file that group or others may read, and a server whose data exists without its
/// file.
fn root_password(layout: &Layout) -> Result<Secret, ManagerError> {
    let path = &layout.credentials;
    let failed = |source| ManagerError::Credentials {
        path: path.clone(),
        source,
    };
    match fs::metadata(path) {
        Ok(meta) => {
            if meta.mode() & 0o077 != 0 {
                return Err(failed(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "group or others may access it (mode {:04o}); make it private with \
                         `chmod 600 {}`",
                        meta.mode() & 0o7777,
                        path.display()
                    ),
                )));
            }
            let text = fs::read_to_string(path).map_err(failed)?;
            let password = text.trim_end_matches(['\n', '\r']);
            let valid = (3..=100).contains(&password.len())
                && password.chars().all(|c| c.is_ascii_graphic());
            if !valid {
                return Err(failed(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "it does not hold one password of 3 to 100 printable characters; \
                     restore it from a backup",
                )));
            }
            Ok(Secret::new(password))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if layout.server_initialized() {
                return Err(ManagerError::CredentialsLost {
                    path: path.clone(),
                    server_dir: layout.server_dir.clone(),
                });
            }
            let password = random_password().map_err(failed)?;
            write_atomically(path, &format!("{}\n", password.expose()), 0o600).map_err(failed)?;
            tracing::info!(
                path = %path.display(),
                "generated the root credentials of the managed iggy-server"
            );
            Ok(password)
        }
        Err(e) => Err(failed(e)),
    }
}

/// Takes the data directory's lock, held while a server from it may run.
fn lock_data_dir(layout: &Layout) -> Result<File, ManagerError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&layout.lock_file)
        .map_err(io_error(&layout.lock_file))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(ManagerError::AlreadyRunning {
            data_dir: layout.data_dir.clone(),
            pid: read_pid_file(&layout.pid_file).map(|(pid, _)| pid),
        }),
        Err(fs::TryLockError::Error(e)) => Err(io_error(&layout.lock_file)(e)),
    }
}

/// Records that process `pid` runs `program`.
fn write_pid_file(path: &Path, pid: u32, program: &Path) -> io::Result<()> {
    write_atomically(path, &format!("{pid}\n{}\n", program.display()), 0o644)
}

/// `(pid, program)` from a pid file.
fn read_pid_file(path: &Path) -> Option<(u32, PathBuf)> {
    let text = fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    let program = PathBuf::from(lines.next()?);
    Some((pid, program))
}

/// Whether process `pid` exists and, where `/proc` tells, runs `program` (so that a
/// reused pid is not taken for the server).
fn is_running(pid: u32, program: &Path) -> bool {
    let Some(raw) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(raw) {
        Ok(()) | Err(rustix::io::Errno::PERM) => {}
        Err(_) => return false,
    }
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => {
            let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
            argv0 == program.as_os_str().as_encoded_bytes()
        }
        Err(_) => true,
    }
}

/// Sends `GET /ping` over HTTP/1.1 to `address` and returns the status code.
pub(crate) async fn http_ping(address: SocketAddr, limit: Duration) -> io::Result<u16> {
    let exchange = async {
        let mut stream = TcpStream::connect(address).await?;
        let request = format!(
            "GET /ping HTTP/1.1\r\nHost: {address}\r\nUser-Agent: vibes\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut head = Vec::with_capacity(128);
        loop {
            if head.contains(&b'\n') || head.len() > 1024 {
                break;
            }
            if stream.read_buf(&mut head).await? == 0 {
                break;
            }
        }
        status_code(&head).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not an HTTP response from {address}"),
            )
        })
    };
    tokio::time::timeout(limit, exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("{address} did not answer")))?
}

/// The status code of an HTTP/1.x response that starts with `head`.
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    if !words.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let code = words.next()?;
    (code.len() == 3).then(|| code.parse().ok()).flatten()
}

/// Whether something accepts TCP connections at `address` (a wildcard address is
/// tried on loopback).
async fn answers(address: SocketAddr, limit: Duration) -> bool {
    let connected = tokio::time::timeout(limit, TcpStream::connect(connectable(address))).await;
    connected.is_ok_and(|stream| stream.is_ok())
}

/// Whether `GET /ping` at `address` answers 200.
async fn pings(address: SocketAddr) -> bool {
    let answer = http_ping(address, REQUEST_TIMEOUT).await;
    answer.is_ok_and(|code| code == 200)
}

/// `address`, or, when its port is 0, the same IP with a port that is free now.
fn resolve_port(address: SocketAddr, field: &'static str) -> Result<SocketAddr, ManagerError> {
    if address.port() != 0 {
        return Ok(address);
    }
    TcpListener::bind(address)
        .and_then(|listener| listener.local_addr())
        .map_err(|e| {
            ManagerError::Config(ConfigError::Invalid {
                field,
                reason: format!("cannot listen on {address}: {e}"),
            })
        })
}

/// The environment a managed server runs with. The password is in it (the server
/// reads it only from there); never log this.
fn server_env(
    config: &IggyConfig,
    layout: &Layout,
    tcp: SocketAddr,
    http: SocketAddr,
    password: &Secret,
) -> Vec<(&'static str, String)> {
    let on = |b: bool| if b { "true" } else { "false" }.to_owned();
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let mut env = vec![
        // A file of our own (usually absent: the server's defaults apply); without it
        // the server would search the working directory and its parents for
        // core/server/config.toml.
        ("IGGY_CONFIG_PATH", path(&layout.server_config)),
        ("IGGY_SYSTEM_PATH", path(&layout.server_dir)),
        ("IGGY_ROOT_USERNAME", ROOT_USERNAME.to_owned()),
        ("IGGY_ROOT_PASSWORD", password.expose().to_owned()),
        ("IGGY_TCP_ENABLED", on(true)),
        ("IGGY_TCP_ADDRESS", tcp.to_string()),
        ("IGGY_HTTP_ENABLED", on(true)),
        ("IGGY_HTTP_ADDRESS", http.to_string()),
        ("IGGY_QUIC_ENABLED", on(config.quic_address.is_some())),
        (
            "IGGY_WEBSOCKET_ENABLED",
            on(config.websocket_address.is_some()),
        ),
        (
            "IGGY_SYSTEM_SHARDING_CPU_ALLOCATION",
            config.cpu_allocation.to_string(),
        ),
        (
            "IGGY_SYSTEM_MEMORY_POOL_ENABLED",
            on(config.memory_pool_mib > 0),
        ),
        ("IGGY_SYSTEM_PARTITION_ENFORCE_FSYNC", on(config.fsync)),
        ("IGGY_SYSTEM_STATE_ENFORCE_FSYNC", on(config.fsync)),
        ("IGGY_MESSAGE_SAVER_ENABLED", on(true)),
        ("IGGY_MESSAGE_SAVER_ENFORCE_FSYNC", on(config.fsync)),
        // Durations need a unit: a bare number does not load.
        (
            "IGGY_MESSAGE_SAVER_INTERVAL",
            humantime::format_duration(config.saver_interval).to_string(),
        ),
        // The supervisor keeps the output in size-capped logs; the server's own log
        // files would be a second, larger copy (up to 4 GB by default).
        ("IGGY_SYSTEM_LOGGING_FILE_ENABLED", on(false)),
        // A line of CPU and memory figures every 10 s by default.
        (
            "IGGY_SYSTEM_LOGGING_SYSINFO_PRINT_INTERVAL",
            "disabled".to_owned(),
        ),
    ];
    if config.memory_pool_mib > 0 {
        env.push((
            "IGGY_SYSTEM_MEMORY_POOL_SIZE",
            format!("{} MiB", config.memory_pool_mib),
        ));
    }
    if let Some(quic) = &config.quic_address {
        env.push(("IGGY_QUIC_ADDRESS", quic.clone()));
    }
    if let Some(websocket) = &config.websocket_address {
        env.push(("IGGY_WEBSOCKET_ADDRESS", websocket.clone()));
    }
    env
}

/// The server's command: its environment is ours without any `IGGY_*` variable or
/// `RUST_LOG` (which would change its settings behind vibes' back), plus
/// [`server_env`].
fn server_spec(binary: &Path, layout: &Layout, env: Vec<(&'static str, String)>) -> ChildSpec {
    let mut spec = ChildSpec::new(CHILD_NAME, binary)
        .current_dir(&layout.data_dir)
        .log_dir(&layout.logs)
        .env_remove("RUST_LOG");
    for (key, _) in std::env::vars_os() {
        if key.as_encoded_bytes().starts_with(b"IGGY_") {
            spec = spec.env_remove(key);
        }
    }
    for (key, value) in env {
        spec = spec.env(key, value);
    }
    spec
}

/// What the readiness and health probes share.
#[derive(Debug)]
struct Probes {
    runtime_config: PathBuf,
    /// The addresses the server was told to bind.
    expected: BoundAddresses,
    /// What the last successful readiness check read.
    bound: Mutex<Option<BoundAddresses>>,
    /// How the health probe signs in.
    connection: Connection,
    /// The health probe's signed-in client, kept between checks so that a check is
    /// one ping, not a sign-in (each sign-in verifies an Argon2 password hash).
    health_client: tokio::sync::Mutex<Option<IggyClient>>,
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

    fn bound(&self) -> Option<BoundAddresses> {
        *self.bound.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn supervisor_options(config: &IggyConfig, probes: &Arc<Probes>) -> SupervisorOptions {
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
    /// 0.8.x; a fixed TCP or HTTP port that already answers is refused; the data
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

/// Refuses a binary that is not iggy-server 0.8.x.
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
    use std::os::unix::fs::PermissionsExt;

    use tokio::net::TcpListener as AsyncListener;

    use super::*;

    /// Captured from an iggy-server 0.8.0 that IggyManager started with TCP and HTTP on
    /// port 0 (resolved to 38443 and 33977).
    const CURRENT_CONFIG: &str = include_str!("../testdata/current_config.toml");

    /// The pid of a process that has exited and been reaped.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    fn layout() -> (tempfile::TempDir, Layout) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_owned());
        (dir, layout)
    }

    #[test]
    fn bound_addresses_come_from_a_real_runtime_config() {
        let bound = BoundAddresses::parse(CURRENT_CONFIG).unwrap();
        assert_eq!(bound.tcp, "127.0.0.1:38443".parse().unwrap());
        assert_eq!(bound.http, "127.0.0.1:33977".parse().unwrap());
    }

    #[test]
    fn unbound_disabled_or_partial_runtime_configs_are_not_ready() {
        let unbound = CURRENT_CONFIG.replace("127.0.0.1:38443", "127.0.0.1:0");
        let err = BoundAddresses::parse(&unbound).unwrap_err();
        assert!(err.contains("tcp is not bound"), "{err}");
        let disabled = CURRENT_CONFIG.replace("[http]\nenabled = true", "[http]\nenabled = false");
        let err = BoundAddresses::parse(&disabled).unwrap_err();
        assert!(err.contains("http is not enabled"), "{err}");
        // The server truncates, then writes: a reader can see any prefix.
        let cut = &CURRENT_CONFIG[..CURRENT_CONFIG.find("[http]").unwrap()];
        assert!(BoundAddresses::parse(cut).is_err());
        assert!(BoundAddresses::parse("").is_err());
    }

    #[test]
    fn wildcard_addresses_are_reached_on_loopback() {
        let any4: SocketAddr = "0.0.0.0:8090".parse().unwrap();
        let any6: SocketAddr = "[::]:8090".parse().unwrap();
        let ip: SocketAddr = "10.1.2.3:8090".parse().unwrap();
        assert_eq!(connectable(any4), "127.0.0.1:8090".parse().unwrap());
        assert_eq!(connectable(any6), "[::1]:8090".parse().unwrap());
        assert_eq!(connectable(ip), ip);
    }

    #[test]
    fn the_root_password_is_made_once_private_and_then_reused() {
        let (_dir, layout) = layout();
        let first = root_password(&layout).unwrap();
        assert_eq!(first.expose().len(), 64);
        assert!(first.expose().chars().all(|c| c.is_ascii_hexdigit()));
        let meta = fs::metadata(&layout.credentials).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            fs::read_to_string(&layout.credentials).unwrap(),
            format!("{}\n", first.expose())
        );
        let again = root_password(&layout).unwrap();
        assert_eq!(again, first);
        let mut tmp = layout.credentials.clone().into_os_string();
        tmp.push(".tmp");
        assert!(!Path::new(&tmp).exists());
    }

    #[test]
    fn generated_passwords_differ() {
        let (a, b) = (random_password().unwrap(), random_password().unwrap());
        assert_ne!(a, b);
    }

    #[test]
    fn a_credentials_file_others_can_read_is_refused() {
        let (_dir, layout) = layout();
        root_password(&layout).unwrap();
        fs::set_permissions(&layout.credentials, fs::Permissions::from_mode(0o644)).unwrap();
        let err = root_password(&layout).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("chmod 600"), "{message}");
        let refused = matches!(err, ManagerError::Credentials { .. });
        assert!(refused, "{err:?}");
    }

    #[test]
    fn a_damaged_credentials_file_is_refused() {
        let (_dir, layout) = layout();
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&layout.credentials)
            .unwrap();
        file.write_all(b"two words\n").unwrap();
        let err = root_password(&layout).unwrap_err();
        assert!(err.to_string().contains("restore it"), "{err}");
    }

    #[test]
    fn server_data_without_its_credentials_is_not_given_a_new_password() {
        let (_dir, layout) = layout();
        let state = layout.server_dir.join("state");
        fs::create_dir_all(&state).unwrap();
        fs::write(state.join("log"), b"entries").unwrap();
        let err = root_password(&layout).unwrap_err();
        let lost = matches!(err, ManagerError::CredentialsLost { .. });
        assert!(lost, "{err:?}");
        assert!(err.to_string().contains("Restore that file"), "{err}");
        assert!(!layout.credentials.exists());
    }

    #[test]
    fn a_locked_data_dir_is_already_running() {
        let (_dir, layout) = layout();
        let held = lock_data_dir(&layout).unwrap();
        write_pid_file(&layout.pid_file, 4242, Path::new("/x/iggy-server")).unwrap();
        let err = lock_data_dir(&layout).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("(pid 4242)"), "{message}");
        let running = matches!(
            err,
            ManagerError::AlreadyRunning {
                pid: Some(4242),
                ..
            }
        );
        assert!(running, "{err:?}");
        drop(held);
        lock_data_dir(&layout).unwrap();
    }

    #[test]
    fn the_pid_file_names_this_process_only_with_its_program() {
        let (_dir, layout) = layout();
        let me = std::process::id();
        let argv0 = std::env::args_os().next().unwrap();
        write_pid_file(&layout.pid_file, me, Path::new(&argv0)).unwrap();
        let (pid, program) = read_pid_file(&layout.pid_file).unwrap();
        assert_eq!(pid, me);
        assert!(is_running(pid, &program));
        assert!(!is_running(pid, Path::new("/not/this/program")));
        assert!(!is_running(dead_pid(), &program));
        assert!(!is_running(u32::MAX, &program));
    }

    #[test]
    fn the_server_env_turns_off_what_vibes_does_not_use() {
        let (_dir, layout) = layout();
        let config = IggyConfig {
            memory_pool_mib: 1024,
            fsync: false,
            saver_interval: Duration::from_millis(1500),
            cpu_allocation: crate::config::CpuAllocation::Shards(2),
            ..IggyConfig::default()
        };
        let tcp = "127.0.0.1:18090".parse().unwrap();
        let http = "127.0.0.1:13000".parse().unwrap();
        let env = server_env(&config, &layout, tcp, http, &Secret::new("pw"));
        let get = |key: &str| {
            let values: Vec<_> = env.iter().filter(|(k, _)| *k == key).collect();
            assert!(values.len() <= 1, "{key} set twice");
            values.first().map(|(_, v)| v.clone())
        };
        let expected = [
            ("IGGY_QUIC_ENABLED", "false"),
            ("IGGY_WEBSOCKET_ENABLED", "false"),
            ("IGGY_HTTP_ENABLED", "true"),
            ("IGGY_TCP_ADDRESS", "127.0.0.1:18090"),
            ("IGGY_HTTP_ADDRESS", "127.0.0.1:13000"),
            ("IGGY_ROOT_USERNAME", "iggy"),
            ("IGGY_ROOT_PASSWORD", "pw"),
            ("IGGY_SYSTEM_SHARDING_CPU_ALLOCATION", "2"),
            ("IGGY_SYSTEM_MEMORY_POOL_ENABLED", "true"),
            ("IGGY_SYSTEM_MEMORY_POOL_SIZE", "1024 MiB"),
            ("IGGY_SYSTEM_PARTITION_ENFORCE_FSYNC", "false"),
            ("IGGY_SYSTEM_STATE_ENFORCE_FSYNC", "false"),
            ("IGGY_MESSAGE_SAVER_ENFORCE_FSYNC", "false"),
            ("IGGY_MESSAGE_SAVER_INTERVAL", "1s 500ms"),
            ("IGGY_SYSTEM_LOGGING_FILE_ENABLED", "false"),
        ];
        for (key, value) in expected {
            assert_eq!(get(key).as_deref(), Some(value), "{key}");
        }
        assert_eq!(
            get("IGGY_SYSTEM_PATH"),
            Some(layout.server_dir.to_string_lossy().into_owned())
        );
        let no_pool = IggyConfig {
            memory_pool_mib: 0,
            quic_address: Some("127.0.0.1:8080".into()),
            ..IggyConfig::default()
        };
        let env = server_env(&no_pool, &layout, tcp, http, &Secret::new("pw"));
        let has = |key: &str, value: &str| env.iter().any(|(k, v)| *k == key && v == value);
        assert!(has("IGGY_SYSTEM_MEMORY_POOL_ENABLED", "false"));
        assert!(
            !env.iter()
                .any(|(k, _)| *k == "IGGY_SYSTEM_MEMORY_POOL_SIZE")
        );
        assert!(has("IGGY_QUIC_ENABLED", "true"));
        assert!(has("IGGY_QUIC_ADDRESS", "127.0.0.1:8080"));
    }

    #[test]
    fn port_zero_resolves_to_a_free_port_and_a_fixed_port_stays() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let resolved = resolve_port(any, "tcp_address").unwrap();
        assert_ne!(resolved.port(), 0);
        assert_eq!(resolved.ip(), any.ip());
        let fixed: SocketAddr = "127.0.0.1:18090".parse().unwrap();
        assert_eq!(resolve_port(fixed, "tcp_address").unwrap(), fixed);
    }

    /// A one-connection HTTP server that answers `response` and returns the request.
    async fn serve_once(response: &'static [u8]) -> (SocketAddr, JoinHandle<String>) {
        let listener = AsyncListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8; 1];
                if stream.read(&mut byte).await.unwrap() == 0 {
                    break;
                }
                request.push(byte[0]);
            }
            stream.write_all(response).await.unwrap();
            String::from_utf8(request).unwrap()
        });
        (address, task)
    }

    #[tokio::test]
    async fn ping_sends_a_get_and_reads_the_status() {
        let (address, server) =
            serve_once(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\npong").await;
        let status = http_ping(address, Duration::from_secs(5)).await.unwrap();
        assert_eq!(status, 200);
        let request = server.await.unwrap();
        assert!(request.starts_with("GET /ping HTTP/1.1\r\n"), "{request}");
        assert!(
            request.contains(&format!("Host: {address}\r\n")),
            "{request}"
        );
    }

    #[tokio::test]
    async fn ping_reports_other_statuses_and_garbage() {
        let (address, _server) = serve_once(b"HTTP/1.1 503 Service Unavailable\r\n\r\n").await;
        assert_eq!(
            http_ping(address, Duration::from_secs(5)).await.unwrap(),
            503
        );
        let (address, _server) = serve_once(b"SSH-2.0-OpenSSH\r\n").await;
        let err = http_ping(address, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(!pings(address).await);
    }

    #[tokio::test]
    async fn ping_gives_up_on_a_silent_server_and_a_closed_port() {
        let listener = AsyncListener::bind("127.0.0.1:0").await.unwrap();
        let silent = listener.local_addr().unwrap();
        let err = http_ping(silent, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(listener);
        assert!(http_ping(silent, Duration::from_secs(5)).await.is_err());
    }

    #[test]
    fn status_codes_parse_from_http_1_only() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_code(b"HTTP/1.0 404 Not Found\r\n"), Some(404));
        assert_eq!(status_code(b"HTTP/1.1 20"), None);
        assert_eq!(status_code(b"HTTP/2 200\r\n"), None);
        assert_eq!(status_code(b""), None);
    }

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
