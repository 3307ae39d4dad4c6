//! The child's stdout and stderr: read line by line on a thread per stream, each line
//! sent to `tracing`, a size-capped rotating log file, and the tail kept for errors; or,
//! for stdout, handed whole to the owner ([`ChildSpec::stdout_lines`]).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, PipeReader, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::error::Error;
use crate::spec::ChildSpec;

/// Longest line passed on as one; longer ones are split (except lines handed to the
/// owner, which come whole).
const MAX_LINE: usize = 16 << 10;

/// Where the stdout lines of a child whose spec says
/// [`stdout_lines`](ChildSpec::stdout_lines) go.
pub(crate) type LineSender = mpsc::Sender<Vec<u8>>;

/// Locks, carrying on with the data if a reader thread panicked while holding it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Which output stream.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One stream's log file, rotated by size. Shared by the reader threads of every run.
#[derive(Debug)]
pub(crate) struct LogFile {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    max_bytes: u64,
    keep: usize,
    /// Set after a failed write was reported, so a full disk is reported once.
    failing: bool,
}

impl LogFile {
    pub(crate) fn new(path: PathBuf, max_bytes: u64, keep: usize) -> Self {
        LogFile {
            path,
            file: None,
            size: 0,
            max_bytes,
            keep,
            failing: false,
        }
    }

    /// Appends `line` and a newline, rotating first if the file would pass its cap; a
    /// line longer than the cap is cut to fit.
    pub(crate) fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let cap = usize::try_from(self.max_bytes.saturating_sub(1)).unwrap_or(usize::MAX);
        let line = &line[..line.len().min(cap)];
        let len = line.len() as u64 + 1;
        if self.file.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.size = file.metadata()?.len();
            self.file = Some(file);
        }
        if self.size > 0 && self.size + len > self.max_bytes {
            self.rotate()?;
        }
        let mut record = Vec::with_capacity(line.len() + 1);
        record.extend_from_slice(line);
        record.push(b'\n');
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::other("log file not open"));
        };
        file.write_all(&record)?;
        self.size += len;
        Ok(())
    }

    /// `x.log.(k-1)` → `x.log.k`, ..., `x.log` → `x.log.1`, and a new empty `x.log`.
    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        if self.keep == 0 {
            ignore_missing(fs::remove_file(&self.path))?;
        } else {
            for n in (1..self.keep).rev() {
                ignore_missing(fs::rename(self.rotated(n), self.rotated(n + 1)))?;
            }
            fs::rename(&self.path, self.rotated(1))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)?;
        self.file = Some(file);
        self.size = 0;
        Ok(())
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    /// Writes a line, reporting the first failure of a series through `tracing` (the
    /// child keeps running; the line still reaches `tracing` and the tail).
    fn write_or_report(&mut self, child: &str, line: &[u8]) {
        match self.write_line(line) {
            Ok(()) => self.failing = false,
            Err(err) => {
                self.file = None; // reopened on the next line
                if !self.failing {
                    self.failing = true;
                    tracing::warn!(
                        target: "vibes_supervisor",
                        child,
                        path = %self.path.display(),
                        error = %err,
                        "cannot write the output log; lines go only to tracing until it works again"
                    );
                }
            }
        }
    }
}

fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The log files of one supervisor, kept across runs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Logs {
    stdout: Option<Arc<Mutex<LogFile>>>,
    stderr: Option<Arc<Mutex<LogFile>>>,
}

impl Logs {
    /// Creates the log directory if the spec has one. Files are opened on first write.
    pub(crate) fn open(spec: &ChildSpec) -> Result<Logs, Error> {
        let (Some(dir), Some(stdout), Some(stderr)) =
            (&spec.log_dir, spec.stdout_log(), spec.stderr_log())
        else {
            return Ok(Logs::default());
        };
        fs::create_dir_all(dir).map_err(|source| Error::Log {
            path: dir.clone(),
            source,
        })?;
        let file = |path| {
            Arc::new(Mutex::new(LogFile::new(
                path,
                spec.log_max_bytes,
                spec.log_keep,
            )))
        };
        Ok(Logs {
            stdout: Some(file(stdout)),
            stderr: Some(file(stderr)),
        })
    }

    fn get(&self, stream: Stream) -> Option<Arc<Mutex<LogFile>>> {
        match stream {
            Stream::Stdout => self.stdout.clone(),
            Stream::Stderr => self.stderr.clone(),
        }
    }
}

