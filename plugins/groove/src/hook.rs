//! [`OpenWorldHook`]: the whole state of the plugin, and where each input event goes
//! (fingerprinting, novelty, clusters, recovery, gaps, solutions, feedback,
//! decisions), emitting through the [`OpenWorldProducer`] at each point.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vibes_events::{Event, EventData, Timestamp};
use vibes_plugin::PluginError;

use crate::clusters::Clusters;
use crate::decision;
use crate::evidence;
use crate::feedback;
use crate::fingerprint::{command_head, fingerprint};
use crate::gaps::{Change, GAP_SESSIONS, Gap, GapStatus};
use crate::ids;
use crate::producer::OpenWorldProducer;
use crate::sessions::{Ended, Sessions};
use crate::solutions;

/// Tool calls, results and decisions remembered to recognise a second delivery.
pub const MAX_SEEN: usize = 65_536;

/// What was folded in and what was skipped, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Events handled.
    pub events: u64,
    /// Tool calls.
    pub tool_uses: u64,
    /// Tool results.
    pub results: u64,
    /// Failing results.
    pub failures: u64,
    /// Failures a later call fixed.
    pub recoveries: u64,
    /// Sessions ended.
    pub sessions_ended: u64,
    /// Rate-limit reports (never failures).
    pub rate_limits: u64,
    /// Interruptions (never failures).
    pub interrupts: u64,
    /// Person decisions applied.
    pub decisions: u64,
    /// Results whose call was never seen (fingerprinted with the result's tool name).
    pub orphan_results: u64,
    /// Calls, results and decisions delivered again, skipped.
    pub duplicates: u64,
}

/// Recently seen keys, bounded: the oldest is forgotten first. Only the order is
/// saved; the set is its index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Seen {
    order: VecDeque<u64>,
    #[serde(skip)]
    set: HashSet<u64, BuildHasherDefault<KeyHasher>>,
}

/// The keys are XXH3 hashes already: the set's hasher takes them as they are.
#[derive(Debug, Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; any other input still hashes, just slowly.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }
}

impl Seen {
    fn contains(&self, key: u64) -> bool {
        self.set.contains(&key)
    }

    fn insert(&mut self, key: u64) {
        if self.set.insert(key) {
            self.order.push_back(key);
            if self.order.len() > MAX_SEEN
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }

    fn reindex(&mut self) {
        self.set = self.order.iter().copied().collect();
    }
}

/// The plugin's state; see the [crate docs](crate).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpenWorldHook {
    clusters: Clusters,
    sessions: Sessions,
    gaps: BTreeMap<String, Gap>,
    seen: Seen,
    seq: u64,
    counts: Counts,
}

fn session_of<'a>(explicit: Option<&'a str>, event: &'a Event) -> &'a str {
    explicit.or(event.partition_key()).unwrap_or("unknown")
}

impl OpenWorldHook {
    /// Rebuilds what snapshots leave out.
    pub fn reindex(&mut self) {
        self.seen.reindex();
    }

    /// Folds in `event`, emitting through `p`. An error (a malformed decision, or one
    /// about an unknown gap) changes nothing.
    pub fn on_event(
        &mut self,
        event: &Event,
        p: &mut OpenWorldProducer<'_>,
    ) -> Result<(), PluginError> {
        match &event.data {
            EventData::ToolUse(u) => {
                let session = session_of(u.session_id.as_deref(), event);
                if self.first_time(&["use", session, &u.tool_id]) {
                    self.on_tool_use(session, &u.tool_id, &u.tool_name, &u.input, p)?;
                }
            }
            EventData::ToolResult(r) => {
                let session = session_of(r.session_id.as_deref(), event);
                if self.first_time(&["result", session, &r.tool_id]) {
                    self.on_tool_result(event, session, r, p)?;
                }
            }
            EventData::SessionEnd(end) => {
                if let Some(ended) = self.sessions.end(&end.session_id) {
                    self.counts.sessions_ended += 1;
                    self.on_ended(ended, event.timestamp, p)?;
                }
            }
            EventData::RateLimit(_) => self.counts.rate_limits += 1,
            EventData::Interrupt(_) => self.counts.interrupts += 1,
            EventData::Unknown { .. } => {
                if let Some(d) = decision::read(event).map_err(PluginError::new)? {
                    let key = ids::hash64(&["decision", &event.id.to_string()]);
                    if self.seen.contains(key) {
                        self.counts.duplicates += 1;
                    } else {
                        self.on_decision(&d, event.timestamp, p)?;
                        self.seen.insert(key);
                    }
                }
            }
            _ => {}
        }
        self.seq += 1;
        self.counts.events += 1;
        for ended in self.sessions.evict() {
            self.on_ended(ended, event.timestamp, p)?;
        }
        let gaps = &self.gaps;
        self.clusters.evict(|c| gaps.contains_key(&ids::gap_id(c)));
        Ok(())
    }

