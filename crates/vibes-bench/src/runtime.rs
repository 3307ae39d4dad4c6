//! Runtime responsiveness: whether a tokio runtime that hosts other work (a host's
//! plugins) stays on time while a producer on it appends durably to the file log.
//!
//! A timer task sleeps 1 ms at a time on a two-worker multi-thread runtime and records
//! how late each wake-up is (the time from the deadline to the task running again).
//! Side by side, on a fresh runtime each:
//!
//! - `idle`: the timer alone (the baseline; tokio's timer has 1 ms granularity, so a
//!   wake-up up to about 1 ms late is the timer itself).
//! - `filelog-always`: the timer while another task appends batches of [`BATCH`]
//!   events (typed, so encoding runs on the runtime too) with durability `always`.
//! - `filelog-always+commit`: the same, and a consumer task that polls what was
//!   appended and commits after every poll (reads and the commit's fsync'd file
//!   replacement).
//!
//! The file log must do its blocking work (writes, fsyncs, reads, commits) off the
//! runtime's worker threads; the target is a p99 lateness under 5 ms. The workload
//! checks that the producer stored what it was acknowledged for and that the consumer
//! read it back in order.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vibes_events::Event;
use vibes_filelog::{FileLog, FileLogOptions};
use vibes_log::{Durability, EventLog};

use crate::report::{Column, Measurement, Report};
use crate::{Options, Result};

/// Events per append.
const BATCH: usize = 1000;
/// The timer's period.
const TICK: Duration = Duration::from_millis(1);
/// The lateness p99 the workload aims under.
const TARGET_P99: Duration = Duration::from_millis(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    Idle,
    Append,
    AppendAndCommit,
}

impl Load {
    fn name(self) -> &'static str {
        match self {
            Load::Idle => "idle",
            Load::Append => "filelog-always",
            Load::AppendAndCommit => "filelog-always+commit",
        }
    }
}

pub(crate) fn run(options: Options, report: &mut Report) -> Result<()> {
    let duration = if options.quick {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    };
    report.section(
        &format!(
            "Runtime responsiveness: lateness of a {TICK:?} timer on a 2-worker tokio runtime \
             over {duration:?}, while another task appends {BATCH}-event batches with \
             durability always to the file log (target: p99 under {TARGET_P99:?})"
        ),
        "load",
        &[
            Column::P50Us,
            Column::P99Us,
            Column::MaxUs,
            Column::EventsPerS,
        ],
        "p99 vs idle",
    );
    let mut baseline = None;
    for load in [Load::Idle, Load::Append, Load::AppendAndCommit] {
        let m = measure(load, duration)
            .map_err(|e| format!("runtime_responsiveness, {}: {e}", load.name()))?;
        let ratio = match load {
            Load::Idle => {
                baseline = m.p99_us;
                None
            }
            _ => m.p99_us.zip(baseline).map(|(v, b)| v / b),
        };
        report.row(&m, ratio);
        if let Some(p99) = m.p99_us
            && load != Load::Idle
            && p99 > TARGET_P99.as_secs_f64() * 1e6
        {
            report.note(&format!(
                "{}: p99 lateness {p99:.0} µs is over the {TARGET_P99:?} target",
                load.name()
            ));
        }
    }
    Ok(())
}

fn measure(load: Load, duration: Duration) -> Result<Measurement> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let scratch = tempfile::tempdir()?;
    let events: Vec<Event> = (0..BATCH as u64).map(crate::log::event).collect();
    runtime.block_on(async move {
        let stop = Arc::new(AtomicBool::new(false));
        let appended = Arc::new(AtomicU64::new(0));
        let mut workers = Vec::new();
        if load != Load::Idle {
            let file = FileLog::open(
                scratch.path(),
                FileLogOptions::default().durability(Durability::Always),
            )?;
            let log = EventLog::<Event>::open(Arc::new(file), "bench/runtime").await?;
            let producer = {
                let (log, stop, appended) = (log.clone(), Arc::clone(&stop), Arc::clone(&appended));
                tokio::spawn(async move {
                    let mut next = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let addresses = log.append_batch(&events).await?;
                        let dense = addresses
                            .iter()
                            .zip(next..)
                            .all(|(a, expected)| a.offset == expected);
                        if !dense || addresses.len() != BATCH {
                            return Err(format!(
                                "appended at offsets from {:?}, expected {next}",
                                addresses.first()
                            )
                            .into());
                        }
                        next += BATCH as u64;
                        appended.store(next, Ordering::Relaxed);
                    }
                    Ok::<u64, crate::Error>(next)
                })
            };
            workers.push(producer);
            if load == Load::AppendAndCommit {
                let (stop, appended) = (Arc::clone(&stop), Arc::clone(&appended));
                workers.push(tokio::spawn(async move {
                    let mut consumer = log.consumer("bench").await?;
                    let mut read = 0u64;
                    loop {
                        let batch = consumer.poll(BATCH, Duration::from_millis(50)).await?;
                        if let Some(bad) = batch
                            .events
                            .iter()
                            .zip(read..)
                            .find(|(d, expected)| d.address.offset != *expected)
                        {
                            return Err(format!(
                                "read offset {} where {} was next",
                                bad.0.address.offset, bad.1
                            )
                            .into());
                        }
                        read += batch.events.len() as u64;
                        if !batch.is_empty() {
                            consumer.commit().await?;
                        }
                        if stop.load(Ordering::Relaxed) && read >= appended.load(Ordering::Relaxed)
                        {
                            return Ok(read);
                        }
                    }
                }));
            }
        }
        let started = Instant::now();
        let timer = tokio::spawn(async move {
            let mut lateness = Vec::with_capacity(duration.as_millis() as usize);
            while started.elapsed() < duration {
                let deadline = tokio::time::Instant::now() + TICK;
                tokio::time::sleep_until(deadline).await;
                lateness.push(tokio::time::Instant::now().saturating_duration_since(deadline));
            }
            lateness
        });
        let mut lateness = timer.await?;
        let seconds = started.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let mut counts = Vec::new();
        for worker in workers {
            counts.push(worker.await??);
        }
        if let [produced, consumed] = counts[..]
            && consumed != produced
        {
            return Err(format!("the consumer read {consumed} of {produced} events").into());
        }
        lateness.sort_unstable();
        if lateness.is_empty() {
            return Err("the timer never woke".into());
        }
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        Ok(Measurement {
            p50_us: Some(crate::log::percentile_us(&lateness, 50.0)),
            p99_us: Some(crate::log::percentile_us(&lateness, 99.0)),
            max_us: lateness.last().map(|d| us(*d)),
            events_per_s: counts.first().map(|n| *n as f64 / seconds),
            ..Measurement::new("runtime_responsiveness", load.name())
        })
    })
}
