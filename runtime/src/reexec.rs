//! Running the runtime from a sealed memfd copy of itself.
//!
//! Every process that enters a container (init, exec'd processes) executes
//! this copy, not the file on the host: a process in the container that opens
//! /proc/PID/exe gets a memfd that is sealed against writes, so it cannot
//! overwrite the runtime binary (the CVE-2019-5736 class).
//!
//! Copying the binary costs milliseconds, so the sealed copy is kept for the
//! next invocations by a tiny keeper process that runs from it (its
//! /proc/PID/exe *is* the sealed memfd) and does nothing else; its pid file in
//! [`CACHE_DIR`] is named after the binary's inode, size and mtime, so a new
//! build gets a new keeper and the old one is stopped.
//! `INSPECTOR_RUNTIME_NO_EXE_CACHE=1` turns the cache off.
//!
//! A keeper can die (killed, OOM) and its pid be reused: a pid file is only
//! trusted when its process is ours (owned by us, started at the recorded
//! time, running a sealed copy of the right size); otherwise it is stale, and
//! the next invocation starts a new keeper. Starting one happens under an
//! exclusive `flock` on [`CACHE_DIR`]`/keeper.lock`, so two concurrent
//! creates start one keeper. [`CACHE_DIR`] is 0700 and its files 0600, none
//! created through a symlink.

use std::{
    fs::File,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::Path,
};

use crate::{
    Result,
    error::{Context as _, msg},
};

pub const CACHE_DIR: &str = "/run/inspector-runtime/.sealed";

const SEALS: i32 = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Does this fd name a memfd that can never be written again?
pub fn is_sealed(fd: &impl AsRawFd) -> bool {
    // SAFETY: fcntl on an open fd.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & SEALS == SEALS
}

/// A sealed, executable copy of this binary: the keeper's when there is
/// one for this build, otherwise a fresh copy (and a keeper is started).
pub fn sealed_exe() -> Result<OwnedFd> {
    let exe = File::open("/proc/self/exe").ctx(|| "cannot open /proc/self/exe".into())?;
    if is_sealed(&exe) {
        return Ok(exe.into());
    }
    if std::env::var_os("INSPECTOR_RUNTIME_NO_EXE_CACHE").is_some_and(|v| v == "1") {
        return sealed_copy(&exe);
    }
    let m = exe.metadata().ctx(|| "stat /proc/self/exe".into())?;
    let name = format!(
        "keeper-{:x}-{:x}-{}.{}-{}.pid",
        m.dev(),
        m.ino(),
        m.mtime(),
        m.mtime_nsec(),
        m.len()
    );
    let pid_file = Path::new(CACHE_DIR).join(&name);
    if let Some(f) = kept_copy(&pid_file, m.len()) {
        return Ok(f);
    }
    let memfd = sealed_copy(&exe)?;
    start_keeper(&memfd, &pid_file, m.len());
    Ok(memfd)
}

/// The keeper named in `pid_file`, if it is alive, ours, and runs a sealed
/// copy of `len` bytes. Anything else (no file, a dead keeper, a pid now
/// used by another process) is `None`: the pid file is stale.
fn kept_copy(pid_file: &Path, len: u64) -> Option<OwnedFd> {
    let (pid, start) = read_pid_file(pid_file)?;
    // The start time tells a reused pid from the keeper we recorded.
    if crate::linux::proc::process_start_time(pid) != Some((start, false)) {
        return None;
    }
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if std::fs::metadata(format!("/proc/{pid}")).ok()?.uid() != me {
        return None;
    }
    let f = File::open(format!("/proc/{pid}/exe")).ok()?;
    (is_sealed(&f) && f.metadata().ok()?.len() == len).then(|| f.into())
}

/// "pid start-time" from a pid file, never through a symlink.
fn read_pid_file(path: &Path) -> Option<(i32, u64)> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut f, &mut text).ok()?;
    let (pid, start) = text.trim().split_once(' ')?;
    Some((pid.parse().ok()?, start.parse().ok()?))
}

