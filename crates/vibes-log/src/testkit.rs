//! The conformance suite: one function per behaviour that every backend must show.
//!
//! **Unstable**: enabled by the `testkit` feature, for backends' own tests; the
//! functions change whenever the semantics they check are refined.
//!
//! A backend's test file provides a [`Harness`] and expands
//! [`conformance_tests!`](crate::conformance_tests), which makes one `#[tokio::test]`
//! per behaviour (the test crate needs `tokio` with the `macros` and `rt-multi-thread`
//! features):
//!
//! ```text
//! vibes_log::conformance_tests!(MyHarness::new());
//! ```
//!
//! Each function uses its own topic, so the tests may share one storage location.
//! Failures panic with a message saying what was expected.
//!
//! This file is over 900 lines on purpose: it is the suite, one function per behaviour
//! next to the one list that names them all, and `tests/conformance_list.rs` reads it
//! to check that no behaviour is left out of that list. [`Switchable`] lives apart.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::time::Instant;
use vibes_events::{Event, EventData, Text};

mod switchable;

pub use switchable::Switchable;

use crate::backend::{LogBackend, MAX_PAYLOAD_BYTES, Receipt, Record};
use crate::{
    AppendOptions, ConsumerOptions, EventConsumer, EventLog, EventReceipt, GroupName, LogError,
    Missing, RecordAddress, SeekPosition, StartFrom, TopicConfig, TopicName,
};

/// Gives the suite backends over one storage location.
#[async_trait]
pub trait Harness: Send + Sync {
    /// A backend over the harness's storage. Each call stands for a process start: the
    /// suite drops the previous backend first where it simulates a restart. A backend
    /// kept in memory returns a new handle to the same store.
    async fn open(&self) -> Arc<dyn LogBackend>;

    /// What the backend can store; the suite checks the rest is refused clearly.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
}

/// Differences between backends that the suite takes as arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Records with an empty payload can be stored (Iggy: no).
    pub empty_payload: bool,
    /// Records with id 0 can be stored (Iggy: no, it reserves 0).
    pub zero_id: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            empty_payload: true,
            zero_id: true,
        }
    }
}

impl Capabilities {
    /// A backend that stores neither empty payloads nor id 0 (Apache Iggy).
    pub fn no_empty_payload_or_zero_id() -> Self {
        Capabilities {
            empty_payload: false,
            zero_id: false,
        }
    }
}

/// Expands to one `#[tokio::test]` per conformance behaviour, each calling the
/// function of the same name in [`testkit`](crate::testkit) with the harness
/// `$harness` (an expression evaluated once per test).
///
/// The behaviours are listed once, here: the same list makes these tests,
/// [`BEHAVIOURS`] and [`run`], so a behaviour added to the suite runs on every backend,
/// whichever way its tests are made.
#[macro_export]
macro_rules! conformance_tests {
    ($harness:expr) => {
        $crate::conformance_tests!(@list (@tests $harness));
    };
    // The list of behaviours, handed to the arm named in front of it.
    (@list ($($then:tt)*)) => {
        $crate::conformance_tests!($($then)*;
            offsets_are_dense_and_assigned_by_the_backend,
            append_batch_is_all_or_nothing,
            concurrent_batches_stay_contiguous,
            append_to_a_missing_topic_or_partition_is_an_error,
            ensure_topic_is_idempotent_and_checks_the_partition_count,
            invalid_names_are_rejected,
            consumer_resumes_after_the_last_commit,
            every_commit_is_stored,
            commit_survives_a_restart,
            dropped_consumer_replays_from_the_last_commit,
            poll_waits_up_to_its_timeout,
            poll_returns_as_soon_as_a_record_arrives,
            every_seek_position_works,
            seeking_outside_the_log_is_an_error,
            undecodable_record_is_reported_with_its_address_and_skipped,
            group_members_split_partitions_and_see_every_record_once,
            seek_takes_up_a_new_assignment,
            members_that_joined_an_empty_topic_read_what_comes_later,
            groups_are_independent,
            high_water_mark_is_the_backend_truth,
            keyed_records_keep_their_order,
            new_group_can_start_at_the_end,
            commits_are_validated,
            records_keep_key_id_payload_and_time,
            read_by_address_needs_no_group,
            append_receipt_of_a_stored_append_has_its_offsets,
            trim_never_deletes_at_or_after_its_offset
        );
    };
    (@tests $harness:expr; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let harness = $harness;
                $crate::testkit::$name(&harness).await;
            }
        )+
    };
    (@declare; $($name:ident),+ $(,)?) => {
        /// Every behaviour's name, in suite order: for harnesses that run the whole
        /// suite inside one test (one external server per run) with [`run`].
        pub const BEHAVIOURS: &[&str] = &[$(stringify!($name)),+];

        /// Runs the behaviour called `name` (one of [`BEHAVIOURS`]) on `h`.
        ///
        /// # Panics
        /// When the behaviour fails, or there is no behaviour of that name.
        pub async fn run(name: &str, h: &dyn Harness) {
            match name {
                $(stringify!($name) => $name(h).await,)+
                other => panic!("no conformance behaviour named {other}"),
            }
        }
    };
}

crate::conformance_tests!(@list (@declare));

const POLL: Duration = Duration::from_secs(5);

/// Whether `err` says a `kind` is missing.
fn missing_a(kind: Missing, err: &LogError) -> bool {
    matches!(err, LogError::NotFound { kind: k, .. } if *k == kind)
}

