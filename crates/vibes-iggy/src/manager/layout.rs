//! The data directory: where each file is, its lock, and the pid file of the running
//! server.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use vibes_log::durable;

use super::ManagerError;

/// The files of a data directory (see the module docs).
#[derive(Debug, Clone)]
pub(super) struct Layout {
    pub(super) data_dir: PathBuf,
    pub(super) server_dir: PathBuf,
    pub(super) runtime_config: PathBuf,
    pub(super) credentials: PathBuf,
    pub(super) pid_file: PathBuf,
    pub(super) lock_file: PathBuf,
    pub(super) server_config: PathBuf,
    pub(super) logs: PathBuf,
}

impl Layout {
    pub(super) fn new(data_dir: PathBuf) -> Self {
        let server_dir = data_dir.join("server");
        Layout {
            runtime_config: server_dir.join("runtime").join("current_config.toml"),
            credentials: data_dir.join("root-credentials"),
            pid_file: data_dir.join("server.pid"),
            lock_file: data_dir.join("manager.lock"),
            server_config: data_dir.join("server.toml"),
            logs: data_dir.join("logs"),
            server_dir,
            data_dir,
        }
    }

    /// Whether the server has been started here before: its state log has entries.
    pub(super) fn server_initialized(&self) -> bool {
        fs::metadata(self.server_dir.join("state").join("log")).is_ok_and(|m| m.len() > 0)
    }
}

/// An error preparing `path` of the data directory.
pub(super) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ManagerError + '_ {
    move |source| ManagerError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Removes `path`; a file that is not there is fine.
pub(super) fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Takes the data directory's lock, held while a server from it may run.
pub(super) fn lock_data_dir(layout: &Layout) -> Result<File, ManagerError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&layout.lock_file)
        .map_err(io_error(&layout.lock_file))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(ManagerError::AlreadyRunning {
            data_dir: layout.data_dir.clone(),
            pid: read_pid_file(&layout.pid_file).map(|(pid, _)| pid),
        }),
        Err(fs::TryLockError::Error(e)) => Err(io_error(&layout.lock_file)(e)),
    }
}

/// Replaces `path` with `contents`, the file created with `mode`: the one atomic
/// write of every vibes crate ([`vibes_log::durable`]), its error as an I/O error that
/// names the step and the file.
pub(super) fn write_atomically(path: &Path, contents: &str, mode: u32) -> io::Result<()> {
    durable::write_atomic_with_mode(path, contents.as_bytes(), mode)
        .map_err(|e| io::Error::new(e.source.kind(), e))
}

/// Removes what writes of the data directory's own files interrupted by a crash left
/// behind. Only under the data directory's lock: no other process writes them then.
pub(super) fn remove_stale_temps(layout: &Layout) -> Result<(), ManagerError> {
    for path in [&layout.credentials, &layout.pid_file] {
        let removed = durable::remove_stale_temps(path).map_err(io_error(&layout.data_dir))?;
        if removed > 0 {
            tracing::info!(file = %path.display(), removed, "removed temporary files of an interrupted write");
        }
    }
    Ok(())
}

/// Records that process `pid` runs `program`.
pub(super) fn write_pid_file(path: &Path, pid: u32, program: &Path) -> io::Result<()> {
    write_atomically(path, &format!("{pid}\n{}\n", program.display()), 0o644)
}

/// `(pid, program)` from a pid file.
pub(super) fn read_pid_file(path: &Path) -> Option<(u32, PathBuf)> {
    let text = fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    let program = PathBuf::from(lines.next()?);
    Some((pid, program))
}

/// Whether process `pid` exists and, where `/proc` tells, runs `program` (so that a
/// reused pid is not taken for the server).
pub(super) fn is_running(pid: u32, program: &Path) -> bool {
    let Some(raw) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(raw) {
        Ok(()) | Err(rustix::io::Errno::PERM) => {}
        Err(_) => return false,
    }
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => {
            let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
            argv0 == program.as_os_str().as_encoded_bytes()
        }
        Err(_) => true,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The pid of a process that has exited and been reaped.
    pub(in crate::manager) fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    pub(in crate::manager) fn layout() -> (tempfile::TempDir, Layout) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_owned());
        (dir, layout)
    }

    #[test]
    fn a_locked_data_dir_is_already_running() {
        let (_dir, layout) = layout();
        let held = lock_data_dir(&layout).unwrap();
        write_pid_file(&layout.pid_file, 4242, Path::new("/x/iggy-server")).unwrap();
        let err = lock_data_dir(&layout).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("(pid 4242)"), "{message}");
        let running = matches!(
            err,
            ManagerError::AlreadyRunning {
                pid: Some(4242),
                ..
            }
        );
        assert!(running, "{err:?}");
        drop(held);
        lock_data_dir(&layout).unwrap();
    }

    #[test]
    fn the_pid_file_names_this_process_only_with_its_program() {
        let (_dir, layout) = layout();
        let me = std::process::id();
        let argv0 = std::env::args_os().next().unwrap();
        write_pid_file(&layout.pid_file, me, Path::new(&argv0)).unwrap();
        let (pid, program) = read_pid_file(&layout.pid_file).unwrap();
        assert_eq!(pid, me);
        assert!(is_running(pid, &program));
        assert!(!is_running(pid, Path::new("/not/this/program")));
        assert!(!is_running(dead_pid(), &program));
        assert!(!is_running(u32::MAX, &program));
    }

    #[test]
    fn leftovers_of_interrupted_writes_of_its_own_files_are_removed() {
        let (_dir, layout) = layout();
        let leftover = layout.data_dir.join(".root-credentials.tmp-4242-0");
        fs::write(&leftover, "half a password").unwrap();
        let other = layout.data_dir.join(".server.toml.tmp-1-0");
        fs::write(&other, "not ours").unwrap();
        remove_stale_temps(&layout).unwrap();
        assert!(!leftover.exists());
        assert!(other.exists());
    }
}
