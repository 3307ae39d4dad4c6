//! The groove rules over hand-written session streams, through the real plugin runtime:
//! novelty once, three sessions open one gap, confirm, resolve, reopen with the same
//! id, dismissed stays quiet, observed recoveries and permission rules as solutions,
//! feedback after apply, and duplicates, replays and restarts creating nothing.

mod common;

use common::*;
use serde_json::json;
use vibes_plugin::QueryArgs;
use vibes_plugin::testing::{Harness, run};
use vibes_plugin_groove::Groove;

async fn fold(stream: &Stream) -> vibes_plugin::testing::Outcome {
    let outcome = run(Box::new(Groove::new()), &stream.events).await.unwrap();
    assert!(
        outcome.dead_letters().is_empty(),
        "{:?}",
        outcome.dead_letters()
    );
    outcome
}

fn the_gap(outcome: &vibes_plugin::testing::Outcome) -> serde_json::Value {
    let gaps = outcome
        .query("gaps", &QueryArgs::new().with("all", "all"))
        .unwrap();
    let gaps = gaps["gaps"].as_array().unwrap().clone();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    gaps[0].clone()
}

fn statuses(outcome: &vibes_plugin::testing::Outcome) -> Vec<(String, String)> {
    of_type(outcome, "gaps", "groove.gap_status_changed")
        .iter()
        .map(|e| {
            (
                e["old"].as_str().unwrap().to_owned(),
                e["new"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fingerprint_is_novel_once_and_a_cluster_updates_once_per_session() {
    let mut s = Stream::new();
    s.bash("s1", "make lint-fix", LINT_FAIL, true);
    s.bash("s1", "make lint-fix", LINT_FAIL, true);
    s.bash("s2", "make lint-fix", LINT_FAIL, true);
    // Another telling line: another fingerprint of the same cluster.
    s.bash(
        "s2",
        "make lint-fix",
        "make: *** [lint-fix] Error 2\nimport cycle not allowed",
        true,
    );
    let out = fold(&s).await;
    let novel = of_type(&out, "novelty", "groove.novelty_detected");
    assert_eq!(novel.len(), 2);
    assert_eq!(novel[0]["fingerprint"]["head"], "make lint-fix");
    assert_eq!(novel[0]["fingerprint"]["kind"], "lint_error");
    assert_eq!(novel[0]["session_id"], "s1");
    assert_eq!(novel[0]["cluster_id"], novel[1]["cluster_id"]);
    let updated = of_type(&out, "novelty", "groove.cluster_updated");
    assert_eq!(updated.len(), 2, "once per session the cluster failed in");
    assert_eq!(updated[1]["cluster"]["sessions"], 2);
    assert_eq!(updated[1]["cluster"]["failures"], 3);
    assert!(out.topic("gaps").is_empty(), "two sessions open no gap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sessions_open_one_gap_and_unrecovered_failures_confirm_it() {
    let mut s = Stream::new();
    for session in ["s1", "s2", "s3", "s4"] {
        lint_failure(&mut s, session);
    }
    let out = fold(&s).await;
    let created = of_type(&out, "gaps", "groove.gap_created");
    assert_eq!(created.len(), 1, "one gap per cluster");
    assert_eq!(created[0]["gap"]["sessions"], 3);
    assert_eq!(created[0]["gap"]["status"], "detected");
    assert_eq!(created[0]["gap"]["head"], "make lint-fix");
    // The third session's end leaves its failure (like the first two) unrecovered.
    assert_eq!(
        statuses(&out),
        vec![("detected".into(), "confirmed".into())]
    );
    let gap = the_gap(&out);
    assert_eq!(gap["status"], "confirmed");
    assert_eq!(gap["unrecovered"], 4);
    assert_eq!(gap["severity"], "medium");
    let solutions = of_type(&out, "gaps", "groove.solutions_generated");
    assert_eq!(solutions.len(), 1, "the set never changed after the first");
    assert_eq!(solutions[0]["solutions"][0]["kind"], "claude_md_note");
    assert!(
        solutions[0]["solutions"][0]["text"]
            .as_str()
            .unwrap()
            .contains("`make lint-fix`")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_sessions_resolve_and_a_new_failure_reopens_the_same_gap() {
    let mut s = Stream::new();
    for session in ["s1", "s2", "s3"] {
        lint_failure(&mut s, session);
    }
    for session in ["c1", "c2"] {
        lint_clean(&mut s, session);
    }
    // A session that never runs make lint-fix is not clean for this gap.
    s.bash("other", "ls", "a b", false);
    s.end("other");
    lint_clean(&mut s, "c3");
    lint_failure(&mut s, "s4");
    let out = fold(&s).await;
    assert_eq!(
        statuses(&out),
        vec![
            ("detected".into(), "confirmed".into()),
            ("confirmed".into(), "resolved".into()),
            ("resolved".into(), "reopened".into()),
        ]
    );
    let created = of_type(&out, "gaps", "groove.gap_created");
    assert_eq!(created.len(), 1);
    let id = created[0]["gap"]["id"].as_str().unwrap();
    for change in of_type(&out, "gaps", "groove.gap_status_changed") {
        assert_eq!(change["gap_id"], id, "reopened with the same id");
    }
    let resolved = &of_type(&out, "gaps", "groove.gap_status_changed")[1];
    assert_eq!(resolved["reason"], "3 clean sessions");
    assert_eq!(the_gap(&out)["status"], "reopened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dismissed_gap_stays_quiet_until_a_person_reopens_it() {
    let mut s = Stream::new();
    for session in ["s1", "s2", "s3"] {
        lint_failure(&mut s, session);
    }
    let first = fold(&s).await;
    let gap_id = the_gap(&first)["id"].as_str().unwrap().to_owned();
    let before = first.topic("gaps").len();

    s.decide("dismiss", &gap_id, None);
    for session in ["s4", "s5", "s6", "s7", "s8"] {
        lint_failure(&mut s, session);
    }
    for session in ["c1", "c2", "c3"] {
        lint_clean(&mut s, session);
    }
    s.edit("s9", "/repo/a.go");
    let out = fold(&s).await;
    let after: Vec<_> = out.topic("gaps")[before..]
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    assert_eq!(after.len(), 1, "only the dismissal itself: {after:?}");
    assert_eq!(after[0]["new"], "dismissed");
    assert_eq!(the_gap(&out)["status"], "dismissed");
    assert!(
        out.query("gaps", &QueryArgs::new()).unwrap()["gaps"]
            .as_array()
            .unwrap()
            .is_empty(),
        "a dismissed gap is not open"
    );
    // Clusters still count what happened.
    assert_eq!(the_gap(&out)["sessions"], 8);

    s.decide("reopen", &gap_id, None);
    let out = fold(&s).await;
    assert_eq!(
        statuses(&out).last().unwrap(),
        &("dismissed".into(), "reopened".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observed_recovery_becomes_a_ranked_solution() {
    let mut s = Stream::new();
    for session in ["s1", "s2", "s3"] {
        s.bash(
            session,
            "cargo test",
            "error[E0425]: cannot find value `x`\ntest failed",
            true,
        );
        s.call(
            session,
            "Read",
            json!({"file_path": "/r/src/lib.rs"}),
            "fn x",
            false,
        );
        s.edit(session, "/r/src/lib.rs");
        s.bash(session, "cargo build", "Finished", false);
        s.bash(session, "RUST_BACKTRACE=1 cargo test", "ok", false);
        s.end(session);
    }
    let out = fold(&s).await;
    let gap = the_gap(&out);
    assert_eq!(gap["kind"], "test_failure");
    let detail = out
        .query(
            "gap",
            &QueryArgs::new().with("id", gap["id"].as_str().unwrap()),
        )
        .unwrap();
    let cluster = &detail["cluster"];
    assert_eq!(cluster["recovered"], 3);
    assert_eq!(cluster["unrecovered"], 0);
    let solutions = detail["solutions"].as_array().unwrap();
    assert_eq!(solutions[0]["kind"], "observed", "{solutions:?}");
    assert_eq!(
        solutions[0]["text"],
        "Before running `cargo test` again: edit *.rs, run cargo build."
    );
    assert_eq!(solutions[0]["confidence"], 1.0_f64.min(0.95));
    assert_eq!(solutions[1]["kind"], "claude_md_note");
    assert_eq!(
        the_gap(&out)["status"],
        "detected",
        "recovered failures do not confirm"
    );
    // The stable id: the same solution has the same id in another fold.
    let again = fold(&s).await;
    let again = again
        .query(
            "gap",
            &QueryArgs::new().with("id", gap["id"].as_str().unwrap()),
        )
        .unwrap();
    assert_eq!(again["solutions"], detail["solutions"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_rule_comes_first_and_suggest_prints_it() {
    let denied = "Claude requested permissions to use Bash, but you haven't granted it yet.";
    let mut s = Stream::new();
    for session in ["s1", "s2", "s3"] {
        s.bash(session, "cd /repo && sudo mkdir -p out/jobs", denied, true);
        // A retry that works is an observed recovery with a high confidence.
        s.bash(session, "mkdir -p out/jobs", "", false);
        s.end(session);
    }
    let out = fold(&s).await;
    let gap = the_gap(&out);
    assert_eq!(gap["kind"], "permission_denied");
    assert_eq!(gap["head"], "mkdir");
    let detail = out
        .query(
            "gap",
            &QueryArgs::new().with("id", gap["id"].as_str().unwrap()),
        )
        .unwrap();
    let solutions = detail["solutions"].as_array().unwrap();
    assert_eq!(solutions[0]["kind"], "settings_rule");
    assert_eq!(solutions[0]["text"], "Bash(mkdir:*)");
    assert_eq!(solutions[1]["kind"], "observed");
    assert!(
        solutions[1]["confidence"].as_f64().unwrap() > solutions[0]["confidence"].as_f64().unwrap()
    );
    let suggest = out.query("suggest", &QueryArgs::new()).unwrap();
    assert_eq!(
        suggest["settings_json"],
        json!({"permissions": {"allow": ["Bash(mkdir:*)"]}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applying_a_solution_gives_feedback_on_the_sessions_after_it() {
    let mut s = Stream::new();
    for session in ["s1", "s2", "s3"] {
        lint_failure(&mut s, session);
    }
    let first = fold(&s).await;
    let gap = the_gap(&first);
    let gap_id = gap["id"].as_str().unwrap().to_owned();
    let detail = first
        .query("gap", &QueryArgs::new().with("id", &gap_id))
        .unwrap();
    let solution = detail["solutions"][0]["id"].as_str().unwrap().to_owned();

    s.decide("apply", &gap_id, Some(&solution));
    lint_clean(&mut s, "a1");
    assert!(
        fold(&s).await.topic("feedback").is_empty(),
        "one session is not enough"
    );
    lint_clean(&mut s, "a2");
    lint_failure(&mut s, "a3");
    lint_clean(&mut s, "a4");
    let out = fold(&s).await;
    let feedback = of_type(&out, "feedback", "groove.strategy_feedback");
    assert_eq!(feedback.len(), 2, "{feedback:?}");
    assert_eq!(feedback[0]["learning_id"], solution.as_str());
    assert_eq!(feedback[0]["gap_id"], gap_id.as_str());
    assert_eq!(feedback[0]["before"], 1.0);
    assert_eq!(feedback[0]["after"], 0.0);
    assert_eq!(feedback[0]["adjustment"], 1.0);
    // a3 fails: 1 of 3 after; a4 moves it only from 0.67 to 0.75, not reported.
    assert_eq!(feedback[1]["adjustment"], 0.67);
    assert_eq!(
        statuses(&out)[1..],
        [("confirmed".to_owned(), "in_progress".to_owned())]
    );
    // A decision naming an unknown solution is a dead letter and changes nothing.
    s.decide("apply", &gap_id, Some("s-0000000000000000"));
    let out = run(Box::new(Groove::new()), &s.events).await.unwrap();
    assert_eq!(out.dead_letters().len(), 1);
    assert!(
        serde_json::to_string(&out.dead_letters()[0])
            .unwrap()
            .contains("has no solution s-0000000000000000")
    );
}

fn workload() -> Stream {
    let mut s = Stream::new();
    for session in ["s1", "s2", "s3"] {
        s.bash(session, "cargo test", "test failed: assertion", true);
        s.edit(session, "/r/a.rs");
        s.bash(session, "cargo test", "ok", false);
        lint_failure(&mut s, session);
    }
    lint_clean(&mut s, "c1");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_replays_and_restarts_create_nothing_new() {
    let s = workload();
    let once = fold(&s).await;
    let expected = all_outputs(&once);
    assert!(expected.len() > 8, "{expected:?}");

    // Every event delivered twice (same ids and same ones with new ids): no new outputs.
    let mut twice = s.events.clone();
    twice.extend(s.events.iter().cloned());
    for e in &s.events {
        twice.push(
            e.clone()
                .with_id(vibes_events::EventId::derived(e.timestamp, b"copy")),
        );
    }
    let dup = run(Box::new(Groove::new()), &twice).await.unwrap();
    assert_eq!(
        all_outputs(&dup).len(),
        expected.len(),
        "a second delivery creates nothing"
    );
    let stats = dup.query("stats", &QueryArgs::new()).unwrap();
    assert!(stats["counts"]["duplicates"].as_u64().unwrap() > 0);
    assert_eq!(
        stats["counts"]["failures"],
        once.query("stats", &QueryArgs::new()).unwrap()["counts"]["failures"]
    );

    // Restarts mid-stream (a fresh plugin each time, replaying everything, or
    // restoring a snapshot taken every 4 events): the same outputs, byte for byte.
    for snapshot_every in [0, 4] {
        let harness = Harness::new();
        let mut from = 0;
        let mut last = None;
        for cut in [5, 11, 17, s.events.len()] {
            harness.append(&s.events[from..cut]).await;
            from = cut;
            let plugin = match snapshot_every {
                0 => Groove::new(),
                n => Groove::with_snapshot_every(n),
            };
            last = Some(harness.run(Box::new(plugin)).await.unwrap());
        }
        let last = last.unwrap();
        if snapshot_every > 0 {
            assert!(
                last.status.restored_from_snapshot.is_some(),
                "the last run restored a snapshot"
            );
        }
        assert_eq!(
            all_outputs(&last),
            expected,
            "snapshot every {snapshot_every}"
        );
        assert_eq!(
            last.query("stats", &QueryArgs::new()).unwrap()["counts"],
            once.query("stats", &QueryArgs::new()).unwrap()["counts"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_survives_save_and_restore_and_stats_report_its_size() {
    let s = workload();
    let out = fold(&s).await;
    let stats = out.query("stats", &QueryArgs::new()).unwrap();
    assert!(stats["state_bytes"].as_u64().unwrap() > 100);
    assert_eq!(stats["state"]["clusters"], 2);
    assert_eq!(
        stats["state"]["gaps"], 2,
        "cargo test failed in 3 sessions too, if always recovered"
    );
    assert_eq!(stats["state"]["live_sessions"], 0, "every session ended");
    assert_eq!(stats["counts"]["recoveries"], 3);
    use vibes_plugin::Plugin;
    let mut g = Groove::new();
    let err = g.restore(b"{not json").unwrap_err().to_string();
    assert!(err.contains("does not decode"), "{err}");
}
