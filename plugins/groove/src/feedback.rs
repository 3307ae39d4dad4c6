//! Strategy feedback: after a person applies a solution, how the failure rate of the
//! gap's tool and head changed.

use crate::gaps::Applied;

/// Sessions after the apply needed before any feedback.
pub const FEEDBACK_MIN_SESSIONS: u64 = 2;
/// How far the adjustment must move from the last one reported to be reported again.
pub const FEEDBACK_STEP: f64 = 0.1;

/// The measured effect of an applied solution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Feedback {
    /// Failure rate (sessions where the cluster failed / sessions that ran the tool
    /// and head) before the apply.
    pub before: f64,
    /// The same over the sessions after it.
    pub after: f64,
    /// `before - after`: positive when the solution helped.
    pub adjustment: f64,
    /// Sessions after the apply.
    pub sessions_after: u64,
}

/// The feedback for `applied`, given the gap's counts now (`ran`, `failed`), when it
/// is due: enough sessions after the apply and an adjustment that moved by at least
/// [`FEEDBACK_STEP`] since the last one reported.
pub fn due(applied: &Applied, ran: u64, failed: u64) -> Option<Feedback> {
    let sessions_after = ran.saturating_sub(applied.ran_before);
    if sessions_after < FEEDBACK_MIN_SESSIONS {
        return None;
    }
    let rate = |failed: u64, ran: u64| {
        if ran == 0 {
            0.0
        } else {
            failed as f64 / ran as f64
        }
    };
    let before = rate(applied.failed_before, applied.ran_before);
    let after = rate(failed.saturating_sub(applied.failed_before), sessions_after);
    let adjustment = round2(before - after);
    let moved = applied
        .last_adjustment
        .is_none_or(|last| (adjustment - last).abs() >= FEEDBACK_STEP - 1e-9);
    moved.then_some(Feedback {
        before: round2(before),
        after: round2(after),
        adjustment,
        sessions_after,
    })
}

/// `x` rounded to two decimals (so outputs stay short and stable).
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
