//! The child's output: size-capped rotated log files.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use common::{PATIENCE, child, ms, within};
use vibes_supervisor::{Supervisor, SupervisorOptions};

fn rotated(log: &std::path::Path, n: usize) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

#[tokio::test]
async fn output_logs_rotate_at_their_cap_and_keep_that_many_old_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cap = 4096;
    // 300 lines of 100 bytes (101 with the newline): about 7 times the cap.
    let spec = child("flood", ["flood", "300", "100"])
        .log_dir(dir.path())
        .log_max_bytes(cap)
        .log_keep(2);
    let (stdout_log, stderr_log) = (
        spec.stdout_log().expect("log dir"),
        spec.stderr_log().expect("log dir"),
    );
    let supervisor = within("start", Supervisor::start(spec, SupervisorOptions::new()))
        .await
        .expect("start");

    let waiting = Instant::now();
    while !std::fs::read_to_string(&stdout_log)
        .unwrap_or_default()
        .ends_with("flood done\n")
    {
        assert!(
            waiting.elapsed() < PATIENCE,
            "the flood never reached the log"
        );
        tokio::time::sleep(ms(20)).await;
    }
    within("stop", supervisor.stop()).await.expect("stop");

    let files = [
        rotated(&stdout_log, 2),
        rotated(&stdout_log, 1),
        stdout_log.clone(),
    ];
    let mut kept = String::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a kept log file");
        assert!(
            text.len() as u64 <= cap,
            "{} has {} bytes",
            file.display(),
            text.len()
        );
        assert!(text.ends_with('\n'), "{} ends mid-line", file.display());
        kept.push_str(&text);
    }
    assert!(
        !rotated(&stdout_log, 3).exists(),
        "kept more than 2 old files"
    );

    // Oldest file first, the kept lines are the newest ones, whole and in order.
    let mut lines: Vec<&str> = kept.lines().collect();
    assert_eq!(lines.pop(), Some("flood done"));
    let numbers: Vec<u32> = lines
        .iter()
        .map(|line| {
            assert_eq!(line.len(), 100, "{line:?}");
            line[..6].parse().expect("numbered line")
        })
        .collect();
    let first = numbers[0];
    assert!(first > 0, "nothing was rotated away");
    let expected: Vec<u32> = (first..300).collect();
    assert_eq!(numbers, expected);

    let stderr = std::fs::read_to_string(stderr_log).expect("stderr log");
    assert_eq!(stderr, "flood on stderr\n");
}

#[tokio::test]
async fn stdout_lines_reach_the_owner_whole_and_in_order_however_slowly_it_reads() {
    // Lines of 100 kB, far longer than a pipe buffer, through a queue of one line.
    let spec = child("long", ["flood", "3", "100000"]).stdout_lines(1);
    let supervisor = within("start", Supervisor::start(spec, SupervisorOptions::new()))
        .await
        .expect("start");
    let mut lines = supervisor.stdout_lines().expect("lines");
    assert!(supervisor.stdout_lines().is_none(), "one receiver only");
    let mut got = Vec::new();
    while got.len() < 4 {
        tokio::time::sleep(ms(50)).await; // a slow owner
        got.push(within("a line", lines.next()).await.expect("a line"));
    }
    for (n, line) in got[..3].iter().enumerate() {
        assert_eq!(line.len(), 100_000, "line {n}");
        assert!(line.starts_with(format!("{n:06} x").as_bytes()), "line {n}");
    }
    assert_eq!(got[3], b"flood done");
    within("stop", supervisor.stop()).await.expect("stop");
    // Supervision ended and every line was read: the receiver says so.
    assert_eq!(within("end", lines.next()).await, None);
}
