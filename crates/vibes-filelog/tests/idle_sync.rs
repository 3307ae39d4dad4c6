//! Which appends the writer's idle timer fsyncs: `interval(d)` writes after `d`, and
//! never `never` writes. Observed through an injected fsync failure: the fsync that
//! meets it poisons the partition. (Its own test binary: the fault is process-wide.)

use std::time::Duration;

use tempfile::TempDir;
use vibes_filelog::{FileLog, FileLogOptions, fault};
use vibes_log::backend::{LogBackend, Record};
use vibes_log::{AppendOptions, Durability, LogError, TopicConfig, TopicName};

fn record(n: u128) -> Vec<Record> {
    vec![Record::new(None, n, format!("payload {n}"))]
}

async fn open(dir: &TempDir, name: &str) -> (FileLog, TopicName) {
    let log = FileLog::open(dir.path(), FileLogOptions::default()).unwrap();
    let topic = TopicName::new(name).unwrap();
    log.ensure_topic(&topic, TopicConfig::default())
        .await
        .unwrap();
    (log, topic)
}

#[tokio::test]
async fn idle_timer_fsyncs_interval_writes_after_their_interval_and_never_writes_not_at_all() {
    let dir = TempDir::new().unwrap();

    // `never`: no fsync while idle, so the injected failure waits for the next fsync.
    let (log, topic) = open(&dir, "sync/never").await;
    let never = AppendOptions::durability(Durability::Never);
    fault::fail_next_sync();
    log.append(&topic, 0, record(0), never).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    log.append(&topic, 0, record(1), never)
        .await
        .expect("no fsync ran while idle, so nothing failed");
    let err = log
        .append(
            &topic,
            0,
            record(2),
            AppendOptions::durability(Durability::Always),
        )
        .await
        .unwrap_err();
    let poisoned = matches!(err, LogError::Poisoned { .. });
    assert!(poisoned, "the first fsync met the fault: {err:?}");
    drop(log);

    // `interval(50 ms)` in a log whose default is `always`: fsync'd after 50 ms.
    let (log, topic) = open(&dir, "sync/interval").await;
    fault::fail_next_sync();
    log.append(
        &topic,
        0,
        record(0),
        AppendOptions::durability(Durability::Interval(Duration::from_millis(50))),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let err = log.append(&topic, 0, record(1), never).await.unwrap_err();
    let poisoned = matches!(&err, LogError::Poisoned { reason } if reason.contains("injected"));
    assert!(poisoned, "the idle fsync ran within 400 ms: {err:?}");
}
