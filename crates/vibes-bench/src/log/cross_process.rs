//! How soon a consumer sees records another process appends to the same file log.
//!
//! The bench starts itself again as a producer ([`CHILD_ARG`]) that appends one record
//! at a time, with durability `always`, every [`SPACING`]; the consumer here waits in
//! a long poll. A record's append time is wall-clock, the same clock in both
//! processes, so each sample is receipt time minus append time.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tokio::runtime::Runtime;
use vibes_filelog::{FileLog, FileLogOptions};
use vibes_log::backend::{LogBackend, Record};
use vibes_log::{AppendOptions, ConsumerOptions, GroupName, TopicConfig, TopicName};

use crate::Result;
use crate::report::Measurement;

/// The argument that makes the bench binary the producer process.
pub(crate) const CHILD_ARG: &str = "__cross-process-producer";
/// Pause between two appends of the producer.
const SPACING: Duration = Duration::from_millis(20);
const TOPIC: &str = "bench/cross-process";

/// The producer process: `vibes-bench __cross-process-producer DIR COUNT`.
pub(crate) fn producer(args: &[String]) -> Result<()> {
    let [dir, count] = args else {
        return Err(format!("{CHILD_ARG} takes DIR COUNT, got {args:?}").into());
    };
    let count: u128 = count.parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let log = FileLog::open(dir, FileLogOptions::default())?;
        let topic = TopicName::new(TOPIC)?;
        for id in 0..count {
            let record = Record::new(None, id, format!("cross-process record {id}"));
            log.append(&topic, 0, vec![record], AppendOptions::default())
                .await?;
            tokio::time::sleep(SPACING).await;
        }
        Ok(())
    })
}

/// Measures visibility latency over `count` records appended by a child process.
pub(crate) fn measure(runtime: &Runtime, dir: &Path, count: usize) -> Result<Measurement> {
    runtime.block_on(async {
        let log = FileLog::open(dir, FileLogOptions::default())?;
        let topic = TopicName::new(TOPIC)?;
        log.ensure_topic(&topic, TopicConfig::default()).await?;
        let group = GroupName::new("cross-process")?;
        let mut consumer = log
            .consumer(&topic, &group, ConsumerOptions::default())
            .await?;
        let mut child = Command::new(std::env::current_exe()?)
            .args([
                CHILD_ARG,
                dir.to_str().ok_or("temp dir is not UTF-8")?,
                &count.to_string(),
            ])
            .spawn()?;
        let mut latencies = Vec::with_capacity(count);
        while latencies.len() < count {
            let records = consumer.poll(count, Duration::from_secs(5)).await?;
            let now = vibes_events::Timestamp::now().as_microsecond();
            if records.is_empty() {
                let _ = child.kill();
                return Err(format!("received {} of {count} records", latencies.len()).into());
            }
            for record in records {
                if record.id != latencies.len() as u128 {
                    return Err(format!("record {} arrived out of order", record.id).into());
                }
                let micros = now - record.timestamp.as_microsecond();
                latencies.push(Duration::from_micros(micros.max(0) as u64));
            }
        }
        if !child.wait()?.success() {
            return Err("the producer process failed".into());
        }
        latencies.sort_unstable();
        Ok(Measurement {
            p50_us: Some(super::percentile_us(&latencies, 50.0)),
            p99_us: Some(super::percentile_us(&latencies, 99.0)),
            ..Measurement::new("cross_process_visibility", "filelog-always")
        })
    })
}
