//! Human-readable, one-line rendering of events, as `vibes tail` prints them.
//!
//! [`Event::summary`] renders the type-specific part: `$ git status` for a Bash call,
//! `→ bd-042 in_progress` for a status change. [`Event::line`] prefixes the time and
//! source. Output is always a single line: newlines and tabs become spaces, other
//! control characters (such as the ANSI escapes some bd descriptions carry) are shown
//! in caret notation (`^[`), and long text is cut at a character boundary with `…`.
//! ANSI colour is written only when [`DisplayOptions::color`] asks for it.

use std::borrow::Cow;
use std::fmt::{self, Display, Formatter, Write};

use serde_json::Value;

use crate::{Event, EventData, Severity};

mod plugins;

use plugins::{ai_coder_line, groove_line};

/// Widest a Bash command is shown, in characters (the seed's limit).
pub const COMMAND_WIDTH: usize = 60;

/// Default limit for free text (assistant text, tool output, titles), in characters.
pub const DEFAULT_TEXT_WIDTH: usize = 120;

/// How to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisplayOptions {
    /// Write ANSI colour codes.
    pub color: bool,
    /// Limit for free text, in characters (at least 1).
    pub text_width: usize,
}

impl Default for DisplayOptions {
    fn default() -> Self {
        DisplayOptions {
            color: false,
            text_width: DEFAULT_TEXT_WIDTH,
        }
    }
}

impl DisplayOptions {
    /// No colour, default widths.
    pub fn plain() -> Self {
        Self::default()
    }

    /// With ANSI colour, default widths.
    pub fn colored() -> Self {
        DisplayOptions {
            color: true,
            ..Self::default()
        }
    }

    /// Sets whether to write colour.
    #[must_use]
    pub fn color(mut self, color: bool) -> Self {
        self.color = color;
        self
    }

    /// Sets the limit for free text.
    #[must_use]
    pub fn text_width(mut self, width: usize) -> Self {
        self.text_width = width.max(1);
        self
    }
}

/// The symbol for a bead status: `→` in progress, `✓` closed or completed, `✗` failed,
/// `•` anything else.
pub fn status_symbol(status: &str) -> &'static str {
    match status {
        "in_progress" => "→",
        "closed" | "completed" => "✓",
        "failed" => "✗",
        _ => "•",
    }
}

/// `text` cut to at most `max_chars` characters, the last being `…` when it was cut.
/// Never splits a UTF-8 character. Unlike the rendering functions, this keeps control
/// characters as they are.
pub fn truncate(text: &str, max_chars: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        None => Cow::Borrowed(text),
        Some(_) if max_chars == 0 => Cow::Borrowed(""),
        Some(_) => {
            let (cut, _) = text
                .char_indices()
                .nth(max_chars - 1)
                .expect("text has more than max_chars characters");
            let mut out = String::with_capacity(cut + '…'.len_utf8());
            out.push_str(&text[..cut]);
            out.push('…');
            Cow::Owned(out)
        }
    }
}

/// Text rendered on one line and cut to a width.
struct Clip<'a>(&'a str, usize);

/// How a character is shown: itself, or two characters of caret notation.
fn shown(c: char) -> (char, Option<char>) {
    match c {
        '\n' | '\r' | '\t' => (' ', None),
        '\u{7f}' => ('^', Some('?')),
        c if (c as u32) < 0x20 => ('^', char::from_u32(c as u32 + 0x40)),
        c if ('\u{80}'..='\u{9f}').contains(&c) => ('\u{fffd}', None),
        c => (c, None),
    }
}

impl Display for Clip<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let Clip(text, max) = *self;
        let width = |c: char| if shown(c).1.is_some() { 2 } else { 1 };
        // Find where to stop: everything fits, or cut so that `…` fits within `max`.
        let mut used = 0;
        let mut cut = None;
        let mut fits_until = 0;
        for (i, c) in text.char_indices() {
            let w = width(c);
            if used + w > max {
                cut = Some(fits_until);
                break;
            }
            used += w;
            if used < max {
                fits_until = i + c.len_utf8();
            }
        }
        let end = cut.unwrap_or(text.len());
        let mut written = 0;
        for c in text[..end].chars() {
            let (first, second) = shown(c);
            f.write_char(first)?;
            written += 1;
            if let Some(second) = second {
                f.write_char(second)?;
                written += 1;
            }
        }
        if cut.is_some() {
            f.write_char('…')?;
            written += 1;
        }
        // Honour a requested width (`{:<6}`), left-aligned.
        for _ in written..f.width().unwrap_or(0) {
            f.write_char(' ')?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Dim,
    Red,
    Green,
    Yellow,
    Blue,
    Magenta,
    Cyan,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Plain => "",
            Style::Dim => "\x1b[2m",
            Style::Red => "\x1b[31m",
            Style::Green => "\x1b[32m",
            Style::Yellow => "\x1b[33m",
            Style::Blue => "\x1b[34m",
            Style::Magenta => "\x1b[35m",
            Style::Cyan => "\x1b[36m",
        }
    }
}

