//! The event log against SQLite, the embedded store a Rust user would otherwise pick.
//!
//! Backends: the file log with durability `Always`, `Interval(100 ms)` and `Never`
//! (`filelog-always`, `filelog-interval`, `filelog-never`), the in-memory log
//! (`memory`), the log on Apache Iggy with a managed iggy-server per store, fsync on or
//! off (`iggy-fsync`, `iggy-nofsync`; see [`iggy`]; skipped, with the reason in the
//! report, when there is no iggy-server binary), and SQLite in WAL mode with
//! `synchronous=FULL` (`sqlite`, the baseline; see [`sqlite`]). The vibes logs are
//! driven through the typed `EventLog<Event>` API (and the byte-level consumer for
//! `replay_raw`) on a two-worker tokio runtime.
//!
//! Every event is a `claude.text` of one of four sessions whose JSON is exactly
//! [`PAYLOAD_BYTES`] long; its text starts with its sequence number, so replays check
//! order and completeness, not only counts. File-backed stores live in temporary
//! directories (under `$TMPDIR`, else `/tmp`), deleted after each workload.
//!
//! Workloads, each on a fresh store:
//! - `batch_append`: batches of [`BATCH`] events, encoded before the timed call (the
//!   same bytes for every backend), in each backend's durability mode: the storage
//!   engines alone. `batch_append_typed`: the same with encoding inside the call.
//! - `replay_raw`, `replay_typed`: read back what `batch_append` wrote (same store), in
//!   polls of 1000, as bytes and as decoded events; `rss_mb` is the growth of the
//!   resident set during the replay, which must not grow with the log.
//! - `single_append_1`, `single_append_64`: one event per append from 1 and 64
//!   concurrent producers.
//! - `raw-fdatasync` rows (in `batch_append` and `single_append_1`): the disk's limit,
//!   the same bytes in the same batches written with `write` and each batch
//!   fdatasynced, over blocks preallocated and written beforehand; `raw-fdatasync-grow`
//!   (in `single_append_1`): the same at the end of a growing file, where each
//!   fdatasync also commits the file's new size.
//! - `iggy-sdk` rows (in `batch_append`, `replay_raw` and `single_append_1`, with an
//!   iggy-server): the bare Iggy SDK on the server `iggy-fsync` runs, the limit for the
//!   Iggy adapter; see [`iggy_sdk`].
//! - `tail_latency`: a live consumer while a producer appends one event every
//!   [`TAIL_SPACING`]; latency from the append call to the consumer's receipt.
//! - `reopen`: time to open a big log again and read its high-water mark (file log and
//!   SQLite).
//! - `cross_process_visibility`: how soon a consumer sees records that another process
//!   appends (the file log only; see [`cross_process`]).
//!
//! Every workload checks what it measured (offsets dense and as acknowledged, every
//! record read back in order, high-water marks) and fails the suite otherwise.

pub(crate) mod cross_process;
mod iggy;
mod iggy_sdk;
mod sqlite;
mod store;

use std::ops::{Range, RangeInclusive};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::runtime::Runtime;
use vibes_events::{Event, EventData, Text};
use vibes_filelog::{FileLog, FileLogOptions};
use vibes_log::backend::Record;
use vibes_log::{Durability, InMemoryLog};

use crate::report::{Column, Measurement, Report};
use crate::rss::RssSampler;
use crate::{Options, Result};
use sqlite::SqliteStore;
use store::{Store, VibesStore};

/// Length of every event's JSON encoding, in bytes.
const PAYLOAD_BYTES: usize = 256;
/// Events per append in `batch_append`.
const BATCH: usize = 1000;
/// Records per poll.
const POLL_MAX: usize = 1000;
/// How long a poll that should find records waits: reaching it means they are missing.
const POLL_TIMEOUT: Duration = Duration::from_secs(5);
/// Concurrent producers of `single_append_64`.
const PRODUCERS: usize = 64;
/// Pause between the starts of two appends in `tail_latency`.
const TAIL_SPACING: Duration = Duration::from_micros(200);
/// The backend every ratio compares with.
const BASELINE: Backend = Backend::Sqlite;

/// Events (or records) per workload.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    batch_append: usize,
    single_append: usize,
    tail_latency: usize,
    reopen: usize,
}

const FULL: Sizes = Sizes {
    batch_append: 1_000_000,
    single_append: 20_000,
    tail_latency: 2_000,
    reopen: 10_000_000,
};

const QUICK: Sizes = Sizes {
    batch_append: 200_000,
    single_append: 3_000,
    tail_latency: 1_000,
    reopen: 1_000_000,
};

