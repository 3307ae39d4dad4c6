//! The conformance list is complete: every behaviour function the testkit defines is
//! in the one list that makes each backend's tests, so none can be written and then
//! skipped.

use std::collections::BTreeSet;

use vibes_log::testkit::BEHAVIOURS;

/// The names of the `pub async fn name(h: &dyn Harness)` functions of `source`.
fn behaviour_functions(source: &str) -> BTreeSet<&str> {
    source
        .lines()
        .filter_map(|line| line.strip_prefix("pub async fn "))
        .filter_map(|rest| rest.strip_suffix("(h: &dyn Harness) {"))
        .collect()
}

#[test]
fn every_behaviour_function_is_in_the_list_once() {
    let source = include_str!("../src/testkit.rs");
    let defined = behaviour_functions(source);
    assert!(
        defined.len() >= 20,
        "the scan finds the behaviour functions (found {defined:?})"
    );
    let listed: BTreeSet<&str> = BEHAVIOURS.iter().copied().collect();
    assert_eq!(
        listed.len(),
        BEHAVIOURS.len(),
        "a behaviour is listed twice"
    );
    let unlisted: Vec<_> = defined.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "behaviours not in the conformance list, so no backend runs them: {unlisted:?}"
    );
    let undefined: Vec<_> = listed.difference(&defined).collect();
    assert!(undefined.is_empty(), "listed but not found: {undefined:?}");
}

#[test]
fn the_scan_sees_a_function_missing_from_the_list() {
    let source = "pub async fn a_new_behaviour(h: &dyn Harness) {\n}\n";
    let defined = behaviour_functions(source);
    assert_eq!(defined, BTreeSet::from(["a_new_behaviour"]));
    assert!(!BEHAVIOURS.contains(&"a_new_behaviour"));
}
