//! vibes-supervisor: generic child-process supervision.
//!
//! A [`Supervisor`] runs one program described by a [`ChildSpec`] and keeps it running
//! as [`SupervisorOptions`] say:
//!
//! - **Start-up.** The child is spawned with its arguments, environment changes and
//!   working directory, then polled with a caller-supplied readiness [`Probe`] until it
//!   says ready or the start-up deadline passes. An exit before that is
//!   [`Error::ExitedDuringStartup`] with the exit status and the tail of the child's
//!   output; a passed deadline is [`Error::ReadinessTimeout`].
//! - **Output.** stdout and stderr are read line by line: one `tracing` event per line
//!   (target `vibes_supervisor::output`, fields `child`, `pid`, `stream`), an optional
//!   size-capped, rotated log file per stream, and a tail kept for errors. Or stdout
//!   goes to the owner whole line by whole line, through a bounded queue that makes the
//!   child wait rather than drop anything ([`ChildSpec::stdout_lines`],
//!   [`Supervisor::stdout_lines`]), and stderr straight to the owner's stderr
//!   ([`ChildSpec::stderr_inherit`]).
//! - **Health.** A health probe runs at an interval; after N failures in a row the
//!   child counts as failed (a hung process is caught, not only a dead one) and is
//!   stopped.
//! - **Restarts** follow [`Restart`], after a delay from [`Backoff`]: exponential with
//!   jitter, capped. The attempt counter goes back to zero only after the child has
//!   stayed healthy for [`SupervisorOptions::stable_after`], so a child that crashes
//!   soon after each start waits longer each time. More than K restarts within a
//!   sliding window ends in [`State::Failed`].
//! - **State** is published on a `tokio::sync::watch` channel
//!   ([`Supervisor::subscribe`], [`Supervisor::wait_for`]) and as a stream of every
//!   change ([`Supervisor::events`]).
//! - **Stop** sends SIGTERM to the child's process group, waits a grace period, then
//!   sends SIGKILL, and reports which ended it ([`StopOutcome`]).
//! - **No orphans.** On Linux the child is killed by the kernel when the supervisor's
//!   process dies, even by SIGKILL (`PR_SET_PDEATHSIG`, with a check for a supervisor
//!   that died before the call). Because the kernel ties that signal to the *thread*
//!   that forked, every child is forked on a thread the supervisor owns for its whole
//!   life, never on a runtime thread that might exit first.
//! - **Run once.** With [`Restart::Never`] the child runs once;
//!   [`Supervisor::last_exit`] says how it ended (on its own or stopped).
//! - **Group guard.** Optionally ([`SupervisorOptions::group_guard`]) a guard process
//!   stops the child's whole process group when the supervisor dies without stopping
//!   it, so the child's own helpers do not outlive it either.
//! - **Process tree.** [`TreeSampler`] measures the child and every process it started
//!   (count, CPU, memory, disk I/O, open files) from `/proc`.
//! - **Process group.** Each child leads its own process group: a Ctrl-C on the
//!   owner's terminal does not reach it directly (the owner decides how it stops), and
//!   stopping signals the child's helpers too.
//!
//! ```
//! use std::time::Duration;
//! use vibes_supervisor::{Backoff, ChildSpec, Probe, State, Supervisor, SupervisorOptions};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! # let dir = tempfile::tempdir().unwrap();
//! # let log_dir = dir.path().to_path_buf();
//! let spec = ChildSpec::new("server", "sleep").arg("600").log_dir(&log_dir);
//! // A real probe would connect to the server's port.
//! let alive = Probe::new(|pid| async move {
//!     std::fs::exists(format!("/proc/{pid}")).unwrap_or(false)
//! });
//! let options = SupervisorOptions::new()
//!     .readiness(alive.clone())
//!     .startup_timeout(Duration::from_secs(10))
//!     .health(alive)
//!     .health_interval(Duration::from_secs(1))
//!     .backoff(Backoff::new(Duration::from_millis(200), Duration::from_secs(30)))
//!     .restart_limit(5, Duration::from_secs(300))
//!     .stop_grace(Duration::from_secs(5));
//! let supervisor = Supervisor::start(spec, options).await?;
//!
//! let mut states = supervisor.subscribe();
//! tokio::spawn(async move {
//!     while states.changed().await.is_ok() {
//!         if let State::Failed { error } = &*states.borrow() {
//!             eprintln!("server gave up: {error}");
//!         }
//!     }
//! });
//! supervisor.stop().await?;
//! # Ok::<_, vibes_supervisor::Error>(())
//! # }).unwrap();
//! ```
//!
//! Unix only; the parent-death signal is Linux only (elsewhere a child can outlive a
//! supervisor that is killed with SIGKILL). This crate knows nothing of what it runs,
//! and must never depend on another vibes crate.
#![warn(missing_docs)]

mod error;
mod guard;
mod options;
mod output;
mod probe;
mod process;
mod spec;
mod state;
mod supervisor;
mod tree;

pub use error::Error;
pub use options::{Backoff, Restart, SupervisorOptions};
pub use probe::{Probe, ProbeFuture};
pub use spec::{ChildSpec, MIN_LOG_BYTES};
pub use state::{State, StopOutcome};
pub use supervisor::{Ended, Events, Lines, Supervisor};
pub use tree::{TreeSample, TreeSampler};
