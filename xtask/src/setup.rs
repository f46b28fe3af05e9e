//! Installs what building and testing inspector need, on a fresh machine of
//! this kind. Every step first checks whether it is needed, so a second run
//! costs a few cheap probes.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context as _, Result, bail};

use crate::util;

/// Debian packages the tests and benchmarks use.
const PACKAGES: &[&str] = &[
    "docker.io",      // the engine the tests drive (dockerd, the docker CLI)
    "containerd",     // and its containerd and containerd-shim-runc-v2
    "runc",           // the reference runtime
    "busybox-static", // the root filesystem of the test image
    "iptables",       // Docker's default bridge network
    "bpftool",        // tests check that no program stays attached
    "strace",
    "tmux",
];

const BPF_LINKER_VERSION: &str = "0.13.0";

pub fn run() -> Result<()> {
    let started = Instant::now();
    if unsafe_geteuid() != 0 {
        bail!("set-up installs packages and mounts tracefs: run it as root");
    }
    packages()?;
    rust_src()?;
    bpf_linker()?;
    tracefs()?;
    eprintln!(
        "==> set-up complete in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn unsafe_geteuid() -> u32 {
    // Read from /proc to avoid a libc dependency for one call.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2))
                .and_then(|u| u.parse().ok())
        })
        .unwrap_or(u32::MAX)
}

fn packages() -> Result<()> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Package} ${db:Status-Abbrev}\n"])
        .args(PACKAGES)
        .output()
        .context("dpkg-query is missing: this set-up is for Debian machines")?;
    let listing = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&str> = PACKAGES
        .iter()
        .copied()
        .filter(|p| !listing.lines().any(|l| l.starts_with(&format!("{p} ii"))))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    util::step(&format!(
        "installing Debian packages: {}",
        missing.join(" ")
    ));
    util::run(Command::new("apt-get").args(["update", "-qq"]))?;
    util::run(
        Command::new("apt-get")
            .args(["install", "-y", "-qq"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn nightly_sysroot() -> Result<PathBuf> {
    let out = Command::new("rustc")
        .args(["+nightly", "--print", "sysroot"])
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(PathBuf::from(
            String::from_utf8_lossy(&o.stdout).trim().to_string(),
        )),
        _ => {
            util::step("installing the nightly toolchain");
            util::run(Command::new("rustup").args([
                "toolchain",
                "install",
                "nightly",
                "--profile",
                "minimal",
            ]))?;
            let o = util::output(Command::new("rustc").args(["+nightly", "--print", "sysroot"]))?;
            Ok(PathBuf::from(
                String::from_utf8_lossy(&o.stdout).trim().to_string(),
            ))
        }
    }
}

fn rust_src() -> Result<()> {
    let sysroot = nightly_sysroot()?;
    if sysroot.join("lib/rustlib/src/rust/library/core").is_dir() {
        return Ok(());
    }
    util::step("adding the nightly rust-src component (the probe builds core for BPF)");
    util::run(Command::new("rustup").args([
        "component",
        "add",
        "rust-src",
        "--toolchain",
        "nightly",
    ]))
}

/// bpf-linker, built against nightly's own libLLVM: no system LLVM needed.
fn bpf_linker() -> Result<()> {
    if util::succeeds(Command::new("bpf-linker").arg("--version")) {
        return Ok(());
    }
    let sysroot = nightly_sysroot()?;
    let verbose = util::output(Command::new("rustc").args(["+nightly", "-vV"]))?;
    let verbose = String::from_utf8_lossy(&verbose.stdout);
    let major = verbose
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .context("nightly rustc does not say its LLVM version")?
        .to_string();
    let lib = find_libllvm(&sysroot.join("lib"))?;

    // bpf-linker's build looks for $LLVM_PREFIX/lib/libLLVM.so and records that
    // directory as its run path, where the loader wants the library under its
    // own name: so the prefix lives beside the installed binary, not in target/.
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .context("neither CARGO_HOME nor HOME is set")?;
    let prefix = cargo_home.join("bpf-linker-llvm");
    let prefix_lib = prefix.join("lib");
    std::fs::create_dir_all(&prefix_lib)?;
    for name in [
        "libLLVM.so".to_string(),
        lib.file_name().unwrap().to_string_lossy().to_string(),
    ] {
        let link = prefix_lib.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&lib, &link)?;
    }
    util::step(&format!(
        "building bpf-linker {BPF_LINKER_VERSION} against nightly's LLVM {major} (about a minute)"
    ));
    util::run(
        util::cargo()
            .args([
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--no-default-features",
                "--features",
                &format!("llvm-{major}"),
            ])
            .env("LLVM_PREFIX", &prefix),
    )
}

fn find_libllvm(dir: &Path) -> Result<PathBuf> {
    std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libLLVM.so."))
        })
        .with_context(|| format!("no libLLVM.so.* in {}", dir.display()))
}

fn tracefs() -> Result<()> {
    if Path::new("/sys/kernel/tracing/events").is_dir() {
        return Ok(());
    }
    util::step("mounting tracefs at /sys/kernel/tracing");
    util::run(Command::new("mount").args(["-t", "tracefs", "tracefs", "/sys/kernel/tracing"]))
}