/// Starts `inspector-runtime exe-keeper` from the sealed copy, in its own
/// session with no fd of ours, and records it; stops keepers of older builds
/// and forgets stale pid files. Best effort: without a keeper, the next
/// invocation copies the binary again.
fn start_keeper(memfd: &OwnedFd, pid_file: &Path, len: u64) {
    use std::os::unix::process::CommandExt as _;
    let dir = Path::new(CACHE_DIR);
    let parent = dir.parent().unwrap_or(Path::new("/"));
    if crate::container::private_dir(parent, "state root").is_err()
        || crate::container::private_dir(dir, "keeper directory").is_err()
    {
        return;
    }
    // One invocation at a time from here: the others wait (briefly) and then
    // find the keeper this one started.
    let Ok(lock) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir.join("keeper.lock"))
    else {
        return;
    };
    // SAFETY: flock on an fd we own; released when `lock` is closed.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } < 0 {
        return;
    }
    if kept_copy(pid_file, len).is_some() {
        return;
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("keeper-") && name.ends_with(".pid") {
                // Older builds' keepers, and ours if it is stale.
                stop_keeper(&e.path());
            }
        }
    }
    let mut cmd = std::process::Command::new(format!("/proc/self/fd/{}", memfd.as_raw_fd()));
    cmd.arg0("inspector-runtime")
        .arg("exe-keeper")
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Ok(child) = cmd.spawn() {
        let pid = child.id() as i32;
        let start = crate::linux::proc::process_start_time(pid).map_or(0, |(t, _)| t);
        let recorded =
            crate::container::write_atomic(pid_file, format!("{pid} {start}").as_bytes(), 0o600);
        if recorded.is_err() {
            // SAFETY: the keeper we just started, which nobody would find.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    drop(lock);
}

fn stop_keeper(pid_file: &Path) {
    if let Some((pid, start)) = read_pid_file(pid_file) {
        let ours = std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c == b"inspector-runtime\0exe-keeper\0");
        if ours && crate::linux::proc::process_start_time(pid) == Some((start, false)) {
            // SAFETY: signalling a keeper of an older build (or a stale one of ours).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    let _ = std::fs::remove_file(pid_file);
}

/// The keeper's whole life: hold the sealed copy by running from it.
pub fn keeper_main() -> ! {
    // SAFETY: setsid and close_range have no memory-safety preconditions.
    unsafe {
        libc::setsid();
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
    }
    // Out of the caller's cgroups, which it may want to remove: to the root
    // of every hierarchy.
    for (_, mount) in crate::linux::cgroups::v1::hierarchies() {
        let _ = std::fs::write(mount.join("cgroup.procs"), "0");
    }
    if crate::linux::cgroups::is_pure_v2() {
        let _ = std::fs::write("/sys/fs/cgroup/cgroup.procs", "0");
    }
    loop {
        // SAFETY: pause just waits for a signal.
        unsafe { libc::pause() };
    }
}

/// A sealed, executable copy of `exe`.
pub fn sealed_copy(exe: &File) -> Result<OwnedFd> {
    let len = exe.metadata().ctx(|| "stat /proc/self/exe".into())?.len() as usize;
    // SAFETY: the name is a valid C string; the flags are valid.
    let raw = unsafe {
        libc::memfd_create(
            c"inspector-runtime".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if raw < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "memfd_create".into());
    }
    // SAFETY: raw is a fresh fd we own.
    let memfd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut copied = 0;
    while copied < len {
        // SAFETY: both fds are open; a null offset uses the file positions.
        let n = unsafe {
            libc::sendfile(
                memfd.as_raw_fd(),
                exe.as_raw_fd(),
                std::ptr::null_mut(),
                len - copied,
            )
        };
        if n <= 0 {
            return Err(std::io::Error::last_os_error())
                .ctx(|| "copying the runtime into a memfd".into());
        }
        copied += n as usize;
    }
    // SAFETY: fcntl on our own fd.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } < 0 {
        return Err(msg(format!(
            "cannot seal the runtime's memfd: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(memfd)
}
