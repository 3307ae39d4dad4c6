//! The vibes-log conformance suite, in full, through the outbox decorator
//! (`vibes_filelog::Outbox`) in front of a real iggy-server 0.8: what the host runs on
//! Iggy. One server for the whole run; every `open` is a new outbox (a process start)
//! on one outbox directory.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use tempfile::TempDir;
use vibes_filelog::{Outbox, OutboxOptions};
use vibes_iggy::{Connection, IggyLog, IggyLogOptions};
use vibes_log::backend::LogBackend;
use vibes_log::testkit::{Capabilities, Harness};

struct OutboxOnIggy {
    connection: Connection,
    dir: TempDir,
}

#[async_trait]
impl Harness for OutboxOnIggy {
    async fn open(&self) -> Arc<dyn LogBackend> {
        let iggy = IggyLog::connect(self.connection.clone(), IggyLogOptions::default())
            .await
            .expect("connect to iggy-server");
        Arc::new(
            Outbox::open(Arc::new(iggy), self.dir.path(), OutboxOptions::default())
                .await
                .expect("open the outbox"),
        )
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::no_empty_payload_or_zero_id()
    }
}

#[test]
#[ignore = "needs iggy-server (IGGY_SERVER_BIN)"]
fn conformance_suite_through_the_outbox_on_a_real_iggy_server() {
    // The manager's supervisor runs on this runtime for the whole suite.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime.block_on(common::TestServer::start());
    let harness = Arc::new(OutboxOnIggy {
        connection: server.connection(),
        dir: tempfile::tempdir().expect("outbox dir"),
    });
    let (ran, failures) = common::run_conformance(harness.clone());
    runtime.block_on(server.stop());
    assert!(ran > 0, "no behaviour ran");
    assert!(
        failures.is_empty(),
        "failed through the outbox on iggy-server: {failures:?}"
    );
    assert!(
        std::fs::read_dir(harness.dir.path().join("topics"))
            .map(|mut d| d.next().is_none())
            .unwrap_or(true),
        "with the server up throughout, nothing was queued"
    );
}
