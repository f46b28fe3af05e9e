//! Keys: what each one does, in the words htop, k9s and less users expect, and
//! the help screen that lists them. Mapping only: the app decides what an
//! action means in the pane that has the focus.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Quit,
    Help,
    NextPane,
    PrevPane,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    /// Open the selected event's fields (stream), or show only the selected
    /// container's events (container list).
    Open,
    /// Close what is open, or clear the filter.
    Back,
    Search,
    Filter,
    /// Live: freeze the stream view. Replay: play or stop.
    Pause,
    /// Replay: move the time cursor.
    StepForward,
    StepBack,
    JumpForward,
    JumpBack,
    ToStart,
    ToEnd,
    /// Open or close the why view: where the selected container's time went.
    Why,
}

/// The action of a key while no prompt is open.
pub fn action(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            KeyCode::Char('c') => Some(Action::Quit),
            KeyCode::Char('f') => Some(Action::PageDown),
            KeyCode::Char('b') => Some(Action::PageUp),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('?') | KeyCode::F(1) => Action::Help,
        KeyCode::Tab => Action::NextPane,
        KeyCode::BackTab => Action::PrevPane,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Home | KeyCode::Char('g') => Action::Top,
        KeyCode::End | KeyCode::Char('G') => Action::Bottom,
        KeyCode::Enter => Action::Open,
        KeyCode::Esc => Action::Back,
        KeyCode::Char('/') => Action::Search,
        KeyCode::Char('f') => Action::Filter,
        KeyCode::Char(' ') => Action::Pause,
        KeyCode::Char(']') | KeyCode::Right => Action::StepForward,
        KeyCode::Char('[') | KeyCode::Left => Action::StepBack,
        KeyCode::Char('}') => Action::JumpForward,
        KeyCode::Char('{') => Action::JumpBack,
        KeyCode::Char('<') => Action::ToStart,
        KeyCode::Char('>') => Action::ToEnd,
        KeyCode::Char('w') => Action::Why,
        _ => return None,
    })
}

/// The help screen: (keys, what they do).
pub const HELP: &[(&str, &str)] = &[
    ("q  Ctrl-C", "quit"),
    ("?", "show or hide this help"),
    ("Tab  Shift-Tab", "next / previous pane"),
    ("↑ ↓  k j", "move in the pane (select, scroll)"),
    ("PgUp PgDn  ^B ^F", "a page up / down"),
    ("g Home  G End", "first / last (G: follow new events)"),
    (
        "Enter",
        "event: every field; container: only it, its events",
    ),
    ("Esc", "close; clear the stream's filter"),
    ("/", "search the stream (free text)"),
    ("f", "filter: kind:exec,exit ctr:ID pid:N words"),
    (
        "space",
        "live: pause / resume the stream; replay: play / stop",
    ),
    ("] [  → ←", "replay: next / previous event"),
    ("} {", "replay: 10 ms later / earlier"),
    ("> <", "replay: end / start of the recording"),
    (
        "w",
        "why: where the selected container's time went (--sched)",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tui_keys_follow_htop_and_less_habits() {
        let k = |c| KeyEvent::new(c, KeyModifiers::NONE);
        assert_eq!(action(k(KeyCode::Char('j'))), Some(Action::Down));
        assert_eq!(action(k(KeyCode::Up)), Some(Action::Up));
        assert_eq!(action(k(KeyCode::Char('q'))), Some(Action::Quit));
        assert_eq!(action(k(KeyCode::Char(' '))), Some(Action::Pause));
        assert_eq!(action(k(KeyCode::Tab)), Some(Action::NextPane));
        assert_eq!(
            action(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(action(k(KeyCode::Char('w'))), Some(Action::Why));
        assert_eq!(action(k(KeyCode::Char('z'))), None);
    }
}
