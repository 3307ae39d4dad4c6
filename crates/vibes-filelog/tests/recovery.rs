//! Torn tails, garbage after the tail, damage inside the log, lost indexes, rolls and
//! retention: each gives exactly the outcome docs/FORMAT.md documents.
//!
//! Why one file over 900 lines: every scenario damages real segment files with the
//! byte-level helpers at the top (truncate, flip a byte, append garbage, set the synced
//! mark) and checks the outcome with the same readers; they are the recovery chapter
//! of docs/FORMAT.md, in its order, and each file under tests/ is one more test binary
//! to link.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;
use vibes_filelog::{FileLog, FileLogOptions, Retention, format};
use vibes_log::backend::{LogBackend, Record, RecordConsumer, StoredRecord};
use vibes_log::{
    AppendOptions, ConsumerOptions, GroupName, LogError, SeekPosition, TopicConfig, TopicName,
};

const TOPIC: &str = "rec/t";

fn topic() -> TopicName {
    TopicName::new(TOPIC).unwrap()
}

fn partition_dir(root: &Path) -> PathBuf {
    root.join("topics/rec/t/0")
}

fn segment(root: &Path, base: u64) -> PathBuf {
    partition_dir(root).join(format!("{base:020}.log"))
}

fn index(root: &Path, base: u64) -> PathBuf {
    partition_dir(root).join(format!("{base:020}.idx"))
}

fn payload(n: u64) -> Vec<u8> {
    format!("record {n:05} ").repeat(20).into_bytes()
}

fn record(n: u64) -> Record {
    Record::new(None, u128::from(n) + 1000, payload(n))
}

async fn open(root: &Path, options: FileLogOptions) -> Result<FileLog, LogError> {
    let log = FileLog::open(root, options)?;
    log.ensure_topic(&topic(), TopicConfig::default()).await?;
    Ok(log)
}

/// Appends records `range`, one batch each; returns the segment length after each.
async fn append_each(log: &FileLog, root: &Path, range: std::ops::Range<u64>) -> Vec<u64> {
    let mut lengths = Vec::new();
    for n in range {
        let ack = log
            .append(&topic(), 0, vec![record(n)], AppendOptions::default())
            .await
            .unwrap();
        assert_eq!(ack.base_offset, n);
        lengths.push(fs::metadata(segment(root, 0)).map(|m| m.len()).unwrap_or(0));
    }
    lengths
}

async fn read_all(log: &FileLog) -> Result<Vec<StoredRecord>, LogError> {
    let mut consumer = log
        .consumer(
            &topic(),
            &GroupName::new("check").unwrap(),
            ConsumerOptions::default(),
        )
        .await?;
    let mut out = Vec::new();
    loop {
        let batch = consumer.poll(1000, Duration::from_millis(50)).await?;
        if batch.is_empty() {
            return Ok(out);
        }
        out.extend(batch);
    }
}

