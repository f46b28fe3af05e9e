//! clone3(2) used like fork(2): no new stack, no shared memory, only flags
//! (new namespaces) and CLONE_INTO_CGROUP (born in its cgroup2 directory,
//! which takes no global lock, unlike moving a process there afterwards).
//! nix has no clone3; libc has no wrapper for it either.

use std::os::fd::RawFd;

/// What clone3 returned to this process.
pub enum Cloned {
    Parent(i32),
    Child,
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Forks with `flags`, into the cgroup2 directory `cgroup` when given. The
/// caller must be single-threaded (as fork's child, the new process runs on
/// a copy of this one's memory with only the calling thread).
pub fn clone3(flags: u64, cgroup: Option<RawFd>) -> std::io::Result<Cloned> {
    let args = CloneArgs {
        flags: flags | cgroup.map_or(0, |_| CLONE_INTO_CGROUP),
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.map_or(0, |fd| fd as u64),
        ..Default::default()
    };
    // SAFETY: like fork(2) (no new stack, no shared memory); the caller is single-threaded.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match r {
        0 => Ok(Cloned::Child),
        pid if pid > 0 => Ok(Cloned::Parent(pid as i32)),
        _ => Err(std::io::Error::last_os_error()),
    }
}