fn topic(name: &str) -> String {
    format!("conformance/{name}")
}

/// A text event numbered `n` in session `session`.
pub fn numbered(session: &str, n: usize) -> Event {
    let mut text = Text::new(n.to_string());
    text.session_id = Some(session.to_owned());
    Event::claude(text)
}

fn number(event: &Event) -> usize {
    match &event.data {
        EventData::Text(t) => t.text.parse().expect("numbered event"),
        other => panic!("not a numbered event: {other:?}"),
    }
}

async fn open_log(backend: Arc<dyn LogBackend>, name: &str, partitions: u32) -> EventLog<Event> {
    EventLog::open_with(
        backend,
        &topic(name),
        TopicConfig::partitions(partitions),
        crate::JsonCodec,
    )
    .await
    .expect("open log")
}

/// Polls until `count` events arrived (or panics after repeated empty polls).
async fn take(consumer: &mut EventConsumer<Event>, count: usize) -> Vec<crate::Delivered<Event>> {
    let mut out = Vec::new();
    let mut empty_polls = 0;
    while out.len() < count {
        let batch = consumer.poll(count - out.len(), POLL).await.expect("poll");
        assert!(
            batch.failures.is_empty(),
            "unexpected decode failures: {:?}",
            batch.failures
        );
        if batch.is_empty() {
            empty_polls += 1;
            assert!(
                empty_polls < 3,
                "expected {count} events, got {} and then nothing",
                out.len()
            );
        }
        out.extend(batch.events);
    }
    assert_eq!(out.len(), count, "poll returned more than asked for");
    out
}

async fn append_numbered(
    log: &EventLog<Event>,
    session: &str,
    range: std::ops::Range<usize>,
) -> Vec<RecordAddress> {
    let events: Vec<Event> = range.map(|n| numbered(session, n)).collect();
    log.append_batch(&events).await.expect("append")
}

/// Offsets are dense from 0, in append order, and come from the backend.
pub async fn offsets_are_dense_and_assigned_by_the_backend(h: &dyn Harness) {
    let log = open_log(h.open().await, "dense", 1).await;
    let mut offsets = Vec::new();
    for n in 0..3 {
        offsets.push(log.append(&numbered("s", n)).await.expect("append").offset);
    }
    offsets.extend(
        append_numbered(&log, "s", 3..7)
            .await
            .iter()
            .map(|a| a.offset),
    );
    assert_eq!(offsets, (0..7).collect::<Vec<u64>>());
    assert_eq!(log.high_water_mark(0).await.unwrap(), 7);
    let mut consumer = log.consumer("reader").await.unwrap();
    let got = take(&mut consumer, 7).await;
    let pairs: Vec<(u64, usize)> = got
        .iter()
        .map(|d| (d.address.offset, number(&d.event)))
        .collect();
    assert_eq!(pairs, (0..7).map(|n| (n as u64, n)).collect::<Vec<_>>());
}

/// A batch with one bad record stores none of its records.
pub async fn append_batch_is_all_or_nothing(h: &dyn Harness) {
    let backend = h.open().await;
    let log = open_log(Arc::clone(&backend), "atomic", 1).await;
    append_numbered(&log, "s", 0..2).await;
    let name = TopicName::new(&topic("atomic")).unwrap();
    let good = || Record::new(None, 1, Bytes::from_static(b"{}"));
    let oversized = Record::new(None, 2, vec![b' '; MAX_PAYLOAD_BYTES + 1]);
    let err = backend
        .append(
            &name,
            0,
            vec![good(), good(), oversized, good()],
            AppendOptions::default(),
        )
        .await
        .expect_err("a batch with an oversized record fails");
    let too_large = matches!(err, LogError::TooLarge { size, limit: MAX_PAYLOAD_BYTES, .. }
        if size == MAX_PAYLOAD_BYTES + 1);
    assert!(too_large, "got {err:?}");
    let err = backend
        .append(&name, 0, Vec::new(), AppendOptions::default())
        .await
        .expect_err("an empty batch fails");
    assert!(matches!(err, LogError::EmptyBatch { .. }), "got {err:?}");
    assert_eq!(
        log.high_water_mark(0).await.unwrap(),
        2,
        "nothing of the failed batch is stored"
    );
    let addresses = append_numbered(&log, "s", 2..4).await;
    assert_eq!(
        addresses.iter().map(|a| a.offset).collect::<Vec<_>>(),
        [2, 3]
    );
    let mut consumer = log.consumer("reader").await.unwrap();
    let got: Vec<usize> = take(&mut consumer, 4)
        .await
        .iter()
        .map(|d| number(&d.event))
        .collect();
    assert_eq!(got, [0, 1, 2, 3]);
}

/// Batches appended concurrently are each stored contiguously and in order.
pub async fn concurrent_batches_stay_contiguous(h: &dyn Harness) {
    const WRITERS: usize = 4;
    const BATCHES: usize = 25;
    const SIZE: usize = 8;
    let log = open_log(h.open().await, "contiguous", 1).await;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut acks = Vec::new();
                for b in 0..BATCHES {
                    let start = (w * BATCHES + b) * SIZE;
                    acks.push(append_numbered(&log, "s", start..start + SIZE).await);
                }
                acks
            })
        })
        .collect();
    for task in tasks {
        for addresses in task.await.unwrap() {
            let offsets: Vec<u64> = addresses.iter().map(|a| a.offset).collect();
            let first = offsets[0];
            assert_eq!(
                offsets,
                (first..first + SIZE as u64).collect::<Vec<_>>(),
                "batch not contiguous"
            );
        }
    }
    let total = WRITERS * BATCHES * SIZE;
    let mut consumer = log.consumer("reader").await.unwrap();
    let got: Vec<usize> = take(&mut consumer, total)
        .await
        .iter()
        .map(|d| number(&d.event))
        .collect();
    for chunk in got.chunks(SIZE) {
        let first = chunk[0];
        assert_eq!(first % SIZE, 0, "a batch starts at its first record");
        assert_eq!(chunk, (first..first + SIZE).collect::<Vec<_>>().as_slice());
    }
    assert_eq!(got.iter().copied().collect::<BTreeSet<_>>().len(), total);
}

