//! `vibes top`: a live terminal dashboard of coders, events, failures, alerts and gaps.
//!
//! The `ai-coder` and `groove` plugins are rebuilt in this process once (newest
//! snapshot, then the log after it; nothing written, nothing committed), then followed:
//! one reader thread waits on the log's own wake-ups (a consumer's poll returns when
//! records are appended, by this process or another) and folds each new record into
//! both plugins and the bounded lists of [`model`]. The main thread redraws at a steady
//! frame rate from a [`model::View`] taken under the lock, never per event, and handles
//! keys and resizes between frames. Re-loading the plugins on each growth of the log
//! instead would restore a whole snapshot per refresh; following costs one fold per
//! record.

pub mod model;
mod terminal;
pub mod ui;
pub mod view;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ratatui::crossterm::event::{self, Event as TermEvent, KeyEventKind};
use vibes_events::Event;
use vibes_log::{ConsumerOptions, EventConsumer, LogError, SeekPosition, StartFrom};
use vibes_plugin::{Follower, Plugin};

use super::plugin_query::ReadBar;
use super::private_group;
use crate::cli::{GlobalArgs, TopArgs};
use crate::output::{self, Outcome};
use crate::plugins;
use crate::storage::Storage;
use model::{Ask, Model, View};
use ui::{Action, Ui};

/// Records read per wake-up at most.
const POLL_MAX: usize = 4096;
/// How long the reader waits for records before it looks at the stop flag.
const POLL_WAIT: Duration = Duration::from_millis(250);
/// Records before the plugins' position read at the start, to fill the event and
/// failure panes (the plugins skip them: they have seen them).
const BACKFILL: u64 = 2000;

pub fn run(storage: &Storage, args: &TopArgs, global: &GlobalArgs) -> Result<Outcome> {
    if !(1..=30).contains(&args.fps) {
        bail!("--fps {} must be from 1 to 30", args.fps);
    }
    if !output::stdout_is_terminal() {
        bail!(
            "vibes top draws on a terminal and stdout is none; for scripts use `vibes coders watch` or `vibes tail -f`"
        );
    }
    let log = storage.events()?;
    let runtime = plugins::runtime(storage);
    let coders = follow(storage, &runtime, Box::new(plugins::ai_coder()), global)?;
    let groove = follow(storage, &runtime, plugins::instance("groove")?, global)?;
    let model = Model::new(coders, groove);
    let group = private_group("top");
    let mut consumer = storage
        .block_on(log.consumer_with(&group, ConsumerOptions::start(StartFrom::Beginning)))
        .with_context(|| format!("joining consumer group {group}"))?;
    let positions = model.positions();
    for partition in consumer.assignment() {
        let low = storage.block_on(log.watermarks(partition))?.low;
        let from = positions
            .get(&partition)
            .copied()
            .unwrap_or(0)
            .saturating_sub(BACKFILL)
            .max(low);
        storage.block_on(consumer.seek_partition(partition, SeekPosition::Offset(from)))?;
    }
    let model = Mutex::new(model);
    let stop = AtomicBool::new(false);
    let frame = Duration::from_secs(1) / args.fps;
    let shown_done = AtomicBool::new(false);
    let (shown, read) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            // Set even if reading panics, so the drawing loop ends.
            let _stop = StopOnDrop(&stop);
            let result = read(storage, &mut consumer, &model, &stop);
            stop.store(true, Ordering::SeqCst);
            give_up_on_a_stuck_terminal(&shown_done);
            result
        });
        let shown = show(&model, &stop, frame);
        shown_done.store(true, Ordering::SeqCst);
        stop.store(true, Ordering::SeqCst);
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the reader thread panicked")));
        (shown, read)
    });
    shown?;
    read?;
    let skipped = model.lock().unwrap_or_else(PoisonError::into_inner).skipped;
    if skipped > 0 {
        eprintln!("vibes top: {skipped} records were skipped (undecodable or refused by a plugin)");
    }
    Ok(Outcome::partial_if(skipped > 0))
}

