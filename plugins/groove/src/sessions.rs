//! Live sessions: calls waiting for their results, failures waiting for a recovery
//! (within a bounded window, with what happened in between as evidence), and which
//! tool heads ran and which clusters failed, for the verdict at the session's end.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

/// Sessions kept live at once; beyond it the least recently active one is closed as
/// if it had ended (without counting as a clean session).
pub const MAX_LIVE_SESSIONS: usize = 512;
/// Calls waiting for a result per session; beyond it the oldest is dropped.
pub const MAX_PENDING: usize = 256;
/// Failures waiting for a recovery per session; beyond it the oldest is closed
/// unrecovered.
pub const MAX_OPEN_FAILURES: usize = 16;
/// A failure is recovered only by a success within this many later tool calls of the
/// session.
pub const RECOVERY_WINDOW: u64 = 40;
/// Evidence items kept per failure.
pub const MAX_EVIDENCE: usize = 4;
/// (tool, head) pairs and failed clusters remembered per session.
pub const MAX_RAN: usize = 256;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pending {
    tool_id: String,
    tool: String,
    head: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OpenFailure {
    cluster_id: String,
    tool: String,
    head: String,
    at_call: u64,
    evidence: Vec<String>,
}

/// One live session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Session {
    pending: VecDeque<Pending>,
    open: Vec<OpenFailure>,
    calls: u64,
    ran: BTreeSet<(String, String)>,
    failed: BTreeSet<String>,
    last_seq: u64,
}

/// What a session's end (or eviction) decides.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ended {
    /// The (tool, head) pairs it ran, failing or not.
    pub ran: BTreeSet<(String, String)>,
    /// The clusters that failed in it.
    pub failed: BTreeSet<String>,
    /// Clusters of failures still waiting for a recovery: now unrecovered.
    pub unrecovered: Vec<String>,
    /// Whether the session really ended (false: evicted to stay within the cap).
    pub ended: bool,
}

/// A failure that a success fixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Its cluster.
    pub cluster_id: String,
    /// What happened in between, e.g. `edit *.go, run make build`, or `retry`.
    pub how: String,
}

/// Every live session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sessions {
    live: BTreeMap<String, Session>,
    /// Sessions closed to stay within [`MAX_LIVE_SESSIONS`].
    pub evicted: u64,
    /// Calls dropped unanswered to stay within [`MAX_PENDING`].
    pub dropped_pending: u64,
}

impl Sessions {
    /// A tool call started: remembers it until its result, adds `evidence` to the
    /// session's open failures, and closes those whose window has passed (their
    /// clusters are returned: unrecovered).
    pub fn call(
        &mut self,
        session: &str,
        tool_id: &str,
        tool: &str,
        head: &str,
        evidence: Option<&str>,
        seq: u64,
    ) -> Vec<String> {
        let s = self.live.entry(session.to_owned()).or_default();
        s.last_seq = seq;
        s.calls += 1;
        if let Some(i) = s.pending.iter().position(|p| p.tool_id == tool_id) {
            s.pending.remove(i);
        }
        s.pending.push_back(Pending {
            tool_id: tool_id.to_owned(),
            tool: tool.to_owned(),
            head: head.to_owned(),
        });
        if s.pending.len() > MAX_PENDING {
            s.pending.pop_front();
            self.dropped_pending += 1;
        }
        let calls = s.calls;
        let mut closed = Vec::new();
        s.open.retain_mut(|f| {
            if calls - f.at_call > RECOVERY_WINDOW {
                closed.push(f.cluster_id.clone());
                return false;
            }
            if let Some(item) = evidence {
                // Running the failing command again is the recovery, not evidence.
                let rerun = f.tool == tool && f.head == head;
                if !rerun
                    && f.evidence.len() < MAX_EVIDENCE
                    && !f.evidence.iter().any(|e| e == item)
                {
                    f.evidence.push(item.to_owned());
                }
            }
            true
        });
        closed
    }

