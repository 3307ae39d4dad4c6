//! `vibes doctor`: checks the config, the data directory and the stored log, and says
//! how to fix what fails.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;
use vibes_filelog::{FileLog, FileLogOptions, Outbox};

use crate::cli::DoctorArgs;
use vibes_iggy::{IggyManager, Mode};

use crate::config::{BackendKind, Config, ConfigError};
use crate::output::{self, DataOut, Outcome};

/// Below this much free space the data directory check fails.
const MIN_FREE_BYTES: u64 = 256 << 20;

/// One check's result.
#[derive(Debug)]
struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
    fix: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

pub fn run(config: Result<Config, ConfigError>, args: &DoctorArgs) -> Result<Outcome> {
    let mut checks = Vec::new();
    match config {
        Err(e) => checks.push(Check::fail(
            "config",
            e.to_string(),
            "correct the value named above (`vibes config show` prints what is in effect)",
        )),
        Ok(config) => {
            checks.push(Check::ok(
                "config",
                if config.file_exists {
                    format!("{} is valid", config.file.display())
                } else {
                    format!("{} not found; defaults apply", config.file.display())
                },
            ));
            match config.backend {
                BackendKind::Memory => checks.push(Check::ok(
                    "backend",
                    "memory: nothing is kept after a command ends (set backend = \"file\" to keep events)",
                )),
                BackendKind::File => {
                    checks.push(Check::ok("backend", "file (vibes-filelog)"));
                    check_data_dir(&config.data_dir, &mut checks);
                    if checks.iter().all(|c| c.ok) {
                        check_log(&config, args.repair, &mut checks);
                    }
                }
                BackendKind::Iggy => {
                    checks.push(Check::ok(
                        "backend",
                        format!(
                            "iggy ({}); the outbox for outages is in {}",
                            match config.iggy.mode {
                                Mode::Managed => "managed",
                                Mode::External => "external",
                            },
                            config.data_dir.join("outbox").display()
                        ),
                    ));
                    check_data_dir(&config.data_dir, &mut checks);
                    check_iggy(&config, &mut checks);
                    check_outbox(&config.data_dir.join("outbox"), &mut checks);
                }
            }
        }
    }
    let mut out = DataOut::new(false);
    for check in &checks {
        let status = if check.ok { "ok  " } else { "FAIL" };
        let _ = out.line(&format!("{status}  {:<10}  {}", check.name, check.detail))?;
        if let Some(fix) = &check.fix {
            let _ = out.line(&format!("      {:<10}  fix: {fix}", ""))?;
        }
    }
    let _ = out.flush()?;
    Ok(Outcome::partial_if(checks.iter().any(|c| !c.ok)))
}

fn check_data_dir(dir: &Path, checks: &mut Vec<Check>) {
    let fix_other =
        "choose another directory with --data-dir, VIBES_DATA_DIR or `data_dir` in the config";
    match fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => {
            checks.push(Check::fail(
                "data dir",
                format!("{} exists but is not a directory", dir.display()),
                fix_other,
            ));
            return;
        }
        Ok(_) => match probe_writable(dir) {
            Ok(()) => checks.push(Check::ok(
                "data dir",
                format!("{} exists and is writable", dir.display()),
            )),
            Err(e) => {
                checks.push(Check::fail(
                    "data dir",
                    format!("{} is not writable: {e}", dir.display()),
                    format!(
                        "make it writable (chmod u+w {}) or {fix_other}",
                        dir.display()
                    ),
                ));
                return;
            }
        },
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            // It is created on first use; check that it can be.
            let parent = nearest_existing(dir);
            match parent.as_deref().map(fs::metadata) {
                Some(Ok(meta)) if meta.is_dir() => {
                    match probe_writable(parent.as_deref().unwrap_or(dir)) {
                        Ok(()) => checks.push(Check::ok(
                            "data dir",
                            format!(
                                "{} does not exist yet; it is created on first use",
                                dir.display()
                            ),
                        )),
                        Err(e) => {
                            checks.push(Check::fail(
                            "data dir",
                            format!(
                                "{} does not exist and cannot be created: {} is not writable ({e})",
                                dir.display(),
                                parent.as_deref().unwrap_or(dir).display()
                            ),
                            fix_other,
                        ));
                            return;
                        }
                    }
                }
                _ => {
                    checks.push(Check::fail(
                        "data dir",
                        format!(
                            "{} cannot be created: {} is not a directory",
                            dir.display(),
                            parent.as_deref().unwrap_or(dir).display()
                        ),
                        fix_other,
                    ));
                    return;
                }
            }
        }
        Err(e) => {
            checks.push(Check::fail(
                "data dir",
                format!("cannot inspect {}: {e}", dir.display()),
                fix_other,
            ));
            return;
        }
    }
    let existing = nearest_existing(dir).unwrap_or_else(|| dir.to_owned());
    match rustix::fs::statvfs(&existing) {
        Ok(stat) => {
            let free = stat.f_bavail.saturating_mul(stat.f_frsize);
            if free < MIN_FREE_BYTES {
                checks.push(Check::fail(
                    "free space",
                    format!(
                        "only {} free on the file system of {}",
                        output::human_bytes(free),
                        existing.display()
                    ),
                    format!(
                        "free at least {} there, lower log.retention_max_bytes, or {fix_other}",
                        output::human_bytes(MIN_FREE_BYTES)
                    ),
                ));
            } else {
                checks.push(Check::ok(
                    "free space",
                    format!("{} free", output::human_bytes(free)),
                ));
            }
        }
        Err(e) => checks.push(Check::fail(
            "free space",
            format!("cannot measure free space of {}: {e}", existing.display()),
            fix_other,
        )),
    }
}

