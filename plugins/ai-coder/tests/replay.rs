//! Replay and restart: a run over the log in pieces, restarted from snapshots or from
//! nothing, stores byte for byte what one uninterrupted run stores, and ends in the
//! same state.

mod common;

use std::sync::Arc;

use common::Stream;
use serde_json::json;
use vibes_events::{ApiUsage, Event};
use vibes_plugin::QueryArgs;
use vibes_plugin::testing::{Harness, Outcome, run};
use vibes_plugin_ai_coder::{AiCoder, Prices};

#[derive(Debug)]
struct Table(&'static str);

impl Prices for Table {
    fn cost(&self, _model: &str, usage: &ApiUsage) -> Option<f64> {
        Some(usage.output_tokens as f64 / 1000.0)
    }
    fn fingerprint(&self) -> String {
        self.0.into()
    }
}

fn stream() -> Vec<Event> {
    let mut st = Stream::new();
    st.run_start("r1", Some("builder"), None);
    for n in 0..6 {
        let s = format!("s{n}");
        st.start(&s, "claude-sonnet-4-5", &format!("/w/p{n}"));
        st.sample("r1", Some("s0"), 1 << 20, None);
        st.call(&s, None, &format!("m{n}a"), "claude-sonnet-4-5", 10, None);
        st.call(&s, None, &format!("m{n}a"), "claude-sonnet-4-5", 30, None);
        st.todos(&s, &[("one", "completed"), ("two", "in_progress")]);
        st.tool(
            &s,
            "Write",
            json!({"file_path": format!("/w/p{n}/f"), "content": "abc"}),
            "File created successfully at: f",
            false,
        );
        st.call(
            &s,
            Some("sub"),
            &format!("m{n}b"),
            "claude-haiku-4-5",
            5,
            None,
        );
        st.text(&s, "done", None);
        st.end(
            &s,
            n % 2 == 1,
            if n % 2 == 1 {
                "error_during_execution"
            } else {
                "success"
            },
        );
    }
    st.exit("r1", Some("s0"), Some(0), None);
    st.events
}

fn bytes(out: &Outcome) -> Vec<String> {
    out.outputs
        .iter()
        .filter(|(topic, _)| !topic.ends_with("dead-letter"))
        .flat_map(|(topic, events)| {
            events
                .iter()
                .map(move |e| format!("{topic} {}", e.to_json().unwrap()))
        })
        .collect()
}

fn state(out: &Outcome) -> (serde_json::Value, serde_json::Value) {
    let all = QueryArgs::new().with("all", "true");
    let mut stats = out.query("stats", &QueryArgs::new()).unwrap();
    // How it got there differs; what it holds does not.
    stats["state"]["state_bytes"] = json!(null);
    (out.query("coders", &all).unwrap(), stats)
}

fn plugin(every: u64) -> Box<AiCoder> {
    Box::new(AiCoder::with_prices(Arc::new(Table("t1"))).snapshot_every(every))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_in_pieces_with_snapshots_store_what_one_run_stores() {
    let events = stream();
    let whole = run(plugin(1_000_000), &events).await.unwrap();
    assert!(whole.dead_letters().is_empty());
    assert!(!bytes(&whole).is_empty());

    for (every, pieces) in [(7, 3), (1_000_000, 4), (3, 9)] {
        let harness = Harness::new();
        let mut last = None;
        for chunk in events.chunks(events.len().div_ceil(pieces)) {
            harness.append(chunk).await;
            last = Some(harness.run(plugin(every)).await.unwrap());
        }
        let last = last.unwrap();
        assert_eq!(
            bytes(&last),
            bytes(&whole),
            "snapshot every {every}, {pieces} pieces"
        );
        assert_eq!(
            state(&last),
            state(&whole),
            "snapshot every {every}, {pieces} pieces"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_priced_with_another_table_is_not_restored() {
    let events = stream();
    for (table, restored) in [("t1", true), ("t2", false)] {
        let harness = Harness::new();
        harness.append(&events[..events.len() / 2]).await;
        let first = harness.run(plugin(5)).await.unwrap();
        assert!(first.status.snapshots > 0);
        harness.append(&events[events.len() / 2..]).await;
        let next = Box::new(AiCoder::with_prices(Arc::new(Table(table))).snapshot_every(5));
        let second = harness.run(next).await.unwrap();
        assert_eq!(
            second.status.restored_from_snapshot.is_some(),
            restored,
            "priced with {table}"
        );
        let stats = second.query("stats", &QueryArgs::new()).unwrap();
        assert_eq!(stats["state"]["prices"], table);
    }
}
