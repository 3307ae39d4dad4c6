//! `vibes usage daily` against ccusage on a realistic `~/.claude/projects` tree.
//!
//! The corpus ([`corpus`]) is the real fixture transcripts replicated into about 3,000
//! files and 1 GiB (`--quick`: about 250 files and 40 MB) under a scratch `HOME`.
//! Every program runs as a whole process, as a user would run it, with `HOME` (and
//! `CLAUDE_CONFIG_DIR`) pointed at the corpus and days in UTC:
//!
//! - `cold`: `vibes ingest claude-projects` into an empty data dir, then `vibes usage
//!   daily --json`, against ccusage's `daily --json --offline` (target: vibes' two
//!   together at least as fast as ccusage alone);
//! - `report`: the same report over data already ingested (target: at least 10x
//!   faster than ccusage);
//! - `append_1pct`: after about 1% new lines were appended to a tenth of the session
//!   files, `vibes ingest claude-projects` plus the report, against ccusage on the
//!   grown tree (target: at least 30x faster).
//!
//! The corpus is written out to disk (syncfs) after it is generated and after the
//! append, so no run competes with the kernel's writeback of it. Floors: reading every
//! byte of the corpus once (one thread, page cache warm, as every run here is) and a bare single-threaded Rust counter ([`count`]), whose
//! totals every vibes report must equal exactly (the suite fails otherwise); where
//! ccusage's totals differ, the report says by how much and why.

pub(crate) mod child;
mod corpus;
mod count;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use crate::report::{Column, Measurement, Report};
use crate::{Options, Result};
use child::{Program, Run};
use corpus::{Corpus, Shape};
use count::{Count, Totals};

/// Runs of each repeatable measurement; the median is reported.
const REPEATS: usize = 3;

pub(crate) fn run(options: Options, report: &mut Report) -> Result<()> {
    let fixtures = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/claude-projects"
    ));
    if !fixtures.is_dir() {
        return Err(format!(
            "the usage suite needs the fixture transcripts at {}",
            fixtures.display()
        )
        .into());
    }
    let vibes_bin = child::vibes_binary()?;
    let ccusage_bin = match child::ccusage_binary() {
        Ok(path) => Some(path),
        Err(why) => {
            report.note(&why);
            None
        }
    };
    let shape = if options.quick {
        Shape {
            sessions: 170,
            projects: 8,
            big: 1,
            big_bytes: 12_000_000,
            seed: 11,
        }
    } else {
        Shape {
            sessions: 2_500,
            projects: 60,
            big: 4,
            big_bytes: 55_000_000,
            seed: 11,
        }
    };

    let scratch = crate::log::scratch_dir()?;
    if std::env::var_os("VIBES_BENCH_KEEP").is_some() {
        let kept = scratch.keep();
        report.note(&format!(
            "VIBES_BENCH_KEEP: the corpus and data dir stay in {}",
            kept.display()
        ));
        return run_in(
            options,
            report,
            shape,
            &fixtures,
            vibes_bin,
            ccusage_bin,
            &kept,
        );
    }
    run_in(
        options,
        report,
        shape,
        &fixtures,
        vibes_bin,
        ccusage_bin,
        scratch.path(),
    )
}