/// Appending to a topic that does not exist, or a partition past the count, fails.
pub async fn append_to_a_missing_topic_or_partition_is_an_error(h: &dyn Harness) {
    let backend = h.open().await;
    let missing = TopicName::new(&topic("never-created")).unwrap();
    let record = || vec![Record::new(None, 1, Bytes::from_static(b"{}"))];
    let err = backend
        .append(&missing, 0, record(), AppendOptions::default())
        .await
        .unwrap_err();
    assert!(missing_a(Missing::Topic, &err), "got {err:?}");
    let err = backend.topic_info(&missing).await.unwrap_err();
    assert!(missing_a(Missing::Topic, &err), "got {err:?}");
    let log = open_log(Arc::clone(&backend), "two-partitions", 2).await;
    let err = backend
        .append(log.topic(), 2, record(), AppendOptions::default())
        .await
        .unwrap_err();
    assert!(missing_a(Missing::Partition, &err), "got {err:?}");
}

/// `ensure_topic` creates once, then returns the same topic; another partition count is
/// an error.
pub async fn ensure_topic_is_idempotent_and_checks_the_partition_count(h: &dyn Harness) {
    let backend = h.open().await;
    let name = TopicName::new(&topic("ensure")).unwrap();
    let first = backend
        .ensure_topic(&name, TopicConfig::partitions(3))
        .await
        .unwrap();
    assert_eq!(first.partitions.len(), 3);
    let again = backend
        .ensure_topic(&name, TopicConfig::partitions(3))
        .await
        .unwrap();
    assert_eq!(again, first);
    let err = backend
        .ensure_topic(&name, TopicConfig::partitions(4))
        .await
        .unwrap_err();
    let expected = matches!(
        err,
        LogError::PartitionCountMismatch {
            existing: 3,
            requested: 4,
            ..
        }
    );
    assert!(expected, "got {err:?}");
    let err = backend
        .ensure_topic(
            &TopicName::new(&topic("zero")).unwrap(),
            TopicConfig::partitions(0),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, LogError::ZeroPartitions { .. }),
        "got {err:?}"
    );
    assert!(backend.list_topics().await.unwrap().contains(&name));
}

/// Names that could escape a data directory or break a backend are refused.
pub async fn invalid_names_are_rejected(h: &dyn Harness) {
    let backend = h.open().await;
    let too_long = format!("s/{}", "t".repeat(crate::MAX_NAME_LEN + 1));
    for bad in [
        "",
        "stream",
        "/topic",
        "stream/",
        "a/b/c",
        "../x",
        "a/..",
        "a/.hidden",
        "./a",
        "a b/c",
        "a/b\\c",
        "a/b\0",
        "a/ü",
        too_long.as_str(),
    ] {
        let err = EventLog::<Event>::open(Arc::clone(&backend), bad)
            .await
            .unwrap_err();
        let expected = matches!(err, LogError::InvalidName { .. });
        assert!(expected, "{bad:?} gave {err:?}");
    }
    let log = open_log(backend, "names", 1).await;
    for bad in ["", "..", "a/b", ".g", "g h"] {
        let err = log.consumer(bad).await.unwrap_err();
        let expected = matches!(err, LogError::InvalidName { .. });
        assert!(expected, "group {bad:?} gave {err:?}");
    }
    assert!(log.consumer("ok_group-1.v2").await.is_ok());
}

/// A new member of a group starts right after the group's last commit.
pub async fn consumer_resumes_after_the_last_commit(h: &dyn Harness) {
    let log = open_log(h.open().await, "resume", 1).await;
    append_numbered(&log, "s", 0..10).await;
    let mut first = log.consumer("g").await.unwrap();
    let got = take(&mut first, 4).await;
    assert_eq!(got.last().unwrap().address.offset, 3);
    first.commit().await.unwrap();
    assert_eq!(first.committed_offset(0).await.unwrap(), Some(4));
    drop(first);
    let mut second = log.consumer("g").await.unwrap();
    assert_eq!(second.position(0), Some(4));
    let got: Vec<usize> = take(&mut second, 6)
        .await
        .iter()
        .map(|d| number(&d.event))
        .collect();
    assert_eq!(got, (4..10).collect::<Vec<_>>());
    // commit_through commits up to and including the given record.
    second
        .commit_through(RecordAddress {
            partition: 0,
            offset: 6,
        })
        .await
        .unwrap();
    assert_eq!(second.committed_offset(0).await.unwrap(), Some(7));
}

