//! Decoding input records for a plugin, on the spot or on the blocking pool while the
//! plugin handles the batch before: the one rule for runs and rebuilds.

use std::sync::Arc;

use tokio::task::JoinHandle;
use vibes_events::{Event, Filter};
use vibes_log::backend::StoredRecord;
use vibes_log::{EventBatch, JsonCodec, LogError};

use crate::error::RuntimeError;

/// What decoding needs: the input's name and the plugin's filter. Records the filter
/// does not want are passed over from their type and source, undecoded.
#[derive(Debug, Clone)]
pub(super) struct Decoder {
    topic: Arc<str>,
    filter: Arc<Filter>,
}

impl Decoder {
    pub(super) fn new(topic: &str, filter: &Filter) -> Self {
        Decoder {
            topic: Arc::from(topic),
            filter: Arc::new(filter.clone()),
        }
    }

    /// Decodes `records` here (the wanted ones on every core, see
    /// [`vibes_log::decode_batch`]).
    pub(super) fn decode(&self, records: Vec<StoredRecord>) -> EventBatch<Event> {
        vibes_log::decode_batch(&JsonCodec, &self.topic, records, |r| {
            self.filter.matches_json(&r.payload)
        })
    }

    /// Starts decoding `records` on the blocking pool; [`Decoder::finish`] waits for it.
    pub(super) fn spawn(&self, records: Vec<StoredRecord>) -> JoinHandle<EventBatch<Event>> {
        let decoder = self.clone();
        tokio::task::spawn_blocking(move || decoder.decode(records))
    }

    /// The batch a [`Decoder::spawn`] decodes. A codec that panics panics the caller,
    /// as it would without threads; a decode cancelled because the runtime shuts down is
    /// an error of `plugin`.
    pub(super) async fn finish(
        &self,
        decoding: JoinHandle<EventBatch<Event>>,
        plugin: &str,
    ) -> Result<EventBatch<Event>, RuntimeError> {
        match decoding.await {
            Ok(batch) => Ok(batch),
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => Err(RuntimeError::log(
                    plugin,
                    format!("decoding {}", self.topic),
                    LogError::Closed,
                )),
            },
        }
    }
}
