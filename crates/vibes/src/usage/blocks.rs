//! 5-hour billing blocks, as ccusage defines them: a block starts at its first call's
//! time floored to the (UTC) hour and holds every later call until one comes more than
//! 5 hours after the block's start or after the call before it; a gap of more than 5
//! hours between calls is shown as a gap block. A block is active when `now` is
//! before its end and less than 5 hours after its last call; its burn rate is its
//! input and output tokens per minute and its cost per hour between its first and
//! last call, and its projection extends both to the block's end.

use jiff::{SignedDuration, Timestamp};

use super::report::{Call, Row, RowSums, Summary};

/// The length of a block.
pub const BLOCK: SignedDuration = SignedDuration::from_hours(5);

/// One block, or a gap between blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub start: Timestamp,
    /// `start` + 5 h for a block; the next block's first call for a gap.
    pub end: Timestamp,
    pub gap: bool,
    pub active: bool,
    /// Sums (empty for a gap), with per-model sums.
    pub row: Row,
    /// For the active block with calls spread over time.
    pub burn: Option<Burn>,
}

/// An active block's rate and where it leads by the block's end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burn {
    /// Input and output tokens per minute.
    pub tokens_per_minute: f64,
    /// `None` when the block has unpriced calls only.
    pub cost_per_hour: Option<f64>,
    pub remaining_minutes: f64,
    pub projected_tokens: f64,
    pub projected_cost: Option<f64>,
}

