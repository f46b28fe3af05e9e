//! The last steps before the entrypoint runs, shared by init and `exec`:
//! rlimits, oom_score_adj, working directory, user, capabilities,
//! no_new_privileges, seccomp, closing inherited fds, execve.

use std::{
    ffi::CString,
    path::{Path, PathBuf},
};

use oci_spec::runtime::{LinuxSeccomp, Process};

use crate::{
    Result,
    error::{Context as _, msg},
    linux::{capabilities, seccomp},
};

/// Finds the program the way runc does: a name with a slash is taken as is,
/// otherwise it is looked up in the process's own PATH.
pub fn resolve_program(process: &Process) -> Result<PathBuf> {
    let arg0 = process
        .args()
        .as_ref()
        .and_then(|a| a.first())
        .ok_or_else(|| msg("process.args is empty"))?;
    if arg0.contains('/') {
        let p = if Path::new(arg0).is_absolute() {
            PathBuf::from(arg0)
        } else {
            process.cwd().join(arg0)
        };
        return if p.exists() {
            Ok(p)
        } else {
            Err(msg(format!("exec: {arg0:?}: no such file or directory")))
        };
    }
    let path = process
        .env()
        .iter()
        .flatten()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(arg0);
        if let Ok(m) = std::fs::metadata(&candidate) {
            use std::os::unix::fs::PermissionsExt;
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(msg(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    )))
}

/// setrlimit's resource type: glibc's own enum type, musl's plain int.
#[cfg(target_env = "gnu")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type Resource = libc::c_int;

fn rlimit_resource(name: &str) -> Option<Resource> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    })
}

pub fn set_rlimits(process: &Process) -> Result<()> {
    for r in process.rlimits().iter().flatten() {
        let name = serde_json::to_value(r.typ()).ok();
        let name = name.as_ref().and_then(|v| v.as_str()).unwrap_or("");
        let res = rlimit_resource(name).ok_or_else(|| msg(format!("unknown rlimit {name}")))?;
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: a valid rlimit struct.
        if unsafe { libc::setrlimit(res, &lim) } < 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| format!("cannot set {name}"));
        }
    }
    Ok(())
}

/// Changes to `cwd` and checks we really are inside the container's root: a
/// directory reached through a leaked host fd would show as unreachable (the
/// CVE-2024-21626 class).
pub fn enter_cwd(cwd: &Path) -> Result<()> {
    nix::unistd::chdir(cwd)
        .ctx(|| format!("cannot change to working directory {}", cwd.display()))?;
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() && !p.starts_with("(unreachable)") => Ok(()),
        _ => Err(msg(format!(
            "working directory {} is outside the container",
            cwd.display()
        ))),
    }
}

/// Marks every fd above 2 close-on-exec (keeping `keep` and below open).
pub fn cloexec_from(first: u32) {
    // SAFETY: close_range only changes fd flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc < 0 {
        // Older kernels: walk /proc/self/fd.
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            let fds: Vec<i32> = dir
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|&fd| fd >= first as i32)
                .collect();
            for fd in fds {
                // SAFETY: setting a flag on an fd number.
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
        }
    }
}

fn cstrings(items: &[String]) -> Result<Vec<CString>> {
    items
        .iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| msg(format!("NUL byte in {s:?}"))))
        .collect()
}

/// What is left for the moment of execve once [`prepare`] has run.
pub struct Prepared {
    /// A filter to load last: with no_new_privs it needs no capability, and
    /// loaded any earlier it would apply to the runtime's own last steps.
    filter: Option<seccomp::Filter>,
}

/// Everything that makes the process what the config says, short of execve:
/// rlimits, oom_score_adj, working directory, a seccomp filter that needs
/// CAP_SYS_ADMIN, the capability bounding set, user and groups, the
/// capabilities, no_new_privs. Done before the runtime is told the
/// container is ready, so that what fails here fails `create` (or `exec`).
pub fn prepare(
    process: &Process,
    seccomp_spec: Option<&LinuxSeccomp>,
    in_userns: bool,
) -> Result<Prepared> {
    set_rlimits(process)?;
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .ctx(|| "cannot set oom_score_adj".into())?;
    }
    enter_cwd(process.cwd())?;
    let nnp = process.no_new_privileges() == Some(true);
    let filter = seccomp_spec.map(seccomp::compile).transpose()?;
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while we have it.
    if let (Some(f), false) = (&filter, nnp) {
        seccomp::load(f)?;
    }
    if let Some(caps) = process.capabilities() {
        capabilities::drop_bounding(caps)?;
    }
    let user = process.user();
    // Checked when the config or process was read; checked again here, where
    // a -1 would silently leave the process root.
    crate::config::check_user(user)?;
    // SAFETY: prctl and id changes with plain integers.
    unsafe {
        if libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "PR_SET_KEEPCAPS".into());
        }
        let groups: Vec<libc::gid_t> = user.additional_gids().clone().unwrap_or_default();
        let setgroups_denied = in_userns
            && std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
        if !setgroups_denied && libc::setgroups(groups.len(), groups.as_ptr()) < 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "setgroups".into());
        }
        if libc::setresgid(user.gid(), user.gid(), user.gid()) < 0 {
            return Err(std::io::Error::last_os_error())
                .ctx(|| format!("cannot set gid {}", user.gid()));
        }
        if libc::setresuid(user.uid(), user.uid(), user.uid()) < 0 {
            return Err(std::io::Error::last_os_error())
                .ctx(|| format!("cannot set uid {}", user.uid()));
        }
        if let Some(mask) = user.umask() {
            libc::umask(mask);
        }
    }
    if let Some(caps) = process.capabilities() {
        capabilities::apply(caps)?;
    }
    if nnp {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } < 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "PR_SET_NO_NEW_PRIVS".into());
        }
        return Ok(Prepared { filter });
    }
    Ok(Prepared { filter: None })
}

/// Loads what `prepare` left, keeps fds 3 .. 3+`preserved` and nothing
/// above, resets signals and executes `program`. Returns only on error.
pub fn exec(
    prepared: Prepared,
    process: &Process,
    program: &Path,
    preserved: u32,
) -> Result<std::convert::Infallible> {
    if let Some(f) = &prepared.filter {
        seccomp::load(f)?;
    }
    let argv = cstrings(process.args().as_deref().unwrap_or(&[]))?;
    let envp = cstrings(process.env().as_deref().unwrap_or(&[]))?;
    let prog = CString::new(program.as_os_str().as_encoded_bytes())
        .map_err(|_| msg("NUL in program path"))?;
    // Nothing of ours may reach the entrypoint: no fd but the caller's
    // preserved ones, and none of the signal dispositions Rust's runtime set
    // (it ignores SIGPIPE), no blocked signal.
    cloexec_from(3 + preserved);
    // SAFETY: resetting dispositions and the mask of this single-threaded process.
    unsafe {
        for sig in 1..libc::SIGRTMIN() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
    let err = nix::unistd::execve(&prog, &argv, &envp).unwrap_err();
    Err(msg(format!("exec {}: {err}", program.display())))
}