/// The last lines of a run's output, bounded in lines and bytes.
#[derive(Debug)]
pub(crate) struct Tail {
    lines: VecDeque<String>,
    bytes: usize,
    max_lines: usize,
    max_bytes: usize,
}

impl Tail {
    pub(crate) fn new(max_lines: usize, max_bytes: usize) -> Self {
        Tail {
            lines: VecDeque::new(),
            bytes: 0,
            max_lines,
            max_bytes,
        }
    }

    pub(crate) fn push(&mut self, line: &str) {
        let mut line = line;
        if line.len() > self.max_bytes {
            // Keep the end of an over-long line, cut at a character boundary.
            let mut start = line.len() - self.max_bytes;
            while !line.is_char_boundary(start) {
                start += 1;
            }
            line = &line[start..];
        }
        self.lines.push_back(line.to_owned());
        self.bytes += line.len();
        while self.lines.len() > self.max_lines || self.bytes > self.max_bytes {
            let Some(old) = self.lines.pop_front() else {
                break;
            };
            self.bytes -= old.len();
        }
    }

    /// The kept lines joined by newlines.
    pub(crate) fn text(&self) -> String {
        let parts: Vec<&str> = self.lines.iter().map(String::as_str).collect();
        parts.join("\n")
    }
}

/// The output of one run: its tail, and a way to wait until both streams are read to
/// their end.
#[derive(Debug)]
pub(crate) struct Output {
    tail: Arc<Mutex<Tail>>,
    done: Vec<oneshot::Receiver<()>>,
}

impl Output {
    /// Starts one reader thread per piped stream of the run of `name` with process id
    /// `pid` (stderr is not piped when the child inherits it); stdout lines go to
    /// `lines` when given.
    pub(crate) fn capture(
        spec: &ChildSpec,
        pid: u32,
        logs: &Logs,
        stdout: PipeReader,
        stderr: Option<PipeReader>,
        lines: Option<LineSender>,
    ) -> io::Result<Output> {
        let tail = Arc::new(Mutex::new(Tail::new(spec.tail_lines, spec.tail_bytes)));
        let mut done = Vec::with_capacity(2);
        let streams = [
            Some((Stream::Stdout, stdout, lines)),
            stderr.map(|pipe| (Stream::Stderr, pipe, None)),
        ];
        for (stream, pipe, owner) in streams.into_iter().flatten() {
            let (finished, finished_rx) = oneshot::channel();
            let reader = Reader {
                child: spec.name.clone(),
                pid,
                stream,
                log: logs.get(stream),
                tail: Arc::clone(&tail),
                owner,
            };
            thread::Builder::new()
                .name(format!("{}-{}", spec.name, stream.as_str()))
                .spawn(move || {
                    reader.run(pipe);
                    let _ = finished.send(());
                })?;
            done.push(finished_rx);
        }
        Ok(Output { tail, done })
    }

    /// Waits up to `timeout` for both streams to reach end-of-file (which happens when
    /// the child and every process that inherited its output have exited), then
    /// returns the tail.
    pub(crate) async fn drain(&mut self, timeout: Duration) -> String {
        let done = std::mem::take(&mut self.done);
        let all = async {
            for finished in done {
                // An error means the thread ended without saying so: also finished.
                let _ = finished.await;
            }
        };
        let _ = tokio::time::timeout(timeout, all).await;
        lock(&self.tail).text()
    }
}

/// Reads one stream of one run until end-of-file.
struct Reader {
    child: String,
    pid: u32,
    stream: Stream,
    log: Option<Arc<Mutex<LogFile>>>,
    tail: Arc<Mutex<Tail>>,
    /// The owner's receiver of whole lines, while it lives.
    owner: Option<LineSender>,
}

