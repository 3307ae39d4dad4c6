//! The coder events derived from the taxonomy: which input gives which event, and the
//! coders' status as it goes. Every event has the time of the input that caused it
//! (an API call: the time of its first copy).
//!
//! | input | coder events |
//! |---|---|
//! | the first event of a coder | `created`, `started` |
//! | any activity after the coder ended | `started` (again) |
//! | activity after a pause | `resumed` |
//! | `session.end` | `completed` or `failed` (`is_error`, with why); live subagents end with it |
//! | `claude.interrupt` | `paused` |
//! | `claude.turn_duration` | `progress` (stage `turn`); the coder waits |
//! | `claude.tool_use` TodoWrite | `progress` (stage `todo`, done of total), a `milestone` per item newly completed |
//! | `claude.text` | `output` |
//! | Write / Edit / MultiEdit / NotebookEdit, when its result is not an error | `file_created` or `file_modified` (path, size where known) |
//! | Bash `rm`/`unlink`/`git rm`, when its result is not an error | `file_deleted` per path |
//! | Bash `git commit|push|pull|...`, when its result is not an error | `workspace_sync` |
//! | a Task result (stream-json) | the subagent it ran `completed` or `failed` |
//! | `claude.api_call` | `api_call` once per call, its largest copy, priced |
//! | `claude.api_error` | `api_error` |
//! | `claude.rate_limit` other than `allowed` | `rate_limit`; `rejected` also `paused` |
//! | `run.sample` | `resource_usage` |
//! | `run.limit` | `resource_limit` |
//! | `run.exit` | `completed`, `failed` or `stopped` when the coder had not ended |
//! | (state full) | `deleted` for the coder forgotten |

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use vibes_events::{Event, EventData, SessionEnd, Timestamp};
use vibes_plugin::{Emitter, PluginError};

use crate::aggregator::Aggregator;
use crate::calls::DoneCall;
use crate::coder::{Coder, PendingTool, Status};
use crate::identity::{self, CoderKey};
use crate::prices::Prices;
use crate::runs::Runs;
use crate::types::{self, CoderEvent, topics};
use crate::workspace::{self, Effect};

/// Live coders kept; beyond, the least recently active is forgotten.
pub const MAX_LIVE: usize = 2048;
/// Ended coders kept; beyond, the least recently active ended one is forgotten.
pub const MAX_FINISHED: usize = 512;
/// Characters of text an `output` event carries.
pub const OUTPUT_CHARS: usize = 2000;
/// The model Claude Code names in place of an error response: not a call.
const SYNTHETIC_MODEL: &str = "<synthetic>";

/// Where coder events go: validated and recorded by the aggregator, then written with
/// the alerts they cause.
pub struct Sink<'a> {
    /// The aggregator.
    pub aggregator: &'a mut Aggregator,
    /// The runtime's emitter.
    pub out: &'a mut Emitter,
    /// The price function.
    pub prices: &'a dyn Prices,
}

impl std::fmt::Debug for Sink<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink").finish_non_exhaustive()
    }
}

impl Sink<'_> {
    /// Records and writes `event`, then the alerts it causes.
    pub fn record(&mut self, event: CoderEvent) -> Result<(), PluginError> {
        // Checked and written before the aggregator counts it: an event the emitter
        // refuses leaves no trace in the state.
        event.validate()?;
        self.write(topics::EVENTS, &event)?;
        let alerts = self.aggregator.record(event)?;
        for alert in alerts {
            self.write(topics::ALERTS, &alert)?;
        }
        Ok(())
    }

    /// Writes `event` into `topic`; when the emitter keeps nothing (a rebuild), only
    /// checks its fields, as writing would.
    fn write(&mut self, topic: &str, event: &CoderEvent) -> Result<(), PluginError> {
        if self.out.keeps_outputs() {
            self.out
                .emit_at(topic, &event.event_type, event.timestamp, event.fields())
        } else {
            let own = ["coder_id", "coder_name"].into_iter();
            let keys = own.chain(event.data.keys().map(String::as_str));
            self.out.check_fields(&event.event_type, keys)
        }
    }

    fn emit(
        &mut self,
        coder: &Coder,
        event_type: &str,
        at: Timestamp,
        data: Value,
    ) -> Result<(), PluginError> {
        let mut data = match data {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        if let Some(session) = &coder.session_id {
            data.insert("session_id".into(), Value::String(session.clone()));
        }
        self.record(CoderEvent::new(
            event_type,
            &coder.id,
            &coder.name,
            at,
            data,
        ))
    }
}

