//! `inspector tui`: the live terminal UI. A container list, the selected
//! container's lifecycle waterfall and process tree, the event stream, and a
//! status line; where the selected container's time went, from the
//! scheduler's records (`--sched`, the why view); live from the probe, or
//! replayed from a recording with a time cursor.
//!
//! The probe is read on a thread of its own and its events reach the UI over
//! a tokio channel; keys arrive the same way and are served first. The state
//! ([`app`]) is apart from drawing (the view modules), and the loop is generic
//! over ratatui's `Backend`, so tests draw the real app on a `TestBackend`.

pub mod app;
pub mod containers;
pub mod explain;
pub mod filter;
pub mod keys;
pub mod popup;
pub mod replay;
pub mod status;
pub mod store;
pub mod stream;
pub mod tree;
pub mod waterfall;
pub mod why;

#[cfg(test)]
mod snapshots;

use std::{
    io,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use ratatui::{
    Frame, Terminal,
    backend::Backend,
    layout::{Constraint, Layout},
    style::{Color, Modifier, Style},
    widgets::{Block, BorderType},
};
use thiserror::Error;
use tokio::sync::mpsc::{
    Receiver, Sender, UnboundedReceiver, channel, error::TrySendError, unbounded_channel,
};

pub use self::app::App;
use self::app::Pane;
use crate::{
    event::{Body, Decoder, Event},
    host::Clock,
    probe::{Probe, ProbeError, ProbeOptions},
    timeline::{reader, running},
};

/// Events kept by default: about 1M events fit in well under 400 MiB.
pub const DEFAULT_RETENTION: usize = 1_000_000;

/// How often the screen is redrawn while events arrive (ages, rates).
const FRAME: Duration = Duration::from_millis(50);

#[derive(Debug, Error)]
pub enum TuiError {
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error(transparent)]
    Read(#[from] reader::ReadError),
    // The sources are printed after these by the binary (`{:#}`).
    #[error("cannot open {path}")]
    Open { path: String, source: io::Error },
    #[error("the terminal failed")]
    Terminal(#[from] io::Error),
    #[error("the probe's reader ended before attaching")]
    Reader,
    #[error(
        "the TUI needs a terminal, and {0}: use `inspector trace` and `inspector timeline`, or \
         `inspector run` without --tui, instead"
    )]
    NoTerminal(String),
}

/// Fails unless there is a terminal to draw on: the TUI draws on standard
/// output and reads keys from standard input or, when that is not one,
/// /dev/tty (crossterm's choice); without them ratatui's set-up panics.
pub fn require_terminal() -> Result<(), TuiError> {
    use std::io::IsTerminal as _;
    if !io::stdout().is_terminal() {
        return Err(TuiError::NoTerminal(
            "standard output is not a terminal".into(),
        ));
    }
    if !io::stdin().is_terminal()
        && let Err(e) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
    {
        return Err(TuiError::NoTerminal(format!(
            "standard input is not one and there is no controlling terminal (/dev/tty: {e})"
        )));
    }
    Ok(())
}

#[derive(Clone, Debug)]
pub struct TuiOptions {
    pub probe: ProbeOptions,
    /// Replay this recording instead of attaching the probes.
    pub replay: Option<PathBuf>,
    /// Events kept for the stream; the oldest go first.
    pub retention: usize,
    /// Open filtered on this container (an id or its prefix).
    pub container: Option<String>,
}

/// Batches of events waiting for the UI at most: about 20 s of the reader's
/// 20 ms batches. Past that the UI cannot keep up, and the reader drops
/// batches (and counts them) rather than letting the queue grow.
const FEED_QUEUE: usize = 1024;

/// What the probe's reader sends the UI.
pub enum Feed {
    Events(Vec<Event>),
    /// Events the reader dropped so far because the UI's queue was full.
    Dropped(u64),
    Error(String),
}

