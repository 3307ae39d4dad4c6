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
    let mut key = Vec::new();
    for part in parts {
        key.extend_from_slice(part.as_bytes());
        key.push(0);
    }
    xxh3_64(&key)
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
