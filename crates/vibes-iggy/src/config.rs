//! [`IggyConfig`]: how vibes reaches Iggy, either a server it runs itself (managed) or
//! one someone else runs (external), and how it sizes and tunes a managed one.
//!
//! In the host's configuration file this is the `[iggy]` table; every field has a
//! default, and unknown fields are an error:
//!
//! ```toml
//! [iggy]
//! mode = "managed"              # or "external"
//! # server_bin = "/opt/iggy/iggy-server"
//! # data_dir = "/var/lib/vibes/iggy"
//! tcp_address = "127.0.0.1:0"   # 0: pick a free port
//! http_address = "127.0.0.1:0"
//! cpu_allocation = 1            # shards: 1, 4, "all" or "0..2"
//! memory_pool_mib = 512         # 0 turns the pool off; else at least 512
//! fsync = true
//! saver_interval = "1s"
//! connect_timeout = "10s"
//! ```

use std::env;
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::connection::Connection;

/// The iggy-server release series vibes works with, written once: every version
/// string below is made from it.
macro_rules! server_series {
    () => {
        "0.8"
    };
}

/// The iggy-server release series vibes works with: any `0.8.x`.
pub const SERVER_SERIES: &str = server_series!();
/// The iggy-server release vibes is built and tested against.
pub const SERVER_VERSION: &str = concat!(server_series!(), ".0");
/// The versions vibes works with, as messages name them.
pub const SUPPORTED_VERSIONS: &str = concat!(server_series!(), ".x");

/// Environment variable naming the iggy-server binary.
pub const SERVER_BIN_ENV: &str = "IGGY_SERVER_BIN";
/// Environment variable with the user name for an external server.
pub const USERNAME_ENV: &str = "IGGY_USERNAME";
/// Environment variable with the password for an external server.
pub const PASSWORD_ENV: &str = "IGGY_PASSWORD";
/// Environment variable with a connection string (`iggy://user:pass@host:port`) for an
/// external server.
pub const CONNECTION_STRING_ENV: &str = "IGGY_CONNECTION_STRING";

/// The smallest memory pool iggy-server 0.8 accepts (its own validation).
pub const MIN_MEMORY_POOL_MIB: u32 = 512;

/// Whether vibes runs iggy-server or uses one that runs elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// vibes starts, supervises and stops its own iggy-server
    /// ([`IggyManager`](crate::IggyManager)).
    #[default]
    Managed,
    /// vibes connects to a server someone else runs, with credentials from the
    /// configuration or the environment.
    External,
}

impl Mode {
    /// The name in the configuration: `managed` or `external`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Managed => "managed",
            Mode::External => "external",
        }
    }
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Mode::Managed, Mode::External]
            .into_iter()
            .find(|mode| mode.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not \"managed\" or \"external\""))
    }
}

/// A secret string: `Debug` and `Display` print `***`. Serialized as the plain string,
/// so that a configuration written back still holds it.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How many shards (threads, each pinned to a core) a managed server runs:
/// `IGGY_SYSTEM_SHARDING_CPU_ALLOCATION`. Written as a number (`1`), `"all"`, or a
/// core range `"start..end"` (end exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuAllocation {
    /// One shard per available core.
    All,
    /// This many shards, pinned to cores `0..n`.
    Shards(u32),
    /// One shard per core in `start..end`.
    Cores {
        /// First core.
        start: u32,
        /// One past the last core.
        end: u32,
    },
}

impl Default for CpuAllocation {
    /// One shard: enough for one machine's agents, and the least memory.
    fn default() -> Self {
        CpuAllocation::Shards(1)
    }
}

impl CpuAllocation {
    /// How many shards the server will run.
    pub fn shards(&self) -> u32 {
        match *self {
            CpuAllocation::All => std::thread::available_parallelism()
                .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
                .unwrap_or(1),
            CpuAllocation::Shards(n) => n,
            CpuAllocation::Cores { start, end } => end.saturating_sub(start),
        }
    }
}

impl fmt::Display for CpuAllocation {
    /// The server's syntax: `all`, `4`, `0..2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpuAllocation::All => f.write_str("all"),
            CpuAllocation::Shards(n) => write!(f, "{n}"),
            CpuAllocation::Cores { start, end } => write!(f, "{start}..{end}"),
        }
    }
}

