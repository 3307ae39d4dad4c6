//! `vibes mcp`: every tool called through an rmcp client in this process, the server
//! as a `vibes mcp` subprocess on real stdio, bad arguments, a malformed message, the
//! HTTP transport's token, and (ignored unless Python is set up, see `.ci/run`) the
//! official Python SDK as a client the project did not write.
//!
//! The data: the example session (stream-json), the real transcript folder
//! `sample-project` of ../shared/fixtures/claude-projects (170 API calls, 23 failed
//! tool calls) and three sessions made from the real stream-json recording of
//! ../shared/fixtures/claude-stream (so failures come back in 3 sessions: gaps).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, CallToolResult, ReadResourceRequestParams};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use tempfile::TempDir;
use vibes::config::{Config, FlagValues};
use vibes::mcp::{Engine, VibesServer};
use vibes::storage::Storage;

mod common;
use common::EXAMPLE;

const EXAMPLE_SESSION: &str = "5f0c2a1e-8d4b-4c1f-9e7a-3b2d6c8f1a04";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures");
const RECORDING_SESSION: &str = "13fd3e32-9028-43ba-9306-4e08bca82525";
const TOOLS: [&str; 7] = [
    "capability_gaps",
    "gap_details",
    "list_sessions",
    "recent_failures",
    "search_events",
    "session_summary",
    "usage",
];

/// A data dir with the sessions above ingested (made once, then only read: every
/// test here reads it, none writes events).
struct Data {
    dir: TempDir,
}

impl Data {
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    /// `vibes` on this data dir.
    fn vibes(&self, args: &[&str]) -> Command {
        let mut cmd = common::vibes(&self.home());
        cmd.arg("--config")
            .arg(self.config())
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "warn");
        cmd
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.vibes(args).output().expect("run vibes");
        assert!(
            out.status.success(),
            "vibes {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }
}

fn fixture(path: &str) -> PathBuf {
    Path::new(FIXTURES).join(path)
}

fn data() -> &'static Data {
    static DATA: OnceLock<Data> = OnceLock::new();
    DATA.get_or_init(|| {
        let data = Data {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        std::fs::write(data.config(), "").expect("config");
        data.run(&["ingest", "claude", EXAMPLE]);
        let projects = fixture("claude-projects/sample-project");
        data.run(&[
            "ingest",
            "claude-projects",
            projects.to_str().expect("path"),
        ]);
        let recording = std::fs::read_to_string(fixture(
            "claude-stream/presmihaylov-ccagent__claude_response1.jsonl",
        ))
        .expect("the claude-stream fixture");
        for n in 1..=3 {
            let session = format!("{}{n}", &RECORDING_SESSION[..RECORDING_SESSION.len() - 1]);
            let text = recording
                .replace(RECORDING_SESSION, &session)
                .replace("toolu_", &format!("toolu_{n}_"));
            let path = data.dir.path().join(format!("s{n}.jsonl"));
            std::fs::write(&path, text).expect("copy");
            data.run(&["ingest", "claude", path.to_str().expect("path")]);
        }
        data
    })
}

/// An engine over the data dir, as `vibes mcp` opens it.
fn engine(data: &Data) -> Engine {
    let mut flags = FlagValues::default();
    flags.set(
        "data_dir",
        "--data-dir",
        data.data_dir().display().to_string(),
    );
    let config = Config::load(Some(&data.config()), |_| None, &flags).expect("config");
    Engine::new(Storage::open(config).expect("storage"))
}

/// A client of the server over an in-process pipe.
async fn in_process(data: &Data) -> RunningService<RoleClient, ()> {
    let (server_side, client_side) = tokio::io::duplex(64 * 1024);
    let server = VibesServer::new(engine(data));
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_side).await {
            let _ = running.waiting().await;
        }
    });
    ().serve(client_side).await.expect("client")
}

async fn call(client: &RunningService<RoleClient, ()>, tool: &str, args: Value) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments must be an object");
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

/// A successful call's structured content.
async fn answer(client: &RunningService<RoleClient, ()>, tool: &str, args: Value) -> Value {
    let result = call(client, tool, args.clone()).await;
    assert_ne!(result.is_error, Some(true), "{tool} {args}: {result:?}");
    result
        .structured_content
        .unwrap_or_else(|| panic!("{tool}: no structured content"))
}

