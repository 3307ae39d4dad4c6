//! `vibes`: the host binary. See `vibes --help` and the crate README.

mod app;
mod cli;
mod commands;
mod config;
mod output;
mod producer;
mod storage;

use clap::Parser;

fn main() -> std::process::ExitCode {
    app::run(cli::Cli::parse())
}
