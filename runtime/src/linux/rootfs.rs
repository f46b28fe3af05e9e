//! The container's filesystem: mounts from config.json, /dev, pivot_root,
//! masked and read-only paths. Runs in init, inside the new mount namespace.

use std::{
    fs::File,
    os::fd::OwnedFd,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
};

use nix::{
    mount::{MntFlags, MsFlags, mount, umount2},
    sys::stat::{Mode, SFlag, makedev, mknod},
    unistd::{chdir, chroot, pivot_root},
};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};

use crate::{
    Result,
    error::{Context as _, msg},
    linux::{
        cgroups::Cgroup,
        mounts::{self, fd_path, make_in_root, open_in_root, parse_options},
        proc::MountInfo,
    },
};

const NONE: Option<&str> = None;

/// Everything before pivot_root: propagation, the rootfs bind, the mounts, /dev.
pub fn prepare(spec: &Spec, rootfs: &Path, cgroup: &Cgroup) -> Result<()> {
    let linux = spec.linux().as_ref();
    let prop = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .map(|p| {
            mounts::propagation(p).ok_or_else(|| msg(format!("invalid rootfsPropagation {p:?}")))
        })
        .transpose()?
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    // Nothing we mount may propagate back to the host.
    mount(NONE, "/", NONE, prop, NONE).ctx(|| "cannot set / propagation".into())?;
    // pivot_root refuses a new root whose parent mount is shared (as it is
    // with rootfsPropagation "shared"): that mount, in our namespace only,
    // becomes private, as runc makes it.
    parent_mount_private(rootfs)?;
    // pivot_root needs the new root to be a mount point.
    mount(
        Some(rootfs),
        rootfs,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .ctx(|| format!("cannot bind-mount rootfs {}", rootfs.display()))?;
    let root: OwnedFd = File::open(rootfs)
        .ctx(|| format!("cannot open rootfs {}", rootfs.display()))?
        .into();
    let mut dev_is_tmpfs = false;
    for m in spec.mounts().iter().flatten() {
        mount_one(&root, rootfs, m, cgroup)?;
        if m.destination() == Path::new("/dev") && m.typ().as_deref() != Some("bind") {
            dev_is_tmpfs = true;
        }
    }
    let in_userns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
        });
    if dev_is_tmpfs {
        for d in default_devices() {
            create_device(&root, &d, in_userns)?;
        }
        dev_symlinks(rootfs)?;
    }
    for d in linux
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
    {
        create_device(&root, d, in_userns)?;
    }
    Ok(())
}

fn mount_one(root: &OwnedFd, rootfs: &Path, m: &Mount, cgroup: &Cgroup) -> Result<()> {
    let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
    let typ = m
        .typ()
        .as_deref()
        .unwrap_or(if opts.bind { "bind" } else { "none" });
    let dest = m.destination();
    let what = || format!("mount {} on {}", typ, dest.display());
    if typ == "cgroup" && !crate::linux::cgroups::is_pure_v2() {
        return mount_cgroup_v1(root, m, cgroup, opts.flags);
    }
    let bind = opts.bind || typ == "bind";
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    let target_is_file = bind && !source.is_dir();
    let target = make_in_root(root, dest, target_is_file)?;
    if bind {
        let mut flags = MsFlags::MS_BIND;
        if opts.recursive {
            flags |= MsFlags::MS_REC;
        }
        mount(Some(&source), fd_path(&target).as_str(), NONE, flags, NONE)
            .ctx(|| format!("{}: bind {}", what(), source.display()))?;
        let extra = opts.flags - MsFlags::MS_REMOUNT;
        if !extra.is_empty() {
            // The fd still names the directory under the new mount: look again.
            let target = open_in_root(root, dest, libc::O_PATH).ctx(what)?;
            let locked = locked_flags(&fd_path(&target));
            mount(
                NONE,
                fd_path(&target).as_str(),
                NONE,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra | locked,
                NONE,
            )
            .ctx(|| format!("{}: remount", what()))?;
        }
    } else {
        let typ = if typ == "cgroup" { "cgroup2" } else { typ };
        let data = opts.data.join(",");
        let r = mount(
            Some(&source),
            fd_path(&target).as_str(),
            Some(typ),
            opts.flags,
            (!data.is_empty()).then_some(data.as_str()),
        );
        match r {
            // sysfs in a shared network namespace is refused: bind the host's instead, read-only.
            Err(nix::errno::Errno::EPERM) if typ == "sysfs" => {
                mount(
                    Some("/sys"),
                    fd_path(&target).as_str(),
                    NONE,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    NONE,
                )
                .ctx(what)?;
                let target = open_in_root(root, dest, libc::O_PATH).ctx(what)?;
                mount(
                    NONE,
                    fd_path(&target).as_str(),
                    NONE,
                    MsFlags::MS_BIND
                        | MsFlags::MS_REMOUNT
                        | MsFlags::MS_RDONLY
                        | locked_flags(&fd_path(&target)),
                    NONE,
                )
                .ctx(what)?;
            }
            r => r.ctx(what)?,
        }
    }
    for p in &opts.propagation {
        let target = open_in_root(root, dest, libc::O_PATH).ctx(what)?;
        mount(NONE, fd_path(&target).as_str(), NONE, *p, NONE)
            .ctx(|| format!("{}: propagation", what()))?;
    }
    let _ = rootfs;
    Ok(())
}

