//! Keys restored from a snapshot and not touched since: their saved bytes and a
//! directory sorted by key, so a query about one key decodes that key only, and a save
//! copies the untouched ones as they are.
//!
//! The saved state is laid out as:
//!
//! ```text
//! magic  "vibes-sessions/4\n"
//! u64    events stored more than once
//! u32    keys, then per key, in ascending key order:
//!   u32 + bytes   the key (UTF-8)
//!   u32 + bytes   its statistics as JSON (length 0: none)
//!   u32 + runs    its address runs, 20 bytes each (u32 partition, u64 start, u64 len)
//!   u64           how many id fingerprints it holds (saved apart, see `Plugin::save_for_handling`)
//! ```
//!
//! All numbers little-endian. The fingerprints, 8 bytes each, are saved apart key by
//! key in the same order.

use std::ops::Range;

use crate::index::{AddressIndex, Run};
use crate::seen::Seen;
use crate::stats::SessionStats;

/// The first bytes of a saved state.
pub(crate) const MAGIC: &[u8] = b"vibes-sessions/4\n";

/// Bytes of one address run.
const RUN: usize = 20;

/// Where one key's parts are in the saved bytes.
#[derive(Debug, Clone)]
struct Entry {
    /// The whole entry, to copy it as it is.
    raw: Range<usize>,
    key: Range<usize>,
    stats: Range<usize>,
    runs: Range<usize>,
    /// Fingerprints it holds, and where they start (counted in fingerprints) in the
    /// part saved apart.
    ids: u64,
    ids_from: u64,
    /// Taken out to be changed: no longer this directory's.
    thawed: bool,
}

/// The restored keys not yet taken out.
#[derive(Debug, Default)]
pub(crate) struct Frozen {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
    /// The fingerprints of every entry, once restored.
    ids: Option<Vec<u8>>,
}

/// A reader over the saved bytes that says where they do not fit.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<Range<usize>, String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "{what} needs {n} bytes at byte {}, {} are left",
                    self.at,
                    self.bytes.len() - self.at
                )
            })?;
        let range = self.at..end;
        self.at = end;
        Ok(range)
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let r = self.take(4, what)?;
        Ok(u32::from_le_bytes(
            self.bytes[r].try_into().unwrap_or([0; 4]),
        ))
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        let r = self.take(8, what)?;
        Ok(u64::from_le_bytes(
            self.bytes[r].try_into().unwrap_or([0; 8]),
        ))
    }

    fn len(&mut self, what: &str) -> Result<usize, String> {
        usize::try_from(self.u32(what)?).map_err(|e| format!("{what}: {e}"))
    }
}

