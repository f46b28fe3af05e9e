//! Installs what building and testing inspector need, on a fresh machine of
//! this kind. Every step first checks whether it is needed, so a second run
//! costs a few cheap probes.
//!
//! Besides this machine's own set-up, it fetches the kernel the VM test
//! (`tests/tests/kernel_vm.rs`) boots: Debian 12's stock kernel, unpacked under
//! `target/vm/kernel/`, never installed on this machine.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
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
    "gcc",        // builds the seccomp tests' static helper (an int $0x80 caller)
    "libc6-dev",  // libc.a: `cargo xtask build` links inspector-runtime statically
    "linux-perf", // `perf bench sched pipe`: the context-switch storm bench
    "crun",       // a peer runtime, measured and traced where it can run
    "podman",     // the second engine the tests drive, with
    "conmon",     // its shim
    // youki's build (`cargo install youki`, below) links these.
    "libseccomp-dev",
    "libsystemd-dev",
    "pkg-config",
    "musl-tools", // musl-gcc: `cargo xtask dist` builds mimalloc's C code for musl
    "prometheus", // the real Prometheus the agent's tests scrape it with (not started as a service)
];

/// PyPI packages the tests use: the OTLP receiver decodes the agent's
/// requests with the official protobuf definitions (tests/otlp/receiver.py).
const PYTHON_PACKAGES: &[(&str, &str)] = &[(
    "opentelemetry-proto==1.45.2",
    "opentelemetry.proto.collector.trace.v1.trace_service_pb2",
)];

/// Debian packages the VM test uses, installed without their recommends
/// (qemu-system-x86 would bring a graphical front end).
const VM_PACKAGES: &[&str] = &[
    "qemu-system-x86", // boots Debian 12's kernel with TCG
    "cpio",            // packs the guest's initramfs
];

/// Debian's metapackage for its current stock kernel; the test boots the
/// package it depends on.
const KERNEL_METAPACKAGE: &str = "linux-image-amd64";

const BPF_LINKER_VERSION: &str = "0.13.0";

pub fn run() -> Result<()> {
    let started = Instant::now();
    if unsafe_geteuid() != 0 {
        bail!("set-up installs packages and mounts tracefs: run it as root");
    }
    packages()?;
    python_packages()?;
    toolchains()?;
    tracefs()?;
    youki()?;
    vm_kernel()?;
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
    let wanted = [PACKAGES, VM_PACKAGES].concat();
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Package} ${db:Status-Abbrev}\n"])
        .args(&wanted)
        .output()
        .context("dpkg-query is missing: this set-up is for Debian machines")?;
    let listing = String::from_utf8_lossy(&out.stdout);
    let (vm, other): (Vec<&str>, Vec<&str>) = wanted
        .iter()
        .copied()
        .filter(|p| !listing.lines().any(|l| l.starts_with(&format!("{p} ii"))))
        .partition(|p| VM_PACKAGES.contains(p));
    if vm.is_empty() && other.is_empty() {
        return Ok(());
    }
    util::step(&format!(
        "installing Debian packages: {}",
        [other.as_slice(), vm.as_slice()].concat().join(" ")
    ));
    util::run(Command::new("apt-get").args(["update", "-qq"]))?;
    for (missing, options) in [(other, &[][..]), (vm, &["--no-install-recommends"][..])] {
        if missing.is_empty() {
            continue;
        }
        util::run(
            Command::new("apt-get")
                .args(["install", "-y", "-qq"])
                .args(options)
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
    }
    Ok(())
}

fn python_packages() -> Result<()> {
    for (package, module) in PYTHON_PACKAGES {
        let there = Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !there {
            util::step(&format!("installing {package} from PyPI"));
            util::run(Command::new("python3").args([
                "-m",
                "pip",
                "install",
                "-q",
                "--root-user-action=ignore",
                package,
            ]))?;
        }
    }
    Ok(())
}

/// The Rust side of set-up, which needs no root: the probe's nightly
/// toolchain with rust-src, bpf-linker, and clippy for `cargo xtask lint`.
pub fn toolchains() -> Result<()> {
    rust_src()?;
    bpf_linker()?;
    clippy()
}

/// clippy on the toolchain that builds the host crates and on nightly (the
/// probe, linted for the BPF target): a minimal toolchain comes without it.
fn clippy() -> Result<()> {
    if !util::succeeds(util::cargo().args(["clippy", "--version"])) {
        util::step("adding the clippy component");
        util::run(Command::new("rustup").args(["component", "add", "clippy"]))?;
    }
    if !util::succeeds(crate::lint::nightly_cargo().args(["clippy", "--version"])) {
        util::step("adding the nightly clippy component");
        add_nightly_component("clippy")?;
    }
    Ok(())
}

fn add_nightly_component(component: &str) -> Result<()> {
    util::run(Command::new("rustup").args([
        "component",
        "add",
        component,
        "--toolchain",
        "nightly",
    ]))
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
    add_nightly_component("rust-src")
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

const YOUKI_VERSION: &str = "0.7.0";

/// youki, the Rust peer runtime the runtime bench measures against: built
/// from crates.io once (about five minutes on two cores), with cgroup v1
/// support, which this machine kind's hybrid layout needs.
fn youki() -> Result<()> {
    let out = Command::new("youki").arg("--version").output();
    if out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(YOUKI_VERSION)) {
        return Ok(());
    }
    util::step(&format!(
        "building youki {YOUKI_VERSION} (about five minutes)"
    ));
    util::run(util::cargo().args([
        "install",
        "youki",
        "--version",
        YOUKI_VERSION,
        "--features",
        "v1",
        "--locked",
    ]))
}

