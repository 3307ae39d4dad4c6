//! `vibes`: the host binary. See `vibes --help` and the crate README.

use clap::Parser;

fn main() -> std::process::ExitCode {
    vibes::app::run(vibes::cli::Cli::parse())
}
