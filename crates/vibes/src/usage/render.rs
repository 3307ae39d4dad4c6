//! What `vibes usage` prints: aligned tables with their footnotes, or JSON.

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use super::blocks::Block;
use super::report::{Row, SessionRow, Summary, TokenCounts};

/// What every report says about itself.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub tz: &'a TimeZone,
    pub tz_name: &'a str,
    pub prices: &'a str,
    pub breakdown: bool,
}

/// A summary as JSON: calls, tokens, cost (`null` when every call is unpriced),
/// models, whether the output is final, and the unpriced models.
fn summary_json(s: &Summary) -> Value {
    json!({
        "api_calls": s.api_calls,
        "tokens": TokenCounts::from(s.tokens),
        "cost_usd": s.cost_usd(),
        "models": s.models,
        "output_final": s.output_final(),
        "unpriced_models": s.unpriced.keys().collect::<Vec<_>>(),
    })
}

fn with_breakdown(mut value: Value, row: &Row, ctx: &Context<'_>) -> Value {
    if ctx.breakdown
        && let Value::Object(map) = &mut value
    {
        let models: Vec<Value> = row
            .by_model
            .iter()
            .map(|(model, s)| {
                let mut v = summary_json(s);
                if let Value::Object(m) = &mut v {
                    m.remove("models");
                    m.insert("model".to_owned(), json!(model));
                }
                v
            })
            .collect();
        map.insert("breakdown".to_owned(), Value::Array(models));
    }
    value
}

fn header(ctx: &Context<'_>, report: &str) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    map.insert("report".to_owned(), json!(report));
    map.insert("timezone".to_owned(), json!(ctx.tz_name));
    map.insert("prices".to_owned(), json!(ctx.prices));
    map
}

/// A period report as JSON.
pub fn periods_json(period: &str, rows: &[Row], total: &Row, ctx: &Context<'_>) -> Value {
    keyed_json(period, "period", rows, total, ctx)
}

/// A report of `rows` as JSON, each row's key under `key` (`period`, `project`,
/// `model`).
pub fn keyed_json(report: &str, key: &str, rows: &[Row], total: &Row, ctx: &Context<'_>) -> Value {
    let mut map = header(ctx, report);
    let rows: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut v = summary_json(&row.summary);
            if let Value::Object(m) = &mut v {
                m.insert(key.to_owned(), json!(row.key));
            }
            with_breakdown(v, row, ctx)
        })
        .collect();
    map.insert("rows".to_owned(), Value::Array(rows));
    map.insert(
        "totals".to_owned(),
        with_breakdown(summary_json(&total.summary), total, ctx),
    );
    Value::Object(map)
}

/// The session report as JSON: `sessions`, each with `session_id`, `project`,
/// `api_calls`, `tokens`, `cost_usd`, `models`, `first`, `last`, `output_final`.
pub fn sessions_json(rows: &[SessionRow], total: &Row, ctx: &Context<'_>) -> Value {
    let mut map = header(ctx, "session");
    let sessions: Vec<Value> = rows
        .iter()
        .map(|s| {
            let mut v = summary_json(&s.row.summary);
            if let Value::Object(m) = &mut v {
                m.insert("session_id".to_owned(), json!(s.row.key));
                m.insert("project".to_owned(), json!(s.project));
                m.insert("first".to_owned(), json!(s.row.summary.first));
                m.insert("last".to_owned(), json!(s.row.summary.last));
            }
            with_breakdown(v, &s.row, ctx)
        })
        .collect();
    map.insert("sessions".to_owned(), Value::Array(sessions));
    map.insert(
        "totals".to_owned(),
        with_breakdown(summary_json(&total.summary), total, ctx),
    );
    Value::Object(map)
}