/// The Rust standard library for musl, which `cargo xtask dist` links into
/// static binaries. Not part of [`run`]: only dist needs it.
pub fn musl_target() -> Result<()> {
    let installed = util::output(Command::new("rustup").args(["target", "list", "--installed"]))?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|t| t.trim() == crate::dist::TARGET)
    {
        return Ok(());
    }
    util::step(&format!("adding the {} target", crate::dist::TARGET));
    util::run(Command::new("rustup").args(["target", "add", crate::dist::TARGET]))
}

/// cargo-fuzz, which `cargo xtask fuzz` and `test` drive on the nightly
/// toolchain. Not part of [`run`]: only fuzzing needs it.
pub fn cargo_fuzz() -> Result<()> {
    if util::succeeds(Command::new("cargo").args(["+nightly", "fuzz", "--version"])) {
        return Ok(());
    }
    nightly_sysroot()?;
    util::step("installing cargo-fuzz (about two minutes)");
    util::run(util::cargo().args(["install", "cargo-fuzz", "--locked"]))
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

/// Where the VM test finds its kernel (`boot/vmlinuz-*`); tests/src/vm.rs
/// looks there.
const VM_KERNEL_DIR: &str = "target/vm/kernel";

/// Debian 12's stock kernel for the VM test: the package behind
/// `linux-image-amd64`, fetched with `apt-get download` and unpacked under
/// `target/vm/kernel`, so this machine's own kernel and boot set-up stay as
/// they are. Only its `/boot` is unpacked: the guest loads no modules, which
/// would take 400 MB.
fn vm_kernel() -> Result<()> {
    let dest = util::root().join(VM_KERNEL_DIR);
    if has_vmlinuz(&dest) {
        return Ok(());
    }
    let package = kernel_package()?;
    util::step(&format!(
        "fetching {package} (Debian's {KERNEL_METAPACKAGE}) into {} for the VM test",
        dest.display()
    ));
    let vm = dest.parent().context("the kernel directory has a parent")?;
    let download = vm.join("download");
    let partial = vm.join("kernel.partial");
    for dir in [&download, &partial] {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // apt-get download fetches as the `_apt` user: given a directory it cannot
    // write, it warns and fetches as root instead. Let it write this one.
    if let Some(uid) = apt_uid() {
        std::os::unix::fs::chown(&download, Some(uid), None)
            .with_context(|| format!("cannot hand {} to _apt", download.display()))?;
    }
    util::run(
        Command::new("apt-get")
            .args(["download", "-qq", &package])
            .current_dir(&download),
    )?;
    let deb = std::fs::read_dir(&download)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .with_context(|| format!("apt-get download left no .deb in {}", download.display()))?;
    unpack_boot(&deb, &partial)?;
    if !has_vmlinuz(&partial) {
        bail!("{} holds no boot/vmlinuz-*", deb.display());
    }
    // Renamed into place whole, so an interrupted set-up never leaves half a kernel.
    std::fs::rename(&partial, &dest)?;
    let _ = std::fs::remove_dir_all(&download);
    Ok(())
}

fn has_vmlinuz(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("boot"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("vmlinuz-"))
}

/// The real package behind the metapackage (`linux-image-6.1.0-NN-amd64`).
fn kernel_package() -> Result<String> {
    let depends = || -> Option<String> {
        let out = Command::new("apt-cache")
            .args(["depends", KERNEL_METAPACKAGE])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Depends: "))
            .map(str::trim)
            .find(|p| p.starts_with("linux-image-"))
            .map(String::from)
    };
    if let Some(package) = depends() {
        return Ok(package);
    }
    // A fresh machine may not have read the package lists yet.
    util::run(Command::new("apt-get").args(["update", "-qq"]))?;
    depends().with_context(|| {
        format!("apt-cache knows no {KERNEL_METAPACKAGE}: the VM test needs Debian's main archive")
    })
}

/// `dpkg-deb --fsys-tarfile DEB | tar -x ./boot`: `dpkg-deb -x` would unpack
/// the modules too.
fn unpack_boot(deb: &Path, into: &Path) -> Result<()> {
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start dpkg-deb")?;
    let tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(into)
        .arg("./boot")
        .stdin(dpkg.stdout.take().context("dpkg-deb's piped stdout")?)
        .status()
        .context("cannot start tar")?;
    let dpkg = dpkg.wait()?;
    if !dpkg.success() || !tar.success() {
        bail!(
            "unpacking {} failed: dpkg-deb {dpkg}, tar {tar}",
            deb.display()
        );
    }
    Ok(())
}

/// The `_apt` user's uid, from /etc/passwd.
fn apt_uid() -> Option<u32> {
    std::fs::read_to_string("/etc/passwd")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("_apt:"))
        .and_then(|rest| rest.split(':').nth(1))
        .and_then(|uid| uid.parse().ok())
}