#[derive(Debug, Clone, Copy)]
enum Backend {
    File(Durability),
    Memory,
    /// A managed iggy-server with fsync on (appends `Always`) or off (`Never`).
    Iggy {
        fsync: bool,
    },
    Sqlite,
}

/// The backends that run everywhere.
const BACKENDS: [Backend; 5] = [
    Backend::File(Durability::Always),
    Backend::File(Durability::Interval(Duration::from_millis(100))),
    Backend::File(Durability::Never),
    Backend::Memory,
    Backend::Sqlite,
];

/// The backends that need an iggy-server binary; they come before the baseline.
const IGGY_BACKENDS: [Backend; 2] = [
    Backend::Iggy { fsync: true },
    Backend::Iggy { fsync: false },
];

/// The backends of a run, the baseline last; the Iggy ones if `iggy`.
fn backends(iggy: bool) -> Vec<Backend> {
    let (baseline, others): (Vec<_>, Vec<_>) = BACKENDS
        .into_iter()
        .partition(|b| b.name() == BASELINE.name());
    let iggy = if iggy { &IGGY_BACKENDS[..] } else { &[] };
    [others, iggy.to_vec(), baseline].concat()
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::File(Durability::Always) => "filelog-always",
            Backend::File(Durability::Interval(_)) => "filelog-interval",
            Backend::File(Durability::Never) => "filelog-never",
            Backend::Memory => "memory",
            Backend::Iggy { fsync: true } => "iggy-fsync",
            Backend::Iggy { fsync: false } => "iggy-nofsync",
            Backend::Sqlite => "sqlite",
        }
    }

    /// Whether `reopen` applies: a store in files of this process's own that it opens
    /// again (not memory, and not Iggy, whose files belong to its server).
    fn reopenable(self) -> bool {
        std::matches!(self, Backend::File(_) | Backend::Sqlite)
    }

    /// Opens (creating if needed) its store in `dir`.
    fn open(self, dir: &Path, runtime: &Arc<Runtime>) -> Result<Box<dyn Store>> {
        Ok(match self {
            Backend::File(durability) => {
                let log = FileLog::open(dir, FileLogOptions::default().durability(durability))?;
                Box::new(VibesStore::open(Arc::new(log), runtime)?)
            }
            Backend::Memory => Box::new(VibesStore::open(Arc::new(InMemoryLog::new()), runtime)?),
            Backend::Iggy { fsync } => Box::new(iggy::open(dir, fsync, runtime)?),
            Backend::Sqlite => Box::new(SqliteStore::open(dir)?),
        })
    }
}

