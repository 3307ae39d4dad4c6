//! `vibes usage daily|weekly|monthly|session|blocks`: Claude API calls, tokens and cost
//! from the usage plugin's de-duplicated calls, priced with the price table.
//!
//! The calls come from the plugin's state, brought up to date with the log by
//! [`plugin_query::load`] (a catch-up ending in a snapshot when no `serve` runs, so
//! the next report reads only what was stored since).

use anyhow::{Context, Result};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use vibes_plugin_usage::Usage;

use super::plugin_query;
use crate::cli::{GlobalArgs, UsageArgs, UsageReport};
use crate::output::{DataOut, Outcome};
use crate::storage::Storage;
use crate::usage::render::{self, Context as RenderContext};
use crate::usage::report::{self, Call, Filter, Period};
use crate::usage::{PriceTable, blocks};

pub fn run(storage: &Storage, args: &UsageArgs, global: &GlobalArgs) -> Result<Outcome> {
    let prices = price_table(storage, args.prices.as_deref())?;
    let (tz, tz_name) = time_zone(args.timezone.as_deref())?;
    let now = match &args.now {
        Some(text) => text
            .parse::<Timestamp>()
            .with_context(|| format!("--now {text:?} is not an RFC 3339 time"))?,
        None => Timestamp::now(),
    };
    let filter = Filter {
        since: args.since.as_deref().map(report::parse_day).transpose()?,
        until: args.until.as_deref().map(report::parse_day).transpose()?,
        project: args.project.clone(),
    };

    let mut usage = Usage::new();
    let problems = load(storage, &mut usage, global)?;
    let calls = report::priced_calls(&usage, &prices, &filter, &tz);

    let ctx = RenderContext {
        tz: &tz,
        tz_name: &tz_name,
        prices: &prices.version,
        breakdown: args.breakdown,
    };
    let text = match args.report {
        UsageReport::Daily | UsageReport::Weekly | UsageReport::Monthly => {
            let period = match args.report {
                UsageReport::Daily => Period::Daily,
                UsageReport::Weekly => Period::Weekly,
                _ => Period::Monthly,
            };
            let rows = report::by_period(calls, period, &tz);
            let total = report::total(&rows);
            if args.json {
                json(&render::periods_json(period.as_str(), &rows, &total, &ctx))?
            } else {
                render::periods_text(period.as_str(), &rows, &total, &ctx)
            }
        }
        UsageReport::Session => {
            let rows = report::by_session(calls);
            let total = report::total(rows.iter().map(|s| &s.row));
            if args.json {
                json(&render::sessions_json(&rows, &total, &ctx))?
            } else {
                render::sessions_text(&rows, &total, &ctx)
            }
        }
        UsageReport::Blocks => {
            let calls: Vec<Call<'_>> = calls.collect();
            let blocks = blocks::blocks(&calls, now);
            let total = report::total(blocks.iter().map(|b| &b.row));
            if args.json {
                json(&render::blocks_json(&blocks, now, &ctx))?
            } else {
                render::blocks_text(&blocks, &total, now, &ctx)
            }
        }
    };
    let mut out = DataOut::new(false);
    let _ = out.line(text.trim_end())?;
    let _ = out.flush()?;
    // The table is dropped by the process's exit: freeing it call by call would only
    // add to the report's time.
    std::mem::forget(usage);
    Ok(Outcome::partial_if(problems))
}

/// The price table: the built-in prices under the price file `flag` names, else the
/// one `usage.prices` names, if any.
pub fn price_table(storage: &Storage, flag: Option<&std::path::Path>) -> Result<PriceTable> {
    match flag.or(storage.config.usage_prices.as_deref()) {
        Some(path) => PriceTable::with_override(path),
        None => Ok(PriceTable::builtin()?),
    }
}

fn json(value: &serde_json::Value) -> Result<String> {
    serde_json::to_string_pretty(value).context("encoding the report")
}

/// Fills `usage` from the log; returns whether records were skipped (reported on
/// stderr).
fn load(storage: &Storage, usage: &mut Usage, global: &GlobalArgs) -> Result<bool> {
    Ok(plugin_query::load(storage, usage, global)?.skipped > 0)
}

/// The time zone `name` names (an IANA name, `UTC`, or an offset such as `+05:30`),
/// else this machine's; with the name to show.
pub fn time_zone(name: Option<&str>) -> Result<(TimeZone, String)> {
    let Some(name) = name else {
        let tz = TimeZone::system();
        let shown = tz.iana_name().unwrap_or("local").to_owned();
        return Ok((tz, shown));
    };
    if let Some(offset) = parse_offset(name) {
        return Ok((TimeZone::fixed(offset), name.to_owned()));
    }
    if name.eq_ignore_ascii_case("UTC") {
        // Without a lookup: the first one lists the whole zone database.
        return Ok((TimeZone::UTC, name.to_owned()));
    }
    let tz = TimeZone::get(name).with_context(|| {
        format!("--timezone {name:?} is neither a time zone name (Europe/Berlin, UTC) nor an offset (+05:30)")
    })?;
    Ok((tz, name.to_owned()))
}

/// `+05:30`, `-08:00`, `+09` as a fixed offset.
fn parse_offset(text: &str) -> Option<jiff::tz::Offset> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (hours, minutes) = rest.split_once(':').unwrap_or((rest, "0"));
    if hours.is_empty() || hours.len() > 2 || minutes.len() > 2 {
        return None;
    }
    let (hours, minutes): (i32, i32) = (hours.parse().ok()?, minutes.parse().ok()?);
    if hours > 18 || minutes > 59 {
        return None;
    }
    jiff::tz::Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}
