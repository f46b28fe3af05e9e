//! Mount options, and opening a path inside the rootfs without letting a
//! symlink lead outside it (the CVE-2021-30465 class): every target is
//! resolved with openat2(RESOLVE_IN_ROOT) and mounted on through
//! /proc/self/fd/N, so a symlink swapped in afterwards changes nothing.

use std::{
    ffi::CString,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::Path,
};

use nix::mount::MsFlags;

use crate::{
    Result,
    error::{Context as _, msg},
};

/// What a mount's `options` mean.
#[derive(Debug, PartialEq)]
pub struct Options {
    pub flags: MsFlags,
    /// Flags set by the options but only applicable with a remount (bind mounts).
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
    pub bind: bool,
    pub recursive: bool,
}

/// The options that are mount flags: (name, flag, whether it clears it).
const FLAGS: &[(&str, MsFlags, bool)] = &[
    ("ro", MsFlags::MS_RDONLY, false),
    ("rw", MsFlags::MS_RDONLY, true),
    ("nosuid", MsFlags::MS_NOSUID, false),
    ("suid", MsFlags::MS_NOSUID, true),
    ("nodev", MsFlags::MS_NODEV, false),
    ("dev", MsFlags::MS_NODEV, true),
    ("noexec", MsFlags::MS_NOEXEC, false),
    ("exec", MsFlags::MS_NOEXEC, true),
    ("sync", MsFlags::MS_SYNCHRONOUS, false),
    ("async", MsFlags::MS_SYNCHRONOUS, true),
    ("dirsync", MsFlags::MS_DIRSYNC, false),
    ("remount", MsFlags::MS_REMOUNT, false),
    ("mand", MsFlags::MS_MANDLOCK, false),
    ("nomand", MsFlags::MS_MANDLOCK, true),
    ("atime", MsFlags::MS_NOATIME, true),
    ("noatime", MsFlags::MS_NOATIME, false),
    ("diratime", MsFlags::MS_NODIRATIME, true),
    ("nodiratime", MsFlags::MS_NODIRATIME, false),
    ("relatime", MsFlags::MS_RELATIME, false),
    ("norelatime", MsFlags::MS_RELATIME, true),
    ("strictatime", MsFlags::MS_STRICTATIME, false),
];

