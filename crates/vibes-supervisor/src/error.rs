//! The one error type of the supervisor.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Everything that can go wrong while starting or supervising a child.
///
/// The variants that end a run of the child ([`ExitedDuringStartup`], [`ReadinessTimeout`],
/// [`Exited`], [`Unhealthy`]) carry the tail of its output, which is usually where the
/// reason is. After start-up the same values reach the owner through
/// [`State::Failed`](crate::State::Failed), directly or as the `last` failure of
/// [`RestartLimit`].
///
/// [`ExitedDuringStartup`]: Error::ExitedDuringStartup
/// [`ReadinessTimeout`]: Error::ReadinessTimeout
/// [`Exited`]: Error::Exited
/// [`Unhealthy`]: Error::Unhealthy
/// [`RestartLimit`]: Error::RestartLimit
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The [`ChildSpec`](crate::ChildSpec) or [`SupervisorOptions`](crate::SupervisorOptions)
    /// cannot work; fix the setting that `reason` names.
    #[error("invalid supervisor configuration: {reason}")]
    InvalidConfig {
        /// Which setting is wrong and why.
        reason: String,
    },
    /// The program could not be started: not found, not executable, a working
    /// directory that does not exist, an argument with a NUL byte.
    #[error("cannot start {}: {source}", program.display())]
    Spawn {
        /// The program as given in the spec.
        program: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The child exited before its readiness probe said it was ready.
    #[error("{name} exited during start-up ({status}); its last output:\n{output_tail}")]
    ExitedDuringStartup {
        /// The child's name.
        name: String,
        /// How it exited.
        status: ExitStatus,
        /// The last lines of its stdout and stderr, interleaved as they arrived.
        output_tail: String,
    },
    /// The readiness probe did not say ready before the start-up deadline; the child has
    /// been stopped (SIGTERM, then SIGKILL after the grace period).
    #[error(
        "{name} was not ready after {after:?} and was stopped; its last output:\n{output_tail}"
    )]
    ReadinessTimeout {
        /// The child's name.
        name: String,
        /// The start-up timeout that passed.
        after: Duration,
        /// The last lines of its stdout and stderr.
        output_tail: String,
    },
    /// The child exited after it was ready, without being asked to.
    #[error("{name} exited ({status}); its last output:\n{output_tail}")]
    Exited {
        /// The child's name.
        name: String,
        /// How it exited.
        status: ExitStatus,
        /// The last lines of its stdout and stderr.
        output_tail: String,
    },
    /// The health probe failed this many times in a row; the child has been stopped
    /// (SIGTERM, then SIGKILL after the grace period).
    #[error(
        "{name} failed {failures} health probes in a row and was stopped; \
         its last output:\n{output_tail}"
    )]
    Unhealthy {
        /// The child's name.
        name: String,
        /// Consecutive failed probes.
        failures: u32,
        /// The last lines of its stdout and stderr.
        output_tail: String,
    },
    /// The child failed again after `restarts` restarts within `window`; the supervisor
    /// has given up. `last` is the failure that ended the last run.
    #[error("{name} gave up: {restarts} restarts within {window:?} did not keep it running")]
    RestartLimit {
        /// The child's name.
        name: String,
        /// Restarts within the window (the configured limit).
        restarts: u32,
        /// The sliding window the limit applies to.
        window: Duration,
        /// Why the last run ended.
        #[source]
        last: Box<Error>,
    },
    /// The log directory or a log file could not be created.
    #[error("cannot write the output log at {}: {source}", path.display())]
    Log {
        /// The directory or file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// An operating-system call around the child failed: creating its output pipes or
    /// reader threads, waiting for it, or signalling it.
    #[error("{name}: {source}")]
    Io {
        /// The child's name.
        name: String,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// [`Supervisor::start`](crate::Supervisor::start) was called outside a tokio
    /// runtime; it needs one with I/O and time enabled.
    #[error("vibes-supervisor needs a tokio runtime with I/O and time enabled")]
    NoRuntime,
    /// The supervisor's task ended without answering (its runtime shut down).
    #[error("the supervisor of {name} has ended")]
    Closed {
        /// The child's name.
        name: String,
    },
}

impl Error {
    /// The tail of the child's output that this error carries, if it ended a run of
    /// the child (for [`Error::RestartLimit`], that of the last run).
    pub fn output_tail(&self) -> Option<&str> {
        match self {
            Error::ExitedDuringStartup { output_tail, .. }
            | Error::ReadinessTimeout { output_tail, .. }
            | Error::Exited { output_tail, .. }
            | Error::Unhealthy { output_tail, .. } => Some(output_tail),
            Error::RestartLimit { last, .. } => last.output_tail(),
            _ => None,
        }
    }

    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            reason: reason.into(),
        }
    }
}
