//! `vibes tail`: prints stored events, optionally following new ones.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use jiff::Timestamp;
use vibes_events::Event;
use vibes_events::display::DisplayOptions;
use vibes_log::{
    ConsumerOptions, EventConsumer, EventLog, GroupName, LogError, Offset, RecordAddress,
    SeekPosition, StartFrom,
};

use super::{EndsNow, private_group, session};
use crate::cli::{GlobalArgs, TailArgs};
use crate::output::{self, DataOut, Outcome};
use crate::search::Selection;
use crate::storage::Storage;

const POLL_MAX: usize = 1024;
const FOLLOW_POLL: Duration = Duration::from_secs(1);

/// Where `--from` asks to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    Beginning,
    End,
    Offset(Offset),
    Time(Timestamp),
}

impl From {
    pub fn parse(text: &str) -> Result<From> {
        Self::parse_as(text, "--from")
    }

    /// As [`From::parse`], naming the value `what` in errors (`from` in the HTTP API).
    pub fn parse_as(text: &str, what: &str) -> Result<From> {
        match text {
            "beginning" => Ok(From::Beginning),
            "end" => Ok(From::End),
            _ if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => text
                .parse()
                .map(From::Offset)
                .with_context(|| format!("invalid {what} {text:?}: offset too large")),
            _ => text.parse::<Timestamp>().map(From::Time).map_err(|_| {
                anyhow::anyhow!(
                    "invalid {what} {text:?}: expected beginning, end, an offset (such as 120) \
                     or an RFC 3339 time (such as 2026-11-22T09:30:00Z)"
                )
            }),
        }
    }
}

pub fn run(storage: &Storage, args: &TailArgs, global: &GlobalArgs) -> Result<Outcome> {
    let from = args.from.as_deref().map(From::parse).transpose()?;
    let group = args
        .group
        .as_deref()
        .map(|g| GroupName::new(g).with_context(|| format!("invalid --group {g:?}")))
        .transpose()?;
    let selection = Selection::new(&args.types, &args.sources, args.session.clone());
    let existing = match &args.topic {
        Some(topic) => storage.existing_topic(topic)?,
        None => storage.existing_events()?,
    };
    let log = match existing {
        Some(log) => log,
        None if args.follow && args.topic.is_none() => storage.events()?,
        None => {
            let what = args.topic.as_deref().unwrap_or("events");
            eprintln!("no {what} stored yet in {}", storage.describe());
            return Ok(Outcome::Clean);
        }
    };
    let color = !args.json && output::use_color(global.color, output::stdout_is_terminal());
    let display = DisplayOptions::plain().color(color);
    let mut out = DataOut::new(args.follow);
    // One session's history, read where the sessions plugin's index says it is.
    let mut indexed = None;
    if let Some(key) = &selection.session
        && from.is_none()
        && group.is_none()
        && args.topic.is_none()
    {
        let done = session::print_indexed(
            storage,
            &log,
            key,
            global,
            &mut |event| {
                if !selection.filter.matches(event) {
                    return Ok(true);
                }
                Ok(out.line(&render(event, args.json, display)?)?.is_ok())
            },
            args.limit,
        )?;
        if out.flush()?.is_err() || !args.follow || done.stopped {
            return Ok(Outcome::partial_if(done.undecodable > 0));
        }
        indexed = Some(done);
    }
    // Without --group, a private group that never commits: nothing is stored for it.
    let group_name = match &group {
        Some(g) => g.as_str().to_owned(),
        None => private_group("tail"),
    };
    let start = match from {
        Some(From::End) => StartFrom::End,
        _ => StartFrom::Beginning,
    };
    let mut consumer = storage
        .block_on(log.consumer_with(&group_name, ConsumerOptions::start(start)))
        .with_context(|| format!("joining consumer group {group_name}"))?;
    if let Some(from) = from {
        seek(storage, &log, &mut consumer, from)?;
    }
    // Following an indexed session: go on after what the index covered.
    if let Some(done) = &indexed {
        for (&partition, &end) in &done.read_to {
            storage.block_on(consumer.seek_partition(partition, SeekPosition::Offset(end)))?;
        }
    }
    // Without -f, stop at the end as it is now.
    let stop_at = if args.follow {
        None
    } else {
        Some(EndsNow::read(storage, &log, &consumer)?)
    };

    let mut printed = indexed.as_ref().map_or(0, |done| done.printed);
    let mut undecodable = indexed.as_ref().map_or(0, |done| done.undecodable);
    let mut damaged = 0u64;
    let mut last_damage: Option<String> = None;
    let commits = group.is_some();
    loop {
        if stop_at.as_ref().is_some_and(|ends| ends.reached(&consumer)) {
            break;
        }
        let timeout = if args.follow {
            FOLLOW_POLL
        } else {
            Duration::from_millis(200)
        };
        let batch = match storage.block_on(consumer.poll(POLL_MAX, timeout)) {
            Ok(batch) => {
                last_damage = None;
                batch
            }
            Err(error @ LogError::Corrupt { .. }) => {
                // The consumer has moved past the damaged records: say so, go on. The
                // same damage twice in a row means it could not move: stop.
                let text = error.to_string();
                if last_damage.as_deref() == Some(text.as_str()) {
                    return Err(anyhow::Error::new(error).context("reading events"));
                }
                match &error {
                    // A gap a repair recorded: known and kept, so a note, not a failure.
                    LogError::Corrupt { file, reason, .. }
                        if file.extension().is_some_and(|e| e == "quarantine") =>
                    {
                        eprintln!("note: {reason}");
                    }
                    _ => {
                        damaged += 1;
                        eprintln!("error: {text}");
                    }
                }
                last_damage = Some(text);
                continue;
            }
            Err(error) => return Err(anyhow::Error::new(error).context("reading events")),
        };
        for failure in &batch.failures {
            undecodable += 1;
            eprintln!("warning: skipped a record that does not decode: {failure}");
        }
        let mut last: BTreeMap<u32, RecordAddress> = BTreeMap::new();
        let mut stop = false;
        for delivered in &batch.events {
            if stop_at
                .as_ref()
                .is_some_and(|ends| !ends.includes(delivered.address))
            {
                continue;
            }
            if selection.matches(&delivered.event) {
                let text = render(&delivered.event, args.json, display)?;
                if out.line(&text)?.is_err() {
                    stop = true;
                    break;
                }
                printed += 1;
            }
            last.insert(delivered.address.partition, delivered.address);
            if args.limit.is_some_and(|limit| printed >= limit) {
                stop = true;
                break;
            }
        }
        if out.flush()?.is_err() {
            stop = true;
        }
        if commits {
            if stop {
                for address in last.values() {
                    storage.block_on(consumer.commit_through(*address))?;
                }
            } else {
                storage
                    .block_on(consumer.commit())
                    .context("committing the group's position")?;
            }
        }
        if stop {
            break;
        }
    }
    Ok(Outcome::partial_if(undecodable > 0 || damaged > 0))
}

