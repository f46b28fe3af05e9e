//! Driving `inspector-runtime` through its command line (runc's), one
//! subprocess per lifecycle step, so that each step is its own exec in the
//! trace: `create`, `start`, `kill`, `delete`.

use std::{
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum RuntimeError {
    #[error(
        "cannot find inspector-runtime: not next to {exe}, not on PATH (build it with \
         `cargo xtask build`, or set INSPECTOR_RUNTIME to its path)"
    )]
    NotFound { exe: String },
    #[error("cannot run {binary}: {error}")]
    Spawn {
        binary: String,
        error: std::io::Error,
    },
    #[error("`inspector-runtime {verb} {id}` failed ({status}){}", stderr_suffix(.stderr))]
    Failed {
        verb: &'static str,
        id: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("cannot read the container's pid from {path}: {reason}")]
    PidFile { path: String, reason: String },
    #[error(
        "invalid container name {0:?}: a name is 1 to {MAX_ID_LEN} letters, digits, '_', '+', \
         '-' and '.', and not \".\" or \"..\" (runc's rule)"
    )]
    InvalidId(String),
}

pub use ::runtime::container::MAX_ID_LEN;

/// Checks `id` by the runtime's rule (runc's: `^[\w+-\.]+$`, not `.` or
/// `..`, and a directory name's length), before it is used as a path.
pub fn valid_id(id: &str) -> Result<(), RuntimeError> {
    if ::runtime::container::is_valid_id(id) {
        Ok(())
    } else {
        Err(RuntimeError::InvalidId(id.to_string()))
    }
}

fn stderr_suffix(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        String::new()
    } else {
        format!(": {s}")
    }
}

/// The messages of a JSON log (one object a line, runc's format), or the
/// text as it is when it is not one.
fn log_messages(log: &str) -> String {
    let messages: Option<Vec<String>> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            v["msg"].as_str().map(String::from)
        })
        .collect();
    messages.map_or_else(|| log.to_string(), |m| m.join("; "))
}

/// The binary's name; the kernel keeps its first 15 bytes as the comm
/// (`inspector-runti`), which the probe follows by default.
pub const BINARY: &str = "inspector-runtime";

/// Finds the runtime: `$INSPECTOR_RUNTIME`, else next to the running
/// inspector (both are built into the same target directory), else on PATH.
pub fn locate() -> Result<PathBuf, RuntimeError> {
    if let Some(path) = std::env::var_os("INSPECTOR_RUNTIME").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().unwrap_or_default();
    if let Some(beside) = exe.parent().map(|d| d.join(BINARY))
        && beside.is_file()
    {
        return Ok(beside);
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(BINARY))
            .find(|p| p.is_file())
    });
    on_path.ok_or_else(|| RuntimeError::NotFound {
        exe: exe.display().to_string(),
    })
}

/// The runtime's default `--root` (runc's shape: one directory per
/// container id).
pub use ::runtime::DEFAULT_ROOT;

/// One container's runtime invocations.
#[derive(Clone, Debug)]
pub struct Runtime {
    pub binary: PathBuf,
    /// `--root`; `None` keeps the runtime's default (`/run/inspector-runtime`).
    pub root: Option<PathBuf>,
}

impl Runtime {
    /// The runtime in a process group of its own: a Ctrl-C at the terminal
    /// reaches inspector, which stops the container in order, and never
    /// kills a runtime halfway through `create`.
    fn base(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.process_group(0);
        cmd
    }

    fn command(&self, verb: &str) -> Command {
        let mut cmd = self.base();
        if let Some(root) = &self.root {
            cmd.arg("--root").arg(root);
        }
        cmd.arg(verb);
        cmd
    }

    /// Runs a step that prints nothing the user needs; its stderr becomes the
    /// error's text.
    fn quiet(&self, verb: &'static str, id: &str, mut cmd: Command) -> Result<(), RuntimeError> {
        let out = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|error| RuntimeError::Spawn {
                binary: self.binary.display().to_string(),
                error,
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(RuntimeError::Failed {
                verb,
                id: id.to_string(),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }

    /// Whether a container with this id exists (its state directory does).
    pub fn exists(&self, id: &str) -> bool {
        self.root
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_ROOT))
            .join(id)
            .exists()
    }

    /// `create --bundle B --pid-file F ID`: the container's init is made and
    /// waits for `start`. Its standard streams are ours (the runtime passes
    /// its own on), so the container writes to the user's terminal; the
    /// runtime's own errors are captured instead. Returns the init's pid.
    /// With `output`, the container's stdin is /dev/null and its stdout and
    /// stderr that file.
    pub fn create(
        &self,
        bundle: &Path,
        id: &str,
        output: Option<std::fs::File>,
    ) -> Result<i32, RuntimeError> {
        let pid_file = bundle.join("container.pid");
        // The runtime's own log goes to a file so that its stderr can stay
        // the container's; named as containerd's shim names it, which is
        // the name the probe reads runtime messages from.
        let log = bundle.join("log.json");
        let mut cmd = self.base();
        if let Some(root) = &self.root {
            cmd.arg("--root").arg(root);
        }
        cmd.arg("--log")
            .arg(&log)
            .args(["--log-format", "json", "create"])
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(id);
        if let Some(out) = output {
            let err = out.try_clone().map_err(|error| RuntimeError::Spawn {
                binary: self.binary.display().to_string(),
                error,
            })?;
            cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        }
        let status = cmd.status().map_err(|error| RuntimeError::Spawn {
            binary: self.binary.display().to_string(),
            error,
        })?;
        if !status.success() {
            return Err(RuntimeError::Failed {
                verb: "create",
                id: id.to_string(),
                status,
                stderr: log_messages(&std::fs::read_to_string(&log).unwrap_or_default()),
            });
        }
        let pid_err = |reason: String| RuntimeError::PidFile {
            path: pid_file.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(&pid_file).map_err(|e| pid_err(e.to_string()))?;
        text.trim()
            .parse()
            .map_err(|_| pid_err(format!("{:?} is not a pid", text.trim())))
    }

    pub fn start(&self, id: &str) -> Result<(), RuntimeError> {
        let mut cmd = self.command("start");
        cmd.arg(id);
        self.quiet("start", id, cmd)
    }

    /// Sends `signal` (a name: `TERM`, `KILL`) to the container's init.
    pub fn kill(&self, id: &str, signal: &str) -> Result<(), RuntimeError> {
        let mut cmd = self.command("kill");
        cmd.arg(id).arg(signal);
        self.quiet("kill", id, cmd)
    }

    /// `delete --force`: removes the cgroup and state directory, killing what
    /// may be left.
    pub fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        let mut cmd = self.command("delete");
        cmd.arg("--force").arg(id);
        self.quiet("delete", id, cmd)
    }
}

/// A container id nobody else is using: `inspector-<pid>-<ms>`, valid for
/// runc's rules (letters, digits, `-`, `_`, `.`).
pub fn fresh_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() % 1_000_000_000);
    format!("inspector-{}-{ms}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_follow_runc_s_rule() {
        for good in ["a", "insp-1_2.3+x", &"a".repeat(MAX_ID_LEN), &fresh_id()] {
            assert!(valid_id(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "/",
            "a/b",
            "a b",
            "é",
            &"a".repeat(MAX_ID_LEN + 1),
        ] {
            assert!(valid_id(bad).is_err(), "{bad}");
        }
    }
}
