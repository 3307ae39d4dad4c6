//! vibes-bench: measures vibes against what a user would pick instead, side by side in
//! one process and one run, and prints the ratios.
//!
//! ```text
//! cargo run --release -p vibes-bench -- [SUITE...] [--quick] [--json]
//! ```
//!
//! Suites: `router` (Router fan-out against `tokio::sync::broadcast`). Without a suite
//! name every suite runs. `--quick` runs smaller workloads; `--json` prints one JSON
//! object per line per (workload, backend) instead of the table.

mod report;
mod router;

use std::process::ExitCode;

use report::Report;

/// Options shared by every suite.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub(crate) quick: bool,
}

const SUITES: &[&str] = &["router"];

const USAGE: &str = "usage: vibes-bench [SUITE...] [--quick] [--json]\n\nsuites: router";

fn main() -> ExitCode {
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
            _ => unreachable!("suite names are checked above"),
        }
    }
    ExitCode::SUCCESS
}
