//! How a child is supervised: probes, restart policy, backoff, limits, stop grace.

use std::time::Duration;

use crate::error::Error;
use crate::probe::Probe;

/// When a child that ended on its own is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Restart {
    /// After any exit, and after failed health probes (the default: a supervised child
    /// is meant to keep running).
    #[default]
    Always,
    /// After an exit with a non-zero status or by a signal, and after failed health
    /// probes; an exit with status 0 ends supervision in [`State::Stopped`](crate::State::Stopped).
    OnFailure,
    /// Never: an exit with status 0 ends in `Stopped`, any other end of the child in
    /// [`State::Failed`](crate::State::Failed).
    Never,
}

/// Exponential backoff with jitter between restarts.
///
/// Restart `n` (counted from 1 since the child was last stable) waits
/// `ceiling(n) * (1 - jitter * u)` with `u` uniform in `[0, 1)`, where
/// `ceiling(n) = min(max, initial * multiplier^(n-1))`. Jitter only shortens a delay, so
/// `max` is a true cap; and as long as `multiplier * (1 - jitter) > 1` (the defaults:
/// 2 and 0.2), every delay whose ceiling is below the cap is longer than any possible
/// delay before it. Once at the cap, delays stay within `[max * (1 - jitter), max]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    multiplier: f64,
    jitter: f64,
}

impl Default for Backoff {
    /// 100 ms, doubling, up to 30 s, jitter 0.2.
    fn default() -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(30))
    }
}

impl Backoff {
    /// Starts at `initial` and doubles up to `max`, with jitter 0.2.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            multiplier: 2.0,
            jitter: 0.2,
        }
    }

    /// Grows each delay by `factor` (at least 1).
    pub fn multiplier(mut self, factor: f64) -> Self {
        self.multiplier = factor;
        self
    }

    /// Shortens each delay by up to this fraction, at random (in `[0, 1)`; 0 for none).
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    /// The delay of restart `attempt` before jitter: `min(max, initial *
    /// multiplier^(attempt-1))`. Attempt 0 is treated as 1.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial.as_secs_f64() * self.multiplier.powi(exponent);
        match Duration::try_from_secs_f64(secs) {
            Ok(delay) => delay.min(self.max),
            Err(_) => self.max, // overflowed to infinity: capped
        }
    }

    /// The range a jittered delay of restart `attempt` falls in: `(ceiling * (1 -
    /// jitter), ceiling)`, both inclusive.
    pub fn bounds(&self, attempt: u32) -> (Duration, Duration) {
        let ceiling = self.ceiling(attempt);
        (ceiling.mul_f64(fraction(1.0 - self.jitter)), ceiling)
    }

    /// The delay for restart `attempt` given `unit` in `[0, 1)`.
    pub(crate) fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let (low, ceiling) = self.bounds(attempt);
        ceiling.mul_f64(fraction(1.0 - self.jitter * unit)).max(low)
    }

    fn validate(&self) -> Result<(), Error> {
        if self.initial.is_zero() || self.max < self.initial {
            return Err(Error::config(format!(
                "backoff needs 0 < initial <= max, got initial {:?}, max {:?}",
                self.initial, self.max
            )));
        }
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            return Err(Error::config(format!(
                "backoff multiplier {} must be a finite number >= 1",
                self.multiplier
            )));
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(Error::config(format!(
                "backoff jitter {} must be in [0, 1)",
                self.jitter
            )));
        }
        Ok(())
    }
}

/// `x` clamped to `[0, 1]`, and 1 for NaN, so that unvalidated settings never make
/// `Duration::mul_f64` panic.
fn fraction(x: f64) -> f64 {
    if x.is_nan() { 1.0 } else { x.clamp(0.0, 1.0) }
}

