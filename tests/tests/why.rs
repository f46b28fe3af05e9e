//! Where the time went (`--why`): the critical path on cases with a known
//! answer, run for real: a hook that sleeps 200 ms, a hook that burns CPU,
//! and `docker run` traced with `--sched`.

use std::process::{Command, Output, Stdio};

use inspector::timeline::{
    Builder, ContainerTimeline, Phase, Role, reader,
    why::{Sched, State},
};
use serde_json::json;
use tests::{DOCKER, Need, TempDir, Tracer, image, inspector_bin, probe_test, runtime::Bundle};

/// `inspector run --why --brief --export FILE --bundle` of a busybox bundle
/// whose createRuntime hook is `hook`: its output and its explained timeline.
fn run_with_hook(name: &str, hook: serde_json::Value) -> (Output, ContainerTimeline) {
    let mut b = Bundle::new(name, &["true"]);
    b.config["hooks"] = json!({ "createRuntime": [hook] });
    b.save();
    let dir = TempDir::new(&format!("why-{name}"));
    let recording = dir.path().join("run.jsonl");
    let out = Command::new(inspector_bin())
        .env("INSPECTOR_KEEP_PROBE", tests::KEEP)
        .args(["run", "--why", "--brief", "--name", &b.id, "--export"])
        .arg(&recording)
        .arg("--bundle")
        .arg(b.path())
        .stdin(Stdio::null())
        .output()
        .expect("start inspector run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("  where the time went: start "), "{stderr}");
    let t = explained(&recording, |t| t.id == b.id);
    (out, t)
}

/// The timeline `pick` chooses in `recording`, with where its time went.
fn explained(
    recording: &std::path::Path,
    pick: impl Fn(&ContainerTimeline) -> bool,
) -> ContainerTimeline {
    let mut builder = Builder::new();
    let mut sched = Sched::default();
    let file = std::fs::File::open(recording).expect("the recording");
    reader::for_each_event(file, |e| {
        sched.push(&e);
        builder.push(e);
    })
    .unwrap();
    assert!(sched.records > 0, "no scheduler records in the recording");
    let mut t = builder
        .finish()
        .into_iter()
        .find(|t| pick(t))
        .expect("the container's timeline");
    t.why = sched.explain(&t);
    assert!(t.why.is_some(), "nothing explained: {t:#?}");
    t
}

/// The path covers the start exactly: its segments add up to the latency.
fn assert_covers(t: &ContainerTimeline) {
    let why = t.why.as_ref().unwrap();
    let sum: f64 = why.critical_path.iter().map(|s| s.dur_ms).sum();
    assert!(
        (sum - why.start_latency_ms).abs() <= why.start_latency_ms * 0.02 + 0.01,
        "segments {sum} ms, latency {} ms",
        why.start_latency_ms
    );
}

#[test]
fn a_hook_sleeping_200_ms_is_200_ms_blocked_in_the_hook_during_create() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::BundledRuntime]) else {
        return;
    };
    let (_, t) = run_with_hook(
        "sleep-hook",
        json!({"path": "/bin/sleep", "args": ["sleep", "0.2"]}),
    );
    assert_covers(&t);
    let why = t.why.as_ref().unwrap();
    let asleep: Vec<_> = why
        .critical_path
        .iter()
        .filter(|s| s.role == Role::Hook && s.state == State::Blocked)
        .collect();
    let ms: f64 = asleep.iter().map(|s| s.dur_ms).sum();
    assert!(
        (190.0..=215.0).contains(&ms),
        "{ms} ms asleep in the hook: {why:#?}"
    );
    assert!(
        asleep.iter().all(|s| s.cause.contains("nanosleep")),
        "the syscall the hook sleeps in: {asleep:#?}"
    );
    let create = t.phases.iter().find(|p| p.phase == Phase::Create).unwrap();
    let create_ms = (
        (create.start_ns - t.start_ns) as f64 / 1e6,
        (create.end_ns - t.start_ns) as f64 / 1e6,
    );
    assert!(
        asleep
            .iter()
            .all(|s| s.start_ms >= create_ms.0 && s.start_ms + s.dur_ms <= create_ms.1 + 0.01),
        "inside create {create_ms:?}: {asleep:#?}"
    );
}

#[test]
fn a_hook_burning_cpu_is_running_in_the_hook() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::BundledRuntime]) else {
        return;
    };
    let (_, t) = run_with_hook(
        "cpu-hook",
        json!({"path": "/bin/sh", "args": ["sh", "-c", "i=0; while [ $i -lt 150000 ]; do i=$((i+1)); done"]}),
    );
    assert_covers(&t);
    let why = t.why.as_ref().unwrap();
    let hook = |state: State| -> f64 {
        why.critical_path
            .iter()
            .filter(|s| s.role == Role::Hook && s.state == state)
            .map(|s| s.dur_ms)
            .sum()
    };
    let (running, all) = (
        hook(State::Running),
        hook(State::Running) + hook(State::Runnable) + hook(State::Blocked),
    );
    assert!(
        running >= 30.0,
        "{running} ms running in the hook: {why:#?}"
    );
    assert!(running >= 0.8 * all, "{running} of {all} ms: {why:#?}");
    assert!(
        why.on_cpu_ms
            .get("hook")
            .is_some_and(|&ms| ms >= running * 0.95),
        "the hook's on-CPU time holds its path's: {why:#?}"
    );
}

#[test]
fn docker_run_s_path_covers_its_start_through_its_own_chain() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    let dir = TempDir::new("why-docker");
    let cidfile = dir.path().join("cid");
    let tracer = Tracer::start(&["--sched"]);
    let status = Command::new(DOCKER)
        .args(["run", "--rm", "--cidfile"])
        .arg(&cidfile)
        .arg(image())
        .arg("true")
        .status()
        .unwrap();
    let trace = tracer.stop();
    assert!(status.success());
    assert!(trace.success, "{}", trace.stderr);
    let id = std::fs::read_to_string(&cidfile)
        .unwrap()
        .trim()
        .to_string();
    let recording = dir.path().join("run.jsonl");
    let lines: Vec<String> = trace
        .events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    std::fs::write(&recording, lines.join("\n") + "\n").unwrap();
    let t = explained(&recording, |t| t.id == id);
    assert_covers(&t);
    let why = t.why.as_ref().unwrap();
    let unknown: f64 = why
        .critical_path
        .iter()
        .filter(|s| s.state == State::Unknown)
        .map(|s| s.dur_ms)
        .sum();
    assert!(
        unknown <= why.start_latency_ms * 0.05,
        "{unknown} of {} ms unknown: {why:#?}",
        why.start_latency_ms
    );
    // Every stretch is the container's own chain or the engine serving it.
    for s in &why.critical_path {
        let ours = t.chain.iter().any(|l| l.pid == s.pid);
        assert!(
            ours || matches!(s.role, Role::Dockerd | Role::Containerd),
            "a stretch of another process: {s:#?}"
        );
    }
    // The client waits on the engine: the path runs through dockerd.
    assert!(why.by_role.contains_key("dockerd"), "{why:#?}");
}
