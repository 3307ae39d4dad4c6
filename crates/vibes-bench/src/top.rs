//! `vibes top` following a log that grows by 10,000 events a second, as a user runs it:
//! the release binary in a real terminal (a detached tmux session, 200x50), on a data
//! dir another process appends to. Beside it, `vibes tail -f` (what a user would run
//! instead to watch the stream) follows the same appends, its output thrown away.
//!
//! The events are the real transcripts the `ai-coder` suite replicates (each copy new
//! sessions), appended in batches every 10 ms on an absolute schedule for 20 s (5 s with
//! `--quick`). For each follower: its CPU time over the appending (user plus system,
//! all threads, from `/proc`), its resident set halfway and at the end (growth in the
//! second half says whether memory is bounded), and its peak. `vibes top` must also
//! have kept up: the screen must show every appended record read (its `N records read`
//! line) within seconds of the last append, else the suite fails.
//!
//! Target: `vibes top` under one core at 10,000 events/s, memory bounded. Needs tmux.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use vibes_events::{Event, Timestamp};

use crate::report::{Column, Measurement, Report};
use crate::usage::child::{self, cpu_ticks_of, status_kib};
use crate::{Options, Result};

const RATE: u64 = 10_000;
const TICK: Duration = Duration::from_millis(10);

pub(crate) fn run(options: Options, report: &mut Report) -> Result<()> {
    if Command::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .map_or(true, |s| !s.success())
    {
        report.note("top rows skipped: tmux is not installed (apt-get install tmux)");
        return Ok(());
    }
    let vibes = child::vibes_binary()?;
    let (events, what) = crate::ai_coder::inputs()?;
    if events.is_empty() {
        return Err("the inputs hold no events".into());
    }
    let seconds: u64 = if options.quick { 5 } else { 20 };
    let scratch = crate::log::scratch_dir()?;
    let data = scratch.path().join("data");
    let session = format!("vibes-bench-top-{}", std::process::id());
    let result = measure(report, &vibes, &data, &session, &events, &what, seconds);
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &session])
        .stderr(Stdio::null())
        .status();
    result
}

