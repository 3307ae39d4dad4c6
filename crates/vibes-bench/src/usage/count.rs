//! An independent count of a projects tree, to check the reports against: written
//! from the format's rules (fixtures/claude-projects/SOURCES.md), sharing no code
//! with vibes' reader or its usage plugin.
//!
//! Every line of every `<project>/*.jsonl` and `<project>/*/subagents/agent-*.jsonl`
//! is parsed; an `assistant` line with a `message.usage` object is a copy of an API
//! call, unless it is an error stand-in (`isApiErrorMessage`, or model
//! `<synthetic>`). Copies are one call per (`message.id`, `requestId`); the call keeps
//! the copy with the most output tokens (then the most tokens in all) and is dated by
//! its earliest copy's timestamp, as a UTC day.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Result;

/// Token totals of one day (or of everything).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) calls: u64,
    pub(crate) input: u64,
    pub(crate) output: u64,
    pub(crate) cache_creation: u64,
    pub(crate) cache_read: u64,
}

impl Totals {
    pub(crate) fn add(&mut self, other: &Totals) {
        self.calls += other.calls;
        self.input += other.input;
        self.output += other.output;
        self.cache_creation += other.cache_creation;
        self.cache_read += other.cache_read;
    }

    /// Every token, of all four kinds.
    pub(crate) fn tokens(&self) -> u64 {
        self.input + self.output + self.cache_creation + self.cache_read
    }
}

/// What the count found.
#[derive(Debug, Default)]
pub(crate) struct Count {
    /// By UTC day (`YYYY-MM-DD`).
    pub(crate) days: BTreeMap<String, Totals>,
    pub(crate) files: usize,
    pub(crate) lines: u64,
    /// Assistant lines with usage: copies of calls.
    pub(crate) copies: u64,
    /// Copies whose call had already been seen in another file.
    pub(crate) copies_across_files: u64,
    /// Copies in subagent files.
    pub(crate) subagent_copies: u64,
    /// Lines that are not a JSON object.
    pub(crate) malformed: u64,
    /// Calls with a 1-hour cache write, and those tokens.
    pub(crate) calls_with_1h_writes: u64,
    pub(crate) cache_1h_tokens: u64,
}

impl Count {
    pub(crate) fn total(&self) -> Totals {
        let mut total = Totals::default();
        for day in self.days.values() {
            total.add(day);
        }
        total
    }
}

#[derive(Deserialize)]
struct Line {
    #[serde(rename = "type")]
    kind: Option<String>,
    timestamp: Option<String>,
    #[serde(rename = "requestId")]
    request_id: Option<String>,
    #[serde(rename = "isApiErrorMessage")]
    api_error: Option<bool>,
    message: Option<Message>,
}

#[derive(Deserialize)]
struct Message {
    id: Option<String>,
    model: Option<String>,
    usage: Option<Usage>,
}

#[derive(Deserialize, Clone, Copy, Default)]
struct Usage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_creation_input_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: u64,
    #[serde(default)]
    cache_creation: Option<CacheSplit>,
}

#[derive(Deserialize, Clone, Copy, Default)]
struct CacheSplit {
    #[serde(default)]
    ephemeral_1h_input_tokens: u64,
}

impl Usage {
    fn size(&self) -> (u64, u64) {
        (
            self.output_tokens,
            self.input_tokens
                + self.output_tokens
                + self.cache_creation_input_tokens
                + self.cache_read_input_tokens,
        )
    }
}

struct Call {
    /// The earliest copy's time (RFC 3339 strings of one shape sort by time).
    first: String,
    usage: Usage,
    file: usize,
}

