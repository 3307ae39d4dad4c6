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
                let records = ids
                    .iter()
                    .map(|id| Record::new(None, *id, Bytes::from(format!("{id}"))))
                    .collect();
                let ack = log
                    .append(&topic, 0, records, AppendOptions::default())
                    .await
                    .expect("append");
                acked.extend(ack.addresses().map(|a| a.offset).zip(ids));
            }
            acked
        }));
    }
    let mut claimed: BTreeMap<u64, u128> = BTreeMap::new();
    for task in tasks {
        for (offset, id) in task.await.expect("producer") {
            assert!(
                claimed.insert(offset, id).is_none(),
                "offset {offset} acknowledged twice"
            );
        }
    }

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