pub(crate) fn run(options: Options, report: &mut Report) -> Result<()> {
    let sizes = if options.quick { QUICK } else { FULL };
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?,
    );
    let missing = iggy::server_missing();
    if let Some(why) = &missing {
        report.note(&format!(
            "iggy-fsync and iggy-nofsync skipped (no iggy-server to run): {why}"
        ));
    }
    let backends = &backends(missing.is_none())[..];

    // The replays read back what batch_append wrote, so the three share a store.
    let (mut appends, mut raw, mut typed) = (Vec::new(), Vec::new(), Vec::new());
    for &backend in backends {
        let (append, replayed_raw, replayed_typed) = on_fresh_store(backend, &runtime, |store| {
            let (append, written) = labelled(
                "batch_append",
                backend,
                batch_append(store, backend, sizes.batch_append, Encoding::Before),
            )?;
            let replayed_raw =
                labelled("replay_raw", backend, replay_raw(store, backend, &written))?;
            let replayed_typed = labelled(
                "replay_typed",
                backend,
                replay_typed(store, backend, &written),
            )?;
            Ok((append, replayed_raw, replayed_typed))
        })?;
        appends.push(append);
        raw.push(replayed_raw);
        typed.push(replayed_typed);
    }
    appends.push(raw_fdatasync(
        "batch_append",
        sizes.batch_append,
        BATCH,
        Space::Preallocated,
    )?);
    if missing.is_none() {
        let scratch = scratch_dir()?;
        let (append, replayed) = iggy_sdk::batch_and_replay(
            scratch.path(),
            &runtime,
            &payloads(sizes.batch_append),
            BATCH,
            POLL_MAX as u32,
        )?;
        appends.push(append);
        raw.push(replayed);
    }
    table(
        report,
        &format!(
            "Batch append: {} events as {PAYLOAD_BYTES} B JSON records (encoded before the \
             call, the same bytes for every backend) in batches of {BATCH}, each backend in its \
             own durability mode (filelog-always, iggy-fsync and sqlite fsync each batch)",
            sizes.batch_append
        ),
        &[Column::EventsPerS, Column::MbPerS, Column::Seconds],
        Column::EventsPerS,
        &appends,
    );
    let typed_appends = each_backend(
        "batch_append_typed",
        backends,
        &runtime,
        |store, backend| {
            Ok(batch_append(store, backend, sizes.batch_append / 4, Encoding::Inside)?.0)
        },
    )?;
    table(
        report,
        &format!(
            "Batch append, typed: {} events in batches of {BATCH}, JSON-encoded inside the \
             call (EventLog::append_batch; sqlite: serde_json per row); serde sets the pace",
            sizes.batch_append / 4
        ),
        &[Column::EventsPerS, Column::MbPerS, Column::Seconds],
        Column::EventsPerS,
        &typed_appends,
    );
    let replay_columns = [
        Column::EventsPerS,
        Column::MbPerS,
        Column::Seconds,
        Column::RssMb,
    ];
    table(
        report,
        &format!(
            "Replay, bytes: the {} records of batch_append read back in polls of {POLL_MAX} \
             (page cache warm); RSS+ = resident set growth during the replay (of this \
             process: iggy-server's memory is not counted)",
            sizes.batch_append
        ),
        &replay_columns,
        Column::EventsPerS,
        &raw,
    );
    table(
        report,
        "Replay, typed: the same, decoding every record's JSON into an Event",
        &replay_columns,
        Column::EventsPerS,
        &typed,
    );

    let mut singles = Vec::new();
    for producers in [1, PRODUCERS] {
        let workload = format!("single_append_{producers}");
        let mut rows = each_backend(&workload, backends, &runtime, |store, backend| {
            single_append(store, backend, &workload, producers, sizes.single_append)
        })?;
        if producers == 1 {
            for space in [Space::Preallocated, Space::Growing] {
                rows.push(raw_fdatasync(&workload, sizes.single_append, 1, space)?);
            }
            if missing.is_none() {
                let scratch = scratch_dir()?;
                let payloads = payloads(sizes.single_append);
                rows.push(iggy_sdk::single(scratch.path(), &runtime, &payloads)?);
            }
        }
        let how = if producers == 1 {
            "1 producer".to_string()
        } else {
            format!(
                "{producers} concurrent producers (tokio tasks; sqlite: threads sharing one \
                 connection behind a mutex; iggy: tasks sharing one IggyLog, which sends \
                 the appends waiting for a partition together)"
            )
        };
        table(
            report,
            &format!(
                "Single-event appends, {how}: {} appends, each backend in its own durability mode",
                sizes.single_append
            ),
            &[Column::EventsPerS, Column::Seconds],
            Column::EventsPerS,
            &rows,
        );
        singles.push(rows);
    }

    let rows = each_backend("tail_latency", backends, &runtime, |store, backend| {
        tail_latency(store, backend, sizes.tail_latency)
    })?;
    table(
        report,
        &format!(
            "Tail latency: {} events appended one at a time every {} µs while a consumer polls \
             live; from the append call to the consumer's receipt, so it includes the append \
             (sqlite cannot notify a reader: it re-queries every 100 µs; iggy: the append \
             wakes the consumer of the same IggyLog, which then polls the partition)",
            sizes.tail_latency,
            TAIL_SPACING.as_micros()
        ),
        &[Column::P50Us, Column::P99Us],
        Column::P99Us,
        &rows,
    );
    let tail = rows;

    let mut rows = Vec::new();
    for &backend in backends.iter().filter(|b| b.reopenable()) {
        rows.push(labelled(
            "reopen",
            backend,
            reopen(backend, &runtime, sizes.reopen),
        )?);
    }
    table(
        report,
        &format!(
            "Reopen: a log of {} records (loaded without fsync, then closed) opened again and \
             its high-water mark read (page cache warm; not applicable to memory and iggy, \
             whose data a server process owns)",
            sizes.reopen
        ),
        &[Column::Seconds],
        Column::Seconds,
        &rows,
    );

    let scratch = scratch_dir()?;
    let visibility = labelled(
        "cross_process_visibility",
        Backend::File(Durability::Always),
        cross_process::measure(&runtime, scratch.path(), sizes.tail_latency / 10),
    )?;
    report.section(
        "Cross-process visibility: a child process appends one record every 20 ms; a consumer \
         here waits in a long poll; from the append time to receipt (file log only: how it \
         notices another process's appends; sqlite has no notification, and with iggy \
         every process talks to the same server)",
        "backend",
        &[Column::P50Us, Column::P99Us],
        "",
    );
    report.row(&visibility, None);
    if let [one, many] = &singles[..] {
        report.note(&targets(&appends, &raw, one, many, &tail));
    }
    Ok(())
}

