//! Measuring a process and every process it started, from `/proc` (Linux).
//!
//! The tree of a root process is the root, every live descendant by parent id, and every
//! live member of the process group the root leads (which catches a helper whose parent
//! exited and that was re-parented to init while it stayed in the group). Zombies are
//! not counted: they have exited.
//!
//! Per member it reads `/proc/PID/stat` (CPU times, resident pages), `/proc/PID/io`
//! (bytes read from and written to storage) and `/proc/PID/fd` (open descriptors). The
//! kernel adds a process's CPU times and I/O counts to its parent's when the parent
//! reaps it, so a tree's totals keep what its finished processes used, as long as a
//! member reaped them. A member whose `io` or `fd` cannot be read (another user's
//! process) counts 0 there and is counted in [`TreeSample::unreadable`].

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One measurement of a process tree ([`TreeSampler::sample`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TreeSample {
    /// The live processes of the tree, the root first (when it lives), then by pid.
    pub pids: Vec<u32>,
    /// CPU time the tree used so far (user and system, with what reaped members used),
    /// in milliseconds. Never less than the sampler's previous value: time of a member
    /// that exited without a member reaping it stops counting, and is not taken back.
    pub cpu_ms: u64,
    /// CPU use since the previous sample (or since the sampler was made), in percent of
    /// one core.
    pub cpu_percent: f64,
    /// Resident memory of the tree, in bytes.
    pub rss_bytes: u64,
    /// Bytes the tree read from storage so far (`read_bytes` of `/proc/PID/io`).
    pub read_bytes: u64,
    /// Bytes the tree wrote to storage so far (`write_bytes`).
    pub write_bytes: u64,
    /// Open file descriptors of the tree.
    pub open_files: u32,
    /// Members whose `io` or `fd` could not be read.
    pub unreadable: u32,
}

impl TreeSample {
    /// Live processes in the tree.
    pub fn processes(&self) -> u32 {
        u32::try_from(self.pids.len()).unwrap_or(u32::MAX)
    }
}

/// Measures the tree of one root process, again and again.
///
/// ```no_run
/// let mut sampler = vibes_supervisor::TreeSampler::new(std::process::id());
/// let sample = sampler.sample()?;
/// assert!(sample.processes() >= 1 && sample.rss_bytes > 0);
/// # Ok::<_, std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct TreeSampler {
    root: u32,
    proc: PathBuf,
    ticks_per_second: u64,
    page_size: u64,
    /// When the previous sample was taken, and its CPU time.
    previous: (Instant, u64),
}

impl TreeSampler {
    /// A sampler of the tree of `root`; the first sample's CPU percentage covers the
    /// time since now. Roots 0 and 1 (no process, and init) have empty trees.
    pub fn new(root: u32) -> Self {
        TreeSampler {
            root,
            proc: PathBuf::from("/proc"),
            ticks_per_second: rustix::param::clock_ticks_per_second().max(1),
            page_size: rustix::param::page_size() as u64,
            previous: (Instant::now(), 0),
        }
    }

    /// The root process.
    pub fn root(&self) -> u32 {
        self.root
    }

    /// Measures the tree now. A root that has exited, with no member left, gives an
    /// empty sample (no processes; CPU time as before).
    ///
    /// # Errors
    ///
    /// `/proc` cannot be listed (not Linux, or not mounted).
    pub fn sample(&mut self) -> io::Result<TreeSample> {
        let table = read_table(&self.proc)?;
        let pids = members(self.root, &table);
        let mut ticks = 0u64;
        let mut sample = TreeSample {
            pids: Vec::with_capacity(pids.len()),
            cpu_ms: 0,
            cpu_percent: 0.0,
            rss_bytes: 0,
            read_bytes: 0,
            write_bytes: 0,
            open_files: 0,
            unreadable: 0,
        };
        for pid in pids {
            let Some(stat) = table.get(&pid) else {
                continue;
            };
            ticks = ticks.saturating_add(stat.cpu_ticks);
            sample.rss_bytes = sample
                .rss_bytes
                .saturating_add(stat.rss_pages.saturating_mul(self.page_size));
            sample.pids.push(pid);
            let dir = self.proc.join(pid.to_string());
            let io = read_io(&dir);
            let fds = count_fds(&dir);
            if let Some((read, written)) = io {
                sample.read_bytes = sample.read_bytes.saturating_add(read);
                sample.write_bytes = sample.write_bytes.saturating_add(written);
            }
            if let Some(fds) = fds {
                sample.open_files = sample.open_files.saturating_add(fds);
            }
            if io.is_none() || fds.is_none() {
                sample.unreadable += 1;
            }
        }
        let now = Instant::now();
        let (then, before) = self.previous;
        let cpu_ms = (ticks.saturating_mul(1000) / self.ticks_per_second).max(before);
        let wall_ms = now.saturating_duration_since(then).as_secs_f64() * 1000.0;
        if wall_ms > 0.0 {
            sample.cpu_percent = (cpu_ms - before) as f64 / wall_ms * 100.0;
        }
        sample.cpu_ms = cpu_ms;
        self.previous = (now, cpu_ms);
        Ok(sample)
    }
}

/// What the tree needs of one `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    ppid: u32,
    pgid: u32,
    zombie: bool,
    /// utime + stime + cutime + cstime, in clock ticks.
    cpu_ticks: u64,
    rss_pages: u64,
}

