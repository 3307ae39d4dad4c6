//! Tests of the bd issues-file differ and watcher: over the real export in
//! `../shared/fixtures/bd` (ignored without it: `cfg(fixtures)`, build/fixtures_cfg.rs), over the small files in `tests/data/` and
//! over files written here.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use vibes_events::{Event, EventData, Timestamp};
use vibes_sources::bd::{BdChange, BdSnapshot, BdWatchOptions, BdWatcher, diff};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/bd/NavarrePratt-atari__issues.jsonl"
);

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

fn fixture() -> Option<Vec<u8>> {
    let path = PathBuf::from(FIXTURE);
    if !path.is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have the fixture at {FIXTURE}"
        );
        eprintln!("skipping: no fixture at {FIXTURE}");
        return None;
    }
    Some(fs::read(path).expect("read fixture"))
}

fn data(name: &str) -> BdSnapshot {
    let (snapshot, errors) = BdSnapshot::parse(&fs::read(Path::new(DATA).join(name)).unwrap());
    assert_eq!(errors, [], "{name}");
    snapshot
}

fn types(events: &[Event]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e.data.partition_key().unwrap_or_default().to_owned(),
                e.event_type().to_owned(),
            )
        })
        .collect()
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn line(issue: &Value) -> String {
    format!("{}\n", serde_json::to_string(issue).unwrap())
}

fn issue(id: &str, title: &str, status: &str) -> Value {
    json!({
        "id": id, "title": title, "status": status, "priority": 2, "issue_type": "task",
        "created_at": "2026-01-02T10:00:00-05:00", "created_by": "navarre",
        "updated_at": "2026-01-02T10:00:00-05:00",
    })
}

fn snapshot(issues: &[Value]) -> BdSnapshot {
    let text: String = issues.iter().map(line).collect();
    let (snapshot, errors) = BdSnapshot::parse(text.as_bytes());
    assert_eq!(errors, []);
    snapshot
}