fn check_log(config: &Config, repair: bool, checks: &mut Vec<Check>) {
    let log = match FileLog::open(&config.data_dir, FileLogOptions::default()) {
        Ok(log) => log,
        Err(e) => {
            checks.push(Check::fail(
                "log",
                format!("cannot open the log in {}: {e}", config.data_dir.display()),
                "see the error above",
            ));
            return;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            checks.push(Check::fail(
                "log",
                format!("cannot start a runtime: {e}"),
                "see the error above",
            ));
            return;
        }
    };
    let topics = match runtime.block_on(vibes_log::backend::LogBackend::list_topics(&log)) {
        Ok(topics) => topics,
        Err(e) => {
            checks.push(Check::fail(
                "log",
                format!("cannot list topics: {e}"),
                "see the error above",
            ));
            return;
        }
    };
    if topics.is_empty() {
        checks.push(Check::ok("log", "empty (nothing stored yet)"));
    }
    for topic in topics {
        match log.check(&topic, repair) {
            Ok(partitions) => report_partitions(&topic, &partitions, repair, checks),
            Err(e) => checks.push(Check::fail(
                "log",
                format!("{topic}: {e}"),
                "see the error above; `vibes doctor --repair` moves damaged batches to quarantine files",
            )),
        }
        match log.check_commits(&topic, repair) {
            Ok(damaged) => {
                for commit in damaged {
                    let at = format!(
                        "{topic}: damaged consumer commit {}: {}",
                        commit.file.display(),
                        commit.reason
                    );
                    if commit.repaired {
                        checks.push(Check::ok(
                            "commits",
                            format!("{at}; repaired: the group reads again from the lowest offset (the damaged file is kept as .damaged)"),
                        ));
                    } else {
                        checks.push(Check::fail(
                            "commits",
                            format!("{at}; the group reads again from the lowest offset held (records are delivered again, none is skipped)"),
                            "`vibes doctor --repair` replaces it with a commit of offset 0, keeping the damaged file beside it",
                        ));
                    }
                }
            }
            Err(e) => checks.push(Check::fail(
                "commits",
                format!("{topic}: {e}"),
                "see the error above",
            )),
        }
    }
}

/// One check line per damaged range, quarantined gap and torn tail of `topic`'s
/// partitions, or one line saying all is intact.
fn report_partitions(
    topic: &vibes_log::TopicName,
    partitions: &[vibes_filelog::PartitionCheck],
    repair: bool,
    checks: &mut Vec<Check>,
) {
    let records: u64 = partitions.iter().map(|p| p.records).sum();
    let segments: usize = partitions.iter().map(|p| p.segments).sum();
    let damaged = partitions.iter().any(|p| !p.damage.is_empty());
    if !damaged || repair {
        checks.push(Check::ok(
            "log",
            format!(
                "{topic}: {records} {}records in {segments} segment{}{}",
                if damaged { "intact " } else { "" },
                if segments == 1 { "" } else { "s" },
                if damaged { "" } else { ", all intact" }
            ),
        ));
    }
    for p in partitions {
        for damage in &p.damage {
            let at = format!(
                "{topic} partition {}: damaged at {} byte {} ({} bytes, offsets {}..{}): {}",
                p.partition,
                damage.file.display(),
                damage.position,
                damage.len,
                damage.offsets.start,
                damage.offsets.end,
                damage.reason
            );
            if p.repaired {
                checks.push(Check::ok("log", format!("{at}; repaired: quarantined")));
            } else {
                checks.push(Check::fail(
                    "log",
                    at,
                    format!(
                        "`vibes doctor --repair` moves the damaged bytes of partition {} to a quarantine file beside the segment; every intact record stays readable at its offset",
                        p.partition
                    ),
                ));
            }
        }
        for q in &p.quarantined {
            checks.push(Check::ok(
                "log",
                format!(
                    "{topic} partition {}: offsets {}..{} quarantined in {} ({} bytes)",
                    p.partition,
                    q.offsets.start,
                    q.offsets.end,
                    q.file.display(),
                    q.bytes
                ),
            ));
        }
        if p.torn_tail_bytes > 0 {
            checks.push(Check::ok(
                "log",
                format!(
                    "{topic} partition {}: {} bytes after the last fsync are a torn write; the next append (or --repair) cuts them",
                    p.partition, p.torn_tail_bytes
                ),
            ));
        }
    }
}

