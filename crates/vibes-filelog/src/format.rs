//! The on-disk format, byte by byte (docs/FORMAT.md is the prose version). Everything
//! is little-endian. These functions are pure: they never touch a file, never panic on
//! any input, and are what the fuzz targets exercise.
//!
//! Segment file `<base offset, 20 digits>.log`:
//!
//! ```text
//! header  (24 bytes)  magic "VIBESLOG" | version u32 = 1 | synced_mark u32 | base_offset u64
//! batch*
//! ```
//!
//! Batch (one per append; a crash keeps all of it or none):
//!
//! ```text
//! len u32            bytes after this field
//! crc u32            CRC32C of every byte after this field
//! base_offset u64    offset of the first record
//! timestamp_us i64   append time, microseconds since the Unix epoch
//! count u32          records in the batch (at least 1)
//! record*count:
//!   len u32          bytes after this field
//!   id u128          event id
//!   key_len u32      key length, or 0xFFFF_FFFF for no key
//!   key              key_len bytes
//!   payload          the rest of the record
//! ```
//!
//! The synced mark says how many bytes of the segment a completed data fsync covered;
//! 0 means unknown (segments written before it existed).
//!
//! Index file `<base offset, 20 digits>.idx`: header (24 bytes, magic "VIBESIDX", same
//! layout, synced mark 0), then 16-byte entries `relative_offset u32 | position u32 | timestamp_us i64`:
//! the batch whose first record is `base + relative_offset` starts at byte `position`
//! of the segment and was appended at `timestamp_us`. Entries are sparse (one per
//! `index_interval` bytes of log) and strictly increasing.

use bytes::{Buf, Bytes};

/// Segment file magic.
pub const SEGMENT_MAGIC: [u8; 8] = *b"VIBESLOG";
/// Index file magic.
pub const INDEX_MAGIC: [u8; 8] = *b"VIBESIDX";
/// Format version written and understood.
pub const VERSION: u32 = 1;
/// Size of a segment or index header.
pub const HEADER_LEN: usize = 24;
/// Bytes of a batch before its records: len, crc, base_offset, timestamp, count.
pub const BATCH_HEADER_LEN: usize = 4 + 4 + 8 + 8 + 4;
/// Bytes of a record before its key: len, id, key_len.
pub const RECORD_HEADER_LEN: usize = 4 + 16 + 4;
/// Size of an index entry.
pub const INDEX_ENTRY_LEN: usize = 16;
/// Largest batch accepted when reading (1 GiB): a larger length field is damage.
pub const MAX_BATCH_LEN: usize = 1 << 30;

/// Byte position, in a segment header, of the synced mark (a `u32`).
pub const SYNCED_MARK: usize = 12;

const NO_KEY: u32 = u32::MAX;

/// A record inside a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameRecord {
    /// Event id.
    pub id: u128,
    /// Key, if any.
    pub key: Option<Bytes>,
    /// Payload.
    pub payload: Bytes,
}

/// A decoded batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Offset of the first record.
    pub base_offset: u64,
    /// Append time, microseconds since the Unix epoch.
    pub timestamp_us: i64,
    /// The records, at least one.
    pub records: Vec<FrameRecord>,
    /// Bytes the batch occupies in the segment, length field included.
    pub frame_len: usize,
}

/// Why bytes are not a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The bytes end before the batch does: it is `needed` bytes long in all.
    #[error("incomplete batch: {needed} bytes needed, {available} available")]
    Incomplete {
        /// Bytes the batch says it has, length field included (or the minimum header).
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The batch is complete but wrong.
    #[error("{0}")]
    Invalid(String),
}

/// Appends the frame of a batch to `out`. `records` yields (id, key, payload).
pub fn encode_batch<'a>(
    out: &mut Vec<u8>,
    base_offset: u64,
    timestamp_us: i64,
    records: impl ExactSizeIterator<Item = (u128, Option<&'a [u8]>, &'a [u8])>,
) {
    let start = out.len();
    out.extend_from_slice(&[0; 8]); // len and crc, filled in below
    out.extend_from_slice(&base_offset.to_le_bytes());
    out.extend_from_slice(&timestamp_us.to_le_bytes());
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for (id, key, payload) in records {
        let key_len = key.map_or(0, <[u8]>::len);
        let len = 16 + 4 + key_len + payload.len();
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&key.map_or(NO_KEY, |k| k.len() as u32).to_le_bytes());
        if let Some(key) = key {
            out.extend_from_slice(key);
        }
        out.extend_from_slice(payload);
    }
    let len = (out.len() - start - 4) as u32;
    let crc = crc32c::crc32c(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Size in bytes of the batch frame `encode_batch` writes for records with these key
/// and payload lengths.
pub fn batch_frame_len(records: impl Iterator<Item = (Option<usize>, usize)>) -> usize {
    BATCH_HEADER_LEN
        + records
            .map(|(key, payload)| RECORD_HEADER_LEN + key.unwrap_or(0) + payload)
            .sum::<usize>()
}

/// The total length (length field included) a batch at the start of `bytes` claims,
/// without checking anything else. `None` if fewer than 4 bytes are available.
pub fn claimed_len(bytes: &[u8]) -> Option<usize> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    len.checked_add(4)
}

