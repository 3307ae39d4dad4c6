//! The conformance suite on the in-memory log.

use std::sync::Arc;

use async_trait::async_trait;
use vibes_log::InMemoryLog;
use vibes_log::backend::LogBackend;
use vibes_log::testkit::Harness;

/// Every `open` returns a handle to the same store: a "restart" keeps what the store
/// holds, as a process restart keeps what a durable backend holds.
struct MemoryHarness(InMemoryLog);

#[async_trait]
impl Harness for MemoryHarness {
    async fn open(&self) -> Arc<dyn LogBackend> {
        Arc::new(self.0.clone())
    }
}

vibes_log::conformance_tests!(MemoryHarness(InMemoryLog::new()));
