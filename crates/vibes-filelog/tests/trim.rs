//! `trim`: whole sealed segments before the offset go, nothing at or after it, and the
//! log keeps its offsets across a reopen.

use tempfile::TempDir;
use vibes_filelog::{FileLog, FileLogOptions};
use vibes_log::backend::{LogBackend, Record};
use vibes_log::{AppendOptions, TopicConfig, TopicName};

fn topic() -> TopicName {
    TopicName::new("trim/t").unwrap()
}

fn options() -> FileLogOptions {
    FileLogOptions::default().segment_bytes(4096)
}

fn record(n: u64) -> Record {
    Record::new(
        None,
        u128::from(n) + 1,
        format!("record {n:05} ").repeat(20).into_bytes(),
    )
}

#[tokio::test]
async fn trim_deletes_whole_sealed_segments_before_the_offset_only() {
    let root = TempDir::new().unwrap();
    let log = FileLog::open(root.path(), options()).unwrap();
    log.ensure_topic(&topic(), TopicConfig::partitions(1))
        .await
        .unwrap();
    for n in 0..150 {
        log.append(&topic(), 0, vec![record(n)], AppendOptions::default())
            .await
            .unwrap();
    }
    let gone = log.trim(&topic(), 0, 100).await.unwrap();
    let marks = log.watermarks(&topic(), 0).await.unwrap();
    assert!(gone > 0 && gone <= 100, "{gone} records trimmed");
    assert_eq!(marks.low, gone);
    assert_eq!(marks.high, 150);
    let kept = log.read(&topic(), 0, 0, 1000).await.unwrap();
    assert_eq!(kept.first().unwrap().address.offset, gone);
    assert_eq!(kept.len() as u64, 150 - gone);
    assert!(
        kept.iter()
            .all(|r| r.payload.as_ref() == record(r.address.offset).payload.as_ref()),
        "every kept record is intact at its offset"
    );
    // A trim at or past the active segment never takes it.
    let more = log.trim(&topic(), 0, 1_000).await.unwrap();
    let after = log.watermarks(&topic(), 0).await.unwrap();
    assert_eq!(after.high, 150);
    assert!(
        after.low < 150,
        "the active segment stays: {after:?} after {more}"
    );
    drop(log);

    let reopened = FileLog::open(root.path(), options()).unwrap();
    assert_eq!(reopened.watermarks(&topic(), 0).await.unwrap(), after);
    let ack = reopened
        .append(&topic(), 0, vec![record(150)], AppendOptions::default())
        .await
        .unwrap();
    assert_eq!(ack.base_offset, 150);
}
