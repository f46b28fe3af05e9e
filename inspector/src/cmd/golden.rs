//! `inspector record`, `inspector check` and `inspector diff`: golden syscall
//! sequences for CI.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Instant,
};

use anyhow::{Context as _, bail};
use inspector::{
    golden::{self, Golden, compare, format, junit, session},
    probe::{DEFAULT_BUFFER_SIZE, ProbeOptions},
    timeline::present,
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

pub fn record(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let run = traced_run(&args.command, &args.common)?;
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
    let run = traced_run(&args.command, &args.common)?;
    let Some(mut expected) = expected else {
        write_golden(&args.golden, &run.golden)?;
        eprintln!(
            "inspector: updated {} with {}",
            args.golden.display(),
            summary(&run.golden)
        );
        return Ok(ExitCode::SUCCESS);
    };
    expected.keep_roles(&args.common.roles);
    let diffs = compare::compare(&expected, &run.golden);
    if let Some(path) = &args.junit {
        let name = args
            .golden
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "golden".into());
        let xml = junit::report(&name, &diffs, started.elapsed().as_secs_f64());
        session::write_atomically(path, xml.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let differing = diffs.iter().filter(|d| d.differs()).count();
    let this_run = format!("this run: {}", args.command.join(" "));
    let golden_name = args.golden.display().to_string();
    let note = compare::one_time_note(&diffs, &golden_name, "this run");
    if differing == 0 {
        print!("{note}");
        eprintln!(
            "inspector: {} matches {} ({}; the command took {} ms)",
            args.command.join(" "),
            args.golden.display(),
            summary(&run.golden),
            run.millis
        );
        return Ok(ExitCode::SUCCESS);
    }
    print!(
        "{}{note}",
        compare::unified(&diffs, &golden_name, &this_run, 3)
    );
    eprintln!(
        "inspector: {differing} of {} roles differ from {}; if the change is intended, \
         rerun with --update and commit the golden",
        diffs.len(),
        args.golden.display()
    );
    Ok(ExitCode::from(1))
}

pub fn diff(args: DiffArgs) -> anyhow::Result<ExitCode> {
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

/// A golden file, or a recording made into one (read as a stream: a
/// recording is never held whole as text).
fn load_either(path: &Path) -> anyhow::Result<Golden> {
    use std::io::{BufRead as _, Read as _};
    let cannot_read = || format!("cannot read {}", path.display());
    let mut input = std::io::BufReader::new(std::fs::File::open(path).with_context(cannot_read)?);
    if input
        .fill_buf()
        .with_context(cannot_read)?
        .starts_with(format::MAGIC.as_bytes())
    {
        let mut text = String::new();
        input.read_to_string(&mut text).with_context(cannot_read)?;
        return format::parse(&text)
            .with_context(|| format!("{} is not a valid golden", path.display()));
    }
    let (golden, summary) = golden::from_recording(input).with_context(|| {
        format!(
            "{} is neither a golden nor a recording (`inspector trace --format jsonl`)",
            path.display()
        )
    })?;
    for warning in summary.warnings() {
        eprintln!("inspector: {}: {warning}", path.display());
    }
    Ok(golden)
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