/// The blocks of `calls` (any order), judged active or not at `now`.
pub fn blocks(calls: &[Call<'_>], now: Timestamp) -> Vec<Block> {
    let mut sorted: Vec<&Call<'_>> = calls.iter().collect();
    sorted.sort_by(|a, b| {
        (a.at, a.session_id, a.model, a.tokens.total()).cmp(&(
            b.at,
            b.session_id,
            b.model,
            b.tokens.total(),
        ))
    });
    let mut out = Vec::new();
    let mut current: Option<(Timestamp, Vec<&Call<'_>>)> = None;
    for call in sorted {
        if let Some((start, members)) = &mut current {
            let last = members.last().map_or(*start, |c| c.at);
            let since_start = call.at.duration_since(*start);
            let since_last = call.at.duration_since(last);
            if since_start <= BLOCK && since_last <= BLOCK {
                members.push(call);
                continue;
            }
            out.push(block(*start, members, now));
            if since_last > BLOCK {
                out.push(Block {
                    start: last.checked_add(BLOCK).unwrap_or(last),
                    end: call.at,
                    gap: true,
                    active: false,
                    row: Row::default(),
                    burn: None,
                });
            }
        }
        current = Some((floor_to_hour(call.at), vec![call]));
    }
    if let Some((start, members)) = current {
        out.push(block(start, &members, now));
    }
    out
}

fn block(start: Timestamp, members: &[&Call<'_>], now: Timestamp) -> Block {
    let end = start.checked_add(BLOCK).unwrap_or(start);
    let mut sums = RowSums::default();
    for call in members {
        sums.add(call);
    }
    let row = sums.finish(start.to_string());
    let last = row.summary.last.unwrap_or(start);
    let active = now.duration_since(last) < BLOCK && now < end;
    let burn = if active {
        burn(&row.summary, end, now)
    } else {
        None
    };
    Block {
        start,
        end,
        gap: false,
        active,
        row,
        burn,
    }
}

fn burn(summary: &Summary, end: Timestamp, now: Timestamp) -> Option<Burn> {
    let (first, last) = (summary.first?, summary.last?);
    let minutes = last.duration_since(first).as_secs_f64() / 60.0;
    if minutes <= 0.0 {
        return None;
    }
    let tokens = (summary.tokens.input + summary.tokens.output) as f64;
    let tokens_per_minute = tokens / minutes;
    let cost = summary.cost_usd();
    let cost_per_hour = cost.map(|c| c / minutes * 60.0);
    let remaining_minutes = (end.duration_since(now).as_secs_f64() / 60.0).max(0.0);
    Some(Burn {
        tokens_per_minute,
        cost_per_hour,
        remaining_minutes,
        projected_tokens: tokens + tokens_per_minute * remaining_minutes,
        projected_cost: cost
            .zip(cost_per_hour)
            .map(|(c, per_hour)| c + per_hour / 60.0 * remaining_minutes),
    })
}

/// `at` floored to its UTC hour.
fn floor_to_hour(at: Timestamp) -> Timestamp {
    let secs = at.as_second();
    Timestamp::from_second(secs - secs.rem_euclid(3600)).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vibes_plugin_usage::Tokens;

    fn call(at: &str, input: u64, output: u64, cost: Option<f64>) -> Call<'static> {
        Call {
            session_id: "s",
            project: None,
            model: if cost.is_some() {
                "m"
            } else {
                "unpriced-model"
            },
            at: at.parse().unwrap(),
            tokens: Tokens {
                input,
                output,
                ..Tokens::default()
            },
            output_final: true,
            cost,
        }
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_block_starts_on_the_hour_and_a_long_gap_splits_with_a_gap_block() {
        let calls = [
            call("2026-01-01T10:55:30Z", 10, 1, Some(1.0)),
            call("2026-01-01T12:00:00Z", 10, 1, Some(1.0)),
            // 15:00 is exactly 5 h after the 10:00 start: still inside.
            call("2026-01-01T15:00:00Z", 10, 1, Some(1.0)),
            // 15:00:01 after 10:00 is more than 5 h: a new block at 15:00, no gap.
            call("2026-01-01T15:00:01Z", 10, 1, Some(1.0)),
            // More than 5 h after the last call: a gap, then a block at 23:00.
            call("2026-01-01T23:30:00Z", 10, 1, Some(1.0)),
        ];
        let blocks = blocks(&calls, t("2026-01-03T00:00:00Z"));
        let shape: Vec<(String, bool, u64)> = blocks
            .iter()
            .map(|b| (b.start.to_string(), b.gap, b.row.summary.api_calls))
            .collect();
        assert_eq!(
            shape,
            [
                ("2026-01-01T10:00:00Z".to_owned(), false, 3),
                ("2026-01-01T15:00:00Z".to_owned(), false, 1),
                ("2026-01-01T20:00:01Z".to_owned(), true, 0),
                ("2026-01-01T23:00:00Z".to_owned(), false, 1),
            ]
        );
        assert_eq!(blocks[0].end, t("2026-01-01T15:00:00Z"));
        assert_eq!(blocks[2].end, t("2026-01-01T23:30:00Z"));
        assert!(blocks.iter().all(|b| !b.active && b.burn.is_none()));
    }

    #[test]
    fn the_active_block_burns_and_projects_to_its_end_at_the_given_now() {
        let calls = [
            call("2026-01-01T10:10:00Z", 1_000, 200, Some(0.5)),
            call("2026-01-01T11:10:00Z", 2_000, 400, Some(1.0)),
        ];
        // 12:00: the block 10:00-15:00 is active, 180 minutes left.
        let blocks = blocks(&calls, t("2026-01-01T12:00:00Z"));
        assert_eq!(blocks.len(), 1);
        let block = &blocks[0];
        assert!(block.active);
        let burn = block.burn.unwrap();
        // 3,600 input and output tokens over the 60 minutes between the calls.
        assert_eq!(burn.tokens_per_minute, 60.0);
        assert_eq!(burn.cost_per_hour, Some(1.5));
        assert_eq!(burn.remaining_minutes, 180.0);
        assert_eq!(burn.projected_tokens, 3_600.0 + 60.0 * 180.0);
        assert_eq!(burn.projected_cost, Some(1.5 + 1.5 * 3.0));
        // At 15:00 the block has ended; five hours after the last call it would be over
        // anyway.
        let later = super::blocks(&calls, t("2026-01-01T15:00:00Z"));
        assert!(!later[0].active && later[0].burn.is_none());
    }

    #[test]
    fn an_unpriced_active_block_has_a_token_rate_but_no_cost_rate() {
        let calls = [
            call("2026-01-01T10:00:00Z", 100, 20, None),
            call("2026-01-01T10:30:00Z", 100, 20, None),
        ];
        let blocks = blocks(&calls, t("2026-01-01T11:00:00Z"));
        let burn = blocks[0].burn.unwrap();
        assert_eq!(burn.tokens_per_minute, 8.0);
        assert_eq!((burn.cost_per_hour, burn.projected_cost), (None, None));
        assert_eq!(blocks[0].row.summary.cost_usd(), None);
    }
}
