//! Test helper for the integration tests: a child process whose behaviour its
//! arguments choose.
//!
//! Usage: `supervisor-test-child MODE ARGS...`, where MODE is one of
//!
//! - `exit CODE MS LINES`: prints `line 0` to `line LINES-1` on stdout and
//!   `stderr says bye` on stderr, sleeps MS milliseconds, and exits with CODE.
//! - `forever`: prints `started pid=PID` and sleeps until killed.
//! - `heartbeat FILE HANG_AFTER_MS ONCE_MARKER`: rewrites FILE every 50 ms. If
//!   ONCE_MARKER does not exist, it creates it and stops rewriting FILE after
//!   HANG_AFTER_MS, but keeps running (hung); otherwise it never stops.
//! - `term READY MARKER`: catches SIGTERM, then creates READY; on SIGTERM it writes
//!   `SIGTERM` to MARKER and exits with 0.
//! - `ignore-term READY`: catches and ignores SIGTERM, creates READY, sleeps until
//!   killed.
//! - `flood LINES LEN`: prints LINES numbered lines of LEN bytes on stdout, one line on
//!   stderr, then `flood done`, and sleeps until killed.
//! - `env-dump FILE`: writes its working directory and environment to FILE (the
//!   directory on the first line, then `KEY=VALUE` with both hex-encoded), and sleeps
//!   until killed.
//! - `supervise LOG_DIR`: runs a `Supervisor` over `supervisor-test-child forever` (a
//!   grandchild), prints `grandchild PID`, and sleeps until killed.
//! - `spawn`: starts `supervisor-test-child forever` as a plain child (no supervisor,
//!   no parent-death signal, in this process's group), prints `grandchild PID`, and
//!   sleeps until killed.
//! - `supervise-guarded`: runs a `Supervisor` with a group guard over
//!   `supervisor-test-child spawn`, prints `child PID` and the `grandchild PID` line its
//!   child printed, and sleeps until killed.
//! - `busy MS`: keeps one core busy until it has used MS milliseconds of CPU time,
//!   prints `busy done`, and sleeps until killed.
//! - `files N DIR`: opens N files in DIR, prints `files open`, and sleeps until killed.
//! - `write FILE BYTES`: writes BYTES bytes to FILE and syncs them to storage, prints
//!   `written`, and sleeps until killed.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};
use vibes_supervisor::{ChildSpec, Supervisor, SupervisorOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["exit", code, ms, lines] => exit(code, ms, lines),
        ["forever"] => {
            println!("started pid={}", std::process::id());
            sleep_forever()
        }
        ["heartbeat", file, hang_after, marker] => heartbeat(file, hang_after, marker),
        ["term", ready, marker] => term(ready, marker),
        ["ignore-term", ready] => ignore_term(ready),
        ["flood", lines, len] => flood(lines, len),
        ["env-dump", file] => env_dump(file),
        ["supervise", log_dir] => supervise(log_dir),
        ["spawn"] => spawn(),
        ["supervise-guarded"] => supervise_guarded(),
        ["busy", ms] => busy(ms),
        ["files", n, dir] => files(n, dir),
        ["write", file, bytes] => write_file(file, bytes),
        _ => Err(format!("bad arguments {args:?}; see the source for usage")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("supervisor-test-child: {err}");
            ExitCode::from(2)
        }
    }
}

fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("not a number: {text}"))
}

fn sleep_forever() -> Result<(), String> {
    loop {
        thread::sleep(Duration::from_secs(3600));
    }
}

fn exit(code: &str, ms: &str, lines: &str) -> Result<(), String> {
    let (code, ms, lines): (i32, u64, u32) = (number(code)?, number(ms)?, number(lines)?);
    for n in 0..lines {
        println!("line {n}");
    }
    eprintln!("stderr says bye");
    thread::sleep(Duration::from_millis(ms));
    std::process::exit(code)
}

