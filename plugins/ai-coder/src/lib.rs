//! The ai-coder plugin: seed 002's AI-coder events and aggregator, derived from real
//! agent sessions and supervised runs.
//!
//! A coder is an agent instance: a Claude session, each of its subagents a child coder
//! of it, and a `vibes run` that never reported a session. From the session, Claude and
//! run events of the host's event topic the plugin derives the twenty coder event
//! types ([`types`]; the table is in [`derive`]) into topic `ai-coder/events`, and
//! keeps the aggregator ([`aggregator`]) as its state: bounded history, statistics over
//! event time, the failure alert, completion metrics and system warnings, which it
//! writes into `ai-coder/alerts`. Coder events other producers write into the event
//! topic (`ai_coder.*`) are validated and recorded too; an invalid one is a dead
//! letter. Every coder's status (running, waiting, paused, completed, failed, stopped;
//! model, elapsed, turns, tool calls, errors, tokens, cost and burn rate) is in
//! [`coder`]; API calls are priced with the [`Prices`] the host passes in.
//!
//! One job per module: [`types`] (names and validation), [`identity`] (which coder),
//! [`derive`] (the mapping), [`coder`] (status), [`calls`] (calls counted once),
//! [`todos`] (todo progress), [`workspace`] (file and shell effects), [`runs`],
//! [`aggregator`], [`filter`] (history filters and the subscription cursor),
//! [`prices`], [`snapshot`] (the saved state).
//!
//! Queries: `history [coder type since until after limit children]`, `stats`,
//! `coders [all]`, `coder ID`, `alerts [type since]`. Depends on `vibes-events` and
//! `vibes-plugin` only.

pub mod aggregator;
pub mod calls;
pub mod coder;
pub mod derive;
pub mod filter;
pub mod identity;
pub mod prices;
pub mod runs;
pub mod snapshot;
pub mod todos;
pub mod types;
pub mod workspace;

use std::sync::Arc;

use serde_json::{Value, json};
use vibes_events::{Filter, Timestamp, TypePattern};
use vibes_plugin::{Emitter, Input, Manifest, Plugin, PluginError, QueryArgs, QueryError};

pub use aggregator::Aggregator;
pub use derive::Deriver;
pub use filter::HistoryFilter;
pub use prices::{NoPrices, Prices, Tokens};
pub use types::CoderEvent;

use derive::Sink;

/// The plugin's name and stream (its group is `plugin-ai-coder`).
pub const NAME: &str = "ai-coder";

/// Handled events between snapshots.
pub const SNAPSHOT_EVERY: u64 = 50_000;

/// Events the `coder ID` query shows of the coder's history.
const RECENT: usize = 20;

/// The plugin; see the [crate docs](crate).
#[derive(Debug, Clone)]
pub struct AiCoder {
    deriver: Deriver,
    aggregator: Aggregator,
    prices: Arc<dyn Prices>,
    snapshot_every: u64,
}

impl Default for AiCoder {
    fn default() -> Self {
        Self::new()
    }
}

impl AiCoder {
    /// No prices (a coder's cost is what its agent reported), the default history.
    pub fn new() -> Self {
        Self::with_prices(Arc::new(NoPrices))
    }

    /// Pricing every API call with `prices`.
    pub fn with_prices(prices: Arc<dyn Prices>) -> Self {
        AiCoder {
            deriver: Deriver::default(),
            aggregator: Aggregator::default(),
            prices,
            snapshot_every: SNAPSHOT_EVERY,
        }
    }

    /// Keeping the newest `n` events in the history.
    #[must_use]
    pub fn history(mut self, n: usize) -> Self {
        self.aggregator = Aggregator::new(n);
        self
    }

    /// Snapshotting every `n` handled events.
    #[must_use]
    pub fn snapshot_every(mut self, n: u64) -> Self {
        self.snapshot_every = n;
        self
    }

    /// The coders and their derivation.
    pub fn deriver(&self) -> &Deriver {
        &self.deriver
    }

    /// The aggregator.
    pub fn aggregator(&self) -> &Aggregator {
        &self.aggregator
    }

    fn coders(&self, all: bool) -> Value {
        let mut coders: Vec<_> = self
            .deriver
            .coders()
            .values()
            .filter(|c| all || !c.status.is_finished())
            .collect();
        coders.sort_by(|a, b| {
            a.status
                .is_finished()
                .cmp(&b.status.is_finished())
                .then(b.last_activity.cmp(&a.last_activity))
                .then(a.id.cmp(&b.id))
        });
        let views: Vec<Value> = coders.iter().map(|c| c.view(&*self.prices)).collect();
        json!({ "coders": views })
    }

    fn coder(&self, id: &str) -> Result<Value, QueryError> {
        let coder = self
            .deriver
            .coders()
            .get(id)
            .ok_or_else(|| QueryError::NotFound(format!("no coder {id}")))?;
        let mut view = coder.view(&*self.prices);
        let filter = HistoryFilter {
            coder: Some(id.to_owned()),
            ..HistoryFilter::default()
        };
        let events = self.aggregator.events(&filter);
        let recent: Vec<Value> = events
            .iter()
            .rev()
            .take(RECENT)
            .rev()
            .map(|e| e.to_json())
            .collect();
        view["events"] = json!(self.aggregator.coder_events(id));
        view["recent"] = json!(recent);
        view["pending_tools"] = json!(coder.pending_tools.len());
        view["forgotten_tools"] = json!(coder.forgotten_tools);
        Ok(view)
    }

