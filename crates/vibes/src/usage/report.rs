//! Aggregation: priced calls, filters, and sums per period, session and model.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;
use vibes_plugin_usage::{CallView, Tokens};

use super::prices::{ModelPrice, PriceTable};

/// The model name of a call that names none.
pub const UNKNOWN_MODEL: &str = "unknown";

/// One call, priced.
#[derive(Debug, Clone, PartialEq)]
pub struct Call<'a> {
    pub session_id: &'a str,
    pub project: Option<&'a str>,
    pub model: &'a str,
    /// Its earliest copy's time.
    pub at: Timestamp,
    pub tokens: Tokens,
    pub output_final: bool,
    /// `None` when the model has no price.
    pub cost: Option<f64>,
}

/// Prices calls, finding each model's prices once (a table has hundreds of
/// thousands of calls of a handful of models).
#[derive(Debug)]
pub struct Pricer<'p, 'a> {
    prices: &'p PriceTable,
    found: HashMap<&'a str, Option<&'p ModelPrice>>,
}

impl<'p, 'a> Pricer<'p, 'a> {
    pub fn new(prices: &'p PriceTable) -> Self {
        Pricer {
            prices,
            found: HashMap::new(),
        }
    }

    /// `view` priced.
    pub fn price(&mut self, view: &CallView<'a>) -> Call<'a> {
        let model = view.model.unwrap_or(UNKNOWN_MODEL);
        let prices = self.prices;
        let price = *self
            .found
            .entry(model)
            .or_insert_with(|| prices.find(model));
        Call {
            session_id: view.session_id.unwrap_or("unknown"),
            project: view.project,
            model,
            at: view.first,
            tokens: view.tokens,
            output_final: view.output_final,
            cost: price.map(|p| p.cost(&view.tokens)),
        }
    }
}

/// The calls of `usage` that `filter` keeps (days in `tz`), priced.
pub fn priced_calls<'a>(
    usage: &'a vibes_plugin_usage::Usage,
    prices: &PriceTable,
    filter: &Filter,
    tz: &TimeZone,
) -> Vec<Call<'a>> {
    let mut pricer = Pricer::new(prices);
    usage
        .calls()
        .map(|view| pricer.price(&view))
        .filter(|call| filter.keeps(call, tz))
        .collect()
}

/// Which calls a report counts.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// First day counted (in the report's time zone).
    pub since: Option<Date>,
    /// Last day counted.
    pub until: Option<Date>,
    /// Only this project: its path, its last path component, or Claude Code's folder
    /// name for it (`-home-dev-spotter`).
    pub project: Option<String>,
}

impl Filter {
    /// Whether `call` is counted, with days in `tz`.
    pub fn keeps(&self, call: &Call<'_>, tz: &TimeZone) -> bool {
        if self.since.is_some() || self.until.is_some() {
            let day = call.at.to_zoned(tz.clone()).date();
            if self.since.is_some_and(|s| day < s) || self.until.is_some_and(|u| day > u) {
                return false;
            }
        }
        match &self.project {
            None => true,
            Some(want) => call.project.is_some_and(|p| project_matches(p, want)),
        }
    }
}

/// Whether project path `project` is the project `want` names.
pub fn project_matches(project: &str, want: &str) -> bool {
    let slug: String = project
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    project == want
        || project.trim_end_matches('/').rsplit('/').next() == Some(want)
        || slug == want
}

/// A day given as `YYYY-MM-DD` or `YYYYMMDD`.
pub fn parse_day(text: &str) -> anyhow::Result<Date> {
    let dashed = if text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}-{}-{}", &text[..4], &text[4..6], &text[6..])
    } else {
        text.to_owned()
    };
    dashed
        .parse::<Date>()
        .map_err(|e| anyhow::anyhow!("{text:?} is not a day (YYYY-MM-DD or YYYYMMDD): {e}"))
}

/// Sums over calls.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub api_calls: u64,
    /// Calls whose output count may be short (no stop reason seen).
    pub not_final: u64,
    pub tokens: Tokens,
    /// The cost of the priced calls.
    pub priced_cost: f64,
    pub priced_calls: u64,
    /// Calls of models without a price, by model.
    pub unpriced: BTreeMap<String, u64>,
    pub models: BTreeSet<String>,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

