//! Consumer groups across processes: a member in a child process and one in this
//! process share a topic's partitions, each partition read by one of them at a time;
//! when the child is killed with SIGKILL between reading a batch and committing it,
//! this member takes its partitions within a bounded time, resumes each exactly at the
//! group's commit, and every record is delivered at least once.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use vibes_filelog::{FileLog, FileLogOptions};
use vibes_log::backend::{LogBackend, Record, RecordConsumer};
use vibes_log::{
    AppendOptions, ConsumerOptions, GroupName, Offset, StartFrom, TopicConfig, TopicName,
};

const TOPIC: &str = "groups/cross";
const GROUP: &str = "shared";
const PARTITIONS: u32 = 4;
const PER_PARTITION: u64 = 150;
/// How long a partition of a killed member may take to reach the other.
const HANDOFF_BOUND: Duration = Duration::from_secs(2);

/// What the child printed.
#[derive(Debug)]
enum Line {
    Owns(Vec<u32>),
    Read(u32, Offset, u128),
}

fn parse(line: &str) -> Option<Line> {
    let mut parts = line.split(' ');
    match parts.next()? {
        "owns" => Some(Line::Owns(
            parts.map(|p| p.parse().ok()).collect::<Option<_>>()?,
        )),
        "read" => Some(Line::Read(
            parts.next()?.parse().ok()?,
            parts.next()?.parse().ok()?,
            parts.next()?.parse().ok()?,
        )),
        _ => None,
    }
}

