//! Restarts: growing backoff, the restart limit, the stable period, and hung children
//! caught by the health probe.

mod common;

use std::time::{Duration, Instant};

use common::{arg, child, events_until, fresh_file, is_alive, ms, within};
use vibes_supervisor::{Backoff, Error, Probe, State, StopOutcome, Supervisor, SupervisorOptions};

const LONG_AGO: Duration = Duration::from_secs(600);

#[tokio::test]
async fn restarts_after_crashes_wait_longer_each_time_up_to_the_cap() {
    let backoff = Backoff::new(ms(50), ms(400)).jitter(0.2);
    let options = SupervisorOptions::new()
        .backoff(backoff)
        .stable_after(LONG_AGO)
        .restart_limit(100, LONG_AGO);
    let started = Instant::now();
    // Ready as soon as spawned (no probe), then exits with 1 after 200 ms.
    let supervisor = Supervisor::start(child("crasher", ["exit", "1", "200", "1"]), options)
        .await
        .expect("first start");
    let mut events = supervisor.events();
    let mut pids = vec![supervisor.pid().expect("running")];
    let mut delays = Vec::new();
    let mut waited_by_the_sixth = Duration::ZERO;
    while delays.len() < 6 {
        let state = within("next state", events.next())
            .await
            .expect("supervising");
        match state {
            State::Backoff { attempt, delay } => {
                // Starting every run did not reset the attempt counter.
                assert_eq!(attempt as usize, delays.len() + 1, "{delays:?}");
                delays.push(delay);
                waited_by_the_sixth = started.elapsed();
            }
            State::Running { pid } => pids.push(pid),
            State::Failed { error } => panic!("gave up: {error}"),
            _ => {}
        }
    }
    within("stop", supervisor.stop()).await.expect("stop");

    for (n, delay) in delays.iter().enumerate() {
        let (low, high) = backoff.bounds(n as u32 + 1);
        assert!(
            low <= *delay && *delay <= high,
            "delay {} = {delay:?} outside {low:?}..={high:?}",
            n + 1
        );
    }
    // 50, 100, 200 and 400 ms before jitter: the jittered ranges do not overlap.
    for pair in delays[..4].windows(2) {
        assert!(pair[1] > pair[0], "delays did not grow: {delays:?}");
    }
    for delay in &delays[3..] {
        assert!(
            ms(320) <= *delay && *delay <= ms(400),
            "not at the cap: {delays:?}"
        );
    }
    // The delays were really waited: five of them lie between the start and the
    // sixth backoff.
    let waited: Duration = delays[..5].iter().sum();
    assert!(
        waited_by_the_sixth >= waited,
        "{waited_by_the_sixth:?} < {waited:?}"
    );
    pids.dedup();
    assert!(pids.len() >= 6, "every restart is a new process: {pids:?}");
}

#[tokio::test]
async fn crash_loop_ends_in_failed_and_the_watch_channel_says_why() {
    let options = SupervisorOptions::new()
        .backoff(Backoff::new(ms(10), ms(40)))
        .stable_after(LONG_AGO)
        .restart_limit(3, LONG_AGO);
    let supervisor = Supervisor::start(child("crash-loop", ["exit", "1", "100", "3"]), options)
        .await
        .expect("first start");
    let mut events = supervisor.events();
    let mut states = supervisor.subscribe();

    let failed = within(
        "Failed",
        states.wait_for(|state| matches!(state, State::Failed { .. })),
    )
    .await
    .expect("the watch channel shows the final state")
    .clone();
    let State::Failed { error } = failed else {
        unreachable!("waited for Failed")
    };
    let Error::RestartLimit {
        restarts,
        window,
        last,
        ..
    } = &*error
    else {
        panic!("not the restart limit: {error}");
    };
    assert_eq!((*restarts, *window), (3, LONG_AGO));
    let Error::Exited {
        status,
        output_tail,
        ..
    } = &**last
    else {
        panic!("last failure is not the exit: {last}");
    };
    assert_eq!(status.code(), Some(1));
    assert!(output_tail.contains("line 2"), "{output_tail}");
    assert_eq!(error.output_tail(), Some(output_tail.as_str()));

    // Exactly three restarts were tried, and the stream ends after the final state.
    let mut attempts = Vec::new();
    let mut last_state = None;
    while let Some(state) = within("events end", events.next()).await {
        if let State::Backoff { attempt, .. } = state {
            attempts.push(attempt);
        }
        last_state = Some(state);
    }
    assert_eq!(attempts, [1, 2, 3]);
    let ended_failed = matches!(last_state, Some(State::Failed { .. }));
    assert!(ended_failed, "{last_state:?}");
    assert_eq!(
        supervisor.stop().await.expect("stop"),
        StopOutcome::NotRunning
    );
}