impl Reader {
    fn run(mut self, pipe: PipeReader) {
        if self.owner.is_some() {
            return self.hand_over(pipe);
        }
        let mut input = BufReader::with_capacity(MAX_LINE, pipe);
        let mut line = Vec::new();
        loop {
            let buffer = match input.fill_buf() {
                Ok(buffer) => buffer,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            if buffer.is_empty() {
                break;
            }
            let room = MAX_LINE - line.len();
            match buffer.iter().take(room).position(|&b| b == b'\n') {
                Some(end) => {
                    line.extend_from_slice(&buffer[..end]);
                    input.consume(end + 1);
                    self.line(&line);
                    line.clear();
                }
                None => {
                    let take = buffer.len().min(room);
                    line.extend_from_slice(&buffer[..take]);
                    input.consume(take);
                    if line.len() == MAX_LINE {
                        self.line(&line);
                        line.clear();
                    }
                }
            }
        }
        if !line.is_empty() {
            self.line(&line);
        }
    }

    /// Sends every line whole to the owner, waiting while its queue is full; if the
    /// owner goes away, the rest of the lines go to [`line`](Self::line).
    fn hand_over(&mut self, pipe: PipeReader) {
        let mut input = BufReader::with_capacity(MAX_LINE, pipe);
        loop {
            let mut line = Vec::new();
            match input.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
            if line.last() == Some(&b'\n') {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
            }
            match &self.owner {
                Some(owner) => {
                    if let Err(mpsc::error::SendError(line)) = owner.blocking_send(line) {
                        self.owner = None;
                        self.line(&line);
                    }
                }
                None => self.line(&line),
            }
        }
    }

    fn line(&self, raw: &[u8]) {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let text = String::from_utf8_lossy(raw);
        tracing::info!(
            target: "vibes_supervisor::output",
            child = %self.child,
            pid = self.pid,
            stream = self.stream.as_str(),
            "{text}"
        );
        if let Some(log) = &self.log {
            lock(log).write_or_report(&self.child, raw);
        }
        lock(&self.tail).push(&text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &std::path::Path) -> String {
        fs::read_to_string(path).unwrap_or_default()
    }

    #[test]
    fn log_rotates_before_passing_its_cap_and_keeps_that_many_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.stdout.log");
        let mut log = LogFile::new(path.clone(), 100, 2);
        for n in 0..40 {
            log.write_line(format!("line {n:04}").as_bytes())
                .expect("write");
        }
        // 10 bytes a line, 10 lines a file: 40 lines fill x.log.2, x.log.1 and x.log,
        // and the oldest file was deleted.
        assert_eq!(read(&path).lines().next(), Some("line 0030"));
        assert_eq!(
            read(&path.with_extension("log.1")).lines().next(),
            Some("line 0020")
        );
        assert_eq!(
            read(&path.with_extension("log.2")).lines().next(),
            Some("line 0010")
        );
        assert!(!path.with_extension("log.3").exists());
        for file in [
            path.clone(),
            path.with_extension("log.1"),
            path.with_extension("log.2"),
        ] {
            assert!(fs::metadata(&file).expect("log file").len() <= 100);
        }
    }

    #[test]
    fn log_with_keep_zero_starts_over() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.stdout.log");
        let mut log = LogFile::new(path.clone(), 100, 0);
        for n in 0..15 {
            log.write_line(format!("line {n:04}").as_bytes())
                .expect("write");
        }
        assert_eq!(read(&path).lines().next(), Some("line 0010"));
        assert!(!path.with_extension("log.1").exists());
    }

    #[test]
    fn a_line_longer_than_the_cap_is_cut_to_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.stdout.log");
        let mut log = LogFile::new(path.clone(), 100, 1);
        log.write_line(b"short").expect("write");
        log.write_line(&[b'a'; 500]).expect("write");
        assert_eq!(fs::metadata(&path).expect("log").len(), 100);
        assert_eq!(read(&path.with_extension("log.1")), "short\n");
    }

    #[test]
    fn log_appends_to_what_an_earlier_supervisor_wrote() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.stdout.log");
        fs::write(&path, "before\n").expect("seed");
        let mut log = LogFile::new(path.clone(), 100, 1);
        log.write_line(b"after").expect("write");
        assert_eq!(read(&path), "before\nafter\n");
    }

    #[test]
    fn tail_keeps_the_last_lines_within_both_bounds() {
        let mut tail = Tail::new(3, 1000);
        for n in 0..10 {
            tail.push(&format!("line {n}"));
        }
        assert_eq!(tail.text(), "line 7\nline 8\nline 9");

        let mut tail = Tail::new(100, 10);
        tail.push("aaaa");
        tail.push("bbbb");
        tail.push("cccc");
        assert_eq!(tail.text(), "bbbb\ncccc");
        tail.push("éééééééé"); // 16 bytes: only its end fits
        assert_eq!(tail.text(), "ééééé");
    }
}
