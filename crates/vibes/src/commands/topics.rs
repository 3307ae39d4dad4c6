//! `vibes topics`: what the log holds, and where each consumer group is.

use std::fmt::Write as _;

use anyhow::{Context, Result};

use crate::output::{self, DataOut, Outcome};
use crate::storage::Storage;

pub fn run(storage: &Storage) -> Result<Outcome> {
    let backend = &storage.backend;
    let topics = storage
        .block_on(backend.list_topics())
        .context("listing topics")?;
    let mut s = String::new();
    if topics.is_empty() {
        let _ = writeln!(s, "no topics in {}", storage.describe());
    }
    for topic in &topics {
        let info = storage
            .block_on(backend.topic_info(topic))
            .with_context(|| format!("reading topic {topic}"))?;
        let bytes = match &storage.file {
            Some(file) => Some(
                file.bytes_on_disk(topic)
                    .with_context(|| format!("measuring topic {topic}"))?,
            ),
            None => None,
        };
        let quarantined = match &storage.file {
            Some(file) => file
                .quarantined(topic)
                .with_context(|| format!("listing the quarantine files of {topic}"))?,
            None => Vec::new(),
        };
        // Offsets a repair quarantined are not records the partition holds.
        let held = |p: usize, marks: &vibes_log::Watermarks| {
            let lost: u64 = quarantined
                .iter()
                .filter(|q| q.partition as usize == p)
                .map(|q| {
                    q.offsets
                        .end
                        .min(marks.high)
                        .saturating_sub(q.offsets.start.max(marks.low))
                })
                .sum();
            marks.len().saturating_sub(lost)
        };
        let records: u64 = info
            .partitions
            .iter()
            .enumerate()
            .map(|(p, m)| held(p, m))
            .sum();
        let total_bytes = bytes.as_ref().map(|b| b.iter().sum::<u64>());
        let _ = writeln!(
            s,
            "{topic}  {} partition{}, {records} records{}",
            info.partitions.len(),
            if info.partitions.len() == 1 { "" } else { "s" },
            total_bytes.map_or_else(String::new, |b| format!(
                ", {} on disk",
                output::human_bytes(b)
            ))
        );
        for (p, marks) in info.partitions.iter().enumerate() {
            let on_disk = bytes
                .as_ref()
                .and_then(|b| b.get(p))
                .map_or_else(String::new, |b| format!("  {}", output::human_bytes(*b)));
            let _ = writeln!(
                s,
                "  partition {p}  offsets {}..{}  {} records{on_disk}",
                marks.low,
                marks.high,
                held(p, marks)
            );
        }
        for q in &quarantined {
            let _ = writeln!(
                s,
                "  partition {}  offsets {}..{} quarantined in {}",
                q.partition,
                q.offsets.start,
                q.offsets.end,
                q.file.display()
            );
        }
        let groups = storage
            .block_on(backend.groups(topic))
            .with_context(|| format!("reading the consumer groups of {topic}"))?;
        for group in groups {
            let mut lag = 0u64;
            let mut positions = Vec::new();
            for (p, marks) in info.partitions.iter().enumerate() {
                let committed = group.committed.get(p).copied().flatten();
                lag += marks.high - committed.unwrap_or(marks.low).clamp(marks.low, marks.high);
                positions.push(match committed {
                    Some(next) => format!("{p}:{next}"),
                    None => format!("{p}:-"),
                });
            }
            let _ = writeln!(
                s,
                "  group {}  next offsets {}  lag {lag}",
                group.group,
                positions.join(" ")
            );
        }
    }
    if let Some(outbox) = storage.outbox() {
        let depth = outbox.depth();
        if depth.is_empty() {
            let _ = writeln!(s, "outbox: empty (everything reached iggy-server)");
        }
        for d in depth {
            let _ = writeln!(
                s,
                "outbox: {} partition {}: {} records waiting for iggy-server{}",
                d.topic,
                d.partition,
                d.waiting,
                d.last_error
                    .map(|e| format!(" (last attempt: {e})"))
                    .unwrap_or_default()
            );
        }
    }
    let mut out = DataOut::new(false);
    let _ = out.line(s.trim_end())?;
    let _ = out.flush()?;
    Ok(Outcome::Clean)
}