/// Parses `/proc/PID/stat`: `pid (comm) state ppid pgrp ...`, where comm may hold
/// spaces and parentheses (so the fields start after the *last* `)`).
fn parse_stat(text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields from 3 (state) on: index = field number - 3.
    let number = |field: usize| -> Option<u64> { fields.get(field - 3)?.parse().ok() };
    let signed = |field: usize| -> Option<u64> {
        let value: i64 = fields.get(field - 3)?.parse().ok()?;
        Some(u64::try_from(value).unwrap_or(0))
    };
    let state = *fields.first()?;
    Some(Stat {
        ppid: u32::try_from(number(4)?).ok()?,
        pgid: u32::try_from(number(5)?).ok()?,
        zombie: matches!(state, "Z" | "X"),
        cpu_ticks: number(14)?
            .saturating_add(number(15)?)
            .saturating_add(signed(16)?)
            .saturating_add(signed(17)?),
        rss_pages: signed(24)?,
    })
}

/// The stat of every process, by pid. Processes that exit while it reads are left out.
fn read_table(proc: &Path) -> io::Result<HashMap<u32, Stat>> {
    let mut table = HashMap::new();
    for entry in fs::read_dir(proc)? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(text) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some(stat) = parse_stat(&text) {
            table.insert(pid, stat);
        }
    }
    Ok(table)
}

/// The live members of the tree of `root`: the root, its descendants, and the members
/// of the group it leads; the root first, then by pid.
fn members(root: u32, table: &HashMap<u32, Stat>) -> Vec<u32> {
    if root <= 1 {
        // 0 is no process (and the parent of init); 1 is init, the whole system.
        return Vec::new();
    }
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&pid, stat) in table {
        children.entry(stat.ppid).or_default().push(pid);
    }
    let mut seen = HashSet::new();
    let mut stack = vec![root];
    stack.extend(
        table
            .iter()
            .filter(|(_, stat)| stat.pgid == root)
            .map(|(&pid, _)| pid),
    );
    while let Some(pid) = stack.pop() {
        if !table.contains_key(&pid) || !seen.insert(pid) {
            continue;
        }
        if let Some(kids) = children.get(&pid) {
            stack.extend(kids);
        }
    }
    let mut live: Vec<u32> = seen
        .into_iter()
        .filter(|pid| table.get(pid).is_some_and(|s| !s.zombie))
        .collect();
    live.sort_unstable_by_key(|&pid| (pid != root, pid));
    live
}

/// `read_bytes` and `write_bytes` of `<dir>/io`, if readable.
fn read_io(dir: &Path) -> Option<(u64, u64)> {
    let text = fs::read_to_string(dir.join("io")).ok()?;
    let mut read = None;
    let mut written = None;
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("read_bytes:") {
            read = value.trim().parse().ok();
        } else if let Some(value) = line.strip_prefix("write_bytes:") {
            written = value.trim().parse().ok();
        }
    }
    Some((read?, written?))
}

/// Entries of `<dir>/fd`, if readable.
fn count_fds(dir: &Path) -> Option<u32> {
    let entries = fs::read_dir(dir.join("fd")).ok()?;
    Some(u32::try_from(entries.count()).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(ppid: u32, pgid: u32) -> Stat {
        Stat {
            ppid,
            pgid,
            zombie: false,
            cpu_ticks: 0,
            rss_pages: 0,
        }
    }

    #[test]
    fn stat_fields_are_read_after_the_last_parenthesis() {
        // comm "a) (b c" holds spaces and parentheses.
        let text = "4242 (a) (b c) S 7 4242 4242 0 -1 4194560 100 0 0 0 \
                    30 12 5 3 20 0 1 0 12345 1000000 250 18446744073709551615";
        let parsed = parse_stat(text).expect("parsed");
        assert_eq!(
            parsed,
            Stat {
                ppid: 7,
                pgid: 4242,
                zombie: false,
                cpu_ticks: 30 + 12 + 5 + 3,
                rss_pages: 250,
            }
        );
        let zombie = text.replace(") S 7", ") Z 7");
        assert!(parse_stat(&zombie).expect("parsed").zombie);
        assert_eq!(parse_stat("4242 (cut) S 1 2"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn the_tree_is_the_root_its_descendants_and_its_group() {
        let mut table = HashMap::new();
        table.insert(1, stat(0, 1));
        table.insert(100, stat(1, 100)); // root
        table.insert(101, stat(100, 100)); // child
        table.insert(102, stat(101, 102)); // grandchild in its own group
        table.insert(103, stat(1, 100)); // re-parented, still in the group
        table.insert(104, stat(1, 104)); // unrelated
        table.insert(105, stat(103, 105)); // child of the re-parented one
        let mut dead = stat(100, 100);
        dead.zombie = true;
        table.insert(106, dead);
        assert_eq!(members(100, &table), vec![100, 101, 102, 103, 105]);
        // A root that exited: its group's members are still found.
        table.remove(&100);
        assert_eq!(members(100, &table), vec![101, 102, 103, 105]);
        assert_eq!(members(999, &table), Vec::<u32>::new());
        // Never the whole system.
        assert_eq!(members(0, &table), Vec::<u32>::new());
        assert_eq!(members(1, &table), Vec::<u32>::new());
    }
}
