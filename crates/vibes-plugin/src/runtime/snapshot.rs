//! Snapshots: a plugin's saved state and the input positions it covers, stored in its
//! `<stream>/snapshots` topic as chunk records (one append) followed by one header
//! record (a second, small append). A snapshot counts once its header is stored; the
//! header names how many chunks precede it and their checksum, so finding the newest
//! snapshot reads one small record, and a save cut short between the two appends
//! leaves chunks without a header, which are ignored.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use vibes_log::backend::{LogBackend, Record};
use vibes_log::{AppendOptions, Offset, TopicConfig, TopicName};

use crate::error::RuntimeError;
use crate::plugin::Plugin;

/// Largest chunk of state per record: well under the log's payload limit.
const CHUNK: usize = 8 * 1024 * 1024;

/// Marks a header record, so chunks are never read as headers.
const HEADER_MAGIC: &str = "vibes-plugin-snapshot/v1";

/// What a snapshot header says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Header {
    magic: String,
    /// The manifest version that saved it.
    pub(crate) version: u32,
    /// The input topic.
    pub(crate) input: String,
    /// Per input partition, the next offset to read after the snapshot.
    pub(crate) positions: BTreeMap<u32, Offset>,
    /// Events handled up to it.
    pub(crate) handled: u64,
    /// Chunk records before the header.
    chunks: u32,
    /// State bytes in all.
    len: u64,
    /// XXH3-64 of the state bytes.
    checksum: u64,
}

/// A loaded snapshot.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) header: Header,
    pub(crate) state: Vec<u8>,
}

impl Snapshot {
    /// Restores `plugin` from it; returns its header, or `None` with a warning when the
    /// plugin refuses the bytes (a full replay follows).
    pub(crate) fn restore_into(self, plugin: &mut dyn Plugin) -> Option<Header> {
        match plugin.restore(&self.state) {
            Ok(()) => Some(self.header),
            Err(e) => {
                tracing::warn!(plugin = %plugin.manifest().name, error = %e, "the stored snapshot does not restore; replaying everything");
                None
            }
        }
    }
}

pub(crate) struct SnapshotStore {
    backend: Arc<dyn LogBackend>,
    topic: TopicName,
    plugin: String,
}

impl std::fmt::Debug for SnapshotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotStore")
            .field("topic", &self.topic)
            .finish()
    }
}

