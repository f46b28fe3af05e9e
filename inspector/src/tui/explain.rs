//! The why view's state: the container it explains, where it is scrolled,
//! and what it says, worked out from the app's scheduler records
//! ([`Sched`]) lazily: when the view opens, when records or events came in
//! since, and while time moves by itself (live, or a replay playing) at most
//! every [`EVERY`]. A live session with `--sched` takes in thousands of
//! switches a second, and a path is walked through all of them: not once per
//! event, nor per frame.

use std::{
    cell::Cell,
    time::{Duration, Instant},
};

use super::{app::Selected, containers::RowState};
use crate::timeline::{
    ContainerTimeline, TIMELINE_SCHEMA_VERSION,
    why::{Sched, Why},
};

/// How often an open why view is worked out again while records arrive.
pub const EVERY: Duration = Duration::from_millis(250);

/// What the why view says of its container.
#[derive(Clone, Debug, PartialEq)]
pub enum Explained {
    Why(Box<Why>),
    /// There was no container to explain when the view opened.
    NoContainer,
    /// Its container is no longer listed.
    Gone,
    /// Running before inspector started: its start was not seen.
    Before,
    /// No switch or wake-up of its processes was seen (no `--sched`).
    NoRecords,
    /// Its processes' records were seen, and forgotten since: older than
    /// the records kept (`--retain`).
    Forgotten,
    /// Neither its entrypoint's exec nor a failure yet: nothing to explain.
    NotStarted,
}

/// The why view (`w`).
#[derive(Debug, Default)]
pub struct WhyView {
    /// The container selected when it opened: it stays on it, even as the
    /// selection follows newer containers.
    pub id: Option<String>,
    /// `None` until worked out.
    pub shown: Option<Explained>,
    /// Records before this offset from the container's start were
    /// forgotten (`--retain`): the path is `unknown` there.
    pub forgotten_ms: Option<f64>,
    /// The line the user scrolled to; drawing keeps it on screen.
    pub scroll: usize,
    /// The first line shown and the lines the last frame had room for.
    pub top: Cell<usize>,
    pub height: Cell<usize>,
    /// The app's count of events taken in when it was worked out, and when.
    fed: u64,
    at: Option<Instant>,
}

impl WhyView {
    pub fn open(id: Option<String>) -> Self {
        WhyView {
            id,
            ..WhyView::default()
        }
    }

    /// Whether to work it out again: never done, or events came in since
    /// and, while time moves by itself, [`EVERY`] has passed.
    pub fn stale(&self, fed: u64, moving: bool, now: Instant) -> bool {
        match (&self.shown, self.at) {
            (Some(_), Some(at)) => {
                fed != self.fed && (!moving || now.saturating_duration_since(at) >= EVERY)
            }
            _ => true,
        }
    }

    pub fn set(&mut self, shown: Explained, forgotten_ms: Option<f64>, fed: u64, now: Instant) {
        self.shown = Some(shown);
        self.forgotten_ms = forgotten_ms;
        self.fed = fed;
        self.at = Some(now);
    }
}

/// The selected container as the timeline [`Sched::explain_ending`] reads:
/// its phases, chain and failure, up to its last event (`last_ns`), not now.
fn timeline_of(s: Selected, last_ns: u64) -> ContainerTimeline {
    ContainerTimeline {
        v: TIMELINE_SCHEMA_VERSION,
        id: s.id,
        engine: s.engine,
        runtime: s.runtime,
        complete: s.state == RowState::Gone,
        start_ns: s.start_ns,
        end_ns: last_ns,
        duration_ns: last_ns.saturating_sub(s.start_ns),
        start_time: String::new(),
        exit_code: s.exit_code,
        signal: s.signal,
        phases: s.phases,
        chain: s.chain,
        steps: Vec::new(),
        events: 0,
        already_running: s.state == RowState::Before,
        failure: s.failure,
        why: None,
    }
}

/// What the why view says of `s`, whose last event was at `last_ns`, its
/// last step (tid, time) `last_step`; and since when, from its start, the
/// records are missing if some were forgotten.
pub fn explain(
    sched: &Sched,
    s: Selected,
    last_ns: u64,
    last_step: Option<(u32, u64)>,
) -> (Explained, Option<f64>) {
    if s.state == RowState::Before {
        return (Explained::Before, None);
    }
    let t = timeline_of(s, last_ns);
    if !sched.covers(&t) {
        let forgotten = sched.kept_from().is_some_and(|kept| kept > t.start_ns);
        let shown = if forgotten {
            Explained::Forgotten
        } else {
            Explained::NoRecords
        };
        return (shown, None);
    }
    let forgotten_ms = sched
        .kept_from()
        .filter(|&kept| kept > t.start_ns)
        .map(|kept| (kept - t.start_ns) as f64 / 1e6);
    let shown = match sched.explain_ending(&t, last_step) {
        Some(why) => Explained::Why(Box::new(why)),
        None => Explained::NotStarted,
    };
    (shown, forgotten_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tui_why_is_worked_out_again_only_when_events_came_in() {
        let now = Instant::now();
        let mut v = WhyView::open(Some("c".into()));
        assert!(v.stale(0, true, now), "never worked out");
        v.set(Explained::NoRecords, None, 5, now);
        assert!(!v.stale(5, false, now), "nothing new");
        // A replay's step: at once.
        assert!(v.stale(6, false, now));
        // Live: at most every EVERY.
        assert!(!v.stale(6, true, now + EVERY / 2));
        assert!(v.stale(6, true, now + EVERY));
    }
}
