//! `vibes run [--name NAME] [--max-rss SIZE] [--max-cost USD] [--timeout DUR] -- COMMAND...`:
//! runs an agent under supervision and records it.
//!
//! The agent runs as a supervised child (vibes-supervisor): its own process group, the
//! kernel's parent-death signal, and a group guard, so neither it nor the processes it
//! starts outlive `vibes run`, even one killed with SIGKILL; stopping it means SIGTERM
//! to its group, then SIGKILL after `--stop-grace`. Its stdout is read live as Claude
//! stream-json into the log ([`crate::run::pump`]); its stderr is its own, passed
//! straight through to ours. Every second its whole process tree is measured into a
//! `run.sample`. `run.start` comes first; `run.exit` last, after the stream's events;
//! a passed limit writes `run.limit` and then stops the agent. SIGINT or SIGTERM to
//! `vibes run` stops the agent the same way and records `stopped_by: interrupted`.
//! The exit status is the agent's ([`crate::run::ending`] has the table).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::ErrorKind;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep_until};
use vibes_events::{Event, EventId, RunSample, RunStart, source};
use vibes_supervisor::{
    ChildSpec, Error as SupervisorError, Restart, State, Supervisor, SupervisorOptions, TreeSampler,
};

use crate::cli::{GlobalArgs, RunArgs};
use crate::output::{self, Outcome};
use crate::producer::Producer;
use crate::run::cost::RunCost;
use crate::run::ending::{Ending, StoppedBy};
use crate::run::limits::{Limits, Passed};
use crate::run::pump::{Progress, Pumped, REPORT_MALFORMED, pump};
use crate::run::recorder::{self, Recorded, Recorder};
use crate::storage::Storage;
use crate::usage::PriceTable;

/// stdout lines that wait for the pump, at most (see [`crate::run::recorder`] for what
/// happens when they are not taken fast enough).
const LINE_QUEUE: usize = 256;

/// How often the process tree is measured.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

pub fn run(storage: &Storage, args: &RunArgs, global: &GlobalArgs) -> Result<Outcome> {
    let limits = Limits::parse(
        args.max_rss.as_deref(),
        args.max_cost,
        args.timeout.map(Into::into),
    )?;
    let prices = match args
        .prices
        .as_ref()
        .or(storage.config.usage_prices.as_ref())
    {
        Some(path) => PriceTable::with_override(path)?,
        None => PriceTable::builtin()?,
    };
    let producer = Producer::open(storage, None)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let plan = Plan {
        run_id: EventId::new().to_string(),
        name: args.name.clone(),
        command: args.command.clone(),
        limits,
        grace: args.stop_grace.into(),
        cost: RunCost::new(prices),
    };
    let (recorder, queue) = recorder::channel();
    let (supervised, recorded) = std::thread::scope(|scope| {
        let appender = std::thread::Builder::new()
            .name("vibes-run-append".to_owned())
            .spawn_scoped(scope, || queue.record(&producer))
            .context("starting the append thread")?;
        let supervised = runtime.block_on(supervise(plan, recorder));
        let recorded = appender
            .join()
            .map_err(|_| anyhow!("the append thread panicked"))?;
        Ok::<_, anyhow::Error>((supervised, recorded))
    })?;
    // An append failure explains a run cut short; it is the error to report.
    let recorded = recorded?;
    let report = match supervised? {
        Supervised::NotStarted { code } => return Ok(Outcome::Code(code)),
        Supervised::Ran(report) => report,
    };
    storage.enforce_retention()?;
    if !global.quiet {
        eprint!("{}", render(&report, &recorded, storage));
    }
    Ok(Outcome::Code(report.ending.exit_code()))
}

/// What to run and how.
struct Plan {
    run_id: String,
    name: Option<String>,
    command: Vec<OsString>,
    limits: Limits,
    grace: Duration,
    cost: RunCost,
}

enum Supervised {
    /// The program could not be started (reported); exit with `code`.
    NotStarted {
        code: u8,
    },
    Ran(Box<Report>),
}

/// What a run did, for the summary.
struct Report {
    run_id: String,
    name: Option<String>,
    pid: u32,
    ending: Ending,
    pumped: Pumped,
    samples: u64,
    peak_rss: u64,
    peak_processes: u32,
    cpu_ms: u64,
}

/// Why the watch over a running agent ended.
enum Watch {
    /// The agent exited by itself.
    Exited,
    Limit(Passed),
    Interrupted(i32),
    /// An append failed: nothing more can be recorded.
    RecorderGone,
}

