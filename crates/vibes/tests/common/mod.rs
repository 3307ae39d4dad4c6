//! What the host's test binaries share: the `vibes` binary, the example session, and
//! commands cut off from the caller's environment.

// Each test binary uses part of this.
#![allow(dead_code)]

pub(crate) mod http;

use std::path::Path;
use std::process::Command;

/// The `vibes` binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_vibes");

/// The example stream-json session of the repository.
pub(crate) const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/sessions/fix-flaky-test.jsonl"
);

/// Gives `cmd` nothing of the caller's environment but `PATH`, with its home and XDG
/// directories under `home`: no user config, data dir or `VIBES_*` setting is read.
pub(crate) fn isolate<'a>(cmd: &'a mut Command, home: &Path) -> &'a mut Command {
    cmd.env_clear()
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
}

/// `vibes`, isolated (see [`isolate`]).
pub(crate) fn vibes(home: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    isolate(&mut cmd, home);
    cmd
}
