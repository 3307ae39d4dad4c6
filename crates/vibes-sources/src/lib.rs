//! Turns external formats into vibes events.
//!
//! Each module reads one external format and maps it onto the taxonomy of
//! [`vibes_events`]:
//!
//! - [`claude`]: Claude Code's `claude -p --output-format stream-json --verbose` output.
//! - [`transcript`]: Claude Code's on-disk session transcripts
//!   (`~/.claude/projects/<project>/<session>.jsonl` and their subagent files), read
//!   incrementally; [`calls`] counts their API calls once across files.
//! - [`bd`]: the bd ("beads") issue tracker's `.beads/issues.jsonl`, watched and diffed
//!   into `bead.*` events.
//!
//! This crate depends on `vibes-events` only. It produces [`Event`](vibes_events::Event)s
//! and never stores or sends them: it must not depend on `vibes-log` or on any backend.
//!
//! ```
//! use vibes_sources::claude::parse_reader;
//!
//! let input = br#"{"type":"system","subtype":"init","session_id":"s1","model":"m","tools":["Bash"]}
//! {"type":"result","subtype":"success","is_error":false,"num_turns":1,"duration_ms":5,"session_id":"s1","total_cost_usd":0.01}
//! "#;
//! let mut types = Vec::new();
//! let summary = parse_reader(&input[..], |event| types.push(event.event_type().to_owned())).unwrap();
//! assert_eq!(types, ["session.start", "session.end"]);
//! assert_eq!(summary.turns, 1);
//! ```
#![warn(missing_docs)]

pub mod bd;
pub mod calls;
pub mod claude;
pub mod transcript;
