//! A reader's place in the event topic: per partition, the next offset to read. Pages
//! of `GET /api/events` end with one (`next`), and every event of `GET /api/stream`
//! carries one as its SSE id, so a client that sends it back (`cursor=`, or the
//! `Last-Event-ID` a reconnecting EventSource sends) goes on right after, with no gap
//! and no repeat.
//!
//! Written as the offsets in partition order, comma-separated: `1042` for one
//! partition, `17,0,230` for three.

use std::fmt;

use vibes_log::Offset;

use super::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cursor(pub Vec<Offset>);

impl Cursor {
    /// Parses `text` for a topic of `partitions` partitions; `what` names the
    /// parameter in the error.
    pub(super) fn parse(text: &str, partitions: u32, what: &str) -> Result<Cursor, ApiError> {
        let offsets = text
            .split(',')
            .map(|part| part.trim().parse::<Offset>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid {what} {text:?}: expected the next offset of each partition, comma-separated (such as 120)"
                ))
            })?;
        if offsets.len() != partitions as usize {
            return Err(ApiError::bad_request(format!(
                "invalid {what} {text:?}: it has {} position{}, the topic has {partitions} partition{}",
                offsets.len(),
                if offsets.len() == 1 { "" } else { "s" },
                if partitions == 1 { "" } else { "s" },
            )));
        }
        Ok(Cursor(offsets))
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, offset) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{offset}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_checks_the_partition_count() {
        let cursor = Cursor::parse("17,0,230", 3, "cursor").expect("parses");
        assert_eq!(cursor, Cursor(vec![17, 0, 230]));
        assert_eq!(cursor.to_string(), "17,0,230");
        let err = Cursor::parse("17,0", 3, "cursor").expect_err("two of three");
        assert!(
            err.reason.contains("it has 2 positions, the topic has 3"),
            "{}",
            err.reason
        );
        let err = Cursor::parse("x", 1, "Last-Event-ID").expect_err("not a number");
        assert!(
            err.reason.starts_with("invalid Last-Event-ID \"x\""),
            "{}",
            err.reason
        );
        assert!(Cursor::parse("-1", 1, "cursor").is_err());
    }
}
