//! What to run, and where its output goes.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Smallest accepted log file cap; below it nearly every line would force a rotation.
pub const MIN_LOG_BYTES: u64 = 1024;

/// The program a [`Supervisor`](crate::Supervisor) runs: its arguments, environment and
/// working directory, and what happens to its output.
///
/// Every run gets stdin from `/dev/null`. Its stdout and stderr are read line by line:
/// each line becomes one `tracing` event, is kept in a tail for error reports, and, when
/// [`log_dir`](Self::log_dir) is set, is appended to `<dir>/<name>.stdout.log` or
/// `<dir>/<name>.stderr.log`. A log file that would grow past
/// [`log_max_bytes`](Self::log_max_bytes) is rotated first (`.log` to `.log.1`, `.log.1`
/// to `.log.2`, ..., keeping [`log_keep`](Self::log_keep) old files), so a stream never
/// takes more than `(log_keep + 1) * log_max_bytes` bytes of disk.
///
/// ```
/// use vibes_supervisor::ChildSpec;
///
/// let spec = ChildSpec::new("iggy", "/usr/local/bin/iggy-server")
///     .arg("--with-default-root-credentials")
///     .env("IGGY_SYSTEM_PATH", "/var/lib/vibes/iggy")
///     .env_remove("RUST_LOG")
///     .current_dir("/var/lib/vibes")
///     .log_dir("/var/log/vibes")
///     .log_max_bytes(10 << 20);
/// assert_eq!(spec.name(), "iggy");
/// ```
#[derive(Debug, Clone)]
pub struct ChildSpec {
    pub(crate) name: String,
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<OsString>,
    pub(crate) env_clear: bool,
    pub(crate) env: Vec<(OsString, Option<OsString>)>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) log_dir: Option<PathBuf>,
    pub(crate) log_max_bytes: u64,
    pub(crate) log_keep: usize,
    pub(crate) tail_lines: usize,
    pub(crate) tail_bytes: usize,
    pub(crate) stdout_lines: Option<usize>,
    pub(crate) stderr_inherit: bool,
}

