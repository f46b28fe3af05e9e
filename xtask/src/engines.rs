//! The engines besides Docker that the tests drive, and the test image in
//! each one's own store: podman's (loaded from `docker save`) and the
//! `k8s.io` namespace of Docker's containerd, which `ctr` and Kubernetes
//! use (imported the same way). Neither needs a daemon of its own: podman
//! has none, and ctr speaks to the containerd dockerd started.

use std::process::{Command, Stdio};

use anyhow::{Context as _, Result};

use crate::{docker, util};

pub const PODMAN: &str = "podman";
pub const CTR: &str = "ctr";
/// Docker's containerd, which `ctr` drives.
pub const CONTAINERD_SOCKET: &str = "/var/run/docker/containerd/containerd.sock";
/// The namespace Kubernetes nodes use.
pub const CTR_NAMESPACE: &str = "k8s.io";
/// The test image as containerd names it.
pub fn ctr_image() -> String {
    format!("docker.io/{}", docker::IMAGE)
}

pub fn ctr() -> Command {
    let mut cmd = Command::new(CTR);
    cmd.args(["-a", CONTAINERD_SOCKET, "-n", CTR_NAMESPACE]);
    cmd
}

/// The test image in podman's store and in containerd's `k8s.io`
/// namespace; Docker's engine runs and has it ([`docker::ensure`]).
pub fn ensure() -> Result<()> {
    if !util::succeeds(Command::new(PODMAN).args(["image", "exists", docker::IMAGE])) {
        util::step(&format!("loading {} into podman", docker::IMAGE));
        from_docker_save(Command::new(PODMAN).args(["load", "-q"]))
            .context("podman load (is podman installed? run `cargo xtask setup`)")?;
    }
    let listed = util::output(ctr().args(["images", "ls", "-q"]))
        .context("ctr images ls (is containerd installed? run `cargo xtask setup`)")?;
    if !String::from_utf8_lossy(&listed.stdout)
        .lines()
        .any(|l| l == ctr_image())
    {
        util::step(&format!(
            "importing {} into containerd's {CTR_NAMESPACE} namespace",
            docker::IMAGE
        ));
        // `docker import` makes an image that names no platform: all of
        // them, or containerd would unpack none.
        from_docker_save(ctr().args(["images", "import", "--all-platforms", "-"]))?;
    }
    Ok(())
}

/// Runs `cmd` with `docker save IMAGE` on its standard input.
fn from_docker_save(cmd: &mut Command) -> Result<()> {
    let mut save = docker::docker()
        .args(["save", docker::IMAGE])
        .stdout(Stdio::piped())
        .spawn()
        .context("docker save")?;
    let loaded = util::run(
        cmd.stdin(save.stdout.take().context("docker save's output")?)
            .stdout(Stdio::null()),
    );
    let saved = save.wait()?;
    loaded?;
    anyhow::ensure!(
        saved.success(),
        "docker save {} failed: {saved}",
        docker::IMAGE
    );
    Ok(())
}
