//! `delete`: remove a stopped container (with `--force`, stop it first).
//!
//! It also removes whatever a `create` that died half-way left (even one
//! killed by SIGKILL during a hook): `create` records the state directory's
//! container, its cgroups and, once known, its init before making them, and
//! a container whose `create` is gone counts as stopped. Every step accepts
//! that its part is already gone, so a `delete` interrupted itself can be
//! run again.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use crate::{
    Error, Result,
    container::{self, Saved, Status},
    error::msg,
    linux::hooks,
};

pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let saved = match Saved::load(root, id) {
        Ok(s) => s,
        Err(Error::NotFound(_)) => {
            // A directory without state is a create that died before
            // recording anything, so before making any cgroup.
            let dir = container::dir(root, id);
            if container::valid_id(id).is_ok() && dir.is_dir() {
                remove_state_dir(&dir)?;
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
        // Stopped includes a `create` that died: its init may still be
        // there (waiting for the hooks' end), so it is killed all the same.
        Status::Stopped | Status::Created => kill_all(&saved)?,
        Status::Running | Status::Paused | Status::Creating if force => kill_all(&saved)?,
        s => {
            return Err(msg(format!(
                "cannot delete container {id} that is not stopped: {s}"
            )));
        }
    }
    let left = saved.cgroup.remove_all();
    if let Some((dir, e)) = left.first() {
        // Keep the state: it is what lets the next `delete` find the cgroups.
        return Err(msg(format!(
            "cannot remove cgroup {} of container {id}: {e} (its state is kept: run `delete --force {id}` again)",
            dir.display()
        )));
    }
    remove_state_dir(&saved.dir(root))?;
    poststop(&saved);
    Ok(())
}

/// Kills the container's init (if it is still the recorded process) and
/// everything in its cgroups, and waits for the init to be gone.
fn kill_all(saved: &Saved) -> Result<()> {
    if saved.alive() {
        // SAFETY: the recorded init, checked by its start time.
        unsafe { libc::kill(saved.pid, libc::SIGKILL) };
    }
    for pid in saved.cgroup.all_pids() {
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

/// `remove_dir_all` removes a symlink inside rather than following it; a
/// directory already gone is fine.
fn remove_state_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(msg(format!(
            "cannot remove state directory {}: {e}",
            dir.display()
        ))),
    }
}

fn poststop(saved: &Saved) {
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

/// Removes the cgroups and state directory, then runs the poststop hooks
/// (for `run`, whose container's init has been reaped).
pub fn destroy(root: &Path, saved: &Saved) {
    for (dir, e) in saved.cgroup.remove_all() {
        crate::log::warn(&format!("cannot remove cgroup {}: {e}", dir.display()));
    }
    let _ = std::fs::remove_dir_all(saved.dir(root));
    poststop(saved);
}
