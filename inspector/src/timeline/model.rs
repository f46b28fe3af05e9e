//! The model: what a timeline is made of. One container's life
//! ([`ContainerTimeline`]), the processes that took part ([`ChainLink`]) and
//! what happened to it ([`Step`]), in the form `--format json` writes
//! (docs/timeline.md). The [builder](super::builder) makes them; the views
//! ([render](super::render), [perfetto](super::perfetto), the TUI) show them.

use serde::{Deserialize, Serialize};

use super::{Engine, Phase, PhaseSpan, Role};
use crate::{event::Body, output};

/// Version of the JSON form of [`ContainerTimeline`] (docs/timeline.md).
/// 2: `engine` and `runtime`; the role `docker-cli` became `client`.
pub const TIMELINE_SCHEMA_VERSION: u32 = 2;

/// One container's life as the kernel saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerTimeline {
    pub v: u32,
    pub id: String,
    /// The engine that made it, when its chain tells ([`Engine`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<Engine>,
    /// The OCI runtime that made it (`runc`, `crun`, `youki`,
    /// `inspector-runtime`), when one was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// `false` when the recording ended (or events were lost) before the
    /// container's life did: what is shown is what was seen.
    pub complete: bool,
    pub start_ns: u64,
    pub end_ns: u64,
    pub duration_ns: u64,
    /// Wall-clock time of the first event.
    pub start_time: String,
    /// How the entrypoint ended, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    pub phases: Vec<PhaseSpan>,
    /// The processes that took part, in the order they appeared.
    pub chain: Vec<ChainLink>,
    /// Every event attributed to the container but thread creation, in order.
    pub steps: Vec<Step>,
    /// Events attributed to this container.
    pub events: u64,
    /// It was running before the trace began: what is shown starts there.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub already_running: bool,
    /// Its start failed: no entrypoint ran. Absent when it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Where its time went (`timeline --why`, from a recording made with
    /// `--sched`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<super::why::Why>,
}

/// Why a container did not start, or was cut short: the first process of
/// its making (shim start, runtime, its re-exec and init, a hook) that
/// exited non-zero or was killed before the entrypoint ran; a process the
/// kernel killed for a reason of its own (the OOM killer, seccomp), the
/// entrypoint included; or, before any container existed, the client whose
/// request the engine refused. Later failures (the runtime's exit 1 after
/// its init's) follow from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// One line for people, first in every view.
    pub summary: String,
    pub role: Role,
    pub pid: u32,
    /// The phase it failed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// The last syscall that process made, when it failed, as the kernel
    /// saw it (`execve`, `mount`, `prlimit64`...; only the calls the probe
    /// follows), with its errno: the likely cause. Absent when its last
    /// call succeeded; for a seccomp kill, the call it was stopped at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscall: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
    /// What that call was about: execve's file, mount's `source on
    /// target`, the rlimit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Why the kernel killed it, when it did: `oom` or `seccomp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub killed_by: Option<String>,
    /// The engine's and the runtime's own words, as they were written: the
    /// runtime's log lines and the client's stderr.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
}

/// Words a client or runtime wrote for its user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub pid: u32,
    /// `stderr` or `runtime_log`.
    pub stream: String,
    /// For a runtime's JSON log line, its `msg` (and `level` when not
    /// `error`); otherwise the text as written, without its last newline.
    pub text: String,
}

impl Message {
    /// From a write: a runtime's JSON log line is read for its words.
    /// `None` for a write of nothing but blanks (a newline written on its own).
    pub fn new(role: Role, pid: u32, stream: &str, text: &str) -> Option<Self> {
        if text.trim().is_empty() {
            return None;
        }
        let text = text.trim_end_matches(['\n', '\r']);
        #[derive(Deserialize)]
        struct LogLine {
            level: Option<String>,
            msg: String,
        }
        let text = match serde_json::from_str::<LogLine>(text) {
            Ok(LogLine { level, msg }) if stream == "runtime_log" => match level.as_deref() {
                None | Some("error") => msg,
                Some(level) => format!("{level}: {msg}"),
            },
            _ => text.to_string(),
        };
        Some(Message {
            role,
            pid,
            stream: stream.to_string(),
            text,
        })
    }
}

impl Failure {
    /// The message that says most: the runtime's last error, else the
    /// client's first line (docker's `Error response from daemon: …`).
    pub fn main_message(&self) -> Option<&str> {
        let log = self
            .messages
            .iter()
            .rev()
            .find(|m| m.stream == "runtime_log" && !m.text.starts_with("warning: "));
        let m = log.or_else(|| self.messages.iter().find(|m| m.stream == "stderr"))?;
        // A client's write may hold more than its error (docker adds a
        // blank line and `Run 'docker run --help'…`).
        m.text.lines().find(|l| !l.trim().is_empty())
    }