/// Issue 18's targets, from this run's rows: each ratio, its target, met or missed.
fn targets(
    batch: &[Measurement],
    replay: &[Measurement],
    one: &[Measurement],
    many: &[Measurement],
    tail: &[Measurement],
) -> String {
    let rate = |rows: &[Measurement], backend: &str| {
        rows.iter()
            .find(|m| m.backend == backend)
            .and_then(|m| m.events_per_s)
    };
    let p99 = |backend: &str| {
        tail.iter()
            .find(|m| m.backend == backend)
            .and_then(|m| Column::P99Us.value(m))
    };
    let mut out = vec!["Targets (issue 18), from the rows above:".to_owned()];
    let mut check = |what: &str, value: Option<f64>, target: f64, percent: bool, below: bool| {
        let Some(value) = value else { return };
        let met = if below {
            value < target
        } else {
            value >= target
        };
        let (shown, goal) = if percent {
            (
                format!("{:.0}%", value * 100.0),
                format!("{:.0}%", target * 100.0),
            )
        } else if below {
            (format!("{value:.0} µs"), format!("{target:.0} µs"))
        } else {
            (format!("{value:.2}x"), format!("{target}x"))
        };
        let verdict = if met { "met" } else { "missed" };
        let relation = if below { "under" } else { "at least" };
        out.push(format!(
            "  {what}: {shown} ({verdict}; target {relation} {goal})"
        ));
    };
    let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
    let file = "filelog-always";
    check(
        "filelog-always, 1 producer, vs sqlite",
        ratio(rate(one, file), rate(one, BASELINE.name())),
        1.0,
        false,
        false,
    );
    check(
        "filelog-always, 1 producer, of raw-fdatasync",
        ratio(rate(one, file), rate(one, "raw-fdatasync")),
        0.8,
        true,
        false,
    );
    check(
        "filelog-always, batches, of raw-fdatasync",
        ratio(rate(batch, file), rate(batch, "raw-fdatasync")),
        0.8,
        true,
        false,
    );
    check(
        "filelog-always, batches, vs sqlite",
        ratio(rate(batch, file), rate(batch, BASELINE.name())),
        3.0,
        false,
        false,
    );
    check(
        "filelog-always, 64 producers, vs one",
        ratio(rate(many, file), rate(one, file)),
        20.0,
        false,
        false,
    );
    let iggy = "iggy-fsync";
    check(
        "iggy-fsync, batches, of iggy-sdk",
        ratio(rate(batch, iggy), rate(batch, "iggy-sdk")),
        0.8,
        true,
        false,
    );
    check(
        "iggy-fsync, 64 producers, vs one",
        ratio(rate(many, iggy), rate(one, iggy)),
        20.0,
        false,
        false,
    );
    check(
        "iggy-fsync, replay, of iggy-sdk",
        ratio(rate(replay, iggy), rate(replay, "iggy-sdk")),
        0.8,
        true,
        false,
    );
    check(
        "iggy-fsync, tail latency p99",
        p99(iggy),
        2000.0,
        false,
        true,
    );
    out.join("\n")
}

/// Runs `workload` on a fresh store of `backend` in a temporary directory, which is
/// deleted afterwards.
fn on_fresh_store<T>(
    backend: Backend,
    runtime: &Arc<Runtime>,
    workload: impl FnOnce(&dyn Store) -> Result<T>,
) -> Result<T> {
    let scratch = scratch_dir()?;
    let store = labelled(
        "opening the store",
        backend,
        backend.open(scratch.path(), runtime),
    )?;
    let result = workload(&*store);
    // The store goes before its directory.
    let closed = labelled("closing the store", backend, store.close());
    let value = result?;
    closed?;
    Ok(value)
}

/// Runs `workload` on a fresh store of every backend.
fn each_backend(
    workload: &str,
    backends: &[Backend],
    runtime: &Arc<Runtime>,
    run: impl Fn(&dyn Store, Backend) -> Result<Measurement>,
) -> Result<Vec<Measurement>> {
    backends
        .iter()
        .map(|&backend| {
            on_fresh_store(backend, runtime, |store| {
                labelled(workload, backend, run(store, backend))
            })
        })
        .collect()
}

pub(crate) fn scratch_dir() -> Result<tempfile::TempDir> {
    Ok(tempfile::Builder::new().prefix("vibes-bench-").tempdir()?)
}

