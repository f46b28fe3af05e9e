//! `inspector run`: launch one container with the bundled runtime, traced
//! from the runtime's first syscall, and print its lifecycle when it ends.

use std::{
    io::Write as _,
    os::unix::process::ExitStatusExt as _,
    path::PathBuf,
    process::{ExitCode, ExitStatus},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use inspector::{
    capture::{self, POLL, Recorder},
    launch::{
        self, ScratchDir,
        bundle::{self, Settings},
        image,
        rootfs::{self, DEFAULT_PATH, RootfsError},
        runtime::{self, Runtime},
    },
    probe::{DEFAULT_BUFFER_SIZE, ProbeOptions},
    timeline::{Builder, ContainerTimeline, perfetto, present, render},
    tui::TuiOptions,
};

#[derive(clap::Args)]
pub struct RunArgs {
    /// Use this directory as the root filesystem (a config.json is generated
    /// around it).
    #[arg(long, value_name = "DIR", group = "source")]
    rootfs: Option<PathBuf>,
    /// Use this OCI bundle (its config.json); CMD, when given, replaces its
    /// process's arguments.
    #[arg(long, value_name = "DIR", group = "source")]
    bundle: Option<PathBuf>,
    /// Run this image: an OCI image layout directory or a `docker save`
    /// tarball, unpacked once into a cache.
    #[arg(long, value_name = "PATH", group = "source")]
    image: Option<PathBuf>,
    /// The container's id (default: inspector-<pid>-<time>).
    #[arg(long, value_name = "ID")]
    name: Option<String>,
    /// Show the container live in the TUI instead of printing its timeline
    /// (its output goes to a file, named at the end).
    #[arg(long, conflicts_with_all = ["export", "perfetto", "brief"])]
    tui: bool,
    /// Also save every event of the run as a recording (JSON Lines), for
    /// `inspector timeline`.
    #[arg(long, value_name = "FILE.jsonl")]
    export: Option<PathBuf>,
    /// Also save the container's timeline as a Perfetto (Chrome) trace.
    #[arg(long, value_name = "FILE.json")]
    perfetto: Option<PathBuf>,
    /// Set an environment variable in the container (repeatable).
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// The working directory inside the container.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    workdir: Option<String>,
    /// The container's hostname (default: inspector).
    #[arg(long, value_name = "H")]
    hostname: Option<String>,
    /// Memory limit in bytes (suffixes k, m, g accepted).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    memory: Option<i64>,
    /// Most processes the container may have.
    #[arg(long, value_name = "N")]
    pids_limit: Option<i64>,
    /// Print the phases and the chain of processes only, not every step.
    #[arg(long)]
    brief: bool,
    /// Also say where the time went: the critical path from the runtime's
    /// first exec to the entrypoint's, its largest causes under the
    /// waterfall (puts a program on every context switch while it runs).
    #[arg(long, conflicts_with = "tui")]
    why: bool,
    /// Ring buffer size in bytes (a power of two).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_BUFFER_SIZE)]
    buffer_size: u32,
    /// The command to run in the container, and its arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<String>,
}

/// `--memory BYTES`: a positive number of bytes, with an optional binary
/// suffix (`k`, `m`, `g`, then `b`s, in any case), read by parse-size.
/// Only the forms `--memory` has always taken get that far: parse-size alone
/// would also take fractions, exponents, spaces and `t`, `p`, `e`.
fn parse_bytes(s: &str) -> Result<i64, String> {
    let not_a_number = || format!("{s:?} is not a number of bytes");
    let out_of_range = || format!("{s:?} is out of range");
    let number = s.trim_end_matches(['b', 'B']);
    let digits = number
        .strip_suffix(['k', 'K', 'm', 'M', 'g', 'G'])
        .unwrap_or(number);
    let (negative, digits) = match digits.as_bytes().first() {
        Some(b'-') => (true, &digits[1..]),
        Some(b'+') => (false, &digits[1..]),
        _ => (false, digits),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_a_number());
    }
    if negative {
        return Err(out_of_range());
    }
    let bytes = parse_size::Config::new()
        .with_binary()
        .parse_size(number.trim_start_matches(['-', '+']))
        .map_err(|e| match e {
            parse_size::Error::PosOverflow => out_of_range(),
            _ => not_a_number(),
        })?;
    i64::try_from(bytes)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(out_of_range)
}

/// A bundle ready for the runtime, made before the probe is attached so that
/// bad input costs nothing and leaves nothing.
struct Prepared {
    /// Removed when dropped, with the default root filesystem inside it.
    dir: ScratchDir,
}