fn heartbeat(file: &str, hang_after: &str, marker: &str) -> Result<(), String> {
    let hang_after = Duration::from_millis(number(hang_after)?);
    let hangs = !Path::new(marker).exists();
    if hangs {
        fs::write(marker, "hung once").map_err(|e| e.to_string())?;
    }
    let started = Instant::now();
    let mut beat = 0u64;
    while !hangs || started.elapsed() < hang_after {
        fs::write(file, beat.to_string()).map_err(|e| e.to_string())?;
        beat += 1;
        thread::sleep(Duration::from_millis(50));
    }
    println!("hanging");
    sleep_forever()
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

fn term(ready: &str, marker: &str) -> Result<(), String> {
    runtime()?.block_on(async {
        let mut terminate = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        fs::write(ready, "ready").map_err(|e| e.to_string())?;
        println!("waiting for SIGTERM");
        terminate.recv().await;
        fs::write(marker, "SIGTERM").map_err(|e| e.to_string())?;
        println!("got SIGTERM; exiting");
        Ok(())
    })
}

fn ignore_term(ready: &str) -> Result<(), String> {
    runtime()?.block_on(async {
        let mut terminate = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        fs::write(ready, "ready").map_err(|e| e.to_string())?;
        loop {
            terminate.recv().await;
            println!("ignoring SIGTERM");
        }
    })
}

fn flood(lines: &str, len: &str) -> Result<(), String> {
    let (lines, len): (u32, usize) = (number(lines)?, number(len)?);
    let mut out = std::io::stdout().lock();
    for n in 0..lines {
        let mut line = format!("{n:06} ");
        while line.len() < len {
            line.push('x');
        }
        writeln!(out, "{line}").map_err(|e| e.to_string())?;
    }
    writeln!(out, "flood done").map_err(|e| e.to_string())?;
    drop(out);
    eprintln!("flood on stderr");
    sleep_forever()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn env_dump(file: &str) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;

    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let mut text = format!("{}\n", cwd.display());
    for (key, value) in std::env::vars_os() {
        text.push_str(&format!(
            "{}={}\n",
            hex(key.as_bytes()),
            hex(value.as_bytes())
        ));
    }
    // Written whole and renamed, so the test never reads half of it.
    let partial = format!("{file}.partial");
    fs::write(&partial, text).map_err(|e| e.to_string())?;
    fs::rename(&partial, file).map_err(|e| e.to_string())?;
    sleep_forever()
}

fn supervise(log_dir: &str) -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    runtime()?.block_on(async {
        let spec = ChildSpec::new("grandchild", me)
            .arg("forever")
            .log_dir(log_dir);
        let supervisor = Supervisor::start(spec, SupervisorOptions::new())
            .await
            .map_err(|e| e.to_string())?;
        let pid = supervisor.pid().ok_or("grandchild not running")?;
        println!("grandchild {pid}");
        std::future::pending::<()>().await;
        Ok(())
    })
}

fn spawn() -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let grandchild = std::process::Command::new(me)
        .arg("forever")
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    println!("grandchild {}", grandchild.id());
    sleep_forever()
}

fn supervise_guarded() -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    runtime()?.block_on(async {
        let spec = ChildSpec::new("spawner", me).arg("spawn").stdout_lines(4);
        let options = SupervisorOptions::new()
            .group_guard(true)
            .stop_grace(Duration::from_millis(500));
        let supervisor = Supervisor::start(spec, options)
            .await
            .map_err(|e| e.to_string())?;
        let pid = supervisor.pid().ok_or("child not running")?;
        let mut lines = supervisor.stdout_lines().ok_or("no stdout lines")?;
        let line = lines.next().await.ok_or("the child printed nothing")?;
        println!("child {pid}");
        println!("{}", String::from_utf8_lossy(&line));
        std::future::pending::<()>().await;
        Ok(())
    })
}

fn busy(ms: &str) -> Result<(), String> {
    // Until this process has used MS ms of CPU (not of wall time: on a loaded machine
    // those differ).
    let want: u64 = number(ms)?;
    let ticks = rustix::param::clock_ticks_per_second().max(1);
    let used_ms = || -> Result<u64, String> {
        let stat = fs::read_to_string("/proc/self/stat").map_err(|e| e.to_string())?;
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // utime and stime: fields 14 and 15, counted from `state` as field 3.
        let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        let (user, system) = tick(11)
            .zip(tick(12))
            .ok_or("cannot read /proc/self/stat")?;
        Ok((user + system) * 1000 / ticks)
    };
    let mut x = 0u64;
    while used_ms()? < want {
        for _ in 0..100_000 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
    }
    println!("busy done");
    sleep_forever()
}

fn files(n: &str, dir: &str) -> Result<(), String> {
    let n: usize = number(n)?;
    let mut open = Vec::with_capacity(n);
    for i in 0..n {
        let file =
            fs::File::create(Path::new(dir).join(format!("f{i}"))).map_err(|e| e.to_string())?;
        open.push(file);
    }
    println!("files open");
    sleep_forever()
}

fn write_file(file: &str, bytes: &str) -> Result<(), String> {
    let bytes: usize = number(bytes)?;
    let mut out = fs::File::create(file).map_err(|e| e.to_string())?;
    out.write_all(&vec![7u8; bytes])
        .map_err(|e| e.to_string())?;
    out.sync_all().map_err(|e| e.to_string())?;
    println!("written");
    sleep_forever()
}
