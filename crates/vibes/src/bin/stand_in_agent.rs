//! A stand-in for an agent, for the tests of `vibes run`: it does what its arguments
//! say, in their order, and then exits with 0.
//!
//! - `--pid-file FILE`: writes its process id to FILE.
//! - `--grandchild FILE`: starts a copy of itself that sleeps for ten minutes (a plain
//!   child, in this process's group, its stdin, stdout and stderr on /dev/null) and
//!   writes that copy's process id to FILE.
//! - `--stderr TEXT`: writes TEXT and a newline to stderr.
//! - `--stdout TEXT`: writes TEXT and a newline to stdout.
//! - `--delay-ms N`: waits N milliseconds before each line `--play` writes from now on.
//! - `--play FILE`: writes every line of FILE (a recorded stream-json session) to stdout.
//! - `--burn-mb N`: allocates N MiB and touches every page, and keeps it.
//! - `--sleep-ms N`: sleeps N milliseconds.
//! - `--exit CODE`: exits with CODE at once.
//! - `--fail TEXT`: writes `error: TEXT` to stderr and exits with 1.
//!
//! Files written (pid files) are written whole and renamed into place, so a test that
//! sees one can read all of it.

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::Duration;

fn main() -> ExitCode {
    match act(std::env::args().skip(1).collect()) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("vibes-stand-in-agent: {err}");
            ExitCode::from(2)
        }
    }
}

fn act(args: Vec<String>) -> Result<u8, String> {
    let mut delay = Duration::ZERO;
    let mut kept: Vec<Vec<u8>> = Vec::new();
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--pid-file" => write_whole(&value()?, &std::process::id().to_string())?,
            "--grandchild" => {
                let file = value()?;
                let me = std::env::current_exe().map_err(|e| e.to_string())?;
                // Its output goes nowhere: it must not hold the caller's pipes open.
                let child = Command::new(me)
                    .args(["--sleep-ms", "600000"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .map_err(|e| format!("starting the grandchild: {e}"))?;
                write_whole(&file, &child.id().to_string())?;
            }
            "--stderr" => eprintln!("{}", value()?),
            "--stdout" => println!("{}", value()?),
            "--delay-ms" => delay = Duration::from_millis(number(&value()?)?),
            "--play" => play(&value()?, delay)?,
            "--burn-mb" => kept.push(burn(number(&value()?)?)),
            "--sleep-ms" => thread::sleep(Duration::from_millis(number(&value()?)?)),
            "--exit" => {
                let code = value()?;
                return code
                    .parse()
                    .map_err(|_| format!("not an exit code: {code}"));
            }
            "--fail" => {
                eprintln!("error: {}", value()?);
                return Ok(1);
            }
            other => {
                return Err(format!(
                    "unknown argument {other}; see the source for usage"
                ));
            }
        }
    }
    drop(kept);
    Ok(0)
}

fn number(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("not a number: {text}"))
}

fn write_whole(path: &str, text: &str) -> Result<(), String> {
    let partial = format!("{path}.partial");
    fs::write(&partial, text).map_err(|e| format!("writing {partial}: {e}"))?;
    fs::rename(&partial, path).map_err(|e| format!("writing {path}: {e}"))
}

fn play(path: &str, delay: Duration) -> Result<(), String> {
    let file = fs::File::open(path).map_err(|e| format!("opening {path}: {e}"))?;
    let mut out = io::stdout().lock();
    for line in BufReader::new(file).split(b'\n') {
        let line = line.map_err(|e| format!("reading {path}: {e}"))?;
        thread::sleep(delay);
        out.write_all(&line)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush())
            .map_err(|e| format!("writing stdout: {e}"))?;
    }
    Ok(())
}

fn burn(mib: u64) -> Vec<u8> {
    let len = usize::try_from(mib << 20).unwrap_or(usize::MAX);
    let mut memory = vec![0u8; len];
    // Touch every page so it is resident, not just reserved.
    for page in memory.chunks_mut(4096) {
        page[0] = 1;
    }
    std::hint::black_box(memory)
}
