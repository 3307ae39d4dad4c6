//! Snapshots: a plugin's saved state and the input positions it covers, stored in its
//! `<stream>/snapshots` topic as chunk records (one append per part) followed by one
//! header record (a last, small append). A snapshot counts once its header is stored; the
//! header names how many chunks precede it and their checksum, so finding the newest
//! snapshot reads one small record, and a save cut short between the two appends
//! leaves chunks without a header, which are ignored.
//!
//! The chunks hold the plugin's state, then the part of it only handling needs
//! ([`Plugin::save_for_handling`]), each with its own length and checksum in the
//! header, so a query over a snapshot with nothing after it reads the first only.

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
    /// The state [`Plugin::save`] gave: its chunks, first after the previous snapshot.
    #[serde(flatten)]
    state: Part,
    /// What [`Plugin::save_for_handling`] gave, if anything: its chunks follow the
    /// state's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    handling: Option<Part>,
}

/// One part of a snapshot's bytes, stored as consecutive chunk records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Part {
    /// Chunk records.
    chunks: u32,
    /// Bytes in all.
    len: u64,
    /// XXH3-64 of the bytes.
    checksum: u64,
}

impl Part {
    fn of(bytes: &[u8]) -> Part {
        Part {
            chunks: u32::try_from(bytes.len().div_ceil(CHUNK)).unwrap_or(u32::MAX),
            len: bytes.len() as u64,
            checksum: xxhash_rust::xxh3::xxh3_64(bytes),
        }
    }
}

impl Header {
    /// Chunk records before the header.
    fn chunks(&self) -> u64 {
        u64::from(self.state.chunks) + self.handling.map_or(0, |h| u64::from(h.chunks))
    }
}

/// A loaded snapshot: its state, and the part only handling needs if it has one and
/// it was asked for.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// Where its header is stored.
    pub(crate) at: Offset,
    pub(crate) header: Header,
    state: Vec<u8>,
    handling: Option<Vec<u8>>,
}

/// Whether a restored plugin still lacks the part of its state that only handling
/// needs: it then answers queries but must get that part before it handles or saves.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    at: Offset,
    header: Header,
}

