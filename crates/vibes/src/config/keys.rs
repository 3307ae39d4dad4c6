//! The one table of configuration keys: every key the host reads, the `[iggy]`
//! section's included, with its environment variable, what it accepts, how a value
//! is applied and how it is shown. The file, the environment and the flags all go
//! through it, so each key gets an origin and a `VIBES_*` override the same way.

use std::path::Path;

use vibes_iggy::config::{CpuAllocation, Secret};
use vibes_log::TopicName;

use super::value::{
    RawValue, boolean, duration, integer, optional, path, quote, size, text, whole_u32,
};
use super::{BackendKind, Config, DurabilityLevel};

/// One configuration key: its TOML name, its environment variable, what it accepts and
/// how it is shown.
pub(super) struct Key {
    pub(super) name: &'static str,
    pub(super) env: &'static str,
    pub(super) allowed: &'static str,
    pub(super) apply: fn(&mut Config, RawValue) -> Result<(), String>,
    pub(super) show: fn(&Config) -> String,
}

const DURATION: &str = "a duration such as 500ms, 5s or 2m";

pub(super) const KEYS: &[Key] = &[
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
        show: |c| shown_duration(c.sync_interval),
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
            Some(d) => shown_duration(d),
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
        show: |c| shown_duration(c.bd_debounce),
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
        show: |c| shown_duration(c.bd_poll_interval),
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
    Key {
        name: "iggy.mode",
        env: "VIBES_IGGY_MODE",
        allowed: "managed or external",
        apply: |c, v| {
            c.iggy.mode = text(v)?.parse().map_err(|_| String::new())?;
            Ok(())
        },
        show: |c| quote(c.iggy.mode.as_str()),
    },
    Key {
        name: "iggy.server_bin",
        env: "VIBES_IGGY_SERVER_BIN",
        allowed: "the path of an iggy-server binary, or \"none\" (then IGGY_SERVER_BIN, then PATH)",
        apply: |c, v| {
            c.iggy.server_bin = optional(v, path)?;
            Ok(())
        },
        show: |c| shown_path(c.iggy.server_bin.as_deref()),
    },
    Key {
        name: "iggy.data_dir",
        env: "VIBES_IGGY_DATA_DIR",
        allowed: "a directory path",
        apply: |c, v| {
            c.iggy.data_dir = Some(path(v)?);
            Ok(())
        },
        show: |c| shown_path(c.iggy.data_dir.as_deref()),
    },
    Key {
        name: "iggy.tcp_address",
        env: "VIBES_IGGY_TCP_ADDRESS",
        allowed: "managed: the ip:port to listen on (port 0: a free one); external: the server's host:port",
        apply: |c, v| {
            c.iggy.tcp_address = text(v)?;
            Ok(())
        },
        show: |c| quote(&c.iggy.tcp_address),
    },
    Key {
        name: "iggy.http_address",
        env: "VIBES_IGGY_HTTP_ADDRESS",
        allowed: "the ip:port a managed server's HTTP listens on (port 0: a free one)",
        apply: |c, v| {
            c.iggy.http_address = text(v)?;
            Ok(())
        },
        show: |c| quote(&c.iggy.http_address),
    },
    Key {
        name: "iggy.quic_address",
        env: "VIBES_IGGY_QUIC_ADDRESS",
        allowed: "the ip:port to turn a managed server's QUIC on at, or \"none\" (off)",
        apply: |c, v| {
            c.iggy.quic_address = optional(v, text)?;
            Ok(())
        },
        show: |c| shown_text(c.iggy.quic_address.as_deref()),
    },
    Key {
        name: "iggy.websocket_address",
        env: "VIBES_IGGY_WEBSOCKET_ADDRESS",
        allowed: "the ip:port to turn a managed server's WebSocket on at, or \"none\" (off)",
        apply: |c, v| {
            c.iggy.websocket_address = optional(v, text)?;
            Ok(())
        },
        show: |c| shown_text(c.iggy.websocket_address.as_deref()),
    },
    Key {
        name: "iggy.username",
        env: "VIBES_IGGY_USERNAME",
        allowed: "the user to sign in to an external server as, or \"none\" (then IGGY_USERNAME)",
        apply: |c, v| {
            c.iggy.username = optional(v, text)?;
            Ok(())
        },
        show: |c| shown_text(c.iggy.username.as_deref()),
    },
    Key {
        name: "iggy.password",
        env: "VIBES_IGGY_PASSWORD",
        allowed: "the password of iggy.username, or \"none\" (then IGGY_PASSWORD)",
        apply: |c, v| {
            c.iggy.password = optional(v, text)?.map(Secret::new);
            Ok(())
        },
        show: |c| shown_secret(c.iggy.password.is_some()),
    },
    Key {
        name: "iggy.connection_string",
        env: "VIBES_IGGY_CONNECTION_STRING",
        allowed: "iggy://user:password@host:port for an external server, or \"none\" (then IGGY_CONNECTION_STRING)",
        apply: |c, v| {
            c.iggy.connection_string = optional(v, text)?.map(Secret::new);
            Ok(())
        },
        show: |c| shown_secret(c.iggy.connection_string.is_some()),
    },
    Key {
        name: "iggy.cpu_allocation",
        env: "VIBES_IGGY_CPU_ALLOCATION",
        allowed: "a managed server's shards: a count such as 1, \"all\", or a core range such as \"0..2\"",
        apply: |c, v| {
            let text = match v {
                RawValue::Integer(i) => i.to_string(),
                other => text(other)?,
            };
            c.iggy.cpu_allocation = text.parse()?;
            Ok(())
        },
        show: |c| match c.iggy.cpu_allocation {
            CpuAllocation::Shards(n) => n.to_string(),
            other => quote(&other.to_string()),
        },
    },
    Key {
        name: "iggy.memory_pool_mib",
        env: "VIBES_IGGY_MEMORY_POOL_MIB",
        allowed: "a managed server's buffer pool cap in MiB: 0 (off), or at least 512",
        apply: |c, v| {
            c.iggy.memory_pool_mib = whole_u32(v)?;
            Ok(())
        },
        show: |c| c.iggy.memory_pool_mib.to_string(),
    },
    Key {
        name: "iggy.fsync",
        env: "VIBES_IGGY_FSYNC",
        allowed: "true or false",
        apply: |c, v| {
            c.iggy.fsync = boolean(v)?;
            Ok(())
        },
        show: |c| c.iggy.fsync.to_string(),
    },
    Key {
        name: "iggy.saver_interval",
        env: "VIBES_IGGY_SAVER_INTERVAL",
        allowed: DURATION,
        apply: |c, v| {
            c.iggy.saver_interval = duration(v)?;
            Ok(())
        },
        show: |c| shown_duration(c.iggy.saver_interval),
    },
    Key {
        name: "iggy.connect_timeout",
        env: "VIBES_IGGY_CONNECT_TIMEOUT",
        allowed: DURATION,
        apply: |c, v| {
            c.iggy.connect_timeout = duration(v)?;
            Ok(())
        },
        show: |c| shown_duration(c.iggy.connect_timeout),
    },
    Key {
        name: "iggy.startup_timeout",
        env: "VIBES_IGGY_STARTUP_TIMEOUT",
        allowed: DURATION,
        apply: |c, v| {
            c.iggy.startup_timeout = duration(v)?;
            Ok(())
        },
        show: |c| shown_duration(c.iggy.startup_timeout),
    },
    Key {
        name: "iggy.stop_grace",
        env: "VIBES_IGGY_STOP_GRACE",
        allowed: DURATION,
        apply: |c, v| {
            c.iggy.stop_grace = duration(v)?;
            Ok(())
        },
        show: |c| shown_duration(c.iggy.stop_grace),
    },
];

/// A duration as a value that reads back the same: `"1s 500ms"`.
fn shown_duration(d: std::time::Duration) -> String {
    quote(&humantime::format_duration(d).to_string())
}

/// An optional text as a value that reads back the same: `"none"` when unset.
fn shown_text(value: Option<&str>) -> String {
    quote(value.unwrap_or("none"))
}

fn shown_path(value: Option<&Path>) -> String {
    shown_text(value.map(|p| p.to_string_lossy()).as_deref())
}

/// A secret is never shown: `"***"` when set.
fn shown_secret(set: bool) -> String {
    quote(if set { "***" } else { "none" })
}
