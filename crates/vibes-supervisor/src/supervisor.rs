//! The supervisor: a handle for the owner, and the task that starts, probes, restarts
//! and stops the child.

use std::collections::VecDeque;
use std::io;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;
use tokio::time::{Instant, sleep, sleep_until, timeout};

use crate::error::Error;
use crate::guard::Guard;
use crate::options::{Restart, SupervisorOptions};
use crate::output::{LineSender, Logs, Output};
use crate::probe::{Probe, ProbeFuture};
use crate::process::{self, Spawner};
use crate::spec::ChildSpec;
use crate::state::{State, StopOutcome};

/// How long to wait for a run's output to reach end-of-file after it exited. Longer
/// only when a process the child started still holds its stdout or stderr open.
const DRAIN: Duration = Duration::from_secs(2);

/// Where the answer to a stop request goes.
type Reply = oneshot::Sender<Result<StopOutcome, Error>>;

/// Supervises one child process: starts it, waits until it is ready, checks its health,
/// restarts it with growing delays when it fails, gives up after too many restarts, and
/// stops it with SIGTERM, then SIGKILL.
///
/// The work happens in a tokio task; this is the handle to it. Dropping the handle stops
/// the child in the background (SIGTERM, grace, SIGKILL) as long as the runtime runs; if
/// the runtime shuts down first, the child is killed with SIGKILL. If the whole process
/// dies, even by SIGKILL, the child is killed by the kernel (Linux; see the crate docs).
///
/// ```
/// use vibes_supervisor::{ChildSpec, StopOutcome, Supervisor, SupervisorOptions};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let spec = ChildSpec::new("sleeper", "sleep").arg("600");
/// let supervisor = Supervisor::start(spec, SupervisorOptions::new()).await?;
/// assert!(supervisor.pid().is_some()); // running, and restarted if it dies
/// let outcome = supervisor.stop().await?; // SIGTERM; SIGKILL after 10 s
/// let graceful = matches!(outcome, StopOutcome::Exited(_));
/// assert!(graceful);
/// assert!(supervisor.state().is_final());
/// # Ok::<_, vibes_supervisor::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct Supervisor {
    name: String,
    stops: mpsc::Sender<Reply>,
    state: watch::Receiver<State>,
    subscribers: Arc<Subscribers>,
    lines: Mutex<Option<Lines>>,
    last_exit: Arc<Mutex<Option<ExitStatus>>>,
}

impl Supervisor {
    /// Starts the child and returns once it is ready: spawned, and, if
    /// [`SupervisorOptions::readiness`] is set, the probe said so.
    ///
    /// Must be called inside a tokio runtime with I/O and time enabled; the supervisor
    /// runs as a task of that runtime. A failed first start is returned, not retried.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidConfig`]: a setting cannot work (checked before anything runs).
    /// - [`Error::Spawn`]: the program cannot be started.
    /// - [`Error::ExitedDuringStartup`]: the child exited before it was ready; carries
    ///   its exit status and the tail of its output.
    /// - [`Error::ReadinessTimeout`]: not ready within
    ///   [`SupervisorOptions::startup_timeout`]; the child has been stopped.
    /// - [`Error::Log`]: the log directory cannot be created.
    /// - [`Error::Io`], [`Error::NoRuntime`].
    pub async fn start(spec: ChildSpec, options: SupervisorOptions) -> Result<Supervisor, Error> {
        spec.validate()?;
        options.validate()?;
        let handle = Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let logs = Logs::open(&spec)?;
        let name = spec.name.clone();
        let spawner = Spawner::new(&name, handle.clone()).map_err(|source| Error::Io {
            name: name.clone(),
            source,
        })?;
        let (state_tx, state) = watch::channel(State::Starting { attempt: 0 });
        let subscribers = Arc::new(Subscribers::default());
        let (stops, stop_requests) = mpsc::channel(4);
        let (started_tx, started) = oneshot::channel();
        let (line_sender, lines) = match spec.stdout_lines {
            Some(capacity) => {
                let (sender, receiver) = mpsc::channel(capacity);
                (Some(sender), Some(Lines { receiver }))
            }
            None => (None, None),
        };
        let last_exit = Arc::new(Mutex::new(None));
        let task = Task {
            lines: line_sender,
            last_exit: Arc::clone(&last_exit),
            spec,
            options,
            spawner,
            logs,
            state: state_tx,
            subscribers: Arc::clone(&subscribers),
            stop_requests,
            attempt: 0,
            restarts: VecDeque::new(),
        };
        handle.spawn(task.run(started_tx));
        match started.await {
            Ok(Ok(())) => Ok(Supervisor {
                name,
                stops,
                state,
                subscribers,
                lines: Mutex::new(lines),
                last_exit,
            }),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(Error::Closed { name }),
        }
    }

