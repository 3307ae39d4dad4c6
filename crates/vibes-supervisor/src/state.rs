//! What the supervisor is doing, as its owner sees it.

use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;

/// The supervisor's state, published on a `tokio::sync::watch` channel
/// ([`Supervisor::subscribe`](crate::Supervisor::subscribe)) and, every transition in
/// order, on [`Supervisor::events`](crate::Supervisor::events).
///
/// A run goes `Starting` → `Running` (↔ `Unhealthy`) and ends in `Stopping` (when the
/// supervisor stops it) or by exiting; then `Backoff` → `Starting` again, or one of the
/// two final states, `Stopped` and `Failed`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum State {
    /// A run is being spawned and probed for readiness. `attempt` is 0 for the first
    /// start and the backoff attempt for a restart.
    Starting {
        /// Restart attempt since the child was last stable (0: first start).
        attempt: u32,
    },
    /// The child is ready, and healthy as far as the health probe knows.
    Running {
        /// Its process id (also its process group id).
        pid: u32,
    },
    /// The last `failures` health checks failed, fewer than the limit.
    Unhealthy {
        /// The child's process id.
        pid: u32,
        /// Failed checks in a row.
        failures: u32,
    },
    /// The child is being stopped: SIGTERM sent to its process group, SIGKILL after the
    /// grace period.
    Stopping {
        /// The child's process id.
        pid: u32,
    },
    /// The last run failed; restart number `attempt` begins after `delay`.
    Backoff {
        /// Restart attempt since the child was last stable, from 1.
        attempt: u32,
        /// The jittered delay being waited.
        delay: Duration,
    },
    /// Final: stopped on request, or the child exited and the restart policy said not to
    /// start it again.
    Stopped,
    /// Final: the supervisor gave up; `error` says why (usually
    /// [`Error::RestartLimit`], whose source is the last run's failure).
    Failed {
        /// Why.
        error: Arc<Error>,
    },
}

impl State {
    /// The child's process id while one is running (`Running`, `Unhealthy`,
    /// `Stopping`).
    pub fn pid(&self) -> Option<u32> {
        match self {
            State::Running { pid } | State::Unhealthy { pid, .. } | State::Stopping { pid } => {
                Some(*pid)
            }
            _ => None,
        }
    }

    /// Whether this is `Stopped` or `Failed`, after which nothing changes.
    pub fn is_final(&self) -> bool {
        std::matches!(self, State::Stopped | State::Failed { .. })
    }
}

/// How a [`Supervisor::stop`](crate::Supervisor::stop) ended the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopOutcome {
    /// The child exited within the grace period after SIGTERM (or had just exited).
    Exited(ExitStatus),
    /// The grace period passed, and the child was killed with SIGKILL.
    Killed(ExitStatus),
    /// No child was running (between restarts, or supervision had already ended).
    NotRunning,
}
