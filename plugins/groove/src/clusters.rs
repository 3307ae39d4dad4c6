//! Novelty and clusters: which fingerprints were seen before, and which failures are
//! the same failure (the same tool, command head and error kind).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use vibes_events::Timestamp;

use crate::fingerprint::{ErrorKind, Fingerprint};
use crate::ids;

/// Known fingerprints kept; beyond it, those of clusters without a gap that were seen
/// longest ago are forgotten (and would be novel again).
pub const MAX_FINGERPRINTS: usize = 16_384;
/// Clusters kept; beyond it, those without a gap that failed longest ago are forgotten.
pub const MAX_CLUSTERS: usize = 4_096;
/// Example telling lines kept per cluster.
pub const MAX_EXAMPLES: usize = 3;
/// Sessions told apart per cluster; the session count saturates there.
pub const MAX_CLUSTER_SESSIONS: usize = 256;
/// Distinct observed recoveries kept per cluster.
pub const MAX_RECOVERIES: usize = 8;

/// A fingerprint seen before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Known {
    /// The fingerprint.
    pub fingerprint: Fingerprint,
    /// Its cluster.
    pub cluster_id: String,
    /// When it was first seen (the event's time).
    pub first_seen: Timestamp,
    /// The session it was first seen in.
    pub first_session: String,
    /// How often it was seen.
    pub seen: u64,
    last_seq: u64,
}

/// A group of failures with the same tool, head and kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    /// `c-` and 16 hex digits.
    pub id: String,
    /// The tool.
    pub tool: String,
    /// The command head (empty for tools that are not shells).
    pub head: String,
    /// The error kind.
    pub kind: ErrorKind,
    /// Failing calls.
    pub failures: u64,
    /// Failures a later call of the same tool and head in the session fixed.
    pub recovered: u64,
    /// Failures whose window closed (or whose session ended) without a fix.
    pub unrecovered: u64,
    /// Distinct fingerprints seen.
    pub fingerprints: u64,
    /// Up to [`MAX_EXAMPLES`] distinct telling lines.
    pub examples: Vec<String>,
    /// When it first and last failed.
    pub first_seen: Timestamp,
    /// See `first_seen`.
    pub last_seen: Timestamp,
    /// What preceded a recovery, by description, with how many failures it fixed.
    pub recoveries: BTreeMap<String, u64>,
    /// Hashes of the sessions it failed in (at most [`MAX_CLUSTER_SESSIONS`]).
    sessions: BTreeSet<u64>,
    last_seq: u64,
}

impl Cluster {
    /// Distinct sessions it failed in (saturating at [`MAX_CLUSTER_SESSIONS`]).
    pub fn sessions(&self) -> u64 {
        self.sessions.len() as u64
    }

    /// The share of its failures that stayed unrecovered (of those decided).
    pub fn unrecovered_share(&self) -> f64 {
        let decided = self.recovered + self.unrecovered;
        if decided == 0 {
            0.0
        } else {
            self.unrecovered as f64 / decided as f64
        }
    }
}

/// What one failure changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// The fingerprint was never seen before.
    pub novel: bool,
    /// The cluster failed in this session for the first time.
    pub new_session: bool,
}

/// Every known fingerprint and cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Clusters {
    known: BTreeMap<String, Known>,
    clusters: BTreeMap<String, Cluster>,
    /// Fingerprints and clusters forgotten to stay within the caps.
    pub evicted_fingerprints: u64,
    /// See `evicted_fingerprints`.
    pub evicted_clusters: u64,
}