async fn supervise(plan: Plan, recorder: Recorder) -> Result<Supervised> {
    let mut interrupt = signal(SignalKind::interrupt()).context("handling SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    let (program, args) = plan
        .command
        .split_first()
        .context("no command given after --")?;
    let spec = ChildSpec::new("agent", program)
        .args(args)
        .stdout_lines(LINE_QUEUE)
        .stderr_inherit();
    let options = SupervisorOptions::new()
        .restart(Restart::Never)
        .group_guard(true)
        .stop_grace(plan.grace);
    let started = Instant::now();
    let supervisor = match Supervisor::start(spec, options).await {
        Ok(supervisor) => supervisor,
        Err(SupervisorError::Spawn { program, source }) => {
            // As shells do: 127 for a command not found, 126 for one not executable.
            let code = match source.kind() {
                ErrorKind::NotFound => 127,
                ErrorKind::PermissionDenied => 126,
                _ => crate::output::EXIT_ERROR,
            };
            eprintln!("error: cannot start {}: {source}", program.display());
            return Ok(Supervised::NotStarted { code });
        }
        Err(err) => return Err(anyhow::Error::new(err).context("starting the agent")),
    };
    // Running when `start` returns (or already exited: then there is no tree to measure).
    let pid = supervisor.pid().unwrap_or(0);
    let mut start = RunStart::new(
        plan.run_id.clone(),
        plan.command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    );
    start.name.clone_from(&plan.name);
    start.pid = (pid != 0).then_some(pid);
    start.cwd = std::env::current_dir()
        .ok()
        .map(|d| d.display().to_string());
    start.max_rss_bytes = plan.limits.max_rss;
    start.max_cost_usd = plan.limits.max_cost;
    start.timeout_ms = plan
        .limits
        .timeout
        .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
    let mut gone = recorder.send(vec![event(start)]).await.is_err();

    let lines = supervisor
        .stdout_lines()
        .context("the agent's stdout is not handed over")?;
    let (exited_tx, exited) = watch::channel(false);
    let (progress_tx, mut progress) = watch::channel(Progress::default());
    let pumping = tokio::spawn(pump(
        lines,
        exited,
        recorder.clone(),
        progress_tx,
        plan.cost,
        plan.name.clone(),
    ));

    let mut sampler = TreeSampler::new(pid);
    let mut ticks = interval_at(started + SAMPLE_EVERY, SAMPLE_EVERY);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let deadline = plan.limits.timeout.map(|t| started + t);
    let mut cost_open = plan.limits.max_cost.is_some();
    let (mut samples, mut peak_rss, mut peak_processes, mut cpu_ms) = (0u64, 0u64, 0u32, 0u64);
    let mut sampler_failed = false;
    let why = loop {
        if gone {
            break Watch::RecorderGone;
        }
        tokio::select! {
            _ = ticks.tick() => {
                let sample = match sampler.sample() {
                    Ok(sample) => sample,
                    Err(err) => {
                        if !std::mem::replace(&mut sampler_failed, true) {
                            eprintln!("vibes run: cannot measure the agent's processes: {err}");
                        }
                        continue;
                    }
                };
                if sample.processes() == 0 {
                    continue; // exited; its end is next
                }
                let Progress { session_id, cost_usd } = progress.borrow().clone();
                let mut data = RunSample::new(plan.run_id.clone());
                data.session_id = session_id;
                data.processes = sample.processes();
                data.cpu_ms = sample.cpu_ms;
                data.cpu_percent = sample.cpu_percent;
                data.rss_bytes = sample.rss_bytes;
                data.read_bytes = sample.read_bytes;
                data.write_bytes = sample.write_bytes;
                data.open_files = sample.open_files;
                data.cost_usd = Some(cost_usd);
                samples += 1;
                peak_rss = peak_rss.max(sample.rss_bytes);
                peak_processes = peak_processes.max(sample.processes());
                cpu_ms = sample.cpu_ms;
                gone = recorder.send(vec![event(data)]).await.is_err();
                if let Some(passed) = plan.limits.rss(sample.rss_bytes) {
                    break Watch::Limit(passed);
                }
            }
            changed = progress.changed(), if cost_open => {
                if changed.is_err() {
                    cost_open = false; // the stream ended
                } else if let Some(passed) = plan.limits.cost(progress.borrow().cost_usd) {
                    break Watch::Limit(passed);
                }
            }
            () = wait_until(deadline) => {
                if let Some(passed) = plan.limits.timed_out(started.elapsed()) {
                    break Watch::Limit(passed);
                }
            }
            _ = interrupt.recv() => break Watch::Interrupted(2),
            _ = terminate.recv() => break Watch::Interrupted(15),
            _ = supervisor.wait_for(State::is_final) => break Watch::Exited,
        }
    };

    let session_now = || progress.borrow().session_id.clone();
    let stopped_by = match &why {
        Watch::Exited => None,
        Watch::Limit(passed) => {
            let limit = event(passed.event(&plan.run_id, session_now()));
            gone |= recorder.send(vec![limit]).await.is_err();
            eprintln!(
                "vibes run: {}; stopping the agent (SIGTERM, SIGKILL after {})",
                passed.message(),
                humantime::format_duration(plan.grace)
            );
            Some(StoppedBy::Limit(passed.limit))
        }
        Watch::Interrupted(signal) => {
            eprintln!("vibes run: interrupted; stopping the agent");
            Some(StoppedBy::Interrupted(*signal))
        }
        Watch::RecorderGone => {
            eprintln!("vibes run: storing events failed; stopping the agent");
            None
        }
    };
    if !matches!(why, Watch::Exited) {
        supervisor.stop().await.context("stopping the agent")?;
    }
    let _ = supervisor.wait_for(State::is_final).await;
    let duration = started.elapsed();
    let status = supervisor.last_exit();
    let _ = exited_tx.send(true);
    let pumped = pumping.await.context("the stdout reader failed")?;
    let Ok(pumped) = pumped else {
        anyhow::bail!("storing the agent's events failed; it was stopped");
    };
    if gone {
        anyhow::bail!("storing the run's events failed; the agent was stopped");
    }
    let ending = Ending {
        status,
        stopped_by,
        duration,
    };
    let exit = event(ending.event(&plan.run_id, pumped.session_id.clone()));
    if recorder.send(vec![exit]).await.is_err() {
        anyhow::bail!("storing run.exit failed");
    }
    Ok(Supervised::Ran(Box::new(Report {
        run_id: plan.run_id,
        name: plan.name,
        pid,
        ending,
        pumped,
        samples,
        peak_rss,
        peak_processes,
        cpu_ms,
    })))
}

/// A `run.*` event: the host's, now, with a fresh id (a run is an occurrence, not a
/// reading of something that could be read again).
fn event(data: impl Into<vibes_events::EventData>) -> Event {
    Event::new(source::VIBES, data)
}

/// Sleeps until `deadline`; never returns without one.
async fn wait_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn render(report: &Report, recorded: &Recorded, storage: &Storage) -> String {
    let mut s = String::new();
    let ending = &report.ending;
    let _ = writeln!(
        s,
        "vibes run: the agent (pid {}) {} after {}",
        report.pid,
        ending.describe(),
        output::human_ms(u64::try_from(ending.duration.as_millis()).unwrap_or(u64::MAX))
    );
    let name = report
        .name
        .as_deref()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    let _ = writeln!(s, "  run        {}{name}", report.run_id);
    let _ = writeln!(
        s,
        "  session    {}",
        report.pumped.session_id.as_deref().unwrap_or("(none seen)")
    );
    let by_type = recorded
        .by_type
        .iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        s,
        "  events     {} stored in {}: {by_type}",
        recorded.stored,
        storage.describe()
    );
    let _ = writeln!(
        s,
        "  resources  {} samples; peak {} resident, {} processes; {} CPU",
        report.samples,
        output::human_bytes(report.peak_rss),
        report.peak_processes,
        output::human_ms(report.cpu_ms)
    );
    let cost = &report.pumped.cost;
    let unpriced = if cost.unpriced_models().is_empty() {
        String::new()
    } else {
        let models: Vec<&str> = cost.unpriced_models().iter().map(String::as_str).collect();
        format!(" (no price for {})", models.join(", "))
    };
    let _ = writeln!(
        s,
        "  cost       ${:.4} for {} API calls{unpriced}",
        cost.usd(),
        cost.calls()
    );
    let summary = &report.pumped.summary;
    let _ = writeln!(
        s,
        "  stdout     {} lines, {} blank, {} skipped, {} malformed",
        summary.lines,
        summary.blank_lines,
        summary.skipped.values().sum::<u64>(),
        summary.malformed.len()
    );
    if summary.malformed.len() > REPORT_MALFORMED {
        let _ = writeln!(
            s,
            "  malformed  {} more lines than reported above",
            summary.malformed.len() - REPORT_MALFORMED
        );
    }
    if report.pumped.held_open {
        let _ = writeln!(
            s,
            "  note       stdout stayed open after the agent exited (a process it started \
             holds it); lines written after that were not read"
        );
    }
    s
}
