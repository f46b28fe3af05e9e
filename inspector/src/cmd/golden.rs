//! `inspector record`, `inspector check` and `inspector diff`: golden syscall
//! sequences for CI, and the containers' times next to them (the median of
//! `--runs N`; `check --max-slowdown F` fails a start that got slower,
//! `diff --timing` says where).

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Instant,
};

use anyhow::{Context as _, bail};
use inspector::{
    escape::bare,
    golden::{self, Golden, compare, format, junit, session},
    probe::{DEFAULT_BUFFER_SIZE, ProbeOptions},
    timeline::{present, timing},
};

#[derive(clap::Args)]
pub struct RecordArgs {
    /// Where to write the golden (replaced whole, never half-written).
    #[arg(long, value_name = "FILE")]
    golden: PathBuf,
    #[command(flatten)]
    common: Common,
    /// The command to run, e.g. `docker run --rm IMAGE true`.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The golden to compare with.
    #[arg(long, value_name = "FILE")]
    golden: PathBuf,
    /// Rewrite the golden with this run instead of comparing.
    #[arg(long)]
    update: bool,
    /// Also write a JUnit XML report (one test case per role).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Also fail when a container's median start latency over the runs is
    /// more than F times the golden's (e.g. 1.5).
    #[arg(long, value_name = "F", value_parser = parse_slowdown)]
    max_slowdown: Option<f64>,
    #[command(flatten)]
    common: Common,
    /// The command to run, e.g. `docker run --rm IMAGE true`.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

#[derive(clap::Args)]
pub struct DiffArgs {
    /// A golden or a recording (`inspector trace --format jsonl`).
    a: PathBuf,
    /// A golden or a recording.
    b: PathBuf,
    /// Compare only these roles (comma-separated, as timelines name them:
    /// "runtime init", "entrypoint", …).
    #[arg(long, value_delimiter = ',', value_name = "ROLES")]
    roles: Vec<String>,
    /// Compare times instead of sequences: the start latency, each phase
    /// and, from recordings made with `inspector trace --sched`, the
    /// critical path by role and cause; the median over each side's
    /// containers. A side may be FILE:ID, one container of a recording.
    #[arg(long)]
    timing: bool,
}

#[derive(clap::Args)]
struct Common {
    /// Keep only these roles (comma-separated, as timelines name them:
    /// "runtime init", "entrypoint", …).
    #[arg(long, value_delimiter = ',', value_name = "ROLES")]
    roles: Vec<String>,
    /// Also save the raw events of the run (JSON Lines).
    #[arg(long, value_name = "FILE.jsonl")]
    export: Option<PathBuf>,
    /// Ring buffer size in bytes (a power of two).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_BUFFER_SIZE)]
    buffer_size: u32,
    /// Run the command this many times: every run's sequence is compared,
    /// and times are the median of the runs.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    runs: u32,
}

fn parse_slowdown(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && f >= 1.0 => Ok(f),
        _ => Err(format!(
            "`{s}` is not a slowdown factor: a number of at least 1 (1.5: half again as slow)"
        )),
    }
}

/// A run of the command, traced and normalized.
struct Run {
    golden: Golden,
    status: std::process::ExitStatus,
    millis: u128,
}

fn traced_run(command: &[String], common: &Common) -> anyhow::Result<Run> {
    let opts = ProbeOptions {
        buffer_size: common.buffer_size,
        ..ProbeOptions::default()
    };
    let capture = session::capture(command, &opts)?;
    if capture.lost > 0 {
        bail!(
            "the probe lost {} events (its ring buffer was full), so this run cannot be \
             compared; try a larger --buffer-size",
            capture.lost
        );
    }
    if let Some(path) = &common.export {
        session::export(&capture.events, path)?;
    }
    let mut golden = golden::from_events(&capture.events, Some(command.join(" ")));
    golden.keep_roles(&common.roles);
    if golden.is_empty() {
        bail!(
            "`{}` started no container that inspector saw (it follows container engines, \
             shims and runtimes: docker, containerd, runc, inspector-runtime…)",
            command.join(" ")
        );
    }
    Ok(Run {
        golden,
        status: capture.status,
        millis: capture.command_time.as_millis(),
    })
}

