//! The model: what a timeline is made of. One container's life
//! ([`ContainerTimeline`]), the processes that took part ([`ChainLink`]) and
//! what happened to it ([`Step`]), in the form `--format json` writes
//! (docs/timeline.md). The [builder](super::builder) makes them; the views
//! ([render](super::render), [perfetto](super::perfetto), the TUI) show them.

use serde::{Deserialize, Serialize};

use super::{Phase, PhaseSpan, Role};
use crate::{event::Body, output};

/// Version of the JSON form of [`ContainerTimeline`] (docs/timeline.md).
pub const TIMELINE_SCHEMA_VERSION: u32 = 1;

/// One container's life as the kernel saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerTimeline {
    pub v: u32,
    pub id: String,
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
}

/// Why a container did not start: the first process of its making (shim
/// start, runtime, its re-exec and init, a hook) that exited with a non-zero
/// code or was killed before the entrypoint ran. The cause it reports later
/// ones (the runtime's exit 1 after its init's) follow from.
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
    /// saw it (`execve`, `mount`...; only the calls the probe follows), with
    /// its errno: the likely cause. Absent when its last call succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscall: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
}

impl Failure {
    /// With its summary written from its parts.
    pub fn summarised(mut self) -> Self {
        let how = super::present::exit_text(self.exit_code, self.signal.as_deref()).map_or_else(
            || "ended".to_string(),
            |e| match e {
                super::present::ExitText::Code(code) => format!("exited {code}"),
                signal => format!("was killed by {signal}"),
            },
        );
        let during = self
            .phase
            .map(|p| format!(" during {}", p.name()))
            .unwrap_or_default();
        let call = match (&self.syscall, &self.errno) {
            (Some(syscall), Some(errno)) => format!(
                " (its last call: {} {})",
                crate::escape::bare(syscall),
                crate::escape::bare(errno)
            ),
            _ => String::new(),
        };
        self.summary = format!(
            "{} (pid {}) {how}{during}{call}; the entrypoint never ran",
            self.role.name(),
            self.pid
        );
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
