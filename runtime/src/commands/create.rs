//! `create`: build the container and leave its init waiting for `start`.

use std::{
    os::fd::{AsFd, AsRawFd, OwnedFd},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::Command,
};

use nix::{sys::stat::Mode, unistd::mkfifo};
use oci_spec::runtime::{LinuxNamespaceType, LinuxResources};

use crate::{
    Error, Result, config,
    container::{self, Creator, FIFO, Saved, Status},
    error::{Context as _, msg},
    init::{InitConfig, Kind},
    linux::{
        cgroups::{self, Cgroup},
        clone::{self, Cloned},
        console, hooks,
        namespaces::{self, Plan},
    },
    reexec,
    sync::{self, Fds, Msg},
};

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub root: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// `--preserve-fds N`: the caller's fds 3 .. 3+N reach the entrypoint.
    pub preserve_fds: u32,
    /// `run` without a console socket keeps the caller's stdio even if the
    /// config asks for a terminal.
    pub terminal_optional: bool,
}

/// Undoes a half-made container: kills its processes, removes its cgroup and
/// state directory. Disarmed once `create` succeeds.
struct Cleanup {
    dir: Option<PathBuf>,
    cgroup: Option<Cgroup>,
    pids: Vec<i32>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for &pid in &self.pids {
            // SAFETY: signalling a process we started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        }
        if let Some(cg) = &self.cgroup {
            for pid in cg.pids() {
                // SAFETY: killing what is left in our container's cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            cg.remove();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Cleanup {
    fn disarm(mut self) {
        self.dir = None;
        self.cgroup = None;
        self.pids.clear();
    }
}

pub fn create(o: &Options) -> Result<Saved> {
    container::valid_id(&o.id)?;
    let bundle = o
        .bundle
        .canonicalize()
        .map_err(|e| msg(format!("bundle {}: {e}", o.bundle.display())))?;
    let spec = config::load(&bundle)?;
    let rootfs = config::rootfs(&spec, &bundle)?;
    let process = spec.process().clone().expect("validated");
    let linux = spec.linux().clone().unwrap_or_default();
    let plan = Plan::from_spec(linux.namespaces().as_deref().unwrap_or(&[]));
    if !plan.has(LinuxNamespaceType::Mount) {
        return Err(Error::Config("a mount namespace is required".into()));
    }
    let rel = cgroups::relative_path(linux.cgroups_path().as_deref(), &o.id)?;
    let want_terminal = process.terminal() == Some(true);
    if want_terminal && o.console_socket.is_none() && !o.terminal_optional {
        return Err(msg("cannot allocate a pseudo-TTY without --console-socket"));
    }
    let console = match (&o.console_socket, want_terminal) {
        (Some(path), true) => Some(console::connect(path)?),
        _ => None,
    };

    let dir = container::make_dir(&o.root, &o.id)?;
    let mut guard = Cleanup {
        dir: Some(dir.clone()),
        cgroup: None,
        pids: Vec::new(),
    };
    let fifo_path = dir.join(FIFO);
    mkfifo(&fifo_path, Mode::from_bits_truncate(0o622))
        .ctx(|| format!("cannot make {}", fifo_path.display()))?;
    // Past the umask: init may write it as a user mapped in a user namespace.
    std::fs::set_permissions(
        &fifo_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o622),
    )
    .ctx(|| format!("cannot chmod {}", fifo_path.display()))?;
    let fifo: OwnedFd = nix::fcntl::open(
        &fifo_path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("cannot open {}", fifo_path.display()))?;

    // Where the namespaces allow, the container's first process is cloned
    // straight into them once its cgroups exist (see `clone_init`);
    // otherwise init is started first, its execution (a few hundred
    // microseconds) overlapping the state and the cgroups made here: it
    // waits for its config before it does anything.
    let (ours, theirs) = sync::pair()?;
    let direct = plan.direct_clone();
    let mut stage1 = 0;
    if direct.is_none() {
        stage1 = spawn_init(&theirs, Some(&fifo), console.as_ref(), o.preserve_fds)?;
        guard.pids.push(stage1);
    }

    // Recorded before anything else is made: if this process dies (even by
    // SIGKILL), `delete` finds the state directory, the cgroups and, once it
    // is known, the init pid there.
    let created = crate::time::now_rfc3339();
    let me = Some(Creator::me());
    let planned = cgroups::planned(&rel);
    saved(o, &bundle, &rootfs, 0, &created, &planned, &spec, me).save(&o.root)?;
    let make_cgroups = || {
        Cgroup::create(
            &planned,
            &rel,
            linux.resources().as_ref(),
            linux.devices().as_deref().unwrap_or(&[]),
        )
    };
    // On a hybrid machine the first process is cloned into the cgroup2
    // directory alone, and the v1 hierarchies are made and the limits written
    // while it executes init (it joins them itself once it has its config):
    // half a millisecond of each start overlapped. On pure cgroup2 that
    // directory holds the limits: they are written before anything runs there.
    let mut cgroup = None;
    if direct.is_some() && planned.v2.is_none() {
        guard.cgroup = Some(planned.clone());
        Cgroup::make_unified(&planned)?;
    } else {
        let made = make_cgroups()?;
        guard.cgroup = Some(made.clone());
        cgroup = Some(made);
    }
    let mut first_pid = 0;
    if let Some(flags) = direct {
        let unified = match cgroup.as_ref().unwrap_or(&planned).unified_dir() {
            Some(d) => Some(std::fs::File::open(d).ctx(|| format!("cannot open {}", d.display()))?),
            None => None,
        };
        match clone_init(
            &theirs,
            Some(&fifo),
            console.as_ref(),
            o.preserve_fds,
            flags,
            unified.as_ref(),
        )? {
            Some(pid) => {
                first_pid = pid;
                guard.pids.push(pid);
            }
            // A kernel without CLONE_INTO_CGROUP: the first stage does it.
            None => {
                stage1 = spawn_init(&theirs, Some(&fifo), console.as_ref(), o.preserve_fds)?;
                guard.pids.push(stage1);
            }
        }
    }
    drop(theirs);
    let cgroup = match cgroup {
        Some(made) => made,
        None => {
            let made = make_cgroups()?;
            guard.cgroup = Some(made.clone());
            made
        }
    };

    let in_userns = plan.has(LinuxNamespaceType::User);
    let cfg = InitConfig {
        kind: Kind::Create,
        spec: Some(spec.clone()),
        process: process.clone(),
        rootfs: rootfs.clone(),
        no_pivot: o.no_pivot,
        console: console.is_some(),
        namespaces: plan.clone(),
        cgroup: cgroup.clone(),
        seccomp: linux.seccomp().clone(),
        in_userns,
        direct: first_pid != 0,
    };
    // Everything the container's init says until it is ready; a failure is
    // explained by the OOM killer when it struck (see `oom_cause`).
    let handshake = || -> Result<i32> {
        sync::send(ours.as_fd(), &Msg::Config(Box::new(cfg)))?;
        // Cloned straight into its namespaces, the first process is the container's.
        let mut pid = first_pid;
        let hooks_spec = spec.hooks().clone().unwrap_or_default();
        // The first stage sends the pid and the container's process the rest, on
        // the same socket: what needs the pid waits until it is here.
        let mut deferred = std::collections::VecDeque::new();
        loop {
            let next = match deferred.pop_front() {
                Some(m) if pid != 0 => Some(m),
                Some(m) => {
                    deferred.push_front(m);
                    sync::recv(ours.as_fd())?
                }
                None => sync::recv(ours.as_fd())?,
            };
            match next {
                Some(m @ (Msg::RunHooks | Msg::Ready)) if pid == 0 => deferred.push_back(m),
                Some(Msg::UsernsReady) => {
                    namespaces::write_id_maps(
                        stage1,
                        linux.uid_mappings().as_deref().unwrap_or(&[]),
                        linux.gid_mappings().as_deref().unwrap_or(&[]),
                    )?;
                    sync::send(ours.as_fd(), &Msg::MapsWritten)?;
                }
                Some(Msg::Pid { pid: p, joined }) => {
                    pid = p;
                    guard.pids.insert(0, p);
                    if !joined {
                        cgroup.join_unified(p)?;
                        sync::send(ours.as_fd(), &Msg::Joined)?;
                    }
                    // The first stage exits once it has forked.
                    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(stage1), None);
                    guard.pids.retain(|&x| x != stage1);
                }
                Some(Msg::RunHooks) => {
                    let saved = saved(o, &bundle, &rootfs, pid, &created, &cgroup, &spec, me);
                    // Hooks may take long: `delete` must know the init by then.
                    saved.save(&o.root)?;
                    let state = saved.oci_state(Status::Creating);
                    hooks::run_all("prestart", hooks_spec.prestart().as_ref(), &state)?;
                    hooks::run_all(
                        "createRuntime",
                        hooks_spec.create_runtime().as_ref(),
                        &state,
                    )?;
                    let state = saved.oci_state(Status::Created).to_string();
                    sync::send(ours.as_fd(), &Msg::HooksDone { state })?;
                }
                Some(Msg::Ready) => break,
                Some(Msg::Error { msg: m }) => return Err(msg(m)),
                Some(other) => return Err(msg(format!("unexpected message from init: {other:?}"))),
                None => return Err(msg("container init exited during set-up")),
            }
        }
        Ok(pid)
    };
    let pid = handshake().map_err(|e| oom_cause(e, &cgroup, linux.resources().as_ref()))?;
    let saved = saved(o, &bundle, &rootfs, pid, &created, &cgroup, &spec, None);
    saved.save(&o.root)?;
    if let Some(pid_file) = &o.pid_file {
        container::write_pid_file(pid_file, pid)?;
    }
    guard.disarm();
    Ok(saved)
}

/// `err`, or, when the kernel's OOM killer killed a process of the
/// container's cgroup during set-up (the set-up then fails in whatever way
/// the killed process's end shows), that as the cause, with the limit.
fn oom_cause(err: Error, cgroup: &Cgroup, resources: Option<&LinuxResources>) -> Error {
    if cgroup.oom_kills() == 0 {
        return err;
    }
    let limit = resources
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.limit())
        .filter(|l| *l > 0);
    let cause = match limit {
        Some(limit) => format!(
            "the memory limit (linux.resources.memory.limit = {limit} byte{}) is too low to run \
             it: raise the limit",
            if limit == 1 { "" } else { "s" }
        ),
        None => "the container's cgroup ran out of memory".to_string(),
    };
    msg(format!(
        "container init was killed by the kernel's OOM killer during set-up: {cause}"
    ))
}

