//! The outbox decorator: the conformance suite through it, and outages of the backend
//! behind it (an in-memory log whose "server" is switched off and on).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tempfile::TempDir;
use vibes_filelog::{Outbox, OutboxOptions};
use vibes_log::backend::{LogBackend, Receipt, Record, partition_for_key};
use vibes_log::testkit::{Harness, Switchable};
use vibes_log::{AppendOptions, InMemoryLog, LogError, Missing, TopicConfig, TopicName};

/// The outbox in front of an in-memory log that is always reachable: every open is a
/// new outbox (a process start) on the same directory and store.
struct OutboxHarness {
    memory: InMemoryLog,
    dir: TempDir,
}

impl OutboxHarness {
    fn new() -> Self {
        OutboxHarness {
            memory: InMemoryLog::new(),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
}

#[async_trait]
impl Harness for OutboxHarness {
    async fn open(&self) -> Arc<dyn LogBackend> {
        let backend = Switchable::new(Arc::new(self.memory.clone()));
        Arc::new(
            Outbox::open(Arc::new(backend), self.dir.path(), OutboxOptions::default())
                .await
                .expect("open the outbox"),
        )
    }
}

vibes_log::conformance_tests!(OutboxHarness::new());

/// A memory log behind a switch behind an outbox in `dir`.
struct Rig {
    memory: InMemoryLog,
    switch: Switchable,
    outbox: Outbox,
}

async fn rig(dir: &TempDir, memory: InMemoryLog, options: OutboxOptions) -> Rig {
    let switch = Switchable::new(Arc::new(memory.clone()));
    let outbox = Outbox::open(Arc::new(switch.clone()), dir.path(), options)
        .await
        .expect("open the outbox");
    Rig {
        memory,
        switch,
        outbox,
    }
}

fn fast() -> OutboxOptions {
    OutboxOptions::default().retry_interval(Duration::from_millis(20))
}

fn topic(name: &str) -> TopicName {
    TopicName::new(&format!("outage/{name}")).unwrap()
}

/// Records with ids `ids`, keyed `key`, payload the id.
fn records(key: Option<&str>, ids: std::ops::RangeInclusive<u128>) -> Vec<Record> {
    ids.map(|id| {
        Record::new(
            key.map(|k| Bytes::from(k.to_owned())),
            id,
            Bytes::from(format!("{{\"n\":{id}}}")),
        )
    })
    .collect()
}

/// The ids the memory log holds in `partition`, in offset order.
async fn stored_ids(memory: &InMemoryLog, topic: &TopicName, partition: u32) -> Vec<u128> {
    memory
        .read(topic, partition, 0, usize::MAX)
        .await
        .expect("read the memory log")
        .iter()
        .map(|r| r.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_while_unreachable_are_queued_and_then_stored_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let rig = rig(&dir, InMemoryLog::new(), fast()).await;
    let topic = topic("events");
    const PARTITIONS: u32 = 2;
    rig.outbox
        .ensure_topic(&topic, TopicConfig::partitions(PARTITIONS))
        .await
        .expect("topic");
    // Before the outage: stored directly.
    let before = rig
        .outbox
        .append_receipt(&topic, 0, records(None, 1..=5), AppendOptions::default())
        .await
        .expect("append");
    assert!(
        std::matches!(before, Receipt::Stored(ack) if ack.base_offset == 0 && ack.last_offset == 4),
        "{before:?}"
    );

    rig.switch.set_reachable(false);
    let mut acked: Vec<(u32, u128)> = (1..=5).map(|id| (0, id)).collect();
    let mut next_id = 6u128;
    for batch in 0..40 {
        let key = format!("session-{}", batch % 3);
        let partition = partition_for_key(Some(key.as_bytes()), PARTITIONS);
        let ids = next_id..=next_id + 9;
        next_id += 10;
        let receipt = rig
            .outbox
            .append_receipt(
                &topic,
                partition,
                records(Some(&key), ids.clone()),
                AppendOptions::default(),
            )
            .await
            .expect("queued while unreachable");
        assert_eq!(
            receipt,
            Receipt::Queued {
                partition,
                count: 10
            }
        );
        acked.extend(ids.map(|id| (partition, id)));
    }
    // A plain append waits for its real offsets rather than claiming any.
    let waiting_append = {
        let outbox = rig.outbox.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            outbox
                .append(
                    &topic,
                    0,
                    records(None, 1001..=1003),
                    AppendOptions::default(),
                )
                .await
        })
    };
    acked.extend((1001..=1003).map(|id| (0, id)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiting_append.is_finished(),
        "append returned while nothing could store its records"
    );
    let depth = rig.outbox.depth();
    let waiting: u64 = depth.iter().map(|d| d.waiting).sum();
    assert_eq!(waiting, 403, "{depth:?}");
    assert!(
        depth.iter().all(|d| d
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("switched off"))),
        "the depth says why records wait: {depth:?}"
    );
    assert_eq!(stored_ids(&rig.memory, &topic, 1).await, Vec::<u128>::new());

    rig.switch.set_reachable(true);
    assert!(
        rig.outbox.drained(Duration::from_secs(10)).await,
        "the outbox drains once the backend is back: {:?}",
        rig.outbox.depth()
    );
    let ack = tokio::time::timeout(Duration::from_secs(10), waiting_append)
        .await
        .expect("the waiting append returns once its records are stored")
        .expect("task")
        .expect("append");
    let at_ack: Vec<u128> = rig
        .memory
        .read(&topic, 0, ack.base_offset, 3)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        at_ack,
        vec![1001, 1002, 1003],
        "the ack has the real offsets"
    );
    assert_eq!(ack.last_offset, ack.base_offset + 2);

