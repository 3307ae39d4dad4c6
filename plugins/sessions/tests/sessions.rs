//! The sessions plugin under the real runtime: statistics, summaries, and the address
//! index that `vibes tail --session` reads.

use serde_json::{Value, json};
use vibes_events::Event;
use vibes_plugin::QueryArgs;
use vibes_plugin::testing;
use vibes_plugin_sessions::{SUMMARIES, SUMMARY_TYPE, Sessions};

fn event(value: Value) -> Event {
    Event::from_json(&value.to_string()).expect("a valid event")
}

fn session_events(session: &str, minute: u32) -> Vec<Event> {
    let t = |s: u32| format!("2026-11-20T10:{minute:02}:{s:02}Z");
    vec![
        event(
            json!({"id": format!("0193a000-0000-7000-8000-{:06x}{:06x}", minute, 1),
            "type": "session.start", "timestamp": t(0), "source": "claude",
            "session_id": session, "model": "claude-sonnet-4-5", "tools": []}),
        ),
        event(
            json!({"id": format!("0193a000-0000-7000-8000-{:06x}{:06x}", minute, 2),
            "type": "claude.tool_use", "timestamp": t(1), "source": "claude",
            "session_id": session, "tool_id": format!("t-{session}"), "tool_name": "Bash",
            "input": {"command": "ls"}}),
        ),
        event(
            json!({"id": format!("0193a000-0000-7000-8000-{:06x}{:06x}", minute, 3),
            "type": "claude.tool_result", "timestamp": t(2), "source": "claude",
            "session_id": session, "tool_id": format!("t-{session}"), "is_error": true,
            "content": "no such file"}),
        ),
        // A type this build does not know, keyed by the session: indexed, not counted.
        event(
            json!({"id": format!("0193a000-0000-7000-8000-{:06x}{:06x}", minute, 4),
            "type": "claude.future_thing", "timestamp": t(3), "source": "claude",
            "session_id": session}),
        ),
        event(
            json!({"id": format!("0193a000-0000-7000-8000-{:06x}{:06x}", minute, 5),
            "type": "session.end", "timestamp": t(4), "source": "claude",
            "session_id": session, "num_turns": 3, "total_cost_usd": 0.25,
            "duration_ms": 4000}),
        ),
    ]
}

fn bead_event() -> Event {
    event(
        json!({"id": "0193a000-0000-7000-8000-0000000000b1", "type": "bead.created",
        "timestamp": "2026-11-20T09:00:00Z", "source": "bd", "bead_id": "vb-1",
        "title": "a bead", "status": "open", "priority": 2, "issue_type": "task"}),
    )
}

fn addresses(outcome: &testing::Outcome, key: &str) -> Value {
    outcome
        .query("addresses", &QueryArgs::new().with("id", key))
        .expect("addresses")
}

