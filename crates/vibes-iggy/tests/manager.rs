//! `IggyManager` against a real iggy-server 0.8: set `IGGY_SERVER_BIN` (or put
//! `iggy-server` on PATH) and run `cargo test -p vibes-iggy -- --ignored`.

use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};
use vibes_iggy::config::ServerBinary;
use vibes_iggy::{IggyConfig, IggyLog, IggyLogOptions, IggyManager, ManagerError};
use vibes_log::backend::{LogBackend, Record};
use vibes_log::{AppendOptions, TopicConfig, TopicName};
use vibes_supervisor::{State, StopOutcome};

fn config(data_dir: &Path) -> IggyConfig {
    let ServerBinary { path, .. } = IggyConfig::default()
        .resolve_server_bin()
        .unwrap_or_else(|e| panic!("these tests need a server: {e}"));
    IggyConfig {
        server_bin: Some(path),
        data_dir: Some(data_dir.to_owned()),
        ..IggyConfig::default()
    }
}

async fn start(config: &IggyConfig) -> IggyManager {
    let began = Instant::now();
    let manager = IggyManager::start(config).await.unwrap();
    eprintln!(
        "iggy-server pid {:?} ready after {:?} (tcp {}, http {})",
        manager.pid(),
        began.elapsed(),
        manager.tcp_address(),
        manager.http_address()
    );
    manager
}

/// Connects an `IggyLog` to the manager's server and pings it.
async fn ping(manager: &IggyManager) -> bool {
    let log = IggyLog::connect(manager.connection(), IggyLogOptions::default())
        .await
        .unwrap();
    let answered = log.ping().await;
    log.shutdown().await;
    answered
}

fn alive(pid: u32) -> bool {
    let pid = Pid::from_raw(pid as i32).unwrap();
    rustix::process::test_kill_process(pid).is_ok()
}

