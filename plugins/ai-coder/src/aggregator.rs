//! The aggregator (seed 002's `AICoderEventAggregator`), as the plugin's state: every
//! coder event passes through [`Aggregator::record`], which validates it, numbers it,
//! keeps the newest N in the history, counts it, and answers with the aggregator's own
//! events it causes (failure alert, completion metrics, system warning).
//!
//! Where the seed is weak this is different: events per minute are counted over event
//! time (the minute before the newest event), never the wall clock; the failure alert
//! counts a per-coder sliding window of failure times instead of scanning the history;
//! the completion time comes from the coder's creation time kept per coder, not from a
//! history that may have dropped it; an invalid event is an error, not a log line.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use vibes_events::Timestamp;
use vibes_plugin::PluginError;

use crate::filter::HistoryFilter;
use crate::types::{
    self, COMPLETED, COMPLETION_METRICS, CREATED, CoderEvent, FAILED, FAILURE_ALERT, RATE_LIMIT,
    RESOURCE_LIMIT, SYSTEM_WARNING,
};

/// Events the history keeps by default.
pub const DEFAULT_HISTORY: usize = 4096;
/// The failure alert's window, in milliseconds of event time.
pub const FAILURE_WINDOW_MS: i64 = 10 * 60 * 1000;
/// Failures within the window that raise an alert.
pub const FAILURES_FOR_ALERT: usize = 3;
/// Coders counted one by one; beyond, the least recently seen is folded into
/// `evicted`.
pub const MAX_TRACKED: usize = 4096;
/// Alerts kept for the `alerts` query.
pub const MAX_ALERTS: usize = 256;
/// Failure times kept per coder (only the window's are needed).
const MAX_FAILURE_TIMES: usize = 64;
/// The events-per-minute window, in seconds.
const RATE_WINDOW_S: i64 = 60;

/// What the aggregator knows of one coder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Tracked {
    events: u64,
    created: Option<Timestamp>,
    /// Failure times within the window, ascending.
    failures: VecDeque<Timestamp>,
    last_seq: u64,
}

/// Counts over everything recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Stats {
    total_events: u64,
    events_by_type: BTreeMap<String, u64>,
    /// The time of the last event recorded (log order).
    last_event: Option<Timestamp>,
    /// The earliest and newest event times.
    first_event: Option<Timestamp>,
    newest_event: Option<Timestamp>,
    /// Events older than the rate window when they came (transcripts are not in time
    /// order): counted everywhere but in events per minute.
    late_for_rate: u64,
    /// Coders folded out of `coders`, and their events.
    evicted_coders: u64,
    evicted_events: u64,
    alerts_by_type: BTreeMap<String, u64>,
    completions_without_created: u64,
}

/// The aggregator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregator {
    capacity: usize,
    seq: u64,
    history: VecDeque<CoderEvent>,
    alerts: VecDeque<CoderEvent>,
    coders: BTreeMap<String, Tracked>,
    /// Events per second of event time over the last minute, ascending.
    rate: VecDeque<(i64, u64)>,
    stats: Stats,
}

impl Default for Aggregator {
    fn default() -> Self {
        Self::new(DEFAULT_HISTORY)
    }
}

