//! Capability gaps: a cluster that keeps failing across sessions, with its lifecycle
//! (detected, confirmed, in progress, resolved, reopened, dismissed) and severity.

use serde::{Deserialize, Serialize};
use vibes_events::Timestamp;

use crate::clusters::Cluster;
use crate::fingerprint::ErrorKind;
use crate::ids;
use crate::solutions::Solution;

/// Distinct sessions a cluster must fail in to open a gap.
pub const GAP_SESSIONS: u64 = 3;
/// Distinct sessions that confirm a detected gap.
pub const CONFIRM_SESSIONS: u64 = 5;
/// Unrecovered failures that confirm a detected gap.
pub const CONFIRM_UNRECOVERED: u64 = 3;
/// Clean sessions in a row (they ran the tool and head and it never failed) that
/// resolve a gap.
pub const RESOLVE_CLEAN_SESSIONS: u64 = 3;

/// Where a gap is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapStatus {
    /// Opened: the cluster failed in [`GAP_SESSIONS`] sessions.
    Detected,
    /// More sessions, or failures that stayed unrecovered.
    Confirmed,
    /// A person applied a solution.
    InProgress,
    /// Clean sessions since, or a person said so.
    Resolved,
    /// Failed again after being resolved.
    Reopened,
    /// A person dismissed it: it stays quiet until a person reopens it.
    Dismissed,
}

impl GapStatus {
    /// Its name, as events and queries spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            GapStatus::Detected => "detected",
            GapStatus::Confirmed => "confirmed",
            GapStatus::InProgress => "in_progress",
            GapStatus::Resolved => "resolved",
            GapStatus::Reopened => "reopened",
            GapStatus::Dismissed => "dismissed",
        }
    }

    /// Whether the gap still needs attention.
    pub fn is_open(self) -> bool {
        !matches!(self, GapStatus::Resolved | GapStatus::Dismissed)
    }
}

/// How bad a gap is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Few sessions, mostly recovered.
    Low,
    /// At least [`CONFIRM_SESSIONS`] sessions, or half its failures unrecovered.
    Medium,
    /// Both of the above, or at least 10 sessions.
    High,
    /// At least 10 sessions and half its failures unrecovered.
    Critical,
}

/// The severity of a gap over `cluster`: from its sessions and the share of its
/// failures left unrecovered.
pub fn severity(cluster: &Cluster) -> Severity {
    let many = cluster.sessions() >= CONFIRM_SESSIONS;
    let lots = cluster.sessions() >= 10;
    let stuck = cluster.unrecovered_share() >= 0.5;
    match (lots, many, stuck) {
        (true, _, true) => Severity::Critical,
        (true, _, false) | (false, true, true) => Severity::High,
        (false, true, false) | (false, false, true) => Severity::Medium,
        (false, false, false) => Severity::Low,
    }
}

/// A solution a person applied, and the failure rate before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// The solution (its id is the learning id of the feedback).
    pub solution_id: String,
    /// When (the decision event's time).
    pub at: Timestamp,
    /// Sessions that had run the tool and head when it was applied.
    pub ran_before: u64,
    /// Of those, sessions where the cluster failed.
    pub failed_before: u64,
    /// The adjustment last reported, if any.
    pub last_adjustment: Option<f64>,
}

/// A capability gap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    /// `g-` and 16 hex digits, from the cluster id: one gap per cluster, ever.
    pub id: String,
    /// Its cluster.
    pub cluster_id: String,
    /// The cluster's tool, head and kind.
    pub tool: String,
    /// See `tool`.
    pub head: String,
    /// See `tool`.
    pub kind: ErrorKind,
    /// Where it is in its life.
    pub status: GapStatus,
    /// How bad it is.
    pub severity: Severity,
    /// When it was opened and last changed (event times).
    pub created: Timestamp,
    /// See `created`.
    pub updated: Timestamp,
    /// Clean sessions in a row.
    pub clean_streak: u64,
    /// Ended sessions that ran the tool and head (counting from the cluster's first
    /// failures: those that opened the gap).
    pub sessions_ran: u64,
    /// Of those, sessions where the cluster failed.
    pub sessions_failed: u64,
    /// The current solutions, ranked.
    pub solutions: Vec<Solution>,
    /// The solution a person applied, if any.
    pub applied: Option<Applied>,
}

/// A status change: old, new, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The gap.
    pub gap_id: String,
    /// Before.
    pub old: GapStatus,
    /// After.
    pub new: GapStatus,
    /// Why, in a few words.
    pub reason: String,
}