/// Writes out the dirty pages of the file system holding `dir` and waits for them, so a
/// workload reading what its setup just wrote (gigabytes, with durability `never`) is
/// not measured against the kernel's writeback of it: the log a user folds was
/// written long before.
pub(crate) fn settle(dir: &std::path::Path) -> Result<()> {
    let dir = std::fs::File::open(dir)?;
    rustix::fs::syncfs(&dir)?;
    Ok(())
}

/// Says which workload on which backend failed.
fn labelled<T>(workload: &str, backend: Backend, result: Result<T>) -> Result<T> {
    result.map_err(|e| format!("{workload} on {}: {e}", backend.name()).into())
}

/// Prints one workload's rows with the ratio of `compare` to the baseline's.
fn table(
    report: &mut Report,
    title: &str,
    columns: &[Column],
    compare: Column,
    rows: &[Measurement],
) {
    let is_baseline = |m: &Measurement| m.backend == BASELINE.name();
    let baseline = rows
        .iter()
        .find(|m| is_baseline(m))
        .and_then(|m| compare.value(m));
    report.section(
        &format!(
            "{title}\n  (vs {}: {} divided by {}'s)",
            BASELINE.name(),
            compare.label(),
            BASELINE.name()
        ),
        "backend",
        columns,
        &format!("vs {}", BASELINE.name()),
    );
    for m in rows {
        let ratio = if is_baseline(m) {
            None
        } else {
            compare.value(m).zip(baseline).map(|(v, b)| v / b)
        };
        report.row(m, ratio);
    }
}

/// Event `seq`: a `claude.text` of one of four sessions, its text starting with `seq`
/// and padded so that its JSON is exactly [`PAYLOAD_BYTES`] long.
pub(crate) fn event(seq: u64) -> Event {
    const SESSIONS: [&str; 4] = [
        "0b5f0c3e-8a51-4d3c-9a0e-2f4b1c7d9e21",
        "5d2e8f14-3b7a-4c69-8e02-9a6b4d1f7c35",
        "a73c1e90-6f24-4b8d-b5e1-0c9d2f8a4e67",
        "e4096b2d-1c5f-47a3-9d80-7b3e6a2c1f98",
    ];
    const FILLER: &str = "I'll run the test suite again to check that the fix holds, then look \
                          at the failing integration test and the flaky timeout in the watcher \
                          before opening the pull request.";
    let mut text = Text::new(format!("{seq:010} "));
    text.session_id = Some(SESSIONS[seq as usize % SESSIONS.len()].to_string());
    let mut event = Event::claude(text);
    // The timestamp's encoding varies in length; the filler makes up the difference
    // (ASCII without escapes, so each character is one byte of JSON).
    let short = encoded_len(&event);
    let EventData::Text(text) = &mut event.data else {
        unreachable!("built as a text event above")
    };
    text.text.push_str(&FILLER[..PAYLOAD_BYTES - short]);
    event
}

fn encoded_len(event: &Event) -> usize {
    event.to_json_vec().expect("bench events encode").len()
}

/// The sequence number [`event`] put at the start of the text.
pub(crate) fn seq_of(event: &Event) -> Option<u64> {
    match &event.data {
        EventData::Text(text) => text.text.get(..10)?.parse().ok(),
        _ => None,
    }
}

/// Throughput of `events` in `elapsed`, with payload MB/s if `bytes`.
fn throughput(
    workload: &str,
    backend: Backend,
    events: usize,
    elapsed: Duration,
    bytes: bool,
) -> Measurement {
    let seconds = elapsed.as_secs_f64();
    Measurement {
        events_per_s: Some(events as f64 / seconds),
        mb_per_s: bytes.then(|| (events * PAYLOAD_BYTES) as f64 / seconds / 1e6),
        seconds: Some(seconds),
        ..Measurement::new(workload, backend.name())
    }
}

/// How `batch_append` hands events to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// Encoded (256-byte JSON records) before the timed call: the storage engine alone.
    Before,
    /// Encoded by the store inside the timed call (the typed `EventLog` path).
    Inside,
}

