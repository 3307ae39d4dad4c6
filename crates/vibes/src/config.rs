//! The host's configuration: defaults, then a TOML file, then `VIBES_*` environment
//! variables, then flags. Every value remembers where it came from, and a bad value is
//! an error naming the key, where it was set and what is allowed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use vibes_iggy::IggyConfig;
use vibes_log::{Durability, TopicName};

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

/// A value before it is checked: text from env and flags, any TOML value from the file.
#[derive(Debug)]
enum RawValue {
    Text(String),
    Integer(i64),
    /// Another TOML type, by name.
    Other(&'static str),
}

impl RawValue {
    fn from_toml(value: toml::Value) -> Self {
        match value {
            toml::Value::String(s) => RawValue::Text(s),
            toml::Value::Integer(i) => RawValue::Integer(i),
            other => RawValue::Other(other.type_str()),
        }
    }

    fn describe(&self) -> String {
        match self {
            RawValue::Text(s) => format!("{s:?}"),
            RawValue::Integer(i) => i.to_string(),
            RawValue::Other(kind) => format!("a TOML {kind}"),
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
    #[error("invalid [iggy] section in {origin}: {message}")]
    Iggy { origin: Origin, message: String },
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
    /// directory defaulting to `<data_dir>/iggy`.
    pub iggy: IggyConfig,
    /// Where the `[iggy]` section was, if the file had one.
    pub iggy_origin: Option<Origin>,
    origins: BTreeMap<&'static str, Origin>,
}

/// One configuration key: its TOML name, its environment variable, what it accepts and
/// how it is shown.
struct Key {
    name: &'static str,
    env: &'static str,
    allowed: &'static str,
    apply: fn(&mut Config, RawValue) -> Result<(), String>,
    show: fn(&Config) -> String,
}

const DURATION: &str = "a duration such as 500ms, 5s or 2m";

const KEYS: &[Key] = &[
    Key {
        name: "data_dir",
        env: "VIBES_DATA_DIR",
        allowed: "a directory path",
        apply: |c, v| {
            c.data_dir = path(v)?;
            Ok(())
        },
        show: |c| quote(&c.data_dir.display().to_string()),
    },
    Key {
        name: "backend",
        env: "VIBES_BACKEND",
        allowed: "memory, file or iggy",
        apply: |c, v| {
            c.backend = match text(v)?.as_str() {
                "memory" => BackendKind::Memory,
                "file" => BackendKind::File,
                "iggy" => BackendKind::Iggy,
                _ => return Err(String::new()),
            };
            Ok(())
        },
        show: |c| quote(c.backend.as_str()),
    },
    Key {
        name: "log.topic",
        env: "VIBES_LOG_TOPIC",
        allowed: "`stream/topic`, each part 1 to 128 of A-Z a-z 0-9 . _ -, not starting with .",
        apply: |c, v| {
            c.topic = TopicName::new(&text(v)?).map_err(|_| String::new())?;
            Ok(())
        },
        show: |c| quote(c.topic.as_str()),
    },
    Key {
        name: "log.partitions",
        env: "VIBES_LOG_PARTITIONS",
        allowed: "a whole number from 1 to 1024",
        apply: |c, v| {
            let n = integer(v)?;
            c.partitions = u32::try_from(n)
                .ok()
                .filter(|n| (1..=1024).contains(n))
                .ok_or_else(String::new)?;
            Ok(())
        },
        show: |c| c.partitions.to_string(),
    },
    Key {
        name: "log.durability",
        env: "VIBES_LOG_DURABILITY",
        allowed: DurabilityLevel::ALLOWED,
        apply: |c, v| {
            c.durability = DurabilityLevel::parse(&text(v)?).ok_or_else(String::new)?;
            Ok(())
        },
        show: |c| quote(c.durability.as_str()),
    },
    Key {
        name: "log.sync_interval",
        env: "VIBES_LOG_SYNC_INTERVAL",
        allowed: DURATION,
        apply: |c, v| {
            c.sync_interval = duration(v)?;
            Ok(())
        },
        show: |c| quote(&humantime::format_duration(c.sync_interval).to_string()),
    },
    Key {
        name: "log.segment_bytes",
        env: "VIBES_LOG_SEGMENT_BYTES",
        allowed: "a size from 4KiB to 2GiB such as 64MiB",
        apply: |c, v| {
            let bytes = size(v)?;
            if !(4096..=2 << 30).contains(&bytes) {
                return Err(String::new());
            }
            c.segment_bytes = bytes;
            Ok(())
        },
        show: |c| c.segment_bytes.to_string(),
    },
    Key {
        name: "log.retention_max_age",
        env: "VIBES_LOG_RETENTION_MAX_AGE",
        allowed: "a duration such as 7days or 12h, or \"none\"",
        apply: |c, v| {
            c.retention_max_age = optional(v, duration)?;
            Ok(())
        },
        show: |c| match c.retention_max_age {
            Some(d) => quote(&humantime::format_duration(d).to_string()),
            None => quote("none"),
        },
    },
    Key {
        name: "log.retention_max_bytes",
        env: "VIBES_LOG_RETENTION_MAX_BYTES",
        allowed: "a size in bytes such as 10GiB, or \"none\"",
        apply: |c, v| {
            c.retention_max_bytes = optional(v, size)?;
            Ok(())
        },
        show: |c| match c.retention_max_bytes {
            Some(b) => b.to_string(),
            None => quote("none"),
        },
    },
    Key {
        name: "bd.debounce",
        env: "VIBES_BD_DEBOUNCE",
        allowed: DURATION,
        apply: |c, v| {
            c.bd_debounce = duration(v)?;
            Ok(())
        },
        show: |c| quote(&humantime::format_duration(c.bd_debounce).to_string()),
    },
    Key {
        name: "bd.poll_interval",
        env: "VIBES_BD_POLL_INTERVAL",
        allowed: DURATION,
        apply: |c, v| {
            let d = duration(v)?;
            if d.is_zero() {
                return Err(String::new());
            }
            c.bd_poll_interval = d;
            Ok(())
        },
        show: |c| quote(&humantime::format_duration(c.bd_poll_interval).to_string()),
    },
    Key {
        name: "usage.prices",
        env: "VIBES_USAGE_PRICES",
        allowed: "the path of a price file, or \"builtin\"",
        apply: |c, v| {
            let p = path(v)?;
            c.usage_prices = (p.as_os_str() != "builtin").then_some(p);
            Ok(())
        },
        show: |c| match &c.usage_prices {
            Some(p) => quote(&p.display().to_string()),
            None => quote("builtin"),
        },
    },
];

/// The TOML file's shape. Every leaf keeps its span so errors can name the line.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    data_dir: Option<Spanned<toml::Value>>,
    backend: Option<Spanned<toml::Value>>,
    #[serde(default)]
    log: LogShape,
    #[serde(default)]
    bd: BdShape,
    #[serde(default)]
    usage: UsageShape,
    iggy: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageShape {
    prices: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogShape {
    topic: Option<Spanned<toml::Value>>,
    partitions: Option<Spanned<toml::Value>>,
    durability: Option<Spanned<toml::Value>>,
    sync_interval: Option<Spanned<toml::Value>>,
    segment_bytes: Option<Spanned<toml::Value>>,
    retention_max_age: Option<Spanned<toml::Value>>,
    retention_max_bytes: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BdShape {
    debounce: Option<Spanned<toml::Value>>,
    poll_interval: Option<Spanned<toml::Value>>,
}

impl FileShape {
    /// The values set in the file, by key name.
    fn into_values(self) -> Vec<(&'static str, Spanned<toml::Value>)> {
        let FileShape {
            data_dir,
            backend,
            log,
            bd,
            usage,
            iggy: _,
        } = self;
        [
            ("data_dir", data_dir),
            ("backend", backend),
            ("log.topic", log.topic),
            ("log.partitions", log.partitions),
            ("log.durability", log.durability),
            ("log.sync_interval", log.sync_interval),
            ("log.segment_bytes", log.segment_bytes),
            ("log.retention_max_age", log.retention_max_age),
            ("log.retention_max_bytes", log.retention_max_bytes),
            ("bd.debounce", bd.debounce),
            ("bd.poll_interval", bd.poll_interval),
            ("usage.prices", usage.prices),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.map(|v| (key, v)))
        .collect()
    }
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
            let shape: FileShape = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
                path: path.clone(),
                message: syntax_message(&e, &text),
            })?;
            if let Some(section) = &shape.iggy {
                let (line, column) = line_column(&text, section.span().start);
                let origin = Origin::File {
                    path: path.clone(),
                    line,
                    column,
                };
                if section.get_ref().get("flush").is_some() {
                    return Err(ConfigError::Iggy {
                        origin,
                        message: "`flush` is no longer an [iggy] key: when an append is \
                                  acknowledged is `log.durability` (always, interval or never), \
                                  the same on every backend; move the value there"
                            .into(),
                    });
                }
                config.iggy = section
                    .get_ref()
                    .clone()
                    .try_into::<IggyConfig>()
                    .map_err(|e| ConfigError::Iggy {
                        origin: origin.clone(),
                        message: e.message().trim_end().to_owned(),
                    })?;
                config.iggy_origin = Some(origin);
            }
            for (key, value) in shape.into_values() {
                let (line, column) = line_column(&text, value.span().start);
                let origin = Origin::File {
                    path: path.clone(),
                    line,
                    column,
                };
                config.set(key, RawValue::from_toml(value.into_inner()), origin)?;
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
        config.iggy.validate().map_err(|e| ConfigError::Iggy {
            origin: config.iggy_origin.clone().unwrap_or(Origin::Default),
            message: e.to_string(),
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
            iggy_origin: None,
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

    /// The `[iggy]` section as TOML, passwords and connection strings shown as `***`.
    pub fn iggy_toml(&self) -> String {
        let mut value = toml::Value::try_from(&self.iggy)
            .unwrap_or_else(|_| toml::Value::Table(toml::Table::new()));
        if let Some(table) = value.as_table_mut() {
            for secret in ["password", "connection_string"] {
                if table.contains_key(secret) {
                    table.insert(secret.to_owned(), toml::Value::String("***".to_owned()));
                }
            }
        }
        toml::to_string(&value).unwrap_or_default()
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

fn quote(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

fn text(value: RawValue) -> Result<String, String> {
    match value {
        RawValue::Text(s) => Ok(s),
        _ => Err(String::new()),
    }
}

fn path(value: RawValue) -> Result<PathBuf, String> {
    let text = text(value)?;
    if text.is_empty() {
        return Err("it is empty".to_owned());
    }
    match text.strip_prefix("~/") {
        Some(rest) => dirs::home_dir()
            .map(|home| home.join(rest))
            .ok_or_else(|| "`~` given but there is no home directory".to_owned()),
        None => Ok(PathBuf::from(text)),
    }
}

fn integer(value: RawValue) -> Result<i64, String> {
    match value {
        RawValue::Integer(i) => Ok(i),
        RawValue::Text(s) => s.trim().parse().map_err(|_| String::new()),
        RawValue::Other(_) => Err(String::new()),
    }
}

fn duration(value: RawValue) -> Result<Duration, String> {
    humantime::parse_duration(text(value)?.trim()).map_err(|e| e.to_string())
}

fn optional<T>(
    value: RawValue,
    parse: fn(RawValue) -> Result<T, String>,
) -> Result<Option<T>, String> {
    match &value {
        RawValue::Text(s) if matches!(s.as_str(), "none" | "off") => Ok(None),
        _ => parse(value).map(Some),
    }
}

/// Parses a size: bytes as an integer, or a number with a unit (B, KiB, MiB, GiB, TiB,
/// or the decimal KB, MB, GB, TB).
fn size(value: RawValue) -> Result<u64, String> {
    match value {
        RawValue::Integer(i) => u64::try_from(i).map_err(|_| String::new()),
        RawValue::Text(s) => parse_size(&s),
        RawValue::Other(_) => Err(String::new()),
    }
}

/// Parses a size given as text: bytes as an integer, or a number with a unit (B, KiB,
/// MiB, GiB, TiB, or the decimal KB, MB, GB, TB). The error names what is wrong (empty
/// when the number is).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits.parse().map_err(|_| String::new())?;
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        other => return Err(format!("unknown unit `{other}`")),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| "too large".to_owned())
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The TOML error as one line with its position: `line 3, column 1: unknown field ...`.
fn syntax_message(error: &toml::de::Error, text: &str) -> String {
    let message = error.message().trim_end();
    match error.span() {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str, env: &[(&'static str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("config.toml");
        std::fs::write(&file, toml).expect("write config");
        let env: BTreeMap<&str, String> = env.iter().map(|(k, v)| (*k, v.to_string())).collect();
        Config::load(
            Some(&file),
            |var| env.get(var).map(Into::into),
            &FlagValues::default(),
        )
    }

    #[test]
    fn file_values_apply_with_their_line() {
        let config = load(
            "backend = \"memory\"\n[log]\npartitions = 3\nsync_interval = \"250ms\"\n",
            &[],
        )
        .expect("valid config");
        assert_eq!(config.backend, BackendKind::Memory);
        assert_eq!(config.partitions, 3);
        assert_eq!(config.sync_interval, Duration::from_millis(250));
        let origin = config.origin("log.partitions").to_string();
        assert!(origin.ends_with("config.toml:3:14"), "{origin}");
    }

    #[test]
    fn iggy_flush_is_refused_in_favour_of_log_durability() {
        let err = load("[iggy]\nflush = \"never\"\n", &[])
            .expect_err("iggy.flush")
            .to_string();
        assert!(err.starts_with("invalid [iggy] section in "), "{err}");
        assert!(err.contains("config.toml:1:1"), "{err}");
        assert!(err.contains("`log.durability`"), "{err}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let config = load(
            "[log]\ndurability = \"never\"\n",
            &[("VIBES_LOG_DURABILITY", "interval")],
        )
        .expect("valid config");
        assert_eq!(config.durability, DurabilityLevel::Interval);
        assert_eq!(
            config.origin("log.durability"),
            &Origin::Env("VIBES_LOG_DURABILITY")
        );
    }

    #[test]
    fn a_bad_value_names_key_place_and_what_is_allowed() {
        let err = load("[log]\n\ndurability = \"sometimes\"\n", &[])
            .expect_err("bad durability")
            .to_string();
        assert!(
            err.starts_with("invalid value \"sometimes\" for `log.durability` in "),
            "{err}"
        );
        assert!(err.contains("config.toml:3:14"), "{err}");
        assert!(err.ends_with("expected always, interval or never"), "{err}");
    }

    #[test]
    fn a_wrong_type_is_named() {
        let err = load("[log]\npartitions = \"many\"\n", &[])
            .expect_err("bad partitions")
            .to_string();
        assert!(err.contains("\"many\" for `log.partitions`"), "{err}");
        assert!(
            err.ends_with("expected a whole number from 1 to 1024"),
            "{err}"
        );
        let err = load("backend = true\n", &[]).expect_err("bool").to_string();
        assert!(err.contains("a TOML boolean for `backend`"), "{err}");
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let err = load("[log]\npartitons = 2\n", &[])
            .expect_err("typo")
            .to_string();
        assert!(err.contains("line 2, column 1"), "{err}");
        assert!(err.contains("partitons"), "{err}");
    }

    #[test]
    fn durations_sizes_and_none() {
        let config = load(
            "[log]\nsegment_bytes = \"8MiB\"\nretention_max_age = \"7days\"\nretention_max_bytes = \"none\"\n[bd]\ndebounce = \"1s\"\n",
            &[],
        )
        .expect("valid");
        assert_eq!(config.segment_bytes, 8 << 20);
        assert_eq!(
            config.retention_max_age,
            Some(Duration::from_secs(7 * 86400))
        );
        assert_eq!(config.retention_max_bytes, None);
        assert_eq!(config.bd_debounce, Duration::from_secs(1));
        let err = load("[log]\nsegment_bytes = \"8 parsecs\"\n", &[])
            .expect_err("unit")
            .to_string();
        assert!(err.contains("unknown unit `parsecs`"), "{err}");
    }

    #[test]
    fn a_missing_named_file_is_an_error() {
        let err = Config::load(
            Some(Path::new("/nonexistent/vibes.toml")),
            |_| None,
            &FlagValues::default(),
        )
        .expect_err("missing");
        assert!(
            err.to_string()
                .starts_with("cannot read config file /nonexistent/vibes.toml")
        );
    }
}