    let mut seen = BTreeSet::new();
    for partition in 0..PARTITIONS {
        let ids = stored_ids(&rig.memory, &topic, partition).await;
        let expected: Vec<u128> = acked
            .iter()
            .filter(|(p, _)| *p == partition)
            .map(|(_, id)| *id)
            .collect();
        assert_eq!(
            ids, expected,
            "partition {partition} holds every record once, in append order"
        );
        seen.extend(ids);
    }
    assert_eq!(seen.len(), acked.len());
    assert!(rig.outbox.depth().is_empty());
    rig.outbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_records_wait_new_appends_join_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    // The forwarder retries only when told: the test decides when shipping happens.
    let rig = rig(
        &dir,
        InMemoryLog::new(),
        OutboxOptions::default().retry_interval(Duration::from_secs(3600)),
    )
    .await;
    let topic = topic("order");
    rig.outbox
        .ensure_topic(&topic, TopicConfig::partitions(1))
        .await
        .unwrap();
    rig.switch.set_reachable(false);
    let first = rig
        .outbox
        .append_receipt(&topic, 0, records(None, 1..=3), AppendOptions::default())
        .await
        .unwrap();
    assert!(matches!(first, Receipt::Queued { .. }), "{first:?}");
    // Let the forwarder's immediate attempt fail while it is still off.
    tokio::time::sleep(Duration::from_millis(50)).await;
    rig.switch.set_reachable(true);
    let second = rig
        .outbox
        .append_receipt(&topic, 0, records(None, 4..=6), AppendOptions::default())
        .await
        .unwrap();
    assert_eq!(
        second,
        Receipt::Queued {
            partition: 0,
            count: 3
        },
        "reachable again, but records wait: this append queues behind them"
    );
    // The forwarder, woken by that append, may be shipping already; either way all six
    // arrive, in order.
    rig.outbox.forward_now().await.expect("ship");
    assert!(rig.outbox.depth().is_empty());
    assert_eq!(
        stored_ids(&rig.memory, &topic, 0).await,
        (1..=6).collect::<Vec<_>>()
    );
    let third = rig
        .outbox
        .append_receipt(&topic, 0, records(None, 7..=7), AppendOptions::default())
        .await
        .unwrap();
    assert!(
        std::matches!(third, Receipt::Stored(ack) if ack.base_offset == 6),
        "nothing waits any more: stored directly, {third:?}"
    );
    rig.outbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_stored_but_unanswered_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let rig = rig(&dir, InMemoryLog::new(), fast()).await;
    let topic = topic("dedup");
    rig.outbox
        .ensure_topic(&topic, TopicConfig::partitions(1))
        .await
        .unwrap();
    rig.outbox
        .append(&topic, 0, records(None, 1..=2), AppendOptions::default())
        .await
        .unwrap();
    // The backend stores the next append but its answer is lost: the outbox queues
    // the records and the forwarder must not store them again.
    rig.switch.lose_answers_of_next_appends(1);
    let receipt = rig
        .outbox
        .append_receipt(&topic, 0, records(None, 3..=5), AppendOptions::default())
        .await
        .unwrap();
    assert!(
        std::matches!(receipt, Receipt::Queued { count: 3, .. }),
        "{receipt:?}"
    );
    assert!(rig.outbox.drained(Duration::from_secs(10)).await);
    assert_eq!(
        stored_ids(&rig.memory, &topic, 0).await,
        (1..=5).collect::<Vec<_>>()
    );

