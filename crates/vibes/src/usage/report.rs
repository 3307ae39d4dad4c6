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
    /// Each model seen, with its prices (a handful, so a list).
    found: Vec<(&'a str, Option<&'p ModelPrice>)>,
}

impl<'p, 'a> Pricer<'p, 'a> {
    pub fn new(prices: &'p PriceTable) -> Self {
        Pricer {
            prices,
            found: Vec::new(),
        }
    }

    /// `view` priced.
    pub fn price(&mut self, view: &CallView<'a>) -> Call<'a> {
        let model = view.model.unwrap_or(UNKNOWN_MODEL);
        // Interned names: the same model is mostly the same pointer.
        let price = match self
            .found
            .iter()
            .find(|(m, _)| std::ptr::eq(*m, model) || *m == model)
        {
            Some(&(_, price)) => price,
            None => {
                let price = self.prices.find(model);
                self.found.push((model, price));
                price
            }
        };
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

/// The calls of `usage` that `filter` keeps (days in `tz`), priced, one at a time (a
/// report sums them as they come; collect them where they are needed twice).
pub fn priced_calls<'a, 'p>(
    usage: &'a vibes_plugin_usage::Usage,
    prices: &'p PriceTable,
    filter: &'p Filter,
    tz: &'p TimeZone,
) -> impl Iterator<Item = Call<'a>> + use<'a, 'p> {
    let mut pricer = Pricer::new(prices);
    usage
        .calls()
        .map(move |view| pricer.price(&view))
        .filter(move |call| filter.keeps(call, tz))
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

/// A row being summed call by call: its own numbers and one cell per model, found by
/// the model's name. The name sets of a [`Summary`] (models, unpriced models) are
/// filled once per model when the row is done ([`RowSums::finish`]), not per call.
/// Every sum is added in call order, so costs sum to the same bits in any report.
#[derive(Debug, Clone, Default)]
pub struct RowSums<'a> {
    sums: Sums,
    models: Vec<(&'a str, Sums)>,
}

/// The numbers of a [`Summary`].
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    api_calls: u64,
    not_final: u64,
    tokens: Tokens,
    priced_cost: f64,
    priced_calls: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
}

impl Sums {
    fn add(&mut self, call: &Call<'_>) {
        self.api_calls += 1;
        self.not_final += u64::from(!call.output_final);
        self.tokens += call.tokens;
        if let Some(cost) = call.cost {
            self.priced_cost += cost;
            self.priced_calls += 1;
        }
        self.first = Some(self.first.map_or(call.at, |f| f.min(call.at)));
        self.last = Some(self.last.map_or(call.at, |l| l.max(call.at)));
    }

    fn summary<'m>(&self, models: impl IntoIterator<Item = (&'m str, u64)>) -> Summary {
        let mut summary = Summary {
            api_calls: self.api_calls,
            not_final: self.not_final,
            tokens: self.tokens,
            priced_cost: self.priced_cost,
            priced_calls: self.priced_calls,
            first: self.first,
            last: self.last,
            ..Summary::default()
        };
        for (model, unpriced) in models {
            summary.models.insert(model.to_owned());
            if unpriced > 0 {
                *summary.unpriced.entry(model.to_owned()).or_default() += unpriced;
            }
        }
        summary
    }
}

impl<'a> RowSums<'a> {
    /// Adds one call.
    pub fn add(&mut self, call: &Call<'a>) {
        self.sums.add(call);
        // Names are interned by the table, so the same model is mostly the same
        // pointer; equal text counts too.
        let cell = match self
            .models
            .iter_mut()
            .position(|(m, _)| std::ptr::eq(*m, call.model) || *m == call.model)
        {
            Some(i) => &mut self.models[i].1,
            None => {
                self.models.push((call.model, Sums::default()));
                &mut self.models.last_mut().expect("just pushed").1
            }
        };
        cell.add(call);
    }

    /// The row named `key`.
    pub fn finish(&self, key: String) -> Row {
        let unpriced = |s: &Sums| s.api_calls - s.priced_calls;
        Row {
            key,
            summary: self
                .sums
                .summary(self.models.iter().map(|(m, s)| (*m, unpriced(s)))),
            by_model: self
                .models
                .iter()
                .map(|(m, s)| ((*m).to_owned(), s.summary([(*m, unpriced(s))])))
                .collect(),
        }
    }
}