    fn first_time(&mut self, parts: &[&str]) -> bool {
        let key = ids::hash64(parts);
        if self.seen.contains(key) {
            self.counts.duplicates += 1;
            return false;
        }
        self.seen.insert(key);
        true
    }

    fn on_tool_use(
        &mut self,
        session: &str,
        tool_id: &str,
        tool: &str,
        input: &Value,
        p: &mut OpenWorldProducer<'_>,
    ) -> Result<(), PluginError> {
        self.counts.tool_uses += 1;
        let head = command_head(tool, input);
        let evidence = evidence::describe(tool, input, &head);
        let closed =
            self.sessions
                .call(session, tool_id, tool, &head, evidence.as_deref(), self.seq);
        for cluster in closed {
            self.on_unrecovered(&cluster, p)?;
        }
        Ok(())
    }

    fn on_tool_result(
        &mut self,
        event: &Event,
        session: &str,
        r: &vibes_events::ToolResult,
        p: &mut OpenWorldProducer<'_>,
    ) -> Result<(), PluginError> {
        self.counts.results += 1;
        let (tool, head) = match self.sessions.take_pending(session, &r.tool_id) {
            Some(call) => call,
            None => {
                self.counts.orphan_results += 1;
                (
                    r.tool_name.clone().unwrap_or_else(|| "unknown".to_owned()),
                    String::new(),
                )
            }
        };
        let at = event.timestamp;
        if !r.is_error {
            for recovery in self.sessions.succeeded(session, &tool, &head, self.seq) {
                self.counts.recoveries += 1;
                self.clusters.recovered(&recovery.cluster_id, &recovery.how);
                self.refresh_solutions(&recovery.cluster_id, p)?;
            }
            return Ok(());
        }
        self.counts.failures += 1;
        let fp = fingerprint(&tool, &head, &r.content);
        let cluster_id = ids::cluster_id(&fp.tool, &fp.head, fp.kind);
        let observed = self.clusters.observe(&fp, session, at, self.seq);
        if observed.novel {
            p.emit_novelty_detected(&fp, &cluster_id, session)?;
        }
        let Some(cluster) = self.clusters.get(&cluster_id) else {
            return Ok(());
        };
        if observed.new_session {
            p.emit_cluster_updated(cluster, session)?;
        }
        let closed = self
            .sessions
            .failed(session, &cluster_id, &tool, &head, self.seq);
        let gap_id = ids::gap_id(&cluster_id);
        match self.gaps.get_mut(&gap_id) {
            Some(gap) => {
                let change = gap.on_failure(cluster, at);
                self.report(change, p)?;
                self.refresh_solutions(&cluster_id, p)?;
            }
            None if cluster.sessions() >= GAP_SESSIONS && cluster.kind.opens_gaps() => {
                let mut gap = Gap::open(cluster, at);
                // The sessions that failed before and have ended count as having run
                // it and failed; those still live (this one too) count when they end.
                let live = self.sessions.live_failed(&cluster_id);
                gap.sessions_ran = cluster.sessions().saturating_sub(live);
                gap.sessions_failed = gap.sessions_ran;
                p.emit_gap_created(&gap, cluster)?;
                self.gaps.insert(gap_id, gap);
                self.refresh_solutions(&cluster_id, p)?;
            }
            None => {}
        }
        if let Some(closed) = closed {
            self.on_unrecovered(&closed, p)?;
        }
        Ok(())
    }

    fn on_unrecovered(
        &mut self,
        cluster_id: &str,
        p: &mut OpenWorldProducer<'_>,
    ) -> Result<(), PluginError> {
        self.clusters.unrecovered(cluster_id);
        let (Some(cluster), Some(gap)) = (
            self.clusters.get(cluster_id),
            self.gaps.get_mut(&ids::gap_id(cluster_id)),
        ) else {
            return Ok(());
        };
        let at = cluster.last_seen;
        let change = gap.on_unrecovered(cluster, at);
        self.report(change, p)
    }

