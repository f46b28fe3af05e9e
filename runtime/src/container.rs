//! A container's state directory, `<root>/<id>/`: `state.json` (what `create`
//! recorded) and, until `start`, `exec.fifo`.

use std::{
    fs,
    io::Write,
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::{
    Error, Result,
    cgroups::Cgroup,
    error::{Context as _, msg},
};

pub const STATE_FILE: &str = "state.json";
pub const FIFO: &str = "exec.fifo";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// What `create` records about a container.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Saved {
    pub id: String,
    pub pid: i32,
    /// The init process's start time (field 22 of /proc/PID/stat), so that a
    /// reused pid is not mistaken for the container.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub cgroup: Cgroup,
    pub config: Spec,
}

pub fn valid_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(msg(format!("invalid container id {id:?}")))
    }
}

pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

/// Makes the state directory; fails if the id is taken or the root is not writable.
pub fn make_dir(root: &Path, id: &str) -> Result<PathBuf> {
    valid_id(id)?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(root)
        .ctx(|| format!("cannot create state root {}", root.display()))?;
    let dir = dir(root, id);
    match fs::DirBuilder::new().mode(0o711).create(&dir) {
        Ok(()) => Ok(dir),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::Exists(id.into())),
        Err(e) => Err(e).ctx(|| format!("cannot create state directory {}", dir.display())),
    }
}

/// Writes `data` to `path` atomically: a temporary file in the same directory, then rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    (|| -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.set_permissions(fs::Permissions::from_mode(0o644))?;
        fs::rename(&tmp, path)
    })()
    .inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
    .ctx(|| format!("cannot write {}", path.display()))
}

/// The pid file the shim reads: the number alone, no newline.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    write_atomic(&path, pid.to_string().as_bytes())
}

impl Saved {
    pub fn load(root: &Path, id: &str) -> Result<Saved> {
        valid_id(id)?;
        let path = dir(root, id).join(STATE_FILE);
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.into()));
            }
            Err(e) => return Err(e).ctx(|| format!("cannot read {}", path.display())),
        };
        serde_json::from_slice(&text)
            .map_err(|e| msg(format!("corrupt state {}: {e}", path.display())))
    }

    pub fn save(&self, root: &Path) -> Result<()> {
        let text = serde_json::to_vec(self).map_err(|e| msg(e.to_string()))?;
        write_atomic(&dir(root, &self.id).join(STATE_FILE), &text)
    }

    pub fn dir(&self, root: &Path) -> PathBuf {
        dir(root, &self.id)
    }

    /// Is the recorded init process still alive (and not a zombie)?
    pub fn alive(&self) -> bool {
        process_start_time(self.pid).is_some_and(|(t, zombie)| t == self.start_time && !zombie)
    }

    pub fn status(&self, root: &Path) -> Status {
        if !self.alive() {
            return Status::Stopped;
        }
        if self.cgroup.frozen() {
            return Status::Paused;
        }
        if self.dir(root).join(FIFO).exists() {
            Status::Created
        } else {
            Status::Running
        }
    }

    pub fn annotations(&self) -> serde_json::Value {
        serde_json::to_value(self.config.annotations().clone().unwrap_or_default())
            .unwrap_or_default()
    }

    /// The OCI state, as `state` prints it and hooks read it on stdin.
    pub fn oci_state(&self, status: Status) -> serde_json::Value {
        let pid = if status == Status::Stopped {
            0
        } else {
            self.pid
        };
        serde_json::json!({
            "ociVersion": "1.0.2",
            "id": self.id,
            "status": status.to_string(),
            "pid": pid,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": "",
            "annotations": self.annotations(),
        })
    }
}

/// (start time, is a zombie) of a process, from /proc/PID/stat.
pub fn process_start_time(pid: i32) -> Option<(u64, bool)> {
    if pid <= 0 {
        return None;
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((start, *state == "Z" || *state == "X"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(valid_id("abc-1_2.3").is_ok());
        assert!(valid_id("").is_err());
        assert!(valid_id("..").is_err());
        assert!(valid_id("a/b").is_err());
    }

    #[test]
    fn own_start_time() {
        let (t, zombie) = process_start_time(std::process::id() as i32).unwrap();
        assert!(t > 0 && !zombie);
    }
}
