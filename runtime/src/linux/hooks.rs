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
    let started = Instant::now();
    let mut pause = Duration::from_micros(100);
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| msg(e.to_string()))? {
            break status;
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(msg(format!(
                "timed out after {} s",
                timeout.unwrap_or_default().as_secs()
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
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