/// A failed call's error text.
async fn tool_error(client: &RunningService<RoleClient, ()>, tool: &str, args: Value) -> String {
    let result = call(client, tool, args.clone()).await;
    assert_eq!(result.is_error, Some(true), "{tool} {args}: {result:?}");
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn items<'a>(page: &'a Value, key: &str) -> &'a Vec<Value> {
    page[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key}: {page}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tool_answers_from_the_stored_log() {
    let data = data();
    let client = in_process(data).await;

    let info = client.peer_info().expect("server info");
    assert!(
        info.instructions
            .as_deref()
            .is_some_and(|i| i.contains("recent_failures")),
        "{info:?}"
    );
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .expect("tools")
        .iter()
        .map(|t| {
            assert!(
                t.input_schema.get("type") == Some(&json!("object")),
                "{}: {:?}",
                t.name,
                t.input_schema
            );
            t.name.to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, TOOLS);

    // list_sessions: newest first; the same sessions and totals as `vibes stats`.
    let stats: Value = serde_json::from_str(&data.run(&["stats", "--json"])).expect("stats");
    let listed = answer(&client, "list_sessions", json!({"limit": 100})).await;
    let sessions = items(&listed, "sessions");
    assert_eq!(
        sessions.len(),
        stats["sessions"].as_array().expect("list").len()
    );
    assert_eq!(listed["totals"], stats["totals"]);
    assert!(
        sessions
            .windows(2)
            .all(|w| w[0]["start"].as_str() >= w[1]["start"].as_str()),
        "{listed}"
    );
    let example = sessions
        .iter()
        .find(|s| s["session_id"] == EXAMPLE_SESSION)
        .expect("the example session");
    assert_eq!(example["tool_errors"], 2);
    assert_eq!(example["turns"], 14);
    let first_two = answer(&client, "list_sessions", json!({"limit": 2})).await;
    assert_eq!(items(&first_two, "sessions")[..], sessions[..2]);
    assert_eq!(first_two["next_offset"], 2);

    // session_summary: the stats view with the failed tool calls.
    let summary = answer(
        &client,
        "session_summary",
        json!({"session_id": EXAMPLE_SESSION}),
    )
    .await;
    assert_eq!(summary["session"]["cost_usd"], 0.1873);
    assert_eq!(summary["session"]["tool_calls"]["Bash"], 3);
    assert_eq!(summary["failed_tool_calls_total"], 2);
    let failed = items(&summary, "failed_tool_calls");
    assert_eq!(failed[0]["tool"], "Bash");
    assert_eq!(failed[0]["tool_use_id"], "toolu_01Loop");
    assert_eq!(failed[0]["head"], "cargo test");
    assert_eq!(failed[0]["kind"], "test_failure");
    // The line as the agent saw it, not groove's normalised form.
    assert_eq!(
        failed[0]["error_line"],
        "thread 'settle::tests::settles_in_order' panicked at src/settle.rs:142:9:"
    );
    assert!(
        failed[0]["call"]
            .as_str()
            .is_some_and(|c| c.starts_with("$ for i in 1 2 3")),
        "{summary}"
    );
    assert_eq!(failed[1]["tool"], "Edit");
    assert_eq!(failed[1]["kind"], "edit_mismatch");
    assert!(
        failed[1]["error_line"]
            .as_str()
            .is_some_and(|l| l.contains("String to replace not found")),
        "{summary}"
    );

    // search_events: filters, and paging by offset through the same events.
    let one = answer(
        &client,
        "search_events",
        json!({"types": ["claude.tool_result"], "contains": "string TO replace", "session_id": EXAMPLE_SESSION}),
    )
    .await;
    let found = items(&one, "events");
    assert_eq!(found.len(), 1, "{one}");
    assert_eq!(found[0]["tool_id"], "toolu_01Edit2");
    assert_eq!(one["next_offset"], Value::Null);
    let unindexed = answer(
        &client,
        "search_events",
        json!({"types": ["claude.tool_result"], "contains": "string to replace"}),
    )
    .await;
    assert_eq!(items(&unindexed, "events")[..], found[..], "{unindexed}");
    let mut paged = Vec::new();
    let mut offset = Some(0u64);
    while let Some(at) = offset {
        let page = answer(
            &client,
            "search_events",
            json!({"types": ["claude.tool_*"], "session_id": EXAMPLE_SESSION, "limit": 5, "offset": at}),
        )
        .await;
        paged.extend(items(&page, "events").iter().cloned());
        offset = page["next_offset"].as_u64();
        assert!(paged.len() <= 18, "paging does not end: {page}");
    }
    assert_eq!(paged.len(), 18, "9 calls and 9 results");
    let all = answer(
        &client,
        "search_events",
        json!({"types": ["claude.tool_*"], "session_id": EXAMPLE_SESSION, "limit": 100}),
    )
    .await;
    assert_eq!(items(&all, "events")[..], paged[..]);
    let none = answer(
        &client,
        "search_events",
        json!({"types": ["session.start"], "until": "2000-01-01T00:00:00Z"}),
    )
    .await;
    assert!(items(&none, "events").is_empty(), "{none}");

    // recent_failures: newest first, by tool and command head, paged.
    let edits = answer(
        &client,
        "recent_failures",
        json!({"tool": "edit", "session_id": EXAMPLE_SESSION}),
    )
    .await;
    assert_eq!(items(&edits, "failures").len(), 1, "{edits}");
    assert_eq!(items(&edits, "failures")[0]["tool_use_id"], "toolu_01Edit2");
    let lint = answer(
        &client,
        "recent_failures",
        json!({"head": "make lint-fix", "limit": 100}),
    )
    .await;
    let lint = items(&lint, "failures");
    assert_eq!(lint.len(), 9, "3 sessions of 3 failures: {lint:?}");
    assert!(
        lint.iter()
            .all(|f| f["head"] == "make lint-fix" && f["tool"] == "Bash")
    );
    assert!(
        lint.windows(2)
            .all(|w| w[0]["at"].as_str() >= w[1]["at"].as_str())
    );
    let make = answer(
        &client,
        "recent_failures",
        json!({"head": "make", "limit": 4}),
    )
    .await;
    assert_eq!(items(&make, "failures").len(), 4);
    assert_eq!(make["next_offset"], 4);
    let everything = answer(&client, "recent_failures", json!({"limit": 100})).await;
    // 2 in the example, 23 in sample-project, and the recording's per copy.
    let sample = items(&everything, "failures")
        .iter()
        .filter(|f| f["session_id"] == "fe5e1c67-53e7-4862-81ae-d0e013e3270b")
        .count();
    assert_eq!(sample, 23, "{everything}");

    // capability_gaps and gap_details: the groove plugin's answers, as the CLI's.
    let cli_gaps: Value =
        serde_json::from_str(&data.run(&["groove", "gaps", "--json"])).expect("gaps");
    let gaps = answer(&client, "capability_gaps", json!({})).await;
    assert_eq!(
        items(&gaps, "gaps")[..],
        cli_gaps["gaps"].as_array().expect("gaps")[..]
    );
    let mkdir = items(&gaps, "gaps")
        .iter()
        .find(|g| g["head"] == "mkdir")
        .expect("the mkdir gap");
    let detail = answer(&client, "gap_details", json!({"gap_id": mkdir["id"]})).await;
    assert_eq!(detail["kind"], "permission_denied");
    assert!(
        items(&detail, "solutions")
            .iter()
            .any(|s| s["text"] == "Bash(mkdir:*)"),
        "{detail}"
    );

    // usage: by day, model and project, as `vibes usage` counts them.
    let cli: Value =
        serde_json::from_str(&data.run(&["usage", "daily", "--json", "--timezone", "UTC"]))
            .expect("usage");
    let by_day = answer(&client, "usage", json!({"by": "day", "timezone": "UTC"})).await;
    assert_eq!(
        items(&by_day, "rows")[..],
        cli["rows"].as_array().expect("rows")[..]
    );
    assert_eq!(by_day["totals"]["api_calls"], 170);
    let by_model = answer(&client, "usage", json!({"by": "model"})).await;
    let models = items(&by_model, "rows");
    assert_eq!(models.len(), 1, "{by_model}");
    assert_eq!(models[0]["model"], "claude-sonnet-4-20250514");
    assert_eq!(models[0]["api_calls"], 170);
    let by_project = answer(&client, "usage", json!({"by": "project"})).await;
    assert_eq!(items(&by_project, "rows").len(), 1, "{by_project}");
    assert_eq!(items(&by_project, "rows")[0]["api_calls"], 170);
    let none = answer(
        &client,
        "usage",
        json!({"by": "day", "since": "2030-01-01"}),
    )
    .await;
    assert!(items(&none, "rows").is_empty());

    client.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_stored_by_another_process_is_seen_by_the_next_call() {
    let data = Data {
        dir: tempfile::tempdir().expect("temp dir"),
    };
    std::fs::write(data.config(), "").expect("config");
    data.run(&["ingest", "claude", EXAMPLE]);
    let client = in_process(&data).await;
    let before = answer(&client, "list_sessions", json!({})).await;
    assert_eq!(before["totals"]["sessions"], 1);
    // The kept state answers again while the log has not grown.
    assert_eq!(answer(&client, "list_sessions", json!({})).await, before);
    let other = "0a0a0a0a-8d4b-4c1f-9e7a-3b2d6c8f1a04";
    let text = std::fs::read_to_string(EXAMPLE)
        .expect("example")
        .replace(EXAMPLE_SESSION, other);
    let path = data.dir.path().join("other.jsonl");
    std::fs::write(&path, text).expect("write");
    data.run(&["ingest", "claude", path.to_str().expect("path")]);
    let after = answer(&client, "list_sessions", json!({})).await;
    assert_eq!(after["totals"]["sessions"], 2, "{after}");
    let failures = answer(&client, "recent_failures", json!({"session_id": other})).await;
    assert_eq!(items(&failures, "failures").len(), 2, "{failures}");
    client.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_are_tool_errors_that_say_what_was_wrong() {
    let client = in_process(data()).await;
    let cases = [
        (
            "search_events",
            json!({"limit": 0}),
            "limit 0 is out of range: give 1 to 100",
        ),
        (
            "search_events",
            json!({"since": "yesterday"}),
            "since \"yesterday\" is not an RFC 3339 time",
        ),
        (
            "search_events",
            json!({"sesion_id": "x"}),
            "unknown field `sesion_id`",
        ),
        (
            "list_sessions",
            json!({"limit": "ten"}),
            "invalid type: string \"ten\"",
        ),
        ("session_summary", json!({}), "missing field `session_id`"),
        (
            "session_summary",
            json!({"session_id": "no-such-session"}),
            "no session no-such-session",
        ),
        ("gap_details", json!({"gap_id": "g-nope"}), "no gap g-nope"),
        ("usage", json!({"by": "week"}), "unknown variant `week`"),
        ("usage", json!({"by": "day", "since": "May 1"}), "since"),
        (
            "usage",
            json!({"by": "day", "timezone": "Mars/Olympus"}),
            "timezone \"Mars/Olympus\"",
        ),
        ("recent_failures", json!({"limit": 1000}), "give 1 to 100"),
    ];
    for (tool, args, says) in cases {
        let text = tool_error(&client, tool, args.clone()).await;
        assert!(text.contains(says), "{tool} {args}: {text}");
    }
    // An unknown tool is a protocol error; the server goes on serving.
    let unknown = client
        .call_tool(CallToolRequestParams::new("drop_tables"))
        .await;
    assert!(unknown.is_err(), "{unknown:?}");
    let listed = answer(&client, "list_sessions", json!({"limit": 1})).await;
    assert_eq!(items(&listed, "sessions").len(), 1);
    client.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_a_resource() {
    let client = in_process(data()).await;
    let resources = client.list_all_resources().await.expect("resources");
    let uri = format!("vibes://sessions/{EXAMPLE_SESSION}");
    assert!(resources.iter().any(|r| r.uri == uri), "{resources:?}");
    let templates = client
        .list_all_resource_templates()
        .await
        .expect("templates");
    assert_eq!(templates[0].uri_template, "vibes://sessions/{session_id}");
    let read = client
        .read_resource(ReadResourceRequestParams::new(uri.clone()))
        .await
        .expect("read");
    let text = match &read.contents[0] {
        rmcp::model::ResourceContents::TextResourceContents { text, .. } => text.clone(),
        other => panic!("not text: {other:?}"),
    };
    let summary: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(summary["session"]["session_id"], EXAMPLE_SESSION);
    assert_eq!(summary["failed_tool_calls_total"], 2);
    let missing = client
        .read_resource(ReadResourceRequestParams::new("vibes://sessions/nope"))
        .await;
    assert!(missing.is_err(), "{missing:?}");
    client.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vibes_mcp_serves_over_real_stdio() {
    let data = data();
    let cmd = tokio::process::Command::from(data.vibes(&["mcp"]));
    let (transport, _stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn vibes mcp");
    let client = ().serve(transport).await.expect("initialize");
    let tools = client.list_all_tools().await.expect("tools");
    assert_eq!(tools.len(), TOOLS.len());
    let failures = answer(
        &client,
        "recent_failures",
        json!({"tool": "Edit", "session_id": EXAMPLE_SESSION}),
    )
    .await;
    assert_eq!(items(&failures, "failures")[0]["kind"], "edit_mismatch");
    let bad = tool_error(&client, "search_events", json!({"until": "soon"})).await;
    assert!(bad.contains("until \"soon\""), "{bad}");
    client.cancel().await.expect("close");
}

/// Reads JSON-RPC lines from `out` until the response with `id`.
fn response(out: &mut impl BufRead, id: u64) -> Value {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).expect("read") > 0,
            "stdout closed before response {id}"
        );
        let message: Value = serde_json::from_str(&line).expect("a JSON-RPC line");
        if message["id"] == id {
            return message;
        }
    }
}

#[test]
fn a_malformed_message_does_not_stop_the_server() {
    let data = data();
    let mut child = data
        .vibes(&["mcp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut send = |text: &str| {
        stdin.write_all(text.as_bytes()).expect("write");
        stdin.write_all(b"\n").expect("write");
        stdin.flush().expect("flush");
    };
    send(
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#,
    );
    let init = response(&mut out, 1);
    assert_eq!(init["result"]["serverInfo"]["name"], "vibes", "{init}");
    send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_sessions""#);
    send("this is not JSON at all");
    send(r#"{"jsonrpc":"2.0","id":3,"method":"no/such/method"}"#);
    send(
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"list_sessions","arguments":{"limit":1}}}"#,
    );
    let unknown = response(&mut out, 3);
    assert!(unknown["error"]["code"].is_i64(), "{unknown}");
    let answer = response(&mut out, 4);
    assert_eq!(
        answer["result"]["structuredContent"]["returned"], 1,
        "{answer}"
    );
    drop(stdin);
    let status = wait(&mut child, Duration::from_secs(10));
    assert!(
        status.success(),
        "vibes mcp exits 0 when stdin closes: {status}"
    );
}

fn wait(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `vibes mcp --http 127.0.0.1:0` on `data_dir`: the child and the URL it serves.
#[expect(
    clippy::zombie_processes,
    reason = "the child is returned: the caller kills and waits on it"
)]
fn http_server(data: &Data, extra: &[&str]) -> (Child, String) {
    let mut args = vec!["mcp", "--http", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut child = data
        .vibes(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            err.read_line(&mut line).expect("read") > 0,
            "no serving line"
        );
        if let Some(at) = line.find("http://") {
            let url = line[at..]
                .split_whitespace()
                .next()
                .expect("url")
                .to_owned();
            std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
            return (child, url);
        }
    }
}

/// POSTs `body` to `url` with `token`; the status and body.
fn post(url: &str, body: &str, token: Option<&str>) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').expect("path"));
    let mut stream = TcpStream::connect(host).expect("connect");
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, text)
}