/// (a) Appends `count` events in batches; only the append calls are timed, not
/// building the events. Returns the offsets written.
fn batch_append(
    store: &dyn Store,
    backend: Backend,
    count: usize,
    encoding: Encoding,
) -> Result<(Measurement, Range<u64>)> {
    let mut elapsed = Duration::ZERO;
    let mut written: Option<Range<u64>> = None;
    for start in (0..count).step_by(BATCH) {
        let events: Vec<Event> = (start..count.min(start + BATCH))
            .map(|seq| event(seq as u64))
            .collect();
        let offsets = match encoding {
            Encoding::Before => {
                let records: Vec<Record> = events.iter().map(record).collect();
                let began = Instant::now();
                let offsets = store.append_records(&records)?;
                elapsed += began.elapsed();
                offsets
            }
            Encoding::Inside => {
                let began = Instant::now();
                let offsets = store.append_batch(&events)?;
                elapsed += began.elapsed();
                offsets
            }
        };
        let range = written.get_or_insert(*offsets.start()..*offsets.start());
        extend_dense(range, &offsets, events.len())?;
    }
    let written = written.ok_or("nothing was appended")?;
    expect_high_water_mark(store, written.end)?;
    let name = match encoding {
        Encoding::Before => "batch_append",
        Encoding::Inside => "batch_append_typed",
    };
    Ok((throughput(name, backend, count, elapsed, true), written))
}

/// The record an event is stored as: its key, id and JSON.
/// The payloads of the first `count` bench events, as every backend stores them.
fn payloads(count: usize) -> Vec<Bytes> {
    (0..count as u64)
        .map(|seq| record(&event(seq)).payload)
        .collect()
}

fn record(event: &Event) -> Record {
    let key = event
        .partition_key()
        .map(|k| Bytes::copy_from_slice(k.as_bytes()));
    let payload = event.to_json_vec().expect("bench events encode");
    Record::new(key, event.id.as_u128(), payload)
}

/// Where [`raw_fdatasync`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Space {
    /// Over blocks written and synced beforehand (fallocate, zeros, fsync): each
    /// fdatasync commits data only, the disk's limit.
    Preallocated,
    /// At the end of a file that grows with each write: each fdatasync also commits
    /// the new size, as the file log does today.
    Growing,
}

/// The floor under durable appends: `count` records of [`PAYLOAD_BYTES`] written with
/// `write` in batches of `batch`, each batch followed by fdatasync, as a log must.
fn raw_fdatasync(workload: &str, count: usize, batch: usize, space: Space) -> Result<Measurement> {
    use std::io::Write;
    let scratch = scratch_dir()?;
    let mut file = std::fs::File::create(scratch.path().join("raw"))?;
    let bytes = count * PAYLOAD_BYTES;
    if space == Space::Preallocated {
        rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, bytes as u64)?;
        // Unwritten extents would still be converted (a metadata commit) on first
        // write: write them once, so the timed writes only overwrite data.
        let zeros = vec![0u8; 1 << 20];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(zeros.len());
            file.write_all(&zeros[..n])?;
            left -= n;
        }
        file.sync_all()?;
        std::io::Seek::rewind(&mut file)?;
    }
    let records = vec![b'x'; batch * PAYLOAD_BYTES];
    let began = Instant::now();
    let mut written = 0;
    while written < count {
        let n = batch.min(count - written);
        file.write_all(&records[..n * PAYLOAD_BYTES])?;
        file.sync_data()?;
        written += n;
    }
    let elapsed = began.elapsed();
    let name = match space {
        Space::Preallocated => "raw-fdatasync",
        Space::Growing => "raw-fdatasync-grow",
    };
    Ok(Measurement {
        events_per_s: Some(count as f64 / elapsed.as_secs_f64()),
        mb_per_s: Some(bytes as f64 / 1e6 / elapsed.as_secs_f64()),
        seconds: Some(elapsed.as_secs_f64()),
        ..Measurement::new(workload, name)
    })
}

/// Extends `range` by a batch of `len` records acknowledged at `offsets`, which must
/// follow it without a gap.
fn extend_dense(range: &mut Range<u64>, offsets: &RangeInclusive<u64>, len: usize) -> Result<()> {
    if *offsets.start() != range.end || offsets.end() + 1 - offsets.start() != len as u64 {
        return Err(format!(
            "a batch of {len} was acknowledged at offsets {offsets:?}, expected {}..",
            range.end
        )
        .into());
    }
    range.end = offsets.end() + 1;
    Ok(())
}

fn expect_high_water_mark(store: &dyn Store, expected: u64) -> Result<()> {
    let high = store.high_water_mark()?;
    if high != expected {
        return Err(format!("the high-water mark is {high}, expected {expected}").into());
    }
    Ok(())
}

/// Checks that `offset` is the next one expected, and moves on.
fn expect_next(next: &mut u64, offset: u64) -> Result<()> {
    if offset != *next {
        return Err(format!("read offset {offset} where {next} was expected").into());
    }
    *next += 1;
    Ok(())
}

