//! `delete`: remove a stopped container (with `--force`, stop it first).

use std::{
    path::Path,
    time::{Duration, Instant},
};

use crate::{
    Error, Result,
    container::{self, Saved, Status},
    error::msg,
    hooks,
};

pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let saved = match Saved::load(root, id) {
        Ok(s) => s,
        Err(Error::NotFound(_)) => {
            // A directory without state is a create that died half-way.
            let dir = container::dir(root, id);
            if container::valid_id(id).is_ok() && dir.is_dir() {
                let _ = std::fs::remove_dir_all(&dir);
                return Ok(());
            }
            return if force {
                Ok(())
            } else {
                Err(Error::NotFound(id.into()))
            };
        }
        Err(e) => return Err(e),
    };
    let status = saved.status(root);
    match status {
        Status::Stopped => {}
        Status::Created => kill_all(&saved)?,
        Status::Running | Status::Paused | Status::Creating if force => kill_all(&saved)?,
        s => {
            return Err(msg(format!(
                "cannot delete container {id} that is not stopped: {s}"
            )));
        }
    }
    destroy(root, &saved);
    Ok(())
}

fn kill_all(saved: &Saved) -> Result<()> {
    for pid in saved.cgroup.pids().into_iter().chain([saved.pid]) {
        // SAFETY: killing the container's processes.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    if saved.cgroup.frozen() {
        saved.cgroup.freeze(false)?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while saved.alive() {
        if Instant::now() > deadline {
            return Err(msg(format!("container init {} did not die", saved.pid)));
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    Ok(())
}

/// Removes the cgroup and state directory, then runs the poststop hooks.
pub fn destroy(root: &Path, saved: &Saved) {
    saved.cgroup.remove();
    let _ = std::fs::remove_dir_all(saved.dir(root));
    let state = saved.oci_state(Status::Stopped);
    hooks::run_all_warn(
        "poststop",
        saved
            .config
            .hooks()
            .as_ref()
            .and_then(|h| h.poststop().as_ref()),
        &state,
    );
}
