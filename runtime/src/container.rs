//! A container's state directory, `<root>/<id>/`: `state.json` (what `create`
//! recorded) and, until `start`, `exec.fifo`.
//!
//! The state holds the whole config, secrets in its environment included, so
//! only root may read it, as with runc: the state root and each state
//! directory are 0700 and owned by us (a symlink or a directory another user
//! could write is refused), and every file in them is 0600, written to a
//! fresh unpredictable name (`O_EXCL`) and renamed into place.

use std::{
    fs,
    io::Write,
    os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::{
    Error, Result,
    error::{Context as _, msg},
    linux::{cgroups::Cgroup, proc::process_start_time},
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
    /// Set while `create` runs (its pid and start time): the state is written
    /// before the cgroups are made, so that `delete` finds what a `create`
    /// that died half-way left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creating: Option<Creator>,
}

/// The `create` process building a container.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Creator {
    pub pid: i32,
    pub start_time: u64,
}

impl Creator {
    /// The calling process.
    pub fn me() -> Creator {
        let pid = std::process::id() as i32;
        Creator {
            pid,
            start_time: process_start_time(pid).map_or(0, |(t, _)| t),
        }
    }

    fn alive(&self) -> bool {
        process_start_time(self.pid) == Some((self.start_time, false))
    }
}

/// The longest container id: it names a directory (the state directory,
/// and the cgroup when the config gives no cgroupsPath).
pub const MAX_ID_LEN: usize = 255;

/// runc's rule for container ids (`^[\w+-\.]+$`, not `.` or `..`), with the
/// length a directory name can have. `inspector run --name` checks by it too.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b))
}

/// [`is_valid_id`], or an error saying what an id may be.
pub fn valid_id(id: &str) -> Result<()> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(msg(format!(
            "invalid container id {id:?}: an id is 1 to {MAX_ID_LEN} letters, digits, \
             '_', '+', '-' and '.', and not \".\" or \"..\""
        )))
    }
}

pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

/// Makes `path` (and missing parents) as a directory only we can use, or
/// checks an existing one: not a symlink, owned by us, not writable by
/// others; its mode is then narrowed to 0700. `what` names it in errors.
pub fn private_dir(path: &Path, what: &str) -> Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .ctx(|| format!("cannot create {what} {}", path.display()))?;
        }
        Err(e) => return Err(e).ctx(|| format!("cannot create {what} {}", path.display())),
    }
    // O_NOFOLLOW: a symlink planted where the directory should be is refused,
    // never followed; the checks and the chmod go through this very fd.
    let dir = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            msg(format!(
                "{what} {} is not a plain directory ({e}): refusing it (remove it, or choose another path)",
                path.display()
            ))
        })?;
    let m = dir
        .metadata()
        .ctx(|| format!("cannot stat {what} {}", path.display()))?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if m.uid() != me {
        return Err(msg(format!(
            "{what} {} belongs to uid {}, not to us (uid {me}): another user could change what is in it; remove it or choose another path",
            path.display(),
            m.uid()
        )));
    }
    if m.mode() & 0o022 != 0 {
        return Err(msg(format!(
            "{what} {} is writable by other users (mode {:o}): choose a directory only root can write",
            path.display(),
            m.mode() & 0o7777
        )));
    }
    if m.mode() & 0o7777 != 0o700 {
        dir.set_permissions(fs::Permissions::from_mode(0o700))
            .ctx(|| format!("cannot chmod {what} {}", path.display()))?;
    }
    Ok(())
}

/// Makes the state directory; fails if the id is taken or the root is not usable.
pub fn make_dir(root: &Path, id: &str) -> Result<PathBuf> {
    valid_id(id)?;
    private_dir(root, "state root")?;
    let dir = dir(root, id);
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => Ok(dir),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::Exists(id.into())),
        Err(e) => Err(e).ctx(|| format!("cannot create state directory {}", dir.display())),
    }
}

/// Writes `data` to `path` atomically, with `mode`: a new file under an
/// unpredictable name in the same directory (`O_EXCL`, so never through a
/// planted symlink), then renamed over `path` (which replaces a symlink
/// there rather than following it).
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    (|| -> std::io::Result<()> {
        let mut f = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .permissions(fs::Permissions::from_mode(mode))
            .tempfile_in(dir)?;
        f.write_all(data)?;
        // Past the umask.
        f.as_file()
            .set_permissions(fs::Permissions::from_mode(mode))?;
        f.persist(path).map_err(|e| e.error)?;
        Ok(())
    })()
    .ctx(|| format!("cannot write {}", path.display()))
}

/// The pid file the shim reads: the number alone, no newline.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    // Not a secret, and read by whoever started us: 0644, as runc's.
    write_atomic(&path, pid.to_string().as_bytes(), 0o644)
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
        write_atomic(&dir(root, &self.id).join(STATE_FILE), &text, 0o600)
    }

    pub fn dir(&self, root: &Path) -> PathBuf {
        dir(root, &self.id)
    }

    /// Is the recorded init process still alive (and not a zombie)?
    pub fn alive(&self) -> bool {
        process_start_time(self.pid).is_some_and(|(t, zombie)| t == self.start_time && !zombie)
    }

    pub fn status(&self, root: &Path) -> Status {
        if let Some(c) = &self.creating {
            // A `create` that died leaves nothing that will ever start: stopped.
            return if c.alive() {
                Status::Creating
            } else {
                Status::Stopped
            };
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(valid_id("abc-1_2.3").is_ok());
        assert!(valid_id("").is_err());
        assert!(valid_id("..").is_err());
        assert!(valid_id("a/b").is_err());
        assert!(valid_id(".").is_err());
        assert!(valid_id("/").is_err());
        assert!(valid_id(&"a".repeat(MAX_ID_LEN)).is_ok());
        assert!(valid_id(&"a".repeat(MAX_ID_LEN + 1)).is_err());
        let err = valid_id("a/b").unwrap_err().to_string();
        assert!(err.contains("letters, digits"), "{err}");
    }
}