fn prepare(args: &RunArgs) -> anyhow::Result<Prepared> {
    // Written once the container has run: a path that can never be a file
    // is refused before it runs.
    for (flag, path) in [("--export", &args.export), ("--perfetto", &args.perfetto)] {
        if let Some(path) = path
            && path.is_dir()
        {
            bail!("{flag} {} is a directory: name a file", path.display());
        }
    }
    let dir = ScratchDir::new("inspector-run").context("cannot make the bundle directory")?;
    let mut settings = Settings {
        args: args.command.clone(),
        env: Vec::new(),
        cwd: args.workdir.clone(),
        hostname: args.hostname.clone(),
        memory: args.memory,
        pids_limit: args.pids_limit,
    };
    let default_env = vec![format!("PATH={DEFAULT_PATH}")];
    let mut origin = "the generated config.json".to_string();
    let (mut config, what) = if let Some(bundle_dir) = &args.bundle {
        origin = bundle_dir.join("config.json").display().to_string();
        (bundle::load(bundle_dir)?, "bundle's config.json")
    } else if let Some(path) = &args.image {
        let cache = image::default_cache_dir();
        let image = image::open(path, &cache)?;
        settings.args = image.run.args(&args.command);
        settings.env = bundle::merge_env(&default_env, &image.run.env)?;
        if settings.cwd.is_none() {
            settings.cwd = image.run.working_dir.clone();
        }
        // The cached root filesystem is shared by every run of the image, so
        // the container sees it read-only (with a fresh /tmp).
        (bundle::generate(&image.rootfs, true, &[]), "image")
    } else if let Some(root) = &args.rootfs {
        let root = root
            .canonicalize()
            .with_context(|| format!("--rootfs {}", root.display()))?;
        if !root.is_dir() {
            bail!("--rootfs {} is not a directory", root.display());
        }
        (bundle::generate(&root, false, &[]), "root filesystem")
    } else {
        let root = dir.path().join("rootfs");
        std::fs::create_dir(&root).context("cannot make the default root filesystem")?;
        let binds = rootfs::make_default(&root)?;
        (
            bundle::generate(&root, true, &binds),
            "default root filesystem",
        )
    };
    settings.env.extend(args.env.iter().cloned());
    bundle::apply(&mut config, &settings, &origin)?;
    let process = bundle::process(&config);
    let Some(argv0) = process.args.first() else {
        return Err(RootfsError::NoCommand(what).into());
    };
    bundle::view(&config).find_command(argv0, &process.path, &process.cwd)?;
    bundle::write(dir.path(), &config)?;
    Ok(Prepared { dir })
}

/// Deletes the container when dropped, unless that already happened: a
/// failed step never leaves a cgroup or a state directory behind.
struct Created<'a> {
    runtime: &'a Runtime,
    id: String,
    deleted: bool,
}

impl Created<'_> {
    fn delete(&mut self) -> anyhow::Result<()> {
        self.deleted = true;
        Ok(self.runtime.delete(&self.id)?)
    }
}

impl Drop for Created<'_> {
    fn drop(&mut self) {
        if !self.deleted {
            let _ = self.runtime.delete(&self.id);
        }
    }
}

/// How long the container's end is watched closely after its start.
const QUICK_PHASE: Duration = Duration::from_secs(1);
const QUICK_POLL: Duration = Duration::from_millis(1);

