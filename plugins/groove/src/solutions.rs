//! Solutions for a gap: what fixed the same failure in other sessions (observed
//! recoveries) and templates by error kind, ranked, each with a stable id and a
//! confidence.

use serde::{Deserialize, Serialize};

use crate::clusters::Cluster;
use crate::feedback::round2;
use crate::fingerprint::{ErrorKind, is_shell};
use crate::gaps::Gap;
use crate::ids;

/// Solutions kept per gap.
pub const MAX_SOLUTIONS: usize = 3;

/// One way to close a gap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Solution {
    /// `s-` and 16 hex digits, from the gap, the source and what it says.
    pub id: String,
    /// `settings_rule`, `claude_md_note`, `install` or `observed`.
    pub kind: String,
    /// Where it goes: `.claude/settings.json`, `CLAUDE.md`, or `environment`.
    pub target: String,
    /// One line a person reads.
    pub title: String,
    /// What to paste (the rule, the note, the command).
    pub text: String,
    /// 0 to 1, two decimals.
    pub confidence: f64,
}

fn solution(
    gap: &Gap,
    kind: &str,
    target: &str,
    title: String,
    text: String,
    confidence: f64,
) -> Solution {
    Solution {
        id: ids::solution_id(&gap.id, kind, &text),
        kind: kind.to_owned(),
        target: target.to_owned(),
        title,
        text,
        confidence: round2(confidence),
    }
}

/// The `permissions.allow` rule that lets `tool` run `head`.
pub fn permission_rule(tool: &str, head: &str) -> String {
    if is_shell(tool) && !head.is_empty() {
        format!("{tool}({head}:*)")
    } else {
        tool.to_owned()
    }
}

fn what(gap: &Gap) -> String {
    if gap.head.is_empty() {
        gap.tool.clone()
    } else {
        format!("`{}`", gap.head)
    }
}

fn template(gap: &Gap) -> Option<Solution> {
    let what = what(gap);
    let program = gap.head.split(' ').next().unwrap_or("");
    Some(match gap.kind {
        ErrorKind::PermissionDenied => {
            let rule = permission_rule(&gap.tool, &gap.head);
            solution(
                gap,
                "settings_rule",
                ".claude/settings.json",
                format!("allow {rule} in .claude/settings.json (permissions.allow)"),
                rule,
                0.9,
            )
        }
        ErrorKind::NoOpEdit => solution(
            gap,
            "claude_md_note",
            "CLAUDE.md",
            "tell the agent to skip edits that change nothing".to_owned(),
            "Before an Edit, check that new_string differs from old_string; if the change is already in the file, do not edit it again.".to_owned(),
            0.6,
        ),
        ErrorKind::EditMismatch => solution(
            gap,
            "claude_md_note",
            "CLAUDE.md",
            "tell the agent to re-read before editing".to_owned(),
            "Read the file again right before editing it and copy old_string exactly from that read, whitespace included.".to_owned(),
            0.6,
        ),
        ErrorKind::CommandNotFound => solution(
            gap,
            "install",
            "environment",
            format!("install {program} where the agent runs, or name an alternative"),
            format!("`{program}` is not installed here: use the project's own scripts instead, or ask before installing it."),
            0.5,
        ),
        ErrorKind::FileNotFound => solution(
            gap,
            "claude_md_note",
            "CLAUDE.md",
            format!("tell the agent to check paths before {what}"),
            format!("Check that a path exists (ls or Glob) before using it with {what}; paths are relative to the repository root."),
            0.4,
        ),
        ErrorKind::Timeout => solution(
            gap,
            "claude_md_note",
            "CLAUDE.md",
            format!("tell the agent how to run {what} without timing out"),
            format!("{what} can take long: run it in the background or with a larger timeout, and narrow it to what changed."),
            0.4,
        ),
        ErrorKind::CompileError | ErrorKind::TestFailure | ErrorKind::LintError => solution(
            gap,
            "claude_md_note",
            "CLAUDE.md",
            format!("tell the agent to run {what} after each change"),
            format!("Run {what} after each change and fix the first error it reports before moving on."),
            0.3,
        ),
        ErrorKind::Interrupted | ErrorKind::Network | ErrorKind::Other => return None,
    })
}

/// The ranked solutions of `gap` over `cluster`: a permission rule first, then by
/// confidence (observed recoveries: the share of the cluster's failures each fixed),
/// then by id; at most [`MAX_SOLUTIONS`].
pub fn generate(gap: &Gap, cluster: &Cluster) -> Vec<Solution> {
    let mut all: Vec<Solution> = template(gap).into_iter().collect();
    let failures = cluster.failures.max(1) as f64;
    for (how, count) in &cluster.recoveries {
        let text = if how == "retry" {
            format!(
                "The next {} call succeeded with nothing in between: retry once before changing anything.",
                what(gap)
            )
        } else {
            format!("Before running {} again: {how}.", what(gap))
        };
        all.push(solution(
            gap,
            "observed",
            "CLAUDE.md",
            format!("seen fixing it {count} time(s): {how}"),
            text,
            (*count as f64 / failures).min(0.95),
        ));
    }
    all.sort_by(|a, b| {
        let first = |s: &Solution| s.kind != "settings_rule";
        first(a)
            .cmp(&first(b))
            .then(b.confidence.total_cmp(&a.confidence))
            .then(a.id.cmp(&b.id))
    });
    all.truncate(MAX_SOLUTIONS);
    all
}

/// Whether two solution lists are the same set in the same order (confidence moving
/// alone is no change).
pub fn same(a: &[Solution], b: &[Solution]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.id == y.id)
}