fn assert_intact(records: &[StoredRecord], count: u64) {
    assert_eq!(records.len() as u64, count);
    for (n, r) in records.iter().enumerate() {
        let n = n as u64;
        assert_eq!(r.address.offset, n);
        assert_eq!(r.id, u128::from(n) + 1000);
        assert_eq!(&r.payload[..], payload(n));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn truncate(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

fn flip_byte(path: &Path, position: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[position as usize] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

/// Checks that the log holds exactly records 0..count, intact, and appends at `count`.
async fn assert_recovered(root: &Path, options: FileLogOptions, count: u64) {
    let log = open(root, options).await.expect("opens after recovery");
    assert_intact(&read_all(&log).await.unwrap(), count);
    let ack = log
        .append(&topic(), 0, vec![record(count)], AppendOptions::default())
        .await
        .unwrap();
    assert_eq!(
        ack.base_offset, count,
        "appends continue right after what survived"
    );
}

/// Sets the synced mark in the header of the segment at `path`: what it holds after
/// a power loss cut the last fsync short.
fn set_synced_mark(path: &Path, mark: u64) {
    use std::os::unix::fs::FileExt;
    let file = OpenOptions::new().write(true).open(path).unwrap();
    let bytes = format::encode_synced_mark(mark).expect("a mark below 2^32");
    file.write_all_at(&bytes, format::SYNCED_MARK as u64)
        .unwrap();
}

fn synced_mark(path: &Path) -> u64 {
    let bytes = fs::read(path).unwrap();
    format::decode_synced_mark(&bytes[format::SYNCED_MARK..])
}

#[tokio::test]
async fn torn_final_batch_after_the_last_fsync_is_cut_by_the_writer_at_every_byte() {
    let original = TempDir::new().unwrap();
    let lengths = {
        let log = open(original.path(), FileLogOptions::default())
            .await
            .unwrap();
        append_each(&log, original.path(), 0..5).await
    };
    let (before_last, after_last) = (lengths[3], lengths[4]);
    assert_eq!(
        synced_mark(&segment(original.path(), 0)),
        after_last,
        "every fsync'd append moves the synced mark"
    );
    for cut in before_last..after_last {
        let copy = TempDir::new().unwrap();
        copy_dir(original.path(), copy.path());
        truncate(&segment(copy.path(), 0), cut);
        // The last fsync never completed: the mark is the one before it.
        set_synced_mark(&segment(copy.path(), 0), before_last);
        {
            let log = open(copy.path(), FileLogOptions::default())
                .await
                .expect("opens");
            assert_eq!(
                log.watermarks(&topic(), 0).await.unwrap().high,
                4,
                "cut at {cut}"
            );
            assert_intact(&read_all(&log).await.unwrap(), 4);
        }
        assert_eq!(
            fs::metadata(segment(copy.path(), 0)).unwrap().len(),
            cut,
            "cut at {cut}: opening and reading (no writer) never truncate"
        );
        assert_recovered(copy.path(), FileLogOptions::default(), 4).await;
        assert_eq!(
            fs::metadata(segment(copy.path(), 0)).unwrap().len(),
            after_last,
            "cut at {cut}: the writer cut the torn bytes and appended one batch"
        );
    }
}

#[tokio::test]
async fn a_synced_last_batch_cut_short_is_damage_not_a_torn_write() {
    let root = TempDir::new().unwrap();
    let lengths = {
        let log = open(root.path(), FileLogOptions::default()).await.unwrap();
        append_each(&log, root.path(), 0..5).await
    };
    // The mark says the last batch was fsync'd: losing its end is damage.
    truncate(&segment(root.path(), 0), lengths[4] - 10);
    let log = open(root.path(), FileLogOptions::default()).await.unwrap();
    let ack = log
        .append(&topic(), 0, vec![record(5)], AppendOptions::default())
        .await
        .unwrap();
    assert_eq!(ack.base_offset, 5, "the damaged batch keeps its offset");
    assert_eq!(
        fs::metadata(segment(root.path(), 0)).unwrap().len(),
        lengths[4] - 10 + (lengths[4] - lengths[3]),
        "the writer kept the damaged bytes and appended after them"
    );
    let report = log.check(&topic(), false).unwrap();
    assert_eq!(report[0].damage.len(), 1);
    assert_eq!(report[0].damage[0].offsets, 4..5);
    assert_eq!(report[0].damage[0].position, lengths[3]);
    assert_eq!(report[0].records, 5);
}

#[tokio::test]
async fn garbage_after_the_last_batch_is_cut() {
    let original = TempDir::new().unwrap();
    let (end, frame) = {
        let log = open(original.path(), FileLogOptions::default())
            .await
            .unwrap();
        let lengths = append_each(&log, original.path(), 0..5).await;
        (lengths[4], lengths[4] - lengths[3])
    };
    let mut noise = Vec::new();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..300 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.push(x as u8);
    }
    // A plausible header whose length reaches past the end, and one whose checksum is wrong.
    let mut past_end = 5_000u32.to_le_bytes().to_vec();
    past_end.extend_from_slice(&[0; 40]);
    let mut bad_crc = 60u32.to_le_bytes().to_vec();
    bad_crc.extend_from_slice(&[7; 60]);
    for garbage in [
        vec![0u8; 4096],
        vec![0xFF; 50],
        noise,
        past_end,
        bad_crc,
        vec![1],
    ] {
        let copy = TempDir::new().unwrap();
        copy_dir(original.path(), copy.path());
        append_bytes(&segment(copy.path(), 0), &garbage);
        drop(
            open(copy.path(), FileLogOptions::default())
                .await
                .expect("opens"),
        );
        assert_eq!(
            fs::metadata(segment(copy.path(), 0)).unwrap().len(),
            end + garbage.len() as u64,
            "opening (a reader) never cuts"
        );
        assert_recovered(copy.path(), FileLogOptions::default(), 5).await;
        assert_eq!(
            fs::metadata(segment(copy.path(), 0)).unwrap().len(),
            end + frame,
            "garbage of {} bytes removed by the writer, then one batch appended",
            garbage.len()
        );
    }
}

/// Options under which opening scans the whole active segment (one index entry).
fn scan_all() -> FileLogOptions {
    FileLogOptions::default().index_interval_bytes(1 << 30)
}

#[tokio::test]
async fn damage_followed_by_valid_batches_is_kept_and_reported_on_read() {
    let root = TempDir::new().unwrap();
    let lengths = {
        let log = open(root.path(), scan_all()).await.unwrap();
        append_each(&log, root.path(), 0..6).await
    };
    // Batch 2 starts where batch 1 ends; damage its payload.
    let batch_2 = lengths[1];
    flip_byte(&segment(root.path(), 0), batch_2 + 60);
    let log = open(root.path(), scan_all())
        .await
        .expect("opening never fails on damage");
    assert_eq!(log.watermarks(&topic(), 0).await.unwrap().high, 6);
    let mut consumer = log
        .consumer(
            &topic(),
            &GroupName::new("c").unwrap(),
            ConsumerOptions::default(),
        )
        .await
        .unwrap();
    let first = consumer
        .poll(1000, Duration::from_millis(50))
        .await
        .unwrap();
    assert_intact(&first, 2);
    let err = consumer
        .poll(1000, Duration::from_millis(50))
        .await
        .unwrap_err();
    match &err {
        LogError::Corrupt {
            file,
            position,
            reason,
        } => {
            assert_eq!(file, &segment(root.path(), 0));
            assert_eq!(*position, batch_2);
            assert!(reason.contains("offsets 2..3"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // The consumer moved past the damage: the next poll goes on, never back.
    let rest = consumer
        .poll(1000, Duration::from_millis(50))
        .await
        .unwrap();
    let offsets: Vec<u64> = rest.iter().map(|r| r.address.offset).collect();
    assert_eq!(offsets, [3, 4, 5]);
    drop(consumer);
    drop(log);
    assert_eq!(
        fs::metadata(segment(root.path(), 0)).unwrap().len(),
        lengths[5],
        "nothing was cut"
    );
}

#[tokio::test]
async fn repair_of_the_first_of_three_batches_quarantines_it_and_keeps_the_others() {
    let root = TempDir::new().unwrap();
    let lengths = {
        let log = open(root.path(), scan_all()).await.unwrap();
        append_each(&log, root.path(), 0..3).await
    };
    flip_byte(&segment(root.path(), 0), 24 + 60);
    let log = open(root.path(), scan_all()).await.unwrap();
    let report = log.check(&topic(), false).unwrap();
    assert_eq!(report[0].records, 2);
    assert_eq!(report[0].damage.len(), 1);
    assert_eq!(report[0].damage[0].offsets, 0..1);
    assert_eq!(report[0].damage[0].position, 24);
    assert_eq!(report[0].damage[0].len, lengths[0] - 24);
    assert!(!report[0].repaired);

    let report = log.check(&topic(), true).unwrap();
    assert!(report[0].repaired);
    let quarantined = &report[0].quarantined;
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].offsets, 0..1);
    assert_eq!(
        quarantined[0].file,
        partition_dir(root.path()).join("partition-0-offsets-0..1.quarantine")
    );
    assert_eq!(
        quarantined[0].bytes,
        lengths[0] - 24,
        "the damaged bytes are kept"
    );
    assert_eq!(log.quarantined(&topic()).unwrap(), *quarantined);
    // The two intact batches keep their offsets, in a segment of their own.
    assert_eq!(segment_bases(root.path()), [0, 1]);
    let mut consumer = log
        .consumer(
            &topic(),
            &GroupName::new("after").unwrap(),
            ConsumerOptions::default(),
        )
        .await
        .unwrap();
    match consumer
        .poll(10, Duration::from_millis(50))
        .await
        .unwrap_err()
    {
        LogError::Corrupt { reason, .. } => {
            assert!(reason.contains("offsets 0..1 quarantined in"), "{reason}")
        }
        other => panic!("expected the gap to be reported, got {other:?}"),
    }
    let rest = consumer.poll(10, Duration::from_millis(50)).await.unwrap();
    assert_eq!(rest.len(), 2);
    for (r, n) in rest.iter().zip(1u64..) {
        assert_eq!((r.address.offset, &r.payload[..]), (n, &payload(n)[..]));
    }
    drop(consumer);
    let ack = log
        .append(&topic(), 0, vec![record(3)], AppendOptions::default())
        .await
        .unwrap();
    assert_eq!(ack.base_offset, 3);
    let clean = log.check(&topic(), false).unwrap();
    assert_eq!((clean[0].damage.len(), clean[0].records), (0, 3));
    assert_eq!(clean[0].quarantined.len(), 1);
}

/// Small segments: each holds a handful of records.
fn small_segments() -> FileLogOptions {
    FileLogOptions::default()
        .segment_bytes(4096)
        .index_interval_bytes(512)
}

fn segment_bases(root: &Path) -> Vec<u64> {
    let mut bases: Vec<u64> = fs::read_dir(partition_dir(root))
        .unwrap()
        .filter_map(|e| {
            e.unwrap()
                .file_name()
                .to_str()?
                .strip_suffix(".log")?
                .parse()
                .ok()
        })
        .collect();
    bases.sort_unstable();
    bases
}

#[tokio::test]
async fn segments_roll_by_size_and_reads_cross_them() {
    let root = TempDir::new().unwrap();
    let log = open(root.path(), small_segments()).await.unwrap();
    append_each(&log, root.path(), 0..100).await;
    let bases = segment_bases(root.path());
    assert!(bases.len() >= 5, "expected several segments, got {bases:?}");
    for pair in bases.windows(2) {
        let len = fs::metadata(segment(root.path(), pair[0])).unwrap().len();
        assert!(len <= 4096, "segment {} is {len} bytes", pair[0]);
    }
    assert_intact(&read_all(&log).await.unwrap(), 100);
    drop(log);
    // And after reopening, with only the last segment's tail read.
    let log = open(root.path(), small_segments()).await.unwrap();
    assert_intact(&read_all(&log).await.unwrap(), 100);
    let mut consumer = log
        .consumer(
            &topic(),
            &GroupName::new("seek").unwrap(),
            ConsumerOptions::default(),
        )
        .await
        .unwrap();
    consumer
        .seek(SeekPosition::Offset(bases[2] + 1))
        .await
        .unwrap();
    let got = consumer.poll(1, Duration::from_secs(1)).await.unwrap();
    assert_eq!(got[0].address.offset, bases[2] + 1);
}

#[tokio::test]
async fn bit_flip_in_a_sealed_segment_is_reported_with_file_and_position_on_read() {
    let root = TempDir::new().unwrap();
    let lengths = {
        let log = open(root.path(), small_segments()).await.unwrap();
        append_each(&log, root.path(), 0..40).await
    };
    let bases = segment_bases(root.path());
    assert!(bases.len() >= 3);
    // Record 2 lies in the first, sealed segment.
    let damaged_at = lengths[1];
    flip_byte(&segment(root.path(), 0), damaged_at + 100);
    let log = open(root.path(), small_segments())
        .await
        .expect("opening reads only the last segment's tail");
    assert_eq!(log.watermarks(&topic(), 0).await.unwrap().high, 40);
    let err = read_all(&log).await.unwrap_err();
    match err {
        LogError::Corrupt { file, position, .. } => {
            assert_eq!(file, segment(root.path(), 0));
            assert_eq!(position, damaged_at);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Later segments still read.
    let mut consumer = log
        .consumer(
            &topic(),
            &GroupName::new("later").unwrap(),
            ConsumerOptions::default(),
        )
        .await
        .unwrap();
    consumer.seek(SeekPosition::Offset(bases[1])).await.unwrap();
    let got = consumer
        .poll(1000, Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(got.len() as u64, 40 - bases[1]);
}

#[tokio::test]
async fn missing_and_short_indexes_are_rebuilt() {
    let root = TempDir::new().unwrap();
    {
        let log = open(root.path(), small_segments()).await.unwrap();
        append_each(&log, root.path(), 0..60).await;
    }
    let bases = segment_bases(root.path());
    let (sealed, active) = (bases[1], *bases.last().unwrap());
    let originals: Vec<Vec<u8>> = [sealed, active]
        .iter()
        .map(|&b| fs::read(index(root.path(), b)).unwrap())
        .collect();
    assert!(
        originals.iter().all(|o| o.len() > 24 + 16),
        "indexes have entries"
    );
    fs::remove_file(index(root.path(), sealed)).unwrap();
    let short = originals[1].len() as u64 - 16;
    truncate(&index(root.path(), active), short);
    let log = open(root.path(), small_segments()).await.unwrap();
    assert_eq!(
        fs::read(index(root.path(), active)).unwrap(),
        originals[1],
        "short active index rebuilt on open"
    );
    assert_intact(&read_all(&log).await.unwrap(), 60);
    assert_eq!(
        fs::read(index(root.path(), sealed)).unwrap(),
        originals[0],
        "missing sealed index rebuilt on read"
    );
}

#[tokio::test]
async fn a_segment_with_a_foreign_header_is_corrupt() {
    let root = TempDir::new().unwrap();
    {
        let log = open(root.path(), FileLogOptions::default()).await.unwrap();
        append_each(&log, root.path(), 0..2).await;
    }
    let mut bytes = fs::read(segment(root.path(), 0)).unwrap();
    bytes[..8].copy_from_slice(b"NOTVIBES");
    fs::write(segment(root.path(), 0), bytes).unwrap();
    match open(root.path(), FileLogOptions::default())
        .await
        .unwrap_err()
    {
        LogError::Corrupt {
            file,
            position,
            reason,
        } => {
            assert_eq!(file, segment(root.path(), 0));
            assert_eq!(position, 0);
            assert!(reason.contains("magic"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn retention_by_size_deletes_only_whole_sealed_segments() {
    let root = TempDir::new().unwrap();
    let options = small_segments().retention(Retention::keep_all().max_bytes(3 * 4096));
    let log = open(root.path(), options).await.unwrap();
    append_each(&log, root.path(), 0..150).await;
    let bases = segment_bases(root.path());
    let marks = log.watermarks(&topic(), 0).await.unwrap();
    assert_eq!(marks.high, 150);
    assert_eq!(
        marks.low, bases[0],
        "the low watermark is the oldest segment kept"
    );
    assert!(marks.low > 0, "old segments were deleted");
    let total: u64 = log.bytes_on_disk(&topic()).unwrap().iter().sum();
    assert!(total <= 4 * 4096, "{total} bytes kept");
    // Every kept record is intact and dense from the low watermark.
    let records = read_all(&log).await.unwrap();
    assert_eq!(records.first().unwrap().address.offset, marks.low);
    assert_eq!(records.len() as u64, 150 - marks.low);
    let mut consumer = log
        .consumer(
            &topic(),
            &GroupName::new("old").unwrap(),
            ConsumerOptions::default(),
        )
        .await
        .unwrap();
    let err = consumer.seek(SeekPosition::Offset(0)).await.unwrap_err();
    let expected = matches!(err, LogError::OffsetOutOfRange { .. });
    assert!(expected, "got {err:?}");
}

#[tokio::test]
async fn retention_by_age_keeps_the_active_segment() {
    let root = TempDir::new().unwrap();
    let log = open(
        root.path(),
        small_segments().retention(Retention::keep_all().max_age(Duration::from_millis(1))),
    )
    .await
    .unwrap();
    append_each(&log, root.path(), 0..50).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    log.enforce_retention(&topic()).unwrap();
    let bases = segment_bases(root.path());
    assert_eq!(bases.len(), 1, "only the active segment is left: {bases:?}");
    let marks = log.watermarks(&topic(), 0).await.unwrap();
    assert_eq!((marks.low, marks.high), (bases[0], 50));
    let records = read_all(&log).await.unwrap();
    assert_eq!(records.len() as u64, 50 - bases[0]);
}

#[tokio::test]
async fn durability_modes_all_store_and_reopen() {
    use vibes_log::Durability;
    let root = TempDir::new().unwrap();
    {
        let log = open(
            root.path(),
            FileLogOptions::default().durability(Durability::Never),
        )
        .await
        .unwrap();
        let modes = [
            Durability::Always,
            Durability::Interval(Duration::from_millis(10)),
            Durability::Never,
        ];
        for (n, mode) in modes.into_iter().enumerate() {
            let ack = log
                .append(
                    &topic(),
                    0,
                    vec![record(n as u64)],
                    AppendOptions::durability(mode),
                )
                .await
                .unwrap();
            assert_eq!(ack.base_offset, n as u64);
        }
    }
    let log = open(root.path(), FileLogOptions::default()).await.unwrap();
    assert_intact(&read_all(&log).await.unwrap(), 3);
}

#[tokio::test]
async fn reopening_a_large_log_reads_only_the_tail() {
    // 20k records in one segment: opening must not scan them. Proven by damaging the
    // head of the segment: an open that read it would fail or cut it.
    let root = TempDir::new().unwrap();
    {
        let log = open(
            root.path(),
            FileLogOptions::default().durability(vibes_log::Durability::Never),
        )
        .await
        .unwrap();
        let records: Vec<Record> = (0..20_000).map(record).collect();
        for chunk in records.chunks(1000) {
            log.append(&topic(), 0, chunk.to_vec(), AppendOptions::default())
                .await
                .unwrap();
        }
    }
    flip_byte(&segment(root.path(), 0), 200);
    let log = open(root.path(), FileLogOptions::default())
        .await
        .expect("open reads only the tail");
    assert_eq!(log.watermarks(&topic(), 0).await.unwrap().high, 20_000);
    let expected = matches!(read_all(&log).await, Err(LogError::Corrupt { .. }));
    assert!(expected, "reading the head finds the damage");
}

#[tokio::test]
async fn consumer_sees_records_another_process_appends() {
    let root = TempDir::new().unwrap();
    let log = FileLog::open(root.path(), FileLogOptions::default()).unwrap();
    let name = TopicName::new("crash/test").unwrap();
    log.ensure_topic(&name, TopicConfig::default())
        .await
        .unwrap();
    let mut consumer: Box<dyn RecordConsumer> = log
        .consumer(
            &name,
            &GroupName::new("live").unwrap(),
            ConsumerOptions::default(),
        )
        .await
        .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_filelog-crash-writer"))
        .args([root.path().to_str().unwrap(), "crash/test", "7", "1"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let got = consumer.poll(100, Duration::from_secs(10)).await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !got.is_empty(),
        "records appended by another process reach a waiting consumer"
    );
    assert_eq!(got[0].address.offset, 0);
    assert_eq!(got[0].id, 7u128 << 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_stays_whole_while_a_live_consumer_reads_along() {
    // With a consumer reading along in the writing process, the index file still gets
    // every entry, with no holes, and a reopen has nothing to rebuild.
    let root = TempDir::new().unwrap();
    let options = FileLogOptions::default().index_interval_bytes(1);
    let log = open(root.path(), options.clone()).await.unwrap();
    let reader = {
        let log = log.clone();
        tokio::spawn(async move {
            let mut consumer = log
                .consumer(
                    &topic(),
                    &GroupName::new("live").unwrap(),
                    ConsumerOptions::default(),
                )
                .await
                .unwrap();
            let mut seen = 0;
            while seen < 300 {
                seen += consumer
                    .poll(1000, Duration::from_secs(5))
                    .await
                    .unwrap()
                    .len();
            }
        })
    };
    for n in 0..300 {
        log.append(
            &topic(),
            0,
            vec![record(n)],
            AppendOptions::durability(vibes_log::Durability::Never),
        )
        .await
        .unwrap();
    }
    reader.await.unwrap();
    let bytes = fs::read(index(root.path(), 0)).unwrap();
    let (entries, complete) = vibes_filelog::format::decode_index_entries(&bytes[24..], 24);
    assert!(complete, "the index file has no holes or damage");
    assert_eq!(
        entries.len(),
        300,
        "one entry per batch at a 1-byte interval"
    );
    drop(log);
    // A reopen finds nothing to rebuild.
    drop(open(root.path(), options).await.unwrap());
    assert_eq!(fs::read(index(root.path(), 0)).unwrap(), bytes);
}

#[tokio::test]
async fn check_finds_damage_in_a_sealed_segment_and_repair_quarantines_it() {
    let root = TempDir::new().unwrap();
    let lengths = {
        let log = open(root.path(), small_segments()).await.unwrap();
        append_each(&log, root.path(), 0..40).await
    };
    let segments_before = segment_bases(root.path());
    assert!(segments_before.len() >= 3);
    flip_byte(&segment(root.path(), 0), lengths[4] + 100);
    let log = open(root.path(), small_segments()).await.unwrap();

    let report = log.check(&topic(), false).unwrap();
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].damage.len(), 1);
    let damage = &report[0].damage[0];
    assert_eq!(damage.file, segment(root.path(), 0));
    assert_eq!(damage.position, lengths[4]);
    assert_eq!(damage.offsets, 5..6);
    assert_eq!(report[0].records, 39, "every other record is intact");
    assert!(!report[0].repaired);
    assert_eq!(
        segment_bases(root.path()),
        segments_before,
        "a check alone changes nothing"
    );

    let report = log.check(&topic(), true).unwrap();
    assert!(report[0].repaired);
    assert_eq!(report[0].quarantined[0].offsets, 5..6);
    let mut bases = segments_before.clone();
    bases.insert(1, 6);
    assert_eq!(
        segment_bases(root.path()),
        bases,
        "the batches after the damage moved to segment 6"
    );
    assert_eq!(log.watermarks(&topic(), 0).await.unwrap().high, 40);
    let mut all = Vec::new();
    for from in [0, 6] {
        all.extend(log.read(&topic(), 0, from, 1000).await.unwrap());
    }
    let offsets: Vec<u64> = all.iter().map(|r| r.address.offset).collect();
    let expected: Vec<u64> = (0..40).filter(|&n| n != 5).collect();
    assert_eq!(offsets, expected);
    for r in &all {
        assert_eq!(&r.payload[..], payload(r.address.offset));
    }
    let ack = log
        .append(&topic(), 0, vec![record(40)], AppendOptions::default())
        .await
        .unwrap();
    assert_eq!(ack.base_offset, 40);
    let clean = log.check(&topic(), false).unwrap();
    assert_eq!((clean[0].damage.len(), clean[0].records), (0, 40));
}

#[tokio::test]
async fn a_gap_between_segments_is_corrupt_not_a_panic() {
    let root = TempDir::new().unwrap();
    let lengths = {
        let log = open(root.path(), small_segments()).await.unwrap();
        append_each(&log, root.path(), 0..40).await
    };
    let bases = segment_bases(root.path());
    // A sealed segment that lost its tail (power loss under `never`): records 3.. of
    // it are gone, and the next segment starts later than it ends.
    truncate(&segment(root.path(), 0), lengths[2]);
    let log = open(root.path(), small_segments()).await.unwrap();
    match read_all(&log).await.unwrap_err() {
        LogError::Corrupt {
            file,
            position,
            reason,
        } => {
            assert_eq!(file, segment(root.path(), bases[1]));
            assert_eq!(position, 0);
            assert!(reason.contains("ends at offset 3"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let report = log.check(&topic(), false).unwrap();
    let damage = report[0].damage[0].clone();
    assert_eq!(
        (damage.file, damage.offsets),
        (segment(root.path(), bases[1]), 3..bases[1])
    );
}

#[tokio::test]
async fn a_writer_whose_segments_retention_deleted_elsewhere_catches_up() {
    let root = TempDir::new().unwrap();
    let behind = open(root.path(), small_segments()).await.unwrap();
    append_each(&behind, root.path(), 0..3).await;
    // Another handle (another process, as far as the files go) appends through several
    // rolls while retention deletes every sealed segment, the ones `behind` knows too.
    let ahead = open(
        root.path(),
        small_segments().retention(Retention::keep_all().max_bytes(1)),
    )
    .await
    .unwrap();
    for n in 3..60 {
        ahead
            .append(&topic(), 0, vec![record(n)], AppendOptions::default())
            .await
            .unwrap();
    }
    assert!(
        !segment(root.path(), 0).exists(),
        "the segment `behind` writes to is gone"
    );
    let ack = behind
        .append(&topic(), 0, vec![record(60)], AppendOptions::default())
        .await
        .unwrap();
    assert_eq!(
        ack.base_offset, 60,
        "the stale writer continues after the newest record"
    );
    let marks = behind.watermarks(&topic(), 0).await.unwrap();
    assert_eq!(marks.high, 61);
    assert_eq!(marks.low, segment_bases(root.path())[0]);
    let records = read_all(&behind).await.unwrap();
    assert_eq!(records.len() as u64, 61 - marks.low);
    assert_eq!(records.last().unwrap().id, 1060);
}

#[tokio::test]
async fn a_roll_cut_short_before_its_header_is_completed_by_the_next_writer() {
    let root = TempDir::new().unwrap();
    let log = open(root.path(), FileLogOptions::default()).await.unwrap();
    append_each(&log, root.path(), 0..5).await;
    // Another process crashed right after creating the next segment's file.
    fs::File::create(segment(root.path(), 5)).unwrap();
    let ack = log
        .append(&topic(), 0, vec![record(5)], AppendOptions::default())
        .await
        .unwrap();
    assert_eq!(ack.base_offset, 5);
    assert_eq!(
        segment_bases(root.path()),
        [0, 5],
        "the record went into the new segment"
    );
    drop(log);
    assert_recovered(root.path(), FileLogOptions::default(), 6).await;
}

#[tokio::test]
async fn append_times_do_not_go_back_across_a_reopen_after_a_roll() {
    use vibes_filelog::format::{self, INDEX_MAGIC, SEGMENT_MAGIC};
    let root = TempDir::new().unwrap();
    {
        let log = open(root.path(), FileLogOptions::default()).await.unwrap();
        append_each(&log, root.path(), 0..1).await;
    }
    // A batch appended while the clock was an hour ahead, then a roll to an empty
    // segment: the newest append time lives only in the sealed segment.
    let future = jiff::Timestamp::now().as_microsecond() + 3_600_000_000;
    let mut frame = Vec::new();
    let payload = payload(1);
    format::encode_batch(
        &mut frame,
        1,
        future,
        [(1001u128, None, &payload[..])].into_iter(),
    );
    append_bytes(&segment(root.path(), 0), &frame);
    fs::write(
        segment(root.path(), 2),
        format::encode_header(SEGMENT_MAGIC, 2),
    )
    .unwrap();
    fs::write(index(root.path(), 2), format::encode_header(INDEX_MAGIC, 2)).unwrap();
    let log = open(root.path(), FileLogOptions::default()).await.unwrap();
    let ack = log
        .append(&topic(), 0, vec![record(2)], AppendOptions::default())
        .await
        .unwrap();
    assert_eq!(ack.base_offset, 2);
    assert!(
        ack.timestamp.as_microsecond() >= future,
        "append time went back: {}",
        ack.timestamp
    );
}

#[test]
fn option_fields_set_directly_are_held_to_the_builder_limits() {
    let root = TempDir::new().unwrap();
    let mut options = FileLogOptions::default();
    options.segment_bytes = 10;
    options.index_interval_bytes = 0;
    let log = FileLog::open(root.path(), options.clone()).unwrap();
    assert_eq!(log.options().segment_bytes, 4096);
    assert_eq!(log.options().index_interval_bytes, 1);
    options.segment_bytes = u64::MAX;
    let log = FileLog::open(root.path(), options).unwrap();
    assert_eq!(
        log.options().segment_bytes,
        1 << 31,
        "positions must fit the index's 32 bits"
    );
}

#[tokio::test]
async fn a_bit_flip_in_the_last_synced_batch_is_reported_not_cut_in_every_durability_mode() {
    use vibes_log::Durability;
    for durability in [
        Durability::Always,
        Durability::Interval(Duration::from_millis(5)),
        Durability::Never,
    ] {
        let root = TempDir::new().unwrap();
        let options = FileLogOptions::default().durability(durability);
        let lengths = {
            let log = open(root.path(), options.clone()).await.unwrap();
            append_each(&log, root.path(), 0..3).await
            // Dropping the log ends its writer, whose last act is an fsync.
        };
        let file = segment(root.path(), 0);
        // The writer thread fsyncs and marks as it ends, just after the drop.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while synced_mark(&file) != lengths[2] && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            synced_mark(&file),
            lengths[2],
            "{durability:?}: the mark covers the last batch"
        );
        flip_byte(&file, lengths[1] + 70);

        let log = open(root.path(), options.clone()).await.unwrap();
        let mut consumer = log
            .consumer(
                &topic(),
                &GroupName::new("c").unwrap(),
                ConsumerOptions::default(),
            )
            .await
            .unwrap();
        assert_intact(
            &consumer
                .poll(1000, Duration::from_millis(50))
                .await
                .unwrap(),
            2,
        );
        match consumer
            .poll(1000, Duration::from_millis(50))
            .await
            .unwrap_err()
        {
            LogError::Corrupt {
                file: f,
                position,
                reason,
            } => {
                assert_eq!((f, position), (file.clone(), lengths[1]), "{durability:?}");
                assert!(reason.contains("offsets 2..3"), "{durability:?}: {reason}");
            }
            other => panic!("{durability:?}: expected Corrupt, got {other:?}"),
        }
        assert!(
            consumer
                .poll(1000, Duration::from_millis(20))
                .await
                .unwrap()
                .is_empty()
        );
        // A writer keeps the damaged batch and its offset.
        let ack = log
            .append(&topic(), 0, vec![record(3)], AppendOptions::default())
            .await
            .unwrap();
        assert_eq!(ack.base_offset, 3, "{durability:?}");
        assert_eq!(
            fs::metadata(&file).unwrap().len(),
            lengths[2] + (lengths[2] - lengths[1]),
            "{durability:?}: nothing cut"
        );
        let got = consumer
            .poll(1000, Duration::from_millis(50))
            .await
            .unwrap();
        assert_eq!(
            got.iter().map(|r| r.address.offset).collect::<Vec<_>>(),
            [3]
        );
        let report = log.check(&topic(), false).unwrap();
        assert_eq!(report[0].damage[0].offsets, 2..3, "{durability:?}");
    }
}

#[tokio::test]
async fn a_damaged_index_is_rebuilt_and_costs_no_record() {
    let root = TempDir::new().unwrap();
    {
        let log = open(root.path(), small_segments()).await.unwrap();
        append_each(&log, root.path(), 0..40).await;
    }
    let idx = index(root.path(), 0);
    let original = fs::read(&idx).unwrap();
    assert!(
        original.len() >= 24 + 2 * 16,
        "the sealed segment has several entries"
    );
    // Entry 1's position moves by one byte: still in order, but pointing at no batch.
    let mut damaged = original.clone();
    damaged[24 + 16 + 4] ^= 0x01;
    fs::write(&idx, &damaged).unwrap();
    let log = open(root.path(), small_segments()).await.unwrap();
    assert_intact(&read_all(&log).await.unwrap(), 40);
    // Reading at an offset served by that entry works too.
    let relative = u32::from_le_bytes(original[40..44].try_into().unwrap()) as u64;
    let got = log.read(&topic(), 0, relative, 1).await.unwrap();
    assert_eq!(got[0].address.offset, relative);
    assert_eq!(
        fs::read(&idx).unwrap(),
        original,
        "the index was rebuilt and rewritten"
    );
    let report = log.check(&topic(), false).unwrap();
    assert!(report[0].damage.is_empty());
}

#[tokio::test]
async fn a_damaged_commit_restarts_the_group_from_the_lowest_offset_and_repair_rewrites_it() {
    let root = TempDir::new().unwrap();
    let log = open(root.path(), FileLogOptions::default()).await.unwrap();
    append_each(&log, root.path(), 0..5).await;
    let group = GroupName::new("g").unwrap();
    {
        let mut consumer = log
            .consumer(&topic(), &group, ConsumerOptions::default())
            .await
            .unwrap();
        let got = consumer.poll(3, Duration::from_millis(50)).await.unwrap();
        assert_eq!(got.len(), 3);
        consumer.commit().await.unwrap();
    }
    let commit = root.path().join("topics/rec/t/groups/g/0.offset");
    flip_byte(&commit, 9);
    drop(log);
    let log = open(root.path(), FileLogOptions::default()).await.unwrap();
    let damaged = log.check_commits(&topic(), false).unwrap();
    assert_eq!(damaged.len(), 1);
    assert_eq!(damaged[0].file, commit);
    assert!(
        damaged[0].reason.contains("checksum mismatch"),
        "{}",
        damaged[0].reason
    );
    assert!(!damaged[0].repaired);
    {
        // No record is skipped: the group reads again from the lowest offset.
        let mut consumer = log
            .consumer(&topic(), &group, ConsumerOptions::default())
            .await
            .unwrap();
        assert_intact(
            &consumer
                .poll(1000, Duration::from_millis(50))
                .await
                .unwrap(),
            5,
        );
    }
    let repaired = log.check_commits(&topic(), true).unwrap();
    assert!(repaired[0].repaired);
    let mut kept = commit.clone().into_os_string();
    kept.push(".damaged");
    assert_eq!(
        fs::read(&kept).unwrap().len(),
        20,
        "the damaged commit is kept"
    );
    assert!(log.check_commits(&topic(), false).unwrap().is_empty());
    let groups = log.groups(&topic()).await.unwrap();
    assert_eq!(groups[0].committed, [Some(0)]);
}