impl Summary {
    pub fn add(&mut self, call: &Call<'_>) {
        self.api_calls += 1;
        self.not_final += u64::from(!call.output_final);
        self.tokens += call.tokens;
        match call.cost {
            Some(cost) => {
                self.priced_cost += cost;
                self.priced_calls += 1;
            }
            None => match self.unpriced.get_mut(call.model) {
                Some(n) => *n += 1,
                None => {
                    self.unpriced.insert(call.model.to_owned(), 1);
                }
            },
        }
        if !self.models.contains(call.model) {
            self.models.insert(call.model.to_owned());
        }
        self.first = Some(self.first.map_or(call.at, |f| f.min(call.at)));
        self.last = Some(self.last.map_or(call.at, |l| l.max(call.at)));
    }

    /// The cost: `None` when every call is of an unpriced model (never $0 for them);
    /// with some unpriced calls, the cost of the priced ones (a lower bound).
    pub fn cost_usd(&self) -> Option<f64> {
        (self.priced_calls > 0 || self.unpriced.is_empty()).then_some(self.priced_cost)
    }

    /// Whether the output count (and so the cost) is final.
    pub fn output_final(&self) -> bool {
        self.not_final == 0
    }

    /// Whether the cost leaves calls out (unpriced models) or counts output that may
    /// be short: it is then a lower bound.
    pub fn cost_is_lower_bound(&self) -> bool {
        !self.unpriced.is_empty() || !self.output_final()
    }
}

/// A report's periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Daily,
    /// Weeks from Monday, named by their Monday.
    Weekly,
    Monthly,
}

impl Period {
    /// The name of the period `at` falls in, in `tz`.
    pub fn key(self, at: Timestamp, tz: &TimeZone) -> String {
        let day = at.to_zoned(tz.clone()).date();
        match self {
            Period::Daily => day.to_string(),
            Period::Weekly => {
                let back = i64::from(day.weekday().to_monday_zero_offset());
                day.checked_sub(jiff::Span::new().days(back))
                    .unwrap_or(day)
                    .to_string()
            }
            Period::Monthly => format!("{:04}-{:02}", day.year(), day.month()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Daily => "daily",
            Period::Weekly => "weekly",
            Period::Monthly => "monthly",
        }
    }
}

/// One row of a report: its key, its sums, and its sums per model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub key: String,
    pub summary: Summary,
    pub by_model: BTreeMap<String, Summary>,
}

impl Row {
    fn add(&mut self, call: &Call<'_>) {
        self.summary.add(call);
        match self.by_model.get_mut(call.model) {
            Some(summary) => summary.add(call),
            None => {
                let mut summary = Summary::default();
                summary.add(call);
                self.by_model.insert(call.model.to_owned(), summary);
            }
        }
    }
}

/// Rows per period, in time order.
pub fn by_period(calls: &[Call<'_>], period: Period, tz: &TimeZone) -> Vec<Row> {
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut keys = PeriodKeys::new(period, tz);
    for call in calls {
        let key = keys.key(call.at);
        match rows.get_mut(key) {
            Some(row) => row.add(call),
            None => {
                let mut row = Row {
                    key: key.to_owned(),
                    ..Row::default()
                };
                row.add(call);
                rows.insert(key.to_owned(), row);
            }
        }
    }
    rows.into_values().collect()
}

/// [`Period::key`] with a memory: periods are runs of whole quarter hours in every
/// time zone in use, so a quarter hour whose first and last second fall in the same
/// period gives that period for every second in it; any other is worked out each
/// time. Exact in any zone; a few hundred zone conversions instead of one per call.
#[derive(Debug)]
struct PeriodKeys<'t> {
    period: Period,
    tz: &'t TimeZone,
    known: HashMap<i64, String>,
    scratch: String,
}

impl<'t> PeriodKeys<'t> {
    const SPAN: i64 = 900;

    fn new(period: Period, tz: &'t TimeZone) -> Self {
        PeriodKeys {
            period,
            tz,
            known: HashMap::new(),
            scratch: String::new(),
        }
    }

    fn key(&mut self, at: Timestamp) -> &str {
        let bucket = at.as_second().div_euclid(Self::SPAN);
        if !self.known.contains_key(&bucket) {
            let whole = [bucket * Self::SPAN, bucket * Self::SPAN + Self::SPAN - 1]
                .map(|s| Timestamp::from_second(s).map(|t| self.period.key(t, self.tz)));
            match whole {
                [Ok(first), Ok(last)] if first == last => {
                    self.known.insert(bucket, first);
                }
                _ => {
                    self.scratch = self.period.key(at, self.tz);
                    return &self.scratch;
                }
            }
        }
        &self.known[&bucket]
    }
}