/// What the header of a batch claims, unchecked: no checksum, no bounds. What a search
/// for the next intact batch, or a walk along the length fields, looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimedHeader {
    /// Total length, length field included (as [`claimed_len`]).
    pub frame_len: usize,
    /// Offset of the first record.
    pub base_offset: u64,
    /// Append time, microseconds since the Unix epoch.
    pub timestamp_us: i64,
    /// Records in the batch.
    pub count: u32,
}

/// The batch header at the start of `bytes`, unchecked. `None` if fewer than
/// [`BATCH_HEADER_LEN`] bytes are available.
pub fn claimed_header(bytes: &[u8]) -> Option<ClaimedHeader> {
    let mut header = bytes.get(..BATCH_HEADER_LEN)?;
    let frame_len = (header.get_u32_le() as usize).checked_add(4)?;
    let _crc = header.get_u32_le();
    Some(ClaimedHeader {
        frame_len,
        base_offset: header.get_u64_le(),
        timestamp_us: header.get_i64_le(),
        count: header.get_u32_le(),
    })
}

/// Decodes the batch at the start of `bytes` (a shared buffer: keys and payloads are
/// slices of it, not copies). Checks the length, the checksum and every record's
/// bounds.
pub fn decode_batch(bytes: &Bytes) -> Result<Batch, FrameError> {
    let available = bytes.len();
    if available < BATCH_HEADER_LEN {
        return Err(FrameError::Incomplete {
            needed: BATCH_HEADER_LEN,
            available,
        });
    }
    let mut header = &bytes[..BATCH_HEADER_LEN];
    let len = header.get_u32_le() as usize;
    let crc = header.get_u32_le();
    let base_offset = header.get_u64_le();
    let timestamp_us = header.get_i64_le();
    let count = header.get_u32_le();
    if len < BATCH_HEADER_LEN - 4 {
        return Err(FrameError::Invalid(format!(
            "batch length {len} is shorter than a batch header"
        )));
    }
    if len > MAX_BATCH_LEN {
        return Err(FrameError::Invalid(format!(
            "batch length {len} exceeds the {MAX_BATCH_LEN} byte limit"
        )));
    }
    let frame_len = len + 4;
    if available < frame_len {
        return Err(FrameError::Incomplete {
            needed: frame_len,
            available,
        });
    }
    let actual = crc32c::crc32c(&bytes[8..frame_len]);
    if actual != crc {
        return Err(FrameError::Invalid(format!(
            "checksum mismatch: stored {crc:#010x}, computed {actual:#010x}"
        )));
    }
    if count == 0 {
        return Err(FrameError::Invalid("batch holds no records".into()));
    }
    let mut records = Vec::with_capacity((count as usize).min(len / RECORD_HEADER_LEN));
    let mut at = BATCH_HEADER_LEN;
    for i in 0..count {
        let invalid = |what: &str| FrameError::Invalid(format!("record {i} of the batch: {what}"));
        if frame_len - at < RECORD_HEADER_LEN {
            return Err(invalid("header runs past the batch"));
        }
        let mut head = &bytes[at..at + RECORD_HEADER_LEN];
        let record_len = head.get_u32_le() as usize;
        let id = head.get_u128_le();
        let key_len = head.get_u32_le();
        if record_len < 20 || record_len > frame_len - at - 4 {
            return Err(invalid("length runs past the batch"));
        }
        let body = at + RECORD_HEADER_LEN;
        let end = at + 4 + record_len;
        let key = if key_len == NO_KEY {
            None
        } else {
            let key_end = body
                .checked_add(key_len as usize)
                .filter(|&e| e <= end)
                .ok_or_else(|| invalid("key runs past the record"))?;
            Some(bytes.slice(body..key_end))
        };
        let payload_start = body + key.as_ref().map_or(0, Bytes::len);
        records.push(FrameRecord {
            id,
            key,
            payload: bytes.slice(payload_start..end),
        });
        at = end;
    }
    if at != frame_len {
        return Err(FrameError::Invalid(format!(
            "{} bytes after the last record",
            frame_len - at
        )));
    }
    Ok(Batch {
        base_offset,
        timestamp_us,
        records,
        frame_len,
    })
}

