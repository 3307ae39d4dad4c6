//! `vibes emit [FILE|-]`: appends taxonomy events given as JSON lines.

use anyhow::{Context, Result};
use vibes_events::Event;

use super::{Input, MAX_BATCH};
use crate::cli::EmitArgs;
use crate::output::{self, DataOut, Outcome};
use crate::producer::Producer;
use crate::storage::Storage;

pub fn run(storage: &Storage, args: &EmitArgs) -> Result<Outcome> {
    let mut input = Input::open(args.input.as_deref())?;
    let producer = Producer::open(storage, args.durability.as_deref())?;
    let mut acks = args.print_acks.then(|| DataOut::new(false));
    let mut batch: Vec<Event> = Vec::with_capacity(MAX_BATCH);
    let mut line = Vec::new();
    let mut stored = 0u64;
    let mut rejected = 0u64;
    while input.next_line(&mut line)? > 0 {
        let line_number = input.line_number;
        let text = trim(&line);
        if !text.iter().all(u8::is_ascii_whitespace) {
            match Event::from_json_slice(text) {
                Ok(event) => batch.push(event),
                Err(e) => {
                    rejected += 1;
                    eprintln!("{}:{line_number}: rejected: {e}", input.name);
                }
            }
        }
        if input.batch_due(batch.len()) && !flush(&producer, &mut batch, &mut acks, &mut stored)? {
            return Ok(Outcome::Clean);
        }
    }
    if !flush(&producer, &mut batch, &mut acks, &mut stored)? {
        return Ok(Outcome::Clean);
    }
    storage.enforce_retention()?;
    eprintln!(
        "emitted {} into {}{}",
        output::count(stored, "event"),
        storage.describe(),
        if rejected > 0 {
            format!("; rejected {}", output::count(rejected, "line"))
        } else {
            String::new()
        }
    );
    Ok(Outcome::partial_if(rejected > 0))
}

/// Appends and empties `batch`, printing acks. Returns false if the acks' reader went
/// away (then there is no one left to tell, and the command stops).
fn flush(
    producer: &Producer<'_>,
    batch: &mut Vec<Event>,
    acks: &mut Option<DataOut>,
    stored: &mut u64,
) -> Result<bool> {
    if batch.is_empty() {
        return Ok(true);
    }
    let results = producer
        .append(batch)
        .with_context(|| format!("{stored} events stored before this failure"))?;
    *stored += batch.len() as u64;
    batch.clear();
    if let Some(out) = acks {
        for ack in results {
            let line = ack.line(producer.log().topic());
            if out.line(&line)?.is_err() {
                return Ok(false);
            }
        }
        if out.flush()?.is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

fn trim(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
}
