//! What a test needs, and the one rule for a missing prerequisite: outside
//! CI the test skips with a printed reason; in CI (where `CI` is set) it
//! fails loudly, so that a missing set-up step can never pass for a green run.
//!
//! A probe test opens with one call:
//! `let Some(_lock) = probe_test(&[Need::Trace]) else { return };`
//! and a test that loads no probe with `if !ready(&[Need::Root, Need::Runtime]) { return; }`.

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::{Mutex, MutexGuard},
};

use crate::{docker, paths};

/// One prerequisite of a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Running as root.
    Root,
    /// What tracing needs: root, kernel BTF, a mounted tracefs, a built inspector.
    Trace,
    /// A built inspector (no root needed).
    Inspector,
    /// A built `inspector-runtime`, the runtime under test ([`paths::runtime_bin`]).
    Runtime,
    /// `inspector-runtime` next to inspector, where `inspector run` finds it
    /// ([`paths::bundled_runtime_bin`]).
    BundledRuntime,
    /// What tracing needs, a running Docker engine and the test image
    /// ([`docker::docker_ready`]).
    Docker,
    /// runc installed.
    Runc,
    /// bpftool installed.
    Bpftool,
    /// tmux installed (the terminal the TUI tests drive).
    Tmux,
    /// `setpriv` and `unshare` (util-linux): another user, a private mount namespace.
    UtilLinux,
}

impl Need {
    /// Is it there? Each missing part is named through [`require`].
    fn met(self) -> bool {
        match self {
            Need::Root => require(is_root(), "root (the probe and containers need it)"),
            Need::Trace => can_trace(),
            Need::Inspector => require(
                paths::inspector_bin().exists(),
                "a built inspector (cargo xtask build)",
            ),
            Need::Runtime => require(
                paths::runtime_bin().exists(),
                "a built inspector-runtime (cargo xtask build)",
            ),
            Need::BundledRuntime => require(
                paths::bundled_runtime_bin().exists(),
                "inspector-runtime built next to inspector (cargo xtask build)",
            ),
            Need::Docker => docker::docker_ready(),
            Need::Runc => require(
                answers(Command::new("runc").arg("--version")),
                "runc installed",
            ),
            Need::Bpftool => require(
                answers(Command::new("bpftool").arg("version")),
                "bpftool (cargo xtask setup installs it)",
            ),
            Need::Tmux => require(
                answers(Command::new("tmux").arg("-V")),
                "tmux installed (cargo xtask setup installs it)",
            ),
            Need::UtilLinux => {
                require(
                    answers(Command::new("setpriv").arg("--version")),
                    "setpriv (util-linux)",
                ) && require(
                    answers(Command::new("unshare").arg("--version")),
                    "unshare (util-linux)",
                )
            }
        }
    }
}

/// `true` when every need is met, checked in order; otherwise the test
/// skips (outside CI) or fails (in CI) naming the first that is missing.
pub fn ready(needs: &[Need]) -> bool {
    needs.iter().all(|need| need.met())
}

/// The opening of a test that loads the probe: its needs ([`ready`]), then
/// the probe lock, held until the test ends. `None`: skip the test.
pub fn probe_test(needs: &[Need]) -> Option<ProbeLock> {
    // Needs first: `Need::Docker` takes the lock itself, once per binary.
    ready(needs).then(probe_lock)
}

/// Tests that load the probe run one at a time: they count BPF programs and
/// should not slow each other down.
static PROBE_LOCK: Mutex<()> = Mutex::new(());

/// The probe lock, held while alive.
pub type ProbeLock = MutexGuard<'static, ()>;

/// Takes the probe lock; one a test failing while holding it does not poison.
pub fn probe_lock() -> ProbeLock {
    PROBE_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
}

/// `true` when `ok`; otherwise skips (outside CI) or fails (in CI) naming what is missing.
pub fn require(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    if in_ci() {
        panic!("prerequisite missing in CI: {what}");
    }
    eprintln!("skipped: {what}");
    false
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Root, BTF, tracefs and a built inspector: what tracing needs.
fn can_trace() -> bool {
    require(is_root(), "tracing needs root")
        && require(
            Path::new("/sys/kernel/btf/vmlinux").exists(),
            "kernel BTF (/sys/kernel/btf/vmlinux)",
        )
        && require(
            Path::new("/sys/kernel/tracing/events").is_dir(),
            "tracefs mounted at /sys/kernel/tracing (cargo xtask setup mounts it)",
        )
        && require(
            paths::inspector_bin().exists(),
            "a built inspector (cargo xtask build)",
        )
}

/// Does the command run and succeed? Its output is thrown away.
pub(crate) fn answers(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
