//! Test helper for the cross-process group tests: one member of a consumer group on a
//! file log, in its own process, reading until it is killed. It prints, flushed line by
//! line:
//! - `owns <p> <p> ...` whenever its partitions change;
//! - `read <partition> <offset> <id>` for every record polled.
//!
//! After printing a batch's records it waits `PAUSE_MS` before committing them, so a
//! kill can land between reading and committing.
//!
//! Usage: `filelog-group-member DIR TOPIC GROUP PAUSE_MS`

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use vibes_filelog::{FileLog, FileLogOptions};
use vibes_log::backend::LogBackend;
use vibes_log::{ConsumerOptions, GroupName, StartFrom, TopicName};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, topic, group, pause] = args.as_slice() else {
        eprintln!("usage: filelog-group-member DIR TOPIC GROUP PAUSE_MS");
        return ExitCode::from(2);
    };
    let (Ok(topic), Ok(group), Ok(pause)) = (
        TopicName::new(topic),
        GroupName::new(group),
        pause.parse::<u64>(),
    ) else {
        eprintln!("filelog-group-member: bad arguments {args:?}");
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
                eprintln!("filelog-group-member: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut consumer = match log
            .consumer(&topic, &group, ConsumerOptions::start(StartFrom::Beginning))
            .await
        {
            Ok(consumer) => consumer,
            Err(e) => {
                eprintln!("filelog-group-member: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut out = std::io::stdout().lock();
        let mut owned = Vec::new();
        loop {
            let records = match consumer.poll(8, Duration::from_millis(50)).await {
                Ok(records) => records,
                Err(e) => {
                    eprintln!("filelog-group-member: polling: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let now = consumer.assignment();
            if now != owned {
                let list: Vec<String> = now.iter().map(u32::to_string).collect();
                let _ = writeln!(out, "owns {}", list.join(" "));
                owned = now;
            }
            for r in &records {
                let _ = writeln!(
                    out,
                    "read {} {} {}",
                    r.address.partition, r.address.offset, r.id
                );
            }
            let _ = out.flush();
            if records.is_empty() {
                continue;
            }
            tokio::time::sleep(Duration::from_millis(pause)).await;
            if let Err(e) = consumer.commit().await {
                eprintln!("filelog-group-member: committing: {e}");
                return ExitCode::FAILURE;
            }
        }
    })
}
