//! The events the UI keeps: a window of the most recent ones, bounded by a
//! retention limit (the oldest go first), with the positions of those that
//! match the stream's filter kept up to date as events arrive and leave, so a
//! frame never scans the whole store.

use std::{
    collections::VecDeque,
    rc::Rc,
    time::{Duration, Instant},
};

use super::filter::Filter;
use crate::{
    event::{Body, Event, Task},
    names,
};

/// Drops the strings of an event that its numbers give back (clone and mount
/// flags by name): a fork's flags alone were a quarter of a retained event's
/// memory. Only when they are exactly what [`expand`] makes again, so a
/// recording from another version is shown as it was written.
fn compact(body: &mut Body) {
    fn drop_if(s: &mut String, derived: impl FnOnce() -> String) {
        if *s == derived() {
            *s = String::new();
        }
    }
    match body {
        Body::Fork {
            flags, flags_raw, ..
        } => {
            if let (Some(f), Some(raw)) = (flags.as_ref(), *flags_raw)
                && *f == names::clone_flags(raw, true)
            {
                *flags = None;
            }
        }
        Body::Clone {
            flags, flags_raw, ..
        } => drop_if(flags, || names::clone_flags(*flags_raw, true)),
        Body::Unshare {
            flags, flags_raw, ..
        } => drop_if(flags, || names::clone_flags(*flags_raw, false)),
        Body::Setns {
            nstype, nstype_raw, ..
        } => drop_if(nstype, || names::nstype(*nstype_raw)),
        Body::Mount {
            flags, flags_raw, ..
        } => drop_if(flags, || names::mount_flags(*flags_raw)),
        Body::Umount {
            flags, flags_raw, ..
        } => drop_if(flags, || names::umount_flags(*flags_raw)),
        _ => {}
    }
}

/// The body as it arrived, from a [`compact`]ed one.
pub fn expand(body: &Body) -> Body {
    let mut body = body.clone();
    fn fill(s: &mut String, derived: impl FnOnce() -> String) {
        if s.is_empty() {
            *s = derived();
        }
    }
    match &mut body {
        Body::Fork {
            flags, flags_raw, ..
        } => {
            if flags.is_none()
                && let Some(raw) = *flags_raw
            {
                *flags = Some(names::clone_flags(raw, true));
            }
        }
        Body::Clone {
            flags, flags_raw, ..
        } => fill(flags, || names::clone_flags(*flags_raw, true)),
        Body::Unshare {
            flags, flags_raw, ..
        } => fill(flags, || names::clone_flags(*flags_raw, false)),
        Body::Setns {
            nstype, nstype_raw, ..
        } => fill(nstype, || names::nstype(*nstype_raw)),
        Body::Mount {
            flags, flags_raw, ..
        } => fill(flags, || names::mount_flags(*flags_raw)),
        Body::Umount {
            flags, flags_raw, ..
        } => fill(flags, || names::umount_flags(*flags_raw)),
        _ => {}
    }
    body
}

/// One retained event.
#[derive(Clone, Debug)]
pub struct Stored {
    /// Its number in the whole stream, from 0: stays valid while older
    /// events are dropped.
    pub seq: u64,
    pub ktime_ns: u64,
    pub task: Option<Task>,
    /// Its kind, as an index in [`KINDS`] (a byte rather than a `&str`'s 16).
    kind: u8,
    /// The body as JSON, its derivable strings dropped ([`compact`]): about
    /// half the memory of the body itself, whose size is that of its largest
    /// kind. Only the few events on screen are read back.
    body: Box<[u8]>,
    /// The container it was attributed to when it arrived.
    pub container: Option<Rc<str>>,
}

impl Stored {
    /// `exec`, `mount`...: the event's kind, as in JSON.
    pub fn kind(&self) -> &'static str {
        KINDS.get(self.kind as usize).copied().unwrap_or("?")
    }

    /// The event's body, as it arrived.
    pub fn body(&self) -> Body {
        match serde_json::from_slice(&self.body) {
            Ok(body) => expand(&body),
            // Written by `push` from a Body: cannot fail to read back.
            Err(e) => unreachable!("a stored body reads back: {e}"),
        }
    }

    /// The event, but for its wall-clock time ([`EventStore::full_event`]).
    pub fn event(&self) -> Event {
        Event {
            v: crate::event::SCHEMA_VERSION,
            ktime_ns: self.ktime_ns,
            time: String::new(),
            task: self.task.clone(),
            body: self.body(),
        }
    }
}

