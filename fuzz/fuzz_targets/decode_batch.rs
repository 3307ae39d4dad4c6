//! Fuzzes the batch decoder of vibes-filelog (`format::decode_batch`, `claimed_len`).
//!
//! Every input is decoded twice:
//!
//! 1. as given, which exercises the length, bounds and checksum checks on arbitrary
//!    bytes (random bytes almost never carry a matching CRC32C);
//! 2. with the checksum field (bytes 4..8) overwritten by the CRC32C of the bytes the
//!    frame claims, so that the record parsing behind the checksum is reached by most
//!    inputs instead of only by those whose checksum the fuzzer happened to solve.
//!
//! Properties checked: no panic; `claimed_len` reads the first u32 plus 4; an
//! `Incomplete` error names more bytes than were given; a decoded batch is not empty,
//! spans exactly `claimed_len` bytes, re-encodes with `encode_batch` to exactly the
//! bytes it was decoded from, and that re-encoding decodes to an equal batch; every
//! proper prefix tried of a valid frame is `Incomplete`.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use vibes_filelog::format::{
    BATCH_HEADER_LEN, Batch, FrameError, MAX_BATCH_LEN, batch_frame_len, claimed_len, decode_batch,
    encode_batch,
};

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= 8 {
        let mut fixed = data.to_vec();
        let claimed = claimed_len(&fixed).expect("at least 8 bytes");
        let end = claimed.clamp(8, fixed.len());
        let crc = crc32c::crc32c(&fixed[8..end]);
        fixed[4..8].copy_from_slice(&crc.to_le_bytes());
        check(&fixed);
    }
});

fn check(data: &[u8]) {
    let claimed = claimed_len(data);
    match claimed {
        None => assert!(data.len() < 4),
        Some(n) => {
            let field = u32::from_le_bytes(data[..4].try_into().unwrap()) as usize;
            assert_eq!(n, field + 4);
        }
    }

    let bytes = Bytes::copy_from_slice(data);
    match decode_batch(&bytes) {
        Ok(batch) => check_valid(data, &bytes, &batch, claimed),
        Err(FrameError::Incomplete { needed, available }) => {
            assert_eq!(available, data.len());
            assert!(
                needed > available,
                "incomplete, yet {needed} <= {available}"
            );
        }
        Err(FrameError::Invalid(reason)) => assert!(!reason.is_empty()),
    }
}

fn check_valid(data: &[u8], bytes: &Bytes, batch: &Batch, claimed: Option<usize>) {
    assert!(
        !batch.records.is_empty(),
        "a batch holds at least one record"
    );
    assert_eq!(
        Some(batch.frame_len),
        claimed,
        "frame_len is the claimed length"
    );
    assert!(batch.frame_len <= data.len());
    assert!(batch.frame_len >= BATCH_HEADER_LEN);
    assert!(batch.frame_len <= MAX_BATCH_LEN + 4);

    // Re-encode: the same bytes, and they decode to the same batch.
    let mut out = Vec::with_capacity(batch.frame_len);
    encode_batch(
        &mut out,
        batch.base_offset,
        batch.timestamp_us,
        batch
            .records
            .iter()
            .map(|r| (r.id, r.key.as_deref(), &r.payload[..])),
    );
    assert_eq!(out.len(), batch.frame_len, "re-encoding has another length");
    assert_eq!(
        out.len(),
        batch_frame_len(
            batch
                .records
                .iter()
                .map(|r| (r.key.as_ref().map(Bytes::len), r.payload.len()))
        )
    );
    assert!(
        out[..] == data[..batch.frame_len],
        "re-encoding differs from the decoded bytes"
    );
    let again = decode_batch(&Bytes::from(out)).expect("a re-encoded batch decodes");
    assert_eq!(&again, batch, "round trip changed the batch");

    // Bytes after the frame do not matter.
    let exact = decode_batch(&bytes.slice(..batch.frame_len)).expect("the frame alone decodes");
    assert_eq!(&exact, batch);

    // A frame cut short is incomplete, never invalid.
    for cut in [
        0,
        3,
        4,
        BATCH_HEADER_LEN - 1,
        BATCH_HEADER_LEN,
        batch.frame_len - 1,
    ] {
        if cut < batch.frame_len {
            match decode_batch(&bytes.slice(..cut)) {
                Err(FrameError::Incomplete { .. }) => {}
                other => panic!("prefix of {cut} bytes: {other:?}"),
            }
        }
    }
}
