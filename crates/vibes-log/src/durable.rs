//! Replacing a small file atomically and durably: the one way every vibes crate writes
//! a file that must never be seen half-written or lost after a crash (the file log's
//! indexes, commits and topic files, the host's state files and checkpoint journals,
//! the managed server's credentials and pid file).
//!
//! [`write_atomic`] writes the contents to a temporary file beside the target under a
//! name no other writer uses (`.<name>.tmp-<pid>-<n>`, created exclusively), fsyncs
//! it, renames it over the target and fsyncs the directory. A reader sees the old
//! contents or the new, never a mix; after a crash, one of them; two writers of the
//! same file never share a temporary file, so the last rename wins whole.
//!
//! A crash between creating the temporary file and the rename leaves it behind; an
//! owner that knows no other process writes the file removes such leftovers with
//! [`remove_stale_temps`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What failed in an atomic write, and on which file.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {source}", path.display())]
pub struct AtomicWriteError {
    /// The step that failed: `creating`, `writing`, `syncing`, `renaming into place`,
    /// `syncing directory`.
    pub action: &'static str,
    /// The file the step was done to (the temporary file, the target or its
    /// directory).
    pub path: PathBuf,
    /// What the operating system said.
    #[source]
    pub source: io::Error,
}

/// Replaces `path` with `contents` atomically and durably (see the [module docs](self)).
/// A new file gets the default mode (0666 less the umask).
///
/// # Errors
///
/// [`AtomicWriteError`] naming the step and the file; the temporary file is removed
/// and the target is untouched, unless only the final directory fsync failed.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), AtomicWriteError> {
    write(path, contents, None)
}

/// [`write_atomic`], the file created with permission bits `mode` (such as 0o600 for
/// a secret: it is never readable by others, not even as the temporary file).
///
/// # Errors
///
/// As [`write_atomic`].
#[cfg(unix)]
pub fn write_atomic_with_mode(
    path: &Path,
    contents: &[u8],
    mode: u32,
) -> Result<(), AtomicWriteError> {
    write(path, contents, Some(mode))
}

/// The directory holding `path`: its parent, or `.` for a bare relative name such as
/// `data` (whose parent is the empty path); `None` for a root.
pub fn parent_of(path: &Path) -> Option<&Path> {
    match path.parent() {
        Some(parent) if parent.as_os_str().is_empty() => Some(Path::new(".")),
        other => other,
    }
}

/// fsyncs a directory, so that creations, renames and deletions in it are durable.
///
/// # Errors
///
/// [`AtomicWriteError`] with action `syncing directory`.
pub fn sync_dir(dir: &Path) -> Result<(), AtomicWriteError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| AtomicWriteError {
            action: "syncing directory",
            path: dir.to_owned(),
            source,
        })
}