/// A pane's frame: double and coloured when it has the focus.
pub fn pane_block(title: String, focused: bool) -> Block<'static> {
    let block = Block::bordered().title(title);
    if focused {
        block
            .border_type(BorderType::Double)
            .border_style(Style::new().fg(Color::Cyan))
            .title_style(Style::new().add_modifier(Modifier::BOLD))
    } else {
        block.border_style(Style::new().fg(Color::DarkGray))
    }
}

/// The screen: container list on top, the selected container's lifecycle and
/// processes (side by side when wide enough, else the last focused of the two),
/// the event stream, and the status line.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let [main, status_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(area);
    let list = (app.rows.len() as u16 + 3).clamp(4, 10);
    let middle = if main.height >= 36 { 14 } else { 12 };
    let [list_area, middle_area, stream_area] = Layout::vertical([
        Constraint::Length(list),
        Constraint::Length(middle),
        Constraint::Min(4),
    ])
    .areas(main);
    containers::render(frame, list_area, app);
    if middle_area.width >= 140 {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
                .areas(middle_area);
        waterfall::render(frame, left, app);
        tree::render(frame, right, app);
    } else if app.middle == Pane::Tree {
        tree::render(frame, middle_area, app);
    } else {
        waterfall::render(frame, middle_area, app);
    }
    stream::render(frame, stream_area, app);
    status::render(frame, status_area, app);
    popup::render(frame, app);
}

fn redraw<B: Backend>(terminal: &mut Terminal<B>, app: &mut App) -> io::Result<()>
where
    B::Error: std::error::Error + Send + Sync + 'static,
{
    app.refresh();
    terminal
        .draw(|f| draw(f, app))
        .map(|_| ())
        .map_err(io::Error::other)
}

