//! The aggregator's rules, fed with coder events as another producer writes them into
//! the event topic (the seed's `EmitAICoderEvent`), through the real runtime.

mod common;

use common::{Stream, at, json_of, of_type};
use serde_json::{Value, json};
use vibes_plugin::QueryArgs;
use vibes_plugin::testing::{Outcome, run};
use vibes_plugin_ai_coder::AiCoder;

fn query(out: &Outcome, name: &str, args: &[(&str, &str)]) -> Value {
    let mut q = QueryArgs::new();
    for (k, v) in args {
        q = q.with(*k, *v);
    }
    out.query(name, &q).unwrap()
}

fn seqs(answer: &Value) -> Vec<u64> {
    answer["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_keeps_the_newest_n_and_the_stats_count_everything() {
    let mut st = Stream::new();
    for i in 0..12 {
        let coder = if i % 3 == 0 { "a" } else { "b" };
        st.coder_event(
            "ai_coder.progress",
            json!({"coder_id": coder, "progress": i}),
        );
    }
    let out = run(Box::new(AiCoder::new().history(5)), &st.events)
        .await
        .unwrap();
    let history = query(&out, "history", &[]);
    assert_eq!(seqs(&history), [8, 9, 10, 11, 12]);
    assert_eq!(history["events"][4]["progress"], 11);
    let stats = query(&out, "stats", &[]);
    assert_eq!(stats["total_events"], 12);
    assert_eq!(stats["events_by_type"], json!({"ai_coder.progress": 12}));
    assert_eq!(stats["events_by_coder"], json!({"a": 4, "b": 8}));
    assert_eq!(stats["last_event"], at(12).to_string());
    assert_eq!(stats["history"]["len"], 5);
    assert_eq!(stats["history"]["oldest_seq"], 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_per_minute_are_counted_over_event_time() {
    let mut st = Stream::new();
    for s in [0, 10, 50, 70] {
        st.at(s)
            .coder_event("ai_coder.output", json!({"coder_id": "a"}));
    }
    // Late: older than the minute before the newest event.
    st.at(5)
        .coder_event("ai_coder.output", json!({"coder_id": "a"}));
    // Within the minute, out of order.
    st.at(60)
        .coder_event("ai_coder.output", json!({"coder_id": "a"}));
    let out = run(Box::new(AiCoder::new()), &st.events).await.unwrap();
    let stats = query(&out, "stats", &[]);
    // The minute ending at second 70: seconds 11..=70 hold 50, 60 and 70.
    assert_eq!(stats["events_per_minute"], 3);
    assert_eq!(stats["late_for_rate"], 1);
    assert_eq!(stats["total_events"], 6);
    assert_eq!(stats["newest_event"], at(70).to_string());
    assert_eq!(stats["first_event"], at(0).to_string());
    assert_eq!(
        stats["last_event"],
        at(60).to_string(),
        "the last one recorded"
    );
    // 6 events over 70 seconds.
    let average = stats["average_events_per_minute"].as_f64().unwrap();
    assert!((average - 6.0 / (70.0 / 60.0)).abs() < 1e-9, "{average}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_filter_and_the_cursor_select_what_they_say() {
    let mut st = Stream::new();
    st.at(0)
        .coder_event("ai_coder.started", json!({"coder_id": "a"}));
    st.at(10).coder_event(
        "ai_coder.file_created",
        json!({"coder_id": "a", "file_path": "x"}),
    );
    st.at(20).coder_event(
        "ai_coder.file_modified",
        json!({"coder_id": "b", "file_path": "y"}),
    );
    st.at(30)
        .coder_event("ai_coder.output", json!({"coder_id": "a/sub"}));
    st.at(40)
        .coder_event("ai_coder.failed", json!({"coder_id": "b"}));
    let out = run(Box::new(AiCoder::new()), &st.events).await.unwrap();
    assert_eq!(seqs(&query(&out, "history", &[("coder", "a")])), [1, 2]);
    assert_eq!(
        seqs(&query(
            &out,
            "history",
            &[("coder", "a"), ("children", "true")]
        )),
        [1, 2, 4]
    );
    assert_eq!(
        seqs(&query(&out, "history", &[("type", "ai_coder.failed")])),
        [5]
    );
    assert_eq!(
        seqs(&query(&out, "history", &[("type", "ai_coder.file_*")])),
        [2, 3]
    );
    let since = at(20).to_string();
    let until = at(30).to_string();
    assert_eq!(
        seqs(&query(&out, "history", &[("since", &since)])),
        [3, 4, 5]
    );
    assert_eq!(
        seqs(&query(&out, "history", &[("until", &until)])),
        [1, 2, 3, 4]
    );
    assert_eq!(
        seqs(&query(
            &out,
            "history",
            &[("since", &since), ("until", &until), ("coder", "b")]
        )),
        [3]
    );
    let bad = out.query("history", &QueryArgs::new().with("since", "yesterday"));
    assert!(bad.unwrap_err().to_string().contains("no RFC 3339 time"));
    let reversed = out.query(
        "history",
        &QueryArgs::new()
            .with("since", until.clone())
            .with("until", since.clone()),
    );
    assert!(reversed.unwrap_err().to_string().contains("is after until"));

    // A cursor: pages of two, each answer says where to go on.
    let page = query(&out, "history", &[("after", "0"), ("limit", "2")]);
    assert_eq!(seqs(&page), [1, 2]);
    assert_eq!(page["next"], 2);
    let page = query(&out, "history", &[("after", "2"), ("limit", "2")]);
    assert_eq!(seqs(&page), [3, 4]);
    let page = query(&out, "history", &[("after", "4")]);
    assert_eq!(seqs(&page), [5]);
    assert_eq!(page["next"], 5);
    assert_eq!(page["missed"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_to_one_coder_sees_each_of_its_events_once_across_runs() {
    use vibes_plugin::testing::Harness;
    let harness = Harness::new();
    let mut st = Stream::new();
    st.coder_event("ai_coder.started", json!({"coder_id": "a"}));
    st.coder_event("ai_coder.started", json!({"coder_id": "b"}));
    harness.append(&st.events).await;
    let out = harness.run(Box::new(AiCoder::new())).await.unwrap();
    let first = query(&out, "history", &[("coder", "a"), ("after", "0")]);
    assert_eq!(seqs(&first), [1]);
    let cursor = first["next"].as_u64().unwrap().to_string();

    let mut more = Stream::new();
    more.at(100)
        .coder_event("ai_coder.output", json!({"coder_id": "b"}));
    more.coder_event("ai_coder.output", json!({"coder_id": "a", "text": "new"}));
    harness.append(&more.events).await;
    let out = harness.run(Box::new(AiCoder::new())).await.unwrap();
    let second = query(&out, "history", &[("coder", "a"), ("after", &cursor)]);
    assert_eq!(
        seqs(&second),
        [4],
        "only what came after the cursor, only coder a"
    );
    assert_eq!(second["events"][0]["text"], "new");

    // A cursor the bounded history has moved past says so.
    let mut st = Stream::new();
    for _ in 0..6 {
        st.coder_event("ai_coder.output", json!({"coder_id": "a"}));
    }
    let out = run(Box::new(AiCoder::new().history(3)), &st.events)
        .await
        .unwrap();
    assert_eq!(query(&out, "history", &[("after", "1")])["missed"], true);
    assert_eq!(query(&out, "history", &[("after", "3")])["missed"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_third_failure_within_ten_minutes_raises_an_alert_and_failures_eleven_minutes_apart_do_not()
 {
    let mut st = Stream::new();
    // Coder a: 0, 4 and 9 minutes: the third is within 10 minutes of the first.
    for minute in [0, 4, 9] {
        st.at(minute * 60).coder_event(
            "ai_coder.failed",
            json!({"coder_id": "a", "reason": "crash"}),
        );
    }
    // Coder b: 11 minutes apart, never 3 within 10.
    for minute in [0, 11, 22, 33] {
        st.at(minute * 60 + 1)
            .coder_event("ai_coder.failed", json!({"coder_id": "b"}));
    }
    // Coder c: 2 failures, then three from minute 12: the first two have left the
    // window when the third of the later ones comes.
    for minute in [0, 1, 12, 13, 14] {
        st.at(minute * 60 + 2)
            .coder_event("ai_coder.failed", json!({"coder_id": "c"}));
    }
    let out = run(Box::new(AiCoder::new()), &st.events).await.unwrap();
    let alerts = of_type(&out, "alerts", "ai_coder.failure_alert");
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[0]["coder_id"], "a");
    assert_eq!(alerts[0]["failure_count"], 3);
    assert_eq!(alerts[0]["timestamp"], at(9 * 60).to_string());
    assert_eq!(alerts[0]["first_failure"], at(0).to_string());
    assert_eq!(alerts[0]["reason"], "crash");
    assert_eq!(alerts[1]["coder_id"], "c");
    assert_eq!(alerts[1]["failure_count"], 3);
    assert_eq!(alerts[1]["timestamp"], at(14 * 60 + 2).to_string());
    assert_eq!(alerts[1]["first_failure"], at(12 * 60 + 2).to_string());
    let queried = query(&out, "alerts", &[("type", "ai_coder.failure_alert")]);
    assert_eq!(queried["alerts"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_metrics_measure_created_to_completed_and_limits_warn() {
    let mut st = Stream::new();
    st.at(0)
        .coder_event("ai_coder.created", json!({"coder_id": "a"}));
    st.at(90)
        .coder_event("ai_coder.completed", json!({"coder_id": "a", "turns": 3}));
    st.coder_event("ai_coder.completed", json!({"coder_id": "never-created"}));
    st.coder_event(
        "ai_coder.rate_limit",
        json!({"coder_id": "a", "status": "rejected"}),
    );
    st.coder_event(
        "ai_coder.resource_limit",
        json!({"coder_id": "a", "limit": "cost", "observed": 2.5, "threshold": 2.0}),
    );
    let out = run(Box::new(AiCoder::new()), &st.events).await.unwrap();
    let metrics = of_type(&out, "alerts", "ai_coder.completion_metrics");
    assert_eq!(metrics.len(), 1);
    assert_eq!(metrics[0]["duration_ms"], 90_000);
    assert_eq!(metrics[0]["turns"], 3);
    let warnings = of_type(&out, "alerts", "ai_coder.system_warning");
    assert_eq!(warnings.len(), 2);
    assert_eq!(warnings[0]["warning"], "rate_limit");
    assert_eq!(warnings[0]["message"], "AI provider rate limit reached");
    assert_eq!(warnings[0]["status"], "rejected");
    assert_eq!(warnings[1]["warning"], "resource_limit");
    assert_eq!(warnings[1]["limit"], "cost");
    assert_eq!(warnings[1]["observed"], 2.5);
    let stats = query(&out, "stats", &[]);
    assert_eq!(stats["completions_without_created"], 1);
    assert_eq!(
        stats["alerts_by_type"],
        json!({"ai_coder.completion_metrics": 1, "ai_coder.system_warning": 2})
    );
    // The alerts topic holds the same as the query.
    assert_eq!(json_of(&out, "alerts").len(), 3);
    assert_eq!(
        query(&out, "alerts", &[])["alerts"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}
