//! The time cursor of a replay: how far into a recording the views are, and
//! playing it back at the pace it was recorded.

use std::time::Instant;

use crate::event::Event;

pub struct Replay {
    events: Vec<Event>,
    /// Events applied to the views: the cursor stands after event `cursor - 1`.
    cursor: usize,
    /// Playing since this instant, from this recording time.
    playing: Option<(Instant, u64)>,
}

impl Replay {
    pub fn new(events: Vec<Event>) -> Self {
        Replay {
            events,
            cursor: 0,
            playing: None,
        }
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn cursor(&self) -> usize {
        self.cursor
    }

    pub fn is_playing(&self) -> bool {
        self.playing.is_some()
    }

    /// The recording's first time, for showing the cursor as an offset.
    pub fn start_time(&self) -> u64 {
        self.events.first().map_or(0, |e| e.ktime_ns)
    }

    /// The time of the event under the cursor.
    pub fn cursor_time(&self) -> u64 {
        self.cursor
            .checked_sub(1)
            .and_then(|i| self.events.get(i))
            .or(self.events.first())
            .map_or(0, |e| e.ktime_ns)
    }

    pub fn rewind(&mut self) {
        self.cursor = 0;
    }

    /// The events between the cursor and `n`, which becomes the cursor.
    pub fn advance_to(&mut self, n: usize) -> Vec<Event> {
        let n = n.min(self.events.len()).max(self.cursor);
        let out = self.events[self.cursor..n].to_vec();
        self.cursor = n;
        out
    }

    /// Where the cursor lands `ns` later (earlier when negative): at least one
    /// event away, so that a quiet stretch never stalls the key.
    pub fn cursor_after_jump(&self, ns: i64) -> usize {
        let target = self.cursor_time().saturating_add_signed(ns);
        let at = self.events.partition_point(|e| e.ktime_ns <= target);
        if ns >= 0 {
            at.max(self.cursor + 1).min(self.events.len())
        } else {
            at.min(self.cursor.saturating_sub(1)).max(1)
        }
    }

    pub fn toggle_play(&mut self, _now_ns: u64) {
        self.playing = match self.playing {
            Some(_) => None,
            None => Some((Instant::now(), self.cursor_time())),
        };
    }

    pub fn stop(&mut self) {
        self.playing = None;
    }

    /// While playing: the cursor for the recording time matching `now`, when
    /// it moved.
    pub fn playing_target(&self, now: Instant) -> Option<usize> {
        let (since, from) = self.playing?;
        let target = from.saturating_add(now.duration_since(since).as_nanos() as u64);
        let at = self.events.partition_point(|e| e.ktime_ns <= target);
        (at > self.cursor).then_some(at)
    }
}
