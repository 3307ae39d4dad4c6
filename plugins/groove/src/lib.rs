//! The groove open-world plugin: which failures of agent sessions are new, which keep
//! coming back across sessions (capability gaps), and what fixed them elsewhere.
//!
//! Reads the Claude taxonomy events of the host's event topic (`claude.tool_use`,
//! `claude.tool_result`, `session.end`, `claude.rate_limit`, `claude.interrupt`) and a
//! person's decisions (`groove.decision`), and writes into stream `groove.openworld`:
//! - topic `novelty`: `groove.novelty_detected` (a fingerprint never seen before) and
//!   `groove.cluster_updated` (a cluster failing in a new session);
//! - topic `gaps`: `groove.gap_created`, `groove.gap_status_changed` and
//!   `groove.solutions_generated`;
//! - topic `feedback`: `groove.strategy_feedback`.
//!
//! One job per module: [`fingerprint`] (what identifies a failure), [`clusters`]
//! (novelty and clusters), [`sessions`] (pending calls, the recovery window and its
//! evidence), [`evidence`], [`gaps`] (lifecycle and severity), [`solutions`],
//! [`feedback`], [`decision`] (a person's decisions as events), [`producer`] (the six
//! emit methods), [`hook`] (where each event goes), [`ids`] (stable hashes).
//!
//! Queries: `gaps [all]`, `gap ID`, `novelty [since]`, `clusters`, `suggest`, `stats`. The rules and
//! thresholds are in docs/PLUGINS.md. Depends on `vibes-events` and `vibes-plugin` only.

pub mod clusters;
pub mod decision;
pub mod evidence;
pub mod feedback;
pub mod fingerprint;
pub mod gaps;
pub mod hook;
pub mod ids;
pub mod producer;
pub mod sessions;
pub mod solutions;

use serde_json::{Value, json};
use vibes_events::{Filter, Timestamp};
use vibes_plugin::{Emitter, Input, Manifest, Plugin, PluginError, QueryArgs, QueryError};

pub use hook::OpenWorldHook;
pub use producer::{OPENWORLD_STREAM, OpenWorldProducer, topics, types};

use producer::{cluster_json, gap_json};

/// The plugin's name (its group is `plugin-groove`).
pub const NAME: &str = "groove";

/// Handled events between snapshots.
pub const SNAPSHOT_EVERY: u64 = 50_000;

/// The plugin; see the [crate docs](crate).
#[derive(Debug)]
pub struct Groove {
    hook: OpenWorldHook,
    snapshot_every: u64,
}

impl Default for Groove {
    fn default() -> Self {
        Self::new()
    }
}

impl Groove {
    /// An empty state.
    pub fn new() -> Self {
        Groove {
            hook: OpenWorldHook::default(),
            snapshot_every: SNAPSHOT_EVERY,
        }
    }

    /// Snapshotting every `n` handled events instead of [`SNAPSHOT_EVERY`] (tests of
    /// restarts from a snapshot).
    pub fn with_snapshot_every(n: u64) -> Self {
        Groove {
            snapshot_every: n,
            ..Self::new()
        }
    }

    /// The state.
    pub fn hook(&self) -> &OpenWorldHook {
        &self.hook
    }

    fn gap_detail(&self, id: &str) -> Result<Value, QueryError> {
        let gap = self
            .hook
            .gaps()
            .get(id)
            .ok_or_else(|| QueryError::NotFound(format!("no gap {id}")))?;
        let cluster = self.hook.clusters().get(&gap.cluster_id);
        let mut value = gap_json(gap, cluster);
        value["cluster"] = cluster.map_or(Value::Null, cluster_json);
        value["solutions"] = json!(gap.solutions);
        value["clean_streak"] = json!(gap.clean_streak);
        value["applied"] = gap.applied.as_ref().map_or(Value::Null, |a| {
            json!({"solution_id": a.solution_id, "at": a.at, "last_adjustment": a.last_adjustment})
        });
        Ok(value)
    }
}

impl Plugin for Groove {
    fn manifest(&self) -> Manifest {
        Manifest::new(
            NAME,
            "novel and recurring failures, capability gaps and their solutions",
        )
        .version(1)
        .stream(OPENWORLD_STREAM)
        .filter(Filter::all().types([
            "claude.tool_use",
            "claude.tool_result",
            "session.end",
            "claude.rate_limit",
            "claude.interrupt",
            decision::DECISION_TYPE,
        ]))
        .output(topics::NOVELTY)
        .output(topics::GAPS)
        .output(topics::FEEDBACK)
        .query("gaps", "open gaps (all: every gap), worst first", &["all"])
        .query("gap", "one gap with its cluster and solutions", &["id"])
        .query(
            "novelty",
            "fingerprints first seen since a time",
            &["since"],
        )
        .query(
            "suggest",
            "settings.json rules and CLAUDE.md notes for open gaps",
            &[],
        )
        .query(
            "clusters",
            "every failure cluster with its counts and recoveries",
            &[],
        )
        .query("stats", "what was folded in, skipped and kept", &[])
        .snapshot_every(self.snapshot_every)
    }

