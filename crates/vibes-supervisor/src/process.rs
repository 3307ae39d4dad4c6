//! Starting and signalling the child: the spawner thread, the parent-death signal, the
//! process group, and SIGTERM-then-SIGKILL.
//!
//! **Why a spawner thread.** On Linux the child asks the kernel for SIGKILL when its
//! parent dies (`PR_SET_PDEATHSIG`). The kernel's "parent" there is the *thread* that
//! forked, not the process: if the fork ran on a thread that later exits (a tokio
//! blocking-pool thread after its idle timeout, a `std::thread` that called
//! `Runtime::block_on`, a worker of a runtime that is shut down), the child is killed
//! although the supervisor lives on. So every child of a supervisor is forked on one
//! thread that the supervisor owns and that lives exactly as long as the supervisor's
//! task: it ends only after the task has stopped its child, or when the task is dropped
//! (runtime shutdown), which is also when the child should die.
//!
//! **Why a process group.** Each child leads a new process group (`setpgid(0, 0)`), so a
//! Ctrl-C on the supervisor's terminal (SIGINT to the foreground group) does not reach
//! it behind its supervisor's back: the owner decides when and how it stops. Stop
//! signals the whole group, so helpers the child started get SIGTERM too. SIGKILL goes
//! to the group only while the child itself is still unreaped, so the group id cannot
//! have been reused; group members that outlive a child that exited gracefully are not
//! chased, and the parent-death signal covers the child only, not its own children.

use std::io;
use std::process::Stdio;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use rustix::io::Errno;
use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use tokio::process::{Child, Command};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::spec::ChildSpec;
use crate::state::StopOutcome;

/// A spawn request for the spawner thread.
struct Request {
    command: Command,
    reply: oneshot::Sender<io::Result<Child>>,
}

/// The supervisor's own thread that forks every child of one supervisor.
#[derive(Debug)]
pub(crate) struct Spawner {
    requests: mpsc::Sender<Request>,
}

impl Spawner {
    /// Starts the thread. Children are registered with the runtime behind `handle`.
    pub(crate) fn new(name: &str, handle: Handle) -> io::Result<Spawner> {
        let (requests, incoming) = mpsc::channel::<Request>();
        thread::Builder::new()
            .name(format!("spawn-{name}"))
            .spawn(move || {
                // Ends when the supervisor's task drops its `Spawner`.
                while let Ok(Request { mut command, reply }) = incoming.recv() {
                    let _runtime = handle.enter();
                    let spawned = command.spawn();
                    // The command holds the write ends of the output pipes; the readers
                    // see end-of-file only once the child's copies are the last ones.
                    drop(command);
                    // If nobody waits any more, dropping the child kills it
                    // (`kill_on_drop`).
                    drop(reply.send(spawned));
                }
            })?;
        Ok(Spawner { requests })
    }

    /// Forks and execs `command` on the spawner thread.
    pub(crate) async fn spawn(&self, command: Command) -> io::Result<Child> {
        let (reply, answer) = oneshot::channel();
        let gone = || io::Error::other("the supervisor's spawner thread has ended");
        self.requests
            .send(Request { command, reply })
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// The command for one run of `spec`, with stdout and stderr going to the given pipes.
pub(crate) fn command(spec: &ChildSpec, stdout: Stdio, stderr: Stdio) -> Command {
    let mut command = Command::new(&spec.program);
    command.args(&spec.args);
    if spec.env_clear {
        command.env_clear();
    }
    for (key, value) in &spec.env {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    if let Some(dir) = &spec.cwd {
        command.current_dir(dir);
    }
    command
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .process_group(0);
    die_with_supervisor(&mut command);
    command
}

/// Makes the child get SIGKILL when the thread that forked it (the spawner thread)
/// ends, including when the supervisor's process is killed.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn die_with_supervisor(command: &mut Command) {
    use rustix::process::{getpid, getppid, set_parent_process_death_signal};

    let supervisor = getpid();
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe calls are allowed. It calls prctl(PR_SET_PDEATHSIG) and
    // getppid, and, only if the supervisor is already gone, getpid and kill: plain
    // system calls that rustix issues directly, with no allocation, no locks and no
    // shared state. It captures only a `Copy` pid, and an error it returns is a raw
    // errno, which needs no allocation either.
    unsafe {
        command.pre_exec(move || {
            set_parent_process_death_signal(Some(Signal::KILL))?;
            // The supervisor may have died between fork and prctl; then the signal
            // will never come, and the child has been re-parented already.
            if getppid() != Some(supervisor) {
                kill_process(getpid(), Signal::KILL)?;
            }
            Ok(())
        });
    }
}

/// Other Unix systems have no parent-death signal; there a child can outlive a
/// supervisor that is killed with SIGKILL.
#[cfg(not(target_os = "linux"))]
fn die_with_supervisor(_command: &mut Command) {}

/// Sends `signal` to the process group led by `pid`, or to `pid` alone if it has left
/// that group. A process that no longer exists is not an error.
pub(crate) fn signal_group(pid: u32, signal: Signal) -> io::Result<()> {
    // Never 0 or 1: those would address our own group or every process.
    let Some(pid) = i32::try_from(pid)
        .ok()
        .filter(|&raw| raw > 1)
        .and_then(Pid::from_raw)
    else {
        return Ok(());
    };
    match kill_process_group(pid, signal) {
        Ok(()) => Ok(()),
        Err(Errno::SRCH) => match kill_process(pid, signal) {
            Ok(()) | Err(Errno::SRCH) => Ok(()),
            Err(err) => Err(err.into()),
        },
        Err(err) => Err(err.into()),
    }
}

/// SIGTERM to the child's group, up to `grace` for it to exit, then SIGKILL; waits
/// until the child is reaped.
pub(crate) async fn terminate(child: &mut Child, grace: Duration) -> io::Result<StopOutcome> {
    // `id()` is None once the child has been reaped: nothing left to signal.
    let Some(pid) = child.id() else {
        return Ok(StopOutcome::Exited(child.wait().await?));
    };
    signal_group(pid, Signal::TERM)?;
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => Ok(StopOutcome::Exited(status?)),
        Err(_elapsed) => {
            signal_group(pid, Signal::KILL)?;
            Ok(StopOutcome::Killed(child.wait().await?))
        }
    }
}
