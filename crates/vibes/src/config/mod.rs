//! The host's configuration: defaults, then a TOML file, then `VIBES_*` environment
//! variables, then flags. Every value remembers where it came from, and a bad value is
//! an error naming the key, where it was set and what is allowed.
//!
//! Every key, the `[iggy]` section's too, is one row of the table in [`keys`]: its
//! name, environment variable, what it accepts, how it is set and shown. [`file`]
//! reads the TOML file, [`value`] the values.

mod file;
mod keys;
mod value;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vibes_iggy::IggyConfig;
use vibes_log::{Durability, TopicName};

use file::{FileError, line_column};
use keys::KEYS;
use value::RawValue;
pub use value::parse_size;

/// Which log backend the host uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// In memory: gone when the command ends. For trying things out and tests.
    Memory,
    /// vibes-filelog under `data_dir` (the default).
    File,
    /// Apache Iggy, as `[iggy]` configures it.
    Iggy,
}

impl BackendKind {
    fn as_str(self) -> &'static str {
        match self {
            BackendKind::Memory => "memory",
            BackendKind::File => "file",
            BackendKind::Iggy => "iggy",
        }
    }
}

/// The durability level named in config or on a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurabilityLevel {
    Always,
    Interval,
    Never,
}

impl DurabilityLevel {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "always" => Some(DurabilityLevel::Always),
            "interval" => Some(DurabilityLevel::Interval),
            "never" => Some(DurabilityLevel::Never),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            DurabilityLevel::Always => "always",
            DurabilityLevel::Interval => "interval",
            DurabilityLevel::Never => "never",
        }
    }

    pub const ALLOWED: &'static str = "always, interval or never";
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    Env(&'static str),
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File { path, line, column } => {
                write!(f, "{}:{line}:{column}", path.display())
            }
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// A bad config value, or a config file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid value {value} for `{key}` in {origin}: expected {allowed}")]
    InvalidValue {
        key: &'static str,
        value: String,
        origin: Origin,
        allowed: String,
    },
    #[error("cannot read config file {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("invalid config file {}: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error(
        "no default data directory on this system (no home directory); set `data_dir` in the config, VIBES_DATA_DIR or --data-dir"
    )]
    NoDataDir,
    #[error("environment variable {var} is not valid UTF-8")]
    EnvNotUnicode { var: &'static str },
    /// A value that parses but cannot work with the rest of `[iggy]` (a port taken
    /// twice, a memory pool below the server's minimum, ...).
    #[error("invalid value for `{key}` in {origin}: {reason}")]
    Iggy {
        key: String,
        origin: Origin,
        reason: String,
    },
    /// A key earlier versions had, with what replaced it.
    #[error("`{key}` in {origin} is no longer a key: {instead}")]
    Removed {
        key: &'static str,
        origin: Origin,
        instead: &'static str,
    },
}

/// The merged configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file in use, and whether it exists.
    pub file: PathBuf,
    pub file_exists: bool,
    pub data_dir: PathBuf,
    pub backend: BackendKind,
    pub topic: TopicName,
    pub partitions: u32,
    pub durability: DurabilityLevel,
    pub sync_interval: Duration,
    pub segment_bytes: u64,
    pub retention_max_age: Option<Duration>,
    pub retention_max_bytes: Option<u64>,
    pub bd_debounce: Duration,
    pub bd_poll_interval: Duration,
    /// A price file for `vibes usage` over the built-in prices.
    pub usage_prices: Option<PathBuf>,
    /// The `[iggy]` section (for `backend = "iggy"` and `vibes iggy`), with its data
    /// directory defaulting to `<data_dir>/iggy`. Its keys are `iggy.*` in [`KEYS`],
    /// each with its origin.
    pub iggy: IggyConfig,
    origins: BTreeMap<&'static str, Origin>,
}

/// Values given on the command line, each with the flag that gave it.
#[derive(Debug, Default)]
pub struct FlagValues {
    pub values: Vec<(&'static str, &'static str, String)>,
}

impl FlagValues {
    /// Records that `flag` set `key` to `value`.
    pub fn set(&mut self, key: &'static str, flag: &'static str, value: String) {
        self.values.push((key, flag, value));
    }
}

impl Config {
    /// The default config file: `<config dir>/vibes/config.toml`.
    pub fn default_file() -> Option<PathBuf> {
        dirs::config_dir().map(|d| d.join("vibes").join("config.toml"))
    }

