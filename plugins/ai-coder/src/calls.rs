//! One coder's API calls, each counted once (docs/SOURCES.md, "Counting API calls").
//!
//! Claude Code writes one response as several copies (one line per content block),
//! each a streaming snapshot of the usage; the copies of one call are consecutive
//! among the coder's events. A call is counted when its first copy comes and kept
//! *pending* while its copies come (the largest wins, [`ApiUsage::supersedes`]); it is
//! reported (`ai_coder.api_call`, priced) when it is done: a copy carries a stop
//! reason, or the coder does anything that is not part of the same response (another
//! call, a content block of another message, a turn's end, an error, its end; not a
//! tool result, which Claude Code 2.1 writes between a response's blocks). A copy
//! of the call reported last that comes after it is a late copy: counted, not
//! reported again.

use serde::{Deserialize, Serialize};
use vibes_events::{ApiCall, ApiUsage, Timestamp};

use crate::prices::{Prices, Tokens};

/// A call being put together from its copies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingCall {
    /// (`message_id`, `request_id`), or `None` for a copy without a message id.
    pub key: Option<(String, String)>,
    /// The time of its first copy.
    pub at: Timestamp,
    /// The model that answered.
    pub model: Option<String>,
    /// The largest copy's usage.
    pub usage: ApiUsage,
    /// Whether a copy carried a stop reason.
    pub output_final: bool,
    /// The stop reason, when one was given.
    pub stop_reason: Option<String>,
}

/// A call that is done, with its price.
#[derive(Debug, Clone, PartialEq)]
pub struct DoneCall {
    /// The call.
    pub call: PendingCall,
    /// Its cost in USD, when its model has a price.
    pub cost_usd: Option<f64>,
}

/// A coder's calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Calls {
    pending: Option<PendingCall>,
    last_key: Option<(String, String)>,
    /// Calls counted (the pending one included).
    pub count: u64,
    /// Their tokens (the pending one's largest copy so far included).
    pub tokens: Tokens,
    /// The priced cost of the reported calls.
    pub cost_usd: f64,
    /// Reported calls whose model has no price.
    pub unpriced: u64,
    /// Copies that came after their call was reported.
    pub late_copies: u64,
}

impl Calls {
    /// Folds in one copy at `at`. Returns the calls this completes: the pending one
    /// when this copy starts another, and this one when it is final (or has no key).
    pub fn add(&mut self, copy: &ApiCall, at: Timestamp, prices: &dyn Prices) -> Vec<DoneCall> {
        let key = copy.key().map(|(m, r)| (m.to_owned(), r.to_owned()));
        let mut done = Vec::new();
        match &mut self.pending {
            Some(p) if key.is_some() && p.key == key => {
                if copy.usage.supersedes(&p.usage) {
                    self.tokens -= Tokens::of(&p.usage);
                    self.tokens += Tokens::of(&copy.usage);
                    p.usage = copy.usage.clone();
                }
                if copy.model.is_some() {
                    p.model.clone_from(&copy.model);
                }
                if copy.is_final() {
                    p.output_final = true;
                    p.stop_reason = copy.stop_reason.clone().or(p.stop_reason.take());
                }
            }
            _ if key.is_some() && key == self.last_key => {
                self.late_copies += 1;
                return done;
            }
            _ => {
                done.extend(self.flush(prices));
                self.count += 1;
                self.tokens += Tokens::of(&copy.usage);
                self.pending = Some(PendingCall {
                    key,
                    at,
                    model: copy.model.clone(),
                    usage: copy.usage.clone(),
                    output_final: copy.is_final(),
                    stop_reason: copy.stop_reason.clone(),
                });
            }
        }
        let pending = self.pending.as_ref();
        if pending.is_some_and(|p| p.output_final || p.key.is_none()) {
            done.extend(self.flush(prices));
        }
        done
    }

    /// Whether an event of the same coder that belongs to API message `message_id`
    /// continues the pending call (its content blocks come between its copies).
    pub fn continues(&self, message_id: Option<&str>) -> bool {
        match (&self.pending, message_id) {
            (Some(p), Some(m)) => p.key.as_ref().is_some_and(|(pm, _)| pm == m),
            _ => false,
        }
    }

    /// Whether a call is pending.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The pending call.
    pub fn pending(&self) -> Option<&PendingCall> {
        self.pending.as_ref()
    }

    /// Reports the pending call, if any, priced.
    pub fn flush(&mut self, prices: &dyn Prices) -> Option<DoneCall> {
        let call = self.pending.take()?;
        let cost_usd = price(&call, prices);
        match cost_usd {
            Some(c) => self.cost_usd += c,
            None => self.unpriced += 1,
        }
        self.last_key.clone_from(&call.key);
        Some(DoneCall { call, cost_usd })
    }

    /// The priced cost including the pending call's largest copy so far.
    pub fn cost_with_pending(&self, prices: &dyn Prices) -> f64 {
        self.cost_usd
            + self
                .pending
                .as_ref()
                .and_then(|p| price(p, prices))
                .unwrap_or(0.0)
    }
}

fn price(call: &PendingCall, prices: &dyn Prices) -> Option<f64> {
    prices.cost(call.model.as_deref()?, &call.usage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prices::NoPrices;

    #[derive(Debug)]
    struct PerOutput;
    impl Prices for PerOutput {
        fn cost(&self, _model: &str, usage: &ApiUsage) -> Option<f64> {
            Some(usage.output_tokens as f64)
        }
        fn fingerprint(&self) -> String {
            "per-output".into()
        }
    }

    fn copy(msg: &str, output: u64, stop: Option<&str>) -> ApiCall {
        let mut c = ApiCall::new(ApiUsage::new(10, output, 0, 0, 100));
        c.message_id = Some(msg.into());
        c.request_id = Some(format!("req_{msg}"));
        c.model = Some("m".into());
        c.stop_reason = stop.map(str::to_owned);
        c
    }

    #[test]
    fn copies_are_one_call_reported_with_the_largest_when_the_next_one_starts() {
        let at = Timestamp::from_second(1_700_000_000).unwrap();
        let later = Timestamp::from_second(1_700_000_009).unwrap();
        let mut calls = Calls::default();
        assert!(calls.add(&copy("a", 5, None), at, &PerOutput).is_empty());
        assert!(
            calls
                .add(&copy("a", 50, None), later, &PerOutput)
                .is_empty()
        );
        assert!(calls.add(&copy("a", 7, None), later, &PerOutput).is_empty());
        assert!(calls.continues(Some("a")));
        assert!(!calls.continues(Some("b")));
        assert_eq!((calls.count, calls.tokens.output), (1, 50));

        let done = calls.add(&copy("b", 1, None), later, &PerOutput);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].call.usage.output_tokens, 50);
        assert_eq!(done[0].call.at, at, "the time of the first copy");
        assert_eq!(done[0].cost_usd, Some(50.0));
        // A late copy of `a` is not a new call.
        assert!(
            calls
                .add(&copy("b", 2, Some("end_turn")), later, &PerOutput)
                .len()
                == 1
        );
        assert!(calls.add(&copy("b", 2, None), later, &PerOutput).is_empty());
        assert_eq!((calls.count, calls.late_copies), (2, 1));
        assert!(
            !calls.has_pending(),
            "a final copy reports its call at once"
        );
        assert_eq!(calls.cost_usd, 52.0);

        let mut unpriced = Calls::default();
        unpriced.add(&copy("x", 1, None), at, &NoPrices);
        assert!(unpriced.flush(&NoPrices).unwrap().cost_usd.is_none());
        assert_eq!(unpriced.unpriced, 1);
    }
}
