//! The child's output reaches `tracing`, one event per line, naming the child. A test
//! binary of its own, because it installs a global subscriber (output is read on
//! threads, which a thread-local subscriber would not see).

mod common;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use common::{child, within};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use vibes_supervisor::{Restart, State, Supervisor, SupervisorOptions};

/// The fields of every event with target `vibes_supervisor::output`.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<BTreeMap<String, String>>>>);

struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == "vibes_supervisor::output"
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(BTreeMap::new());
        event.record(&mut fields);
        self.0.lock().expect("capture lock").push(fields.0);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[tokio::test]
async fn every_output_line_is_one_tracing_event_naming_the_child() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(capture.clone()).expect("first subscriber");

    // Prints `line 0` to `line 2` and one stderr line, then exits with 0 after 500 ms: with
    // `Restart::Never` supervision ends there, after the output has been read.
    let options = SupervisorOptions::new().restart(Restart::Never);
    let supervisor = Supervisor::start(child("talker", ["exit", "0", "500", "3"]), options)
        .await
        .expect("start");
    let pid = supervisor.pid().expect("running").to_string();
    let end = within("end", supervisor.wait_for(State::is_final))
        .await
        .expect("a final state");
    let stopped = matches!(end, State::Stopped);
    assert!(stopped, "{end:?}");

    let events = capture.0.lock().expect("capture lock").clone();
    let lines: Vec<(&str, &str)> = events
        .iter()
        .map(|fields| {
            assert_eq!(fields.get("child").map(String::as_str), Some("talker"));
            assert_eq!(fields.get("pid"), Some(&pid));
            (fields["stream"].as_str(), fields["message"].as_str())
        })
        .collect();
    let mut stdout: Vec<&str> = lines
        .iter()
        .filter(|(stream, _)| *stream == "stdout")
        .map(|(_, line)| *line)
        .collect();
    let stderr: Vec<&str> = lines
        .iter()
        .filter(|(stream, _)| *stream == "stderr")
        .map(|(_, line)| *line)
        .collect();
    assert_eq!(stdout.len() + stderr.len(), lines.len(), "{lines:?}");
    stdout.sort_unstable();
    assert_eq!(stdout, ["line 0", "line 1", "line 2"]);
    assert_eq!(stderr, ["stderr says bye"]);
}