fn spawn_member(dir: &std::path::Path, pause_ms: u64) -> (Child, mpsc::Receiver<Line>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_filelog-group-member"))
        .args([
            dir.to_str().expect("utf-8 temp dir"),
            TOPIC,
            GROUP,
            &pause_ms.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the group member");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            // A line cut by the kill is not one the child finished.
            let Some(line) = line.ok().as_deref().and_then(parse) else {
                break;
            };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Everything the child has printed so far.
#[derive(Debug, Default)]
struct Printed {
    owns: Vec<u32>,
    reads: Vec<(u32, Offset, u128)>,
}

impl Printed {
    fn take(&mut self, rx: &mpsc::Receiver<Line>) {
        while let Ok(line) = rx.try_recv() {
            match line {
                Line::Owns(owns) => self.owns = owns,
                Line::Read(p, o, id) => self.reads.push((p, o, id)),
            }
        }
    }
}

async fn poll_into(
    consumer: &mut Box<dyn RecordConsumer>,
    reads: &mut Vec<(u32, Offset, u128)>,
) -> usize {
    let records = consumer
        .poll(16, Duration::from_millis(20))
        .await
        .expect("poll");
    for r in &records {
        reads.push((r.address.partition, r.address.offset, r.id));
    }
    if !records.is_empty() {
        consumer.commit().await.expect("commit");
    }
    records.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_in_two_processes_share_partitions_and_a_killed_ones_move_at_its_commit() {
    let dir = TempDir::new().expect("temp dir");
    let log = FileLog::open(dir.path(), FileLogOptions::default()).expect("open");
    let topic = TopicName::new(TOPIC).unwrap();
    let group = GroupName::new(GROUP).unwrap();
    log.ensure_topic(&topic, TopicConfig::partitions(PARTITIONS))
        .await
        .unwrap();
    let mut all = BTreeSet::new();
    for p in 0..PARTITIONS {
        let records: Vec<Record> = (0..PER_PARTITION)
            .map(|i| {
                let id = u128::from(p) * 1_000_000 + u128::from(i);
                all.insert(id);
                Record::new(None, id, format!("record {id}"))
            })
            .collect();
        log.append(&topic, p, records, AppendOptions::default())
            .await
            .unwrap();
    }

    // The child joins alone and takes every partition; it reads a batch of 8, then
    // waits 40 ms before committing it.
    let (mut child, rx) = spawn_member(dir.path(), 40);
    let mut seen = Printed::default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.owns.len() != PARTITIONS as usize {
        assert!(
            Instant::now() < deadline,
            "the child never owned every partition: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
        seen.take(&rx);
    }

    // This process joins: the partitions are split between the two processes.
    let mut member = log
        .consumer(&topic, &group, ConsumerOptions::start(StartFrom::Beginning))
        .await
        .unwrap();
    let mut reads = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        poll_into(&mut member, &mut reads).await;
        seen.take(&rx);
        let mine: BTreeSet<u32> = member.assignment().into_iter().collect();
        let theirs: BTreeSet<u32> = seen.owns.iter().copied().collect();
        if mine.len() == 2 && theirs.len() == 2 {
            assert!(mine.is_disjoint(&theirs), "{mine:?} and {theirs:?} overlap");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no split: this process owns {mine:?}, the child {theirs:?}"
        );
    }
    let theirs: Vec<u32> = seen.owns.clone();

    // Kill the child right after it printed a batch it has not committed yet.
    let before = seen.reads.len();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        seen.take(&rx);
        if seen.reads.len() > before + 8 {
            break;
        }
        assert!(Instant::now() < deadline, "the child stopped reading");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().expect("SIGKILL the child");
    let killed = Instant::now();
    child.wait().expect("reap the child");
    std::thread::sleep(Duration::from_millis(50));
    seen.take(&rx);

    // The group's commits for the child's partitions, as the child left them.
    let commits: BTreeMap<u32, Offset> = log
        .groups(&topic)
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.group == group)
        .map(|g| {
            theirs
                .iter()
                .map(|&p| (p, g.committed[p as usize].unwrap_or(0)))
                .collect()
        })
        .expect("the group has commits");
    let read_past_commit = seen
        .reads
        .iter()
        .any(|&(p, o, _)| commits.get(&p).is_some_and(|&c| o >= c));
    assert!(
        read_past_commit,
        "the kill landed between a read and its commit"
    );

    // This member takes the child's partitions within the bound.
    let after_kill = reads.len();
    while member.assignment().len() != PARTITIONS as usize {
        assert!(
            killed.elapsed() < HANDOFF_BOUND,
            "the killed member's partitions did not move: {:?}",
            member.assignment()
        );
        poll_into(&mut member, &mut reads).await;
    }
    let handoff = killed.elapsed();
    eprintln!("handoff after SIGKILL: {handoff:?}");

    // Then it reads to the end.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut idle = 0;
    while idle < 5 {
        assert!(
            Instant::now() < deadline,
            "reading to the end took too long"
        );
        if poll_into(&mut member, &mut reads).await == 0 {
            idle += 1;
        }
    }

    // Each taken partition resumed exactly at the group's commit.
    for (&p, &commit) in &commits {
        let first = reads[after_kill..]
            .iter()
            .find(|&&(q, _, _)| q == p)
            .map(|&(_, o, _)| o);
        assert_eq!(
            first,
            Some(commit),
            "partition {p} resumed elsewhere than the commit {commit}"
        );
    }
    // At least once: every record was delivered to one member or the other.
    let delivered: BTreeSet<u128> = seen
        .reads
        .iter()
        .chain(reads.iter())
        .map(|&(_, _, id)| id)
        .collect();
    assert_eq!(delivered, all, "every record delivered");
    // And this member's own commits stand at each partition's end.
    for p in 0..PARTITIONS {
        assert_eq!(member.committed(p).await.unwrap(), Some(PER_PARTITION));
    }
}

/// Two opens of one log act as two processes: they split the partitions, a member
/// that leaves gives its partitions up at once (the other takes them at its next look),
/// and the last to leave a group that never committed leaves no file behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_leaves_gives_its_partitions_up_and_leaves_nothing_behind() {
    let dir = TempDir::new().expect("temp dir");
    let first = FileLog::open(dir.path(), FileLogOptions::default()).expect("open");
    let second = FileLog::open(dir.path(), FileLogOptions::default()).expect("open again");
    let topic = TopicName::new(TOPIC).unwrap();
    let group = GroupName::new("passing").unwrap();
    first
        .ensure_topic(&topic, TopicConfig::partitions(PARTITIONS))
        .await
        .unwrap();
    let options = ConsumerOptions::start(StartFrom::Beginning);
    let mut a = first.consumer(&topic, &group, options).await.unwrap();
    assert_eq!(
        a.assignment(),
        [0, 1, 2, 3],
        "alone, it owns every partition"
    );
    let mut b = second.consumer(&topic, &group, options).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        a.poll(1, Duration::from_millis(10)).await.unwrap();
        b.poll(1, Duration::from_millis(10)).await.unwrap();
        let (owned_a, owned_b) = (a.assignment(), b.assignment());
        if owned_a.len() == 2 && owned_b.len() == 2 {
            let all: BTreeSet<u32> = owned_a.iter().chain(&owned_b).copied().collect();
            assert_eq!(all.len(), 4, "{owned_a:?} and {owned_b:?} overlap");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no split: {owned_a:?} {owned_b:?}"
        );
    }

    let groups = dir.path().join("topics").join(TOPIC).join("groups");
    let members = groups.join("passing").join("members");
    assert_eq!(
        std::fs::read_dir(&members).unwrap().count(),
        2,
        "one file each"
    );

    drop(a);
    let left = Instant::now();
    while b.assignment().len() != PARTITIONS as usize {
        assert!(left.elapsed() < HANDOFF_BOUND, "{:?}", b.assignment());
        b.poll(1, Duration::from_millis(10)).await.unwrap();
    }
    drop(b);
    let left_behind: Vec<_> = std::fs::read_dir(&groups)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left_behind.is_empty(), "{left_behind:?}");
}