    /// The child's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The child's stdout lines, when its spec says
    /// [`stdout_lines`](ChildSpec::stdout_lines); `None` otherwise and after the first
    /// call (there is one receiver).
    pub fn stdout_lines(&self) -> Option<Lines> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// How the last run of the child ended: by exiting on its own, or when it was
    /// stopped (then the status says whether SIGTERM or SIGKILL ended it). `None` while
    /// no run has ended. With [`Restart::Never`], once the state is final this is how
    /// the one run ended.
    pub fn last_exit(&self) -> Option<ExitStatus> {
        *self
            .last_exit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state.borrow().clone()
    }

    /// The child's process id while one is running.
    pub fn pid(&self) -> Option<u32> {
        self.state.borrow().pid()
    }

    /// A watch channel of the state. It holds the latest state only: a state that
    /// lasts a moment can be missed. Its sender closes when supervision has ended (after
    /// `Stopped` or `Failed`).
    pub fn subscribe(&self) -> watch::Receiver<State> {
        self.state.clone()
    }

    /// Every state change from now on, in order, none missed. The stream ends after the
    /// final state. Changes queue up unread (a few per restart, and restarts are
    /// limited), so a subscriber that stops reading should drop its `Events`.
    pub fn events(&self) -> Events {
        self.subscribers.subscribe()
    }

    /// Waits until the state satisfies `accept` (checking the current state first) and
    /// returns that state; `None` if supervision ended without it. Transient states can
    /// be missed (see [`subscribe`](Self::subscribe)); wrap in `tokio::time::timeout` to
    /// bound the wait.
    pub async fn wait_for(&self, mut accept: impl FnMut(&State) -> bool) -> Option<State> {
        let mut state = self.state.clone();
        let found = state.wait_for(|s| accept(s)).await.ok()?;
        Some(found.clone())
    }

    /// Stops the child, SIGTERM to its process group, then SIGKILL once
    /// [`SupervisorOptions::stop_grace`] has passed, and ends supervision (state
    /// [`State::Stopped`]). Says which of the two ended it, or
    /// [`StopOutcome::NotRunning`] if no child was running (between restarts, or after
    /// supervision ended). Calling it again returns `NotRunning`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the child could not be signalled or waited for; [`Error::Closed`]
    /// if the supervisor's runtime shut down meanwhile.
    pub async fn stop(&self) -> Result<StopOutcome, Error> {
        let (reply, answer) = oneshot::channel();
        if self.stops.send(reply).await.is_err() {
            return Ok(StopOutcome::NotRunning);
        }
        match answer.await {
            Ok(outcome) => outcome,
            Err(_) if self.state.borrow().is_final() => Ok(StopOutcome::NotRunning),
            Err(_) => Err(Error::Closed {
                name: self.name.clone(),
            }),
        }
    }
}

/// Every state change of a [`Supervisor`], in order ([`Supervisor::events`]).
#[derive(Debug)]
pub struct Events {
    changes: mpsc::UnboundedReceiver<State>,
}

impl Events {
    /// The next state change; `None` once supervision has ended and every change has
    /// been read.
    pub async fn next(&mut self) -> Option<State> {
        self.changes.recv().await
    }
}

/// The child's stdout lines ([`Supervisor::stdout_lines`]), each without its newline.
#[derive(Debug)]
pub struct Lines {
    receiver: mpsc::Receiver<Vec<u8>>,
}

impl Lines {
    /// The next line; `None` once supervision has ended and every line of every run has
    /// been read (a process the child started that still holds its stdout keeps this
    /// waiting: bound the wait with `tokio::time::timeout` after the state is final).
    pub async fn next(&mut self) -> Option<Vec<u8>> {
        self.receiver.recv().await
    }