impl FromStr for CpuAllocation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "all" {
            return Ok(CpuAllocation::All);
        }
        let number = |part: &str| {
            part.trim().parse::<u32>().map_err(|_| {
                format!(r#"{s:?} is not a shard count, "all", or a core range like "0..2""#)
            })
        };
        if let Some((start, end)) = s.split_once("..") {
            let (start, end) = (number(start)?, number(end)?);
            if start >= end {
                return Err(format!("the core range {s:?} is empty"));
            }
            return Ok(CpuAllocation::Cores { start, end });
        }
        match number(s)? {
            0 => Err("the shard count must be at least 1".into()),
            n => Ok(CpuAllocation::Shards(n)),
        }
    }
}

impl Serialize for CpuAllocation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            CpuAllocation::Shards(n) => serializer.serialize_u32(*n),
            other => serializer.collect_str(other),
        }
    }
}

impl<'de> Deserialize<'de> for CpuAllocation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Text(String),
        }
        let text = match Raw::deserialize(deserializer)? {
            Raw::Number(n) => n.to_string(),
            Raw::Text(s) => s,
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How vibes reaches Iggy, and how a managed server is run. See the
/// [module docs](self) for the TOML form; [`IggyConfig::default`] for defaults.
///
/// `Debug` never shows a password or connection string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IggyConfig {
    /// Run the server (`managed`, the default) or use one that runs elsewhere
    /// (`external`).
    pub mode: Mode,
    /// The iggy-server binary (managed mode). Unset: `$IGGY_SERVER_BIN`, then
    /// `iggy-server` on `PATH` ([`IggyConfig::resolve_server_bin`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_bin: Option<PathBuf>,
    /// Where a managed server keeps its data, logs and root credentials. Unset:
    /// `<data dir of the user>/vibes/iggy` (`~/.local/share/vibes/iggy` on Linux).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Managed: the TCP (binary protocol) listen address, `ip:port`; port 0 picks a
    /// free port once, when the manager starts, and restarts keep it. External: the
    /// server's `host:port` (unless a connection string gives it). Default
    /// `127.0.0.1:0`.
    pub tcp_address: String,
    /// Managed: the HTTP listen address (the manager's readiness and health checks use
    /// its `/ping`); port 0 as for TCP. Default `127.0.0.1:0`.
    pub http_address: String,
    /// Managed: turn QUIC on at this `ip:port` (off by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quic_address: Option<String>,
    /// Managed: turn WebSocket on at this `ip:port` (off by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub websocket_address: Option<String>,
    /// External: user to sign in as (with `password`). Else `$IGGY_USERNAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// External: password of `username`. Else `$IGGY_PASSWORD`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// External: `iggy://user:password@host:port` (also `iggy+tcp://`), instead of
    /// `username`, `password` and `tcp_address`. Else `$IGGY_CONNECTION_STRING`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_string: Option<Secret>,
    /// Managed: shards of the server (default 1).
    pub cpu_allocation: CpuAllocation,
    /// Managed: cap of the server's buffer pool in MiB. It is a cap, not an
    /// allocation; 0 turns the pool off, else at least 512 (the server's minimum).
    /// Default 512.
    pub memory_pool_mib: u32,
    /// Managed: whether the server fsyncs what it writes (partition segments, its state
    /// log, and the periodic message saver). Default true.
    pub fsync: bool,
    /// Managed: how often the server saves buffered messages to disk
    /// (`message_saver.interval`). Default 1 s.
    #[serde(with = "humantime_serde")]
    pub saver_interval: Duration,
    /// How long connecting and signing in may take. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Managed: how long the server may take to become ready. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub startup_timeout: Duration,
    /// Managed: time between SIGTERM and SIGKILL when stopping. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub stop_grace: Duration,
}

impl Default for IggyConfig {
    fn default() -> Self {
        IggyConfig {
            mode: Mode::Managed,
            server_bin: None,
            data_dir: None,
            tcp_address: "127.0.0.1:0".into(),
            http_address: "127.0.0.1:0".into(),
            quic_address: None,
            websocket_address: None,
            username: None,
            password: None,
            connection_string: None,
            cpu_allocation: CpuAllocation::default(),
            memory_pool_mib: MIN_MEMORY_POOL_MIB,
            fsync: true,
            saver_interval: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(10),
            startup_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(10),
        }
    }
}