/// Each commit stores the current position, also after a single further record.
pub async fn every_commit_is_stored(h: &dyn Harness) {
    let log = open_log(h.open().await, "every-commit", 1).await;
    append_numbered(&log, "s", 0..4).await;
    let mut consumer = log.consumer("g").await.unwrap();
    for expected in 1..=4 {
        take(&mut consumer, 1).await;
        consumer.commit().await.unwrap();
        assert_eq!(consumer.committed_offset(0).await.unwrap(), Some(expected));
    }
    consumer.commit().await.unwrap();
    assert_eq!(
        consumer.committed_offset(0).await.unwrap(),
        Some(4),
        "a repeated commit keeps it"
    );
    consumer.seek(SeekPosition::Offset(1)).await.unwrap();
    consumer.commit().await.unwrap();
    assert_eq!(
        consumer.committed_offset(0).await.unwrap(),
        Some(1),
        "a commit after a seek back is stored"
    );
}

/// Commits and records survive closing and reopening the backend.
pub async fn commit_survives_a_restart(h: &dyn Harness) {
    {
        let log = open_log(h.open().await, "restart", 1).await;
        append_numbered(&log, "s", 0..5).await;
        let mut consumer = log.consumer("g").await.unwrap();
        take(&mut consumer, 3).await;
        consumer.commit().await.unwrap();
    }
    let log = open_log(h.open().await, "restart", 1).await;
    assert_eq!(log.high_water_mark(0).await.unwrap(), 5);
    let mut consumer = log.consumer("g").await.unwrap();
    assert_eq!(consumer.committed_offset(0).await.unwrap(), Some(3));
    let got: Vec<usize> = take(&mut consumer, 2)
        .await
        .iter()
        .map(|d| number(&d.event))
        .collect();
    assert_eq!(got, [3, 4]);
}

/// Records polled but not committed are delivered again to the next member.
pub async fn dropped_consumer_replays_from_the_last_commit(h: &dyn Harness) {
    let log = open_log(h.open().await, "replay", 1).await;
    append_numbered(&log, "s", 0..10).await;
    let mut consumer = log.consumer("g").await.unwrap();
    take(&mut consumer, 5).await;
    consumer.commit().await.unwrap();
    take(&mut consumer, 3).await;
    drop(consumer);
    let mut again = log.consumer("g").await.unwrap();
    let got: Vec<usize> = take(&mut again, 5)
        .await
        .iter()
        .map(|d| number(&d.event))
        .collect();
    assert_eq!(got, [5, 6, 7, 8, 9], "uncommitted records come again");
}

/// An empty poll waits for its timeout, not less (no spinning returns) and not much more.
pub async fn poll_waits_up_to_its_timeout(h: &dyn Harness) {
    let log = open_log(h.open().await, "timeout", 1).await;
    let mut consumer = log.consumer("g").await.unwrap();
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let batch = consumer.poll(10, timeout).await.unwrap();
    let waited = started.elapsed();
    assert!(batch.is_empty());
    assert!(
        waited >= timeout,
        "returned after {waited:?}, before the {timeout:?} timeout"
    );
    assert!(
        waited < timeout + Duration::from_secs(2),
        "returned only after {waited:?}"
    );
}

/// A waiting poll returns when a record is appended, long before its timeout.
pub async fn poll_returns_as_soon_as_a_record_arrives(h: &dyn Harness) {
    let log = open_log(h.open().await, "wake", 1).await;
    let mut consumer = log.consumer("g").await.unwrap();
    let appender = {
        let log = log.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            log.append(&numbered("s", 42)).await.unwrap()
        })
    };
    let started = Instant::now();
    let batch = consumer.poll(10, Duration::from_secs(30)).await.unwrap();
    let waited = started.elapsed();
    appender.await.unwrap();
    assert_eq!(batch.events.len(), 1);
    assert_eq!(number(&batch.events[0].event), 42);
    assert!(
        waited < Duration::from_secs(5),
        "woke only after {waited:?} of a 30 s timeout"
    );
}

/// Beginning, End, Offset, Timestamp and FromEnd each move the position where they say.
pub async fn every_seek_position_works(h: &dyn Harness) {
    let log = open_log(h.open().await, "seek", 1).await;
    append_numbered(&log, "s", 0..5).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let middle = jiff::Timestamp::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    append_numbered(&log, "s", 5..10).await;

    let mut consumer = log.consumer("g").await.unwrap();
    async fn next(c: &mut EventConsumer<Event>) -> Option<usize> {
        c.poll(1, Duration::from_millis(200))
            .await
            .unwrap()
            .events
            .first()
            .map(|d| number(&d.event))
    }
    consumer.seek(SeekPosition::Offset(7)).await.unwrap();
    assert_eq!(next(&mut consumer).await, Some(7));
    consumer.seek(SeekPosition::Beginning).await.unwrap();
    assert_eq!(next(&mut consumer).await, Some(0));
    consumer.seek(SeekPosition::FromEnd(3)).await.unwrap();
    assert_eq!(next(&mut consumer).await, Some(7));
    consumer
        .seek(SeekPosition::Timestamp(middle))
        .await
        .unwrap();
    assert_eq!(
        next(&mut consumer).await,
        Some(5),
        "first record appended after the time"
    );
    consumer.seek(SeekPosition::End).await.unwrap();
    assert_eq!(next(&mut consumer).await, None);
    consumer.seek(SeekPosition::Offset(10)).await.unwrap();
    assert_eq!(
        next(&mut consumer).await,
        None,
        "the end itself is a valid offset"
    );
    consumer.seek(SeekPosition::FromEnd(0)).await.unwrap();
    assert_eq!(consumer.position(0), Some(10));
    let later = jiff::Timestamp::now() + Duration::from_secs(3600);
    consumer.seek(SeekPosition::Timestamp(later)).await.unwrap();
    assert_eq!(
        consumer.position(0),
        Some(10),
        "a time after every record is the end"
    );
    consumer
        .seek_partition(0, SeekPosition::Offset(2))
        .await
        .unwrap();
    assert_eq!(next(&mut consumer).await, Some(2));
}

