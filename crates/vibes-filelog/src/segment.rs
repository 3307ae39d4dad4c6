//! One segment: a `.log` file of batches and its sparse `.idx` index.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use parking_lot::RwLock;
use vibes_log::{LogError, Offset};

use crate::format::{
    self, Batch, FrameError, HEADER_LEN, INDEX_ENTRY_LEN, INDEX_MAGIC, IndexEntry, SEGMENT_MAGIC,
};
use crate::fsutil::{io_err, write_atomic};

/// File name of the segment with this base offset.
pub(crate) fn log_name(base: Offset) -> String {
    format!("{base:020}.log")
}

/// File name of the index of the segment with this base offset.
pub(crate) fn index_name(base: Offset) -> String {
    format!("{base:020}.idx")
}

/// The base offset a segment file name encodes.
pub(crate) fn parse_log_name(name: &str) -> Option<Offset> {
    let digits = name.strip_suffix(".log")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// A segment as this process knows it.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base: Offset,
    pub(crate) log_path: PathBuf,
    pub(crate) index_path: PathBuf,
    /// A read handle (reads use `pread`, so one handle serves every reader).
    pub(crate) file: File,
    /// The sparse index; `None` until loaded (sealed segments load on first read).
    pub(crate) index: RwLock<Option<Vec<IndexEntry>>>,
}

/// Where a scan of batches stopped.
#[derive(Debug)]
pub(crate) enum ScanEnd {
    /// At the end of the bytes given.
    Clean,
    /// At a batch that is incomplete: it ends past the bytes given.
    Incomplete { position: u64 },
    /// At a batch that is complete but invalid.
    Invalid { position: u64, reason: String },
}

/// A batch found by a scan: where it is and what it holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchMeta {
    pub(crate) position: u64,
    pub(crate) len: u64,
    pub(crate) base_offset: Offset,
    pub(crate) count: u64,
    pub(crate) timestamp_us: i64,
}

impl Segment {
    /// Opens an existing segment file for reading and checks its header.
    pub(crate) fn open(dir: &Path, base: Offset) -> Result<Segment, LogError> {
        let log_path = dir.join(log_name(base));
        let file = File::open(&log_path).map_err(|e| io_err("opening segment", &log_path, e))?;
        Ok(Segment {
            base,
            index_path: dir.join(index_name(base)),
            log_path,
            file,
            index: RwLock::new(None),
        })
    }