/// Counts every transcript under `projects` (a `~/.claude/projects` folder).
pub(crate) fn count(projects: &Path) -> Result<Count> {
    let files = transcript_files(projects)?;
    let mut out = Count {
        files: files.len(),
        ..Count::default()
    };
    let mut calls: HashMap<(String, String), Call> = HashMap::new();
    let mut alone: Vec<Call> = Vec::new();
    for (file_index, path) in files.iter().enumerate() {
        let subagent = path.components().any(|c| c.as_os_str() == "subagents");
        let mut reader = BufReader::with_capacity(256 * 1024, File::open(path)?);
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            out.lines += 1;
            let Ok(parsed) = serde_json::from_slice::<Line>(&line) else {
                out.malformed += 1;
                continue;
            };
            if parsed.kind.as_deref() != Some("assistant") || parsed.api_error == Some(true) {
                continue;
            }
            let Some(message) = parsed.message else {
                continue;
            };
            if message.model.as_deref() == Some("<synthetic>") {
                continue;
            }
            let (Some(usage), Some(timestamp)) = (message.usage, parsed.timestamp) else {
                continue;
            };
            out.copies += 1;
            if subagent {
                out.subagent_copies += 1;
            }
            let copy = Call {
                first: timestamp,
                usage,
                file: file_index,
            };
            let Some(id) = message.id else {
                alone.push(copy);
                continue;
            };
            let key = (id, parsed.request_id.unwrap_or_default());
            match calls.get_mut(&key) {
                None => {
                    calls.insert(key, copy);
                }
                Some(kept) => {
                    if kept.file != file_index {
                        out.copies_across_files += 1;
                    }
                    if copy.first < kept.first {
                        kept.first.clone_from(&copy.first);
                    }
                    if copy.usage.size() > kept.usage.size() {
                        kept.usage = copy.usage;
                    }
                }
            }
        }
    }
    for call in calls.into_values().chain(alone) {
        let day = call.first.get(..10).unwrap_or("").to_string();
        let totals = out.days.entry(day).or_default();
        totals.calls += 1;
        totals.input += call.usage.input_tokens;
        totals.output += call.usage.output_tokens;
        totals.cache_creation += call.usage.cache_creation_input_tokens;
        totals.cache_read += call.usage.cache_read_input_tokens;
        let hour = call
            .usage
            .cache_creation
            .map_or(0, |c| c.ephemeral_1h_input_tokens);
        if hour > 0 {
            out.calls_with_1h_writes += 1;
            out.cache_1h_tokens += hour;
        }
    }
    Ok(out)
}

/// `<projects>/<project>/*.jsonl` and `<projects>/<project>/*/subagents/agent-*.jsonl`,
/// sorted.
pub(crate) fn transcript_files(projects: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for project in sorted_entries(projects)? {
        if !project.is_dir() {
            continue;
        }
        for entry in sorted_entries(&project)? {
            if entry.is_dir() {
                let agents = entry.join("subagents");
                if agents.is_dir() {
                    for agent in sorted_entries(&agents)? {
                        let name = agent.file_name().and_then(|n| n.to_str()).unwrap_or("");
                        if name.starts_with("agent-") && name.ends_with(".jsonl") {
                            out.push(agent);
                        }
                    }
                }
            } else if entry.extension().is_some_and(|e| e == "jsonl") {
                out.push(entry);
            }
        }
    }
    Ok(out)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixtures' SOURCES.md facts, counted by this counter: it must agree with
    /// the table there before it can check anything else.
    #[test]
    fn the_fixture_tree_counts_as_sources_md_says() {
        let fixtures = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/claude-projects"
        ));
        if !fixtures.is_dir() {
            eprintln!("skipped: no fixtures at {}", fixtures.display());
            return;
        }
        let count = count(fixtures).expect("the fixtures count");
        assert_eq!(count.files, 5);
        assert_eq!(count.malformed, 0);
        let day = |d: &str| count.days.get(d).copied().unwrap_or_default();
        // 155c3456 (SOURCES.md: 130 calls, 668 / 26,855 / 360,705 / 7,374,640).
        assert_eq!(
            day("2025-08-25"),
            Totals {
                calls: 130,
                input: 668,
                output: 26_855,
                cache_creation: 360_705,
                cache_read: 7_374_640
            }
        );
        assert_eq!(day("2025-09-03").calls, 170);
        assert_eq!(day("2025-09-03").output, 51_933);
        // ae4a77f8 (217) + agent-aac57f5 (3) + agent-acompact (1).
        let feb = day("2026-02-12");
        assert_eq!(feb.calls, 217 + 3 + 1);
        assert_eq!(feb.output, 49_467 + 7 + 8);
        assert_eq!(feb.cache_read, 16_553_628 + 29_274 + 17_842);
    }
}
