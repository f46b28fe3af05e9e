//! `--console-socket`: a pty for the container, whose master goes to whoever
//! listens on the socket (containerd's shim) as one fd with SCM_RIGHTS.

use std::{
    io::IoSlice,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    os::unix::net::UnixStream,
    path::Path,
};

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};

use crate::{
    Result,
    error::{Context as _, msg},
};

/// Connects to the socket the caller listens on (done on the host, before pivot_root).
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let s = UnixStream::connect(path)
        .ctx(|| format!("cannot connect to console socket {}", path.display()))?;
    Ok(s.into())
}

/// Opens a new pty, sends its master over `socket`, and makes the slave this
/// process's controlling terminal and stdio.
pub fn setup(socket: RawFd, size: Option<(u64, u64)>, bind_console: bool) -> Result<()> {
    // SAFETY: plain libc calls on fds we own.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if master < 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "cannot open /dev/ptmx".into());
        }
        let master = OwnedFd::from_raw_fd(master);
        if libc::unlockpt(master.as_raw_fd()) < 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "unlockpt".into());
        }
        let mut name = [0 as libc::c_char; 128];
        if libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) != 0 {
            return Err(msg("ptsname failed"));
        }
        let slave_name = std::ffi::CStr::from_ptr(name.as_ptr()).to_owned();
        let slave = libc::open(slave_name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        if slave < 0 {
            return Err(std::io::Error::last_os_error())
                .ctx(|| format!("cannot open {}", slave_name.to_string_lossy()));
        }
        if let Some((h, w)) = size {
            let ws = libc::winsize {
                ws_row: h as u16,
                ws_col: w as u16,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            libc::ioctl(slave, libc::TIOCSWINSZ, &ws);
        }
        // Send the master with its name (the shim wants a non-empty payload).
        let payload = slave_name.to_bytes().to_vec();
        let fds = [master.as_raw_fd()];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        sendmsg::<()>(
            socket,
            &[IoSlice::new(&payload)],
            &cmsg,
            MsgFlags::empty(),
            None,
        )
        .ctx(|| "cannot send the pty master over the console socket".into())?;
        // /dev/console names the terminal too, when there is a /dev/console to bind on.
        if bind_console && std::fs::File::create("/dev/console").is_ok() {
            let _ = nix::mount::mount(
                Some(Path::new(slave_name.to_str().unwrap_or(""))),
                "/dev/console",
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            );
        }
        for fd in 0..3 {
            libc::dup2(slave, fd);
        }
        if slave > 2 {
            libc::close(slave);
        }
        if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
            return Err(std::io::Error::last_os_error())
                .ctx(|| "cannot set the controlling terminal".into());
        }
    }
    Ok(())
}
