//! The groove plugin over the real Claude stream-json recordings in
//! `../shared/fixtures/claude-stream` (ignored when they are absent:
//! `cfg(fixtures)`, build/fixtures_cfg.rs).

mod common;

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use serde_json::Value;
use vibes_events::Event;
use vibes_plugin::QueryArgs;
use vibes_plugin::testing::run;
use vibes_plugin_groove::Groove;
use vibes_sources::claude::ClaudeParser;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/claude-stream"
);

fn parse(name: &str) -> Option<Vec<Event>> {
    let path = PathBuf::from(FIXTURES).join(name);
    if !path.is_file() {
        eprintln!("skipped: {} is absent", path.display());
        return None;
    }
    let mut events = Vec::new();
    ClaudeParser::new()
        .parse_reader(BufReader::new(File::open(&path).unwrap()), |e| {
            events.push(e)
        })
        .unwrap();
    Some(events)
}

fn cluster_of<'a>(clusters: &'a [Value], head: &str) -> &'a Value {
    clusters
        .iter()
        .find(|c| c["head"] == head)
        .unwrap_or_else(|| panic!("no cluster of {head}: {clusters:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
async fn the_long_sessions_lint_fix_failures_share_one_cluster_and_its_success_recovers_them() {
    let Some(events) = parse("presmihaylov-ccagent__claude_response1.jsonl") else {
        return;
    };
    let out = run(Box::new(Groove::new()), &events).await.unwrap();
    assert!(out.dead_letters().is_empty());
    let stats = out.query("stats", &QueryArgs::new()).unwrap();
    // SOURCES.md: 53 tool results, 7 with is_error.
    assert_eq!(stats["counts"]["results"], 53);
    assert_eq!(stats["counts"]["failures"], 7);
    assert_eq!(stats["counts"]["orphan_results"], 0);
    assert_eq!(stats["counts"]["sessions_ended"], 1);
    assert_eq!(stats["state"]["live_sessions"], 0);

    // Cluster updates carry each cluster's counts as they grew; the last one per
    // cluster is its first failure, so read the final state through novelty instead.
    let novelty = out.query("novelty", &QueryArgs::new()).unwrap();
    let known = novelty["novelty"].as_array().unwrap();
    let lint: Vec<_> = known
        .iter()
        .filter(|k| k["fingerprint"]["head"] == "make lint-fix")
        .collect();
    assert_eq!(lint.len(), 3, "three different telling lines: {lint:?}");
    assert!(
        lint.iter()
            .all(|k| k["cluster_id"] == lint[0]["cluster_id"])
    );
    assert!(
        lint.iter()
            .all(|k| k["fingerprint"]["kind"] == "lint_error")
    );
    assert_eq!(
        lint[0]["fingerprint"]["line"],
        "<path>:<n>:<n>: undefined: NewJobsService"
    );

    let updates: Vec<Value> = out
        .topic("novelty")
        .iter()
        .filter(|e| e.event_type() == "groove.cluster_updated")
        .map(|e| serde_json::to_value(e).unwrap()["cluster"].clone())
        .collect();
    // One session: each cluster is updated once, when it first fails.
    let heads: Vec<_> = updates
        .iter()
        .map(|c| (c["tool"].clone(), c["head"].clone(), c["kind"].clone()))
        .collect();
    assert_eq!(updates.len(), 4, "{heads:?}");
    assert_eq!(cluster_of(&updates, "mkdir")["kind"], "permission_denied");
    assert_eq!(cluster_of(&updates, "make test")["kind"], "test_failure");
    let edit = updates.iter().find(|c| c["tool"] == "Edit").unwrap();
    assert_eq!(edit["kind"], "no_op_edit");

    // No gap from one session.
    assert!(out.topic("gaps").is_empty());

    // The later `make lint-fix` success recovers all three failures, with what
    // happened in between as the evidence.
    let clusters = out.query("clusters", &QueryArgs::new()).unwrap();
    let clusters = clusters["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 4);
    let lint = cluster_of(clusters, "make lint-fix");
    assert_eq!(lint["failures"], 3);
    assert_eq!(lint["fingerprints"], 3);
    assert_eq!(lint["recovered"], 3);
    assert_eq!(lint["unrecovered"], 0);
    let recoveries = lint["recoveries"].as_object().unwrap();
    assert!(
        recoveries.keys().all(|k| k.contains("edit *.go")),
        "{recoveries:?}"
    );
    // `make test` fails last and the session ends: unrecovered. The denied mkdir is
    // never retried within the window: unrecovered too.
    assert_eq!(cluster_of(clusters, "make test")["unrecovered"], 1);
    assert_eq!(cluster_of(clusters, "mkdir")["unrecovered"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
async fn a_session_with_a_megabyte_image_result_and_a_minimal_run_fold_without_trouble() {
    for name in [
        "presmihaylov-ccagent__claude-session-with-image.log",
        "charlieyou-claude-agent-sdk-gleam__basic_query.ndjson",
    ] {
        let Some(events) = parse(name) else {
            return;
        };
        let out = run(Box::new(Groove::new()), &events).await.unwrap();
        assert!(out.dead_letters().is_empty(), "{name}");
        let stats = out.query("stats", &QueryArgs::new()).unwrap();
        let results = events
            .iter()
            .filter(|e| e.event_type() == "claude.tool_result")
            .count();
        assert_eq!(stats["counts"]["results"], results, "{name}");
        assert!(
            stats["state_bytes"].as_u64().unwrap() < 64 * 1024,
            "results are never kept whole: {name}"
        );
    }
}
