//! A failed fsync poisons the partition: the append that needed it fails, later
//! appends are refused with the reason, reads go on, and a reopened log writes again.
//! (Its own test binary: the injected fault is process-wide.)

use std::time::Duration;

use tempfile::TempDir;
use vibes_filelog::{FileLog, FileLogOptions, fault};
use vibes_log::backend::{LogBackend, Record};
use vibes_log::{
    AppendOptions, ConsumerOptions, Durability, GroupName, LogError, TopicConfig, TopicName,
};

#[tokio::test]
async fn failed_fsync_poisons_the_partition_until_reopened() {
    let root = TempDir::new().unwrap();
    let topic = TopicName::new("poison/t").unwrap();
    let record = |n: u128| vec![Record::new(None, n, format!("payload {n}"))];
    {
        let log = FileLog::open(root.path(), FileLogOptions::default()).unwrap();
        log.ensure_topic(&topic, TopicConfig::default())
            .await
            .unwrap();
        log.append(&topic, 0, record(0), AppendOptions::default())
            .await
            .unwrap();

        fault::fail_next_sync();
        let err = log
            .append(&topic, 0, record(1), AppendOptions::default())
            .await
            .unwrap_err();
        let LogError::Poisoned { reason } = &err else {
            panic!("expected Poisoned, got {err:?}")
        };
        assert!(reason.contains("fsync failed"), "{reason}");

        // Refused from now on, whatever the durability, and the reason is kept.
        for durability in [Durability::Always, Durability::Never] {
            let err = log
                .append(&topic, 0, record(2), AppendOptions::durability(durability))
                .await
                .unwrap_err();
            let LogError::Poisoned { reason } = &err else {
                panic!("expected Poisoned, got {err:?}")
            };
            assert!(reason.contains("injected"), "got {err:?}");
        }
        // Reads still work.
        let mut consumer = log
            .consumer(
                &topic,
                &GroupName::new("g").unwrap(),
                ConsumerOptions::default(),
            )
            .await
            .unwrap();
        let got = consumer.poll(10, Duration::from_millis(100)).await.unwrap();
        assert_eq!(got[0].id, 0);
    }
    // A new open starts clean. The record whose fsync failed may or may not be on disk
    // (its write reached the OS); either way the next offset follows what is there.
    let log = FileLog::open(root.path(), FileLogOptions::default()).unwrap();
    let high = log.watermarks(&topic, 0).await.unwrap().high;
    assert!(high == 1 || high == 2, "high {high}");
    let ack = log
        .append(&topic, 0, record(3), AppendOptions::default())
        .await
        .unwrap();
    assert_eq!(ack.base_offset, high);
}