#[allow(clippy::too_many_arguments)]
fn saved(
    o: &Options,
    bundle: &Path,
    rootfs: &Path,
    pid: i32,
    created: &str,
    cgroup: &Cgroup,
    spec: &oci_spec::runtime::Spec,
    creating: Option<Creator>,
) -> Saved {
    Saved {
        id: o.id.clone(),
        pid,
        start_time: crate::linux::proc::process_start_time(pid).map_or(0, |(t, _)| t),
        bundle: bundle.to_path_buf(),
        rootfs: rootfs.to_path_buf(),
        created: created.to_string(),
        cgroup: cgroup.clone(),
        config: spec.clone(),
        creating,
    }
}

/// Refuses `--preserve-fds N` unless the fds 3 .. 3+N are all open. Called
/// before this process opens anything, so none of them is one of ours.
pub fn check_preserved(n: u32) -> Result<()> {
    const MAX: u32 = 1 << 16;
    if n > MAX {
        return Err(msg(format!("--preserve-fds {n}: at most {MAX}")));
    }
    for fd in 3..3 + n as i32 {
        // SAFETY: only asks whether the fd number is open.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(msg(format!(
                "--preserve-fds {n}: fd {fd} is not open (fds 3 to {} must be)",
                2 + n
            )));
        }
    }
    Ok(())
}

