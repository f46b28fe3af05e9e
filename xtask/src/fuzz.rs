//! `cargo xtask fuzz`: runs the cargo-fuzz targets in `fuzz/` (nightly,
//! libFuzzer) for a fixed time each, and says how to reproduce a crash.
//! `cargo xtask test` runs every target for a short time after the tests.
//!
//! Each target reads its committed seed corpus (`fuzz/corpus/TARGET`) and the
//! inputs it once crashed on (`fuzz/regressions/TARGET`), and writes what it
//! finds new to `fuzz/target/corpus/TARGET`, so the committed files stay as
//! they are and a later local run starts where the last one ended.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::util;

/// The targets, named for what they feed (fuzz/fuzz_targets/*.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// A recording, through `timeline` and `diff`'s readers and outputs.
    Recording,
    /// A golden file, through its parser and back through its renderer.
    Golden,
    /// A config.json, through what `inspector-runtime create` checks.
    Config,
    /// A seccomp section, compiled to BPF and checked against the profile.
    Seccomp,
    /// The kernel's BTF, through the struct-offset and tracepoint lookups.
    Btf,
}

impl Target {
    pub const ALL: [Target; 5] = [
        Target::Recording,
        Target::Golden,
        Target::Config,
        Target::Seccomp,
        Target::Btf,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::Recording => "recording",
            Target::Golden => "golden",
            Target::Config => "config",
            Target::Seccomp => "seccomp",
            Target::Btf => "btf",
        }
    }
}

/// How long `cargo xtask test` runs each target: long enough to catch a
/// regression on the seeds and their near mutations, short enough that the
/// four add a minute and a half to CI.
pub const SECONDS_IN_TEST: u64 = 20;

/// How one target's run ended.
pub struct Outcome {
    pub target: Target,
    /// None: it ran its time without a crash.
    pub failure: Option<String>,
}

/// `cargo xtask fuzz [TARGET] [--seconds N]`.
pub fn run(target: Option<Target>, seconds: u64) -> Result<()> {
    let targets = match target {
        Some(t) => vec![t],
        None => Target::ALL.to_vec(),
    };
    let outcomes = run_all(&targets, seconds)?;
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.failure.is_some())
        .map(|o| o.target.name())
        .collect();
    if !failed.is_empty() {
        bail!("fuzz targets that crashed: {}", failed.join(", "));
    }
    Ok(())
}

/// Builds the targets, then runs each for `seconds`; a build failure is an
/// error, a crash an [`Outcome`] naming its reproducer.
pub fn run_all(targets: &[Target], seconds: u64) -> Result<Vec<Outcome>> {
    crate::setup::cargo_fuzz()?;
    build(targets)?;
    let mut outcomes = Vec::new();
    for &t in targets {
        let outcome = run_one(t, seconds)?;
        outcomes.push(outcome);
    }
    for o in &outcomes {
        match &o.failure {
            None => println!("fuzz {}: ok", o.target.name()),
            Some(f) => println!("fuzz {}: FAILED\n{f}", o.target.name()),
        }
    }
    Ok(outcomes)
}

fn fuzz_dir() -> PathBuf {
    util::root().join("fuzz")
}

/// `cargo +nightly fuzz` from the workspace root (cargo-fuzz finds `fuzz/`).
/// Debug assertions on: an overflow on hostile input is a bug to find too.
fn cargo_fuzz(subcommand: &str) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.args(["+nightly", "fuzz", subcommand, "--debug-assertions"])
        // The stable cargo that runs xtask must not leak into nightly's.
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .current_dir(util::root());
    cmd
}

