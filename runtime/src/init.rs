//! What runs from the sealed memfd (`inspector-runtime init`): joins and
//! creates namespaces, forks the container's first process, which builds the
//! rootfs, waits on exec.fifo for `start`, and executes the entrypoint.
//! The same path, without building anything, starts `exec`'d processes.

use std::{
    convert::Infallible,
    io::Write,
    os::fd::{BorrowedFd, FromRawFd, OwnedFd},
    path::PathBuf,
};

use nix::{
    sched::{CloneFlags, unshare},
    unistd::{ForkResult, fork, setsid},
};
use oci_spec::runtime::{LinuxNamespaceType, LinuxSeccomp, Process, Spec};
use serde::{Deserialize, Serialize};

use crate::{
    Result,
    error::{Context as _, msg},
    linux::{
        cgroups::Cgroup,
        clone::{self, Cloned},
        console, hooks, mounts,
        namespaces::{self, Plan},
        rootfs,
    },
    process,
    sync::{self, Fds, Msg},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Create,
    Exec,
}

/// What the runtime tells init to do.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitConfig {
    pub kind: Kind,
    /// The whole config (for `create`).
    pub spec: Option<Spec>,
    pub process: Process,
    pub rootfs: PathBuf,
    pub no_pivot: bool,
    pub console: bool,
    pub namespaces: Plan,
    pub cgroup: Cgroup,
    pub seccomp: Option<LinuxSeccomp>,
    pub in_userns: bool,
    /// This process is the container's first process already: `create`
    /// cloned it into its new namespaces (`Plan::direct_clone`).
    #[serde(default)]
    pub direct: bool,
}

/// The entry point of `inspector-runtime init [N]`, the caller's N
/// preserved fds first (see `Fds`). Never returns.
pub fn main(preserved: Option<u32>) -> ! {
    let fds = Fds::after(preserved.unwrap_or(0));
    // Nothing else the caller left open may reach the container: keep only
    // the preserved ones and our three.
    // SAFETY: closing fds we do not use.
    unsafe { libc::syscall(libc::SYS_close_range, fds.end() as u32, u32::MAX, 0u32) };
    // SAFETY: the sync socket the runtime passed us.
    let sock = unsafe { BorrowedFd::borrow_raw(fds.sync) };
    let err = match stage1(sock, fds) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = sync::send(
        sock,
        &Msg::Error {
            msg: err.to_string(),
        },
    );
    std::process::exit(1)
}

fn expect(sock: BorrowedFd<'_>, what: &str) -> Result<Msg> {
    sync::recv(sock)?.ok_or_else(|| msg(format!("the runtime went away (waiting for {what})")))
}

/// Namespaces, then the fork that makes the container's first process.
fn stage1(sock: BorrowedFd<'_>, fds: Fds) -> Result<Infallible> {
    let cfg = match expect(sock, "config")? {
        Msg::Config(c) => c,
        other => return Err(msg(format!("unexpected message {other:?}"))),
    };
    // Cgroups first, while we are still plainly root in the host's namespaces.
    // (Each writes "0": moving ourselves takes no global lock, unlike
    // moving another process, which waits for an RCU grace period.)
    cfg.cgroup.join_self_v1()?;
    if cfg.direct {
        // Born in its namespaces (and its cgroup2 directory): nothing to fork.
        container_or_report(&cfg, sock, fds, true);
    }
    // From inside a user namespace the kernel checks cgroup permissions with
    // its unmapped ids; and a failed first clone in a new pid namespace would
    // leave that namespace unable to fork at all. So there, plain fork.
    let unified = cfg
        .cgroup
        .unified_dir()
        .filter(|_| !cfg.namespaces.has(LinuxNamespaceType::User))
        .and_then(|d| std::fs::File::open(d).ok());
    let joins = cfg.namespaces.open_joins()?;
    for (t, f) in joins.iter().filter(|(t, _)| *t == LinuxNamespaceType::User) {
        namespaces::setns(*t, f)?;
    }
    if cfg.namespaces.creates(LinuxNamespaceType::User) {
        unshare(CloneFlags::CLONE_NEWUSER).ctx(|| "cannot create user namespace".into())?;
        sync::send(sock, &Msg::UsernsReady)?;
        match expect(sock, "id maps")? {
            Msg::MapsWritten => {}
            other => return Err(msg(format!("unexpected message {other:?}"))),
        }
    }
    if cfg.namespaces.has(LinuxNamespaceType::User) {
        // SAFETY: plain id changes.
        unsafe {
            libc::setresgid(0, 0, 0);
            libc::setresuid(0, 0, 0);
        }
    }
    for (t, f) in joins.iter().filter(|(t, _)| *t != LinuxNamespaceType::User) {
        namespaces::setns(*t, f)?;
    }
    let mut flags = CloneFlags::empty();
    // The cgroup namespace is made by the container's process itself, once it
    // is in all its cgroups, so that they are its root.
    for t in cfg
        .namespaces
        .create
        .iter()
        .filter(|t| !matches!(t, LinuxNamespaceType::User | LinuxNamespaceType::Cgroup))
    {
        flags |= namespaces::flag(*t);
    }
    if !flags.is_empty() {
        unshare(flags).ctx(|| format!("cannot create namespaces ({flags:?})"))?;
    }
    if cfg.namespaces.creates(LinuxNamespaceType::Time) {
        write_time_offsets(cfg.spec.as_ref())?;
    }
    // A new pid namespace takes effect for children: the container's process is one.
    let (forked, joined) = fork_into(unified.as_ref())?;
    match forked {
        ForkResult::Parent { child } => {
            sync::send(
                sock,
                &Msg::Pid {
                    pid: child.as_raw(),
                    joined,
                },
            )?;
            std::process::exit(0)
        }
        ForkResult::Child => container_or_report(&cfg, sock, fds, joined),
    }
}

