//! One segment: a `.log` file of batches and its sparse `.idx` index.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use parking_lot::RwLock;
use vibes_log::{LogError, Offset};

use crate::format::{
    self, Batch, FrameError, HEADER_LEN, INDEX_ENTRY_LEN, INDEX_MAGIC, IndexEntry, SEGMENT_MAGIC,
    SYNCED_MARK,
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
    /// Damaged byte ranges found so far, sorted by position.
    pub(crate) damage: RwLock<Vec<Damaged>>,
}

/// A damaged byte range of a segment: bytes that are not a valid batch where one was
/// expected, up to the next intact batch (or the end of what is known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damaged {
    /// First damaged byte (where a batch with `first_offset` was expected).
    pub(crate) position: u64,
    /// Where the next intact batch starts (or the end of the scanned bytes).
    pub(crate) end: u64,
    /// The first offset the damaged bytes held.
    pub(crate) first_offset: Offset,
    /// The offset after the last one they held: the next intact batch's base offset,
    /// or the best estimate (see [`Segment::damaged_range`]).
    pub(crate) end_offset: Offset,
    /// What is wrong with the first damaged batch.
    pub(crate) reason: String,
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
            damage: RwLock::new(Vec::new()),
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
        let header = format::encode_segment_header(base, HEADER_LEN as u64);
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
            damage: RwLock::new(Vec::new()),
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
    ///
    /// The buffer is read into uninitialised: zero-filling it first cost a
    /// measurable share of every replay, for bytes the read overwrites at once.
    pub(crate) fn read_bytes(&self, position: u64, len: usize) -> Result<Bytes, LogError> {
        let mut buf: Vec<u8> = Vec::with_capacity(len);
        while buf.len() < len {
            let at = position + buf.len() as u64;
            match rustix::io::pread(&self.file, rustix::buffer::spare_capacity(&mut buf), at) {
                Ok(0) => break,
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(io_err("reading", &self.log_path, e.into())),
            }
        }
        // The allocation may have room for more than asked, which a read can fill.
        buf.truncate(len);
        Ok(Bytes::from(buf))
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

    /// The synced mark in the header: how many bytes of the segment a completed data
    /// fsync covered (§3.5 of docs/FORMAT.md). It is written after each fsync and
    /// becomes durable with the next one; 0 (segments written before it existed) means
    /// unknown.
    pub(crate) fn synced_mark(&self) -> Result<u64, LogError> {
        let mut mark = [0u8; 4];
        let read = read_full_at(&self.file, &mut mark, SYNCED_MARK as u64)
            .map_err(|e| io_err("reading the synced mark of", &self.log_path, e))?;
        Ok(format::decode_synced_mark(&mark[..read]))
    }

    /// The first complete, checksummed batch with a base offset of at least
    /// `min_offset` that starts in `from..end`: its position and base offset. Tries
    /// every byte position, reading a window at a time.
    pub(crate) fn next_intact(
        &self,
        from: u64,
        end: u64,
        min_offset: Offset,
    ) -> Result<Option<(u64, Offset)>, LogError> {
        const WINDOW: usize = 1 << 20;
        let mut start = from;
        while start + (format::BATCH_HEADER_LEN as u64) <= end {
            let want = (WINDOW + format::BATCH_HEADER_LEN).min((end - start) as usize);
            let window = self.read_bytes(start, want)?;
            let candidates = window.len().saturating_sub(format::BATCH_HEADER_LEN - 1);
            for at in 0..candidates.min(WINDOW) {
                let here = start + at as u64;
                let Some(header) = format::claimed_header(&window[at..]) else {
                    break;
                };
                let (claimed, base, count) = (header.frame_len, header.base_offset, header.count);
                if !(format::BATCH_HEADER_LEN..=format::MAX_BATCH_LEN + 4).contains(&claimed)
                    || here + claimed as u64 > end
                    || base < min_offset
                    || count == 0
                {
                    continue;
                }
                let frame = if at + claimed <= window.len() {
                    window.slice(at..at + claimed)
                } else {
                    self.read_bytes(here, claimed)?
                };
                if format::decode_batch(&frame).is_ok() {
                    return Ok(Some((here, base)));
                }
            }
            if window.len() < want || candidates <= WINDOW {
                break;
            }
            start += WINDOW as u64;
        }
        Ok(None)
    }

    /// The damaged range that starts at `position`, where a batch with offset
    /// `expected` should be: it ends at the next intact batch in the segment (searched
    /// up to `end`), whose base offset ends the offsets it held. If none follows, it
    /// ends at `stop` (a known batch boundary, the synced mark) if given and past
    /// `position`, else at `end`, and the offsets it held are `limit` (the next
    /// segment's base, for a sealed segment), else what the chain of batch headers in
    /// it claims if that chain lands exactly on its end, else one offset.
    pub(crate) fn damaged_range(
        &self,
        position: u64,
        end: u64,
        expected: Offset,
        reason: String,
        limit: Option<Offset>,
        stop: Option<u64>,
    ) -> Result<Damaged, LogError> {
        if let Some((next, base)) = self.next_intact(position + 1, end, expected)? {
            return Ok(Damaged {
                position,
                end: next,
                first_offset: expected,
                end_offset: base,
                reason,
            });
        }
        let region_end = stop.filter(|&s| s > position && s <= end).unwrap_or(end);
        let end_offset = match limit.filter(|&l| l >= expected) {
            Some(limit) => limit,
            None => self
                .claimed_offsets(position, region_end, expected)?
                .unwrap_or(expected + 1),
        };
        Ok(Damaged {
            position,
            end: region_end,
            first_offset: expected,
            end_offset,
            reason,
        })
    }

    /// Follows the batch headers from `position` (whose first batch should start at
    /// `expected`) by their length fields; if they land exactly on `end` with offsets
    /// that continue, the offset after the last batch.
    fn claimed_offsets(
        &self,
        mut position: u64,
        end: u64,
        mut expected: Offset,
    ) -> Result<Option<Offset>, LogError> {
        while position < end {
            let bytes = self.read_bytes(position, format::BATCH_HEADER_LEN)?;
            let Some(header) = format::claimed_header(&bytes) else {
                return Ok(None);
            };
            let (claimed, base, count) = (header.frame_len, header.base_offset, header.count);
            if claimed < format::BATCH_HEADER_LEN {
                return Ok(None);
            }
            let max_count = (claimed - format::BATCH_HEADER_LEN) / format::RECORD_HEADER_LEN;
            if base != expected || count == 0 || count as usize > max_count {
                return Ok(None);
            }
            position += claimed as u64;
            expected += u64::from(count);
        }
        Ok((position == end).then_some(expected))
    }

    /// Whether a batch header with base offset `offset` is at `position`.
    pub(crate) fn holds_batch_at(&self, position: u64, offset: Offset) -> Result<bool, LogError> {
        Ok(self
            .batch_header_at(position)?
            .is_some_and(|(base, _)| base == offset))
    }

    /// Whether an index entry points at a batch header with its offset and time.
    pub(crate) fn entry_holds(&self, entry: &IndexEntry) -> Result<bool, LogError> {
        let offset = self.base + u64::from(entry.relative_offset);
        Ok(self
            .batch_header_at(u64::from(entry.position))?
            .is_some_and(|(base, time)| base == offset && time == entry.timestamp_us))
    }

    /// The base offset and time in the batch header at `position`, if there is room
    /// for one.
    fn batch_header_at(&self, position: u64) -> Result<Option<(Offset, i64)>, LogError> {
        let bytes = self.read_bytes(position, format::BATCH_HEADER_LEN)?;
        Ok(format::claimed_header(&bytes).map(|h| (h.base_offset, h.timestamp_us)))
    }

    /// Records a damaged range (once per position).
    pub(crate) fn note_damage(&self, damaged: &Damaged) {
        let mut known = self.damage.write();
        match known.binary_search_by_key(&damaged.position, |d| d.position) {
            Ok(i) => known[i] = damaged.clone(),
            Err(i) => known.insert(i, damaged.clone()),
        }
    }

    /// The known damaged range starting at `position`.
    pub(crate) fn damage_at(&self, position: u64) -> Option<Damaged> {
        let known = self.damage.read();
        known
            .binary_search_by_key(&position, |d| d.position)
            .ok()
            .map(|i| known[i].clone())
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

/// Writes the synced mark: the first `end` bytes of the segment open as `file` were
/// covered by a completed data fsync.
pub(crate) fn write_synced_mark(file: &File, end: u64) -> std::io::Result<()> {
    // A mark that does not fit is not written rather than claim too much.
    match format::encode_synced_mark(end) {
        Some(mark) => file.write_all_at(&mark, SYNCED_MARK as u64),
        None => Ok(()),
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
