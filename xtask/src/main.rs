//! `cargo xtask`: what cargo alone cannot do for inspector.
//!
//! - `setup`: install what building and testing need (Debian packages, the
//!   nightly `rust-src` component, bpf-linker, a mounted tracefs). Idempotent,
//!   and quick when everything is already there.
//! - `build`: set-up, then release binaries into `target/release/`.
//! - `dist`: static binaries (musl) in `target/dist/`, a .deb of them with
//!   the agent's systemd unit, completions and man pages; with `--image`, the
//!   agent's container image, imported into Docker.
//! - `docker`: start the Docker engine if it is not running and make the test image.
//! - `run`: the main job: launch a container with `inspector run` and show
//!   what the kernel saw, from its first syscall to its deletion.
//! - `test`: set-up, build, Docker, dist (with the image), then every test,
//!   the lint, then every fuzz target for a short, fixed time.
//! - `vm-test`: set-up, build, the static binaries, then only the test that
//!   boots Debian 12's kernel under qemu and runs inspector there, on pure
//!   cgroup2.
//! - `lint`: clippy with warnings as errors, on the host crates and on the
//!   probe for the BPF target.
//! - `bench`: the benchmarks, as ratios against baselines measured in the same run.
//! - `fuzz`: the cargo-fuzz targets in `fuzz/` (nightly), each for a fixed time;
//!   a crash names its reproducer and the command that runs it again.

mod bench;
mod bench_run;
mod bench_runtime;
mod bench_tui;
mod dist;
mod docker;
mod engines;
mod fuzz;
mod lint;
mod setup;
mod util;
mod vm;

use anyhow::{Context as _, Result, bail};
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
    /// Set up, then build static binaries into target/dist/ and a .deb of
    /// them (with the agent's systemd unit, completions and man pages).
    Dist {
        /// Also make the agent's container image (imported into Docker).
        #[arg(long)]
        image: bool,
    },
    /// Start the Docker engine if needed and import the busybox test image
    /// into it, podman and containerd's k8s.io namespace.
    Docker,
    /// The main job: `inspector run` one container (no image, no network
    /// needed) and print its lifecycle as the kernel saw it.
    Run {
        /// Phases and processes only, not every step.
        #[arg(long)]
        brief: bool,
        /// Trace one `docker run --rm IMAGE true` with `inspector trace`
        /// instead (starts the Docker engine and imports the test image).
        #[arg(long)]
        docker: bool,
    },
    /// Set up, build, start Docker, then run all tests, the lint, and every
    /// fuzz target for a short, fixed time.
    Test {
        /// Extra arguments for `cargo test` (after `--`).
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
    /// Set up, build, then boot Debian 12's kernel (6.1) under qemu and run
    /// inspector there, on a pure cgroup2 layout (the VM test alone).
    VmTest {
        /// Extra arguments for the test binary (after `--`), e.g. a test name.
        #[arg(last = true)]
        test_args: Vec<String>,
    },
    /// clippy with warnings as errors: the host crates (all targets) and the
    /// probe (for the BPF target, as its build does).
    Lint,
    /// Run the benchmarks and print each number as a ratio against its baseline.
    Bench {
        /// Which benchmarks (default: all).
        #[arg(value_enum)]
        which: Vec<bench::Which>,
    },
    /// Run the fuzz targets (cargo-fuzz on nightly, installed if missing),
    /// each for a fixed time; a crash names its reproducer.
    Fuzz {
        /// Which target (default: all).
        #[arg(value_enum)]
        target: Option<fuzz::Target>,
        /// How long to run each target.
        #[arg(long, value_name = "N", default_value_t = 60)]
        seconds: u64,
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
        Command::Dist { image } => {
            setup::run()?;
            dist::run(image)
        }
        Command::Docker => {
            setup::run()?;
            docker::ensure()?;
            engines::ensure()
        }
        Command::Run { brief, docker } => {
            setup::run()?;
            build()?;
            if docker {
                docker::ensure()?;
                return docker::trace_one_run(false);
            }
            traced_run(brief)
        }
        Command::Test { cargo_args } => {
            setup::run()?;
            build()?;
            docker::ensure()?;
            engines::ensure()?;
            // The dist tests check the static binaries, the .deb and the image.
            dist::run(true)?;
            test(&cargo_args)
        }
        Command::Lint => {
            setup::toolchains()?;
            lint::run()
        }
        Command::VmTest { test_args } => {
            setup::run()?;
            build()?;
            // The guest runs the static binaries too, with no library at all.
            dist::binaries()?;
            vm::test(&test_args)
        }
        Command::Bench { which } => {
            setup::run()?;
            build()?;
            docker::ensure()?;
            engines::ensure()?;
            bench::run(&which)
        }
        Command::Fuzz { target, seconds } => {
            // The fuzz crate builds inspector, whose build script builds the
            // probe with nightly and bpf-linker.
            setup::run()?;
            fuzz::run(target, seconds)
        }
    }
}