    /// Creates a new, empty segment with its header and an empty index, durably.
    pub(crate) fn create(dir: &Path, base: Offset) -> Result<Segment, LogError> {
        let log_path = dir.join(log_name(base));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&log_path)
            .map_err(|e| io_err("creating segment", &log_path, e))?;
        let header = format::encode_header(SEGMENT_MAGIC, base);
        file.write_all_at(&header, 0)
            .and_then(|()| file.sync_data())
            .map_err(|e| io_err("writing segment header", &log_path, e))?;
        let index_path = dir.join(index_name(base));
        write_atomic(&index_path, &format::encode_header(INDEX_MAGIC, base))?;
        Ok(Segment {
            base,
            log_path,
            index_path,
            file,
            index: RwLock::new(Some(Vec::new())),
        })
    }

    /// The segment file's current length.
    pub(crate) fn len(&self) -> Result<u64, LogError> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| io_err("reading the length of", &self.log_path, e))
    }

    /// Checks the header; a segment shorter than its header is reported as such.
    pub(crate) fn check_header(&self) -> Result<(), LogError> {
        let mut header = [0u8; HEADER_LEN];
        let read = read_full_at(&self.file, &mut header, 0)
            .map_err(|e| io_err("reading segment header", &self.log_path, e))?;
        match format::decode_header(SEGMENT_MAGIC, &header[..read]) {
            Ok(base) if base == self.base => Ok(()),
            Ok(base) => Err(self.corrupt(
                0,
                format!("header names base offset {base}, file name {}", self.base),
            )),
            Err(e) => Err(self.corrupt(0, format!("segment header: {e}"))),
        }
    }

    pub(crate) fn corrupt(&self, position: u64, reason: impl Into<String>) -> LogError {
        LogError::Corrupt {
            file: self.log_path.clone(),
            position,
            reason: reason.into(),
        }
    }

    /// Reads `len` bytes at `position` into a shared buffer (fewer at end of file).
    pub(crate) fn read_bytes(&self, position: u64, len: usize) -> Result<Bytes, LogError> {
        let mut buf = BytesMut::zeroed(len);
        let read = read_full_at(&self.file, &mut buf, position)
            .map_err(|e| io_err("reading", &self.log_path, e))?;
        buf.truncate(read);
        Ok(buf.freeze())
    }

    /// Scans batches from `position` to `end`, checking each one and that offsets
    /// continue from `next_offset`. Calls `found` for each valid batch, in order.
    pub(crate) fn scan(
        &self,
        mut position: u64,
        end: u64,
        mut next_offset: Offset,
        mut found: impl FnMut(BatchMeta, &Batch),
    ) -> Result<ScanEnd, LogError> {
        const CHUNK: usize = 1 << 20;
        // Grows to the size of a batch larger than CHUNK, so it is read whole.
        let mut want_at_least = 0usize;
        while position < end {
            let want = CHUNK.max(want_at_least).min((end - position) as usize);
            let chunk = self.read_bytes(position, want)?;
            let mut at = 0usize;
            let mut needed_next = None;
            while at < chunk.len() {
                let here = position + at as u64;
                match format::decode_batch(&chunk.slice(at..)) {
                    Ok(batch) => {
                        if batch.base_offset != next_offset {
                            return Ok(ScanEnd::Invalid {
                                position: here,
                                reason: format!(
                                    "batch starts at offset {}, expected {next_offset}",
                                    batch.base_offset
                                ),
                            });
                        }
                        let meta = BatchMeta {
                            position: here,
                            len: batch.frame_len as u64,
                            base_offset: batch.base_offset,
                            count: batch.records.len() as u64,
                            timestamp_us: batch.timestamp_us,
                        };
                        found(meta, &batch);
                        next_offset += meta.count;
                        at += batch.frame_len;
                    }
                    Err(FrameError::Incomplete { needed, .. }) => {
                        if here + needed as u64 > end {
                            return Ok(ScanEnd::Incomplete { position: here });
                        }
                        needed_next = Some(needed);
                        break;
                    }
                    Err(FrameError::Invalid(reason)) => {
                        return Ok(ScanEnd::Invalid {
                            position: here,
                            reason,
                        });
                    }
                }
            }
            if at == 0 {
                match needed_next {
                    // The batch at `position` is bigger than what was read: read it whole.
                    Some(needed) if needed > want => want_at_least = needed,
                    // The file ends before `end`.
                    _ => return Ok(ScanEnd::Incomplete { position }),
                }
            } else {
                want_at_least = 0;
            }
            position += at as u64;
        }
        Ok(ScanEnd::Clean)
    }

    /// Loads the index file: its valid entries, and whether the file was whole.
    pub(crate) fn load_index_file(&self) -> Result<(Vec<IndexEntry>, bool), LogError> {
        let bytes = match std::fs::read(&self.index_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), false)),
            Err(e) => return Err(io_err("reading index", &self.index_path, e)),
        };
        if format::decode_header(INDEX_MAGIC, &bytes).ok() != Some(self.base) {
            return Ok((Vec::new(), false));
        }
        let (entries, complete) =
            format::decode_index_entries(&bytes[HEADER_LEN..], HEADER_LEN as u32);
        Ok((entries, complete))
    }

    /// Rewrites the index file with `entries`, atomically.
    pub(crate) fn write_index_file(&self, entries: &[IndexEntry]) -> Result<(), LogError> {
        let mut bytes = Vec::with_capacity(HEADER_LEN + entries.len() * INDEX_ENTRY_LEN);
        bytes.extend_from_slice(&format::encode_header(INDEX_MAGIC, self.base));
        for entry in entries {
            bytes.extend_from_slice(&entry.encode());
        }
        write_atomic(&self.index_path, &bytes)
    }

    /// The position to start reading for `offset`: the last index entry at or before it.
    pub(crate) fn start_for(&self, offset: Offset) -> Option<(u64, Offset)> {
        let relative = offset.checked_sub(self.base)?;
        self.start_before(|e| u64::from(e.relative_offset) <= relative)
    }

    /// The position to start scanning for the first batch appended at or after
    /// `time_us`, and the offset there.
    pub(crate) fn start_for_time(&self, time_us: i64) -> Option<(u64, Offset)> {
        self.start_before(|e| e.timestamp_us < time_us)
    }

    /// The last index entry for which `before` holds (entries are sorted so that it
    /// holds for a prefix), as a position and offset; the segment's first batch if none.
    fn start_before(&self, before: impl Fn(&IndexEntry) -> bool) -> Option<(u64, Offset)> {
        let index = self.index.read();
        let entries = index.as_ref()?;
        Some(match entries.partition_point(before) {
            0 => (HEADER_LEN as u64, self.base),
            i => {
                let e = entries[i - 1];
                (
                    u64::from(e.position),
                    self.base + u64::from(e.relative_offset),
                )
            }
        })
    }
}

/// Reads until `buf` is full or the file ends; returns bytes read.
pub(crate) fn read_full_at(file: &File, buf: &mut [u8], position: u64) -> std::io::Result<usize> {
    let mut read = 0;
    while read < buf.len() {
        match file.read_at(&mut buf[read..], position + read as u64) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(read)
}

/// Adds an index entry for the batch `meta` of the segment based at `base` if one is
/// due: for the segment's first batch, and then whenever `interval` bytes have passed
/// since the last entry. Entries are thus a function of the batches alone, the same in
/// every process that indexes them.
pub(crate) fn index_batch(
    entries: &mut Vec<IndexEntry>,
    base: Offset,
    meta: &BatchMeta,
    interval: u32,
) {
    let due = entries
        .last()
        .is_none_or(|last| meta.position - u64::from(last.position) >= u64::from(interval));
    if due {
        entries.push(IndexEntry {
            relative_offset: (meta.base_offset - base) as u32,
            position: meta.position as u32,
            timestamp_us: meta.timestamp_us,
        });
    }
}
