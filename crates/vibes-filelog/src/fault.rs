//! Fault injection for tests of failure handling (feature `fault-injection`; without
//! it every function here is the plain operation).

use std::fs::File;
use std::io;

#[cfg(feature = "fault-injection")]
static FAIL_NEXT_SYNC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes the next data fsync of any file log in this process fail with an I/O error.
#[cfg(feature = "fault-injection")]
pub fn fail_next_sync() {
    FAIL_NEXT_SYNC.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// `file.sync_data()`, or an injected failure.
pub(crate) fn sync_data(file: &File) -> io::Result<()> {
    #[cfg(feature = "fault-injection")]
    if FAIL_NEXT_SYNC.swap(false, std::sync::atomic::Ordering::SeqCst) {
        return Err(io::Error::other("injected fsync failure"));
    }
    file.sync_data()
}
