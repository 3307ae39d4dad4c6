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
