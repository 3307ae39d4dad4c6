//! [`OpenWorldProducer`]: writes the six open-world events into the topics of stream
//! `groove.openworld`, through the plugin runtime's emitter (ids derived from the
//! input, stored before the input is committed).

use serde_json::{Value, json};
use vibes_plugin::{Emitter, PluginError};

use crate::clusters::Cluster;
use crate::feedback::Feedback;
use crate::fingerprint::Fingerprint;
use crate::gaps::{Change, Gap};
use crate::solutions::Solution;

/// The stream every groove output lives in.
pub const OPENWORLD_STREAM: &str = "groove.openworld";

/// The topics of [`OPENWORLD_STREAM`].
pub mod topics {
    /// Novelty and cluster updates.
    pub const NOVELTY: &str = "novelty";
    /// Gap lifecycle and solutions.
    pub const GAPS: &str = "gaps";
    /// Strategy feedback.
    pub const FEEDBACK: &str = "feedback";
}

/// The event types, one per emit method.
pub mod types {
    /// A fingerprint never seen before.
    pub const NOVELTY_DETECTED: &str = "groove.novelty_detected";
    /// A cluster failed in a new session.
    pub const CLUSTER_UPDATED: &str = "groove.cluster_updated";
    /// A cluster opened a gap.
    pub const GAP_CREATED: &str = "groove.gap_created";
    /// A gap changed status.
    pub const GAP_STATUS_CHANGED: &str = "groove.gap_status_changed";
    /// A gap's solutions changed.
    pub const SOLUTIONS_GENERATED: &str = "groove.solutions_generated";
    /// An applied solution's effect.
    pub const STRATEGY_FEEDBACK: &str = "groove.strategy_feedback";
}

/// Writes open-world events for one handled input.
#[derive(Debug)]
pub struct OpenWorldProducer<'a> {
    out: &'a mut Emitter,
}

/// A cluster as events and queries show it.
pub fn cluster_json(cluster: &Cluster) -> Value {
    json!({
        "id": cluster.id,
        "tool": cluster.tool,
        "head": cluster.head,
        "kind": cluster.kind,
        "sessions": cluster.sessions(),
        "failures": cluster.failures,
        "recovered": cluster.recovered,
        "unrecovered": cluster.unrecovered,
        "fingerprints": cluster.fingerprints,
        "examples": cluster.examples,
    })
}

/// A gap as events and queries show it, with its cluster's counts.
pub fn gap_json(gap: &Gap, cluster: Option<&Cluster>) -> Value {
    json!({
        "id": gap.id,
        "cluster_id": gap.cluster_id,
        "tool": gap.tool,
        "head": gap.head,
        "kind": gap.kind,
        "status": gap.status,
        "severity": gap.severity,
        "sessions": cluster.map_or(0, Cluster::sessions),
        "failures": cluster.map_or(0, |c| c.failures),
        "unrecovered": cluster.map_or(0, |c| c.unrecovered),
        "example": cluster.and_then(|c| c.examples.first()),
        "created": gap.created,
        "updated": gap.updated,
    })
}

impl<'a> OpenWorldProducer<'a> {
    /// A producer writing through `out`.
    pub fn new(out: &'a mut Emitter) -> Self {
        OpenWorldProducer { out }
    }

    fn emit(&mut self, topic: &str, event_type: &str, fields: Value) -> Result<(), PluginError> {
        self.out.emit(topic, event_type, fields)
    }

    /// `groove.novelty_detected`: `fingerprint` was never seen before.
    pub fn emit_novelty_detected(
        &mut self,
        fingerprint: &Fingerprint,
        cluster_id: &str,
        session_id: &str,
    ) -> Result<(), PluginError> {
        self.emit(
            topics::NOVELTY,
            types::NOVELTY_DETECTED,
            json!({ "fingerprint": fingerprint, "cluster_id": cluster_id, "session_id": session_id }),
        )
    }

    /// `groove.cluster_updated`: `cluster` failed in a session it had not failed in.
    pub fn emit_cluster_updated(
        &mut self,
        cluster: &Cluster,
        session_id: &str,
    ) -> Result<(), PluginError> {
        self.emit(
            topics::NOVELTY,
            types::CLUSTER_UPDATED,
            json!({ "cluster": cluster_json(cluster), "session_id": session_id }),
        )
    }

    /// `groove.gap_created`.
    pub fn emit_gap_created(&mut self, gap: &Gap, cluster: &Cluster) -> Result<(), PluginError> {
        self.emit(
            topics::GAPS,
            types::GAP_CREATED,
            json!({ "gap": gap_json(gap, Some(cluster)) }),
        )
    }

    /// `groove.gap_status_changed`.
    pub fn emit_gap_status_changed(&mut self, change: &Change) -> Result<(), PluginError> {
        self.emit(
            topics::GAPS,
            types::GAP_STATUS_CHANGED,
            json!({
                "gap_id": change.gap_id,
                "old": change.old,
                "new": change.new,
                "reason": change.reason,
            }),
        )
    }

    /// `groove.solutions_generated`.
    pub fn emit_solutions_generated(
        &mut self,
        gap_id: &str,
        solutions: &[Solution],
    ) -> Result<(), PluginError> {
        self.emit(
            topics::GAPS,
            types::SOLUTIONS_GENERATED,
            json!({ "gap_id": gap_id, "solutions": solutions }),
        )
    }

    /// `groove.strategy_feedback`: the effect of the applied solution `learning_id`.
    pub fn emit_strategy_feedback(
        &mut self,
        learning_id: &str,
        gap_id: &str,
        feedback: &Feedback,
    ) -> Result<(), PluginError> {
        self.emit(
            topics::FEEDBACK,
            types::STRATEGY_FEEDBACK,
            json!({
                "learning_id": learning_id,
                "gap_id": gap_id,
                "adjustment": feedback.adjustment,
                "before": feedback.before,
                "after": feedback.after,
                "sessions_after": feedback.sessions_after,
            }),
        )
    }
}