fn build(targets: &[Target]) -> Result<()> {
    let started = Instant::now();
    util::step(
        "building the fuzz targets (cargo +nightly fuzz build; a few minutes the first time)",
    );
    let mut cmd = cargo_fuzz("build");
    if let [one] = targets {
        cmd.arg(one.name());
    }
    util::run(&mut cmd).context("the fuzz targets do not build")?;
    eprintln!(
        "==> fuzz targets built in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn run_one(target: Target, seconds: u64) -> Result<Outcome> {
    let name = target.name();
    util::step(&format!("fuzzing {name} for {seconds} s"));
    let dir = fuzz_dir();
    let scratch = dir.join("target/corpus").join(name);
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    // The binary `build` made, run directly: `cargo fuzz run` would rebuild
    // it first whenever a source file changed since, and time the build too.
    let binary = dir
        .join("target/x86_64-unknown-linux-gnu/release")
        .join(name);
    let artifacts = dir.join("artifacts").join(name);
    std::fs::create_dir_all(&artifacts)
        .with_context(|| format!("cannot create {}", artifacts.display()))?;
    let mut cmd = Command::new(&binary);
    // As cargo-fuzz runs it.
    cmd.env("ASAN_OPTIONS", "detect_odr_violation=0")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(&scratch)
        .arg(dir.join("corpus").join(name));
    // Every input a target once crashed on is run again first.
    let regressions = dir.join("regressions").join(name);
    if regressions.is_dir() {
        cmd.arg(&regressions);
    }
    cmd.arg(format!("-max_total_time={seconds}"))
        // One slow input is a finding, not a reason to wait 20 minutes.
        .arg("-timeout=10")
        .arg("-print_final_stats=1");
    let dict = dir.join("dict").join(format!("{name}.dict"));
    if dict.is_file() {
        cmd.arg(format!("-dict={}", dict.display()));
    }
    cmd.stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let stderr = child.stderr.take().context("piped stderr")?;
    let watch = watch(name, std::io::BufReader::new(stderr))?;
    let status = child.wait()?;
    if status.success() {
        return Ok(Outcome {
            target,
            failure: None,
        });
    }
    let failure = match watch.crash {
        Some(path) => {
            let shown = path.strip_prefix(util::root()).unwrap_or(&path);
            format!(
                "  reproducer: {}\n  run it again: cargo +nightly fuzz run --debug-assertions {name} {}\n  then save it where its crate's regression test reads it (fuzz/regressions/{name}/)",
                shown.display(),
                shown.display()
            )
        }
        None => format!(
            "  cargo fuzz run {name} exited with {status} before libFuzzer wrote a reproducer"
        ),
    };
    Ok(Outcome {
        target,
        failure: Some(failure),
    })
}

struct Watched {
    crash: Option<PathBuf>,
}

/// Passes libFuzzer's output through, but its status lines (`#1234 NEW
/// cov: ...`, hundreds a second at first) only every few seconds, so a run
/// shows progress without burying a crash report.
fn watch(name: &str, stderr: impl std::io::BufRead) -> Result<Watched> {
    const EVERY: Duration = Duration::from_secs(5);
    let mut crash = None;
    let mut last_shown = Instant::now();
    let mut pending: Option<String> = None;
    // The dictionary libFuzzer suggests at the end: dozens of lines of noise here.
    let mut in_dictionary = false;
    for line in stderr.lines() {
        let line = line?;
        if line.contains("Recommended dictionary.") {
            in_dictionary = true;
        }
        if in_dictionary {
            in_dictionary = !line.contains("End of recommended dictionary.");
            continue;
        }
        if let Some(path) = line.split("Test unit written to ").nth(1) {
            crash = Some(absolute(path.trim()));
        }
        if line.starts_with('#') || line.trim_start().starts_with("NEW_FUNC") {
            if last_shown.elapsed() >= EVERY {
                eprintln!("  {name}: {line}");
                last_shown = Instant::now();
                pending = None;
            } else {
                pending = Some(line);
            }
            continue;
        }
        // libFuzzer's start-up notes, and the probe build's output that cargo
        // replays as build-script warnings when the targets are rebuilt.
        let build_script_echo = line
            .strip_prefix("warning: ")
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(package, _)| package.contains('@'));
        if line.starts_with("INFO:")
            || build_script_echo
            || line.starts_with("stat::") && !line.contains("executed_units")
        {
            continue;
        }
        if let Some(p) = pending.take() {
            eprintln!("  {name}: {p}");
        }
        eprintln!("  {name}: {line}");
    }
    if let Some(p) = pending {
        eprintln!("  {name}: {p}");
    }
    Ok(Watched { crash })
}

fn absolute(path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        util::root().join(p)
    }
}
