//! What the host writes: data on stdout (and nothing else there), messages on stderr.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use crate::cli::ColorChoice;

/// How a command ended when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything was read and stored: exit 0.
    Clean,
    /// Some input was rejected (and reported); everything else was stored: exit 1.
    Partial,
    /// Exit with this code (`vibes run` passes on its agent's).
    Code(u8),
}

impl Outcome {
    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Clean => ExitCode::SUCCESS,
            Outcome::Partial => ExitCode::from(1),
            Outcome::Code(code) => ExitCode::from(code),
        }
    }

    /// `Partial` if `problems` is true.
    pub fn partial_if(problems: bool) -> Self {
        if problems {
            Outcome::Partial
        } else {
            Outcome::Clean
        }
    }
}

/// The exit code for usage and I/O errors.
pub const EXIT_ERROR: u8 = 2;

/// Whether to colour what goes to a stream that `is_terminal` describes.
pub fn use_color(choice: ColorChoice, is_terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// Whether stdout is a terminal.
pub fn stdout_is_terminal() -> bool {
    io::stdout().is_terminal()
}

/// Whether stderr is a terminal.
pub fn stderr_is_terminal() -> bool {
    io::stderr().is_terminal()
}

/// Stdout for data. A closed pipe (`vibes tail | head`) is not an error: writes then
/// report [`Closed`] so the command can stop quietly.
#[derive(Debug)]
pub struct DataOut {
    out: io::BufWriter<io::StdoutLock<'static>>,
    /// Flush after every line (when someone may be watching live).
    line_buffered: bool,
}

/// The reader of stdout has gone away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl DataOut {
    pub fn new(line_buffered: bool) -> Self {
        DataOut {
            out: io::BufWriter::with_capacity(64 * 1024, io::stdout().lock()),
            line_buffered,
        }
    }

    /// Writes one line (a newline is added).
    pub fn line(&mut self, text: &str) -> anyhow::Result<Result<(), Closed>> {
        let result = self
            .out
            .write_all(text.as_bytes())
            .and_then(|()| self.out.write_all(b"\n"))
            .and_then(|()| {
                if self.line_buffered {
                    self.out.flush()
                } else {
                    Ok(())
                }
            });
        closed_or(result)
    }

    /// Flushes what is buffered.
    pub fn flush(&mut self) -> anyhow::Result<Result<(), Closed>> {
        closed_or(self.out.flush())
    }
}

fn closed_or(result: io::Result<()>) -> anyhow::Result<Result<(), Closed>> {
    match result {
        Ok(()) => Ok(Ok(())),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Err(Closed)),
        Err(e) => Err(anyhow::Error::new(e).context("writing to stdout")),
    }
}

/// `1 event`, `3 events`: a count with its noun, plural when it is not one.
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Formats a duration in milliseconds as `1h 2m 3.4s`, `2m 5s` or `812ms`.
pub fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = ms / 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let tenths = ms % 1000 / 100;
    match (h, m) {
        (0, 0) => format!("{s}.{tenths}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m {s}s"),
    }
}

/// Formats a byte count as `812 B`, `4.0 KiB`, `1.5 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_ms(812), "812ms");
        assert_eq!(human_ms(4_250), "4.2s");
        assert_eq!(human_ms(125_000), "2m 5s");
        assert_eq!(human_ms(3_723_000), "1h 2m 3s");
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_bytes(812), "812 B");
        assert_eq!(human_bytes(4096), "4.0 KiB");
        assert_eq!(human_bytes(3 << 19), "1.5 MiB");
    }
}