/// The fds `inspector-runtime init` finds its inputs at, prepared in the
/// runtime: each moved above the numbers it will land on (so no dup2
/// clobbers another), and the sealed copy of this binary to execute.
struct Handover {
    exe: OwnedFd,
    /// The duplicates `place` moves; kept open until the child has them.
    _high: Vec<OwnedFd>,
    place: Placement,
}

/// What the child does with its fds between fork and execve: plain numbers,
/// so only async-signal-safe calls (fcntl, dup2, close).
#[derive(Clone, Copy)]
struct Placement {
    fds: Fds,
    moves: [(i32, i32); 3],
}

impl Placement {
    fn apply(&self) -> std::io::Result<()> {
        // SAFETY: fcntl, dup2 and close on fd numbers.
        unsafe {
            // Whoever passed them may have left them close-on-exec.
            for fd in 3..self.fds.sync {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (src, dst) in self.moves {
                if src >= 0 {
                    if libc::dup2(src, dst) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else {
                    libc::close(dst);
                }
            }
        }
        Ok(())
    }
}

impl Handover {
    fn new(
        sync: &OwnedFd,
        fifo: Option<&OwnedFd>,
        console: Option<&OwnedFd>,
        preserved: u32,
    ) -> Result<Handover> {
        let fds = Fds::after(preserved);
        let high = |fd: &OwnedFd| -> Result<OwnedFd> {
            nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(fds.end().max(100)),
            )
            .map(|raw| {
                // SAFETY: a fresh duplicate we own.
                unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) }
            })
            .ctx(|| "dup".into())
        };
        let exe = high(&reexec::sealed_exe()?)?;
        let mut kept = Vec::new();
        let mut moves = [(-1, fds.sync), (-1, fds.fifo), (-1, fds.console)];
        for (slot, fd) in moves.iter_mut().zip([Some(sync), fifo, console]) {
            if let Some(fd) = fd {
                let h = high(fd)?;
                slot.0 = h.as_raw_fd();
                kept.push(h);
            }
        }
        Ok(Handover {
            exe,
            _high: kept,
            place: Placement { fds, moves },
        })
    }

    /// `/proc/self/fd/N` of the sealed copy, and init's arguments.
    fn command(&self) -> (String, Vec<String>) {
        let mut args = vec!["inspector-runtime".to_string(), "init".to_string()];
        if self.place.fds.preserved > 0 {
            // Only then: `ps` and the goldens show the plain `init` otherwise.
            args.push(self.place.fds.preserved.to_string());
        }
        (format!("/proc/self/fd/{}", self.exe.as_raw_fd()), args)
    }
}

