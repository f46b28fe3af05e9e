//! `inspector timeline` and `inspector trace --timeline` on recordings of the
//! real Docker engine.

use std::{
    collections::HashSet,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use inspector::{
    event::Event,
    timeline::{ContainerTimeline, Phase, Role},
};
use tests::{
    DOCKER, Need, TempDir, TmuxSession, Tracer, image, inspector_bin, probe_test, ready,
    spawn_attached, timelines_of, tmux, workspace,
};

fn write_recording(dir: &TempDir, events: &[Event]) -> std::path::PathBuf {
    let path = dir.path().join("recording.jsonl");
    let text: String = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

fn hex_ids(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| w.len() == 64)
        .collect()
}

#[test]
fn docker_run_phases_add_up_to_the_wall_time_the_user_saw() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    let dir = TempDir::new("tl-one");
    let cidfile = dir.path().join("cid");
    let tracer = Tracer::start(&[]);
    let started = Instant::now();
    let status = Command::new(DOCKER)
        .args(["run", "--rm", "--cidfile"])
        .arg(&cidfile)
        .arg(image())
        .arg("true")
        .status()
        .unwrap();
    let wall = started.elapsed();
    let trace = tracer.stop();
    assert!(status.success());
    let id = std::fs::read_to_string(&cidfile)
        .unwrap()
        .trim()
        .to_string();
    let path = write_recording(&dir, &trace.events);
    let (timelines, stderr) = timelines_of(&path);
    assert!(
        stderr.contains(" 0 container events unattributed"),
        "{stderr}"
    );
    assert_eq!(timelines.len(), 1, "{stderr}");
    let t = &timelines[0];
    assert_eq!(t.id, id);
    assert!(t.complete);
    assert_eq!(t.exit_code, Some(0));
    let phases: Vec<Phase> = t.phases.iter().map(|p| p.phase).collect();
    assert_eq!(phases, Phase::ALL, "every phase, in order");
    let sum: u64 = t.phases.iter().map(|p| p.duration_ns).sum();
    let wall_ns = wall.as_nanos() as f64;
    assert!(
        (sum as f64 - wall_ns).abs() / wall_ns <= 0.05,
        "phases add up to {} ms, the user saw {} ms",
        sum as f64 / 1e6,
        wall_ns / 1e6
    );
    for role in Role::DOCKER_RUN {
        assert!(t.chain.iter().any(|l| l.role == role), "no {role:?}");
    }
}

#[test]
fn fifty_concurrent_containers_get_fifty_separate_timelines() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    const N: usize = 50;
    let dir = TempDir::new("tl-fifty");
    let tracer = Tracer::start(&[]);
    // 50 `docker run -d` at once, from as many threads.
    let runs: Vec<_> = (0..N)
        .map(|_| {
            std::thread::spawn(|| {
                let out = Command::new(DOCKER)
                    .args(["run", "-d", &image(), "true"])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8(out.stdout).unwrap().trim().to_string()
            })
        })
        .collect();
    let ids: HashSet<String> = runs.into_iter().map(|r| r.join().unwrap()).collect();
    assert_eq!(ids.len(), N);
    // Wait until all have stopped and their runtime state is deleted.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = Command::new(DOCKER)
            .args(["ps", "-q", "--no-trunc"])
            .output()
            .unwrap();
        let running = String::from_utf8_lossy(&out.stdout);
        if !running.lines().any(|l| ids.contains(l.trim())) {
            break;
        }
        assert!(Instant::now() < deadline, "containers still running");
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(2));
    let trace = tracer.stop();
    let rm = Command::new(DOCKER)
        .arg("rm")
        .args(&ids)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(rm.success());
    assert!(trace.stderr.contains(" 0 lost"), "{}", trace.stderr);

    let path = write_recording(&dir, &trace.events);
    let (timelines, stderr) = timelines_of(&path);
    assert!(
        stderr.contains(" 0 container events unattributed"),
        "{stderr}"
    );
    let seen: HashSet<String> = timelines.iter().map(|t| t.id.clone()).collect();
    assert_eq!(seen, ids, "one timeline per container, no other");
    for t in &timelines {
        assert!(t.complete, "{} incomplete", t.id);
        assert_eq!(t.exit_code, Some(0), "{}", t.id);
        for phase in [Phase::Create, Phase::Running, Phase::Stopped, Phase::Delete] {
            assert!(
                t.phases.iter().any(|p| p.phase == phase),
                "{} has no {phase:?} phase",
                t.id
            );
        }
        // No step names another container.
        for s in &t.steps {
            for other in hex_ids(&s.detail) {
                assert!(
                    other == t.id || !ids.contains(other),
                    "{}: a step of {other}: {}",
                    t.id,
                    s.detail
                );
            }
        }
        for link in &t.chain {
            for other in link.argv.iter().flat_map(|a| hex_ids(a)) {
                assert!(
                    other == t.id || !ids.contains(other),
                    "{}: process of {other}",
                    t.id
                );
            }
        }
    }
}