#[test]
fn http_binds_loopback_only_and_wants_the_token_once_one_is_configured() {
    let data = data();
    let refused = data
        .vibes(&["mcp", "--http", "0.0.0.0:0"])
        .output()
        .expect("run");
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("is not a loopback address"), "{stderr}");

    const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;
    let (mut open, url) = http_server(data, &[]);
    let (status, body) = post(&url, INIT, None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"serverInfo\""), "{body}");
    open.kill().expect("kill");
    let _ = open.wait();

    // A token: written mode 0600, never printed, then required.
    let token_file = data.data_dir().join("mcp-token");
    let (mut guarded, url) = http_server(data, &["--new-token"]);
    let token = std::fs::read_to_string(&token_file).expect("token");
    let token = token.trim();
    assert_eq!(token.len(), 64);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&token_file).expect("meta").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(post(&url, INIT, None).0, 401);
    assert_eq!(post(&url, INIT, Some("0123456789abcdef0123")).0, 401);
    let (status, body) = post(&url, INIT, Some(token));
    assert_eq!(status, 200, "{body}");
    guarded.kill().expect("kill");
    let _ = guarded.wait();
    std::fs::remove_file(&token_file).expect("remove the token");
}

/// The official MCP Python SDK (`mcp` on PyPI) as the client: `.ci/run` makes the
/// virtual environment `target/mcp-venv` with it and runs this test.
#[test]
#[ignore = "needs python"]
fn the_official_python_sdk_lists_and_calls_every_tool() {
    let data = data();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = std::env::var_os("VIBES_MCP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/mcp-venv/bin/python"));
    assert!(
        python.is_file(),
        "no {}: make it with `python3 -m venv target/mcp-venv && target/mcp-venv/bin/pip install -r crates/vibes/tests/mcp/requirements.txt`",
        python.display()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/client.py");
    let out = Command::new(python)
        .arg(script)
        .arg(common::BIN)
        .arg(data.config())
        .arg(data.data_dir())
        .env("HOME", data.home())
        .output()
        .expect("run the Python client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for tool in TOOLS {
        assert!(stdout.contains(&format!("ok {tool}")), "{stdout}");
    }
}
