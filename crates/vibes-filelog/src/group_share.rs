//! Consumer groups across processes: which partitions of a topic each process's
//! members of a group may read ([`GroupShare`]). Within a process, the members split
//! their process's share (vibes-log's `Membership`); this module splits the topic
//! between processes, with files and advisory locks that the kernel releases when a
//! process exits or is killed.
//!
//! Under `<topic>/groups/<group>/`:
//! - `members/<name>`: one file per process with members in the group, locked
//!   (exclusive `flock`) while the process lives. The names sort by when the process
//!   joined (`<nanoseconds since the epoch>-<pid>-<n>`).
//! - `partitions/<p>.lock`: locked by the process that holds partition `p`. Only the
//!   holder reads the partition for the group and commits to it.
//!
//! At most every [`RESCAN`] (and on every `held` call while a partition it wants is
//! not yet held), a process lists the members; a member file it can lock belongs to
//! a process that is gone, and is removed. With the live members sorted, the one at
//! index `i` of `n` wants the partitions `p` with `p % n == i`. It lets go of the
//! partitions it holds and no longer wants, then locks those it wants and can: a
//! partition moves once its old holder lets go (at its next look, within `RESCAN` of
//! its next poll) or dies (at once). Reading restarts from the group's last commit, so
//! delivery stays at-least-once.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use vibes_log::LogError;
use vibes_log::backend::local::GroupShare;

use crate::fsutil::io_err;

/// The longest a process goes without looking for processes that joined or left.
pub(crate) const RESCAN: Duration = Duration::from_millis(50);

/// Member files made by this process, numbered so two shares never share a name.
static MADE: AtomicU64 = AtomicU64::new(0);

/// The shares this process holds, one per group directory, while any member uses it.
#[derive(Debug, Default)]
pub(crate) struct Shares {
    open: Mutex<HashMap<PathBuf, Weak<FileShare>>>,
}

impl Shares {
    /// The share of the group whose directory is `dir` (`<topic>/groups/<group>`),
    /// joined if this process has no member in it yet.
    pub(crate) fn get(&self, dir: PathBuf) -> Result<Arc<FileShare>, LogError> {
        let mut open = self.open.lock();
        if let Some(share) = open.get(&dir).and_then(Weak::upgrade) {
            return Ok(share);
        }
        open.retain(|_, share| share.strong_count() > 0);
        let share = Arc::new(FileShare::join(dir.clone())?);
        open.insert(dir, Arc::downgrade(&share));
        Ok(share)
    }
}

/// One process's share of a group's partitions; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct FileShare {
    dir: PathBuf,
    name: String,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// This process's member file, locked while the share lives.
    _member: File,
    /// The partitions held, each with its locked file.
    held: BTreeMap<u32, File>,
    /// The partitions wanted at the last look.
    wanted: Vec<u32>,
    /// Changes whenever `held` does.
    generation: u64,
    looked: Option<Instant>,
}