fn summary(g: &Golden) -> String {
    let roles: usize = g.sections.iter().map(|s| s.roles.len()).sum();
    let containers = g
        .sections
        .iter()
        .filter(|s| s.name != golden::ENGINE)
        .count();
    let once = g
        .sections
        .iter()
        .flat_map(|s| &s.roles)
        .flat_map(|r| r.lines())
        .filter(|l| l.once)
        .count();
    let once = if once > 0 {
        format!(", {once} of them one-time engine set-up")
    } else {
        String::new()
    };
    format!(
        "{containers} container(s), {roles} roles, {} events{once}",
        g.len()
    )
}

/// `common.runs` runs of the command: the first's golden with the median
/// times of all, and every run.
fn traced_runs(command: &[String], common: &Common) -> anyhow::Result<(Golden, Vec<Run>)> {
    let mut runs = Vec::new();
    for n in 1..=common.runs {
        if common.runs > 1 {
            eprintln!("inspector: run {n} of {}", common.runs);
        }
        runs.push(traced_run(command, common)?);
    }
    let mut golden = runs[0].golden.clone();
    let times: Vec<&golden::Times> = runs
        .iter()
        .filter_map(|r| r.golden.times.as_ref())
        .collect();
    golden.times = (!times.is_empty()).then(|| golden::Times::median(&times));
    Ok((golden, runs))
}

pub fn record(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let (golden, runs) = traced_runs(&args.command, &args.common)?;
    let run = Run {
        golden,
        ..runs.into_iter().last().expect("at least one run")
    };
    write_golden(&args.golden, &run.golden)?;
    eprintln!(
        "inspector: recorded {} in {} ({}; the command took {} ms)",
        summary(&run.golden),
        args.golden.display(),
        describe_status(run.status),
        run.millis
    );
    // The command's own exit status, as a shell reports it.
    Ok(ExitCode::from(present::shell_exit_code(run.status)))
}

pub fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    // Read the golden first: a missing or malformed one fails before the run.
    let expected = if args.update {
        None
    } else {
        Some(read_golden(&args.golden)?)
    };
    if let (Some(_), Some(expected)) = (args.max_slowdown, &expected)
        && expected.times.is_none()
    {
        bail!(
            "{} has no times to compare with --max-slowdown (it was recorded before inspector \
             kept them); record them with `inspector check --update --runs N --golden {} -- CMD`",
            args.golden.display(),
            args.golden.display()
        );
    }
    let (golden, runs) = traced_runs(&args.command, &args.common)?;
    let Some(mut expected) = expected else {
        write_golden(&args.golden, &golden)?;
        eprintln!(
            "inspector: updated {} with {}",
            args.golden.display(),
            summary(&golden)
        );
        return Ok(ExitCode::SUCCESS);
    };
    expected.keep_roles(&args.common.roles);
    // Every run's sequence is compared; the first that differs is shown.
    let compared: Vec<_> = runs
        .iter()
        .map(|r| compare::compare(&expected, &r.golden))
        .collect();
    let shown = compared
        .iter()
        .position(|d| d.iter().any(|d| d.differs()))
        .unwrap_or(0);
    let diffs = &compared[shown];
    if let Some(path) = &args.junit {
        let name = args
            .golden
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "golden".into());
        let xml = junit::report(&name, diffs, started.elapsed().as_secs_f64());
        session::write_atomically(path, xml.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let differing = diffs.iter().filter(|d| d.differs()).count();
    let this_run = if runs.len() > 1 {
        format!(
            "run {} of {}: {}",
            shown + 1,
            runs.len(),
            args.command.join(" ")
        )
    } else {
        format!("this run: {}", args.command.join(" "))
    };
    let golden_name = args.golden.display().to_string();
    let note = compare::one_time_note(diffs, &golden_name, "this run");
    let slow = match args.max_slowdown {
        Some(factor) => slowdowns(&expected, &golden, factor),
        None => Vec::new(),
    };
    let millis: u128 = runs.iter().map(|r| r.millis).sum();
    if differing == 0 && slow.is_empty() {
        print!("{note}");
        eprintln!(
            "inspector: {} matches {} ({}; {})",
            args.command.join(" "),
            args.golden.display(),
            summary(&golden),
            took(&runs, millis)
        );
        return Ok(ExitCode::SUCCESS);
    }
    if differing > 0 {
        print!(
            "{}{note}",
            compare::unified(diffs, &golden_name, &this_run, 3)
        );
        eprintln!(
            "inspector: {differing} of {} roles differ from {}; if the change is intended, \
             rerun with --update and commit the golden",
            diffs.len(),
            args.golden.display()
        );
    }
    for (table, message) in &slow {
        print!("{table}");
        eprintln!("inspector: {message}");
    }
    Ok(ExitCode::from(1))
}

