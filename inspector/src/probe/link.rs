//! Attaching a loaded program to a tracepoint as a plain file descriptor,
//! pinning, and letting links go without making anyone wait.
//!
//! Written here rather than left to aya: aya keeps the links it makes inside
//! its program objects, and its `FdLink` keeps its descriptor to itself (no
//! `AsFd`, no way to an `OwnedFd`). The probe's links must be descriptors of
//! their own, to be handed to another process (see `keeper`) and to attach
//! programs opened from their pins. The calls are the kernel's uapi:
//! `perf_event_open` plus `BPF_LINK_CREATE` for tracefs tracepoints,
//! `BPF_RAW_TRACEPOINT_OPEN` for raw ones; their arguments are aya-obj's
//! generated `bpf_attr` and `perf_event_attr`.

use std::{
    ffi::CString,
    io,
    os::fd::{AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd, RawFd},
    path::Path,
};

use aya_obj::generated::{
    PERF_EVENT_IOC_ENABLE, PERF_EVENT_IOC_SET_BPF, PERF_FLAG_FD_CLOEXEC, bpf_attach_type, bpf_attr,
    bpf_cmd, perf_event_attr, perf_type_id,
};

use super::{ProbeError, plan::Target};

/// A zeroed `bpf_attr`: the kernel requires every byte past a command's last
/// field to be zero.
pub(super) fn bpf_attr() -> bpf_attr {
    // SAFETY: a C union of integers, for which all zeroes is a valid value.
    unsafe { std::mem::zeroed() }
}

/// `bpf(cmd, attr)`, for the commands that return 0 on success.
fn bpf(cmd: bpf_cmd, attr: &bpf_attr) -> io::Result<()> {
    // SAFETY: `attr` is a readable bpf_attr of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            std::ptr::from_ref(attr),
            size_of::<bpf_attr>() as libc::c_uint,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `bpf(cmd, attr)`, for the commands that return a new file descriptor.
fn bpf_fd(cmd: bpf_cmd, attr: &bpf_attr) -> io::Result<OwnedFd> {
    // SAFETY: `attr` is a readable bpf_attr of the size passed.
    owned(unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            std::ptr::from_ref(attr),
            size_of::<bpf_attr>() as libc::c_uint,
        )
    })
}

/// A descriptor a syscall returned (any number from 0 up: 0 too, when
/// standard input was closed), or its error.
fn owned(fd: libc::c_long) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: the kernel just returned this descriptor to us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Attaches `prog` to the tracefs tracepoint `category:name` (`events` is
/// tracefs's events directory); the link is the returned descriptor, and
/// closing it detaches.
pub fn tracepoint(
    events: &Path,
    category: &str,
    name: &str,
    prog: BorrowedFd<'_>,
) -> io::Result<OwnedFd> {
    let id_file = events.join(category).join(name).join("id");
    let id: u64 = std::fs::read_to_string(&id_file)?
        .trim()
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not a tracepoint id"))?;
    // What a tracepoint that only feeds a BPF program needs.
    // SAFETY: a C struct of integers, for which all zeroes is a valid value.
    let mut attr: perf_event_attr = unsafe { std::mem::zeroed() };
    attr.type_ = perf_type_id::PERF_TYPE_TRACEPOINT as u32;
    attr.size = size_of::<perf_event_attr>() as u32;
    attr.config = id;
    attr.__bindgen_anon_1.sample_period = 1;
    attr.__bindgen_anon_2.wakeup_events = 1;
    // SAFETY: `attr` is a readable perf_event_attr of the size it states.
    let perf = owned(unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            std::ptr::from_ref(&attr),
            -1 as libc::pid_t,
            0 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC as libc::c_ulong,
        )
    })?;
    let mut link = bpf_attr();
    link.link_create.__bindgen_anon_1.prog_fd = prog.as_raw_fd() as u32;
    link.link_create.__bindgen_anon_2.target_fd = perf.as_raw_fd() as u32;
    link.link_create.attach_type = bpf_attach_type::BPF_PERF_EVENT as u32;
    match bpf_fd(bpf_cmd::BPF_LINK_CREATE, &link) {
        // The link holds the perf event; ours can close.
        Ok(link) => Ok(link),
        // Kernels before 5.15 have no perf links: the perf event itself
        // holds the program.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            // SAFETY: ioctls on a perf event descriptor we own.
            unsafe {
                if libc::ioctl(
                    perf.as_raw_fd(),
                    PERF_EVENT_IOC_SET_BPF as _,
                    prog.as_raw_fd(),
                ) != 0
                    || libc::ioctl(perf.as_raw_fd(), PERF_EVENT_IOC_ENABLE as _, 0) != 0
                {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(perf)
        }
        Err(e) => Err(e),
    }
}

/// Attaches `prog` to the raw tracepoint `name`.
pub fn raw_tracepoint(name: &str, prog: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let name = CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    let mut attr = bpf_attr();
    attr.raw_tracepoint.name = name.as_ptr() as u64;
    attr.raw_tracepoint.prog_fd = prog.as_raw_fd() as u32;
    bpf_fd(bpf_cmd::BPF_RAW_TRACEPOINT_OPEN, &attr)
}

