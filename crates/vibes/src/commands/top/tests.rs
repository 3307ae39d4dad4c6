//! Rendering tests: event streams built here, folded by the real plugins through the
//! model, drawn on ratatui's test backend; the assertions read the buffer's text.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::{Value, json};
use vibes_events::Event;
use vibes_log::{Delivered, RecordAddress};
use vibes_plugin::Follower;

use super::model::{Ask, Model};
use super::ui::{Pane, Ui};
use super::view;
use crate::plugins;

const SESSIONS: [&str; 3] = [
    "5f0c2a1e-8d4b-4c1f-9e7a-3b2d6c8f1a04",
    "6a1d3b2f-9e5c-4d20-8f8b-4c3e7d9a2b15",
    "7b2e4c30-af6d-4e31-9a9c-5d4f8eab3c26",
];

struct Stream {
    events: Vec<Event>,
    second: u32,
}

impl Stream {
    fn new() -> Self {
        Stream {
            events: Vec::new(),
            second: 0,
        }
    }

    fn push(&mut self, event_type: &str, fields: Value) {
        self.second += 1;
        let mut e = json!({
            "id": format!("0193a5c0-0000-7000-8000-{:012}", self.events.len()),
            "type": event_type,
            "timestamp": format!("2026-11-22T09:{:02}:{:02}Z", self.second / 60, self.second % 60),
            "source": "claude",
        });
        for (k, v) in fields.as_object().expect("fields are an object") {
            e[k] = v.clone();
        }
        self.events
            .push(Event::from_json(&e.to_string()).expect("a valid test event"));
    }

    /// A session in `cwd` whose `cargo test` fails once, then ends.
    fn session(&mut self, session: &str, cwd: &str, end: bool) {
        self.push(
            "session.start",
            json!({"session_id": session, "model": "claude-sonnet-4-5-20250929", "cwd": cwd, "tools": ["Bash"]}),
        );
        self.push(
            "claude.tool_use",
            json!({"session_id": session, "tool_id": "toolu_1", "tool_name": "Bash", "input": {"command": "cargo test -q"}}),
        );
        self.push(
            "claude.tool_result",
            json!({"session_id": session, "tool_id": "toolu_1", "tool_name": "Bash", "is_error": true,
                   "content": "test settle::tests::settles_in_order ... FAILED\ntest result: FAILED. 41 passed; 1 failed"}),
        );
        if end {
            self.push(
                "session.end",
                json!({"session_id": session, "num_turns": 4, "duration_ms": 94000, "total_cost_usd": 0.1873, "is_error": false}),
            );
        }
    }

    fn model(&self) -> Model {
        let mut model = Model::new(
            Follower::fresh(Box::new(plugins::ai_coder()), "vibes/events"),
            Follower::fresh(plugins::instance("groove").expect("groove"), "vibes/events"),
        );
        for (offset, event) in self.events.iter().enumerate() {
            model.fold(&Delivered {
                address: RecordAddress {
                    partition: 0,
                    offset: offset as u64,
                },
                timestamp: event.timestamp,
                event: event.clone(),
            });
        }
        model
    }
}

fn screen(model: &Model, ui: &Ui, width: u16, height: u16) -> String {
    let ask = Ask {
        filter: ui.event_filter(),
        all: ui.all,
        timeline: ui.timeline.clone(),
        events: usize::from(height),
    };
    let view = model.view(&ask);
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("a test terminal");
    terminal
        .draw(|f| view::draw(f, &view, ui))
        .expect("drawing");
    let buffer = terminal.backend().buffer();
    let mut text = String::new();
    for y in 0..buffer.area.height {
        for x in 0..buffer.area.width {
            text.push_str(buffer[(x, y)].symbol());
        }
        text.push('\n');
    }
    text
}

fn three_sessions() -> Stream {
    let mut s = Stream::new();
    s.session(SESSIONS[0], "/home/dev/ledger", true);
    s.session(SESSIONS[1], "/home/dev/billing", true);
    s.session(SESSIONS[2], "/home/dev/payroll", false);
    s
}

