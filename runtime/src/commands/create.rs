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

    // Started first: its execution (a few hundred microseconds) overlaps the
    // state and the cgroups made here; it waits for its config before it
    // does anything.
    let (ours, theirs) = sync::pair()?;
    let stage1 = spawn_init(&theirs, Some(&fifo), console.as_ref(), o.preserve_fds)?;
    drop(theirs);
    guard.pids.push(stage1);

    // Recorded before anything else is made: if this process dies (even by
    // SIGKILL), `delete` finds the state directory, the cgroups and, once it
    // is known, the init pid there.
    let created = crate::time::now_rfc3339();
    let me = Some(Creator::me());
    saved(
        o,
        &bundle,
        &rootfs,
        0,
        &created,
        &cgroups::planned(&rel),
        &spec,
        me,
    )
    .save(&o.root)?;
    let cgroup = Cgroup::create(
        &rel,
        linux.resources().as_ref(),
        linux.devices().as_deref().unwrap_or(&[]),
    )?;
    guard.cgroup = Some(cgroup.clone());

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
    };
    // Everything the container's init says until it is ready; a failure is
    // explained by the OOM killer when it struck (see `oom_cause`).
    let handshake = || -> Result<i32> {
        sync::send(ours.as_fd(), &Msg::Config(Box::new(cfg)))?;
        let mut pid = 0;
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

/// Starts `inspector-runtime init` from a sealed memfd copy of this binary,
/// with the caller's first `preserved` fds from 3 up left in place, and
/// above them (see [`Fds`]) the sync socket, exec.fifo and the console socket.
pub(crate) fn spawn_init(
    sync: &OwnedFd,
    fifo: Option<&OwnedFd>,
    console: Option<&OwnedFd>,
    preserved: u32,
) -> Result<i32> {
    let fds = Fds::after(preserved);
    let memfd = reexec::sealed_exe()?;
    // Move every fd we hand over above the numbers it will land on, so no dup2 clobbers another.
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
    let exe = high(&memfd)?;
    let s = high(sync)?;
    let f = fifo.map(high).transpose()?;
    let c = console.map(high).transpose()?;
    let (s_raw, f_raw, c_raw) = (
        s.as_raw_fd(),
        f.as_ref().map_or(-1, |f| f.as_raw_fd()),
        c.as_ref().map_or(-1, |c| c.as_raw_fd()),
    );
    let mut cmd = Command::new(format!("/proc/self/fd/{}", exe.as_raw_fd()));
    cmd.arg0("inspector-runtime").arg("init");
    if preserved > 0 {
        // Only then: `ps` and the goldens show the plain `init` otherwise.
        cmd.arg(preserved.to_string());
    }
    // SAFETY: only async-signal-safe calls (fcntl, dup2, close) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Whoever passed them may have left them close-on-exec.
            for fd in 3..fds.sync {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (src, dst) in [(s_raw, fds.sync), (f_raw, fds.fifo), (c_raw, fds.console)] {
                if src >= 0 {
                    if libc::dup2(src, dst) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else {
                    libc::close(dst);
                }
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .ctx(|| "cannot start the container's init".into())?;
    Ok(child.id() as i32)
}
