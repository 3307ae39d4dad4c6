//! Fuzzes the header and index decoders of vibes-filelog (`format::decode_header` with
//! both magics, `format::decode_index_entries`).
//!
//! Input layout: the first 4 bytes are `min_position` (little-endian; missing bytes are
//! 0), the rest is decoded both as a header and as index entries. When the rest is a
//! valid index header, the bytes after it are also decoded as recovery does
//! (`min_position` = 24).
//!
//! Properties checked: no panic; a header decodes exactly when it is long enough, has
//! the magic and version 1, and then yields bytes 16..24; at most one magic matches;
//! `encode_header` round-trips. Index entries are a prefix of the input's 16-byte
//! chunks, decoded field by field; strictly increasing in relative offset and position,
//! non-decreasing in time, the first at or after `min_position`; the decoder stops
//! exactly at the first chunk breaking that rule; the input is reported whole exactly
//! when every chunk was taken and no partial chunk trails; and the encoded entries
//! decode back to themselves, whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vibes_filelog::format::{
    FrameError, HEADER_LEN, INDEX_ENTRY_LEN, INDEX_MAGIC, IndexEntry, SEGMENT_MAGIC, VERSION,
    decode_header, decode_index_entries, encode_header,
};

fuzz_target!(|data: &[u8]| {
    let split = data.len().min(4);
    let mut min = [0u8; 4];
    min[..split].copy_from_slice(&data[..split]);
    let min_position = u32::from_le_bytes(min);
    let rest = &data[split..];

    check_headers(rest);
    check_entries(rest, min_position);
    if decode_header(INDEX_MAGIC, rest).is_ok() {
        check_entries(&rest[HEADER_LEN..], HEADER_LEN as u32);
    }
});

fn check_headers(bytes: &[u8]) {
    let mut matched = 0;
    for magic in [SEGMENT_MAGIC, INDEX_MAGIC] {
        let result = decode_header(magic, bytes);
        let expected_ok = bytes.len() >= HEADER_LEN
            && bytes[..8] == magic
            && u32::from_le_bytes(bytes[8..12].try_into().unwrap()) == VERSION;
        match result {
            Ok(base) => {
                assert!(expected_ok, "accepted a bad header");
                assert_eq!(base, u64::from_le_bytes(bytes[16..24].try_into().unwrap()));
                matched += 1;
                // The reserved field (12..16) is not checked; everything else is what
                // `encode_header` writes.
                let encoded = encode_header(magic, base);
                assert_eq!(encoded[..12], bytes[..12]);
                assert_eq!(encoded[16..], bytes[16..HEADER_LEN]);
            }
            Err(FrameError::Incomplete { needed, available }) => {
                assert!(bytes.len() < HEADER_LEN);
                assert_eq!((needed, available), (HEADER_LEN, bytes.len()));
            }
            Err(FrameError::Invalid(_)) => {
                assert!(!expected_ok, "rejected a good header");
                assert!(bytes.len() >= HEADER_LEN);
            }
        }
        // Round trip with an arbitrary base taken from the input.
        let base = bytes
            .get(..8)
            .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()));
        assert_eq!(decode_header(magic, &encode_header(magic, base)), Ok(base));
    }
    assert!(matched <= 1, "both magics matched one header");
}

fn check_entries(bytes: &[u8], min_position: u32) {
    let (entries, whole) = decode_index_entries(bytes, min_position);
    let chunks: Vec<&[u8]> = bytes.chunks_exact(INDEX_ENTRY_LEN).collect();
    assert!(entries.len() <= chunks.len());

    // A prefix of the chunks, decoded field by field.
    for (entry, chunk) in entries.iter().zip(&chunks) {
        assert_eq!(entry.encode()[..], chunk[..]);
        assert_eq!(
            entry.relative_offset,
            u32::from_le_bytes(chunk[..4].try_into().unwrap())
        );
        assert_eq!(
            entry.position,
            u32::from_le_bytes(chunk[4..8].try_into().unwrap())
        );
        assert_eq!(
            entry.timestamp_us,
            i64::from_le_bytes(chunk[8..].try_into().unwrap())
        );
    }

    // Ordered.
    if let Some(first) = entries.first() {
        assert!(first.position >= min_position);
    }
    for pair in entries.windows(2) {
        assert!(pair[1].relative_offset > pair[0].relative_offset);
        assert!(pair[1].position > pair[0].position);
        assert!(pair[1].timestamp_us >= pair[0].timestamp_us);
    }

    // It stops exactly at the first chunk that breaks the order, not earlier.
    if let Some(next) = chunks.get(entries.len()) {
        let next = entry_of(next);
        let fits = match entries.last() {
            None => next.position >= min_position,
            Some(last) => {
                next.relative_offset > last.relative_offset
                    && next.position > last.position
                    && next.timestamp_us >= last.timestamp_us
            }
        };
        assert!(!fits, "stopped before an entry that fits: {next:?}");
        assert!(!whole);
    }

    // Whole exactly when every chunk was taken and nothing trails.
    let expect_whole = entries.len() == chunks.len() && bytes.len().is_multiple_of(INDEX_ENTRY_LEN);
    assert_eq!(whole, expect_whole);

    // The valid prefix, encoded, decodes to itself and is whole.
    let encoded: Vec<u8> = entries.iter().flat_map(IndexEntry::encode).collect();
    assert_eq!(
        decode_index_entries(&encoded, min_position),
        (entries.clone(), true)
    );
}

fn entry_of(chunk: &[u8]) -> IndexEntry {
    IndexEntry {
        relative_offset: u32::from_le_bytes(chunk[..4].try_into().unwrap()),
        position: u32::from_le_bytes(chunk[4..8].try_into().unwrap()),
        timestamp_us: i64::from_le_bytes(chunk[8..16].try_into().unwrap()),
    }
}
