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
//! Looking is file work: a process does its first look when its first member joins
//! (off the async runtime), and the later ones on a thread of the share's own, so no
//! async caller waits on the disk for them; members only read what the last look found.
//!
//! Every [`RESCAN`] (every [`RETRY`] while a partition it wants is not yet held), a
//! process lists the members; a member file it can lock belongs to
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

use parking_lot::{Condvar, Mutex};
use vibes_log::LogError;
use vibes_log::backend::local::GroupShare;

use crate::fsutil::io_err;

/// The longest a process goes without looking for processes that joined or left.
pub(crate) const RESCAN: Duration = Duration::from_millis(50);

/// How soon a process tries again to take a partition it wants that another holds.
const RETRY: Duration = Duration::from_millis(5);

/// Member files made by this process, numbered so two shares never share a name.
static MADE: AtomicU64 = AtomicU64::new(0);

/// The shares this process holds, one per group directory, while any member uses it.
#[derive(Debug, Default)]
pub(crate) struct Shares {
    open: Mutex<HashMap<PathBuf, Weak<FileShare>>>,
}

impl Shares {
    /// The share of the group whose directory is `dir` (`<topic>/groups/<group>`) on a
    /// topic of `partitions`, joined if this process has no member in it yet: file
    /// work, to be done off the async runtime.
    pub(crate) fn get(&self, dir: PathBuf, partitions: u32) -> Result<Arc<FileShare>, LogError> {
        if let Some(share) = self.joined(&dir) {
            return Ok(share);
        }
        let share = Arc::new(FileShare::join(dir.clone(), partitions)?);
        let mut open = self.open.lock();
        // Another member of this process may have joined meanwhile: one share each.
        if let Some(other) = open.get(&dir).and_then(Weak::upgrade) {
            return Ok(other);
        }
        open.retain(|_, share| share.strong_count() > 0);
        open.insert(dir, Arc::downgrade(&share));
        Ok(share)
    }

    /// The share of the group in `dir`, if this process has one (no file work).
    pub(crate) fn joined(&self, dir: &Path) -> Option<Arc<FileShare>> {
        self.open.lock().get(dir).and_then(Weak::upgrade)
    }
}

/// One process's share of a group's partitions; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct FileShare {
    looks: Arc<Looks>,
    /// Set, and notified, to stop the looking thread.
    stop: Arc<(Mutex<bool>, Condvar)>,
    looker: Option<std::thread::JoinHandle<()>>,
}

/// What a share's looks need and find.
#[derive(Debug)]
struct Looks {
    dir: PathBuf,
    name: String,
    partitions: u32,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// This process's member file, locked while the share lives.
    _member: File,
    /// The partitions held, each with its locked file.
    held: BTreeMap<u32, File>,
    /// The partitions wanted at the last look at the members.
    wanted: Vec<u32>,
    /// Changes whenever `held` does.
    generation: u64,
    looked: Option<Instant>,
}

impl FileShare {
    /// Joins the group in `dir`, looks once, and starts the thread of the later looks.
    fn join(dir: PathBuf, partitions: u32) -> Result<FileShare, LogError> {
        let looks = Arc::new(Looks::join(dir, partitions)?);
        looks.look()?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let looker = {
            let (looks, stop) = (Arc::clone(&looks), Arc::clone(&stop));
            let dir = looks.dir.clone();
            std::thread::Builder::new()
                .name("vibes-group-share".to_owned())
                .spawn(move || looks.keep_looking(&stop))
                .map_err(|e| io_err("starting the thread that watches", &dir, e))?
        };
        Ok(FileShare {
            looks,
            stop,
            looker: Some(looker),
        })
    }
}

impl Looks {
    /// Adds this process to the group in `dir`; the last process to leave a group may
    /// remove its directories (see `Drop`) while this one makes its file in them: then
    /// it makes them again.
    fn join(dir: PathBuf, partitions: u32) -> Result<Looks, LogError> {
        let mut tries = 0;
        loop {
            match Self::try_join(&dir, partitions) {
                Err(LogError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound && tries < 3 =>
                {
                    tries += 1;
                }
                joined => return joined,
            }
        }
    }

    /// The member file is made under a temporary name and locked before it takes its
    /// name, so no one sees it unlocked.
    fn try_join(dir: &Path, partitions: u32) -> Result<Looks, LogError> {
        let members = dir.join("members");
        std::fs::create_dir_all(&members).map_err(|e| io_err("creating", &members, e))?;
        let locks = dir.join("partitions");
        std::fs::create_dir_all(&locks).map_err(|e| io_err("creating", &locks, e))?;
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
        Ok(Looks {
            dir: dir.to_path_buf(),
            name,
            partitions,
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

    /// One look: every [`RESCAN`] at the members (letting go of what this process no
    /// longer wants), then at the wanted partitions it does not hold yet.
    fn look(&self) -> Result<(), LogError> {
        let mut state = self.state.lock();
        if state.looked.is_none_or(|at| at.elapsed() >= RESCAN) {
            let live = self.live_members()?;
            let n = live.len();
            let index = live.iter().position(|m| *m == self.name).unwrap_or(0);
            let wanted: Vec<u32> = (0..self.partitions)
                .filter(|p| *p as usize % n == index)
                .collect();
            let before = state.held.len();
            state.held.retain(|p, _| wanted.contains(p));
            if state.held.len() != before {
                state.generation += 1;
            }
            state.wanted = wanted;
            state.looked = Some(Instant::now());
        }
        if state.wanted.len() != state.held.len() {
            self.take_wanted(&mut state)?;
        }
        Ok(())
    }

    /// Locks each wanted partition not held yet that no other process holds.
    fn take_wanted(&self, state: &mut State) -> Result<(), LogError> {
        for p in state.wanted.clone() {
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

    /// Looks again and again until `stop` is set. A look that fails is said, and tried
    /// again; what the last good one found stands meanwhile.
    fn keep_looking(&self, stop: &(Mutex<bool>, Condvar)) {
        let (stopped, wake) = stop;
        loop {
            let pause = {
                let state = self.state.lock();
                if state.wanted.len() == state.held.len() {
                    RESCAN
                } else {
                    RETRY
                }
            };
            {
                let mut stopped = stopped.lock();
                if !*stopped {
                    let _ = wake.wait_for(&mut stopped, pause);
                }
                if *stopped {
                    return;
                }
            }
            if let Err(e) = self.look() {
                tracing::warn!(group = %self.dir.display(), "looking at the group's members: {e}");
            }
        }
    }
}

impl GroupShare for FileShare {
    fn generation(&self) -> u64 {
        self.looks.state.lock().generation
    }

    fn held(&self, _partitions: u32) -> Vec<u32> {
        self.looks.state.lock().held.keys().copied().collect()
    }

    fn holds(&self, partition: u32) -> bool {
        self.looks.state.lock().held.contains_key(&partition)
    }

    fn rescan_interval(&self) -> Option<Duration> {
        Some(RESCAN)
    }
}

impl Drop for FileShare {
    fn drop(&mut self) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        if let Some(looker) = self.looker.take() {
            let _ = looker.join();
        }
    }
}

impl Drop for Looks {
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
            let locks = self.dir.join("partitions");
            if let Ok(entries) = std::fs::read_dir(&locks) {
                for entry in entries.flatten() {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
            let _ = std::fs::remove_dir(&locks);
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