    fn handle(&mut self, input: &Input<'_>, out: &mut Emitter) -> Result<(), PluginError> {
        let mut producer = OpenWorldProducer::new(out);
        self.hook.on_event(input.event, &mut producer)
    }

    fn query(&self, name: &str, args: &QueryArgs) -> Result<Value, QueryError> {
        match name {
            "gaps" => {
                let all = match args.get("all") {
                    None | Some("false") => false,
                    Some("all" | "true") => true,
                    Some(other) => {
                        return Err(QueryError::BadArgument(format!(
                            "gaps takes `all` or nothing, not {other:?}"
                        )));
                    }
                };
                let mut gaps: Vec<_> = self
                    .hook
                    .gaps()
                    .values()
                    .filter(|g| all || g.status.is_open())
                    .collect();
                gaps.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.id.cmp(&b.id)));
                let gaps: Vec<Value> = gaps
                    .into_iter()
                    .map(|g| {
                        let mut v = gap_json(g, self.hook.clusters().get(&g.cluster_id));
                        v["solutions"] = json!(g.solutions.len());
                        v
                    })
                    .collect();
                Ok(json!({ "gaps": gaps }))
            }
            "gap" => self.gap_detail(args.require("id")?),
            "novelty" => {
                let since = match args.get("since") {
                    Some(s) => Some(s.parse::<Timestamp>().map_err(|e| {
                        QueryError::BadArgument(format!("since {s:?} is no RFC 3339 time: {e}"))
                    })?),
                    None => None,
                };
                let mut known: Vec<_> = self
                    .hook
                    .clusters()
                    .known()
                    .filter(|k| since.is_none_or(|t| k.first_seen >= t))
                    .collect();
                known.sort_by(|a, b| {
                    a.first_seen
                        .cmp(&b.first_seen)
                        .then(a.fingerprint.id.cmp(&b.fingerprint.id))
                });
                let novelty: Vec<Value> = known
                    .into_iter()
                    .map(|k| {
                        json!({
                            "fingerprint": k.fingerprint,
                            "cluster_id": k.cluster_id,
                            "first_seen": k.first_seen,
                            "first_session": k.first_session,
                            "seen": k.seen,
                        })
                    })
                    .collect();
                Ok(json!({ "novelty": novelty }))
            }
            "clusters" => {
                let clusters: Vec<Value> = self
                    .hook
                    .clusters()
                    .iter()
                    .map(|c| {
                        let mut v = cluster_json(c);
                        v["recoveries"] = json!(c.recoveries);
                        v["first_seen"] = json!(c.first_seen);
                        v["last_seen"] = json!(c.last_seen);
                        v
                    })
                    .collect();
                Ok(json!({ "clusters": clusters }))
            }
            "suggest" => {
                let mut rules = Vec::new();
                let mut notes = Vec::new();
                let mut other = Vec::new();
                for gap in self.hook.gaps().values().filter(|g| g.status.is_open()) {
                    for s in &gap.solutions {
                        let item = json!({"gap_id": gap.id, "solution_id": s.id, "text": s.text, "title": s.title});
                        match s.target.as_str() {
                            ".claude/settings.json" => rules.push(s.text.clone()),
                            "CLAUDE.md" => notes.push(item),
                            _ => other.push(item),
                        }
                    }
                }
                rules.sort();
                rules.dedup();
                Ok(json!({
                    "settings_json": { "permissions": { "allow": rules } },
                    "claude_md": notes,
                    "other": other,
                }))
            }
            "stats" => Ok(json!({
                "counts": self.hook.counts(),
                "state": self.hook.sizes(),
                "state_bytes": self.save().map_or(0, |b| b.len()),
            })),
            other => Err(QueryError::BadArgument(format!("no query {other}"))),
        }
    }

    fn save(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(&self.hook).ok()
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        let mut hook: OpenWorldHook = serde_json::from_slice(bytes)
            .map_err(|e| PluginError::new(format!("the groove snapshot does not decode: {e}")))?;
        hook.reindex();
        self.hook = hook;
        Ok(())
    }
}
