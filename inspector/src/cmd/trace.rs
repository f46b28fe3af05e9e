//! `inspector trace`: stream the probe's events as JSON Lines or text.

use std::{
    fs::File,
    io::{self, BufWriter, Write},
    os::fd::FromRawFd as _,
    path::PathBuf,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use inspector::{
    event::{Body, Decoder},
    host::Clock,
    output::{self, Format},
    probe::{Probe, ProbeError, ProbeOptions},
    timeline::{Builder, render, running},
};
use thiserror::Error;

use super::Following;

#[derive(clap::Args)]
pub struct TraceArgs {
    /// Output format: JSON Lines (schema in docs/events.md) or one line per event.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Write events to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Stop after SECS seconds (default: until Ctrl-C).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    duration: Option<Duration>,
    #[command(flatten)]
    following: Following,
    /// Report the return value of cgroup controller writes. This puts a program
    /// on the exit of every write(2) on the machine (about 5% on a write storm).
    #[arg(long)]
    cgroup_write_results: bool,
    /// Also report the context switches and wake-ups of followed tasks, for
    /// `inspector timeline --why` (where the time went). This puts a program
    /// on every context switch of the machine.
    #[arg(long)]
    sched: bool,
    /// Print each container's timeline as its life ends (events then go to
    /// --output only).
    #[arg(long)]
    timeline: bool,
    /// Show the probe's own kernel-side log at this level (off by default).
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<log::LevelFilter>,
}

/// Whether standard output was closed when the process started. Rust's
/// start-up opens /dev/null in place of a closed 0, 1 or 2 (so that no file
/// opened later takes their number), which would make `inspector trace >&-`
/// write every event to /dev/null; this is noted before that, from the
/// program's constructors.
static STDOUT_CLOSED_AT_START: AtomicBool = AtomicBool::new(false);

extern "C" fn note_closed_stdout() {
    // SAFETY: fcntl(F_GETFD) only asks whether fd 1 is open.
    if unsafe { libc::fcntl(libc::STDOUT_FILENO, libc::F_GETFD) } < 0 {
        STDOUT_CLOSED_AT_START.store(true, Ordering::Relaxed);
    }
}

// Run by the dynamic loader (or the static start-up code) before `main`,
// and so before Rust's runtime fills in closed standard descriptors.
#[used]
#[unsafe(link_section = ".init_array")]
static NOTE_CLOSED_STDOUT: extern "C" fn() = note_closed_stdout;

/// The longest `--duration`: a year. Longer is "until Ctrl-C" in practice,
/// and far below what a `Duration` (or an `Instant` plus it) can hold.
const MAX_SECONDS: f64 = 366.0 * 24.0 * 3600.0;

/// `--duration SECS`: a positive number of seconds, fractions allowed, at
/// most [`MAX_SECONDS`].
fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(secs.is_finite() && secs > 0.0 && secs <= MAX_SECONDS) {
        return Err(format!(
            "must be more than 0 and at most {MAX_SECONDS} seconds (a year), got {s}"
        ));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s}: {e}"))
}

pub fn run(args: TraceArgs) -> anyhow::Result<ExitCode> {
    let mut logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"));
    // The probe logs under `inspector::*` (its modules' paths); the
    // libraries' own debug output stays out of the way.
    if let Some(level) = args.log_level {
        logger.filter_module("inspector", level);
    }
    logger.init();
    if STDOUT_CLOSED_AT_START.load(Ordering::Relaxed) && (args.output.is_none() || args.timeline) {
        return Err(TraceError::StdoutClosed.into());
    }

    let stop = super::stop_on_signals()?;
    let opts = TraceOptions {
        probe: ProbeOptions {
            sched: args.sched,
            ..args
                .following
                .probe(args.log_level, args.cgroup_write_results)
        },
        format: args.format,
        output: args.output,
        duration: args.duration,
        timeline: args.timeline,
    };
    trace(&opts, stop)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Error)]
