//! Writes a small seed corpus for the fuzz targets, made with the real encoders:
//! `corpus/decode_batch/` (valid batch frames, some cut short, some with trailing
//! bytes) and `corpus/decode_index/` (min_position + index header + entries).
//!
//! Run from the repository root (plain cargo, no sanitizer flags needed):
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example make_seeds
//! ```

use std::fs;
use std::path::Path;

use vibes_filelog::format::{
    HEADER_LEN, INDEX_MAGIC, IndexEntry, SEGMENT_MAGIC, encode_batch, encode_header,
};

type Rec<'a> = (u128, Option<&'a [u8]>, &'a [u8]);

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let batches = root.join("decode_batch");
    let index = root.join("decode_index");
    fs::create_dir_all(&batches)?;
    fs::create_dir_all(&index)?;

    let record_sets: Vec<Vec<Rec<'_>>> = vec![
        vec![(1, None, b"")],
        vec![(1, Some(b"k"), b"payload")],
        vec![
            (7, Some(b""), b"x"),
            (u128::MAX, None, b"{\"type\":\"user\"}"),
        ],
        vec![
            (
                0x0192_0000_0000_7000_8000_0000_0000_0001,
                Some(b"session-42"),
                b"{}",
            ),
            (2, None, b"more"),
            (3, Some(b"key"), &[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]),
        ],
    ];
    let mut n = 0;
    let mut write = |dir: &Path, bytes: &[u8]| -> std::io::Result<()> {
        n += 1;
        fs::write(dir.join(format!("seed-{n:03}")), bytes)
    };
    for (i, records) in record_sets.iter().enumerate() {
        let mut frame = Vec::new();
        encode_batch(
            &mut frame,
            i as u64 * 1000,
            1_700_000_000_000_000 + i as i64,
            records.iter().copied(),
        );
        write(&batches, &frame)?;
        write(&batches, &frame[..frame.len() - 1])?; // torn
        let mut trailing = frame.clone();
        trailing.extend_from_slice(&[0; 8]);
        write(&batches, &trailing)?; // followed by something else
        let mut two = frame.clone();
        encode_batch(&mut two, 99, -1, records.iter().copied());
        write(&batches, &two)?; // two batches back to back
        let mut flipped = frame.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        write(&batches, &flipped)?; // checksum mismatch
    }
    // A segment header followed by a batch, as a segment file starts.
    let mut segment = encode_header(SEGMENT_MAGIC, 5).to_vec();
    encode_batch(&mut segment, 5, 1, [(1u128, None, &b"x"[..])].into_iter());
    write(&batches, &segment)?;

    // Index inputs: 4 bytes of min_position, then an index file.
    let entries = [
        IndexEntry {
            relative_offset: 0,
            position: 24,
            timestamp_us: 10,
        },
        IndexEntry {
            relative_offset: 5,
            position: 4200,
            timestamp_us: 10,
        },
        IndexEntry {
            relative_offset: 9,
            position: 8400,
            timestamp_us: 12,
        },
    ];
    for (min, take, magic) in [
        (24u32, 3, INDEX_MAGIC),
        (0, 2, INDEX_MAGIC),
        (5000, 3, INDEX_MAGIC),
        (24, 3, SEGMENT_MAGIC),
        (24, 0, INDEX_MAGIC),
    ] {
        let mut bytes = min.to_le_bytes().to_vec();
        bytes.extend_from_slice(&encode_header(magic, 77));
        for entry in &entries[..take] {
            bytes.extend_from_slice(&entry.encode());
        }
        write(&index, &bytes)?;
        write(&index, &bytes[..bytes.len() - 3])?; // a partial entry trails
    }
    // Entries without a header, one out of order.
    let mut bytes = 24u32.to_le_bytes().to_vec();
    for entry in [entries[0], entries[2], entries[1]] {
        bytes.extend_from_slice(&entry.encode());
    }
    write(&index, &bytes)?;
    assert_eq!(HEADER_LEN, 24);
    println!("wrote {n} seeds under {}", root.display());
    Ok(())
}