    /// The tool and head of call `tool_id`, taken out of the waiting calls.
    pub fn take_pending(&mut self, session: &str, tool_id: &str) -> Option<(String, String)> {
        let s = self.live.get_mut(session)?;
        let i = s.pending.iter().position(|p| p.tool_id == tool_id)?;
        s.pending.remove(i).map(|p| (p.tool, p.head))
    }

    /// A call failed: it waits for a recovery. Returns a cluster closed unrecovered to
    /// stay within [`MAX_OPEN_FAILURES`], if any.
    pub fn failed(
        &mut self,
        session: &str,
        cluster_id: &str,
        tool: &str,
        head: &str,
        seq: u64,
    ) -> Option<String> {
        let s = self.live.entry(session.to_owned()).or_default();
        s.last_seq = seq;
        remember(&mut s.ran, (tool.to_owned(), head.to_owned()));
        remember(&mut s.failed, cluster_id.to_owned());
        s.open.push(OpenFailure {
            cluster_id: cluster_id.to_owned(),
            tool: tool.to_owned(),
            head: head.to_owned(),
            at_call: s.calls,
            evidence: Vec::new(),
        });
        (s.open.len() > MAX_OPEN_FAILURES).then(|| s.open.remove(0).cluster_id)
    }

    /// A call of `tool` and `head` succeeded: the session's open failures of the same
    /// tool and head are recovered.
    pub fn succeeded(&mut self, session: &str, tool: &str, head: &str, seq: u64) -> Vec<Recovery> {
        let s = self.live.entry(session.to_owned()).or_default();
        s.last_seq = seq;
        remember(&mut s.ran, (tool.to_owned(), head.to_owned()));
        let mut recovered = Vec::new();
        s.open.retain(|f| {
            if f.tool == tool && f.head == head {
                let how = if f.evidence.is_empty() {
                    "retry".to_owned()
                } else {
                    f.evidence.join(", ")
                };
                recovered.push(Recovery {
                    cluster_id: f.cluster_id.clone(),
                    how,
                });
                false
            } else {
                true
            }
        });
        recovered
    }

    /// The session ended: its verdict, and it is forgotten. `None` when it is not live.
    pub fn end(&mut self, session: &str) -> Option<Ended> {
        self.live.remove(session).map(|s| close(s, true))
    }

    /// Closes the least recently active sessions beyond [`MAX_LIVE_SESSIONS`] (an
    /// eighth below it at once).
    pub fn evict(&mut self) -> Vec<Ended> {
        if self.live.len() <= MAX_LIVE_SESSIONS {
            return Vec::new();
        }
        let target = MAX_LIVE_SESSIONS - MAX_LIVE_SESSIONS / 8;
        let mut order: Vec<(u64, String)> = self
            .live
            .iter()
            .map(|(id, s)| (s.last_seq, id.clone()))
            .collect();
        order.sort();
        let excess = self.live.len() - target;
        let mut ended = Vec::new();
        for (_, id) in order.into_iter().take(excess) {
            if let Some(s) = self.live.remove(&id) {
                self.evicted += 1;
                ended.push(close(s, false));
            }
        }
        ended
    }

    /// Live sessions and the calls waiting in them.
    pub fn len(&self) -> (usize, usize) {
        (
            self.live.len(),
            self.live.values().map(|s| s.pending.len()).sum(),
        )
    }
}

fn remember<T: Ord>(set: &mut BTreeSet<T>, item: T) {
    if set.len() < MAX_RAN {
        set.insert(item);
    }
}

fn close(s: Session, ended: bool) -> Ended {
    Ended {
        ran: s.ran,
        failed: s.failed,
        unrecovered: s.open.into_iter().map(|f| f.cluster_id).collect(),
        ended,
    }
}

impl Sessions {
    /// Live sessions in which cluster `cluster_id` failed.
    pub fn live_failed(&self, cluster_id: &str) -> u64 {
        self.live
            .values()
            .filter(|s| s.failed.contains(cluster_id))
            .count() as u64
    }
}