/// The Iggy setup: for a managed server the preflight checks (binary, version,
/// memlock, io_uring) and whether `vibes iggy start` runs it; for an external one,
/// whether it answers.
/// What waits in the outbox in front of Iggy, read from its directory (the server need
/// not answer).
fn check_outbox(dir: &Path, checks: &mut Vec<Check>) {
    let waiting = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::new)
        .and_then(|rt| Ok(rt.block_on(Outbox::waiting_in(dir))?));
    match waiting {
        Ok(depth) if depth.is_empty() => checks.push(Check::ok(
            "outbox",
            "empty (everything reached iggy-server)",
        )),
        Ok(depth) => checks.push(Check::ok(
            "outbox",
            format!(
                "{} waiting for iggy-server ({}); the next command that reaches it ships them",
                output::count(depth.iter().map(|d| d.waiting).sum::<u64>(), "record"),
                depth
                    .iter()
                    .map(|d| format!("{} partition {}: {}", d.topic, d.partition, d.waiting))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        Err(e) => checks.push(Check::fail(
            "outbox",
            format!("cannot read the outbox in {}: {e:#}", dir.display()),
            "make the directory readable by this user; it is a vibes-filelog log (docs/FORMAT.md)",
        )),
    }
}

fn check_iggy(config: &Config, checks: &mut Vec<Check>) {
    let iggy = &config.iggy;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            checks.push(Check::fail(
                "iggy",
                format!("cannot start a runtime: {e}"),
                "see the error above",
            ));
            return;
        }
    };
    match iggy.mode {
        Mode::Managed => {
            for check in vibes_iggy::preflight::preflight(iggy) {
                checks.push(Check {
                    name: check.name,
                    ok: check.ok,
                    detail: check.detail,
                    fix: check.fix,
                });
            }
            match runtime.block_on(IggyManager::status(iggy)) {
                Ok(status) if status.running() && status.ping => checks.push(Check::ok(
                    "iggy-server",
                    format!(
                        "running (pid {}), answers on {}",
                        status.pid.unwrap_or_default(),
                        status
                            .addresses
                            .map_or_else(String::new, |a| a.http.to_string())
                    ),
                )),
                Ok(status) if status.running() => checks.push(Check::fail(
                    "iggy-server",
                    format!("runs (pid {}) but does not answer /ping", status.pid.unwrap_or_default()),
                    "wait for it to finish starting, or see its logs in <iggy data dir>/logs",
                )),
                Ok(status) => checks.push(Check::fail(
                    "iggy-server",
                    format!("not running from {}", status.data_dir.display()),
                    "start it with `vibes iggy start` (it stays in the foreground; run it in its own terminal or a service)",
                )),
                Err(e) => checks.push(Check::fail("iggy-server", e.to_string(), "fix the [iggy] config")),
            }
        }
        Mode::External => {
            let connection = match iggy.external_connection() {
                Ok(c) => c,
                Err(e) => {
                    checks.push(Check::fail(
                        "iggy-server",
                        e.to_string(),
                        "set iggy.connection_string or IGGY_CONNECTION_STRING (or username, password and tcp_address)",
                    ));
                    return;
                }
            };
            let address = connection.tcp_address.clone();
            let fix = "check that the server runs and the address and credentials are right";
            checks.push(match runtime.block_on(super::iggy::answers(connection)) {
                Ok(true) => Check::ok("iggy-server", format!("{address} answers")),
                Ok(false) => Check::fail(
                    "iggy-server",
                    format!("{address} does not answer a ping"),
                    fix,
                ),
                Err(e) => Check::fail(
                    "iggy-server",
                    format!("cannot connect to {address}: {e}"),
                    fix,
                ),
            });
        }
    }
}

/// Creates and removes a file in `dir`.
fn probe_writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".vibes-doctor-{}", std::process::id()));
    fs::write(&probe, b"probe")?;
    fs::remove_file(&probe)
}

/// `path` or its nearest ancestor that exists.
fn nearest_existing(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .find(|p| fs::symlink_metadata(p).is_ok())
        .map(Path::to_owned)
}
