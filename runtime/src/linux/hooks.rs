//! OCI hooks: each is run with the container's state JSON on stdin, in spec order,
//! and killed when its timeout passes.

use std::{
    io::{Read, Write},
    os::unix::process::CommandExt,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use oci_spec::runtime::Hook;

use crate::{Result, error::msg};

/// The kinds of hook this runtime runs, each where the spec puts it
/// (create, the container's init, start, delete): `features` says so.
pub const KINDS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Runs the hooks of one kind in order; the first failure stops them.
pub fn run_all(kind: &str, hooks: Option<&Vec<Hook>>, state: &serde_json::Value) -> Result<()> {
    for hook in hooks.into_iter().flatten() {
        run(hook, state).map_err(|e| msg(format!("{kind} hook {}: {e}", hook.path().display())))?;
    }
    Ok(())
}

/// Like `run_all` but a failure is only a warning (poststart, poststop).
pub fn run_all_warn(kind: &str, hooks: Option<&Vec<Hook>>, state: &serde_json::Value) {
    for hook in hooks.into_iter().flatten() {
        if let Err(e) = run(hook, state) {
            crate::log::warn(&format!("{kind} hook {}: {e}", hook.path().display()));
        }
    }
}

fn run(hook: &Hook, state: &serde_json::Value) -> Result<()> {
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args()
        && let Some((first, rest)) = args.split_first()
    {
        cmd.arg0(first).args(rest);
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| msg(format!("cannot start: {e}")))?;
    let input = state.to_string();
    let mut stdin = child.stdin.take().expect("piped");
    // A hook that does not read its stdin must not block us.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let timeout = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64));
    let Some(status) = wait(&mut child, timeout)? else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(msg(format!(
            "timed out after {} s",
            timeout.unwrap_or_default().as_secs()
        )));
    };
    let _ = writer.join();
    let err = reader.join().unwrap_or_default();
    if !status.success() {
        let err = err.trim();
        return Err(msg(if err.is_empty() {
            format!("failed ({status})")
        } else {
            format!("failed ({status}): {err}")
        }));
    }
    Ok(())
}

/// The hook's exit status, or `None` once `timeout` passed. It sleeps in
/// `poll` on a pidfd, which the kernel makes readable as the hook exits: no
/// polling delay added to every hook, and a tracer sees the hook's exit wake
/// the runtime (`inspector timeline --why` follows the wait into the hook).
/// Kernels without pidfds (before 5.3) get a poll of `try_wait`.
fn wait(
    child: &mut std::process::Child,
    timeout: Option<Duration>,
) -> Result<Option<std::process::ExitStatus>> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let started = Instant::now();
    // SAFETY: pidfd_open with a pid and no flags; the fd is owned below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    if fd < 0 {
        let mut pause = Duration::from_micros(100);
        loop {
            if let Some(status) = child.try_wait().map_err(|e| msg(e.to_string()))? {
                return Ok(Some(status));
            }
            if timeout.is_some_and(|t| started.elapsed() >= t) {
                return Ok(None);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }
    // SAFETY: a new fd from pidfd_open, owned by nothing else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    loop {
        let wait_ms = match timeout {
            None => -1,
            Some(t) => t
                .saturating_sub(started.elapsed())
                .as_millis()
                .min(i32::MAX as u128) as i32,
        };
        let mut p = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, wait_ms) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(msg(format!("waiting for it: {e}")));
        }
        if r == 0 {
            return Ok(None);
        }
        return child.wait().map(Some).map_err(|e| msg(e.to_string()));
    }
}