#[tokio::test]
async fn backoff_starts_over_once_a_run_has_been_stable() {
    let backoff = Backoff::new(ms(50), ms(400));
    let options = SupervisorOptions::new()
        .backoff(backoff)
        .stable_after(ms(300))
        .restart_limit(100, LONG_AGO);
    // Each run stays up 1.5 s, well past the stable period.
    let supervisor = Supervisor::start(child("steady", ["exit", "1", "1500", "1"]), options)
        .await
        .expect("first start");
    let mut events = supervisor.events();
    let mut attempts = Vec::new();
    while attempts.len() < 3 {
        let state = within("next state", events.next())
            .await
            .expect("supervising");
        if let State::Backoff { attempt, delay } = state {
            let (low, high) = backoff.bounds(1);
            assert!(low <= delay && delay <= high, "{delay:?}");
            attempts.push(attempt);
        }
    }
    within("stop", supervisor.stop()).await.expect("stop");
    assert_eq!(attempts, [1, 1, 1]);
}

#[tokio::test]
async fn hung_child_fails_its_health_probe_and_is_restarted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let beat = dir.path().join("heartbeat");
    let marker = dir.path().join("hung-once");
    // Fresh means rewritten in the last 2 s; the child rewrites it every 50 ms.
    let probe = fresh_file(&beat, Duration::from_secs(2));
    let options = SupervisorOptions::new()
        .readiness(probe.clone())
        .readiness_interval(ms(50))
        .health(probe)
        .health_interval(ms(100))
        .health_failures(3)
        .backoff(Backoff::new(ms(50), ms(400)))
        .stop_grace(Duration::from_secs(10));
    // The first run stops beating after 500 ms but keeps running; the next one does not.
    let spec = child("hanger", ["heartbeat", arg(&beat), "500", arg(&marker)]);
    let supervisor = Supervisor::start(spec, options).await.expect("first start");
    let hung = supervisor.pid().expect("running");
    let mut events = supervisor.events();

    let seen = events_until(
        &mut events,
        "a new run",
        |state| matches!(state, State::Running { pid } if *pid != hung),
    )
    .await;
    let failures: Vec<u32> = seen
        .iter()
        .filter_map(|state| match state {
            State::Unhealthy { pid, failures } if *pid == hung => Some(*failures),
            _ => None,
        })
        .collect();
    // Two failures show as Unhealthy; the third stops it.
    assert!(failures.ends_with(&[1, 2]), "{seen:?}");
    let stopped_it = seen
        .iter()
        .any(|state| matches!(state, State::Stopping { pid } if *pid == hung));
    let backed_off = seen
        .iter()
        .any(|state| matches!(state, State::Backoff { attempt: 1, .. }));
    assert!(stopped_it && backed_off, "{seen:?}");
    assert!(!is_alive(hung), "the hung child {hung} is still alive");

    within("stop", supervisor.stop()).await.expect("stop");
}

#[tokio::test]
async fn a_panicking_health_probe_counts_as_a_failed_check() {
    let options = SupervisorOptions::new()
        .health(Probe::new(
            |pid| async move { panic!("probe of {pid} broke") },
        ))
        .health_interval(ms(50))
        .health_failures(2)
        .restart_limit(0, LONG_AGO);
    let supervisor = Supervisor::start(child("probed", ["forever"]), options)
        .await
        .expect("start");
    let end = within("final state", supervisor.wait_for(State::is_final))
        .await
        .expect("a final state");
    let State::Failed { error } = end else {
        panic!("not failed: {end:?}");
    };
    let Error::RestartLimit { last, .. } = &*error else {
        panic!("not the restart limit: {error}");
    };
    let unhealthy = matches!(**last, Error::Unhealthy { failures: 2, .. });
    assert!(unhealthy, "{last}");
}
