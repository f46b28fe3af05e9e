//! `cargo xtask`: what cargo alone cannot do for inspector.
//!
//! - `setup`: install what building and testing need (Debian packages, the
//!   nightly `rust-src` component, bpf-linker, a mounted tracefs). Idempotent,
//!   and quick when everything is already there.
//! - `build`: set-up, then release binaries into `target/release/`.
//! - `docker`: start the Docker engine if it is not running and make the test image.
//! - `run`: the main job: trace a `docker run` and show what the kernel saw.
//! - `test`: set-up, build, Docker, then every test.
//! - `bench`: the benchmarks, as ratios against baselines measured in the same run.

mod bench;
mod docker;
mod setup;
mod util;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Set-up, builds, integration runs and benchmarks for inspector")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what building and testing need; quick when nothing is missing.
    Setup,
    /// Set up, then build release binaries into target/release/.
    Build,
    /// Start the Docker engine if needed and import the busybox test image.
    Docker,
    /// The main job: trace one `docker run --rm IMAGE true` and print what the kernel saw.
    Run {
        /// Print every event, threads included (by default thread creation is left out).
        #[arg(long)]
        verbose: bool,
    },
    /// Set up, build, start Docker, then run all tests.
    Test {
        /// Extra arguments for `cargo test` (after `--`).
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
    /// Run the benchmarks and print each number as a ratio against its baseline.
    Bench {
        /// Which benchmarks (default: all).
        #[arg(value_enum)]
        which: Vec<bench::Which>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Setup => setup::run(),
        Command::Build => {
            setup::run()?;
            build()
        }
        Command::Docker => {
            setup::run()?;
            docker::ensure()
        }
        Command::Run { verbose } => {
            setup::run()?;
            build()?;
            docker::ensure()?;
            docker::trace_one_run(verbose)
        }
        Command::Test { cargo_args } => {
            setup::run()?;
            build()?;
            docker::ensure()?;
            test(&cargo_args)
        }
        Command::Bench { which } => {
            setup::run()?;
            build()?;
            docker::ensure()?;
            bench::run(&which)
        }
    }
}

fn build() -> Result<()> {
    util::step("building release binaries");
    util::run(
        util::cargo()
            .args(["build", "--release", "--package", "inspector"])
            .current_dir(util::root()),
    )
}

fn test(extra: &[String]) -> Result<()> {
    util::step("running all tests");
    let root = util::root();
    let mut cmd = util::cargo();
    // --release reuses the binaries `build` just made; the probe crate only
    // builds for the BPF target, through inspector's build script.
    cmd.args([
        "test",
        "--release",
        "--workspace",
        "--exclude",
        "inspector-ebpf",
    ])
    .args(extra)
    .env("INSPECTOR_BIN", root.join("target/release/inspector"))
    .env("INSPECTOR_TEST_IMAGE", docker::IMAGE)
    .current_dir(&root)
    .stdout(std::process::Stdio::piped());
    // Pass the output through, adding up every test binary's result line so that
    // the run ends with one total.
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (mut passed, mut failed) = (0u64, 0u64);
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |word: &str| -> u64 {
                rest.split(';')
                    .find_map(|part| part.trim().strip_suffix(word))
                    .and_then(|n| n.trim().rsplit(' ').next()?.parse().ok())
                    .unwrap_or(0)
            };
            passed += count(" passed");
            failed += count(" failed");
        }
    }
    let status = child.wait()?;
    println!("all tests: {passed} passed, {failed} failed");
    if !status.success() {
        anyhow::bail!("tests failed ({status})");
    }
    Ok(())
}
