//! How a run ended: the `run.exit` event's fields, and `vibes run`'s exit status.
//!
//! | the agent | exit status of `vibes run` |
//! |---|---|
//! | exited with code N | N |
//! | was killed by signal S (not by vibes) | 128 + S, as shells report it |
//! | was stopped because a limit was passed | [`LIMIT_EXIT`] (124, as `timeout(1)`) |
//! | was stopped because vibes got SIGINT or SIGTERM | 128 + that signal (130, 143) |

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use vibes_events::RunExit;

/// Exit status of `vibes run` when a limit stopped the agent.
pub const LIMIT_EXIT: u8 = 124;

/// Why vibes stopped the agent, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoppedBy {
    /// A limit: `rss`, `cost` or `timeout`.
    Limit(&'static str),
    /// vibes itself got this signal (SIGINT, SIGTERM).
    Interrupted(i32),
}

impl StoppedBy {
    /// The `stopped_by` of `run.exit`.
    pub fn name(self) -> &'static str {
        match self {
            StoppedBy::Limit(limit) => limit,
            StoppedBy::Interrupted(_) => "interrupted",
        }
    }
}

/// The end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    /// How the agent's process ended; `None` if that could not be learned.
    pub status: Option<ExitStatus>,
    pub stopped_by: Option<StoppedBy>,
    pub duration: Duration,
}

impl Ending {
    /// The `run.exit` event's data.
    pub fn event(&self, run_id: &str, session_id: Option<String>) -> RunExit {
        let mut exit = RunExit::new(
            run_id,
            u64::try_from(self.duration.as_millis()).unwrap_or(u64::MAX),
        );
        exit.session_id = session_id;
        exit.code = self.status.and_then(|s| s.code());
        exit.signal = self.status.and_then(|s| s.signal());
        exit.stopped_by = self.stopped_by.map(|s| s.name().to_owned());
        exit
    }

    /// `vibes run`'s exit status (see the module table).
    pub fn exit_code(&self) -> u8 {
        let from_signal = |signal: i32| u8::try_from(128 + signal.clamp(0, 127)).unwrap_or(255);
        match (self.stopped_by, self.status) {
            (Some(StoppedBy::Limit(_)), _) => LIMIT_EXIT,
            (Some(StoppedBy::Interrupted(signal)), _) => from_signal(signal),
            (None, Some(status)) => match (status.code(), status.signal()) {
                // Codes are 0 to 255 on Unix; anything else is reported as a failure.
                (Some(code), _) => u8::try_from(code).unwrap_or(1),
                (None, Some(signal)) => from_signal(signal),
                (None, None) => 1,
            },
            (None, None) => 1,
        }
    }

    /// How it ended, in words: `exited with code 3`, `killed by signal 9`, with what
    /// stopped it.
    pub fn describe(&self) -> String {
        let how = match self.status.map(|s| (s.code(), s.signal())) {
            Some((Some(code), _)) => format!("exited with code {code}"),
            Some((None, Some(signal))) => format!("ended by signal {signal}"),
            _ => "ended (status unknown)".to_owned(),
        };
        match self.stopped_by {
            Some(StoppedBy::Limit(limit)) => format!("{how}, stopped by its {limit} limit"),
            Some(StoppedBy::Interrupted(_)) => format!("{how}, stopped on interrupt"),
            None => how,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ending(raw: i32, stopped_by: Option<StoppedBy>) -> Ending {
        Ending {
            status: Some(ExitStatus::from_raw(raw)),
            stopped_by,
            duration: Duration::from_millis(1500),
        }
    }

    #[test]
    fn exit_statuses_follow_the_table() {
        // Raw wait statuses: code N is N << 8; signal S is S.
        assert_eq!(ending(0, None).exit_code(), 0);
        assert_eq!(ending(3 << 8, None).exit_code(), 3);
        assert_eq!(ending(9, None).exit_code(), 137);
        assert_eq!(ending(15, Some(StoppedBy::Limit("rss"))).exit_code(), 124);
        assert_eq!(ending(15, Some(StoppedBy::Interrupted(2))).exit_code(), 130);
        assert_eq!(ending(0, Some(StoppedBy::Interrupted(15))).exit_code(), 143);
    }

    #[test]
    fn the_exit_event_says_code_or_signal_and_what_stopped_it() {
        let exit = ending(3 << 8, None).event("r", Some("s".to_owned()));
        assert_eq!((exit.code, exit.signal), (Some(3), None));
        assert_eq!(exit.duration_ms, 1500);
        assert_eq!(exit.stopped_by, None);
        let exit = ending(9, Some(StoppedBy::Limit("timeout"))).event("r", None);
        assert_eq!((exit.code, exit.signal), (None, Some(9)));
        assert_eq!(exit.stopped_by.as_deref(), Some("timeout"));
        assert_eq!(
            ending(9, Some(StoppedBy::Limit("timeout"))).describe(),
            "ended by signal 9, stopped by its timeout limit"
        );
    }
}
