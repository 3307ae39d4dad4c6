//! [`CpuAllocation`]: how many shards a managed server runs, in the server's syntax.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How many shards (threads, each pinned to a core) a managed server runs:
/// `IGGY_SYSTEM_SHARDING_CPU_ALLOCATION`. Written as a number (`1`), `"all"`, or a
/// core range `"start..end"` (end exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuAllocation {
    /// One shard per available core.
    All,
    /// This many shards, pinned to cores `0..n`.
    Shards(u32),
    /// One shard per core in `start..end`.
    Cores {
        /// First core.
        start: u32,
        /// One past the last core.
        end: u32,
    },
}

impl Default for CpuAllocation {
    /// One shard: enough for one machine's agents, and the least memory.
    fn default() -> Self {
        CpuAllocation::Shards(1)
    }
}

impl CpuAllocation {
    /// How many shards the server will run.
    pub fn shards(&self) -> u32 {
        match *self {
            CpuAllocation::All => std::thread::available_parallelism()
                .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
                .unwrap_or(1),
            CpuAllocation::Shards(n) => n,
            CpuAllocation::Cores { start, end } => end.saturating_sub(start),
        }
    }
}

impl fmt::Display for CpuAllocation {
    /// The server's syntax: `all`, `4`, `0..2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpuAllocation::All => f.write_str("all"),
            CpuAllocation::Shards(n) => write!(f, "{n}"),
            CpuAllocation::Cores { start, end } => write!(f, "{start}..{end}"),
        }
    }
}

impl FromStr for CpuAllocation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "all" {
            return Ok(CpuAllocation::All);
        }
        let number = |part: &str| {
            part.trim().parse::<u32>().map_err(|_| {
                format!(r#"{s:?} is not a shard count, "all", or a core range like "0..2""#)
            })
        };
        if let Some((start, end)) = s.split_once("..") {
            let (start, end) = (number(start)?, number(end)?);
            if start >= end {
                return Err(format!("the core range {s:?} is empty"));
            }
            return Ok(CpuAllocation::Cores { start, end });
        }
        match number(s)? {
            0 => Err("the shard count must be at least 1".into()),
            n => Ok(CpuAllocation::Shards(n)),
        }
    }
}

impl Serialize for CpuAllocation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            CpuAllocation::Shards(n) => serializer.serialize_u32(*n),
            other => serializer.collect_str(other),
        }
    }
}

impl<'de> Deserialize<'de> for CpuAllocation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Text(String),
        }
        let text = match Raw::deserialize(deserializer)? {
            Raw::Number(n) => n.to_string(),
            Raw::Text(s) => s,
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IggyConfig;

    fn parse(text: &str) -> Result<IggyConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn cpu_allocation_takes_a_number_all_or_a_range() {
        let of =
            |value: &str| parse(&format!("cpu_allocation = {value}")).map(|c| c.cpu_allocation);
        assert_eq!(of("2").unwrap(), CpuAllocation::Shards(2));
        assert_eq!(of("\"3\"").unwrap(), CpuAllocation::Shards(3));
        assert_eq!(of("\"all\"").unwrap(), CpuAllocation::All);
        assert_eq!(
            of("\"1..3\"").unwrap(),
            CpuAllocation::Cores { start: 1, end: 3 }
        );
        for bad in ["0", "-1", "\"many\"", "\"3..1\""] {
            assert!(of(bad).is_err(), "{bad} was accepted");
        }
        assert_eq!(
            CpuAllocation::Cores { start: 1, end: 3 }.to_string(),
            "1..3"
        );
        assert_eq!(CpuAllocation::Cores { start: 1, end: 3 }.shards(), 2);
    }
}