/// Seeking before or past the log fails and leaves the position where it was.
pub async fn seeking_outside_the_log_is_an_error(h: &dyn Harness) {
    let log = open_log(h.open().await, "seek-range", 1).await;
    append_numbered(&log, "s", 0..5).await;
    let mut consumer = log.consumer("g").await.unwrap();
    consumer.seek(SeekPosition::Offset(2)).await.unwrap();
    for bad in [
        SeekPosition::Offset(6),
        SeekPosition::Offset(u64::MAX),
        SeekPosition::FromEnd(6),
    ] {
        let err = consumer.seek(bad).await.unwrap_err();
        let expected = matches!(
            err,
            LogError::OffsetOutOfRange {
                low: 0,
                high: 5,
                partition: 0,
                ..
            }
        );
        assert!(expected, "{bad:?} gave {err:?}");
        assert_eq!(consumer.position(0), Some(2), "a failed seek does not move");
    }
    let err = consumer
        .seek_partition(1, SeekPosition::Beginning)
        .await
        .unwrap_err();
    assert!(missing_a(Missing::Partition, &err), "got {err:?}");
    let got = take(&mut consumer, 1).await;
    assert_eq!(number(&got[0].event), 2);
}

/// A record that does not decode is returned as a failure with its address, once, and
/// the records after it are delivered.
pub async fn undecodable_record_is_reported_with_its_address_and_skipped(h: &dyn Harness) {
    let backend = h.open().await;
    let log = open_log(Arc::clone(&backend), "undecodable", 1).await;
    log.append(&numbered("s", 0)).await.unwrap();
    backend
        .append(
            log.topic(),
            0,
            vec![Record::new(
                None,
                7,
                Bytes::from_static(b"{\"type\":\"claude.text\",\"tru"),
            )],
            AppendOptions::default(),
        )
        .await
        .unwrap();
    log.append(&numbered("s", 2)).await.unwrap();

    let mut consumer = log.consumer("g").await.unwrap();
    let mut events = Vec::new();
    let mut failures = Vec::new();
    while events.len() + failures.len() < 3 {
        let batch = consumer.poll(10, POLL).await.unwrap();
        assert!(!batch.is_empty(), "the consumer stalled");
        events.extend(batch.events.iter().map(|d| number(&d.event)));
        failures.extend(batch.failures);
    }
    assert_eq!(events, [0, 2]);
    assert_eq!(failures.len(), 1);
    assert_eq!(
        failures[0].address,
        RecordAddress {
            partition: 0,
            offset: 1
        }
    );
    assert_eq!(failures[0].topic, log.topic().to_string());
    assert!(
        failures[0]
            .source
            .downcast_ref::<serde_json::Error>()
            .is_some(),
        "the codec's own error is kept: {:?}",
        failures[0].source
    );
    assert!(
        consumer
            .poll(10, Duration::from_millis(100))
            .await
            .unwrap()
            .is_empty(),
        "not delivered twice"
    );
    consumer.commit().await.unwrap();
    assert_eq!(
        consumer.committed_offset(0).await.unwrap(),
        Some(3),
        "commit moves past it"
    );
}

/// Two members of one group own disjoint partitions and together see every record
/// exactly once.
pub async fn group_members_split_partitions_and_see_every_record_once(h: &dyn Harness) {
    const SESSIONS: usize = 12;
    const PER: usize = 10;
    let log = open_log(h.open().await, "split", 4).await;
    for s in 0..SESSIONS {
        append_numbered(&log, &format!("session-{s}"), s * PER..(s + 1) * PER).await;
    }
    let mut a = log.consumer("g").await.unwrap();
    let mut b = log.consumer("g").await.unwrap();
    // `a` takes up the new assignment on its next poll.
    let mut seen = Vec::new();
    let mut empty_rounds = 0;
    while seen.len() < SESSIONS * PER && empty_rounds < 3 {
        let from_a = a.poll(16, Duration::from_millis(100)).await.unwrap();
        let from_b = b.poll(16, Duration::from_millis(100)).await.unwrap();
        if from_a.is_empty() && from_b.is_empty() {
            empty_rounds += 1;
        }
        seen.extend(from_a.events.iter().map(|d| (d.address, number(&d.event))));
        seen.extend(from_b.events.iter().map(|d| (d.address, number(&d.event))));
    }
    let owned_a: BTreeSet<u32> = a.assignment().into_iter().collect();
    let owned_b: BTreeSet<u32> = b.assignment().into_iter().collect();
    assert!(
        owned_a.is_disjoint(&owned_b),
        "{owned_a:?} and {owned_b:?} overlap"
    );
    assert_eq!(
        owned_a.union(&owned_b).count(),
        4,
        "every partition is owned"
    );
    assert!(
        !owned_a.is_empty() && !owned_b.is_empty(),
        "both members got partitions"
    );
    let numbers: Vec<usize> = seen.iter().map(|(_, n)| *n).collect();
    let unique: BTreeSet<usize> = numbers.iter().copied().collect();
    assert_eq!(numbers.len(), SESSIONS * PER, "every record exactly once");
    assert_eq!(unique, (0..SESSIONS * PER).collect());
    // A member asked to commit or seek on the other's partition says it is not its own.
    let theirs = *owned_b.first().expect("b owns a partition");
    let err = a
        .commit_through(RecordAddress {
            partition: theirs,
            offset: 0,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, LogError::NotAssigned { partition, .. } if partition == theirs),
        "got {err:?}"
    );
    let err = a
        .seek_partition(theirs, SeekPosition::Beginning)
        .await
        .unwrap_err();
    assert!(
        matches!(err, LogError::NotAssigned { partition, .. } if partition == theirs),
        "got {err:?}"
    );
}

