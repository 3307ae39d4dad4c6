//! Drawing `vibes top`: the panes laid out for the terminal's size (fewer on a small
//! one, the focused pane alone on the smallest), the help and the status line.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState};
use serde_json::Value;
use vibes_events::Event;
use vibes_events::display::DisplayOptions;

use super::model::{Failure, View};
use super::ui::{Pane, Ui};
use crate::commands::{coders, groove};

/// Below this size only the focused pane is shown.
const SMALL: (u16, u16) = (60, 14);
/// Below this size (but not small) the coders, events and failures panes are shown.
const MEDIUM: (u16, u16) = (110, 32);

/// The panes shown at `area`'s size, with the rectangle each gets.
pub fn layout(area: Rect, ui: &Ui) -> Vec<(Pane, Rect)> {
    let [body, _status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    if ui.zoom || ui.timeline.is_some() || area.width < SMALL.0 || area.height < SMALL.1 {
        return vec![(ui.focus, body)];
    }
    if area.width < MEDIUM.0 || area.height < MEDIUM.1 {
        let [top, middle, bottom] = Layout::vertical([
            Constraint::Percentage(40),
            Constraint::Percentage(35),
            Constraint::Percentage(25),
        ])
        .areas(body);
        return vec![
            (Pane::Coders, top),
            (Pane::Events, middle),
            (Pane::Failures, bottom),
        ];
    }
    let [top, middle, bottom] = Layout::vertical([
        Constraint::Percentage(35),
        Constraint::Percentage(40),
        Constraint::Percentage(25),
    ])
    .areas(body);
    let [events, failures] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(middle);
    let [alerts, gaps] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(bottom);
    vec![
        (Pane::Coders, top),
        (Pane::Events, events),
        (Pane::Failures, failures),
        (Pane::Alerts, alerts),
        (Pane::Gaps, gaps),
    ]
}

/// Draws everything.
pub fn draw(frame: &mut Frame<'_>, view: &View, ui: &Ui) {
    let area = frame.area();
    if area.width == 0 || area.height == 0 {
        return;
    }
    for (pane, rect) in layout(area, ui) {
        let block = block(pane, ui, view);
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        if let Some((id, events)) = view.timeline.as_ref().filter(|_| ui.timeline.is_some()) {
            draw_timeline(frame, inner, id, events);
            continue;
        }
        match pane {
            Pane::Coders => draw_coders(frame, inner, view, ui),
            Pane::Events => {
                frame.render_widget(Paragraph::new(tail_lines(&view.events, inner)), inner);
            }
            Pane::Failures => draw_failures(frame, inner, view),
            Pane::Alerts => draw_alerts(frame, inner, view),
            Pane::Gaps => draw_gaps(frame, inner, view),
        }
    }
    let status_area = Rect {
        y: area.y + area.height - 1,
        height: 1,
        ..area
    };
    frame.render_widget(Paragraph::new(status_line(view, ui)), status_area);
    if ui.help {
        draw_help(frame, area);
    }
}

fn block<'a>(pane: Pane, ui: &Ui, view: &View) -> Block<'a> {
    let index = Pane::ALL.iter().position(|p| *p == pane).unwrap_or(0) + 1;
    let mut title = format!(" {index} {} ", pane.title());
    if let (Some(id), Some(_)) = (&ui.timeline, &view.timeline) {
        title = format!(" timeline of {id} (Esc closes) ");
    } else if pane == Pane::Events && !ui.filter.is_empty() {
        title = format!(" {index} events: {} ", ui.filter.join(" "));
    }
    let style = if pane == ui.focus {
        Style::default().add_modifier(Modifier::BOLD)
    } else {
        Style::default().fg(Color::DarkGray)
    };
    Block::default()
        .borders(Borders::ALL)
        .border_style(style)
        .title(Span::styled(
            title,
            Style::default().add_modifier(Modifier::BOLD),
        ))
}

/// The last lines of `events` that fit `area`, in the seed's display style.
fn tail_lines(events: &[Event], area: Rect) -> Vec<Line<'static>> {
    let display = DisplayOptions::plain().text_width(usize::from(area.width.max(8)));
    let skip = events.len().saturating_sub(usize::from(area.height));
    events[skip..]
        .iter()
        .map(|e| Line::from(e.line(display).to_string()))
        .collect()
}

