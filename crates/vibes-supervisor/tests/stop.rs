//! Stopping: SIGTERM honoured, SIGKILL after the grace period, and no child outliving
//! its supervisor, even one killed with SIGKILL.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{CHILD, PATIENCE, arg, child, dies_within, file_exists, is_alive, ms, within};
use vibes_supervisor::{State, StopOutcome, Supervisor, SupervisorOptions};

#[tokio::test]
async fn stop_sends_sigterm_and_a_child_that_honours_it_exits_gracefully() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (ready, marker) = (dir.path().join("ready"), dir.path().join("marker"));
    let options = SupervisorOptions::new()
        .readiness(file_exists(&ready))
        .stop_grace(PATIENCE);
    let spec = child("polite", ["term", arg(&ready), arg(&marker)]);
    let supervisor = Supervisor::start(spec, options).await.expect("start");
    let pid = supervisor.pid().expect("running");

    let outcome = within("stop", supervisor.stop()).await.expect("stop");
    let StopOutcome::Exited(status) = outcome else {
        panic!("not a graceful exit: {outcome:?}");
    };
    assert!(status.success(), "{status}");
    let written = std::fs::read_to_string(&marker).expect("the child wrote its marker");
    assert_eq!(written, "SIGTERM");
    let stopped = matches!(supervisor.state(), State::Stopped);
    assert!(stopped, "{:?}", supervisor.state());
    assert!(!is_alive(pid));
    assert_eq!(
        supervisor.stop().await.expect("stop again"),
        StopOutcome::NotRunning
    );
}

#[tokio::test]
async fn stop_kills_a_child_that_ignores_sigterm_once_the_grace_period_is_over() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ready = dir.path().join("ready");
    let grace = ms(500);
    let options = SupervisorOptions::new()
        .readiness(file_exists(&ready))
        .stop_grace(grace);
    let spec = child("stubborn", ["ignore-term", arg(&ready)]).log_dir(dir.path());
    let stdout_log = spec.stdout_log().expect("log dir set");
    let supervisor = Supervisor::start(spec, options).await.expect("start");
    let pid = supervisor.pid().expect("running");

    let stopping = Instant::now();
    let outcome = within("stop", supervisor.stop()).await.expect("stop");
    let StopOutcome::Killed(status) = outcome else {
        panic!("not killed: {outcome:?}");
    };
    assert_eq!(status.signal(), Some(9), "{status}");
    assert!(
        stopping.elapsed() >= grace,
        "killed before the grace period"
    );
    assert!(!is_alive(pid));
    // SIGTERM came first, and the child saw it.
    let log = std::fs::read_to_string(stdout_log).expect("stdout log");
    assert!(log.contains("ignoring SIGTERM"), "{log}");
}

/// Kills the supervising process if the test fails before it does.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn child_dies_when_its_supervisor_process_is_killed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut supervisor = KillOnDrop(
        Command::new(CHILD)
            .args(["supervise", arg(dir.path())])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the supervising child"),
    );
    let stdout = supervisor.0.stdout.take().expect("piped stdout");
    let (line_tx, line_rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = line_tx.send(line);
    });
    let line = line_rx
        .recv_timeout(PATIENCE)
        .expect("the supervising child names its grandchild");
    let grandchild: u32 = line
        .strip_prefix("grandchild ")
        .and_then(|pid| pid.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));
    assert!(is_alive(grandchild), "grandchild {grandchild} not running");
    let cmdline = std::fs::read(format!("/proc/{grandchild}/cmdline")).expect("cmdline");
    assert!(
        cmdline.ends_with(b"forever\0"),
        "pid {grandchild} is not the grandchild"
    );

    supervisor.0.kill().expect("SIGKILL the supervisor");
    supervisor.0.wait().expect("reap the supervisor");
    assert!(
        dies_within(grandchild, PATIENCE),
        "grandchild {grandchild} outlived its supervisor"
    );
}

#[test]
fn child_outlives_the_thread_that_started_its_supervisor() {
    // The parent-death signal fires when the *thread* that forked exits. This thread
    // builds a runtime, starts the supervisor (its task runs here during `block_on`),
    // and exits; only the supervisor's own spawner thread may have forked the child.
    let (runtime, supervisor) = thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let supervisor = runtime
            .block_on(Supervisor::start(
                child("survivor", ["forever"]),
                SupervisorOptions::new(),
            ))
            .expect("start");
        (runtime, supervisor)
    })
    .join()
    .expect("starter thread");
    let pid = supervisor.pid().expect("running");

    // A child killed now would be restarted with a new pid.
    runtime.block_on(async { tokio::time::sleep(Duration::from_secs(1)).await });
    assert!(is_alive(pid), "child {pid} died with the starter thread");
    assert_eq!(supervisor.pid(), Some(pid), "{:?}", supervisor.state());

    let outcome = runtime.block_on(supervisor.stop()).expect("stop");
    let exited = matches!(outcome, StopOutcome::Exited(_));
    assert!(exited, "{outcome:?}");
}

#[test]
fn the_group_guard_kills_the_childs_own_children_when_the_supervisor_is_killed() {
    let mut supervisor = KillOnDrop(
        Command::new(CHILD)
            .arg("supervise-guarded")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the supervising child"),
    );
    let stdout = supervisor.0.stdout.take().expect("piped stdout");
    let (line_tx, line_rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    let pid_after = |prefix: &str| -> u32 {
        let line = line_rx.recv_timeout(PATIENCE).expect("a line");
        line.strip_prefix(prefix)
            .and_then(|pid| pid.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected line {line:?}"))
    };
    let child = pid_after("child ");
    let grandchild = pid_after("grandchild ");
    assert!(is_alive(child) && is_alive(grandchild));

    supervisor.0.kill().expect("SIGKILL the supervisor");
    supervisor.0.wait().expect("reap the supervisor");
    assert!(
        dies_within(child, PATIENCE),
        "child {child} outlived its supervisor"
    );
    // Not covered by the parent-death signal (its parent is the child): the guard's
    // SIGTERM to the group ends it.
    assert!(
        dies_within(grandchild, PATIENCE),
        "grandchild {grandchild} outlived its supervisor"
    );
}