/// Writes `inner` in `style` when colour is on.
struct Styled<T>(Style, bool, T);

impl<T: Display> Display for Styled<T> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let Styled(style, color, inner) = self;
        if *color && *style != Style::Plain {
            write!(f, "{}{inner}\x1b[0m", style.code())
        } else {
            inner.fmt(f)
        }
    }
}

/// A duration in milliseconds, compactly: `850ms`, `12.3s`, `8m35s`, `1h02m`.
struct Millis(u64);

impl Display for Millis {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        match ms {
            0..1_000 => write!(f, "{ms}ms"),
            1_000..60_000 => write!(f, "{}.{}s", ms / 1_000, (ms % 1_000) / 100),
            60_000..3_600_000 => write!(f, "{}m{:02}s", ms / 60_000, (ms % 60_000) / 1_000),
            _ => write!(f, "{}h{:02}m", ms / 3_600_000, (ms % 3_600_000) / 60_000),
        }
    }
}

/// US dollars: two decimals from $1, four below.
struct Usd(f64);

impl Display for Usd {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.0.abs() >= 1.0 {
            write!(f, "${:.2}", self.0)
        } else {
            write!(f, "${:.4}", self.0)
        }
    }
}

/// A size in bytes, in binary units: `512 B`, `12.0 KiB`, `120.5 MiB`, `2.00 GiB`.
struct Bytes(u64);

impl Display for Bytes {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        const KIB: f64 = 1024.0;
        let b = self.0 as f64;
        match self.0 {
            0..1_024 => write!(f, "{} B", self.0),
            1_024..1_048_576 => write!(f, "{:.1} KiB", b / KIB),
            1_048_576..1_073_741_824 => write!(f, "{:.1} MiB", b / (KIB * KIB)),
            _ => write!(f, "{:.2} GiB", b / (KIB * KIB * KIB)),
        }
    }
}

/// A `run.limit` value in its unit.
fn limit_value(limit: &str, value: f64) -> String {
    match limit {
        "rss" => Bytes(value as u64).to_string(),
        "cost" => Usd(value).to_string(),
        "timeout" => Millis(value as u64).to_string(),
        _ => value.to_string(),
    }
}

/// First 8 characters of an id, enough to tell sessions apart on screen.
fn short(id: &str) -> &str {
    match id.char_indices().nth(8) {
        Some((i, _)) => &id[..i],
        None => id,
    }
}

/// The type-specific part of an event on one line; see [`Event::summary`].
#[derive(Debug)]
pub struct Summary<'a> {
    event: &'a Event,
    options: DisplayOptions,
}

/// An event on one line with time and source; see [`Event::line`].
#[derive(Debug)]
pub struct Line<'a> {
    event: &'a Event,
    options: DisplayOptions,
}

impl Event {
    /// The type-specific one-liner, plain, with default widths.
    pub fn summary(&self) -> Summary<'_> {
        self.summary_with(DisplayOptions::default())
    }

    /// The type-specific one-liner.
    pub fn summary_with(&self, options: DisplayOptions) -> Summary<'_> {
        Summary {
            event: self,
            options,
        }
    }

    /// `HH:MM:SS.mmm source summary`, the time in UTC.
    pub fn line(&self, options: DisplayOptions) -> Line<'_> {
        Line {
            event: self,
            options,
        }
    }
}

impl Display for Line<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let color = self.options.color;
        let time = self.event.timestamp.strftime("%H:%M:%S%.3f");
        let source_style = match self.event.source.as_str() {
            crate::source::CLAUDE => Style::Magenta,
            crate::source::BD => Style::Blue,
            _ => Style::Yellow,
        };
        write!(
            f,
            "{} {} {}",
            Styled(Style::Dim, color, time),
            Styled(
                source_style,
                color,
                format_args!("{:<6}", Clip(&self.event.source, 12))
            ),
            self.event.summary_with(self.options)
        )
    }
}