    /// Loads the config: defaults, then `file` (or the default file, which may be
    /// absent; an explicitly named file must exist), then the environment as `env`
    /// returns it, then `flags`.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&'static str) -> Option<std::ffi::OsString>,
        flags: &FlagValues,
    ) -> Result<Config, ConfigError> {
        let (path, required) = match file {
            Some(path) => (path.to_owned(), true),
            None => (
                Self::default_file().unwrap_or_else(|| PathBuf::from("vibes.toml")),
                false,
            ),
        };
        let mut config = Config::defaults(path.clone());
        let source = match std::fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => None,
            Err(error) => return Err(ConfigError::Read { path, error }),
        };
        config.file_exists = source.is_some();
        if let Some(text) = source {
            let origin_at = |offset| {
                let (line, column) = line_column(&text, offset);
                Origin::File {
                    path: path.clone(),
                    line,
                    column,
                }
            };
            let values = file::values(&text).map_err(|e| match e {
                FileError::Syntax(message) => ConfigError::Syntax {
                    path: path.clone(),
                    message,
                },
                FileError::Removed {
                    key,
                    offset,
                    instead,
                } => ConfigError::Removed {
                    key,
                    origin: origin_at(offset),
                    instead,
                },
            })?;
            for found in values {
                config.set(found.key, found.value, origin_at(found.offset))?;
            }
        }
        for key in KEYS {
            if let Some(value) = env(key.env) {
                let value = value
                    .into_string()
                    .map_err(|_| ConfigError::EnvNotUnicode { var: key.env })?;
                config.set(key.name, RawValue::Text(value), Origin::Env(key.env))?;
            }
        }
        for (key, flag, value) in &flags.values {
            config.set(key, RawValue::Text(value.clone()), Origin::Flag(flag))?;
        }
        if config.origin("data_dir") == &Origin::Default && config.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::NoDataDir);
        }
        if config.iggy.data_dir.is_none() {
            config.iggy.data_dir = Some(config.data_dir.join("iggy"));
        }
        config.iggy.validate().map_err(|e| {
            let (key, reason) = match e {
                vibes_iggy::ConfigError::Invalid { field, reason } => {
                    (format!("iggy.{field}"), reason)
                }
                other => ("iggy".to_owned(), other.to_string()),
            };
            ConfigError::Iggy {
                origin: config.origin(&key).clone(),
                key,
                reason,
            }
        })?;
        Ok(config)
    }

    fn defaults(file: PathBuf) -> Config {
        Config {
            file,
            file_exists: false,
            data_dir: dirs::data_dir()
                .map(|d| d.join("vibes"))
                .unwrap_or_default(),
            backend: BackendKind::File,
            topic: TopicName::new("vibes/events").expect("a valid default topic"),
            partitions: 1,
            durability: DurabilityLevel::Always,
            sync_interval: Duration::from_millis(100),
            segment_bytes: 64 << 20,
            retention_max_age: None,
            retention_max_bytes: None,
            bd_debounce: Duration::from_millis(200),
            bd_poll_interval: Duration::from_millis(100),
            usage_prices: None,
            iggy: IggyConfig::default(),
            origins: BTreeMap::new(),
        }
    }

    fn set(&mut self, name: &str, value: RawValue, origin: Origin) -> Result<(), ConfigError> {
        let key = KEYS
            .iter()
            .find(|k| k.name == name)
            .expect("every settable key is in KEYS");
        let shown = value.describe();
        match (key.apply)(self, value) {
            Ok(()) => {
                self.origins.insert(key.name, origin);
                Ok(())
            }
            Err(detail) => Err(ConfigError::InvalidValue {
                key: key.name,
                value: shown,
                origin,
                allowed: if detail.is_empty() {
                    key.allowed.to_owned()
                } else {
                    format!("{} ({detail})", key.allowed)
                },
            }),
        }
    }

    /// Where `key`'s value came from.
    pub fn origin(&self, key: &str) -> &Origin {
        self.origins.get(key).unwrap_or(&Origin::Default)
    }

    /// Every key, its value as TOML text and its origin, in a fixed order.
    pub fn entries(&self) -> Vec<(&'static str, String, &Origin)> {
        KEYS.iter()
            .map(|k| (k.name, (k.show)(self), self.origin(k.name)))
            .collect()
    }

    /// The durability for `level`, with this config's sync interval.
    pub fn durability_of(&self, level: DurabilityLevel) -> Durability {
        match level {
            DurabilityLevel::Always => Durability::Always,
            DurabilityLevel::Interval => Durability::Interval(self.sync_interval),
            DurabilityLevel::Never => Durability::Never,
        }
    }

    /// The durability every append uses unless a command's flag says otherwise:
    /// `log.durability`, with this config's sync interval.
    pub fn log_durability(&self) -> Durability {
        self.durability_of(self.durability)
    }

    /// Checks a durability flag value against the allowed levels.
    pub fn parse_durability_flag(&self, text: &str) -> Result<Durability, ConfigError> {
        DurabilityLevel::parse(text)
            .map(|level| self.durability_of(level))
            .ok_or_else(|| ConfigError::InvalidValue {
                key: "log.durability",
                value: format!("{text:?}"),
                origin: Origin::Flag("--durability"),
                allowed: DurabilityLevel::ALLOWED.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests;