fn tmux(args: &[&str]) -> Result<String> {
    let out = Command::new("tmux").args(args).output()?;
    if !out.status.success() {
        return Err(format!(
            "tmux {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Waits until the pane's screen satisfies `done`; the last screen either way.
fn wait_for(
    session: &str,
    within: Duration,
    done: impl Fn(&str) -> bool,
) -> Result<(bool, String)> {
    let deadline = Instant::now() + within;
    loop {
        let screen = tmux(&["capture-pane", "-p", "-t", session])?;
        if done(&screen) {
            return Ok((true, screen));
        }
        if Instant::now() >= deadline {
            return Ok((false, screen));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// One follower's figures over the appending.
struct Followed {
    cpu_s: f64,
    rss_half_mib: f64,
    rss_end_mib: f64,
    peak_mib: f64,
}

/// Samples a process: CPU ticks and resident set.
struct Sampler {
    pid: u32,
    ticks_at_start: u64,
    rss_half_kib: u64,
}

impl Sampler {
    fn start(pid: u32) -> Result<Self> {
        Ok(Sampler {
            pid,
            ticks_at_start: cpu_ticks_of(pid).ok_or(format!("no /proc/{pid}/stat"))?,
            rss_half_kib: 0,
        })
    }

    fn half(&mut self) {
        self.rss_half_kib = status_kib(self.pid, "VmRSS:").unwrap_or(0);
    }

    fn end(&self) -> Result<Followed> {
        let ticks = cpu_ticks_of(self.pid).ok_or(format!("process {} is gone", self.pid))?;
        let per_second = rustix::param::clock_ticks_per_second().max(1) as f64;
        let mib = |kib: u64| kib as f64 / 1024.0;
        Ok(Followed {
            cpu_s: (ticks - self.ticks_at_start) as f64 / per_second,
            rss_half_mib: mib(self.rss_half_kib),
            rss_end_mib: mib(status_kib(self.pid, "VmRSS:").unwrap_or(0)),
            peak_mib: mib(status_kib(self.pid, "VmHWM:").unwrap_or(0)),
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn measure(
    report: &mut Report,
    vibes: &Path,
    data: &Path,
    session: &str,
    events: &[Event],
    what: &str,
    seconds: u64,
) -> Result<()> {
    let command = format!("exec {} --data-dir {} top", vibes.display(), data.display());
    tmux(&[
        "new-session",
        "-d",
        "-s",
        session,
        "-x",
        "200",
        "-y",
        "50",
        &command,
    ])?;
    let (ready, screen) = wait_for(session, Duration::from_secs(30), |s| {
        s.contains("records read")
    })?;
    if !ready {
        return Err(format!("vibes top did not start in 30 s; its screen:\n{screen}").into());
    }
    let top_pid: u32 = tmux(&["display", "-p", "-t", session, "#{pane_pid}"])?
        .trim()
        .parse()
        .map_err(|e| format!("tmux gave no pane pid: {e}"))?;
    let mut tail: Child = Command::new(vibes)
        .arg("--data-dir")
        .arg(data)
        .args(["tail", "-f"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    // Let both settle on the (empty) log before measuring.
    thread::sleep(Duration::from_millis(500));

    let per_tick = (RATE * TICK.as_millis() as u64 / 1000) as usize;
    let ticks = seconds * 1000 / TICK.as_millis() as u64;
    let total = per_tick as u64 * ticks;
    let copies = total.div_ceil(events.len() as u64);
    let base = Timestamp::from_second(1_770_000_000)?;
    let mut stream = (0..copies).flat_map(|k| {
        let at = base
            .checked_add(Duration::from_secs(k * 3600))
            .map_err(|e| e.to_string());
        events.iter().map(move |e| {
            let at = at.clone()?;
            crate::ai_coder::copy_of(e, k, at).map_err(|e| e.to_string())
        })
    });
    let mut batches = Vec::with_capacity(ticks as usize);
    for _ in 0..ticks {
        let batch: std::result::Result<Vec<Event>, String> =
            stream.by_ref().take(per_tick).collect();
        batches.push(batch?);
    }

    let mut top = Sampler::start(top_pid)?;
    let mut tailing = Sampler::start(tail.id())?;
    let started = Instant::now();
    let half = ticks / 2;
    let mut tick = 0u64;
    let paced = batches.into_iter().inspect(|_| {
        let due = started + TICK * u32::try_from(tick).unwrap_or(u32::MAX);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        if tick == half {
            top.half();
            tailing.half();
        }
        tick += 1;
    });
    crate::plugins::store_host_events(data, paced)?;
    let appending_s = started.elapsed().as_secs_f64();
    let last_append = Instant::now();
    let want = format!("{total} records read");
    let (kept_up, screen) = wait_for(session, Duration::from_secs(30), |s| s.contains(&want))?;
    let behind_s = last_append.elapsed().as_secs_f64();
    let top_figures = top.end()?;
    let tail_figures = tailing.end()?;
    let _ = tail.kill();
    let _ = tail.wait();
    if !kept_up {
        return Err(format!(
            "vibes top did not show `{want}` within 30 s of the last append; its screen:\n{screen}"
        )
        .into());
    }

    report.section(
        &format!(
            "vibes top and vibes tail -f following {total} events appended at {RATE}/s \
             for {seconds} s ({what}, copies as new sessions; CPU over the appending, \
             RSS+ = growth from halfway to the end); vs tail -f: CPU time ratio"
        ),
        "follower",
        &[
            Column::EventsPerS,
            Column::Seconds,
            Column::CpuS,
            Column::RssMb,
            Column::PeakMib,
        ],
        "vs tail -f",
    );
    let row = |name: &str, f: &Followed| Measurement {
        events_per_s: Some(total as f64 / appending_s),
        seconds: Some(appending_s),
        cpu_s: Some(f.cpu_s),
        rss_mb: Some(f.rss_end_mib - f.rss_half_mib),
        peak_mib: Some(f.peak_mib),
        ..Measurement::new("follow_10k_per_s", name)
    };
    report.row(&row("vibes tail -f", &tail_figures), None);
    report.row(
        &row("vibes top", &top_figures),
        (tail_figures.cpu_s > 0.0).then(|| top_figures.cpu_s / tail_figures.cpu_s),
    );
    let cores = top_figures.cpu_s / appending_s;
    report.note(&format!(
        "vibes top: {cores:.2} cores while {RATE} events/s were appended (target: under 1, {}); \
         resident {:.1} MiB halfway and {:.1} MiB at the end (peak {:.1} MiB); its screen \
         showed all {total} records read {behind_s:.2} s after the last append. \
         vibes tail -f: {:.2} cores.",
        if cores < 1.0 { "met" } else { "missed" },
        top_figures.rss_half_mib,
        top_figures.rss_end_mib,
        top_figures.peak_mib,
        tail_figures.cpu_s / appending_s,
    ));
    Ok(())
}
