//! `vibes`: the host binary. See `vibes --help` and the crate README.

use clap::Parser;

// Decoding events allocates per field; mimalloc makes that a fraction of glibc's cost.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // mimalloc asks for transparent huge pages, so the first touch of an arena page
    // faults in and zeroes 2 MiB. Most commands run for well under a second and touch
    // a few MiB here and there: on a virtual machine that zeroing was over half of
    // `vibes usage` after an ingest (clear_page in the kernel, one run, 0.44-0.52 s
    // against 0.20-0.23 s without). Measured apart: the first report after an ingest
    // costs the same either way, a report over a fresh snapshot about 0.01 s more
    // without them.
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    vibes::app::run(vibes::cli::Cli::parse())
}
