//! Producers that do not share an `IggyLog` (as two processes would) appending to one
//! partition at once: every acknowledgement names the offsets the server gave its own
//! records.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::TestServer;
use vibes_iggy::{IggyLog, IggyLogOptions};
use vibes_log::backend::{LogBackend, Record};
use vibes_log::{AppendOptions, ConsumerOptions, GroupName, TopicConfig, TopicName};

/// Appends one record per id (its payload the id) to partition 0 as one batch; adds
/// the offsets acknowledged, one per record, with their ids to `acked`.
async fn append_ids(log: &IggyLog, topic: &TopicName, ids: &[u128], acked: &mut Vec<(u64, u128)>) {
    let records = ids
        .iter()
        .map(|id| Record::new(None, *id, Bytes::from(format!("{id}"))))
        .collect();
    let ack = log
        .append(topic, 0, records, AppendOptions::default())
        .await
        .expect("append");
    assert_eq!(
        ack.last_offset - ack.base_offset + 1,
        ids.len() as u64,
        "one offset per record"
    );
    acked.extend(ack.addresses().map(|a| a.offset).zip(ids.iter().copied()));
}

/// The offsets each appending task was acknowledged, with the ids of its records there;
/// no offset may be claimed twice.
async fn claims(tasks: Vec<tokio::task::JoinHandle<Vec<(u64, u128)>>>) -> BTreeMap<u64, u128> {
    let mut claimed = BTreeMap::new();
    for task in tasks {
        for (offset, id) in task.await.expect("an appending task") {
            assert!(
                claimed.insert(offset, id).is_none(),
                "offset {offset} acknowledged twice"
            );
        }
    }
    claimed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs iggy-server (IGGY_SERVER_BIN)"]
async fn interleaved_producers_get_the_offsets_of_their_own_records() {
    let server = TestServer::start().await;
    let topic = TopicName::new("shared/events").unwrap();
    let mut producers = Vec::new();
    for _ in 0..3 {
        producers.push(
            IggyLog::connect(server.connection(), IggyLogOptions::default())
                .await
                .expect("connect"),
        );
    }
    producers[0]
        .ensure_topic(&topic, TopicConfig::partitions(1))
        .await
        .expect("topic");

    let mut tasks = Vec::new();
    for (p, log) in producers.iter().enumerate() {
        let (log, topic) = (log.clone(), topic.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for batch in 0..100u128 {
                let ids: Vec<u128> = (0..5)
                    .map(|i| ((p as u128 + 1) << 64) | (batch * 5 + i + 1))
                    .collect();
                append_ids(&log, &topic, &ids, &mut acked).await;
            }
            acked
        }));
    }
    let claimed = claims(tasks).await;

    let mut consumer = producers[0]
        .consumer(
            &topic,
            &GroupName::new("audit").unwrap(),
            ConsumerOptions::default(),
        )
        .await
        .expect("consumer");
    let mut stored = BTreeMap::new();
    while stored.len() < 1500 {
        let records = consumer
            .poll(1000, Duration::from_secs(5))
            .await
            .expect("poll");
        assert!(!records.is_empty(), "only {} records stored", stored.len());
        for r in records {
            stored.insert(r.address.offset, r.id);
        }
    }
    assert_eq!(
        claimed, stored,
        "every ack names the server's offsets of its own records"
    );
    drop(consumer);
    for log in &producers {
        log.shutdown().await;
    }
    server.stop().await;
}

/// Many callers of one `IggyLog` appending to one partition at once (their batches sent
/// together in groups): each acknowledgement names the server's offsets of its own
/// records, every batch is stored contiguously, and each record once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs iggy-server (IGGY_SERVER_BIN)"]
async fn concurrent_callers_of_one_log_share_sends_and_get_their_own_offsets() {
    const CALLERS: u128 = 64;
    const APPENDS: u128 = 20;
    let server = TestServer::start().await;
    let topic = TopicName::new("shared/grouped").unwrap();
    let log = IggyLog::connect(server.connection(), IggyLogOptions::default())
        .await
        .expect("connect");
    log.ensure_topic(&topic, TopicConfig::partitions(1))
        .await
        .expect("topic");
    let mut tasks = Vec::new();
    for caller in 0..CALLERS {
        let (log, topic) = (log.clone(), topic.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for append in 0..APPENDS {
                // Batches of 1 to 3 records.
                let size = 1 + (caller + append) % 3;
                let ids: Vec<u128> = (0..size)
                    .map(|i| ((caller + 1) << 64) | (append * 4 + i + 1))
                    .collect();
                append_ids(&log, &topic, &ids, &mut acked).await;
            }
            acked
        }));
    }
    let claimed = claims(tasks).await;
    let total = claimed.len();
    let stored: BTreeMap<u64, u128> = log
        .read(&topic, 0, 0, total + 10)
        .await
        .expect("read")
        .into_iter()
        .map(|r| (r.address.offset, r.id))
        .collect();
    assert_eq!(stored.len(), total, "each record stored once");
    assert_eq!(
        claimed, stored,
        "every ack names the server's offsets of its own records"
    );
    log.shutdown().await;
    server.stop().await;
}
