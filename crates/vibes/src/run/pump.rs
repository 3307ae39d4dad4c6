//! The agent's stdout, read live as Claude stream-json into the log.
//!
//! Each line goes through the same [`ClaudeParser`] as `vibes ingest claude`, numbered
//! from 1, so its events carry the same ids as if the recording were ingested (ids are
//! functions of what the stream says). A malformed line is reported on stderr with its
//! number (the first [`REPORT_MALFORMED`]; the rest are counted in the summary), stored
//! as an `error` event like `ingest claude` does, and the lines after it are read on.
//! Each line is also priced ([`RunCost`]); the session id and the cost so far are
//! published on a watch channel for the sampler and the cost limit.

use std::time::Duration;

use tokio::sync::watch;
use vibes_sources::claude::{ClaudeParser, LineOutcome, ParseSummary};
use vibes_supervisor::Lines;

use super::cost::RunCost;
use super::recorder::{Gone, Recorder};

/// Malformed lines reported one by one on stderr while the run goes on.
pub const REPORT_MALFORMED: usize = 20;

/// How long the pump waits for another line after the agent exited, before it counts
/// stdout as held open by a process the agent started and stops reading.
pub const QUIET_AFTER_EXIT: Duration = Duration::from_secs(2);

/// What the sampler and the limits need to know of the stream so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// The session id, once the stream said it.
    pub session_id: Option<String>,
    /// Cost of the API calls so far, in USD.
    pub cost_usd: f64,
}

/// How the stream went.
#[derive(Debug, Clone)]
pub struct Pumped {
    pub summary: ParseSummary,
    pub session_id: Option<String>,
    pub cost: RunCost,
    /// stdout was still open after the agent exited and went quiet: lines written to
    /// it later were not read.
    pub held_open: bool,
}

/// Reads `lines` until they end (or go quiet after `exited` turns true), sending each
/// line's events to `recorder`.
///
/// Errors: the recorder is gone (an append failed).
pub async fn pump(
    mut lines: Lines,
    mut exited: watch::Receiver<bool>,
    recorder: Recorder,
    progress: watch::Sender<Progress>,
    mut cost: RunCost,
    session_name: Option<String>,
) -> Result<Pumped, Gone> {
    let mut parser = ClaudeParser::new();
    if let Some(name) = session_name {
        parser = parser.session_name(name);
    }
    let mut number = 0u64;
    let mut held_open = false;
    loop {
        let line = if *exited.borrow() {
            match tokio::time::timeout(QUIET_AFTER_EXIT, lines.next()).await {
                Ok(line) => line,
                Err(_) => {
                    held_open = true;
                    None
                }
            }
        } else {
            tokio::select! {
                line = lines.next() => line,
                _ = exited.changed() => continue,
            }
        };
        let Some(line) = line else { break };
        number += 1;
        let outcome = parser.parse_line(&line, number);
        if let LineOutcome::Malformed { reason, .. } = &outcome
            && parser.summary().malformed.len() <= REPORT_MALFORMED
        {
            eprintln!("vibes run: stdout line {number} is not stream-json: {reason}");
        }
        let priced = cost.feed(&line, number);
        let session = parser.session_id();
        if priced || progress.borrow().session_id.as_deref() != session {
            let now = Progress {
                session_id: session.map(str::to_owned),
                cost_usd: cost.usd(),
            };
            progress.send_replace(now);
        }
        recorder.send(outcome.into_events()).await?;
    }
    Ok(Pumped {
        session_id: parser.session_id().map(str::to_owned),
        summary: parser.into_summary(),
        cost,
        held_open,
    })
}