fn draw_coders(frame: &mut Frame<'_>, area: Rect, view: &View, ui: &Ui) {
    let list = coders::coders(&view.coders);
    if list.is_empty() {
        let text = view.coders["error"]
            .as_str()
            .unwrap_or(coders::empty_message(ui.all));
        frame.render_widget(Paragraph::new(text.to_owned()), area);
        return;
    }
    let rows = coders::rows(list);
    let mut widths = coders::HEADER.map(|h| h.chars().count() as u16);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count() as u16);
        }
    }
    let cell = |i: usize, text: String| {
        let line = Line::from(text);
        Cell::from(if coders::RIGHT[i] {
            line.right_aligned()
        } else {
            line
        })
    };
    let header = Row::new(
        coders::HEADER
            .iter()
            .enumerate()
            .map(|(i, h)| cell(i, (*h).to_owned())),
    )
    .style(Style::default().add_modifier(Modifier::BOLD));
    let body = rows.into_iter().map(|row| {
        let failed = row[2] == "failed";
        let r = Row::new(row.into_iter().enumerate().map(|(i, c)| cell(i, c)));
        if failed {
            r.style(Style::default().fg(Color::Red))
        } else {
            r
        }
    });
    let table = Table::new(body, widths.map(Constraint::Length))
        .header(header)
        .column_spacing(2)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    let [table_area, summary_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    let mut state = TableState::default().with_selected(Some(ui.selected.min(list.len() - 1)));
    frame.render_stateful_widget(table, table_area, &mut state);
    frame.render_widget(Paragraph::new(coders::summary(list)), summary_area);
}

/// One failure: when, which session, its fingerprint and gap, what failed and how.
pub fn failure_line(f: &Failure, gaps: &Value) -> String {
    let fp = &f.fingerprint;
    let subject = groove::subject(&serde_json::json!({ "tool": fp.tool, "head": fp.head }));
    let gap = gaps["gaps"]
        .as_array()
        .and_then(|list| {
            list.iter().find(|g| {
                g["tool"] == fp.tool.as_str()
                    && g["head"] == fp.head.as_str()
                    && g["kind"] == fp.kind.as_str()
            })
        })
        .and_then(|g| g["id"].as_str())
        .map_or_else(String::new, |id| format!(" [{id}]"));
    let session: String = f
        .session
        .as_deref()
        .unwrap_or("-")
        .chars()
        .take(8)
        .collect();
    let time = f.timestamp.strftime("%H:%M:%S");
    format!(
        "{time} {session} {}{gap} {subject} {}: {}",
        fp.id,
        fp.kind.as_str(),
        fp.line
    )
}

fn draw_failures(frame: &mut Frame<'_>, area: Rect, view: &View) {
    if view.failures.is_empty() {
        frame.render_widget(Paragraph::new("no failing tool calls yet"), area);
        return;
    }
    // Newest first.
    let lines: Vec<Line<'_>> = view
        .failures
        .iter()
        .rev()
        .take(usize::from(area.height))
        .map(|f| Line::styled(failure_line(f, &view.gaps), Style::default().fg(Color::Red)))
        .collect();
    frame.render_widget(Paragraph::new(lines), area);
}

/// The alerts worth a person's eye: failure bursts and system warnings (rate limits,
/// resource limits), newest first.
pub fn alert_events(alerts: &Value) -> Vec<Event> {
    let mut events: Vec<Event> = alerts["alerts"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|a| a["type"] != "ai_coder.completion_metrics")
                .filter_map(super::model::coder_event)
                .collect()
        })
        .unwrap_or_default();
    events.sort_by_key(|e| std::cmp::Reverse(e.timestamp));
    events
}