    fn on_ended(
        &mut self,
        ended: Ended,
        at: Timestamp,
        p: &mut OpenWorldProducer<'_>,
    ) -> Result<(), PluginError> {
        for cluster in &ended.unrecovered {
            self.on_unrecovered(cluster, p)?;
        }
        if !ended.ended {
            return Ok(());
        }
        let mut changes = Vec::new();
        let mut feedback = Vec::new();
        for gap in self.gaps.values_mut() {
            if !ended.ran.contains(&(gap.tool.clone(), gap.head.clone())) {
                continue;
            }
            let failed = ended.failed.contains(&gap.cluster_id);
            changes.push(gap.on_session_end(failed, at));
            if gap.status == GapStatus::Dismissed {
                continue;
            }
            let (ran, failed) = (gap.sessions_ran, gap.sessions_failed);
            if let Some(applied) = gap.applied.as_mut()
                && let Some(fb) = feedback::due(applied, ran, failed)
            {
                applied.last_adjustment = Some(fb.adjustment);
                feedback.push((applied.solution_id.clone(), gap.id.clone(), fb));
            }
        }
        for change in changes {
            self.report(change, p)?;
        }
        for (learning, gap, fb) in feedback {
            p.emit_strategy_feedback(&learning, &gap, &fb)?;
        }
        Ok(())
    }

    fn on_decision(
        &mut self,
        d: &decision::Decision,
        at: Timestamp,
        p: &mut OpenWorldProducer<'_>,
    ) -> Result<(), PluginError> {
        let gap = self.gaps.get_mut(&d.gap_id).ok_or_else(|| {
            PluginError::new(format!("groove.decision names no known gap {}", d.gap_id))
        })?;
        let change = gap
            .decide(d.action, d.solution_id.as_deref(), at)
            .map_err(PluginError::new)?;
        self.counts.decisions += 1;
        let cluster_id = gap.cluster_id.clone();
        self.report(change, p)?;
        self.refresh_solutions(&cluster_id, p)
    }

    fn report(
        &mut self,
        change: Option<Change>,
        p: &mut OpenWorldProducer<'_>,
    ) -> Result<(), PluginError> {
        match change {
            Some(change) => p.emit_gap_status_changed(&change),
            None => Ok(()),
        }
    }

    /// Regenerates the solutions of the gap of `cluster_id` (if it has one and it is
    /// not dismissed) and emits them when the set changed.
    fn refresh_solutions(
        &mut self,
        cluster_id: &str,
        p: &mut OpenWorldProducer<'_>,
    ) -> Result<(), PluginError> {
        let (Some(cluster), Some(gap)) = (
            self.clusters.get(cluster_id),
            self.gaps.get_mut(&ids::gap_id(cluster_id)),
        ) else {
            return Ok(());
        };
        if gap.status == GapStatus::Dismissed {
            return Ok(());
        }
        let fresh = solutions::generate(gap, cluster);
        let changed = !solutions::same(&fresh, &gap.solutions);
        gap.solutions = fresh;
        if changed {
            p.emit_solutions_generated(&gap.id, &gap.solutions)?;
        }
        Ok(())
    }

    /// The state's parts, for queries.
    pub fn clusters(&self) -> &Clusters {
        &self.clusters
    }

    /// Every gap, by id.
    pub fn gaps(&self) -> &BTreeMap<String, Gap> {
        &self.gaps
    }

    /// What was folded in and skipped.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Sizes of the state, for the stats query.
    pub fn sizes(&self) -> Value {
        let (fingerprints, clusters) = self.clusters.len();
        let (live, pending) = self.sessions.len();
        json!({
            "fingerprints": fingerprints,
            "clusters": clusters,
            "gaps": self.gaps.len(),
            "live_sessions": live,
            "pending_calls": pending,
            "seen_keys": self.seen.order.len(),
            "evicted": {
                "fingerprints": self.clusters.evicted_fingerprints,
                "clusters": self.clusters.evicted_clusters,
                "sessions": self.sessions.evicted,
                "pending_calls": self.sessions.dropped_pending,
            },
        })
    }
}