/// How long the runs took, as the user would say it.
fn took(runs: &[Run], millis: u128) -> String {
    match runs {
        [one] => format!("the command took {} ms", one.millis),
        _ => format!("{} runs took {millis} ms", runs.len()),
    }
}

/// Each container whose median start latency is more than `factor` times
/// the golden's: the times compared (a table) and what to say.
fn slowdowns(expected: &Golden, got: &Golden, factor: f64) -> Vec<(String, String)> {
    let (Some(want), Some(have)) = (&expected.times, &got.times) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, want) in &want.containers {
        let Some(have) = have.of(name) else { continue };
        let (Some(a), Some(b)) = (want.start_latency_ms, have.start_latency_ms) else {
            continue;
        };
        if b <= a * factor {
            continue;
        }
        let changes = timing::compare(want, have);
        let runs = got.times.as_ref().map_or(1, |t| t.runs);
        let (column, over) = if runs == 1 {
            ("this run".to_string(), "in one run".to_string())
        } else {
            (
                format!("median/{runs}"),
                format!("the median of {runs} runs"),
            )
        };
        let table = format!(
            "{}:\n{}",
            bare(name),
            timing::render(&changes, "golden", &column, 10)
        );
        out.push((
            table,
            format!(
                "{} started in {b:.1} ms ({over}), {:.2}× the golden's {a:.1} ms \
                 (--max-slowdown {factor}); `inspector diff --timing` of two recordings \
                 (`--export`, with `inspector trace --sched` for causes) says where",
                bare(name),
                b / a
            ),
        ));
    }
    out
}