fn draw_alerts(frame: &mut Frame<'_>, area: Rect, view: &View) {
    let events = alert_events(&view.alerts);
    if events.is_empty() {
        frame.render_widget(
            Paragraph::new("no alerts: no failure bursts, rate limits or resource limits"),
            area,
        );
        return;
    }
    let display = DisplayOptions::plain().text_width(usize::from(area.width.max(8)));
    let lines: Vec<Line<'_>> = events
        .iter()
        .take(usize::from(area.height))
        .map(|e| {
            Line::styled(
                e.line(display).to_string(),
                Style::default().fg(Color::Yellow),
            )
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), area);
}

/// One open gap, in one line: the table of `vibes groove gaps` is wider than a pane.
pub fn gap_line(g: &Value) -> String {
    let n = |key: &str| g[key].as_u64().unwrap_or(0);
    format!(
        "{} {} {} {}: {} in {} sessions ({} failures, {} unrecovered)",
        g["id"].as_str().unwrap_or("-"),
        g["status"].as_str().unwrap_or("-"),
        g["severity"].as_str().unwrap_or("-"),
        g["kind"].as_str().unwrap_or("-"),
        groove::subject(g),
        n("sessions"),
        n("failures"),
        n("unrecovered"),
    )
}

fn draw_gaps(frame: &mut Frame<'_>, area: Rect, view: &View) {
    let gaps = view.gaps["gaps"].as_array().map_or(&[][..], Vec::as_slice);
    let lines: Vec<Line<'_>> = match view.gaps["error"].as_str() {
        Some(error) => vec![Line::from(error.to_owned())],
        None if gaps.is_empty() => vec![Line::from(
            "no open gaps: no failure has come back in 3 sessions",
        )],
        None => gaps.iter().map(|g| Line::from(gap_line(g))).collect(),
    };
    frame.render_widget(Paragraph::new(lines), area);
}

fn draw_timeline(frame: &mut Frame<'_>, area: Rect, id: &str, events: &[Event]) {
    if events.is_empty() {
        frame.render_widget(
            Paragraph::new(format!("no coder events of {id} kept")),
            area,
        );
        return;
    }
    frame.render_widget(Paragraph::new(tail_lines(events, area)), area);
}

fn status_line(view: &View, ui: &Ui) -> Line<'static> {
    let mut spans = Vec::new();
    if ui.paused {
        spans.push(Span::styled(
            " PAUSED ",
            Style::default().add_modifier(Modifier::REVERSED),
        ));
        spans.push(Span::raw(" "));
    }
    if let Some(text) = &ui.editing {
        spans.push(Span::raw(format!(
            "filter event types: {text}▏ (Enter applies, Esc cancels)"
        )));
        return Line::from(spans);
    }
    let mut text = format!("{} records read", view.read);
    if view.skipped > 0 {
        text.push_str(&format!(", {} skipped", view.skipped));
        if let Some(problem) = &view.last_problem {
            text.push_str(&format!(" (last: {problem})"));
        }
    }
    text.push_str(" · Tab pane · / filter · p pause · Enter timeline · ? help · q quit");
    spans.push(Span::raw(text));
    Line::from(spans)
}

const HELP: &[&str] = &[
    "vibes top: coders, events, failures, alerts and gaps, live",
    "",
    "Tab, Shift-Tab, 1-5   focus a pane",
    "z                     the focused pane alone (again: all)",
    "/                     filter events by type (globs: claude.tool_* session.*)",
    "p, Space              pause the display (the log is still read)",
    "a                     ended coders too, or live ones only",
    "Up, Down, j, k        select a coder",
    "Enter                 open the selected coder's timeline",
    "Esc                   close the timeline or the zoom",
    "?                     this help (any key closes it)",
    "q, Ctrl-C             quit",
];

fn draw_help(frame: &mut Frame<'_>, area: Rect) {
    let width =
        (HELP.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u16 + 4).min(area.width);
    let height = (HELP.len() as u16 + 2).min(area.height);
    let rect = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(HELP.iter().map(|l| Line::from(*l)).collect::<Vec<_>>())
            .block(Block::default().borders(Borders::ALL).title(" help ")),
        rect,
    );
}
