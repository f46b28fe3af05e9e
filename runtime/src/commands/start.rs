//! `start`: let the waiting init execute the entrypoint.

use std::{
    io::Read,
    os::fd::AsFd,
    path::Path,
    time::{Duration, Instant},
};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::{
    Result,
    container::{FIFO, Saved, Status},
    error::{Context as _, msg},
    linux::hooks,
};

pub fn start(root: &Path, id: &str) -> Result<()> {
    let saved = Saved::load(root, id)?;
    match saved.status(root) {
        Status::Created => {}
        s => return Err(msg(format!("cannot start a container that is {s}"))),
    }
    start_created(root, &saved)
}

/// `start` of a container known to be created (`run` has it in hand).
pub fn start_created(root: &Path, saved: &Saved) -> Result<()> {
    let fifo_path = saved.dir(root).join(FIFO);
    let mut fifo = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo_path)
        .ctx(|| format!("cannot open {}", fifo_path.display()))?;
    // Opening for reading releases init's open for writing; then it writes one byte.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(50u16));
        let mut byte = [0u8; 1];
        match fifo.read(&mut byte) {
            Ok(1) => break,
            Ok(_) if !saved.alive() => return Err(msg("container init exited before start")),
            Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => {
                return Err(e).ctx(|| "reading exec.fifo".into());
            }
            _ if Instant::now() > deadline => {
                return Err(msg("container init did not answer start"));
            }
            _ => {}
        }
    }
    let _ = std::fs::remove_file(&fifo_path);
    let state = saved.oci_state(Status::Running);
    hooks::run_all_warn(
        "poststart",
        saved
            .config
            .hooks()
            .as_ref()
            .and_then(|h| h.poststart().as_ref()),
        &state,
    );
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt as _;