/// The block report as JSON.
pub fn blocks_json(blocks: &[Block], now: Timestamp, ctx: &Context<'_>) -> Value {
    let mut map = header(ctx, "blocks");
    map.insert("now".to_owned(), json!(now));
    let blocks: Vec<Value> = blocks
        .iter()
        .map(|b| {
            let mut v = summary_json(&b.row.summary);
            if let Value::Object(m) = &mut v {
                m.insert("start".to_owned(), json!(b.start));
                m.insert("end".to_owned(), json!(b.end));
                m.insert("gap".to_owned(), json!(b.gap));
                m.insert("active".to_owned(), json!(b.active));
                m.insert("first".to_owned(), json!(b.row.summary.first));
                m.insert("last".to_owned(), json!(b.row.summary.last));
                m.insert(
                    "burn_rate".to_owned(),
                    json!(b.burn.map(|burn| json!({
                        "tokens_per_minute": burn.tokens_per_minute,
                        "cost_per_hour": burn.cost_per_hour,
                    }))),
                );
                m.insert(
                    "projection".to_owned(),
                    json!(b.burn.map(|burn| json!({
                        "remaining_minutes": burn.remaining_minutes,
                        "tokens": burn.projected_tokens.round(),
                        "cost_usd": burn.projected_cost,
                    }))),
                );
            }
            with_breakdown(v, &b.row, ctx)
        })
        .collect();
    map.insert("blocks".to_owned(), Value::Array(blocks));
    Value::Object(map)
}

/// `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The cost column: `$1.23`, `≥$1.23` for a lower bound, `unpriced` when no call is
/// priced.
fn cost_cell(s: &Summary) -> String {
    match s.cost_usd() {
        None => "unpriced".to_owned(),
        Some(c) if s.cost_is_lower_bound() => format!("≥${c:.2}"),
        Some(c) => format!("${c:.2}"),
    }
}

fn output_cell(s: &Summary) -> String {
    if s.output_final() {
        thousands(s.tokens.output)
    } else {
        format!("≥{}", thousands(s.tokens.output))
    }
}

/// A table: a header and rows of cells, numbers right-aligned, text (the first
/// column, and the columns in `left`) left-aligned (widths in characters).
#[derive(Debug, Default)]
struct Table {
    rows: Vec<Vec<String>>,
    left: Vec<usize>,
}

impl Table {
    fn push(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self, out: &mut String) {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let width = |c: usize| {
            self.rows
                .iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..columns).map(width).collect();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                let pad = widths[c] - cell.chars().count();
                if c == 0 {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad));
                } else if self.left.contains(&c) {
                    line.push_str("  ");
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad));
                } else {
                    line.push_str("  ");
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
}

const COLUMNS: [&str; 7] = [
    "calls",
    "input",
    "output",
    "cache write",
    "cache read",
    "cost",
    "models",
];

