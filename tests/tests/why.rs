//! Where the time went (`--why`): the critical path on cases with a known
//! answer, run for real: a hook that sleeps 200 ms, a hook that burns CPU,
//! and `docker run` traced with `--sched`.

use std::process::{Command, Output, Stdio};

use inspector::timeline::{
    Builder, ContainerTimeline, Phase, Role, reader,
    timing::{self, Timing},
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
    let t = explained_all(recording)
        .into_iter()
        .find(|t| pick(t))
        .expect("the container's timeline");
    assert!(t.why.is_some(), "nothing explained: {t:#?}");
    t
}

/// Every timeline of `recording`, explained.
fn explained_all(recording: &std::path::Path) -> Vec<ContainerTimeline> {
    let mut builder = Builder::new();
    let mut sched = Sched::default();
    let file = std::fs::File::open(recording).expect("the recording");
    reader::for_each_event(file, |e| {
        sched.push(&e);
        builder.push(e);
    })
    .unwrap();
    assert!(sched.records > 0, "no scheduler records in the recording");
    builder
        .finish()
        .into_iter()
        .map(|mut t| {
            t.why = sched.explain(&t);
            t
        })
        .collect()
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

/// What every explained start must hold: the path covers the latency, at
/// most 5 % of it unknown, every stretch the container's own chain or the
/// engine serving it, and the runs checked against the kernel's count.
fn assert_explained(t: &ContainerTimeline) {
    assert_covers(t);
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
    for s in &why.critical_path {
        let ours = t.chain.iter().any(|l| l.pid == s.pid);
        assert!(
            ours || matches!(s.role, Role::Dockerd | Role::Containerd),
            "a stretch of another process: {s:#?}"
        );
    }
    // The client waits on the engine: the path runs through dockerd. (Of
    // fifty identical `docker run`s at once, most have no client known:
    // their path starts at the shim, and the engine is on it only if the
    // network hook's wait on it is the longest.)
    if t.chain.iter().any(|l| l.role == Role::Client) {
        assert!(why.by_role.contains_key("dockerd"), "{why:#?}");
    }
    assert!(!why.on_cpu_vs_kernel.is_empty(), "{why:#?}");
}

/// Each role's runs, over many starts, measured from the switches as long
/// as the kernel counted them with what interrupts and the hypervisor took
/// from those CPUs meanwhile (within 5 %, and 10 µs a run: the kernel starts
/// a task's clock when it picks it, before the switch is seen, which shows
/// for roles of many short runs such as containerd's threads). Over many:
/// the kernel folds steal time into its clocks when it next looks, so a run
/// can be charged some of the one before it on its CPU.
fn assert_on_cpu_agrees(timelines: &[&ContainerTimeline]) {
    let mut roles: std::collections::BTreeMap<&str, [f64; 5]> = Default::default();
    for t in timelines {
        let why = t.why.as_ref().unwrap();
        for (role, c) in &why.on_cpu_vs_kernel {
            let r = roles.entry(role.as_str()).or_default();
            r[0] += c.measured_ms;
            r[1] += c.kernel_ms;
            r[2] += c.irq_steal_ms;
            r[3] += why.on_cpu_ms[role];
            r[4] += c.runs as f64;
        }
    }
    for (role, [measured, kernel, irq_steal, all, runs]) in roles {
        eprintln!(
            "{role}: {measured:.1} ms on a CPU from the switches in {runs} runs, {kernel:.1} ms \
             as the kernel counted, {irq_steal:.1} ms taken by interrupts and steal"
        );
        // A millisecond or two is a handful of runs: their sum says little.
        if measured < 5.0 {
            continue;
        }
        assert!(
            (kernel + irq_steal - measured).abs() <= 0.05 * measured + 0.010 * runs,
            "{role}: {measured} ms on a CPU from the switches in {runs} runs, {kernel} ms as \
             the kernel counted and {irq_steal} ms taken by interrupts and steal"
        );
        assert!(
            measured >= 0.9 * all,
            "{role}: only {measured} of {all} ms checked"
        );
    }
}

/// 20 `docker run --rm IMAGE true`, 10 with `--network none` and 10 on the
/// default bridge, alternating (so that the machine's drift falls on both),
/// traced with `--sched`: every start explained, the runs' on-CPU time as
/// the kernel counted it, and the bridge's netlink work found on its path;
/// `inspector diff --timing` compares two of them.
#[test]
fn twenty_docker_runs_are_explained_and_the_bridge_shows_as_netlink_work() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    let dir = TempDir::new("why-docker");
    let tracer = Tracer::start(&["--sched"]);
    let mut ids: Vec<(&str, String)> = Vec::new();
    for n in 0..20 {
        let network = if n % 2 == 0 { "none" } else { "bridge" };
        let cidfile = dir.path().join(format!("cid{n}"));
        let status = Command::new(DOCKER)
            .args(["run", "--rm", "--network", network, "--cidfile"])
            .arg(&cidfile)
            .arg(image())
            .arg("true")
            .status()
            .unwrap();
        assert!(status.success(), "docker run --network {network}");
        let id = std::fs::read_to_string(&cidfile).unwrap();
        ids.push((network, id.trim().to_string()));
    }
    let trace = tracer.stop_recording();
    assert!(trace.success, "{}", trace.stderr);
    assert!(trace.stderr.contains(", 0 lost"), "{}", trace.stderr);
    let recording = &trace.path;
    let all = explained_all(recording);
    let mut timings: [Vec<Timing>; 2] = [Vec::new(), Vec::new()];
    let mut ours = Vec::new();
    for (network, id) in &ids {
        let t = all
            .iter()
            .find(|t| &t.id == id)
            .unwrap_or_else(|| panic!("no timeline of {id}"));
        assert_explained(t);
        timings[usize::from(*network == "bridge")].push(Timing::of(t));
        ours.push(t);
    }
    assert_on_cpu_agrees(&ours);
    let [none, bridge] = timings.map(|t| Timing::median(&t));
    let table = timing::render(&timing::compare(&none, &bridge), "none", "bridge", 10);
    eprintln!("median of 10 each:\n{table}");
    // Netlink: dockerd making the veth pair and moving it into the
    // container's namespace, on the bridge's paths. (How much of the
    // bridge's extra start latency it is, the medians of 10 runs on a
    // machine this noisy cannot say: their difference moved between −11 and
    // +63 ms from one set of runs to the next.)
    let sendto = |t: &Timing| t.by_cause.get("blocked in sendto").copied().unwrap_or(0.0);
    assert!(sendto(&bridge) >= sendto(&none) + 5.0, "{table}");
    // The same, as the command line says it: one container against another.
    let side = |n: usize| format!("{}:{}", recording.display(), ids[n].1);
    let out = Command::new(inspector_bin())
        .args(["diff", "--timing", &side(0), &side(1)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("A = ") && text.contains(": 1 container"),
        "{text}"
    );
    for row in ["start latency", "phase create", "role dockerd", "cause "] {
        assert!(
            text.lines().any(|l| l.starts_with(row)),
            "no {row:?} in\n{text}"
        );
    }
}

/// 50 `docker run`s at once, traced with `--sched`: nothing lost, and each
/// container's path its own: the engine's threads serve them all, but a
/// path never goes into another container's shim, runtime or processes.
#[test]
fn fifty_concurrent_docker_runs_keep_their_own_paths() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    let tracer = Tracer::start(&["--sched"]);
    let runs: Vec<_> = (0..50)
        .map(|_| {
            Command::new(DOCKER)
                .args(["run", "--rm"])
                .arg(image())
                .arg("true")
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut run in runs {
        assert!(run.wait().unwrap().success(), "a docker run failed");
    }
    let trace = tracer.stop_recording();
    assert!(trace.success, "{}", trace.stderr);
    assert!(trace.stderr.contains(", 0 lost"), "{}", trace.stderr);
    let all = explained_all(&trace.path);
    assert_eq!(all.len(), 50, "one timeline per container");
    for t in &all {
        assert_explained(t);
        let why = t.why.as_ref().unwrap();
        for s in why.critical_path.iter().chain(&why.teardown_path) {
            let theirs: Vec<&str> = all
                .iter()
                .filter(|o| o.id != t.id && o.chain.iter().any(|l| l.pid == s.pid))
                .map(|o| o.id.as_str())
                .collect();
            let ours = t.chain.iter().any(|l| l.pid == s.pid);
            assert!(
                ours || theirs.is_empty(),
                "{}'s path goes into {theirs:?}'s process: {s:#?}",
                t.id
            );
        }
    }
}
