//! Test helper for the crash tests: appends numbered records to a file log with
//! durability `always`, as fast as it can, and prints `<partition> <offset> <id>` for
//! every record once its append is acknowledged, until it is killed.
//!
//! Usage: `filelog-crash-writer DIR TOPIC PRODUCER PARTITIONS`
//!
//! Record `seq` of producer `p` has id `p << 64 | seq`, key `k<seq % 7>` and a payload
//! `p:seq:` repeated to about 100 bytes, so a reader can check every record is intact.

use std::io::Write;
use std::process::ExitCode;

use bytes::Bytes;
use vibes_filelog::{FileLog, FileLogOptions};
use vibes_log::backend::{LogBackend, Record, partition_for_key};
use vibes_log::{AppendOptions, TopicConfig, TopicName};

fn payload(producer: u64, seq: u64) -> Vec<u8> {
    format!("{producer}:{seq}:").repeat(100 / 8).into_bytes()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, topic, producer, partitions] = args.as_slice() else {
        eprintln!("usage: filelog-crash-writer DIR TOPIC PRODUCER PARTITIONS");
        return ExitCode::from(2);
    };
    let (Ok(producer), Ok(partitions), Ok(topic)) = (
        producer.parse::<u64>(),
        partitions.parse::<u32>(),
        TopicName::new(topic),
    ) else {
        eprintln!("filelog-crash-writer: bad arguments {args:?}");
        return ExitCode::from(2);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let log = match FileLog::open(dir, FileLogOptions::default()) {
            Ok(log) => log,
            Err(e) => {
                eprintln!("filelog-crash-writer: open: {e}");
                return ExitCode::from(3);
            }
        };
        if let Err(e) = log
            .ensure_topic(&topic, TopicConfig::partitions(partitions))
            .await
        {
            eprintln!("filelog-crash-writer: topic: {e}");
            return ExitCode::from(3);
        }
        let mut out = std::io::stdout().lock();
        let mut seq = 0u64;
        loop {
            // Batches of 1 to 5 records, all with one key so they share a partition.
            let count = 1 + seq % 5;
            let key = format!("k{}", seq % 7);
            let partition = partition_for_key(Some(key.as_bytes()), partitions);
            let records = (seq..seq + count)
                .map(|s| {
                    Record::new(
                        Some(Bytes::from(key.clone())),
                        u128::from(producer) << 64 | u128::from(s),
                        payload(producer, s),
                    )
                })
                .collect::<Vec<_>>();
            let ids: Vec<u128> = records.iter().map(|r| r.id).collect();
            match log
                .append(&topic, partition, records, AppendOptions::default())
                .await
            {
                Ok(ack) => {
                    for (offset, id) in (ack.base_offset..).zip(ids) {
                        if writeln!(out, "{partition} {offset} {id}").is_err() {
                            return ExitCode::SUCCESS;
                        }
                    }
                    if out.flush().is_err() {
                        return ExitCode::SUCCESS;
                    }
                }
                Err(e) => {
                    eprintln!("filelog-crash-writer: append: {e}");
                    return ExitCode::from(4);
                }
            }
            seq += count;
        }
    })
}
