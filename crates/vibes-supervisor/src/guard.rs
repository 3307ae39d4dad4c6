//! The group guard ([`SupervisorOptions::group_guard`]): a small process per run that
//! stops the child's whole process group when the supervisor's process dies without
//! having stopped the child.
//!
//! The parent-death signal reaches the child only; processes the child started (a
//! shell running a tool, its own helpers) would live on. The guard is `/bin/sh`
//! reading a pipe whose other end only the supervisor holds (close-on-exec, so no
//! other child inherits it). When the run ends normally the supervisor writes a line
//! and the guard exits without doing anything. When the supervisor's process dies, even
//! by SIGKILL, the kernel closes the pipe: the guard reads end-of-file and sends
//! SIGTERM to the group, then SIGKILL after the stop grace. It leads its own process
//! group, so neither a Ctrl-C on the terminal nor the stop of the child's group reaches
//! it. Processes that left the child's group (`setsid`, `setpgid`) are not covered.
//!
//! The group id cannot name another group while a member of the child's group lives
//! (Linux does not reuse a process id in use as a group id); once none lives, the
//! guard's signals find no group.

use std::io::{self, PipeWriter, Write};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// What the guard runs: `$0` is the group, `$1` the grace in seconds.
const SCRIPT: &str = "read -r _ && exit 0; \
     kill -s TERM -- -\"$0\" 2>/dev/null; \
     sleep \"$1\"; \
     kill -s KILL -- -\"$0\" 2>/dev/null; \
     exit 0";

/// A running guard of one run.
#[derive(Debug)]
pub(crate) struct Guard {
    /// The supervisor's end of the pipe; closing it without a line sets the guard off.
    release: Option<PipeWriter>,
    /// Kept so tokio reaps the guard once it exits.
    _process: Child,
}

impl Guard {
    /// Starts a guard over process group `group`, waiting `grace` between SIGTERM and
    /// SIGKILL.
    pub(crate) fn start(group: u32, grace: Duration) -> io::Result<Guard> {
        let (reader, writer) = io::pipe()?;
        let process = Command::new("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg(group.to_string())
            .arg(format!("{:.3}", grace.as_secs_f64()))
            .stdin(Stdio::from(reader))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        Ok(Guard {
            release: Some(writer),
            _process: process,
        })
    }

    /// The run ended normally: the guard exits without signalling anything.
    pub(crate) fn release(mut self) {
        if let Some(mut writer) = self.release.take() {
            // A guard that is gone already cannot act either.
            let _ = writer.write_all(b"done\n");
        }
    }
}
