//! The security properties of `inspector-runtime`, each shown on the real kernel.

use std::{
    os::unix::process::CommandExt,
    process::Stdio,
    time::{Duration, Instant},
};

use serde_json::json;
use tests::runtime::{Bundle, Runtime, run_ok};
use tests::{Need, ready, runtime_bin};

/// CVE-2019-5736 class: a process in the container that opens /proc/PID/exe
/// of the runtime's process in the container gets a sealed memfd, not the
/// binary on the host.
#[test]
fn runtime_binary_cannot_be_overwritten_from_the_container() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let before = std::fs::read(runtime_bin()).unwrap();
    let rt = Runtime::new("exe");
    let b = Bundle::new("exe", &["sleep", "100"]);
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &b.id]);
    let pid = rt.state(&b.id)["pid"].as_i64().unwrap();
    // The container's pid 1 is still the runtime (waiting for start).
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        exe.to_string_lossy().starts_with("/memfd:"),
        "init runs from {}",
        exe.display()
    );
    let host_write = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/exe"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"overwritten"));
    assert!(host_write.is_err(), "the sealed memfd took a write");
    // From inside: an exec'd process tries through /proc/1/exe.
    let out = rt.out(&["exec", &b.id, "sh", "-c", "echo overwritten > /proc/1/exe"]);
    assert!(!out.status.success(), "writing /proc/1/exe succeeded");
    let out = rt.out(&["exec", &b.id, "sh", "-c", "echo overwritten >> /proc/1/exe"]);
    assert!(!out.status.success(), "appending to /proc/1/exe succeeded");
    rt.ok(&["delete", "--force", &b.id]);
    assert!(
        std::fs::read(runtime_bin()).unwrap() == before,
        "the runtime binary changed"
    );
    rt.assert_nothing_left(&b);
}

/// Runs `inspector-runtime run` with a host directory open (not close-on-exec) at fd 7.
fn run_with_leaked_fd(rt: &Runtime, b: &Bundle) -> std::process::Output {
    let dir = std::fs::File::open("/").unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&dir);
    let mut cmd = rt.cmd();
    cmd.args(["run", "--bundle", b.path().to_str().unwrap(), &b.id])
        .stdin(Stdio::null());
    // SAFETY: dup2 between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    drop(dir);
    out
}

/// CVE-2024-21626 class, part one: fds the caller leaves open never reach the container.
#[test]
fn no_host_fd_reaches_the_container() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let rt = Runtime::new("fds");
    let b = Bundle::new("fds", &["sh", "-c", "ls /proc/self/fd | tr '\\n' ' '"]);
    let out = run_with_leaked_fd(&rt, &b);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 0-2 and the directory ls itself opened.
    assert_eq!(text.trim(), "0 1 2 3", "fds in the container: {text}");
    rt.assert_nothing_left(&b);
}

/// CVE-2024-21626 class, part two: a working directory reached through a
/// leaked fd (outside the container's root) is refused.
#[test]
fn working_directory_outside_the_root_is_refused() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let rt = Runtime::new("cwd");
    let mut b = Bundle::new("cwd", &["sh", "-c", "ls; echo escaped"]);
    b.config["process"]["cwd"] = json!("/proc/self/fd/7");
    b.save();
    let out = run_with_leaked_fd(&rt, &b);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "ran in {stdout}");
    assert!(!stdout.contains("escaped"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("working directory"), "{err}");
    rt.assert_nothing_left(&b);
}

/// CVE-2021-30465 class: a mount destination that is a symlink pointing out
/// of the rootfs never gets the host directory mounted over or written to.
#[test]
fn symlinked_mount_target_stays_inside_the_rootfs() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let host = tests::TempDir::new("rt-symlink-target");
    for (name, link) in [
        ("abs", host.path().to_string_lossy().into_owned()),
        (
            "rel",
            format!("../../../../../../../..{}", host.path().display()),
        ),
    ] {
        let rt = Runtime::new("symlink");
        let mut b = Bundle::new("symlink", &["sh", "-c", &format!("touch /{name}/marker")]);
        std::os::unix::fs::symlink(&link, b.rootfs().join(name)).unwrap();
        b.config["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": format!("/{name}"), "type": "tmpfs", "source": "tmpfs"}));
        b.save();
        // The link is followed inside the rootfs: the run works, on a directory made there.
        let (code, out, err) = rt.run(&b);
        assert_eq!(code, 0, "{name}: {out}{err}");
        assert!(
            std::fs::read_dir(host.path()).unwrap().next().is_none(),
            "{name}: something was written to the host directory"
        );
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mountinfo.contains(&*host.path().to_string_lossy()),
            "{name}: the host directory got a mount"
        );
        rt.assert_nothing_left(&b);
    }
}

/// Masked paths read as empty, read-only paths refuse writes.
#[test]
fn masked_paths_are_masked() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    // Non-empty on the host...
    assert!(!std::fs::read("/proc/timer_list").unwrap().is_empty());
    assert!(std::fs::read_dir("/sys/firmware").unwrap().next().is_some());
    // ...and empty in the container.
    let out = run_ok(
        "masked",
        "wc -c < /proc/timer_list; ls /sys/firmware | wc -l; cat /proc/keys | wc -c; \
         echo 1 > /proc/sys/vm/drop_caches && echo wrote || echo refused",
        |_| {},
    );
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, ["0", "0", "0", "refused"], "{out}");
}

/// The state the runtime keeps is not readable through the container.
#[test]
fn create_leaves_no_runtime_process_behind_but_init() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let rt = Runtime::new("procs");
    let b = Bundle::new("procs", &["sleep", "100"]);
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &b.id]);
    let pid = rt.state(&b.id)["pid"].as_i64().unwrap() as i32;
    // Only the container's init is in its cgroup.
    let procs = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/pids/inspector-test/{}/cgroup.procs",
        b.id
    ))
    .unwrap();
    assert_eq!(procs.trim(), pid.to_string());
    rt.ok(&["delete", &b.id]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{pid}/exe")).exists() {
        assert!(Instant::now() < deadline, "init survived delete");
        std::thread::sleep(Duration::from_millis(20));
    }
    rt.assert_nothing_left(&b);
}
