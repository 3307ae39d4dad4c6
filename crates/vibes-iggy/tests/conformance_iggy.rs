//! The vibes-log conformance suite, in full, against a real iggy-server 0.8: one
//! server for the whole run (run by `IggyManager` on free ports in a temp dir, stopped
//! with SIGTERM), every behaviour on its own topic.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use vibes_iggy::{Connection, IggyLog, IggyLogOptions};
use vibes_log::backend::LogBackend;
use vibes_log::testkit::{Capabilities, Harness};

struct IggyHarness {
    connection: Connection,
}

#[async_trait]
impl Harness for IggyHarness {
    async fn open(&self) -> Arc<dyn LogBackend> {
        Arc::new(
            IggyLog::connect(self.connection.clone(), IggyLogOptions::default())
                .await
                .expect("connect to iggy-server"),
        )
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::no_empty_payload_or_zero_id()
    }
}

#[test]
#[ignore = "needs iggy-server (IGGY_SERVER_BIN)"]
fn conformance_suite_on_a_real_iggy_server() {
    // The manager's supervisor runs on this runtime for the whole suite.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime.block_on(common::TestServer::start());
    let harness = Arc::new(IggyHarness {
        connection: server.connection(),
    });
    let (ran, failures) = common::run_conformance(harness.clone());
    runtime.block_on(server.stop());
    assert!(ran > 0, "no behaviour ran");
    assert!(failures.is_empty(), "failed on iggy-server: {failures:?}");
}