fn run_in(
    _options: Options,
    report: &mut Report,
    shape: Shape,
    fixtures: &Path,
    vibes_bin: PathBuf,
    ccusage_bin: Option<PathBuf>,
    scratch: &Path,
) -> Result<()> {
    let home = scratch.join("home");
    let began = Instant::now();
    let mut corpus = Corpus::generate(fixtures, &home, shape)?;
    let generated_s = began.elapsed().as_secs_f64();
    // Written out before anything is timed, as a user's transcripts are.
    crate::log::settle(&home)?;
    let s = &corpus.stats;
    report.note(&format!(
        "Usage corpus (generated in {generated_s:.1} s, seed {}): {} files ({} subagent files, \
         {} byte-for-byte duplicates in renamed project folders), {:.0} MiB, {} lines; \
         median file {:.0} KiB, largest {:.1} MB, {} over 50 MB; {} projects",
        shape.seed,
        s.files,
        s.subagent_files,
        s.duplicate_files,
        s.bytes as f64 / 1048576.0,
        s.lines,
        s.median_file_bytes as f64 / 1024.0,
        s.largest_file_bytes as f64 / 1e6,
        s.files_over_50mb,
        shape.projects,
    ));

    let env = vec![
        ("HOME".to_string(), home.clone().into_os_string()),
        (
            "CLAUDE_CONFIG_DIR".to_string(),
            home.join(".claude").into_os_string(),
        ),
        ("TZ".to_string(), "UTC".into()),
    ];
    let env_remove = vec!["XDG_CONFIG_HOME".to_string(), "XDG_DATA_HOME".to_string()];
    let vibes = Program {
        path: vibes_bin,
        env: env.clone(),
        env_remove: env_remove.clone(),
    };
    let ccusage = ccusage_bin.map(|path| Program {
        path,
        env,
        env_remove,
    });
    let data_dir = scratch.join("vibes-data");
    let data = data_dir.to_string_lossy().to_string();
    let ingest: Vec<&str> = vec!["--data-dir", &data, "ingest", "claude-projects"];
    let daily: Vec<&str> = vec![
        "--data-dir",
        &data,
        "usage",
        "daily",
        "--json",
        "--timezone",
        "UTC",
    ];
    let ccusage_daily = ["daily", "--json", "--offline", "--timezone", "UTC"];

    // Floors: the bytes alone, and a bare counter.
    let (read_s, read_bytes) = read_everything(&corpus.projects())?;
    let began = Instant::now();
    let counted = count::count(&corpus.projects())?;
    let count_s = began.elapsed().as_secs_f64();
    let mb = read_bytes as f64 / 1e6;

    // Cold: ingest into an empty data dir, then the report.
    let cold_ingest = vibes.run(&ingest)?;
    let cold_report = vibes.run(&daily)?;
    let cold_days = vibes_days(&cold_report.stdout)?;
    check("cold report", &cold_days, &counted)?;
    // Over ingested data: nothing new to read.
    let warm = vibes.median_of(REPEATS, &daily)?;
    check(
        "report over ingested data",
        &vibes_days(&warm.stdout)?,
        &counted,
    )?;
    let ccusage_cold = match &ccusage {
        Some(c) => Some(c.median_of(REPEATS, &ccusage_daily)?),
        None => None,
    };

    // 1% new lines.
    let (appended_lines, appended_bytes) = corpus.append()?;
    crate::log::settle(&home)?;
    let grown_count = count::count(&corpus.projects())?;
    let append_ingest = vibes.run(&ingest)?;
    let append_report = vibes.run(&daily)?;
    check(
        "report after the append",
        &vibes_days(&append_report.stdout)?,
        &grown_count,
    )?;
    let ccusage_grown = match &ccusage {
        Some(c) => Some(c.median_of(REPEATS, &ccusage_daily)?),
        None => None,
    };

    let ratio_to = |baseline: Option<&Run>, seconds: f64| baseline.map(|b| b.seconds / seconds);
    let row = |workload: &str, backend: &str, run: &Run| Measurement {
        seconds: Some(run.seconds),
        cpu_s: run.cpu_s,
        peak_mib: run.peak_mib,
        ..Measurement::new(workload, backend)
    };
    let sum = |workload: &str, backend: &str, a: &Run, b: &Run| Measurement {
        seconds: Some(a.seconds + b.seconds),
        cpu_s: a.cpu_s.zip(b.cpu_s).map(|(x, y)| x + y),
        peak_mib: match (a.peak_mib, b.peak_mib) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        },
        ..Measurement::new(workload, backend)
    };

    report.section(
        &format!(
            "Usage reports over the corpus ({mb:.0} MB, {} files, page cache warm), whole \
             processes (median of {REPEATS} where repeated); vs ccusage: ccusage's \
             seconds / these seconds (targets: cold >= 1x, report >= 10x, append_1pct >= 30x)",
            corpus.stats.files
        ),
        "program",
        &[
            Column::MbPerS,
            Column::Seconds,
            Column::CpuS,
            Column::PeakMib,
        ],
        if ccusage.is_some() { "vs ccusage" } else { "" },
    );
    let ccusage_seconds = ccusage_cold.as_ref().map(|r| r.seconds);
    let floor = |backend: &str, seconds: f64| Measurement {
        seconds: Some(seconds),
        mb_per_s: Some(mb / seconds),
        ..Measurement::new("floor", backend)
    };
    report.row(
        &floor("read every byte (1 thread)", read_s),
        ccusage_seconds.map(|c| c / read_s),
    );
    report.row(
        &floor("bare counter (1 thread)", count_s),
        ccusage_seconds.map(|c| c / count_s),
    );
    // A workload's rows: ccusage, then vibes' ingest, its report, and the two together.
    let ingest_and_report =
        |report: &mut Report, workload: &str, ccusage: Option<&Run>, ingest: &Run, daily: &Run| {
            if let Some(run) = ccusage {
                report.row(&row(workload, "ccusage daily", run), None);
            }
            report.row(
                &row(workload, "vibes ingest", ingest),
                ratio_to(ccusage, ingest.seconds),
            );
            report.row(
                &row(workload, "vibes usage daily", daily),
                ratio_to(ccusage, daily.seconds),
            );
            let both = sum(workload, "vibes ingest + daily", ingest, daily);
            let seconds = both.seconds.unwrap_or(f64::NAN);
            report.row(&both, ratio_to(ccusage, seconds));
            both
        };
    let cold = ingest_and_report(
        report,
        "cold",
        ccusage_cold.as_ref(),
        &cold_ingest,
        &cold_report,
    );
    if let Some(run) = &ccusage_cold {
        report.row(&row("report", "ccusage daily", run), None);
    }
    report.row(
        &row("report", "vibes usage daily", &warm),
        ratio_to(ccusage_cold.as_ref(), warm.seconds),
    );
    let grown = ingest_and_report(
        report,
        "append_1pct",
        ccusage_grown.as_ref(),
        &append_ingest,
        &append_report,
    );
    if let (Some(cc), Some(cg)) = (&ccusage_cold, &ccusage_grown) {
        let verdict = |name: &str, target: f64, theirs: &Run, wall: f64, cpu: Option<f64>| {
            let ratio = theirs.seconds / wall;
            // CPU time is sampled: below 50 ms a ratio would mostly be sampling error.
            let cpu_ratio = theirs
                .cpu_s
                .zip(cpu)
                .filter(|&(_, v)| v >= 0.05)
                .map_or("too short to sample".to_string(), |(t, v)| {
                    format!("{:.2}x", t / v)
                });
            format!(
                "{name}: {ratio:.2}x ccusage's wall time ({}; target {target}x), {cpu_ratio} its CPU time",
                if ratio >= target { "met" } else { "missed" }
            )
        };
        report.note(&format!(
            "Targets: {}; {}; {}.",
            verdict(
                "cold",
                1.0,
                cc,
                cold.seconds.unwrap_or(f64::NAN),
                cold.cpu_s
            ),
            verdict("report", 10.0, cc, warm.seconds, warm.cpu_s),
            verdict(
                "append_1pct",
                30.0,
                cg,
                grown.seconds.unwrap_or(f64::NAN),
                grown.cpu_s
            ),
        ));
    }
    report.note(&format!(
        "append_1pct: {appended_lines} lines ({:.2}% of {} lines, {:.1} MB) appended to every \
         tenth session file, in proportion to its length. Totals: vibes equals the bare counter on every day, in calls and \
         all four token kinds, cold, over ingested data and after the append ({} calls on {} days, {} files).",
        appended_lines as f64 * 100.0 / (grown_count.lines.max(1) as f64),
        grown_count.lines,
        appended_bytes as f64 / 1e6,
        grown_count.total().calls,
        grown_count.days.len(),
        grown_count.files,
    ));
    if let Some(run) = &ccusage_grown {
        let theirs = ccusage_days(&run.stdout)?;
        report.note(&compare_ccusage(&theirs, &grown_count));
    }
    Ok(())
}