    // The same through a plain append: its ack names where the first send stored them.
    rig.switch.lose_answers_of_next_appends(1);
    let ack = rig
        .outbox
        .append(&topic, 0, records(None, 6..=7), AppendOptions::default())
        .await
        .expect("append");
    assert_eq!((ack.base_offset, ack.last_offset), (5, 6));
    assert_eq!(
        stored_ids(&rig.memory, &topic, 0).await,
        (1..=7).collect::<Vec<_>>()
    );
    assert_eq!(
        rig.switch.appends_stored(),
        3,
        "the forwarder sent nothing: both batches were already stored"
    );
    rig.outbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_left_by_a_crashed_run_is_shipped_by_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let memory = InMemoryLog::new();
    let topic = topic("handover");
    {
        let rig = rig(&dir, memory.clone(), fast()).await;
        rig.outbox
            .ensure_topic(&topic, TopicConfig::partitions(2))
            .await
            .unwrap();
        rig.switch.set_reachable(false);
        for (partition, ids) in [(0, 1..=20), (1, 21..=50)] {
            let receipt = rig
                .outbox
                .append_receipt(
                    &topic,
                    partition,
                    records(None, ids),
                    AppendOptions::default(),
                )
                .await
                .unwrap();
            assert!(matches!(receipt, Receipt::Queued { .. }), "{receipt:?}");
        }
        // The run ends without shutdown, as a crash would end it.
    }
    let left = Outbox::waiting_in(dir.path()).await.expect("count");
    let left: Vec<(u32, u64)> = left.iter().map(|d| (d.partition, d.waiting)).collect();
    assert_eq!(left, vec![(0, 20), (1, 30)]);

