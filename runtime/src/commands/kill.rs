//! `kill`: send a signal to the container's init, or with `--all` to every process in it.

use std::path::Path;

use crate::{
    Error, Result,
    container::{Saved, Status},
};

pub fn kill(root: &Path, id: &str, signal: i32, all: bool) -> Result<()> {
    let saved = Saved::load(root, id)?;
    let status = saved.status(root);
    // A container still being created may have no init yet (pid 0), and
    // kill(0, ...) would signal our own process group.
    if status == Status::Stopped || saved.pid <= 0 {
        return Err(Error::NotRunning);
    }
    if all {
        for pid in saved.cgroup.pids() {
            // SAFETY: signalling processes of this container.
            unsafe { libc::kill(pid, signal) };
        }
    } else {
        // SAFETY: signalling the container's init.
        if unsafe { libc::kill(saved.pid, signal) } < 0 {
            return Err(match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::ESRCH) => Error::NoSuchProcess,
                _ => Error::Msg(format!("kill: {}", std::io::Error::last_os_error())),
            });
        }
    }
    // A frozen process only dies once thawed.
    if status == Status::Paused && signal == libc::SIGKILL {
        saved.cgroup.freeze(false)?;
    }
    Ok(())
}
