//! Fault tests against a real iggy-server: the server is killed with SIGKILL mid-stream
//! and started again on the same data and ports. Producers append through the outbox
//! (`vibes_filelog::Outbox`) in front of the Iggy log, as the host does.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::TestServer;
use vibes_filelog::{Outbox, OutboxOptions};
use vibes_iggy::{IggyLog, IggyLogOptions};
use vibes_log::backend::{LogBackend, Receipt, Record, partition_for_key};
use vibes_log::{AppendOptions, ConsumerOptions, GroupName, TopicConfig, TopicName};

const PARTITIONS: u32 = 2;

/// A log whose appends give up quickly, so the outbox takes over during the outage.
async fn connect(server: &TestServer) -> IggyLog {
    let mut connection = server.connection();
    connection.connect_timeout = Duration::from_secs(1);
    IggyLog::connect(
        connection,
        IggyLogOptions::default().request_timeout(Duration::from_millis(200)),
    )
    .await
    .expect("connect")
}

/// Every record of `topic`, per partition, in offset order: (offset, id).
async fn everything(log: &IggyLog, topic: &TopicName) -> BTreeMap<u32, Vec<(u64, u128)>> {
    let mut consumer = log
        .consumer(
            topic,
            &GroupName::new("audit").unwrap(),
            ConsumerOptions::default(),
        )
        .await
        .expect("consumer");
    let info = log.topic_info(topic).await.expect("info");
    let total: u64 = info.partitions.iter().map(|m| m.len()).sum();
    let mut got: BTreeMap<u32, Vec<(u64, u128)>> = BTreeMap::new();
    let mut n = 0;
    while n < total {
        let records = consumer
            .poll(1000, Duration::from_secs(5))
            .await
            .expect("poll");
        assert!(!records.is_empty(), "the log ended early: {n} of {total}");
        n += records.len() as u64;
        for r in records {
            got.entry(r.address.partition)
                .or_default()
                .push((r.address.offset, r.id));
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs iggy-server (IGGY_SERVER_BIN)"]
async fn kill_9_mid_stream_loses_nothing_and_stores_each_event_once() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("vibes_iggy=debug"))
        .with_test_writer()
        .try_init();
    let server = TestServer::start().await;
    let iggy = connect(&server).await;
    let topic = TopicName::new("outage/events").unwrap();
    iggy.ensure_topic(&topic, TopicConfig::partitions(PARTITIONS))
        .await
        .expect("topic");
    let outbox_dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(
        Arc::new(iggy.clone()),
        outbox_dir.path(),
        OutboxOptions::default(),
    )
    .await
    .expect("outbox");

    // A producer that keeps appending batches of 10 keyed records, ids counting up.
    const BATCHES: u128 = 400;
    let producer = {
        let outbox = outbox.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            let mut acked: Vec<(u32, u128)> = Vec::new();
            let mut queued = 0;
            for batch in 0..BATCHES {
                let key = format!("session-{}", batch % 5);
                let partition = partition_for_key(Some(key.as_bytes()), PARTITIONS);
                let records: Vec<Record> = (0..10)
                    .map(|i| {
                        let id = batch * 10 + i + 1;
                        Record::new(
                            Some(Bytes::from(key.clone())),
                            id,
                            Bytes::from(format!(
                                "{{\"type\":\"test\",\"source\":\"p\",\"n\":{id}}}"
                            )),
                        )
                    })
                    .collect();
                let ids: Vec<u128> = records.iter().map(|r| r.id).collect();
                let receipt = outbox
                    .append_receipt(&topic, partition, records, AppendOptions::default())
                    .await
                    .unwrap_or_else(|e| {
                        panic!("every append is acknowledged, by Iggy or the outbox: {e:?}")
                    });
                if matches!(receipt, Receipt::Queued { .. }) {
                    queued += 1;
                }
                acked.extend(ids.into_iter().map(|id| (partition, id)));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (acked, queued)
        })
    };

    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill_9_and_wait_for_restart().await;
    let (acked, queued) = producer.await.expect("producer");
    assert!(queued > 0, "some appends went through the outbox");
    assert!(
        outbox.drained(Duration::from_secs(60)).await,
        "the outbox drains once the server is back: {:?}",
        outbox.depth()
    );

    let stored = everything(&iggy, &topic).await;
    let mut seen = BTreeSet::new();
    for (partition, records) in &stored {
        let ids: Vec<u128> = records.iter().map(|(_, id)| *id).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(ids, sorted, "partition {partition} keeps append order");
        for id in ids {
            assert!(seen.insert(id), "event {id} is stored once");
        }
    }
    let expected: BTreeSet<u128> = acked.iter().map(|(_, id)| *id).collect();
    let missing: Vec<u128> = expected.difference(&seen).copied().collect();
    let extra: Vec<u128> = seen.difference(&expected).copied().collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "every acknowledged event is in Iggy: {} missing (first {:?}), {} never acknowledged",
        missing.len(),
        &missing[..missing.len().min(10)],
        extra.len()
    );
    for (partition, id) in &acked {
        assert!(
            stored[partition].iter().any(|(_, i)| i == id),
            "event {id} is in partition {partition}"
        );
    }
    eprintln!(
        "{} events, {queued} batches queued in the outbox during the outage",
        acked.len()
    );
    outbox.shutdown().await;
    iggy.shutdown().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs iggy-server (IGGY_SERVER_BIN)"]