/// `inspector run` of a shell in the default root filesystem (the host's
/// programs, read-only): it needs neither an image nor a network, so it works
/// on a fresh machine. The shell exits 3 on purpose, to show the exit code
/// going through.
fn traced_run(brief: bool) -> Result<()> {
    const SCRIPT: &str = "echo hello from a traced container; exit 3";
    let inspector = util::root().join("target/release/inspector");
    util::step(&format!("inspector run -- /bin/sh -c '{SCRIPT}'"));
    let mut cmd = std::process::Command::new(&inspector);
    cmd.arg("run");
    if brief {
        cmd.arg("--brief");
    }
    let status = cmd
        .args(["--", "/bin/sh", "-c", SCRIPT])
        .status()
        .with_context(|| format!("cannot start {}", inspector.display()))?;
    if status.code() != Some(3) {
        bail!("inspector run exited with {status}, expected the container's 3");
    }
    Ok(())
}

fn build() -> Result<()> {
    util::step("building release binaries");
    // The runtime is built before dockerd starts: `docker::ensure` registers it.
    util::run(
        util::cargo()
            .args([
                "build",
                "--release",
                "--package",
                "inspector",
                "--package",
                "runtime",
            ])
            .current_dir(util::root()),
    )?;
    static_runtime()
}

/// Rebuilds `inspector-runtime` as a static, position-dependent executable
/// and puts it where the workspace build put the dynamic one (next to
/// inspector, where inspector, dockerd and the tests find it). Every
/// container start executes the runtime twice (the command, then its sealed
/// copy as init); static, each execution skips the dynamic loader and its
/// relocations: 0.27–0.28× runc instead of 0.30–0.31× in `cargo xtask bench
/// runtime` on this machine kind. RUSTFLAGS reach only the target's crates
/// when `--target` is given, not the build scripts and proc macros, which
/// cannot be static; hence the target directory of its own. (A plain `cargo
/// build --release` afterwards puts the dynamic one back: it works, slower.)
fn static_runtime() -> Result<()> {
    util::step("linking inspector-runtime statically");
    let root = util::root();
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let host = util::output(std::process::Command::new(rustc).arg("-vV"))?;
    let host = String::from_utf8_lossy(&host.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .context("rustc -vV names no host")?;
    util::run(
        util::cargo()
            .args([
                "build",
                "--release",
                "--package",
                "runtime",
                "--bin",
                "inspector-runtime",
            ])
            .args(["--target", &host])
            .env(
                "RUSTFLAGS",
                "-C target-feature=+crt-static -C relocation-model=static",
            )
            .current_dir(&root),
    )?;
    let built = root
        .join("target")
        .join(&host)
        .join("release/inspector-runtime");
    let dest = docker::runtime_binary();
    // Renamed into place: a dockerd may be executing the old one.
    let tmp = dest.with_extension("static.tmp");
    std::fs::copy(&built, &tmp)
        .with_context(|| format!("cannot copy {} to {}", built.display(), tmp.display()))?;
    std::fs::rename(&tmp, &dest).with_context(|| format!("cannot replace {}", dest.display()))?;
    Ok(())
}

/// What the tests are told: the binaries `build` made and the image
/// `docker::ensure` imported; they run from the workspace root.
fn test_env(cmd: &mut std::process::Command) -> &mut std::process::Command {
    let root = util::root();
    cmd.env("INSPECTOR_BIN", root.join("target/release/inspector"))
        .env("INSPECTOR_TEST_IMAGE", docker::IMAGE)
        .current_dir(root)
}

fn test(extra: &[String]) -> Result<()> {
    util::step("running all tests");
    let mut cmd = util::cargo();
    // --release reuses the binaries `build` just made; the probe crate only
    // builds for the BPF target, through inspector's build script.
    // --no-fail-fast: one run reports every failing test binary, not the first.
    cmd.args([
        "test",
        "--release",
        "--no-fail-fast",
        "--workspace",
        "--exclude",
        "inspector-ebpf",
    ])
    .args(extra)
    .stdout(std::process::Stdio::piped());
    test_env(&mut cmd);
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

    // Then the lint and each fuzz target, one entry of the total each. A run
    // for a few named tests (extra arguments) is not the whole suite: no
    // lint or fuzzing then.
    let mut notes = Vec::new();
    let mut lint_failed = Vec::new();
    let mut fuzz_failed = Vec::new();
    if extra.is_empty() {
        lint_failed = lint::failures();
        let runs = lint::Scope::ALL.len();
        passed += (runs - lint_failed.len()) as u64;
        failed += lint_failed.len() as u64;
        notes.push(format!("{runs} clippy runs"));

        let seconds = fuzz::SECONDS_IN_TEST;
        let targets = fuzz::Target::ALL;
        match fuzz::run_all(&targets, seconds) {
            Ok(outcomes) => {
                for o in outcomes {
                    match o.failure {
                        None => passed += 1,
                        Some(_) => {
                            failed += 1;
                            fuzz_failed.push(o.target.name());
                        }
                    }
                }
            }
            Err(e) => {
                eprintln!("fuzz targets: {e:#}");
                failed += targets.len() as u64;
                fuzz_failed.extend(targets.iter().map(|t| t.name()));
            }
        }
        notes.push(format!("{} fuzz targets, {seconds} s each", targets.len()));
    }
    let note = if notes.is_empty() {
        String::new()
    } else {
        format!(" (with {})", notes.join("; "))
    };
    println!("all tests: {passed} passed, {failed} failed{note}");
    if !status.success() {
        bail!("tests failed ({status})");
    }
    if !lint_failed.is_empty() {
        bail!("lint failed: {}", lint_failed.join(", "));
    }
    if !fuzz_failed.is_empty() {
        bail!("fuzz targets failed: {}", fuzz_failed.join(", "));
    }
    Ok(())
}
