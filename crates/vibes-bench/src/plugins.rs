//! The plugin runtime against what a plugin author would write by hand: a bare typed
//! consumer over the same file log.
//!
//! - `plugin_throughput`: a plugin that does nothing, run by the runtime (consumer
//!   group, filter, handle, commit, status), against a bare `EventConsumer` that polls
//!   and commits, both reading the same stored log from the start. Target: the plugin
//!   at least 70% of the bare consumer's events per second.
//! - `append_to_plugin`: one event appended every millisecond with durability `never`;
//!   the time from the append's start to the plugin (or the bare consumer) holding the
//!   event. Target: p99 under 5 ms.
//! - `plugin_restart`: the sessions plugin restarted over a stored log, from its
//!   snapshot against a full replay (a plugin without snapshots). Both count as
//!   restarted when the plugin is live and has no lag.
//! - `session_queries`: `vibes stats` and `vibes tail --session` as a user runs them
//!   (needs `target/release/vibes`), the index against a scan.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;
use vibes_events::Event;
use vibes_filelog::{FileLog, FileLogOptions};
use vibes_log::{AppendOptions, Durability, EventLog};
use vibes_plugin::{
    Emitter, Input, Manifest, Plugin, PluginError, PluginState, PluginStatus, QueryArgs,
    QueryError, RunningPlugin, Runtime, RuntimeOptions, Shutdown,
};
use vibes_plugin_sessions::Sessions;

use crate::log::{event, percentile_us, scratch_dir, seq_of};
use crate::report::{Column, Measurement, Report};
use crate::{Options, Result};

/// The input topic of every workload.
const TOPIC: &str = "bench/events";
/// Partitions of the input topic (the host's default).
const PARTITIONS: u32 = 4;
/// Records per poll, for the runtime and the bare consumer alike (the host's).
const POLL_MAX: usize = 1024;
/// How long an empty poll waits (the host's).
const POLL_WAIT: Duration = Duration::from_millis(250);

pub(crate) fn run(options: Options, report: &mut Report) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    throughput(options, report, &runtime)?;
    latency(options, report, &runtime)?;
    restart(options, report, &runtime)
}

fn runtime_options() -> RuntimeOptions {
    RuntimeOptions::new(TOPIC)
        .input_partitions(PARTITIONS)
        .poll(POLL_MAX, POLL_WAIT)
        .durability(Durability::Never)
}

async fn open(
    dir: &std::path::Path,
    durability: Durability,
) -> Result<(Arc<FileLog>, EventLog<Event>)> {
    let file = Arc::new(FileLog::open(
        dir,
        FileLogOptions::default().durability(durability),
    )?);
    let log = EventLog::open_with(
        file.clone(),
        TOPIC,
        vibes_log::TopicConfig::partitions(PARTITIONS),
        vibes_log::JsonCodec,
    )
    .await?;
    Ok((file, log))
}

/// A plugin that reads what its filter passes and does nothing: the cost of reading,
/// decoding and the runtime.
pub(crate) struct Null(pub(crate) vibes_events::Filter);

impl Plugin for Null {
    fn manifest(&self) -> Manifest {
        Manifest::new("null", "does nothing").filter(self.0.clone())
    }
    fn handle(&mut self, _: &Input<'_>, _: &mut Emitter) -> Result<(), PluginError> {
        Ok(())
    }
    fn query(&self, _: &str, _: &QueryArgs) -> Result<Value, QueryError> {
        Err(QueryError::BadArgument("no queries".into()))
    }
}