/// After Ctrl-C, how long the container has to stop on SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(2);

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let id = args.name.clone().unwrap_or_else(runtime::fresh_id);
    // Checked before the name becomes a path (`--name /` is the state root).
    runtime::valid_id(&id)?;
    // Before anything is made: the TUI cannot start without a terminal.
    if args.tui {
        inspector::tui::require_terminal()?;
    }
    let runtime = Runtime {
        binary: runtime::locate()?,
        root: None,
    };
    // Checked first: the clean-up after a failed create deletes by id, and
    // must never reach someone else's container.
    if runtime.exists(&id) {
        bail!("a container named {id} already exists (see `inspector-runtime list`)");
    }
    let prepared = prepare(&args)?;
    let stop = super::stop_on_signals()?;
    // The container's init is orphaned when the runtime's `create` returns;
    // as a subreaper we become its parent and can wait for its exit status.
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } < 0 {
        return Err(std::io::Error::last_os_error()).context("PR_SET_CHILD_SUBREAPER");
    }
    if args.tui {
        return run_in_tui(&args, runtime, prepared, id, stop);
    }

    let mut recorder = Recorder::attach(&ProbeOptions {
        buffer_size: args.buffer_size,
        sched: args.why,
        sched_self: args.why,
        ..ProbeOptions::default()
    })?;
    let started = Instant::now();
    let ran = run_container(&runtime, prepared.dir.path(), &id, None, &stop, |quick| {
        // Short waits at first: most containers `inspector run` is used on
        // live for milliseconds, and the poll's period is added to their end.
        recorder.poll(if quick { QUICK_POLL } else { POLL })?;
        Ok(())
    });
    // Every process of the container has ended and `delete` has exited
    // (a failed start is deleted before `run_container` returns), so all
    // their events are already in the ring: one last read takes them. A
    // failed start's timeline is shown too: it says why.
    recorder.poll(Duration::ZERO)?;
    let wall = started.elapsed();
    let (events, lost) = recorder.finish();

    if let Some(path) = &args.export {
        capture::export(&events, path)?;
    }
    let timeline = timeline_of(&events, &id, args.why);
    if let Some(path) = &args.perfetto {
        let doc = perfetto::document(timeline.as_slice());
        let mut json = Vec::new();
        inspector::escape::to_json_writer(&mut json, &doc)?;
        capture::write_atomically(path, &json)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    match &timeline {
        Some(t) => {
            writeln!(err, "{}", render::text(t, !args.brief))?;
        }
        None => writeln!(
            err,
            "inspector: no timeline for container {id} in {} events",
            events.len()
        )?,
    }
    if lost > 0 {
        writeln!(
            err,
            "inspector: the probe lost {lost} events; the timeline may miss steps"
        )?;
    }
    drop(err);
    let code = ran?;
    let mut err = stderr.lock();
    writeln!(
        err,
        "inspector: container {id} exited {code} after {:.1} ms",
        wall.as_secs_f64() * 1e3
    )?;
    drop(prepared);
    Ok(ExitCode::from(code))
}

/// `inspector run --tui`: the live TUI, filtered on the container, which is
/// created and started on a thread of its own once the TUI's probes are
/// attached. Its output goes to a file (the screen is the TUI's). Closing
/// the TUI stops the container if it still runs; the exit code is its.
fn run_in_tui(
    args: &RunArgs,
    runtime: Runtime,
    prepared: Prepared,
    id: String,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<ExitCode> {
    let out_path = output_file(&id)?;
    let out_dir = out_path.parent().unwrap_or(&out_path).to_path_buf();
    let output = match launch::create_private(&out_path) {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&out_dir);
            return Err(e).with_context(|| format!("cannot create {}", out_path.display()));
        }
    };
    let opts = TuiOptions {
        probe: ProbeOptions {
            buffer_size: args.buffer_size,
            ..ProbeOptions::default()
        },
        replay: None,
        retention: inspector::tui::DEFAULT_RETENTION,
        container: Some(id.clone()),
    };
    let bundle = prepared.dir.path().to_path_buf();
    // Dropped before `prepared`: whatever ends the TUI, even a panic, the
    // container is stopped and deleted before its bundle is removed.
    let mut lifecycle = Lifecycle {
        stop: stop.clone(),
        thread: None,
    };
    let shown = inspector::tui::run_then(&opts, || {
        let (runtime, id, stop) = (runtime.clone(), id.clone(), stop.clone());
        lifecycle.thread = Some(std::thread::spawn(move || {
            run_container(&runtime, &bundle, &id, Some(output), &stop, |_| {
                std::thread::sleep(QUICK_POLL);
                Ok(())
            })
        }));
    });
    let code = lifecycle.finish();
    let Some(code) = code else {
        // Never started: there is no output to keep.
        let _ = std::fs::remove_dir_all(&out_dir);
        shown?;
        bail!("the TUI ended before the container was started");
    };
    if shown.is_err() || code.is_err() {
        eprintln!(
            "inspector: the container's output is in {}",
            out_path.display()
        );
    }
    shown?;
    let code = code?;
    eprintln!(
        "inspector: container {id} exited {code}; its output is in {}",
        out_path.display()
    );
    drop(prepared);
    Ok(ExitCode::from(code))
}

/// The thread running the container for `inspector run --tui`. Dropped or
/// finished, it tells the container to stop and waits for it to be deleted.
struct Lifecycle {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<u8>>>,
}

impl Lifecycle {
    /// Stops the container if it still runs and returns its exit code;
    /// `None` when it was never started.
    fn finish(&mut self) -> Option<anyhow::Result<u8>> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take()?;
        Some(
            thread
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the container's thread panicked"))),
        )
    }
}

