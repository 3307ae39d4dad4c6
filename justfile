# Developer shortcuts. Everything here is plain cargo underneath; CI runs .ci/run.

default: test

# Build every crate.
build:
    cargo build --workspace

# Run every test that needs nothing beyond cargo.
test:
    cargo test --workspace

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# The README's run command: ingest the example session into target/vibes-demo, then stats.
demo:
    cargo run -q -p vibes -- --data-dir target/vibes-demo ingest claude examples/sessions/fix-flaky-test.jsonl
    cargo run -q -p vibes -- --data-dir target/vibes-demo stats

# Benchmarks against the alternatives, side by side (pass --quick or --json through).
bench *ARGS:
    cargo run --release -p vibes-bench -- {{ARGS}}

# Tests that need a real iggy-server 0.8.x: set IGGY_SERVER_BIN or put iggy-server on PATH.
test-iggy:
    #!/usr/bin/env bash
    set -euo pipefail
    if [ -z "${IGGY_SERVER_BIN:-}" ] && ! command -v iggy-server >/dev/null; then
        echo "test-iggy: set IGGY_SERVER_BIN to an iggy-server 0.8.x binary (see docs/IGGY.md)" >&2
        exit 1
    fi
    cargo test --workspace -- --ignored

# Fuzz the file-log decoders (cargo install cargo-fuzz first; see fuzz/README.md).
fuzz TARGET="decode_batch" SECONDS="600":
    RUSTC_BOOTSTRAP=1 cargo fuzz run {{TARGET}} -- -max_total_time={{SECONDS}} -print_final_stats=1

# The whole CI job locally.
ci:
    bash .ci/run
