//! Routes one realistic drain iteration through the Router: a drainer picks up a bead,
//! Claude works on it (thinks, reads, edits, runs tests, one of which fails), the bead
//! closes. Three subscribers listen on plain threads:
//!
//! - a console that prints every event on one line (in colour on a terminal),
//! - a tool audit that sees only `claude.tool_*` and counts calls and failures,
//! - a bead tracker that sees only events from bd.
//!
//! Run it with `cargo run -p vibes-events --example route_session`.

use std::io::IsTerminal;
use std::thread;
use std::time::Duration;

use serde_json::json;
use vibes_events::display::DisplayOptions;
use vibes_events::router::{OverflowPolicy, RecvError, SubscribeOptions};
use vibes_events::{
    BeadClosed, BeadStatus, DrainStart, DrainStop, Event, EventData, Filter, IterationEnd,
    IterationStart, SessionEnd, SessionStart, Text, Thinking, Timestamp, ToolResult, ToolUse,
    Usage, source,
};

const SESSION: &str = "6f1c2a9e-4b7d-4e1a-9c3f-2d8b5e7a1c04";
const BEAD: &str = "bd-042";

/// The events of the iteration, 1.5 s apart starting at `start`.
fn iteration(start: Timestamp) -> Vec<Event> {
    let session = |mut e: Event| {
        // Every Claude event carries the session id as its partition key.
        match &mut e.data {
            EventData::Text(d) => d.session_id = Some(SESSION.into()),
            EventData::Thinking(d) => d.session_id = Some(SESSION.into()),
            EventData::ToolUse(d) => d.session_id = Some(SESSION.into()),
            EventData::ToolResult(d) => d.session_id = Some(SESSION.into()),
            EventData::SessionStart(d) => d.session_id = Some(SESSION.into()),
            _ => {}
        }
        e
    };
    let tool = |id: &str, name: &str, input: serde_json::Value| {
        session(Event::claude(ToolUse::new(id, name, input)))
    };
    let result = |id: &str, name: &str, content: &str, is_error: bool| {
        let mut r = ToolResult::new(id, content, is_error);
        r.tool_name = Some(name.into());
        session(Event::claude(r))
    };

    let mut start_event = SessionStart::new(
        "claude-sonnet-4-5-20250929",
        ["Task", "Bash", "Glob", "Grep", "Read", "Edit", "Write"]
            .map(String::from)
            .to_vec(),
    );
    start_event.cwd = Some("/home/dev/router".into());
    start_event.permission_mode = Some("acceptEdits".into());
    start_event.claude_code_version = Some("2.1.7".into());

    let mut end = SessionEnd::new(SESSION, 9, 48_200, 0.3127);
    end.subtype = Some("success".into());
    end.result = Some("Fixed the timezone bug in parse_deadline; all tests pass.".into());
    let mut usage = Usage::default();
    usage.input_tokens = 1_204;
    usage.output_tokens = 3_388;
    usage.cache_read_input_tokens = 88_410;
    end.usage = Some(usage);

    let mut closed = BeadClosed::new(BEAD);
    closed.reason = Some("parse_deadline now keeps the offset".into());
    closed.actor = Some("claude".into());
    let mut in_progress = BeadStatus::new(BEAD, "open", "in_progress");
    in_progress.actor = Some("atari".into());
    let mut done = BeadStatus::new(BEAD, "in_progress", "closed");
    done.actor = Some("claude".into());
    let mut iteration_end = IterationEnd::new(BEAD, true, 9, 48_200, 0.3127);
    iteration_end.session_id = Some(SESSION.into());
    let mut stop = DrainStop::default();
    stop.reason = Some("no ready beads".into());

    let events = vec![
        Event::internal(DrainStart::new("/home/dev/router")),
        Event::internal(IterationStart::new(
            BEAD,
            "Deadlines parsed as local time",
            1,
            1,
        )),
        Event::bd(in_progress),
        session(Event::claude(start_event)),
        session(Event::claude(Thinking::new(
            "The bug report says deadlines shift by the UTC offset. parse_deadline probably \
             drops the offset before converting.",
        ))),
        tool(
            "toolu_01",
            "Grep",
            json!({"pattern": "fn parse_deadline", "path": "src"}),
        ),
        result(
            "toolu_01",
            "Grep",
            "src/deadline.rs:14:pub fn parse_deadline(s: &str)",
            false,
        ),
        tool(
            "toolu_02",
            "Read",
            json!({"file_path": "/home/dev/router/src/deadline.rs"}),
        ),
        result(
            "toolu_02",
            "Read",
            "    14\tpub fn parse_deadline(s: &str) -> Result<Deadline> {\n    15\t    let naive = NaiveDateTime::parse_from_str(s, FMT)?;",
            false,
        ),
        session(Event::claude(Text::new(
            "Found it: the offset is parsed and then discarded. I'll keep it and convert to UTC.",
        ))),
        tool(
            "toolu_03",
            "Edit",
            json!({"file_path": "/home/dev/router/src/deadline.rs", "old_string": "NaiveDateTime::parse_from_str", "new_string": "DateTime::parse_from_str"}),
        ),
        result(
            "toolu_03",
            "Edit",
            "The file /home/dev/router/src/deadline.rs has been updated.",
            false,
        ),
        tool(
            "toolu_04",
            "Bash",
            json!({"command": "cargo test -p router deadline -- --nocapture 2>&1 | tail -20", "description": "Run the deadline tests"}),
        ),
        result(
            "toolu_04",
            "Bash",
            "error[E0308]: mismatched types\n  --> src/deadline.rs:16:9\nexpected `Deadline`, found `DateTime<FixedOffset>`",
            true,
        ),
        tool(
            "toolu_05",
            "Edit",
            json!({"file_path": "/home/dev/router/src/deadline.rs", "old_string": "Ok(parsed)", "new_string": "Ok(Deadline(parsed.with_timezone(&Utc)))"}),
        ),
        result(
            "toolu_05",
            "Edit",
            "The file /home/dev/router/src/deadline.rs has been updated.",
            false,
        ),
        tool(
            "toolu_06",
            "Bash",
            json!({"command": "cargo test -p router"}),
        ),
        result(
            "toolu_06",
            "Bash",
            "test result: ok. 42 passed; 0 failed; 0 ignored",
            false,
        ),
        session(Event::claude(Text::new(
            "Fixed: parse_deadline keeps the offset and converts to UTC. All 42 tests pass.",
        ))),
        session(Event::claude(end)),
        Event::bd(done),
        Event::bd(closed),
        Event::internal(iteration_end),
        Event::internal(stop),
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let at = start
                .checked_add(Duration::from_millis(1_500 * i as u64))
                .expect("in range");
            e.with_timestamp(at)
        })
        .collect()
}