/// The propagation options, as mount(2) flags.
const PROPAGATIONS: &[(&str, MsFlags)] = &[
    ("private", MsFlags::MS_PRIVATE),
    ("rprivate", MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    ("shared", MsFlags::MS_SHARED),
    ("rshared", MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ("slave", MsFlags::MS_SLAVE),
    ("rslave", MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    ("unbindable", MsFlags::MS_UNBINDABLE),
    ("runbindable", MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
];

/// Every option this runtime reads itself (the rest go to the filesystem
/// as data): what `features` reports.
pub fn known_options() -> impl Iterator<Item = &'static str> {
    FLAGS
        .iter()
        .map(|f| f.0)
        .chain(["bind", "rbind"])
        .chain(PROPAGATIONS.iter().map(|p| p.0))
}

pub fn parse_options(options: &[String]) -> Options {
    let mut o = Options {
        flags: MsFlags::empty(),
        propagation: Vec::new(),
        data: Vec::new(),
        bind: false,
        recursive: false,
    };
    for opt in options {
        if let Some(&(_, flag, clear)) = FLAGS.iter().find(|f| f.0 == opt) {
            if clear {
                o.flags.remove(flag);
            } else {
                o.flags.insert(flag);
            }
            continue;
        }
        match opt.as_str() {
            "bind" => o.bind = true,
            "rbind" => {
                o.bind = true;
                o.recursive = true;
            }
            p => match propagation(p) {
                Some(flags) => o.propagation.push(flags),
                None => o.data.push(p.to_string()),
            },
        }
    }
    o
}

pub fn propagation(name: &str) -> Option<MsFlags> {
    PROPAGATIONS.iter().find(|p| p.0 == name).map(|p| p.1)
}

/// openat2 with RESOLVE_IN_ROOT: `path` is taken relative to `root`, and
/// `..` or absolute symlinks cannot climb out of it.
pub fn open_in_root(root: &OwnedFd, path: &Path, flags: i32) -> std::io::Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let c = CString::new(rel.as_os_str().as_encoded_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // struct open_how { u64 flags; u64 mode; u64 resolve; }
    let how: [u64; 3] = [
        (flags | libc::O_CLOEXEC) as u64,
        0,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    ];
    loop {
        // SAFETY: valid fd, C string and open_how of the size given.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.as_raw_fd(),
                c.as_ptr(),
                how.as_ptr(),
                std::mem::size_of_val(&how),
            )
        };
        if fd >= 0 {
            // SAFETY: a new fd from the kernel.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EAGAIN) && err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// Opens `path` inside `root` as an O_PATH fd, creating missing directories
/// (and, when `file` is set, the last component as an empty file).
pub fn make_in_root(root: &OwnedFd, path: &Path, file: bool) -> Result<OwnedFd> {
    make_in_root_depth(root, path, file, 0)
}

fn make_in_root_depth(root: &OwnedFd, path: &Path, file: bool, depth: u32) -> Result<OwnedFd> {
    if depth > 40 {
        return Err(msg(format!(
            "too many symlinks resolving {} in the rootfs",
            path.display()
        )));
    }
    match open_in_root(root, path, libc::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(e).ctx(|| format!("cannot resolve {} in the rootfs", path.display())),
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(msg(format!(
            "cannot resolve {} in the rootfs",
            path.display()
        )));
    };
    // The parent is resolved (or made) safely first; then a name without
    // slashes is created right in it (an O_PATH fd is a valid dirfd).
    let parent_fd = make_in_root_depth(root, parent, false, depth + 1)?;
    let name = CString::new(name.as_encoded_bytes()).unwrap_or_default();
    // SAFETY: plain syscalls on a valid fd and C string.
    let rc = unsafe {
        if file {
            let f = libc::openat(
                parent_fd.as_raw_fd(),
                name.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                0o644,
            );
            if f >= 0 { libc::close(f) } else { f }
        } else {
            libc::mkdirat(parent_fd.as_raw_fd(), name.as_ptr(), 0o755)
        }
    };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e).ctx(|| format!("cannot create {} in the rootfs", path.display()));
        }
        // A dangling symlink (an image's /etc/resolv.conf, say): make its
        // target, resolved inside the root as the kernel would.
        if let Ok(target) = nix::fcntl::readlinkat(&parent_fd, name.as_c_str()) {
            let target = Path::new(&target);
            let next = if target.is_absolute() {
                target.to_path_buf()
            } else {
                parent.join(target)
            };
            return make_in_root_depth(root, &lexical(&next), file, depth + 1);
        }
    }
    open_in_root(root, path, libc::O_PATH)
        .ctx(|| format!("cannot resolve {} in the rootfs", path.display()))
}

/// `a/b/../c` → `/a/c`, with `..` stopping at the root (as RESOLVE_IN_ROOT does).
fn lexical(path: &Path) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::from("/");
    for c in path.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// The magic-link path through which a mount lands exactly on `fd`.
pub fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let o = parse_options(&[
            "nosuid".into(),
            "strictatime".into(),
            "mode=755".into(),
            "size=65536k".into(),
        ]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        let o = parse_options(&["rbind".into(), "ro".into(), "rprivate".into()]);
        assert!(o.bind && o.recursive);
        assert_eq!(o.flags, MsFlags::MS_RDONLY);
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
    }

    #[test]
    fn symlinks_stay_inside_the_root() {
        let dir = std::env::temp_dir().join(format!("rt-mounts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("root/inside")).unwrap();
        std::fs::create_dir_all(dir.join("outside")).unwrap();
        // An absolute symlink and a climbing one, both aimed at the host.
        std::os::unix::fs::symlink(dir.join("outside"), dir.join("root/abs")).unwrap();
        std::os::unix::fs::symlink("../../outside", dir.join("root/rel")).unwrap();
        let root: OwnedFd = std::fs::File::open(dir.join("root")).unwrap().into();
        for link in ["abs/new", "rel/new", "abs", "rel"] {
            // The targets are made inside the root, never outside.
            make_in_root(&root, Path::new(link), false).unwrap();
        }
        assert!(dir.join("root/outside/new").is_dir());
        assert!(
            dir.join("root")
                .join(dir.strip_prefix("/").unwrap())
                .join("outside/new")
                .is_dir()
        );
        make_in_root(&root, Path::new("/inside/a/b"), false).unwrap();
        assert!(dir.join("root/inside/a/b").is_dir());
        assert!(
            std::fs::read_dir(dir.join("outside"))
                .unwrap()
                .next()
                .is_none()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