/// Attaches the program of every hook that `attached` (the links already
/// attached, by place among the hooks) has no link for; every link, in hook
/// order, or the first failure.
pub fn attach_missing<'a>(
    hooks: &[(&'static str, Target)],
    attached: Vec<Option<OwnedFd>>,
    program: impl Fn(&str) -> BorrowedFd<'a>,
    events_dir: &Path,
) -> Result<Links, ProbeError> {
    // Owned here rather than by their programs, so that they can be detached
    // all at once (see `Links`); on an early return they detach as they drop.
    let mut links = Links::default();
    let mut attached = attached.into_iter();
    for (name, target) in hooks {
        if let Some(link) = attached.next().flatten() {
            links.0.push(link);
            continue;
        }
        let fd = program(name);
        let link = match *target {
            Target::Syscall(tp) => tracepoint(events_dir, "syscalls", tp, fd),
            Target::Raw(tp, _) => raw_tracepoint(tp, fd),
        };
        match link {
            Ok(link) => links.0.push(link),
            Err(source) => {
                // Let go with the rest, in the background.
                links.0.extend(attached.flatten());
                return Err(ProbeError::Attach {
                    program: name.to_string(),
                    tracepoint: target.describe(),
                    error: source,
                });
            }
        }
    }
    Ok(links)
}

/// Pins a program or map at `path` on a bpffs.
pub fn pin(fd: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    let path = c_path(path)?;
    let mut attr = bpf_attr();
    attr.__bindgen_anon_4.pathname = path.as_ptr() as u64;
    attr.__bindgen_anon_4.bpf_fd = fd.as_raw_fd() as u32;
    // 0 on success, and no descriptor: nothing to own or close.
    bpf(bpf_cmd::BPF_OBJ_PIN, &attr)
}

/// Opens the program or map pinned at `path`.
pub fn pinned(path: &Path) -> io::Result<OwnedFd> {
    let path = c_path(path)?;
    let mut attr = bpf_attr();
    attr.__bindgen_anon_4.pathname = path.as_ptr() as u64;
    bpf_fd(bpf_cmd::BPF_OBJ_GET, &attr)
}

fn c_path(path: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt as _;
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput.into())
}

/// Attached programs' links. Detaching one from a tracepoint waits for RCU
/// grace periods under the kernel's tracepoint lock: one after the other,
/// the probe's links kept inspector alive long after its work was done. So
/// a detached grandchild holds the links and lets them go after inspector
/// has exited; the user does not wait.
#[derive(Default)]
pub struct Links(pub Vec<OwnedFd>);

impl Links {
    /// The links' descriptors, for the caller to let go of.
    pub fn into_fds(mut self) -> Vec<OwnedFd> {
        std::mem::take(&mut self.0)
    }
}

impl Drop for Links {
    fn drop(&mut self) {
        release(std::mem::take(&mut self.0));
    }
}

/// Lets `links` go without waiting for the kernel to detach them.
pub fn release(links: Vec<OwnedFd>) {
    if links.is_empty() {
        return;
    }
    if let Some(holder) = detach_in_background(&links) {
        // The grandchild holds them too, so closing ours is quick; it lets
        // go once `holder` closes, after ours are gone.
        drop(links);
        drop(holder);
        return;
    }
    // No process to be had: the waits overlap a little on threads.
    std::thread::scope(|scope| {
        for link in links {
            let _ = std::thread::Builder::new().spawn_scoped(scope, move || drop(link));
        }
    });
}

/// Forks a grandchild that keeps only `links` open until the returned pipe end
/// closes, then exits, the kernel detaching them as it closes them. `None`
/// when it could not be made.
fn detach_in_background(links: &[OwnedFd]) -> Option<OwnedFd> {
    let keep: Vec<RawFd> = links.iter().map(|l| l.as_raw_fd()).collect();
    // Everything else is closed in the grandchild, standard streams first: a
    // reader of our output must see its end when we exit, and a lock we hold
    // must be free when we exit.
    let close: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .ok()?
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .filter(|fd| !keep.contains(fd))
        .collect();
    let mut ends = [0; 2];
    // SAFETY: a valid array of two fds for pipe2 to fill.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return None;
    }
    // SAFETY: pipe2 just made both; each is owned once.
    let (wait_end, holder) =
        unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
    let (wait_fd, holder_fd) = (wait_end.as_raw_fd(), holder.as_raw_fd());
    // SAFETY: between fork and _exit the children only call close, read, fork
    // and _exit, which are async-signal-safe, on memory prepared before.
    unsafe {
        match libc::fork() {
            -1 => None,
            0 => {
                if libc::fork() == 0 {
                    // The pipe may have reused a number listed before it.
                    for &fd in close.iter().filter(|&&fd| fd != wait_fd) {
                        libc::close(fd);
                    }
                    libc::close(holder_fd);
                    // Until every holder of the pipe's other end is gone.
                    let mut byte = 0u8;
                    while libc::read(wait_fd, (&raw mut byte).cast(), 1) < 0
                        && *libc::__errno_location() == libc::EINTR
                    {}
                }
                // The grandchild exits holding the links: its exit detaches them.
                libc::_exit(0)
            }
            child => {
                let mut status = 0;
                libc::waitpid(child, &mut status, 0);
                drop(wait_end);
                Some(holder)
            }
        }
    }
}
