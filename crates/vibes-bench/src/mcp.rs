//! `vibes mcp` over a large log: `search_events` with a selective filter, one request
//! to a running server (the `target/release/vibes` binary on stdio, spoken to line by
//! line), side by side with `vibes tail --json` given the same filter (a fresh process,
//! as a user runs it); and `list_sessions` the first time (the sessions plugin caught up
//! over everything) against the next call (the state kept while the log has not grown)
//! and against `vibes stats` from the plugin's snapshot (what loading the plugin for
//! every request would cost).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};
use vibes_events::{Event, ToolResult};

use crate::log::scratch_dir;
use crate::plugins::{session_events, time_vibes};
use crate::report::{Column, Measurement, Report};
use crate::{Options, Result};

/// One event in this many is a failed tool result: the filter's matches.
const EVERY: u64 = 50_000;

/// A `vibes mcp` child spoken to over its stdin and stdout.
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Server {
    fn start(bin: &std::path::Path, dir: &std::path::Path) -> Result<Server> {
        let mut child = Command::new(bin)
            .env("HOME", dir)
            .env_remove("VIBES_DATA_DIR")
            .arg("--data-dir")
            .arg(dir)
            .arg("mcp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut server = Server {
            child,
            stdin,
            stdout,
            next_id: 1,
        };
        server.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "vibes-bench", "version": "0"}}),
        )?;
        server.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
        Ok(server)
    }

    fn send(&mut self, message: &Value) -> Result<()> {
        writeln!(self.stdin, "{message}")?;
        self.stdin.flush()?;
        Ok(())
    }

    /// Sends a request and waits for its response's result.
    fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line)? == 0 {
                return Err(format!("vibes mcp closed stdout before answering {method}").into());
            }
            let message: Value = serde_json::from_str(&line)?;
            if message["id"] == id {
                return match message.get("result") {
                    Some(result) => Ok(result.clone()),
                    None => Err(format!("{method}: {message}").into()),
                };
            }
        }
    }

    /// Calls `tool`; its structured content and the seconds it took.
    fn call(&mut self, tool: &str, args: Value) -> Result<(Value, f64)> {
        let started = Instant::now();
        let result = self.request("tools/call", json!({"name": tool, "arguments": args}))?;
        let seconds = started.elapsed().as_secs_f64();
        if result["isError"] == true {
            return Err(format!("{tool}: {result}").into());
        }
        Ok((result["structuredContent"].clone(), seconds))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn run(options: Options, report: &mut Report) -> Result<()> {
    let n: u64 = if options.quick { 200_000 } else { 1_000_000 };
    let matches = n / EVERY;
    report.section(
        &format!(
            "MCP queries over {n} stored events ({} sessions of 500; {matches} failed tool results \
             among them): search_events of a running `vibes mcp` (one request) against \
             `vibes tail --json` (a fresh process) with the same filter; list_sessions the \
             first time, the next time (state kept while the log has not grown) and `vibes stats` \
             from the snapshot (a load per request)",
            n / 500
        ),
        "query",
        &[Column::Seconds],
        "ratio",
    );
    let bin = crate::usage::child::vibes_binary()?;
    let scratch = scratch_dir()?;
    let dir = scratch.path().join("data");
    // Every EVERY-th event a failed tool result of its session: a selective filter.
    let mut seq = 0u64;
    let batches = session_events(n).map(|mut batch| {
        for event in &mut batch {
            seq += 1;
            if seq.is_multiple_of(EVERY) {
                let mut result = ToolResult::new(format!("toolu_{seq}"), "error: boom", true);
                result.session_id = event.partition_key().map(str::to_owned);
                *event = Event::claude(result);
            }
        }
        batch
    });
    crate::plugins::store_host_events(&dir, batches)?;
    let row = |name: &str, seconds: f64| Measurement {
        seconds: Some(seconds),
        ..Measurement::new("mcp_queries", name)
    };

    let (tail, out) = time_vibes(
        &bin,
        &dir,
        &["tail", "--json", "--type", "claude.tool_result"],
    )?;
    let lines = out.iter().filter(|b| **b == b'\n').count() as u64;
    if lines != matches {
        return Err(format!("tail found {lines} of {matches} failed results").into());
    }
    let mut server = Server::start(&bin, &dir)?;
    let filter = json!({"types": ["claude.tool_result"], "limit": 100});
    let (found, first) = server.call("search_events", filter.clone())?;
    let (_, again) = server.call("search_events", filter)?;
    if found["returned"].as_u64() != Some(matches.min(100)) || !found["next_offset"].is_null() {
        return Err(format!("search_events found {} of {matches}", found["returned"]).into());
    }
    let (_, text) = server.call(
        "search_events",
        json!({"types": ["claude.tool_result"], "contains": "BOOM", "limit": 100}),
    )?;
    report.row(&row("tail --json --type (process)", tail), None);
    report.row(
        &row("search_events --type, first", first),
        Some(first / tail),
    );
    report.row(
        &row("search_events --type, again", again),
        Some(again / tail),
    );
    report.row(&row("search_events --type + text", text), Some(text / tail));

    let (listed, cold) = server.call("list_sessions", json!({"limit": 10}))?;
    if listed["totals"]["sessions"].as_u64() != Some(n.div_ceil(500)) {
        return Err(format!("list_sessions counted {}", listed["totals"]["sessions"]).into());
    }
    let (_, cached) = server.call("list_sessions", json!({"limit": 10}))?;
    drop(server);
    let (stats, _) = time_vibes(&bin, &dir, &["stats", "--json"])?;
    report.row(&row("list_sessions, first (catch-up)", cold), None);
    report.row(
        &row("list_sessions, kept state", cached),
        Some(cached / cold),
    );
    report.row(
        &row("stats from snapshot (process)", stats),
        Some(stats / cold),
    );
    Ok(())
}