/// Counts of what was looked at and not turned into events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Inputs handled.
    pub handled: u64,
    /// `claude.rate_limit` reports of status `allowed` (no limit reached).
    pub rate_allowed: u64,
    /// API call copies of the synthetic model (Claude Code's stand-in for an error).
    pub synthetic_calls: u64,
    /// Tool results whose call was not seen (or was forgotten).
    pub unmatched_results: u64,
    /// Coders forgotten for room, live and ended.
    pub evicted_live: u64,
    /// See `evicted_live`.
    pub evicted_finished: u64,
    /// Coder events taken from the input topic (other producers').
    pub external: u64,
}

/// The coders and what derives their events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Deriver {
    coders: BTreeMap<String, Coder>,
    runs: Runs,
    counts: Counts,
}

/// Whether an input is activity that wakes a paused coder or restarts an ended one.
fn is_activity(data: &EventData) -> bool {
    matches!(
        data,
        EventData::SessionStart(_)
            | EventData::Text(_)
            | EventData::ToolUse(_)
            | EventData::ToolResult(_)
            | EventData::ApiCall(_)
            | EventData::ApiError(_)
    )
}

/// The API message an input belongs to, for content blocks between a call's copies.
fn message_of(data: &EventData) -> Option<&str> {
    match data {
        EventData::Text(t) => t.message_id.as_deref(),
        EventData::Thinking(t) => t.message_id.as_deref(),
        EventData::ToolUse(t) => t.message_id.as_deref(),
        _ => None,
    }
}

/// The first `n` characters of `id`.
fn cut(id: &str, n: usize) -> &str {
    match id.char_indices().nth(n) {
        Some((at, _)) => &id[..at],
        None => id,
    }
}

/// A session or run id as a name: its first 8 characters.
fn short(id: &str) -> &str {
    cut(id, 8)
}

impl Deriver {
    /// The coders kept.
    pub fn coders(&self) -> &BTreeMap<String, Coder> {
        &self.coders
    }

    /// The counts.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Runs remembered.
    pub fn runs(&self) -> &Runs {
        &self.runs
    }

    /// Folds in one input.
    pub fn handle(&mut self, event: &Event, sink: &mut Sink<'_>) -> Result<(), PluginError> {
        match &event.data {
            EventData::RunStart(start) => {
                self.counts.handled += 1;
                self.runs.start(start, event.timestamp);
                Ok(())
            }
            EventData::RunSample(_) | EventData::RunLimit(_) | EventData::RunExit(_) => {
                self.counts.handled += 1;
                self.on_run(event, sink)
            }
            EventData::Unknown { event_type } if event_type.starts_with("ai_coder.") => {
                let coder_event =
                    CoderEvent::from_input(event_type, &event.extra, event.timestamp)?;
                self.counts.handled += 1;
                self.counts.external += 1;
                sink.record(coder_event)
            }
            _ => {
                let key = identity::of(event)?;
                self.counts.handled += 1;
                self.on_session_event(event, &key, sink)
            }
        }
    }

    /// The coder `id`, created (with `created` and `started`) if new.
    fn ensure(
        &mut self,
        id: &str,
        make: impl FnOnce(&Self) -> Coder,
        at: Timestamp,
        sink: &mut Sink<'_>,
    ) -> Result<(), PluginError> {
        if !self.coders.contains_key(id) {
            let coder = make(self);
            if let Some(parent) = coder.parent.as_ref().and_then(|p| self.coders.get_mut(p)) {
                parent.children += 1;
            }
            let data = json!({
                "previous_status": Value::Null,
                "current_status": "running",
                "parent": coder.parent,
                "model": coder.model,
            });
            sink.emit(&coder, types::CREATED, at, data.clone())?;
            sink.emit(&coder, types::STARTED, at, data)?;
            self.coders.insert(id.to_owned(), coder);
            self.evict_live(id, at, sink)?;
        }
        let handled = self.counts.handled;
        if let Some(coder) = self.coders.get_mut(id) {
            coder.touched = handled;
            coder.last_activity = coder.last_activity.max(at);
        }
        Ok(())
    }