/// A seek takes up the group's current assignment first: after another member joined,
/// it moves only the partitions this member still owns.
pub async fn seek_takes_up_a_new_assignment(h: &dyn Harness) {
    let log = open_log(h.open().await, "seek-rebalance", 2).await;
    append_numbered(&log, "s", 0..4).await;
    let mut a = log.consumer("g").await.unwrap();
    assert_eq!(a.assignment(), [0, 1], "a lone member owns every partition");
    let b = log.consumer("g").await.unwrap();
    let owned_b: BTreeSet<u32> = b.assignment().into_iter().collect();
    assert_eq!(owned_b.len(), 1, "the second member got a partition");
    a.seek(SeekPosition::Beginning).await.unwrap();
    let owned_a: BTreeSet<u32> = a.assignment().into_iter().collect();
    assert!(
        owned_a.is_disjoint(&owned_b),
        "after its seek, a owns {owned_a:?}, and b owns {owned_b:?}"
    );
    assert_eq!(owned_a.len(), 1, "a kept the other partition");
    for p in &owned_b {
        assert_eq!(a.position(*p), None, "a has no position on b's partition");
    }
}

/// Members that joined while every partition was empty read the records appended
/// afterwards, each record once.
pub async fn members_that_joined_an_empty_topic_read_what_comes_later(h: &dyn Harness) {
    const SESSIONS: usize = 8;
    const PER: usize = 5;
    let log = open_log(h.open().await, "split-empty", 2).await;
    let mut a = log.consumer("g").await.unwrap();
    let mut b = log.consumer("g").await.unwrap();
    for member in [&mut a, &mut b] {
        let batch = member.poll(10, Duration::from_millis(50)).await.unwrap();
        assert!(batch.is_empty(), "nothing to read yet");
    }
    for s in 0..SESSIONS {
        append_numbered(&log, &format!("session-{s}"), s * PER..(s + 1) * PER).await;
    }
    let mut seen = Vec::new();
    let mut empty_rounds = 0;
    while seen.len() < SESSIONS * PER && empty_rounds < 3 {
        let mut got = 0;
        for member in [&mut a, &mut b] {
            let batch = member.poll(16, Duration::from_millis(100)).await.unwrap();
            got += batch.len();
            seen.extend(batch.events.iter().map(|d| (d.address, number(&d.event))));
        }
        if got == 0 {
            empty_rounds += 1;
        }
    }
    let partitions: BTreeSet<u32> = seen.iter().map(|(a, _)| a.partition).collect();
    assert_eq!(partitions.len(), 2, "records came from both partitions");
    let mut numbers: Vec<usize> = seen.iter().map(|(_, n)| *n).collect();
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        (0..SESSIONS * PER).collect::<Vec<_>>(),
        "every record exactly once"
    );
}

/// Each group has its own position and commits.
pub async fn groups_are_independent(h: &dyn Harness) {
    let log = open_log(h.open().await, "groups", 1).await;
    append_numbered(&log, "s", 0..6).await;
    let mut a = log.consumer("a").await.unwrap();
    take(&mut a, 6).await;
    a.commit().await.unwrap();
    let mut b = log.consumer("b").await.unwrap();
    assert_eq!(b.committed_offset(0).await.unwrap(), None);
    let got: Vec<usize> = take(&mut b, 6)
        .await
        .iter()
        .map(|d| number(&d.event))
        .collect();
    assert_eq!(got, (0..6).collect::<Vec<_>>());
    let groups = log.backend().groups(log.topic()).await.unwrap();
    let a_info = groups
        .iter()
        .find(|g| g.group.as_str() == "a")
        .expect("group a is listed");
    assert_eq!(a_info.committed, vec![Some(6)]);
    assert!(
        groups.iter().all(|g| g.group.as_str() != "b"),
        "b never committed"
    );
}

/// The high-water mark reflects appends made through another backend instance.
pub async fn high_water_mark_is_the_backend_truth(h: &dyn Harness) {
    let writer = open_log(h.open().await, "hwm", 1).await;
    let reader = open_log(h.open().await, "hwm", 1).await;
    assert_eq!(reader.high_water_mark(0).await.unwrap(), 0);
    append_numbered(&writer, "s", 0..3).await;
    assert_eq!(reader.high_water_mark(0).await.unwrap(), 3);
    assert_eq!(writer.high_water_mark(0).await.unwrap(), 3);
    let info = reader.backend().topic_info(reader.topic()).await.unwrap();
    assert_eq!(info.partitions[0].high, 3);
}