impl FileShare {
    /// Adds this process to the group in `dir`: its member file is made under a
    /// temporary name and locked before it takes its name, so no one sees it unlocked.
    fn join(dir: PathBuf) -> Result<FileShare, LogError> {
        // The last process to leave a group may remove its directories (see `Drop`)
        // while this one makes its file in them: then it makes them again.
        let mut tries = 0;
        loop {
            match Self::try_join(&dir) {
                Err(LogError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound && tries < 3 =>
                {
                    tries += 1;
                }
                joined => return joined,
            }
        }
    }

    fn try_join(dir: &Path) -> Result<FileShare, LogError> {
        let dir = dir.to_path_buf();
        let members = dir.join("members");
        std::fs::create_dir_all(&members).map_err(|e| io_err("creating", &members, e))?;
        let partitions = dir.join("partitions");
        std::fs::create_dir_all(&partitions).map_err(|e| io_err("creating", &partitions, e))?;
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let name = format!(
            "{since_epoch:020}-{}-{}",
            std::process::id(),
            MADE.fetch_add(1, Ordering::Relaxed)
        );
        let temporary = members.join(format!(".{name}.tmp"));
        let member = open_file(&temporary)?;
        member
            .lock()
            .map_err(|e| io_err("locking", &temporary, e))?;
        let path = members.join(&name);
        std::fs::rename(&temporary, &path).map_err(|e| io_err("naming", &path, e))?;
        Ok(FileShare {
            dir,
            name,
            state: Mutex::new(State {
                _member: member,
                held: BTreeMap::new(),
                wanted: Vec::new(),
                generation: 0,
                looked: None,
            }),
        })
    }

    /// The names of the live members, this one's included, in order; removes the
    /// files of members that are gone.
    fn live_members(&self) -> Result<Vec<String>, LogError> {
        let members = self.dir.join("members");
        let entries = std::fs::read_dir(&members).map_err(|e| io_err("listing", &members, e))?;
        let mut live = vec![self.name.clone()];
        for entry in entries {
            let entry = entry.map_err(|e| io_err("listing", &members, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == self.name || name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let file = match OpenOptions::new().read(true).open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("opening", &path, e)),
            };
            match file.try_lock() {
                Ok(()) => {
                    // Its process is gone: the kernel released its lock.
                    match std::fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(io_err("removing", &path, e)),
                    }
                }
                Err(TryLockError::WouldBlock) => live.push(name),
                Err(TryLockError::Error(e)) => return Err(io_err("locking", &path, e)),
            }
        }
        live.sort();
        Ok(live)
    }

    /// Locks each wanted partition not held yet that no other process holds.
    fn take_wanted(&self, state: &mut State) -> Result<(), LogError> {
        for &p in &state.wanted {
            if state.held.contains_key(&p) {
                continue;
            }
            let path = self.dir.join("partitions").join(format!("{p}.lock"));
            let file = open_file(&path)?;
            match file.try_lock() {
                Ok(()) => {
                    state.held.insert(p, file);
                    state.generation += 1;
                }
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(io_err("locking", &path, e)),
            }
        }
        Ok(())
    }
}

impl GroupShare for FileShare {
    fn held(&self, partitions: u32) -> Result<(u64, Vec<u32>), vibes_log::LogError> {
        let mut state = self.state.lock();
        if state.looked.is_none_or(|at| at.elapsed() >= RESCAN) {
            let live = self.live_members()?;
            let n = live.len();
            let index = live.iter().position(|m| *m == self.name).unwrap_or(0);
            state.wanted = (0..partitions)
                .filter(|p| *p as usize % n == index)
                .collect();
            let before = state.held.len();
            let wanted = std::mem::take(&mut state.wanted);
            state.held.retain(|p, _| wanted.contains(p));
            state.wanted = wanted;
            if state.held.len() != before {
                state.generation += 1;
            }
            state.looked = Some(Instant::now());
        }
        if state.wanted.len() != state.held.len() {
            self.take_wanted(&mut state)?;
        }
        Ok((state.generation, state.held.keys().copied().collect()))
    }

    fn holds(&self, partition: u32) -> bool {
        self.state.lock().held.contains_key(&partition)
    }

    fn rescan_interval(&self) -> Option<Duration> {
        Some(RESCAN)
    }
}

impl Drop for FileShare {
    fn drop(&mut self) {
        let state = self.state.get_mut();
        state.held.clear();
        // The member file goes before its lock: no one takes this process for gone
        // while it still holds partitions, and no file of it stays behind.
        let members = self.dir.join("members");
        let _ = std::fs::remove_file(members.join(&self.name));
        // The last to leave takes the group's lock files with it, and the group's
        // directory if nothing else is in it (a private group that never commits, as
        // `vibes tail` uses, leaves nothing). No process holds a partition lock without
        // a member file, and one joining now makes its (temporary) file first.
        if std::fs::read_dir(&members).is_ok_and(|mut entries| entries.next().is_none()) {
            let partitions = self.dir.join("partitions");
            if let Ok(entries) = std::fs::read_dir(&partitions) {
                for entry in entries.flatten() {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
            let _ = std::fs::remove_dir(&partitions);
            let _ = std::fs::remove_dir(&members);
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

fn open_file(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io_err("opening", path, e))
}
