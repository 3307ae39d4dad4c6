//! What `vibes top` knows, folded from the log as it is read: the `ai-coder` and
//! `groove` plugins followed in-process (rebuilt once, then fed each new record), the
//! newest events, and the newest failing tool results with their groove fingerprints.
//! Everything is bounded, so memory stays flat however fast the log grows.

use std::collections::{HashMap, VecDeque};

use jiff::Timestamp;
use serde_json::Value;
use vibes_events::{Event, EventData};
use vibes_log::Delivered;
use vibes_plugin::{Followed, Follower, QueryArgs};
use vibes_plugin_groove::fingerprint::{Fingerprint, command_head, fingerprint};

/// Newest events kept for the event stream.
pub const RECENT_EVENTS: usize = 2048;
/// Newest failures kept.
pub const RECENT_FAILURES: usize = 256;
/// Tool calls remembered to name the tool and command of a failing result.
const CALLS_KEPT: usize = 16_384;
/// Coder events a session's timeline shows.
pub const TIMELINE_EVENTS: usize = 200;

/// One failing tool result.
#[derive(Debug, Clone)]
pub struct Failure {
    pub timestamp: Timestamp,
    pub session: Option<String>,
    pub fingerprint: Fingerprint,
}

/// The plugins and the newest events.
#[derive(Debug)]
pub struct Model {
    coders: Follower,
    groove: Follower,
    events: VecDeque<Event>,
    failures: VecDeque<Failure>,
    /// (session, tool call id) to (tool, command head), oldest first in `call_order`.
    calls: HashMap<(String, String), (String, String)>,
    call_order: VecDeque<(String, String)>,
    /// Records read since the start.
    pub read: u64,
    /// Records that did not decode, and records a plugin refused.
    pub skipped: u64,
    /// The last refusal, to show.
    pub last_problem: Option<String>,
}

/// What the panes show, taken from the model once per frame.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// The `ai-coder` plugin's `coders` answer (`all`: ended ones too).
    pub coders: Value,
    /// Its `alerts` answer.
    pub alerts: Value,
    /// The `groove` plugin's open gaps.
    pub gaps: Value,
    /// The newest events, oldest first (already filtered).
    pub events: Vec<Event>,
    /// The newest failures, oldest first.
    pub failures: Vec<Failure>,
    /// The timeline asked for: the coder's id and its events, oldest first.
    pub timeline: Option<(String, Vec<Event>)>,
    pub read: u64,
    pub skipped: u64,
    pub last_problem: Option<String>,
}

/// What [`Model::view`] is asked for.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    /// Events that match.
    pub filter: Option<vibes_events::Filter>,
    /// Ended coders too.
    pub all: bool,
    /// The coder whose timeline to show.
    pub timeline: Option<String>,
    /// Events wanted at most.
    pub events: usize,
}

impl Model {
    /// A model over the two plugins, each already rebuilt up to where it follows from.
    pub fn new(coders: Follower, groove: Follower) -> Self {
        Model {
            coders,
            groove,
            events: VecDeque::with_capacity(RECENT_EVENTS),
            failures: VecDeque::with_capacity(RECENT_FAILURES),
            calls: HashMap::new(),
            call_order: VecDeque::new(),
            read: 0,
            skipped: 0,
            last_problem: None,
        }
    }

    /// Where the plugins go on from: per partition, the lowest offset either has not
    /// seen.
    pub fn positions(&self) -> std::collections::BTreeMap<u32, u64> {
        let mut out = self.coders.positions().clone();
        for (p, o) in self.groove.positions() {
            let e = out.entry(*p).or_insert(*o);
            *e = (*e).min(*o);
        }
        out
    }

    /// A record that did not decode.
    pub fn undecodable(&mut self, what: String) {
        self.skipped += 1;
        self.last_problem = Some(what);
    }

    /// Folds one record in.
    pub fn fold(&mut self, delivered: &Delivered<Event>) {
        self.read += 1;
        for follower in [&mut self.coders, &mut self.groove] {
            if let Followed::Refused(why) = follower.handle(delivered) {
                self.skipped += 1;
                self.last_problem = Some(format!(
                    "{} refused the record at {}: {why}",
                    follower.manifest().name,
                    delivered.address
                ));
            }
        }
        let event = &delivered.event;
        let session = event.partition_key().unwrap_or_default().to_owned();
        match &event.data {
            EventData::ToolUse(u) => {
                let key = (session, u.tool_id.clone());
                if self.calls.len() >= CALLS_KEPT
                    && let Some(old) = self.call_order.pop_front()
                {
                    self.calls.remove(&old);
                }
                let head = command_head(&u.tool_name, &u.input);
                if self
                    .calls
                    .insert(key.clone(), (u.tool_name.clone(), head))
                    .is_none()
                {
                    self.call_order.push_back(key);
                }
            }
            EventData::ToolResult(r) if r.is_error => {
                let (tool, head) = self
                    .calls
                    .get(&(session, r.tool_id.clone()))
                    .cloned()
                    .unwrap_or_else(|| {
                        (
                            r.tool_name.clone().unwrap_or_else(|| "unknown".to_owned()),
                            String::new(),
                        )
                    });
                if self.failures.len() >= RECENT_FAILURES {
                    self.failures.pop_front();
                }
                self.failures.push_back(Failure {
                    timestamp: event.timestamp,
                    session: event.partition_key().map(str::to_owned),
                    fingerprint: fingerprint(&tool, &head, &r.content),
                });
            }
            _ => {}
        }
        if self.events.len() >= RECENT_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(delivered.event.clone());
    }

    /// What the panes show now.
    pub fn view(&self, ask: &Ask) -> View {
        let mut coders_args = QueryArgs::new();
        if ask.all {
            coders_args = coders_args.with("all", "true");
        }
        let answer = |f: &Follower, name: &str, args: &QueryArgs| {
            f.query(name, args)
                .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
        };
        let mut events: Vec<Event> = self
            .events
            .iter()
            .rev()
            .filter(|e| ask.filter.as_ref().is_none_or(|f| f.matches(e)))
            .take(ask.events)
            .cloned()
            .collect();
        events.reverse();
        let timeline = ask.timeline.as_ref().map(|id| {
            let args = QueryArgs::new().with("coder", id).with("children", "true");
            let history = answer(&self.coders, "history", &args);
            let list = history["events"].as_array().map_or(&[][..], Vec::as_slice);
            let newest = &list[list.len().saturating_sub(TIMELINE_EVENTS)..];
            (id.clone(), newest.iter().filter_map(coder_event).collect())
        });
        View {
            coders: answer(&self.coders, "coders", &coders_args),
            alerts: answer(&self.coders, "alerts", &QueryArgs::new()),
            gaps: answer(&self.groove, "gaps", &QueryArgs::new()),
            events,
            failures: self.failures.iter().cloned().collect(),
            timeline,
            read: self.read,
            skipped: self.skipped,
            last_problem: self.last_problem.clone(),
        }
    }
}

/// A coder event or alert as the `ai-coder` queries answer it (no id, no source), as
/// an [`Event`] to show in the display style.
pub fn coder_event(answer: &Value) -> Option<Event> {
    let mut value = answer.clone();
    let map = value.as_object_mut()?;
    map.remove("seq");
    map.entry("id")
        .or_insert_with(|| Value::String(vibes_events::EventId::from_u128(0).to_string()));
    map.entry("source")
        .or_insert_with(|| Value::String(vibes_plugin_ai_coder::NAME.to_owned()));
    Event::from_json(&value.to_string()).ok()
}
