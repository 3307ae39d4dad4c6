//! The one-liners of the plugins' own events (`groove.*`, `ai_coder.*`), which the
//! taxonomy carries as extra fields: a symbol, the subject, what happened.

use serde_json::Value;

use super::{Millis, Style};

/// The one-liner of an event of the groove plugin (`groove.*`), in the style of the
/// session lines: a symbol, the subject, what happened.
pub(super) fn groove_line(
    event_type: &str,
    extra: &serde_json::Map<String, Value>,
) -> Option<(Style, String)> {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or("?").to_owned();
    let num = |v: &Value, key: &str| v.get(key).map_or("?".to_owned(), ToString::to_string);
    let subject = |v: &Value| {
        let head = text(v, "head");
        let tool = text(v, "tool");
        if head.is_empty() || head == "?" {
            tool
        } else {
            format!("{tool} `{head}`")
        }
    };
    let all = Value::Object(extra.clone());
    Some(match event_type {
        "groove.novelty_detected" => {
            let fp = all.get("fingerprint")?;
            (
                Style::Yellow,
                format!(
                    "✦ new failure: {} {}: {}",
                    subject(fp),
                    text(fp, "kind"),
                    text(fp, "line")
                ),
            )
        }
        "groove.cluster_updated" => {
            let c = all.get("cluster")?;
            let sessions = num(c, "sessions");
            let noun = if sessions == "1" {
                "session"
            } else {
                "sessions"
            };
            (
                Style::Yellow,
                format!(
                    "↻ {} {} failed in {sessions} {noun} ({} failures, {} recovered)",
                    subject(c),
                    text(c, "kind"),
                    num(c, "failures"),
                    num(c, "recovered")
                ),
            )
        }
        "groove.gap_created" => {
            let g = all.get("gap")?;
            (
                Style::Red,
                format!(
                    "◆ gap {} opened: {} {} in {} sessions",
                    text(g, "id"),
                    subject(g),
                    text(g, "kind"),
                    num(g, "sessions")
                ),
            )
        }
        "groove.gap_status_changed" => {
            let new = text(&all, "new");
            let style = if new == "resolved" {
                Style::Green
            } else {
                Style::Yellow
            };
            (
                style,
                format!(
                    "◆ gap {} {} → {} ({})",
                    text(&all, "gap_id"),
                    text(&all, "old"),
                    new,
                    text(&all, "reason")
                ),
            )
        }
        "groove.solutions_generated" => {
            let solutions = all.get("solutions")?.as_array()?;
            let first = solutions
                .first()
                .map_or("none".to_owned(), |s| text(s, "title"));
            (
                Style::Cyan,
                format!(
                    "✎ gap {}: {} solutions, first: {first}",
                    text(&all, "gap_id"),
                    solutions.len()
                ),
            )
        }
        "groove.strategy_feedback" => {
            let adjustment = all.get("adjustment").and_then(Value::as_f64)?;
            let style = if adjustment > 0.0 {
                Style::Green
            } else {
                Style::Red
            };
            (
                style,
                format!(
                    "± solution {} of gap {}: failure rate {} → {} ({adjustment:+})",
                    text(&all, "learning_id"),
                    text(&all, "gap_id"),
                    num(&all, "before"),
                    num(&all, "after")
                ),
            )
        }
        "groove.decision" => {
            let solution = all
                .get("solution_id")
                .and_then(Value::as_str)
                .map(|s| format!(" with solution {s}"))
                .unwrap_or_default();
            (
                Style::Blue,
                format!(
                    "☛ {} gap {}{solution}",
                    text(&all, "action"),
                    text(&all, "gap_id")
                ),
            )
        }
        _ => return None,
    })
}

/// The one-liner of an event of the ai-coder plugin (`ai_coder.*`): a symbol, the
/// coder's name, what happened.
pub(super) fn ai_coder_line(
    event_type: &str,
    extra: &serde_json::Map<String, Value>,
) -> Option<(Style, String)> {
    let kind = event_type.strip_prefix("ai_coder.")?;
    let text = |key: &str| extra.get(key).and_then(Value::as_str);
    let num = |key: &str| extra.get(key).and_then(Value::as_f64);
    let name = text("coder_name").or(text("coder_id"))?;
    let why = text("reason")
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let path = text("file_path").unwrap_or("?");
    Some(match kind {
        "created" | "started" | "resumed" => (Style::Cyan, format!("● {name} {kind}{why}")),
        "paused" | "stopped" => (Style::Yellow, format!("● {name} {kind}{why}")),
        "completed" => (Style::Green, format!("● {name} completed{why}")),
        "failed" => (Style::Red, format!("● {name} failed{why}")),
        "deleted" => (Style::Dim, format!("● {name} forgotten{why}")),
        "progress" => {
            let detail = match (num("done"), num("total")) {
                (Some(done), Some(total)) => format!("{done} of {total} todos done"),
                _ => text("description").unwrap_or("").to_owned(),
            };
            (Style::Blue, format!("▸ {name}: {detail}"))
        }
        "milestone" => (
            Style::Green,
            format!("★ {name}: {}", text("milestone").unwrap_or("?")),
        ),
        "output" => (
            Style::Plain,
            format!("{name}: {}", text("text").unwrap_or("")),
        ),
        "file_created" => (Style::Green, format!("+ {name} created {path}")),
        "file_modified" => (Style::Cyan, format!("~ {name} modified {path}")),
        "file_deleted" => (Style::Yellow, format!("- {name} deleted {path}")),
        "workspace_sync" => (
            Style::Magenta,
            format!("⇅ {name}: {}", text("command").unwrap_or("sync")),
        ),
        "api_call" => {
            let cost = num("cost_usd")
                .map(|c| format!(", ${c:.4}"))
                .unwrap_or_default();
            (
                Style::Dim,
                format!(
                    "⇄ {name} API call {} ({} tokens{cost})",
                    text("model").unwrap_or("?"),
                    num("tokens_used").unwrap_or(0.0)
                ),
            )
        }
        "api_error" => (
            Style::Red,
            format!(
                "✗ {name} API error {}: {}",
                text("error_code").unwrap_or("-"),
                text("error_message").unwrap_or("?")
            ),
        ),
        "rate_limit" => (
            Style::Yellow,
            format!("⚠ {name} rate limit {}", text("status").unwrap_or("?")),
        ),
        "resource_usage" => (
            Style::Dim,
            format!(
                "▣ {name}: {} MiB, {:.1}% CPU, {} processes",
                num("memory_mb").unwrap_or(0.0),
                num("cpu_percent").unwrap_or(0.0),
                num("processes").unwrap_or(0.0)
            ),
        ),
        "resource_limit" => (
            Style::Red,
            format!(
                "✗ {name} passed its {} limit: {} > {}",
                text("limit").unwrap_or("?"),
                num("observed").unwrap_or(0.0),
                num("threshold").unwrap_or(0.0)
            ),
        ),
        "failure_alert" => (
            Style::Red,
            format!(
                "‼ {name} failed {} times within {} minutes",
                num("failure_count").unwrap_or(0.0),
                num("window_minutes").unwrap_or(0.0)
            ),
        ),
        "completion_metrics" => (
            Style::Green,
            format!(
                "✓ {name} completed {} after it was created",
                Millis(num("duration_ms").unwrap_or(0.0) as u64)
            ),
        ),
        "system_warning" => (
            Style::Yellow,
            format!("⚠ {name}: {}", text("message").unwrap_or("?")),
        ),
        _ => return None,
    })
}
