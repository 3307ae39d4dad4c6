//! [`Switchable`]: a backend whose "server" a test can switch off.

use std::sync::Arc;

use async_trait::async_trait;

use crate::backend::{
    AppendAck, GroupInfo, LogBackend, Record, RecordConsumer, StoredRecord, TopicInfo,
};
use crate::{
    AppendOptions, ConsumerOptions, GroupName, LogError, Offset, TopicConfig, TopicName, Watermarks,
};

/// A backend in front of another whose "server" can be switched off, for testing what
/// sits in front of a remote backend (an outbox) without one: while off, every call
/// fails with a transient [`LogError::Backend`], as a dropped connection does. It can
/// also lose the answer to appends that were stored (the reply never arrived), so that
/// a retry would store them twice.
///
/// Cloning gives another handle to the same switch. Consumers created while on keep
/// working when it is switched off (they hold their own connection, as it were).
#[derive(Clone)]
pub struct Switchable {
    inner: Arc<dyn LogBackend>,
    state: Arc<SwitchState>,
}

#[derive(Debug, Default)]
struct SwitchState {
    off: std::sync::atomic::AtomicBool,
    /// Appends still to be stored and then answered with an error.
    lose_answers: std::sync::atomic::AtomicUsize,
    /// Appends the inner backend stored.
    stored: std::sync::atomic::AtomicUsize,
    /// Calls of `trim`.
    trims: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Switchable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Switchable")
            .field("inner", &self.inner)
            .field("state", &self.state)
            .finish()
    }
}

impl Switchable {
    /// In front of `inner`, switched on.
    pub fn new(inner: Arc<dyn LogBackend>) -> Self {
        Switchable {
            inner,
            state: Arc::default(),
        }
    }

    /// Calls of `trim` so far.
    pub fn trims(&self) -> usize {
        self.state.trims.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Switches the "server" on (`true`) or off.
    pub fn set_reachable(&self, on: bool) {
        self.state
            .off
            .store(!on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether it is on.
    pub fn is_reachable(&self) -> bool {
        !self.state.off.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The next `n` appends are stored, but answered with a transient error.
    pub fn lose_answers_of_next_appends(&self, n: usize) {
        self.state
            .lose_answers
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// How many appends the backend behind stored so far.
    pub fn appends_stored(&self) -> usize {
        self.state.stored.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The backend behind the switch.
    pub fn inner(&self) -> &Arc<dyn LogBackend> {
        &self.inner
    }

    fn check(&self, what: impl FnOnce() -> String) -> crate::Result<()> {
        if self.is_reachable() {
            Ok(())
        } else {
            Err(LogError::Backend {
                message: format!("{}: the test server is switched off", what()),
                transient: true,
                source: None,
            })
        }
    }
}

#[async_trait]
impl LogBackend for Switchable {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn wants_headers(&self) -> bool {
        self.inner.wants_headers()
    }

    async fn ensure_topic(
        &self,
        topic: &TopicName,
        config: TopicConfig,
    ) -> crate::Result<TopicInfo> {
        self.check(|| format!("creating {topic}"))?;
        self.inner.ensure_topic(topic, config).await
    }

    async fn topic_info(&self, topic: &TopicName) -> crate::Result<TopicInfo> {
        self.check(|| format!("reading {topic}"))?;
        self.inner.topic_info(topic).await
    }

    async fn list_topics(&self) -> crate::Result<Vec<TopicName>> {
        self.check(|| "listing topics".to_owned())?;
        self.inner.list_topics().await
    }

    async fn append(
        &self,
        topic: &TopicName,
        partition: u32,
        records: Vec<Record>,
        options: AppendOptions,
    ) -> crate::Result<AppendAck> {
        let what = || format!("appending to {topic} partition {partition}");
        self.check(what)?;
        let ack = self
            .inner
            .append(topic, partition, records, options)
            .await?;
        self.state
            .stored
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let lose = self.state.lose_answers.fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |n| n.checked_sub(1),
        );
        if lose.is_ok() {
            return Err(LogError::Backend {
                message: format!("{}: the answer was lost (stored at {ack:?})", what()),
                transient: true,
                source: None,
            });
        }
        Ok(ack)
    }

    async fn watermarks(&self, topic: &TopicName, partition: u32) -> crate::Result<Watermarks> {
        self.check(|| format!("reading {topic} partition {partition}"))?;
        self.inner.watermarks(topic, partition).await
    }

    async fn trim(&self, topic: &TopicName, partition: u32, before: Offset) -> crate::Result<u64> {
        self.check(|| format!("trimming {topic} partition {partition}"))?;
        self.state
            .trims
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.trim(topic, partition, before).await
    }

    async fn read(
        &self,
        topic: &TopicName,
        partition: u32,
        from: Offset,
        max: usize,
    ) -> crate::Result<Vec<StoredRecord>> {
        self.check(|| format!("reading {topic} partition {partition}"))?;
        self.inner.read(topic, partition, from, max).await
    }

    async fn consumer(
        &self,
        topic: &TopicName,
        group: &GroupName,
        options: ConsumerOptions,
    ) -> crate::Result<Box<dyn RecordConsumer>> {
        self.check(|| format!("joining group {group} on {topic}"))?;
        self.inner.consumer(topic, group, options).await
    }

    async fn groups(&self, topic: &TopicName) -> crate::Result<Vec<GroupInfo>> {
        self.check(|| format!("listing the groups of {topic}"))?;
        self.inner.groups(topic).await
    }
}
