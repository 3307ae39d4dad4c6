//! Stable ids: XXH3 hashes of versioned content, never the clock or randomness.

use xxhash_rust::xxh3::xxh3_64;

use crate::fingerprint::ErrorKind;

fn hashed(prefix: &str, parts: &[&str]) -> String {
    let mut key = Vec::new();
    for part in parts {
        key.extend_from_slice(part.as_bytes());
        key.push(0);
    }
    format!("{prefix}-{:016x}", xxh3_64(&key))
}

/// A 64-bit hash of `s` (sessions and tool call ids kept as numbers).
pub fn hash64(parts: &[&str]) -> u64 {
    // Called for every tool call and result: the key is built on the stack when it
    // fits, which it nearly always does.
    let len: usize = parts.iter().map(|p| p.len() + 1).sum();
    let mut stack = [0u8; 256];
    let mut heap = Vec::new();
    let key: &mut [u8] = if len <= stack.len() {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        &mut heap
    };
    let mut at = 0;
    for part in parts {
        key[at..at + part.len()].copy_from_slice(part.as_bytes());
        at += part.len() + 1;
    }
    xxh3_64(key)
}

/// The id of a fingerprint.
pub fn fingerprint_id(tool: &str, head: &str, kind: ErrorKind, line: &str) -> String {
    hashed(
        "f",
        &["groove/fingerprint/v1", tool, head, kind.as_str(), line],
    )
}

/// The id of the cluster of (tool, head, kind).
pub fn cluster_id(tool: &str, head: &str, kind: ErrorKind) -> String {
    hashed("c", &["groove/cluster/v1", tool, head, kind.as_str()])
}

/// The id of the gap of a cluster (one per cluster, ever).
pub fn gap_id(cluster_id: &str) -> String {
    hashed("g", &["groove/gap/v1", cluster_id])
}

/// The id of a solution of a gap: its source and what it says.
pub fn solution_id(gap_id: &str, source: &str, key: &str) -> String {
    hashed("s", &["groove/solution/v1", gap_id, source, key])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key hashed: each part followed by a zero byte.
    fn joined(parts: &[&str]) -> Vec<u8> {
        parts.iter().flat_map(|p| p.bytes().chain([0])).collect()
    }

    #[test]
    fn hash64_hashes_each_part_followed_by_a_zero_byte_short_or_long() {
        let long = "x".repeat(300);
        for parts in [
            vec![],
            vec!["use", "session", "toolu_1"],
            vec!["a", ""],
            vec!["use", long.as_str(), "toolu_1"],
        ] {
            assert_eq!(hash64(&parts), xxh3_64(&joined(&parts)), "{parts:?}");
        }
        assert_ne!(hash64(&["ab", "c"]), hash64(&["a", "bc"]));
    }
}
