//! The layers of docs/ARCHITECTURE.md, checked against the workspace's manifests
//! (`cargo metadata`): a plugin depends only on vibes-events, vibes-log and
//! vibes-plugin; a core crate never on anything above it; nothing on the host or the
//! benchmarks. A new crate must be given its place here.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

/// The vibes crates each core crate may depend on (normal and build dependencies;
/// dev-dependencies are free, tests may use anything below the host).
const CORE: &[(&str, &[&str])] = &[
    ("vibes-events", &[]),
    ("vibes-supervisor", &[]),
    ("vibes-log", &["vibes-events"]),
    ("vibes-sources", &["vibes-events"]),
    ("vibes-filelog", &["vibes-events", "vibes-log"]),
    (
        "vibes-iggy",
        &["vibes-events", "vibes-log", "vibes-supervisor"],
    ),
    ("vibes-plugin", &["vibes-events", "vibes-log"]),
];

/// What a crate under plugins/ may depend on.
const PLUGIN: &[&str] = &["vibes-events", "vibes-log", "vibes-plugin"];

/// Crates at the top: they may depend on anything below, nothing depends on them.
const TOP: &[&str] = &["vibes", "vibes-bench"];

fn workspace() -> Vec<Value> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    metadata["packages"]
        .as_array()
        .expect("packages")
        .to_owned()
}

/// Each workspace crate: whether it lives under plugins/, and its vibes dependencies
/// with their kind (`normal`, `dev`, `build`).
fn crates() -> BTreeMap<String, (bool, Vec<(String, String)>)> {
    workspace()
        .iter()
        .map(|p| {
            let name = p["name"].as_str().expect("name").to_owned();
            let path = p["manifest_path"].as_str().expect("manifest path");
            let plugin = path.contains("/plugins/");
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter_map(|d| {
                    let dep = d["name"].as_str()?;
                    dep.starts_with("vibes").then(|| {
                        let kind = d["kind"].as_str().unwrap_or("normal").to_owned();
                        (dep.to_owned(), kind)
                    })
                })
                .collect();
            (name, (plugin, deps))
        })
        .collect()
}

#[test]
fn every_crate_depends_only_on_the_layers_below_it() {
    let crates = crates();
    assert!(
        crates.len() >= CORE.len() + TOP.len(),
        "cargo metadata listed {} crates",
        crates.len()
    );
    let mut wrong = Vec::new();
    for (name, (plugin, deps)) in &crates {
        let allowed: Option<&[&str]> = if *plugin {
            Some(PLUGIN)
        } else if TOP.contains(&name.as_str()) {
            None
        } else {
            match CORE.iter().find(|(core, _)| core == name) {
                Some((_, allowed)) => Some(allowed),
                None => {
                    wrong.push(format!(
                        "{name} has no place in the layers: add it to tests/architecture.rs"
                    ));
                    continue;
                }
            }
        };
        for (dep, kind) in deps {
            if TOP.contains(&dep.as_str()) {
                wrong.push(format!(
                    "{name} depends on {dep} ({kind}), which is at the top"
                ));
            }
            if kind == "dev" || dep == name {
                continue;
            }
            if let Some(allowed) = allowed
                && !allowed.contains(&dep.as_str())
            {
                wrong.push(format!(
                    "{name} depends on {dep} ({kind}); it may depend on: {}",
                    if allowed.is_empty() {
                        "no vibes crate".to_owned()
                    } else {
                        allowed.join(", ")
                    }
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn the_plugins_are_the_crates_under_plugins() {
    let plugins: Vec<String> = crates()
        .into_iter()
        .filter(|(_, (plugin, _))| *plugin)
        .map(|(name, _)| name)
        .collect();
    for expected in [
        "vibes-plugin-sessions",
        "vibes-plugin-usage",
        "vibes-plugin-groove",
        "vibes-plugin-ai-coder",
    ] {
        assert!(
            plugins.iter().any(|p| p == expected),
            "{expected} is not under plugins/: {plugins:?}"
        );
    }
}