/// A segment or index header.
pub fn encode_header(magic: [u8; 8], base_offset: u64) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[..8].copy_from_slice(&magic);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[16..24].copy_from_slice(&base_offset.to_le_bytes());
    out
}

/// A segment header whose synced mark says the first `synced` bytes are durable (0,
/// unknown, if `synced` does not fit a `u32`).
pub fn encode_segment_header(base_offset: u64, synced: u64) -> [u8; HEADER_LEN] {
    let mut out = encode_header(SEGMENT_MAGIC, base_offset);
    out[SYNCED_MARK..SYNCED_MARK + 4]
        .copy_from_slice(&encode_synced_mark(synced).unwrap_or([0; 4]));
    out
}

/// The 4 bytes of a synced mark covering the first `end` bytes of a segment, written
/// at [`SYNCED_MARK`]; `None` if `end` does not fit (positions stay below 2^32,
/// docs/FORMAT.md §8), so that no mark claims too much.
pub fn encode_synced_mark(end: u64) -> Option<[u8; 4]> {
    u32::try_from(end).ok().map(u32::to_le_bytes)
}

/// The synced mark read from the 4 bytes at [`SYNCED_MARK`]; 0 (unknown) if fewer
/// were read.
pub fn decode_synced_mark(bytes: &[u8]) -> u64 {
    bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, |b| u64::from(u32::from_le_bytes(b)))
}

/// Checks a header; returns its base offset.
pub fn decode_header(magic: [u8; 8], bytes: &[u8]) -> Result<u64, FrameError> {
    if bytes.len() < HEADER_LEN {
        return Err(FrameError::Incomplete {
            needed: HEADER_LEN,
            available: bytes.len(),
        });
    }
    if bytes[..8] != magic {
        return Err(FrameError::Invalid(format!(
            "bad magic {:?}, expected {:?}",
            String::from_utf8_lossy(&bytes[..8]),
            String::from_utf8_lossy(&magic)
        )));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(FrameError::Invalid(format!(
            "format version {version}; this build reads version {VERSION}"
        )));
    }
    Ok(u64::from_le_bytes(
        bytes[16..24].try_into().expect("8 bytes"),
    ))
}

/// One sparse index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// Offset of the batch's first record, relative to the segment's base offset.
    pub relative_offset: u32,
    /// Byte position of the batch in the segment.
    pub position: u32,
    /// Append time of the batch, microseconds since the Unix epoch.
    pub timestamp_us: i64,
}

impl IndexEntry {
    /// The entry's 16 bytes.
    pub fn encode(&self) -> [u8; INDEX_ENTRY_LEN] {
        let mut out = [0u8; INDEX_ENTRY_LEN];
        out[..4].copy_from_slice(&self.relative_offset.to_le_bytes());
        out[4..8].copy_from_slice(&self.position.to_le_bytes());
        out[8..].copy_from_slice(&self.timestamp_us.to_le_bytes());
        out
    }
}

