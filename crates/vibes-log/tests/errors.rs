//! Errors keep what a caller needs: a codec's own error (typed, downcastable), and
//! which kind of thing is missing.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use vibes_log::backend::LogBackend;
use vibes_log::{
    Codec, CodecError, EventLog, InMemoryLog, LogError, LogEvent, Missing, TopicConfig, TopicName,
};

/// A codec's own error type.
#[derive(Debug, PartialEq, Eq)]
struct Refused(u64);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused {}", self.0)
    }
}

impl std::error::Error for Refused {}

struct Number(u64);

impl LogEvent for Number {
    fn event_id(&self) -> u128 {
        u128::from(self.0) + 1
    }

    fn partition_key(&self) -> Option<&str> {
        None
    }
}

/// Encodes numbers as decimal text, refusing to encode 13 and to decode "7".
struct Picky;

impl Codec<Number> for Picky {
    fn encode(&self, event: &Number) -> Result<Vec<u8>, CodecError> {
        if event.0 == 13 {
            return Err(CodecError::new(Refused(13)));
        }
        Ok(event.0.to_string().into_bytes())
    }

    fn decode(&self, payload: &[u8]) -> Result<Number, CodecError> {
        if payload == b"7" {
            return Err(CodecError::new(Refused(7)));
        }
        let text = std::str::from_utf8(payload).map_err(CodecError::new)?;
        text.parse().map(Number).map_err(CodecError::new)
    }
}

async fn picky_log(backend: Arc<InMemoryLog>) -> EventLog<Number, Picky> {
    EventLog::open_with(backend, "t/numbers", TopicConfig::partitions(1), Picky)
        .await
        .expect("open")
}

#[tokio::test]
async fn an_event_that_does_not_encode_is_an_encode_error_with_the_codecs_error() {
    let backend = Arc::new(InMemoryLog::new());
    let log = picky_log(Arc::clone(&backend)).await;
    let err = log.append(&Number(13)).await.expect_err("13 is refused");
    let LogError::Encode { topic, source } = &err else {
        panic!("expected Encode, got {err:?}");
    };
    assert_eq!(topic, "t/numbers");
    assert_eq!(source.downcast_ref::<Refused>(), Some(&Refused(13)));
    assert!(err.to_string().contains("refused 13"), "{err}");
    assert_eq!(log.high_water_mark(0).await.unwrap(), 0, "nothing stored");
}

#[tokio::test]
async fn a_record_that_does_not_decode_keeps_the_codecs_error() {
    let backend = Arc::new(InMemoryLog::new());
    let log = picky_log(Arc::clone(&backend)).await;
    for n in [6, 7, 8] {
        log.append(&Number(n)).await.expect("append");
    }
    let mut consumer = log.consumer("g").await.expect("consumer");
    let batch = consumer
        .poll(10, Duration::from_secs(5))
        .await
        .expect("poll");
    let got: Vec<u64> = batch.events.iter().map(|d| d.event.0).collect();
    assert_eq!(got, [6, 8]);
    assert_eq!(batch.failures.len(), 1);
    let failure = &batch.failures[0];
    assert_eq!(failure.address.offset, 1);
    assert_eq!(failure.source.downcast_ref::<Refused>(), Some(&Refused(7)));
    let source = std::error::Error::source(failure).expect("a source");
    assert_eq!(source.to_string(), "refused 7");
}

#[tokio::test]
async fn not_found_says_what_kind_is_missing() {
    let log = InMemoryLog::new();
    let missing = TopicName::new("t/never").unwrap();
    let err = log.topic_info(&missing).await.unwrap_err();
    assert!(
        matches!(
            err,
            LogError::NotFound {
                kind: Missing::Topic,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "no such topic: t/never");
    let name = TopicName::new("t/two").unwrap();
    log.ensure_topic(&name, TopicConfig::partitions(2))
        .await
        .unwrap();
    let err = log.watermarks(&name, 2).await.unwrap_err();
    assert!(
        matches!(
            err,
            LogError::NotFound {
                kind: Missing::Partition,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "no such partition: 2 of t/two, which has 2"
    );
}
