//! The TUI's state: the timeline builder, the scheduler's records and the
//! retained events (the model), and what the user is looking at (focus,
//! selections, scroll, popups). Keys become changes here; drawing reads it
//! and changes nothing.

use std::{
    cell::Cell,
    collections::{HashMap, HashSet, VecDeque},
    rc::Rc,
    time::Instant,
};

use super::{
    containers::{ContainerRow, RowState, describe_container},
    explain::{self, Explained, WhyView},
    filter::Filter,
    keys::Action,
    replay::Replay,
    store::EventStore,
};
use crate::{
    event::{Body, Event},
    timeline::{Builder, ChainLink, ContainerTimeline, Phase, PhaseSpan, Role, why::Sched},
};

/// How long applying a filter to the retained events may hold the loop at a
/// time: half a frame, so a key waits no longer than a frame.
pub const FILTER_SLICE: std::time::Duration = std::time::Duration::from_millis(8);

/// Finished containers kept listed: the events of a busy machine could
/// otherwise grow the list without bound.
pub const FINISHED_KEPT: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    Containers,
    Waterfall,
    Tree,
    Stream,
}

impl Pane {
    const ORDER: [Pane; 4] = [Pane::Containers, Pane::Waterfall, Pane::Tree, Pane::Stream];

    fn next(self, by: isize) -> Pane {
        let i = Self::ORDER.iter().position(|&p| p == self).unwrap_or(0) as isize;
        Self::ORDER[(i + by).rem_euclid(Self::ORDER.len() as isize) as usize]
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Popup {
    Help,
    /// Every field of the event with this sequence number.
    Detail(u64),
    /// Where a container's time went ([`App::why`]).
    Why,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptKind {
    /// Free text.
    Search,
    /// The whole filter, `kind:`, `ctr:`, `pid:` and words.
    Filter,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    pub kind: PromptKind,
    pub text: String,
}

/// Where the event stream view is.
#[derive(Debug, Default)]
pub struct StreamView {
    /// `None`: following new events. Otherwise the view stays where it is,
    /// its last line this event (paused, or scrolled back).
    pub anchor: Option<u64>,
    /// The highlighted event, once the user moved in the stream.
    pub selected: Option<u64>,
    /// The first line shown, as the last frame drew it.
    pub top: Cell<u64>,
    /// Lines the last frame had room for: a page.
    pub height: Cell<usize>,
}

/// The selected container, whole: its phases and chain.
#[derive(Clone, Debug, PartialEq)]
pub struct Selected {
    pub id: String,
    pub engine: Option<crate::timeline::Engine>,
    pub runtime: Option<String>,
    pub start_ns: u64,
    /// The end of its time axis: its last event, or now while it runs.
    pub end_ns: u64,
    pub phases: Vec<PhaseSpan>,
    pub chain: Vec<ChainLink>,
    pub phase: Option<Phase>,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    /// Why it failed, when it did: shown first.
    pub failure: Option<crate::timeline::Failure>,
    pub state: RowState,
    /// dockerd's and containerd's pids, which serve every container.
    pub daemons: Vec<(Role, u32)>,
}

/// Everything the screen shows.
pub struct App {
    builder: Builder,
    /// Every event, switches and wake-ups included, for the why view.
    sched: Sched,
    /// Events taken in, switches and wake-ups included: the why view is
    /// worked out again when it changed.
    fed: u64,
    /// (records, time) every so many scheduler records: where to forget
    /// from once there are more than the retention limit.
    sched_marks: VecDeque<(u64, u64)>,
    /// Each container's last step (tid, time): the teardown's path ends
    /// there, and the store keeps the events, not the builder.
    last_steps: HashMap<Rc<str>, (u32, u64)>,
    pub store: EventStore,
    finished: VecDeque<ContainerTimeline>,
    /// What each container runs (image and command), once known.
    labels: HashMap<String, String>,
    /// Rows of the container list, as of the last [`App::refresh`].
    pub rows: Vec<ContainerRow>,
    pub selected: Option<Selected>,
    /// The time the view is at (CLOCK_MONOTONIC ns): now when live, the time
    /// cursor in a replay.
    pub now_ns: u64,
    /// Events the kernel could not report (ring buffer full).
    pub lost: u64,
    /// Events the probe's reader dropped because the UI fell behind.
    pub queue_dropped: u64,
    /// Probes attached (live only).
    pub probes: Option<usize>,
    /// Events per second, over the last second or so.
    pub rate: f64,
    rate_sample: Option<(Instant, u64)>,
    pub replay: Option<Replay>,
    /// Something went wrong with the event source; shown on the status line.
    pub error: Option<String>,

    pub focus: Pane,
    /// Which of the lifecycle and the process tree a narrow screen shows: the
    /// last of the two that had the focus.
    pub middle: Pane,
    /// The container the user picked; `None` follows the newest one.
    pub chosen: Option<String>,
    pub stream: StreamView,
    pub waterfall_scroll: u16,
    pub tree_scroll: u16,
    pub popup: Option<Popup>,
    pub detail_scroll: u16,
    pub why: WhyView,
    pub prompt: Option<Prompt>,
    pub quit: bool,
}

impl App {
    /// An app that keeps at most `retention` events.
    pub fn new(retention: usize) -> Self {
        App {
            builder: Builder::new(),
            sched: Sched::default(),
            fed: 0,
            sched_marks: VecDeque::new(),
            last_steps: HashMap::new(),
            store: EventStore::new(retention),
            finished: VecDeque::new(),
            labels: HashMap::new(),
            rows: Vec::new(),
            selected: None,
            now_ns: 0,
            lost: 0,
            queue_dropped: 0,
            probes: None,
            rate: 0.0,
            rate_sample: None,
            replay: None,
            error: None,
            focus: Pane::Containers,
            middle: Pane::Waterfall,
            chosen: None,
            stream: StreamView::default(),
            waterfall_scroll: 0,
            tree_scroll: 0,
            popup: None,
            detail_scroll: 0,
            why: WhyView::default(),
            prompt: None,
            quit: false,
        }
    }

    /// A replay of `events`, its time cursor at the end.
    pub fn replay(events: Vec<Event>, retention: usize) -> Self {
        let mut app = App::new(retention);
        let n = events.len();
        app.replay = Some(Replay::new(events));
        app.seek(n);
        app
    }

    /// The builder, for seeding containers already running.
    pub fn builder_mut(&mut self) -> &mut Builder {
        &mut self.builder
    }

    pub fn is_paused(&self) -> bool {
        self.stream.anchor.is_some()
    }

    /// Scheduler records seen (`--sched`).
    pub fn sched_records(&self) -> u64 {
        self.sched.records
    }

    /// Takes in one event: the scheduler's view, the timelines, then the
    /// stream.
    pub fn ingest(&mut self, event: Event) {
        if let Body::Lost { total, .. } = event.body {
            self.lost = self.lost.max(total);
        }
        // Every event: a path needs each process's making and end, from
        // their headers, as much as the switches.
        self.sched.push(&event);
        self.fed += 1;
        // A recording made with `--sched` has a switch or two per event the
        // stream shows: the events pane is no place for them.
        if matches!(
            event.body,
            Body::SchedSwitch { .. } | Body::SchedWakeup { .. }
        ) {
            self.bound_sched(event.ktime_ns);
            return;
        }
        // An exit makes the builder forget its process: ask first.
        let before = self.builder.container_of(&event);
        self.builder.push(event.clone());
        let container = self.builder.container_of(&event).or(before);
        // As the builder's steps: a thread's creation is not one.
        if let (Some(id), Some(task)) = (&container, &event.task)
            && !matches!(event.body, Body::Fork { thread: true, .. })
        {
            self.last_steps
                .insert(id.clone(), (task.tid, event.ktime_ns));
        }
        self.store.push(event, container);
        self.collect_finished();
    }

    /// Keeps about as many scheduler records as the stream keeps events
    /// (`--retain`): a live session has thousands a second, and each
    /// thread's intervals would otherwise pile up for as long as it runs.
    /// Forgotten a slice at a time, so that the cost is spread thin.
    fn bound_sched(&mut self, t: u64) {
        let records = self.sched.records;
        let limit = self.store.limit() as u64;
        let every = (limit / 8).max(1024);
        if records.is_multiple_of(every) {
            self.sched_marks.push_back((records, t));
        }
        while let Some(&(at, when)) = self.sched_marks.front() {
            if records - at <= limit {
                break;
            }
            self.sched_marks.pop_front();
            self.sched.forget_before(when);
        }
    }

    /// Lets time pass (live: now; replay: the cursor's time), so that ended
    /// containers are handed out even when no event arrives.
    pub fn tick(&mut self, now_ns: u64) {
        self.now_ns = now_ns;
        self.builder.tick(now_ns);
        self.collect_finished();
        // The store has the events: the builder need not keep them too.
        self.builder.forget_steps();
    }

    fn collect_finished(&mut self) {
        for mut t in self.builder.take_finished() {
            // The store has the events; the list needs phases and chain only.
            t.steps = Vec::new();
            if let Some(label) = describe_container(&t.chain) {
                self.labels.insert(t.id.clone(), label);
            }
            self.finished.push_back(t);
            if self.finished.len() > FINISHED_KEPT
                && let Some(old) = self.finished.pop_front()
            {
                self.labels.remove(&old.id);
            }
        }
    }

    /// Events per second, from the total seen at `now` and a second or more ago.
    pub fn sample_rate(&mut self, now: Instant) {
        let total = self.store.total();
        match self.rate_sample {
            Some((at, seen)) => {
                let dt = now.duration_since(at).as_secs_f64();
                if dt >= 1.0 {
                    self.rate = (total - seen) as f64 / dt;
                    self.rate_sample = Some((now, total));
                }
            }
            None => self.rate_sample = Some((now, total)),
        }
    }

    /// Rebuilds the container list and the selected container from the model:
    /// once per frame.
    pub fn refresh(&mut self) {
        let mut rows: Vec<ContainerRow> = self
            .finished
            .iter()
            .map(|t| ContainerRow {
                id: t.id.clone(),
                engine: t.engine,
                what: self.labels.get(&t.id).cloned().unwrap_or_default(),
                phase: t.phases.last().map(|p| p.phase),
                start_ns: t.start_ns,
                last_ns: t.end_ns,
                exit_code: t.exit_code,
                signal: t.signal.clone(),
                failed: t.failure.is_some(),
                state: RowState::Gone,
            })
            .collect();
        for s in self.builder.live_summaries() {
            let what = match self.labels.get(&s.id) {
                Some(l) => l.clone(),
                None => {
                    let label = self
                        .builder
                        .live_container(&s.id)
                        .and_then(|c| describe_container(&c.chain));
                    // Kept once the entrypoint is known: nothing changes it later.
                    if let (Some(l), true) = (&label, s.phase >= Some(Phase::Running)) {
                        self.labels.insert(s.id.clone(), l.clone());
                    }
                    label.unwrap_or_default()
                }
            };
            rows.push(ContainerRow {
                id: s.id,
                engine: s.engine,
                what,
                phase: s.phase,
                start_ns: s.start_ns,
                last_ns: s.last_ns,
                exit_code: s.exit_code,
                signal: s.signal,
                failed: s.failed,
                state: if s.ending {
                    RowState::Ending
                } else if s.already_running {
                    RowState::Before
                } else {
                    RowState::Live
                },
            });
        }
        rows.sort_by(|a, b| a.start_ns.cmp(&b.start_ns).then(a.id.cmp(&b.id)));
        // Last steps of containers no longer listed (or never: an id in a
        // cgroup's path) go.
        if self.last_steps.len() > rows.len() {
            let listed: HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
            self.last_steps.retain(|id, _| listed.contains(&**id));
        }
        // A filter on a container narrows the list too: on a busy machine
        // the one being looked at stays on screen.
        if let Some(prefix) = &self.store.filter().container {
            rows.retain(|r| r.id.starts_with(prefix.as_str()));
        }
        self.rows = rows;
        if let Some(id) = &self.chosen
            && !self.rows.iter().any(|r| &r.id == id)
        {
            self.chosen = None;
        }
        self.selected = self.selected_row().and_then(|row| self.whole(row));
        self.update_why(Instant::now());
    }

    /// Works the open why view out again when it is stale ([`WhyView::stale`]).
    fn update_why(&mut self, now: Instant) {
        if self.popup != Some(Popup::Why) {
            return;
        }
        // Live, or a replay playing: time moves by itself.
        let moving = self.replay.as_ref().is_none_or(|r| r.is_playing());
        if !self.why.stale(self.fed, moving, now) {
            return;
        }
        let row = self
            .why
            .id
            .as_ref()
            .map(|id| self.rows.iter().find(|r| &r.id == id));
        let (shown, forgotten) = match row {
            None => (Explained::NoContainer, None),
            Some(None) => (Explained::Gone, None),
            Some(Some(row)) => match self.whole(row) {
                Some(s) => {
                    let last_step = self.last_steps.get(row.id.as_str()).copied();
                    explain::explain(&self.sched, s, row.last_ns, last_step)
                }
                None => (Explained::Gone, None),
            },
        };
        self.why.set(shown, forgotten, self.fed, now);
    }

    /// The row of the selected container: the chosen one, or the newest.
    pub fn selected_row(&self) -> Option<&ContainerRow> {
        match &self.chosen {
            Some(id) => self.rows.iter().find(|r| &r.id == id),
            None => self.rows.last(),
        }
    }

    fn whole(&self, row: &ContainerRow) -> Option<Selected> {
        let daemons = self.builder.daemon_pids();
        if row.state == RowState::Gone {
            let t = self.finished.iter().find(|t| t.id == row.id)?;
            return Some(Selected {
                id: t.id.clone(),
                engine: t.engine,
                runtime: t.runtime.clone(),
                start_ns: t.start_ns,
                end_ns: t.end_ns,
                phases: t.phases.clone(),
                chain: t.chain.clone(),
                phase: row.phase,
                exit_code: t.exit_code,
                signal: t.signal.clone(),
                failure: t.failure.clone(),
                state: row.state,
                daemons,
            });
        }
        let c = self.builder.live_container(&row.id)?;
        // While it runs, its last phase lasts until now.
        let end = if row.state == RowState::Ending {
            c.last_ns
        } else {
            c.last_ns.max(self.now_ns)
        };
        let mut phases = c.phases;
        if let Some(last) = phases.last_mut() {
            last.end_ns = last.end_ns.max(end);
            last.duration_ns = last.end_ns - last.start_ns;
        }
        Some(Selected {
            id: c.id,
            engine: c.engine,
            runtime: c.runtime,
            start_ns: c.start_ns,
            end_ns: end,
            phases,
            chain: c.chain,
            phase: c.phase,
            exit_code: c.exit_code,
            signal: c.signal,
            failure: c.failure,
            state: row.state,
            daemons,
        })
    }

    /// What a key does now: a prompt takes text first, a popup closes.
    pub fn on_key(&mut self, key: crossterm::event::KeyEvent) {
        use crossterm::event::{KeyCode, KeyEventKind, KeyModifiers};
        if key.kind == KeyEventKind::Release {
            return;
        }
        if let Some(prompt) = &mut self.prompt {
            match key.code {
                KeyCode::Enter => {
                    let prompt = self.prompt.take().expect("open");
                    let filter = match prompt.kind {
                        PromptKind::Filter => Filter::parse(&prompt.text),
                        PromptKind::Search => Filter {
                            text: Filter::parse(&prompt.text).text,
                            ..self.store.filter().clone()
                        },
                    };
                    self.set_filter(filter);
                }
                KeyCode::Esc => self.prompt = None,
                KeyCode::Backspace => {
                    prompt.text.pop();
                }
                KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                    self.prompt = None
                }
                KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                    prompt.text.clear()
                }
                KeyCode::Char(c) => prompt.text.push(c),
                _ => {}
            }
            return;
        }
        if let Some(action) = super::keys::action(key) {
            self.act(action);
        }
    }

    pub fn act(&mut self, action: Action) {
        if let Some(popup) = &self.popup {
            match (popup, action) {
                (_, Action::Quit) => self.quit = true,
                (Popup::Detail(_), Action::Down) => {
                    self.detail_scroll = self.detail_scroll.saturating_add(1)
                }
                (Popup::Detail(_), Action::Up) => {
                    self.detail_scroll = self.detail_scroll.saturating_sub(1)
                }
                (Popup::Why, Action::Up | Action::Down | Action::PageUp | Action::PageDown) => {
                    let page = self.why.height.get().max(1) as isize;
                    let by = match action {
                        Action::Up => -1,
                        Action::Down => 1,
                        Action::PageUp => -page,
                        _ => page,
                    };
                    // From where the last frame showed it.
                    self.why.scroll = self.why.top.get().saturating_add_signed(by);
                }
                (Popup::Why, Action::Top) => self.why.scroll = 0,
                (Popup::Why, Action::Bottom) => self.why.scroll = usize::MAX,
                (Popup::Why, Action::Why) => self.popup = None,
                (Popup::Help, Action::Help) | (_, Action::Back | Action::Open | Action::Help) => {
                    self.popup = None
                }
                _ => {}
            }
            return;
        }
        match action {
            Action::Quit => self.quit = true,
            Action::Help => self.popup = Some(Popup::Help),
            Action::Why => {
                self.why = WhyView::open(self.selected_row().map(|r| r.id.clone()));
                self.popup = Some(Popup::Why);
                self.update_why(Instant::now());
            }
            Action::NextPane | Action::PrevPane => {
                self.focus = self
                    .focus
                    .next(if action == Action::NextPane { 1 } else { -1 });
                if matches!(self.focus, Pane::Waterfall | Pane::Tree) {
                    self.middle = self.focus;
                }
            }
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(self.page() as isize)),
            Action::PageDown => self.move_by(self.page() as isize),
            Action::Top => self.move_by(isize::MIN / 2),
            Action::Bottom => match self.focus {
                Pane::Stream => {
                    self.stream.anchor = None;
                    self.stream.selected = None;
                }
                Pane::Containers => self.chosen = None,
                _ => self.move_by(isize::MAX / 2),
            },
            Action::Open => match self.focus {
                Pane::Stream => {
                    let seq = self.stream.selected.or_else(|| {
                        let n = self.store.view_len();
                        n.checked_sub(1)
                            .and_then(|i| self.store.view_at(i))
                            .map(|s| s.seq)
                    });
                    if let Some(seq) = seq {
                        self.popup = Some(Popup::Detail(seq));
                        self.detail_scroll = 0;
                    }
                }
                Pane::Containers => {
                    if let Some(row) = self.selected_row() {
                        let filter = Filter {
                            container: Some(row.id.clone()),
                            ..self.store.filter().clone()
                        };
                        self.set_filter(filter);
                        self.focus = Pane::Stream;
                    }
                }
                _ => {}
            },
            Action::Back => self.set_filter(Filter::default()),
            Action::Search => {
                self.prompt = Some(Prompt {
                    kind: PromptKind::Search,
                    text: self.store.filter().text.join(" "),
                })
            }
            Action::Filter => {
                self.prompt = Some(Prompt {
                    kind: PromptKind::Filter,
                    text: self.store.filter().to_string(),
                })
            }
            Action::Pause => match &mut self.replay {
                Some(r) => r.toggle_play(self.now_ns),
                None => {
                    if self.stream.anchor.take().is_none() {
                        self.stream.anchor = Some(self.store.total().saturating_sub(1));
                    } else {
                        self.stream.selected = None;
                    }
                }
            },
            Action::StepForward => self.step(1),
            Action::StepBack => self.step(-1),
            Action::JumpForward => self.jump(10_000_000),
            Action::JumpBack => self.jump(-10_000_000),
            Action::ToStart => self.seek_replay(|_| 1),
            Action::ToEnd => self.seek_replay(|r| r.len()),
        }
    }

