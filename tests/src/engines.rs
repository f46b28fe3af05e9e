//! The engines and runtimes the tests start containers with, besides
//! Docker's default: podman (with conmon), containerd's `ctr` against
//! Docker's containerd in the `k8s.io` namespace, a runtime run directly,
//! and the runtimes each one can drive (runc, inspector-runtime, youki,
//! crun). `cargo xtask docker` loads the test image into podman and
//! containerd; `cargo xtask setup` installs podman, crun and youki.
//!
//! crun 1.8 refuses this machine kind's hybrid cgroup layout ("cgroups in
//! hybrid mode not supported"); it runs in a private mount namespace where
//! /sys/fs/cgroup is a pure cgroup2 mount, with its cgroups disabled
//! ([`in_pure_cgroup2`]).

use std::{path::PathBuf, process::Command};

use crate::{
    docker::{DOCKER, image},
    paths::runtime_bin,
    require::{Need, answers, ready, require},
    runtime::Bundle,
};

pub const PODMAN: &str = "podman";
pub const CTR: &str = "ctr";
pub const CONTAINERD_SOCKET: &str = "/var/run/docker/containerd/containerd.sock";
pub const CTR_NAMESPACE: &str = "k8s.io";

/// This host lacks CAP_SYS_RESOURCE and podman asks for more than the hard
/// limits: without these, every runtime's init fails raising them.
pub const PODMAN_LIMITS: &[&str] = &[
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
    "--network",
    "none",
];

/// An OCI runtime the tests drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    Runc,
    Ours,
    Youki,
    Crun,
}

impl Runtime {
    /// The name inspector gives it (the binary's).
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Ours => "inspector-runtime",
            Runtime::Youki => "youki",
            Runtime::Crun => "crun",
        }
    }

    pub fn bin(self) -> PathBuf {
        match self {
            Runtime::Runc => on_path("runc").unwrap_or_else(|| "runc".into()),
            Runtime::Ours => runtime_bin(),
            Runtime::Youki => youki_bin().unwrap_or_else(|| "youki".into()),
            Runtime::Crun => on_path("crun").unwrap_or_else(|| "crun".into()),
        }
    }

    /// Installed (and built): skips or fails naming what is missing.
    pub fn ready(self) -> bool {
        match self {
            Runtime::Ours => ready(&[Need::Runtime]),
            other => require(
                answers(Command::new(other.bin()).arg("--version")),
                &format!("{} installed (cargo xtask setup)", other.name()),
            ),
        }
    }
}

/// A program on the PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// youki as `cargo install` leaves it: on the PATH or in cargo's own bin.
pub fn youki_bin() -> Option<PathBuf> {
    on_path("youki").or_else(|| {
        let home = std::env::var_os("HOME")?;
        Some(PathBuf::from(home).join(".cargo/bin/youki")).filter(|p| p.is_file())
    })
}

/// podman installed, with the test image in its store.
pub fn podman_ready() -> bool {
    ready(&[Need::Trace])
        && require(
            answers(Command::new(PODMAN).args(["image", "exists", &image()])),
            "podman with the test image (cargo xtask setup installs it, cargo xtask docker loads the image)",
        )
}

/// `ctr` against Docker's containerd, with the test image in `k8s.io`.
pub fn ctr_ready() -> bool {
    ready(&[Need::Docker])
        && require(
            Command::new(CTR)
                .args([
                    "-a",
                    CONTAINERD_SOCKET,
                    "-n",
                    CTR_NAMESPACE,
                    "images",
                    "ls",
                    "-q",
                ])
                .output()
                .is_ok_and(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .any(|l| l == ctr_image())
                }),
            "the test image in containerd's k8s.io namespace (cargo xtask docker imports it)",
        )
}

pub fn ctr_image() -> String {
    format!("docker.io/{}", image())
}

/// `sh -c SCRIPT` in a private mount namespace whose /sys/fs/cgroup is a
/// pure cgroup2 mount: where crun runs on this machine kind.
pub fn in_pure_cgroup2(script: &str) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "sh", "-c"]).arg(format!(
        "mount --make-rprivate / && mount -t cgroup2 none /sys/fs/cgroup && exec {script}"
    ));
    cmd
}

/// Quoted for `sh`.
fn quoted(args: &[String]) -> String {
    args.iter()
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `docker run --rm [--runtime R] IMAGE ARGS`: Docker knows the bundled
/// runtime as `inspector` and youki as `youki` (`cargo xtask docker`).
pub fn docker_run(runtime: Runtime, args: &[&str]) -> Command {
    let mut cmd = Command::new(DOCKER);
    cmd.args(["run", "--rm"]);
    match runtime {
        Runtime::Runc => {}
        Runtime::Ours => {
            cmd.args(["--runtime", "inspector"]);
        }
        Runtime::Youki => {
            cmd.args(["--runtime", "youki"]);
        }
        Runtime::Crun => panic!("crun does not run under Docker on this machine kind"),
    }
    cmd.arg(image()).args(args);
    cmd
}

/// `podman --runtime R run --rm … IMAGE ARGS`; crun's in a pure cgroup2
/// namespace with the container's cgroups disabled.
pub fn podman_run(runtime: Runtime, args: &[&str]) -> Command {
    let mut argv: Vec<String> = vec![PODMAN.into(), "--runtime".into()];
    argv.push(runtime.bin().display().to_string());
    argv.extend(["run", "--rm"].map(String::from));
    argv.extend(PODMAN_LIMITS.iter().map(|s| s.to_string()));
    if runtime == Runtime::Crun {
        argv.push("--cgroups=disabled".into());
    }
    argv.push(image());
    argv.extend(args.iter().map(|s| s.to_string()));
    if runtime == Runtime::Crun {
        return in_pure_cgroup2(&quoted(&argv));
    }
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    cmd
}

/// `ctr run --rm [--runc-binary R] IMAGE NAME ARGS`.
pub fn ctr_run(runtime: Runtime, name: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(CTR);
    cmd.args(["-a", CONTAINERD_SOCKET, "-n", CTR_NAMESPACE, "run", "--rm"]);
    if runtime != Runtime::Runc {
        cmd.arg("--runc-binary").arg(runtime.bin());
    }
    cmd.arg(ctr_image()).arg(name).args(args);
    cmd
}

/// `RUNTIME --root ROOT run --bundle B ID`, no engine; crun's in a pure
/// cgroup2 namespace with cgroups disabled.
pub fn direct_run(runtime: Runtime, root: &std::path::Path, bundle: &Bundle) -> Command {
    let mut argv: Vec<String> = vec![runtime.bin().display().to_string()];
    if runtime == Runtime::Crun {
        argv.push("--cgroup-manager=disabled".into());
    }
    argv.extend(["--root".into(), root.display().to_string()]);
    argv.extend(["run".into(), "--bundle".into()]);
    argv.push(bundle.path().display().to_string());
    argv.push(bundle.id.clone());
    if runtime == Runtime::Crun {
        return in_pure_cgroup2(&quoted(&argv));
    }
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    cmd
}
