//! `EventConsumer::poll_where` decodes only the records a reader wants: the others come
//! back as addresses, are never decoded (so one that would not decode is no failure),
//! and are committed past like any polled record.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use vibes_events::{Event, Filter, SessionStart, Text};
use vibes_log::backend::{LogBackend, Record};
use vibes_log::{AppendOptions, EventLog, InMemoryLog, TopicConfig, TopicName};

const WAIT: Duration = Duration::from_millis(50);

#[tokio::test]
async fn unwanted_records_are_skipped_undecoded_and_committed() {
    let backend = Arc::new(InMemoryLog::new());
    let log: EventLog<Event> = EventLog::open_with(
        backend.clone(),
        "t/events",
        TopicConfig::partitions(1),
        vibes_log::JsonCodec,
    )
    .await
    .expect("open");
    let start = Event::new("claude", SessionStart::new("claude-x", vec![]));
    let text = Event::new("claude", Text::new("hello"));
    log.append_batch(&[start.clone(), text.clone(), start.clone()])
        .await
        .expect("append");
    // A record that is no event (no id, no time) but names an unwanted type.
    let garbage = br#"{"type":"claude.text","source":"claude","data":42}"#;
    backend
        .append(
            &TopicName::new("t/events").expect("name"),
            0,
            vec![Record::new(None, 7, Bytes::from_static(garbage))],
            AppendOptions::default(),
        )
        .await
        .expect("raw append");

    let filter = Filter::all().event_type("session.start");
    let mut consumer = log.consumer("g").await.expect("consumer");
    let batch = consumer
        .poll_where(100, WAIT, |r| filter.matches_json(&r.payload))
        .await
        .expect("poll");
    assert_eq!(batch.events.len(), 2);
    assert!(batch.iter().all(|e| e.event_type() == "session.start"));
    let skipped: Vec<u64> = batch.skipped.iter().map(|a| a.offset).collect();
    // The text event and the unparsable record: neither decoded, neither a failure.
    assert_eq!(skipped, [1, 3]);
    assert!(batch.failures.is_empty());
    assert_eq!(batch.len(), 4);
    consumer.commit().await.expect("commit");

    let mut again = log.consumer("g").await.expect("consumer");
    let rest = again.poll(100, WAIT).await.expect("poll");
    assert!(
        rest.is_empty(),
        "the group resumes after the skipped records"
    );

    // Without a predicate that skips, the unparsable record is a failure.
    let mut other = log.consumer("h").await.expect("consumer");
    let all = other.poll(100, WAIT).await.expect("poll");
    assert_eq!(all.events.len(), 3);
    assert_eq!(all.failures.len(), 1);
    assert!(all.skipped.is_empty());
}
