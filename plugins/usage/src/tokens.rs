//! Token counts by kind, summed over calls.

use std::ops::AddAssign;

use serde::{Deserialize, Serialize};
use vibes_events::ApiUsage;

/// Tokens of one call, or summed over several, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// Uncached input.
    pub input: u64,
    /// Output.
    pub output: u64,
    /// Cache writes with a 5-minute lifetime.
    pub cache_creation_5m: u64,
    /// Cache writes with a 1-hour lifetime.
    pub cache_creation_1h: u64,
    /// Cache reads.
    pub cache_read: u64,
}

impl Tokens {
    /// All cache writes, both lifetimes.
    pub fn cache_creation(&self) -> u64 {
        self.cache_creation_5m
            .saturating_add(self.cache_creation_1h)
    }

    /// The input side of a request: uncached input, cache writes and cache reads (what
    /// long-context pricing compares with its threshold).
    pub fn input_side(&self) -> u64 {
        self.input
            .saturating_add(self.cache_creation())
            .saturating_add(self.cache_read)
    }

    /// Every token.
    pub fn total(&self) -> u64 {
        self.input_side().saturating_add(self.output)
    }

    pub(crate) fn as_array(self) -> [u64; 5] {
        [
            self.input,
            self.output,
            self.cache_creation_5m,
            self.cache_creation_1h,
            self.cache_read,
        ]
    }

    pub(crate) fn from_array(a: [u64; 5]) -> Self {
        Tokens {
            input: a[0],
            output: a[1],
            cache_creation_5m: a[2],
            cache_creation_1h: a[3],
            cache_read: a[4],
        }
    }
}

impl From<&ApiUsage> for Tokens {
    fn from(u: &ApiUsage) -> Self {
        Tokens {
            input: u.input_tokens,
            output: u.output_tokens,
            cache_creation_5m: u.cache_creation_5m_input_tokens,
            cache_creation_1h: u.cache_creation_1h_input_tokens,
            cache_read: u.cache_read_input_tokens,
        }
    }
}

impl AddAssign for Tokens {
    fn add_assign(&mut self, rhs: Self) {
        self.input = self.input.saturating_add(rhs.input);
        self.output = self.output.saturating_add(rhs.output);
        self.cache_creation_5m = self.cache_creation_5m.saturating_add(rhs.cache_creation_5m);
        self.cache_creation_1h = self.cache_creation_1h.saturating_add(rhs.cache_creation_1h);
        self.cache_read = self.cache_read.saturating_add(rhs.cache_read);
    }
}