/// (c, f) Reads back `written` as bytes; every record must come, in order, with its
/// payload.
fn replay_raw(store: &dyn Store, backend: Backend, written: &Range<u64>) -> Result<Measurement> {
    let mut reader = store.raw_reader("replay-raw")?;
    let mut next = written.start;
    replay("replay_raw", backend, written, || {
        reader.poll(POLL_MAX, POLL_TIMEOUT, &mut |offset, payload| {
            expect_next(&mut next, offset)?;
            if payload.len() != PAYLOAD_BYTES {
                return Err(format!("record {offset} has {} bytes", payload.len()).into());
            }
            Ok(())
        })
    })
}

/// (c, f) Reads back `written` as events; each must be the event written there.
fn replay_typed(store: &dyn Store, backend: Backend, written: &Range<u64>) -> Result<Measurement> {
    let mut reader = store.typed_reader("replay-typed")?;
    let mut next = written.start;
    replay("replay_typed", backend, written, || {
        reader.poll(POLL_MAX, POLL_TIMEOUT, &mut |offset, event| {
            expect_next(&mut next, offset)?;
            if seq_of(event) != Some(offset - written.start) {
                return Err(format!("record {offset} holds another event: {event:?}").into());
            }
            Ok(())
        })
    })
}

/// Polls until all of `written` has been read (`poll` checks each record); times it
/// and samples the resident set meanwhile.
fn replay(
    workload: &str,
    backend: Backend,
    written: &Range<u64>,
    mut poll: impl FnMut() -> Result<usize>,
) -> Result<Measurement> {
    let total = (written.end - written.start) as usize;
    let rss = RssSampler::start();
    let began = Instant::now();
    let read = (|| {
        let mut read = 0;
        while read < total {
            match poll()? {
                0 => break,
                n => read += n,
            }
        }
        Ok::<_, crate::Error>(read)
    })();
    let elapsed = began.elapsed();
    let rss_mb = rss.stop();
    let read = read?;
    if read != total {
        return Err(format!("read {read} records of the {total} written").into());
    }
    Ok(Measurement {
        rss_mb,
        ..throughput(workload, backend, total, elapsed, true)
    })
}

/// (b) `count` events, one per append, from `producers` concurrent producers.
fn single_append(
    store: &dyn Store,
    backend: Backend,
    workload: &str,
    producers: usize,
    count: usize,
) -> Result<Measurement> {
    let per_producer = count.div_ceil(producers);
    let total = per_producer * producers;
    let events: Vec<Vec<Event>> = (0..producers)
        .map(|p| {
            (0..per_producer)
                .map(|i| event((p * per_producer + i) as u64))
                .collect()
        })
        .collect();
    let first = store.high_water_mark()?;
    let began = Instant::now();
    let mut offsets = store.append_concurrently(events)?;
    let elapsed = began.elapsed();
    offsets.sort_unstable();
    let expected = first..first + total as u64;
    if !offsets.iter().copied().eq(expected.clone()) {
        return Err(format!(
            "{} appends were acknowledged at offsets other than {expected:?} (first {:?}, last \
             {:?})",
            offsets.len(),
            offsets.first(),
            offsets.last()
        )
        .into());
    }
    expect_high_water_mark(store, expected.end)?;
    Ok(throughput(workload, backend, total, elapsed, false))
}

/// (d) A live consumer while one producer appends an event every [`TAIL_SPACING`]
/// (or as soon as the previous append returns, if that takes longer).
fn tail_latency(store: &dyn Store, backend: Backend, count: usize) -> Result<Measurement> {
    let events: Vec<Event> = (0..count as u64).map(event).collect();
    let first = store.high_water_mark()?;
    let mut reader = store.typed_reader("tail")?;
    let producer_failed = AtomicBool::new(false);
    let (starts, receipts) = thread::scope(|scope| {
        let consumer = scope.spawn(|| {
            let mut receipts: Vec<Instant> = Vec::with_capacity(count);
            let give_up = Instant::now() + POLL_TIMEOUT + TAIL_SPACING * count as u32 * 10;
            while receipts.len() < count {
                if producer_failed.load(Ordering::Relaxed) {
                    return Err("the producer failed".into());
                }
                if Instant::now() > give_up {
                    return Err(format!("received {} of {count} events", receipts.len()).into());
                }
                reader.poll(POLL_MAX, Duration::from_secs(1), &mut |offset, event| {
                    let at = Instant::now();
                    let seq = receipts.len() as u64;
                    if offset != first + seq || seq_of(event) != Some(seq) {
                        return Err(format!(
                            "received offset {offset} ({:?}) where event {seq} was expected",
                            seq_of(event)
                        )
                        .into());
                    }
                    receipts.push(at);
                    Ok(())
                })?;
            }
            Ok::<_, crate::Error>(receipts)
        });
        let produced = (|| {
            let mut starts = Vec::with_capacity(count);
            let began = Instant::now();
            for (i, event) in events.iter().enumerate() {
                let due = began + TAIL_SPACING * i as u32;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    thread::sleep(wait);
                }
                let start = Instant::now();
                let offset = store.append(event)?;
                if offset != first + i as u64 {
                    return Err(format!("append {i} was stored at offset {offset}").into());
                }
                starts.push(start);
            }
            Ok::<_, crate::Error>(starts)
        })();
        producer_failed.store(produced.is_err(), Ordering::Relaxed);
        let received = consumer
            .join()
            .map_err(|_| crate::Error::from("the consumer thread panicked"))?;
        Ok::<_, crate::Error>((produced?, received?))
    })?;
    let mut latencies: Vec<Duration> = starts
        .iter()
        .zip(&receipts)
        .map(|(start, receipt)| receipt.saturating_duration_since(*start))
        .collect();
    latencies.sort_unstable();
    Ok(Measurement {
        p50_us: Some(percentile_us(&latencies, 50.0)),
        p99_us: Some(percentile_us(&latencies, 99.0)),
        ..Measurement::new("tail_latency", backend.name())
    })
}

