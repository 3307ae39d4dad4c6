//! Router fan-out against `tokio::sync::broadcast`, the channel a Rust user would
//! otherwise reach for.
//!
//! One emitter task sends N events (shared `Arc<Event>`s, as both deliver them) to S
//! subscriber tasks on a two-worker tokio runtime; every subscriber receives until the
//! channel closes. The measure is N divided by the time from the first send until the
//! last subscriber has received everything, so every row delivers every event:
//!
//! - `tokio-broadcast` cannot apply backpressure; its sender overruns a small ring at
//!   once. It gets a ring of N slots, so it never lags: its best case.
//! - `router-backpressure` gets a buffer of 1024 per subscriber; emitters wait for room.
//! - `router-drop-newest` gets N slots like broadcast, so it never drops.
//!
//! Lost events are counted anyway; a run that lost any would be reported as such.

use std::sync::Arc;
use std::time::Instant;

use tokio::runtime::Runtime;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use vibes_events::router::{OverflowPolicy, RecvError, SubscribeOptions};
use vibes_events::{Event, Filter, Router, Text, ToolUse};

use crate::Options;
use crate::report::{Column, Measurement, Report};

/// Buffer of the backpressure Router.
const CAPACITY: usize = 1024;
/// Distinct events cycled through by the emitter.
const POOL: usize = 1024;

/// Delivered events and lost events of one run, and its duration.
struct Run {
    delivered: u64,
    lost: u64,
    seconds: f64,
}

pub(crate) fn run(options: Options, report: &mut Report) {
    let events_per_run = if options.quick { 200_000 } else { 1_000_000 };
    let repeats = if options.quick { 1 } else { 3 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("tokio runtime");
    let pool = event_pool();
    report.section(
        &format!(
            "Router fan-out vs tokio::sync::broadcast: {events_per_run} events per run, \
             delivered to every subscriber, 2 tokio workers, median of {repeats}"
        ),
        "implementation",
        &[Column::EventsPerS, Column::Lost],
        "vs bcast",
    );
    for subscribers in [1, 4, 16] {
        let workload = format!("router_fanout_{subscribers}");
        // Warm up allocator and threads once per size.
        broadcast_run(&runtime, subscribers, events_per_run / 10, &pool);

        let baseline = median(repeats, || {
            broadcast_run(&runtime, subscribers, events_per_run, &pool)
        });
        let baseline_m = measurement(&workload, "tokio-broadcast", subscribers, &baseline);
        report.row(&baseline_m, None);
        for (name, policy, capacity) in [
            (
                "router-backpressure",
                OverflowPolicy::Backpressure,
                CAPACITY,
            ),
            (
                "router-drop-newest",
                OverflowPolicy::DropNewest,
                events_per_run,
            ),
        ] {
            let run = median(repeats, || {
                router_run(
                    &runtime,
                    subscribers,
                    events_per_run,
                    policy,
                    capacity,
                    &pool,
                )
            });
            let m = measurement(&workload, name, subscribers, &run);
            let ratio = m
                .events_per_s
                .zip(baseline_m.events_per_s)
                .map(|(rate, baseline)| rate / baseline);
            report.row(&m, ratio);
        }
    }
}

fn measurement(workload: &str, backend: &str, subscribers: usize, run: &Run) -> Measurement {
    Measurement {
        events_per_s: Some(run.delivered as f64 / subscribers as f64 / run.seconds),
        seconds: Some(run.seconds),
        lost: Some(run.lost),
        ..Measurement::new(workload, backend)
    }
}

/// The run with the median delivery rate.
fn median(repeats: usize, mut f: impl FnMut() -> Run) -> Run {
    let mut runs: Vec<Run> = (0..repeats).map(|_| f()).collect();
    runs.sort_by(|a, b| {
        let rate = |r: &Run| r.delivered as f64 / r.seconds;
        rate(a).total_cmp(&rate(b))
    });
    runs.swap_remove(repeats / 2)
}

/// A realistic mix: assistant text and Bash tool calls of a few sessions.
fn event_pool() -> Vec<Arc<Event>> {
    (0..POOL)
        .map(|i| {
            let session = format!("session-{}", i % 4);
            let event = if i % 2 == 0 {
                let mut text = Text::new(format!("Step {i}: running the test suite again"));
                text.session_id = Some(session);
                Event::claude(text)
            } else {
                let input = serde_json::json!({"command": format!("cargo test -p crate-{i}")});
                let mut call = ToolUse::new(format!("toolu_{i:08}"), "Bash", input);
                call.session_id = Some(session);
                Event::claude(call)
            };
            Arc::new(event)
        })
        .collect()
}

fn router_run(
    runtime: &Runtime,
    subscribers: usize,
    events: usize,
    policy: OverflowPolicy,
    capacity: usize,
    pool: &[Arc<Event>],
) -> Run {
    runtime.block_on(async {
        let router = Router::with_capacity(capacity);
        let receivers: Vec<_> = (0..subscribers)
            .map(|_| {
                let mut sub =
                    router.subscribe_with(SubscribeOptions::new(Filter::all()).policy(policy));
                tokio::spawn(async move {
                    let (mut delivered, mut lost) = (0u64, 0u64);
                    loop {
                        match sub.recv().await {
                            Ok(_) => delivered += 1,
                            Err(RecvError::Lagged(n)) => lost += n,
                            Err(RecvError::Closed) => return (delivered, lost),
                        }
                    }
                })
            })
            .collect();
        let started = Instant::now();
        let emitter = {
            let pool = pool.to_vec();
            tokio::spawn(async move {
                for i in 0..events {
                    router
                        .emit(Arc::clone(&pool[i % pool.len()]))
                        .await
                        .expect("router open");
                }
                router.close();
            })
        };
        finish(started, emitter, receivers).await
    })
}

/// Waits for the emitter and every receiver; sums what the receivers counted.
async fn finish(
    started: Instant,
    emitter: JoinHandle<()>,
    receivers: Vec<JoinHandle<(u64, u64)>>,
) -> Run {
    emitter.await.expect("emitter");
    let (mut delivered, mut lost) = (0, 0);
    for receiver in receivers {
        let (d, l) = receiver.await.expect("receiver");
        delivered += d;
        lost += l;
    }
    Run {
        delivered,
        lost,
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn broadcast_run(runtime: &Runtime, subscribers: usize, events: usize, pool: &[Arc<Event>]) -> Run {
    runtime.block_on(async {
        let (sender, _) = broadcast::channel::<Arc<Event>>(events);
        let receivers: Vec<_> = (0..subscribers)
            .map(|_| {
                let mut receiver = sender.subscribe();
                tokio::spawn(async move {
                    let (mut delivered, mut lost) = (0u64, 0u64);
                    loop {
                        match receiver.recv().await {
                            Ok(_) => delivered += 1,
                            Err(broadcast::error::RecvError::Lagged(n)) => lost += n,
                            Err(broadcast::error::RecvError::Closed) => return (delivered, lost),
                        }
                    }
                })
            })
            .collect();
        let started = Instant::now();
        let emitter = {
            let pool = pool.to_vec();
            tokio::spawn(async move {
                for i in 0..events {
                    // Err only when no receiver is left, which cannot happen here.
                    let _ = sender.send(Arc::clone(&pool[i % pool.len()]));
                }
            })
        };
        finish(started, emitter, receivers).await
    })
}