/// A configuration that cannot work, or something it needs that is missing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A field has a value that cannot work.
    #[error("iggy.{field}: {reason}")]
    Invalid {
        /// The field, e.g. `memory_pool_mib`.
        field: &'static str,
        /// What is wrong, and what would be right.
        reason: String,
    },
    /// External mode without usable credentials; `reason` says what was found and
    /// where to set them.
    #[error("no credentials for the external iggy-server: {reason}")]
    MissingCredentials {
        /// What is missing and where to set it.
        reason: String,
    },
    /// The iggy-server binary was not found; `how_to_get` says how to get it.
    #[error("{how_to_get}")]
    BinaryNotFound {
        /// What was looked for, and how to get the server.
        how_to_get: String,
    },
    /// No default data directory is known (no home directory); set `iggy.data_dir`.
    #[error("iggy.data_dir is not set and this user has no data directory; set iggy.data_dir")]
    NoDataDir,
}

/// Where the iggy-server binary came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinarySource {
    /// `iggy.server_bin` in the configuration.
    Config,
    /// The `IGGY_SERVER_BIN` environment variable.
    Env,
    /// `iggy-server` found on `PATH`.
    Path,
}

impl fmt::Display for BinarySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BinarySource::Config => "iggy.server_bin",
            BinarySource::Env => SERVER_BIN_ENV,
            BinarySource::Path => "PATH",
        })
    }
}

/// A resolved iggy-server binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerBinary {
    /// Its path.
    pub path: PathBuf,
    /// Where the path came from.
    pub source: BinarySource,
}

/// How to install the server vibes works with, for messages that refuse a binary.
pub(crate) fn install_hint() -> String {
    format!(
        "install iggy-server {SERVER_VERSION} (https://github.com/apache/iggy/releases, \
         server-{SERVER_VERSION}) and point {SERVER_BIN_ENV} or iggy.server_bin at it"
    )
}

/// How to get an iggy-server, for errors that did not find one.
fn how_to_get(what: &str) -> String {
    format!(
        "{what}. vibes needs iggy-server {SERVER_VERSION}: download the release binary from \
         https://github.com/apache/iggy/releases (server-{SERVER_VERSION}), then point vibes at it \
         with {SERVER_BIN_ENV}=/path/to/iggy-server or iggy.server_bin in the configuration \
         (or put it on PATH). To run the server yourself instead, use the container image \
         apache/iggy:{SERVER_VERSION} and set iggy.mode = \"external\""
    )
}

/// Whether `path` is a file someone may execute.
fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