/// Rows per project (`unknown` for calls that name none), by name.
pub fn by_project(calls: &[Call<'_>]) -> Vec<Row> {
    by_key(calls, |call| call.project.unwrap_or("unknown"))
}

/// Rows per model, by name.
pub fn by_model(calls: &[Call<'_>]) -> Vec<Row> {
    by_key(calls, |call| call.model)
}

fn by_key<'c>(calls: &'c [Call<'_>], key: impl Fn(&'c Call<'_>) -> &'c str) -> Vec<Row> {
    let mut rows: BTreeMap<&str, Row> = BTreeMap::new();
    for call in calls {
        let k = key(call);
        rows.entry(k)
            .or_insert_with(|| Row {
                key: k.to_owned(),
                ..Row::default()
            })
            .add(call);
    }
    rows.into_values().collect()
}

/// A session's row, with its project.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub project: Option<String>,
    pub row: Row,
}

/// Rows per session, by first call.
pub fn by_session(calls: &[Call<'_>]) -> Vec<SessionRow> {
    let mut rows: BTreeMap<&str, SessionRow> = BTreeMap::new();
    for call in calls {
        let entry = rows.entry(call.session_id).or_insert_with(|| SessionRow {
            project: None,
            row: Row {
                key: call.session_id.to_owned(),
                ..Row::default()
            },
        });
        if entry.project.is_none() {
            entry.project = call.project.map(str::to_owned);
        }
        entry.row.add(call);
    }
    let mut rows: Vec<SessionRow> = rows.into_values().collect();
    rows.sort_by(|a, b| (a.row.summary.first, &a.row.key).cmp(&(b.row.summary.first, &b.row.key)));
    rows
}

/// The sums of all `rows`, with per-model sums.
pub fn total<'r>(rows: impl IntoIterator<Item = &'r Row>) -> Row {
    let mut total = Row {
        key: "total".to_owned(),
        ..Row::default()
    };
    for row in rows {
        merge(&mut total.summary, &row.summary);
        for (model, s) in &row.by_model {
            merge(total.by_model.entry(model.clone()).or_default(), s);
        }
    }
    total
}

fn merge(into: &mut Summary, from: &Summary) {
    into.api_calls += from.api_calls;
    into.not_final += from.not_final;
    into.tokens += from.tokens;
    into.priced_cost += from.priced_cost;
    into.priced_calls += from.priced_calls;
    for (model, n) in &from.unpriced {
        *into.unpriced.entry(model.clone()).or_default() += n;
    }
    into.models.extend(from.models.iter().cloned());
    into.first = match (into.first, from.first) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    into.last = match (into.last, from.last) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
}

/// The four token counts as the JSON reports give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TokenCounts {
    pub input: u64,
    pub output: u64,
    pub cache_creation: u64,
    pub cache_read: u64,
}

impl From<Tokens> for TokenCounts {
    fn from(t: Tokens) -> Self {
        TokenCounts {
            input: t.input,
            output: t.output,
            cache_creation: t.cache_creation(),
            cache_read: t.cache_read,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_period_keys_equal_worked_out_ones_around_midnight_in_odd_zones() {
        // +05:45 puts midnight on a quarter hour; +00:17:30 (a historical kind of
        // offset) puts it inside one, which must be worked out second by second.
        let zones = [
            TimeZone::UTC,
            TimeZone::fixed(jiff::tz::Offset::from_seconds(5 * 3600 + 45 * 60).unwrap()),
            TimeZone::fixed(jiff::tz::Offset::from_seconds(17 * 60 + 30).unwrap()),
            TimeZone::fixed(jiff::tz::Offset::from_seconds(-(9 * 3600 + 30 * 60)).unwrap()),
        ];
        let start = Timestamp::from_second(1_767_139_200).unwrap(); // 2025-12-31T00:00:00Z
        for tz in &zones {
            for period in [Period::Daily, Period::Weekly, Period::Monthly] {
                let mut keys = PeriodKeys::new(period, tz);
                // Every 7 seconds over two days, both ways, so cached quarter hours
                // are hit again.
                for pass in 0..2 {
                    for i in 0..(2 * 86_400 / 7) {
                        let i = if pass == 0 { i } else { 2 * 86_400 / 7 - i };
                        let at = start + jiff::SignedDuration::from_secs(i * 7);
                        assert_eq!(keys.key(at), period.key(at, tz), "{at} in {tz:?}");
                    }
                }
            }
        }
    }
}
