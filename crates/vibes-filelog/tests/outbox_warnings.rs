//! What a user sees of a backend outage behind the outbox: two warnings, whatever
//! the number of appends and retries. In a test binary of its own, so that its
//! global log subscriber sees every event (a per-thread one can miss events while
//! other tests run).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use vibes_filelog::{Outbox, OutboxOptions};
use vibes_log::backend::{LogBackend, Record};
use vibes_log::testkit::Switchable;
use vibes_log::{AppendOptions, InMemoryLog, TopicConfig, TopicName};

fn records(ids: std::ops::RangeInclusive<u128>) -> Vec<Record> {
    ids.map(|id| Record::new(None, id, Bytes::from(format!("{{\"n\":{id}}}"))))
        .collect()
}

/// Log lines written during a test, for checking what a user would see.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    /// The captured text once it has at least `n` lines (the forwarder logs the end of
    /// an outage just after the last record ships, so a moment after `drained`), or
    /// after 10 s.
    async fn lines(&self, n: usize) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            if text.lines().count() >= n || std::time::Instant::now() >= deadline {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// An outage is two warnings for a user, whatever the number of appends and retries in
/// it: one when it starts, one when all that was queued is shipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_one_warning_when_it_starts_and_one_when_it_ends() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let dir = tempfile::tempdir().unwrap();
    let memory = InMemoryLog::new();
    let switch = Switchable::new(Arc::new(memory.clone()));
    let outbox = Outbox::open(
        Arc::new(switch.clone()),
        dir.path(),
        OutboxOptions::default().retry_interval(Duration::from_millis(20)),
    )
    .await
    .expect("open the outbox");
    struct Rig {
        switch: Switchable,
        outbox: Outbox,
    }
    let rig = Rig { switch, outbox };
    let topic = TopicName::new("outage/quiet").unwrap();
    rig.outbox
        .ensure_topic(&topic, TopicConfig::partitions(3))
        .await
        .expect("topic");
    rig.switch.set_reachable(false);
    for batch in 0..30u128 {
        let partition = (batch % 3) as u32;
        rig.outbox
            .append_receipt(
                &topic,
                partition,
                records(batch * 2 + 1..=batch * 2 + 2),
                AppendOptions::default(),
            )
            .await
            .expect("queued");
    }
    // Retries while still down add nothing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    rig.switch.set_reachable(true);
    assert!(rig.outbox.drained(Duration::from_secs(10)).await);
    let text = captured.lines(2).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("WARN") && lines[0].contains("backend is unreachable"),
        "{text}"
    );
    assert!(
        lines[1].contains("answers again: 60 records queued in the outbox shipped"),
        "{text}"
    );
    // A second outage is reported again.
    rig.switch.set_reachable(false);
    rig.outbox
        .append_receipt(&topic, 0, records(100..=100), AppendOptions::default())
        .await
        .expect("queued");
    rig.switch.set_reachable(true);
    assert!(rig.outbox.drained(Duration::from_secs(10)).await);
    let text = captured.lines(4).await;
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.contains("answers again: 1 record queued"), "{text}");
    rig.outbox.shutdown().await;
}