/// Polls `running` until `done` says so; errors after `limit`.
async fn wait_until(
    running: &RunningPlugin,
    limit: Duration,
    what: &str,
    done: impl Fn(&PluginStatus) -> bool,
) -> Result<()> {
    let started = Instant::now();
    loop {
        let status = running.status();
        if done(&status) {
            return Ok(());
        }
        if started.elapsed() > limit {
            return Err(format!("{what}: not done after {limit:?}: {status:?}").into());
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

fn caught_up(status: &PluginStatus) -> bool {
    status.state == PluginState::Live && status.lag.values().all(|l| *l == 0)
}

fn throughput(
    options: Options,
    report: &mut Report,
    runtime: &tokio::runtime::Runtime,
) -> Result<()> {
    let n: u64 = if options.quick { 200_000 } else { 1_000_000 };
    report.section(
        &format!(
            "Plugin throughput: {n} stored events read from the file log from the start, \
             a plugin that does nothing under the runtime against a bare typed consumer \
             (target: at least 70% of its events/s)"
        ),
        "reader",
        &[Column::EventsPerS, Column::Seconds],
        "vs bare",
    );
    let scratch = scratch_dir()?;
    runtime.block_on(async {
        let (file, log) = open(scratch.path(), Durability::Never).await?;
        let events: Vec<Event> = (0..10_000).map(event).collect();
        let mut stored = 0;
        while stored < n {
            log.append_batch(&events).await?;
            stored += events.len() as u64;
        }

        let started = Instant::now();
        let mut consumer = log.consumer("bench-bare").await?;
        let mut read = 0u64;
        while read < n {
            let batch = consumer.poll(POLL_MAX, POLL_WAIT).await?;
            if !batch.failures.is_empty() {
                return Err(format!("bare: {} records do not decode", batch.failures.len()).into());
            }
            read += batch.events.len() as u64;
            consumer.commit().await?;
        }
        let bare = started.elapsed().as_secs_f64();
        let bare_rate = read as f64 / bare;
        report.row(
            &Measurement {
                events_per_s: Some(bare_rate),
                seconds: Some(bare),
                ..Measurement::new("plugin_throughput", "bare EventConsumer")
            },
            None,
        );

        let plugins = Runtime::new(file.clone(), runtime_options());
        let shutdown = Shutdown::new();
        let started = Instant::now();
        let running = plugins.spawn(Arc::new(|| Box::new(Null(vibes_events::Filter::all())) as Box<dyn Plugin>), &shutdown)?;
        wait_until(&running, Duration::from_secs(600), "null plugin", |s| {
            s.processed >= n
        })
        .await?;
        let plugin = started.elapsed().as_secs_f64();
        shutdown.trigger();
        running.join().await;
        let rate = n as f64 / plugin;
        report.row(
            &Measurement {
                events_per_s: Some(rate),
                seconds: Some(plugin),
                ..Measurement::new("plugin_throughput", "null plugin")
            },
            Some(rate / bare_rate),
        );
        if rate < 0.7 * bare_rate {
            report.note(&format!(
                "plugin_throughput: the null plugin reaches {:.0}% of the bare consumer, under the 70% target",
                100.0 * rate / bare_rate
            ));
        }
        Ok(())
    })
}

/// Where each event was when: appended (start of the append) and received.
#[derive(Default)]
struct Times {
    sent: Vec<Option<Instant>>,
    received: Vec<Option<Instant>>,
}

impl Times {
    fn new(n: usize) -> Self {
        Times {
            sent: vec![None; n],
            received: vec![None; n],
        }
    }

    fn receive(&mut self, event: &Event) {
        if let Some(slot) = seq_of(event).and_then(|s| self.received.get_mut(s as usize)) {
            slot.get_or_insert_with(Instant::now);
        }
    }

    fn latencies(&self) -> Result<Vec<Duration>> {
        let mut out = Vec::with_capacity(self.sent.len());
        for (i, (sent, received)) in self.sent.iter().zip(&self.received).enumerate() {
            match (sent, received) {
                (Some(s), Some(r)) => out.push(r.saturating_duration_since(*s)),
                (Some(_), None) => {
                    return Err(format!("event {i} was appended but never received").into());
                }
                _ => {}
            }
        }
        out.sort_unstable();
        Ok(out)
    }
}

/// Notes when each event reaches it.
struct Probe(Arc<Mutex<Times>>);

impl Plugin for Probe {
    fn manifest(&self) -> Manifest {
        Manifest::new("probe", "notes when events arrive")
    }
    fn handle(&mut self, input: &Input<'_>, _: &mut Emitter) -> Result<(), PluginError> {
        self.0.lock().receive(input.event);
        Ok(())
    }
    fn query(&self, _: &str, _: &QueryArgs) -> Result<Value, QueryError> {
        Err(QueryError::BadArgument("no queries".into()))
    }
}

fn latency(options: Options, report: &mut Report, runtime: &tokio::runtime::Runtime) -> Result<()> {
    let n: usize = if options.quick { 1000 } else { 5000 };
    report.section(
        &format!(
            "Append-to-plugin latency: {n} events appended one per millisecond to the file \
             log with durability never, until the plugin (or a bare consumer) holds each \
             (target: p99 under 5 ms)"
        ),
        "reader",
        &[Column::P50Us, Column::P99Us, Column::MaxUs],
        "p99 vs bare",
    );
    let mut bare_p99 = None;
    for plugin in [false, true] {
        let scratch = scratch_dir()?;
        let times = Arc::new(Mutex::new(Times::new(n)));
        runtime.block_on(async {
            let (file, log) = open(scratch.path(), Durability::Never).await?;
            let shutdown = Shutdown::new();
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let mut running = None;
            let mut bare = None;
            if plugin {
                let probe = Arc::clone(&times);
                let plugins = Runtime::new(file.clone(), runtime_options());
                let r = plugins.spawn(
                    Arc::new(move || Box::new(Probe(Arc::clone(&probe))) as Box<dyn Plugin>),
                    &shutdown,
                )?;
                wait_until(&r, Duration::from_secs(10), "probe start", caught_up).await?;
                running = Some(r);
            } else {
                let mut consumer = log.consumer("bench-bare").await?;
                let times = Arc::clone(&times);
                let mut stop = stop_rx.clone();
                bare = Some(tokio::spawn(async move {
                    while !*stop.borrow() {
                        let batch = tokio::select! {
                            b = consumer.poll(POLL_MAX, POLL_WAIT) => b?,
                            _ = stop.changed() => break,
                        };
                        {
                            let mut t = times.lock();
                            for d in &batch.events {
                                t.receive(&d.event);
                            }
                        }
                        consumer.commit().await?;
                    }
                    Ok::<(), crate::Error>(())
                }));
            }
            let never = AppendOptions::durability(Durability::Never);
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            for seq in 0..n {
                tick.tick().await;
                let e = event(seq as u64);
                times.lock().sent[seq] = Some(Instant::now());
                log.append_with(&e, never).await?;
            }
            // Give the last events time to arrive.
            let deadline = Instant::now() + Duration::from_secs(5);
            while times.lock().received.iter().any(Option::is_none) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            shutdown.trigger();
            stop_tx.send_replace(true);
            if let Some(r) = running {
                r.join().await;
            }
            if let Some(task) = bare {
                task.await??;
            }
            Ok::<(), crate::Error>(())
        })?;
        let lat = times.lock().latencies()?;
        let p99 = percentile_us(&lat, 99.0);
        let m = Measurement {
            p50_us: Some(percentile_us(&lat, 50.0)),
            p99_us: Some(p99),
            max_us: lat.last().map(|d| d.as_secs_f64() * 1e6),
            ..Measurement::new(
                "append_to_plugin",
                if plugin {
                    "plugin"
                } else {
                    "bare EventConsumer"
                },
            )
        };
        let ratio = if plugin {
            bare_p99.map(|b| p99 / b)
        } else {
            None
        };
        if !plugin {
            bare_p99 = Some(p99);
        }
        report.row(&m, ratio);
        if plugin && p99 > 5_000.0 {
            report.note(&format!(
                "append_to_plugin: p99 {p99:.0} µs is over the 5 ms target"
            ));
        }
    }
    Ok(())
}

/// The sessions plugin with snapshots off (and its own group).
struct NoSnapshots(Sessions);

impl Plugin for NoSnapshots {
    fn manifest(&self) -> Manifest {
        let mut m = self.0.manifest().snapshot_every(0);
        m.name = "sessions-replay".into();
        m.stream = m.name.clone();
        m
    }
    fn handle(&mut self, input: &Input<'_>, out: &mut Emitter) -> Result<(), PluginError> {
        self.0.handle(input, out)
    }
    fn query(&self, name: &str, args: &QueryArgs) -> Result<Value, QueryError> {
        self.0.query(name, args)
    }
}

/// `n` events of `n / 500` sessions, appended as agents would: 100-event bursts of a
/// session, 20 sessions at a time.
pub(crate) fn session_events(n: u64) -> impl Iterator<Item = Vec<Event>> {
    const PER_SESSION: u64 = 500;
    const BURST: u64 = 100;
    const AT_ONCE: u64 = 20;
    let sessions = n.div_ceil(PER_SESSION);
    (0..sessions.div_ceil(AT_ONCE)).flat_map(move |group| {
        (0..PER_SESSION / BURST).flat_map(move |burst| {
            (0..AT_ONCE).filter_map(move |k| {
                let session = group * AT_ONCE + k;
                (session < sessions).then(|| {
                    (0..BURST)
                        .map(|i| {
                            let seq = session * PER_SESSION + burst * BURST + i;
                            let mut e = event(seq);
                            if let vibes_events::EventData::Text(t) = &mut e.data {
                                t.session_id = Some(format!("bench-session-{session:06}"));
                            }
                            e
                        })
                        .collect()
                })
            })
        })
    })
}

fn restart(options: Options, report: &mut Report, runtime: &tokio::runtime::Runtime) -> Result<()> {
    let n: u64 = if options.quick { 200_000 } else { 1_000_000 };
    report.section(
        &format!(
            "Plugin restart: the sessions plugin restarted over {n} stored events, until live \
             with no lag"
        ),
        "start",
        &[Column::Seconds, Column::EventsPerS],
        "vs replay",
    );
    let scratch = scratch_dir()?;
    runtime.block_on(async {
        let (file, log) = open(scratch.path(), Durability::Never).await?;
        for batch in session_events(n) {
            log.append_batch(&batch).await?;
        }
        let plugins = Runtime::new(file.clone(), runtime_options());
        let mut times = Vec::new();
        for snapshots in [false, true] {
            let factory: vibes_plugin::PluginFactory = if snapshots {
                Arc::new(|| Box::new(Sessions::new()) as Box<dyn Plugin>)
            } else {
                Arc::new(|| Box::new(NoSnapshots(Sessions::new())) as Box<dyn Plugin>)
            };
            // The first start handles everything and commits (and, with snapshots,
            // saves one when it goes idle).
            let shutdown = Shutdown::new();
            let first = plugins.spawn(Arc::clone(&factory), &shutdown)?;
            wait_until(&first, Duration::from_secs(900), "first start", |s| {
                caught_up(s) && s.processed >= n && (!snapshots || s.snapshots > 0)
            })
            .await?;
            // Wait for the idle snapshot that covers everything.
            if snapshots {
                tokio::time::sleep(POLL_WAIT * 3).await;
            }
            shutdown.trigger();
            first.join().await;

            let shutdown = Shutdown::new();
            let started = Instant::now();
            let again = plugins.spawn(factory, &shutdown)?;
            wait_until(&again, Duration::from_secs(900), "restart", caught_up).await?;
            let seconds = started.elapsed().as_secs_f64();
            let status = again.status();
            shutdown.trigger();
            again.join().await;
            if snapshots && status.restored_from_snapshot.is_none() {
                return Err("the restart did not start from a snapshot".into());
            }
            times.push(seconds);
            let ratio = if snapshots {
                Some(seconds / times[0])
            } else {
                None
            };
            report.row(
                &Measurement {
                    seconds: Some(seconds),
                    events_per_s: Some(n as f64 / seconds),
                    ..Measurement::new(
                        "plugin_restart",
                        if snapshots {
                            "from snapshot"
                        } else {
                            "full replay"
                        },
                    )
                },
                ratio,
            );
        }
        Ok(())
    })
}

/// Runs `vibes --data-dir DIR args...`; returns its wall time and stdout.
pub(crate) fn time_vibes(
    bin: &std::path::Path,
    dir: &std::path::Path,
    args: &[&str],
) -> Result<(f64, Vec<u8>)> {
    let started = Instant::now();
    let out = std::process::Command::new(bin)
        .env("HOME", dir)
        .env_remove("VIBES_DATA_DIR")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()?;
    let seconds = started.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!(
            "vibes {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok((seconds, out.stdout))
}

/// Rebuilds `plugin` (fresh) over everything `plugins` reads, after a plugin with its
/// filter that does nothing (what reading and decoding cost), and reports both as
/// `workload` rows (`name`: the plugin's row). Checks that it read all `total`
/// events.
pub(crate) async fn fold_against_null(
    plugins: &Runtime,
    plugin: &mut dyn Plugin,
    workload: &str,
    name: &str,
    total: u64,
    report: &mut Report,
) -> Result<Folded> {
    let started = Instant::now();
    plugins
        .rebuild(&mut Null(plugin.manifest().filter), |_| {})
        .await?;
    let null = started.elapsed().as_secs_f64();
    let null_rate = total as f64 / null;
    report.row(
        &Measurement {
            events_per_s: Some(null_rate),
            seconds: Some(null),
            ..Measurement::new(workload, "null plugin, same filter")
        },
        None,
    );
    let started = Instant::now();
    let rebuilt = plugins.rebuild(plugin, |_| {}).await?;
    let fold = started.elapsed().as_secs_f64();
    if rebuilt.read != total {
        return Err(format!("{workload} read {} of {total} events", rebuilt.read).into());
    }
    let rate = total as f64 / fold;
    report.row(
        &Measurement {
            events_per_s: Some(rate),
            seconds: Some(fold),
            ..Measurement::new(workload, name)
        },
        Some(rate / null_rate),
    );
    Ok(Folded {
        rate,
        seconds: fold,
        null_rate,
    })
}

/// What [`fold_against_null`] measured.
pub(crate) struct Folded {
    /// The plugin's events per second.
    pub(crate) rate: f64,
    /// The plugin's fold, in seconds.
    pub(crate) seconds: f64,
    /// The null plugin's events per second.
    pub(crate) null_rate: f64,
}

/// Stores `batches` in a file log at `dir` as the host's event topic (`vibes/events`,
/// durability never), for workloads that then run the `vibes` binary over it.
pub(crate) fn store_host_events(
    dir: &std::path::Path,
    batches: impl IntoIterator<Item = Vec<Event>>,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let file = Arc::new(FileLog::open(
            dir,
            FileLogOptions::default().durability(Durability::Never),
        )?);
        let log: EventLog<Event> = EventLog::open(file, "vibes/events").await?;
        for batch in batches {
            log.append_batch(&batch).await?;
        }
        Ok(())
    })
}

/// `vibes stats` and `vibes tail --session` over a large log, as a user runs them (the
/// binary, a fresh process each): stats the first time (catching the sessions plugin
/// up over everything, ending in a snapshot) and from that snapshot; one session's
/// events read through the sessions plugin's index against a scan of the whole log
/// (`--from beginning` reads every record).
pub(crate) fn session_queries(options: Options, report: &mut Report) -> Result<()> {
    let n: u64 = match std::env::var("VIBES_BENCH_SESSION_EVENTS") {
        Ok(v) => v
            .parse()
            .map_err(|e| format!("VIBES_BENCH_SESSION_EVENTS={v:?}: {e}"))?,
        Err(_) if options.quick => 200_000,
        Err(_) => 2_000_000,
    };
    report.section(
        &format!(
            "Session queries over {n} stored events ({} sessions of 500), the vibes binary, a \
             fresh process each (targets at 10M events: stats under 100 ms, one session under 50 ms)",
            n / 500
        ),
        "command",
        &[Column::Seconds],
        "ratio",
    );
    let bin = crate::usage::child::vibes_binary()?;
    let scratch = scratch_dir()?;
    // VIBES_BENCH_KEEP_DIR keeps the data dir there, for profiling the commands.
    let dir = match std::env::var_os("VIBES_BENCH_KEEP_DIR") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => scratch.path().join("data"),
    };
    store_host_events(&dir, session_events(n))?;
    let (first, out) = time_vibes(&bin, &dir, &["stats", "--json"])?;
    let stats: Value = serde_json::from_slice(&out)?;
    if stats["totals"]["sessions"].as_u64() != Some(n.div_ceil(500)) {
        return Err(format!("stats counted {} sessions", stats["totals"]["sessions"]).into());
    }
    let (warm, _) = time_vibes(&bin, &dir, &["stats", "--json"])?;
    let row = |name: &str, seconds: f64| Measurement {
        seconds: Some(seconds),
        ..Measurement::new("session_queries", name)
    };
    report.row(&row("stats, first run (catch-up)", first), None);
    report.row(&row("stats, from its snapshot", warm), Some(warm / first));
    let session = format!("bench-session-{:06}", n.div_ceil(500) / 2);
    let (scan, scanned) = time_vibes(
        &bin,
        &dir,
        &[
            "tail",
            "--json",
            "--session",
            &session,
            "--from",
            "beginning",
        ],
    )?;
    let (indexed, read) = time_vibes(&bin, &dir, &["tail", "--json", "--session", &session])?;
    if scanned != read || read.iter().filter(|b| **b == b'\n').count() != 500 {
        return Err("tail --session through the index and by a scan differ".into());
    }
    report.row(&row("tail --session, scan", scan), None);
    report.row(&row("tail --session, index", indexed), Some(indexed / scan));
    Ok(())
}