#[tokio::test]
async fn stats_count_each_event_once_and_summaries_follow_ends() {
    let mut events = session_events("s-a", 1);
    events.extend(session_events("s-b", 2));
    // s-a stored a second time: counted once, summarised once.
    events.extend(session_events("s-a", 1));
    let outcome = testing::run(Box::new(Sessions::new()), &events)
        .await
        .expect("run");
    let stats = outcome.query("stats", &QueryArgs::new()).expect("stats");
    assert_eq!(stats["totals"]["sessions"], 2, "{stats}");
    assert_eq!(stats["totals"]["tool_calls"], 2, "{stats}");
    assert_eq!(stats["totals"]["tool_errors"], 2, "{stats}");
    assert_eq!(stats["totals"]["succeeded"], 2, "{stats}");
    let sessions: Vec<&str> = stats["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["session_id"].as_str().expect("id"))
        .collect();
    assert_eq!(sessions, ["s-a", "s-b"]);
    let summaries = outcome.topic(SUMMARIES);
    assert_eq!(summaries.len(), 2, "one summary per ended session");
    assert!(summaries.iter().all(|e| e.event_type() == SUMMARY_TYPE));
}

#[tokio::test]
async fn every_keyed_event_is_indexed_once_bead_ids_included() {
    let mut events = vec![bead_event()];
    events.extend(session_events("s-a", 1));
    events.extend(session_events("s-a", 1));
    let outcome = testing::run(Box::new(Sessions::new()), &events)
        .await
        .expect("run");
    let a = addresses(&outcome, "s-a");
    assert_eq!(
        a["records"], 5,
        "the unknown type is indexed, the copy is not: {a}"
    );
    let runs = a["runs"].as_array().expect("runs");
    assert_eq!(
        runs.len(),
        1,
        "one session on one partition is one run: {a}"
    );
    let bead = addresses(&outcome, "vb-1");
    assert_eq!(bead["records"], 1, "{bead}");
    // A bead is indexed but is not a session.
    let err = outcome
        .query("session", &QueryArgs::new().with("id", "vb-1"))
        .expect_err("a bead has no session statistics");
    assert!(err.to_string().contains("no session vb-1"), "{err}");
    assert!(
        outcome
            .query("addresses", &QueryArgs::new().with("id", "nope"))
            .is_err()
    );
}

#[tokio::test]
async fn state_survives_save_and_restore() {
    use vibes_plugin::Plugin;
    let events = session_events("s-a", 1);
    let mut first = Sessions::new();
    let harness = testing::Harness::new();
    harness.append(&events).await;
    harness
        .runtime()
        .rebuild(&mut first, |_| {})
        .await
        .expect("rebuild");
    let bytes = first.save().expect("saves");
    let ids = first.save_for_handling().expect("saves its ids apart");
    assert_eq!(ids.len(), 8 * events.len(), "one fingerprint per event");
    // Queries need the state only: restored without the ids, it answers the same.
    let mut second = Sessions::new();
    second.restore(&bytes).expect("restores");
    let args = QueryArgs::new();
    assert_eq!(
        first.query("stats", &args).expect("stats"),
        second.query("stats", &args).expect("stats")
    );
    let key = QueryArgs::new().with("id", "s-a");
    assert_eq!(
        first.query("addresses", &key).expect("addresses"),
        second.query("addresses", &key).expect("addresses")
    );
    // With its ids, the restored state remembers what it counted.
    second.restore_for_handling(&ids).expect("restores the ids");
    let address = vibes_log::RecordAddress {
        partition: 0,
        offset: 99,
    };
    second.add(&events[1], address).expect("adds");
    assert_eq!(second.duplicates(), 1);
    assert_eq!(second.save(), {
        let mut third = Sessions::new();
        third.restore(&bytes).expect("restores");
        third.restore_for_handling(&ids).expect("restores the ids");
        third.add(&events[1], address).expect("adds");
        third.save()
    });
    assert_eq!(second.save_for_handling(), Some(ids.clone()));
    // Ids that do not fit the state are refused.
    for cut in [0, 8, ids.len() - 8] {
        let mut state = Sessions::new();
        state.restore(&bytes).expect("restores");
        let err = state
            .restore_for_handling(&ids[..cut])
            .expect_err("too few ids do not restore");
        assert!(err.to_string().contains("the state names 5 ids"), "{err}");
    }
    let mut longer = ids.clone();
    longer.extend_from_slice(&[0; 8]);
    let mut state = Sessions::new();
    state.restore(&bytes).expect("restores");
    let err = state.restore_for_handling(&longer).expect_err("extra ids");
    assert!(err.to_string().contains("holds 48 bytes"), "{err}");
    // Ids out of order are refused too.
    let mut swapped = ids.clone();
    swapped[..16].rotate_left(8);
    let mut state = Sessions::new();
    state.restore(&bytes).expect("restores");
    let err = state
        .restore_for_handling(&swapped)
        .expect_err("unordered ids");
    assert!(err.to_string().contains("not in ascending order"), "{err}");
    // A damaged state is refused, not half restored.
    for cut in [3, bytes.len() / 2, bytes.len() - 1] {
        let err = Sessions::new()
            .restore(&bytes[..cut])
            .expect_err("a cut state does not restore");
        assert!(err.to_string().contains("does not decode"), "{err}");
    }
}

#[test]
fn a_restored_state_decodes_what_it_touches_and_saves_the_rest_as_it_was() {
    use vibes_plugin::Plugin;
    let at = |offset| vibes_log::RecordAddress {
        partition: 0,
        offset,
    };
    let mut events = vec![bead_event()];
    for (i, session) in ["s-a", "s-b", "s-c"].iter().enumerate() {
        events.extend(session_events(session, i as u32 + 1));
    }
    let mut full = Sessions::new();
    for (offset, event) in events.iter().enumerate() {
        full.add(event, at(offset as u64)).expect("adds");
    }
    let bytes = full.save().expect("saves");
    let ids = full.save_for_handling().expect("saves its ids");

    let mut restored = Sessions::new();
    restored.restore(&bytes).expect("restores");
    let args = QueryArgs::new();
    assert_eq!(
        restored.query("stats", &args).expect("stats"),
        full.query("stats", &args).expect("stats")
    );
    let one = QueryArgs::new().with("session", "s-b");
    assert_eq!(
        restored.query("stats", &one).expect("stats"),
        full.query("stats", &one).expect("stats")
    );
    assert_eq!(
        restored.addresses("vb-1").expect("the bead").runs(),
        full.addresses("vb-1").expect("the bead").runs()
    );
    assert!(restored.addresses("nope").is_none());
    // Restored without its ids, it does not save: a snapshot would lose them.
    assert_eq!(restored.save(), None);

    // Changes after the restore: s-b gets a new event, s-a a copy of one it had.
    restored
        .restore_for_handling(&ids)
        .expect("restores the ids");
    let mut later = session_events("s-b", 9);
    later.truncate(1);
    later.push(session_events("s-a", 1)[2].clone());
    for (i, event) in later.iter().enumerate() {
        let address = at(100 + i as u64);
        assert_eq!(
            restored.add(event, address).expect("adds"),
            full.add(event, address).expect("adds")
        );
    }
    assert_eq!(restored.duplicates(), 1);
    // Changed keys, keys as restored and new ones merge into the same bytes as a state
    // that was never saved.
    assert_eq!(restored.save(), full.save());
    assert_eq!(restored.save_for_handling(), full.save_for_handling());
    assert_eq!(
        restored.query("stats", &args).expect("stats"),
        full.query("stats", &args).expect("stats")
    );
}

#[test]
fn a_damaged_saved_state_is_refused_with_what_does_not_fit() {
    use vibes_plugin::Plugin;
    let mut state = Sessions::new();
    for (offset, event) in session_events("s-a", 1).iter().enumerate() {
        state
            .add(
                event,
                vibes_log::RecordAddress {
                    partition: 0,
                    offset: offset as u64,
                },
            )
            .expect("adds");
    }
    let bytes = state.save().expect("saves");
    for cut in [20, 30, bytes.len() - 1] {
        let err = Sessions::new()
            .restore(&bytes[..cut])
            .expect_err("a cut state does not restore");
        let text = err.to_string();
        assert!(
            text.contains("does not decode") && text.contains("bytes"),
            "{text}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    let err = Sessions::new()
        .restore(&longer)
        .expect_err("a byte too many");
    assert!(
        err.to_string().contains("1 bytes follow the last key"),
        "{err}"
    );
    let err = Sessions::new()
        .restore(b"vibes-sessions/3\n...")
        .expect_err("another version");
    assert!(
        err.to_string()
            .contains("not a saved sessions state of this version"),
        "{err}"
    );
}

#[test]
fn ids_restore_in_numeric_order_whatever_their_bytes() {
    use vibes_plugin::Plugin;
    // Fingerprints 1 and 256: ascending as numbers, not as little-endian bytes.
    let text = |id: &str| {
        event(
            json!({"id": id, "type": "claude.text", "timestamp": "2026-11-20T10:00:00Z",
            "source": "claude", "session_id": "s-a", "text": "hi"}),
        )
    };
    let mut state = Sessions::new();
    for (offset, id) in [
        "0193a000-0000-7000-8000-000000000100",
        "0193a000-0000-7000-8000-000000000001",
    ]
    .iter()
    .enumerate()
    {
        let address = vibes_log::RecordAddress {
            partition: 0,
            offset: offset as u64,
        };
        state.add(&text(id), address).expect("adds");
    }
    let mut restored = Sessions::new();
    restored
        .restore(&state.save().expect("saves"))
        .expect("restores");
    restored
        .restore_for_handling(&state.save_for_handling().expect("saves the ids"))
        .expect("ids in numeric order restore");
    let again = vibes_log::RecordAddress {
        partition: 0,
        offset: 9,
    };
    restored
        .add(&text("0193a000-0000-7000-8000-000000000100"), again)
        .expect("adds");
    assert_eq!(restored.duplicates(), 1, "the restored id is remembered");
}
