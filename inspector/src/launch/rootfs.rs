//! Root filesystems: the default one, made from the host's own programs, and
//! finding a command inside any root filesystem before the runtime is asked
//! to run it.

use std::{
    collections::VecDeque,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum RootfsError {
    #[error("cannot make the default root filesystem in {path}: {error}")]
    Make { path: String, error: std::io::Error },
    #[error("`{command}` is not in the root filesystem (searched {searched})")]
    NotFound { command: String, searched: String },
    #[error("`{command}` is in the root filesystem at {path} but is not an executable file")]
    NotExecutable { command: String, path: String },
    #[error("no command to run: give one after `--` (the {0} names none)")]
    NoCommand(&'static str),
}

/// The host directories the default root filesystem shows, read-only. A
/// directory is bind-mounted; a symlink (`/bin → usr/bin` on merged-/usr
/// systems) is recreated as the same symlink, so it resolves inside the
/// container exactly as on the host.
pub const HOST_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// The PATH a container gets when its configuration sets none (runc's and
/// Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A read-only bind mount of a host directory into the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub destination: String,
}

/// Fills the empty directory `dir` with the default root filesystem's
/// skeleton and returns the bind mounts that complete it: the host's
/// [`HOST_DIRS`] (those that exist), and empty mount points for the fresh
/// /proc, /dev, /sys and /tmp the bundle's configuration mounts.
pub fn make_default(dir: &Path) -> Result<Vec<BindMount>, RootfsError> {
    make_default_from(dir, Path::new("/"))
}

/// [`make_default`] with the host's root at `host` (tests use a fake one).
pub fn make_default_from(dir: &Path, host: &Path) -> Result<Vec<BindMount>, RootfsError> {
    let err = |error| RootfsError::Make {
        path: dir.display().to_string(),
        error,
    };
    let mut binds = Vec::new();
    for name in HOST_DIRS {
        let on_host = host.join(name.trim_start_matches('/'));
        let inside = dir.join(name.trim_start_matches('/'));
        let Ok(meta) = std::fs::symlink_metadata(&on_host) else {
            continue;
        };
        if meta.is_symlink() {
            let target = std::fs::read_link(&on_host).map_err(err)?;
            std::os::unix::fs::symlink(target, &inside).map_err(err)?;
        } else if meta.is_dir() {
            std::fs::create_dir(&inside).map_err(err)?;
            binds.push(BindMount {
                source: on_host,
                destination: (*name).to_string(),
            });
        }
    }
    for name in ["proc", "dev", "sys", "tmp", "etc"] {
        std::fs::create_dir(dir.join(name)).map_err(err)?;
    }
    Ok(binds)
}

/// A container's view of its files, seen from the host: the root filesystem
/// with bind mounts over parts of it.
#[derive(Clone, Debug)]
pub struct View {
    pub rootfs: PathBuf,
    pub binds: Vec<BindMount>,
}

/// Symlinks followed before giving up, as the kernel's ELOOP limit.
const MAX_LINKS: usize = 40;

impl View {
    pub fn new(rootfs: impl Into<PathBuf>, binds: Vec<BindMount>) -> Self {
        View {
            rootfs: rootfs.into(),
            binds,
        }
    }

    /// Where an already resolved container path lives on the host: under
    /// the deepest bind mount that covers it, else under the rootfs.
    fn host_path(&self, components: &[String]) -> PathBuf {
        let covers = |b: &BindMount| {
            let dest: Vec<&str> = b.destination.split('/').filter(|c| !c.is_empty()).collect();
            dest.len() <= components.len() && dest.iter().zip(components).all(|(d, c)| d == c)
        };
        let (base, skip) = match self
            .binds
            .iter()
            .filter(|b| covers(b))
            .max_by_key(|b| b.destination.len())
        {
            Some(b) => (
                b.source.clone(),
                b.destination.split('/').filter(|c| !c.is_empty()).count(),
            ),
            None => (self.rootfs.clone(), 0),
        };
        components[skip..].iter().fold(base, |p, c| p.join(c))
    }

    /// The host path of `path` (absolute, inside the container), following
    /// symlinks as the container will see them: an absolute link target is
    /// taken from the container's root, never the host's. `None` when some
    /// part does not exist or the links loop.
    pub fn resolve(&self, path: &str) -> Option<PathBuf> {
        let mut todo: VecDeque<String> = path
            .split('/')
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect();
        let mut done: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(c) = todo.pop_front() {
            match c.as_str() {
                "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            done.push(c);
            let host = self.host_path(&done);
            let meta = std::fs::symlink_metadata(&host).ok()?;
            if meta.is_symlink() {
                links += 1;
                if links > MAX_LINKS {
                    return None;
                }
                let target = std::fs::read_link(&host).ok()?;
                let target = target.to_str()?;
                done.pop();
                if target.starts_with('/') {
                    done.clear();
                }
                for part in target.split('/').filter(|p| !p.is_empty()).rev() {
                    todo.push_front(part.to_string());
                }
            }
        }
        Some(self.host_path(&done))
    }

    /// Finds `command` the way the runtime will when it executes it: a name
    /// with a slash as it is (relative to `cwd`), otherwise the first
    /// executable file of that name in `path` (the container's PATH).
    /// Returns its path inside the container.
    pub fn find_command(
        &self,
        command: &str,
        path: &str,
        cwd: &str,
    ) -> Result<String, RootfsError> {
        let candidates: Vec<String> = if command.contains('/') {
            vec![if command.starts_with('/') {
                command.to_string()
            } else {
                format!("{}/{command}", cwd.trim_end_matches('/'))
            }]
        } else {
            path.split(':')
                .filter(|d| !d.is_empty())
                .map(|d| format!("{}/{command}", d.trim_end_matches('/')))
                .collect()
        };
        let mut not_executable = None;
        for candidate in &candidates {
            let Some(host) = self.resolve(candidate) else {
                continue;
            };
            match std::fs::metadata(&host) {
                Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {
                    return Ok(candidate.clone());
                }
                Ok(_) => {
                    not_executable.get_or_insert_with(|| candidate.clone());
                }
                Err(_) => {}
            }
        }
        if let Some(path) = not_executable {
            return Err(RootfsError::NotExecutable {
                command: command.to_string(),
                path,
            });
        }
        let searched = if command.contains('/') {
            candidates.join(", ")
        } else {
            path.split(':')
                .filter(|d| !d.is_empty())
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(RootfsError::NotFound {
            command: command.to_string(),
            searched,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::ScratchDir;

    fn touch_exe(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn default_rootfs_recreates_symlinks_and_binds_directories() {
        let host = ScratchDir::new("rootfs-host").unwrap();
        std::fs::create_dir_all(host.path().join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("usr/bin", host.path().join("bin")).unwrap();
        std::fs::create_dir_all(host.path().join("lib64")).unwrap();
        let root = ScratchDir::new("rootfs-default").unwrap();
        let binds = make_default_from(root.path(), host.path()).unwrap();
        let dests: Vec<&str> = binds.iter().map(|b| b.destination.as_str()).collect();
        assert_eq!(dests, ["/usr", "/lib64"]);
        assert_eq!(
            std::fs::read_link(root.path().join("bin")).unwrap(),
            Path::new("usr/bin")
        );
        for d in ["usr", "lib64", "proc", "dev", "sys", "tmp", "etc"] {
            assert!(root.path().join(d).is_dir(), "{d}");
        }
        assert!(!root.path().join("sbin").exists());
    }

    #[test]
    fn finds_commands_through_binds_and_container_symlinks() {
        let host = ScratchDir::new("rootfs-host").unwrap();
        touch_exe(&host.path().join("usr/bin/dash"));
        std::os::unix::fs::symlink("dash", host.path().join("usr/bin/sh")).unwrap();
        let root = ScratchDir::new("rootfs-view").unwrap();
        std::fs::create_dir(root.path().join("usr")).unwrap();
        std::fs::create_dir(root.path().join("tmp")).unwrap();
        std::os::unix::fs::symlink("usr/bin", root.path().join("bin")).unwrap();
        let view = View::new(
            root.path(),
            vec![BindMount {
                source: host.path().join("usr"),
                destination: "/usr".into(),
            }],
        );
        assert_eq!(
            view.find_command("sh", "/sbin:/bin", "/").unwrap(),
            "/bin/sh"
        );
        assert_eq!(
            view.find_command("/bin/sh", DEFAULT_PATH, "/").unwrap(),
            "/bin/sh"
        );
        assert_eq!(
            view.find_command("../usr/bin/dash", "", "/tmp").unwrap(),
            "/tmp/../usr/bin/dash"
        );
        let err = view.find_command("foo", "/bin:/usr/bin", "/").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`foo` is not in the root filesystem (searched /bin, /usr/bin)"
        );
    }

    #[test]
    fn absolute_links_stay_inside_the_container() {
        // An image's /bin/sh -> /bin/busybox must be looked up in the image,
        // never in the host's /bin.
        let root = ScratchDir::new("rootfs-abs").unwrap();
        touch_exe(&root.path().join("bin/busybox"));
        std::os::unix::fs::symlink("/bin/busybox", root.path().join("bin/sh")).unwrap();
        std::os::unix::fs::symlink("/nowhere/at/all", root.path().join("bin/dangling")).unwrap();
        std::os::unix::fs::symlink("loop", root.path().join("bin/loop")).unwrap();
        let view = View::new(root.path(), Vec::new());
        assert_eq!(
            view.resolve("/bin/sh").unwrap(),
            root.path().join("bin/busybox")
        );
        assert!(view.find_command("dangling", "/bin", "/").is_err());
        assert!(view.resolve("/bin/loop").is_none());
        std::fs::write(root.path().join("bin/data"), b"").unwrap();
        assert!(matches!(
            view.find_command("data", "/bin", "/"),
            Err(RootfsError::NotExecutable { .. })
        ));
    }
}