#[test]
#[cfg_attr(not(fixtures), ignore = "needs ../shared/fixtures")]
fn fixture_parses_and_replays() {
    let Some(bytes) = fixture() else { return };
    let (snapshot, errors) = BdSnapshot::parse(&bytes);
    assert_eq!(errors, []);
    assert_eq!(snapshot.len(), 84);
    let mut statuses = BTreeMap::new();
    for issue in snapshot.issues().values() {
        *statuses
            .entry(issue["status"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    let expected = [
        ("closed", 74),
        ("in_progress", 1),
        ("open", 8),
        ("tombstone", 1),
    ];
    assert_eq!(
        statuses,
        expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect::<BTreeMap<_, _>>()
    );
    // Descriptions with ANSI escapes are kept as is.
    let ansi = snapshot
        .issues()
        .values()
        .filter(|i| {
            i["description"]
                .as_str()
                .is_some_and(|d| d.contains('\u{1b}'))
        })
        .count();
    assert_eq!(ansi, 50);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("issues.jsonl");
    fs::write(&path, &bytes).unwrap();
    let options = BdWatchOptions {
        replay: true,
        ..BdWatchOptions::default()
    };
    let change = BdWatcher::new(&path, options).baseline().unwrap();
    assert_eq!(change.errors, []);
    assert_eq!(change.events.len(), 84);
    let ids: Vec<&str> = change
        .events
        .iter()
        .map(|e| e.data.partition_key().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted);
    for event in &change.events {
        let EventData::BeadCreated(d) = &event.data else {
            panic!("not created: {event:?}")
        };
        let issue = snapshot.get(&d.bead_id).unwrap();
        assert_eq!(d.priority, issue["priority"].as_i64());
        assert!(d.priority.is_some());
        assert_eq!(Some(d.title.as_str()), issue["title"].as_str());
        assert_eq!(d.status.as_deref(), issue["status"].as_str());
        assert_eq!(d.issue_type.as_deref(), issue["issue_type"].as_str());
        assert_eq!(d.actor.as_deref(), issue["created_by"].as_str());
        assert_eq!(
            event.timestamp,
            ts(issue["created_at"].as_str().unwrap()),
            "{}",
            d.bead_id
        );
    }

    assert_eq!(diff(&snapshot, &snapshot), []);
    // Without replay the start-up state is the baseline.
    let change = BdWatcher::new(&path, BdWatchOptions::default())
        .baseline()
        .unwrap();
    assert_eq!(change, BdChange::default());
}

#[test]
fn priority_zero_is_kept_on_created() {
    let mut i = issue("bd-1", "Urgent", "open");
    i["priority"] = json!(0);
    let events = diff(&BdSnapshot::default(), &snapshot(&[i]));
    let [event] = &events[..] else {
        panic!("{events:?}")
    };
    let EventData::BeadCreated(d) = &event.data else {
        panic!("{event:?}")
    };
    assert_eq!(d.priority, Some(0));
    assert_eq!(event.source, "bd");
}

#[test]
fn diff_of_the_example_files() {
    let before = data("bd-before.jsonl");
    let (after, errors) =
        BdSnapshot::parse(&fs::read(Path::new(DATA).join("bd-after.jsonl")).unwrap());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].line, 3);
    assert!(errors[0].reason.contains("bad JSON"), "{}", errors[0]);
    assert_eq!(after.len(), 4);

    let events = diff(&before, &after);
    let expected = [
        ("bd-a1", "bead.status"),
        ("bd-b2", "bead.status"),
        ("bd-b2", "bead.closed"),
        ("bd-b2", "bead.updated"),
        ("bd-b2", "bead.comment"),
        ("bd-c3", "bead.updated"),
        ("bd-d4", "bead.created"),
    ];
    assert_eq!(
        types(&events),
        expected.map(|(a, b)| (a.to_owned(), b.to_owned()))
    );

    // open -> in_progress: status only, no actor known, the updated_at bump is no update.
    let EventData::BeadStatus(d) = &events[0].data else {
        panic!()
    };
    assert_eq!(
        (d.old_status.as_str(), d.new_status.as_str()),
        ("open", "in_progress")
    );
    assert_eq!(d.actor, None);
    assert_eq!(events[0].timestamp, ts("2026-01-02T11:00:00-05:00"));

    // in_progress -> closed: status and closed, actor from assignee.
    let EventData::BeadStatus(d) = &events[1].data else {
        panic!()
    };
    assert_eq!(
        (d.old_status.as_str(), d.new_status.as_str()),
        ("in_progress", "closed")
    );
    assert_eq!(d.actor.as_deref(), Some("claude"));
    let EventData::BeadClosed(d) = &events[2].data else {
        panic!()
    };
    assert_eq!(d.reason.as_deref(), Some("Fixed the race in setup"));
    assert_eq!(d.actor.as_deref(), Some("claude"));
    assert_eq!(
        events[2].timestamp,
        ts("2026-01-02T12:00:00.000000001-05:00")
    );

    // The description change, ANSI escapes byte for byte; closed_at/close_reason are
    // left to bead.closed.
    let EventData::BeadUpdated(d) = &events[3].data else {
        panic!()
    };
    assert_eq!(d.fields.keys().collect::<Vec<_>>(), ["description"]);
    assert_eq!(
        d.fields["description"],
        "\u{1b}[1m# Bug\u{1b}[0m\n\nIt \u{1b}[31mfailed\u{1b}[0m; \u{1b}[32mfixed\u{1b}[0m."
    );

    let EventData::BeadComment(d) = &events[4].data else {
        panic!()
    };
    assert_eq!(d.comment, "Root cause: shared temp dir");
    assert_eq!(d.actor.as_deref(), Some("claude"));
    assert_eq!(events[4].timestamp, ts("2026-01-02T11:30:00-05:00"));

    // Title + priority (to 0) + removed labels: one update.
    let EventData::BeadUpdated(d) = &events[5].data else {
        panic!()
    };
    let fields = Value::Object(d.fields.clone());
    assert_eq!(
        fields,
        json!({"title": "Epic: daemon and CLI", "priority": 0, "labels": null})
    );

    let EventData::BeadCreated(d) = &events[6].data else {
        panic!()
    };
    assert_eq!(d.title, "Write docs");
    assert_eq!(d.actor.as_deref(), Some("claude"));

    // Events survive a round trip through the wire format.
    for event in &events {
        let back = Event::from_json(&event.to_json().unwrap()).unwrap();
        assert_eq!(&back, event);
    }
}

#[test]
fn updated_at_bump_is_no_event() {
    let old = issue("bd-1", "Same", "open");
    let mut new = old.clone();
    new["updated_at"] = json!("2026-01-03T00:00:00Z");
    assert_eq!(diff(&snapshot(&[old]), &snapshot(&[new])), []);
}

#[test]
fn title_and_priority_change_is_one_update() {
    let old = issue("bd-1", "Old title", "open");
    let mut new = old.clone();
    new["title"] = json!("New title");
    new["priority"] = json!(1);
    new["updated_by"] = json!("alice");
    new["updated_at"] = json!("2026-01-03T00:00:00Z");
    let events = diff(&snapshot(&[old]), &snapshot(&[new]));
    let [event] = &events[..] else {
        panic!("{events:?}")
    };
    let EventData::BeadUpdated(d) = &event.data else {
        panic!()
    };
    assert_eq!(
        Value::Object(d.fields.clone()),
        json!({"title": "New title", "priority": 1, "updated_by": "alice"})
    );
    assert_eq!(d.actor.as_deref(), Some("alice"));
    assert_eq!(event.timestamp, ts("2026-01-03T00:00:00Z"));
}

#[test]
fn comments_without_ids_compare_by_content() {
    let mut old = issue("bd-1", "T", "open");
    old["comments"] =
        json!([{"author": "a", "text": "first", "created_at": "2026-01-02T10:00:00Z"}]);
    let mut new = old.clone();
    new["comments"]
        .as_array_mut()
        .unwrap()
        .push(json!({"author": "b", "text": "second", "created_at": "2026-01-02T11:00:00Z"}));
    let events = diff(&snapshot(&[old]), &snapshot(&[new]));
    let [event] = &events[..] else {
        panic!("{events:?}")
    };
    let EventData::BeadComment(d) = &event.data else {
        panic!()
    };
    assert_eq!(
        (d.comment.as_str(), d.actor.as_deref()),
        ("second", Some("b"))
    );
}

#[test]
fn reopen_reports_removed_close_fields() {
    let mut old = issue("bd-1", "T", "closed");
    old["closed_at"] = json!("2026-01-02T12:00:00Z");
    old["close_reason"] = json!("done");
    let new = issue("bd-1", "T", "open");
    let events = diff(&snapshot(&[old]), &snapshot(&[new]));
    assert_eq!(
        types(&events),
        [("bd-1", "bead.status"), ("bd-1", "bead.updated")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let EventData::BeadUpdated(d) = &events[1].data else {
        panic!()
    };
    assert_eq!(
        Value::Object(d.fields.clone()),
        json!({"closed_at": null, "close_reason": null})
    );
}

#[test]
fn parse_reports_malformed_lines_and_keeps_the_rest() {
    let text = format!(
        "{}\n[1,2]\n{{\"title\":\"no id\"}}\n{{\"id\":7}}\n  \n{}{}",
        serde_json::to_string(&issue("bd-1", "first", "open")).unwrap(),
        line(&issue("bd-2", "second", "open")),
        line(&issue("bd-1", "first, again", "open")),
    );
    let (snapshot, errors) = BdSnapshot::parse(text.as_bytes());
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 3, 4]);
    assert!(errors[0].reason.contains("object"), "{}", errors[0]);
    assert!(errors[1].reason.contains("id"), "{}", errors[1]);
    assert_eq!(snapshot.len(), 2);
    assert_eq!(snapshot.get("bd-1").unwrap()["title"], "first, again");
}

#[test]
fn disappearing_issue_is_no_event() {
    let a = issue("bd-1", "A", "open");
    let b = issue("bd-2", "B", "open");
    assert_eq!(diff(&snapshot(&[a.clone(), b]), &snapshot(&[a])), []);
}

// ---- watcher ----

fn fast() -> BdWatchOptions {
    BdWatchOptions {
        debounce: Duration::from_millis(150),
        poll_interval: Duration::from_millis(10),
        replay: false,
    }
}

/// Writes `issues` to `path` the way bd does: to a temp file, then rename.
fn replace(path: &Path, issues: &[Value]) {
    let tmp = path.with_extension("jsonl.tmp");
    fs::write(&tmp, issues.iter().map(line).collect::<String>()).unwrap();
    fs::rename(&tmp, path).unwrap();
}

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn watcher_sees_rename_replacement() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("issues.jsonl");
    replace(
        &path,
        &[issue("bd-1", "A", "open"), issue("bd-2", "B", "open")],
    );
    let mut watcher = BdWatcher::new(&path, fast());
    assert_eq!(watcher.baseline().unwrap(), BdChange::default());
    // Nothing changes: nothing reported (also not by the re-read of a fresh file).
    assert_eq!(
        watcher.next_change(Duration::from_millis(400)).unwrap(),
        None
    );

    let mut b = issue("bd-2", "B", "in_progress");
    b["updated_at"] = json!("2026-01-02T11:00:00-05:00");
    replace(
        &path,
        &[issue("bd-1", "A", "open"), b, issue("bd-3", "C", "open")],
    );
    let change = watcher.next_change(WAIT).unwrap().expect("a change");
    assert_eq!(change.errors, []);
    assert_eq!(
        types(&change.events),
        [("bd-2", "bead.status"), ("bd-3", "bead.created")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(
        watcher.next_change(Duration::from_millis(400)).unwrap(),
        None
    );
}

#[test]
fn watcher_survives_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("issues.jsonl");
    let issues = [issue("bd-1", "A", "open"), issue("bd-2", "B", "open")];
    fs::write(&path, issues.iter().map(line).collect::<String>()).unwrap();
    let mut watcher = BdWatcher::new(&path, fast());
    watcher.baseline().unwrap();

    // Truncated in place and left empty long enough to be read: no events.
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    assert_eq!(
        watcher.next_change(Duration::from_millis(600)).unwrap(),
        None
    );
    assert_eq!(fs::metadata(&path).unwrap().len(), 0);

    // New content, written in place: diffed against the issues as last seen.
    let new = [issue("bd-1", "A", "closed"), issue("bd-2", "B", "open")];
    fs::write(&path, new.iter().map(line).collect::<String>()).unwrap();
    let change = watcher.next_change(WAIT).unwrap().expect("a change");
    assert_eq!(
        types(&change.events),
        [("bd-1", "bead.status"), ("bd-1", "bead.closed")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
}

#[test]
fn watcher_debounces_quick_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("issues.jsonl");
    let options = BdWatchOptions {
        debounce: Duration::from_millis(500),
        ..fast()
    };
    let mut watcher = BdWatcher::new(&path, options);
    assert_eq!(watcher.baseline().unwrap(), BdChange::default());

    fs::write(&path, line(&issue("bd-1", "draft", "open"))).unwrap();
    assert_eq!(watcher.check().unwrap(), None);
    std::thread::sleep(Duration::from_millis(40));
    assert_eq!(watcher.check().unwrap(), None);
    fs::write(&path, line(&issue("bd-1", "final title", "in_progress"))).unwrap();

    let change = watcher.next_change(WAIT).unwrap().expect("a change");
    let [event] = &change.events[..] else {
        panic!("{change:?}")
    };
    let EventData::BeadCreated(d) = &event.data else {
        panic!("{event:?}")
    };
    assert_eq!(d.title, "final title");
    assert_eq!(d.status.as_deref(), Some("in_progress"));
    assert_eq!(
        watcher.next_change(Duration::from_millis(400)).unwrap(),
        None
    );
}

#[test]
fn watcher_missing_file_then_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".beads").join("issues.jsonl");
    let mut watcher = BdWatcher::new(&path, fast());
    assert_eq!(watcher.baseline().unwrap(), BdChange::default());
    assert_eq!(
        watcher.next_change(Duration::from_millis(300)).unwrap(),
        None
    );

    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(
        &path,
        format!(
            "{}not json\n{}",
            line(&issue("bd-2", "B", "open")),
            line(&issue("bd-1", "A", "open"))
        ),
    )
    .unwrap();
    let change = watcher.next_change(WAIT).unwrap().expect("a change");
    assert_eq!(
        types(&change.events),
        [("bd-1", "bead.created"), ("bd-2", "bead.created")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(change.errors.len(), 1);
    assert_eq!(change.errors[0].line, 2);

    // The file goes away again: no events, no error.
    fs::remove_file(&path).unwrap();
    assert_eq!(
        watcher.next_change(Duration::from_millis(600)).unwrap(),
        None
    );
}

#[test]
fn snapshot_round_trips_through_jsonl() {
    let before = data("bd-before.jsonl");
    let (again, errors) = BdSnapshot::parse(&before.to_jsonl());
    assert_eq!(errors, []);
    assert_eq!(again, before);
}

#[test]
fn resume_reports_changes_made_while_not_watching() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("issues.jsonl");
    let saved = snapshot(&[issue("bd-1", "A", "open"), issue("bd-2", "B", "open")]);
    replace(
        &path,
        &[issue("bd-1", "A", "closed"), issue("bd-3", "C", "open")],
    );
    let mut watcher = BdWatcher::new(&path, fast());
    let change = watcher.resume(saved).unwrap();
    assert_eq!(
        types(&change.events),
        [
            ("bd-1", "bead.status"),
            ("bd-1", "bead.closed"),
            ("bd-3", "bead.created")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    // bd-2 left the file but stays known, so its return is not a creation.
    assert!(watcher.snapshot().get("bd-2").is_some());
    replace(
        &path,
        &[
            issue("bd-1", "A", "closed"),
            issue("bd-2", "B", "open"),
            issue("bd-3", "C", "open"),
        ],
    );
    assert_eq!(
        watcher.next_change(Duration::from_millis(600)).unwrap(),
        None
    );
}
