//! Every coder event type derived from hand-written session and run streams, through
//! the real plugin runtime.

mod common;

use common::{Stream, at, json_of, of_type, types_of};
use serde_json::{Value, json};
use vibes_plugin::QueryArgs;
use vibes_plugin::testing::run;
use vibes_plugin_ai_coder::AiCoder;

fn query(out: &vibes_plugin::testing::Outcome, name: &str, args: &[(&str, &str)]) -> Value {
    let mut q = QueryArgs::new();
    for (k, v) in args {
        q = q.with(*k, *v);
    }
    out.query(name, &q).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_gives_lifecycle_progress_output_workspace_and_provider_events() {
    let s = "sess-1";
    let mut st = Stream::new();
    st.start(s, "claude-sonnet-4-5", "/home/dev/proj"); // 1
    st.call(s, None, "msg_1", "claude-sonnet-4-5", 5, None); // 2
    st.text_in(s, "Let me plan.", "msg_1"); // 3
    st.call(s, None, "msg_1", "claude-sonnet-4-5", 40, None); // 4
    st.todos(s, &[("write a.rs", "in_progress"), ("fix b.rs", "pending")]); // 5, 6
    st.tool(
        s,
        "Write",
        json!({"file_path": "/p/a.rs", "content": "fn main() {}\n"}),
        "File created successfully at: /p/a.rs",
        false,
    ); // 7, 8
    st.tool(
        s,
        "Write",
        json!({"file_path": "/p/b.rs", "content": "x"}),
        "The file /p/b.rs has been updated. Here's the result",
        false,
    ); // 9, 10
    st.tool(
        s,
        "Edit",
        json!({"file_path": "/p/c.rs", "old_string": "a", "new_string": "b"}),
        "<tool_use_error>String to replace not found</tool_use_error>",
        true,
    ); // 11, 12
    st.tool(
        s,
        "MultiEdit",
        json!({"file_path": "/p/b.rs", "edits": []}),
        "Applied 2 edits to /p/b.rs",
        false,
    ); // 13, 14
    st.tool(
        s,
        "Bash",
        json!({"command": "rm -f old.txt && git add -A && git commit -m 'wip'"}),
        "[main 1234] wip",
        false,
    ); // 15, 16
    st.tool(
        s,
        "Bash",
        json!({"command": "rm nothere.txt"}),
        "rm: cannot remove",
        true,
    ); // 17, 18
    st.todos(
        s,
        &[("write a.rs", "completed"), ("fix b.rs", "in_progress")],
    ); // 19, 20
    st.api_error(s, 529, "Overloaded"); // 21
    st.rate_limit(s, "allowed"); // 22
    st.rate_limit(s, "rejected"); // 23
    st.text(s, "Back again.", None); // 24
    st.interrupt(s); // 25
    st.turn(s, 12_000); // 26
    st.end(s, false, "success"); // 27

    let out = run(Box::new(AiCoder::new()), &st.events).await.unwrap();
    assert!(out.dead_letters().is_empty(), "{:?}", out.dead_letters());
    let types = types_of(&out, "events");
    assert_eq!(
        types,
        [
            "ai_coder.created",
            "ai_coder.started",
            "ai_coder.output",
            "ai_coder.api_call",
            "ai_coder.progress",
            "ai_coder.file_created",
            "ai_coder.file_modified",
            "ai_coder.file_modified",
            "ai_coder.file_deleted",
            "ai_coder.workspace_sync",
            "ai_coder.progress",
            "ai_coder.milestone",
            "ai_coder.api_error",
            "ai_coder.rate_limit",
            "ai_coder.paused",
            "ai_coder.resumed",
            "ai_coder.output",
            "ai_coder.paused",
            "ai_coder.progress",
            "ai_coder.completed",
        ]
    );
    let events = json_of(&out, "events");
    for e in &events {
        assert_eq!(e["coder_id"], s);
        assert_eq!(
            e["coder_name"], "proj",
            "named after the session's directory"
        );
        assert_eq!(e["session_id"], s, "keyed by session");
        assert_eq!(e["source"], "ai-coder");
    }
    let created = &events[0];
    assert_eq!(
        created["timestamp"],
        at(1).to_string(),
        "the source event's time"
    );
    assert_eq!(created["model"], "claude-sonnet-4-5");

    // The call is reported once, with its largest copy, at the time of its first copy,
    // when the coder does something that is not part of the same response.
    let call = &of_type(&out, "events", "ai_coder.api_call")[0];
    assert_eq!(call["output_tokens"], 40);
    assert_eq!(call["tokens_used"], 100 + 40 + 1000 + 10_000);
    assert_eq!(call["timestamp"], at(2).to_string());
    assert_eq!(call["message_id"], "msg_1");
    assert_eq!(call["cost_usd"], Value::Null, "no prices given");

    let progress = of_type(&out, "events", "ai_coder.progress");
    assert_eq!(progress[0]["stage"], "todo");
    assert_eq!(
        (progress[0]["done"].clone(), progress[0]["total"].clone()),
        (json!(0), json!(2))
    );
    assert_eq!(progress[0]["description"], "Doing write a.rs");
    assert_eq!(progress[1]["progress"], 0.5);
    assert_eq!(progress[2]["stage"], "turn");
    assert_eq!(progress[2]["turns"], 1);
    assert_eq!(progress[2]["duration_ms"], 12_000);
    let milestone = &of_type(&out, "events", "ai_coder.milestone")[0];
    assert_eq!(milestone["milestone"], "write a.rs");

    let created_file = &of_type(&out, "events", "ai_coder.file_created")[0];
    assert_eq!(created_file["file_path"], "/p/a.rs");
    assert_eq!(created_file["file_size"], 13);
    let modified = of_type(&out, "events", "ai_coder.file_modified");
    assert_eq!(modified[0]["file_path"], "/p/b.rs");
    assert_eq!(modified[0]["tool"], "Write");
    assert_eq!(modified[1]["tool"], "MultiEdit");
    assert_eq!(
        modified[1]["file_size"],
        Value::Null,
        "an edit does not tell the size"
    );
    let deleted = of_type(&out, "events", "ai_coder.file_deleted");
    assert_eq!(deleted.len(), 1, "the failed rm deleted nothing");
    assert_eq!(deleted[0]["file_path"], "old.txt");
    let sync = &of_type(&out, "events", "ai_coder.workspace_sync")[0];
    assert_eq!(sync["operation"], "git commit");

    let error = &of_type(&out, "events", "ai_coder.api_error")[0];
    assert_eq!(error["error_code"], "529");
    assert_eq!(error["error_message"], "Overloaded");
    let limit = &of_type(&out, "events", "ai_coder.rate_limit")[0];
    assert_eq!(limit["status"], "rejected");
    let paused = of_type(&out, "events", "ai_coder.paused");
    assert_eq!(paused[0]["reason"], "rate limit reached");
    assert_eq!(paused[1]["reason"], "interrupted by the person");

    let completed = &of_type(&out, "events", "ai_coder.completed")[0];
    assert_eq!(completed["previous_status"], "paused");
    assert_eq!(completed["reason"], "success");
    assert_eq!(completed["duration_ms"], 26_000);
    assert_eq!(completed["tool_calls"], 8);
    assert_eq!(completed["api_calls"], 1);
    assert_eq!(
        completed["turns"], 4,
        "the session's own count wins over the one turn seen"
    );

    // The aggregator's own events.
    assert_eq!(
        types_of(&out, "alerts"),
        ["ai_coder.system_warning", "ai_coder.completion_metrics"]
    );
    let alerts = json_of(&out, "alerts");
    assert_eq!(alerts[0]["warning"], "rate_limit");
    assert_eq!(alerts[1]["duration_ms"], 26_000);

    let coder = query(&out, "coder", &[("id", s)]);
    assert_eq!(coder["status"], "completed");
    assert_eq!(coder["tool_errors"], 2);
    assert_eq!(coder["api_errors"], 1);
    assert_eq!(coder["errors"], 3);
    assert_eq!(coder["rate_limits"], 1);
    assert_eq!(coder["cost_usd"], 0.5, "the session's reported cost");
    assert_eq!(coder["cost_source"], "reported");
    assert_eq!(
        coder["files"],
        json!({"created": 1, "modified": 2, "deleted": 1, "syncs": 1})
    );
    assert_eq!(coder["events"], 20);
    assert_eq!(coder["recent"].as_array().unwrap().len(), 20);
    // Ended coders are only listed with `all`.
    assert_eq!(
        query(&out, "coders", &[])["coders"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        query(&out, "coders", &[("all", "true")])["coders"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subagents_are_child_coders_that_end_with_their_task_or_their_session() {
    let s = "sess-2";
    let mut st = Stream::new();
    st.start(s, "claude-opus-4-6", "/w/app");
    let task = st.tool_use(
        s,
        "Task",
        json!({"description": "Explore code", "prompt": "look"}),
        None,
    );
    st.text(s, "exploring", Some(&task));
    let read = st.tool_use(s, "Read", json!({"file_path": "/w/app/x"}), Some(&task));
    st.tool_result(s, &read, "contents", false, Some(&task));
    st.tool_result(s, &task, "found it", false, None);
    // A transcript subagent (2.1: its own file, an agent id).
    st.call(s, Some("aac57f5"), "msg_a", "claude-sonnet-4-5", 7, None);
    st.call(s, None, "msg_m", "claude-opus-4-6", 9, Some("end_turn"));
    st.end(s, false, "success");

    let out = run(Box::new(AiCoder::new()), &st.events).await.unwrap();
    assert!(out.dead_letters().is_empty());
    let child = format!("{s}/{task}");
    let coders = query(&out, "coders", &[("all", "true")]);
    let coders = coders["coders"].as_array().unwrap();
    assert_eq!(coders.len(), 3);
    let find = |id: &str| coders.iter().find(|c| c["coder_id"] == id).unwrap().clone();
    let main = find(s);
    assert_eq!(main["children"], 2);
    assert_eq!(main["api_calls"], 1);
    let explorer = find(&child);
    assert_eq!(
        explorer["coder_name"], "app: Explore code",
        "named by its Task call"
    );
    assert_eq!(explorer["parent"], s);
    assert_eq!(explorer["status"], "completed");
    assert_eq!(explorer["reason"], "its Task call returned");
    assert_eq!(explorer["tool_calls"], 1);
    let agent = find(&format!("{s}/aac57f5"));
    assert_eq!(agent["coder_name"], "app/aac57f5");
    assert_eq!(agent["model"], "claude-sonnet-4-5");
    assert_eq!(agent["reason"], "its session ended");
    assert_eq!(agent["api_calls"], 1);

    // The child's events are its own; its session keys them.
    let child_events: Vec<Value> = json_of(&out, "events")
        .into_iter()
        .filter(|e| e["coder_id"] == child.as_str())
        .collect();
    let types: Vec<&str> = child_events
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "ai_coder.created",
            "ai_coder.started",
            "ai_coder.output",
            "ai_coder.completed"
        ]
    );
    assert!(child_events.iter().all(|e| e["session_id"] == s));
    assert_eq!(child_events[0]["parent"], s);
    // The subagent's pending call is reported when its session ends it.
    let calls = of_type(&out, "events", "ai_coder.api_call");
    assert_eq!(calls.len(), 2);
    // Completion metrics for all three.
    assert_eq!(
        of_type(&out, "alerts", "ai_coder.completion_metrics").len(),
        3
    );

    // The history of the main coder and its subagents.
    let family = query(&out, "history", &[("coder", s), ("children", "true")]);
    assert_eq!(family["count"], json_of(&out, "events").len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_session_says_why_and_activity_after_an_end_starts_it_again() {
    let s = "sess-3";
    let mut st = Stream::new();
    st.start(s, "m", "/x/y");
    st.end(s, true, "error_max_turns");
    st.text(s, "resumed", None);
    st.end(s, false, "success");
    let out = run(Box::new(AiCoder::new()), &st.events).await.unwrap();
    let failed = &of_type(&out, "events", "ai_coder.failed")[0];
    assert_eq!(failed["reason"], "error_max_turns");
    assert_eq!(
        failed["error_message"],
        "Reached maximum number of turns (4)"
    );
    assert_eq!(failed["current_status"], "failed");
    let started = of_type(&out, "events", "ai_coder.started");
    assert_eq!(started.len(), 2);
    assert_eq!(started[1]["previous_status"], "failed");
    assert_eq!(of_type(&out, "events", "ai_coder.completed").len(), 1);
    let coder = query(&out, "coder", &[("id", s)]);
    assert_eq!(coder["failures"], 1);
    assert_eq!(coder["status"], "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_give_resource_events_their_name_and_the_end_a_session_did_not_have() {
    let mut st = Stream::new();
    st.run_start("r1", Some("fixer"), Some(64 << 20));
    st.start("s9", "m", "/x/repo");
    st.sample("r1", Some("s9"), 48 << 20, Some(0.25));
    st.limit("r1", Some("s9"), "rss", 70.0 * 1048576.0, 64.0 * 1048576.0);
    st.exit("r1", Some("s9"), None, Some("rss"));
    // A run whose agent never said its session.
    st.run_start("r2", None, None);
    st.sample("r2", None, 1 << 20, None);
    st.exit("r2", None, Some(3), None);
    // A run whose session ended on its own first: the exit changes nothing.
    st.run_start("r3", Some("calm"), None);
    st.start("s10", "m", "/x/calm");
    st.sample("r3", Some("s10"), 1 << 20, None);
    st.end("s10", false, "success");
    st.exit("r3", Some("s10"), Some(0), None);

    let out = run(Box::new(AiCoder::new()), &st.events).await.unwrap();
    assert!(out.dead_letters().is_empty(), "{:?}", out.dead_letters());
    let usage = of_type(&out, "events", "ai_coder.resource_usage");
    assert_eq!(usage.len(), 3);
    assert_eq!(
        usage[0]["coder_name"], "fixer",
        "the run's name names its session"
    );
    assert_eq!(usage[0]["coder_id"], "s9");
    assert_eq!(usage[0]["memory_mb"], 48);
    assert_eq!(usage[0]["cpu_percent"], 42.5);
    assert_eq!(usage[0]["file_count"], 17);
    assert_eq!(usage[1]["coder_id"], "run:r2");
    let limit = &of_type(&out, "events", "ai_coder.resource_limit")[0];
    assert_eq!(limit["limit"], "rss");
    assert_eq!(limit["threshold"], 64.0 * 1048576.0);
    let stopped = &of_type(&out, "events", "ai_coder.stopped")[0];
    assert_eq!(stopped["coder_name"], "fixer");
    assert_eq!(stopped["reason"], "stopped by rss");
    let failed = &of_type(&out, "events", "ai_coder.failed")[0];
    assert_eq!(failed["coder_id"], "run:r2");
    assert_eq!(failed["reason"], "exited with code 3");
    let completed = of_type(&out, "events", "ai_coder.completed");
    assert_eq!(completed.len(), 1, "s10 ended once, by its session");
    assert_eq!(completed[0]["coder_name"], "calm");

    let warnings = of_type(&out, "alerts", "ai_coder.system_warning");
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0]["warning"], "resource_limit");
    assert_eq!(warnings[0]["limit"], "rss");

    let coder = query(&out, "coder", &[("id", "s9")]);
    assert_eq!(coder["status"], "stopped");
    assert_eq!(coder["cost_usd"], 0.25, "the run's reported cost");
    assert_eq!(coder["run"]["run_id"], "r1");
    assert_eq!(coder["run"]["max_rss_bytes"], 64 << 20);
    assert_eq!(coder["run"]["stopped_by"], "rss");
    assert_eq!(coder["run"]["samples"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_names_no_coder_is_a_dead_letter_and_changes_nothing() {
    let mut st = Stream::new();
    st.start("s1", "m", "/a/b");
    st.push(vibes_events::Event::claude(vibes_events::Text::new(
        "whose?",
    )));
    st.coder_event("ai_coder.progress", json!({"progress": 0.5}));
    st.coder_event("ai_coder.exploded", json!({"coder_id": "c"}));
    st.coder_event("ai_coder.failure_alert", json!({"coder_id": "c"}));
    st.coder_event(
        "ai_coder.progress",
        json!({"coder_id": "ext-1", "progress": 0.5}),
    );
    let out = run(Box::new(AiCoder::new()), &st.events).await.unwrap();
    let letters: Vec<String> = out
        .dead_letters()
        .iter()
        .map(|e| {
            serde_json::to_value(e).unwrap()["error"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(letters.len(), 4, "{letters:?}");
    assert!(letters[0].contains("claude.text event without a session_id"));
    assert!(letters[1].contains("needs a coder_id"));
    assert!(letters[2].contains("not a coder event type"));
    assert!(letters[3].contains("aggregator's own"));
    // The valid external event is recorded and written like a derived one.
    let types = types_of(&out, "events");
    assert_eq!(
        types,
        ["ai_coder.created", "ai_coder.started", "ai_coder.progress"]
    );
    let external = &json_of(&out, "events")[2];
    assert_eq!(external["coder_id"], "ext-1");
    assert_eq!(
        external["coder_name"], "ext-1",
        "the name defaults to the id"
    );
    let stats = query(&out, "stats", &[]);
    assert_eq!(stats["total_events"], 3);
    assert_eq!(stats["derived"]["handled"], 2);
    assert_eq!(stats["derived"]["external"], 1);
}
