//! `inspector timeline` and `inspector trace --timeline` on recordings of the
//! real Docker engine.

mod common;

use std::{
    collections::HashSet,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{
    DOCKER, TempDir, Tracer, docker_ready, image, inspector_bin, probe_lock, spawn_attached,
};
use inspector::{
    event::Event,
    timeline::{ContainerTimeline, Phase, Role},
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

/// `inspector timeline --format json FILE`: the timelines and the stats line.
fn timelines_of(path: &std::path::Path) -> (Vec<ContainerTimeline>, String) {
    let out = Command::new(inspector_bin())
        .args(["timeline", "--format", "json"])
        .arg(path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let timelines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (timelines, stderr)
}

fn hex_ids(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| w.len() == 64)
        .collect()
}

#[test]
fn docker_run_phases_add_up_to_the_wall_time_the_user_saw() {
    if !docker_ready() {
        return;
    }
    let _lock = probe_lock();
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
    for role in [
        Role::DockerCli,
        Role::ShimStart,
        Role::Shim,
        Role::Runtime,
        Role::RuntimeReexec,
        Role::RuntimeInit,
        Role::Hook,
        Role::Entrypoint,
    ] {
        assert!(t.chain.iter().any(|l| l.role == role), "no {role:?}");
    }
}

#[test]
fn fifty_concurrent_containers_get_fifty_separate_timelines() {
    if !docker_ready() {
        return;
    }
    let _lock = probe_lock();
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
    if !docker_ready() {
        return;
    }
    let _lock = probe_lock();
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
        stdout.contains(&format!("container {}: ", &id[..12])),
        "no complete timeline for {id}:\n{stdout}"
    );
    assert!(stdout.contains("exited 4"), "{stdout}");
    assert!(stdout.contains("entrypoint"), "{stdout}");
}

#[test]
fn malformed_input_is_an_error_with_its_line_number() {
    if !common::require(
        inspector_bin().exists(),
        "a built inspector (cargo xtask build)",
    ) {
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
    if !docker_ready() {
        return;
    }
    let _lock = probe_lock();
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
            "container {} (running before the trace began)",
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