    fn new_session_coder(&self, key: &CoderKey, event: &Event) -> Coder {
        let at = event.timestamp;
        let id = key.coder_id();
        let parent = self.coders.get(&key.session_id);
        let parent_name =
            parent.map_or_else(|| short(&key.session_id).to_owned(), |p| p.name.clone());
        let (name, parent_id) = match &key.agent {
            Some(agent) => {
                let task = parent.and_then(|p| p.task(agent));
                let name = match task {
                    Some(description) => format!("{parent_name}: {description}"),
                    None => format!("{parent_name}/{}", cut(agent, 16)),
                };
                (name, Some(key.session_id.clone()))
            }
            None => {
                let from_cwd = match &event.data {
                    EventData::SessionStart(s) => s
                        .cwd
                        .as_deref()
                        .and_then(|c| c.trim_end_matches('/').rsplit('/').next())
                        .filter(|n| !n.is_empty())
                        .map(str::to_owned),
                    _ => None,
                };
                (from_cwd.unwrap_or(parent_name), None)
            }
        };
        let mut coder = Coder::new(id, name, Some(key.session_id.clone()), at);
        coder.parent = parent_id;
        if let EventData::SessionStart(s) = &event.data {
            coder.model = Some(s.model.clone()).filter(|m| !m.is_empty());
        }
        coder
    }