    fn history_query(&self, args: &QueryArgs) -> Result<Value, QueryError> {
        let filter = HistoryFilter::from_args(args)?;
        let mut events = self.aggregator.events(&filter);
        if let Some(limit) = filter.limit {
            events.truncate(limit);
        }
        let oldest = self.aggregator.history().next().map(|e| e.seq);
        // The cursor moved past events the history no longer holds.
        let missed = match (filter.after, oldest) {
            (Some(after), Some(oldest)) => after + 1 < oldest,
            _ => false,
        };
        let next = match (events.last(), filter.limit) {
            (Some(last), Some(_)) => last.seq,
            _ => self.aggregator.last_seq(),
        };
        let events: Vec<Value> = events.iter().map(|e| e.to_json()).collect();
        Ok(json!({
            "events": events,
            "count": events.len(),
            "next": next,
            "missed": missed,
        }))
    }

    fn alerts_query(&self, args: &QueryArgs) -> Result<Value, QueryError> {
        let pattern = args.get("type").map(TypePattern::new);
        let since = args
            .get("since")
            .map(|s| {
                s.parse::<Timestamp>().map_err(|e| {
                    QueryError::BadArgument(format!("since {s:?} is no RFC 3339 time: {e}"))
                })
            })
            .transpose()?;
        let alerts: Vec<Value> = self
            .aggregator
            .alerts()
            .filter(|a| pattern.as_ref().is_none_or(|p| p.matches(&a.event_type)))
            .filter(|a| since.is_none_or(|s| a.timestamp >= s))
            .map(|a| {
                let mut v = a.to_json();
                if let Value::Object(map) = &mut v {
                    map.remove("seq");
                }
                v
            })
            .collect();
        Ok(json!({ "alerts": alerts }))
    }
}

impl Plugin for AiCoder {
    fn manifest(&self) -> Manifest {
        Manifest::new(
            NAME,
            "coder events from agent sessions and runs; the coder aggregator",
        )
        .version(1)
        .filter(Filter::all().types([
            "session.start",
            "session.end",
            "claude.text",
            "claude.tool_use",
            "claude.tool_result",
            "claude.api_call",
            "claude.api_error",
            "claude.rate_limit",
            "claude.turn_duration",
            "claude.interrupt",
            "run.*",
            "ai_coder.*",
        ]))
        .output(types::topics::EVENTS)
        .output(types::topics::ALERTS)
        .query(
            "history",
            "coder events, newest N kept; filters coder, type, since, until; after=SEQ follows a cursor",
            &["coder", "type", "since", "until", "after", "limit", "children"],
        )
        .query(
            "stats",
            "totals, by type, by coder, last event, events per minute (event time)",
            &[],
        )
        .query("coders", "live coders' status (all: ended ones too)", &["all"])
        .query("coder", "one coder's status and its latest events", &["id"])
        .query(
            "alerts",
            "failure alerts, completion metrics, system warnings",
            &["type", "since"],
        )
        .snapshot_every(self.snapshot_every)
    }

    fn handle(&mut self, input: &Input<'_>, out: &mut Emitter) -> Result<(), PluginError> {
        let mut sink = Sink {
            aggregator: &mut self.aggregator,
            out,
            prices: &*self.prices,
        };
        self.deriver.handle(input.event, &mut sink)
    }

    fn query(&self, name: &str, args: &QueryArgs) -> Result<Value, QueryError> {
        match name {
            "history" => self.history_query(args),
            "stats" => {
                let mut stats = self.aggregator.stats();
                let finished = self
                    .deriver
                    .coders()
                    .values()
                    .filter(|c| c.status.is_finished())
                    .count();
                stats["derived"] = json!(self.deriver.counts());
                stats["state"] = json!({
                    "coders": self.deriver.coders().len(),
                    "finished_coders": finished,
                    "runs": self.deriver.runs().len(),
                    "state_bytes": self.save().map_or(0, |b| b.len()),
                    "prices": self.prices.fingerprint(),
                });
                Ok(stats)
            }
            "coders" => {
                let all = match args.get("all") {
                    None | Some("false") => false,
                    Some("all" | "true") => true,
                    Some(other) => {
                        return Err(QueryError::BadArgument(format!(
                            "coders takes `all` or nothing, not {other:?}"
                        )));
                    }
                };
                Ok(self.coders(all))
            }
            "coder" => self.coder(args.require("id")?),
            "alerts" => self.alerts_query(args),
            other => Err(QueryError::BadArgument(format!("no query {other}"))),
        }
    }

    fn save(&self) -> Option<Vec<u8>> {
        snapshot::save(&self.deriver, &self.aggregator, &*self.prices)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        let (deriver, aggregator) = snapshot::restore(bytes, &*self.prices)?;
        self.deriver = deriver;
        self.aggregator = aggregator;
        Ok(())
    }
}
