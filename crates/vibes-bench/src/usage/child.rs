//! Running a program as a user would, timing it as a whole process, with its peak
//! resident set.
//!
//! The peak is the child's own `VmHWM` (`/proc/<pid>/status`), read every
//! [`SAMPLE_EVERY`] until it exits: the kernel keeps the high-water mark, so only
//! growth in the last few milliseconds before exit can be missed. Its CPU time (user
//! plus system, all threads) is read from `/proc/<pid>/stat` the same way, so it can
//! miss the last few milliseconds of each thread; on a shared machine it says what a
//! run cost when the wall time says how long it waited.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::Result;

const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// One finished run.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) seconds: f64,
    /// CPU seconds, user plus system; `None` where `/proc` has no such figure.
    pub(crate) cpu_s: Option<f64>,
    /// Peak resident set, MiB; `None` where `/proc` has no such figure.
    pub(crate) peak_mib: Option<f64>,
    pub(crate) stdout: Vec<u8>,
}

/// A program with its arguments and environment.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    pub(crate) path: PathBuf,
    pub(crate) env: Vec<(String, OsString)>,
    /// Variables removed from the inherited environment.
    pub(crate) env_remove: Vec<String>,
}

impl Program {
    /// Runs the program with `args`; an exit other than success is an error naming
    /// the command and quoting its standard error.
    pub(crate) fn run(&self, args: &[&str]) -> Result<Run> {
        let mut command = Command::new(&self.path);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in &self.env_remove {
            command.env_remove(name);
        }
        for (name, value) in &self.env {
            command.env(name, value);
        }
        let started = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.path.display()))?;
        let pid = child.id();
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let out = thread::spawn(move || {
            let mut bytes = Vec::new();
            stdout.read_to_end(&mut bytes).map(|_| bytes)
        });
        let err = thread::spawn(move || {
            let mut bytes = Vec::new();
            stderr.read_to_end(&mut bytes).map(|_| bytes)
        });
        let mut peak_kib: Option<u64> = None;
        let mut cpu_ticks: Option<u64> = None;
        let status = loop {
            if let Some(hwm) = vm_hwm_kib(pid) {
                peak_kib = Some(peak_kib.map_or(hwm, |p| p.max(hwm)));
            }
            if let Some(ticks) = cpu_ticks_of(pid) {
                cpu_ticks = Some(cpu_ticks.map_or(ticks, |t| t.max(ticks)));
            }
            if let Some(status) = child.try_wait()? {
                break status;
            }
            thread::sleep(SAMPLE_EVERY);
        };
        let seconds = started.elapsed().as_secs_f64();
        let stdout = out.join().expect("the reader does not panic")?;
        let stderr = err.join().expect("the reader does not panic")?;
        if !status.success() {
            return Err(format!(
                "`{} {}` failed ({status}): {}",
                self.path.display(),
                args.join(" "),
                String::from_utf8_lossy(&stderr).trim()
            )
            .into());
        }
        let per_second = rustix::param::clock_ticks_per_second().max(1);
        Ok(Run {
            seconds,
            cpu_s: cpu_ticks.map(|t| t as f64 / per_second as f64),
            peak_mib: peak_kib.map(|k| k as f64 / 1024.0),
            stdout,
        })
    }

    /// Runs it `times` times; returns the run of median time, with the largest peak of
    /// them all.
    pub(crate) fn median_of(&self, times: usize, args: &[&str]) -> Result<Run> {
        let mut runs = Vec::with_capacity(times);
        for _ in 0..times.max(1) {
            runs.push(self.run(args)?);
        }
        let peak = runs
            .iter()
            .filter_map(|r| r.peak_mib)
            .fold(None, |m: Option<f64>, p| Some(m.map_or(p, |m| m.max(p))));
        runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
        let mut median = runs.swap_remove(runs.len() / 2);
        median.peak_mib = peak;
        Ok(median)
    }
}

/// utime + stime of `pid` (fields 14 and 15 of `/proc/<pid>/stat`), clock ticks.
pub(crate) fn cpu_ticks_of(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it do not.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so fields 14 and 15 are its 12th and 13th.
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// A size line of `/proc/<pid>/status` (`VmHWM:`, `VmRSS:`), KiB.
pub(crate) fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
}

/// The `vibes` binary beside this benchmark's own executable (both in
/// `target/release`).
pub(crate) fn vibes_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe
        .parent()
        .map(|dir| dir.join("vibes"))
        .ok_or("the benchmark's executable has no folder")?;
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no vibes binary at {}: build it first with `cargo build --release -p vibes`",
            path.display()
        )
        .into())
    }
}

/// How to get ccusage, for the note when `CCUSAGE_BIN` is not set or not there.
pub(crate) const CCUSAGE_HOWTO: &str = "ccusage rows skipped: set CCUSAGE_BIN to ccusage's \
     native binary, e.g.\n  npm install --prefix /tmp/ccusage ccusage@20.0.24 \
     @ccusage/ccusage-linux-x64@20.0.24\n  chmod +x \
     /tmp/ccusage/node_modules/@ccusage/ccusage-linux-x64/bin/ccusage\n  \
     CCUSAGE_BIN=/tmp/ccusage/node_modules/@ccusage/ccusage-linux-x64/bin/ccusage \
     cargo run --release -p vibes-bench -- usage\n(20.0.26 has no linux-x64 build; the \
     `ccusage` script in node_modules/.bin works too, with node's start-up in its times)";

/// `CCUSAGE_BIN`, when set and a file; `Err` with why not.
pub(crate) fn ccusage_binary() -> std::result::Result<PathBuf, String> {
    let Some(path) = std::env::var_os("CCUSAGE_BIN") else {
        return Err(format!("CCUSAGE_BIN is not set. {CCUSAGE_HOWTO}"));
    };
    let path = PathBuf::from(path);
    if Path::new(&path).is_file() {
        Ok(path)
    } else {
        Err(format!(
            "CCUSAGE_BIN={} is not a file. {CCUSAGE_HOWTO}",
            path.display()
        ))
    }
}