    fn on_session_event(
        &mut self,
        event: &Event,
        key: &CoderKey,
        sink: &mut Sink<'_>,
    ) -> Result<(), PluginError> {
        let at = event.timestamp;
        let id = key.coder_id();
        self.ensure(&id, |d| d.new_session_coder(key, event), at, sink)?;
        let Some(coder) = self.coders.get_mut(&id) else {
            return Ok(());
        };

        // A pending API call is done once the coder does anything that is not part of
        // the same response. Tool results are not: Claude Code 2.1 runs a tool and
        // writes its result before the response's next block (another copy).
        if !matches!(event.data, EventData::ApiCall(_) | EventData::ToolResult(_))
            && coder.calls.has_pending()
            && !coder.calls.continues(message_of(&event.data))
            && let Some(done) = coder.calls.flush(sink.prices)
        {
            emit_call(coder, done, sink)?;
        }

        if is_activity(&event.data) {
            wake(coder, &event.data, at, sink)?;
        }

        match &event.data {
            EventData::SessionStart(start) if !start.model.is_empty() => {
                coder.model = Some(start.model.clone());
            }
            EventData::SessionEnd(end) => {
                self.on_end(&id, end, at, sink)?;
            }
            EventData::Text(text) => {
                let shown = workspace::cut(&text.text, OUTPUT_CHARS);
                let truncated = shown.len() < text.text.len();
                sink.emit(
                    coder,
                    types::OUTPUT,
                    at,
                    json!({
                        "text": shown,
                        "length": text.text.chars().count(),
                        "truncated": truncated,
                    }),
                )?;
            }
            EventData::ToolUse(tool) => {
                coder.tool_calls += 1;
                match tool.tool_name.as_str() {
                    "TodoWrite" => {
                        if let Some(update) = coder.todos.update(&tool.input) {
                            let fraction = coder.todos.fraction();
                            sink.emit(
                                coder,
                                types::PROGRESS,
                                at,
                                json!({
                                    "stage": "todo",
                                    "progress": fraction,
                                    "done": update.done,
                                    "total": update.total,
                                    "description": update.current,
                                }),
                            )?;
                            for milestone in update.milestones {
                                sink.emit(
                                    coder,
                                    types::MILESTONE,
                                    at,
                                    json!({
                                        "milestone": milestone,
                                        "progress": fraction,
                                        "done": update.done,
                                        "total": update.total,
                                    }),
                                )?;
                            }
                        }
                    }
                    "Task" | "Agent" => {
                        let description = tool
                            .input
                            .get("description")
                            .and_then(Value::as_str)
                            .unwrap_or("subagent");
                        coder.remember_task(&tool.tool_id, description);
                        coder.await_tool(&tool.tool_id, PendingTool::Task);
                    }
                    name => {
                        if let Some(effect) = workspace::effect_of(name, &tool.input) {
                            coder.await_tool(&tool.tool_id, PendingTool::Effect(effect));
                        }
                    }
                }
            }
            EventData::ToolResult(result) => {
                if result.is_error {
                    coder.tool_errors += 1;
                }
                match coder.take_tool(&result.tool_id) {
                    Some(PendingTool::Effect(effect)) if !result.is_error => {
                        workspace_events(coder, effect, &result.content, at, sink)?;
                    }
                    Some(PendingTool::Task) => {
                        let child = identity::child_id(&key.session_id, &result.tool_id);
                        let (status, reason) = if result.is_error {
                            (Status::Failed, "its Task call failed")
                        } else {
                            (Status::Completed, "its Task call returned")
                        };
                        let error = result
                            .is_error
                            .then(|| workspace::cut(&result.content, 500));
                        if let Some(child) = self.coders.get_mut(&child)
                            && !child.status.is_finished()
                        {
                            finish(child, status, reason, error, at, sink)?;
                            self.evict_finished(at, sink)?;
                        }
                    }
                    Some(PendingTool::Effect(_)) => {}
                    None => {
                        // Only calls with an effect or a subagent are awaited.
                        if matches!(
                            result.tool_name.as_deref(),
                            Some("Write" | "Edit" | "MultiEdit" | "NotebookEdit" | "Task")
                        ) {
                            self.counts.unmatched_results += 1;
                        }
                    }
                }
            }
            EventData::ApiCall(call) => {
                if call.model.as_deref() == Some(SYNTHETIC_MODEL) {
                    self.counts.synthetic_calls += 1;
                    return Ok(());
                }
                if let Some(model) = call.model.as_ref().filter(|m| !m.is_empty()) {
                    coder.model = Some(model.clone());
                }
                for done in coder.calls.add(call, at, sink.prices) {
                    emit_call(coder, done, sink)?;
                }
            }
            EventData::ApiError(error) => {
                coder.api_errors += 1;
                sink.emit(
                    coder,
                    types::API_ERROR,
                    at,
                    json!({
                        "provider": "anthropic",
                        "model": coder.model,
                        "error_code": error.status.map(|s| s.to_string()),
                        "error_message": error.message,
                        "retry_attempt": error.retry_attempt,
                        "max_retries": error.max_retries,
                        "retry_in_ms": error.retry_in_ms,
                        "error_cause": error.cause,
                    }),
                )?;
            }
            EventData::RateLimit(limit) => {
                if limit.status == "allowed" {
                    self.counts.rate_allowed += 1;
                    return Ok(());
                }
                coder.rate_limits += 1;
                sink.emit(
                    coder,
                    types::RATE_LIMIT,
                    at,
                    json!({
                        "provider": "anthropic",
                        "model": coder.model,
                        "status": limit.status,
                        "rate_limit_type": limit.rate_limit_type,
                        "resets_at": limit.resets_at,
                        "message": limit.message,
                        "fallback_model": limit.fallback_model,
                    }),
                )?;
                if limit.status == "rejected" {
                    pause(coder, "rate limit reached", at, sink)?;
                }
            }
            EventData::TurnDuration(turn) => {
                coder.turns += 1;
                if coder.status == Status::Running {
                    coder.status = Status::Waiting;
                }
                sink.emit(
                    coder,
                    types::PROGRESS,
                    at,
                    json!({
                        "stage": "turn",
                        "progress": coder.todos.fraction(),
                        "turns": coder.turns,
                        "duration_ms": turn.duration_ms,
                        "description": format!("turn {} took {} s", coder.turns, turn.duration_ms / 1000),
                    }),
                )?;
            }
            EventData::Interrupt(interrupt) => {
                let reason = if interrupt.during_tool_use {
                    "interrupted by the person during a tool call"
                } else {
                    "interrupted by the person"
                };
                pause(coder, reason, at, sink)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn on_end(
        &mut self,
        id: &str,
        end: &SessionEnd,
        at: Timestamp,
        sink: &mut Sink<'_>,
    ) -> Result<(), PluginError> {
        let Some(coder) = self.coders.get_mut(id) else {
            return Ok(());
        };
        coder.turns = coder.turns.max(end.num_turns);
        if end.total_cost_usd > 0.0 || coder.calls.count == 0 {
            coder.reported_cost_usd = Some(end.total_cost_usd);
        }
        let (status, reason, error) = if end.is_error {
            let why = end
                .subtype
                .clone()
                .filter(|s| s != "success")
                .or_else(|| end.api_error_status.map(|s| format!("API error {s}")))
                .unwrap_or_else(|| "error".into());
            let message = end
                .errors
                .as_ref()
                .and_then(|e| e.first().cloned())
                .or_else(|| end.result.clone())
                .map(|m| workspace::cut(&m, 500));
            (Status::Failed, why, message)
        } else {
            (
                Status::Completed,
                end.subtype.clone().unwrap_or_else(|| "success".into()),
                None,
            )
        };
        let parent_status = status;
        if coder.status.is_finished() {
            // Ended before (by its run, say): the session's own end does not end it again.
            return Ok(());
        }
        finish(coder, status, &reason, error, at, sink)?;
        // Live subagents end with their session.
        let prefix = format!("{id}/");
        let children: Vec<String> = self
            .coders
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(_, c)| !c.status.is_finished())
            .map(|(k, _)| k.clone())
            .collect();
        for child in children {
            if let Some(child) = self.coders.get_mut(&child) {
                let status = if parent_status == Status::Completed {
                    Status::Completed
                } else {
                    Status::Stopped
                };
                finish(child, status, "its session ended", None, at, sink)?;
            }
        }
        self.evict_finished(at, sink)
    }

    fn on_run(&mut self, event: &Event, sink: &mut Sink<'_>) -> Result<(), PluginError> {
        let at = event.timestamp;
        let (run_id, session) = match &event.data {
            EventData::RunSample(s) => (&s.run_id, &s.session_id),
            EventData::RunLimit(l) => (&l.run_id, &l.session_id),
            EventData::RunExit(e) => (&e.run_id, &e.session_id),
            _ => return Ok(()),
        };
        if run_id.is_empty() {
            return Err(PluginError::new(format!(
                "a {} event without a run_id belongs to no coder",
                event.event_type()
            )));
        }
        let run = self.runs.get_or_insert(run_id, at);
        let coder_id = session
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| identity::run_coder_id(run_id));
        let linking = run.coder.as_deref() != Some(coder_id.as_str());
        run.coder = Some(coder_id.clone());
        let name = run.name.clone();
        let started = run.started;
        let session_id = session.clone().filter(|s| !s.is_empty());
        self.ensure(
            &coder_id,
            |_| {
                let fallback = name
                    .clone()
                    .unwrap_or_else(|| format!("run {}", short(run_id)));
                Coder::new(
                    coder_id.clone(),
                    fallback,
                    session_id.clone(),
                    started.min(at),
                )
            },
            at,
            sink,
        )?;
        let run = self.runs.get_or_insert(run_id, at);
        let Some(coder) = self.coders.get_mut(&coder_id) else {
            return Ok(());
        };
        if linking {
            // The run's name becomes the coder's name from now on.
            if let Some(name) = &run.name {
                coder.name.clone_from(name);
            }
        }
        let view = coder.run.get_or_insert_with(|| run.view.clone());
        match &event.data {
            EventData::RunSample(sample) => {
                view.samples += 1;
                view.rss_bytes = Some(sample.rss_bytes);
                view.cpu_percent = Some(sample.cpu_percent);
                view.processes = Some(sample.processes);
                if sample.cost_usd.is_some() {
                    coder.reported_cost_usd = sample.cost_usd;
                }
                sink.emit(
                    coder,
                    types::RESOURCE_USAGE,
                    at,
                    json!({
                        "run_id": sample.run_id,
                        "memory_mb": sample.rss_bytes / (1024 * 1024),
                        "rss_bytes": sample.rss_bytes,
                        "cpu_percent": sample.cpu_percent,
                        "cpu_ms": sample.cpu_ms,
                        "processes": sample.processes,
                        "read_bytes": sample.read_bytes,
                        "write_bytes": sample.write_bytes,
                        "file_count": sample.open_files,
                        "cost_usd": sample.cost_usd,
                    }),
                )?;
            }
            EventData::RunLimit(limit) => {
                view.limit = Some(limit.limit.clone());
                sink.emit(
                    coder,
                    types::RESOURCE_LIMIT,
                    at,
                    json!({
                        "run_id": limit.run_id,
                        "limit": limit.limit,
                        "observed": limit.observed,
                        "threshold": limit.threshold,
                    }),
                )?;
            }
            EventData::RunExit(exit) => {
                view.exit_code = exit.code;
                view.exit_signal = exit.signal;
                view.stopped_by.clone_from(&exit.stopped_by);
                self.runs.remove(run_id);
                if !coder.status.is_finished() {
                    let (status, reason) = match (&exit.stopped_by, exit.code, exit.signal) {
                        (Some(by), _, _) => (Status::Stopped, format!("stopped by {by}")),
                        (None, Some(0), _) => (Status::Completed, "exited with code 0".into()),
                        (None, Some(code), _) => {
                            (Status::Failed, format!("exited with code {code}"))
                        }
                        (None, None, Some(signal)) => {
                            (Status::Failed, format!("killed by signal {signal}"))
                        }
                        (None, None, None) => (Status::Failed, "exited".into()),
                    };
                    finish(coder, status, &reason, None, at, sink)?;
                    self.evict_finished(at, sink)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Forgets the least recently active live coder while more than [`MAX_LIVE`] are.
    fn evict_live(
        &mut self,
        keep: &str,
        at: Timestamp,
        sink: &mut Sink<'_>,
    ) -> Result<(), PluginError> {
        let live = self
            .coders
            .values()
            .filter(|c| !c.status.is_finished())
            .count();
        if live <= MAX_LIVE {
            return Ok(());
        }
        let oldest = self
            .coders
            .values()
            .filter(|c| !c.status.is_finished() && c.id != keep)
            .min_by_key(|c| c.touched)
            .map(|c| c.id.clone());
        if let Some(id) = oldest {
            self.counts.evicted_live += 1;
            self.forget(&id, "more live coders than the state keeps", at, sink)?;
        }
        Ok(())
    }

    /// Forgets the least recently active ended coder while more than [`MAX_FINISHED`] are.
    fn evict_finished(&mut self, at: Timestamp, sink: &mut Sink<'_>) -> Result<(), PluginError> {
        let finished = self
            .coders
            .values()
            .filter(|c| c.status.is_finished())
            .count();
        if finished <= MAX_FINISHED {
            return Ok(());
        }
        let oldest = self
            .coders
            .values()
            .filter(|c| c.status.is_finished())
            .min_by_key(|c| c.touched)
            .map(|c| c.id.clone());
        if let Some(id) = oldest {
            self.counts.evicted_finished += 1;
            self.forget(&id, "more ended coders than the state keeps", at, sink)?;
        }
        Ok(())
    }

    fn forget(
        &mut self,
        id: &str,
        reason: &str,
        at: Timestamp,
        sink: &mut Sink<'_>,
    ) -> Result<(), PluginError> {
        if let Some(mut coder) = self.coders.remove(id) {
            if let Some(done) = coder.calls.flush(sink.prices) {
                emit_call(&coder, done, sink)?;
            }
            sink.emit(
                &coder,
                types::DELETED,
                at,
                json!({
                    "previous_status": coder.status.as_str(),
                    "current_status": "deleted",
                    "reason": reason,
                }),
            )?;
        }
        Ok(())
    }
}

/// A paused coder resumes, an ended one starts again, a waiting one runs.
fn wake(
    coder: &mut Coder,
    data: &EventData,
    at: Timestamp,
    sink: &mut Sink<'_>,
) -> Result<(), PluginError> {
    match coder.status {
        Status::Paused => {
            coder.status = Status::Running;
            coder.reason = None;
            sink.emit(
                coder,
                types::RESUMED,
                at,
                json!({"previous_status": "paused", "current_status": "running"}),
            )
        }
        s if s.is_finished() => {
            if matches!(data, EventData::ToolResult(_)) {
                // A late result of a call made before the end is no new start.
                return Ok(());
            }
            let previous = s.as_str();
            coder.status = Status::Running;
            coder.ended = None;
            coder.reason = None;
            sink.emit(
                coder,
                types::STARTED,
                at,
                json!({
                    "previous_status": previous,
                    "current_status": "running",
                    "reason": "active again after its end",
                }),
            )
        }
        Status::Waiting => {
            coder.status = Status::Running;
            Ok(())
        }
        _ => Ok(()),
    }
}

fn pause(
    coder: &mut Coder,
    reason: &str,
    at: Timestamp,
    sink: &mut Sink<'_>,
) -> Result<(), PluginError> {
    if coder.status.is_finished() || coder.status == Status::Paused {
        return Ok(());
    }
    let previous = coder.status.as_str();
    coder.status = Status::Paused;
    coder.reason = Some(reason.to_owned());
    sink.emit(
        coder,
        types::PAUSED,
        at,
        json!({"previous_status": previous, "current_status": "paused", "reason": reason}),
    )
}

/// Ends a coder: its pending call is reported, then `completed`, `failed` or `stopped`
/// with its summary.
fn finish(
    coder: &mut Coder,
    status: Status,
    reason: &str,
    error: Option<String>,
    at: Timestamp,
    sink: &mut Sink<'_>,
) -> Result<(), PluginError> {
    if let Some(done) = coder.calls.flush(sink.prices) {
        emit_call(coder, done, sink)?;
    }
    let previous = coder.status.as_str();
    coder.status = status;
    coder.reason = Some(reason.to_owned());
    coder.ended = Some(at.max(coder.created));
    coder.last_activity = coder.last_activity.max(at);
    if status == Status::Failed {
        coder.failures += 1;
    }
    let event_type = match status {
        Status::Completed => types::COMPLETED,
        Status::Failed => types::FAILED,
        _ => types::STOPPED,
    };
    let mut data = coder.summary();
    data["previous_status"] = previous.into();
    data["current_status"] = status.as_str().into();
    data["reason"] = reason.into();
    if let Some(error) = error {
        data["error_message"] = error.into();
    }
    sink.emit(coder, event_type, at, data)
}

fn emit_call(coder: &Coder, done: DoneCall, sink: &mut Sink<'_>) -> Result<(), PluginError> {
    let call = &done.call;
    let usage = &call.usage;
    let (message_id, request_id) = call.key.clone().map_or((None, None), |(m, r)| {
        (Some(m), Some(r).filter(|r| !r.is_empty()))
    });
    sink.emit(
        coder,
        types::API_CALL,
        call.at,
        json!({
            "provider": "anthropic",
            "model": call.model,
            "tokens_used": usage.input_tokens + usage.output_tokens + usage.cache_creation_input_tokens() + usage.cache_read_input_tokens,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_creation_input_tokens": usage.cache_creation_input_tokens(),
            "cache_read_input_tokens": usage.cache_read_input_tokens,
            "output_final": call.output_final,
            "stop_reason": call.stop_reason,
            "message_id": message_id,
            "request_id": request_id,
            "cost_usd": done.cost_usd,
        }),
    )
}

fn workspace_events(
    coder: &mut Coder,
    effect: Effect,
    result: &str,
    at: Timestamp,
    sink: &mut Sink<'_>,
) -> Result<(), PluginError> {
    match effect {
        Effect::Write {
            tool,
            path,
            size,
            edit,
        } => {
            let created = !edit && workspace::write_created(result);
            let (event_type, operation, slot) = if created {
                (types::FILE_CREATED, "create", 0)
            } else {
                (types::FILE_MODIFIED, "modify", 1)
            };
            coder.files[slot] += 1;
            sink.emit(
                coder,
                event_type,
                at,
                json!({"operation": operation, "file_path": path, "file_size": size, "tool": tool}),
            )
        }
        Effect::Shell { deleted, syncs } => {
            for path in deleted {
                coder.files[2] += 1;
                sink.emit(
                    coder,
                    types::FILE_DELETED,
                    at,
                    json!({"operation": "delete", "file_path": path, "tool": "Bash"}),
                )?;
            }
            for (operation, command) in syncs {
                coder.files[3] += 1;
                sink.emit(
                    coder,
                    types::WORKSPACE_SYNC,
                    at,
                    json!({"operation": operation, "command": command}),
                )?;
            }
            Ok(())
        }
    }
}
