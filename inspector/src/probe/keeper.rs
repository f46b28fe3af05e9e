//! The probe's links outlive the run that made them by a few seconds, held by
//! a small background process, the keeper, so that a run that follows soon
//! after (a benchmark, `inspector check` in a CI loop, the next `inspector
//! run`) takes them over attached, instead of attaching its own. In the
//! probe's lifecycle ([`super::lifecycle`]) this is the Adopt way, and where
//! the links go when a run ends.
//!
//! Why not let each run attach and detach: the kernel waits for RCU grace
//! periods to detach a program from each tracepoint, one after the other,
//! and until it is done the same program cannot be attached to the same
//! tracepoint again (`EEXIST`). Between runs the probe is disabled
//! (`RunState::enabled`): every program returns at once.
//!
//! The keeper (`inspector keep-probe`) holds the pinned set's lock with the
//! links; it listens on a unix socket named after the set, in root's private
//! lock directory (`/run/inspector/probe/<key>.sock`, see `pinned`). A run
//! that finds the lock taken connects, sends `a` and receives the lock and the
//! links (`SCM_RIGHTS`, with each link's place among the hooks), and the
//! keeper exits. Once its time is up, or sent `q` (`inspector unload`), it
//! lets the links go one by one, still answering: a run that comes then takes
//! those not yet detached and attaches the others itself (they are fully
//! detached, so no `EEXIST`). The lock goes last, when the keeper exits.
//!
//! Not an abstract socket: any user may bind an abstract name first, and one
//! who took `inspector-probe-<key>` silently kept every run from handing its
//! links on. No other user can bind or connect in a directory of root's that
//! is 0700. Each side still checks the other's credentials (`SO_PEERCRED`):
//! a keeper serves only its own user (root), and a run takes links only from
//! a keeper of its own user, so that no other user could take the probe's
//! links or pass off a socket of its own as the keeper (which would leave
//! inspector blind) even if the directory were opened up.

use std::{
    io::{Read as _, Write as _},
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
        unix::{
            net::{UnixListener, UnixStream},
            process::CommandExt as _,
        },
    },
    process::Stdio,
    time::{Duration, Instant},
};

use super::pinned::socket;

/// How long a keeper waits for a run to take its links over, unless
/// [`KEEP_ENV`] says otherwise.
pub const DEFAULT_KEEP: Duration = Duration::from_secs(5);

/// Seconds a keeper waits; `0` keeps nothing between runs (no keeper, no
/// pinned programs: every run loads its own probe).
pub const KEEP_ENV: &str = "INSPECTOR_KEEP_PROBE";

