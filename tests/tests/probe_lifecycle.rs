//! The probe's own life: it comes up, reports what it loses, and leaves nothing
//! attached when inspector ends, however it ends.

use std::{
    os::unix::process::CommandExt as _,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use inspector::event::Body;
use tests::{
    Need, TempDir, Tracer, inspector_bin, inspector_links, probe_lock, probe_test, ready,
    settled_inspector_links, spawn_attached,
};

fn wait_for(mut cond: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn a_tiny_ring_buffer_counts_lost_events_instead_of_crashing() {
    let Some(_lock) = probe_test(&[Need::Trace]) else {
        return;
    };
    let tracer = Tracer::start(&["--all", "--buffer-size", "4096"]);
    // Stall the reader while the kernel keeps writing: the 4 KiB ring fills.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(tracer.pid() as i32, libc::SIGSTOP) };
    for _ in 0..100 {
        Command::new("/bin/true").status().unwrap();
    }
    // SAFETY: as above.
    unsafe { libc::kill(tracer.pid() as i32, libc::SIGCONT) };
    let t = tracer.stop();
    assert!(t.success, "inspector failed: {}", t.stderr);
    let lost: u64 = t
        .events
        .iter()
        .filter_map(|e| match e.body {
            Body::Lost { count, .. } => Some(count),
            _ => None,
        })
        .sum();
    assert!(
        lost > 0,
        "no lost record in the stream; stderr: {}",
        t.stderr
    );
    assert!(
        t.stderr.contains(&format!("{lost} lost")),
        "stderr does not report {lost} lost: {}",
        t.stderr
    );
    assert!(!t.events.is_empty(), "some events still made it");
}

#[test]
fn all_mode_reports_every_exec_with_argv_and_exit_code() {
    let Some(_lock) = probe_test(&[Need::Trace]) else {
        return;
    };
    let tracer = Tracer::start(&["--all"]);
    let status = Command::new("/bin/sh")
        .args(["-c", "exit 7", "inspector-test-arg"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(7));
    let t = tracer.stop();
    let exec = t
        .execs()
        .find(|(_, f, argv)| *f == "/bin/sh" && argv.iter().any(|a| a == "inspector-test-arg"))
        .unwrap_or_else(|| panic!("exec of /bin/sh missing:\n{}", t.dump()));
    assert_eq!(exec.2, ["/bin/sh", "-c", "exit 7", "inspector-test-arg"]);
    let pid = exec.0.task.as_ref().unwrap().tgid;
    assert!(
        t.events
            .iter()
            .any(|e| e.task.as_ref().is_some_and(|p| p.tgid == pid)
                && matches!(
                    e.body,
                    Body::Exit {
                        exit_code: Some(7),
                        ..
                    }
                )),
        "exit 7 missing:\n{}",
        t.dump()
    );
}

#[test]
fn failed_execs_report_their_errno() {
    let Some(_lock) = probe_test(&[Need::Trace]) else {
        return;
    };
    let tracer = Tracer::start(&["--all"]);
    let _ = Command::new("/bin/sh")
        .args(["-c", "/nonexistent/inspector-test 2>/dev/null; exit 0"])
        .status()
        .unwrap();
    let t = tracer.stop();
    assert!(
        t.events.iter().any(|e| matches!(&e.body,
            Body::Exec { filename, ret, errno: Some(errno), .. }
                if filename == "/nonexistent/inspector-test" && *ret == -2 && errno == "ENOENT")),
        "failed exec missing:\n{}",
        t.dump()
    );
}

fn stop_with(signal: i32) {
    let before = settled_inspector_links();
    let dir = TempDir::new("detach");
    let mut child = Command::new(inspector_bin())
        .env("INSPECTOR_KEEP_PROBE", tests::KEEP)
        .args(["trace", "--output"])
        .arg(dir.path().join("out"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(|| inspector_links() > before, "the probes to attach");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, signal) };
    let status = child.wait().unwrap();
    if signal != libc::SIGKILL {
        assert!(
            status.success(),
            "inspector should exit cleanly on {signal}: {status}"
        );
    }
    tests::assert_no_links_left(before);
}

#[test]
fn probes_detach_on_sigint_sigterm_and_sigkill() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::Bpftool]) else {
        return;
    };
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGKILL] {
        stop_with(signal);
    }
}

