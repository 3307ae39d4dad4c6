//! What `IggyManager::start` and the preflight refuse before a real server is involved:
//! stand-in binaries (small shell scripts) play iggy-server.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use vibes_iggy::preflight::preflight;
use vibes_iggy::{IggyConfig, IggyManager, ManagerError};

/// Writes an executable shell script `name` into `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn config(dir: &Path, server_bin: PathBuf) -> IggyConfig {
    IggyConfig {
        server_bin: Some(server_bin),
        data_dir: Some(dir.join("data")),
        ..IggyConfig::default()
    }
}

#[test]
fn preflight_rejects_a_binary_of_another_version() {
    let dir = tempfile::tempdir().unwrap();
    let old = script(dir.path(), "iggy-server", r#"echo "server 0.7.1""#);
    let checks = preflight(&config(dir.path(), old.clone()));
    let names: Vec<_> = checks.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "iggy-server binary",
            "iggy-server version",
            "memlock limit",
            "io_uring"
        ]
    );
    assert!(checks[0].ok, "{}", checks[0]);
    assert!(
        checks[0].detail.contains("iggy.server_bin"),
        "{}",
        checks[0]
    );
    let version = &checks[1];
    assert!(!version.ok, "{version}");
    assert!(version.detail.contains("server 0.7.1"), "{version}");
    assert!(version.detail.contains("0.8.x"), "{version}");
    let fix = version.fix.as_deref().unwrap();
    assert!(
        fix.contains("https://github.com/apache/iggy/releases"),
        "{fix}"
    );
}

#[test]
fn preflight_accepts_the_0_8_version_line() {
    let dir = tempfile::tempdir().unwrap();
    let bin = script(dir.path(), "iggy-server", r#"echo "server 0.8.0""#);
    let checks = preflight(&config(dir.path(), bin));
    assert!(checks[1].ok, "{}", checks[1]);
    assert_eq!(checks[1].detail, "server 0.8.0");
}

#[test]
fn preflight_without_a_binary_says_how_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let checks = preflight(&config(dir.path(), dir.path().join("nothing-here")));
    assert!(!checks[0].ok && !checks[1].ok);
    let fix = checks[0].fix.as_deref().unwrap();
    assert!(fix.contains("apache/iggy:0.8.0"), "{fix}");
}

#[tokio::test]
async fn start_refuses_a_binary_of_another_version() {
    let dir = tempfile::tempdir().unwrap();
    let old = script(dir.path(), "iggy-server", r#"echo "server 0.7.1""#);
    let err = IggyManager::start(&config(dir.path(), old))
        .await
        .unwrap_err();
    let ManagerError::WrongVersion { found, .. } = &err else {
        panic!("expected WrongVersion, got {err:?}");
    };
    assert_eq!(found, "server 0.7.1");
    let message = err.to_string();
    assert!(message.contains("0.8.x"), "{message}");
    assert!(
        !dir.path().join("data").exists(),
        "nothing is created for a wrong binary"
    );
}

#[tokio::test]
async fn start_refuses_a_fixed_port_that_already_answers() {
    let dir = tempfile::tempdir().unwrap();
    let bin = script(dir.path(), "iggy-server", r#"echo "server 0.8.0""#);
    let stray = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = stray.local_addr().unwrap();
    let config = IggyConfig {
        http_address: taken.to_string(),
        ..config(dir.path(), bin)
    };
    let err = IggyManager::start(&config).await.unwrap_err();
    let ManagerError::PortInUse { address, field } = &err else {
        panic!("expected PortInUse, got {err:?}");
    };
    assert_eq!((*address, *field), (taken, "http_address"));
    let message = err.to_string();
    assert!(message.contains("stray"), "{message}");
    assert!(
        message.contains(&format!("sport = :{}", taken.port())),
        "{message}"
    );
}

#[tokio::test]
async fn a_server_that_exits_during_start_up_is_an_error_with_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let bin = script(
        dir.path(),
        "iggy-server",
        r#"if [ "$1" = "--version" ]; then echo "server 0.8.0"; exit 0; fi
echo "Failed to bind Iggy TCP server to address: 127.0.0.1:1"
exit 0"#,
    );
    let err = IggyManager::start(&config(dir.path(), bin))
        .await
        .unwrap_err();
    let ManagerError::Supervisor(inner) = &err else {
        panic!("expected a supervisor error, got {err:?}");
    };
    let tail = inner.output_tail().unwrap_or_default();
    assert!(tail.contains("Failed to bind"), "{err}");
    let data = dir.path().join("data");
    assert!(data.join("root-credentials").exists());
    assert!(!data.join("server.pid").exists());
    assert!(data.join("logs/iggy-server.stdout.log").exists());
}

#[tokio::test]
async fn the_environment_of_the_server_has_no_inherited_iggy_settings() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("env");
    // Records its environment and exits: start fails, the record stays.
    let bin = script(
        dir.path(),
        "iggy-server",
        &format!(
            r#"if [ "$1" = "--version" ]; then echo "server 0.8.0"; exit 0; fi
env > {}
exit 1"#,
            dump.display()
        ),
    );
    IggyManager::start(&config(dir.path(), bin))
        .await
        .unwrap_err();
    let env = std::fs::read_to_string(&dump).unwrap();
    let iggy: Vec<_> = env.lines().filter(|l| l.starts_with("IGGY_")).collect();
    for line in [
        "IGGY_QUIC_ENABLED=false",
        "IGGY_WEBSOCKET_ENABLED=false",
        "IGGY_HTTP_ENABLED=true",
        "IGGY_ROOT_USERNAME=iggy",
        "IGGY_SYSTEM_SHARDING_CPU_ALLOCATION=1",
        "IGGY_SYSTEM_MEMORY_POOL_SIZE=512 MiB",
    ] {
        assert!(iggy.contains(&line), "{line} missing from {iggy:#?}");
    }
    let password = std::fs::read_to_string(dir.path().join("data/root-credentials")).unwrap();
    assert!(iggy.contains(&format!("IGGY_ROOT_PASSWORD={}", password.trim()).as_str()));
    // Whatever the test process inherited (IGGY_SERVER_BIN, for one) is not passed on.
    for line in &iggy {
        assert!(!line.starts_with("IGGY_SERVER_BIN="), "{line}");
    }
    assert!(!env.lines().any(|l| l.starts_with("RUST_LOG=")));
}
