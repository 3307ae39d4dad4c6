//! Can this machine run a managed iggy-server? Checks for `vibes doctor`, each with
//! what was found and, when it fails, the fix.
//!
//! ```no_run
//! let checks = vibes_iggy::preflight::preflight(&vibes_iggy::IggyConfig::default());
//! for check in &checks {
//!     let mark = if check.ok { "ok  " } else { "FAIL" };
//!     println!("{mark} {}: {}", check.name, check.detail);
//!     if let Some(fix) = &check.fix {
//!         println!("     fix: {fix}");
//!     }
//! }
//! ```

use std::fmt;
use std::io::{self, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use crate::config::SUPPORTED_VERSIONS;
use crate::config::{IggyConfig, SERVER_SERIES, SERVER_VERSION, ServerBinary, install_hint};

/// How long `iggy-server --version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// The oldest kernel whose io_uring has what iggy-server 0.8's shards ask for
/// (`IORING_SETUP_COOP_TASKRUN`, `IORING_SETUP_TASKRUN_FLAG`).
const MIN_KERNEL: (u32, u32) = (5, 19);

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked, e.g. `memlock limit`.
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// What to do about a failure (`None` when it passed).
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Check {
            name,
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            name,
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

impl fmt::Display for Check {
    /// `ok   name: detail`, or `FAIL name: detail` and the fix on the next line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.ok { "ok  " } else { "FAIL" };
        write!(f, "{mark} {}: {}", self.name, self.detail)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n     fix: {fix}")?;
        }
        Ok(())
    }
}

/// Runs every check for a managed server of `config`: the binary is found, its version
/// is 0.8.x, the memlock limit is enough for its io_uring runtimes, and io_uring is
/// available. Blocks for as long as `iggy-server --version` takes (at most 5 s).
pub fn preflight(config: &IggyConfig) -> Vec<Check> {
    let binary = config.resolve_server_bin();
    let version = match &binary {
        Ok(binary) => version_check(&binary.path),
        Err(_) => Check::fail(
            "iggy-server version",
            "not checked: no binary",
            "get the binary first (see the check above)",
        ),
    };
    let binary = match binary {
        Ok(ServerBinary { path, source }) => Check::pass(
            "iggy-server binary",
            format!("{} (from {source})", path.display()),
        ),
        Err(err) => Check::fail("iggy-server binary", "not found", err.to_string()),
    };
    let shards = config.cpu_allocation.shards();
    vec![binary, version, memlock_check(shards), io_uring_check()]
}

/// A server version, from `iggy-server --version` (`server 0.8.0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerVersion {
    /// The line the binary printed.
    pub(crate) text: String,
    pub(crate) major: u64,
    pub(crate) minor: u64,
}

impl ServerVersion {
    /// Whether vibes works with it: a version of [`SERVER_SERIES`].
    pub(crate) fn is_supported(&self) -> bool {
        format!("{}.{}", self.major, self.minor) == SERVER_SERIES
    }

    /// The version from `--version` output: the first `X.Y.Z` on its first line.
    pub(crate) fn parse(output: &str) -> Option<ServerVersion> {
        let line = output.lines().map(str::trim).find(|l| !l.is_empty())?;
        line.split_whitespace().find_map(|word| {
            let word = word.strip_prefix('v').unwrap_or(word);
            let mut parts = word.splitn(3, '.');
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next()?.parse().ok()?;
            let patch = parts.next()?;
            let patch_digits = patch.split(|c: char| !c.is_ascii_digit()).next()?;
            patch_digits.parse::<u64>().ok()?;
            Some(ServerVersion {
                text: line.to_owned(),
                major,
                minor,
            })
        })
    }
}

/// Runs `<bin> --version` and parses what it prints. The error says why no version
/// came out, with what the binary printed.
pub(crate) fn server_version(bin: &Path) -> Result<ServerVersion, String> {
    let output = run_version(bin)?;
    ServerVersion::parse(&output).ok_or_else(|| {
        format!(
            "`{} --version` printed no version: {:?}",
            bin.display(),
            output.trim()
        )
    })
}

