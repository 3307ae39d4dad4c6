//! The terminal of `vibes top`: raw mode and the alternate screen while it runs, and
//! the terminal given back on every way out: a return, an error (the guard drops), a
//! panic (the hook restores before the message is printed). SIGTERM, SIGINT and SIGHUP
//! end the main loop, which then returns; a terminal that hung up ends it too.

use std::io::{self, Stdout};
use std::sync::Once;

use anyhow::{Context, Result};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::{cursor, execute, terminal};

/// The terminal, restored when dropped.
#[derive(Debug)]
pub(super) struct Guard {
    pub(super) terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Guard {
    /// Takes over the terminal.
    pub(super) fn enter() -> Result<Guard> {
        install_panic_hook();
        terminal::enable_raw_mode().context("switching the terminal to raw mode")?;
        if let Err(e) = execute!(io::stdout(), terminal::EnterAlternateScreen, cursor::Hide) {
            restore();
            return Err(e).context("switching to the alternate screen");
        }
        match Terminal::new(CrosstermBackend::new(io::stdout())) {
            Ok(terminal) => Ok(Guard { terminal }),
            Err(e) => {
                restore();
                Err(e).context("opening the terminal")
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves the alternate screen and raw mode, shows the cursor. Safe to call twice.
pub(super) fn restore() {
    let _ = execute!(io::stdout(), terminal::LeaveAlternateScreen, cursor::Show);
    let _ = terminal::disable_raw_mode();
}

/// Whether the terminal hung up (its pane or session is gone): reading it would give
/// end of file forever. Checked on standard input, which crossterm reads when it is a
/// terminal; anything else (not a terminal, or the check failing) counts as not hung
/// up.
pub(super) fn hung_up() -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let stdin = io::stdin();
    if !rustix::termios::isatty(&stdin) {
        return false;
    }
    let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match poll(&mut fds, Some(&now)) {
        Ok(_) => fds[0]
            .revents()
            .intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL),
        Err(_) => false,
    }
}

/// A panic restores the terminal first, so its message is readable and the shell
/// usable.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}
