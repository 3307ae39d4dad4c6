//! Supervised-agent events: `run.*`, written by `vibes run` about the agent process it
//! supervises (not by the agent). Extension: the seeds have no such family.
//!
//! A run is one supervised child and the processes it starts. `run_id` names it and is its
//! partition key, so a run's events keep their order; `session_id` links it to the Claude
//! session the child reported once its stream-json said so.

use serde::{Deserialize, Serialize};

/// `run.start`: `vibes run` started an agent process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunStart {
    /// The run.
    pub run_id: String,
    /// The name the person gave the run (`--name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// Process id of the child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Working directory of the child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Resident memory of the whole process tree that stops the run, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rss_bytes: Option<u64>,
    /// Cost that stops the run, in USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
    /// Run time that stops the run, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl RunStart {
    /// A start without name, pid, directory or limits.
    pub fn new(run_id: impl Into<String>, command: Vec<String>) -> Self {
        Self {
            run_id: run_id.into(),
            name: None,
            command,
            pid: None,
            cwd: None,
            max_rss_bytes: None,
            max_cost_usd: None,
            timeout_ms: None,
        }
    }
}

/// `run.sample`: one measurement of the run's whole process tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunSample {
    /// The run.
    pub run_id: String,
    /// The Claude session the child reported, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Processes in the tree (the child and its descendants).
    pub processes: u32,
    /// CPU time used by the tree so far (user and system), in milliseconds.
    pub cpu_ms: u64,
    /// CPU use since the previous sample, in percent of one core.
    pub cpu_percent: f64,
    /// Resident memory of the tree, in bytes.
    pub rss_bytes: u64,
    /// Bytes the tree read from storage so far.
    pub read_bytes: u64,
    /// Bytes the tree wrote to storage so far.
    pub write_bytes: u64,
    /// Open file descriptors in the tree.
    pub open_files: u32,
    /// Cost of the run's API calls so far, in USD, where the host could price them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

impl RunSample {
    /// A sample of an empty tree.
    pub fn new(run_id: impl Into<String>) -> Self {
        Self {
            run_id: run_id.into(),
            session_id: None,
            processes: 0,
            cpu_ms: 0,
            cpu_percent: 0.0,
            rss_bytes: 0,
            read_bytes: 0,
            write_bytes: 0,
            open_files: 0,
            cost_usd: None,
        }
    }
}

/// `run.limit`: a limit of the run was passed and the run is being stopped. Written
/// before the run's `run.exit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunLimit {
    /// The run.
    pub run_id: String,
    /// The Claude session the child reported, if it had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Which limit: `rss` (bytes), `cost` (USD) or `timeout` (milliseconds).
    pub limit: String,
    /// What was measured, in the limit's unit.
    pub observed: f64,
    /// The limit, in the same unit.
    pub threshold: f64,
}

impl RunLimit {
    /// A passed limit.
    pub fn new(
        run_id: impl Into<String>,
        limit: impl Into<String>,
        observed: f64,
        threshold: f64,
    ) -> Self {
        Self {
            run_id: run_id.into(),
            session_id: None,
            limit: limit.into(),
            observed,
            threshold,
        }
    }
}

/// `run.exit`: the run's child exited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunExit {
    /// The run.
    pub run_id: String,
    /// The Claude session the child reported, if it had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Exit code, when it exited by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// The signal that ended it, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Time from start to exit, in milliseconds.
    pub duration_ms: u64,
    /// The limit that stopped it (`rss`, `cost`, `timeout`), or `interrupted` when the
    /// person stopped `vibes run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
}

impl RunExit {
    /// An exit with neither code nor signal.
    pub fn new(run_id: impl Into<String>, duration_ms: u64) -> Self {
        Self {
            run_id: run_id.into(),
            session_id: None,
            code: None,
            signal: None,
            duration_ms,
            stopped_by: None,
        }
    }

    /// Whether the child ended well: exit code 0 and not stopped.
    pub fn success(&self) -> bool {
        self.code == Some(0) && self.stopped_by.is_none()
    }
}
