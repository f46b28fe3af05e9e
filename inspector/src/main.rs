//! `inspector`: the command line. Each subcommand's work is in the library
//! (or in a `cmd_*` module of its own); this parses, dispatches, and prints
//! errors.

use std::{
    path::PathBuf,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

mod cmd_golden;
mod cmd_run;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use inspector::{
    output::Format,
    probe::{DEFAULT_BUFFER_SIZE, ProbeOptions},
    trace::{self, TraceOptions},
};

// Building timelines from a recording allocates a few small strings per event;
// mimalloc does that markedly faster than glibc's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// See, from the kernel's point of view, how a container really starts and stops.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stream what the kernel sees while containers start and stop: processes,
    /// namespaces, mounts, pivot_root and cgroups.
    Trace(TraceArgs),
    /// Per container: the phases of its life with their durations, the chain of
    /// processes and roles, and every step, from a recording
    /// (`inspector trace --format jsonl`) or standard input.
    Timeline(TimelineArgs),
    /// A live terminal UI: containers as they start and stop, each one's
    /// lifecycle and processes, and the event stream (`?` shows the keys).
    Tui(TuiArgs),
    /// Launch a container with the bundled runtime, traced from its first
    /// syscall; print its lifecycle when it exits, and exit with its code.
    Run(cmd_run::RunArgs),
    /// Run a command while tracing and write its golden syscall sequence:
    /// per container and role, normalized for review in a pull request.
    Record(cmd_golden::RecordArgs),
    /// Run a command while tracing and compare it with its golden: exit 0
    /// when it matches, 1 with a role-by-role diff when it does not.
    Check(cmd_golden::CheckArgs),
    /// Compare two goldens or two recordings.
    Diff(cmd_golden::DiffArgs),
    /// Let go of the probe inspector keeps loaded between runs: detach what a
    /// finished run left attached and unload the programs (the next run
    /// loads them again).
    Unload(UnloadArgs),
    /// Benchmark baseline: attach one empty program to syscalls:sys_enter_write
    /// until interrupted.
    #[command(hide = true)]
    BenchFloor,
    /// The keeper of a finished run's probe links (started by inspector itself).
    #[command(hide = true)]
    KeepProbe(KeepProbeArgs),
}

#[derive(clap::Args)]
struct UnloadArgs {
    /// Only detach what finished runs left attached (waiting for the kernel
    /// to finish); keep the programs loaded for a fast next start.
    #[arg(long)]
    links_only: bool,
}