/// How long links are kept after a run, from [`KEEP_ENV`].
pub fn keep_time() -> Duration {
    std::env::var(KEEP_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(DEFAULT_KEEP, |s| Duration::from_secs_f64(s.min(3600.0)))
}

const ADOPT: u8 = b'a';
const QUIT: u8 = b'q';

/// Hands `lock` and `links` to a new keeper for `keep`: `inspector
/// keep-probe`, a process of its own (so that `ps` names it, and it holds none
/// of this one's memory), spawned without waiting for it. On failure they come
/// back, for the caller to let go of another way.
pub fn hand_over(
    key: &str,
    lock: OwnedFd,
    links: Vec<OwnedFd>,
    keep: Duration,
) -> Result<(), (OwnedFd, Vec<OwnedFd>)> {
    // Bound here, so that a run starting as soon as this one returns finds it.
    // A socket left there is an earlier keeper's, gone: this run holds the
    // set's lock, which a live keeper would. (unlink removes a link, never
    // what it points to; and the directory is root's alone.)
    let path = socket(key);
    let _ = std::fs::remove_file(&path);
    let Ok(listener) = UnixListener::bind(&path) else {
        return Err((lock, links));
    };
    let listen: OwnedFd = listener.into();
    // The keeper's standard streams are /dev/null: a descriptor numbered 0-2
    // (inspector started with one of them closed) is passed under another.
    let listen = above_stdio(listen);
    let lock = above_stdio(lock);
    let links: Vec<OwnedFd> = links.into_iter().map(above_stdio).collect();
    if [&listen, &lock]
        .into_iter()
        .chain(&links)
        .any(|fd| fd.as_raw_fd() <= 2)
    {
        return Err((lock, links));
    }
    let passed: Vec<RawFd> = [listen.as_raw_fd(), lock.as_raw_fd()]
        .into_iter()
        .chain(links.iter().map(|l| l.as_raw_fd()))
        .collect();
    // Inherited by the keeper only: they are closed here right after.
    for &fd in &passed {
        // SAFETY: fcntl on descriptors we own.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
    let list = |fds: &[RawFd]| {
        fds.iter()
            .map(|fd| fd.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let spawned = std::process::Command::new("/proc/self/exe")
        .arg0("inspector")
        .args(["keep-probe", "--key", key, "--seconds"])
        .arg(keep.as_secs_f64().to_string())
        .args(["--listen", &passed[0].to_string()])
        .args(["--lock", &passed[1].to_string()])
        .args(["--links", &list(&passed[2..])])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C at the terminal is not for it.
        .process_group(0)
        .spawn();
    for &fd in &passed {
        // SAFETY: as above.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    match spawned {
        // Not waited for: it outlives this process, and init reaps it.
        Ok(_child) => Ok(()),
        Err(_) => Err((lock, links)),
    }
}

/// `fd`, or a duplicate of it numbered 3 or more (`fd` itself if that fails).
fn above_stdio(fd: OwnedFd) -> OwnedFd {
    if fd.as_raw_fd() > 2 {
        return fd;
    }
    // SAFETY: fcntl on a descriptor we own.
    let dup = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if dup < 0 {
        return fd;
    }
    // SAFETY: a new descriptor, ours alone.
    unsafe { OwnedFd::from_raw_fd(dup) }
}

/// The keeper's life (`inspector keep-probe`): waits `keep` for a run to take
/// `lock` and `links` over, or for a request to let go; then lets the links
/// go, still handing those not yet detached to a run that asks.
pub fn serve(listen: OwnedFd, lock: OwnedFd, links: Vec<OwnedFd>, keep: Duration) {
    let listener = UnixListener::from(listen);
    let mut links: Vec<Option<OwnedFd>> = links.into_iter().map(Some).collect();
    let deadline = Instant::now() + keep;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let mut pfd = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, ms) } <= 0 {
            continue;
        }
        match answer(&listener, &lock, &links) {
            Answer::HandedOver => return,
            Answer::Quit => break,
            Answer::Nothing => {}
        }
    }
    // Letting go: each close waits for the kernel (RCU grace periods).
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    for i in 0..links.len() {
        if let Answer::HandedOver = answer(&listener, &lock, &links) {
            return;
        }
        links[i] = None;
    }
    // The lock goes as the process exits, after every link.
}

enum Answer {
    HandedOver,
    Quit,
    Nothing,
}

/// Serves one waiting connection, if there is one: hands over the lock and
/// the links still held (each with its place among the hooks).
fn answer(listener: &UnixListener, lock: &OwnedFd, links: &[Option<OwnedFd>]) -> Answer {
    let Ok((mut conn, _)) = listener.accept() else {
        return Answer::Nothing;
    };
    if !same_user(conn.as_raw_fd()) || conn.set_nonblocking(false).is_err() {
        return Answer::Nothing;
    }
    let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
    let mut request = [0u8; 1];
    match conn.read_exact(&mut request).map(|()| request[0]) {
        Ok(ADOPT) => {
            let held: Vec<(u8, RawFd)> = links
                .iter()
                .enumerate()
                .filter_map(|(i, l)| Some((i as u8, l.as_ref()?.as_raw_fd())))
                .collect();
            if Message::new(lock.as_raw_fd(), &held).send(conn.as_raw_fd()) {
                // The descriptors in flight keep the links attached and the
                // lock taken until the new run receives them.
                Answer::HandedOver
            } else {
                Answer::Nothing
            }
        }
        Ok(QUIT) => Answer::Quit,
        _ => Answer::Nothing,
    }
}

/// Takes over the lock and the links of the keeper of `key`, if there is one
/// and it answers: the links by their place among the `hooks` (`None` for
/// those the keeper has let go already).
pub fn adopt(key: &str, hooks: usize) -> Option<(OwnedFd, Vec<Option<OwnedFd>>)> {
    let mut stream = UnixStream::connect(socket(key)).ok()?;
    if !same_user(stream.as_raw_fd()) {
        log::warn!("a process of another user listens as the keeper of the probe {key}; ignored");
        return None;
    }
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream.write_all(&[ADOPT]).ok()?;
    let (places, fds) = Message::receive(&stream, hooks)?;
    let mut fds = fds.into_iter();
    let lock = fds.next()?;
    let mut links: Vec<Option<OwnedFd>> = (0..hooks).map(|_| None).collect();
    // Another build's keeper cannot answer for this key; still, links that
    // do not fit the hooks are let go (they detach as they drop).
    if places.len() != fds.len() {
        return None;
    }
    for (place, fd) in places.into_iter().zip(fds) {
        let slot = links.get_mut(place as usize)?;
        if slot.replace(fd).is_some() {
            return None;
        }
    }
    Some((lock, links))
}

/// Asks the keeper of `key` to let its links go now; whether one was there.
pub fn dismiss(key: &str) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket(key)) else {
        return false;
    };
    if !same_user(stream.as_raw_fd()) {
        return false;
    }
    let _ = stream.write_all(&[QUIT]);
    // It closes the connection once it has read the request.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = stream.read(&mut [0u8; 1]);
    true
}

