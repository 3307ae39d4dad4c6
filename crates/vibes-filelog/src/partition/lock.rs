//! The cross-process writer lock of a partition directory (`writer.lock`): appends,
//! recovery that may cut, checks and retention hold it; readers never do.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use vibes_log::LogError;

use crate::fsutil::io_err;

fn lock_path(dir: &Path) -> PathBuf {
    dir.join("writer.lock")
}

/// Opens (creating it if needed) the lock file of the partition in `dir`.
pub(super) fn open_lock(dir: &Path) -> Result<File, LogError> {
    let path = lock_path(dir);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io_err("opening lock file", &path, e))
}

/// Holds the cross-process writer lock of a partition while alive.
pub(super) struct WriterLock<'a> {
    file: &'a File,
}

impl<'a> WriterLock<'a> {
    /// Blocks until this process holds the lock.
    pub(super) fn acquire(file: &'a File, dir: &Path) -> Result<Self, LogError> {
        file.lock()
            .map_err(|e| io_err("locking", &lock_path(dir), e))?;
        Ok(WriterLock { file })
    }
}

impl Drop for WriterLock<'_> {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}
