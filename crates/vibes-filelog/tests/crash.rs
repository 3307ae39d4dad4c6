//! kill -9: child processes append with durability `always` and report every
//! acknowledged record; the test kills them at random moments, reopens the log, and
//! checks that every acknowledged record is there exactly once and intact, that offsets
//! are dense, and that the log takes appends again.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use tempfile::TempDir;
use vibes_filelog::{FileLog, FileLogOptions};
use vibes_log::backend::{LogBackend, Record};
use vibes_log::{AppendOptions, ConsumerOptions, GroupName, Offset, TopicConfig, TopicName};

const TOPIC: &str = "crash/test";
const CYCLES: usize = 50;

/// An acknowledged record: (partition, offset) -> id.
type Acks = HashMap<(u32, Offset), u128>;

fn spawn_writer(dir: &Path, producer: u64, partitions: u32) -> Child {
    Command::new(env!("CARGO_BIN_EXE_filelog-crash-writer"))
        .args([
            dir.to_str().expect("utf-8 temp dir"),
            TOPIC,
            &producer.to_string(),
            &partitions.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn crash writer")
}

/// Collects a child's acks from its stdout until the pipe closes (the child died).
fn collect_acks(child: &mut Child) -> thread::JoinHandle<Vec<(u32, Offset, u128)>> {
    let stdout = child.stdout.take().expect("piped stdout");
    thread::spawn(move || {
        let mut acks = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut parts = line.split(' ');
            // A line cut by the kill is not an ack the child finished reporting.
            let (Some(p), Some(o), Some(i), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                break;
            };
            let (Ok(p), Ok(o), Ok(i)) = (p.parse(), o.parse(), i.parse()) else {
                break;
            };
            acks.push((p, o, i));
        }
        acks
    })
}

/// A small deterministic generator, so a failing run can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn expected_payload(id: u128) -> Vec<u8> {
    let producer = (id >> 64) as u64;
    let seq = id as u64;
    format!("{producer}:{seq}:").repeat(100 / 8).into_bytes()
}

/// Reopens the log, checks it against every ack so far, and proves it takes appends.
/// Returns the address and id of the record it appended.
async fn verify(dir: &Path, partitions: u32, acks: &Acks, cycle: usize) -> ((u32, Offset), u128) {
    let log = FileLog::open(dir, FileLogOptions::default()).expect("reopen");
    let topic = TopicName::new(TOPIC).unwrap();
    let info = log.topic_info(&topic).await.expect("topic exists");
    assert_eq!(
        info.partitions.len() as u32,
        partitions,
        "cycle {cycle}: partition count"
    );
    let mut stored: BTreeMap<(u32, Offset), (u128, Bytes)> = BTreeMap::new();
    let group = GroupName::new(&format!("verify-{cycle}")).unwrap();
    let mut consumer = log
        .consumer(&topic, &group, ConsumerOptions::default())
        .await
        .unwrap();
    let total: u64 = info.partitions.iter().map(|w| w.high).sum();
    while (stored.len() as u64) < total {
        let records = consumer
            .poll(10_000, Duration::from_secs(2))
            .await
            .expect("read back");
        assert!(
            !records.is_empty(),
            "cycle {cycle}: stopped at {} of {total} records",
            stored.len()
        );
        for record in records {
            let address = (record.address.partition, record.address.offset);
            let previous = stored.insert(address, (record.id, record.payload));
            assert!(
                previous.is_none(),
                "cycle {cycle}: {address:?} delivered twice"
            );
        }
    }
    for (p, marks) in info.partitions.iter().enumerate() {
        let offsets: Vec<Offset> = stored
            .keys()
            .filter(|(sp, _)| *sp == p as u32)
            .map(|(_, o)| *o)
            .collect();
        assert_eq!(
            offsets,
            (0..marks.high).collect::<Vec<_>>(),
            "cycle {cycle}: partition {p} not dense"
        );
    }
    let mut ids = HashMap::new();
    for (address, (id, payload)) in &stored {
        assert_eq!(
            &payload[..],
            expected_payload(*id),
            "cycle {cycle}: record {address:?} damaged"
        );
        if let Some(other) = ids.insert(*id, *address) {
            panic!("cycle {cycle}: id {id:#x} stored twice, at {other:?} and {address:?}");
        }
    }
    for (address, id) in acks {
        match stored.get(address) {
            Some((stored_id, _)) => assert_eq!(
                stored_id, id,
                "cycle {cycle}: wrong record at acked {address:?}"
            ),
            None => panic!("cycle {cycle}: acknowledged record {address:?} ({id:#x}) is lost"),
        }
    }
    // The log takes appends again, at the end of what survived.
    let id = u128::MAX - cycle as u128;
    let high = info.partitions[0].high;
    let ack = log
        .append(
            &topic,
            0,
            vec![Record::new(None, id, expected_payload(id))],
            AppendOptions::default(),
        )
        .await
        .expect("append after recovery");
    assert_eq!(
        ack.base_offset, high,
        "cycle {cycle}: append after recovery"
    );
    ((0, ack.base_offset), id)
}

async fn run_cycles(producers: u64, partitions: u32, seed: u64) {
    let dir = TempDir::new().unwrap();
    {
        let log = FileLog::open(dir.path(), FileLogOptions::default()).unwrap();
        log.ensure_topic(
            &TopicName::new(TOPIC).unwrap(),
            TopicConfig::partitions(partitions),
        )
        .await
        .unwrap();
    }
    let mut rng = Rng(seed);
    let mut acks: Acks = HashMap::new();
    let mut total_acks = 0;
    for cycle in 0..CYCLES {
        let mut children: Vec<Child> = (0..producers)
            .map(|p| spawn_writer(dir.path(), cycle as u64 * producers + p + 1, partitions))
            .collect();
        let readers: Vec<_> = children.iter_mut().map(collect_acks).collect();
        // Kill at a random moment: sometimes during start-up and recovery, mostly while
        // appending.
        thread::sleep(Duration::from_millis(rng.below(80)));
        for child in &mut children {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
        }
        for reader in readers {
            for (p, o, id) in reader.join().unwrap() {
                assert!(
                    acks.insert((p, o), id).is_none(),
                    "cycle {cycle}: ({p}, {o}) acked twice"
                );
                total_acks += 1;
            }
        }
        // The record verify appends is acknowledged too: later cycles check it.
        let (address, id) = verify(dir.path(), partitions, &acks, cycle).await;
        acks.insert(address, id);
    }
    eprintln!(
        "{producers} producer(s): {total_acks} acknowledged records over {CYCLES} kill -9 cycles"
    );
    assert!(
        total_acks > CYCLES,
        "the children hardly appended: {total_acks} acks in {CYCLES} cycles"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_kill_9() {
    run_cycles(1, 1, 0x9E37_79B9_7F4A_7C15).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_of_two_processes_survive_kill_9() {
    run_cycles(2, 3, 0xD1B5_4A32_D192_ED03).await;
}