/// The nearest-rank percentile of sorted, non-empty `values`, in microseconds.
pub(crate) fn percentile_us(sorted: &[Duration], percent: f64) -> f64 {
    let rank = (percent / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e6
}

/// (e) Loads `records` records, closes the store, and times opening it again and
/// reading its high-water mark.
fn reopen(backend: Backend, runtime: &Arc<Runtime>, records: usize) -> Result<Measurement> {
    let scratch = scratch_dir()?;
    let payload = Bytes::from(event(0).to_json_vec()?);
    let written = {
        let store = backend.open(scratch.path(), runtime)?;
        let written = store.load_raw(records, &payload)?;
        if written.end - written.start != records as u64 {
            return Err(format!("loading {records} records stored {written:?}").into());
        }
        expect_high_water_mark(&*store, written.end)?;
        written
    };
    let began = Instant::now();
    let store = backend.open(scratch.path(), runtime)?;
    let high = store.high_water_mark()?;
    let elapsed = began.elapsed();
    if high != written.end {
        return Err(format!(
            "reopened with high-water mark {high}, expected {}",
            written.end
        )
        .into());
    }
    Ok(Measurement {
        seconds: Some(elapsed.as_secs_f64()),
        ..Measurement::new("reopen", backend.name())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_encode_to_exactly_the_payload_size_and_carry_their_sequence_number() {
        for seq in [0, 1, 999, 123_456, 9_999_999] {
            let e = event(seq);
            assert_eq!(encoded_len(&e), PAYLOAD_BYTES);
            assert_eq!(seq_of(&e), Some(seq));
            assert!(e.partition_key().is_some());
        }
    }

    #[test]
    fn the_baseline_comes_last_and_iggy_only_when_asked() {
        let names = |iggy| -> Vec<&str> { backends(iggy).into_iter().map(Backend::name).collect() };
        assert_eq!(
            names(false),
            [
                "filelog-always",
                "filelog-interval",
                "filelog-never",
                "memory",
                "sqlite"
            ]
        );
        assert_eq!(
            names(true),
            [
                "filelog-always",
                "filelog-interval",
                "filelog-never",
                "memory",
                "iggy-fsync",
                "iggy-nofsync",
                "sqlite"
            ]
        );
    }

    /// Every workload the Iggy backends run, small, with its checks; the server of each
    /// store must stop on SIGTERM (closing the store fails otherwise).
    #[test]
    #[ignore = "needs iggy-server (IGGY_SERVER_BIN)"]
    fn iggy_stores_pass_every_check_and_stop_their_servers() {
        let runtime = Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
        );
        for backend in IGGY_BACKENDS {
            on_fresh_store(backend, &runtime, |store| {
                let (_, written) = batch_append(store, backend, 2 * BATCH + 10, Encoding::Before)?;
                replay_raw(store, backend, &written)?;
                replay_typed(store, backend, &written)?;
                batch_append(store, backend, BATCH, Encoding::Inside)?;
                single_append(store, backend, "single_append_64", PRODUCERS, 200)?;
                Ok(())
            })
            .unwrap();
            on_fresh_store(backend, &runtime, |store| tail_latency(store, backend, 50)).unwrap();
        }
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile_us(&values, 50.0).round(), 50.0);
        assert_eq!(percentile_us(&values, 99.0).round(), 99.0);
        assert_eq!(percentile_us(&values[..1], 99.0).round(), 1.0);
    }
}