impl Drop for Lifecycle {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// Where `inspector run --tui` puts the output of container `id`: `output`
/// in a directory of its own under the temporary directory, made 0700 with
/// an unpredictable name (`inspector-run-<id>-output-<pid>-<random>`). A fixed name in
/// `/tmp` let any user plant a link there and have root write the
/// container's output over any file. The directory is kept for the user.
fn output_file(id: &str) -> anyhow::Result<PathBuf> {
    // Short enough, with the suffixes, for a file name (ids are ASCII).
    let id = &id[..id.len().min(200)];
    let dir = ScratchDir::new(&format!("inspector-run-{id}-output")).with_context(|| {
        format!(
            "cannot make a directory for the container's output in {}",
            std::env::temp_dir().display()
        )
    })?;
    Ok(dir.keep().join("output"))
}

/// The container's life: created (its stdio `output`, or ours), started
/// unless `stop` is already set, waited for (see [`wait_for_init`]) and
/// deleted, whatever fails on the way. Returns its exit code.
fn run_container(
    runtime: &Runtime,
    bundle: &std::path::Path,
    id: &str,
    output: Option<std::fs::File>,
    stop: &AtomicBool,
    between: impl FnMut(bool) -> anyhow::Result<()>,
) -> anyhow::Result<u8> {
    let mut container = Created {
        runtime,
        id: id.to_string(),
        deleted: false,
    };
    let pid = runtime.create(bundle, id, output)?;
    let started_container = !stop.load(Ordering::Relaxed);
    if started_container {
        runtime.start(id)?;
    }
    let status = wait_for_init(pid, stop, runtime, id, started_container, between)?;
    container.delete()?;
    // How the container's init ended, as a shell reports it.
    Ok(present::shell_exit_code(ExitStatus::from_raw(status)))
}

/// Waits for the container's init (our child, as a subreaper) to exit, calling
/// `between` (told whether the start was recent) until it does. Once `stop` is
/// set (Ctrl-C, SIGTERM, the TUI closed), the container is asked to stop:
/// SIGTERM, then SIGKILL after [`GRACE`]. Returns the init's wait status.
fn wait_for_init(
    pid: i32,
    stop: &AtomicBool,
    runtime: &Runtime,
    id: &str,
    started_container: bool,
    mut between: impl FnMut(bool) -> anyhow::Result<()>,
) -> anyhow::Result<libc::c_int> {
    let started = Instant::now();
    let mut term_sent: Option<Instant> = None;
    let mut kill_sent = false;
    loop {
        between(started.elapsed() < QUICK_PHASE)?;
        let mut raw = 0;
        // SAFETY: waitpid on our (adopted) child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut raw, libc::WNOHANG) };
        if r == pid {
            return Ok(raw);
        }
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e)
                    .with_context(|| format!("waiting for the container's init (pid {pid})"));
            }
        }
        if stop.load(Ordering::Relaxed) {
            match term_sent {
                None => {
                    eprintln!(
                        "inspector: stopping container {id} (SIGTERM, then SIGKILL after {GRACE:?})"
                    );
                    let _ = runtime.kill(id, "TERM");
                    term_sent = Some(Instant::now());
                }
                // A container that was never started only waits on its
                // FIFO: nothing to be graceful about.
                Some(at) if (at.elapsed() >= GRACE || !started_container) && !kill_sent => {
                    let _ = runtime.kill(id, "KILL");
                    kill_sent = true;
                }
                Some(_) => {}
            }
        }
    }
}

/// The timeline of container `id`, with where its time went when the
/// events have the scheduler's records.
fn timeline_of(
    events: &[inspector::event::Event],
    id: &str,
    why: bool,
) -> Option<ContainerTimeline> {
    let mut builder = Builder::new();
    let mut sched = why.then(inspector::timeline::why::Sched::default);
    for e in events {
        if let Some(sched) = &mut sched {
            sched.push(e);
        }
        builder.push(e.clone());
    }
    let mut t = builder.finish().into_iter().find(|t| t.id == id)?;
    t.why = sched.and_then(|sched| sched.explain(&t));
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_take_binary_suffixes() {
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("64m"), Ok(64 << 20));
        assert_eq!(parse_bytes("64MB"), Ok(64 << 20));
        assert_eq!(parse_bytes("2g"), Ok(2 << 30));
        assert_eq!(parse_bytes("512k"), Ok(512 << 10));
        assert!(parse_bytes("12x").is_err());
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("-5m").is_err());
    }
}