async fn next_feed(feed: &mut Option<Receiver<Feed>>) -> Option<Feed> {
    match feed {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The UI loop: keys first (drawn at once), then the probe's events, and a
/// redraw every [`FRAME`]. Ends on `q`, Ctrl-C, SIGINT or SIGTERM.
pub async fn event_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    mut feed: Option<Receiver<Feed>>,
    mut input: UnboundedReceiver<crossterm::event::Event>,
) -> io::Result<()>
where
    B::Error: std::error::Error + Send + Sync + 'static,
{
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut frame = tokio::time::interval(FRAME);
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let live = app.replay.is_none();
    redraw(terminal, app)?;
    loop {
        tokio::select! {
            biased;
            key = input.recv() => {
                match key {
                    Some(crossterm::event::Event::Key(k)) => app.on_key(k),
                    Some(_) => {}
                    // No terminal to read from any more.
                    None => break,
                }
                if app.quit {
                    break;
                }
                redraw(terminal, app)?;
            }
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            msg = next_feed(&mut feed) => match msg {
                Some(Feed::Events(batch)) => {
                    for e in batch {
                        app.ingest(e);
                    }
                }
                Some(Feed::Dropped(n)) => app.queue_dropped = n,
                Some(Feed::Error(e)) => app.error = Some(e),
                None => {
                    feed = None;
                    app.error.get_or_insert_with(|| "the probe's reader stopped".into());
                }
            },
            // Applying a new filter to a large store, a slice at a time.
            _ = std::future::ready(()), if app.store.filtering().is_some() => {
                app.store.continue_filter(app::FILTER_SLICE);
            }
            _ = frame.tick() => {
                if live {
                    app.tick(Clock::monotonic_ns());
                    app.sample_rate(Instant::now());
                } else {
                    app.play(Instant::now());
                }
                redraw(terminal, app)?;
            }
        }
    }
    Ok(())
}

/// Reads the probe on its own thread until `stop`; the probes detach when it
/// returns (the programs live as long as its file descriptors).
fn read_probe(
    opts: ProbeOptions,
    tx: Sender<Feed>,
    ready: std::sync::mpsc::Sender<Result<usize, ProbeError>>,
    stop: Arc<AtomicBool>,
) {
    let mut probe = match Probe::load(&opts) {
        Ok(p) => p,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(probe.attached));
    let decoder = Decoder::for_host();
    let mut lost_seen = 0;
    let (mut dropped, mut dropped_told) = (0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        // The probe wakes the reader only when its buffer fills; otherwise
        // events are collected at this pace.
        if let Err(e) = probe.wait(Duration::from_millis(20), None) {
            let _ = tx.blocking_send(Feed::Error(format!("waiting for events failed: {e}")));
            return;
        }
        let mut batch = Vec::new();
        while let Some(record) = probe.next_record() {
            match decoder.decode(&record) {
                Ok(e) => batch.push(e),
                Err(e) => log::warn!("skipped a record: {e}"),
            }
        }
        let lost = probe.lost();
        if lost > lost_seen {
            batch.push(decoder.event(
                Clock::monotonic_ns(),
                None,
                Body::Lost {
                    count: lost - lost_seen,
                    total: lost,
                },
            ));
            lost_seen = lost;
        }
        if dropped > dropped_told {
            // Told once there is room again.
            if tx.try_send(Feed::Dropped(dropped)).is_ok() {
                dropped_told = dropped;
            }
        }
        if batch.is_empty() {
            continue;
        }
        match tx.try_send(Feed::Events(batch)) {
            Ok(()) => {}
            Err(TrySendError::Full(Feed::Events(batch))) => dropped += batch.len() as u64,
            Err(_) => return,
        }
    }
}

/// Runs `inspector tui` until the user quits.
pub fn run(opts: &TuiOptions) -> Result<(), TuiError> {
    run_then(opts, || {})
}

/// [`run`], calling `after_attach` once the probes are attached (live only),
/// before the screen is taken: `inspector run --tui` starts its container
/// there, so that not one of its events is missed.
pub fn run_then(opts: &TuiOptions, after_attach: impl FnOnce()) -> Result<(), TuiError> {
    require_terminal()?;
    let mut app;
    let mut feed = None;
    let stop = Arc::new(AtomicBool::new(false));
    let mut reader_thread = None;
    match &opts.replay {
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|source| TuiError::Open {
                path: path.display().to_string(),
                source,
            })?;
            let mut events = Vec::new();
            let read = reader::for_each_event(io::BufReader::new(file), |e| events.push(e))?;
            app = App::replay(events, opts.retention);
            // A cut last line or events out of order: on the status line.
            app.error = Some(read.warnings().join("; ")).filter(|w| !w.is_empty());
        }
        None => {
            // Attached before the screen is taken, so that a missing
            // prerequisite is printed plainly.
            let (tx, rx) = channel(FEED_QUEUE);
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let probe_opts = opts.probe.clone();
            let stop = stop.clone();
            reader_thread = Some(std::thread::spawn(move || {
                read_probe(probe_opts, tx, ready_tx, stop)
            }));
            let attached = ready_rx.recv().map_err(|_| TuiError::Reader)??;
            after_attach();
            app = App::new(opts.retention);
            app.probes = Some(attached);
            running::seed(
                app.builder_mut(),
                Clock::monotonic_ns(),
                &opts.probe.track_comms,
            );
            app.tick(Clock::monotonic_ns());
            feed = Some(rx);
        }
    }

    if let Some(id) = &opts.container {
        app.watch_container(id);
    }
    let (key_tx, key_rx) = unbounded_channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Restores the terminal on panic too.
    let mut terminal = ratatui::init();
    // A thread of its own: crossterm's read blocks. It ends with the process.
    std::thread::spawn(move || {
        while let Ok(ev) = crossterm::event::read() {
            if key_tx.send(ev).is_err() {
                break;
            }
        }
    });
    let result = runtime.block_on(event_loop(&mut terminal, &mut app, feed, key_rx));
    ratatui::restore();
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = reader_thread {
        // The kernel takes a second or two to detach the programs.
        eprintln!("inspector: detaching the probes");
        let _ = t.join();
    }
    result.map_err(TuiError::Terminal)
}
