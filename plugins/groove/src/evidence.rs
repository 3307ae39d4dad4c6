//! What a tool call did, in a few words, as evidence of how a failure was fixed:
//! `edit *.go`, `run make build`, `use WebFetch`. Calls that only look (Read, Grep,
//! Glob, LS, todo lists) are no evidence.

use serde_json::Value;

use crate::fingerprint::{cut_chars, is_edit, is_shell};

/// The evidence of a call of `tool` with `input` and command head `head`, if any.
pub fn describe(tool: &str, input: &Value, head: &str) -> Option<String> {
    if matches!(
        tool,
        "Read" | "Grep" | "Glob" | "LS" | "TodoWrite" | "TodoRead" | "BashOutput" | "KillShell"
    ) {
        return None;
    }
    if is_edit(tool) {
        let path = input
            .get("file_path")
            .or_else(|| input.get("notebook_path"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let name = path.rsplit('/').next().unwrap_or(path);
        let what = match name.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() && !ext.is_empty() => format!("*.{ext}"),
            _ if name.is_empty() => "a file".to_owned(),
            _ => name.to_owned(),
        };
        return Some(format!("edit {}", cut_chars(&what, 40)));
    }
    if is_shell(tool) {
        return (!head.is_empty()).then(|| format!("run {head}"));
    }
    Some(format!("use {}", cut_chars(tool, 60)))
}