pub fn diff(args: DiffArgs) -> anyhow::Result<ExitCode> {
    if args.timing {
        return diff_timing(&args);
    }
    let mut a = load_either(&args.a)?;
    let mut b = load_either(&args.b)?;
    a.keep_roles(&args.roles);
    b.keep_roles(&args.roles);
    let diffs = compare::compare(&a, &b);
    let (a_name, b_name) = (args.a.display().to_string(), args.b.display().to_string());
    let text = compare::unified(&diffs, &a_name, &b_name, 3);
    // One-time engine set-up on one side only is said, and is no difference.
    print!("{text}{}", compare::one_time_note(&diffs, &a_name, &b_name));
    Ok(if text.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `inspector diff --timing A B`: times, not sequences. Informative: the
/// exit status is 0 whatever changed (`check --max-slowdown` is the gate).
fn diff_timing(args: &DiffArgs) -> anyhow::Result<ExitCode> {
    let (a, a_count) = load_timing(&args.a)?;
    let (b, b_count) = load_timing(&args.b)?;
    let side = |path: &Path, n: usize| {
        let what = if n == 1 {
            "1 container".to_string()
        } else {
            format!("the median of {n} containers")
        };
        format!("{}: {what}", bare(&path.display().to_string()))
    };
    println!("A = {}", side(&args.a, a_count));
    println!("B = {}", side(&args.b, b_count));
    print!("{}", timing::render(&timing::compare(&a, &b), "A", "B", 15));
    if a.by_cause.is_empty() && b.by_cause.is_empty() {
        eprintln!(
            "inspector: no scheduler records on either side, so phases only; record with \
             `inspector trace --sched --format jsonl -o FILE` for the critical path's roles \
             and causes"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A side of `diff --timing`: a golden's times, a recording's containers, or
/// `FILE:ID`, one container of a recording. The median timing, and of how
/// many containers.
fn load_timing(arg: &Path) -> anyhow::Result<(timing::Timing, usize)> {
    let (path, container) = match arg.to_str().and_then(|s| s.rsplit_once(':')) {
        Some((file, id)) if !arg.exists() && !id.is_empty() => (Path::new(file), Some(id)),
        _ => (arg, None),
    };
    let timings = match open_either(path)? {
        Either::Golden(golden) => {
            let Some(times) = golden.times else {
                bail!(
                    "the golden {} has no times (it was recorded before inspector kept them); \
                     record it again with `inspector check --update --runs N`",
                    path.display()
                );
            };
            times
                .containers
                .into_iter()
                .filter(|(name, _)| container.is_none_or(|c| name.ends_with(&format!(" {c}"))))
                .map(|(_, t)| t)
                .collect()
        }
        Either::Recording(input) => {
            let (timings, summary) =
                timing::of_recording(input, container).with_context(|| not_either(path))?;
            warn(path, &summary);
            timings
        }
    };
    if timings.is_empty() {
        match container {
            Some(id) => bail!("no container {id:?} in {}", path.display()),
            None => bail!("no container in {}", path.display()),
        }
    }
    Ok((timing::Timing::median(&timings), timings.len()))
}

fn read_golden(path: &Path) -> anyhow::Result<Golden> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the golden {} (record one with `inspector record --golden {} -- CMD`, \
             or rerun check with --update)",
            path.display(),
            path.display()
        )
    })?;
    format::parse(&text).with_context(|| format!("{} is not a valid golden", path.display()))
}

/// What `diff` was given: a golden, read, or a recording, still to read (a
/// recording is never held whole as text).
enum Either {
    Golden(Golden),
    Recording(std::io::BufReader<std::fs::File>),
}

/// Opens `path` and tells a golden (by its first line) from a recording.
fn open_either(path: &Path) -> anyhow::Result<Either> {
    use std::io::{BufRead as _, Read as _};
    let cannot_read = || format!("cannot read {}", path.display());
    let mut input = std::io::BufReader::new(std::fs::File::open(path).with_context(cannot_read)?);
    if !input
        .fill_buf()
        .with_context(cannot_read)?
        .starts_with(format::MAGIC.as_bytes())
    {
        return Ok(Either::Recording(input));
    }
    let mut text = String::new();
    input.read_to_string(&mut text).with_context(cannot_read)?;
    let golden = format::parse(&text)
        .with_context(|| format!("{} is not a valid golden", path.display()))?;
    Ok(Either::Golden(golden))
}

fn not_either(path: &Path) -> String {
    format!(
        "{} is neither a golden nor a recording (`inspector trace --format jsonl`)",
        path.display()
    )
}

/// What reading a recording found, said as `inspector timeline` says it.
fn warn(path: &Path, summary: &inspector::timeline::reader::ReadSummary) {
    for warning in summary.warnings() {
        eprintln!("inspector: {}: {warning}", path.display());
    }
}

/// A golden file, or a recording made into one.
fn load_either(path: &Path) -> anyhow::Result<Golden> {
    match open_either(path)? {
        Either::Golden(golden) => Ok(golden),
        Either::Recording(input) => {
            let (golden, summary) =
                golden::from_recording(input).with_context(|| not_either(path))?;
            warn(path, &summary);
            Ok(golden)
        }
    }
}

fn write_golden(path: &Path, g: &Golden) -> anyhow::Result<()> {
    session::write_atomically(path, format::render(g).as_bytes())
        .with_context(|| format!("cannot write the golden {}", path.display()))
}

fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}