    /// A line that is already waiting, if any: `Ok(None)` when none waits yet, `Err`
    /// when none ever will (as [`next`](Self::next) returning `None`).
    pub fn try_next(&mut self) -> Result<Option<Vec<u8>>, Ended> {
        match self.receiver.try_recv() {
            Ok(line) => Ok(Some(line)),
            Err(mpsc::error::TryRecvError::Empty) => Ok(None),
            Err(mpsc::error::TryRecvError::Disconnected) => Err(Ended),
        }
    }
}

/// Every line has been read ([`Lines::try_next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended;

/// The senders of every [`Events`]; `None` once supervision has ended.
#[derive(Debug)]
struct Subscribers {
    senders: Mutex<Option<Vec<mpsc::UnboundedSender<State>>>>,
}

impl Default for Subscribers {
    fn default() -> Self {
        Subscribers {
            senders: Mutex::new(Some(Vec::new())),
        }
    }
}

impl Subscribers {
    fn subscribe(&self) -> Events {
        let (sender, changes) = mpsc::unbounded_channel();
        let mut senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(senders) = senders.as_mut() {
            senders.push(sender);
        }
        Events { changes }
    }

    fn publish(&self, state: &State) {
        let mut senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(senders) = senders.as_mut() {
            senders.retain(|sender| sender.send(state.clone()).is_ok());
        }
    }

    fn close(&self) {
        let mut senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        *senders = None;
    }
}

/// One run of the child.
#[derive(Debug)]
struct Run {
    child: tokio::process::Child,
    pid: u32,
    output: Output,
    /// The group guard, when the options ask for one.
    guard: Option<Guard>,
}

impl Run {
    /// The run ended normally (its child is reaped): its guard stands down.
    fn ended(&mut self) {
        if let Some(guard) = self.guard.take() {
            guard.release();
        }
    }
}

/// Why watching a ready run ended.
enum RunEnd {
    /// The owner asked to stop (`None`: the handle was dropped).
    Stop(Option<Reply>),
    /// The run failed; the child is gone.
    Failed(Error),
}

/// What the restart policy says after a run ended on its own.
enum Next {
    Restart,
    Stop,
    Fail,
}

/// The supervisor's task.
struct Task {
    spec: ChildSpec,
    options: SupervisorOptions,
    spawner: Spawner,
    logs: Logs,
    state: watch::Sender<State>,
    subscribers: Arc<Subscribers>,
    stop_requests: mpsc::Receiver<Reply>,
    /// Where stdout lines go, for a spec with `stdout_lines`.
    lines: Option<LineSender>,
    /// How the last run ended.
    last_exit: Arc<Mutex<Option<ExitStatus>>>,
    /// Restart attempt since the child was last stable: drives the backoff.
    attempt: u32,
    /// When the restarts within the current window happened, oldest first.
    restarts: VecDeque<Instant>,
}

impl Drop for Task {
    fn drop(&mut self) {
        // Ends every `Events` stream, also when the runtime drops the task.
        self.subscribers.close();
    }
}

impl Task {
    async fn run(mut self, started: oneshot::Sender<Result<(), Error>>) {
        let mut run = match self.start_run().await {
            Ok(Some(run)) => {
                // Running before `start` returns, so the owner sees the pid at once.
                self.set(State::Running { pid: run.pid });
                drop(started.send(Ok(())));
                run
            }
            Ok(None) => return,
            Err(err) => {
                drop(started.send(Err(err)));
                return;
            }
        };
        loop {
            let failure = match self.watch(&mut run).await {
                RunEnd::Stop(reply) => return self.stop(run, reply).await,
                RunEnd::Failed(failure) => failure,
            };
            match self.next_after(&failure) {
                Next::Restart => {}
                Next::Stop => {
                    let child = self.spec.name.as_str();
                    tracing::info!(target: "vibes_supervisor", child, "exited with 0; done");
                    return self.set(State::Stopped);
                }
                Next::Fail => {
                    let child = self.spec.name.as_str();
                    if self.options.restart == Restart::Never {
                        // The owner asked for one run; how it ended is theirs to judge.
                        tracing::info!(target: "vibes_supervisor", child, error = %failure, "ended");
                    } else {
                        tracing::error!(target: "vibes_supervisor", child, error = %failure, "failed");
                    }
                    let error = Arc::new(failure);
                    return self.set(State::Failed { error });
                }
            }
            match self.restart(failure).await {
                Some(next) => {
                    self.set(State::Running { pid: next.pid });
                    run = next;
                }
                None => return,
            }
        }
    }