/// Whether the process at the other end of `sock` runs as this one's user.
fn same_user(sock: RawFd) -> bool {
    let mut cred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt fills `cred`, of the size given.
    let r = unsafe {
        libc::getsockopt(
            sock,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    // SAFETY: geteuid has no preconditions.
    r == 0 && cred.uid == unsafe { libc::geteuid() }
}

/// What a keeper sends: the lock and the links it still holds, as
/// descriptors, and each link's place among the hooks, as bytes (a count
/// first, so that the message is never empty). The headers' lengths are
/// cast `as _`: size_t in glibc, socklen_t in musl (`cargo xtask dist`).
struct Message {
    data: Vec<u8>,
    control: Vec<u8>,
}

impl Message {
    fn new(lock: RawFd, links: &[(u8, RawFd)]) -> Self {
        let mut data = vec![links.len() as u8];
        data.extend(links.iter().map(|(place, _)| place));
        let fds: Vec<RawFd> = std::iter::once(lock)
            .chain(links.iter().map(|(_, fd)| *fd))
            .collect();
        let fds_len = std::mem::size_of_val(fds.as_slice()) as u32;
        // SAFETY: CMSG_SPACE/CMSG_LEN only compute sizes.
        let (space, len) = unsafe { (libc::CMSG_SPACE(fds_len), libc::CMSG_LEN(fds_len)) };
        let mut control = vec![0u8; space as usize];
        // SAFETY: `control` is CMSG_SPACE bytes, room for one header and the
        // fds; the header is written through the pointer CMSG_FIRSTHDR gives.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = control.len() as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = len as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr().cast::<u8>(),
                libc::CMSG_DATA(cmsg),
                fds_len as usize,
            );
        }
        Message { data, control }
    }

    fn send(&self, sock: RawFd) -> bool {
        let mut iov = libc::iovec {
            iov_base: self.data.as_ptr() as *mut _,
            iov_len: self.data.len(),
        };
        // SAFETY: a msghdr over live buffers; sendmsg only reads them.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = self.control.as_ptr() as *mut _;
            msg.msg_controllen = self.control.len() as _;
            libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) == self.data.len() as isize
        }
    }

    /// Receives what [`Message::send`] sent, for up to `links` links: the
    /// places and the descriptors (the lock first).
    fn receive(stream: &UnixStream, links: usize) -> Option<(Vec<u8>, Vec<OwnedFd>)> {
        let fds_len = ((links + 1) * size_of::<RawFd>()) as u32;
        // SAFETY: CMSG_SPACE only computes a size.
        let mut control = vec![0u8; unsafe { libc::CMSG_SPACE(fds_len) } as usize];
        let mut data = vec![0u8; links + 1];
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        };
        // SAFETY: a msghdr over live buffers for recvmsg to fill; the fds it
        // delivers are read from the header the kernel wrote, and owned once.
        let (got, fds, truncated) = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = control.len() as _;
            let got = libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
            let mut fds = Vec::new();
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    let n = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                        / size_of::<RawFd>();
                    let at = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                    for i in 0..n {
                        fds.push(OwnedFd::from_raw_fd(at.add(i).read_unaligned()));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
            (
                got,
                fds,
                msg.msg_flags & (libc::MSG_CTRUNC | libc::MSG_TRUNC) != 0,
            )
        };
        // A message cut short lost descriptors or places: not a probe to trust.
        let count = *data.first()? as usize;
        if truncated || got < 1 || got as usize != count + 1 {
            return None;
        }
        data.truncate(count + 1);
        data.remove(0);
        Some((data, fds))
    }
}
