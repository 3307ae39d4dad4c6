//! What the person at `vibes top` chose: the focused pane, pause, the event filter,
//! the coder selected, the timeline open, help; and what each key does to that.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use vibes_events::{Filter, TypePattern};

/// The panes, in the order Tab visits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Coders,
    Events,
    Failures,
    Alerts,
    Gaps,
}

impl Pane {
    pub const ALL: [Pane; 5] = [
        Pane::Coders,
        Pane::Events,
        Pane::Failures,
        Pane::Alerts,
        Pane::Gaps,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Pane::Coders => "coders",
            Pane::Events => "events",
            Pane::Failures => "failures",
            Pane::Alerts => "alerts",
            Pane::Gaps => "gaps",
        }
    }

    fn step(self, by: isize) -> Pane {
        let i = Pane::ALL.iter().position(|p| *p == self).unwrap_or(0) as isize;
        let n = Pane::ALL.len() as isize;
        Pane::ALL[((i + by).rem_euclid(n)) as usize]
    }
}

/// What a key asks of the main loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    Redraw,
    Quit,
}

/// The choices.
#[derive(Debug, Clone)]
pub struct Ui {
    pub focus: Pane,
    /// The focused pane alone, full size.
    pub zoom: bool,
    pub paused: bool,
    pub help: bool,
    /// Ended coders too.
    pub all: bool,
    /// Event types shown (globs, as `vibes tail --type`); empty: all.
    pub filter: Vec<String>,
    /// The filter being typed, while `/` is open.
    pub editing: Option<String>,
    /// The selected row of the coders table.
    pub selected: usize,
    /// The coder whose timeline is open.
    pub timeline: Option<String>,
}

impl Default for Ui {
    fn default() -> Self {
        Ui {
            focus: Pane::Coders,
            zoom: false,
            paused: false,
            help: false,
            all: true,
            filter: Vec::new(),
            editing: None,
            selected: 0,
            timeline: None,
        }
    }
}

impl Ui {
    /// The event filter chosen.
    pub fn event_filter(&self) -> Option<Filter> {
        (!self.filter.is_empty())
            .then(|| Filter::all().types(self.filter.iter().map(|t| TypePattern::new(t.clone()))))
    }

    /// Applies `key`; `coder_ids` are the coders' ids in table order (for Enter).
    pub fn key(&mut self, key: KeyEvent, coder_ids: &[String]) -> Action {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        if let Some(text) = &mut self.editing {
            match key.code {
                KeyCode::Enter => {
                    self.filter = text
                        .split([' ', ','])
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                        .collect();
                    self.editing = None;
                }
                KeyCode::Esc => self.editing = None,
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(c) => text.push(c),
                _ => return Action::None,
            }
            return Action::Redraw;
        }
        if self.help {
            self.help = false;
            return if key.code == KeyCode::Char('q') {
                Action::Quit
            } else {
                Action::Redraw
            };
        }
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Esc => {
                if self.timeline.take().is_none() {
                    self.zoom = false;
                }
            }
            KeyCode::Tab => self.focus = self.focus.step(1),
            KeyCode::BackTab => self.focus = self.focus.step(-1),
            KeyCode::Char(c @ '1'..='5') => {
                self.focus = Pane::ALL[(c as usize) - ('1' as usize)];
            }
            KeyCode::Char('z') => self.zoom = !self.zoom,
            KeyCode::Char('p' | ' ') => self.paused = !self.paused,
            KeyCode::Char('a') => self.all = !self.all,
            KeyCode::Char('/') => {
                self.focus = Pane::Events;
                self.editing = Some(self.filter.join(" "));
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(coder_ids.len().saturating_sub(1));
            }
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::Enter => match coder_ids.get(self.selected) {
                Some(id) => self.timeline = Some(id.clone()),
                None => return Action::None,
            },
            _ => return Action::None,
        }
        Action::Redraw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(ui: &mut Ui, code: KeyCode, ids: &[String]) -> Action {
        ui.key(KeyEvent::new(code, KeyModifiers::NONE), ids)
    }

    #[test]
    fn keys_switch_panes_filter_pause_open_a_timeline_and_quit() {
        let ids = vec!["s1".to_owned(), "s2".to_owned()];
        let mut ui = Ui::default();
        assert_eq!(press(&mut ui, KeyCode::Tab, &ids), Action::Redraw);
        assert_eq!(ui.focus, Pane::Events);
        press(&mut ui, KeyCode::BackTab, &ids);
        press(&mut ui, KeyCode::BackTab, &ids);
        assert_eq!(ui.focus, Pane::Gaps);
        press(&mut ui, KeyCode::Char('p'), &ids);
        assert!(ui.paused);
        press(&mut ui, KeyCode::Char('/'), &ids);
        for c in "claude.tool_* session.end".chars() {
            press(&mut ui, KeyCode::Char(c), &ids);
        }
        // Typing a `q` into the filter does not quit.
        assert_eq!(ui.editing.as_deref(), Some("claude.tool_* session.end"));
        press(&mut ui, KeyCode::Enter, &ids);
        assert_eq!(ui.filter, ["claude.tool_*", "session.end"]);
        assert!(ui.event_filter().is_some());
        press(&mut ui, KeyCode::Down, &ids);
        press(&mut ui, KeyCode::Down, &ids);
        assert_eq!(ui.selected, 1, "the selection stops at the last coder");
        press(&mut ui, KeyCode::Enter, &ids);
        assert_eq!(ui.timeline.as_deref(), Some("s2"));
        press(&mut ui, KeyCode::Esc, &ids);
        assert_eq!(ui.timeline, None);
        press(&mut ui, KeyCode::Char('?'), &ids);
        assert!(ui.help);
        press(&mut ui, KeyCode::Char('x'), &ids);
        assert!(!ui.help, "any key closes the help");
        assert_eq!(press(&mut ui, KeyCode::Char('q'), &ids), Action::Quit);
        assert_eq!(
            ui.key(
                KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
                &ids
            ),
            Action::Quit
        );
    }
}
