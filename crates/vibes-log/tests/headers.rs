//! The typed layer gives record headers (event type and source) to backends that want
//! them, and builds none for those that do not.

use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use vibes_events::{Event, SessionStart};
use vibes_log::backend::{
    AppendAck, GroupInfo, LogBackend, Record, RecordConsumer, StoredRecord, TopicInfo,
};
use vibes_log::{
    AppendOptions, ConsumerOptions, EventLog, GroupName, InMemoryLog, Offset, Result, TopicConfig,
    TopicName, Watermarks,
};

/// An in-memory log that remembers the headers of every appended record.
#[derive(Debug)]
struct HeaderSpy {
    inner: InMemoryLog,
    wants: bool,
    seen: Mutex<Vec<Vec<(String, String)>>>,
}

#[async_trait]
impl LogBackend for HeaderSpy {
    fn kind(&self) -> &'static str {
        "spy"
    }
    fn wants_headers(&self) -> bool {
        self.wants
    }
    async fn ensure_topic(&self, topic: &TopicName, config: TopicConfig) -> Result<TopicInfo> {
        self.inner.ensure_topic(topic, config).await
    }
    async fn topic_info(&self, topic: &TopicName) -> Result<TopicInfo> {
        self.inner.topic_info(topic).await
    }
    async fn list_topics(&self) -> Result<Vec<TopicName>> {
        self.inner.list_topics().await
    }
    async fn append(
        &self,
        topic: &TopicName,
        partition: u32,
        records: Vec<Record>,
        options: AppendOptions,
    ) -> Result<AppendAck> {
        self.seen
            .lock()
            .extend(records.iter().map(|r| r.headers.clone()));
        self.inner.append(topic, partition, records, options).await
    }
    async fn watermarks(&self, topic: &TopicName, partition: u32) -> Result<Watermarks> {
        self.inner.watermarks(topic, partition).await
    }
    async fn read(
        &self,
        topic: &TopicName,
        partition: u32,
        from: Offset,
        max: usize,
    ) -> Result<Vec<StoredRecord>> {
        self.inner.read(topic, partition, from, max).await
    }
    async fn consumer(
        &self,
        topic: &TopicName,
        group: &GroupName,
        options: ConsumerOptions,
    ) -> Result<Box<dyn RecordConsumer>> {
        self.inner.consumer(topic, group, options).await
    }
    async fn groups(&self, topic: &TopicName) -> Result<Vec<GroupInfo>> {
        self.inner.groups(topic).await
    }
}

async fn headers_seen(wants: bool) -> Vec<Vec<(String, String)>> {
    let spy = Arc::new(HeaderSpy {
        inner: InMemoryLog::new(),
        wants,
        seen: Mutex::new(Vec::new()),
    });
    let log: EventLog<Event> = EventLog::open(spy.clone(), "vibes/events")
        .await
        .expect("open");
    let event = Event::new("drainer", SessionStart::new("claude-x", vec![]));
    log.append(&event).await.expect("append");
    log.append_batch(&[event.clone(), event])
        .await
        .expect("batch");
    spy.seen.lock().clone()
}

#[tokio::test]
async fn backends_that_want_headers_get_type_and_source() {
    let seen = headers_seen(true).await;
    assert_eq!(seen.len(), 3);
    for headers in seen {
        assert_eq!(
            headers,
            [
                ("type".to_owned(), "session.start".to_owned()),
                ("source".to_owned(), "drainer".to_owned())
            ]
        );
    }
}

#[tokio::test]
async fn other_backends_get_no_headers() {
    let seen = headers_seen(false).await;
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(Vec::is_empty));
}
