//! vibes-bench: measures vibes against what a user would pick instead, side by side in
//! one process and one run, and prints the ratios.
//!
//! ```text
//! cargo run --release -p vibes-bench -- [SUITE...] [--quick] [--json]
//! ```
//!
//! Suites: `router` (Router fan-out against `tokio::sync::broadcast`), `log` (the
//! file log, the in-memory log and, with an iggy-server binary, the Iggy log against
//! SQLite), `sources` (Claude stream-json parsing against plain serde_json) and
//! `runtime` (lateness of a tokio timer while a producer appends durably to the file
//! log, against the idle runtime) and `plugins` (the plugin runtime against a bare
//! consumer: throughput, append-to-plugin latency, restart with and without a
//! snapshot), `sessions` (`vibes stats` and `vibes tail --session` over a large log,
//! through the sessions plugin's snapshot and index against a scan), `usage` (`vibes ingest claude-projects` and `vibes usage daily`
//! against ccusage on a generated 1 GiB transcript tree, totals checked against an
//! independent count) and `groove` (the groove plugin over the recorded sessions
//! replicated to 1M events, and its state size), `ai-coder` (the ai-coder plugin
//! over the real transcripts replicated to 1M events, and its state size), `mcp`
//! (`search_events` of `vibes mcp` against `vibes tail --json` with the same filter
//! over 1M events, and its kept plugin state against a load per request) and `http`
//! (`vibes serve`'s SSE stream fanned out to 100 followers against 100 `vibes tail -f`,
//! and `GET /api/events` against `vibes tail --json`), `top` (`vibes top` in tmux and
//! `vibes tail -f` following 10,000 appended events/s: CPU and memory). Without a
//! suite name every suite
//! runs, in that
//! order. `--quick` runs smaller workloads; `--json` prints one JSON
//! object per line per (workload, backend) instead of the tables.

mod ai_coder;
mod groove;
mod http;
mod log;
mod mcp;
mod plugins;
mod report;
mod router;
mod rss;
mod runtime;
mod sources;
mod top;
mod usage;

use std::process::ExitCode;

// The allocator of the `vibes` binary, so in-process workloads allocate as it does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use report::Report;

/// Why a suite failed; it says which workload and backend.
pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// Options shared by every suite.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub(crate) quick: bool,
}

const SUITES: &[&str] = &[
    "router", "log", "sources", "runtime", "plugins", "sessions", "usage", "groove", "ai-coder",
    "mcp", "http", "top",
];

const USAGE: &str = "usage: vibes-bench [SUITE...] [--quick] [--json]\n\nsuites: router, log, sources, runtime, plugins, sessions, usage, groove, ai-coder, mcp, http, top";

fn main() -> ExitCode {
    // As the vibes binary does (see its main): in-process workloads measure the
    // runtime as shipped, without 2 MiB page faults on every fresh arena page.
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(log::cross_process::CHILD_ARG) {
        return match log::cross_process::producer(&args[2..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("vibes-bench producer: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let mut quick = false;
    let mut json = false;
    let mut suites = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--quick" => quick = true,
            "--json" => json = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            suite if SUITES.contains(&suite) => suites.push(arg),
            other => {
                eprintln!("vibes-bench: unknown argument `{other}`\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    if suites.is_empty() {
        suites = SUITES.iter().map(|s| s.to_string()).collect();
    }
    if cfg!(debug_assertions) {
        eprintln!("vibes-bench: warning: built without optimisations; run with --release");
    }
    let options = Options { quick };
    let mut report = Report::new(json);
    for suite in &suites {
        match suite.as_str() {
            "router" => router::run(options, &mut report),
            "log" => {
                if let Err(e) = log::run(options, &mut report) {
                    eprintln!("vibes-bench: log suite failed: {e}");
                    return ExitCode::FAILURE;
                }
            }
            "sources" => {
                if let Err(e) = sources::run(options, &mut report) {
                    eprintln!("vibes-bench: sources suite failed: {e}");
                    return ExitCode::FAILURE;
                }
            }
            "runtime" => {
                if let Err(e) = runtime::run(options, &mut report) {
                    eprintln!("vibes-bench: runtime suite failed: {e}");
                    return ExitCode::FAILURE;
                }
            }
            "plugins" => {
                if let Err(e) = plugins::run(options, &mut report) {
                    eprintln!("vibes-bench: plugins suite failed: {e}");
                    return ExitCode::FAILURE;
                }
            }
            "sessions" => {
                if let Err(e) = plugins::session_queries(options, &mut report) {
                    eprintln!("vibes-bench: sessions suite failed: {e}");
                    return ExitCode::FAILURE;
                }
            }
            "usage" => {
                if let Err(e) = usage::run(options, &mut report) {
                    eprintln!("vibes-bench: usage suite failed: {e}");
                    return ExitCode::FAILURE;
                }
            }
            "groove" => {
                if let Err(e) = groove::run(options, &mut report) {
                    eprintln!("vibes-bench: groove suite failed: {e}");
                    return ExitCode::FAILURE;
                }
            }
            "ai-coder" => {
                if let Err(e) = ai_coder::run(options, &mut report) {
                    eprintln!("vibes-bench: ai-coder suite failed: {e}");
                    return ExitCode::FAILURE;
                }
            }
            "mcp" => {
                if let Err(e) = mcp::run(options, &mut report) {
                    eprintln!("vibes-bench: mcp suite failed: {e}");
                    return ExitCode::FAILURE;
                }
            }
            "http" => {
                if let Err(e) = http::run(options, &mut report) {
                    eprintln!("vibes-bench: http suite failed: {e}");
                    return ExitCode::FAILURE;
                }
            }
            "top" => {
                if let Err(e) = top::run(options, &mut report) {
                    eprintln!("vibes-bench: top suite failed: {e}");
                    return ExitCode::FAILURE;
                }
            }
            _ => unreachable!("suite names are checked above"),
        }
    }
    ExitCode::SUCCESS
}
