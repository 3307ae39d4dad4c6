//! `Filter::matches_json` judges an encoded event by its type and source exactly as
//! `Filter::matches` judges the decoded one, and lets through what it cannot read.

use vibes_events::{Event, Filter, SessionStart, Text};

#[test]
fn the_json_verdict_is_the_decoded_verdict() {
    let events = [
        Event::new("claude", SessionStart::new("claude-x", vec![])),
        Event::new("claude", Text::new("a \"quoted\" type: session.start")),
        Event::new("bd", Text::new("hello")),
    ];
    let filters = [
        Filter::all(),
        Filter::all().event_type("session.start"),
        Filter::all().event_type("claude.*"),
        Filter::all().source("bd"),
        Filter::all().event_type("claude.text").source("claude"),
    ];
    for filter in &filters {
        for event in &events {
            let json = serde_json::to_vec(event).expect("encode");
            assert_eq!(
                filter.matches_json(&json),
                filter.matches(event),
                "{filter:?} on {}",
                String::from_utf8_lossy(&json)
            );
        }
    }
    let wanted: Vec<bool> = events
        .iter()
        .map(|e| filters[1].matches_json(&serde_json::to_vec(e).expect("encode")))
        .collect();
    assert_eq!(wanted, [true, false, false]);
}

#[test]
fn what_cannot_be_read_is_let_through_for_the_decoder_to_report() {
    let filter = Filter::all().event_type("session.start");
    assert!(filter.matches_json(b"not json"));
    assert!(filter.matches_json(br#"{"source":"claude"}"#));
    assert!(filter.matches_json(br#"{"type":7,"source":"claude"}"#));
    assert!(!filter.matches_json(br#"{"type":"claude.text","source":"claude"}"#));
}

#[test]
fn other_layouts_and_escaped_strings_get_the_same_verdict() {
    let filter = Filter::all().event_type("session.start").source("claude");
    let cases: [(&[u8], bool); 6] = [
        // Event's own layout.
        (
            br#"{"id":"1","type":"session.start","timestamp":"t","source":"claude","model":"m"}"#,
            true,
        ),
        (
            br#"{"id":"1","type":"claude.text","timestamp":"t","source":"claude","text":"x"}"#,
            false,
        ),
        // Keys in another order.
        (
            br#"{"source":"claude","type":"session.start","id":"1","timestamp":"t"}"#,
            true,
        ),
        // An escape in the type: read in full (`\u0073` is `s`).
        (
            br#"{"id":"1","type":"\u0073ession.start","timestamp":"t","source":"claude"}"#,
            true,
        ),
        // The source continues past the quote the shortcut would stop at.
        (
            br#"{"id":"1","type":"session.start","timestamp":"t","source":"cla\"ude"}"#,
            false,
        ),
        // The shortcut's layout, but another source.
        (
            br#"{"id":"1","type":"session.start","timestamp":"t","source":"bd"}"#,
            false,
        ),
    ];
    for (payload, want) in cases {
        assert_eq!(
            filter.matches_json(payload),
            want,
            "{}",
            String::from_utf8_lossy(payload)
        );
    }
}
