//! The cost of a run's API calls so far, priced as the agent's stream-json reports them.
//!
//! An `assistant` line carries its API message's `usage` and `model`. Claude Code writes
//! one line per content block, each repeating the message's usage (a streaming
//! snapshot): the calls are counted once each, keeping the largest copy, by the rules of
//! [`ApiCalls`]. Each call is priced with the host's price table (as `vibes usage`
//! does); a model the table does not know costs nothing and is named in
//! [`RunCost::unpriced_models`].

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::Value;
use vibes_events::ApiCall;
use vibes_plugin_usage::Tokens;
use vibes_sources::calls::ApiCalls;
use vibes_sources::transcript::api_usage;

use crate::usage::PriceTable;

/// The calls of one run and their price.
#[derive(Debug, Clone)]
pub struct RunCost {
    prices: PriceTable,
    calls: ApiCalls,
    usd: f64,
    unpriced: BTreeSet<String>,
}

impl RunCost {
    /// No calls yet, priced with `prices`.
    pub fn new(prices: PriceTable) -> Self {
        RunCost {
            prices,
            calls: ApiCalls::new(),
            usd: 0.0,
            unpriced: BTreeSet::new(),
        }
    }

    /// Takes in stdout line `line_number`; returns whether it was a copy of an API call
    /// (the cost may have changed).
    pub fn feed(&mut self, line: &[u8], line_number: u64) -> bool {
        let Some(call) = call_of(line) else {
            return false;
        };
        // Only a copy without a message id uses the key; the line number keeps it apart.
        self.calls
            .add_call(&call, Timestamp::now(), &line_number.to_string());
        self.usd = 0.0;
        for record in self.calls.calls() {
            let model = record.model.as_deref().unwrap_or("");
            match self.prices.cost(model, &Tokens::from(&record.usage)) {
                Some(usd) => self.usd += usd,
                None => {
                    self.unpriced.insert(model.to_owned());
                }
            }
        }
        true
    }

    /// USD so far.
    pub fn usd(&self) -> f64 {
        self.usd
    }

    /// Distinct API calls so far.
    pub fn calls(&self) -> usize {
        self.calls.len()
    }

    /// Models of calls the price table does not know (priced at nothing).
    pub fn unpriced_models(&self) -> &BTreeSet<String> {
        &self.unpriced
    }
}

/// The API call an `assistant` stream-json line reports, if it is one with a usage.
fn call_of(line: &[u8]) -> Option<ApiCall> {
    // Most lines are not assistant messages; those are not parsed twice.
    if !contains(line, b"\"usage\"") || !contains(line, b"\"assistant\"") {
        return None;
    }
    let Value::Object(mut obj) = serde_json::from_slice::<Value>(line).ok()? else {
        return None;
    };
    if obj.get("type").and_then(Value::as_str) != Some("assistant") {
        return None;
    }
    let Some(Value::Object(mut message)) = obj.remove("message") else {
        return None;
    };
    let usage = api_usage(message.remove("usage")?).ok()?;
    let text = |value: Option<Value>| match value {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let mut call = ApiCall::new(usage);
    call.message_id = text(message.remove("id"));
    call.model = text(message.remove("model"));
    call.stop_reason = text(message.remove("stop_reason"));
    call.output_final = call.stop_reason.is_some();
    call.session_id = text(obj.remove("session_id"));
    Some(call)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assistant(id: &str, model: &str, output: u64) -> String {
        format!(
            r#"{{"type":"assistant","session_id":"s","message":{{"id":"{id}","model":"{model}","usage":{{"input_tokens":1000000,"output_tokens":{output}}}}}}}"#
        )
    }

    #[test]
    fn copies_of_a_call_count_once_at_their_largest_and_are_priced() {
        let prices = PriceTable::builtin().expect("prices");
        let model = "claude-sonnet-4-20250514";
        let one_million_in = prices
            .cost(
                model,
                &Tokens {
                    input: 1_000_000,
                    ..Tokens::default()
                },
            )
            .expect("a priced model");
        let mut cost = RunCost::new(prices);
        assert!(!cost.feed(br#"{"type":"system","subtype":"init"}"#, 1));
        assert!(cost.feed(assistant("msg_1", model, 10).as_bytes(), 2));
        assert!(cost.feed(assistant("msg_1", model, 0).as_bytes(), 3));
        assert_eq!(cost.calls(), 1);
        let first = cost.usd();
        assert!(first > one_million_in, "{first}");
        assert!(cost.feed(assistant("msg_2", model, 0).as_bytes(), 4));
        assert_eq!(cost.calls(), 2);
        assert!((cost.usd() - first - one_million_in).abs() < 1e-9);
        assert!(cost.unpriced_models().is_empty());

        assert!(cost.feed(assistant("msg_3", "no-such-model", 5).as_bytes(), 5));
        assert_eq!(cost.unpriced_models().len(), 1);
        assert!((cost.usd() - first - one_million_in).abs() < 1e-9);
        // Not JSON: not a call.
        assert!(!cost.feed(b"\"assistant\" \"usage\" {", 6));
    }
}