/// Rows per period, in time order.
pub fn by_period<'a>(
    calls: impl IntoIterator<Item = Call<'a>>,
    period: Period,
    tz: &TimeZone,
) -> Vec<Row> {
    let mut rows: Vec<RowSums<'a>> = Vec::new();
    let mut keys = PeriodKeys::new(period, tz);
    for call in calls {
        let row = keys.row(call.at, || rows.push(RowSums::default()));
        rows[row].add(&call);
    }
    keys.names
        .into_iter()
        .map(|(key, row)| rows[row].finish(key))
        .collect()
}

/// [`Period::key`] with a memory: periods are runs of whole quarter hours in every
/// time zone in use, so a quarter hour whose first and last second fall in the same
/// period gives that period for every second in it; any other is worked out each
/// time. Exact in any zone; a few hundred zone conversions instead of one per call.
#[derive(Debug)]
struct PeriodKeys<'t> {
    period: Period,
    tz: &'t TimeZone,
    /// Quarter hours wholly in one period, with that period's row.
    known: HashMap<i64, usize>,
    /// Each period's name and row, in name (and so time) order.
    names: BTreeMap<String, usize>,
}

impl<'t> PeriodKeys<'t> {
    const SPAN: i64 = 900;

    fn new(period: Period, tz: &'t TimeZone) -> Self {
        PeriodKeys {
            period,
            tz,
            known: HashMap::new(),
            names: BTreeMap::new(),
        }
    }

    /// The row of the period `at` falls in; `new_row` adds a row when it is the
    /// first call of its period (rows are numbered in the order they were added).
    fn row(&mut self, at: Timestamp, new_row: impl FnOnce()) -> usize {
        let bucket = at.as_second().div_euclid(Self::SPAN);
        if let Some(&row) = self.known.get(&bucket) {
            return row;
        }
        let whole = [bucket * Self::SPAN, bucket * Self::SPAN + Self::SPAN - 1]
            .map(|s| Timestamp::from_second(s).map(|t| self.period.key(t, self.tz)));
        let (key, whole) = match whole {
            [Ok(first), Ok(last)] if first == last => (first, true),
            _ => (self.period.key(at, self.tz), false),
        };
        let next = self.names.len();
        let row = *self.names.entry(key).or_insert_with(|| {
            new_row();
            next
        });
        if whole {
            self.known.insert(bucket, row);
        }
        row
    }

    #[cfg(test)]
    fn key(&mut self, at: Timestamp) -> String {
        let row = self.row(at, || {});
        self.names
            .iter()
            .find(|(_, r)| **r == row)
            .map(|(k, _)| k.clone())
            .unwrap_or_default()
    }
}

/// Rows per project (`unknown` for calls that name none), by name.
pub fn by_project<'a>(calls: impl IntoIterator<Item = Call<'a>>) -> Vec<Row> {
    by_key(calls, |call| call.project.unwrap_or("unknown"))
}

/// Rows per model, by name.
pub fn by_model<'a>(calls: impl IntoIterator<Item = Call<'a>>) -> Vec<Row> {
    by_key(calls, |call| call.model)
}

fn by_key<'a>(
    calls: impl IntoIterator<Item = Call<'a>>,
    key: impl Fn(&Call<'a>) -> &'a str,
) -> Vec<Row> {
    let mut rows: BTreeMap<&str, RowSums<'a>> = BTreeMap::new();
    for call in calls {
        rows.entry(key(&call)).or_default().add(&call);
    }
    rows.into_iter()
        .map(|(k, sums)| sums.finish(k.to_owned()))
        .collect()
}

/// A session's row, with its project.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub project: Option<String>,
    pub row: Row,
}

/// Rows per session, by first call.
pub fn by_session<'a>(calls: impl IntoIterator<Item = Call<'a>>) -> Vec<SessionRow> {
    let mut rows: HashMap<&str, (Option<&str>, RowSums<'a>)> = HashMap::new();
    for call in calls {
        let (project, sums) = rows.entry(call.session_id).or_default();
        if project.is_none() {
            *project = call.project;
        }
        sums.add(&call);
    }
    let mut rows: Vec<SessionRow> = rows
        .into_iter()
        .map(|(session, (project, sums))| SessionRow {
            project: project.map(str::to_owned),
            row: sums.finish(session.to_owned()),
        })
        .collect();
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