/// Removes the temporary files interrupted atomic writes of `path` left behind; returns
/// how many. Only for an owner that knows no other process is writing `path` now (it
/// holds a lock): another writer's temporary file would go, and its write fail.
///
/// # Errors
///
/// The directory cannot be listed, or a leftover cannot be removed.
pub fn remove_stale_temps(path: &Path) -> io::Result<usize> {
    let (Some(dir), Some(name)) = (parent_of(path), path.file_name()) else {
        return Ok(0);
    };
    let prefix = temp_prefix(&name.to_string_lossy());
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

/// Whether `name` is the temporary file of an atomic write (of any file).
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// The start of the temporary file names of atomic writes of a file named `name`.
fn temp_prefix(name: &str) -> String {
    format!(".{name}.tmp-")
}

/// Numbers the temporary files of this process, so that its writers never share one.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

fn write(path: &Path, contents: &[u8], mode: Option<u32>) -> Result<(), AtomicWriteError> {
    let fail = |action, path: &Path| {
        let path = path.to_owned();
        move |source| AtomicWriteError {
            action,
            path,
            source,
        }
    };
    let invalid = || AtomicWriteError {
        action: "creating",
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "not a file in a directory"),
    };
    let dir = parent_of(path).ok_or_else(invalid)?;
    let name = path.file_name().ok_or_else(invalid)?.to_string_lossy();
    let (tmp, mut file) = loop {
        let tmp = dir.join(format!(
            "{}{}-{}",
            temp_prefix(&name),
            std::process::id(),
            NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
        ));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if let Some(mode) = mode {
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        match options.open(&tmp) {
            Ok(file) => break (tmp, file),
            // A leftover of an earlier process that had this pid: take the next name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(fail("creating", &tmp)(e)),
        }
    };
    let result = (|| {
        file.write_all(contents).map_err(fail("writing", &tmp))?;
        file.sync_all().map_err(fail("syncing", &tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(fail("renaming into place", path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_write_creates_then_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"first").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"first");
        write_atomic(&path, b"second, longer").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second, longer");
        write_atomic(&path, b"").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"");
        assert_eq!(names(dir.path()), ["state.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_mode_applies_to_the_new_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_atomic_with_mode(&path, b"pw\n", 0o600).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_failed_write_names_the_step_and_the_file_and_keeps_the_old_contents() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-dir").join("file");
        let err = write_atomic(&missing, b"x").unwrap_err();
        assert_eq!(err.action, "creating");
        assert!(
            err.path.starts_with(dir.path().join("no-such-dir")),
            "{err}"
        );
        assert!(err.to_string().starts_with("creating "), "{err}");
        // The target is a directory: the rename fails, the temporary file goes.
        let target = dir.path().join("taken");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), b"kept").unwrap();
        let err = write_atomic(&target, b"x").unwrap_err();
        assert_eq!(err.action, "renaming into place");
        assert_eq!(err.path, target);
        assert_eq!(fs::read(target.join("inside")).unwrap(), b"kept");
        assert_eq!(names(dir.path()), ["taken"]);
    }

    #[test]
    fn a_path_without_a_file_name_is_an_error_not_a_panic() {
        let err = write_atomic(Path::new("/"), b"x").unwrap_err();
        assert_eq!(err.source.kind(), io::ErrorKind::InvalidInput);
        let err = write_atomic(Path::new("dir/.."), b"x").unwrap_err();
        assert_eq!(err.source.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_bare_relative_name_lives_in_the_current_directory() {
        assert_eq!(parent_of(Path::new("data")), Some(Path::new(".")));
        assert_eq!(parent_of(Path::new("a/b")), Some(Path::new("a")));
        assert_eq!(parent_of(Path::new("/")), None);
    }

    #[test]
    fn concurrent_writers_of_one_file_never_mix_and_the_last_rename_wins_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join("shared"));
        let writers: Vec<_> = (0..8u8)
            .map(|i| {
                let path = Arc::clone(&path);
                std::thread::spawn(move || {
                    let contents = vec![b'a' + i; 64 * 1024];
                    for _ in 0..20 {
                        write_atomic(&path, &contents).unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        let contents = fs::read(&*path).unwrap();
        assert_eq!(contents.len(), 64 * 1024);
        assert!(contents.iter().all(|&b| b == contents[0]));
        assert_eq!(names(dir.path()), ["shared"]);
    }

    #[test]
    fn stale_temporary_files_of_a_file_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.pid");
        fs::write(dir.path().join(".server.pid.tmp-1-0"), b"torn").unwrap();
        fs::write(dir.path().join(".server.pid.tmp-2-7"), b"torn").unwrap();
        fs::write(dir.path().join(".other.tmp-1-0"), b"not ours").unwrap();
        write_atomic(&path, b"1\n").unwrap();
        assert_eq!(remove_stale_temps(&path).unwrap(), 2);
        assert_eq!(names(dir.path()), [".other.tmp-1-0", "server.pid"]);
        assert!(is_temp_name(".other.tmp-1-0"));
        assert!(!is_temp_name("server.pid"));
    }
}
