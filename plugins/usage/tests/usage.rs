//! The usage plugin over the real runtime: each call once with its largest copy,
//! `<synthetic>` not a call, and a restart from a snapshot giving the same state.

use serde_json::json;
use vibes_events::{ApiCall, ApiUsage, Event, EventId};
use vibes_plugin::testing::Harness;
use vibes_plugin::{Plugin, QueryArgs};
use vibes_plugin_usage::Usage;

fn copy(message: &str, model: &str, secs: i64, output: u64, agent: Option<&str>) -> Event {
    let mut call = ApiCall::new(ApiUsage::new(10, output, 100, 0, 1_000));
    call.message_id = Some(message.to_owned());
    call.request_id = Some(format!("req_{message}"));
    call.model = Some(model.to_owned());
    call.session_id = Some("s1".to_owned());
    call.agent_id = agent.map(str::to_owned);
    call.is_sidechain = agent.is_some();
    let at = jiff::Timestamp::from_second(1_770_000_000 + secs).unwrap();
    let id = EventId::derived(at, format!("{message}/{secs}/{output}").as_bytes());
    Event::claude(call).with_id(id).with_timestamp(at)
}

fn events() -> Vec<Event> {
    vec![
        copy("a", "claude-opus-4-6", 5, 3, Some("agent-1")),
        copy("a", "claude-opus-4-6", 2, 40, None),
        copy("b", "claude-haiku-4-5", 9, 7, None),
        copy("a", "claude-opus-4-6", 7, 12, None),
        copy("c", "<synthetic>", 11, 0, None),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_counts_once_with_its_largest_copy_and_the_main_session_owns_it() {
    let outcome = vibes_plugin::testing::run(Box::new(Usage::new()), &events())
        .await
        .unwrap();
    let totals = outcome.query("totals", &QueryArgs::new()).unwrap();
    assert_eq!(totals["calls"], 2);
    assert_eq!(totals["copies"], 4, "the <synthetic> line is no copy");
    assert_eq!(totals["tokens"]["output"], 40 + 7);
    assert_eq!(totals["tokens"]["input"], 20);
    assert_eq!(totals["not_final"], 2);

    let mut usage = Usage::new();
    for event in events() {
        usage.add(&event);
    }
    let a = usage
        .calls()
        .find(|c| c.model == Some("claude-opus-4-6"))
        .unwrap();
    assert_eq!(a.tokens.output, 40);
    assert_eq!(a.agent_id, None, "the subagent's copy was a replay");
    assert!(!a.is_sidechain);
    assert_eq!(
        a.first,
        jiff::Timestamp::from_second(1_770_000_002).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_from_a_snapshot_gives_the_state_of_one_uninterrupted_fold() {
    let all = events();
    let mut whole = Usage::new();
    for event in &all {
        whole.add(event);
    }
    let saved = whole.save().unwrap();
    let mut restored = Usage::new();
    restored.restore(&saved).unwrap();
    assert_eq!(
        restored.save().unwrap(),
        saved,
        "save and restore round-trip"
    );

    // Half, a snapshot, then the rest: the same bytes as one fold.
    let mut first = Usage::new();
    for event in &all[..2] {
        first.add(event);
    }
    let mut second = Usage::new();
    second.restore(&first.save().unwrap()).unwrap();
    for event in &all[2..] {
        second.add(event);
    }
    assert_eq!(second.save().unwrap(), saved);

    // Through the runtime, with a restart in between.
    let harness = Harness::new();
    harness.append(&all[..3]).await;
    harness.run(Box::new(Usage::new())).await.unwrap();
    harness.append(&all[3..]).await;
    let run = harness.run(Box::new(Usage::new())).await.unwrap();
    assert_eq!(
        run.query("totals", &QueryArgs::new()).unwrap(),
        json!({"calls": 2, "copies": 4, "not_final": 2, "tokens": {
            "input": 20, "output": 47, "cache_creation_5m": 200, "cache_creation_1h": 0,
            "cache_read": 2000}})
    );
}
