//! The baseline: an event log in SQLite (bundled), as a Rust user would build one with
//! rusqlite. WAL with `synchronous=FULL` (a commit is on disk when it returns, as with
//! the file log's `Always`), one transaction per batch, the offset is the rowid.

use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;
use rusqlite::{Connection, TransactionBehavior, params};
use vibes_events::Event;
use vibes_log::backend::Record;

use super::store::{RawReader, Store, TypedReader, VisitRaw, VisitTyped};
use crate::Result;

const SCHEMA: &str = r#"CREATE TABLE IF NOT EXISTS log (
    "offset" INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    key BLOB,
    id BLOB NOT NULL,
    payload BLOB NOT NULL
)"#;

const INSERT: &str = "INSERT INTO log (ts, key, id, payload) VALUES (?1, ?2, ?3, ?4)";

const SELECT: &str = r#"SELECT "offset", ts, key, id, payload FROM log
    WHERE "offset" > ?1 ORDER BY "offset" LIMIT ?2"#;

/// Rows per transaction when loading fast.
const LOAD_TRANSACTION: usize = 100_000;

/// SQLite cannot wake a reader when another connection commits, so a waiting reader
/// queries again after this pause.
const POLL_PAUSE: Duration = Duration::from_micros(100);

/// The writer connection is shared behind a mutex by every producer: SQLite admits one
/// writer at a time anyway, and with a connection per producer the writers would
/// contend on the WAL write lock and retry in `busy_timeout`'s sleeps instead of
/// queueing. Readers get their own connections (WAL lets them read while it writes).
pub(crate) struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
}

impl SqliteStore {
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        let path = dir.join("log.sqlite");
        let conn = Connection::open(&path)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(format!("SQLite refused WAL mode: journal_mode is {mode}").into());
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute(SCHEMA, [])?;
        Ok(SqliteStore {
            path,
            writer: Mutex::new(conn),
        })
    }

    fn reader(&self) -> Result<Box<SqliteReader>> {
        Ok(Box::new(SqliteReader {
            conn: Connection::open(&self.path)?,
            last: 0,
        }))
    }
}

/// Now, in microseconds since the epoch: the append time stored in `ts`.
fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

impl Store for SqliteStore {
    fn append(&self, event: &Event) -> Result<u64> {
        Ok(*self.append_batch(std::slice::from_ref(event))?.start())
    }

    fn append_batch(&self, events: &[Event]) -> Result<RangeInclusive<u64>> {
        let mut conn = self.writer.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut first = None;
        {
            let mut insert = tx.prepare_cached(INSERT)?;
            let ts = now_us();
            for event in events {
                let payload = serde_json::to_vec(event)?;
                insert.execute(params![
                    ts,
                    event.partition_key().map(str::as_bytes),
                    &event.id.as_u128().to_be_bytes()[..],
                    payload,
                ])?;
                first.get_or_insert(tx.last_insert_rowid());
            }
        }
        let last = tx.last_insert_rowid();
        tx.commit()?;
        let first = first.ok_or("append_batch of no events")?;
        Ok(first as u64..=last as u64)
    }

    fn append_records(&self, records: &[Record]) -> Result<RangeInclusive<u64>> {
        let mut conn = self.writer.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut first = None;
        {
            let mut insert = tx.prepare_cached(INSERT)?;
            let ts = now_us();
            for record in records {
                insert.execute(params![
                    ts,
                    record.key.as_deref(),
                    &record.id.to_be_bytes()[..],
                    &record.payload[..],
                ])?;
                first.get_or_insert(tx.last_insert_rowid());
            }
        }
        let last = tx.last_insert_rowid();
        tx.commit()?;
        let first = first.ok_or("append_records of no records")?;
        Ok(first as u64..=last as u64)
    }

