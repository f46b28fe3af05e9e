//! Running a command with the probe attached and keeping every event it
//! causes, until the command has exited and its containers' teardown has
//! settled.

use std::{
    os::fd::{AsFd as _, FromRawFd as _, OwnedFd, RawFd},
    process::{Command, ExitStatus},
    time::{Duration, Instant},
};

use thiserror::Error;

pub use crate::capture::{export, write_atomically};
use crate::{
    capture::{CaptureError, POLL, Recorder},
    event::Event,
    probe::{ProbeError, ProbeOptions},
};

#[derive(Debug, Error)]
pub enum SessionError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    // The cause is in the message and not also a source: printed with its
    // chain, it would be said twice.
    #[error("cannot run `{command}`: {error}")]
    Spawn {
        command: String,
        error: std::io::Error,
    },
    #[error("waiting for `{command}` failed: {error}")]
    Wait {
        command: String,
        error: std::io::Error,
    },
}

impl From<ProbeError> for SessionError {
    fn from(e: ProbeError) -> Self {
        SessionError::Capture(e.into())
    }
}

/// What a traced run left.
pub struct Capture {
    pub events: Vec<Event>,
    pub status: ExitStatus,
    pub lost: u64,
    /// From the command's start to its exit.
    pub command_time: Duration,
}

/// A descriptor that becomes readable when process `pid` exits (Linux 5.3).
fn pidfd(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open with a pid and no flags; the result is ours alone.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: a new descriptor, owned once.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Runs `argv` with the probe attached first, so that nothing it starts is
/// missed; its standard streams are the caller's.
pub fn capture(argv: &[String], probe_opts: &ProbeOptions) -> Result<Capture, SessionError> {
    let mut recorder = Recorder::attach(probe_opts)?;
    let command = argv.join(" ");
    let started = Instant::now();
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .spawn()
        .map_err(|source| SessionError::Spawn {
            command: command.clone(),
            error: source,
        })?;
    // Its exit wakes the poll (a pidfd is readable once its process has
    // exited), so that nothing waits for the next period.
    let exited = pidfd(child.id());
    let (status, at) = loop {
        recorder.poll_or(POLL, exited.as_ref().map(|fd| fd.as_fd()))?;
        let waited = child.try_wait().map_err(|source| SessionError::Wait {
            command: command.clone(),
            error: source,
        })?;
        if let Some(status) = waited {
            break (status, Instant::now());
        }
    };
    recorder.settle(at)?;
    let (events, lost) = recorder.finish();
    Ok(Capture {
        events,
        status,
        lost,
        command_time: at - started,
    })
}
