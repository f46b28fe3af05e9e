//! `inspector-runtime`'s command line and lifecycle, against the real kernel:
//! create/start/state/kill/delete, run, exec, ps, pause/resume, list, spec,
//! the console socket and the log format containerd's shim reads.

use std::{
    io::Read,
    os::fd::{FromRawFd, RawFd},
    os::unix::net::UnixListener,
    time::{Duration, Instant},
};

use serde_json::json;
use tests::runtime::{Bundle, Runtime};
use tests::{Need, ready, runtime_bin};

fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn version_is_in_runcs_format() {
    let out = std::process::Command::new(runtime_bin())
        .arg("--version")
        .output();
    let Ok(out) = out else {
        tests::require(false, "a built inspector-runtime");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("inspector-runtime version "), "{text}");
    assert!(text.contains("\nspec: 1.0.2"), "{text}");
}

#[test]
fn systemd_cgroup_is_refused_clearly() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let rt = Runtime::new("systemd");
    let out = rt.out(&["--systemd-cgroup", "state", "x"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not supported"));
}

#[test]
fn spec_writes_a_config_once() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let dir = tests::TempDir::new("rt-spec");
    let rt = Runtime::new("spec");
    rt.ok(&["spec", "--bundle", dir.path().to_str().unwrap()]);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(v["root"]["path"], "rootfs");
    let again = rt.out(&["spec", "--bundle", dir.path().to_str().unwrap()]);
    assert!(!again.status.success());
}

#[test]
fn create_start_state_kill_delete() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let rt = Runtime::new("lifecycle");
    let b = Bundle::new("lifecycle", &["sleep", "100"]);
    let pid_file = b.path().join("init.pid");
    rt.ok(&[
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &b.id,
    ]);
    let text = std::fs::read_to_string(&pid_file).unwrap();
    assert!(!text.ends_with('\n'), "pid file must hold no newline");
    let pid: i64 = text.parse().unwrap();
    let st = rt.state(&b.id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"], pid);
    assert_eq!(st["id"], b.id.as_str());
    assert_eq!(st["ociVersion"], "1.0.2");
    // Until start, init still runs the runtime, not the entrypoint.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains("sleep"));

    rt.ok(&["start", &b.id]);
    assert_eq!(rt.state(&b.id)["status"], "running");
    assert!(wait_for(
        || std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"sleep"))
    ));
    let again = rt.out(&["start", &b.id]);
    assert!(!again.status.success(), "a second start must fail");

    let busy = rt.out(&["delete", &b.id]);
    assert!(
        !busy.status.success(),
        "delete of a running container needs --force"
    );
    assert!(String::from_utf8_lossy(&busy.stderr).contains("running"));

    rt.ok(&["kill", &b.id, "KILL"]);
    // Not our child: it stays a zombie until someone reaps it, which counts as stopped.
    assert!(wait_for(|| rt.state(&b.id)["status"] == "stopped"));
    let log = b.path().join("log.json");
    let out = rt.out(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "kill",
        &b.id,
        "TERM",
    ]);
    assert!(!out.status.success());
    let line = std::fs::read_to_string(&log).unwrap();
    let v: serde_json::Value = serde_json::from_str(line.lines().last().unwrap()).unwrap();
    assert_eq!(v["level"], "error");
    assert_eq!(v["msg"], "container not running");
    assert!(v["time"].as_str().unwrap().contains('T'));

    rt.ok(&["delete", &b.id]);
    rt.assert_nothing_left(&b);
    let gone = rt.out(&["state", &b.id]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("does not exist"));
}

#[test]
fn kill_takes_numbers_and_names_and_delete_force() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let rt = Runtime::new("kill");
    let b = Bundle::new(
        "kill",
        &[
            "sh",
            "-c",
            "trap 'echo got USR1 > /tmp/usr1' USR1; while true; do sleep 0.05; done",
        ],
    );
    rt.ok(&[
        "run",
        "--detach",
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]);
    std::thread::sleep(Duration::from_millis(200));
    rt.ok(&["kill", &b.id, "SIGUSR1"]);
    assert!(wait_for(|| b.rootfs().join("tmp/usr1").exists()));
    rt.ok(&["kill", &b.id, "10"]);
    rt.ok(&["kill", "--all", &b.id, "usr1"]);
    assert!(!rt.out(&["kill", &b.id, "NOSUCHSIG"]).status.success());
    rt.ok(&["delete", "--force", &b.id]);
    rt.assert_nothing_left(&b);
}

#[test]
fn run_exits_with_the_containers_status() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let rt = Runtime::new("status");
    let b = Bundle::new("status", &["sh", "-c", "echo out; exit 3"]);
    let (code, out, _) = rt.run(&b);
    assert_eq!(code, 3);
    assert_eq!(out, "out\n");
    rt.assert_nothing_left(&b);
    // Killed by a signal: 128 + its number. (pid 1 cannot kill itself, so the test does.)
    let b = Bundle::new("signal", &["sleep", "100"]);
    let mut run = rt
        .cmd()
        .args(["run", "--bundle", b.path().to_str().unwrap(), &b.id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_for(|| rt
        .out(&["state", &b.id])
        .stdout
        .windows(9)
        .any(|w| w == b"\"running\"")));
    rt.ok(&["kill", &b.id, "KILL"]);
    assert_eq!(run.wait().unwrap().code(), Some(128 + 9));
    rt.assert_nothing_left(&b);
}