    fn append_concurrently(&self, producers: Vec<Vec<Event>>) -> Result<Vec<u64>> {
        thread::scope(|scope| {
            let threads: Vec<_> = producers
                .iter()
                .map(|events| {
                    scope.spawn(move || {
                        events
                            .iter()
                            .map(|event| self.append(event))
                            .collect::<Result<Vec<u64>>>()
                    })
                })
                .collect();
            let mut offsets = Vec::new();
            for thread in threads {
                offsets.extend(thread.join().map_err(|_| "a producer thread panicked")??);
            }
            Ok(offsets)
        })
    }

    fn load_raw(&self, count: usize, payload: &Bytes) -> Result<Range<u64>> {
        let mut conn = self.writer.lock();
        let mut written: Option<Range<u64>> = None;
        let mut id = 0u128;
        for start in (0..count).step_by(LOAD_TRANSACTION) {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut insert = tx.prepare_cached(INSERT)?;
                let ts = now_us();
                for _ in start..count.min(start + LOAD_TRANSACTION) {
                    id += 1;
                    insert.execute(params![
                        ts,
                        None::<&[u8]>,
                        &id.to_be_bytes()[..],
                        &payload[..]
                    ])?;
                    let offset = tx.last_insert_rowid() as u64;
                    written.get_or_insert(offset..offset).end = offset + 1;
                }
            }
            tx.commit()?;
        }
        Ok(written.unwrap_or(0..0))
    }

    fn high_water_mark(&self) -> Result<u64> {
        let max: Option<i64> =
            self.writer
                .lock()
                .query_row(r#"SELECT max("offset") FROM log"#, [], |row| row.get(0))?;
        // Rowids start at 1: an empty table's next offset is 1.
        Ok(max.map_or(1, |m| m as u64 + 1))
    }

    fn raw_reader(&self, _group: &str) -> Result<Box<dyn RawReader>> {
        Ok(self.reader()?)
    }

    fn typed_reader(&self, _group: &str) -> Result<Box<dyn TypedReader>> {
        Ok(self.reader()?)
    }
}

/// Reads the table in offset order with its own connection.
struct SqliteReader {
    conn: Connection,
    /// The offset of the last row read (0 before the first: rowids start at 1).
    last: i64,
}

impl SqliteReader {
    /// Up to `max` rows after `last`; queries again every [`POLL_PAUSE`] until there
    /// are some or `timeout` has passed.
    fn poll(
        &mut self,
        max: usize,
        timeout: Duration,
        mut visit: impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            let read = self.read(max, &mut visit)?;
            if read > 0 || Instant::now() >= deadline {
                return Ok(read);
            }
            thread::sleep(POLL_PAUSE);
        }
    }

    fn read(
        &mut self,
        max: usize,
        visit: &mut impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<usize> {
        let mut select = self.conn.prepare_cached(SELECT)?;
        let mut rows = select.query(params![self.last, max as i64])?;
        let mut read = 0;
        while let Some(row) = rows.next()? {
            let offset: i64 = row.get(0)?;
            // Read every column, as the file log's records carry them all.
            let _ts: i64 = row.get(1)?;
            let _key: Option<&[u8]> = row.get_ref(2)?.as_blob_or_null()?;
            let id = row.get_ref(3)?.as_blob()?;
            if id.len() != 16 {
                return Err(format!("row {offset} has a {} byte id", id.len()).into());
            }
            visit(offset as u64, row.get_ref(4)?.as_blob()?)?;
            self.last = offset;
            read += 1;
        }
        Ok(read)
    }
}

impl RawReader for SqliteReader {
    fn poll(&mut self, max: usize, timeout: Duration, visit: VisitRaw<'_>) -> Result<usize> {
        SqliteReader::poll(self, max, timeout, visit)
    }
}

impl TypedReader for SqliteReader {
    fn poll(&mut self, max: usize, timeout: Duration, visit: VisitTyped<'_>) -> Result<usize> {
        SqliteReader::poll(self, max, timeout, |offset, payload| {
            visit(offset, &serde_json::from_slice::<Event>(payload)?)
        })
    }
}
