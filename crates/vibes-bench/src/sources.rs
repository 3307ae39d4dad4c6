//! Claude stream-json parsing throughput.
//!
//! Input: the real recordings in `shared/fixtures/claude-stream` beside the repository
//! when they are there, else this project's example session; either way replicated
//! until it is at least [`TARGET_BYTES`] long, and held in memory so that only parsing
//! is timed. The baseline is the least a hand-written consumer does: split lines and
//! `serde_json::from_slice::<Value>` each one, mapping nothing.

use std::io::{BufRead, Cursor};
use std::path::PathBuf;
use std::time::Instant;

use serde_json::Value;
use vibes_sources::claude::ClaudeParser;

use crate::report::{Column, Measurement, Report};
use crate::{Options, Result};

/// Input size to reach by replication.
const TARGET_BYTES: usize = 100 * 1024 * 1024;

/// The Claude stream-json recordings beside the repository (`shared/fixtures/
/// claude-stream`), sorted; empty when they are not there.
pub(crate) fn stream_recordings() -> Vec<PathBuf> {
    let fixtures = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/claude-stream"
    ));
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&fixtures) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| x == "jsonl" || x == "log" || x == "ndjson")
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// The inputs: (workload, description, bytes replicated to at least [`TARGET_BYTES`]).
fn inputs() -> Result<Vec<(&'static str, String, Vec<u8>)>> {
    let files = stream_recordings();
    if files.is_empty() {
        let example = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../vibes-sources/tests/data/session.jsonl"
        ));
        return Ok(vec![(
            "claude_parse",
            "the project's example session".to_string(),
            replicate(&[example])?,
        )]);
    }
    // The long session alone: text and tool lines, no multi-megabyte image line.
    let long: Vec<PathBuf> = files
        .iter()
        .filter(|p| p.to_string_lossy().contains("claude_response1"))
        .cloned()
        .collect();
    let mut out = vec![(
        "claude_parse_all",
        "all Claude fixtures (one line is a 1.1 MB image)".to_string(),
        replicate(&files)?,
    )];
    if !long.is_empty() {
        out.push((
            "claude_parse_session",
            "the 141-line coding session fixture (text and tool calls)".to_string(),
            replicate(&long)?,
        ));
    }
    Ok(out)
}

/// The files' contents, one after another, repeated to at least [`TARGET_BYTES`].
fn replicate(files: &[PathBuf]) -> Result<Vec<u8>> {
    let mut one = Vec::new();
    for file in files {
        one.extend_from_slice(&std::fs::read(file)?);
        if !one.ends_with(b"\n") {
            one.push(b'\n');
        }
    }
    let mut all = Vec::with_capacity(TARGET_BYTES + one.len());
    while all.len() < TARGET_BYTES {
        all.extend_from_slice(&one);
    }
    Ok(all)
}

pub(crate) fn run(_options: Options, report: &mut Report) -> Result<()> {
    for (workload, label, input) in inputs()? {
        measure(report, workload, &label, &input)?;
    }
    Ok(())
}

fn measure(report: &mut Report, workload: &str, label: &str, input: &[u8]) -> Result<()> {
    let mb = input.len() as f64 / 1e6;

    let began = Instant::now();
    let mut events = 0usize;
    let summary = ClaudeParser::new().parse_reader(Cursor::new(input), |_| events += 1)?;
    let parser_s = began.elapsed().as_secs_f64();
    if !summary.malformed.is_empty() || events == 0 {
        return Err(format!(
            "parsing the benchmark input gave {events} events and {} malformed lines",
            summary.malformed.len()
        )
        .into());
    }

    let began = Instant::now();
    let mut values = 0usize;
    let mut line = Vec::new();
    let mut reader = Cursor::new(input);
    while reader.read_until(b'\n', &mut line)? > 0 {
        if line.iter().any(|b| !b.is_ascii_whitespace()) {
            let _: Value = serde_json::from_slice(&line)?;
            values += 1;
        }
        line.clear();
    }
    let baseline_s = began.elapsed().as_secs_f64();

    let parser = Measurement {
        events_per_s: Some(events as f64 / parser_s),
        mb_per_s: Some(mb / parser_s),
        seconds: Some(parser_s),
        ..Measurement::new(workload, "vibes-sources")
    };
    let baseline = Measurement {
        events_per_s: Some(values as f64 / baseline_s),
        mb_per_s: Some(mb / baseline_s),
        seconds: Some(baseline_s),
        ..Measurement::new(workload, "serde_json-value")
    };
    report.section(
        &format!(
            "Claude stream-json parsing: {label}, replicated to {mb:.0} MB in memory; \
             baseline: serde_json::Value per line, mapping nothing (its events/s: lines/s)"
        ),
        "implementation",
        &[Column::EventsPerS, Column::MbPerS, Column::Seconds],
        "vs serde",
    );
    report.row(&baseline, None);
    report.row(&parser, Some(baseline_s / parser_s));
    Ok(())
}
