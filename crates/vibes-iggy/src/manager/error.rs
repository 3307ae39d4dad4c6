//! [`ManagerError`]: why a managed server could not be started or stopped.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use vibes_log::LogError;

use super::ROOT_USERNAME;
use crate::config::{ConfigError, SUPPORTED_VERSIONS, install_hint};

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
        "{} says {found:?}, but vibes needs iggy-server {expected}: {}",
        binary.display(),
        install_hint()
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
