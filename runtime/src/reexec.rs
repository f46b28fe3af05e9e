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

use std::{
    fs::File,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    os::unix::fs::MetadataExt,
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
    start_keeper(&memfd, &pid_file);
    Ok(memfd)
}

/// The keeper named in `pid_file`, if it is alive and runs a sealed copy of `len` bytes.
fn kept_copy(pid_file: &Path, len: u64) -> Option<OwnedFd> {
    let text = std::fs::read_to_string(pid_file).ok()?;
    let (pid, start) = text.trim().split_once(' ')?;
    let (pid, start): (i32, u64) = (pid.parse().ok()?, start.parse().ok()?);
    if crate::container::process_start_time(pid) != Some((start, false)) {
        return None;
    }
    let f = File::open(format!("/proc/{pid}/exe")).ok()?;
    (is_sealed(&f) && f.metadata().ok()?.len() == len).then(|| f.into())
}

/// Starts `inspector-runtime exe-keeper` from the sealed copy, in its own
/// session with no fd of ours, and records it; stops keepers of older builds.
fn start_keeper(memfd: &OwnedFd, pid_file: &Path) {
    use std::os::unix::process::CommandExt as _;
    let dir = Path::new(CACHE_DIR);
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p != pid_file {
                stop_keeper(&p);
            }
        }
    }
    // O_EXCL: one invocation starts the keeper; the others go on uncached.
    let Ok(mut file) = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(pid_file)
    else {
        return;
    };
    let mut cmd = std::process::Command::new(format!("/proc/self/fd/{}", memfd.as_raw_fd()));
    cmd.arg0("inspector-runtime")
        .arg("exe-keeper")
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    match cmd.spawn() {
        Ok(child) => {
            let pid = child.id() as i32;
            let start = crate::container::process_start_time(pid).map_or(0, |(t, _)| t);
            let _ = std::io::Write::write_all(&mut file, format!("{pid} {start}").as_bytes());
        }
        Err(_) => {
            let _ = std::fs::remove_file(pid_file);
        }
    }
}

fn stop_keeper(pid_file: &Path) {
    if let Ok(text) = std::fs::read_to_string(pid_file)
        && let Some((pid, start)) = text.trim().split_once(' ')
        && let (Ok(pid), Ok(start)) = (pid.parse::<i32>(), start.parse::<u64>())
    {
        let ours = std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c == b"inspector-runtime\0exe-keeper\0");
        if ours && crate::container::process_start_time(pid) == Some((start, false)) {
            // SAFETY: signalling a keeper of an older build.
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
    for (_, mount) in crate::cgroups::v1::hierarchies() {
        let _ = std::fs::write(mount.join("cgroup.procs"), "0");
    }
    if crate::cgroups::is_pure_v2() {
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
