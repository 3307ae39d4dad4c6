//! Small file-system steps with the error context every caller wants.

use std::fs;
use std::path::Path;

use vibes_log::LogError;
use vibes_log::durable::{self, parent_of};

/// An I/O error naming what was done to which path.
pub(crate) fn io_err(action: &str, path: &Path, source: std::io::Error) -> LogError {
    LogError::io(format!("{action} {}", path.display()), source)
}

/// fsyncs a directory, so that creations, renames and deletions in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    durable::sync_dir(dir).map_err(from_durable)
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

/// Replaces `path` with `contents` atomically and durably: the one atomic write of
/// every vibes crate, [`vibes_log::durable::write_atomic`].
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), LogError> {
    durable::write_atomic(path, contents).map_err(from_durable)
}

/// The log's error for a failed step of [`durable`]: the same words as every other
/// I/O error here.
fn from_durable(e: durable::AtomicWriteError) -> LogError {
    io_err(e.action, &e.path, e.source)
}
