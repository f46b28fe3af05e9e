//! What every view of a container shows the same way: its id as Docker
//! shows it, a runtime's or shim's command by what it does, durations, and
//! how a process ended. The text view ([render](super::render)), the Perfetto
//! export ([perfetto](super::perfetto)), the TUI and `inspector run` take them
//! from here, so that a container looks alike wherever it is shown.
//!
//! Ids, commands and signal names come from traced processes: what goes to a
//! terminal goes through [`crate::escape`] ([`exit_text`] does it itself).

use super::{Engine, Role, role};
use crate::escape::bare;

/// A container id as Docker shows it: a 64-digit id's first 12 characters
/// (cut on a character: ids in recordings come from traced processes).
pub fn short_id(id: &str) -> &str {
    match id.get(..12) {
        Some(head) if id.len() == 64 => head,
        _ => id,
    }
}

/// Shims and runtimes by what they do, not by their long paths:
/// `runc create 1a2b3c4d5e6f`, `containerd-shim-runc-v2 -id 1a2b3c4d5e6f start`,
/// `conmon -c 1a2b3c4d5e6f`.
/// `None` for other roles, or a command line that does not say.
pub fn compact_command(role: Role, argv: &[String]) -> Option<String> {
    let name = argv.first()?.rsplit('/').next()?;
    match role {
        Role::Runtime => {
            let (verb, id) = role::runtime_command(argv)?;
            Some(format!("{name} {verb} {}", short_id(&id)))
        }
        Role::Shim | Role::ShimStart if role::is_conmon(name) => {
            let id = role::shim_container(name, argv)?;
            Some(format!("{name} -c {}", short_id(&id)))
        }
        Role::Shim | Role::ShimStart => {
            let id = role::shim_container(name, argv)?;
            let last = argv
                .last()
                .filter(|a| matches!(a.as_str(), "start" | "delete"));
            Some(format!(
                "{name} -id {}{}",
                short_id(&id),
                last.map(|a| format!(" {a}")).unwrap_or_default()
            ))
        }
        _ => None,
    }
}

/// ` (podman, runc)`, ` (runc, no engine)`: what made a container, said
/// after its id; empty when nothing of it was seen. The runtime's name
/// comes from a traced command line: escaped.
pub fn made_by(engine: Option<Engine>, runtime: Option<&str>) -> String {
    let runtime = runtime.map(bare);
    match (engine, runtime) {
        (Some(Engine::Direct), Some(r)) => format!(" ({r}, no engine)"),
        (Some(e), Some(r)) => format!(" ({}, {r})", e.name()),
        (Some(e), None) => format!(" ({})", e.name()),
        (None, Some(r)) => format!(" ({r})"),
        (None, None) => String::new(),
    }
}

/// `41.3 ms`, whatever the length: the text view lines durations up.
pub fn ms(ns: u64) -> String {
    format!("{:.1} ms", ns as f64 / 1e6)
}

/// `41.3 ms`, or `12.5 s` from ten seconds on: for the TUI's narrow columns.
pub fn ms_or_s(ns: u64) -> String {
    if ns >= 10_000_000_000 {
        format!("{:.1} s", ns as f64 / 1e9)
    } else {
        ms(ns)
    }
}

/// At most `max` characters, `…` marking a cut.
pub fn cut(mut s: String, max: usize) -> String {
    if let Some((at, _)) = s.char_indices().nth(max) {
        s.truncate(at);
        s.push('…');
    }
    s
}

/// `41.3 ms`, from milliseconds: the critical path's unit (`--why`).
pub fn ms_f(ms: f64) -> String {
    format!("{ms:.1} ms")
}

/// Where the time went (`--why`), said alike in the text view and the
/// TUI's why view: how long the start took, and from what to what.
pub fn why_start(ms: f64) -> String {
    format!("start {} (client's exec → entrypoint's exec)", ms_f(ms))
}

/// [`why_start`] for the teardown.
pub fn why_teardown(ms: f64) -> String {
    format!("teardown {} (entrypoint's exit → last event)", ms_f(ms))
}

/// A process on a critical path: `hook sleep (pid 20)`, its command
/// escaped; `hook (pid 20)` when it is not known.
pub fn why_who(role: Role, pid: u32, comm: &str) -> String {
    if comm.is_empty() {
        format!("{} (pid {pid})", role.name())
    } else {
        format!("{} {} (pid {pid})", role.name(), bare(comm))
    }
}

/// How a process ended: `exit 3`, or its signal's name (escaped); `None`
/// while it runs. Written where it is shown, without a string of its own.
pub fn exit_text(exit_code: Option<i32>, signal: Option<&str>) -> Option<ExitText<'_>> {
    match (exit_code, signal) {
        (Some(code), _) => Some(ExitText::Code(code)),
        (None, Some(signal)) => Some(ExitText::Signal(signal)),
        _ => None,
    }
}

/// See [`exit_text`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitText<'a> {
    Code(i32),
    Signal(&'a str),
}

impl std::fmt::Display for ExitText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitText::Code(code) => write!(f, "exit {code}"),
            ExitText::Signal(signal) => f.write_str(&bare(signal)),
        }
    }
}

/// A process's end as a shell reports it in `$?`: its exit code, 128 plus
/// the signal that killed it, or 1 when it did neither.
pub fn shell_exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => 128u8.wrapping_add(signal as u8),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;

    use super::*;

    #[test]
    fn an_exit_is_told_as_a_shell_tells_it() {
        let status = std::process::ExitStatus::from_raw;
        // `run`, `record` and `check` exit as their container or command did.
        // wait(2) status words: exit code in the second byte, signal in the
        // first. Exited 3; killed by SIGKILL, by SIGTERM; stopped by SIGSTOP
        // (0x137f).
        assert_eq!(shell_exit_code(status(3 << 8)), 3);
        assert_eq!(shell_exit_code(status(libc::SIGKILL)), 137);
        assert_eq!(shell_exit_code(status(libc::SIGTERM)), 143);
        assert_eq!(shell_exit_code(status(0x137f)), 1);
        let text = |code, signal| exit_text(code, signal).map(|e| e.to_string());
        assert_eq!(text(Some(3), None).as_deref(), Some("exit 3"));
        assert_eq!(text(Some(0), Some("SIGKILL")).as_deref(), Some("exit 0"));
        assert_eq!(
            text(None, Some("SIG\x1bKILL")).as_deref(),
            Some("SIG\\x1bKILL")
        );
        assert_eq!(text(None, None), None);
    }

    #[test]
    fn runtimes_and_shims_are_shown_by_what_they_do() {
        let id = "f260ba8622e395b1d8861491d645b0d5c4fea396dcc332c1eea2755a7495be7c";
        let v = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            compact_command(
                Role::Runtime,
                &v(&["/usr/bin/runc", "--root", "/r", "create", id])
            )
            .as_deref(),
            Some("runc create f260ba8622e3")
        );
        assert_eq!(
            compact_command(
                Role::ShimStart,
                &v(&["/usr/bin/containerd-shim-runc-v2", "-id", id, "start"])
            )
            .as_deref(),
            Some("containerd-shim-runc-v2 -id f260ba8622e3 start")
        );
        assert_eq!(compact_command(Role::Entrypoint, &v(&["/bin/true"])), None);
        assert_eq!(ms(41_260_000), "41.3 ms");
        assert_eq!(ms_or_s(12_500_000_000), "12.5 s");
    }
}