    /// With its summary written from its parts: what went wrong in words,
    /// then where (the call and errno, the process, the phase).
    pub fn summarised(mut self) -> Self {
        use crate::escape::bare;
        let who = format!("{} (pid {})", self.role.name(), self.pid);
        let during = self
            .phase
            .map(|p| format!(" during {}", p.name()))
            .unwrap_or_default();
        let subject = self.subject.as_deref().map(bare).unwrap_or_default();
        let call = self.syscall.as_deref().map(bare).unwrap_or_default();
        let errno = self.errno.as_deref().map(bare).unwrap_or_default();
        let how = super::present::exit_text(self.exit_code, self.signal.as_deref()).map_or_else(
            || "ended".to_string(),
            |e| match e {
                super::present::ExitText::Code(code) => format!("exited {code}"),
                signal => format!("was killed by {signal}"),
            },
        );
        let words = self.main_message().map(|m| bare(m).into_owned());
        let summary = match (
            self.killed_by.as_deref(),
            self.syscall.as_deref(),
            self.errno.as_deref(),
        ) {
            (Some("oom"), ..) => format!(
                "{who} was killed by the OOM killer{during}: the container's memory limit is too small for it"
            ),
            (Some("seccomp"), ..) => format!(
                "{who} was killed by seccomp (SIGSYS) at {call}{during}: the container's seccomp profile forbids {call}"
            ),
            (_, Some("execve"), Some("ENOENT")) => {
                format!("the entrypoint {subject} was not found: execve ENOENT in {who}{during}")
            }
            (_, Some("execve"), Some("ENOEXEC")) => format!(
                "the entrypoint {subject} is not an executable: execve ENOEXEC in {who}{during}"
            ),
            (_, Some("execve"), Some("EACCES")) => format!(
                "the entrypoint {subject} may not be executed: execve EACCES in {who}{during}"
            ),
            (_, Some("mount"), Some(_)) => {
                format!("a mount failed ({subject}): mount {errno} in {who}{during}")
            }
            (_, Some("prlimit64" | "setrlimit"), Some(_)) => {
                format!("the host refused the limit {subject}: {call} {errno} in {who}{during}")
            }
            (_, Some("capset"), Some(_)) => format!(
                "the host refused the capabilities asked for: capset {errno} in {who}{during}"
            ),
            (_, Some(_), Some(_)) => format!("{call} failed with {errno} in {who}{during}"),
            _ if self.role == Role::Client => format!(
                "the engine refused the request: no container was made and no runtime ran (the \
                 client, pid {}, {how})",
                self.pid
            ),
            _ if self.role == Role::Hook => {
                format!("the hook {subject} {how}{during}")
            }
            _ => format!("{who} {how}{during}"),
        };
        let ran = matches!(self.role, Role::Entrypoint | Role::EntrypointChild);
        self.summary = match words {
            Some(words) => format!("{summary}: {words}"),
            None if ran || self.role == Role::Client => summary,
            None => format!("{summary}; the entrypoint never ran"),
        };
        self
    }
}

/// A process in a container's chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChainLink {
    pub role: Role,
    pub pid: u32,
    /// Its pid in its own pid namespace (1 for the container's init).
    pub nspid: u32,
    pub ppid: u32,
    pub comm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub argv: Vec<String>,
    pub start_ns: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
}

/// One thing that happened to a container.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub ktime_ns: u64,
    pub pid: u32,
    pub tid: u32,
    pub role: Role,
    pub phase: Option<Phase>,
    pub kind: std::borrow::Cow<'static, str>,
    /// The event in strace-like form: filled in by
    /// [`ContainerTimeline::fill_details`]; [`Step::detail`] works either way.
    pub detail: String,
    /// The event itself, until its text is asked for: formatting every step
    /// of a long recording costs more than building the timelines.
    #[serde(skip)]
    pub(super) body: Option<Box<Body>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ns: Option<u64>,
}

impl Step {
    /// The event in strace-like form.
    pub fn detail(&self) -> std::borrow::Cow<'_, str> {
        match &self.body {
            Some(body) if self.detail.is_empty() => output::describe(body).into(),
            _ => self.detail.as_str().into(),
        }
    }
}

impl ContainerTimeline {
    /// Writes every step's text, as JSON output needs.
    pub fn fill_details(&mut self) {
        for s in &mut self.steps {
            if let Some(body) = s.body.take() {
                s.detail = output::describe(&body);
            }
        }
    }
}
