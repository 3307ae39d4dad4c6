//! The limits of a run (`--max-rss`, `--max-cost`, `--timeout`) and when one is passed.

use std::time::Duration;

use anyhow::{Result, bail};
use vibes_events::RunLimit;

use crate::output::{human_bytes, human_ms};

/// The limits the person set.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// Resident memory of the process tree, in bytes.
    pub max_rss: Option<u64>,
    /// Cost of the API calls, in USD.
    pub max_cost: Option<f64>,
    /// Run time.
    pub timeout: Option<Duration>,
}

/// A limit that was passed: `limit` is `rss`, `cost` or `timeout`, as in `run.limit`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Passed {
    pub limit: &'static str,
    pub observed: f64,
    pub threshold: f64,
}

impl Limits {
    /// Limits from the command line, checked.
    ///
    /// Errors: a size that does not parse; a cost that is not a positive number; a
    /// timeout of zero.
    pub fn parse(
        max_rss: Option<&str>,
        max_cost: Option<f64>,
        timeout: Option<Duration>,
    ) -> Result<Limits> {
        let max_rss = match max_rss {
            Some(text) => match crate::config::parse_size(text) {
                Ok(0) => bail!("--max-rss {text:?}: the size must be more than 0"),
                Ok(bytes) => Some(bytes),
                Err(why) if why.is_empty() => {
                    bail!("--max-rss {text:?} is not a size such as 512MiB or 2GiB")
                }
                Err(why) => bail!("--max-rss {text:?}: {why}"),
            },
            None => None,
        };
        if let Some(usd) = max_cost
            && !(usd.is_finite() && usd > 0.0)
        {
            bail!("--max-cost {usd}: the cost must be a positive number of USD");
        }
        if timeout.is_some_and(|t| t.is_zero()) {
            bail!("--timeout must be longer than zero");
        }
        Ok(Limits {
            max_rss,
            max_cost,
            timeout,
        })
    }

    /// The memory limit, if `rss_bytes` passed it.
    pub fn rss(&self, rss_bytes: u64) -> Option<Passed> {
        let max = self.max_rss?;
        (rss_bytes > max).then_some(Passed {
            limit: "rss",
            observed: rss_bytes as f64,
            threshold: max as f64,
        })
    }

    /// The cost limit, if `usd` passed it.
    pub fn cost(&self, usd: f64) -> Option<Passed> {
        let max = self.max_cost?;
        (usd > max).then_some(Passed {
            limit: "cost",
            observed: usd,
            threshold: max,
        })
    }

    /// The timeout, passed after `elapsed`.
    pub fn timed_out(&self, elapsed: Duration) -> Option<Passed> {
        let timeout = self.timeout?;
        Some(Passed {
            limit: "timeout",
            observed: elapsed.as_millis() as f64,
            threshold: timeout.as_millis() as f64,
        })
    }
}

impl Passed {
    /// The `run.limit` event's data.
    pub fn event(&self, run_id: &str, session_id: Option<String>) -> RunLimit {
        let mut limit = RunLimit::new(run_id, self.limit, self.observed, self.threshold);
        limit.session_id = session_id;
        limit
    }

    /// What happened, for the person: `memory 1.2 GiB passed --max-rss 1.0 GiB`.
    pub fn message(&self) -> String {
        match self.limit {
            "rss" => format!(
                "memory {} passed --max-rss {}",
                human_bytes(self.observed as u64),
                human_bytes(self.threshold as u64)
            ),
            "cost" => format!(
                "cost ${:.4} passed --max-cost ${:.4}",
                self.observed, self.threshold
            ),
            _ => format!(
                "run time {} passed --timeout {}",
                human_ms(self.observed as u64),
                human_ms(self.threshold as u64)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_and_pass_only_when_exceeded() {
        let limits =
            Limits::parse(Some("1MiB"), Some(0.5), Some(Duration::from_secs(2))).expect("limits");
        assert_eq!(limits.max_rss, Some(1 << 20));
        assert_eq!(limits.rss(1 << 20), None);
        let passed = limits.rss((1 << 20) + 1).expect("passed");
        assert_eq!(passed.limit, "rss");
        assert_eq!(passed.message(), "memory 1.0 MiB passed --max-rss 1.0 MiB");
        assert_eq!(limits.cost(0.5), None);
        assert_eq!(limits.cost(0.75).expect("passed").limit, "cost");
        let timeout = limits
            .timed_out(Duration::from_millis(2_010))
            .expect("passed");
        assert_eq!((timeout.observed, timeout.threshold), (2010.0, 2000.0));
        let event = timeout.event("r1", Some("s1".to_owned()));
        assert_eq!(event.limit, "timeout");
        assert_eq!(event.session_id.as_deref(), Some("s1"));

        let none = Limits::default();
        assert_eq!(none.rss(u64::MAX), None);
        assert_eq!(none.timed_out(Duration::MAX), None);
    }

    #[test]
    fn bad_limits_are_named() {
        let err = Limits::parse(Some("lots"), None, None).expect_err("bad size");
        assert!(err.to_string().contains("--max-rss \"lots\""), "{err}");
        let err = Limits::parse(Some("5 parsecs"), None, None).expect_err("bad unit");
        assert!(err.to_string().contains("unknown unit"), "{err}");
        let err = Limits::parse(None, Some(-1.0), None).expect_err("bad cost");
        assert!(err.to_string().contains("--max-cost"), "{err}");
        let err = Limits::parse(None, None, Some(Duration::ZERO)).expect_err("zero");
        assert!(err.to_string().contains("--timeout"), "{err}");
    }
}
