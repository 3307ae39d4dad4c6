//! Committed consumer-group offsets: one small checksummed file per group and
//! partition, replaced atomically.
//!
//! File `groups/<group>/<partition>.offset` (20 bytes):
//! `magic "VOFF" | version u16 = 1 | reserved u16 | next_offset u64 | crc32c u32` where
//! the checksum covers the 16 bytes before it.

use std::fs;
use std::path::{Path, PathBuf};

use vibes_log::{GroupName, LogError, Offset};

use crate::fsutil::{create_dir_durable, io_err, write_atomic};

const MAGIC: [u8; 4] = *b"VOFF";
const LEN: usize = 20;

/// Where `group`'s commit for `partition` lives under a topic directory.
pub(crate) fn offset_path(topic_dir: &Path, group: &GroupName, partition: u32) -> PathBuf {
    topic_dir
        .join("groups")
        .join(group.as_str())
        .join(format!("{partition}.offset"))
}

fn encode(next_offset: Offset) -> [u8; LEN] {
    let mut out = [0u8; LEN];
    out[..4].copy_from_slice(&MAGIC);
    out[4..6].copy_from_slice(&1u16.to_le_bytes());
    out[8..16].copy_from_slice(&next_offset.to_le_bytes());
    let crc = crc32c::crc32c(&out[..16]);
    out[16..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a commit file's contents.
pub(crate) fn decode(bytes: &[u8]) -> Result<Offset, String> {
    if bytes.len() != LEN {
        return Err(format!("{} bytes, expected {LEN}", bytes.len()));
    }
    if bytes[..4] != MAGIC {
        return Err("bad magic".into());
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != 1 {
        return Err(format!(
            "format version {version}; this build reads version 1"
        ));
    }
    let crc = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
    if crc32c::crc32c(&bytes[..16]) != crc {
        return Err("checksum mismatch".into());
    }
    Ok(u64::from_le_bytes(
        bytes[8..16].try_into().expect("8 bytes"),
    ))
}

/// Stores a commit durably.
pub(crate) fn store(path: &Path, next_offset: Offset) -> Result<(), LogError> {
    create_dir_durable(
        path.parent()
            .expect("offset files live in a group directory"),
    )?;
    write_atomic(path, &encode(next_offset))
}

/// A consumer commit file that does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DamagedCommit {
    /// The commit file.
    pub file: PathBuf,
    /// What is wrong with it.
    pub reason: String,
    /// Whether a repair replaced it (keeping the damaged one as `<file>.damaged`) with a
    /// commit of offset 0, so the group reads again from the lowest offset held.
    pub repaired: bool,
}

/// Loads a commit; `None` if the group never committed on this partition. A damaged
/// commit is reported (a warning naming the file) and read as offset 0: the group
/// resumes from the lowest offset held, so records are delivered again but none is
/// skipped. Its next commit replaces the file.
pub(crate) fn load(path: &Path) -> Result<Option<Offset>, LogError> {
    match read(path)? {
        Ok(commit) => Ok(commit),
        Err(reason) => {
            tracing::warn!(
                file = %path.display(),
                %reason,
                "damaged consumer commit: the group resumes from the lowest offset held (records are delivered again, none is skipped)"
            );
            Ok(Some(0))
        }
    }
}

/// Reads a commit file: `Ok(Err(reason))` if it is damaged.
fn read(path: &Path) -> Result<Result<Option<Offset>, String>, LogError> {
    match fs::read(path) {
        Ok(bytes) => Ok(decode(&bytes)
            .map(Some)
            .map_err(|reason| format!("consumer offset file: {reason}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ok(None)),
        Err(e) => Err(io_err("reading", path, e)),
    }
}

/// Checks every commit file under a topic directory; with `repair`, keeps each damaged
/// one as `<file>.damaged` and replaces it with a commit of offset 0.
pub(crate) fn check(topic_dir: &Path, repair: bool) -> Result<Vec<DamagedCommit>, LogError> {
    let groups = topic_dir.join("groups");
    let mut damaged = Vec::new();
    let Ok(entries) = fs::read_dir(&groups) else {
        return Ok(damaged);
    };
    let mut files = Vec::new();
    for group in entries.flatten() {
        let Ok(commits) = fs::read_dir(group.path()) else {
            continue;
        };
        files.extend(
            commits
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "offset")),
        );
    }
    files.sort();
    for file in files {
        if let Err(reason) = read(&file)? {
            let repaired = repair && {
                let bytes = fs::read(&file).map_err(|e| io_err("reading", &file, e))?;
                let mut kept = file.clone().into_os_string();
                kept.push(".damaged");
                write_atomic(Path::new(&kept), &bytes)?;
                store(&file, 0)?;
                true
            };
            damaged.push(DamagedCommit {
                file,
                reason,
                repaired,
            });
        }
    }
    Ok(damaged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_round_trips_and_damage_is_detected() {
        let bytes = encode(123_456);
        assert_eq!(decode(&bytes), Ok(123_456));
        for i in 0..LEN {
            let mut damaged = bytes;
            damaged[i] ^= 0x10;
            assert!(
                decode(&damaged).is_err(),
                "damage at byte {i} went unnoticed"
            );
        }
        assert!(decode(&bytes[..19]).is_err());
    }
}
