//! Configuration values before and after they are checked: what the file, the
//! environment or a flag gave, and the parsers every key shares.

use std::path::PathBuf;
use std::time::Duration;

/// A value before it is checked: text from env and flags, any TOML value from the file.
#[derive(Debug)]
pub(super) enum RawValue {
    Text(String),
    Integer(i64),
    Boolean(bool),
    /// Another TOML type, by name.
    Other(&'static str),
}

impl RawValue {
    /// The value as an error shows it (never for a secret: a secret key accepts any
    /// text, so only a value of another type is ever shown).
    pub(super) fn describe(&self) -> String {
        match self {
            RawValue::Text(s) => format!("{s:?}"),
            RawValue::Integer(i) => i.to_string(),
            RawValue::Boolean(_) => "a TOML boolean".to_owned(),
            RawValue::Other(kind) => format!("a TOML {kind}"),
        }
    }
}

pub(super) fn quote(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

pub(super) fn text(value: RawValue) -> Result<String, String> {
    match value {
        RawValue::Text(s) => Ok(s),
        _ => Err(String::new()),
    }
}

pub(super) fn path(value: RawValue) -> Result<PathBuf, String> {
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

pub(super) fn integer(value: RawValue) -> Result<i64, String> {
    match value {
        RawValue::Integer(i) => Ok(i),
        RawValue::Text(s) => s.trim().parse().map_err(|_| String::new()),
        _ => Err(String::new()),
    }
}

/// `true` or `false`, as a TOML boolean or as text.
pub(super) fn boolean(value: RawValue) -> Result<bool, String> {
    match value {
        RawValue::Boolean(b) => Ok(b),
        RawValue::Text(s) => s.trim().parse().map_err(|_| String::new()),
        _ => Err(String::new()),
    }
}

/// A whole number that fits a `u32`.
pub(super) fn whole_u32(value: RawValue) -> Result<u32, String> {
    u32::try_from(integer(value)?).map_err(|_| String::new())
}

pub(super) fn duration(value: RawValue) -> Result<Duration, String> {
    humantime::parse_duration(text(value)?.trim()).map_err(|e| e.to_string())
}

pub(super) fn optional<T>(
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
pub(super) fn size(value: RawValue) -> Result<u64, String> {
    match value {
        RawValue::Integer(i) => u64::try_from(i).map_err(|_| String::new()),
        RawValue::Text(s) => parse_size(&s),
        _ => Err(String::new()),
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
