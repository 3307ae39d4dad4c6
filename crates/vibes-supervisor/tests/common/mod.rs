//! Shared by the integration tests: the test child, probes on files it writes,
//! process checks, and bounded waits.

// Each test binary uses only some of these.
#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use vibes_supervisor::{ChildSpec, Events, Probe, State};

/// The test child binary (src/bin/test_child.rs documents its modes).
pub(crate) const CHILD: &str = env!("CARGO_BIN_EXE_supervisor-test-child");

/// How long a test waits for something that should happen far sooner: the machine may
/// be a loaded 2-core VM. Only a failing test ever waits this long.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A spec running the test child with `args`.
pub(crate) fn child<const N: usize>(name: &str, args: [&str; N]) -> ChildSpec {
    ChildSpec::new(name, CHILD).args(args)
}

/// A path as a command-line argument.
pub(crate) fn arg(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// Ready (or healthy) once `path` exists.
pub(crate) fn file_exists(path: &Path) -> Probe {
    let path = path.to_path_buf();
    Probe::new(move |_pid| {
        let path = path.clone();
        async move { path.exists() }
    })
}

/// Never ready.
pub(crate) fn never() -> Probe {
    Probe::new(|_pid| async { false })
}

/// Healthy while `path` was modified less than `fresh` ago.
pub(crate) fn fresh_file(path: &Path, fresh: Duration) -> Probe {
    let path = path.to_path_buf();
    Probe::new(move |_pid| {
        let path = path.clone();
        async move {
            let Ok(modified) = std::fs::metadata(&path).and_then(|m| m.modified()) else {
                return false;
            };
            // A modification time in the future (clock steps) counts as fresh.
            modified.elapsed().map_or(true, |age| age < fresh)
        }
    })
}

/// Whether `pid` is a live process. A zombie is dead: a child killed after its parent
/// died may stay one when PID 1 does not reap (as in many containers).
pub(crate) fn is_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state is the first field after the command name, which is in parentheses.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, None | Some("Z" | "X"))
}

/// Polls until `pid` is dead or `limit` has passed; says whether it died.
pub(crate) fn dies_within(pid: u32, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if !is_alive(pid) {
            return true;
        }
        std::thread::sleep(ms(20));
    }
    !is_alive(pid)
}

/// Awaits `future`, failing the test if it takes longer than [`PATIENCE`].
pub(crate) async fn within<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(PATIENCE, future).await {
        Ok(output) => output,
        Err(_) => panic!("{what}: still waiting after {PATIENCE:?}"),
    }
}

/// Reads state changes until one satisfies `accept`; returns every change read, the
/// accepted one last.
pub(crate) async fn events_until(
    events: &mut Events,
    what: &str,
    mut accept: impl FnMut(&State) -> bool,
) -> Vec<State> {
    within(what, async {
        let mut seen = Vec::new();
        while let Some(state) = events.next().await {
            let done = accept(&state);
            seen.push(state);
            if done {
                return seen;
            }
        }
        panic!("{what}: supervision ended first, after {seen:?}");
    })
    .await
}