impl Frozen {
    /// Reads the directory of a saved state; returns it and the count of events stored
    /// more than once. `Ok(None)` when `bytes` are of another format.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Option<(Frozen, u64)>, String> {
        if !bytes.starts_with(MAGIC) {
            return Ok(None);
        }
        let mut c = Cursor {
            bytes,
            at: MAGIC.len(),
        };
        let duplicates = c.u64("the count of repeated events")?;
        let keys = c.u32("the count of keys")?;
        let mut entries = Vec::with_capacity(keys.min(1 << 20) as usize);
        let mut ids_from = 0u64;
        for n in 0..keys {
            let start = c.at;
            let len = c.len("a key's length")?;
            let key = c.take(len, "a key")?;
            let name = std::str::from_utf8(&bytes[key.clone()])
                .map_err(|e| format!("key {n} is not UTF-8: {e}"))?;
            if let Some(last) = entries.last() {
                let last: &Entry = last;
                if bytes[last.key.clone()] >= *name.as_bytes() {
                    return Err(format!("key {name} is not after the key before it"));
                }
            }
            let in_key = |e: String| format!("key {name}: {e}");
            let len = c.len("the length of its statistics").map_err(in_key)?;
            let stats = c.take(len, "its statistics").map_err(in_key)?;
            let runs = c.len("its count of address runs").map_err(in_key)?;
            let runs = runs
                .checked_mul(RUN)
                .ok_or_else(|| in_key("too many address runs".to_owned()))?;
            let runs = c.take(runs, "its address runs").map_err(in_key)?;
            let ids = c.u64("its count of ids").map_err(in_key)?;
            entries.push(Entry {
                raw: start..c.at,
                key,
                stats,
                runs,
                ids,
                ids_from,
                thawed: false,
            });
            ids_from = ids_from
                .checked_add(ids)
                .ok_or("the counts of ids overflow")?;
        }
        if c.at != bytes.len() {
            return Err(format!("{} bytes follow the last key", bytes.len() - c.at));
        }
        let frozen = Frozen {
            bytes: bytes.to_vec(),
            entries,
            ids: None,
        };
        Ok(Some((frozen, duplicates)))
    }

    /// Takes the fingerprints saved apart; the error says what does not fit.
    pub(crate) fn restore_ids(&mut self, ids: &[u8]) -> Result<(), String> {
        let expected: u64 = self.entries.iter().map(|e| e.ids).sum();
        if ids.len() as u64 != expected.saturating_mul(8) {
            return Err(format!(
                "the state names {expected} ids, the part saved apart holds {} bytes",
                ids.len()
            ));
        }
        let numbers = |bytes: &[u8]| -> Vec<u64> {
            bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect()
        };
        for e in &self.entries {
            let mine =
                numbers(&ids[(e.ids_from * 8) as usize..((e.ids_from + e.ids) * 8) as usize]);
            if mine.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!(
                    "the ids of key {} are not in ascending order",
                    self.key(e)
                ));
            }
        }
        self.ids = Some(ids.to_vec());
        Ok(())
    }

    fn key(&self, e: &Entry) -> &str {
        std::str::from_utf8(&self.bytes[e.key.clone()]).unwrap_or_default()
    }

    /// The entry of `key`, if it is still here.
    fn find(&self, key: &str) -> Option<usize> {
        let i = self
            .entries
            .binary_search_by(|e| self.bytes[e.key.clone()].cmp(key.as_bytes()))
            .ok()?;
        (!self.entries[i].thawed).then_some(i)
    }

    /// Whether keys are here whose fingerprints are not restored yet.
    pub(crate) fn lacks_ids(&self) -> bool {
        self.ids.is_none() && self.entries.iter().any(|e| !e.thawed && e.ids > 0)
    }

    fn stats_of(&self, e: &Entry) -> Result<Option<SessionStats>, String> {
        if e.stats.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&self.bytes[e.stats.clone()])
            .map(Some)
            .map_err(|err| format!("the statistics of key {}: {err}", self.key(e)))
    }

    fn index_of(&self, e: &Entry) -> AddressIndex {
        let runs = self.bytes[e.runs.clone()]
            .chunks_exact(RUN)
            .map(|r| Run {
                partition: u32::from_le_bytes(r[0..4].try_into().unwrap_or([0; 4])),
                start: u64::from_le_bytes(r[4..12].try_into().unwrap_or([0; 8])),
                len: u64::from_le_bytes(r[12..20].try_into().unwrap_or([0; 8])),
            })
            .collect();
        AddressIndex::from_runs(runs)
    }

    /// The statistics of `key`, if it is here and has some.
    pub(crate) fn stats(&self, key: &str) -> Result<Option<SessionStats>, String> {
        match self.find(key) {
            Some(i) => self.stats_of(&self.entries[i]),
            None => Ok(None),
        }
    }

    /// The addresses of `key`, if it is here.
    pub(crate) fn index(&self, key: &str) -> Option<AddressIndex> {
        self.find(key).map(|i| self.index_of(&self.entries[i]))
    }

    /// The statistics of every key still here that has some, in key order.
    pub(crate) fn all_stats(&self) -> Result<Vec<SessionStats>, String> {
        self.entries
            .iter()
            .filter(|e| !e.thawed)
            .filter_map(|e| self.stats_of(e).transpose())
            .collect()
    }

    /// Takes `key` out to be changed: its statistics, addresses and fingerprints.
    /// `None` when it is not here. The fingerprints must have been restored.
    pub(crate) fn thaw(
        &mut self,
        key: &str,
    ) -> Result<Option<(Option<SessionStats>, AddressIndex, Seen)>, String> {
        let Some(i) = self.find(key) else {
            return Ok(None);
        };
        let e = &self.entries[i];
        let Some(ids) = &self.ids else {
            return Err(format!(
                "key {key} is changed before the ids saved apart were restored"
            ));
        };
        let seen =
            Seen::read_from(&ids[(e.ids_from * 8) as usize..((e.ids_from + e.ids) * 8) as usize])
                .map_err(|err| format!("key {key}: {err}"))?;
        let taken = (self.stats_of(e)?, self.index_of(e), seen);
        self.entries[i].thawed = true;
        Ok(Some(taken))
    }

    /// The keys still here, ascending.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|e| !e.thawed)
            .map(|e| self.key(e))
    }

    /// Appends the saved entry of `key` as it was restored.
    pub(crate) fn write_entry(&self, key: &str, out: &mut Vec<u8>) {
        if let Some(i) = self.find(key) {
            out.extend_from_slice(&self.bytes[self.entries[i].raw.clone()]);
        }
    }

    /// Appends the fingerprints of `key` (none before they are restored).
    pub(crate) fn write_ids(&self, key: &str, out: &mut Vec<u8>) {
        if let (Some(i), Some(ids)) = (self.find(key), &self.ids) {
            let e = &self.entries[i];
            out.extend_from_slice(
                &ids[(e.ids_from * 8) as usize..((e.ids_from + e.ids) * 8) as usize],
            );
        }
    }

    /// Fingerprints of the keys still here.
    pub(crate) fn id_count(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| !e.thawed)
            .map(|e| e.ids)
            .sum()
    }
}

/// Appends one key's saved entry (the layout in the module doc).
pub(crate) fn write_entry(
    out: &mut Vec<u8>,
    key: &str,
    stats: Option<&SessionStats>,
    index: &AddressIndex,
    ids: u64,
) -> Result<(), serde_json::Error> {
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    let at = out.len();
    out.extend_from_slice(&0u32.to_le_bytes());
    if let Some(stats) = stats {
        serde_json::to_writer(&mut *out, stats)?;
        let len = (out.len() - at - 4) as u32;
        out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }
    out.extend_from_slice(&(index.runs().len() as u32).to_le_bytes());
    for run in index.runs() {
        out.extend_from_slice(&run.partition.to_le_bytes());
        out.extend_from_slice(&run.start.to_le_bytes());
        out.extend_from_slice(&run.len.to_le_bytes());
    }
    out.extend_from_slice(&ids.to_le_bytes());
    Ok(())
}
