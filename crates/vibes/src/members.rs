//! The `serve` processes of a data directory and what they publish: each holds a lock
//! on `<data_dir>/state/serve/<pid>.lock` while it runs and rewrites its plugins'
//! status in `<pid>.json`. A reader takes a file's status as current only while its lock
//! is held, so a crashed `serve` never shows as running (and its files are removed by
//! the next reader). On Iggy several `serve`s may run at once, each a member of every
//! plugin's group.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use vibes_plugin::PluginStatus;

use crate::commands::write_state_file;

/// What one `serve` publishes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Published {
    /// The serving process.
    pub pid: u32,
    /// Each plugin's status.
    pub plugins: Vec<PluginStatus>,
}

/// Where the members of `data_dir` publish.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("state").join("serve")
}

/// This process as a member: its lock is held until it is dropped, and then its files
/// are removed.
#[derive(Debug)]
pub struct Member {
    lock: PathBuf,
    status: PathBuf,
    _file: File,
}

impl Member {
    /// Registers this process in `data_dir`.
    pub fn register(data_dir: &Path) -> Result<Member> {
        let dir = dir(data_dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let pid = std::process::id();
        let lock = dir.join(format!("{pid}.lock"));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .with_context(|| format!("opening {}", lock.display()))?;
        file.lock()
            .with_context(|| format!("locking {}", lock.display()))?;
        Ok(Member {
            status: dir.join(format!("{pid}.json")),
            lock,
            _file: file,
        })
    }

    /// Replaces the published status (a failure is logged, never fatal).
    pub fn publish(&self, plugins: Vec<PluginStatus>) {
        let published = Published {
            pid: std::process::id(),
            plugins,
        };
        let written = serde_json::to_vec_pretty(&published)
            .context("encoding the plugins' status")
            .and_then(|bytes| write_state_file(&self.status, &bytes));
        if let Err(e) = written {
            tracing::warn!(error = %format!("{e:#}"), "cannot publish the plugins' status");
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.status);
        let _ = std::fs::remove_file(&self.lock);
    }
}

/// What the running members of `data_dir` published, by pid. Files of members that
/// no longer run are removed.
pub fn running(data_dir: &Path) -> Vec<Published> {
    let dir = dir(data_dir);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("lock") {
            continue;
        }
        let status = path.with_extension("json");
        if !held(&path) {
            let _ = std::fs::remove_file(&status);
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if let Some(published) = std::fs::read(&status)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Published>(&bytes).ok())
        {
            out.push(published);
        }
    }
    out.sort_by_key(|p| p.pid);
    out
}

/// Whether another process holds the lock at `path`.
fn held(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    std::matches!(
        file.try_lock_shared(),
        Err(std::fs::TryLockError::WouldBlock)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_shows_while_registered_and_leaves_no_files() {
        let data = tempfile::tempdir().expect("temp dir");
        assert!(running(data.path()).is_empty());
        let member = Member::register(data.path()).expect("register");
        member.publish(vec![PluginStatus::new("sessions")]);
        // A lock held by this process is held for another open file description too.
        let seen = running(data.path());
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].pid, std::process::id());
        assert_eq!(seen[0].plugins[0].name, "sessions");
        drop(member);
        assert!(running(data.path()).is_empty());
        assert_eq!(std::fs::read_dir(dir(data.path())).expect("dir").count(), 0);
    }

    #[test]
    fn files_of_a_member_that_died_are_ignored_and_removed() {
        let data = tempfile::tempdir().expect("temp dir");
        let dir = dir(data.path());
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("999999.lock"), b"").expect("lock");
        std::fs::write(dir.join("999999.json"), br#"{"pid":999999,"plugins":[]}"#).expect("status");
        assert!(running(data.path()).is_empty());
        assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 0);
    }
}
