//! `exec`: start another process in a running container's namespaces and cgroup.

use std::{os::fd::AsFd, path::PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Process};

use crate::{
    Result,
    commands::{
        create::spawn_init,
        run::{set_subreaper, wait_exit_code},
    },
    container::{self, Saved, Status},
    error::msg,
    init::{InitConfig, Kind},
    linux::{console, namespaces::Plan},
    sync::{self, Msg},
};

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub root: PathBuf,
    pub id: String,
    pub process_file: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub tty: bool,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    /// `--user UID[:GID]`.
    pub user: Option<String>,
    /// `--additional-gids`.
    pub additional_gids: Vec<u32>,
    /// `--preserve-fds N`.
    pub preserve_fds: u32,
    /// `--cap CAP_X`: added to the bounding, effective and permitted sets,
    /// as runc 1.1 adds it (not inheritable or ambient: a process that is
    /// not root loses it at execve there too).
    pub caps: Vec<String>,
    /// `--no-new-privs`.
    pub no_new_privs: bool,
    pub args: Vec<String>,
}

/// Returns the exit code of the process (0 with `--detach`).
pub fn exec(o: &Options) -> Result<i32> {
    let saved = Saved::load(&o.root, &o.id)?;
    match saved.status(&o.root) {
        Status::Running | Status::Created => {}
        s => return Err(msg(format!("cannot exec in a container that is {s}"))),
    }
    let process = process(o, &saved)?;
    // Before anything is started: a uid or gid of -1 would run as root.
    crate::config::check_user(process.user())?;
    let linux = saved.config.linux().clone().unwrap_or_default();
    let types: Vec<LinuxNamespaceType> = linux
        .namespaces()
        .iter()
        .flatten()
        .map(|n| n.typ())
        .collect();
    let plan = Plan::join_container(saved.pid, &types);
    let console = match (&o.console_socket, process.terminal() == Some(true)) {
        (Some(p), true) => Some(console::connect(p)?),
        (None, true) if o.detach => {
            return Err(msg("cannot allocate a pseudo-TTY without --console-socket"));
        }
        _ => None,
    };
    if !o.detach {
        set_subreaper()?;
    }
    let cfg = InitConfig {
        kind: Kind::Exec,
        spec: None,
        process,
        rootfs: saved.rootfs.clone(),
        no_pivot: false,
        console: console.is_some(),
        namespaces: plan,
        cgroup: saved.cgroup.clone(),
        seccomp: linux.seccomp().clone(),
        in_userns: types.contains(&LinuxNamespaceType::User),
        direct: false,
    };
    let (ours, theirs) = sync::pair()?;
    let stage1 = spawn_init(&theirs, None, console.as_ref(), o.preserve_fds)?;
    drop(theirs);
    let fail = |e| {
        // SAFETY: killing the process we started.
        unsafe { libc::kill(stage1, libc::SIGKILL) };
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(stage1), None);
        e
    };
    sync::send(ours.as_fd(), &Msg::Config(Box::new(cfg))).map_err(fail)?;
    let mut pid = 0;
    let mut ready = false;
    loop {
        match sync::recv(ours.as_fd())? {
            Some(Msg::Pid { pid: p, joined }) => {
                pid = p;
                if !joined {
                    saved.cgroup.join_unified(p)?;
                    sync::send(ours.as_fd(), &Msg::Joined)?;
                }
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(stage1), None);
                if ready {
                    break;
                }
            }
            // The pid comes from the first stage, Ready from the process: either may be first.
            Some(Msg::Ready) if pid != 0 => break,
            Some(Msg::Ready) => ready = true,
            Some(Msg::Error { msg: m }) => {
                if pid > 0 {
                    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
                }
                return Err(msg(m));
            }
            Some(other) => return Err(msg(format!("unexpected message: {other:?}"))),
            None => return Err(msg("exec'd process exited during set-up")),
        }
    }
    if let Some(f) = &o.pid_file {
        container::write_pid_file(f, pid)?;
    }
    if o.detach {
        return Ok(0);
    }
    wait_exit_code(pid)
}

fn process(o: &Options, saved: &Saved) -> Result<Process> {
    if let Some(file) = &o.process_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| msg(format!("cannot read process file {}: {e}", file.display())))?;
        return serde_json::from_str(&text)
            .map_err(|e| msg(format!("process file {}: {e}", file.display())));
    }
    if o.args.is_empty() {
        return Err(msg("exec: no command given"));
    }
    let mut p = saved.config.process().clone().unwrap_or_default();
    p.set_args(Some(o.args.clone()));
    p.set_terminal(Some(o.tty));
    if let Some(cwd) = &o.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(o.env.iter().cloned());
    p.set_env(Some(env));
    let mut user = p.user().clone();
    if let Some(spec) = &o.user {
        let (uid, gid) = parse_user(spec)?;
        user.set_uid(uid);
        if let Some(gid) = gid {
            user.set_gid(gid);
        }
    }
    if !o.additional_gids.is_empty() {
        user.set_additional_gids(Some(o.additional_gids.clone()));
    }
    p.set_user(user);
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !o.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        let add = o
            .caps
            .iter()
            .map(|c| {
                serde_json::from_value(serde_json::Value::String(c.clone())).map_err(|_| {
                    msg(format!(
                        "--cap {c:?}: not a capability (e.g. CAP_NET_ADMIN)"
                    ))
                })
            })
            .collect::<Result<Vec<oci_spec::runtime::Capability>>>()?;
        let with = |set: &Option<oci_spec::runtime::Capabilities>| {
            let mut set = set.clone().unwrap_or_default();
            set.extend(add.iter().copied());
            Some(set)
        };
        caps.set_bounding(with(caps.bounding()));
        caps.set_effective(with(caps.effective()));
        caps.set_permitted(with(caps.permitted()));
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

/// `UID[:GID]`, numbers only (as runc's `exec --user`).
fn parse_user(spec: &str) -> Result<(u32, Option<u32>)> {
    let bad = || {
        msg(format!(
            "--user {spec:?}: expected UID or UID:GID (numbers)"
        ))
    };
    let (uid, gid) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid = uid.parse().map_err(|_| bad())?;
    let gid = gid.map(|g| g.parse().map_err(|_| bad())).transpose()?;
    Ok((uid, gid))
}