    fn next_after(&self, failure: &Error) -> Next {
        let clean = matches!(failure, Error::Exited { status, .. } if status.success());
        match self.options.restart {
            Restart::Always => Next::Restart,
            Restart::OnFailure if !clean => Next::Restart,
            _ if clean => Next::Stop,
            _ => Next::Fail,
        }
    }

    /// Backoff and start again, until a run is ready, the restart limit is reached
    /// (state `Failed`), or the owner stops it (state `Stopped`).
    async fn restart(&mut self, mut failure: Error) -> Option<Run> {
        loop {
            if !self.note_restart(Instant::now()) {
                let error = Error::RestartLimit {
                    name: self.spec.name.clone(),
                    restarts: self.options.max_restarts,
                    window: self.options.restart_window,
                    last: Box::new(failure),
                };
                let child = self.spec.name.as_str();
                tracing::error!(target: "vibes_supervisor", child, error = %error, "giving up");
                self.set(State::Failed {
                    error: Arc::new(error),
                });
                return None;
            }
            self.attempt = self.attempt.saturating_add(1);
            let attempt = self.attempt;
            let delay = self.options.backoff.delay(attempt, fastrand::f64());
            tracing::warn!(
                target: "vibes_supervisor",
                child = %self.spec.name,
                attempt,
                delay = ?delay,
                error = %failure,
                "failed; restarting after a delay"
            );
            self.set(State::Backoff { attempt, delay });
            tokio::select! {
                () = sleep(delay) => {}
                reply = self.stop_requests.recv() => {
                    self.set(State::Stopped);
                    if let Some(reply) = reply {
                        drop(reply.send(Ok(StopOutcome::NotRunning)));
                    }
                    return None;
                }
            }
            match self.start_run().await {
                Ok(Some(run)) => return Some(run),
                Ok(None) => return None,
                Err(err) => failure = err,
            }
        }
    }

    /// Records a restart at `now` unless `max_restarts` restarts already happened
    /// within the window before it.
    fn note_restart(&mut self, now: Instant) -> bool {
        let window = self.options.restart_window;
        while let Some(&oldest) = self.restarts.front() {
            if now.saturating_duration_since(oldest) >= window {
                self.restarts.pop_front();
            } else {
                break;
            }
        }
        let limit = usize::try_from(self.options.max_restarts).unwrap_or(usize::MAX);
        if self.restarts.len() >= limit {
            return false;
        }
        self.restarts.push_back(now);
        true
    }

    /// Spawns a run and waits until it is ready. `None`: a stop request (or the owner's
    /// going away) came first, and has been handled.
    async fn start_run(&mut self) -> Result<Option<Run>, Error> {
        self.set(State::Starting {
            attempt: self.attempt,
        });
        let io = |source| self.io_error(source);
        let (stdout, stdout_writer) = std::io::pipe().map_err(io)?;
        let (stderr, stderr_writer) = if self.spec.stderr_inherit {
            (None, std::process::Stdio::inherit())
        } else {
            let (reader, writer) = std::io::pipe().map_err(io)?;
            (Some(reader), writer.into())
        };
        let command = process::command(&self.spec, stdout_writer.into(), stderr_writer);
        let mut child = self
            .spawner
            .spawn(command)
            .await
            .map_err(|source| Error::Spawn {
                program: self.spec.program.clone(),
                source,
            })?;
        let Some(pid) = child.id() else {
            // Already reaped: only possible if it exited at once.
            let status = child.wait().await.map_err(io)?;
            return Err(Error::ExitedDuringStartup {
                name: self.spec.name.clone(),
                status,
                output_tail: String::new(),
            });
        };
        // On failure the child is dropped, which kills it.
        let guard = if self.options.group_guard {
            Some(Guard::start(pid, self.options.stop_grace).map_err(io)?)
        } else {
            None
        };
        let output = Output::capture(
            &self.spec,
            pid,
            &self.logs,
            stdout,
            stderr,
            self.lines.clone(),
        )
        .map_err(io)?;
        tracing::debug!(target: "vibes_supervisor", child = %self.spec.name, pid, "spawned");
        self.await_ready(Run {
            child,
            pid,
            output,
            guard,
        })
        .await
    }