/// Decodes index entries (the bytes after the header). The first entry must be at
/// position `min_position` or later; each later one must have a larger relative offset
/// and position and a time no earlier than the one before. Stops at the first entry
/// that breaks this or is incomplete; returns the valid prefix and whether the whole
/// input was valid.
pub fn decode_index_entries(bytes: &[u8], min_position: u32) -> (Vec<IndexEntry>, bool) {
    let mut entries: Vec<IndexEntry> = Vec::with_capacity(bytes.len() / INDEX_ENTRY_LEN);
    let mut chunks = bytes.chunks_exact(INDEX_ENTRY_LEN);
    for chunk in &mut chunks {
        let mut c = chunk;
        let entry = IndexEntry {
            relative_offset: c.get_u32_le(),
            position: c.get_u32_le(),
            timestamp_us: c.get_i64_le(),
        };
        let increasing = match entries.last() {
            Some(last) => {
                entry.relative_offset > last.relative_offset
                    && entry.position > last.position
                    && entry.timestamp_us >= last.timestamp_us
            }
            None => entry.position >= min_position,
        };
        if !increasing {
            return (entries, false);
        }
        entries.push(entry);
    }
    let complete = chunks.remainder().is_empty();
    (entries, complete)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (id, key, payload) of a record, as `encode_batch` takes them.
    type Rec<'a> = (u128, Option<&'a [u8]>, &'a [u8]);

    fn batch(records: &[Rec<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_batch(&mut out, 42, 1_700_000_000_000_000, records.iter().copied());
        out
    }

    #[test]
    fn batch_round_trips_with_and_without_keys() {
        let bytes = batch(&[
            (1, Some(b"k"), b"payload"),
            (u128::MAX, None, b""),
            (3, Some(b""), b"x"),
        ]);
        assert_eq!(
            bytes.len(),
            batch_frame_len([(Some(1), 7), (None, 0), (Some(0), 1)].into_iter())
        );
        let decoded = decode_batch(&Bytes::from(bytes.clone())).unwrap();
        assert_eq!(decoded.base_offset, 42);
        assert_eq!(decoded.timestamp_us, 1_700_000_000_000_000);
        assert_eq!(decoded.frame_len, bytes.len());
        let got: Vec<Rec<'_>> = decoded
            .records
            .iter()
            .map(|r| (r.id, r.key.as_deref(), &r.payload[..]))
            .collect();
        assert_eq!(
            got,
            [
                (1, Some(&b"k"[..]), &b"payload"[..]),
                (u128::MAX, None, &b""[..]),
                (3, Some(&b""[..]), &b"x"[..])
            ]
        );
    }

    #[test]
    fn every_truncation_is_incomplete_never_a_panic() {
        let bytes = batch(&[(1, Some(b"key"), b"some payload"), (2, None, b"more")]);
        for cut in 0..bytes.len() {
            let err = decode_batch(&Bytes::copy_from_slice(&bytes[..cut])).unwrap_err();
            let incomplete = matches!(err, FrameError::Incomplete { .. });
            assert!(incomplete, "cut at {cut}: {err:?}");
        }
    }

    #[test]
    fn every_bit_flip_is_detected() {
        let bytes = batch(&[(1, Some(b"key"), b"some payload")]);
        for byte in 0..bytes.len() {
            for bit in 0..8 {
                let mut flipped = bytes.clone();
                flipped[byte] ^= 1 << bit;
                let result = decode_batch(&Bytes::from(flipped));
                assert!(
                    result.is_err(),
                    "flip of bit {bit} in byte {byte} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn claimed_header_reads_what_encode_batch_wrote_and_needs_a_whole_header() {
        let bytes = batch(&[(1, None, b"a"), (2, Some(b"k"), b"bc")]);
        let header = claimed_header(&bytes).unwrap();
        assert_eq!(header.frame_len, bytes.len());
        assert_eq!(header.frame_len, claimed_len(&bytes).unwrap());
        assert_eq!(header.base_offset, 42);
        assert_eq!(header.timestamp_us, 1_700_000_000_000_000);
        assert_eq!(header.count, 2);
        assert_eq!(claimed_header(&bytes[..BATCH_HEADER_LEN - 1]), None);
    }

    #[test]
    fn a_segment_header_carries_its_synced_mark_and_a_mark_never_claims_too_much() {
        let header = encode_segment_header(7, 1000);
        assert_eq!(decode_header(SEGMENT_MAGIC, &header), Ok(7));
        assert_eq!(decode_synced_mark(&header[SYNCED_MARK..]), 1000);
        // A mark past 2^32 is not written: 0, unknown.
        let header = encode_segment_header(7, 1 << 32);
        assert_eq!(decode_synced_mark(&header[SYNCED_MARK..]), 0);
        assert_eq!(encode_synced_mark(1 << 32), None);
        assert_eq!(decode_synced_mark(&[1, 0]), 0);
    }

    #[test]
    fn headers_check_magic_and_version() {
        let header = encode_header(SEGMENT_MAGIC, 7);
        assert_eq!(decode_header(SEGMENT_MAGIC, &header), Ok(7));
        assert!(decode_header(INDEX_MAGIC, &header).is_err());
        let mut newer = header;
        newer[8] = 2;
        let err = decode_header(SEGMENT_MAGIC, &newer).unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
    }

    #[test]
    fn index_entries_stop_at_the_first_non_increasing_one() {
        let e = |o, p, t| IndexEntry {
            relative_offset: o,
            position: p,
            timestamp_us: t,
        };
        let mut bytes = Vec::new();
        for entry in [e(0, 24, 1), e(5, 4100, 2), e(9, 8200, 2), e(3, 9000, 3)] {
            bytes.extend_from_slice(&entry.encode());
        }
        let (entries, complete) = decode_index_entries(&bytes, 24);
        assert_eq!(entries, [e(0, 24, 1), e(5, 4100, 2), e(9, 8200, 2)]);
        assert!(!complete);
        let (entries, complete) = decode_index_entries(&bytes[..40], 24);
        assert_eq!(entries.len(), 2);
        assert!(!complete, "a partial entry is not complete");
    }
}
