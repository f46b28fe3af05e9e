//! Running a command with the probe attached and keeping every event it
//! causes, until the command has exited and its containers' teardown has
//! settled.

use std::{
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
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("waiting for `{command}` failed: {source}")]
    Wait {
        command: String,
        source: std::io::Error,
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
            source,
        })?;
    // Waited for on a thread of its own, so that the exit is timed to the
    // moment rather than to the next poll of the ring.
    let waiter = std::thread::spawn(move || (child.wait(), Instant::now()));
    while !waiter.is_finished() {
        recorder.poll(POLL)?;
    }
    let (status, at) = waiter.join().expect("the waiting thread panicked");
    let status = status.map_err(|source| SessionError::Wait {
        command: command.clone(),
        source,
    })?;
    recorder.settle(at)?;
    let (events, lost) = recorder.finish();
    Ok(Capture {
        events,
        status,
        lost,
        command_time: at - started,
    })
}