/// Events with the same key land in one partition, in append order.
pub async fn keyed_records_keep_their_order(h: &dyn Harness) {
    const KEYS: usize = 8;
    const PER: usize = 15;
    let log = open_log(h.open().await, "keys", 3).await;
    for round in 0..PER {
        for k in 0..KEYS {
            log.append(&numbered(&format!("key-{k}"), k * PER + round))
                .await
                .unwrap();
        }
    }
    let mut consumer = log.consumer("g").await.unwrap();
    let got = take(&mut consumer, KEYS * PER).await;
    let mut by_key: BTreeMap<String, Vec<(RecordAddress, usize)>> = BTreeMap::new();
    for d in &got {
        let key = d.event.partition_key().unwrap().to_owned();
        by_key
            .entry(key)
            .or_default()
            .push((d.address, number(&d.event)));
    }
    assert_eq!(by_key.len(), KEYS);
    for (key, records) in by_key {
        let partitions: BTreeSet<u32> = records.iter().map(|(a, _)| a.partition).collect();
        assert_eq!(partitions.len(), 1, "{key} spread over {partitions:?}");
        let numbers: Vec<usize> = records.iter().map(|(_, n)| *n).collect();
        let mut sorted = numbers.clone();
        sorted.sort_unstable();
        assert_eq!(numbers, sorted, "{key} out of order");
        let offsets: Vec<u64> = records.iter().map(|(a, _)| a.offset).collect();
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "{key} offsets not increasing"
        );
    }
}

/// A group with no commits can start at the end and see only new records.
pub async fn new_group_can_start_at_the_end(h: &dyn Harness) {
    let log = open_log(h.open().await, "start-end", 1).await;
    append_numbered(&log, "s", 0..3).await;
    let mut consumer = log
        .consumer_with("tail", ConsumerOptions::start(StartFrom::End))
        .await
        .unwrap();
    assert_eq!(consumer.position(0), Some(3));
    assert!(
        consumer
            .poll(10, Duration::from_millis(100))
            .await
            .unwrap()
            .is_empty()
    );
    log.append(&numbered("s", 3)).await.unwrap();
    let got = take(&mut consumer, 1).await;
    assert_eq!(number(&got[0].event), 3);
}

/// Commits past the end or on partitions the member does not own are refused.
pub async fn commits_are_validated(h: &dyn Harness) {
    let log = open_log(h.open().await, "commit-checks", 1).await;
    append_numbered(&log, "s", 0..2).await;
    let mut consumer = log.consumer("g").await.unwrap();
    let err = consumer
        .commit_through(RecordAddress {
            partition: 0,
            offset: 2,
        })
        .await
        .unwrap_err();
    let expected = matches!(err, LogError::OffsetOutOfRange { .. });
    assert!(expected, "got {err:?}");
    let err = consumer
        .commit_through(RecordAddress {
            partition: 3,
            offset: 0,
        })
        .await
        .unwrap_err();
    assert!(missing_a(Missing::Partition, &err), "got {err:?}");
    assert_eq!(
        consumer.committed_offset(0).await.unwrap(),
        None,
        "nothing was committed"
    );
    let err = consumer.committed_offset(9).await.unwrap_err();
    assert!(missing_a(Missing::Partition, &err), "got {err:?}");
}

/// A stored record keeps its key, id and payload, and gets a non-decreasing append time.
pub async fn records_keep_key_id_payload_and_time(h: &dyn Harness) {
    let backend = h.open().await;
    let caps = h.capabilities();
    let log = open_log(Arc::clone(&backend), "fields", 1).await;
    let before = jiff::Timestamp::now() - Duration::from_millis(1);
    let name = log.topic().clone();
    // The edge values where the backend stores them; otherwise plain ones, and the
    // edge values must be refused as unsupported, storing nothing.
    let (id, payload): (u128, &'static [u8]) = (
        if caps.zero_id { 0 } else { 7 },
        if caps.empty_payload { b"" } else { b"2" },
    );
    for (refused, edge_id, edge_payload) in [
        (!caps.zero_id, 0, &b"x"[..]),
        (!caps.empty_payload, 9, &b""[..]),
    ] {
        if refused {
            let err = backend
                .append(
                    &name,
                    0,
                    vec![Record::new(None, edge_id, Bytes::from_static(edge_payload))],
                    AppendOptions::default(),
                )
                .await
                .expect_err("a record the backend cannot store is refused");
            let unsupported = matches!(err, LogError::Unsupported { .. });
            assert!(unsupported, "refused as Unsupported, got {err:?}");
        }
    }
    let records = vec![
        Record::new(
            Some(Bytes::from_static(b"sess-1")),
            u128::MAX - 1,
            Bytes::from_static(b"one"),
        ),
        Record::new(None, id, Bytes::from_static(payload)),
    ];
    let ack = backend
        .append(&name, 0, records, AppendOptions::default())
        .await
        .unwrap();
    assert_eq!((ack.base_offset, ack.last_offset), (0, 1));
    let mut consumer = backend
        .consumer(
            &name,
            &GroupName::new("raw").unwrap(),
            ConsumerOptions::default(),
        )
        .await
        .unwrap();
    let got = consumer.poll(10, POLL).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].key.as_deref(), Some(&b"sess-1"[..]));
    assert_eq!(got[0].id, u128::MAX - 1);
    assert_eq!(&got[0].payload[..], b"one");
    assert_eq!(got[1].key, None);
    assert_eq!(got[1].id, id);
    assert_eq!(&got[1].payload[..], payload);
    assert!(got[0].timestamp >= before, "append time is now");
    assert!(got[0].timestamp <= got[1].timestamp);
    assert_eq!(got[0].timestamp, ack.timestamp);
}