/// Every kind [`Body::kind`] names.
const KINDS: &[&str] = &[
    "fork",
    "exec",
    "exit",
    "clone",
    "unshare",
    "setns",
    "mount",
    "umount",
    "pivot_root",
    "chroot",
    "chdir",
    "fchdir",
    "cgroup_mkdir",
    "cgroup_rmdir",
    "cgroup_attach",
    "cgroup_write",
    "lost",
];

fn kind_index(kind: &str) -> u8 {
    KINDS.iter().position(|k| *k == kind).unwrap_or(KINDS.len()) as u8
}

/// Events per chunk of the store.
const CHUNK: usize = 4096;

/// The retained events, oldest first, in fixed-size chunks: one contiguous
/// buffer of a million events would be copied whole each time it grows (a
/// pause of a hundred milliseconds or more), chunks never are.
#[derive(Default)]
struct Chunks {
    chunks: VecDeque<Vec<Option<Stored>>>,
    /// Slots of the first chunk already dropped.
    head: usize,
    len: usize,
}

impl Chunks {
    fn push_back(&mut self, s: Stored) {
        match self.chunks.back_mut() {
            Some(last) if last.len() < CHUNK => last.push(Some(s)),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(Some(s));
                self.chunks.push_back(chunk);
            }
        }
        self.len += 1;
    }

    fn pop_front(&mut self) -> Option<Stored> {
        let first = self.chunks.front_mut()?;
        let s = first.get_mut(self.head)?.take();
        self.head += 1;
        self.len -= 1;
        if self.head == CHUNK || self.len == 0 {
            self.chunks.pop_front();
            self.head = 0;
        }
        s
    }

    fn get(&self, i: usize) -> Option<&Stored> {
        if i >= self.len {
            return None;
        }
        let p = self.head + i;
        self.chunks.get(p / CHUNK)?.get(p % CHUNK)?.as_ref()
    }

    fn front(&self) -> Option<&Stored> {
        self.get(0)
    }

    fn len(&self) -> usize {
        self.len
    }

    /// How many events have a sequence number for which `pred` holds (the
    /// events are in sequence order and `pred` holds for a prefix).
    fn partition_point(&self, pred: impl Fn(&Stored) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.get(mid).is_some_and(&pred) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// Retained events and the filtered view of them.
pub struct EventStore {
    events: Chunks,
    limit: usize,
    next_seq: u64,
    /// Events dropped to stay within `limit`.
    dropped: u64,
    filter: Filter,
    /// Sequence numbers of the retained events that match `filter`, when it is
    /// not empty (with no filter every event is shown and this stays empty).
    matching: VecDeque<u64>,
    /// While a new filter is applied to the events retained before it, the
    /// next one to test: a million events take a few hundred milliseconds to
    /// a few seconds, done in slices so that keys are never held up.
    scan: Option<u64>,
    /// One event's (ktime, wall-clock time): events are stored without their
    /// own time string, which is the largest part of an event's memory after
    /// its body, and dated from this instead.
    anchor: Option<(u64, String)>,
}

impl EventStore {
    pub fn new(limit: usize) -> Self {
        EventStore {
            events: Chunks::default(),
            limit: limit.max(1),
            next_seq: 0,
            dropped: 0,
            filter: Filter::default(),
            matching: VecDeque::new(),
            scan: None,
            anchor: None,
        }
    }

    pub fn push(&mut self, mut event: Event, container: Option<Rc<str>>) {
        if self.anchor.is_none() && !event.time.is_empty() {
            self.anchor = Some((event.ktime_ns, std::mem::take(&mut event.time)));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        // While scanning, the scan reaches new events too.
        if !self.filter.is_empty()
            && self.scan.is_none()
            && self.filter.matches(&event, container.as_deref())
        {
            self.matching.push_back(seq);
        }
        compact(&mut event.body);
        let body = serde_json::to_vec(&event.body)
            .expect("a body always serializes")
            .into_boxed_slice();
        self.events.push_back(Stored {
            seq,
            ktime_ns: event.ktime_ns,
            task: event.task,
            kind: kind_index(event.body.kind()),
            body,
            container,
        });
        while self.events.len() > self.limit {
            let old = self.events.pop_front().expect("over the limit");
            self.dropped += 1;
            if self.matching.front() == Some(&old.seq) {
                self.matching.pop_front();
            }
        }
    }

    /// Events seen, retained or not.
    pub fn total(&self) -> u64 {
        self.next_seq
    }

    pub fn retained(&self) -> usize {
        self.events.len()
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Applies a new filter to every retained event: as many as `budget`
    /// allows now, the rest through [`EventStore::continue_filter`].
    pub fn set_filter(&mut self, filter: Filter, budget: Duration) {
        self.matching.clear();
        self.scan = (!filter.is_empty()).then_some(0);
        self.filter = filter;
        self.continue_filter(budget);
    }

    /// How far applying the filter has come (0 to 1), while it goes on.
    pub fn filtering(&self) -> Option<f64> {
        let next = self.scan?;
        let first = self.events.front().map_or(next, |s| s.seq);
        let done = next.saturating_sub(first) as f64;
        Some(done / (self.next_seq - first).max(1) as f64)
    }

    /// Tests retained events against the filter for about `budget`; true
    /// once every one has been.
    pub fn continue_filter(&mut self, budget: Duration) -> bool {
        let Some(next) = self.scan else {
            return true;
        };
        let started = Instant::now();
        let first = self.events.front().map_or(next, |s| s.seq);
        let mut i = usize::try_from(next.max(first) - first).unwrap_or(usize::MAX);
        while let Some(s) = self.events.get(i) {
            let hit = self.filter.matches_parts(
                s.kind(),
                s.task.as_ref(),
                s.container.as_deref(),
                || crate::output::describe(&s.body()),
            );
            if hit {
                self.matching.push_back(s.seq);
            }
            i += 1;
            if i % 256 == 0 && started.elapsed() >= budget {
                self.scan = self.events.get(i).map(|s| s.seq);
                return self.scan.is_none();
            }
        }
        self.scan = None;
        true
    }

    pub fn get(&self, seq: u64) -> Option<&Stored> {
        let first = self.events.front()?.seq;
        let i = seq.checked_sub(first)?;
        self.events.get(usize::try_from(i).ok()?)
    }

    /// How many events the filtered view has.
    pub fn view_len(&self) -> usize {
        if self.filter.is_empty() {
            self.events.len()
        } else {
            self.matching.len()
        }
    }

    /// The `i`-th event of the filtered view.
    pub fn view_at(&self, i: usize) -> Option<&Stored> {
        if self.filter.is_empty() {
            self.events.get(i)
        } else {
            self.get(*self.matching.get(i)?)
        }
    }

    /// Position in the filtered view of the last event at or before `seq`.
    pub fn view_position(&self, seq: u64) -> Option<usize> {
        let n = if self.filter.is_empty() {
            self.events.partition_point(|s| s.seq <= seq)
        } else {
            self.matching.partition_point(|&s| s <= seq)
        };
        n.checked_sub(1)
    }

    /// The wall-clock time of a ktime, RFC 3339, when one event carried its time.
    /// `None` too when that time cannot date this one (it would fall before
    /// 1970 or after 9999): the view then shows seconds instead.
    pub fn wall_time(&self, ktime: u64) -> Option<std::time::SystemTime> {
        let (at, time) = self.anchor.as_ref()?;
        crate::timeline::wall_clock(*at, time, ktime)
    }

    /// `HH:MM:SS.mmm` (UTC) of a ktime, or seconds since the first event.
    pub fn clock(&self, ktime: u64) -> String {
        match self.wall_time(ktime) {
            Some(t) => {
                let s = humantime::format_rfc3339_millis(t).to_string();
                s.split('T')
                    .nth(1)
                    .map(|t| t.trim_end_matches('Z').to_string())
                    .unwrap_or(s)
            }
            None => format!("{:.3}", ktime as f64 / 1e9),
        }
    }

    /// The event with its wall-clock time put back, for showing all its fields.
    pub fn full_event(&self, s: &Stored) -> Event {
        let mut e = s.event();
        if let Some(t) = self.wall_time(e.ktime_ns) {
            e.time = humantime::format_rfc3339_nanos(t).to_string();
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Body;

    fn lost(n: u64) -> Event {
        Event {
            v: 1,
            ktime_ns: n,
            time: "2026-11-29T14:06:23.000000000Z".into(),
            task: None,
            body: Body::Lost { count: n, total: n },
        }
    }

    #[test]
    fn tui_store_drops_oldest_first_and_keeps_the_filter_in_step() {
        let mut s = EventStore::new(3);
        s.set_filter(Filter::parse("kind:lost"), Duration::MAX);
        for n in 0..5 {
            s.push(lost(n), None);
        }
        assert_eq!(s.total(), 5);
        assert_eq!(s.retained(), 3);
        assert_eq!(s.dropped(), 2);
        assert_eq!(s.view_len(), 3);
        assert_eq!(s.view_at(0).unwrap().seq, 2);
        assert!(s.get(1).is_none());
        assert_eq!(s.get(4).unwrap().ktime_ns, 4);
        assert_eq!(s.view_position(3), Some(1));
        s.set_filter(Filter::parse("kind:exec"), Duration::MAX);
        assert_eq!(s.view_len(), 0);
        s.set_filter(Filter::default(), Duration::MAX);
        assert_eq!(s.view_len(), 3);
    }

    #[test]
    fn tui_store_applies_a_filter_in_slices_without_losing_new_events() {
        let mut s = EventStore::new(10_000);
        for n in 0..5000 {
            s.push(lost(n), None);
        }
        // No time at all: one slice of 256 events per call.
        s.set_filter(Filter::parse("kind:lost"), Duration::ZERO);
        assert!(s.filtering().is_some());
        assert_eq!(s.view_len(), 256);
        s.push(lost(5000), None);
        let mut calls = 0;
        while !s.continue_filter(Duration::ZERO) {
            calls += 1;
        }
        assert!(calls > 10, "{calls}");
        assert_eq!(s.filtering(), None);
        assert_eq!(s.view_len(), 5001, "every event once, in order");
        assert_eq!(s.view_at(5000).unwrap().seq, 5000);
        s.push(lost(5001), None);
        assert_eq!(s.view_len(), 5002);
    }

    #[test]
    fn tui_store_gives_back_the_flags_it_drops() {
        let body = Body::Fork {
            child_tgid: 2,
            child_tid: 2,
            child_start_ns: 3,
            thread: false,
            flags: Some(names::clone_flags(0x3d0f00, true)),
            flags_raw: Some(0x3d0f00),
        };
        let mut small = body.clone();
        compact(&mut small);
        assert!(matches!(small, Body::Fork { flags: None, .. }));
        assert_eq!(expand(&small), body);
        // A string that is not what this version would write stays.
        let mut other = Body::Unshare {
            flags: "CLONE_NEWFUTURE".into(),
            flags_raw: 1 << 40,
            result: crate::event::SyscallResult {
                ret: 0,
                errno: None,
                duration_ns: 1,
            },
        };
        let before = other.clone();
        compact(&mut other);
        assert_eq!(other, before);
    }

    #[test]
    fn tui_store_dates_events_from_one_anchor() {
        let mut s = EventStore::new(10);
        s.push(lost(1_000_000_000), None);
        s.push(lost(2_500_000_000), None);
        assert_eq!(s.get(1).unwrap().kind(), "lost");
        assert_eq!(s.clock(2_500_000_000), "14:06:24.500");
        let full = s.full_event(s.get(1).unwrap());
        assert_eq!(full.time, "2026-11-29T14:06:24.500000000Z");
    }

    #[test]
    fn tui_store_shows_seconds_where_the_anchor_cannot_date_an_event() {
        // Dated 1 s after the epoch, then an event 4 s earlier, and one
        // from after the year 9999: neither panics, both show seconds.
        let mut s = EventStore::new(10);
        let mut first = lost(5_000_000_000);
        first.time = "1970-01-01T00:00:01Z".into();
        s.push(first, None);
        s.push(lost(1_000_000_000), None);
        assert_eq!(s.clock(1_000_000_000), "1.000");
        assert_eq!(s.clock(5_000_000_000), "00:00:01.000");
        let full = s.full_event(s.get(1).unwrap());
        assert_eq!(full.time, "");
        let mut late = EventStore::new(10);
        let mut first = lost(0);
        first.time = "9999-12-31T23:59:59Z".into();
        late.push(first, None);
        assert_eq!(late.clock(2_000_000_000), "2.000");
    }
}