impl Clusters {
    /// Folds in a failure with fingerprint `fp` in session `session` at `at`; `seq`
    /// orders observations for eviction.
    pub fn observe(
        &mut self,
        fp: &Fingerprint,
        session: &str,
        at: Timestamp,
        seq: u64,
    ) -> Observed {
        let cluster_id = ids::cluster_id(&fp.tool, &fp.head, fp.kind);
        let novel = match self.known.get_mut(&fp.id) {
            Some(known) => {
                known.seen += 1;
                known.last_seq = seq;
                false
            }
            None => {
                self.known.insert(
                    fp.id.clone(),
                    Known {
                        fingerprint: fp.clone(),
                        cluster_id: cluster_id.clone(),
                        first_seen: at,
                        first_session: session.to_owned(),
                        seen: 1,
                        last_seq: seq,
                    },
                );
                true
            }
        };
        let cluster = self
            .clusters
            .entry(cluster_id.clone())
            .or_insert_with(|| Cluster {
                id: cluster_id,
                tool: fp.tool.clone(),
                head: fp.head.clone(),
                kind: fp.kind,
                failures: 0,
                recovered: 0,
                unrecovered: 0,
                fingerprints: 0,
                examples: Vec::new(),
                first_seen: at,
                last_seen: at,
                recoveries: BTreeMap::new(),
                sessions: BTreeSet::new(),
                last_seq: seq,
            });
        cluster.failures += 1;
        cluster.fingerprints += u64::from(novel);
        cluster.last_seen = cluster.last_seen.max(at);
        cluster.last_seq = seq;
        if cluster.examples.len() < MAX_EXAMPLES && !cluster.examples.contains(&fp.line) {
            cluster.examples.push(fp.line.clone());
        }
        let session = ids::hash64(&[session]);
        let new_session =
            cluster.sessions.len() < MAX_CLUSTER_SESSIONS && cluster.sessions.insert(session);
        Observed { novel, new_session }
    }

    /// Records that a failure of `cluster` was fixed after `how`.
    pub fn recovered(&mut self, cluster: &str, how: &str) {
        if let Some(c) = self.clusters.get_mut(cluster) {
            c.recovered += 1;
            if c.recoveries.len() < MAX_RECOVERIES || c.recoveries.contains_key(how) {
                *c.recoveries.entry(how.to_owned()).or_default() += 1;
            }
        }
    }

    /// Records that a failure of `cluster` stayed unfixed.
    pub fn unrecovered(&mut self, cluster: &str) {
        if let Some(c) = self.clusters.get_mut(cluster) {
            c.unrecovered += 1;
        }
    }

    /// The cluster `id`.
    pub fn get(&self, id: &str) -> Option<&Cluster> {
        self.clusters.get(id)
    }

    /// Every cluster, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Cluster> {
        self.clusters.values()
    }

    /// Every known fingerprint, by id.
    pub fn known(&self) -> impl Iterator<Item = &Known> {
        self.known.values()
    }

    /// Known fingerprints and clusters.
    pub fn len(&self) -> (usize, usize) {
        (self.known.len(), self.clusters.len())
    }

    /// Forgets the least recently seen fingerprints and clusters beyond the caps,
    /// except those of clusters for which `keep` says yes (those with a gap). Drops an
    /// eighth below the cap at once, so eviction is rare.
    pub fn evict(&mut self, keep: impl Fn(&str) -> bool) {
        if self.clusters.len() > MAX_CLUSTERS {
            let target = MAX_CLUSTERS - MAX_CLUSTERS / 8;
            let mut order: Vec<(u64, String)> = self
                .clusters
                .values()
                .filter(|c| !keep(&c.id))
                .map(|c| (c.last_seq, c.id.clone()))
                .collect();
            order.sort();
            let excess = self.clusters.len().saturating_sub(target);
            for (_, id) in order.into_iter().take(excess) {
                self.clusters.remove(&id);
                self.evicted_clusters += 1;
            }
            let clusters = &self.clusters;
            let before = self.known.len();
            self.known
                .retain(|_, k| clusters.contains_key(&k.cluster_id));
            self.evicted_fingerprints += (before - self.known.len()) as u64;
        }
        if self.known.len() > MAX_FINGERPRINTS {
            let target = MAX_FINGERPRINTS - MAX_FINGERPRINTS / 8;
            let mut order: Vec<(u64, String)> = self
                .known
                .values()
                .filter(|k| !keep(&k.cluster_id))
                .map(|k| (k.last_seq, k.fingerprint.id.clone()))
                .collect();
            order.sort();
            let excess = self.known.len().saturating_sub(target);
            for (_, id) in order.into_iter().take(excess) {
                self.known.remove(&id);
                self.evicted_fingerprints += 1;
            }
        }
    }
}