/// The container's process: set up and execute the entrypoint, or say why not.
fn container_or_report(cfg: &InitConfig, sock: BorrowedFd<'_>, fds: Fds, joined: bool) -> ! {
    let err = match container(cfg, sock, fds, joined) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    if sync::send(
        sock,
        &Msg::Error {
            msg: err.to_string(),
        },
    )
    .is_err()
    {
        // After `create` returned, the only one left to tell is the container's stderr.
        let _ = writeln!(std::io::stderr(), "inspector-runtime: {err}");
    }
    std::process::exit(127)
}

/// Forks, straight into the cgroup2 directory when the kernel allows
/// (see `clone`); otherwise a plain fork, and the runtime moves the child.
/// Returns whether the child is in place.
fn fork_into(cgroup2: Option<&std::fs::File>) -> Result<(ForkResult, bool)> {
    use std::os::fd::AsRawFd;
    if let Some(dir) = cgroup2 {
        match clone::clone3(0, Some(dir.as_raw_fd())) {
            Ok(Cloned::Child) => return Ok((ForkResult::Child, true)),
            Ok(Cloned::Parent(pid)) => {
                return Ok((
                    ForkResult::Parent {
                        child: nix::unistd::Pid::from_raw(pid),
                    },
                    true,
                ));
            }
            Err(_) => {}
        }
    }
    // SAFETY: this process is single-threaded.
    let r = unsafe { fork() }.ctx(|| "fork".into())?;
    Ok((r, cgroup2.is_none()))
}

/// Makes a working directory missing from the root filesystem, as runc does
/// (`docker run -w /new` works). Only when it is missing: resolved inside the
/// new root, where no `..`, symlink or magic link (a leaked fd's
/// `/proc/self/fd/N`) leads out; anything else is left for `enter_cwd` to
/// refuse.
fn make_cwd(cwd: &std::path::Path) -> Result<()> {
    let root = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| "cannot open the container's root".into())?;
    match mounts::open_in_root(&root, cwd, libc::O_PATH) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => mounts::make_in_root(&root, cwd, false)
            .map(drop)
            .map_err(|e| msg(format!("cannot make the working directory: {e}"))),
        _ => Ok(()),
    }
}