#[test]
fn duration_stops_the_trace_by_itself() {
    let Some(_lock) = probe_test(&[Need::Trace]) else {
        return;
    };
    let started = Instant::now();
    let out = Command::new(inspector_bin())
        .args(["trace", "--duration", "0.5", "--output", "/dev/null"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("probes attached in"), "{stderr}");
    assert!(stderr.contains("0 lost"), "{stderr}");
}

/// inspector's stderr around the exec of a command named `insp-logtest`, a
/// name it is told to follow.
fn stderr_around_a_followed_exec(extra: &[&str]) -> String {
    let dir = TempDir::new("log");
    let marked = dir.path().join("insp-logtest");
    std::fs::copy("/bin/true", &marked).unwrap();
    let (mut child, mut stderr) = spawn_attached(
        Command::new(inspector_bin())
            .args(["trace", "--output", "/dev/null", "--duration", "3"])
            .args(["--track-comm", "insp-logtest"])
            .args(extra)
            .stdout(Stdio::null()),
    );
    assert!(Command::new(&marked).status().unwrap().success());
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
    assert!(child.wait().unwrap().success(), "{text}");
    text
}

#[test]
fn log_level_shows_the_probes_own_log() {
    let Some(_lock) = probe_test(&[Need::Trace]) else {
        return;
    };
    let stderr = stderr_around_a_followed_exec(&["--log-level", "debug"]);
    assert!(
        stderr.contains("it exec'd a tracked command"),
        "the probe's log line is missing: {stderr}"
    );
}

#[test]
fn the_probe_is_silent_unless_asked() {
    let Some(_lock) = probe_test(&[Need::Trace]) else {
        return;
    };
    let stderr = stderr_around_a_followed_exec(&[]);
    assert!(!stderr.contains("tracked command"), "{stderr}");
}

/// `inspector trace` for a moment, keeping its probe `keep` seconds after.
fn short_trace(keep: &str) -> String {
    let out = Command::new(inspector_bin())
        .env("INSPECTOR_KEEP_PROBE", keep)
        .args(["trace", "--duration", "0.2", "--output", "/dev/null"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

#[test]
fn the_next_run_takes_over_a_finished_run_s_probe_which_is_let_go_after_its_keep_time() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::Bpftool]) else {
        return;
    };
    let before = settled_inspector_links();
    short_trace("5");
    assert_eq!(
        tests::keepers().len(),
        1,
        "a keeper holds the finished run's links"
    );
    assert!(
        inspector_links() > before,
        "the links stay attached meanwhile"
    );
    let second = short_trace("0.5");
    assert!(
        second.contains("kept attached by an earlier run"),
        "the second run did not take the links over: {second}"
    );
    // The first keeper handed them over and left; the second lets go soon.
    tests::assert_no_links_left(before);
    // The programs stay loaded, attached to nothing, for the next run.
    assert!(
        std::fs::read_dir("/sys/fs/bpf/inspector").is_ok_and(|mut d| d.next().is_some()),
        "no pinned probe in /sys/fs/bpf/inspector"
    );
}

#[test]
fn unload_detaches_and_unloads_everything_inspector_kept() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::Bpftool]) else {
        return;
    };
    let before = settled_inspector_links();
    short_trace("60");
    assert!(!tests::keepers().is_empty());
    let out = Command::new(inspector_bin())
        .arg("unload")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("unloaded"), "{stderr}");
    assert!(tests::keepers().is_empty(), "the keeper is still there");
    assert!(inspector_links() <= before, "links stayed attached");
    assert!(
        !std::path::Path::new("/sys/fs/bpf/inspector").exists(),
        "pins stayed in /sys/fs/bpf/inspector"
    );
    // The kernel frees unpinned programs asynchronously.
    wait_for(
        || tests::inspector_programs() == 0,
        "inspector's programs to be unloaded",
    );
}

#[test]
fn two_inspectors_at_once_each_see_every_event() {
    let Some(_lock) = probe_test(&[Need::Trace]) else {
        return;
    };
    let dir = TempDir::new("concurrent");
    let marked = dir.path().join("insp-both");
    std::fs::copy("/bin/true", &marked).unwrap();
    let follow = ["--track-comm", "insp-both"];
    // The first holds the kept probe; the second loads one of its own.
    let first = Tracer::start(&follow);
    let second = Tracer::start(&follow);
    assert!(Command::new(&marked).status().unwrap().success());
    for t in [second.stop(), first.stop()] {
        assert!(t.success, "{}", t.stderr);
        let execs = t
            .execs()
            .filter(|(_, f, _)| Some(*f) == marked.to_str())
            .count();
        assert_eq!(
            execs,
            1,
            "exec of {marked:?} seen {execs} times:\n{}",
            t.dump()
        );
    }
}

