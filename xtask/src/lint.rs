//! `cargo xtask lint`: clippy with every warning an error, on the host crates
//! (all targets: libraries, binaries, tests, benches) and on the probe.
//!
//! The probe (`inspector-ebpf`) only builds for the BPF target, so it is
//! linted the way inspector's build script builds it with `aya-build`:
//! nightly cargo, `--target bpfel-unknown-none`, `-Z build-std=core`, and the
//! same `bpf_target_arch` cfg. Its own target directory keeps those flags from
//! invalidating the host build's cache. `fuzz/` is a workspace of its own,
//! built by cargo-fuzz, and is not linted here.

use std::process::Command;

use anyhow::{Result, bail};

use crate::util;

/// What one clippy run is about.
#[derive(Clone, Copy)]
pub enum Scope {
    /// Every host crate of the workspace, all targets.
    Host,
    /// The probe, for the BPF target.
    Probe,
}

impl Scope {
    pub const ALL: [Scope; 2] = [Scope::Host, Scope::Probe];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Host => "clippy (host crates)",
            Scope::Probe => "clippy (probe, BPF target)",
        }
    }
}

/// `cargo +nightly`, with nothing of the cargo that runs xtask leaking in.
pub fn nightly_cargo() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.arg("+nightly")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .current_dir(util::root());
    cmd
}

/// Runs clippy on `scope`; fails when it finds anything.
pub fn clippy(scope: Scope) -> Result<()> {
    util::step(&format!("lint: {}", scope.name()));
    let mut cmd = match scope {
        Scope::Host => {
            let mut cmd = util::cargo();
            cmd.args([
                "clippy",
                "--workspace",
                "--exclude",
                "inspector-ebpf",
                "--all-targets",
            ])
            .current_dir(util::root());
            cmd
        }
        Scope::Probe => {
            // The target and flags aya-build picks for this host: the BPF
            // target of its byte order, its architecture as a cfg (0x1f
            // separates encoded flags).
            let target = if cfg!(target_endian = "big") {
                "bpfeb-unknown-none"
            } else {
                "bpfel-unknown-none"
            };
            let flags = format!(
                "--cfg=bpf_target_arch=\"{}\"\x1f-Cdebuginfo=2\x1f-Clink-arg=--btf",
                std::env::consts::ARCH
            );
            let mut cmd = nightly_cargo();
            cmd.args([
                "clippy",
                "--package",
                "inspector-ebpf",
                "--bins",
                "--release",
                "--target",
                target,
                "-Z",
                "build-std=core",
                "--target-dir",
            ])
            .arg(util::root().join("target/lint-ebpf"))
            .env("CARGO_ENCODED_RUSTFLAGS", flags);
            cmd
        }
    };
    util::run(cmd.args(["--", "-D", "warnings"]))
}

/// Runs every clippy run, each reported as it ends; returns the names of
/// those that found something.
pub fn failures() -> Vec<&'static str> {
    Scope::ALL
        .into_iter()
        .filter_map(|scope| match clippy(scope) {
            Ok(()) => None,
            Err(e) => {
                eprintln!("{}: {e:#}", scope.name());
                Some(scope.name())
            }
        })
        .collect()
}

/// `cargo xtask lint`: fails naming the clippy runs that found something.
pub fn run() -> Result<()> {
    let failed = failures();
    if !failed.is_empty() {
        bail!("lint failed: {}", failed.join(", "));
    }
    Ok(())
}
