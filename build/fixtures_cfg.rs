//! The build script of the crates whose tests read the real recordings in
//! `shared/fixtures` beside the repository (`../shared/fixtures` from its root; CI lays
//! them there). It sets `cfg(fixtures)` when they are present, and those tests carry
//! `#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]`: without the
//! fixtures cargo reports them as ignored, not as passed. With `CI` set their absence
//! is an error here, so CI can never skip them.
//!
//! One file for every such crate: each names it as `build` in its Cargo.toml.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(fixtures)");
    println!("cargo::rerun-if-env-changed=CI");
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    // Every crate that uses this script sits two levels below the repository root.
    let fixtures = Path::new(&manifest).join("../../../shared/fixtures");
    // A directory is scanned for changes, and a missing one reruns this script each
    // build, so the cfg follows the fixtures appearing or going.
    println!("cargo::rerun-if-changed={}", fixtures.display());
    if fixtures.is_dir() {
        println!("cargo::rustc-cfg=fixtures");
    } else if std::env::var_os("CI").is_some() {
        panic!(
            "CI must have the fixtures at {}: the tests that read them would be skipped",
            fixtures.display()
        );
    }
}