#[test]
fn back_to_back_runs_report_each_event_once_and_nothing_of_the_run_before() {
    let Some(_lock) = probe_test(&[Need::Trace]) else {
        return;
    };
    let dir = TempDir::new("backtoback");
    let marked = dir.path().join("insp-once");
    std::fs::copy("/bin/true", &marked).unwrap();
    let follow = ["--track-comm", "insp-once"];
    for round in 0..3 {
        let t = Tracer::start(&follow);
        assert!(
            Command::new(&marked)
                .arg(format!("round-{round}"))
                .status()
                .unwrap()
                .success()
        );
        let t = t.stop();
        assert!(t.success, "{}", t.stderr);
        let rounds: Vec<&str> = t
            .execs()
            .filter(|(_, f, _)| Some(*f) == marked.to_str())
            .map(|(_, _, argv)| argv[1].as_str())
            .collect();
        assert_eq!(
            rounds,
            [format!("round-{round}")],
            "round {round}:\n{}",
            t.dump()
        );
    }
}

/// The key of the probe a running keeper holds (its `--key` argument).
fn keeper_key() -> String {
    let pid = tests::keepers()[0];
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let at = args.iter().position(|a| a == "--key").expect("--key");
    args[at + 1].clone()
}

#[test]
fn another_user_cannot_take_the_kept_probe_s_links() {
    if !ready(&[Need::Trace, Need::Bpftool])
        || !tests::require(
            Command::new("python3").arg("-V").output().is_ok(),
            "python3 (to connect as another user)",
        )
    {
        return;
    }
    let _lock = probe_lock();
    let before = settled_inspector_links();
    short_trace("20");
    let key = keeper_key();
    // As nobody: ask the keeper for its descriptors, as a run would. Its
    // socket is in root's 0700 /run/inspector/probe: refused outright; were
    // it reachable, the keeper checks who asks (SO_PEERCRED).
    let script = format!(
        "import socket\n\
         s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n\
         try:\n    s.connect('/run/inspector/probe/{key}.sock')\n\
         except PermissionError:\n    print('refused')\n    raise SystemExit\n\
         s.sendall(b'a')\n\
         s.settimeout(3)\n\
         try:\n    msg, fds, flags, addr = socket.recv_fds(s, 1, 64)\n\
         except Exception:\n    fds = []\n\
         print(len(fds))\n"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        ["refused", "0"].contains(&said.trim()),
        "another user received descriptors from the keeper: {said}"
    );
    // The keeper is still there for inspector's next run.
    let next = short_trace(tests::KEEP);
    assert!(next.contains("kept attached by an earlier run"), "{next}");
    tests::assert_no_links_left(before);
}

#[test]
fn a_run_while_the_keeper_lets_go_takes_what_is_still_attached_and_sees_everything() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::Bpftool]) else {
        return;
    };
    let before = settled_inspector_links();
    let dir = TempDir::new("lettinggo");
    let marked = dir.path().join("insp-part");
    std::fs::copy("/bin/true", &marked).unwrap();
    let follow = ["--track-comm", "insp-part"];
    let first = Command::new(inspector_bin())
        .env("INSPECTOR_KEEP_PROBE", "0.1")
        .args(["trace", "--duration", "0.2", "--output", "/dev/null"])
        .args(follow)
        .output()
        .unwrap();
    assert!(first.status.success());
    // Its keeper's time is up: it is letting the links go, one by one, which
    // the kernel does not finish at once.
    std::thread::sleep(Duration::from_millis(500));
    let t = Tracer::start(&follow);
    assert!(Command::new(&marked).status().unwrap().success());
    let t = t.stop();
    assert!(t.success, "{}", t.stderr);
    // Not a probe of its own: the links still attached were taken over, the
    // others attached again (or, on a quick machine, all of them).
    assert!(
        t.stderr.contains("by an earlier run"),
        "the run loaded a probe of its own: {}",
        t.stderr
    );
    let (exec, _, _) = t
        .execs()
        .find(|(_, f, _)| Some(*f) == marked.to_str())
        .unwrap_or_else(|| panic!("exec of {marked:?} missing:\n{}", t.dump()));
    let pid = exec.task.as_ref().unwrap().tgid;
    assert!(t.exited_with(pid, 0), "its exit is missing:\n{}", t.dump());
    tests::assert_no_links_left(before);
}