#[test]
fn exec_ps_pause_resume_list() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let rt = Runtime::new("exec");
    let b = Bundle::new("exec", &["sleep", "100"]);
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &b.id]);
    let out = rt.ok(&["exec", &b.id, "sh", "-c", "echo $$; hostname"]);
    // The exec'd shell is in the container's pid namespace.
    assert!(
        out.starts_with("2\n") || out.lines().next().unwrap().parse::<u32>().unwrap() < 10,
        "{out}"
    );
    assert!(out.ends_with("inspector\n"), "{out}");
    let code = rt.out(&["exec", &b.id, "sh", "-c", "exit 7"]).status.code();
    assert_eq!(code, Some(7));

    // --process, --detach and --pid-file, as containerd's shim uses them.
    let process = json!({"cwd": "/tmp", "args": ["sh", "-c", "pwd > /tmp/where; sleep 100"],
                         "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}});
    let pfile = b.path().join("process.json");
    std::fs::write(&pfile, process.to_string()).unwrap();
    let epid = b.path().join("exec.pid");
    rt.ok(&[
        "exec",
        "--process",
        pfile.to_str().unwrap(),
        "--detach",
        "--pid-file",
        epid.to_str().unwrap(),
        &b.id,
    ]);
    let epid: i32 = std::fs::read_to_string(&epid).unwrap().parse().unwrap();
    assert!(wait_for(|| std::fs::read_to_string(
        b.rootfs().join("tmp/where")
    )
    .is_ok_and(|s| s == "/tmp\n")));

    let pids: Vec<i32> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &b.id])).unwrap();
    let init = rt.state(&b.id)["pid"].as_i64().unwrap() as i32;
    assert!(pids.contains(&init) && pids.contains(&epid), "{pids:?}");
    let table = rt.ok(&["ps", &b.id]);
    assert!(table.contains("PID") && table.contains("sleep"), "{table}");

    rt.ok(&["pause", &b.id]);
    assert_eq!(rt.state(&b.id)["status"], "paused");
    let stat = std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap();
    assert!(stat.contains(") S ") || stat.contains(") D "), "{stat}");
    rt.ok(&["resume", &b.id]);
    assert_eq!(rt.state(&b.id)["status"], "running");

    let list = rt.ok(&["list", "--format", "json"]);
    let list: Vec<serde_json::Value> = serde_json::from_str(&list).unwrap();
    assert!(
        list.iter()
            .any(|s| s["id"] == b.id.as_str() && s["status"] == "running")
    );
    assert!(rt.ok(&["list"]).contains(&b.id));
    rt.ok(&["delete", "--force", &b.id]);
    rt.assert_nothing_left(&b);
}

/// Receives one fd sent with SCM_RIGHTS, and the payload that came with it.
fn recv_fd(sock: RawFd) -> (RawFd, Vec<u8>) {
    let mut data = [0u8; 4096];
    let mut cmsg = [0u8; 64];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: a zeroed msghdr pointing at live buffers.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg.as_mut_ptr().cast();
        msg.msg_controllen = cmsg.len();
        let n = libc::recvmsg(sock, &mut msg, 0);
        assert!(n > 0, "recvmsg: {}", std::io::Error::last_os_error());
        let c = libc::CMSG_FIRSTHDR(&msg);
        assert!(!c.is_null(), "no control message");
        assert_eq!((*c).cmsg_type, libc::SCM_RIGHTS);
        let fd = *(libc::CMSG_DATA(c) as *const RawFd);
        (fd, data[..n as usize].to_vec())
    }
}

#[test]
fn console_socket_gets_the_pty_master() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let rt = Runtime::new("console");
    let mut b = Bundle::new("console", &["sh", "-c", "tty; echo from-the-pty"]);
    b.config["process"]["terminal"] = json!(true);
    b.save();
    let sock_path = b.path().join("console.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    let server = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        use std::os::fd::AsRawFd;
        recv_fd(conn.as_raw_fd())
    });
    rt.ok(&[
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        "--console-socket",
        sock_path.to_str().unwrap(),
        &b.id,
    ]);
    let (fd, name) = server.join().unwrap();
    assert!(!name.is_empty(), "the fd comes with a name");
    rt.ok(&["start", &b.id]);
    // SAFETY: the fd we were sent.
    let mut master = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut text = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !String::from_utf8_lossy(&text).contains("from-the-pty") {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains("/dev/pts/") && text.contains("from-the-pty"),
        "{text}"
    );
    assert!(wait_for(|| rt.state(&b.id)["status"] == "stopped"));
    rt.ok(&["delete", &b.id]);
    rt.assert_nothing_left(&b);
}

#[test]
fn no_runtime_process_keeps_the_callers_stdio() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    // Like the shim: create's stdout is a pipe; once create exits, only the
    // container (whose stdout it is) may hold it. With the entrypoint not yet
    // started, nothing of the runtime may keep it: after killing the container,
    // the pipe must reach EOF.
    let rt = Runtime::new("stdio");
    let b = Bundle::new("stdio", &["sleep", "100"]);
    let mut child = rt
        .cmd()
        .args(["create", "--bundle", b.path().to_str().unwrap(), &b.id])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    assert!(child.wait().unwrap().success());
    rt.ok(&["delete", "--force", &b.id]);
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        stdout.read_to_end(&mut s).map(|_| s)
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while !reader.is_finished() {
        assert!(
            Instant::now() < deadline,
            "a process still holds create's stdout"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    rt.assert_nothing_left(&b);
}