pub enum TraceError {
    #[error(transparent)]
    Probe(#[from] ProbeError),
    // `error` is said in the message, so it is not also a source: printed
    // with its chain, it would be said twice.
    #[error("cannot write {path}: {error}")]
    Output { path: String, error: io::Error },
    #[error("waiting for events failed: {0}")]
    Poll(io::Error),
    #[error(
        "standard output is closed: the events would go nowhere (give --output FILE, or \
         redirect standard output to where they should go)"
    )]
    StdoutClosed,
}

/// A descriptor of its own for standard output, which must be open: std's
/// `Stdout` treats a closed descriptor (EBADF) as success, and would drop
/// every event without a word.
fn stdout_file() -> Result<File, TraceError> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on fd 1 only makes a new descriptor.
    let fd = unsafe { libc::fcntl(libc::STDOUT_FILENO, libc::F_DUPFD_CLOEXEC, 3) };
    if fd < 0 {
        return Err(TraceError::StdoutClosed);
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Whether standard output's reader is gone (a pipe whose read end was
/// closed: `inspector trace | head -1`) or its terminal hung up. Asked on
/// every turn of the loop, so that a closed pipe is noticed within one
/// turn even when no event comes to fail a write.
fn stdout_gone() -> bool {
    let mut fds = [libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    }];
    // SAFETY: poll on one valid pollfd, without waiting.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) };
    n > 0 && fds[0].revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0
}

#[derive(Clone, Debug)]
struct TraceOptions {
    probe: ProbeOptions,
    format: Format,
    output: Option<PathBuf>,
    duration: Option<Duration>,
    /// Print each container's timeline on standard output as its life ends;
    /// events then go to `output` only.
    timeline: bool,
}

/// What a finished trace saw.
#[derive(Clone, Copy, Debug, Default)]
struct TraceSummary {
    events: u64,
    lost: u64,
    undecodable: u64,
}

/// Prints the timelines of containers whose life just ended; false when
/// standard output is closed.
fn print_finished(builder: &mut Builder) -> bool {
    let mut stdout = io::stdout().lock();
    for t in builder.take_finished() {
        if writeln!(stdout, "{}", render::text(&t, false)).is_err() {
            return false;
        }
    }
    stdout.flush().is_ok()
}

