//! One session's (or bead's) stored records, read where the sessions plugin's index says
//! they are instead of scanning the log: the plugin is brought up to date from its
//! newest snapshot (`plugin_query::load`), then only the runs of offsets the index
//! lists are read.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use vibes_events::Event;
use vibes_log::backend::{LogBackend, partition_for_key};
use vibes_log::{EventLog, Offset, TopicName};
use vibes_plugin_sessions::{Run, Sessions};

use crate::cli::GlobalArgs;
use crate::storage::Storage;

/// Records read per request.
const STEP: u64 = 4096;

/// What reading one key's indexed records did.
#[derive(Debug, Default)]
pub struct Indexed {
    /// Events handed to the printer.
    pub printed: u64,
    /// Records that did not decode (reported on stderr).
    pub undecodable: u64,
    /// The printer asked to stop, or the limit was reached.
    pub stopped: bool,
    /// Per partition, the offset after which the index knows nothing: where a follower
    /// goes on without repeating a record.
    pub read_to: BTreeMap<u32, Offset>,
}

/// Hands every indexed event of `key` to `print` (in stored order, each once), up to
/// `limit`. `print` returns whether to go on.
pub fn print_indexed(
    storage: &Storage,
    log: &EventLog<Event>,
    key: &str,
    global: &GlobalArgs,
    print: &mut dyn FnMut(&Event) -> Result<bool>,
    limit: Option<u64>,
) -> Result<Indexed> {
    // Every record of `key` at or past these offsets was appended after the rebuild
    // began, so it is not in the index.
    let mut read_to = BTreeMap::new();
    for partition in 0..log.partitions() {
        let marks = storage.block_on(log.watermarks(partition))?;
        read_to.insert(partition, marks.high);
    }
    let mut plugin = Sessions::new();
    super::plugin_query::load(storage, &mut plugin, global)?;
    let own = partition_for_key(Some(key.as_bytes()), log.partitions());
    let Some(index) = plugin.addresses(key) else {
        return Ok(Indexed {
            read_to,
            ..Indexed::default()
        });
    };
    let mut done = storage.block_on(read_runs(
        &*storage.backend,
        log.topic(),
        key,
        index.runs(),
        Page { skip: 0, limit },
        &mut |_, event| print(event),
    ))?;
    // Past the runs of its own partition, the index knows nothing more.
    if let Some(end) = done.read_to.remove(&own) {
        let at = read_to.entry(own).or_insert(0);
        *at = (*at).max(end);
    }
    done.read_to = read_to;
    Ok(done)
}

/// Which of a key's events [`read_runs`] hands on: after the first `skip`, up to
/// `limit`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Page {
    pub skip: u64,
    pub limit: Option<u64>,
}

/// Hands the events of `key` stored in `runs` (a sessions index's) to `print`, in
/// stored order, each once, skipping `page.skip` and stopping after `page.limit`.
/// `print` returns whether to go on. In the answer, `read_to` holds per partition the
/// end of the last run read.
pub async fn read_runs<F>(
    backend: &dyn LogBackend,
    topic: &TopicName,
    key: &str,
    runs: &[Run],
    page: Page,
    print: &mut F,
) -> Result<Indexed>
where
    F: FnMut(vibes_log::RecordAddress, &Event) -> Result<bool> + ?Sized,
{
    let mut done = Indexed::default();
    let mut skipped = 0u64;
    'runs: for run in runs {
        let end = run.start + run.len;
        let mut next = run.start;
        while next < end {
            let want = usize::try_from((end - next).min(STEP)).unwrap_or(STEP as usize);
            let records = backend
                .read(topic, run.partition, next, want)
                .await
                .with_context(|| format!("reading partition {} of {topic}", run.partition))?;
            let Some(last) = records.last() else {
                break;
            };
            next = last.address.offset + 1;
            for record in records {
                let offset = record.address.offset;
                if offset < run.start || offset >= end {
                    continue;
                }
                let event = match Event::from_json_slice(&record.payload) {
                    Ok(event) => event,
                    Err(e) => {
                        done.undecodable += 1;
                        eprintln!(
                            "warning: skipped a record that does not decode: {topic} partition {} offset {offset}: {e}",
                            run.partition
                        );
                        continue;
                    }
                };
                if event.partition_key() != Some(key) {
                    continue;
                }
                if skipped < page.skip {
                    skipped += 1;
                    continue;
                }
                if !print(record.address, &event)? {
                    done.stopped = true;
                    break 'runs;
                }
                done.printed += 1;
                if page.limit.is_some_and(|limit| done.printed >= limit) {
                    done.stopped = true;
                    break 'runs;
                }
            }
        }
        let at = done.read_to.entry(run.partition).or_insert(0);
        *at = (*at).max(end);
    }
    Ok(done)
}