/// How a [`Supervisor`](crate::Supervisor) watches and restarts its child.
///
/// Defaults: no readiness probe (ready once spawned), 30 s start-up timeout; no health
/// probe; probes every 100 ms during start-up and every 5 s after, each under a 5 s
/// timeout, 3 failures in a row make the child failed; [`Restart::Always`] with
/// [`Backoff::default`]; the backoff attempt counter resets after 60 s of health; at most
/// 10 restarts within 10 minutes; 10 s between SIGTERM and SIGKILL.
#[derive(Debug, Clone)]
pub struct SupervisorOptions {
    pub(crate) readiness: Option<Probe>,
    pub(crate) startup_timeout: Duration,
    pub(crate) readiness_interval: Duration,
    pub(crate) health: Option<Probe>,
    pub(crate) health_interval: Duration,
    pub(crate) health_failures: u32,
    pub(crate) probe_timeout: Duration,
    pub(crate) restart: Restart,
    pub(crate) backoff: Backoff,
    pub(crate) stable_after: Duration,
    pub(crate) max_restarts: u32,
    pub(crate) restart_window: Duration,
    pub(crate) stop_grace: Duration,
    pub(crate) group_guard: bool,
}

impl Default for SupervisorOptions {
    fn default() -> Self {
        SupervisorOptions {
            readiness: None,
            startup_timeout: Duration::from_secs(30),
            readiness_interval: Duration::from_millis(100),
            health: None,
            health_interval: Duration::from_secs(5),
            health_failures: 3,
            probe_timeout: Duration::from_secs(5),
            restart: Restart::default(),
            backoff: Backoff::default(),
            stable_after: Duration::from_secs(60),
            max_restarts: 10,
            restart_window: Duration::from_secs(600),
            stop_grace: Duration::from_secs(10),
            group_guard: false,
        }
    }
}

impl SupervisorOptions {
    /// The defaults (see the type's documentation).
    pub fn new() -> Self {
        Self::default()
    }

    /// A run is ready once `probe` says so, polled every
    /// [`readiness_interval`](Self::readiness_interval) until the
    /// [`startup_timeout`](Self::startup_timeout). Without one, a run is ready once
    /// spawned.
    pub fn readiness(mut self, probe: Probe) -> Self {
        self.readiness = Some(probe);
        self
    }

    /// How long a run may take to become ready; then it is stopped and the start fails
    /// with [`Error::ReadinessTimeout`].
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Pause between readiness checks that said "not yet".
    pub fn readiness_interval(mut self, interval: Duration) -> Self {
        self.readiness_interval = interval;
        self
    }

    /// A ready child is checked with `probe` every
    /// [`health_interval`](Self::health_interval); after
    /// [`health_failures`](Self::health_failures) failures in a row it is stopped and
    /// treated as failed. Without one, only an exit counts as failure.
    pub fn health(mut self, probe: Probe) -> Self {
        self.health = Some(probe);
        self
    }

    /// Pause between the end of one health check and the start of the next.
    pub fn health_interval(mut self, interval: Duration) -> Self {
        self.health_interval = interval;
        self
    }

    /// Failed health checks in a row that make a child failed (at least 1).
    pub fn health_failures(mut self, failures: u32) -> Self {
        self.health_failures = failures;
        self
    }