    fn page(&self) -> usize {
        self.stream.height.get().max(1)
    }

    /// Narrows the list and the stream to one container (`ctr:ID` typed at
    /// the filter prompt does the same).
    pub fn watch_container(&mut self, id: &str) {
        self.set_filter(Filter {
            container: Some(id.to_string()),
            ..Filter::default()
        });
    }

    fn set_filter(&mut self, filter: Filter) {
        self.store.set_filter(filter, FILTER_SLICE);
        self.stream.selected = None;
        self.stream.top.set(0);
    }

    fn move_by(&mut self, by: isize) {
        match self.focus {
            Pane::Containers => {
                if self.rows.is_empty() {
                    return;
                }
                let at = self
                    .selected_row()
                    .and_then(|r| self.rows.iter().position(|x| x.id == r.id))
                    .unwrap_or(self.rows.len() - 1);
                let to = (at as isize)
                    .saturating_add(by)
                    .clamp(0, self.rows.len() as isize - 1) as usize;
                self.chosen = Some(self.rows[to].id.clone());
                self.waterfall_scroll = 0;
                self.tree_scroll = 0;
                self.refresh_selected();
            }
            Pane::Waterfall => self.waterfall_scroll = scroll(self.waterfall_scroll, by),
            Pane::Tree => self.tree_scroll = scroll(self.tree_scroll, by),
            Pane::Stream => {
                let n = self.store.view_len();
                if n == 0 {
                    return;
                }
                let from_seq = self
                    .stream
                    .selected
                    .or(self.stream.anchor)
                    .unwrap_or(u64::MAX);
                let at = self.store.view_position(from_seq).unwrap_or(0);
                let to = (at as isize).saturating_add(by).clamp(0, n as isize - 1) as usize;
                let seq = self.store.view_at(to).expect("in the view").seq;
                self.stream.selected = Some(seq);
                // Moving in the stream holds it still; End follows again.
                let last = self.store.view_at(n - 1).expect("not empty").seq;
                self.stream.anchor = Some(self.stream.anchor.unwrap_or(last).max(seq));
            }
        }
    }

