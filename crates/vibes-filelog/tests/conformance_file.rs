//! The conformance suite on the file log: every `open` is a fresh `FileLog` over the
//! same directory, as a restarted process would open it.

use std::sync::Arc;

use async_trait::async_trait;
use tempfile::TempDir;
use vibes_filelog::{FileLog, FileLogOptions};
use vibes_log::backend::LogBackend;
use vibes_log::testkit::Harness;

struct FileHarness(TempDir);

#[async_trait]
impl Harness for FileHarness {
    async fn open(&self) -> Arc<dyn LogBackend> {
        Arc::new(FileLog::open(self.0.path(), FileLogOptions::default()).expect("open file log"))
    }
}

vibes_log::conformance_tests!(FileHarness(TempDir::new().expect("temp dir")));