impl Snapshot {
    /// Restores `plugin` from it; returns its header and, when the part only handling
    /// needs was not loaded, what completes the restore. `None`, with a warning, when
    /// the plugin refuses the bytes (a full replay follows).
    pub(crate) fn restore_into(self, plugin: &mut dyn Plugin) -> Option<(Header, Option<Pending>)> {
        let name = plugin.manifest().name;
        let warn = |e: crate::PluginError| {
            tracing::warn!(plugin = %name, error = %e, "the stored snapshot does not restore; replaying everything");
        };
        if let Err(e) = plugin.restore(&self.state) {
            warn(e);
            return None;
        }
        let pending = match (&self.header.handling, self.handling) {
            (None, _) => None,
            (Some(_), Some(bytes)) => {
                if let Err(e) = plugin.restore_for_handling(&bytes) {
                    warn(e);
                    return None;
                }
                None
            }
            (Some(_), None) => Some(Pending {
                at: self.at,
                header: self.header.clone(),
            }),
        };
        Some((self.header, pending))
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
                Err(vibes_log::LogError::NotFound {
                    kind: vibes_log::Missing::Topic,
                    ..
                }) => return Ok(None),
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

    /// The newest snapshot, checked; the part only handling needs is read when
    /// `handling` says so for the snapshot's positions.
    pub(crate) async fn load_latest(
        &self,
        handling: impl FnOnce(&BTreeMap<u32, Offset>) -> bool,
    ) -> Result<Option<Snapshot>, RuntimeError> {
        let Some((at, header)) = self.latest_header().await? else {
            return Ok(None);
        };
        let chunks = header.chunks();
        if chunks > at {
            return Err(self.stored(at, format!("it names {chunks} chunks before it")));
        }
        let first = at - chunks;
        let state = self.read_part(at, first, header.state, "state").await?;
        let handling = match header.handling {
            Some(part) if handling(&header.positions) => {
                let from = first + u64::from(header.state.chunks);
                Some(self.read_part(at, from, part, "handling part").await?)
            }
            _ => None,
        };
        Ok(Some(Snapshot {
            at,
            header,
            state,
            handling,
        }))
    }

    /// The part only handling needs of a snapshot restored without it.
    pub(crate) async fn load_pending(&self, pending: &Pending) -> Result<Vec<u8>, RuntimeError> {
        let Some(part) = pending.header.handling else {
            return Ok(Vec::new());
        };
        let from = pending.at - pending.header.chunks() + u64::from(pending.header.state.chunks);
        self.read_part(pending.at, from, part, "handling part")
            .await
    }

    /// Restores into `plugin` the part of a pending snapshot that [`load_pending`]
    /// read.
    pub(crate) fn restore_pending(
        &self,
        pending: &Pending,
        bytes: &[u8],
        plugin: &mut dyn Plugin,
    ) -> Result<(), RuntimeError> {
        plugin.restore_for_handling(bytes).map_err(|e| {
            self.stored(
                pending.at,
                format!("the part only handling needs does not restore: {e}"),
            )
        })
    }

    /// The bytes of `part`, stored from offset `from` for a header at `at`, checked.
    async fn read_part(
        &self,
        at: Offset,
        from: Offset,
        part: Part,
        what: &str,
    ) -> Result<Vec<u8>, RuntimeError> {
        let end = from + u64::from(part.chunks);
        let mut bytes = Vec::with_capacity(usize::try_from(part.len).unwrap_or(0));
        let mut next = from;
        while next < end {
            let records = self
                .backend
                .read(
                    &self.topic,
                    0,
                    next,
                    usize::try_from(end - next).unwrap_or(1),
                )
                .await
                .map_err(|e| {
                    RuntimeError::log(&self.plugin, format!("reading {}", self.topic), e)
                })?;
            if records.is_empty() {
                return Err(self.stored(next, format!("a chunk of its {what} is missing")));
            }
            for r in records.into_iter().take_while(|r| r.address.offset < end) {
                next = r.address.offset + 1;
                bytes.extend_from_slice(&r.payload);
            }
        }
        if bytes.len() as u64 != part.len || xxhash_rust::xxh3::xxh3_64(&bytes) != part.checksum {
            return Err(self.stored(
                at,
                format!("the chunks of its {what} do not match its length and checksum"),
            ));
        }
        Ok(bytes)
    }

    /// The newest snapshot a plugin of manifest `version` reading `input` on exactly
    /// `partitions` can restore (with the part only handling needs when `handling`
    /// says so for its positions); `None`, with a warning saying why, when the stored
    /// one is of another version or input, or does not load (a full replay follows).
    pub(crate) async fn load_usable(
        &self,
        version: u32,
        input: &str,
        partitions: &[u32],
        handling: impl FnOnce(&BTreeMap<u32, Offset>) -> bool,
    ) -> Option<Snapshot> {
        let plugin = &self.plugin;
        match self.load_latest(handling).await {
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

    /// Stores `state` (and `handling`, the part only handling needs) as covering
    /// `positions`, unless the newest snapshot already covers exactly them (a restart
    /// repeating a save). Returns whether it stored.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn save(
        &self,
        version: u32,
        input: &str,
        positions: BTreeMap<u32, Offset>,
        handled: u64,
        state: &[u8],
        handling: Option<&[u8]>,
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
        let header = Header {
            magic: HEADER_MAGIC.to_owned(),
            version,
            input: input.to_owned(),
            positions,
            handled,
            state: Part::of(state),
            handling: handling.map(Part::of),
        };
        let header_bytes = serde_json::to_vec(&header).map_err(|e| RuntimeError::Stored {
            plugin: self.plugin.clone(),
            reason: format!("encoding a snapshot header: {e}"),
        })?;
        let id_base = xxhash_rust::xxh3::xxh3_128(&header_bytes);
        let record = |i: usize, chunk: &[u8]| {
            Record::new(
                None,
                id_base.wrapping_add(i as u128 + 1),
                Bytes::copy_from_slice(chunk),
            )
        };
        let state_records: Vec<Record> = state
            .chunks(CHUNK)
            .enumerate()
            .map(|(i, chunk)| record(i, chunk))
            .collect();
        let first_handling = state_records.len();
        let handling_records: Vec<Record> = handling
            .into_iter()
            .flat_map(|h| h.chunks(CHUNK))
            .enumerate()
            .map(|(i, chunk)| record(first_handling + i, chunk))
            .collect();
        let saving = |e| {
            RuntimeError::log(
                &self.plugin,
                format!("saving a snapshot to {}", self.topic),
                e,
            )
        };
        // One append per part: a log may store an append as one unit that is read
        // whole, and the state must be readable without the part after it.
        for records in [state_records, handling_records] {
            if !records.is_empty() {
                self.backend
                    .append(&self.topic, 0, records, options)
                    .await
                    .map_err(saving)?;
            }
        }
        let header_record = vec![Record::new(None, id_base, header_bytes)];
        self.backend
            .append(&self.topic, 0, header_record, options)
            .await
            .map_err(saving)?;
        // This snapshot and the one before it stay (a reader may be loading that one);
        // older ones are superseded, and the backend drops what it can of them.
        if let Some((at, last)) = previous {
            let first = at.saturating_sub(last.chunks());
            if let Err(e) = self.backend.trim(&self.topic, 0, first).await {
                tracing::warn!(plugin = %self.plugin, topic = %self.topic, "cannot trim older snapshots: {e}");
            }
        }
        Ok(true)
    }
}
