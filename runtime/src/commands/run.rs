//! `run`: create, start, wait for the entrypoint, delete; exits with its status.

use std::sync::atomic::{AtomicI32, Ordering};

use crate::{
    Result,
    commands::{create, delete, start},
    error::Context as _,
};

static CONTAINER_PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CONTAINER_PID.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Makes orphaned descendants (the container's init, once its first stage exits) our children.
pub fn set_subreaper() -> Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "PR_SET_CHILD_SUBREAPER".into());
    }
    Ok(())
}

/// Waits for `pid` (our child) and turns its end into a shell-style exit code.
pub fn wait_exit_code(pid: i32) -> Result<i32> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e).ctx(|| format!("waitpid {pid}"));
        }
        if libc::WIFEXITED(status) {
            return Ok(libc::WEXITSTATUS(status));
        }
        if libc::WIFSIGNALED(status) {
            return Ok(128 + libc::WTERMSIG(status));
        }
    }
}

pub fn run(o: &create::Options, detach: bool) -> Result<i32> {
    set_subreaper()?;
    let mut o = o.clone();
    o.terminal_optional = !detach;
    let saved = create::create(&o)?;
    if let Err(e) = start::start_created(&o.root, &saved) {
        let _ = delete::delete(&o.root, &o.id, true);
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    CONTAINER_PID.store(saved.pid, Ordering::Relaxed);
    for sig in [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ] {
        // SAFETY: installing an async-signal-safe handler.
        unsafe { libc::signal(sig, forward as *const () as libc::sighandler_t) };
    }
    let code = wait_exit_code(saved.pid)?;
    if std::env::var_os("INSPECTOR_RUNTIME_DEBUG").is_some() && code != 0 {
        eprintln!(
            "inspector-runtime: container {} exited with {code}",
            saved.pid
        );
    }
    // Reaped: nothing of it runs any more (an exec'd process would have died with pid 1).
    delete::destroy(&o.root, &saved);
    Ok(code)
}