/// On the v1 layout a `cgroup` mount is a tmpfs holding each hierarchy's
/// container directory, bound read-only like runc does.
fn mount_cgroup_v1(root: &OwnedFd, m: &Mount, cgroup: &Cgroup, flags: MsFlags) -> Result<()> {
    let dest = m.destination();
    let target = make_in_root(root, dest, false)?;
    mount(
        Some("tmpfs"),
        fd_path(&target).as_str(),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )
    .ctx(|| format!("mount tmpfs on {}", dest.display()))?;
    // The cgroup2 tree of a hybrid machine is left out, as runc does.
    for (name, dir) in cgroup.v1.iter().filter(|(n, _)| n != "unified") {
        let sub = dest.join(name);
        let t = make_in_root(root, &sub, false)?;
        mount(
            Some(dir),
            fd_path(&t).as_str(),
            NONE,
            MsFlags::MS_BIND,
            NONE,
        )
        .ctx(|| format!("bind cgroup {} on {}", dir.display(), sub.display()))?;
        let t = open_in_root(root, &sub, libc::O_PATH).ctx(|| sub.display().to_string())?;
        let ro = flags & MsFlags::MS_RDONLY;
        mount(
            NONE,
            fd_path(&t).as_str(),
            NONE,
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC
                | ro,
            NONE,
        )
        .ctx(|| format!("remount cgroup {}", sub.display()))?;
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let t = open_in_root(root, dest, libc::O_PATH).ctx(|| dest.display().to_string())?;
        mount(
            NONE,
            fd_path(&t).as_str(),
            NONE,
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            NONE,
        )
        .ctx(|| format!("remount {} read-only", dest.display()))?;
    }
    Ok(())
}

/// Flags a remount must keep (the kernel refuses to clear them in a user namespace).
fn locked_flags(path: &str) -> MsFlags {
    let Ok(st) = nix::sys::statvfs::statvfs(path) else {
        return MsFlags::empty();
    };
    use nix::sys::statvfs::FsFlags;
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (s, m) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
    ] {
        if f.contains(s) {
            out |= m;
        }
    }
    out
}

fn default_devices() -> Vec<LinuxDevice> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .iter()
    .map(|&(name, major, minor)| {
        let mut d = LinuxDevice::default();
        d.set_path(PathBuf::from("/dev").join(name));
        d.set_typ(LinuxDeviceType::C);
        d.set_major(major);
        d.set_minor(minor);
        d.set_file_mode(Some(0o666));
        d.set_uid(Some(0));
        d.set_gid(Some(0));
        d
    })
    .collect()
}

