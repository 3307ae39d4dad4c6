//! Start-up: errors that say what happened, and the environment and working directory
//! the child gets.

mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use common::{CHILD, PATIENCE, arg, child, file_exists, is_alive, never, within};
use vibes_supervisor::{ChildSpec, Error, Supervisor, SupervisorOptions};

#[tokio::test]
async fn exit_during_start_up_is_an_error_with_the_status_and_the_output_tail() {
    // 50 lines on stdout and one on stderr, then exit 3 after 100 ms.
    let spec = child("early-exit", ["exit", "3", "100", "50"]).output_tail(10, 4096);
    let options = SupervisorOptions::new()
        .readiness(never())
        .startup_timeout(PATIENCE);
    let err = within("start", Supervisor::start(spec, options))
        .await
        .expect_err("the child exits before it is ready");
    let message = err.to_string();
    let Error::ExitedDuringStartup {
        name,
        status,
        output_tail,
    } = err
    else {
        panic!("wrong error: {err}");
    };
    assert_eq!(name, "early-exit");
    assert_eq!(status.code(), Some(3));
    // The last 10 lines: the two streams are read by separate threads, so the stderr
    // line may come before some of the last stdout lines, or just after them.
    let lines: Vec<&str> = output_tail.lines().collect();
    assert_eq!(lines.len(), 10, "{output_tail}");
    assert!(lines.contains(&"line 49"), "{output_tail}");
    let recent = |line: &&str| {
        *line == "stderr says bye"
            || line
                .strip_prefix("line ")
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n >= 40)
    };
    assert!(lines.iter().all(recent), "{output_tail}");
    assert!(message.contains("exit status: 3"), "{message}");
    assert!(message.contains("line 49"), "{message}");
}

#[tokio::test]
async fn readiness_deadline_is_an_error_and_the_child_is_stopped() {
    let timeout = Duration::from_secs(3);
    let options = SupervisorOptions::new()
        .readiness(never())
        .startup_timeout(timeout)
        .stop_grace(Duration::from_secs(10));
    let starting = Instant::now();
    let err = within(
        "start",
        Supervisor::start(child("never-ready", ["forever"]), options),
    )
    .await
    .expect_err("the probe never says ready");
    let Error::ReadinessTimeout {
        after, output_tail, ..
    } = err
    else {
        panic!("wrong error: {err}");
    };
    assert_eq!(after, timeout);
    assert!(starting.elapsed() >= timeout);
    // The child printed its pid first thing; it has been stopped.
    let pid: u32 = output_tail
        .strip_prefix("started pid=")
        .and_then(|pid| pid.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in the output tail {output_tail:?}"));
    assert!(!is_alive(pid), "child {pid} still runs");
}

/// Starts `spec` (an `env-dump` child writing to `dump`) and reads what it saw: its
/// working directory and environment.
async fn dumped_env(spec: ChildSpec, dump: &Path) -> (String, BTreeMap<Vec<u8>, Vec<u8>>) {
    let options = SupervisorOptions::new().readiness(file_exists(dump));
    let supervisor = within("start", Supervisor::start(spec, options))
        .await
        .expect("start");
    within("stop", supervisor.stop()).await.expect("stop");

    let text = std::fs::read_to_string(dump).expect("dump");
    let mut lines = text.lines();
    let cwd = lines.next().expect("cwd line").to_owned();
    let unhex = |hex: &str| -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect()
    };
    let env = lines
        .map(|line| {
            let (key, value) = line.split_once('=').expect("KEY=VALUE");
            (unhex(key), unhex(value))
        })
        .collect();
    (cwd, env)
}

#[tokio::test]
async fn environment_changes_and_working_directory_reach_the_child() {
    use std::os::unix::ffi::OsStrExt;

    assert!(
        std::env::var_os("PATH").is_some(),
        "this test removes PATH, so the test process needs one"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("work dir");
    let dump = dir.path().join("env");
    let spec = child("env", ["env-dump", arg(&dump)])
        .env("VIBES_SET", "yes")
        .env("VIBES_GONE", "soon")
        .env_remove("VIBES_GONE")
        .env_remove("PATH")
        .current_dir(&work);
    let (cwd, env) = dumped_env(spec, &dump).await;

    assert_eq!(
        Path::new(&cwd),
        work.canonicalize().expect("canonical work dir")
    );
    let mut expected: BTreeMap<Vec<u8>, Vec<u8>> = std::env::vars_os()
        .map(|(key, value)| (key.as_bytes().to_vec(), value.as_bytes().to_vec()))
        .collect();
    expected.remove(b"PATH".as_slice());
    expected.insert(b"VIBES_SET".to_vec(), b"yes".to_vec());
    // Everything else is inherited unchanged.
    assert_eq!(env, expected);
}

#[tokio::test]
async fn env_clear_starts_the_child_from_an_empty_environment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dump = dir.path().join("env");
    let spec = child("env-clear", ["env-dump", arg(&dump)])
        .env("DROPPED", "by env_clear")
        .env_clear()
        .env("ONLY", "this");
    let (_, env) = dumped_env(spec, &dump).await;
    let expected = BTreeMap::from([(b"ONLY".to_vec(), b"this".to_vec())]);
    assert_eq!(env, expected);
}

#[tokio::test]
async fn a_missing_program_is_a_spawn_error_that_names_it() {
    let program = "/nonexistent/vibes-no-such-program";
    let err = Supervisor::start(ChildSpec::new("ghost", program), SupervisorOptions::new())
        .await
        .expect_err("nothing to run");
    let Error::Spawn {
        program: named,
        source,
    } = &err
    else {
        panic!("wrong error: {err}");
    };
    assert_eq!(named, Path::new(program));
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    assert!(err.to_string().contains(program), "{err}");
}

#[tokio::test]
async fn a_missing_working_directory_is_a_spawn_error() {
    let spec = ChildSpec::new("lost", CHILD)
        .arg("forever")
        .current_dir("/nonexistent/vibes-no-such-dir");
    let err = Supervisor::start(spec, SupervisorOptions::new())
        .await
        .expect_err("no such directory");
    let spawn = matches!(err, Error::Spawn { .. });
    assert!(spawn, "wrong error: {err}");
}

#[tokio::test]
async fn bad_configuration_is_an_error_before_anything_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let never_created = dir.path().join("logs");
    let bad = [
        (
            child("a/b", ["forever"]).log_dir(&never_created),
            SupervisorOptions::new(),
        ),
        (
            child("tiny-log", ["forever"])
                .log_dir(&never_created)
                .log_max_bytes(10),
            SupervisorOptions::new(),
        ),
        (
            child("no-interval", ["forever"]).log_dir(&never_created),
            SupervisorOptions::new().health_interval(Duration::ZERO),
        ),
    ];
    for (spec, options) in bad {
        let name = spec.name().to_owned();
        let result = Supervisor::start(spec, options).await;
        let invalid = matches!(result, Err(Error::InvalidConfig { .. }));
        assert!(invalid, "{name}: {result:?}");
    }
    assert!(!never_created.exists(), "a log directory was created");
}

#[test]
fn start_outside_a_tokio_runtime_is_an_error() {
    let start = Supervisor::start(child("no-runtime", ["forever"]), SupervisorOptions::new());
    let mut start = std::pin::pin!(start);
    let polled = start.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    let no_runtime = matches!(polled, Poll::Ready(Err(Error::NoRuntime)));
    assert!(no_runtime, "{polled:?}");
}