#[test]
fn the_coders_pane_shows_each_session_with_status_model_turns_tools_errors_and_cost() {
    let text = screen(&three_sessions().model(), &Ui::default(), 160, 40);
    assert!(text.contains("1 coders"), "{text}");
    let header = text
        .lines()
        .find(|l| l.contains("CODER"))
        .expect("the table's header");
    for column in [
        "STATUS", "MODEL", "ELAPSED", "TURNS", "TOOLS", "ERRORS", "COST", "BURN/H",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let ledger = text
        .lines()
        .find(|l| l.contains("ledger"))
        .expect("the ledger coder");
    assert!(ledger.contains("5f0c2a1e"), "{ledger}");
    assert!(ledger.contains("completed"), "{ledger}");
    assert!(ledger.contains("sonnet-4-5"), "{ledger}");
    assert!(ledger.contains("$0.19"), "{ledger}");
    let payroll = text
        .lines()
        .find(|l| l.contains("payroll"))
        .expect("the payroll coder");
    assert!(payroll.contains("running"), "{payroll}");
    assert!(text.contains("3 coders (2 completed, 1 running)"), "{text}");
}

#[test]
fn the_events_pane_shows_the_newest_events_in_the_display_style_and_filters_by_type() {
    let model = three_sessions().model();
    let text = screen(&model, &Ui::default(), 160, 40);
    assert!(text.contains("2 events"), "{text}");
    assert!(text.contains("claude $ cargo test -q"), "{text}");
    assert!(
        text.contains("claude ✗ Bash: test settle::tests::settles_in_order"),
        "{text}"
    );
    let ui = Ui {
        filter: vec!["session.*".to_owned()],
        ..Ui::default()
    };
    let text = screen(&model, &ui, 160, 40);
    assert!(text.contains("events: session.*"), "{text}");
    assert!(text.contains("▶ session 7b2e4c30 started"), "{text}");
    assert!(!text.contains("claude $ cargo test -q"), "{text}");
}

#[test]
fn the_failures_pane_shows_each_failure_with_its_fingerprint_and_gap() {
    let text = screen(&three_sessions().model(), &Ui::default(), 220, 40);
    // The same failure in three sessions: one fingerprint, and a gap opened for it.
    let fp = vibes_plugin_groove::fingerprint::fingerprint(
        "Bash",
        "cargo test",
        "test settle::tests::settles_in_order ... FAILED\ntest result: FAILED. 41 passed; 1 failed",
    );
    let failures: Vec<&str> = text.lines().filter(|l| l.contains(&fp.id)).collect();
    assert_eq!(failures.len(), 3, "{text}");
    for line in &failures {
        assert!(line.contains(" [g-"), "{line}");
        assert!(line.contains("Bash `cargo test` test_failure"), "{line}");
        assert!(line.contains("[g-"), "{line}");
    }
    assert!(
        failures[0].contains("7b2e4c30"),
        "newest first: {}",
        failures[0]
    );
}

#[test]
fn the_gaps_pane_shows_the_open_gap() {
    let text = screen(&three_sessions().model(), &Ui::default(), 220, 40);
    assert!(text.contains("5 gaps"), "{text}");
    let gap = text
        .lines()
        .find(|l| l.contains("g-") && l.contains("detected"))
        .expect("the gap's row");
    assert!(
        gap.contains("detected medium test_failure: Bash `cargo test` in 3 sessions (3 failures"),
        "{gap}"
    );
}

#[test]
fn the_alerts_pane_shows_rate_limits_and_resource_limits() {
    let mut s = three_sessions();
    s.push(
        "claude.rate_limit",
        json!({"session_id": SESSIONS[2], "status": "rejected", "message": "5-hour limit reached"}),
    );
    s.push(
        "run.limit",
        json!({"run_id": "r1", "session_id": SESSIONS[2], "limit": "rss", "observed": 170_000_000.0, "threshold": 67_108_864.0}),
    );
    let model = s.model();
    let empty = screen(&three_sessions().model(), &Ui::default(), 160, 40);
    assert!(empty.contains("no alerts"), "{empty}");
    let text = screen(&model, &Ui::default(), 160, 40);
    assert!(text.contains("4 alerts"), "{text}");
    let alerts: Vec<&str> = text.lines().filter(|l| l.contains("ai-coder")).collect();
    // Newest first.
    assert!(
        alerts[0].contains("⚠ payroll: AI coder resource limit exceeded"),
        "{text}"
    );
    assert!(
        alerts[1].contains("⚠ payroll: AI provider rate limit reached"),
        "{text}"
    );
}

#[test]
fn a_timeline_shows_the_selected_coders_events() {
    let model = three_sessions().model();
    let ui = Ui {
        timeline: Some(SESSIONS[0].to_owned()),
        ..Ui::default()
    };
    let text = screen(&model, &ui, 160, 40);
    assert!(
        text.contains(&format!("timeline of {}", SESSIONS[0])),
        "{text}"
    );
    assert!(text.contains("ledger created"), "{text}");
    assert!(text.contains("ledger completed"), "{text}");
    assert!(!text.contains("billing"), "{text}");
}

#[test]
fn small_terminals_show_fewer_panes_and_never_panic() {
    let model = three_sessions().model();
    let medium = screen(&model, &Ui::default(), 100, 30);
    assert!(
        medium.contains("1 coders") && medium.contains("2 events") && medium.contains("3 failures")
    );
    assert!(
        !medium.contains("4 alerts") && !medium.contains("5 gaps"),
        "{medium}"
    );
    let ui = Ui {
        focus: Pane::Failures,
        ..Ui::default()
    };
    let small = screen(&model, &ui, 50, 12);
    assert!(small.contains("3 failures"), "{small}");
    assert!(!small.contains("1 coders"), "{small}");
    for (w, h) in [(0, 0), (1, 1), (2, 3), (10, 2), (20, 5), (300, 4), (4, 100)] {
        let help = Ui {
            help: true,
            ..Ui::default()
        };
        screen(&model, &help, w, h);
        screen(&model, &Ui::default(), w, h);
    }
}

#[test]
fn the_help_lists_the_keys() {
    let ui = Ui {
        help: true,
        ..Ui::default()
    };
    let text = screen(&three_sessions().model(), &ui, 120, 40);
    for key in [
        "Tab, Shift-Tab",
        "filter events by type",
        "pause",
        "timeline",
        "q, Ctrl-C",
    ] {
        assert!(text.contains(key), "{key}: {text}");
    }
}
