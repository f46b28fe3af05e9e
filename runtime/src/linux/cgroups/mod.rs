//! cgroups for a container, on the v1 (or hybrid) layout and on pure cgroup2.
//!
//! `cgroupsPath` is taken like runc's cgroupfs driver: `/docker/<id>` is a path
//! below the root of every hierarchy. systemd's `slice:prefix:name` form needs
//! systemd, which this runtime does not talk to, so it is refused.

pub mod devices;
pub mod stats;
pub mod v1;
pub mod v2;

use std::{
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::{
    Result,
    error::{Context as _, msg},
};

/// The directories a container's processes live in.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Cgroup {
    /// (controller or hierarchy name, directory), for the v1 hierarchies and,
    /// on a hybrid machine, the cgroup2 tree (`unified`).
    pub v1: Vec<(String, PathBuf)>,
    /// The directory on a pure cgroup2 machine.
    pub v2: Option<PathBuf>,
}

/// Turns `cgroupsPath` into a path below each hierarchy's root.
pub fn relative_path(cgroups_path: Option<&Path>, id: &str) -> Result<PathBuf> {
    let Some(p) = cgroups_path else {
        return Ok(PathBuf::from(id));
    };
    let text = p.to_string_lossy();
    if !text.starts_with('/') && text.split(':').count() == 3 {
        return Err(msg(format!(
            "cgroupsPath {text:?} is a systemd path (slice:prefix:name); systemd cgroups are not supported, use a path like /docker/{id}"
        )));
    }
    let rel: PathBuf = p
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .collect();
    if rel.as_os_str().is_empty() || text.contains("..") {
        return Err(msg(format!("invalid cgroupsPath {text:?}")));
    }
    Ok(rel)
}

pub fn is_pure_v2() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

impl Cgroup {
    /// Makes the directories `planned` names for `rel` (see [`planned`]) and
    /// applies the limits. On error nothing is left behind.
    /// `devices` are the config's devices, which the container may always use.
    /// Device rules go to the v1 `devices` controller, or, on pure cgroup2,
    /// into an eBPF program attached to the directory (`devices.rs`).
    pub fn create(
        planned: &Cgroup,
        rel: &Path,
        resources: Option<&LinuxResources>,
        devices: &[oci_spec::runtime::LinuxDevice],
    ) -> Result<Cgroup> {
        let cg = if planned.v2.is_some() {
            Cgroup {
                v1: Vec::new(),
                v2: Some(v2::create(Path::new("/sys/fs/cgroup"), rel)?),
            }
        } else {
            Cgroup {
                v1: v1::create(&planned.v1, rel)?,
                v2: None,
            }
        };
        let applied = resources.map_or(Ok(()), |r| cg.apply(r)).and_then(|()| {
            // A fifo is made, never opened through the device controller:
            // there is no rule to write (the kernel refuses a `p` rule), as
            // runc writes none.
            let extra: Vec<String> = devices
                .iter()
                .filter(|d| d.typ() != oci_spec::runtime::LinuxDeviceType::P)
                .map(|d| {
                    let t = match d.typ() {
                        oci_spec::runtime::LinuxDeviceType::B => "b",
                        _ => "c",
                    };
                    format!("{t} {}:{} rwm", d.major(), d.minor())
                })
                .collect();
            match &cg.v2 {
                // No devices controller on cgroup2: the same rules as an eBPF program.
                Some(dir) => v2::restrict_devices(
                    dir,
                    resources
                        .and_then(|r| r.devices().as_deref())
                        .unwrap_or(&[]),
                    &extra,
                ),
                None => v1::allow_devices(&cg.v1, &extra),
            }
        });
        if let Err(e) = applied {
            // At once: nothing of the container has joined them, except,
            // when `create` cloned it there first, the cgroup2 directory,
            // which `create` removes once that process is gone.
            cg.remove_within(Duration::ZERO);
            return Err(e);
        }
        Ok(cg)
    }

