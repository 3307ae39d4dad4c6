//! The history's filters (seed 002's `AICoderEventFilter`: coder, type, since, until)
//! and the cursor that makes a per-coder subscription over a log.
//!
//! A plugin over a log has no callbacks to register: "subscribing to a coder" is
//! following a cursor. The aggregator numbers every event it records (`seq`); the
//! query `history coder=ID after=N` answers the coder's events after `N` and the
//! cursor to pass next time (`next`), so a consumer that polls it sees each event once
//! and in order, as long as it polls before the history's capacity has moved past its
//! cursor (the answer says when it has: `missed`). A consumer that must see every
//! event reads the plugin's topic `ai-coder/events` as its own consumer group and
//! keeps those whose `coder_id` is the one it follows.

use vibes_events::{Timestamp, TypePattern};
use vibes_plugin::{QueryArgs, QueryError};

use crate::types::CoderEvent;

/// Which events of the history a query wants.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    /// Only this coder's (and, with `children`, its subagents').
    pub coder: Option<String>,
    /// Also the subagents of `coder` (`<coder>/...`).
    pub children: bool,
    /// Only types this pattern matches (`ai_coder.failed`, `ai_coder.file_*`).
    pub event_type: Option<TypePattern>,
    /// Only events at or after this time.
    pub since: Option<Timestamp>,
    /// Only events at or before this time.
    pub until: Option<Timestamp>,
    /// Only events after this sequence number (the subscription cursor).
    pub after: Option<u64>,
    /// At most this many (the oldest that match); the cursor then points after them.
    pub limit: Option<usize>,
}

impl HistoryFilter {
    /// From a query's arguments: `coder`, `type`, `since`, `until` (RFC 3339),
    /// `after` (a sequence number), `limit`, `children` (`true`).
    pub fn from_args(args: &QueryArgs) -> Result<Self, QueryError> {
        let time = |name: &str| -> Result<Option<Timestamp>, QueryError> {
            args.get(name)
                .map(|s| {
                    s.parse::<Timestamp>().map_err(|e| {
                        QueryError::BadArgument(format!("{name} {s:?} is no RFC 3339 time: {e}"))
                    })
                })
                .transpose()
        };
        let number = |name: &str| -> Result<Option<u64>, QueryError> {
            args.get(name)
                .map(|s| {
                    s.parse::<u64>().map_err(|_| {
                        QueryError::BadArgument(format!("{name} {s:?} is not a whole number"))
                    })
                })
                .transpose()
        };
        let children = match args.get("children") {
            None | Some("false") => false,
            Some("true" | "children") => true,
            Some(other) => {
                return Err(QueryError::BadArgument(format!(
                    "children takes true or false, not {other:?}"
                )));
            }
        };
        let filter = HistoryFilter {
            coder: args.get("coder").map(str::to_owned),
            children,
            event_type: args.get("type").map(TypePattern::new),
            since: time("since")?,
            until: time("until")?,
            after: number("after")?,
            limit: number("limit")?.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        };
        if let (Some(since), Some(until)) = (filter.since, filter.until)
            && since > until
        {
            return Err(QueryError::BadArgument(format!(
                "since {since} is after until {until}"
            )));
        }
        Ok(filter)
    }

    /// Whether `event` passes (the cursor and limit are applied by the caller).
    pub fn matches(&self, event: &CoderEvent) -> bool {
        if let Some(coder) = &self.coder {
            let own = event.coder_id == *coder;
            let child = self.children
                && event
                    .coder_id
                    .strip_prefix(coder.as_str())
                    .is_some_and(|rest| rest.starts_with('/'));
            if !own && !child {
                return false;
            }
        }
        if let Some(pattern) = &self.event_type
            && !pattern.matches(&event.event_type)
        {
            return false;
        }
        if self.since.is_some_and(|s| event.timestamp < s) {
            return false;
        }
        if self.until.is_some_and(|u| event.timestamp > u) {
            return false;
        }
        self.after.is_none_or(|a| event.seq > a)
    }
}