fn run_version(bin: &Path) -> Result<String, String> {
    let cannot = |e: io::Error| format!("cannot run `{} --version`: {e}", bin.display());
    let mut attempts = 0;
    let mut child = loop {
        let spawned = Command::new(bin)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        match spawned {
            Ok(child) => break child,
            // A binary being written (an upgrade in progress, or a test that just
            // created it while another thread forked) is busy for a moment.
            Err(e) if e.kind() == io::ErrorKind::ExecutableFileBusy && attempts < 10 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(cannot(e)),
        }
    };
    let deadline = Instant::now() + VERSION_TIMEOUT;
    let status = loop {
        match child.try_wait().map_err(cannot)? {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{} --version` did not finish within {VERSION_TIMEOUT:?}",
                    bin.display()
                ));
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut stdout).map_err(cannot)?;
    }
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut stderr).map_err(cannot)?;
    }
    if !status.success() {
        return Err(format!(
            "`{} --version` failed ({status}): {}",
            bin.display(),
            stderr.trim()
        ));
    }
    Ok(stdout)
}

fn version_check(bin: &Path) -> Check {
    const NAME: &str = "iggy-server version";
    match server_version(bin) {
        Ok(version) if version.is_supported() => Check::pass(NAME, version.text),
        Ok(version) => Check::fail(
            NAME,
            format!(
                "{} prints {:?}; vibes needs {SUPPORTED_VERSIONS}",
                bin.display(),
                version.text
            ),
            install_hint(),
        ),
        Err(detail) => Check::fail(
            NAME,
            detail,
            format!(
                "check that the file is an iggy-server {SERVER_VERSION} binary for this \
                 machine (https://github.com/apache/iggy/releases)"
            ),
        ),
    }
}

/// Locked memory needed by a server with `shards` shards, in bytes.
///
/// Each io_uring runtime (the main thread's and one per shard) locks memory that counts
/// against `RLIMIT_MEMLOCK` for an unprivileged user; the count is per user, so other
/// io_uring programs of the same user take from it too. Measured with iggy-server 0.8.0
/// on Linux 6.18 as an unprivileged user: 1 and 2 shards started every time with 1 MiB;
/// between 512 and 896 KiB, starts failed now and then, and at 64 KiB always. One MiB
/// per runtime leaves room.
fn memlock_needed(shards: u32) -> u64 {
    (u64::from(shards) + 1) << 20
}

fn memlock_check(shards: u32) -> Check {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Memlock);
    let root = rustix::process::geteuid().is_root();
    memlock_verdict(shards, limit.current, limit.maximum, root)
}

fn show_limit(limit: Option<u64>) -> String {
    match limit {
        None => "unlimited".into(),
        Some(bytes) if bytes >= 1 << 20 && bytes % (1 << 20) == 0 => {
            format!("{} MiB", bytes >> 20)
        }
        Some(bytes) => format!("{} KiB", bytes >> 10),
    }
}

/// The memlock verdict for soft limit `soft` and hard limit `hard` (`None`:
/// unlimited).
fn memlock_verdict(shards: u32, soft: Option<u64>, hard: Option<u64>, root: bool) -> Check {
    const NAME: &str = "memlock limit";
    let needed = memlock_needed(shards);
    let found = format!(
        "soft {}, hard {}; {shards} shard(s) need about {} for io_uring",
        show_limit(soft),
        show_limit(hard),
        show_limit(Some(needed))
    );
    if root {
        return Check::pass(
            NAME,
            format!("{found}; running as root, which is not limited"),
        );
    }
    if soft.is_none_or(|soft| soft >= needed) {
        return Check::pass(NAME, found);
    }
    let kib = needed >> 10;
    let mut fix = format!(
        "raise the locked-memory limit of the process that starts vibes to at least \
         {kib} KiB, or unlimited: `ulimit -l unlimited` (or `ulimit -l {kib}`) in its shell; \
         systemd: LimitMEMLOCK=infinity in the unit; docker: --ulimit memlock=-1:-1 \
         (compose: ulimits: memlock: -1); for a login user: `<user> - memlock unlimited` in \
         /etc/security/limits.conf"
    );
    if hard.is_some_and(|hard| hard < needed) {
        fix.push_str("; the hard limit is also too low, so this needs root");
    }
    Check::fail(NAME, found, fix)
}

fn io_uring_check() -> Check {
    if !cfg!(target_os = "linux") {
        return Check::fail(
            "io_uring",
            "not Linux: iggy-server 0.8 runs on Linux only (io_uring)",
            "run iggy-server on Linux (or in a Linux container) and use iggy.mode = \"external\"",
        );
    }
    let uname = rustix::system::uname();
    let release = uname.release().to_string_lossy().into_owned();
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").ok();
    let root = rustix::process::geteuid().is_root();
    let in_group = std::fs::read_to_string("/proc/sys/kernel/io_uring_group")
        .ok()
        .and_then(|g| g.trim().parse::<i64>().ok())
        .is_some_and(in_group);
    let container = ["/.dockerenv", "/run/.containerenv"]
        .iter()
        .any(|p| Path::new(p).exists());
    io_uring_verdict(&release, disabled.as_deref(), root || in_group, container)
}

/// Whether this process is in group `gid` (effective or supplementary).
fn in_group(gid: i64) -> bool {
    let Ok(gid) = u32::try_from(gid) else {
        return false; // -1: no group may use io_uring
    };
    let gid = rustix::process::Gid::from_raw(gid);
    rustix::process::getegid() == gid
        || rustix::process::getgroups().is_ok_and(|groups| groups.contains(&gid))
}

/// `(major, minor)` of a kernel release such as `6.8.0-45-generic`.
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// The io_uring verdict for kernel `release`, the value of
/// `kernel.io_uring_disabled` (`None`: unreadable), whether this process may use
/// io_uring when it is restricted to a group, and whether it runs in a container.
fn io_uring_verdict(
    release: &str,
    disabled: Option<&str>,
    privileged: bool,
    container: bool,
) -> Check {
    const NAME: &str = "io_uring";
    let elsewhere = "or run iggy-server elsewhere and use iggy.mode = \"external\"";
    let Some(version) = kernel_version(release) else {
        return Check::fail(
            NAME,
            format!("cannot read the kernel version from {release:?}"),
            format!("iggy-server 0.8 needs Linux >= 5.19 with io_uring; {elsewhere}"),
        );
    };
    if version < MIN_KERNEL {
        return Check::fail(
            NAME,
            format!(
                "kernel {release} is older than 5.19, whose io_uring iggy-server 0.8's shards need"
            ),
            format!("upgrade to Linux >= 5.19 (6.1 or later recommended), {elsewhere}"),
        );
    }
    let sysctl = "sudo sysctl -w kernel.io_uring_disabled=0 (and in /etc/sysctl.d/ to keep it)";
    let found = match disabled.map(str::trim) {
        Some("0") => format!("kernel {release}, kernel.io_uring_disabled = 0"),
        Some("1") if privileged => format!(
            "kernel {release}, kernel.io_uring_disabled = 1 (restricted), and this user may use it"
        ),
        Some("1") => {
            return Check::fail(
                NAME,
                format!(
                    "kernel {release}, kernel.io_uring_disabled = 1: only root and the group in \
                     kernel.io_uring_group may use io_uring"
                ),
                format!(
                    "{sysctl}, or add this user to the group in kernel.io_uring_group, {elsewhere}"
                ),
            );
        }
        Some("2") => {
            return Check::fail(
                NAME,
                format!("kernel {release}, kernel.io_uring_disabled = 2: io_uring is off"),
                format!("{sysctl}, {elsewhere}"),
            );
        }
        Some(other) => format!("kernel {release}, kernel.io_uring_disabled = {other}"),
        // The sysctl exists from 6.1 on; before, io_uring cannot be turned off this way.
        None if version < (6, 1) => format!("kernel {release}"),
        None => {
            return Check::fail(
                NAME,
                format!(
                    "kernel {release} has no kernel.io_uring_disabled: io_uring may not be \
                     built in (CONFIG_IO_URING=n), or /proc is not mounted"
                ),
                format!("use a kernel with io_uring (CONFIG_IO_URING=y), {elsewhere}"),
            );
        }
    };
    let detail = if container {
        format!(
            "{found}; in a container, a seccomp profile can still block io_uring (the server \
             then fails with \"Operation not permitted\"): docker --security-opt \
             seccomp=unconfined, or a profile allowing io_uring_setup/enter/register"
        )
    } else {
        found
    };
    Check::pass(NAME, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_vibes_is_tested_against_is_one_it_accepts() {
        let version = ServerVersion::parse(&format!("server {SERVER_VERSION}")).unwrap();
        assert!(version.is_supported());
        let next = ServerVersion::parse("server 99.0.0").unwrap();
        assert!(!next.is_supported());
        assert!(install_hint().contains(&format!("server-{SERVER_VERSION}")));
    }

    #[test]
    fn the_server_version_line_parses() {
        let version = ServerVersion::parse("server 0.8.0\n").unwrap();
        assert_eq!(version.text, "server 0.8.0");
        assert!(version.is_supported());
        let patched = ServerVersion::parse("iggy-server v0.8.3-edge.1").unwrap();
        assert!(patched.is_supported());
        let old = ServerVersion::parse("server 0.7.1").unwrap();
        assert!(!old.is_supported());
        assert!(!ServerVersion::parse("server 1.8.0").unwrap().is_supported());
        assert_eq!(ServerVersion::parse("usage: iggy-server [OPTIONS]"), None);
        assert_eq!(ServerVersion::parse(""), None);
    }

    #[test]
    fn memlock_is_enough_when_unlimited_or_above_the_need() {
        let mib = 1u64 << 20;
        assert!(memlock_verdict(1, None, None, false).ok);
        assert!(memlock_verdict(1, Some(8 * mib), Some(8 * mib), false).ok);
        assert!(memlock_verdict(1, Some(64 << 10), Some(64 << 10), true).ok);
        let low = memlock_verdict(1, Some(64 << 10), Some(8 * mib), false);
        assert!(!low.ok);
        assert!(
            low.detail.contains("soft 64 KiB, hard 8 MiB"),
            "{}",
            low.detail
        );
        let fix = low.fix.unwrap();
        for how in ["ulimit -l", "LimitMEMLOCK=", "--ulimit memlock=-1"] {
            assert!(fix.contains(how), "{fix}");
        }
        assert!(!fix.contains("hard limit"), "{fix}");
        let hard_too = memlock_verdict(8, Some(8 * mib), Some(8 * mib), false);
        assert!(!hard_too.ok);
        assert!(hard_too.fix.unwrap().contains("hard limit is also too low"));
    }

    #[test]
    fn io_uring_needs_a_recent_kernel_and_the_sysctl_allowing_it() {
        assert!(io_uring_verdict("6.8.0-45-generic", Some("0\n"), false, false).ok);
        assert!(io_uring_verdict("5.19.0", None, false, false).ok);
        let old = io_uring_verdict("5.15.0-91-generic", Some("0"), false, false);
        assert!(!old.ok);
        assert!(old.fix.unwrap().contains("upgrade"));
        let off = io_uring_verdict("6.6.1", Some("2"), true, false);
        assert!(!off.ok);
        assert!(off.fix.unwrap().contains("kernel.io_uring_disabled=0"));
        let restricted = io_uring_verdict("6.6.1", Some("1"), false, false);
        assert!(!restricted.ok);
        assert!(restricted.fix.unwrap().contains("io_uring_group"));
        assert!(io_uring_verdict("6.6.1", Some("1"), true, false).ok);
        assert!(!io_uring_verdict("6.6.1", None, false, false).ok);
        let container = io_uring_verdict("6.6.1", Some("0"), false, true);
        assert!(container.ok);
        assert!(container.detail.contains("seccomp"));
    }

    #[test]
    fn kernel_versions_parse_from_release_strings() {
        assert_eq!(kernel_version("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(kernel_version("5.4.0"), Some((5, 4)));
        assert_eq!(kernel_version("weird"), None);
    }

    #[test]
    fn a_failed_check_shows_its_fix() {
        let check = Check::fail("x", "broken", "mend it");
        assert_eq!(check.to_string(), "FAIL x: broken\n     fix: mend it");
        assert_eq!(Check::pass("y", "fine").to_string(), "ok   y: fine");
    }
}