    fn refresh_selected(&mut self) {
        self.selected = self.selected_row().and_then(|row| self.whole(row));
    }

    /// Replay: moves the cursor by `by` events.
    fn step(&mut self, by: isize) {
        self.seek_replay(|r| (r.cursor() as isize + by).max(1) as usize);
    }

    /// Replay: moves the cursor by `ns` of the recording's time, at least one event.
    fn jump(&mut self, ns: i64) {
        self.seek_replay(|r| r.cursor_after_jump(ns));
    }

    fn seek_replay(&mut self, to: impl FnOnce(&Replay) -> usize) {
        if let Some(r) = &mut self.replay {
            r.stop();
            let n = to(r);
            self.seek(n);
        }
    }

    /// Replay: shows the recording as of its first `n` events. Going back
    /// rebuilds from the start: the timeline builder only moves forward.
    pub fn seek(&mut self, n: usize) {
        let Some(mut replay) = self.replay.take() else {
            return;
        };
        let n = n.min(replay.len());
        if n < replay.cursor() {
            let filter = self.store.filter().clone();
            self.builder = Builder::new();
            self.sched = Sched::default();
            self.sched_marks.clear();
            self.last_steps.clear();
            self.store = EventStore::new(self.store.limit());
            self.store.set_filter(filter, std::time::Duration::MAX);
            self.finished.clear();
            self.lost = 0;
            replay.rewind();
        }
        for e in replay.advance_to(n) {
            self.ingest(e);
        }
        let now = replay.cursor_time();
        self.replay = Some(replay);
        self.tick(now);
        self.stream.anchor = None;
        self.stream.selected = None;
        self.refresh();
    }