async fn a_consumer_group_resumes_from_its_commit_after_a_server_restart() {
    let server = TestServer::start().await;
    let iggy = connect(&server).await;
    let topic = TopicName::new("restart/events").unwrap();
    iggy.ensure_topic(&topic, TopicConfig::partitions(1))
        .await
        .expect("topic");
    let records: Vec<Record> = (1..=100u128)
        .map(|id| Record::new(None, id, Bytes::from(format!("{id}"))))
        .collect();
    iggy.append(&topic, 0, records, AppendOptions::default())
        .await
        .expect("append");

    let group = GroupName::new("workers").unwrap();
    let mut consumer = iggy
        .consumer(&topic, &group, ConsumerOptions::default())
        .await
        .expect("consumer");
    let first = consumer
        .poll(30, Duration::from_secs(5))
        .await
        .expect("poll");
    assert_eq!(first.len(), 30);
    consumer
        .commit_offset(0, 20)
        .await
        .expect("commit the first 20 only");

    // Mid-batch: 30 polled, 20 committed. The server dies and comes back.
    server.kill_9_and_wait_for_restart().await;

    let mut after: Vec<u128> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while after.last() != Some(&100) {
        assert!(tokio::time::Instant::now() < deadline, "got only {after:?}");
        match consumer.poll(100, Duration::from_secs(1)).await {
            Ok(records) => after.extend(records.iter().map(|r| r.id)),
            Err(e) => assert!(
                e.is_transient(),
                "only transient errors while it restarts: {e}"
            ),
        }
    }
    let first_after = *after.first().expect("records after the restart");
    assert!(
        first_after <= 31,
        "nothing is skipped: reading resumed at id {first_after}"
    );
    let seen: BTreeSet<u128> = first
        .iter()
        .map(|r| r.id)
        .chain(after.iter().copied())
        .collect();
    assert_eq!(
        seen,
        (1..=100).collect(),
        "every record delivered at least once"
    );
    drop(consumer);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs iggy-server (IGGY_SERVER_BIN)"]
async fn records_queued_before_a_restart_of_the_producer_are_shipped_by_the_next_run() {
    let mut server = TestServer::start().await;
    let iggy = connect(&server).await;
    let topic = TopicName::new("handover/events").unwrap();
    iggy.ensure_topic(&topic, TopicConfig::partitions(1))
        .await
        .expect("topic");
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(Arc::new(iggy.clone()), dir.path(), OutboxOptions::default())
        .await
        .expect("outbox");
    // The outbox learns the topic's partitions while the server answers.
    outbox
        .ensure_topic(&topic, TopicConfig::partitions(1))
        .await
        .expect("topic through the outbox");

    // The server is down (stopped, so that nothing restarts it).
    server.stop_for_now().await;
    let records: Vec<Record> = (1..=50u128)
        .map(|id| Record::new(None, id, Bytes::from(format!("{id}"))))
        .collect();
    let receipt = outbox
        .append_receipt(&topic, 0, records, AppendOptions::default())
        .await
        .expect("queued while the server is down");
    assert_eq!(
        receipt,
        Receipt::Queued {
            partition: 0,
            count: 50
        }
    );
    assert_eq!(outbox.depth()[0].waiting, 50);
    // The producer exits with the records still waiting.
    outbox.shutdown().await;
    drop(outbox);
    iggy.shutdown().await;

    let left = Outbox::waiting_in(dir.path()).await.expect("count");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].waiting, 50, "the next run finds them");

    server.start_again().await;
    let iggy = connect(&server).await;
    let outbox = Outbox::open(Arc::new(iggy.clone()), dir.path(), OutboxOptions::default())
        .await
        .expect("outbox again");
    assert!(outbox.drained(Duration::from_secs(30)).await);
    let stored = everything(&iggy, &topic).await;
    let ids: Vec<u128> = stored[&0].iter().map(|(_, id)| *id).collect();
    assert_eq!(ids, (1..=50).collect::<Vec<_>>());
    outbox.shutdown().await;
    iggy.shutdown().await;
    server.stop().await;
}