/// `read` returns records by address without a group: a range, clipped at the end,
/// empty past it, and nothing committed for anyone.
pub async fn read_by_address_needs_no_group(h: &dyn Harness) {
    let backend = h.open().await;
    let log = open_log(Arc::clone(&backend), "read", 1).await;
    let written = append_numbered(&log, "s", 0..6).await;
    let name = log.topic().clone();
    let records = backend.read(&name, 0, 2, 3).await.expect("read");
    let offsets: Vec<u64> = records.iter().map(|r| r.address.offset).collect();
    assert_eq!(offsets, vec![2, 3, 4]);
    let first: Event = Event::from_json_slice(&records[0].payload).expect("decode");
    assert_eq!(number(&first), 2);
    assert_eq!(records[0].address, written[2]);
    let tail = backend
        .read(&name, 0, 4, 100)
        .await
        .expect("read to the end");
    assert_eq!(tail.len(), 2, "a read stops at the high-water mark");
    assert!(
        backend
            .read(&name, 0, 6, 10)
            .await
            .expect("read at the end")
            .is_empty()
    );
    assert!(
        backend
            .read(&name, 0, 60, 10)
            .await
            .expect("read past the end")
            .is_empty()
    );
    let err = backend
        .read(&name, 3, 0, 10)
        .await
        .expect_err("no partition 3");
    assert!(missing_a(Missing::Partition, &err), "got {err:?}");
    assert!(
        backend.groups(&name).await.expect("groups").is_empty(),
        "a read commits nothing"
    );
}

/// `trim` may delete records before its offset (as many as the backend can, possibly
/// none) but never one at or after it: those stay readable at their offsets, by `read`
/// and by a new group, and appends go on after them.
pub async fn trim_never_deletes_at_or_after_its_offset(h: &dyn Harness) {
    let backend = h.open().await;
    let log = open_log(Arc::clone(&backend), "trim", 1).await;
    for batch in 0..10 {
        append_numbered(&log, "s", batch * 30..batch * 30 + 30).await;
    }
    let name = log.topic().clone();
    let gone = backend.trim(&name, 0, 150).await.expect("trim");
    let marks = backend.watermarks(&name, 0).await.expect("watermarks");
    assert!(
        gone <= 150,
        "trimmed {gone} records, more than lie before 150"
    );
    assert_eq!(
        marks.low, gone,
        "the low-water mark moves by what was trimmed"
    );
    assert_eq!(marks.high, 300);
    let kept = backend.read(&name, 0, 150, 1000).await.expect("read");
    let offsets: Vec<u64> = kept.iter().map(|r| r.address.offset).collect();
    assert_eq!(offsets, (150..300).collect::<Vec<u64>>());
    let from_start = backend.read(&name, 0, 0, 1).await.expect("read from 0");
    assert_eq!(
        from_start[0].address.offset, marks.low,
        "a read below starts at the lowest held"
    );
    let mut consumer = log.consumer("trim-new").await.expect("consumer");
    let first = take(&mut consumer, 1).await;
    assert_eq!(first[0].address.offset, marks.low);
    assert_eq!(number(&first[0].event), marks.low as usize);
    let at = append_numbered(&log, "s", 300..301).await;
    assert_eq!(at[0].offset, 300, "offsets go on after a trim");
    let again = backend.trim(&name, 0, 0).await.expect("trim before 0");
    assert_eq!(again, 0);
    let err = backend
        .trim(&name, 3, 10)
        .await
        .expect_err("no partition 3");
    assert!(missing_a(Missing::Partition, &err), "got {err:?}");
}

/// On a backend that can store, `append_receipt` stores like `append` and says
/// `Stored` with the offsets it assigned; the typed receipts carry the addresses.
pub async fn append_receipt_of_a_stored_append_has_its_offsets(h: &dyn Harness) {
    let backend = h.open().await;
    let log = open_log(Arc::clone(&backend), "receipt", 1).await;
    append_numbered(&log, "s", 0..2).await;
    let name = log.topic().clone();
    let records: Vec<Record> = (2..5)
        .map(|n| log.record(&numbered("s", n)).expect("encode"))
        .collect();
    let receipt = backend
        .append_receipt(&name, 0, records, AppendOptions::default())
        .await
        .expect("append_receipt");
    let Receipt::Stored(ack) = receipt else {
        panic!("a reachable backend stores: {receipt:?}")
    };
    assert_eq!((ack.partition, ack.base_offset, ack.last_offset), (0, 2, 4));
    assert_eq!(receipt.partition(), 0);
    let events: Vec<Event> = (5..7).map(|n| numbered("s", n)).collect();
    let receipts = log
        .append_batch_receipts(&events, AppendOptions::default())
        .await
        .expect("append_batch_receipts");
    assert_eq!(
        receipts,
        vec![
            EventReceipt::Stored(RecordAddress {
                partition: 0,
                offset: 5
            }),
            EventReceipt::Stored(RecordAddress {
                partition: 0,
                offset: 6
            }),
        ]
    );
    let stored = backend.read(&name, 0, 0, 10).await.expect("read");
    let numbers: Vec<usize> = stored
        .iter()
        .map(|r| number(&Event::from_json_slice(&r.payload).expect("decode")))
        .collect();
    assert_eq!(
        numbers,
        (0..7).collect::<Vec<_>>(),
        "each record once, in order"
    );
    let err = backend
        .append_receipt(&name, 0, Vec::new(), AppendOptions::default())
        .await
        .expect_err("an empty batch");
    assert!(
        std::matches!(err, LogError::EmptyBatch { .. }),
        "got {err:?}"
    );
}