    /// Replay while playing: moves the cursor to the recording's time that
    /// corresponds to now.
    pub fn play(&mut self, now: Instant) {
        if let Some(target) = self.replay.as_ref().and_then(|r| r.playing_target(now)) {
            self.seek(target);
            if let Some(r) = &mut self.replay
                && r.cursor() >= r.len()
            {
                r.stop();
            }
        }
    }
}

fn scroll(at: u16, by: isize) -> u16 {
    (at as isize).saturating_add(by).clamp(0, u16::MAX as isize) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tui_scheduler_records_are_kept_about_as_many_as_events() {
        let mut app = App::new(100);
        for i in 0..5000u64 {
            let (prev, next) = if i % 2 == 0 { (7, 8) } else { (8, 7) };
            app.ingest(Event {
                v: 1,
                ktime_ns: 1_000 + i,
                time: String::new(),
                task: None,
                body: Body::SchedSwitch {
                    cpu: 0,
                    task_tgid: prev,
                    task_tid: prev,
                    state: "R".into(),
                    syscall: None,
                    next_tgid: next,
                    next_tid: next,
                    task_cpu_ns: None,
                    next_cpu_ns: None,
                    irq_steal_ns: None,
                },
            });
        }
        assert_eq!(app.sched_records(), 5000);
        // A mark every 1024 records; the last one more than 100 records
        // back was at 4096.
        assert_eq!(app.sched.kept_from(), Some(1_000 + 4095));
        assert_eq!(app.store.total(), 0, "the stream has no switches");
    }
}
