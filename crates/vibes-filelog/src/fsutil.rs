//! Small file-system steps with the error context every caller wants.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use vibes_log::LogError;

/// An I/O error naming what was done to which path.
pub(crate) fn io_err(action: &str, path: &Path, source: std::io::Error) -> LogError {
    LogError::io(format!("{action} {}", path.display()), source)
}

/// fsyncs a directory, so that creations, renames and deletions in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("syncing directory", dir, e))
}

/// The directory holding `path`: its parent, or `.` for a bare relative name such as
/// `data` (whose parent is the empty path); `None` for a root.
pub(crate) fn parent_of(path: &Path) -> Option<&Path> {
    match path.parent() {
        Some(parent) if parent.as_os_str().is_empty() => Some(Path::new(".")),
        other => other,
    }
}

/// Creates `dir` and its parents, fsyncing each directory it created and the parent
/// of the topmost one, so the new directories survive a power loss.
pub(crate) fn create_dir_durable(dir: &Path) -> Result<(), LogError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = parent_of(dir) {
        create_dir_durable(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(io_err("creating directory", dir, e)),
    }
    if let Some(parent) = parent_of(dir) {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Replaces `path` with `contents` atomically and durably: write a temporary file in
/// the same directory, fsync it, rename it over `path`, fsync the directory. A reader
/// sees the old contents or the new, never a mix; after a crash, one of them.
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), LogError> {
    let dir = parent_of(path).expect("an atomic write targets a file in a directory");
    let name = path.file_name().expect("a file name").to_string_lossy();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond()
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| io_err("creating", &tmp, e))?;
        file.write_all(contents)
            .map_err(|e| io_err("writing", &tmp, e))?;
        file.sync_all().map_err(|e| io_err("syncing", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| io_err("renaming into place", path, e))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