impl Aggregator {
    /// An aggregator keeping the newest `capacity` events (at least 1).
    pub fn new(capacity: usize) -> Self {
        Aggregator {
            capacity: capacity.max(1),
            seq: 0,
            history: VecDeque::new(),
            alerts: VecDeque::new(),
            coders: BTreeMap::new(),
            rate: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// Validates, numbers and records `event` (the newest of the history, numbered,
    /// until it is pushed out); returns the aggregator's own events it causes. An
    /// invalid event changes nothing.
    pub fn record(&mut self, mut event: CoderEvent) -> Result<Vec<CoderEvent>, PluginError> {
        event.validate()?;
        self.seq += 1;
        event.seq = self.seq;
        let at = event.timestamp;

        let stats = &mut self.stats;
        stats.total_events += 1;
        count(&mut stats.events_by_type, &event.event_type);
        stats.last_event = Some(at);
        stats.first_event = Some(stats.first_event.map_or(at, |f| f.min(at)));
        stats.newest_event = Some(stats.newest_event.map_or(at, |n| n.max(at)));
        self.count_rate(at);

        if !self.coders.contains_key(&event.coder_id) {
            self.evict_for_one_more();
        }
        let tracked = match self.coders.get_mut(&event.coder_id) {
            Some(tracked) => tracked,
            None => self.coders.entry(event.coder_id.clone()).or_default(),
        };
        tracked.events += 1;
        tracked.last_seq = self.seq;
        let alerts = specialized(&event, tracked, &mut self.stats);

        for alert in &alerts {
            count(&mut self.stats.alerts_by_type, &alert.event_type);
            if self.alerts.len() == MAX_ALERTS {
                self.alerts.pop_front();
            }
            self.alerts.push_back(alert.clone());
        }
        if self.history.len() == self.capacity {
            self.history.pop_front();
        }
        self.history.push_back(event);
        Ok(alerts)
    }

    fn count_rate(&mut self, at: Timestamp) {
        let s = at.as_second();
        match self.rate.back() {
            None => self.rate.push_back((s, 1)),
            Some(&(newest, _)) if s > newest => {
                self.rate.push_back((s, 1));
                while self
                    .rate
                    .front()
                    .is_some_and(|(f, _)| *f <= s - RATE_WINDOW_S)
                {
                    self.rate.pop_front();
                }
            }
            Some(&(newest, _)) if s > newest - RATE_WINDOW_S => {
                match self.rate.binary_search_by_key(&s, |(sec, _)| *sec) {
                    Ok(i) => self.rate[i].1 += 1,
                    Err(i) => self.rate.insert(i, (s, 1)),
                }
            }
            Some(_) => self.stats.late_for_rate += 1,
        }
    }

    /// Makes room for one more tracked coder: the least recently seen goes.
    fn evict_for_one_more(&mut self) {
        if self.coders.len() < MAX_TRACKED {
            return;
        }
        let oldest = self
            .coders
            .iter()
            .min_by_key(|(_, t)| t.last_seq)
            .map(|(id, _)| id.clone());
        if let Some(id) = oldest
            && let Some(gone) = self.coders.remove(&id)
        {
            self.stats.evicted_coders += 1;
            self.stats.evicted_events += gone.events;
        }
    }

    /// Events in the minute of event time that ends at the newest event.
    pub fn events_per_minute(&self) -> u64 {
        self.rate.iter().map(|(_, n)| n).sum()
    }

    /// The history, oldest first.
    pub fn history(&self) -> impl DoubleEndedIterator<Item = &CoderEvent> {
        self.history.iter()
    }

    /// The events of the history that `filter` passes, oldest first.
    pub fn events(&self, filter: &HistoryFilter) -> Vec<&CoderEvent> {
        // The history is in seq order: start after the cursor without scanning.
        let start = filter
            .after
            .map_or(0, |after| self.history.partition_point(|e| e.seq <= after));
        self.history
            .range(start..)
            .filter(|e| filter.matches(e))
            .collect()
    }

    /// The newest sequence number given out.
    pub fn last_seq(&self) -> u64 {
        self.seq
    }

    /// The alerts kept, oldest first.
    pub fn alerts(&self) -> impl Iterator<Item = &CoderEvent> {
        self.alerts.iter()
    }

    /// Events recorded about `coder`, if it is still tracked.
    pub fn coder_events(&self, coder: &str) -> Option<u64> {
        self.coders.get(coder).map(|t| t.events)
    }

    /// The statistics: totals, by type, by coder, last event, events per minute.
    pub fn stats(&self) -> Value {
        let s = &self.stats;
        let by_coder: BTreeMap<&str, u64> = self
            .coders
            .iter()
            .map(|(id, t)| (id.as_str(), t.events))
            .collect();
        let average = match (s.first_event, s.newest_event) {
            (Some(first), Some(newest)) if newest > first => {
                let minutes = (newest.as_millisecond() - first.as_millisecond()) as f64 / 60_000.0;
                Some(s.total_events as f64 / minutes)
            }
            _ => None,
        };
        json!({
            "total_events": s.total_events,
            "events_by_type": s.events_by_type,
            "events_by_coder": by_coder,
            "evicted": { "coders": s.evicted_coders, "events": s.evicted_events },
            "last_event": s.last_event,
            "first_event": s.first_event,
            "newest_event": s.newest_event,
            "events_per_minute": self.events_per_minute(),
            "average_events_per_minute": average,
            "late_for_rate": s.late_for_rate,
            "history": {
                "len": self.history.len(),
                "capacity": self.capacity,
                "oldest_seq": self.history.front().map(|e| e.seq),
                "last_seq": self.seq,
            },
            "alerts_by_type": s.alerts_by_type,
            "completions_without_created": s.completions_without_created,
        })
    }
}

/// The seed's `processSpecializedEvent`: creation times, the failure window,
/// completion metrics and warnings.
fn specialized(event: &CoderEvent, tracked: &mut Tracked, stats: &mut Stats) -> Vec<CoderEvent> {
    let at = event.timestamp;
    let alert = |event_type: &str, data: Value| {
        let mut data = match data {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        if let Some(session) = event.data.get("session_id") {
            data.insert("session_id".into(), session.clone());
        }
        CoderEvent::new(event_type, &event.coder_id, &event.coder_name, at, data)
    };
    match event.event_type.as_str() {
        CREATED => {
            if tracked.created.is_none() {
                tracked.created = Some(at);
            }
            Vec::new()
        }
        FAILED => {
            let window = &mut tracked.failures;
            let i = window.partition_point(|t| *t <= at);
            window.insert(i, at);
            if let Some(&newest) = window.back() {
                let floor = newest.as_millisecond() - FAILURE_WINDOW_MS;
                while window.front().is_some_and(|t| t.as_millisecond() < floor) {
                    window.pop_front();
                }
            }
            while window.len() > MAX_FAILURE_TIMES {
                window.pop_front();
            }
            let since = at.as_millisecond() - FAILURE_WINDOW_MS;
            let within: Vec<&Timestamp> = window
                .iter()
                .filter(|t| t.as_millisecond() >= since && **t <= at)
                .collect();
            if within.len() >= FAILURES_FOR_ALERT {
                vec![alert(
                    FAILURE_ALERT,
                    json!({
                        "failure_count": within.len(),
                        "window_minutes": FAILURE_WINDOW_MS / 60_000,
                        "first_failure": within[0],
                        "reason": event.data.get("reason"),
                    }),
                )]
            } else {
                Vec::new()
            }
        }
        COMPLETED => match tracked.created {
            Some(created) => {
                let duration = at.as_millisecond() - created.as_millisecond();
                let mut data = json!({
                    "duration_ms": duration.max(0),
                    "created": created,
                    "completed": at,
                });
                for key in ["turns", "tool_calls", "api_calls", "errors", "tokens"] {
                    if let Some(v) = event.data.get(key) {
                        data[key] = v.clone();
                    }
                }
                vec![alert(COMPLETION_METRICS, data)]
            }
            None => {
                stats.completions_without_created += 1;
                Vec::new()
            }
        },
        RATE_LIMIT => {
            let mut data = warning("rate_limit", "AI provider rate limit reached", event);
            for key in ["status", "rate_limit_type", "resets_at", "fallback_model"] {
                copy(&mut data, event, key);
            }
            vec![alert(SYSTEM_WARNING, Value::Object(data))]
        }
        RESOURCE_LIMIT => {
            let mut data = warning("resource_limit", "AI coder resource limit exceeded", event);
            for key in ["limit", "observed", "threshold", "run_id"] {
                copy(&mut data, event, key);
            }
            vec![alert(SYSTEM_WARNING, Value::Object(data))]
        }
        _ => Vec::new(),
    }
}

fn warning(kind: &str, message: &str, event: &CoderEvent) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("warning".into(), kind.into());
    data.insert("message".into(), message.into());
    data.insert("source_type".into(), event.event_type.clone().into());
    data
}

fn copy(data: &mut Map<String, Value>, event: &CoderEvent, key: &str) {
    if let Some(v) = event.data.get(key) {
        data.insert(key.into(), v.clone());
    }
}

/// Whether `event_type` is one the aggregator raises itself.
pub fn is_alert(event_type: &str) -> bool {
    types::ALERT_TYPES.contains(&event_type)
}

/// Adds one to `key`'s count, allocating the key only the first time.
fn count(counts: &mut BTreeMap<String, u64>, key: &str) {
    match counts.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            counts.insert(key.to_owned(), 1);
        }
    }
}
