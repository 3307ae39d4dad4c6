//! The HTTP API of `vibes serve` as a client sees it: every endpoint, each kind of bad
//! input, the token, and a live stream dropped and resumed while events arrive.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

mod common;

use common::EXAMPLE;
use common::http::{Serve, get, post_json, request, sse};

struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn vibes(&self, args: &[&str]) -> std::process::Output {
        let out = common::vibes(&self.home())
            .arg("--data-dir")
            .arg(self.data())
            .args(args)
            .output()
            .expect("vibes runs");
        assert!(
            out.status.success(),
            "vibes {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The example session ingested, and a serve on a free port.
    fn serving(&self) -> Serve {
        self.vibes(&["ingest", "claude", EXAMPLE]);
        Serve::start(&self.home(), &self.data(), "127.0.0.1:0", &[])
    }
}

fn error_of(response: &common::http::Response) -> String {
    response.json()["error"]
        .as_str()
        .unwrap_or_else(|| panic!("an error body: {}", response.text()))
        .to_owned()
}

/// `vibes tail --json` with `args`, one canonical event per line.
fn tail_json(sb: &Sandbox, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["tail", "--json"];
    all.extend_from_slice(args);
    String::from_utf8(sb.vibes(&all).stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

/// Every page of `GET /api/events?<query>`, following `next`.
fn all_pages(addr: &str, query: &str, limit: u64) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => {
                // The cursor says where; `from` only starts the first page.
                let filters: Vec<&str> = query
                    .split('&')
                    .filter(|p| !p.starts_with("from="))
                    .collect();
                format!("/api/events?{}&limit={limit}&cursor={c}", filters.join("&"))
            }
            None => format!("/api/events?{query}&limit={limit}"),
        };
        let page = get(addr, &path);
        assert_eq!(page.status, 200, "{}", page.text());
        let page = page.json();
        let got = page["events"].as_array().expect("events").clone();
        assert!(got.len() as u64 <= limit);
        events.extend(got.into_iter().map(|item| item["event"].clone()));
        if page["more"] != true {
            return events;
        }
        cursor = Some(page["next"].as_str().expect("next").to_owned());
    }
}