/// Runs until `stop` is set, `duration` passes, or the output is closed.
fn trace(opts: &TraceOptions, stop: Arc<AtomicBool>) -> Result<TraceSummary, TraceError> {
    // Standard output carries the events, or the timelines with --timeline.
    let uses_stdout = opts.output.is_none() || opts.timeline;
    // Duplicated first, before anything else opens a descriptor.
    let stdout = if opts.output.is_none() && !opts.timeline {
        Some(stdout_file()?)
    } else {
        if uses_stdout {
            drop(stdout_file()?);
        }
        None
    };
    // A path that cannot be written fails before anything is loaded.
    if let Some(path) = &opts.output {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => std::path::Path::new("."),
        };
        let refused = |error: io::Error| TraceError::Output {
            path: path.display().to_string(),
            error,
        };
        if !dir.is_dir() {
            return Err(refused(io::Error::new(
                io::ErrorKind::NotFound,
                "its directory does not exist",
            )));
        }
        if path.is_dir() {
            return Err(refused(io::Error::from_raw_os_error(libc::EISDIR)));
        }
    }
    let mut probe = Probe::load(&opts.probe)?;

    // The output file is only made once the probe is in place, so that a failed
    // start leaves no file behind.
    // With --timeline and no --output, events are not written at all.
    let (sink, path): (Option<Box<dyn Write>>, String) = match &opts.output {
        Some(path) => {
            let file = File::create(path).map_err(|error| TraceError::Output {
                path: path.display().to_string(),
                error,
            })?;
            (Some(Box::new(file)), path.display().to_string())
        }
        None => match stdout {
            Some(stdout) => (Some(Box::new(stdout)), "standard output".to_string()),
            None => (None, "nowhere".to_string()),
        },
    };
    let mut timelines = opts.timeline.then(Builder::new);
    let mut out = sink.map(|sink| BufWriter::with_capacity(256 << 10, sink));

    let scope = if opts.probe.trace_all {
        "every process"
    } else {
        "container engines, shims, runtimes and their children"
    };
    eprintln!(
        "inspector: {} probes attached in {} ms{}; tracing {scope} ({} already running). Ctrl-C stops.",
        probe.attached,
        probe.ready_in.as_millis(),
        probe.origin.note(),
        probe.seeded,
    );
    if let Some(line) = probe.degraded() {
        eprintln!("{line}");
    }

    if let Some(builder) = &mut timelines {
        let running = running::seed(builder, Clock::monotonic_ns(), &opts.probe.track_comms);
        if running > 0 {
            eprintln!(
                "inspector: containers already running: {running}; their timelines start now"
            );
        }
    }

    let decoder = Decoder::for_host();
    let started = Instant::now();
    let mut summary = TraceSummary::default();
    let write_err = |error: io::Error| TraceError::Output {
        path: path.clone(),
        error,
    };

    let output_closed;
    loop {
        let finishing =
            stop.load(Ordering::Relaxed) || opts.duration.is_some_and(|d| started.elapsed() >= d);
        if !finishing {
            let wait = opts
                .duration
                .map(|d| d.saturating_sub(started.elapsed()))
                .unwrap_or(Duration::MAX)
                // The probe wakes the reader only when its buffer fills up;
                // otherwise events are collected at this pace.
                .min(Duration::from_millis(20));
            probe.wait(wait, None).map_err(TraceError::Poll)?;
        }

        let mut closed = uses_stdout && stdout_gone();
        while let Some(record) = probe.next_record() {
            if closed {
                break;
            }
            match decoder.decode(&record) {
                Ok(event) => {
                    summary.events += 1;
                    if let Some(out) = &mut out
                        && let Err(e) = output::write_event(out, opts.format, &event)
                    {
                        closed = e.kind() == io::ErrorKind::BrokenPipe;
                        if closed {
                            break;
                        }
                        return Err(write_err(e));
                    }
                    if let Some(builder) = &mut timelines {
                        builder.push(event);
                        closed |= !print_finished(builder);
                    }
                }
                Err(e) => {
                    summary.undecodable += 1;
                    log::warn!("skipped a record: {e}");
                }
            }
        }

        if let Some(builder) = &mut timelines {
            builder.tick(Clock::monotonic_ns());
            closed |= !print_finished(builder);
        }
        let lost = probe.lost();
        if lost > summary.lost {
            let event = decoder.event(
                Clock::monotonic_ns(),
                None,
                Body::Lost {
                    count: lost - summary.lost,
                    total: lost,
                },
            );
            summary.lost = lost;
            eprintln!(
                "inspector: lost {} events so far: the ring buffer was full (try a larger --buffer-size)",
                lost
            );
            if !closed && let Some(out) = &mut out {
                output::write_event(out, opts.format, &event).map_err(write_err)?;
            }
            if let Some(builder) = &mut timelines {
                builder.push(event);
            }
        }
        match out.as_mut().map(Write::flush) {
            None | Some(Ok(())) => {}
            Some(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => closed = true,
            Some(Err(e)) => return Err(write_err(e)),
        }
        if finishing || closed {
            output_closed = closed;
            break;
        }
    }

    if let Some(builder) = timelines
        && !output_closed
    {
        let mut stdout = io::stdout().lock();
        for t in builder.finish() {
            if writeln!(stdout, "{}", render::text(&t, false)).is_err() {
                break;
            }
        }
    }
    eprintln!(
        "inspector: {} events, {} lost{}",
        summary.events,
        summary.lost,
        if summary.lost > 0 {
            " (the ring buffer was full; try a larger --buffer-size)"
        } else {
            ""
        }
    );
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_positive_seconds_up_to_a_year() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(
            parse_seconds("31622400"),
            Ok(Duration::from_secs(31_622_400))
        );
        for bad in ["1e20", "31622401", "0", "-1", "nan", "inf", "soon"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