    /// Makes only the cgroup2 directory of `planned` (see [`planned`]), for
    /// a process to be cloned into (`CLONE_INTO_CGROUP`) before
    /// [`Cgroup::create`] makes the others.
    pub fn make_unified(planned: &Cgroup) -> Result<()> {
        match planned.unified_dir() {
            Some(d) => {
                fs::create_dir_all(d).ctx(|| format!("cannot create cgroup {}", d.display()))
            }
            None => Ok(()),
        }
    }

    /// Applies `r` to the container's cgroups (at create, and `update`).
    pub fn apply(&self, r: &LinuxResources) -> Result<()> {
        match &self.v2 {
            Some(dir) => v2::apply(dir, r),
            None => v1::apply(&self.v1, r),
        }
    }

    /// Moves a process into the cgroup2 directory (when it could not be born there).
    pub fn join_unified(&self, pid: i32) -> Result<()> {
        if let Some(dir) = self.unified_dir() {
            fs::write(dir.join("cgroup.procs"), pid.to_string())
                .ctx(|| format!("cannot add pid {pid} to cgroup {}", dir.display()))?;
        }
        Ok(())
    }

    /// Moves the calling (single-threaded) process into the v1 hierarchies by
    /// writing "0" to `tasks`. Unlike a write of a pid to cgroup.procs, this
    /// skips the global threadgroup lock, whose first taking waits a whole RCU
    /// grace period (about 10 ms here).
    pub fn join_self_v1(&self) -> Result<()> {
        for (_, dir) in self.v1.iter().filter(|(n, _)| n != "unified") {
            fs::write(dir.join("tasks"), "0")
                .ctx(|| format!("cannot join cgroup {}", dir.display()))?;
        }
        Ok(())
    }

    /// The cgroup2 directory (pure v2, or the unified tree of a hybrid machine).
    pub fn unified_dir(&self) -> Option<&PathBuf> {
        self.v2.as_ref().or_else(|| self.v1_dir("unified"))
    }

    pub fn dirs(&self) -> impl Iterator<Item = &PathBuf> {
        self.v1.iter().map(|(_, d)| d).chain(self.v2.iter())
    }

    fn v1_dir(&self, name: &str) -> Option<&PathBuf> {
        self.v1.iter().find(|(n, _)| n == name).map(|(_, d)| d)
    }

