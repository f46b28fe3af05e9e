//! The Docker engine the tests drive, and their image (`cargo xtask docker`
//! starts the one and imports the other).

use std::process::Command;

use crate::require::{Need, answers, probe_lock, ready, require};

pub const DOCKER: &str = "/usr/bin/docker";

pub fn image() -> String {
    std::env::var("INSPECTOR_TEST_IMAGE").unwrap_or_else(|_| "inspector/busybox:latest".into())
}

/// What tracing needs, a running Docker engine and the test image.
/// Asked once per test binary, holding the probe lock: `docker info` makes
/// dockerd start helpers (`runc --version`, `docker-init --version`), which
/// must not land in another test's trace.
pub fn docker_ready() -> bool {
    static READY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *READY.get_or_init(|| {
        let _lock = probe_lock();
        ready(&[Need::Trace])
            && require(
                answers(Command::new(DOCKER).arg("info")),
                "a running Docker engine (cargo xtask docker starts one)",
            )
            && require(
                answers(Command::new(DOCKER).args(["image", "inspect", &image()])),
                "the test image (cargo xtask docker imports it)",
            )
    })
}
