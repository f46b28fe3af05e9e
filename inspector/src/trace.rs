//! `inspector trace`: stream the probe's events as JSON Lines or text.

use std::{
    fs::File,
    io::{self, BufWriter, Write},
    os::fd::FromRawFd as _,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use thiserror::Error;

use crate::{
    event::{Body, Decoder},
    host::Clock,
    output::{self, Format},
    probe::{Probe, ProbeError, ProbeOptions},
    timeline::{Builder, render, running},
};

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
pub struct TraceOptions {
    pub probe: ProbeOptions,
    pub format: Format,
    pub output: Option<PathBuf>,
    pub duration: Option<Duration>,
    /// Print each container's timeline on standard output as its life ends;
    /// events then go to `output` only.
    pub timeline: bool,
}

/// What a finished trace saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceSummary {
    pub events: u64,
    pub lost: u64,
    pub undecodable: u64,
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
pub fn run(opts: &TraceOptions, stop: Arc<AtomicBool>) -> Result<TraceSummary, TraceError> {
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