impl IggyConfig {
    /// Checks every field that can be checked without the environment or the server.
    /// [`IggyManager::start`](crate::IggyManager::start) and
    /// [`external_connection`](Self::external_connection) call it.
    ///
    /// Errors: [`ConfigError::Invalid`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: String| Err(ConfigError::Invalid { field, reason });
        if self.mode == Mode::Managed {
            let tcp = self.listen_address("tcp_address", &self.tcp_address)?;
            let http = self.listen_address("http_address", &self.http_address)?;
            if tcp.port() != 0 && tcp.port() == http.port() && tcp.ip() == http.ip() {
                return invalid(
                    "http_address",
                    format!("{http} is also the TCP address; give each its own port"),
                );
            }
            if let Some(quic) = &self.quic_address {
                self.listen_address("quic_address", quic)?;
            }
            if let Some(websocket) = &self.websocket_address {
                self.listen_address("websocket_address", websocket)?;
            }
        }
        if let CpuAllocation::Shards(0) = self.cpu_allocation {
            return invalid(
                "cpu_allocation",
                "the shard count must be at least 1".into(),
            );
        }
        if let CpuAllocation::Cores { start, end } = self.cpu_allocation
            && start >= end
        {
            return invalid(
                "cpu_allocation",
                format!("the core range {start}..{end} is empty"),
            );
        }
        if self.memory_pool_mib != 0 && self.memory_pool_mib < MIN_MEMORY_POOL_MIB {
            return invalid(
                "memory_pool_mib",
                format!(
                    "{} MiB is below the server's minimum of {MIN_MEMORY_POOL_MIB} MiB; \
                     use 0 to turn the pool off (it is a cap, not an allocation)",
                    self.memory_pool_mib
                ),
            );
        }
        if self.memory_pool_mib > 1 << 20 {
            return invalid(
                "memory_pool_mib",
                format!("{} MiB (over 1 TiB) is surely a typo", self.memory_pool_mib),
            );
        }
        let positive = [
            ("saver_interval", self.saver_interval),
            ("connect_timeout", self.connect_timeout),
            ("startup_timeout", self.startup_timeout),
        ];
        for (field, value) in positive {
            if value < Duration::from_millis(1) {
                return invalid(field, "must be at least 1ms".into());
            }
        }
        Ok(())
    }

    fn listen_address(&self, field: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
        value.parse().map_err(|_| ConfigError::Invalid {
            field,
            reason: format!(
                "{value:?} is not an ip:port a managed server can listen on \
                 (e.g. 127.0.0.1:8090, or port 0 for a free one)"
            ),
        })
    }

    /// The data directory: `data_dir`, or `<user data dir>/vibes/iggy`; made absolute.
    ///
    /// Errors: [`ConfigError::NoDataDir`] when unset and the user has no data directory.
    pub fn data_dir(&self) -> Result<PathBuf, ConfigError> {
        let dir = match &self.data_dir {
            Some(dir) => dir.clone(),
            None => dirs::data_dir()
                .ok_or(ConfigError::NoDataDir)?
                .join("vibes")
                .join("iggy"),
        };
        std::path::absolute(&dir).map_err(|e| ConfigError::Invalid {
            field: "data_dir",
            reason: format!("{} cannot be made absolute: {e}", dir.display()),
        })
    }

    /// Finds the iggy-server binary: `server_bin`, else `$IGGY_SERVER_BIN`, else
    /// `iggy-server` on `PATH`. A path that is set but does not name an executable file
    /// is an error, not a reason to look further.
    ///
    /// Errors: [`ConfigError::BinaryNotFound`], saying how to get the server.
    pub fn resolve_server_bin(&self) -> Result<ServerBinary, ConfigError> {
        self.resolve_server_bin_with(env::var_os(SERVER_BIN_ENV), env::var_os("PATH"))
    }

    /// [`resolve_server_bin`](Self::resolve_server_bin) with the environment given.
    pub(crate) fn resolve_server_bin_with(
        &self,
        env_bin: Option<OsString>,
        path_var: Option<OsString>,
    ) -> Result<ServerBinary, ConfigError> {
        let given = |path: PathBuf, source: BinarySource| {
            if is_executable(&path) {
                Ok(ServerBinary { path, source })
            } else {
                Err(ConfigError::BinaryNotFound {
                    how_to_get: how_to_get(&format!(
                        "{source} is {}, which is not an executable file",
                        path.display()
                    )),
                })
            }
        };
        if let Some(path) = &self.server_bin {
            return given(path.clone(), BinarySource::Config);
        }
        if let Some(path) = env_bin.filter(|p| !p.is_empty()) {
            return given(PathBuf::from(path), BinarySource::Env);
        }
        let found = path_var
            .iter()
            .flat_map(env::split_paths)
            .filter(|dir| !dir.as_os_str().is_empty())
            .map(|dir| dir.join("iggy-server"))
            .find(|candidate| is_executable(candidate));
        match found {
            Some(path) => Ok(ServerBinary {
                path,
                source: BinarySource::Path,
            }),
            None => Err(ConfigError::BinaryNotFound {
                how_to_get: how_to_get(&format!(
                    "iggy-server not found: iggy.server_bin and {SERVER_BIN_ENV} are not set, \
                     and no iggy-server is on PATH"
                )),
            }),
        }
    }

    /// The connection to an external server: from `connection_string`, else
    /// `username` + `password` (with `tcp_address`), else `$IGGY_CONNECTION_STRING`,
    /// else `$IGGY_USERNAME` + `$IGGY_PASSWORD` (with `tcp_address`). The first source
    /// that is set wins; one that is set only in part is an error. There is no default
    /// user: Iggy's well-known `iggy`/`iggy` is never assumed.
    ///
    /// Errors: [`ConfigError::Invalid`] (also when the mode is not external, or a
    /// connection string does not parse), [`ConfigError::MissingCredentials`].
    pub fn external_connection(&self) -> Result<Connection, ConfigError> {
        self.external_connection_with(|name| env::var(name).ok())
    }

    /// [`external_connection`](Self::external_connection) with the environment given.
    pub(crate) fn external_connection_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Connection, ConfigError> {
        self.validate()?;
        if self.mode != Mode::External {
            return Err(ConfigError::Invalid {
                field: "mode",
                reason: "is \"managed\": the connection comes from the running IggyManager".into(),
            });
        }
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        let (address, username, password) = if let Some(cs) = &self.connection_string {
            if self.username.is_some() || self.password.is_some() {
                return Err(ConfigError::Invalid {
                    field: "connection_string",
                    reason: "is set together with iggy.username/iggy.password; keep one".into(),
                });
            }
            parse_connection_string(cs.expose(), "iggy.connection_string")?
        } else if self.username.is_some() || self.password.is_some() {
            let (Some(user), Some(password)) = (&self.username, &self.password) else {
                return Err(ConfigError::MissingCredentials {
                    reason: "iggy.username and iggy.password must be set together".into(),
                });
            };
            (self.external_address()?, user.clone(), password.clone())
        } else if let Some(cs) = env(CONNECTION_STRING_ENV) {
            parse_connection_string(&cs, CONNECTION_STRING_ENV)?
        } else {
            match (env(USERNAME_ENV), env(PASSWORD_ENV)) {
                (Some(user), Some(password)) => {
                    (self.external_address()?, user, Secret::new(password))
                }
                (None, None) => {
                    return Err(ConfigError::MissingCredentials {
                        reason: format!(
                            "set iggy.connection_string, or iggy.username and iggy.password, \
                             in the configuration, or {CONNECTION_STRING_ENV}, or \
                             {USERNAME_ENV} and {PASSWORD_ENV} in the environment"
                        ),
                    });
                }
                _ => {
                    return Err(ConfigError::MissingCredentials {
                        reason: format!("{USERNAME_ENV} and {PASSWORD_ENV} must be set together"),
                    });
                }
            }
        };
        let mut connection = Connection::new(address, username, password.expose());
        connection.connect_timeout = self.connect_timeout;
        Ok(connection)
    }

    fn external_address(&self) -> Result<String, ConfigError> {
        let address = self.tcp_address.trim();
        match split_host_port(address) {
            Some((_, port)) if port != 0 => Ok(address.to_owned()),
            _ => Err(ConfigError::Invalid {
                field: "tcp_address",
                reason: format!(
                    "{address:?}: external mode needs the server's host:port \
                     (e.g. 127.0.0.1:8090), or a connection string"
                ),
            }),
        }
    }
}

