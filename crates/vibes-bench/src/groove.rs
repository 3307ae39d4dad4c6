//! The groove plugin over Claude sessions: the real recordings in
//! `shared/fixtures/claude-stream` beside the repository (else the parser's example
//! session), parsed once, each copy made a new session (its session and tool ids
//! suffixed), replicated to at least 1,000,000 events (100,000 with `--quick`) and
//! stored in a file log with the host's 4 partitions.
//!
//! - `groove_fold`: `Runtime::rebuild` of a fresh groove over the stored log: read,
//!   decode, filter and fold every event, nothing written; against the same rebuild of
//!   a plugin with groove's filter that does nothing (what reading and decoding cost).
//!   Then its state size (the `stats`
//!   query's `state_bytes`).
//! - `groove_serve`: the plugin as `serve` runs it from the start: outputs stored,
//!   commits, snapshots every 50,000 events.
//!
//! Target: at least 200,000 events/s through the plugin.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vibes_events::{Event, EventData, EventId, Timestamp};
use vibes_filelog::{FileLog, FileLogOptions};
use vibes_log::{Durability, EventLog};
use vibes_plugin::{Plugin, PluginState, QueryArgs, Runtime, RuntimeOptions, Shutdown};
use vibes_plugin_groove::Groove;
use vibes_sources::claude::ClaudeParser;

use crate::log::scratch_dir;
use crate::report::{Column, Measurement, Report};
use crate::{Options, Result};

const TOPIC: &str = "bench/events";
const PARTITIONS: u32 = 4;
const TARGET_EVENTS_PER_S: f64 = 200_000.0;

/// One session's events per recording.
fn sessions() -> Result<Vec<Vec<Event>>> {
    let mut files = crate::sources::stream_recordings();
    if files.is_empty() {
        files.push(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../vibes-sources/tests/data/session.jsonl"
        )));
    }
    let mut all = Vec::new();
    for file in files {
        let mut events = Vec::new();
        let reader = std::io::BufReader::new(std::fs::File::open(&file)?);
        ClaudeParser::new().parse_reader(reader, |e| events.push(e))?;
        all.push(events);
    }
    Ok(all)
}

/// `event` as it would be in copy `k`: its own session, tool ids and event id.
fn copy_of(event: &Event, k: u64, at: Timestamp) -> Event {
    let mut e = event.clone();
    let rename = |s: &mut Option<String>| {
        if let Some(id) = s {
            *id = format!("{id}-{k}");
        }
    };
    match &mut e.data {
        EventData::ToolUse(u) => {
            rename(&mut u.session_id);
            u.tool_id = format!("{}-{k}", u.tool_id);
        }
        EventData::ToolResult(r) => {
            rename(&mut r.session_id);
            r.tool_id = format!("{}-{k}", r.tool_id);
        }
        EventData::SessionEnd(end) => end.session_id = format!("{}-{k}", end.session_id),
        EventData::SessionStart(start) => rename(&mut start.session_id),
        _ => {}
    }
    e.id = EventId::derived_untimed(format!("{}/{k}", event.id).as_bytes());
    e.timestamp = at;
    e
}

pub(crate) fn run(options: Options, report: &mut Report) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let all = sessions()?;
    measure(options, report, &runtime, &all)
}

fn measure(
    options: Options,
    report: &mut Report,
    runtime: &tokio::runtime::Runtime,
    sessions: &[Vec<Event>],
) -> Result<()> {
    let n: u64 = if options.quick { 100_000 } else { 1_000_000 };
    let per_copy: u64 = sessions.iter().map(|s| s.len() as u64).sum();
    if per_copy == 0 {
        return Err("the recordings hold no events".into());
    }
    let copies = n.div_ceil(per_copy);
    let total = copies * per_copy;
    report.section(
        &format!(
            "Groove plugin: {total} events ({copies} copies of {} recorded sessions, \
             each copy new sessions) stored in the file log, folded from the start (target: \
             at least {TARGET_EVENTS_PER_S} events/s)",
            sessions.len()
        ),
        "how",
        &[Column::EventsPerS, Column::Seconds],
        "vs null",
    );
    let scratch = scratch_dir()?;
    runtime.block_on(async {
        let file = Arc::new(FileLog::open(
            scratch.path(),
            FileLogOptions::default().durability(Durability::Never),
        )?);
        let log: EventLog<Event> = EventLog::open_with(
            file.clone(),
            TOPIC,
            vibes_log::TopicConfig::partitions(PARTITIONS),
            vibes_log::JsonCodec,
        )
        .await?;
        let base = Timestamp::from_second(1_770_000_000)?;
        let mut batch = Vec::with_capacity(10_000);
        for k in 0..copies {
            let at = base.checked_add(Duration::from_millis(k))?;
            for session in sessions {
                for event in session {
                    batch.push(copy_of(event, k, at));
                }
            }
            if batch.len() >= 8_192 {
                log.append_batch(&batch).await?;
                batch.clear();
            }
        }
        log.append_batch(&batch).await?;
        crate::log::settle(scratch.path())?;

        let options = RuntimeOptions::new(TOPIC)
            .input_partitions(PARTITIONS)
            .poll(1024, Duration::from_millis(250))
            .durability(Durability::Never);
        let plugins = Runtime::new(file.clone(), options);

        let mut groove = Groove::new();
        let crate::plugins::Folded {
            rate,
            null_rate,
            ..
        } = crate::plugins::fold_against_null(
            &plugins,
            &mut groove,
            "groove_fold",
            "groove, nothing written",
            total,
            report,
        )
        .await?;
        let stats = groove.query("stats", &QueryArgs::new())?;
        report.note(&format!(
            "groove state after {total} events: {} bytes saved; {} failures, {} clusters, {} gaps, {} live sessions; evicted {}",
            stats["state_bytes"],
            stats["counts"]["failures"],
            stats["state"]["clusters"],
            stats["state"]["gaps"],
            stats["state"]["live_sessions"],
            stats["state"]["evicted"],
        ));
        if rate < TARGET_EVENTS_PER_S {
            report.note(&format!(
                "groove_fold: {rate:.0} events/s, under the {TARGET_EVENTS_PER_S} target"
            ));
        }

        let shutdown = Shutdown::new();
        let started = Instant::now();
        let running = plugins.spawn(
            Arc::new(|| Box::new(Groove::new()) as Box<dyn Plugin>),
            &shutdown,
        )?;
        loop {
            let status = running.status();
            if status.state == PluginState::Live && status.processed + status.skipped >= total {
                break;
            }
            if status.state == PluginState::Failed || started.elapsed() > Duration::from_secs(900) {
                return Err(format!("groove_serve did not catch up: {status:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let serve = started.elapsed().as_secs_f64();
        let outputs = running.status().outputs;
        shutdown.trigger();
        running.join().await;
        let rate = total as f64 / serve;
        report.row(
            &Measurement {
                events_per_s: Some(rate),
                seconds: Some(serve),
                ..Measurement::new("groove_serve", "runtime, outputs stored")
            },
            Some(rate / null_rate),
        );
        report.note(&format!("groove_serve stored {outputs} outputs"));
        Ok(())
    })
}