    let next = rig(&dir, memory.clone(), fast()).await;
    assert!(
        next.outbox.drained(Duration::from_secs(10)).await,
        "the next run ships what the last one left: {:?}",
        next.outbox.depth()
    );
    assert_eq!(
        stored_ids(&memory, &topic, 0).await,
        (1..=20).collect::<Vec<_>>()
    );
    assert_eq!(
        stored_ids(&memory, &topic, 1).await,
        (21..=50).collect::<Vec<_>>()
    );
    assert!(
        Outbox::waiting_in(dir.path()).await.unwrap().is_empty(),
        "the shipping is committed"
    );
    next.outbox.shutdown().await;
    // And the run after that finds nothing to send again.
    let third = rig(&dir, memory.clone(), fast()).await;
    assert!(third.outbox.depth().is_empty());
    assert!(third.outbox.drained(Duration::from_millis(100)).await);
    assert_eq!(stored_ids(&memory, &topic, 1).await.len(), 30);
    third.outbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_fails_appends_still_waiting_and_keeps_their_records() {
    let dir = tempfile::tempdir().unwrap();
    let rig = rig(&dir, InMemoryLog::new(), fast()).await;
    let topic = topic("shutdown");
    rig.outbox
        .ensure_topic(&topic, TopicConfig::partitions(1))
        .await
        .unwrap();
    rig.switch.set_reachable(false);
    let waiting = {
        let outbox = rig.outbox.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            outbox
                .append(&topic, 0, records(None, 1..=4), AppendOptions::default())
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    rig.outbox.shutdown().await;
    let err = waiting
        .await
        .unwrap()
        .expect_err("no offsets to give after shutdown");
    assert!(!err.is_transient(), "{err:?}");
    assert!(
        err.to_string().contains("the next open ships them"),
        "{err}"
    );
    let left = Outbox::waiting_in(dir.path()).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].waiting, 4);
    let after = rig
        .outbox
        .append_receipt(&topic, 0, records(None, 5..=5), AppendOptions::default())
        .await
        .expect_err("closed");
    assert!(matches!(after, LogError::Closed), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_unreachability_queues_and_queued_appends_are_checked_first() {
    let dir = tempfile::tempdir().unwrap();
    let rig = rig(&dir, InMemoryLog::new(), fast()).await;
    let topic = topic("errors");
    let missing = rig
        .outbox
        .append_receipt(&topic, 0, records(None, 1..=1), AppendOptions::default())
        .await
        .expect_err("no such topic");
    let no_topic = matches!(
        missing,
        LogError::NotFound {
            kind: Missing::Topic,
            ..
        }
    );
    assert!(no_topic, "{missing:?}");
    rig.outbox
        .ensure_topic(&topic, TopicConfig::partitions(2))
        .await
        .unwrap();
    rig.switch.set_reachable(false);
    let past = rig
        .outbox
        .append_receipt(&topic, 2, records(None, 1..=1), AppendOptions::default())
        .await
        .expect_err("partition 2 of 2");
    let no_partition = matches!(
        past,
        LogError::NotFound {
            kind: Missing::Partition,
            ..
        }
    );
    assert!(no_partition, "{past:?}");
    let empty = rig
        .outbox
        .append_receipt(&topic, 0, Vec::new(), AppendOptions::default())
        .await
        .expect_err("empty batch");
    assert!(matches!(empty, LogError::EmptyBatch { .. }), "{empty:?}");
    let unknown = topic_unknown_while_down(&rig).await;
    assert!(unknown.is_transient(), "{unknown:?}");
    assert!(rig.outbox.depth().is_empty(), "nothing was queued");
    rig.outbox.shutdown().await;
}

/// A topic neither the outbox nor its queue has seen cannot be queued for: the
/// backend's error stands.
async fn topic_unknown_while_down(rig: &Rig) -> LogError {
    rig.outbox
        .append_receipt(
            &topic("never-seen"),
            0,
            records(None, 1..=1),
            AppendOptions::default(),
        )
        .await
        .expect_err("unknown topic while down")
}

/// A topic created by someone else (another process, straight on the backend) and
/// appended to through the outbox while the backend answered: its partition count was
/// learned then, so an outage later queues instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_created_elsewhere_is_queued_for_after_one_stored_append() {
    let dir = tempfile::tempdir().unwrap();
    let memory = InMemoryLog::new();
    let topic = topic("elsewhere");
    memory
        .ensure_topic(&topic, TopicConfig::partitions(3))
        .await
        .expect("topic");
    let rig = rig(&dir, memory, fast()).await;
    let stored = rig
        .outbox
        .append_receipt(&topic, 2, records(None, 1..=2), AppendOptions::default())
        .await
        .expect("stored while reachable");
    assert!(std::matches!(stored, Receipt::Stored(_)), "{stored:?}");
    rig.switch.set_reachable(false);
    let queued = rig
        .outbox
        .append_receipt(&topic, 1, records(None, 3..=4), AppendOptions::default())
        .await
        .expect("queued while down");
    assert_eq!(
        queued,
        Receipt::Queued {
            partition: 1,
            count: 2
        }
    );
    rig.switch.set_reachable(true);
    assert!(rig.outbox.drained(Duration::from_secs(10)).await);
    assert_eq!(stored_ids(&rig.memory, &topic, 1).await, [3, 4]);
    rig.outbox.shutdown().await;
}