    /// The pids in the container's cgroup.
    pub fn pids(&self) -> Vec<i32> {
        let dir = self
            .v2
            .as_ref()
            .or_else(|| self.v1_dir("pids"))
            .or_else(|| self.v1_dir("memory"))
            .or_else(|| self.v1.first().map(|(_, d)| d));
        dir.and_then(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// How many processes of the cgroup the kernel's OOM killer has killed:
    /// `oom_kill` in memory.events (cgroup2) or memory.oom_control (v1).
    /// 0 when the kernel does not say.
    pub fn oom_kills(&self) -> u64 {
        let file = match &self.v2 {
            Some(d) => d.join("memory.events"),
            None => match self.v1_dir("memory") {
                Some(d) => d.join("memory.oom_control"),
                None => return 0,
            },
        };
        fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn frozen(&self) -> bool {
        if let Some(d) = &self.v2 {
            return fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1");
        }
        self.v1_dir("freezer")
            .and_then(|d| fs::read_to_string(d.join("freezer.state")).ok())
            .is_some_and(|s| s.trim() != "THAWED")
    }

    pub fn freeze(&self, frozen: bool) -> Result<()> {
        if let Some(d) = &self.v2 {
            return fs::write(d.join("cgroup.freeze"), if frozen { "1" } else { "0" })
                .ctx(|| format!("cannot write {}/cgroup.freeze", d.display()));
        }
        let d = self
            .v1_dir("freezer")
            .ok_or_else(|| msg("the container has no freezer cgroup"))?;
        let want = if frozen { "FROZEN" } else { "THAWED" };
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            fs::write(d.join("freezer.state"), want)
                .ctx(|| format!("cannot write {}/freezer.state", d.display()))?;
            let now = fs::read_to_string(d.join("freezer.state")).unwrap_or_default();
            if now.trim() == want {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(msg(format!("cgroup {} did not become {want}", d.display())));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Removes the directories, waiting briefly for exiting processes to leave.
    pub fn remove(&self) {
        self.remove_within(Duration::from_secs(2));
    }

    /// Removes the directories, retrying one that is busy for up to `wait`.
    fn remove_within(&self, wait: Duration) {
        let deadline = Instant::now() + wait;
        for dir in self.dirs() {
            loop {
                match fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    Err(e) => {
                        crate::log::warn(&format!("cannot remove cgroup {}: {e}", dir.display()));
                        break;
                    }
                }
            }
        }
    }
}

/// Writes one control file, naming it on error.
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    fs::write(dir.join(file), value)
        .ctx(|| format!("cannot write {value:?} to {}", dir.join(file).display()))
}

/// The directories `Cgroup::create` makes for `rel` on this machine, without
/// making them: `create` records them first, so that `delete` can find them
/// even if `create` dies half-way.
pub fn planned(rel: &Path) -> Cgroup {
    if is_pure_v2() {
        return Cgroup {
            v1: Vec::new(),
            v2: Some(Path::new("/sys/fs/cgroup").join(rel)),
        };
    }
    let mut v1: Vec<(String, PathBuf)> = Vec::new();
    for (name, mount) in v1::hierarchies() {
        let dir = mount.join(rel);
        // The same mount may carry several controllers (cpu,cpuacct).
        if !v1.iter().any(|(_, d)| *d == dir) {
            v1.push((name, dir));
        }
    }
    Cgroup { v1, v2: None }
}

impl Cgroup {
    /// Every process in the container's cgroups and the cgroups below them,
    /// in every hierarchy (a process may have left one hierarchy's directory
    /// and not another's).
    pub fn all_pids(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        for dir in self.dirs() {
            walk_dirs(dir, &mut |d| {
                let text = fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
                pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            });
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Removes the directories and any made below them, killing (and
    /// thawing) what is still in them. Missing directories are fine, so this
    /// can be repeated. Returns the directories that could not be removed.
    pub fn remove_all(&self) -> Vec<(PathBuf, std::io::Error)> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut left = Vec::new();
        for dir in self.dirs() {
            // The usual case, with nothing to walk: an empty leaf.
            match fs::remove_dir(dir) {
                Ok(()) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(_) => {}
            }
            let mut below = Vec::new();
            walk_dirs(dir, &mut |d| below.push(d.to_path_buf()));
            // Deepest first: a cgroup with children cannot go.
            for d in below.iter().rev() {
                if let Err(e) = remove_busy(d, deadline) {
                    left.push((d.clone(), e));
                }
            }
        }
        left
    }
}

/// Calls `f` on `dir` and every directory below it, parents first. Entries
/// are typed from the directory itself, so a symlink is never followed.
fn walk_dirs(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    f(dir);
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk_dirs(&e.path(), f);
        }
    }
}

/// rmdir, and while the kernel says busy: SIGKILL every process in it and
/// thaw it (a frozen process cannot die), until `deadline`.
fn remove_busy(dir: &Path, deadline: Instant) -> std::io::Result<()> {
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => {
                let text = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    // SAFETY: killing what is left in a container's cgroup.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                let _ = fs::write(dir.join("freezer.state"), "THAWED");
                let _ = fs::write(dir.join("cgroup.freeze"), "0");
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroups_paths() {
        assert_eq!(
            relative_path(Some(Path::new("/docker/abc")), "abc").unwrap(),
            PathBuf::from("docker/abc")
        );
        assert_eq!(relative_path(None, "abc").unwrap(), PathBuf::from("abc"));
        let err = relative_path(Some(Path::new("system.slice:docker:abc")), "abc")
            .unwrap_err()
            .to_string();
        assert!(err.contains("systemd"), "{err}");
        assert!(relative_path(Some(Path::new("/a/../../b")), "x").is_err());
    }
}
