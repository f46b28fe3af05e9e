//! Keeping every event the probe reports while something runs, then until
//! its teardown has settled: what `inspector record`/`check` and
//! `inspector run` share.

use std::{
    collections::HashSet,
    os::fd::BorrowedFd,
    path::Path,
    time::{Duration, Instant},
};

use thiserror::Error;

use crate::{
    event::{Body, Decoder, Event},
    output::{self, Format},
    probe::{Probe, ProbeError, ProbeOptions},
};

#[derive(Debug, Error)]
pub enum CaptureError {
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error("waiting for events failed: {0}")]
    Poll(std::io::Error),
    #[error("cannot write {path}: {error}")]
    Export { path: String, error: std::io::Error },
}

/// How long the trace goes on after the watched command ends without any
/// event arriving, while processes it saw start are still alive: the shim,
/// the engine or the runtime finish a container's teardown around the time
/// the command returns, and something left running (`docker run -d`) may
/// never end.
pub const QUIET: Duration = Duration::from_millis(60);
/// The longest it goes on after the watched command ends.
pub const SETTLE_MAX: Duration = Duration::from_secs(3);

/// How often the caller gets control back to check on what it watches.
pub const POLL: Duration = Duration::from_millis(10);

/// The probe, attached, and the events it reported so far.
pub struct Recorder {
    probe: Probe,
    decoder: Decoder,
    events: Vec<Event>,
    last_event: Instant,
    /// Processes started while tracing that have not exited yet.
    alive: HashSet<u32>,
}

impl Recorder {
    /// Attaches the probe: from here on nothing that a followed process does
    /// is missed.
    pub fn attach(opts: &ProbeOptions) -> Result<Self, CaptureError> {
        let probe = Probe::load(opts)?;
        if let Some(line) = probe.degraded() {
            eprintln!("{line}");
        }
        Ok(Recorder {
            probe,
            decoder: Decoder::for_host(),
            events: Vec::new(),
            last_event: Instant::now(),
            alive: HashSet::new(),
        })
    }

    /// Waits up to `timeout` for events and keeps those that came.
    pub fn poll(&mut self, timeout: Duration) -> Result<(), CaptureError> {
        self.poll_or(timeout, None)
    }

    /// [`Recorder::poll`], returning early too when `also` becomes readable
    /// (a pidfd, when its process exits).
    pub fn poll_or(
        &mut self,
        timeout: Duration,
        also: Option<BorrowedFd<'_>>,
    ) -> Result<(), CaptureError> {
        self.probe.wait(timeout, also).map_err(CaptureError::Poll)?;
        while let Some(record) = self.probe.next_record() {
            if let Ok(event) = self.decoder.decode(&record) {
                match &event.body {
                    Body::Fork {
                        child_tgid,
                        thread: false,
                        ..
                    } => {
                        self.alive.insert(*child_tgid);
                    }
                    Body::Exit { .. } => {
                        if let Some(task) = &event.task {
                            self.alive.remove(&task.tgid);
                        }
                    }
                    _ => {}
                }
                // The engine's threads switch all the time: quiet means no
                // event of what it does.
                if !matches!(
                    event.body,
                    Body::SchedSwitch { .. } | Body::SchedWakeup { .. }
                ) {
                    self.last_event = Instant::now();
                }
                self.events.push(event);
            }
        }
        Ok(())
    }

    /// Goes on collecting after what was watched ended at `ended`, until
    /// every process started while tracing has exited (what a process did
    /// is in the ring by the time its exit is), or else until no event has
    /// come for [`QUIET`], or [`SETTLE_MAX`] has passed.
    pub fn settle(&mut self, ended: Instant) -> Result<(), CaptureError> {
        self.poll(Duration::ZERO)?;
        while !self.alive.is_empty()
            && self.last_event.elapsed() < QUIET
            && ended.elapsed() < SETTLE_MAX
        {
            self.poll(POLL)?;
        }
        Ok(())
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Events the kernel could not hand over (the ring buffer was full).
    pub fn lost(&self) -> u64 {
        self.probe.lost()
    }

    /// Detaches the probe and returns what it saw, and how many events it lost.
    pub fn finish(self) -> (Vec<Event>, u64) {
        let lost = self.probe.lost();
        (self.events, lost)
    }
}

/// Writes the events as a JSON Lines recording, for `inspector timeline` and
/// `inspector diff`; whole or not at all.
pub fn export(events: &[Event], path: &Path) -> Result<(), CaptureError> {
    let err = |error| CaptureError::Export {
        path: path.display().to_string(),
        error,
    };
    let mut text = Vec::new();
    for e in events {
        output::write_event(&mut text, Format::Jsonl, e).map_err(err)?;
    }
    write_atomically(path, &text).map_err(err)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over
/// `path`: a reader never sees half a file, and a failure leaves none.
///
/// The temporary file has an unpredictable name and is created with
/// `O_EXCL` (tempfile's), so that another user who can write to the
/// directory (`/tmp`) cannot plant a link where it will be and have root
/// write through it; the rename replaces a link at `path` itself rather than
/// following it. Its mode is what a plain create would give (0666 less the
/// umask).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::{io::Write as _, os::unix::fs::PermissionsExt as _};

    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    // Dropped on failure, the temporary file is removed.
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_never_writes_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let path = dir.path().join("out.json");
        // The names the writer once used, and the output itself, as links.
        let old_tmp = dir
            .path()
            .join(format!(".out.json.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &old_tmp).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();

        write_atomically(&path, b"new").unwrap();

        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_link(&old_tmp).unwrap(), victim);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    }

    #[test]
    fn a_failed_atomic_write_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        // A directory in the way: the rename fails.
        let path = dir.path().join("taken");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"x").unwrap();

        assert!(write_atomically(&path, b"new").is_err());

        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["taken"]);
    }
}