impl ChildSpec {
    /// Runs `program` (a path, or a name looked up in `PATH`) under the name `name`.
    ///
    /// The name appears in log file names, `tracing` fields and errors: 1 to 64 of
    /// `[A-Za-z0-9._-]`, not starting with `.` (checked by
    /// [`Supervisor::start`](crate::Supervisor::start)).
    pub fn new(name: impl Into<String>, program: impl Into<PathBuf>) -> Self {
        ChildSpec {
            name: name.into(),
            program: program.into(),
            args: Vec::new(),
            env_clear: false,
            env: Vec::new(),
            cwd: None,
            log_dir: None,
            log_max_bytes: 10 << 20,
            log_keep: 1,
            tail_lines: 40,
            tail_bytes: 8 << 10,
            stdout_lines: None,
            stderr_inherit: false,
        }
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the child. Changes apply in the order given.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), Some(value.into())));
        self
    }

    /// Removes an environment variable, inherited or set earlier, from the child's
    /// environment.
    pub fn env_remove(mut self, key: impl Into<OsString>) -> Self {
        self.env.push((key.into(), None));
        self
    }

    /// Starts the child from an empty environment: nothing is inherited, and changes made
    /// before this call are forgotten; later [`env`](Self::env) calls still apply.
    pub fn env_clear(mut self) -> Self {
        self.env_clear = true;
        self.env.clear();
        self
    }

    /// Runs the child in `dir` instead of the supervisor's working directory.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Writes the child's output to `<dir>/<name>.stdout.log` and `<dir>/<name>.stderr.log`
    /// (appending to what earlier runs wrote). The directory is created if missing.
    /// Without this, output goes only to `tracing` and the tail.
    pub fn log_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.log_dir = Some(dir.into());
        self
    }

    /// Cap of one log file in bytes (default 10 MiB, at least [`MIN_LOG_BYTES`]). A line
    /// longer than the cap is cut to it.
    pub fn log_max_bytes(mut self, bytes: u64) -> Self {
        self.log_max_bytes = bytes;
        self
    }

    /// How many rotated log files to keep per stream (default 1: `.log.1`; 0 keeps
    /// none, so a full log starts over empty).
    pub fn log_keep(mut self, files: usize) -> Self {
        self.log_keep = files;
        self
    }

    /// How much output errors carry: the last `lines` lines, at most `bytes` bytes
    /// (default 40 lines, 8 KiB).
    pub fn output_tail(mut self, lines: usize, bytes: usize) -> Self {
        self.tail_lines = lines;
        self.tail_bytes = bytes;
        self
    }

    /// Hands the child's stdout to the owner, line by line, through
    /// [`Supervisor::stdout_lines`](crate::Supervisor::stdout_lines), instead of to
    /// `tracing`, the log file and the tail. Lines come whole, however long (a line is
    /// never split), without their `\n` (and a `\r` before it); a last line without a
    /// newline still comes. Lines of every run go to the same receiver, in order.
    ///
    /// At most `capacity` lines (at least 1) wait for the owner. When that many wait,
    /// the reader waits too: the pipe fills, and the child blocks in its next write
    /// until the owner reads again. No line is dropped while the receiver lives; once the
    /// owner drops it, the lines go to `tracing` as without this setting.
    pub fn stdout_lines(mut self, capacity: usize) -> Self {
        self.stdout_lines = Some(capacity.max(1));
        self
    }

    /// Lets the child write to the supervisor's own stderr directly (live, with nothing
    /// in between), instead of to `tracing`, the log file and the tail.
    pub fn stderr_inherit(mut self) -> Self {
        self.stderr_inherit = true;
        self
    }

    /// The child's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The program as given.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Where the current stdout log is, if [`log_dir`](Self::log_dir) is set.
    pub fn stdout_log(&self) -> Option<PathBuf> {
        self.log_path("stdout")
    }

    /// Where the current stderr log is, if [`log_dir`](Self::log_dir) is set.
    pub fn stderr_log(&self) -> Option<PathBuf> {
        self.log_path("stderr")
    }

    fn log_path(&self, stream: &str) -> Option<PathBuf> {
        let dir = self.log_dir.as_ref()?;
        Some(dir.join(format!("{}.{stream}.log", self.name)))
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && !self.name.starts_with('.')
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !name_ok {
            return Err(Error::config(format!(
                "child name {:?} must be 1 to 64 of [A-Za-z0-9._-], not starting with '.'",
                self.name
            )));
        }
        if self.program.as_os_str().is_empty() {
            return Err(Error::config(format!(
                "child {}: the program is empty",
                self.name
            )));
        }
        if self.log_max_bytes < MIN_LOG_BYTES {
            return Err(Error::config(format!(
                "child {}: log_max_bytes {} is below the minimum of {MIN_LOG_BYTES}",
                self.name, self.log_max_bytes
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_escape_the_log_dir_are_rejected() {
        for bad in ["", ".hidden", "a/b", "../x", "sp ace", &"x".repeat(65)] {
            let result = ChildSpec::new(bad, "true").validate();
            let rejected = matches!(result, Err(Error::InvalidConfig { .. }));
            assert!(rejected, "{bad:?} was accepted");
        }
        for good in ["iggy", "iggy-server.0", "A_b"] {
            assert!(ChildSpec::new(good, "true").validate().is_ok(), "{good:?}");
        }
    }

    #[test]
    fn env_clear_forgets_earlier_changes_but_keeps_later_ones() {
        let spec = ChildSpec::new("x", "true")
            .env("A", "1")
            .env_clear()
            .env("B", "2");
        assert!(spec.env_clear);
        assert_eq!(spec.env, vec![("B".into(), Some("2".into()))]);
    }

    #[test]
    fn log_paths_name_the_child_and_stream() {
        let spec = ChildSpec::new("iggy", "true").log_dir("/logs");
        assert_eq!(
            spec.stdout_log(),
            Some(PathBuf::from("/logs/iggy.stdout.log"))
        );
        assert_eq!(
            spec.stderr_log(),
            Some(PathBuf::from("/logs/iggy.stderr.log"))
        );
        assert_eq!(ChildSpec::new("iggy", "true").stdout_log(), None);
    }
}
