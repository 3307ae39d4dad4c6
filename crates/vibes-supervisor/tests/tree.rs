//! The process-tree sampler, on real processes.

mod common;

use std::time::Instant;

use common::{PATIENCE, arg, child, ms, within};
use vibes_supervisor::{Supervisor, SupervisorOptions, TreeSample, TreeSampler};

/// Starts the test child with `args`, its stdout handed over, and waits for its first
/// line.
async fn started<const N: usize>(name: &str, args: [&str; N]) -> (Supervisor, String) {
    let spec = child(name, args).stdout_lines(16);
    let supervisor = Supervisor::start(spec, SupervisorOptions::new())
        .await
        .expect("start");
    let mut lines = supervisor.stdout_lines().expect("lines");
    let line = within("first line", lines.next()).await.expect("a line");
    (supervisor, String::from_utf8(line).expect("UTF-8"))
}

/// Samples until `accept` says yes; the last sample.
async fn sample_until(
    sampler: &mut TreeSampler,
    mut accept: impl FnMut(&TreeSample) -> bool,
) -> TreeSample {
    let started = Instant::now();
    loop {
        let sample = sampler.sample().expect("sample");
        if accept(&sample) || started.elapsed() > PATIENCE {
            return sample;
        }
        tokio::time::sleep(ms(50)).await;
    }
}

#[tokio::test]
async fn a_tree_counts_the_child_and_its_grandchild_and_their_memory() {
    let (supervisor, line) = started("spawner", ["spawn"]).await;
    let pid = supervisor.pid().expect("running");
    let grandchild: u32 = line
        .strip_prefix("grandchild ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));

    let mut sampler = TreeSampler::new(pid);
    let sample = sample_until(&mut sampler, |s| s.processes() == 2).await;
    assert_eq!(sample.pids, vec![pid, grandchild], "{sample:?}");
    // Two running programs hold at least a few hundred KiB each.
    assert!(sample.rss_bytes > 256 << 10, "{sample:?}");
    // stdin, stdout and stderr at least, in each.
    assert!(sample.open_files >= 6, "{sample:?}");
    assert_eq!(sample.unreadable, 0, "{sample:?}");

    // Another process's tree is not this one.
    let own = TreeSampler::new(grandchild).sample().expect("sample");
    assert_eq!(own.pids, vec![grandchild]);

    within("stop", supervisor.stop()).await.expect("stop");
    let gone = sample_until(&mut sampler, |s| s.processes() == 0).await;
    assert_eq!(gone.processes(), 0, "{gone:?}");
    assert_eq!(gone.rss_bytes, 0);
}

#[tokio::test]
async fn cpu_time_and_percent_follow_a_busy_child() {
    let (supervisor, line) = started("busy", ["busy", "600"]).await;
    assert_eq!(line, "busy done");
    let mut sampler = TreeSampler::new(supervisor.pid().expect("running"));
    let first = sampler.sample().expect("sample");
    // 600 ms of CPU time, measured in clock ticks (10 ms each, usually).
    assert!(first.cpu_ms >= 600, "{first:?}");
    assert!(first.cpu_percent > 0.0, "{first:?}");
    tokio::time::sleep(ms(300)).await;
    let idle = sampler.sample().expect("sample");
    assert!(idle.cpu_ms >= first.cpu_ms);
    // Sleeping now: well under a core.
    assert!(idle.cpu_percent < 50.0, "{idle:?}");
    within("stop", supervisor.stop()).await.expect("stop");
}

#[tokio::test]
async fn open_files_and_storage_writes_are_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (files, _) = started("files", ["files", "40", arg(dir.path())]).await;
    let sample = TreeSampler::new(files.pid().expect("running"))
        .sample()
        .expect("sample");
    assert!(sample.open_files >= 40 + 3, "{sample:?}");

    let target = dir.path().join("written");
    let bytes = 2 << 20;
    let (writer, line) = started("writer", ["write", arg(&target), &bytes.to_string()]).await;
    assert_eq!(line, "written");
    let sample = TreeSampler::new(writer.pid().expect("running"))
        .sample()
        .expect("sample");
    // Synced to storage: counted as written (the temp dir is on a disk, not tmpfs).
    assert!(sample.write_bytes >= bytes, "{sample:?}");

    within("stop", files.stop()).await.expect("stop");
    within("stop", writer.stop()).await.expect("stop");
}

#[test]
fn a_root_that_never_existed_is_an_empty_tree() {
    let mut sampler = TreeSampler::new(u32::MAX - 1);
    let sample = sampler.sample().expect("sample");
    assert_eq!(sample.processes(), 0);
    assert_eq!(sample.cpu_ms, 0);
}