/// One event as `tail` prints it: canonical JSON, or the display line.
fn render(event: &Event, json: bool, display: DisplayOptions) -> Result<String> {
    if json {
        event.to_json().context("encoding an event")
    } else {
        Ok(event.line(display).to_string())
    }
}

fn seek(
    storage: &Storage,
    log: &EventLog<Event>,
    consumer: &mut EventConsumer<Event>,
    from: From,
) -> Result<()> {
    let starts = storage.block_on(start_offsets(log, from, "--from"))?;
    for p in consumer.assignment() {
        if let Some(&offset) = starts.get(&p) {
            storage
                .block_on(consumer.seek_partition(p, SeekPosition::Offset(offset)))
                .context("moving to --from")?;
        }
    }
    Ok(())
}

/// Where `from` starts reading, per partition of `log`: the rule of `tail --from` and
/// of the HTTP API's `from`. An offset applies to every partition; one that ends before
/// it starts at its end, but an offset no partition has reached yet is an error, and
/// so is one that retention deleted. A time starts at each partition's first record
/// stored at or after it. Errors name the value `what` (`--from`, `from`).
pub async fn start_offsets(
    log: &EventLog<Event>,
    from: From,
    what: &str,
) -> Result<BTreeMap<u32, Offset>> {
    let mut marks = BTreeMap::new();
    for p in 0..log.partitions() {
        marks.insert(p, log.watermarks(p).await?);
    }
    match from {
        From::Beginning => Ok(marks.into_iter().map(|(p, m)| (p, m.low)).collect()),
        From::End => Ok(marks.into_iter().map(|(p, m)| (p, m.high)).collect()),
        From::Offset(offset) => {
            let highest = marks.values().map(|m| m.high).max().unwrap_or(0);
            if offset > highest {
                bail!(
                    "{what} {offset} is past the end of {}: the highest offset stored is {}",
                    log.topic(),
                    highest.saturating_sub(1)
                );
            }
            let mut starts = BTreeMap::new();
            for (p, m) in marks {
                if offset < m.low {
                    bail!(
                        "{what} {offset}: partition {p} of {} now starts at offset {} (older records were deleted by retention)",
                        log.topic(),
                        m.low
                    );
                }
                starts.insert(p, offset.min(m.high));
            }
            Ok(starts)
        }
        From::Time(t) => {
            // The backend knows where a time is; a private consumer that never commits
            // asks it.
            let mut consumer = log
                .consumer_with(
                    &private_group("at-time"),
                    ConsumerOptions::start(StartFrom::Beginning),
                )
                .await?;
            consumer
                .seek(SeekPosition::Timestamp(t))
                .await
                .with_context(|| format!("moving to {what}"))?;
            Ok(marks
                .into_iter()
                .map(|(p, m)| (p, consumer.position(p).unwrap_or(m.high)))
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_forms() {
        assert_eq!(From::parse("beginning").ok(), Some(From::Beginning));
        assert_eq!(From::parse("end").ok(), Some(From::End));
        assert_eq!(From::parse("120").ok(), Some(From::Offset(120)));
        let t: Timestamp = "2026-11-22T09:30:00Z".parse().expect("time");
        assert_eq!(
            From::parse("2026-11-22T09:30:00Z").ok(),
            Some(From::Time(t))
        );
        let err = From::parse("yesterday")
            .expect_err("unknown form")
            .to_string();
        assert!(
            err.starts_with("invalid --from \"yesterday\": expected beginning"),
            "{err}"
        );
        assert!(From::parse("-5").is_err());
    }
}