#[test]
fn events_are_paged_with_the_tail_filters() {
    let sb = Sandbox::new();
    let serve = sb.serving();
    let addr = &serve.addr;
    // Page by page, everything is what tail prints, in the same canonical form.
    assert_eq!(all_pages(addr, "from=beginning", 7), tail_json(&sb, &[]));
    let first = get(addr, "/api/events?limit=10").json();
    assert_eq!(first["next"], "10");
    assert_eq!(first["more"], true);
    let item = &first["events"][0];
    assert_eq!(
        (item["partition"].as_u64(), item["offset"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(
        item["line"]
            .as_str()
            .expect("line")
            .contains("▶ session 5f0c2a1e started"),
        "the display line of tail: {item}"
    );
    // The same filters as tail, one rule.
    for (query, args) in [
        ("type=claude.tool_*", vec!["--type", "claude.tool_*"]),
        (
            "type=session.*&type=claude.text",
            vec!["--type", "session.*", "--type", "claude.text"],
        ),
        ("source=claude", vec!["--source", "claude"]),
        ("source=bd", vec!["--source", "bd"]),
        (
            "session=5f0c2a1e-8d4b-4c1f-9e7a-3b2d6c8f1a04&type=claude.tool_result",
            vec![
                "--session",
                "5f0c2a1e-8d4b-4c1f-9e7a-3b2d6c8f1a04",
                "--type",
                "claude.tool_result",
            ],
        ),
        ("from=20", vec!["--from", "20"]),
        ("from=end", vec!["--from", "end"]),
    ] {
        let expected = tail_json(&sb, &args);
        assert_eq!(all_pages(addr, query, 4), expected, "{query}");
    }
    assert_eq!(all_pages(addr, "type=claude.tool_*", 100).len(), 18);
    // A time: everything stored at or after the first event's time.
    let first_time = first["events"][0]["event"]["timestamp"]
        .as_str()
        .expect("time")
        .to_owned();
    assert_eq!(
        all_pages(addr, &format!("from={first_time}"), 100).len(),
        25
    );
    assert!(all_pages(addr, "from=2999-01-01T00:00:00Z", 100).is_empty());
}

#[test]
fn bad_requests_are_answered_400_with_the_reason() {
    let sb = Sandbox::new();
    let serve = sb.serving();
    let addr = &serve.addr;
    for (path, reason) in [
        (
            "/api/events?bogus=1",
            "unknown parameter \"bogus\"; this endpoint takes: type, source, session, from, cursor, limit",
        ),
        ("/api/events?type=", "parameter \"type\" is empty"),
        (
            "/api/events?session=a&session=b",
            "parameter \"session\" given more than once",
        ),
        (
            "/api/events?from=yesterday",
            "invalid from \"yesterday\": expected beginning, end, an offset",
        ),
        (
            "/api/events?from=99",
            "from 99 is past the end of vibes/events: the highest offset stored is 24",
        ),
        ("/api/events?cursor=abc", "invalid cursor \"abc\""),
        (
            "/api/events?cursor=1,2",
            "invalid cursor \"1,2\": it has 2 positions, the topic has 1 partition",
        ),
        (
            "/api/events?from=1&cursor=2",
            "give from or cursor, not both",
        ),
        (
            "/api/events?limit=lots",
            "invalid limit \"lots\": expected a whole number",
        ),
        (
            "/api/events?limit=100000",
            "invalid limit \"100000\": at most 1000",
        ),
        ("/api/stream?from=-3", "invalid from \"-3\""),
        ("/api/sessions?offset=x", "invalid offset \"x\""),
        ("/api/plugins/sessions/session", "missing argument id"),
        (
            "/api/plugins/sessions/stats?nope=1",
            "query stats has no parameter \"nope\"",
        ),
    ] {
        let answer = get(addr, path);
        assert_eq!(answer.status, 400, "{path}: {}", answer.text());
        assert!(
            error_of(&answer).starts_with(reason),
            "{path}: {}",
            answer.text()
        );
    }
    let resumed = request(addr, "GET", "/api/stream", &[("Last-Event-ID", "x")], b"");
    assert_eq!(resumed.status, 400);
    assert!(error_of(&resumed).starts_with("invalid Last-Event-ID \"x\""));
    for (path, status, reason) in [
        ("/api/nothing", 404, "no such API endpoint"),
        (
            "/api/sessions/no-such-session",
            404,
            "no session no-such-session",
        ),
        ("/api/plugins/nope/x", 404, "no plugin \"nope\""),
        (
            "/api/plugins/groove/nope",
            404,
            "plugin groove has no query \"nope\"",
        ),
        (
            "/api/plugins/sessions/session?id=nope",
            404,
            "no session nope",
        ),
    ] {
        let answer = get(addr, path);
        assert_eq!(answer.status, status, "{path}: {}", answer.text());
        assert!(
            error_of(&answer).starts_with(reason),
            "{path}: {}",
            answer.text()
        );
    }
    // Only the embedded files are served, whatever the path says.
    for path in [
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/web/app.js",
        "/Cargo.toml",
    ] {
        let answer = get(addr, path);
        assert_eq!(answer.status, 404, "{path}: {}", answer.text());
    }
    // Nothing above stored anything.
    assert_eq!(all_pages(addr, "", 100).len(), 25);
}

#[test]
fn posted_events_are_checked_by_the_emit_rules_and_acked() {
    let sb = Sandbox::new();
    let serve = sb.serving();
    let addr = &serve.addr;
    let answer = post_json(
        addr,
        "/api/events?durability=always",
        "{\"type\":\"error\",\"message\":\"one\",\"severity\":\"error\"}\n\n{\"type\":\"error\",\"message\":\"two\",\"severity\":\"error\",\"source\":\"ci\"}\n",
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["stored"], 2);
    assert_eq!(
        body["acks"][0],
        serde_json::json!({"topic": "vibes/events", "partition": 0, "offset": 25})
    );
    assert_eq!(body["acks"][1]["offset"], 26);
    let stored = tail_json(&sb, &["--from", "25"]);
    assert_eq!(stored.len(), 2);
    assert_eq!(
        (stored[0]["source"].as_str(), stored[1]["source"].as_str()),
        (Some("emit"), Some("ci"))
    );
    // One bad line and nothing is stored; each rejected line is named.
    let answer = post_json(
        addr,
        "/api/events",
        "{\"type\":\"error\",\"message\":\"fine\",\"severity\":\"error\"}\nnot json\n{\"type\":\"session.start\",\"model\":5}\n",
    );
    assert_eq!(answer.status, 400, "{}", answer.text());
    let body = answer.json();
    assert!(
        error_of(&answer).starts_with("2 lines rejected, nothing stored (first: line 2: "),
        "{body}"
    );
    let rejected = body["rejected"].as_array().expect("rejected lines");
    assert_eq!(
        rejected
            .iter()
            .map(|r| r["line"].as_u64().expect("n"))
            .collect::<Vec<_>>(),
        [2, 3]
    );
    assert!(
        rejected[1]["error"]
            .as_str()
            .expect("why")
            .contains("invalid type"),
        "{body}"
    );
    for (body, reason) in [
        ("", "the body holds no event"),
        ("\n  \n", "the body holds no event"),
    ] {
        let answer = post_json(addr, "/api/events", body);
        assert_eq!(answer.status, 400);
        assert!(error_of(&answer).starts_with(reason), "{}", answer.text());
    }
    let answer = post_json(addr, "/api/events?durability=sometimes", "{}");
    assert_eq!(answer.status, 400);
    assert!(
        error_of(&answer).starts_with("invalid durability"),
        "{}",
        answer.text()
    );
    // Not JSON by its type (what a form could send cross-origin): refused.
    let form = request(
        addr,
        "POST",
        "/api/events",
        &[("Content-Type", "text/plain")],
        b"{}",
    );
    assert_eq!(form.status, 415, "{}", form.text());
    // Another origin, with a JSON type: refused; the page's own origin: taken.
    let one = b"{\"type\":\"error\",\"message\":\"x\",\"severity\":\"error\"}";
    let json = ("Content-Type", "application/json");
    let cross = request(
        addr,
        "POST",
        "/api/events",
        &[json, ("Origin", "http://evil.example")],
        one,
    );
    assert_eq!(cross.status, 403, "{}", cross.text());
    let own = format!("http://{addr}");
    let same = request(addr, "POST", "/api/events", &[json, ("Origin", &own)], one);
    assert_eq!(same.status, 200, "{}", same.text());
    // A body over the limit: 413, and the server goes on.
    let huge = vec![b' '; 5 * 1024 * 1024];
    let answer = request(addr, "POST", "/api/events", &[json], &huge);
    assert_eq!(answer.status, 413, "{}", answer.text());
    assert_eq!(tail_json(&sb, &[]).len(), 28);
    // No CORS: nothing in any answer lets another origin read it.
    let answer = request(
        addr,
        "GET",
        "/api/events",
        &[("Origin", "http://evil.example")],
        b"",
    );
    assert!(
        answer
            .headers
            .iter()
            .all(|(n, _)| !n.starts_with("access-control-")),
        "{:?}",
        answer.headers
    );
    // A page on another name pointed at this address is refused.
    let rebound = request(
        addr,
        "GET",
        "/api/health",
        &[("Host", "evil.example:7700")],
        b"",
    );
    assert_eq!(rebound.status, 403, "{}", rebound.text());
}

#[test]
fn sessions_topics_plugins_and_health() {
    let sb = Sandbox::new();
    let serve = sb.serving();
    let addr = &serve.addr;
    // The running plugins answer as `vibes stats` and `vibes plugin` do.
    let stats: Value =
        serde_json::from_slice(&sb.vibes(&["stats", "--json"]).stdout).expect("json");
    let wait = Instant::now() + Duration::from_secs(30);
    let sessions = loop {
        let answer = get(addr, "/api/sessions");
        assert_eq!(answer.status, 200, "{}", answer.text());
        let body = answer.json();
        if body["count"] == 1 || Instant::now() > wait {
            break body;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(sessions["sessions"], stats["sessions"]);
    assert_eq!(sessions["totals"], stats["totals"]);
    let id = "5f0c2a1e-8d4b-4c1f-9e7a-3b2d6c8f1a04";
    let one = get(addr, &format!("/api/sessions/{id}")).json();
    assert_eq!(one["session"], stats["sessions"][0]);
    assert_eq!(one["records"], 25);
    assert_eq!(one["more"], false);
    let timeline: Vec<Value> = one["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|i| i["event"].clone())
        .collect();
    assert_eq!(timeline, tail_json(&sb, &["--session", id]));
    // Paged: 10 after the first 20 is the last 5.
    let page = get(addr, &format!("/api/sessions/{id}?skip=20&limit=10")).json();
    assert_eq!(page["timeline"].as_array().expect("page").len(), 5);
    assert_eq!(page["timeline"][0]["offset"], 20);
    assert_eq!(
        get(addr, &format!("/api/sessions/{id}?limit=10")).json()["more"],
        true
    );
    let none = get(addr, "/api/sessions?offset=1").json();
    assert_eq!(
        (none["sessions"].as_array().map(Vec::len), &none["count"]),
        (Some(0), &serde_json::json!(1))
    );

    let topics = get(addr, "/api/topics").json();
    let events = topics["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .find(|t| t["topic"] == "vibes/events")
        .expect("the event topic")
        .clone();
    assert_eq!(events["records"], 25);
    assert_eq!(
        events["partitions"][0],
        serde_json::json!({"partition": 0, "low": 0, "high": 25})
    );

    let plugins = get(addr, "/api/plugins").json();
    let names: Vec<&str> = plugins["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["sessions", "usage", "groove", "ai-coder"]);
    let sessions_plugin = &plugins["plugins"][0];
    assert!(
        sessions_plugin["queries"]
            .as_array()
            .expect("queries")
            .iter()
            .any(|q| q["name"] == "addresses")
    );
    let query = get(addr, &format!("/api/plugins/sessions/session?id={id}"));
    assert_eq!(query.json(), stats["sessions"][0]);
    let cli: Value =
        serde_json::from_slice(&sb.vibes(&["plugin", "groove", "gaps", "--json"]).stdout)
            .expect("json");
    assert_eq!(get(addr, "/api/plugins/groove/gaps").json(), cli);

    let health = get(addr, "/api/health");
    assert_eq!(health.status, 200, "{}", health.text());
    let health = health.json();
    assert_eq!(health["ok"], true);
    assert_eq!(health["backend"]["reachable"], true);
    assert_eq!(health["plugins"].as_array().map(Vec::len), Some(4));
    drop(serve);

    // A serve without the sessions plugin says so instead of guessing.
    let serve = Serve::start(
        &sb.home(),
        &sb.data(),
        "127.0.0.1:0",
        &["--plugins", "usage"],
    );
    let answer = get(&serve.addr, "/api/sessions");
    assert_eq!(answer.status, 503);
    assert!(error_of(&answer).starts_with("this serve does not run the sessions plugin"));
}

#[test]
fn off_binds_nothing_and_a_taken_port_is_an_error() {
    let sb = Sandbox::new();
    let serve = sb.serving();
    drop(serve);
    let out = common::vibes(&sb.home())
        .arg("--data-dir")
        .arg(sb.data())
        .args(["serve", "--http", "nowhere"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid --http \"nowhere\": expected an address such as 127.0.0.1:7700"),
        "{err}"
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("addr").to_string();
    let lines = Serve::try_start(&sb.home(), &sb.data(), &port, &[])
        .err()
        .expect("refused");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("cannot listen on {port}"))),
        "{lines:?}"
    );
    let mut off = common::vibes(&sb.home())
        .arg("--data-dir")
        .arg(sb.data())
        .args(["serve", "--http", "off"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawns");
    let mut reader = std::io::BufReader::new(off.stderr.take().expect("piped"));
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            std::io::BufRead::read_line(&mut reader, &mut line).expect("reads") > 0,
            "{seen:?}"
        );
        if line.starts_with("serving ") {
            break;
        }
        seen.push(line);
    }
    assert!(seen.iter().all(|l| !l.starts_with("http:")), "{seen:?}");
    let _ = off.kill();
    let _ = off.wait();
}

#[test]
fn any_address_but_loopback_needs_the_token() {
    let sb = Sandbox::new();
    sb.vibes(&["ingest", "claude", EXAMPLE]);
    let serve = Serve::start(&sb.home(), &sb.data(), "0.0.0.0:0", &[]);
    let token_file = sb.data().join("http.token");
    let token = std::fs::read_to_string(&token_file)
        .expect("the token file")
        .trim()
        .to_owned();
    let mode = std::fs::metadata(&token_file)
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // Printed once, when it was made.
    assert!(
        serve.stderr.iter().any(|l| l == &token),
        "{:?}",
        serve.stderr
    );
    let port = serve.addr.rsplit_once(':').expect("port").1.to_owned();
    let addr = format!("127.0.0.1:{port}");
    for path in [
        "/api/events",
        "/api/stream",
        "/api/sessions",
        "/api/health",
        "/api/topics",
    ] {
        let none = get(&addr, path);
        assert_eq!(none.status, 401, "{path}: {}", none.text());
        assert!(error_of(&none).starts_with("this server needs its token"));
        let wrong = request(
            &addr,
            "GET",
            path,
            &[("Authorization", "Bearer 0123456789abcdef0123456789abcdef")],
            b"",
        );
        assert_eq!(wrong.status, 401, "{path}");
        assert_eq!(error_of(&wrong), "wrong token");
    }
    let bearer = format!("Bearer {token}");
    let ok = request(
        &addr,
        "GET",
        "/api/events?limit=1",
        &[("Authorization", &bearer), ("Host", "vibes.example:7700")],
        b"",
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    // EventSource cannot set headers: the token goes in the query.
    let mut stream = sse(
        &addr,
        &format!("/api/stream?from=beginning&token={token}"),
        &[],
    );
    assert_eq!(stream.status, 200);
    assert_eq!(stream.next().expect("an event").id.as_deref(), Some("1"));
    // POST with the token needs no origin check.
    let posted = request(
        &addr,
        "POST",
        "/api/events",
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
            ("Origin", "http://elsewhere.example"),
        ],
        b"{\"type\":\"error\",\"message\":\"x\",\"severity\":\"error\"}",
    );
    assert_eq!(posted.status, 200, "{}", posted.text());
    // The page itself needs no token (it holds no data) and asks for one.
    assert_eq!(get(&addr, "/").status, 200);
    drop(stream);
    drop(serve);

    // The next start uses the same token and does not print it again.
    let serve = Serve::start(&sb.home(), &sb.data(), "0.0.0.0:0", &[]);
    assert!(
        serve.stderr.iter().all(|l| !l.contains(&token)),
        "{:?}",
        serve.stderr
    );
    assert!(
        serve
            .stderr
            .iter()
            .any(|l| l.contains("needs the token in")),
        "{:?}",
        serve.stderr
    );
    drop(serve);

    // A token others can read: the server refuses to start.
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let lines = Serve::try_start(&sb.home(), &sb.data(), "0.0.0.0:0", &[])
        .err()
        .expect("refused");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("http.token is readable by others (mode 644)")),
        "{lines:?}"
    );
}

/// The message numbers of `error` events in SSE data.
fn number(data: &str) -> u64 {
    let item: Value = serde_json::from_str(data).expect("json");
    item["event"]["message"]
        .as_str()
        .expect("message")
        .strip_prefix("m-")
        .expect("m-N")
        .parse()
        .expect("N")
}

fn append_numbered(addr: &str, from: u64, count: u64) {
    let body: String = (from..from + count)
        .map(|i| format!("{{\"type\":\"error\",\"message\":\"m-{i}\",\"severity\":\"error\"}}\n"))
        .collect();
    let answer = post_json(addr, "/api/events", &body);
    assert_eq!(answer.status, 200, "{}", answer.text());
}

#[test]
fn a_dropped_stream_resumes_with_last_event_id_without_gap_or_repeat() {
    let sb = Sandbox::new();
    let serve = sb.serving();
    let addr = serve.addr.clone();
    const TOTAL: u64 = 600;
    append_numbered(&addr, 0, 50);
    // A writer keeps appending, in small batches, while the reader drops and resumes.
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let addr = addr.clone();
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut next = 50;
            while next < TOTAL {
                append_numbered(&addr, next, 10);
                next += 10;
                std::thread::sleep(Duration::from_millis(5));
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let mut seen = Vec::new();
    let mut last_id: Option<String> = None;
    let mut connections = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while (seen.len() as u64) < TOTAL {
        assert!(Instant::now() < deadline, "saw {} of {TOTAL}", seen.len());
        connections += 1;
        let mut stream = match &last_id {
            None => sse(&addr, "/api/stream?from=beginning&type=error", &[]),
            Some(id) => sse(
                &addr,
                "/api/stream?from=beginning&type=error",
                &[("Last-Event-ID", id)],
            ),
        };
        assert_eq!(stream.status, 200);
        // Read a few, then drop the connection mid-stream.
        for _ in 0..37 {
            let Some(event) = stream.next() else { break };
            assert_eq!(event.event, None, "no lag at this pace: {event:?}");
            seen.push(number(&event.data));
            last_id = event.id;
            if seen.len() as u64 == TOTAL {
                break;
            }
        }
        stream
            .socket()
            .shutdown(std::net::Shutdown::Both)
            .expect("dropped");
    }
    writer.join().expect("writer");
    assert!(done.load(Ordering::SeqCst));
    assert!(connections > 10, "resumed {connections} times");
    assert_eq!(
        seen,
        (0..TOTAL).collect::<Vec<_>>(),
        "every event once, in order"
    );
    // The id is the cursor after the event: the 25 session events come first.
    assert_eq!(last_id.as_deref(), Some(&*format!("{}", 25 + TOTAL)));
}

#[test]
fn a_client_that_reads_too_slowly_is_told_it_lagged() {
    let sb = Sandbox::new();
    let serve = sb.serving();
    let addr = serve.addr.clone();
    let mut stream = sse(&addr, "/api/stream?type=error", &[]);
    assert_eq!(stream.status, 200);
    // Far more than the server's ring and the sockets' buffers, while this client
    // reads nothing.
    let (batches, per) = (60u64, 1000u64);
    for b in 0..batches {
        append_numbered(&addr, b * per, per);
    }
    let mut numbers = BTreeSet::new();
    let mut skipped = None;
    let mut last = None;
    while let Some(event) = stream.next() {
        match event.event.as_deref() {
            Some("lagged") => {
                let body: Value = serde_json::from_str(&event.data).expect("json");
                skipped = Some(skipped.unwrap_or(0) + body["skipped"].as_u64().expect("count"));
            }
            None => {
                let n = number(&event.data);
                numbers.insert(n);
                last = Some(n);
                if n == batches * per - 1 {
                    break;
                }
            }
            Some(other) => panic!("unexpected event {other}"),
        }
    }
    let skipped = skipped.expect("a lagged event");
    assert_eq!(last, Some(batches * per - 1), "goes on to the newest");
    assert_eq!(
        numbers.len() as u64 + skipped,
        batches * per,
        "delivered plus skipped is everything"
    );
    // The server is fine: another client reads everything from the log.
    assert_eq!(
        all_pages(&addr, "type=error", 1000).len() as u64,
        batches * per
    );
}