#[test]
fn trace_timeline_prints_each_container_as_it_ends() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    let (child, _stderr) = spawn_attached(
        Command::new(inspector_bin())
            .args(["trace", "--timeline"])
            .stdout(Stdio::piped()),
    );
    let dir = TempDir::new("tl-live");
    let cidfile = dir.path().join("cid");
    let status = Command::new(DOCKER)
        .args(["run", "--rm", "--cidfile"])
        .arg(&cidfile)
        .arg(image())
        .args(["sh", "-c", "exit 4"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(4));
    let id = std::fs::read_to_string(&cidfile)
        .unwrap()
        .trim()
        .to_string();
    std::thread::sleep(Duration::from_millis(800));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("container {} (docker, runc): ", &id[..12])),
        "no complete timeline for {id}:\n{stdout}"
    );
    assert!(stdout.contains("exited 4"), "{stdout}");
    assert!(stdout.contains("entrypoint"), "{stdout}");
}

#[test]
fn malformed_input_is_an_error_with_its_line_number() {
    if !ready(&[Need::Inspector]) {
        return;
    }
    let dir = TempDir::new("tl-bad");
    let path = dir.path().join("bad.jsonl");
    std::fs::write(&path, "\n{\"v\":1}\nnot json\n").unwrap();
    let out = Command::new(inspector_bin())
        .arg("timeline")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2"), "{stderr}");

    let missing = Command::new(inspector_bin())
        .args(["timeline", "/nonexistent/recording.jsonl"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/recording.jsonl"));
}

#[test]
fn a_container_running_before_the_trace_is_shown_with_what_can_be_known() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    let out = Command::new(DOCKER)
        .args(["run", "-d", &image(), "sleep", "3"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let traced = Command::new(inspector_bin())
        .args(["trace", "--timeline", "--duration", "7"])
        .output()
        .unwrap();
    let _ = Command::new(DOCKER).args(["rm", "-f", &id]).output();
    let stdout = String::from_utf8_lossy(&traced.stdout);
    let stderr = String::from_utf8_lossy(&traced.stderr);
    assert!(traced.status.success(), "{stderr}");
    assert!(stderr.contains("containers already running: "), "{stderr}");
    assert!(
        stdout.contains(&format!(
            "container {} (docker, runc) (running before the trace began)",
            &id[..12]
        )),
        "{stdout}"
    );
    assert!(stdout.contains("exited 0"), "{stdout}");
    assert!(stdout.contains("entrypoint"), "{stdout}");
    assert!(
        stdout.contains(&format!("runc delete {}", &id[..12])),
        "{stdout}"
    );
}

/// A real recording: `docker run --rm busybox true`, every event of it.
fn docker_run_fixture() -> String {
    std::fs::read_to_string(workspace().join("inspector/tests/fixtures/docker-run-rm-true.jsonl"))
        .unwrap()
}

/// `inspector ARGS`: (exit status, stdout, stderr, its peak RSS in KiB). A
/// crash is never an answer: no panic (101), no abort (134), no signal.
// Reaped by wait4, not `Child::wait`: wait4 also gives its own peak RSS.
#[allow(clippy::zombie_processes)]
fn inspector(args: &[&std::ffi::OsStr]) -> (i32, String, String, u64) {
    let dir =
        TempDir::new(&format!("tl-out-{:?}", std::thread::current().id()).replace(['(', ')'], ""));
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let child = Command::new(inspector_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid; wait4 on our own child, once.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(r, child.id() as i32);
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert!(
        libc::WIFEXITED(status) && ![101, 134].contains(&libc::WEXITSTATUS(status)),
        "inspector {args:?} crashed (wait status {status:#x}): {stderr}"
    );
    (
        libc::WEXITSTATUS(status),
        std::fs::read_to_string(&out).unwrap(),
        stderr,
        usage.ru_maxrss as u64,
    )
}

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

/// The fixture with its first event dated `time` and moved `shift_ns`: the
/// events after it are dated from it.
fn dated_first(time: &str, shift_ns: i64) -> String {
    let fixture = docker_run_fixture();
    let mut lines: Vec<String> = fixture.lines().map(String::from).collect();
    let mut first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    first["time"] = time.into();
    first["ktime_ns"] = (first["ktime_ns"].as_u64().unwrap() as i64 + shift_ns).into();
    lines[0] = serde_json::to_string(&first).unwrap();
    lines.join("\n") + "\n"
}

#[test]
fn a_recording_dated_before_1970_or_after_9999_is_read_by_timeline_diff_and_replay() {
    if !ready(&[Need::Inspector]) {
        return;
    }
    let dir = TempDir::new("tl-epoch");
    // The first event dated 1 s after the epoch and the next ones 5 s
    // earlier (panicked: "all times should be after the epoch"), or near
    // the end of year 9999 and the next ones 5 s later.
    let early = dir.path().join("early.jsonl");
    let late = dir.path().join("late.jsonl");
    std::fs::write(&early, dated_first("1970-01-01T00:00:01Z", 5_000_000_000)).unwrap();
    std::fs::write(
        &late,
        dated_first("9999-12-31T23:59:59.999Z", -5_000_000_000),
    )
    .unwrap();
    for path in [&early, &late] {
        let (code, stdout, stderr, _) = inspector(&[os("timeline"), path.as_os_str()]);
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.starts_with("container "), "{stdout}");
        let (code, stdout, stderr, _) =
            inspector(&[os("timeline"), os("--format"), os("json"), path.as_os_str()]);
        assert_eq!(code, 0, "{stderr}");
        let t: ContainerTimeline = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
        assert!(t.complete, "{stderr}");
    }
    let (_, stdout, _, _) = inspector(&[os("timeline"), early.as_os_str()]);
    assert!(stdout.contains("started at an unknown time"), "{stdout}");
    let (code, stdout, stderr, _) = inspector(&[os("diff"), early.as_os_str(), early.as_os_str()]);
    assert_eq!(
        code, 0,
        "a recording is the same as itself: {stdout}{stderr}"
    );
    // Moved by 10 s, the first event takes part of the engine's work out of
    // the containers' span: a difference, said as one.
    let (code, stdout, stderr, _) = inspector(&[os("diff"), early.as_os_str(), late.as_os_str()]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.starts_with("--- "), "{stdout}");
    if !ready(&[Need::Tmux]) {
        return;
    }
    for (name, path) in [("epoch", &early), ("year-9999", &late)] {
        let session =
            TmuxSession::start_with(name, 160, 40, &format!("tui --replay {}", path.display()));
        session.wait_for("the replay", Duration::from_secs(10), |s| {
            s.contains("Containers") && s.contains("REPLAY")
        });
        session.keys(&["q"]);
        assert_eq!(session.wait_exit(), 0, "{}", session.screen());
    }
}

#[test]
fn timeline_diff_and_replay_of_dev_zero_stop_at_the_line_limit_in_bounded_memory() {
    if !ready(&[Need::Inspector]) {
        return;
    }
    let fixture = workspace().join("inspector/tests/fixtures/docker-run-rm-true.jsonl");
    for args in [
        vec![os("timeline"), os("/dev/zero")],
        vec![os("diff"), os("/dev/zero"), fixture.as_os_str()],
        vec![os("diff"), fixture.as_os_str(), os("/dev/zero")],
    ] {
        let (code, _, stderr, rss_kib) = inspector(&args);
        assert_eq!(
            code,
            if args[0] == "diff" { 2 } else { 1 },
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains("line 1: longer than 1048576 bytes without a newline"),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "one error line: {stderr}");
        // A few MiB, not the gigabytes an endless line grew to.
        assert!(rss_kib < 64 * 1024, "{args:?}: peak RSS {rss_kib} KiB");
    }
    if !ready(&[Need::Tmux]) {
        return;
    }
    let session = TmuxSession::start_with("dev-zero", 160, 40, "tui --replay /dev/zero");
    assert_eq!(session.wait_exit(), 1, "{}", session.screen());
    // What it printed, wrapped lines joined, once tmux has drawn it all.
    let deadline = Instant::now() + Duration::from_secs(5);
    let said = |s: &str| s.contains("line 1: longer than 1048576 bytes without a newline");
    let mut screen = String::new();
    while !said(&screen) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        screen = tmux(&["capture-pane", "-p", "-J", "-S", "-", "-t", &session.pane()]);
    }
    assert!(said(&screen), "{screen}");
}

#[test]
fn a_replayed_docker_run_shows_thread_creations_with_their_tids_and_flags() {
    if !ready(&[Need::Tmux, Need::Inspector]) {
        return;
    }
    let fixture = workspace().join("inspector/tests/fixtures/docker-run-rm-true.jsonl");
    // What the recording holds for its thread creations: the new thread's
    // id and the clone flags.
    let tids: Vec<u64> = docker_run_fixture()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["kind"] == "fork" && e["thread"] == true)
        .inspect(|e| assert!(e["flags"].as_str().unwrap().starts_with("CLONE_VM|")))
        .map(|e| e["child_tid"].as_u64().unwrap())
        .collect();
    assert!(tids.len() > 10 && !tids.contains(&0));
    let session = TmuxSession::start_with(
        "replay-threads",
        220,
        60,
        &format!("tui --replay {}", fixture.display()),
    );
    session.wait_for("the replay", Duration::from_secs(10), |s| {
        s.contains("Containers")
    });
    session.keys(&["f"]);
    session.keys(&["-l", "kind:fork"]);
    session.keys(&["Enter"]);
    let screen = session.wait_for("thread creations", Duration::from_secs(10), |s| {
        s.contains("filter: kind:fork") && s.contains("fork thread ")
    });
    let shown: Vec<&str> = screen
        .lines()
        .filter_map(|l| l.split_once("fork thread ").map(|(_, rest)| rest))
        .collect();
    assert!(!shown.is_empty(), "{screen}");
    for rest in shown {
        let tid: u64 = rest.split(' ').next().unwrap().parse().unwrap();
        assert!(
            tids.contains(&tid),
            "thread {tid} is not the recording's: {screen}"
        );
        assert!(rest.contains(" (CLONE_VM|"), "no flags: {rest}");
    }
    assert!(!screen.contains("fork thread 0"), "{screen}");
    session.keys(&["q"]);
    assert_eq!(session.wait_exit(), 0);
}

#[test]
fn concatenated_or_shuffled_recordings_are_warned_with_counts() {
    if !ready(&[Need::Inspector]) {
        return;
    }
    let dir = TempDir::new("tl-order");
    let fixture = docker_run_fixture();
    let n = fixture.lines().count();
    let twice = dir.path().join("twice.jsonl");
    std::fs::write(&twice, format!("{fixture}{fixture}")).unwrap();
    let expected = format!(
        "events out of time order (largest step back 613.6 ms at line {}), {n} events \
         recorded twice: is this two recordings concatenated",
        n + 1
    );
    let (code, _, stderr, _) = inspector(&[os("timeline"), os("--brief"), twice.as_os_str()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains(&expected), "{stderr}");
    // diff says it the same way, naming the file.
    let (_, _, stderr, _) = inspector(&[os("diff"), twice.as_os_str(), twice.as_os_str()]);
    assert!(
        stderr.contains(&format!("{}: warning: ", twice.display())) && stderr.contains(&expected),
        "{stderr}"
    );
    // A shuffled recording: every other line moved to the end.
    let lines: Vec<&str> = fixture.lines().collect();
    let shuffled: Vec<&str> = lines
        .iter()
        .step_by(2)
        .chain(lines.iter().skip(1).step_by(2))
        .copied()
        .collect();
    let path = dir.path().join("shuffled.jsonl");
    std::fs::write(&path, shuffled.join("\n") + "\n").unwrap();
    let (code, _, stderr, _) = inspector(&[os("timeline"), path.as_os_str()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("events out of time order (largest step back "),
        "{stderr}"
    );
    assert!(!stderr.contains("recorded twice"), "{stderr}");
    // The recording as it was has nothing to warn of.
    let original = dir.path().join("original.jsonl");
    std::fs::write(&original, &fixture).unwrap();
    let (_, _, stderr, _) = inspector(&[os("timeline"), original.as_os_str()]);
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn diff_of_a_cut_recording_warns_as_timeline_does_and_lost_counts_saturate() {
    if !ready(&[Need::Inspector]) {
        return;
    }
    let dir = TempDir::new("tl-cut");
    let fixture = docker_run_fixture();
    let cut = dir.path().join("cut.jsonl");
    let n = fixture.lines().count();
    // The recorder killed in the middle of its last line.
    std::fs::write(&cut, &fixture[..fixture.len() - 40]).unwrap();
    let said = format!("line {n} is cut short (the recording was interrupted); skipped it");
    let (code, _, stderr, _) = inspector(&[os("timeline"), os("--brief"), cut.as_os_str()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains(&format!("inspector: {said}")), "{stderr}");
    let full = dir.path().join("full.jsonl");
    std::fs::write(&full, &fixture).unwrap();
    let (_, _, stderr, _) = inspector(&[os("diff"), full.as_os_str(), cut.as_os_str()]);
    assert!(
        stderr.contains(&format!("inspector: {}: {said}", cut.display())),
        "{stderr}"
    );
    // Two `lost` records whose counts add up past u64::MAX.
    let lost = |count: u64| {
        format!(r#"{{"v":1,"ktime_ns":1,"time":"","kind":"lost","count":{count},"total":{count}}}"#)
    };
    let path = dir.path().join("lost.jsonl");
    std::fs::write(&path, format!("{fixture}{}\n{}\n", lost(u64::MAX), lost(1))).unwrap();
    let (code, stdout, stderr, _) = inspector(&[os("timeline"), os("--brief"), path.as_os_str()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!("the recording lost {} events", u64::MAX)),
        "{stderr}"
    );
    assert!(stdout.contains("(incomplete)"), "{stdout}");
}
