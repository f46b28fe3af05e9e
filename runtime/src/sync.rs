//! Messages between the runtime and the processes it starts, over a
//! SOCK_SEQPACKET socket pair: one JSON message per packet.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{self, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::{
    Result,
    error::{Context as _, msg},
};

/// The fd numbers the init process finds its inputs at: just above the
/// caller's `--preserve-fds N` (3 .. 3+N), which stay where they are all the
/// way to the entrypoint, as runc's do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fds {
    /// How many of the caller's fds from 3 up the entrypoint gets.
    pub preserved: u32,
    pub sync: i32,
    pub fifo: i32,
    pub console: i32,
}

impl Fds {
    pub fn after(preserved: u32) -> Self {
        let first = 3 + preserved as i32;
        Self {
            preserved,
            sync: first,
            fifo: first + 1,
            console: first + 2,
        }
    }

    /// The first fd number that is none of these.
    pub fn end(&self) -> i32 {
        self.console + 1
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Msg {
    /// runtime → init: what to build.
    Config(Box<crate::init::InitConfig>),
    /// init → runtime: a new user namespace waits for its id maps.
    UsernsReady,
    /// runtime → init: the maps are written.
    MapsWritten,
    /// init → runtime: the pid of the container's process, as the host sees it;
    /// `joined` tells whether it was born in its cgroup2 directory already.
    Pid { pid: i32, joined: bool },
    /// runtime → init: the process is in all its cgroups.
    Joined,
    /// init → runtime: run the prestart and createRuntime hooks now.
    RunHooks,
    /// runtime → init: the hooks ran; here is the state the container's own hooks get.
    HooksDone { state: String },
    /// init → runtime: set-up is complete; waiting for `start`.
    Ready,
    /// either way: something failed.
    Error { msg: String },
}

pub fn pair() -> Result<(OwnedFd, OwnedFd)> {
    socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ctx(|| "socketpair".into())
}

pub fn send(fd: BorrowedFd<'_>, m: &Msg) -> Result<()> {
    let data = serde_json::to_vec(m).map_err(|e| msg(e.to_string()))?;
    // MSG_NOSIGNAL: a peer that died is an error to report, not a SIGPIPE.
    nix::sys::socket::send(fd.as_raw_fd(), &data, socket::MsgFlags::MSG_NOSIGNAL)
        .ctx(|| "sending to the runtime's sync socket".into())?;
    Ok(())
}

/// Receives one message; `None` when the other end closed without a word.
pub fn recv(fd: BorrowedFd<'_>) -> Result<Option<Msg>> {
    let mut buf = vec![0u8; 1 << 20];
    let n = loop {
        match nix::sys::socket::recv(fd.as_raw_fd(), &mut buf, socket::MsgFlags::empty()) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => break r.ctx(|| "reading the sync socket".into())?,
        }
    };
    if n == 0 {
        return Ok(None);
    }
    serde_json::from_slice(&buf[..n])
        .map(Some)
        .map_err(|e| msg(format!("bad sync message: {e}")))
}
