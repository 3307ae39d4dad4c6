//! Runs of `vibes run` (`run.start`) until they name their session: the run's name and
//! limits, to give the session's coder once a `run.sample`, `run.limit` or `run.exit`
//! links them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vibes_events::{RunStart, Timestamp};

use crate::coder::RunView;

/// Runs remembered; beyond, the one started first is forgotten.
pub const MAX_RUNS: usize = 1024;

/// One run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// `--name`.
    pub name: Option<String>,
    /// When it started.
    pub started: Timestamp,
    /// The coder it is, once known.
    pub coder: Option<String>,
    /// What it reported so far.
    pub view: RunView,
}

/// The runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Runs {
    runs: BTreeMap<String, Run>,
    /// Runs forgotten for room.
    pub forgotten: u64,
}

impl Runs {
    /// Records a `run.start`.
    pub fn start(&mut self, start: &RunStart, at: Timestamp) {
        if !self.runs.contains_key(&start.run_id) && self.runs.len() >= MAX_RUNS {
            let oldest = self
                .runs
                .iter()
                .min_by_key(|(_, r)| r.started)
                .map(|(id, _)| id.clone());
            if let Some(id) = oldest {
                self.runs.remove(&id);
                self.forgotten += 1;
            }
        }
        self.runs.insert(
            start.run_id.clone(),
            Run {
                name: start.name.clone().filter(|n| !n.is_empty()),
                started: at,
                coder: None,
                view: RunView {
                    run_id: start.run_id.clone(),
                    max_rss_bytes: start.max_rss_bytes,
                    max_cost_usd: start.max_cost_usd,
                    timeout_ms: start.timeout_ms,
                    ..RunView::default()
                },
            },
        );
    }

    /// The run `run_id`, created (started at `at`, unnamed) if its start was not seen.
    pub fn get_or_insert(&mut self, run_id: &str, at: Timestamp) -> &mut Run {
        self.runs.entry(run_id.to_owned()).or_insert_with(|| Run {
            name: None,
            started: at,
            coder: None,
            view: RunView {
                run_id: run_id.to_owned(),
                ..RunView::default()
            },
        })
    }

    /// Forgets a run that exited.
    pub fn remove(&mut self, run_id: &str) {
        self.runs.remove(run_id);
    }

    /// Runs remembered.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}