fn main() {
    let router = vibes_events::Router::new();
    let colour = std::io::stdout().is_terminal();

    // The console must not miss anything, so it asks for backpressure.
    let mut console = router
        .subscribe_with(SubscribeOptions::new(Filter::all()).policy(OverflowPolicy::Backpressure));
    let mut tools = router.subscribe_with(Filter::all().event_type("claude.tool_*"));
    let mut beads = router.subscribe_with(Filter::all().source(source::BD));

    let console = thread::spawn(move || {
        let options = DisplayOptions::plain().color(colour);
        let mut printed = 0;
        while let Ok(event) = console.recv_blocking() {
            println!("{}", event.line(options));
            printed += 1;
        }
        printed
    });
    let tools = thread::spawn(move || {
        let (mut calls, mut failures) = (0, 0);
        loop {
            match tools.recv_blocking() {
                Ok(event) => match &event.data {
                    EventData::ToolUse(_) => calls += 1,
                    EventData::ToolResult(r) if r.is_error => failures += 1,
                    _ => {}
                },
                Err(RecvError::Lagged(n)) => eprintln!("tool audit missed {n} events"),
                Err(RecvError::Closed) => return (calls, failures),
            }
        }
    });
    let beads = thread::spawn(move || {
        let mut seen = Vec::new();
        while let Ok(event) = beads.recv_blocking() {
            seen.push(event.event_type().to_owned());
        }
        seen
    });

    let start: Timestamp = "2026-11-22T09:30:00Z".parse().expect("valid timestamp");
    let events = iteration(start);
    let last_json = events.last().map(|e| e.to_json().expect("encodable"));
    for event in events {
        router.emit_blocking(event).expect("router is open");
    }
    let stats = router.stats();
    router.close();

    let printed = console.join().expect("console thread");
    let (calls, failures) = tools.join().expect("tool audit thread");
    let bead_events = beads.join().expect("bead tracker thread");
    println!();
    println!(
        "emitted {} events; the console printed {printed}",
        stats.emitted
    );
    println!("tool audit (claude.tool_*): {calls} calls, {failures} failed");
    println!("bead tracker (source bd): {}", bead_events.join(", "));
    let dropped: u64 = stats.subscribers.iter().map(|s| s.dropped).sum();
    println!("events dropped for slow subscribers: {dropped}");
    if let Some(json) = last_json {
        println!("the last event as it goes into a log:\n{json}");
    }
}