impl Display for Summary<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let color = self.options.color;
        let width = self.options.text_width;
        let mut styled = |style: Style, args: fmt::Arguments<'_>| -> fmt::Result {
            write!(f, "{}", Styled(style, color, args))
        };
        match &self.event.data {
            EventData::SessionStart(d) => {
                let id = d.session_id.as_deref().map(short).unwrap_or("");
                let sep = if id.is_empty() { "" } else { " " };
                styled(
                    Style::Green,
                    format_args!(
                        "▶ session{sep}{} started: {} ({} tools)",
                        Clip(id, 8),
                        Clip(&d.model, width),
                        d.tools.len()
                    ),
                )
            }
            EventData::SessionEnd(d) => {
                let (symbol, verb, style) = if d.is_error {
                    ("✗", "failed", Style::Red)
                } else {
                    ("✓", "ended", Style::Green)
                };
                let subtype =
                    d.subtype
                        .as_deref()
                        .unwrap_or(if d.is_error { "error" } else { "success" });
                styled(
                    style,
                    format_args!(
                        "{symbol} session {} {verb}: {}, {} turns, {}, {}",
                        Clip(short(&d.session_id), 8),
                        Clip(subtype, width),
                        d.num_turns,
                        Millis(d.duration_ms),
                        Usd(d.total_cost_usd)
                    ),
                )
            }
            EventData::SessionCompact(d) => {
                let trigger = d
                    .trigger
                    .as_deref()
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default();
                let tokens = match (d.pre_tokens, d.post_tokens) {
                    (Some(pre), Some(post)) => format!(": {pre} → {post} tokens"),
                    (Some(pre), None) => format!(": {pre} tokens before"),
                    _ => String::new(),
                };
                styled(
                    Style::Yellow,
                    format_args!("⇣ context compacted{}{tokens}", Clip(&trigger, width)),
                )
            }
            EventData::Text(d) => styled(Style::Plain, format_args!("{}", Clip(&d.text, width))),
            EventData::Thinking(d) if d.text.is_empty() => {
                styled(Style::Dim, format_args!("(thinking)"))
            }
            EventData::Thinking(d) => styled(
                Style::Dim,
                format_args!("thinking: {}", Clip(&d.text, width)),
            ),
            EventData::ToolUse(d) => styled(Style::Cyan, format_args!("{}", ToolCall(d, width))),
            EventData::ToolResult(d) => {
                let name = d.tool_name.as_deref().unwrap_or(&d.tool_id);
                let (symbol, style) = if d.is_error {
                    ("✗", Style::Red)
                } else {
                    ("✓", Style::Plain)
                };
                styled(
                    style,
                    format_args!(
                        "{symbol} {}: {}",
                        Clip(name, width),
                        Clip(&d.content, width)
                    ),
                )
            }
            EventData::RateLimit(d) => {
                let kind = d
                    .rate_limit_type
                    .as_deref()
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default();
                let resets = d
                    .resets_at
                    .map(|t| format!(", resets {}", t.strftime("%Y-%m-%d %H:%M UTC")))
                    .unwrap_or_default();
                let fallback = d
                    .fallback_model
                    .as_deref()
                    .map(|m| format!(", now using {m}"))
                    .unwrap_or_default();
                styled(
                    Style::Yellow,
                    format_args!(
                        "⏳ rate limit {}{}{resets}{}",
                        Clip(&d.status, width),
                        Clip(&kind, width),
                        Clip(&fallback, width)
                    ),
                )
            }
            EventData::ApiCall(d) => {
                let model = d.model.as_deref().unwrap_or("unknown model");
                let u = &d.usage;
                let stop = match (&d.stop_reason, d.output_final) {
                    (Some(reason), _) => format!(" ({reason})"),
                    (None, true) => String::new(),
                    (None, false) => " (output so far)".to_owned(),
                };
                let agent = d
                    .agent_id
                    .as_deref()
                    .map(|a| format!(" [agent {a}]"))
                    .unwrap_or_default();
                styled(
                    Style::Dim,
                    format_args!(
                        "⇄ {}{}: {} in, {} out, {} cache write, {} cache read{}",
                        Clip(model, width),
                        Clip(&agent, width),
                        u.input_tokens,
                        u.output_tokens,
                        u.cache_creation_input_tokens(),
                        u.cache_read_input_tokens,
                        Clip(&stop, width)
                    ),
                )
            }
            EventData::ApiError(d) => {
                let status = d.status.map(|s| format!(" {s}")).unwrap_or_default();
                let retry = match (d.retry_attempt, d.max_retries, d.retry_in_ms) {
                    (Some(n), Some(max), Some(ms)) => {
                        format!(" (retry {n}/{max} in {})", Millis(ms))
                    }
                    (Some(n), Some(max), None) => format!(" (retry {n}/{max})"),
                    (Some(n), None, Some(ms)) => format!(" (retry {n} in {})", Millis(ms)),
                    (Some(n), None, None) => format!(" (retry {n})"),
                    (None, _, _) => String::new(),
                };
                styled(
                    Style::Red,
                    format_args!("✗ API error{status}: {}{retry}", Clip(&d.message, width)),
                )
            }
            EventData::TurnDuration(d) => styled(
                Style::Dim,
                format_args!("⏱ turn took {}", Millis(d.duration_ms)),
            ),
            EventData::Interrupt(d) => {
                let during = if d.during_tool_use {
                    " during tool use"
                } else {
                    ""
                };
                styled(
                    Style::Yellow,
                    format_args!("⏹ interrupted by the user{during}"),
                )
            }
            EventData::BeadCreated(d) => styled(
                Style::Blue,
                format_args!("+ {} {}", Clip(&d.bead_id, width), Clip(&d.title, width)),
            ),
            EventData::BeadUpdated(d) => {
                let fields: Vec<&str> = d.fields.keys().map(String::as_str).collect();
                styled(
                    Style::Blue,
                    format_args!(
                        "~ {} updated: {}",
                        Clip(&d.bead_id, width),
                        Clip(&fields.join(", "), width)
                    ),
                )
            }
            EventData::BeadStatus(d) => {
                let style = match d.new_status.as_str() {
                    "closed" | "completed" => Style::Green,
                    "failed" => Style::Red,
                    _ => Style::Blue,
                };
                styled(
                    style,
                    format_args!(
                        "{} {} {}",
                        status_symbol(&d.new_status),
                        Clip(&d.bead_id, width),
                        Clip(&d.new_status, width)
                    ),
                )
            }
            EventData::BeadClosed(d) => match &d.reason {
                Some(reason) => styled(
                    Style::Green,
                    format_args!(
                        "✓ {} closed: {}",
                        Clip(&d.bead_id, width),
                        Clip(reason, width)
                    ),
                ),
                None => styled(
                    Style::Green,
                    format_args!("✓ {} closed", Clip(&d.bead_id, width)),
                ),
            },
            EventData::BeadComment(d) => styled(
                Style::Blue,
                format_args!("✎ {}: {}", Clip(&d.bead_id, width), Clip(&d.comment, width)),
            ),
            EventData::BeadAbandoned(d) => styled(
                Style::Red,
                format_args!(
                    "✗ {} abandoned after {}/{} attempts: {}",
                    Clip(&d.bead_id, width),
                    d.attempts,
                    d.max_failures,
                    Clip(&d.last_error, width)
                ),
            ),
            EventData::DrainStart(d) => styled(
                Style::Green,
                format_args!("▶ drain started in {}", Clip(&d.work_dir, width)),
            ),
            EventData::DrainPause(d) => match &d.reason {
                Some(reason) => styled(
                    Style::Yellow,
                    format_args!("⏸ drain paused: {}", Clip(reason, width)),
                ),
                None => styled(Style::Yellow, format_args!("⏸ drain paused")),
            },
            EventData::DrainResume(_) => styled(Style::Green, format_args!("▶ drain resumed")),
            EventData::DrainStop(d) => match &d.reason {
                Some(reason) => styled(
                    Style::Yellow,
                    format_args!("■ drain stopped: {}", Clip(reason, width)),
                ),
                None => styled(Style::Yellow, format_args!("■ drain stopped")),
            },
            EventData::IterationStart(d) => styled(
                Style::Blue,
                format_args!(
                    "→ {} {} (P{}, attempt {})",
                    Clip(&d.bead_id, width),
                    Clip(&d.title, width),
                    d.priority,
                    d.attempt
                ),
            ),
            EventData::IterationEnd(d) => {
                let stats = format!(
                    "{} turns, {}, {}",
                    d.num_turns,
                    Millis(d.duration_ms),
                    Usd(d.total_cost_usd)
                );
                match (&d.error, d.success) {
                    (_, true) => styled(
                        Style::Green,
                        format_args!("✓ {} done: {stats}", Clip(&d.bead_id, width)),
                    ),
                    (Some(error), false) => styled(
                        Style::Red,
                        format_args!(
                            "✗ {} failed: {} ({stats})",
                            Clip(&d.bead_id, width),
                            Clip(error, width)
                        ),
                    ),
                    (None, false) => styled(
                        Style::Red,
                        format_args!("✗ {} failed ({stats})", Clip(&d.bead_id, width)),
                    ),
                }
            }
            EventData::RunStart(d) => {
                let name = d
                    .name
                    .as_deref()
                    .map(|n| format!(" {n}"))
                    .unwrap_or_default();
                let pid = d.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
                styled(
                    Style::Green,
                    format_args!(
                        "▶ run{}: {}{pid}",
                        Clip(&name, width),
                        Clip(&d.command.join(" "), width)
                    ),
                )
            }
            EventData::RunSample(d) => {
                let cost = d
                    .cost_usd
                    .map(|c| format!(", {}", Usd(c)))
                    .unwrap_or_default();
                styled(
                    Style::Dim,
                    format_args!(
                        "· cpu {:.0}%, rss {}, {} processes, {} files open{cost}",
                        d.cpu_percent,
                        Bytes(d.rss_bytes),
                        d.processes,
                        d.open_files
                    ),
                )
            }
            EventData::RunLimit(d) => styled(
                Style::Red,
                format_args!(
                    "✋ run over its {} limit: {} of {}",
                    Clip(&d.limit, width),
                    limit_value(&d.limit, d.observed),
                    limit_value(&d.limit, d.threshold)
                ),
            ),
            EventData::RunExit(d) => {
                let how = match (d.code, d.signal) {
                    (Some(code), _) => format!("exited with code {code}"),
                    (None, Some(signal)) => format!("killed by signal {signal}"),
                    (None, None) => "ended".to_owned(),
                };
                let by = d
                    .stopped_by
                    .as_deref()
                    .map(|b| format!(", stopped by {b}"))
                    .unwrap_or_default();
                let style = if d.success() {
                    Style::Green
                } else {
                    Style::Red
                };
                styled(
                    style,
                    format_args!(
                        "■ run {how} after {}{}",
                        Millis(d.duration_ms),
                        Clip(&by, width)
                    ),
                )
            }
            EventData::Error(d) => {
                let (symbol, style) = match d.severity {
                    Severity::Warning => ("⚠", Style::Yellow),
                    Severity::Error | Severity::Fatal => ("✗", Style::Red),
                };
                styled(
                    style,
                    format_args!("{symbol} {}: {}", d.severity, Clip(&d.message, width)),
                )
            }
            EventData::Unknown { event_type } => {
                let extra = &self.event.extra;
                if let Some((style, line)) =
                    groove_line(event_type, extra).or_else(|| ai_coder_line(event_type, extra))
                {
                    return styled(style, format_args!("{}", Clip(&line, width.max(60) * 2)));
                }
                let n = self.event.extra.len();
                let plural = if n == 1 { "" } else { "s" };
                styled(
                    Style::Dim,
                    format_args!("{} ({n} field{plural})", Clip(event_type, width)),
                )
            }
        }
    }
}

/// The seed's one-liner for a tool call.
struct ToolCall<'a>(&'a crate::ToolUse, usize);

impl Display for ToolCall<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let ToolCall(call, width) = *self;
        let field = |name: &str| call.input.get(name).and_then(Value::as_str);
        let (label, key) = match call.tool_name.as_str() {
            "Bash" => {
                if let Some(command) = field("command") {
                    return write!(f, "$ {}", Clip(command, COMMAND_WIDTH));
                }
                ("", "")
            }
            "Read" => ("Read", "file_path"),
            "Edit" => ("Edit", "file_path"),
            "Write" => ("Write", "file_path"),
            "Glob" => ("Glob", "pattern"),
            "Grep" => ("Grep", "pattern"),
            _ => ("", ""),
        };
        match field(key) {
            Some(value) if !label.is_empty() => write!(f, "{label}: {}", Clip(value, width)),
            _ => write!(f, "Tool: {}", Clip(&call.tool_name, width)),
        }
    }
}