/// Reads every transcript once, in 1 MiB reads; (seconds, bytes).
fn read_everything(projects: &Path) -> Result<(f64, u64)> {
    let files = count::transcript_files(projects)?;
    let began = Instant::now();
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    for path in files {
        let mut file = File::open(&path)?;
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
        }
    }
    Ok((began.elapsed().as_secs_f64(), bytes))
}

/// Per-day totals of `vibes usage daily --json`.
fn vibes_days(stdout: &[u8]) -> Result<Vec<(String, Totals)>> {
    let value: Value = serde_json::from_slice(stdout)
        .map_err(|e| format!("vibes usage daily --json printed no JSON: {e}"))?;
    let rows = value["rows"]
        .as_array()
        .ok_or("vibes usage daily --json has no `rows`")?;
    rows.iter()
        .map(|row| {
            let n = |v: &Value| v.as_u64().ok_or_else(|| format!("not a count in {row}"));
            let tokens = &row["tokens"];
            Ok((
                row["period"]
                    .as_str()
                    .ok_or("a row without `period`")?
                    .to_string(),
                Totals {
                    calls: n(&row["api_calls"])?,
                    input: n(&tokens["input"])?,
                    output: n(&tokens["output"])?,
                    cache_creation: n(&tokens["cache_creation"])?,
                    cache_read: n(&tokens["cache_read"])?,
                },
            ))
        })
        .collect()
}