/// Starts `inspector-runtime init` from a sealed memfd copy of this binary,
/// with the caller's first `preserved` fds from 3 up left in place, and
/// above them (see [`Fds`]) the sync socket, exec.fifo and the console socket.
pub(crate) fn spawn_init(
    sync: &OwnedFd,
    fifo: Option<&OwnedFd>,
    console: Option<&OwnedFd>,
    preserved: u32,
) -> Result<i32> {
    let handover = Handover::new(sync, fifo, console, preserved)?;
    let (exe, args) = handover.command();
    let mut cmd = Command::new(exe);
    cmd.arg0(&args[0]).args(&args[1..]);
    let place = handover.place;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe { cmd.pre_exec(move || place.apply()) };
    let child = cmd
        .spawn()
        .ctx(|| "cannot start the container's init".into())?;
    Ok(child.id() as i32)
}

/// Like [`spawn_init`], but the process is cloned straight into the
/// container's new namespaces (`flags`) and, when given, its cgroup2
/// directory: it is the container's first process from the start, and no
/// process has to execute this binary only to make namespaces and fork.
/// `None` when the kernel refuses the clone (the caller falls back).
fn clone_init(
    sync: &OwnedFd,
    fifo: Option<&OwnedFd>,
    console: Option<&OwnedFd>,
    preserved: u32,
    flags: nix::sched::CloneFlags,
    cgroup2: Option<&std::fs::File>,
) -> Result<Option<i32>> {
    use std::ffi::CString;
    let handover = Handover::new(sync, fifo, console, preserved)?;
    let (exe, args) = handover.command();
    let cstr = |s: &str| CString::new(s).map_err(|_| msg("NUL in init's arguments"));
    let exe = cstr(&exe)?;
    let args = args.iter().map(|a| cstr(a)).collect::<Result<Vec<_>>>()?;
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let place = handover.place;
    let cloned = clone::clone3(
        flags.bits() as u64,
        cgroup2.map(std::os::fd::AsRawFd::as_raw_fd),
    );
    match cloned {
        Ok(Cloned::Parent(pid)) => Ok(Some(pid)),
        Ok(Cloned::Child) => {
            // SAFETY: in the child of a single-threaded process: fds, then
            // execv with arguments built before the clone; _exit if it fails.
            unsafe {
                if place.apply().is_ok() {
                    libc::execv(exe.as_ptr(), argv.as_ptr());
                }
                libc::_exit(127)
            }
        }
        Err(_) => Ok(None),
    }
}