    async fn await_ready(&mut self, mut run: Run) -> Result<Option<Run>, Error> {
        let Some(probe) = self.options.readiness.clone() else {
            return Ok(Some(run));
        };
        let deadline = later(Instant::now(), self.options.startup_timeout);
        let (probe_timeout, interval) =
            (self.options.probe_timeout, self.options.readiness_interval);
        let pid = run.pid;
        loop {
            let check = async {
                let ready = probe_once(&probe, pid, probe_timeout).await;
                if !ready {
                    sleep(interval).await;
                }
                ready
            };
            tokio::select! {
                ready = check => {
                    if ready {
                        return Ok(Some(run));
                    }
                }
                status = run.child.wait() => {
                    run.ended();
                    let output_tail = run.output.drain(DRAIN).await;
                    let name = self.spec.name.clone();
                    if let Ok(status) = &status {
                        self.exited(*status);
                    }
                    return Err(match status {
                        Ok(status) => Error::ExitedDuringStartup { name, status, output_tail },
                        Err(source) => Error::Io { name, source },
                    });
                }
                () = sleep_until(deadline) => return Err(self.not_ready(run).await),
                reply = self.stop_requests.recv() => {
                    self.stop(run, reply).await;
                    return Ok(None);
                }
            }
        }
    }

    /// Watches a ready run until it exits, fails its health checks, or the owner stops
    /// it; meanwhile resets the backoff once the run has been healthy long enough.
    async fn watch(&mut self, run: &mut Run) -> RunEnd {
        let pid = run.pid;
        let health = self.options.health.clone();
        let (interval, probe_timeout, stable_after) = (
            self.options.health_interval,
            self.options.probe_timeout,
            self.options.stable_after,
        );
        let mut failures = 0u32;
        let mut healthy_since = Instant::now();
        let mut stable = false;
        let mut next_check = later(Instant::now(), interval);
        let mut check: Option<ProbeFuture> = None;
        loop {
            tokio::select! {
                status = run.child.wait() => {
                    run.ended();
                    let output_tail = run.output.drain(DRAIN).await;
                    let name = self.spec.name.clone();
                    if let Ok(status) = &status {
                        self.exited(*status);
                    }
                    return RunEnd::Failed(match status {
                        Ok(status) => Error::Exited { name, status, output_tail },
                        Err(source) => Error::Io { name, source },
                    });
                }
                reply = self.stop_requests.recv() => return RunEnd::Stop(reply),
                () = sleep_until(later(healthy_since, stable_after)),
                    if !stable && failures == 0 =>
                {
                    stable = true;
                    self.stable(pid);
                }
                () = sleep_until(next_check), if check.is_none() && health.is_some() => {
                    if let Some(probe) = health.clone() {
                        check = Some(Box::pin(async move {
                            probe_once(&probe, pid, probe_timeout).await
                        }));
                    }
                }
                healthy = in_flight(&mut check) => {
                    check = None;
                    next_check = later(Instant::now(), interval);
                    if healthy {
                        if failures > 0 {
                            failures = 0;
                            healthy_since = Instant::now();
                            stable = false;
                            self.set(State::Running { pid });
                        }
                        continue;
                    }
                    failures += 1;
                    if failures < self.options.health_failures {
                        self.set(State::Unhealthy { pid, failures });
                        continue;
                    }
                    return RunEnd::Failed(self.unhealthy(run, failures).await);
                }
            }
        }
    }

    /// The run has been healthy for the stable period: the next failure is attempt 1
    /// again.
    fn stable(&mut self, pid: u32) {
        if self.attempt > 0 {
            tracing::info!(
                target: "vibes_supervisor",
                child = %self.spec.name,
                pid,
                "stable; backoff starts over"
            );
        }
        self.attempt = 0;
    }

    /// Stops a run whose readiness deadline passed.
    async fn not_ready(&self, mut run: Run) -> Error {
        self.set(State::Stopping { pid: run.pid });
        match process::terminate(&mut run.child, self.options.stop_grace).await {
            Ok(outcome) => self.stopped(&outcome),
            Err(source) => return self.io_error(source),
        }
        run.ended();
        Error::ReadinessTimeout {
            name: self.spec.name.clone(),
            after: self.options.startup_timeout,
            output_tail: run.output.drain(DRAIN).await,
        }
    }

