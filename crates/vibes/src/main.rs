//! `vibes`: the host binary. See `vibes --help` and the crate README.

use clap::Parser;

// Decoding events allocates per field; mimalloc makes that a fraction of glibc's cost.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    vibes::app::run(vibes::cli::Cli::parse())
}