/// Per-day totals of ccusage's `daily --json` (it reports no call counts).
fn ccusage_days(stdout: &[u8]) -> Result<Vec<(String, Totals)>> {
    let value: Value = serde_json::from_slice(stdout)
        .map_err(|e| format!("ccusage daily --json printed no JSON: {e}"))?;
    let rows = value["daily"]
        .as_array()
        .ok_or("ccusage daily --json has no `daily`")?;
    rows.iter()
        .map(|row| {
            let n = |key: &str| {
                row[key]
                    .as_u64()
                    .ok_or_else(|| format!("ccusage: no count `{key}` in {row}"))
            };
            let day = row["period"]
                .as_str()
                .or_else(|| row["date"].as_str())
                .ok_or("a ccusage row without `period`")?;
            Ok((
                day.to_string(),
                Totals {
                    calls: 0,
                    input: n("inputTokens")?,
                    output: n("outputTokens")?,
                    cache_creation: n("cacheCreationTokens")?,
                    cache_read: n("cacheReadTokens")?,
                },
            ))
        })
        .collect()
}

/// Fails unless `days` equal the count's days exactly.
fn check(what: &str, days: &[(String, Totals)], counted: &Count) -> Result<()> {
    let theirs: Vec<(&str, &Totals)> = days.iter().map(|(d, t)| (d.as_str(), t)).collect();
    let ours: Vec<(&str, &Totals)> = counted.days.iter().map(|(d, t)| (d.as_str(), t)).collect();
    if theirs == ours {
        return Ok(());
    }
    let first = ours
        .iter()
        .zip(&theirs)
        .find(|(a, b)| a != b)
        .map(|(a, b)| format!("first difference: counter {a:?}, vibes {b:?}"))
        .unwrap_or_else(|| format!("{} days counted, {} reported", ours.len(), theirs.len()));
    Err(format!("{what}: vibes' daily totals differ from the independent count; {first}").into())
}

/// How ccusage's totals differ from the count, and the likely reasons.
fn compare_ccusage(theirs: &[(String, Totals)], counted: &Count) -> String {
    let mut total = Totals::default();
    for (_, t) in theirs {
        total.add(t);
    }
    let ours = counted.total();
    let differing = theirs
        .iter()
        .filter(|(day, t)| {
            let mut c = counted.days.get(day).copied().unwrap_or_default();
            c.calls = 0;
            *t != c
        })
        .count()
        + counted
            .days
            .keys()
            .filter(|d| !theirs.iter().any(|(day, _)| day == *d))
            .count();
    let delta = |a: u64, b: u64| {
        let d = a as i128 - b as i128;
        if b == 0 {
            format!("{d:+}")
        } else {
            format!("{d:+} ({:+.3}%)", d as f64 * 100.0 / b as f64)
        }
    };
    let mut out = format!(
        "ccusage against the counter (after the append): {differing} of {} days differ; \
         input {}, output {}, cache write {}, cache read {}, all tokens {}.",
        counted.days.len(),
        delta(total.input, ours.input),
        delta(total.output, ours.output),
        delta(total.cache_creation, ours.cache_creation),
        delta(total.cache_read, ours.cache_read),
        delta(total.tokens(), ours.tokens()),
    );
    out.push_str(&format!(
        " The counter saw {} copies of calls for {} calls ({} copies in another file than \
         the call's first, {} in subagent files); {} calls wrote {} tokens to the 1-hour cache \
         (ccusage counts cache writes as one kind).",
        counted.copies,
        ours.calls,
        counted.copies_across_files,
        counted.subagent_copies,
        counted.calls_with_1h_writes,
        counted.cache_1h_tokens,
    ));
    out
}
