//! Pricing: the plugin prices each API call with a price function the host passes in
//! at construction ([`Prices`]), and sums token counts ([`Tokens`]).
//!
//! Why here and not in the host: prices depend on each request (long-context rates
//! apply when one request's input side passes a threshold), so a sum of tokens cannot
//! be priced afterwards; the plugin sees every call's largest copy and prices it then.
//! The plugin does not depend on the host: it only knows this trait. A snapshot
//! records the [`Prices::fingerprint`] it was priced with; a snapshot priced with
//! another table is not restored (the runtime then replays everything), so costs never
//! mix two tables.

use std::fmt::Debug;
use std::ops::{AddAssign, SubAssign};

use serde::{Deserialize, Serialize};
use vibes_events::ApiUsage;

/// What one API call costs.
pub trait Prices: Send + Sync + Debug {
    /// The cost in USD of one call of `model` with `usage`; `None` when the model has
    /// no price.
    fn cost(&self, model: &str, usage: &ApiUsage) -> Option<f64>;

    /// Identifies the table (its version, its source): a state priced with one table
    /// is only restored under the same.
    fn fingerprint(&self) -> String;
}

/// No prices: every call is unpriced, and a coder's cost is what its agent reported.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPrices;

impl Prices for NoPrices {
    fn cost(&self, _model: &str, _usage: &ApiUsage) -> Option<f64> {
        None
    }

    fn fingerprint(&self) -> String {
        "none".into()
    }
}

/// Token counts by kind, of one call or summed over several.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// Uncached input.
    pub input: u64,
    /// Output.
    pub output: u64,
    /// Cache writes (both lifetimes).
    pub cache_write: u64,
    /// Cache reads.
    pub cache_read: u64,
}

impl Tokens {
    /// The counts of one call's usage.
    pub fn of(usage: &ApiUsage) -> Self {
        Tokens {
            input: usage.input_tokens,
            output: usage.output_tokens,
            cache_write: usage.cache_creation_input_tokens(),
            cache_read: usage.cache_read_input_tokens,
        }
    }

    /// Every token.
    pub fn total(&self) -> u64 {
        self.input
            .saturating_add(self.output)
            .saturating_add(self.cache_write)
            .saturating_add(self.cache_read)
    }
}

impl AddAssign for Tokens {
    fn add_assign(&mut self, o: Tokens) {
        self.input = self.input.saturating_add(o.input);
        self.output = self.output.saturating_add(o.output);
        self.cache_write = self.cache_write.saturating_add(o.cache_write);
        self.cache_read = self.cache_read.saturating_add(o.cache_read);
    }
}

impl SubAssign for Tokens {
    fn sub_assign(&mut self, o: Tokens) {
        self.input = self.input.saturating_sub(o.input);
        self.output = self.output.saturating_sub(o.output);
        self.cache_write = self.cache_write.saturating_sub(o.cache_write);
        self.cache_read = self.cache_read.saturating_sub(o.cache_read);
    }
}