/// Sets the flag when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// How long the drawing loop has to return once told to stop.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Once stopped (a signal, or the log failed), waits for the drawing loop; if it has
/// not returned within [`STOP_GRACE`], ends the process. crossterm 0.29 spins in its
/// read loop forever once the terminal has hung up (a killed tmux pane or ssh
/// session: every read returns end of file), which nothing inside the loop can
/// interrupt; the check before each poll in [`show`] catches most hang-ups, this
/// catches one that comes between that check and the poll.
fn give_up_on_a_stuck_terminal(shown_done: &AtomicBool) {
    let deadline = Instant::now() + STOP_GRACE;
    while !shown_done.load(Ordering::SeqCst) {
        if Instant::now() >= deadline {
            terminal::restore();
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `plugin` rebuilt from the log as it is now, ready to follow it.
fn follow(
    storage: &Storage,
    runtime: &vibes_plugin::Runtime,
    plugin: Box<dyn Plugin>,
    global: &GlobalArgs,
) -> Result<Follower> {
    let name = plugin.manifest().name;
    let mut bar = ReadBar::new(&format!("rebuilding {name}"), global);
    let (follower, rebuilt) = storage
        .block_on(runtime.follow(plugin, |progress| bar.update(progress)))
        .with_context(|| format!("rebuilding plugin {name} from the log"))?;
    bar.finish();
    let skipped = rebuilt.undecodable.len() + rebuilt.refused.len();
    if skipped > 0 {
        eprintln!(
            "warning: {name}: {skipped} records skipped while rebuilding (undecodable or refused)"
        );
    }
    Ok(follower)
}

/// Folds every record appended into the model until `stop`, or until SIGTERM, SIGINT
/// or SIGHUP (which set `stop`).
fn read(
    storage: &Storage,
    consumer: &mut EventConsumer<Event>,
    model: &Mutex<Model>,
    stop: &AtomicBool,
) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    storage.block_on(async {
        let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
        let mut hup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
        let mut last_damage: Option<String> = None;
        while !stop.load(Ordering::SeqCst) {
            let polled = tokio::select! {
                polled = consumer.poll(POLL_MAX, POLL_WAIT) => polled,
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => break,
            };
            let mut model = model.lock().unwrap_or_else(PoisonError::into_inner);
            match polled {
                Ok(batch) => {
                    last_damage = None;
                    for failure in &batch.failures {
                        model.undecodable(format!("a record that does not decode: {failure}"));
                    }
                    for delivered in &batch.events {
                        model.fold(delivered);
                    }
                }
                Err(error @ LogError::Corrupt { .. }) => {
                    // The consumer has moved past the damage; the same damage twice in
                    // a row means it could not.
                    let text = error.to_string();
                    if last_damage.as_deref() == Some(text.as_str()) {
                        return Err(anyhow::Error::new(error).context("reading events"));
                    }
                    model.undecodable(text.clone());
                    last_damage = Some(text);
                }
                Err(error) => return Err(anyhow::Error::new(error).context("reading events")),
            }
        }
        Ok(())
    })
}

/// What the model is asked for under `ui`, for a body `rows` high.
fn ask(ui: &Ui, rows: u16) -> Ask {
    Ask {
        filter: ui.event_filter(),
        all: ui.all,
        timeline: ui.timeline.clone(),
        events: usize::from(rows),
    }
}

/// The coders' ids in table order, for Enter.
fn coder_ids(view: &View) -> Vec<String> {
    super::coders::coders(&view.coders)
        .iter()
        .filter_map(|c| c["coder_id"].as_str().map(str::to_owned))
        .collect()
}

/// Draws every `frame` and handles keys until `q` or `stop`.
fn show(model: &Mutex<Model>, stop: &AtomicBool, frame: Duration) -> Result<()> {
    let mut guard = terminal::Guard::enter()?;
    let mut ui = Ui::default();
    let mut view = View::default();
    // The records read when the view was taken, and whether a key changed what to ask.
    let mut taken_at: Option<u64> = None;
    let mut asked_anew = true;
    let mut next_frame = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if Instant::now() >= next_frame {
            let rows = guard.terminal.size().map(|s| s.height).unwrap_or(24);
            {
                let model = model.lock().unwrap_or_else(PoisonError::into_inner);
                let changed = taken_at != Some(model.read);
                if asked_anew || (changed && !ui.paused) {
                    view = model.view(&ask(&ui, rows));
                    taken_at = Some(model.read);
                    asked_anew = false;
                }
            }
            guard
                .terminal
                .draw(|f| view::draw(f, &view, &ui))
                .context("drawing")?;
            next_frame = Instant::now() + frame;
        }
        let wait = next_frame
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        if terminal::hung_up() {
            bail!("the terminal went away");
        }
        if !event::poll(wait).context("reading the terminal")? {
            continue;
        }
        match event::read().context("reading the terminal")? {
            TermEvent::Key(key) if key.kind == KeyEventKind::Press => {
                match ui.key(key, &coder_ids(&view)) {
                    Action::Quit => break,
                    Action::Redraw => {
                        asked_anew = true;
                        next_frame = Instant::now();
                    }
                    Action::None => {}
                }
            }
            TermEvent::Resize(..) => {
                asked_anew = true;
                next_frame = Instant::now();
            }
            _ => {}
        }
    }
    drop(guard);
    Ok(())
}

#[cfg(test)]
mod tests;
