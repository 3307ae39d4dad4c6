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
//!
//! One job per module: `binary` (finding the server binary), `external` (the
//! connection to an external server), `cpu` (shards), `secret` (secrets); this file
//! holds the configuration itself and its checks.

mod binary;
mod cpu;
mod external;
mod secret;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub(crate) use binary::install_hint;
pub use binary::{BinarySource, SERVER_BIN_ENV, ServerBinary};
pub use cpu::CpuAllocation;
pub use external::{CONNECTION_STRING_ENV, PASSWORD_ENV, USERNAME_ENV};
pub use secret::Secret;

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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<IggyConfig, toml::de::Error> {
        toml::from_str(text)
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
            mode: Mode::External,
            ..IggyConfig::default()
        }
        .external_connection_with(|_| None)
        .unwrap();
        let shown = format!("{connection:?}");
        assert!(!shown.contains("cs-secret"), "{shown}");
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