fn create_device(root: &OwnedFd, d: &LinuxDevice, in_userns: bool) -> Result<()> {
    let path = d.path();
    let what = || format!("cannot create device {}", path.display());
    if in_userns {
        // mknod is refused in a user namespace: bind the host's device instead.
        let target = make_in_root(root, path, true)?;
        return mount(
            Some(path),
            fd_path(&target).as_str(),
            NONE,
            MsFlags::MS_BIND,
            NONE,
        )
        .ctx(what);
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    let dir = make_in_root(root, parent, false)?;
    let kind = match d.typ() {
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        _ => SFlag::S_IFCHR,
    };
    let name = path
        .file_name()
        .ok_or_else(|| msg(format!("bad device path {}", path.display())))?;
    let full = PathBuf::from(fd_path(&dir)).join(name);
    let _ = std::fs::remove_file(&full);
    let mode = Mode::from_bits_truncate(d.file_mode().unwrap_or(0o666) & 0o7777);
    mknod(
        &full,
        kind,
        mode,
        makedev(d.major() as u64, d.minor() as u64),
    )
    .ctx(what)?;
    // mknod obeys the umask; set the mode the spec asked for.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode.bits())).ctx(what)?;
    std::os::unix::fs::chown(
        &full,
        Some(d.uid().unwrap_or(0)),
        Some(d.gid().unwrap_or(0)),
    )
    .ctx(what)?;
    Ok(())
}

fn dev_symlinks(rootfs: &Path) -> Result<()> {
    let dev = rootfs.join("dev");
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        // /dev is our own fresh tmpfs here: no symlink can be waiting in it.
        match symlink(target, dev.join(link)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).ctx(|| format!("cannot create /dev/{link}")),
        }
    }
    Ok(())
}

/// Makes the mount `path` lies on private, when it is shared.
fn parent_mount_private(path: &Path) -> Result<()> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .ctx(|| "cannot read /proc/self/mountinfo".into())?;
    let parent = MountInfo::parse_all(&text)
        .filter(|m| path.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len());
    if let Some(m) = parent.filter(|m| m.shared) {
        mount(NONE, &m.mount_point, NONE, MsFlags::MS_PRIVATE, NONE).ctx(|| {
            format!(
                "cannot make {} private for pivot_root",
                m.mount_point.display()
            )
        })?;
    }
    Ok(())
}

/// Makes `rootfs` the root: pivot_root, or with `--no-pivot` a move and chroot.
pub fn pivot(rootfs: &Path, no_pivot: bool) -> Result<()> {
    chdir(rootfs).ctx(|| format!("cannot enter rootfs {}", rootfs.display()))?;
    if no_pivot {
        mount(Some("."), "/", NONE, MsFlags::MS_MOVE, NONE)
            .ctx(|| "cannot move the rootfs to /".into())?;
        chroot(".").ctx(|| "chroot".into())?;
    } else {
        // Stack the old root under the new one, then detach it.
        pivot_root(".", ".").ctx(|| "pivot_root".into())?;
        mount(NONE, ".", NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE)
            .ctx(|| "cannot make the old root a slave".into())?;
        umount2(".", MntFlags::MNT_DETACH).ctx(|| "cannot detach the old root".into())?;
    }
    chdir("/").ctx(|| "chdir /".into())
}

/// After pivot_root: masked paths, read-only paths, a read-only root.
pub fn finish(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        readonly(p)?;
    }
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        mask(p)?;
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        let locked = locked_flags("/");
        mount(
            NONE,
            "/",
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked,
            NONE,
        )
        .ctx(|| "cannot make the root read-only".into())?;
    }
    Ok(())
}

/// A masked directory becomes an empty read-only tmpfs; a masked file reads as /dev/null.
pub fn mask(path: &str) -> Result<()> {
    let what = || format!("cannot mask {path}");
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).ctx(what),
        Ok(m) if m.is_dir() => {
            mount(Some("tmpfs"), path, Some("tmpfs"), MsFlags::MS_RDONLY, NONE).ctx(what)
        }
        Ok(_) => mount(Some("/dev/null"), path, NONE, MsFlags::MS_BIND, NONE).ctx(what),
    }
}

fn readonly(path: &str) -> Result<()> {
    let what = || format!("cannot make {path} read-only");
    match mount(
        Some(path),
        path,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    ) {
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        r => r.ctx(what)?,
    }
    let locked = locked_flags(path);
    mount(
        NONE,
        path,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC | locked,
        NONE,
    )
    .ctx(what)
}