    /// Stops a run that failed too many health checks.
    async fn unhealthy(&self, run: &mut Run, failures: u32) -> Error {
        self.set(State::Stopping { pid: run.pid });
        match process::terminate(&mut run.child, self.options.stop_grace).await {
            Ok(outcome) => {
                self.stopped(&outcome);
                run.ended();
            }
            Err(err) => tracing::warn!(
                target: "vibes_supervisor",
                child = %self.spec.name,
                pid = run.pid,
                error = %err,
                "cannot stop the unhealthy child; it is killed when dropped"
            ),
        }
        Error::Unhealthy {
            name: self.spec.name.clone(),
            failures,
            output_tail: run.output.drain(DRAIN).await,
        }
    }

    fn io_error(&self, source: io::Error) -> Error {
        Error::Io {
            name: self.spec.name.clone(),
            source,
        }
    }

    /// Stops a run on the owner's request (or because the handle went away) and ends
    /// supervision.
    async fn stop(&mut self, mut run: Run, reply: Option<Reply>) {
        self.set(State::Stopping { pid: run.pid });
        let outcome = process::terminate(&mut run.child, self.options.stop_grace)
            .await
            .map_err(|source| self.io_error(source));
        if let Ok(outcome) = &outcome {
            self.stopped(outcome);
            run.ended();
        }
        let _ = run.output.drain(DRAIN).await;
        let (child, pid) = (self.spec.name.as_str(), run.pid);
        match &outcome {
            Ok(outcome) => {
                tracing::info!(target: "vibes_supervisor", child, pid, ?outcome, "stopped");
            }
            Err(err) => tracing::warn!(
                target: "vibes_supervisor",
                child,
                pid,
                error = %err,
                "stopping failed; the child is killed when dropped"
            ),
        }
        drop(run);
        self.set(State::Stopped);
        if let Some(reply) = reply {
            drop(reply.send(outcome));
        }
    }

    /// Records how a run ended on its own.
    fn exited(&self, status: ExitStatus) {
        *self
            .last_exit
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(status);
    }

    /// Records how a stopped run ended.
    fn stopped(&self, outcome: &StopOutcome) {
        if let StopOutcome::Exited(status) | StopOutcome::Killed(status) = outcome {
            self.exited(*status);
        }
    }

    fn set(&self, state: State) {
        let child = self.spec.name.as_str();
        match &state {
            State::Starting { attempt } => {
                tracing::debug!(target: "vibes_supervisor", child, attempt, "starting");
            }
            State::Running { pid } => {
                tracing::info!(target: "vibes_supervisor", child, pid, "running");
            }
            State::Unhealthy { pid, failures } => {
                tracing::warn!(target: "vibes_supervisor", child, pid, failures, "unhealthy");
            }
            State::Stopping { pid } => {
                tracing::info!(target: "vibes_supervisor", child, pid, "stopping");
            }
            State::Backoff { .. } | State::Stopped | State::Failed { .. } => {}
        }
        self.subscribers.publish(&state);
        self.state.send_replace(state);
    }
}

/// `from + by`, or a century later if that overflows (a setting of `Duration::MAX`
/// means "never").
fn later(from: Instant, by: Duration) -> Instant {
    from.checked_add(by)
        .unwrap_or_else(|| from + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// One check by `probe`: `true` only if it answers `true` within `limit`. It runs as a
/// task of its own, so a probe that panics counts as a failed check instead of ending
/// supervision; the task is aborted once the answer is no longer awaited.
async fn probe_once(probe: &Probe, pid: u32, limit: Duration) -> bool {
    struct AbortOnDrop(AbortHandle);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }

    let task = tokio::spawn(probe.check(pid));
    let _abort = AbortOnDrop(task.abort_handle());
    match timeout(limit, task).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(err)) => {
            tracing::warn!(target: "vibes_supervisor", pid, error = %err, "probe panicked");
            false
        }
        Err(_elapsed) => false,
    }
}

/// The health check in flight; never resolves when there is none.
async fn in_flight(check: &mut Option<ProbeFuture>) -> bool {
    match check {
        Some(check) => check.await,
        None => std::future::pending().await,
    }
}
