//! The example plugin of docs/PLUGINS.md, compiled and run here; the guide must show
//! this code verbatim (the last test checks it).

// guide:start
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vibes_events::{EventData, Filter};
use vibes_plugin::{Emitter, Input, Manifest, Plugin, PluginError, QueryArgs, QueryError};

/// Counts failing tool calls per tool; when one tool fails three times in a row in a
/// session, writes a `streaks.found` event.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Streaks {
    /// Failures per tool name.
    failures: BTreeMap<String, u64>,
    /// Per session: the tool of the current run of failures, and its length.
    runs: BTreeMap<String, (String, u64)>,
}

impl Plugin for Streaks {
    fn manifest(&self) -> Manifest {
        Manifest::new("streaks", "tools that fail again and again")
            .filter(Filter::all().event_type("claude.tool_result"))
            .output("found")
            .query("failures", "failing calls per tool", &["tool"])
            .snapshot_every(10_000)
    }

    fn handle(&mut self, input: &Input<'_>, out: &mut Emitter) -> Result<(), PluginError> {
        let EventData::ToolResult(result) = &input.event.data else {
            return Ok(());
        };
        let tool = result.tool_name.clone().unwrap_or_else(|| "unknown".into());
        let session = result.session_id.clone().unwrap_or_default();
        if !result.is_error {
            self.runs.remove(&session);
            return Ok(());
        }
        *self.failures.entry(tool.clone()).or_default() += 1;
        let run = self
            .runs
            .entry(session.clone())
            .or_insert((tool.clone(), 0));
        if run.0 != tool {
            *run = (tool.clone(), 0);
        }
        run.1 += 1;
        if run.1 == 3 {
            out.emit(
                "found",
                "streaks.found",
                json!({ "session_id": session, "tool": tool }),
            )?;
        }
        Ok(())
    }

    fn query(&self, name: &str, args: &QueryArgs) -> Result<Value, QueryError> {
        match (name, args.get("tool")) {
            ("failures", Some(tool)) => Ok(json!(self.failures.get(tool).copied().unwrap_or(0))),
            ("failures", None) => Ok(json!(self.failures)),
            _ => Err(QueryError::BadArgument(format!("no query {name}"))),
        }
    }

    fn save(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(self).ok()
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        *self = serde_json::from_slice(bytes).map_err(|e| PluginError::new(e.to_string()))?;
        Ok(())
    }
}
// guide:end

use vibes_events::Event;

fn result(n: u64, session: &str, tool: &str, is_error: bool) -> Event {
    let line = json!({
        "id": format!("01900000-0000-7000-8000-{n:012x}"), "type": "claude.tool_result",
        "timestamp": format!("2026-01-01T00:00:{n:02}Z"), "source": "claude",
        "tool_id": format!("toolu_{n}"), "content": "", "is_error": is_error,
        "tool_name": tool, "session_id": session,
    });
    Event::from_json(&line.to_string()).expect("a tool result")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guide_example_finds_a_streak_once_and_answers_queries() {
    let events = vec![
        result(1, "s1", "Bash", true),
        result(2, "s1", "Bash", true),
        result(3, "s1", "Read", false),
        result(4, "s1", "Bash", true),
        result(5, "s1", "Bash", true),
        result(6, "s1", "Bash", true),
        result(7, "s1", "Bash", true),
        result(8, "s2", "Edit", true),
    ];
    let outcome = vibes_plugin::testing::run(Box::new(Streaks::default()), &events)
        .await
        .expect("runs");
    let found = outcome.topic("found");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].event_type(), "streaks.found");
    assert_eq!(found[0].extra["tool"], "Bash");
    assert_eq!(
        found[0].extra["cause"]["offset"], 5,
        "the third failure in a row"
    );
    let args = QueryArgs::new().with("tool", "Bash");
    assert_eq!(outcome.query("failures", &args).unwrap(), json!(6));
    assert_eq!(
        outcome.query("failures", &QueryArgs::new()).unwrap(),
        json!({"Bash": 6, "Edit": 1})
    );
}

#[test]
fn the_guide_shows_this_example_verbatim() {
    let source = include_str!("guide_example.rs");
    let start = source.find("// guide:start\n").expect("start marker") + "// guide:start\n".len();
    let end = source.find("// guide:end").expect("end marker");
    let guide = include_str!("../../../docs/PLUGINS.md");
    assert!(
        guide.contains(&source[start..end]),
        "docs/PLUGINS.md must show the example between the guide markers of tests/guide_example.rs"
    );
}