    /// Time one readiness or health check may take before it counts as failed.
    pub fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }

    /// When to restart a child that ended on its own.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Delays between restarts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// How long a run must stay ready and healthy before the backoff attempt counter
    /// goes back to zero. A run that merely starts does not reset it, so a child that
    /// crashes soon after every start waits longer each time.
    pub fn stable_after(mut self, period: Duration) -> Self {
        self.stable_after = period;
        self
    }

    /// Gives up (state [`Failed`](crate::State::Failed) with [`Error::RestartLimit`]) when
    /// the child fails again after `restarts` restarts within any `window`. 0 restarts
    /// means the first failure after start-up is final.
    pub fn restart_limit(mut self, restarts: u32, window: Duration) -> Self {
        self.max_restarts = restarts;
        self.restart_window = window;
        self
    }

    /// Time between SIGTERM and SIGKILL when stopping the child.
    pub fn stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// Also stops the processes the child started when the supervisor's process dies
    /// without stopping the child (even by SIGKILL): a guard process per run (`/bin/sh`)
    /// sends SIGTERM to the child's process group, then SIGKILL after
    /// [`stop_grace`](Self::stop_grace). Without it only the child itself is killed
    /// then. Processes that left the child's group are not covered. Default off.
    pub fn group_guard(mut self, on: bool) -> Self {
        self.group_guard = on;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let positive = [
            ("startup_timeout", self.startup_timeout),
            ("readiness_interval", self.readiness_interval),
            ("health_interval", self.health_interval),
            ("probe_timeout", self.probe_timeout),
            ("restart window", self.restart_window),
        ];
        for (what, value) in positive {
            if value.is_zero() {
                return Err(Error::config(format!("{what} must be longer than zero")));
            }
        }
        if self.health_failures == 0 {
            return Err(Error::config("health_failures must be at least 1"));
        }
        self.backoff.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let backoff = Backoff::new(100 * MS, 1000 * MS);
        let ceilings: Vec<_> = (1..=6).map(|n| backoff.ceiling(n)).collect();
        assert_eq!(
            ceilings,
            [100 * MS, 200 * MS, 400 * MS, 800 * MS, 1000 * MS, 1000 * MS]
        );
        assert_eq!(backoff.ceiling(0), 100 * MS);
    }

    #[test]
    fn huge_attempts_stay_at_the_cap() {
        let backoff = Backoff::new(100 * MS, Duration::from_secs(30)).multiplier(10.0);
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(30));
        assert!(backoff.delay(u32::MAX, 0.999) <= Duration::from_secs(30));
    }

    #[test]
    fn jitter_only_shortens_within_bounds() {
        let backoff = Backoff::new(100 * MS, 1000 * MS).jitter(0.25);
        for attempt in 1..8 {
            let (low, high) = backoff.bounds(attempt);
            for unit in [0.0, 0.3, 0.999_999] {
                let delay = backoff.delay(attempt, unit);
                assert!(low <= delay && delay <= high, "{attempt} {unit} {delay:?}");
            }
        }
        assert_eq!(backoff.delay(1, 0.0), 100 * MS);
    }

    #[test]
    fn jittered_delays_below_the_cap_always_grow() {
        let backoff = Backoff::default();
        for attempt in 1..20 {
            if backoff.ceiling(attempt + 1) >= Duration::from_secs(30) {
                assert!(attempt > 5, "the test should cover several attempts");
                break;
            }
            let longest_now = backoff.bounds(attempt).1;
            let shortest_next = backoff.bounds(attempt + 1).0;
            assert!(shortest_next > longest_now, "attempt {attempt}");
        }
    }

    #[test]
    fn bad_settings_are_rejected_not_panicked_on() {
        let bad = [
            SupervisorOptions::new().backoff(Backoff::new(Duration::ZERO, MS)),
            SupervisorOptions::new().backoff(Backoff::new(10 * MS, MS)),
            SupervisorOptions::new().backoff(Backoff::default().jitter(1.0)),
            SupervisorOptions::new().backoff(Backoff::default().jitter(f64::NAN)),
            SupervisorOptions::new().backoff(Backoff::default().multiplier(0.5)),
            SupervisorOptions::new().backoff(Backoff::default().multiplier(f64::INFINITY)),
            SupervisorOptions::new().health_failures(0),
            SupervisorOptions::new().health_interval(Duration::ZERO),
            SupervisorOptions::new().readiness_interval(Duration::ZERO),
            SupervisorOptions::new().restart_limit(3, Duration::ZERO),
        ];
        for options in bad {
            let result = options.validate();
            let rejected = matches!(result, Err(Error::InvalidConfig { .. }));
            assert!(rejected, "{options:?} was accepted");
        }
        assert!(SupervisorOptions::new().validate().is_ok());
    }
}