#[derive(clap::Args)]
struct KeepProbeArgs {
    /// The pinned set's key (for `ps`: which probe this is).
    #[arg(long)]
    #[allow(dead_code, reason = "shown by ps, not used")]
    key: String,
    #[arg(long)]
    seconds: f64,
    #[arg(long)]
    listen: i32,
    #[arg(long)]
    lock: i32,
    #[arg(long, value_delimiter = ',')]
    links: Vec<i32>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TimelineFormat {
    /// A waterfall of phases, the chain of roles, the steps.
    Text,
    /// One JSON object per container per line (docs/timeline.md).
    Json,
    /// A Chrome trace file for the Perfetto UI (ui.perfetto.dev) or chrome://tracing.
    Perfetto,
}

#[derive(clap::Args)]
struct TimelineArgs {
    /// The recording to read (default: standard input).
    file: Option<PathBuf>,
    /// Only the container whose id starts with this.
    #[arg(long, value_name = "ID")]
    container: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: TimelineFormat,
    /// Text: phases and chain only, without every step.
    #[arg(long)]
    brief: bool,
}

#[derive(clap::Args)]
struct TuiArgs {
    /// Replay a recording (`inspector trace --format jsonl`) with a time
    /// cursor instead of attaching the probes.
    #[arg(long, value_name = "FILE.jsonl")]
    replay: Option<PathBuf>,
    /// Events kept for the stream; the oldest are dropped first.
    #[arg(long, value_name = "EVENTS", default_value_t = inspector::tui::DEFAULT_RETENTION)]
    retain: usize,
    #[command(flatten)]
    following: Following,
}

/// What the probe follows, for the commands that attach it.
#[derive(clap::Args)]
struct Following {
    /// Report every process on the machine, not only container engines,
    /// shims, runtimes and their children.
    #[arg(long)]
    all: bool,
    /// Also follow processes that exec a binary with this name (repeatable).
    #[arg(long = "track-comm", value_name = "NAME")]
    track_comm: Vec<String>,
    /// Ring buffer size in bytes (a power of two).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_BUFFER_SIZE)]
    buffer_size: u32,
}

impl Following {
    fn probe(self, log_level: Option<log::LevelFilter>, write_results: bool) -> ProbeOptions {
        ProbeOptions {
            trace_all: self.all,
            buffer_size: self.buffer_size,
            log_level,
            track_comms: self.track_comm,
            write_results,
        }
    }
}

#[derive(clap::Args)]
struct TraceArgs {
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

/// The error and its causes, each said once. A library error that says its
/// cause in its message and also gives it as its source would otherwise
/// print it twice (`Is a directory (os error 21): Is a directory (os error 21)`).
fn error_chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let said = cause.to_string();
        if said.is_empty() || text.contains(&said) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    text
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("inspector: error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Trace(args) => {
            let mut logger =
                env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"));
            // The probe logs under `inspector::*` (its modules' paths); the
            // libraries' own debug output stays out of the way.
            if let Some(level) = args.log_level {
                logger.filter_module("inspector", level);
            }
            logger.init();
            if STDOUT_CLOSED_AT_START.load(Ordering::Relaxed)
                && (args.output.is_none() || args.timeline)
            {
                return Err(trace::TraceError::StdoutClosed.into());
            }

            let stop = Arc::new(AtomicBool::new(false));
            for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register(signal, stop.clone())
                    .context("installing the signal handler")?;
            }
            let opts = TraceOptions {
                probe: args
                    .following
                    .probe(args.log_level, args.cgroup_write_results),
                format: args.format,
                output: args.output,
                duration: args.duration,
                timeline: args.timeline,
            };
            trace::run(&opts, stop)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Timeline(args) => timeline(args),
        Command::Tui(args) => {
            let opts = inspector::tui::TuiOptions {
                probe: args.following.probe(None, false),
                replay: args.replay,
                retention: args.retain,
                container: None,
            };
            inspector::tui::run(&opts)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => cmd_run::run(args),
        Command::Record(args) => cmd_golden::record(args),
        // 1 means "differs": a check that could not run says so with 2.
        Command::Check(args) => cmd_golden::check(args).or_else(|e| {
            eprintln!("inspector: error: {}", error_chain(&e));
            Ok(ExitCode::from(2))
        }),
        Command::Diff(args) => cmd_golden::diff(args).or_else(|e| {
            eprintln!("inspector: error: {}", error_chain(&e));
            Ok(ExitCode::from(2))
        }),
        Command::Unload(args) => {
            let inspector::probe::pinned::Unloaded {
                removed,
                busy,
                skipped,
            } = inspector::probe::pinned::unload_all(args.links_only)
                .context("cannot unload the probe kept in /sys/fs/bpf/inspector")?;
            for s in &skipped {
                eprintln!("inspector: left alone: {s}");
            }
            if args.links_only {
                eprintln!("inspector: no kept probe is attached any more");
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!("inspector: unloaded {removed} kept probe(s)");
            if busy > 0 {
                eprintln!(
                    "inspector: {busy} probe(s) left loaded: an inspector is tracing with them \
                     (run this again once it has exited)"
                );
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::KeepProbe(args) => {
            use std::os::fd::{FromRawFd as _, OwnedFd};
            let all: Vec<i32> = [args.listen, args.lock]
                .into_iter()
                .chain(args.links.iter().copied())
                .collect();
            for &fd in &all {
                // SAFETY: fcntl(F_GETFD) only asks whether `fd` is open.
                if fd < 3 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
                    anyhow::bail!(
                        "keep-probe: descriptor {fd} is not open (inspector starts this itself)"
                    );
                }
            }
            // SAFETY: open (checked above), inherited from the inspector that
            // started this process for us alone, and each named once.
            let own = |fd: i32| unsafe { OwnedFd::from_raw_fd(fd) };
            let seconds = if args.seconds.is_finite() {
                args.seconds.clamp(0.0, 3600.0)
            } else {
                0.0
            };
            inspector::probe::keeper::serve(
                own(args.listen),
                own(args.lock),
                args.links.iter().map(|&fd| own(fd)).collect(),
                Duration::from_secs_f64(seconds),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchFloor => {
            let stop = Arc::new(AtomicBool::new(false));
            for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register(signal, stop.clone())
                    .context("installing the signal handler")?;
            }
            let _floor = inspector::probe::Floor::attach()?;
            eprintln!("inspector: 1 empty program attached to syscalls:sys_enter_write");
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

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

fn timeline(args: TimelineArgs) -> anyhow::Result<ExitCode> {
    use std::io::Write;

    use inspector::timeline::{Builder, perfetto, reader, render};

    let input: Box<dyn std::io::Read> = match &args.file {
        Some(path) => Box::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        ),
        None => Box::new(std::io::stdin().lock()),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let wanted = |t: &inspector::timeline::ContainerTimeline| {
        args.container
            .as_deref()
            .is_none_or(|prefix| t.id.starts_with(prefix))
    };
    // Text and JSON are written as each container's life ends, so memory
    // follows the containers alive; a Perfetto document is written whole.
    let mut kept = Vec::new();
    let mut shown = 0usize;
    let mut emit = |mut t: inspector::timeline::ContainerTimeline,
                    out: &mut dyn Write|
     -> std::io::Result<()> {
        if !wanted(&t) {
            return Ok(());
        }
        shown += 1;
        match args.format {
            TimelineFormat::Text => writeln!(out, "{}", render::text(&t, !args.brief)),
            TimelineFormat::Json => {
                t.fill_details();
                inspector::escape::to_json_writer(&mut *out, &t)?;
                writeln!(out)
            }
            TimelineFormat::Perfetto => {
                kept.push(t);
                Ok(())
            }
        }
    };
    let mut builder = Builder::new();
    let mut write_error = None;
    let summary = reader::for_each_timeline_event(input, |e| {
        builder.push(e);
        for t in builder.take_finished() {
            if let Err(err) = emit(t, &mut out) {
                write_error.get_or_insert(err);
            }
        }
    })?;
    if let Some(err) = write_error {
        return Err(err.into());
    }
    for warning in summary.warnings() {
        eprintln!("inspector: {warning}");
    }
    let stats = builder.stats();
    for t in builder.finish() {
        emit(t, &mut out)?;
    }
    if args.format == TimelineFormat::Perfetto {
        inspector::escape::to_json_writer(&mut out, &perfetto::document(&kept))?;
        writeln!(out)?;
    }
    if stats.lost > 0 {
        eprintln!(
            "inspector: the recording lost {} events; timelines may miss steps",
            stats.lost
        );
    }
    eprintln!(
        "inspector: {} events, {shown} containers, {} container events unattributed",
        stats.events, stats.unattributed
    );
    if shown == 0 {
        match &args.container {
            Some(prefix) => {
                anyhow::bail!("no container whose id starts with {prefix:?} in the recording")
            }
            None => eprintln!("inspector: no container in the recording"),
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
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

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let io = std::io::Error::from_raw_os_error(libc::EISDIR);
        #[derive(Debug, thiserror::Error)]
        #[error("cannot write /tmp: {source}")]
        struct Twice {
            source: std::io::Error,
        }
        let e = anyhow::Error::new(Twice { source: io }).context("tracing");
        assert_eq!(
            error_chain(&e),
            "tracing: cannot write /tmp: Is a directory (os error 21)"
        );
    }
}
