//! The runtime over an in-memory log: outputs derived from their inputs, restarts and
//! crashes that store nothing twice, dead letters, snapshots, groups, supervision.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vibes_events::{Event, EventData, EventId};
use vibes_log::backend::{LogBackend, Record};
use vibes_log::{AppendOptions, GroupName, RecordAddress, TopicName};
use vibes_plugin::testing::{Harness, INPUT};
use vibes_plugin::{
    CAUSE_FIELD, DEAD_LETTER_TYPE, Emitter, Input, Manifest, Plugin, PluginError, PluginState,
    QueryArgs, QueryError, Runtime, RuntimeOptions, Shutdown,
};

/// Counts texts per session; every third text of a session emits `counter.third`.
/// A text "poison" is refused, a text "panic" panics.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Counter {
    per_session: BTreeMap<String, u64>,
    #[serde(skip)]
    version: u32,
    #[serde(skip)]
    snapshot_every: u64,
    #[serde(skip)]
    stray_output: bool,
}

impl Counter {
    fn boxed() -> Box<dyn Plugin> {
        Box::new(Counter {
            version: 1,
            ..Counter::default()
        })
    }

    fn with_snapshots(every: u64, version: u32) -> Box<dyn Plugin> {
        Box::new(Counter {
            version,
            snapshot_every: every,
            ..Counter::default()
        })
    }
}

impl Plugin for Counter {
    fn manifest(&self) -> Manifest {
        Manifest::new("counter", "counts texts")
            .version(self.version)
            .filter(vibes_events::Filter::all().event_type("claude.text"))
            .output("thirds")
            .query("count", "texts of a session", &["session"])
            .snapshot_every(self.snapshot_every)
    }

    fn handle(&mut self, input: &Input<'_>, out: &mut Emitter) -> Result<(), PluginError> {
        let EventData::Text(text) = &input.event.data else {
            return Err(PluginError::new("not a text"));
        };
        match text.text.as_str() {
            "poison" => return Err(PluginError::new("poison refused")),
            "panic" => panic!("the plugin panicked on purpose"),
            _ => {}
        }
        if self.stray_output {
            out.emit("undeclared", "counter.stray", json!({}))?;
        }
        let session = text.session_id.clone().unwrap_or_default();
        let n = self.per_session.entry(session.clone()).or_default();
        *n += 1;
        if (*n).is_multiple_of(3) {
            out.emit(
                "thirds",
                "counter.third",
                json!({ "session_id": session, "count": *n }),
            )?;
        }
        Ok(())
    }

    fn query(&self, name: &str, args: &QueryArgs) -> Result<Value, QueryError> {
        assert_eq!(name, "count");
        let session = args.require("session")?;
        Ok(json!(self.per_session.get(session).copied().unwrap_or(0)))
    }

    fn save(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(&self.per_session).ok()
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        self.per_session =
            serde_json::from_slice(bytes).map_err(|e| PluginError::new(e.to_string()))?;
        Ok(())
    }
}

fn text(session: &str, n: u64, content: &str) -> Event {
    let millis = 1_700_000_000_000 + i64::try_from(n).unwrap() * 1000;
    let time = jiff::Timestamp::from_millisecond(millis).unwrap();
    let id = EventId::from_u128(u128::from(n) + 1);
    Event::from_json(
        &json!({
            "id": id.to_string(), "type": "claude.text", "timestamp": time.to_string(),
            "source": "claude", "text": content, "session_id": session,
        })
        .to_string(),
    )
    .unwrap()
}

fn texts(range: std::ops::Range<u64>) -> Vec<Event> {
    range
        .map(|n| text(if n % 2 == 0 { "a" } else { "b" }, n, "hello"))
        .collect()
}

fn count_args(session: &str) -> QueryArgs {
    QueryArgs::new().with("session", session)
}

