//! The pieces of the log model that every backend shares.

use std::io;

use vibes_log::backend::partition_for_key;
use vibes_log::{LogError, RecordAddress, TopicName};

#[test]
fn partition_for_key_is_stable_across_versions_and_backends() {
    // Pinned: changing the hash would move every key to another partition in existing
    // logs and break per-key order across an upgrade.
    assert_eq!(
        partition_for_key(Some(b"sess-1"), 8),
        partition_for_key(Some(b"sess-1"), 8)
    );
    let spread: Vec<u32> = (0..8)
        .map(|i| partition_for_key(Some(format!("session-{i}").as_bytes()), 4))
        .collect();
    assert_eq!(spread, PINNED);
    assert_eq!(
        partition_for_key(None, 8),
        0,
        "keyless records go to partition 0"
    );
    assert_eq!(partition_for_key(Some(b"anything"), 1), 0);
}

/// XXH3-64 (seed 0) of `session-0` .. `session-7`, modulo 4, as computed by the
/// reference implementation (Python `xxhash.xxh3_64_intdigest`).
const PINNED: [u32; 8] = [1, 1, 0, 3, 3, 3, 3, 0];

#[test]
fn topic_names_split_into_stream_and_topic() {
    let name = TopicName::new("vibes/claude-events.v1").unwrap();
    assert_eq!(name.stream(), "vibes");
    assert_eq!(name.topic(), "claude-events.v1");
    assert_eq!(name.to_string(), "vibes/claude-events.v1");
    let err = TopicName::new("vibes/../../etc").unwrap_err();
    assert!(err.to_string().contains("vibes/../../etc"), "{err}");
}

#[test]
fn only_retryable_errors_are_transient() {
    let io = |kind| LogError::io("writing segment", io::Error::from(kind));
    assert!(io(io::ErrorKind::Interrupted).is_transient());
    assert!(io(io::ErrorKind::TimedOut).is_transient());
    assert!(!io(io::ErrorKind::PermissionDenied).is_transient());
    assert!(!LogError::Closed.is_transient());
    assert!(
        !LogError::Poisoned {
            reason: "fsync failed".into()
        }
        .is_transient()
    );
    let backend = |transient| LogError::Backend {
        message: "x".into(),
        transient,
        source: None,
    };
    assert!(backend(true).is_transient());
    assert!(!backend(false).is_transient());
}

#[test]
fn errors_name_what_and_where() {
    let err = LogError::OffsetOutOfRange {
        topic: "vibes/events".into(),
        partition: 2,
        requested: "offset 99".into(),
        low: 0,
        high: 10,
    };
    assert_eq!(
        err.to_string(),
        "offset 99 is out of range for vibes/events partition 2: it holds offsets 0..10"
    );
    let address = RecordAddress {
        partition: 1,
        offset: 7,
    };
    assert_eq!(address.to_string(), "partition 1 offset 7");
}
