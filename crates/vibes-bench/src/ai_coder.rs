//! The ai-coder plugin over Claude sessions: the real transcripts in
//! `shared/fixtures/claude-projects` beside the repository (sessions and their subagent
//! files; else the stream-json recordings, else the parser's example session), read
//! once, each copy made new sessions (its session and tool ids suffixed), replicated to
//! at least 1,000,000 events (100,000 with `--quick`) and stored in a file log with
//! the host's 4 partitions.
//!
//! - `ai_coder_fold`: `Runtime::rebuild` of a fresh ai-coder over the stored log: read,
//!   decode, filter, derive the coder events and fold them into the aggregator,
//!   nothing written; against the same rebuild of a plugin with its filter that does
//!   nothing. Then the coder events derived per second and the state size.
//! - `ai_coder_serve`: the plugin as `serve` runs it from the start: coder events and
//!   alerts stored, commits, snapshots every 50,000 events.
//!
//! Target: at least 200,000 events/s through the plugin.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use vibes_events::{Event, EventId, Timestamp};
use vibes_filelog::{FileLog, FileLogOptions};
use vibes_log::{Durability, EventLog};
use vibes_plugin::{Plugin, PluginState, QueryArgs, Runtime, RuntimeOptions, Shutdown};
use vibes_plugin_ai_coder::AiCoder;
use vibes_sources::claude::ClaudeParser;
use vibes_sources::transcript::{TranscriptFile, TranscriptReader};

use crate::log::scratch_dir;
use crate::report::{Column, Measurement, Report};
use crate::{Options, Result};

const TOPIC: &str = "bench/events";
const PARTITIONS: u32 = 4;
const TARGET_EVENTS_PER_S: f64 = 200_000.0;

fn transcripts(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            transcripts(&path, out);
        } else if path.extension().is_some_and(|x| x == "jsonl") {
            out.push(path);
        }
    }
}

/// The events of every input file, and what they are.
pub(crate) fn inputs() -> Result<(Vec<Event>, String)> {
    let projects = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/claude-projects"
    ));
    let mut files = Vec::new();
    transcripts(&projects, &mut files);
    let mut events = Vec::new();
    let mut read = 0;
    for path in &files {
        let Some(file) = TranscriptFile::from_path(path) else {
            continue;
        };
        let mut reader = TranscriptReader::new(file);
        reader.feed(&std::fs::read(path)?, |e| events.push(e));
        reader.finish(|e| events.push(e));
        read += 1;
    }
    if read > 0 {
        return Ok((events, format!("{read} Claude Code transcripts")));
    }
    let mut files = crate::sources::stream_recordings();
    if files.is_empty() {
        files.push(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../vibes-sources/tests/data/session.jsonl"
        )));
    }
    for file in &files {
        let reader = std::io::BufReader::new(std::fs::File::open(file)?);
        ClaudeParser::new().parse_reader(reader, |e| events.push(e))?;
    }
    Ok((events, format!("{} stream-json recordings", files.len())))
}

/// `event` as it would be in copy `k`: its own sessions, tool ids and event id.
pub(crate) fn copy_of(event: &Event, k: u64, at: Timestamp) -> Result<Event> {
    let mut json: Value = serde_json::to_value(event)?;
    if let Value::Object(map) = &mut json {
        for key in ["session_id", "tool_id", "parent_tool_use_id"] {
            if let Some(Value::String(s)) = map.get_mut(key) {
                s.push_str(&format!("-{k}"));
            }
        }
    }
    let mut e: Event = serde_json::from_value(json)?;
    e.id = EventId::derived_untimed(format!("{}/{k}", event.id).as_bytes());
    // Each copy an hour later, its events keeping their times within it.
    e.timestamp = at.checked_add(Duration::from_millis(
        (event.timestamp.as_millisecond().rem_euclid(3_600_000)) as u64,
    ))?;
    Ok(e)
}

pub(crate) fn run(options: Options, report: &mut Report) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (events, what) = inputs()?;
    measure(options, report, &runtime, &events, &what)
}

fn measure(
    options: Options,
    report: &mut Report,
    runtime: &tokio::runtime::Runtime,
    events: &[Event],
    what: &str,
) -> Result<()> {
    let n: u64 = if options.quick { 100_000 } else { 1_000_000 };
    let per_copy = events.len() as u64;
    if per_copy == 0 {
        return Err("the inputs hold no events".into());
    }
    let copies = n.div_ceil(per_copy);
    let total = copies * per_copy;
    report.section(
        &format!(
            "AI-coder plugin: {total} events ({copies} copies of {what}, each copy new \
             sessions) stored in the file log, folded from the start (target: at least \
             {TARGET_EVENTS_PER_S} events/s)"
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
            let at = base.checked_add(Duration::from_secs(k * 3600))?;
            for event in events {
                batch.push(copy_of(event, k, at)?);
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

        let mut coder = AiCoder::new();
        let crate::plugins::Folded {
            rate,
            seconds: fold,
            null_rate,
        } = crate::plugins::fold_against_null(
            &plugins,
            &mut coder,
            "ai_coder_fold",
            "ai-coder, nothing written",
            total,
            report,
        )
        .await?;
        let stats = coder.query("stats", &QueryArgs::new())?;
        let derived = stats["total_events"].as_u64().unwrap_or(0);
        report.note(&format!(
            "ai-coder derived {derived} coder events ({:.0}/s) and {} alerts from {total} events; \
             state {} bytes saved: {} coders kept ({} ended), history {} of {}; evicted {} live and {} ended coders",
            derived as f64 / fold,
            stats["alerts_by_type"].as_object().map_or(0, |m| m.values().filter_map(Value::as_u64).sum::<u64>()),
            stats["state"]["state_bytes"],
            stats["state"]["coders"],
            stats["state"]["finished_coders"],
            stats["history"]["len"],
            stats["history"]["capacity"],
            stats["derived"]["evicted_live"],
            stats["derived"]["evicted_finished"],
        ));
        if rate < TARGET_EVENTS_PER_S {
            report.note(&format!(
                "ai_coder_fold: {rate:.0} events/s, under the {TARGET_EVENTS_PER_S} target"
            ));
        }

        let shutdown = Shutdown::new();
        let started = Instant::now();
        let running = plugins.spawn(
            Arc::new(|| Box::new(AiCoder::new()) as Box<dyn Plugin>),
            &shutdown,
        )?;
        loop {
            let status = running.status();
            if status.state == PluginState::Live && status.processed + status.skipped >= total {
                break;
            }
            if status.state == PluginState::Failed || started.elapsed() > Duration::from_secs(900) {
                return Err(format!("ai_coder_serve did not catch up: {status:?}").into());
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
                ..Measurement::new("ai_coder_serve", "runtime, outputs stored")
            },
            Some(rate / null_rate),
        );
        report.note(&format!("ai_coder_serve stored {outputs} outputs"));
        Ok(())
    })
}