fn cells(label: String, s: &Summary, models: bool) -> Vec<String> {
    let mut cells = vec![
        label,
        thousands(s.api_calls),
        thousands(s.tokens.input),
        output_cell(s),
        thousands(s.tokens.cache_creation()),
        thousands(s.tokens.cache_read),
        cost_cell(s),
    ];
    if models {
        cells.push(
            s.models
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    cells
}

fn add_row(table: &mut Table, label: String, row: &Row, ctx: &Context<'_>) {
    table.push(cells(label, &row.summary, !ctx.breakdown));
    if ctx.breakdown {
        for (model, s) in &row.by_model {
            table.push(cells(format!("  {model}"), s, false));
        }
    }
}

fn header_cells(first: &str, ctx: &Context<'_>) -> Vec<String> {
    let mut cells = vec![first.to_owned()];
    let n = if ctx.breakdown { 6 } else { 7 };
    cells.extend(COLUMNS[..n].iter().map(|c| (*c).to_owned()));
    cells
}

/// The footnotes every table ends with: lower bounds, unpriced models, prices.
fn footnotes(out: &mut String, total: &Summary, ctx: &Context<'_>) {
    if !total.output_final() {
        let _ = writeln!(
            out,
            "≥ lower bound: {} of {} calls carried no stop reason, so their output may be short",
            thousands(total.not_final),
            thousands(total.api_calls)
        );
    }
    for (model, calls) in &total.unpriced {
        let _ = writeln!(
            out,
            "unpriced: {model} ({} calls) has no price; its cost is left out (add it with --prices FILE)",
            thousands(*calls)
        );
    }
    let _ = writeln!(out, "prices {}, times in {}", ctx.prices, ctx.tz_name);
}

/// A period report as a table.
pub fn periods_text(period: &str, rows: &[Row], total: &Row, ctx: &Context<'_>) -> String {
    let mut table = Table::default();
    if !ctx.breakdown {
        table.left.push(7);
    }
    let first = match period {
        "weekly" => "week of",
        "monthly" => "month",
        _ => "day",
    };
    table.push(header_cells(first, ctx));
    for row in rows {
        add_row(&mut table, row.key.clone(), row, ctx);
    }
    add_row(&mut table, "total".to_owned(), total, ctx);
    let mut out = String::new();
    table.render(&mut out);
    footnotes(&mut out, &total.summary, ctx);
    out
}

fn time(at: Option<Timestamp>, tz: &TimeZone) -> String {
    at.map_or_else(
        || "-".to_owned(),
        |t| {
            t.to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        },
    )
}

/// The session report as a table.
pub fn sessions_text(rows: &[SessionRow], total: &Row, ctx: &Context<'_>) -> String {
    let mut table = Table::default();
    table.left.push(1);
    if !ctx.breakdown {
        table.left.push(10);
    }
    let mut head = header_cells("session", ctx);
    head.insert(1, "project".to_owned());
    head.insert(2, "first".to_owned());
    head.insert(3, "last".to_owned());
    table.push(head);
    let mut add = |label: String, project: &str, row: &Row| {
        let mut c = cells(label, &row.summary, !ctx.breakdown);
        c.insert(1, project.to_owned());
        c.insert(2, time(row.summary.first, ctx.tz));
        c.insert(3, time(row.summary.last, ctx.tz));
        table.push(c);
        if ctx.breakdown {
            for (model, s) in &row.by_model {
                let mut c = cells(format!("  {model}"), s, false);
                for i in 1..4 {
                    c.insert(i, String::new());
                }
                table.push(c);
            }
        }
    };
    for s in rows {
        add(
            s.row.key.clone(),
            s.project.as_deref().unwrap_or("-"),
            &s.row,
        );
    }
    add("total".to_owned(), "", total);
    let mut out = String::new();
    table.render(&mut out);
    footnotes(&mut out, &total.summary, ctx);
    out
}

/// The block report as a table, with the active block's burn rate and projection.
pub fn blocks_text(blocks: &[Block], total: &Row, now: Timestamp, ctx: &Context<'_>) -> String {
    let mut table = Table::default();
    table.left.push(1);
    if !ctx.breakdown {
        table.left.push(8);
    }
    let mut head = header_cells("block start", ctx);
    head.insert(1, "status".to_owned());
    table.push(head);
    let mut notes = Vec::new();
    for b in blocks {
        let status = if b.gap {
            format!("gap {}", span(b.end.duration_since(b.start)))
        } else if b.active {
            format!("active, {} left", span(b.end.duration_since(now)))
        } else {
            span(
                b.row
                    .summary
                    .last
                    .unwrap_or(b.start)
                    .duration_since(b.row.summary.first.unwrap_or(b.start)),
            )
        };
        let label = time(Some(b.start), ctx.tz);
        if b.gap {
            table.push(vec![label, status]);
            continue;
        }
        let mut c = cells(label.clone(), &b.row.summary, !ctx.breakdown);
        c.insert(1, status);
        table.push(c);
        if ctx.breakdown {
            for (model, s) in &b.row.by_model {
                let mut c = cells(format!("  {model}"), s, false);
                c.insert(1, String::new());
                table.push(c);
            }
        }
        if let Some(burn) = b.burn {
            let money =
                |v: Option<f64>| v.map_or_else(|| "unpriced".to_owned(), |c| format!("${c:.2}"));
            notes.push(format!(
                "active block {label}: burn {} tokens/min (input and output), {}/h; by its end ({}): {} tokens, {}",
                thousands(burn.tokens_per_minute.round() as u64),
                money(burn.cost_per_hour),
                time(Some(b.end), ctx.tz),
                thousands(burn.projected_tokens.round() as u64),
                money(burn.projected_cost),
            ));
        }
    }
    let mut c = cells("total".to_owned(), &total.summary, !ctx.breakdown);
    c.insert(1, String::new());
    table.push(c);
    let mut out = String::new();
    table.render(&mut out);
    for note in notes {
        let _ = writeln!(out, "{note}");
    }
    footnotes(&mut out, &total.summary, ctx);
    out
}

/// `4h 57m`, `12m`.
fn span(d: jiff::SignedDuration) -> String {
    let minutes = d.as_secs().max(0) / 60;
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m}m"),
        (h, m) => format!("{h}h {m:02}m"),
    }
}
