//! The command a managed server runs with: its environment (what vibes sets, and the
//! `IGGY_*` variables of our own environment it must not inherit).

use std::net::SocketAddr;
use std::path::Path;

use vibes_supervisor::ChildSpec;

use super::layout::Layout;
use super::{CHILD_NAME, ROOT_USERNAME};
use crate::config::{IggyConfig, Secret};

/// The environment a managed server runs with. The password is in it (the server
/// reads it only from there); never log this.
pub(super) fn server_env(
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
pub(super) fn server_spec(
    binary: &Path,
    layout: &Layout,
    env: Vec<(&'static str, String)>,
) -> ChildSpec {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::layout::tests::layout;
    use super::*;

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
}