fn write_time_offsets(spec: Option<&Spec>) -> Result<()> {
    let offsets = spec
        .and_then(|s| s.linux().as_ref())
        .and_then(|l| l.time_offsets().clone());
    let mut text = String::new();
    for (clock, off) in offsets.iter().flatten() {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    if !text.is_empty() {
        std::fs::write("/proc/self/timens_offsets", text)
            .ctx(|| "cannot write timens_offsets".into())?;
    }
    Ok(())
}

/// The container's first process (or the exec'd one), in all its namespaces.
fn container(cfg: &InitConfig, sock: BorrowedFd<'_>, fds: Fds, joined: bool) -> Result<Infallible> {
    if !joined {
        // The runtime moves us into our cgroup2 directory first.
        match expect(sock, "cgroups")? {
            Msg::Joined => {}
            other => return Err(msg(format!("unexpected message {other:?}"))),
        }
    }
    if cfg.namespaces.creates(LinuxNamespaceType::Cgroup) {
        unshare(CloneFlags::CLONE_NEWCGROUP).ctx(|| "cannot create cgroup namespace".into())?;
    }
    setsid().ctx(|| "setsid".into())?;
    let size = cfg.process.console_size().map(|b| (b.height(), b.width()));
    if cfg.kind == Kind::Exec {
        if cfg.console {
            console::setup(fds.console, size, false)?;
        }
        let program = process::resolve_program(&cfg.process)?;
        // Before Ready: what fails here (a working directory that is not
        // there, which is never made, unlike `run`'s; capabilities; the
        // user) fails the `exec` command itself, as runc's does, not the
        // process after it was reported started.
        let prepared = process::prepare(&cfg.process, cfg.seccomp.as_ref(), cfg.in_userns)?;
        sync::send(sock, &Msg::Ready)?;
        return process::exec(prepared, &cfg.process, &program, fds.preserved);
    }
    let spec = cfg.spec.as_ref().ok_or_else(|| msg("no config"))?;
    if !cfg.namespaces.has(LinuxNamespaceType::Mount) {
        return Err(msg("config.json: a mount namespace is required"));
    }
    rootfs::prepare(spec, &cfg.rootfs, &cfg.cgroup)?;
    let spec_hooks = spec.hooks().as_ref();
    let any = |h: Option<&Vec<oci_spec::runtime::Hook>>| h.is_some_and(|h| !h.is_empty());
    // The round trip is only worth it when some hook runs before start.
    let state = if spec_hooks.is_some_and(|h| {
        any(h.prestart().as_ref())
            || any(h.create_runtime().as_ref())
            || any(h.create_container().as_ref())
            || any(h.start_container().as_ref())
    }) {
        sync::send(sock, &Msg::RunHooks)?;
        match expect(sock, "hooks")? {
            Msg::HooksDone { state } => serde_json::from_str(&state).unwrap_or_default(),
            other => return Err(msg(format!("unexpected message {other:?}"))),
        }
    } else {
        serde_json::Value::Null
    };
    hooks::run_all(
        "createContainer",
        spec_hooks.and_then(|h| h.create_container().as_ref()),
        &state,
    )?;
    rootfs::pivot(&cfg.rootfs, cfg.no_pivot)?;
    if let Some(process) = spec.process() {
        make_cwd(process.cwd())?;
    }
    if let Some(name) = spec.hostname() {
        nix::unistd::sethostname(name).ctx(|| format!("cannot set hostname {name:?}"))?;
    }
    if let Some(name) = spec.domainname() {
        // SAFETY: a valid buffer and length.
        if unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) } < 0 {
            return Err(std::io::Error::last_os_error())
                .ctx(|| format!("cannot set domainname {name:?}"));
        }
    }
    for (key, value) in spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().as_ref())
        .into_iter()
        .flatten()
    {
        let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(&path, value).ctx(|| format!("cannot set sysctl {key}={value}"))?;
    }
    // Read-only and masked paths last: /proc/sys turns read-only here.
    rootfs::finish(spec)?;
    if cfg.console {
        console::setup(fds.console, size, true)?;
    }
    let program = process::resolve_program(&cfg.process)?;
    // As runc's init: rlimits, capabilities, the user, all before `create`
    // is told it worked, so that a container that cannot get them fails at
    // create, with the reason in the log the shim reads (`docker run
    // --privileged` where the host lacks a capability), not at start.
    let prepared = process::prepare(&cfg.process, cfg.seccomp.as_ref(), cfg.in_userns)?;
    sync::send(sock, &Msg::Ready)?;
    // SAFETY: closing the sync socket, which nothing else uses from here on.
    unsafe { libc::close(fds.sync) };
    wait_for_start(fds.fifo)?;
    // As runc's, they run with the container's user and capabilities.
    hooks::run_all(
        "startContainer",
        spec_hooks.and_then(|h| h.start_container().as_ref()),
        &state,
    )?;
    process::exec(prepared, &cfg.process, &program, fds.preserved)
}

/// Blocks until `start` opens exec.fifo, then tells it we are going ahead.
fn wait_for_start(fifo_fd: i32) -> Result<()> {
    // The FIFO is outside the new root: reach it through the fd the runtime
    // gave us (a process's own fds stay open to it, whatever its user now).
    let path = format!("/proc/self/fd/{fifo_fd}");
    let fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .ctx(|| "cannot open exec.fifo (is /proc mounted in the container?)".into())?;
    let mut fifo = fifo;
    fifo.write_all(b"0")
        .ctx(|| "cannot write exec.fifo".into())?;
    drop(fifo);
    // SAFETY: the O_PATH fd is no longer needed.
    drop(unsafe { OwnedFd::from_raw_fd(fifo_fd) });
    Ok(())
}