impl Gap {
    /// Opens the gap of `cluster` at `at`.
    pub fn open(cluster: &Cluster, at: Timestamp) -> Self {
        Gap {
            id: ids::gap_id(&cluster.id),
            cluster_id: cluster.id.clone(),
            tool: cluster.tool.clone(),
            head: cluster.head.clone(),
            kind: cluster.kind,
            status: GapStatus::Detected,
            severity: severity(cluster),
            created: at,
            updated: at,
            clean_streak: 0,
            sessions_ran: 0,
            sessions_failed: 0,
            solutions: Vec::new(),
            applied: None,
        }
    }

    fn set(&mut self, new: GapStatus, at: Timestamp, reason: &str) -> Option<Change> {
        if self.status == new {
            return None;
        }
        let old = self.status;
        self.status = new;
        self.updated = at;
        Some(Change {
            gap_id: self.id.clone(),
            old,
            new,
            reason: reason.to_owned(),
        })
    }

    fn confirms(cluster: &Cluster) -> bool {
        cluster.sessions() >= CONFIRM_SESSIONS || cluster.unrecovered >= CONFIRM_UNRECOVERED
    }

    /// The cluster failed again.
    pub fn on_failure(&mut self, cluster: &Cluster, at: Timestamp) -> Option<Change> {
        self.clean_streak = 0;
        self.severity = severity(cluster);
        match self.status {
            GapStatus::Resolved => self.set(GapStatus::Reopened, at, "failed again"),
            GapStatus::Detected if Self::confirms(cluster) => self.set(
                GapStatus::Confirmed,
                at,
                &format!(
                    "{} sessions, {} unrecovered",
                    cluster.sessions(),
                    cluster.unrecovered
                ),
            ),
            _ => None,
        }
    }

    /// A failure of the cluster stayed unrecovered.
    pub fn on_unrecovered(&mut self, cluster: &Cluster, at: Timestamp) -> Option<Change> {
        self.severity = severity(cluster);
        if self.status == GapStatus::Detected && Self::confirms(cluster) {
            return self.set(
                GapStatus::Confirmed,
                at,
                &format!("{} failures unrecovered", cluster.unrecovered),
            );
        }
        None
    }

    /// A session that ran the tool and head ended; `failed` when the cluster failed
    /// in it.
    pub fn on_session_end(&mut self, failed: bool, at: Timestamp) -> Option<Change> {
        self.sessions_ran += 1;
        if failed {
            self.sessions_failed += 1;
            self.clean_streak = 0;
            return None;
        }
        self.clean_streak += 1;
        let auto = matches!(
            self.status,
            GapStatus::Detected
                | GapStatus::Confirmed
                | GapStatus::Reopened
                | GapStatus::InProgress
        );
        if auto && self.clean_streak >= RESOLVE_CLEAN_SESSIONS {
            return self.set(
                GapStatus::Resolved,
                at,
                &format!("{} clean sessions", self.clean_streak),
            );
        }
        None
    }

    /// A person's decision. Errors name what is wrong (an unknown solution).
    pub fn decide(
        &mut self,
        action: crate::decision::Action,
        solution_id: Option<&str>,
        at: Timestamp,
    ) -> Result<Option<Change>, String> {
        use crate::decision::Action;
        Ok(match action {
            Action::Apply => {
                let solution = match solution_id {
                    Some(id) => self
                        .solutions
                        .iter()
                        .find(|s| s.id == id)
                        .ok_or_else(|| format!("gap {} has no solution {id}", self.id))?,
                    None => self
                        .solutions
                        .first()
                        .ok_or_else(|| format!("gap {} has no solution to apply", self.id))?,
                };
                self.applied = Some(Applied {
                    solution_id: solution.id.clone(),
                    at,
                    ran_before: self.sessions_ran,
                    failed_before: self.sessions_failed,
                    last_adjustment: None,
                });
                self.clean_streak = 0;
                self.set(GapStatus::InProgress, at, "a person applied a solution")
            }
            Action::Dismiss => self.set(GapStatus::Dismissed, at, "a person dismissed it"),
            Action::Resolve => self.set(GapStatus::Resolved, at, "a person resolved it"),
            Action::Reopen => {
                self.clean_streak = 0;
                self.set(GapStatus::Reopened, at, "a person reopened it")
            }
        })
    }
}
