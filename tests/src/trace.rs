//! `inspector trace` as the tests run it: started in the background with its
//! probes attached ([`Tracer`]), stopped with SIGINT, and what it recorded
//! read back as events ([`Trace`]).

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use inspector::event::{Body, Event};

use crate::{paths::inspector_bin, probe::KEEP, scratch::TempDir};

/// Starts inspector with stderr piped and waits for its "probes attached" line.
pub fn spawn_attached(cmd: &mut Command) -> (Child, std::io::BufReader<std::process::ChildStderr>) {
    let (child, stderr, _) = spawn_attached_saying(cmd);
    (child, stderr)
}

/// [`spawn_attached`], with the line that said the probes were attached.
pub fn spawn_attached_saying(
    cmd: &mut Command,
) -> (Child, std::io::BufReader<std::process::ChildStderr>, String) {
    let mut child = cmd.stderr(Stdio::piped()).spawn().expect("start inspector");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(
        first.contains("probes attached"),
        "inspector did not start: {first}"
    );
    (child, stderr, first)
}

/// `inspector trace --format jsonl` running in the background.
pub struct Tracer {
    child: Child,
    output: PathBuf,
    stderr: std::thread::JoinHandle<String>,
    _dir: TempDir,
}

/// A stopped tracer's recording, on disk while this lives.
pub struct Recording {
    pub path: PathBuf,
    pub stderr: String,
    pub success: bool,
    _dir: TempDir,
}

/// What a stopped tracer recorded.
pub struct Trace {
    pub events: Vec<Event>,
    pub stderr: String,
    pub success: bool,
}

impl Tracer {
    /// Starts tracing and returns once the probes are attached.
    pub fn start(extra: &[&str]) -> Tracer {
        let dir = TempDir::new("trace");
        let output = dir.path().join("events.jsonl");
        let (child, mut stderr, first) = spawn_attached_saying(
            Command::new(inspector_bin())
                .env("INSPECTOR_KEEP_PROBE", KEEP)
                .args(["trace", "--format", "jsonl", "--output"])
                .arg(&output)
                .args(extra)
                .stdout(Stdio::null()),
        );
        // Keep draining stderr so inspector never blocks on it.
        let stderr = std::thread::spawn(move || {
            let mut all = first;
            let _ = std::io::Read::read_to_string(&mut stderr, &mut all);
            all
        });
        Tracer {
            child,
            output,
            stderr,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops with SIGINT after letting late events (teardown) arrive.
    fn halt(&mut self) -> (bool, String) {
        std::thread::sleep(Duration::from_millis(700));
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().unwrap();
        let stderr = std::mem::replace(&mut self.stderr, std::thread::spawn(String::new));
        (status.success(), stderr.join().unwrap_or_default())
    }

    /// Stops, and leaves the recording as it was written (a long one is
    /// not read back into memory): read it with the library's reader.
    pub fn stop_recording(mut self) -> Recording {
        let (success, stderr) = self.halt();
        Recording {
            path: self.output.clone(),
            stderr,
            success,
            _dir: self._dir,
        }
    }

    /// Stops with SIGINT after letting late events (teardown) arrive, and
    /// reads what was recorded.
    pub fn stop(mut self) -> Trace {
        let (success, rest) = self.halt();
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        let events = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str::<Event>(l)
                    .unwrap_or_else(|e| panic!("line {} is not a valid event ({e}): {l}", i + 1))
            })
            .collect();
        Trace {
            events,
            stderr: rest,
            success,
        }
    }
}

impl Trace {
    pub fn kinds(&self, kind: &str) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |e| e.body.kind() == kind)
    }

    /// Successful execs: (event, filename, argv).
    pub fn execs(&self) -> impl Iterator<Item = (&Event, &str, &[String])> {
        self.events.iter().filter_map(|e| match &e.body {
            Body::Exec {
                filename,
                argv,
                ret: 0,
                ..
            } => Some((e, filename.as_str(), argv.as_slice())),
            _ => None,
        })
    }

    pub fn tgid(e: &Event) -> u32 {
        e.task.as_ref().map(|t| t.tgid).unwrap_or(0)
    }

    /// Did process `tgid` exit with `code`?
    pub fn exited_with(&self, tgid: u32, code: i32) -> bool {
        self.events.iter().any(|e| {
            Self::tgid(e) == tgid
                && matches!(e.body, Body::Exit { exit_code: Some(c), .. } if c == code)
        })
    }

    /// A short listing of the trace for failure messages.
    pub fn dump(&self) -> String {
        self.events
            .iter()
            .filter(|e| !matches!(e.body, Body::Fork { thread: true, .. }))
            .map(inspector::output::text_line)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `inspector timeline --format json FILE`: the timelines and the stats line.
pub fn timelines_of(
    path: &std::path::Path,
) -> (Vec<inspector::timeline::ContainerTimeline>, String) {
    let out = Command::new(inspector_bin())
        .args(["timeline", "--format", "json"])
        .arg(path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let timelines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (timelines, stderr)
}