impl SnapshotStore {
    pub(crate) async fn open(
        backend: Arc<dyn LogBackend>,
        topic: &str,
        plugin: &str,
        create: bool,
    ) -> Result<Option<Self>, RuntimeError> {
        let name = TopicName::new(topic)
            .map_err(|e| RuntimeError::log(plugin, format!("naming {topic}"), e))?;
        if create {
            backend
                .ensure_topic(&name, TopicConfig::partitions(1))
                .await
                .map_err(|e| RuntimeError::log(plugin, format!("creating {topic}"), e))?;
        } else {
            match backend.topic_info(&name).await {
                Ok(_) => {}
                Err(vibes_log::LogError::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(RuntimeError::log(plugin, format!("opening {topic}"), e)),
            }
        }
        Ok(Some(SnapshotStore {
            backend,
            topic: name,
            plugin: plugin.to_owned(),
        }))
    }

    fn stored(&self, offset: Offset, reason: impl std::fmt::Display) -> RuntimeError {
        RuntimeError::Stored {
            plugin: self.plugin.clone(),
            reason: format!("snapshot at {} offset {offset}: {reason}", self.topic),
        }
    }

    /// The newest snapshot's header and its offset, if any.
    pub(crate) async fn latest_header(&self) -> Result<Option<(Offset, Header)>, RuntimeError> {
        let marks =
            self.backend.watermarks(&self.topic, 0).await.map_err(|e| {
                RuntimeError::log(&self.plugin, format!("reading {}", self.topic), e)
            })?;
        if marks.is_empty() {
            return Ok(None);
        }
        let at = marks.high - 1;
        let records = self
            .backend
            .read(&self.topic, 0, at, 1)
            .await
            .map_err(|e| RuntimeError::log(&self.plugin, format!("reading {}", self.topic), e))?;
        let Some(record) = records.first() else {
            return Ok(None);
        };
        match serde_json::from_slice::<Header>(&record.payload) {
            Ok(header) if header.magic == HEADER_MAGIC => Ok(Some((at, header))),
            _ => {
                tracing::warn!(plugin = %self.plugin, topic = %self.topic, offset = at, "the newest record is not a snapshot header (a save cut short); no snapshot is used until the next one is saved");
                Ok(None)
            }
        }
    }

    /// The newest snapshot, whole and checked.
    pub(crate) async fn load_latest(&self) -> Result<Option<Snapshot>, RuntimeError> {
        let Some((at, header)) = self.latest_header().await? else {
            return Ok(None);
        };
        let chunks = u64::from(header.chunks);
        if chunks > at {
            return Err(self.stored(at, format!("it names {chunks} chunks before it")));
        }
        let mut state = Vec::with_capacity(usize::try_from(header.len).unwrap_or(0));
        let mut next = at - chunks;
        while next < at {
            let records = self
                .backend
                .read(
                    &self.topic,
                    0,
                    next,
                    usize::try_from(at - next).unwrap_or(1),
                )
                .await
                .map_err(|e| {
                    RuntimeError::log(&self.plugin, format!("reading {}", self.topic), e)
                })?;
            if records.is_empty() {
                return Err(self.stored(next, "a chunk is missing"));
            }
            for r in records.into_iter().take_while(|r| r.address.offset < at) {
                next = r.address.offset + 1;
                state.extend_from_slice(&r.payload);
            }
        }
        if state.len() as u64 != header.len || xxhash_rust::xxh3::xxh3_64(&state) != header.checksum
        {
            return Err(self.stored(at, "its chunks do not match its length and checksum"));
        }
        Ok(Some(Snapshot { header, state }))
    }

    /// The newest snapshot a plugin of manifest `version` reading `input` on exactly
    /// `partitions` can restore; `None`, with a warning saying why, when the stored one
    /// is of another version or input, or does not load (a full replay follows).
    pub(crate) async fn load_usable(
        &self,
        version: u32,
        input: &str,
        partitions: &[u32],
    ) -> Option<Snapshot> {
        let plugin = &self.plugin;
        match self.load_latest().await {
            Ok(Some(snapshot)) => {
                let header = &snapshot.header;
                if header.version == version
                    && header.input == input
                    && header
                        .positions
                        .keys()
                        .copied()
                        .eq(partitions.iter().copied())
                {
                    Some(snapshot)
                } else {
                    tracing::warn!(%plugin, "the stored snapshot is of another version or input; replaying everything");
                    None
                }
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(%plugin, error = %e, "cannot load the stored snapshot; replaying everything");
                None
            }
        }
    }

    /// Stores `state` as covering `positions`, unless the newest snapshot already
    /// covers exactly them (a restart repeating a save). Returns whether it stored.
    pub(crate) async fn save(
        &self,
        version: u32,
        input: &str,
        positions: BTreeMap<u32, Offset>,
        handled: u64,
        state: &[u8],
        options: AppendOptions,
    ) -> Result<bool, RuntimeError> {
        let previous = self.latest_header().await?;
        if let Some((_, last)) = &previous
            && last.version == version
            && last.input == input
            && last.positions == positions
        {
            return Ok(false);
        }
        let chunks: Vec<&[u8]> = state.chunks(CHUNK).collect();
        let header = Header {
            magic: HEADER_MAGIC.to_owned(),
            version,
            input: input.to_owned(),
            positions,
            handled,
            chunks: u32::try_from(chunks.len()).unwrap_or(u32::MAX),
            len: state.len() as u64,
            checksum: xxhash_rust::xxh3::xxh3_64(state),
        };
        let header_bytes = serde_json::to_vec(&header).map_err(|e| RuntimeError::Stored {
            plugin: self.plugin.clone(),
            reason: format!("encoding a snapshot header: {e}"),
        })?;
        let id_base = xxhash_rust::xxh3::xxh3_128(&header_bytes);
        let records: Vec<Record> = chunks
            .iter()
            .enumerate()
            .map(|(i, chunk)| {
                Record::new(
                    None,
                    id_base.wrapping_add(i as u128 + 1),
                    Bytes::copy_from_slice(chunk),
                )
            })
            .collect();
        let saving = |e| {
            RuntimeError::log(
                &self.plugin,
                format!("saving a snapshot to {}", self.topic),
                e,
            )
        };
        if !records.is_empty() {
            self.backend
                .append(&self.topic, 0, records, options)
                .await
                .map_err(saving)?;
        }
        let header_record = vec![Record::new(None, id_base, header_bytes)];
        self.backend
            .append(&self.topic, 0, header_record, options)
            .await
            .map_err(saving)?;
        // This snapshot and the one before it stay (a reader may be loading that one);
        // older ones are superseded, and the backend drops what it can of them.
        if let Some((at, last)) = previous {
            let first = at.saturating_sub(u64::from(last.chunks));
            if let Err(e) = self.backend.trim(&self.topic, 0, first).await {
                tracing::warn!(plugin = %self.plugin, topic = %self.topic, "cannot trim older snapshots: {e}");
            }
        }
        Ok(true)
    }
}