fn encoded(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.to_json().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_have_ids_and_causes_derived_from_their_inputs() {
    let events = texts(0..12);
    let first = vibes_plugin::testing::run(Counter::boxed(), &events)
        .await
        .unwrap();
    let second = vibes_plugin::testing::run(Counter::boxed(), &events)
        .await
        .unwrap();
    let thirds = first.topic("thirds");
    assert_eq!(
        thirds.len(),
        4,
        "two sessions of six texts: two thirds each"
    );
    assert_eq!(
        encoded(thirds),
        encoded(second.topic("thirds")),
        "byte for byte"
    );
    let cause = &thirds[0].extra[CAUSE_FIELD];
    assert_eq!(cause["topic"], INPUT);
    assert_eq!(
        cause["offset"], 4,
        "the third text of session a is offset 4"
    );
    assert_eq!(cause["id"], events[4].id.to_string());
    assert_eq!(
        thirds[0].timestamp, events[4].timestamp,
        "the input's time, not the clock"
    );
    assert_eq!(thirds[0].source, "counter");
    assert_eq!(first.query("count", &count_args("a")).unwrap(), json!(6));
    assert_eq!(first.status.processed, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_after_its_commit_and_stores_nothing_twice() {
    let all = texts(0..30);
    let whole = vibes_plugin::testing::run(Counter::boxed(), &all)
        .await
        .unwrap();

    let harness = Harness::new();
    harness.append(&all[..10]).await;
    harness.run(Counter::boxed()).await.unwrap();
    harness.append(&all[10..21]).await;
    harness.run(Counter::boxed()).await.unwrap();
    harness.append(&all[21..]).await;
    let last = harness.run(Counter::boxed()).await.unwrap();

    assert_eq!(
        encoded(last.topic("thirds")),
        encoded(whole.topic("thirds"))
    );
    assert_eq!(
        last.query("count", &count_args("b")).unwrap(),
        whole.query("count", &count_args("b")).unwrap(),
        "the replay rebuilt the same state"
    );
    assert_eq!(
        last.status.outputs, 4,
        "only the outputs of the last 9 inputs were new"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_storing_outputs_and_committing_stores_nothing_twice() {
    let all = texts(0..24);
    let whole = vibes_plugin::testing::run(Counter::boxed(), &all)
        .await
        .unwrap();

    let harness = Harness::new();
    harness.append(&all).await;
    harness.run(Counter::boxed()).await.unwrap();
    // As if the process died after storing every output but before its last commits:
    // move the group's commit back to offset 5.
    let backend: Arc<dyn LogBackend> = Arc::new(harness.log().clone());
    let topic = TopicName::new(INPUT).unwrap();
    let mut member = backend
        .consumer(
            &topic,
            &GroupName::new("plugin-counter").unwrap(),
            Default::default(),
        )
        .await
        .unwrap();
    member.commit_offset(0, 5).await.unwrap();
    drop(member);

    let resumed = harness.run(Counter::boxed()).await.unwrap();
    assert_eq!(
        encoded(resumed.topic("thirds")),
        encoded(whole.topic("thirds"))
    );
    assert_eq!(resumed.status.outputs, 0, "every output was already stored");
    assert_eq!(resumed.query("count", &count_args("a")).unwrap(), json!(12));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_it_cannot_handle_go_to_the_dead_letter_topic_and_the_rest_goes_on() {
    let mut events = texts(0..6);
    events.insert(2, text("a", 100, "poison"));
    events.insert(5, text("b", 101, "panic"));
    let harness = Harness::new();
    harness.append(&events).await;
    // A record that does not decode at all.
    let backend: Arc<dyn LogBackend> = Arc::new(harness.log().clone());
    let topic = TopicName::new(INPUT).unwrap();
    backend
        .append(
            &topic,
            0,
            vec![Record::new(None, 999, &b"{not json"[..])],
            AppendOptions::default(),
        )
        .await
        .unwrap();
    harness.append(&texts(6..8)).await;

    let outcome = harness.run(Counter::boxed()).await.unwrap();
    let dead = outcome.dead_letters();
    assert_eq!(dead.len(), 3, "{dead:#?}");
    assert!(dead.iter().all(|d| d.event_type() == DEAD_LETTER_TYPE));
    assert_eq!(dead[0].extra["error"], "poison refused");
    assert_eq!(dead[0].extra["offset"], 2);
    assert!(
        dead[1].extra["error"]
            .as_str()
            .unwrap()
            .contains("the plugin panicked on purpose"),
        "{:?}",
        dead[1].extra["error"]
    );
    assert_eq!(dead[1].extra["offset"], 5);
    assert!(
        dead[2].extra["error"]
            .as_str()
            .unwrap()
            .starts_with("does not decode")
    );
    assert_eq!(dead[2].extra["offset"], 8);
    assert_eq!(outcome.status.dead_letters, 3);
    assert_eq!(
        outcome.query("count", &count_args("a")).unwrap(),
        json!(4),
        "the texts around the poison were counted"
    );

    // A restart does not send them again.
    let again = harness.run(Counter::boxed()).await.unwrap();
    assert_eq!(again.dead_letters().len(), 3);
    assert_eq!(again.status.dead_letters, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_plugins_on_one_log_keep_their_own_commits() {
    #[derive(Debug, Default)]
    struct Other(u64);
    impl Plugin for Other {
        fn manifest(&self) -> Manifest {
            Manifest::new("other", "counts everything").query("n", "events", &[])
        }
        fn handle(&mut self, _: &Input<'_>, _: &mut Emitter) -> Result<(), PluginError> {
            self.0 += 1;
            Ok(())
        }
        fn query(&self, _: &str, _: &QueryArgs) -> Result<Value, QueryError> {
            Ok(json!(self.0))
        }
    }
    let harness = Harness::new();
    harness.append(&texts(0..9)).await;
    harness.run(Counter::boxed()).await.unwrap();
    let other = harness.run(Box::new(Other::default())).await.unwrap();
    assert_eq!(other.query("n", &QueryArgs::new()).unwrap(), json!(9));
    let groups = harness
        .log()
        .groups(&TopicName::new(INPUT).unwrap())
        .await
        .unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g.group.as_str()).collect();
    assert_eq!(names, vec!["plugin-counter", "plugin-other"]);
    assert!(groups.iter().all(|g| g.committed == vec![Some(9)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_spares_the_replay_and_another_version_replays_everything() {
    let harness = Harness::new();
    harness.append(&texts(0..40)).await;
    let first = harness.run(Counter::with_snapshots(10, 1)).await.unwrap();
    assert_eq!(
        first.status.snapshots, 1,
        "one batch of 40: {:?}",
        first.status
    );
    assert_eq!(first.status.restored_from_snapshot, None);

    harness.append(&texts(40..45)).await;
    let restored = harness.run(Counter::with_snapshots(10, 1)).await.unwrap();
    assert_eq!(restored.status.restored_from_snapshot, Some(40));
    assert_eq!(
        restored.status.processed, 5,
        "only what came after the snapshot"
    );
    assert_eq!(
        restored.query("count", &count_args("a")).unwrap(),
        json!(23)
    );

    let upgraded = harness.run(Counter::with_snapshots(10, 2)).await.unwrap();
    assert_eq!(upgraded.status.restored_from_snapshot, None);
    assert_eq!(upgraded.status.processed, 45, "a full replay");
    assert_eq!(
        upgraded.query("count", &count_args("a")).unwrap(),
        json!(23)
    );
    assert_eq!(
        encoded(upgraded.topic("thirds")),
        encoded(
            vibes_plugin::testing::run(Counter::boxed(), &texts(0..45))
                .await
                .unwrap()
                .topic("thirds")
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_in_process_gives_the_state_of_a_live_run() {
    let harness = Harness::new();
    harness.append(&texts(0..25)).await;
    let live = harness.run(Counter::with_snapshots(7, 1)).await.unwrap();
    harness.append(&texts(25..31)).await;
    let mut fresh = Counter::with_snapshots(7, 1);
    let mut steps = Vec::new();
    harness
        .runtime()
        .rebuild(&mut *fresh, |p| steps.push(p))
        .await
        .unwrap();
    let last = steps.last().unwrap();
    assert_eq!(last.read, last.total);
    assert!(last.total < 31, "it started from a snapshot: {last:?}");
    assert_eq!(fresh.query("count", &count_args("b")).unwrap(), json!(15));
    assert_eq!(live.query("count", &count_args("b")).unwrap(), json!(12));
}

/// Waits (up to 10 s) until `done` holds for the status of `running`; returns it.
fn wait_until(
    running: &vibes_plugin::RunningPlugin,
    what: &str,
    done: &dyn Fn(&vibes_plugin::PluginStatus) -> bool,
) -> vibes_plugin::PluginStatus {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = running.status();
        if done(&status) {
            return status;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: {status:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Shuts `running` down; it must stop within 5 s.
async fn stop(running: vibes_plugin::RunningPlugin, shutdown: &Shutdown) {
    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(5), running.join())
        .await
        .expect("it stops when asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_plugin_snapshots_when_it_goes_idle() {
    let harness = Harness::new();
    let runtime = Runtime::new(
        Arc::new(harness.log().clone()),
        RuntimeOptions::new(INPUT).poll(64, Duration::from_millis(10)),
    );
    let shutdown = Shutdown::new();
    let running = runtime
        .spawn(Arc::new(|| Counter::with_snapshots(100, 1)), &shutdown)
        .unwrap();
    let wait_for = |what: &str, done: &dyn Fn(&vibes_plugin::PluginStatus) -> bool| {
        wait_until(&running, what, done)
    };
    // 15 events: fewer than snapshot_every (100), more than a tenth of it.
    harness.append(&texts(0..15)).await;
    wait_for("an idle snapshot", &|s| s.snapshots == 1);
    let mut fresh = Counter::with_snapshots(100, 1);
    let rebuilt = runtime.rebuild(&mut *fresh, |_| {}).await.unwrap();
    assert_eq!((rebuilt.from_snapshot, rebuilt.read), (Some(15), 0));

    // 5 more are fewer than a tenth: handled, but no snapshot yet.
    harness.append(&texts(15..20)).await;
    wait_for("the 5 handled", &|s| s.processed == 20);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(running.status().snapshots, 1);
    stop(running, &shutdown).await;
}

/// Each new snapshot asks the backend to drop the ones before the previous one (the
/// previous stays for a reader that may be loading it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_snapshot_trims_the_superseded_ones() {
    let harness = Harness::new();
    let switch = vibes_log::testkit::Switchable::new(Arc::new(harness.log().clone()));
    let runtime = Runtime::new(
        Arc::new(switch.clone()),
        RuntimeOptions::new(INPUT).poll(64, Duration::from_millis(10)),
    );
    let shutdown = Shutdown::new();
    let running = runtime
        .spawn(Arc::new(|| Counter::with_snapshots(10, 1)), &shutdown)
        .unwrap();
    let wait_for = |snapshots: u64| {
        wait_until(&running, "the snapshots", &|s| s.snapshots >= snapshots);
    };
    harness.append(&texts(0..15)).await;
    wait_for(1);
    assert_eq!(switch.trims(), 0, "the first snapshot supersedes nothing");
    harness.append(&texts(15..30)).await;
    wait_for(2);
    assert_eq!(switch.trims(), 1);
    stop(running, &shutdown).await;
}

/// Snapshots of a state that grows with the log are spaced by a share of what the last
/// one covered, so a long backlog is not saved thousands of times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_of_a_long_backlog_are_spaced_out() {
    let harness = Harness::new();
    harness.append(&texts(0..20_000)).await;
    let runtime = Runtime::new(
        Arc::new(harness.log().clone()),
        RuntimeOptions::new(INPUT).poll(10, Duration::from_millis(10)),
    );
    let shutdown = Shutdown::new();
    let running = runtime
        .spawn(Arc::new(|| Counter::with_snapshots(10, 1)), &shutdown)
        .unwrap();
    wait_until(&running, "the backlog handled", &|s| s.processed >= 20_000);
    // Every 10 events would be 2,000 snapshots; an eighth of the covered events apart
    // (past the first 80) is about 55, and going idle may add one.
    let snapshots = running.status().snapshots;
    assert!((30..100).contains(&snapshots), "{snapshots} snapshots");
    stop(running, &shutdown).await;
}

/// A catch-up spaces its periodic snapshots further: each at least as many events
/// after the last as that one covered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_of_a_long_backlog_snapshots_a_few_times() {
    let harness = Harness::new();
    harness.append(&texts(0..20_000)).await;
    let runtime = Runtime::new(
        Arc::new(harness.log().clone()),
        RuntimeOptions::new(INPUT).poll(10, Duration::from_millis(10)),
    );
    let mut plugin = Counter::with_snapshots(10, 1);
    let status = runtime.catch_up(&mut *plugin, |_| {}).await.unwrap();
    assert_eq!(status.processed, 20_000);
    // 10, 20, 40, ... 10,240, then the end: 12.
    assert!(
        (10..15).contains(&status.snapshots),
        "{} snapshots",
        status.snapshots
    );
}

/// A save cut short between its chunks and its header leaves chunks as the newest
/// records: they are ignored (a full replay), and the next save is used again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_left_without_a_header_are_ignored() {
    let harness = Harness::new();
    harness.append(&texts(0..40)).await;
    let first = harness.run(Counter::with_snapshots(10, 1)).await.unwrap();
    assert_eq!(first.status.snapshots, 1);
    let snapshots = TopicName::new("counter/snapshots").unwrap();
    harness
        .log()
        .append(
            &snapshots,
            0,
            vec![Record::new(
                None,
                77,
                bytes::Bytes::from_static(b"half a state"),
            )],
            AppendOptions::default(),
        )
        .await
        .unwrap();
    harness.append(&texts(40..60)).await;
    let second = harness.run(Counter::with_snapshots(10, 1)).await.unwrap();
    assert_eq!(second.status.restored_from_snapshot, None, "a full replay");
    assert_eq!(second.query("count", &count_args("a")).unwrap(), json!(30));
    assert!(second.status.snapshots >= 1, "{:?}", second.status);
    let third = harness.run(Counter::with_snapshots(10, 1)).await.unwrap();
    assert_eq!(third.status.restored_from_snapshot, Some(60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_plugin_is_restarted_with_backoff_and_says_why() {
    let harness = Harness::new();
    harness.append(&texts(0..3)).await;
    let runtime = Runtime::new(
        Arc::new(harness.log().clone()),
        RuntimeOptions::new(INPUT)
            .poll(64, Duration::from_millis(10))
            .backoff(Duration::from_millis(5), Duration::from_millis(40)),
    );
    let shutdown = Shutdown::new();
    let running = runtime
        .spawn(
            Arc::new(|| {
                Box::new(Counter {
                    version: 1,
                    stray_output: true,
                    ..Counter::default()
                }) as Box<dyn Plugin>
            }),
            &shutdown,
        )
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while running.status().restarts < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            running.status()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let status = running.status();
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap()
            .contains("\"undeclared\", which its manifest does not declare"),
        "{status:?}"
    );
    assert!(std::matches!(
        status.state,
        PluginState::Failed | PluginState::Starting | PluginState::Replaying | PluginState::Live
    ));
    stop(running, &shutdown).await;
    let groups = harness
        .log()
        .groups(&TopicName::new(INPUT).unwrap())
        .await
        .unwrap();
    assert!(
        groups.is_empty(),
        "a failed batch is never committed: {groups:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_writing_outside_its_stream_is_refused() {
    struct Bad;
    impl Plugin for Bad {
        fn manifest(&self) -> Manifest {
            Manifest::new("bad", "").output("vibes/events")
        }
        fn handle(&mut self, _: &Input<'_>, _: &mut Emitter) -> Result<(), PluginError> {
            Ok(())
        }
        fn query(&self, _: &str, _: &QueryArgs) -> Result<Value, QueryError> {
            Ok(Value::Null)
        }
    }
    let harness = Harness::new();
    let err = harness.run(Box::new(Bad)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin bad: output \"vibes/events\" must be a topic name within stream bad, without /"
    );
    let _ = RecordAddress {
        partition: 0,
        offset: 0,
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_runs_the_group_to_the_end_and_snapshots_so_the_next_reads_only_what_is_new() {
    let harness = Harness::new();
    catch_ups_read_only_what_is_new(&harness, harness.runtime()).await;
}

/// Three catch-ups over 25 records, the third after 6 more were appended: each reads
/// only what is new and snapshots when it read anything, and the outputs are those of
/// one uninterrupted run, each stored once.
async fn catch_ups_read_only_what_is_new(harness: &Harness, runtime: &Runtime) {
    harness.append(&texts(0..25)).await;

    // First catch-up: everything, outputs stored, a snapshot at the end although
    // snapshot_every (1000) was never reached.
    let mut first = Counter::with_snapshots(1000, 1);
    let mut steps = Vec::new();
    let status = runtime
        .catch_up(&mut *first, |p| steps.push(p))
        .await
        .unwrap();
    assert_eq!(status.processed, 25);
    assert_eq!(status.snapshots, 1);
    assert_eq!(status.restored_from_snapshot, None);
    let last = steps.last().unwrap();
    assert_eq!((last.read, last.total), (25, 25));
    assert_eq!(first.query("count", &count_args("a")).unwrap(), json!(13));

    // Nothing new: it restores the snapshot and reads nothing, saves nothing.
    let mut second = Counter::with_snapshots(1000, 1);
    let status = runtime.catch_up(&mut *second, |_| {}).await.unwrap();
    assert_eq!(status.restored_from_snapshot, Some(25));
    assert_eq!((status.processed, status.snapshots), (0, 0));
    assert_eq!(second.query("count", &count_args("a")).unwrap(), json!(13));

    // Six new records: only those are read.
    harness.append(&texts(25..31)).await;
    let mut third = Counter::with_snapshots(1000, 1);
    let status = runtime.catch_up(&mut *third, |_| {}).await.unwrap();
    assert_eq!((status.processed, status.snapshots), (6, 1));
    assert_eq!(third.query("count", &count_args("b")).unwrap(), json!(15));

    // The outputs are those of one uninterrupted run, each stored once.
    thirds_are_those_of_one_run(harness, 0..31).await;
}

/// The Counter's stored `thirds` are exactly those of one uninterrupted run over
/// `texts(range)`: each stored once.
async fn thirds_are_those_of_one_run(harness: &Harness, range: std::ops::Range<u64>) {
    let thirds = harness
        .read_all(&TopicName::new("counter/thirds").unwrap())
        .await;
    assert_eq!(
        encoded(&thirds),
        encoded(
            vibes_plugin::testing::run(Counter::boxed(), &texts(range))
                .await
                .unwrap()
                .topic("thirds")
        )
    );
}

/// Counts texts per session once per id: the counts answer queries; the ids, which
/// only handling needs, are saved apart. Handling without its ids restored is refused,
/// so a runtime that forgot to restore them shows as dead letters.
#[derive(Debug, Default)]
struct Tally {
    per_session: BTreeMap<String, u64>,
    ids: std::collections::BTreeSet<u128>,
    /// Restored from a snapshot, its ids not (yet).
    missing_ids: bool,
}

impl Tally {
    /// What handling a text does, for a writer folding its own appends.
    fn count(&mut self, id: u128, session: Option<&str>) {
        if self.ids.insert(id) {
            *self
                .per_session
                .entry(session.unwrap_or_default().to_owned())
                .or_default() += 1;
        }
    }

    fn fold(&mut self, events: &[Event]) {
        for event in events {
            if let EventData::Text(text) = &event.data {
                self.count(event.id.as_u128(), text.session_id.as_deref());
            }
        }
    }
}

impl Plugin for Tally {
    fn manifest(&self) -> Manifest {
        Manifest::new("tally", "counts texts once per id")
            .filter(vibes_events::Filter::all().event_type("claude.text"))
            .query("count", "texts of a session", &["session"])
            .query("ids_restored", "whether the ids came back", &[])
            .snapshot_every(1000)
    }

    fn handle(&mut self, input: &Input<'_>, _out: &mut Emitter) -> Result<(), PluginError> {
        if self.missing_ids {
            return Err(PluginError::new("handling without the ids"));
        }
        let EventData::Text(text) = &input.event.data else {
            return Err(PluginError::new("not a text"));
        };
        self.count(input.event.id.as_u128(), text.session_id.as_deref());
        Ok(())
    }

    fn query(&self, name: &str, args: &QueryArgs) -> Result<Value, QueryError> {
        match name {
            "count" => Ok(json!(
                self.per_session
                    .get(args.require("session")?)
                    .copied()
                    .unwrap_or(0)
            )),
            _ => Ok(json!(!self.missing_ids)),
        }
    }

    fn save(&self) -> Option<Vec<u8>> {
        assert!(!self.missing_ids, "saved without its ids");
        serde_json::to_vec(&self.per_session).ok()
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        self.per_session =
            serde_json::from_slice(bytes).map_err(|e| PluginError::new(e.to_string()))?;
        self.missing_ids = true;
        Ok(())
    }

    fn save_for_handling(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(&self.ids).ok()
    }

    fn restore_for_handling(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        self.ids = serde_json::from_slice(bytes).map_err(|e| PluginError::new(e.to_string()))?;
        self.missing_ids = false;
        Ok(())
    }
}

/// Each partition's (low, high) of the input.
async fn input_marks(harness: &Harness) -> (BTreeMap<u32, u64>, BTreeMap<u32, u64>) {
    let topic = TopicName::new(INPUT).unwrap();
    let info = harness.log().topic_info(&topic).await.unwrap();
    let lows = (0..info.partitions.len() as u32)
        .zip(info.partitions.iter().map(|m| m.low))
        .collect();
    let highs = (0..info.partitions.len() as u32)
        .zip(info.partitions.iter().map(|m| m.high))
        .collect();
    (lows, highs)
}

/// A writer that filled an empty input and folded what it appended has its state
/// adopted: a catch-up then reads nothing and answers the same, and what comes later
/// is read as usual. What the runtime can check, it does: a second adoption (a
/// snapshot exists), a fold that missed records, a plugin with outputs are declined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_folded_by_the_writer_of_an_empty_input_is_adopted_once() {
    let harness = Harness::new();
    let runtime = harness.runtime();
    harness.append(&[]).await;
    let (from, _) = input_marks(&harness).await;
    let events = texts(0..40);
    harness.append(&events).await;
    let (_, to) = input_marks(&harness).await;

    // Missing records: a fold that claims to end before the input does.
    let mut short = Tally::default();
    short.fold(&events[..39]);
    let mut early = to.clone();
    let last = events.len() as u64 - 1;
    for end in early.values_mut() {
        if *end > 0 {
            *end -= 1;
            break;
        }
    }
    let claim = |to: &BTreeMap<u32, u64>, handled| vibes_plugin::Folded {
        from: from.clone(),
        to: to.clone(),
        handled,
    };
    assert!(!runtime.adopt(&short, &claim(&early, last)).await.unwrap());
    // Outputs cannot be folded elsewhere.
    let counter = Counter::with_snapshots(1000, 1);
    assert!(!runtime.adopt(&*counter, &claim(&to, 40)).await.unwrap());

    let mut folded = Tally::default();
    folded.fold(&events);
    assert!(runtime.adopt(&folded, &claim(&to, 40)).await.unwrap());
    // Once adopted, never again: the plugin has a snapshot and its group commits.
    assert!(!runtime.adopt(&folded, &claim(&to, 40)).await.unwrap());

    let mut caught = Tally::default();
    let status = runtime.catch_up(&mut caught, |_| {}).await.unwrap();
    assert_eq!(status.restored_from_snapshot, Some(40));
    assert_eq!(status.processed, 0);
    assert_eq!(caught.query("count", &count_args("a")).unwrap(), json!(20));

    // Later records are read from the adopted positions, each once.
    harness.append(&texts(40..44)).await;
    let mut later = Tally::default();
    let status = runtime.catch_up(&mut later, |_| {}).await.unwrap();
    assert_eq!((status.processed, status.dead_letters), (4, 0));
    assert_eq!(later.query("count", &count_args("a")).unwrap(), json!(22));
    assert_eq!(later.query("count", &count_args("b")).unwrap(), json!(22));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_part_only_handling_needs_is_read_only_when_something_is_handled() {
    let harness = Harness::new();
    harness.append(&texts(0..10)).await;
    let runtime = harness.runtime();
    let mut first = Tally::default();
    let status = runtime.catch_up(&mut first, |_| {}).await.unwrap();
    assert_eq!((status.processed, status.snapshots), (10, 1));

    // Nothing new: a catch-up and a rebuild restore the counts only, and answer.
    let mut caught = Tally::default();
    let status = runtime.catch_up(&mut caught, |_| {}).await.unwrap();
    assert_eq!((status.processed, status.snapshots), (0, 0));
    assert_eq!(caught.query("count", &count_args("a")).unwrap(), json!(5));
    assert_eq!(
        caught.query("ids_restored", &QueryArgs::new()).unwrap(),
        json!(false)
    );
    let mut rebuilt = Tally::default();
    let report = runtime.rebuild(&mut rebuilt, |_| {}).await.unwrap();
    assert_eq!((report.read, report.from_snapshot), (0, Some(10)));
    assert_eq!(rebuilt.query("count", &count_args("b")).unwrap(), json!(5));
    assert_eq!(
        rebuilt.query("ids_restored", &QueryArgs::new()).unwrap(),
        json!(false)
    );

    // Something new, one of it a text stored before (same id): the ids come back
    // before it is handled, so it counts once, for a rebuild and a catch-up alike.
    let mut more = texts(10..13);
    more.push(text("a", 0, "hello"));
    harness.append(&more).await;
    let mut rebuilt = Tally::default();
    let report = runtime.rebuild(&mut rebuilt, |_| {}).await.unwrap();
    assert_eq!(report.read, 4);
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert_eq!(
        rebuilt.query("ids_restored", &QueryArgs::new()).unwrap(),
        json!(true)
    );
    assert_eq!(rebuilt.query("count", &count_args("a")).unwrap(), json!(7));
    let mut caught = Tally::default();
    let status = runtime.catch_up(&mut caught, |_| {}).await.unwrap();
    assert_eq!(
        (status.processed, status.dead_letters, status.snapshots),
        (4, 0, 1)
    );
    assert_eq!(caught.query("count", &count_args("a")).unwrap(), json!(7));
    assert_eq!(caught.query("count", &count_args("b")).unwrap(), json!(6));

    // The snapshot that catch-up saved holds the ids too: a later record of an old id
    // still counts once.
    harness.append(&[text("b", 1, "hello")]).await;
    let mut last = Tally::default();
    let status = runtime.catch_up(&mut last, |_| {}).await.unwrap();
    assert_eq!((status.processed, status.dead_letters), (1, 0));
    assert_eq!(last.query("count", &count_args("b")).unwrap(), json!(6));
}

/// A catch-up that handled fewer than an eighth of what the snapshot covers saves no
/// snapshot; the next one restores the older snapshot, reads those records again
/// without storing their outputs twice, and snapshots once enough has come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_of_a_few_records_leaves_the_snapshot_and_the_next_reads_them_again() {
    let harness = Harness::new();
    let runtime = harness.runtime();
    harness.append(&texts(0..80)).await;
    let mut first = Counter::with_snapshots(1000, 1);
    let status = runtime.catch_up(&mut *first, |_| {}).await.unwrap();
    assert_eq!((status.processed, status.snapshots), (80, 1));

    // 5 new records: under 80 / 8, so no snapshot.
    harness.append(&texts(80..85)).await;
    let mut second = Counter::with_snapshots(1000, 1);
    let status = runtime.catch_up(&mut *second, |_| {}).await.unwrap();
    assert_eq!(status.restored_from_snapshot, Some(80));
    assert_eq!((status.processed, status.snapshots), (5, 0));

    // 6 more: the next catch-up reads all 11 from the same snapshot (80 + 11 >= 80 / 8
    // more), and now saves one.
    harness.append(&texts(85..91)).await;
    let mut third = Counter::with_snapshots(1000, 1);
    let status = runtime.catch_up(&mut *third, |_| {}).await.unwrap();
    assert_eq!(status.restored_from_snapshot, Some(80));
    assert_eq!((status.processed, status.snapshots), (11, 1));
    assert_eq!(second.query("count", &count_args("a")).unwrap(), json!(43));
    assert_eq!(third.query("count", &count_args("a")).unwrap(), json!(46));

    // Nothing new: restored from the new snapshot, nothing read.
    let mut fourth = Counter::with_snapshots(1000, 1);
    let status = runtime.catch_up(&mut *fourth, |_| {}).await.unwrap();
    assert_eq!(status.restored_from_snapshot, Some(91));
    assert_eq!(status.processed, 0);

    // The outputs are those of one uninterrupted run, each stored once, though records
    // 80..85 were handled twice.
    thirds_are_those_of_one_run(&harness, 0..91).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_in_small_polls_reads_ahead_yet_handles_snapshots_and_commits_each_record_once()
{
    // Polls of 4: every poll but the last is full, so each is followed at once by the
    // next, decoding while the one before is handled.
    let harness = Harness::new();
    let runtime = Runtime::new(
        Arc::new(harness.log().clone()),
        RuntimeOptions::new(INPUT).poll(4, Duration::from_millis(10)),
    );
    catch_ups_read_only_what_is_new(&harness, &runtime).await;
}