/// Two ports that are free now.
fn free_ports() -> (u16, u16) {
    let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs iggy-server (IGGY_SERVER_BIN)"]
async fn a_managed_server_on_port_zero_is_ready_and_serves_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let manager = start(&config).await;
    assert_ne!(manager.tcp_address().port(), 0);
    assert_ne!(manager.http_address().port(), 0);
    assert_ne!(manager.tcp_address(), manager.http_address());
    let pid = manager.pid().unwrap();
    assert!(alive(pid));

    let log = IggyLog::connect(manager.connection(), IggyLogOptions::default())
        .await
        .unwrap();
    assert!(log.ping().await);
    let topic = TopicName::new("vibes/manager-test").unwrap();
    log.ensure_topic(&topic, TopicConfig::default())
        .await
        .unwrap();
    let record = Record::new(None, 7, &b"hello"[..]);
    let ack = log
        .append(&topic, 0, vec![record], AppendOptions::default())
        .await
        .unwrap();
    assert_eq!(ack.base_offset, 0);
    log.shutdown().await;

    let status = IggyManager::status(&config).await.unwrap();
    assert_eq!(status.pid, Some(pid));
    let addresses = status.addresses.unwrap();
    assert_eq!(
        (addresses.tcp, addresses.http),
        (manager.tcp_address(), manager.http_address())
    );
    assert!(status.ping);

    let outcome = manager.stop().await.unwrap();
    let graceful = matches!(outcome, StopOutcome::Exited(status) if status.success());
    assert!(graceful, "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs iggy-server (IGGY_SERVER_BIN)"]
async fn the_server_gets_no_password_in_argv_and_logs_into_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let manager = start(&config).await;
    let pid = manager.pid().unwrap();
    let password = std::fs::read_to_string(dir.path().join("root-credentials")).unwrap();
    let password = password.trim();

    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(password));
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    let vars: Vec<_> = environ.split('\0').collect();
    assert!(vars.contains(&"IGGY_QUIC_ENABLED=false"), "{vars:?}");
    assert!(vars.contains(&"IGGY_WEBSOCKET_ENABLED=false"), "{vars:?}");

    let shown = format!("{manager:?} {:?}", manager.connection());
    assert!(!shown.contains(password), "{shown}");

    manager.stop().await.unwrap();
    let stdout = std::fs::read_to_string(dir.path().join("logs/iggy-server.stdout.log")).unwrap();
    assert!(stdout.contains("Iggy server is running"), "{stdout}");
    assert!(
        !stdout.contains(password),
        "the server's output holds the password"
    );
    // The server's own log files are off: the supervisor's capped logs are the copy.
    assert!(!dir.path().join("server/logs").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs iggy-server (IGGY_SERVER_BIN)"]
async fn a_second_start_on_the_same_fixed_ports_is_refused() {
    let (tcp, http) = free_ports();
    let first_dir = tempfile::tempdir().unwrap();
    let fixed = |dir: &Path| IggyConfig {
        tcp_address: format!("127.0.0.1:{tcp}"),
        http_address: format!("127.0.0.1:{http}"),
        ..config(dir)
    };
    let first = start(&fixed(first_dir.path())).await;
    assert_eq!(first.tcp_address().port(), tcp);
    assert_eq!(first.http_address().port(), http);

    let second_dir = tempfile::tempdir().unwrap();
    for dir in [second_dir.path(), first_dir.path()] {
        let err = IggyManager::start(&fixed(dir)).await.unwrap_err();
        let refused = matches!(
            err,
            ManagerError::PortInUse {
                field: "tcp_address",
                ..
            }
        );
        assert!(refused, "{err:?}");
    }
    assert!(ping(&first).await);
    first.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs iggy-server (IGGY_SERVER_BIN)"]
async fn two_managers_never_share_a_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let first = start(&config).await;
    let err = IggyManager::start(&config).await.unwrap_err();
    let ManagerError::AlreadyRunning { pid, .. } = &err else {
        panic!("expected AlreadyRunning, got {err:?}");
    };
    assert_eq!(*pid, first.pid());
    assert!(pid.is_some());
    first.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs iggy-server (IGGY_SERVER_BIN)"]
async fn stop_ends_the_server_with_sigterm_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let manager = start(&config).await;
    let pid = manager.pid().unwrap();
    let mut states = manager.subscribe();
    let began = Instant::now();
    let outcome = manager.stop().await.unwrap();
    eprintln!("stopped after {:?}: {outcome:?}", began.elapsed());
    let graceful = matches!(outcome, StopOutcome::Exited(status) if status.success());
    assert!(graceful, "{outcome:?}");
    assert!(!alive(pid));
    let stopped = matches!(*states.borrow_and_update(), State::Stopped);
    assert!(stopped);
    assert!(!dir.path().join("server.pid").exists());
    let status = IggyManager::status(&config).await.unwrap();
    assert!(!status.running() && !status.ping);
    let stdout = std::fs::read_to_string(dir.path().join("logs/iggy-server.stdout.log")).unwrap();
    assert!(stdout.contains("graceful shutdown"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs iggy-server (IGGY_SERVER_BIN)"]
async fn the_root_password_persists_across_restarts_and_still_signs_in() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let credentials = dir.path().join("root-credentials");

    let first = start(&config).await;
    let password = std::fs::read_to_string(&credentials).unwrap();
    let topic = TopicName::new("vibes/persist").unwrap();
    let log = IggyLog::connect(first.connection(), IggyLogOptions::default())
        .await
        .unwrap();
    log.ensure_topic(&topic, TopicConfig::default())
        .await
        .unwrap();
    log.shutdown().await;
    first.stop().await.unwrap();

    let second = start(&config).await;
    assert_eq!(std::fs::read_to_string(&credentials).unwrap(), password);
    assert_eq!(second.connection().password, password.trim());
    let log = IggyLog::connect(second.connection(), IggyLogOptions::default())
        .await
        .unwrap();
    assert!(log.ping().await);
    let topics = log.list_topics().await.unwrap();
    assert_eq!(topics, [topic]);
    log.shutdown().await;
    second.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs iggy-server (IGGY_SERVER_BIN)"]
async fn a_killed_server_is_restarted_on_the_same_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let manager = start(&config).await;
    let (tcp, http) = (manager.tcp_address(), manager.http_address());
    let first_pid = manager.pid().unwrap();
    let mut events = manager.events();

    let killed = Instant::now();
    let pid = Pid::from_raw(first_pid as i32).unwrap();
    rustix::process::kill_process(pid, Signal::KILL).unwrap();

    let mut seen = Vec::new();
    let second_pid = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let state = events.next().await.expect("supervision ended");
            seen.push(format!("{state:?}"));
            if let State::Running { pid } = state {
                break pid;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not running again within 30 s; states: {seen:?}"));
    eprintln!("restarted after {:?}: {seen:?}", killed.elapsed());
    assert_ne!(second_pid, first_pid);
    assert!(seen[0].starts_with("Backoff"), "{seen:?}");
    assert!(seen.iter().any(|s| s.starts_with("Starting")), "{seen:?}");
    // The supervisor sends a change to `events` just before the watch channel.
    let mut states = manager.subscribe();
    let running = states.wait_for(|s| s.pid() == Some(second_pid));
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(manager.pid(), Some(second_pid));
    assert_eq!((manager.tcp_address(), manager.http_address()), (tcp, http));
    assert!(ping(&manager).await);

    // The pid file is rewritten by the manager's own task, soon after the change.
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        let status = IggyManager::status(&config).await.unwrap();
        if status.pid == Some(second_pid) || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.pid, Some(second_pid));
    assert!(status.ping);
    manager.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs iggy-server (IGGY_SERVER_BIN)"]
async fn a_port_taken_after_the_check_is_a_start_up_error_with_the_server_output() {
    // Bound but not listening: nothing answers, so the check passes, but the server's
    // bind fails.
    let holder = tokio::net::TcpSocket::new_v4().unwrap();
    holder.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let taken = holder.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = IggyConfig {
        tcp_address: taken.to_string(),
        ..config(dir.path())
    };
    let err = IggyManager::start(&config).await.unwrap_err();
    let ManagerError::Supervisor(inner) = &err else {
        panic!("expected a supervisor error, got {err:?}");
    };
    let tail = inner.output_tail().unwrap_or_default();
    assert!(
        tail.contains(&format!("Cannot bind to socket with addr: {taken}")),
        "{err}"
    );
    assert!(!dir.path().join("server.pid").exists());
    drop(holder);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs iggy-server (IGGY_SERVER_BIN)"]
async fn a_stale_runtime_config_is_not_taken_for_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("server/runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    let stale = runtime.join("current_config.toml");
    // A file left by an earlier run, naming ports that nothing serves now.
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/current_config.toml"),
        &stale,
    )
    .unwrap();
    let manager = start(&config(dir.path())).await;
    let written = std::fs::read_to_string(&stale).unwrap();
    assert!(
        written.contains(&format!("address = \"{}\"", manager.tcp_address())),
        "{written}"
    );
    assert!(
        written.contains(&format!("address = \"{}\"", manager.http_address())),
        "{written}"
    );
    manager.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs iggy-server (IGGY_SERVER_BIN)"]
async fn the_server_takes_the_sizing_and_durability_settings() {
    let dir = tempfile::tempdir().unwrap();
    let config = IggyConfig {
        cpu_allocation: vibes_iggy::config::CpuAllocation::All,
        memory_pool_mib: 0,
        fsync: false,
        saver_interval: Duration::from_millis(250),
        ..config(dir.path())
    };
    let manager = start(&config).await;
    assert!(ping(&manager).await);
    // What the server runs with, as it wrote it back.
    let written =
        std::fs::read_to_string(dir.path().join("server/runtime/current_config.toml")).unwrap();
    let table: toml::Table = written.parse().unwrap();
    let get = |path: &str| {
        let mut value = &toml::Value::Table(table.clone());
        for key in path.split('.') {
            value = &value[key];
        }
        value.clone()
    };
    assert_eq!(get("system.sharding.cpu_allocation").as_str(), Some("all"));
    assert_eq!(get("system.memory_pool.enabled").as_bool(), Some(false));
    assert_eq!(get("system.partition.enforce_fsync").as_bool(), Some(false));
    assert_eq!(get("system.state.enforce_fsync").as_bool(), Some(false));
    assert_eq!(get("message_saver.enforce_fsync").as_bool(), Some(false));
    assert_eq!(get("message_saver.interval").as_str(), Some("250ms"));
    assert_eq!(get("quic.enabled").as_bool(), Some(false));
    assert_eq!(get("websocket.enabled").as_bool(), Some(false));
    assert_eq!(get("system.logging.file_enabled").as_bool(), Some(false));
    manager.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs iggy-server (IGGY_SERVER_BIN)"]
async fn a_root_password_the_server_does_not_know_fails_start_and_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = IggyConfig {
        connect_timeout: Duration::from_secs(2),
        ..config(dir.path())
    };
    start(&config).await.stop().await.unwrap();
    // Someone replaced the password; the server keeps the one it was created with.
    std::fs::write(dir.path().join("root-credentials"), "not-the-password\n").unwrap();

    let err = IggyManager::start(&config).await.unwrap_err();
    let ManagerError::SignIn { .. } = &err else {
        panic!("expected SignIn, got {err:?}");
    };
    let message = err.to_string();
    assert!(message.contains("signing in as iggy failed"), "{message}");
    assert!(message.contains("root-credentials"), "{message}");
    assert!(!message.contains("not-the-password"), "{message}");
    let status = IggyManager::status(&config).await.unwrap();
    assert!(!status.running(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs iggy-server (IGGY_SERVER_BIN)"]
async fn a_healthy_server_is_left_alone_and_a_hung_one_is_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let manager = start(&config).await;
    let first = manager.pid().unwrap();
    // Two health checks (every 5 s, an SDK ping over a kept connection) pass.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(
        manager.pid(),
        Some(first),
        "a healthy server is not restarted"
    );
    let state = manager.subscribe().borrow().clone();
    let running = matches!(state, State::Running { .. });
    assert!(running, "{state:?}");

    // Hung: stopped, it still exists but answers nothing. Three failed pings later it
    // is killed and started again.
    let pid = rustix::process::Pid::from_raw(first as i32).unwrap();
    rustix::process::kill_process(pid, Signal::STOP).unwrap();
    let mut states = manager.subscribe();
    let restarted = tokio::time::timeout(
        Duration::from_secs(60),
        states.wait_for(|s| matches!(s, State::Running { pid } if *pid != first)),
    )
    .await
    .expect("a hung server is restarted within a minute")
    .expect("the manager is alive")
    .clone();
    eprintln!("hung pid {first} replaced: {restarted:?}");
    assert!(!alive(first), "the hung server was killed");
    assert!(ping(&manager).await, "the new server answers");
    manager.stop().await.unwrap();
}