/// `host:port` split, the port parsed; IPv6 hosts in brackets.
fn split_host_port(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let port = port.parse().ok()?;
    if host.is_empty() {
        return None;
    }
    Some((host, port))
}

/// Parses `iggy://user:password@host:port` (or `iggy+tcp://`): address, user,
/// password. Errors never quote the string, which holds a password.
fn parse_connection_string(
    text: &str,
    source: &str,
) -> Result<(String, String, Secret), ConfigError> {
    let invalid = |what: &str| ConfigError::Invalid {
        field: "connection_string",
        reason: format!(
            "{source} is not a valid connection string ({what}); \
             expected iggy://user:password@host:port"
        ),
    };
    let rest = text
        .trim()
        .strip_prefix("iggy://")
        .or_else(|| text.trim().strip_prefix("iggy+tcp://"))
        .ok_or_else(|| invalid("it must start with iggy:// or iggy+tcp://"))?;
    let (credentials, address) = rest
        .rsplit_once('@')
        .ok_or_else(|| invalid("no user:password@ before the address"))?;
    if address.contains('?') {
        return Err(invalid("options after '?' are not supported"));
    }
    let (user, password) = credentials.split_once(':').ok_or_else(|| {
        invalid("no password (a personal access token alone is not supported; use user:password)")
    })?;
    if user.is_empty() || password.is_empty() {
        return Err(invalid("the user or password is empty"));
    }
    match split_host_port(address) {
        Some((_, port)) if port != 0 => {}
        _ => return Err(invalid("the address must be host:port with a port above 0")),
    }
    Ok((address.to_owned(), user.to_owned(), Secret::new(password)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<IggyConfig, toml::de::Error> {
        toml::from_str(text)
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn external() -> IggyConfig {
        IggyConfig {
            mode: Mode::External,
            ..IggyConfig::default()
        }
    }

    #[test]
    fn modes_parse_by_the_names_serde_uses() {
        for mode in [Mode::Managed, Mode::External] {
            assert_eq!(mode.as_str().parse::<Mode>(), Ok(mode));
            let parsed = parse(&format!("mode = {:?}", mode.as_str())).unwrap();
            assert_eq!(parsed.mode, mode);
        }
        let err = "Managed".parse::<Mode>().unwrap_err();
        assert!(err.contains("\"Managed\" is not"), "{err}");
    }

    #[test]
    fn empty_table_gives_the_documented_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config, IggyConfig::default());
        assert_eq!(config.mode, Mode::Managed);
        assert_eq!(config.tcp_address, "127.0.0.1:0");
        assert_eq!(config.http_address, "127.0.0.1:0");
        assert_eq!(config.cpu_allocation, CpuAllocation::Shards(1));
        assert_eq!(config.memory_pool_mib, 512);
        assert!(config.fsync);
        assert_eq!(config.saver_interval, Duration::from_secs(1));
        assert_eq!(config.connect_timeout, Duration::from_secs(10));
        assert_eq!(config.stop_grace, Duration::from_secs(10));
        assert!(config.quic_address.is_none() && config.websocket_address.is_none());
        config.validate().unwrap();
    }

    #[test]
    fn every_field_parses_from_toml() {
        let config = parse(
            r#"
            mode = "external"
            server_bin = "/opt/iggy/iggy-server"
            data_dir = "/var/lib/vibes/iggy"
            tcp_address = "10.0.0.5:8090"
            http_address = "127.0.0.1:3000"
            quic_address = "127.0.0.1:8080"
            websocket_address = "127.0.0.1:8092"
            username = "vibes"
            password = "hunter22"
            cpu_allocation = "0..2"
            memory_pool_mib = 1024
            fsync = false
            saver_interval = "500ms"
            connect_timeout = "3s"
            startup_timeout = "1m"
            stop_grace = "20s"
            "#,
        )
        .unwrap();
        assert_eq!(config.mode, Mode::External);
        assert_eq!(config.server_bin, Some("/opt/iggy/iggy-server".into()));
        assert_eq!(
            config.cpu_allocation,
            CpuAllocation::Cores { start: 0, end: 2 }
        );
        assert_eq!(config.password, Some(Secret::new("hunter22")));
        assert_eq!(config.saver_interval, Duration::from_millis(500));
        assert_eq!(config.startup_timeout, Duration::from_secs(60));
        config.validate().unwrap();
    }

    #[test]
    fn serializing_and_parsing_again_gives_the_same_config() {
        let config = IggyConfig {
            cpu_allocation: CpuAllocation::All,
            password: Some("pw".into()),
            saver_interval: Duration::from_millis(1500),
            ..IggyConfig::default()
        };
        let text = toml::to_string(&config).unwrap();
        assert_eq!(parse(&text).unwrap(), config);
    }

    #[test]
    fn cpu_allocation_takes_a_number_all_or_a_range() {
        let of =
            |value: &str| parse(&format!("cpu_allocation = {value}")).map(|c| c.cpu_allocation);
        assert_eq!(of("2").unwrap(), CpuAllocation::Shards(2));
        assert_eq!(of("\"3\"").unwrap(), CpuAllocation::Shards(3));
        assert_eq!(of("\"all\"").unwrap(), CpuAllocation::All);
        assert_eq!(
            of("\"1..3\"").unwrap(),
            CpuAllocation::Cores { start: 1, end: 3 }
        );
        for bad in ["0", "-1", "\"many\"", "\"3..1\""] {
            assert!(of(bad).is_err(), "{bad} was accepted");
        }
        assert_eq!(
            CpuAllocation::Cores { start: 1, end: 3 }.to_string(),
            "1..3"
        );
        assert_eq!(CpuAllocation::Cores { start: 1, end: 3 }.shards(), 2);
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_errors_that_name_the_field() {
        let unknown = parse("tcp_adress = \"127.0.0.1:1\"")
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("tcp_adress"), "{unknown}");
        let mode = parse("mode = \"embedded\"").unwrap_err().to_string();
        assert!(mode.contains("embedded"), "{mode}");
        let duration = parse("connect_timeout = \"soon\"").unwrap_err().to_string();
        assert!(duration.contains("connect_timeout"), "{duration}");
        // When appends are acknowledged is the log's durability, on every backend.
        let flush = parse("flush = \"always\"").unwrap_err().to_string();
        assert!(flush.contains("unknown field `flush`"), "{flush}");
    }

    #[test]
    fn bad_values_are_rejected_with_the_field_and_the_fix() {
        let cases = [
            (
                IggyConfig {
                    memory_pool_mib: 256,
                    ..IggyConfig::default()
                },
                "iggy.memory_pool_mib: 256 MiB is below the server's minimum of 512 MiB",
            ),
            (
                IggyConfig {
                    tcp_address: "localhost:8090".into(),
                    ..IggyConfig::default()
                },
                "iggy.tcp_address: \"localhost:8090\" is not an ip:port",
            ),
            (
                IggyConfig {
                    tcp_address: "127.0.0.1:9000".into(),
                    http_address: "127.0.0.1:9000".into(),
                    ..IggyConfig::default()
                },
                "iggy.http_address: 127.0.0.1:9000 is also the TCP address",
            ),
            (
                IggyConfig {
                    connect_timeout: Duration::ZERO,
                    ..IggyConfig::default()
                },
                "iggy.connect_timeout: must be at least 1ms",
            ),
            (
                IggyConfig {
                    cpu_allocation: CpuAllocation::Shards(0),
                    ..IggyConfig::default()
                },
                "iggy.cpu_allocation",
            ),
        ];
        for (config, expected) in cases {
            let message = config.validate().unwrap_err().to_string();
            assert!(message.starts_with(expected), "{message}");
        }
        let pool_off = IggyConfig {
            memory_pool_mib: 0,
            ..IggyConfig::default()
        };
        pool_off.validate().unwrap();
    }

    #[test]
    fn passwords_never_appear_in_debug_output() {
        let config = IggyConfig {
            password: Some("hunter22-secret".into()),
            connection_string: Some("iggy://u:cs-secret@h:1".into()),
            ..IggyConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter22-secret"), "{shown}");
        assert!(!shown.contains("cs-secret"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
        let connection = IggyConfig {
            connection_string: Some("iggy://u:cs-secret@h:1".into()),
            ..external()
        }
        .external_connection_with(no_env)
        .unwrap();
        let shown = format!("{connection:?}");
        assert!(!shown.contains("cs-secret"), "{shown}");
    }

    #[test]
    fn external_credentials_come_from_the_config_first() {
        let config = IggyConfig {
            tcp_address: "iggy.internal:8090".into(),
            username: Some("vibes".into()),
            password: Some("pw-config".into()),
            ..external()
        };
        let env = |name: &str| match name {
            USERNAME_ENV => Some("env-user".to_owned()),
            PASSWORD_ENV => Some("env-pw".to_owned()),
            _ => None,
        };
        let connection = config.external_connection_with(env).unwrap();
        assert_eq!(connection.tcp_address, "iggy.internal:8090");
        assert_eq!(connection.username, "vibes");
        assert_eq!(connection.password, "pw-config");
        assert_eq!(connection.connect_timeout, Duration::from_secs(10));
    }

    #[test]
    fn external_credentials_fall_back_to_the_environment() {
        let config = IggyConfig {
            tcp_address: "127.0.0.1:8090".into(),
            ..external()
        };
        let env = |name: &str| match name {
            USERNAME_ENV => Some("env-user".to_owned()),
            PASSWORD_ENV => Some("env-pw".to_owned()),
            _ => None,
        };
        let connection = config.external_connection_with(env).unwrap();
        assert_eq!(
            (connection.username.as_str(), connection.password.as_str()),
            ("env-user", "env-pw")
        );
    }

    #[test]
    fn a_connection_string_gives_address_and_credentials() {
        let config = IggyConfig {
            connection_string: Some("iggy://alice:p@ss:w0rd@10.1.2.3:8090".into()),
            ..external()
        };
        let connection = config.external_connection_with(no_env).unwrap();
        assert_eq!(connection.tcp_address, "10.1.2.3:8090");
        assert_eq!(connection.username, "alice");
        assert_eq!(connection.password, "p@ss:w0rd");

        let env = |name: &str| {
            (name == CONNECTION_STRING_ENV).then(|| "iggy+tcp://bob:pw@[::1]:8090".to_owned())
        };
        let connection = external().external_connection_with(env).unwrap();
        assert_eq!(connection.tcp_address, "[::1]:8090");
        assert_eq!(connection.username, "bob");
    }

    #[test]
    fn bad_connection_strings_are_rejected_without_echoing_them() {
        for bad in [
            "http://u:secretpw@h:1",
            "iggy://secretpw@h:1",
            "iggy://u:secretpw@h",
            "iggy://u:secretpw@h:0",
            "iggy://u:secretpw@h:1?tls=true",
            "iggy://:secretpw@h:1",
        ] {
            let config = IggyConfig {
                connection_string: Some(bad.into()),
                ..external()
            };
            let message = config
                .external_connection_with(no_env)
                .unwrap_err()
                .to_string();
            assert!(message.contains("iggy.connection_string"), "{message}");
            assert!(!message.contains("secretpw"), "{bad}: {message}");
        }
    }

    #[test]
    fn missing_or_partial_credentials_say_where_to_set_them() {
        let none = external().external_connection_with(no_env).unwrap_err();
        let message = none.to_string();
        for place in [
            "iggy.connection_string",
            "iggy.username",
            CONNECTION_STRING_ENV,
            USERNAME_ENV,
            PASSWORD_ENV,
        ] {
            assert!(message.contains(place), "{message}");
        }
        let half = IggyConfig {
            username: Some("vibes".into()),
            ..external()
        };
        let message = half
            .external_connection_with(no_env)
            .unwrap_err()
            .to_string();
        assert!(message.contains("set together"), "{message}");
        let env_half = |name: &str| (name == USERNAME_ENV).then(|| "u".to_owned());
        let message = IggyConfig {
            tcp_address: "127.0.0.1:8090".into(),
            ..external()
        }
        .external_connection_with(env_half)
        .unwrap_err()
        .to_string();
        assert!(message.contains(PASSWORD_ENV), "{message}");
    }

    #[test]
    fn external_mode_needs_a_real_address() {
        let env = |name: &str| match name {
            USERNAME_ENV | PASSWORD_ENV => Some("x".to_owned()),
            _ => None,
        };
        let message = external()
            .external_connection_with(env)
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("iggy.tcp_address"), "{message}");
    }

    #[test]
    fn managed_mode_has_no_external_connection() {
        let err = IggyConfig::default()
            .external_connection_with(no_env)
            .unwrap_err();
        assert!(err.to_string().starts_with("iggy.mode"), "{err}");
    }

    fn executable(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn server_bin_comes_from_config_then_env_then_path() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        for d in [&a, &b, &c] {
            std::fs::create_dir(d).unwrap();
        }
        let from_config = executable(&a, "my-iggy");
        let from_env = executable(&b, "iggy-server");
        let on_path = executable(&c, "iggy-server");
        let path_var = env::join_paths([dir.path().join("missing"), c.clone()]).unwrap();

        let configured = IggyConfig {
            server_bin: Some(from_config.clone()),
            ..IggyConfig::default()
        };
        let found = configured
            .resolve_server_bin_with(Some(from_env.clone().into()), Some(path_var.clone()))
            .unwrap();
        assert_eq!(
            (found.path, found.source),
            (from_config, BinarySource::Config)
        );

        let default = IggyConfig::default();
        let found = default
            .resolve_server_bin_with(Some(from_env.clone().into()), Some(path_var.clone()))
            .unwrap();
        assert_eq!((found.path, found.source), (from_env, BinarySource::Env));

        let found = default
            .resolve_server_bin_with(None, Some(path_var))
            .unwrap();
        assert_eq!((found.path, found.source), (on_path, BinarySource::Path));
    }

    #[test]
    fn a_missing_server_bin_says_how_to_get_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let err = IggyConfig::default()
            .resolve_server_bin_with(None, Some(dir.path().into()))
            .unwrap_err();
        let message = err.to_string();
        for needle in [
            "https://github.com/apache/iggy/releases",
            "server-0.8.0",
            "apache/iggy:0.8.0",
            "IGGY_SERVER_BIN",
            "iggy.server_bin",
        ] {
            assert!(message.contains(needle), "{needle} missing from: {message}");
        }
    }

    #[test]
    fn a_set_but_wrong_server_bin_is_an_error_not_a_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let on_path = executable(dir.path(), "iggy-server");
        let not_executable = dir.path().join("plain");
        std::fs::write(&not_executable, "").unwrap();
        let path_var = Some(OsString::from(dir.path()));
        let err = IggyConfig {
            server_bin: Some(not_executable),
            ..IggyConfig::default()
        }
        .resolve_server_bin_with(None, path_var.clone())
        .unwrap_err();
        assert!(err.to_string().contains("iggy.server_bin is"), "{err}");
        let err = IggyConfig::default()
            .resolve_server_bin_with(Some(dir.path().join("nope").into()), path_var)
            .unwrap_err();
        assert!(err.to_string().contains("IGGY_SERVER_BIN is"), "{err}");
        assert!(on_path.exists());
    }

    #[test]
    fn data_dir_defaults_under_the_user_data_dir_and_is_absolute() {
        match dirs::data_dir() {
            Some(base) => assert_eq!(
                IggyConfig::default().data_dir().unwrap(),
                base.join("vibes/iggy")
            ),
            None => {
                let err = IggyConfig::default().data_dir().unwrap_err();
                let no_dir = matches!(err, ConfigError::NoDataDir);
                assert!(no_dir, "{err}");
            }
        }
        let relative = IggyConfig {
            data_dir: Some("rel/dir".into()),
            ..IggyConfig::default()
        };
        let resolved = relative.data_dir().unwrap();
        assert!(resolved.is_absolute() && resolved.ends_with("rel/dir"));
    }
}
