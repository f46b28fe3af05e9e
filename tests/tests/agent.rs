//! `inspector agent` as a fleet runs it, against the real things: Docker
//! starting containers, Debian's Prometheus scraping `/metrics`, an OTLP/HTTP
//! receiver decoding with the official protobuf definitions, log rotation's
//! SIGHUP, a SIGTERM from systemd or the kubelet, and 2,000 starts in a row.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use tests::{
    DOCKER, Need, TempDir,
    fleet::{
        Agent, Prometheus, Receiver, attr, free_port, otlp_receiver_ready, prometheus_ready,
        read_lines, sample_sum, wait_for,
    },
    image, inspector_bin, probe_test, ready,
};

/// `docker run --rm IMAGE ARGS...`, which must do what `ok` says.
fn docker_run(args: &[&str], ok: bool) {
    let out = Command::new(DOCKER)
        .args(["run", "--rm", &image()])
        .args(args)
        .output()
        .expect("docker run");
    assert_eq!(
        out.status.success(),
        ok,
        "docker run {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn loopback(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// `kernel.bpf_stats_enabled` on until dropped, then as it was.
struct BpfStatsOn(String);

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

impl BpfStatsOn {
    fn new() -> Self {
        let was = std::fs::read_to_string(BPF_STATS).expect("kernel.bpf_stats_enabled");
        std::fs::write(BPF_STATS, "1").expect("turning kernel.bpf_stats_enabled on");
        BpfStatsOn(was)
    }
}

impl Drop for BpfStatsOn {
    fn drop(&mut self) {
        let _ = std::fs::write(BPF_STATS, self.0.trim());
    }
}

#[test]
fn prometheus_scrapes_each_start_its_latency_and_a_failed_start() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    if !prometheus_ready() {
        return;
    }
    // The agent samples the kernel's run-time statistics 2 s a minute; with
    // the sysctl on, as an administrator may leave it, they are on throughout.
    let _stats = BpfStatsOn::new();
    let metrics = loopback(free_port());
    let agent = Agent::start(&["--metrics", &metrics]);
    let prometheus = Prometheus::start(metrics.parse().unwrap());
    const N: usize = 5;
    for i in 0..N {
        docker_run(&["sh", "-c", &format!("exit 0 # {i}")], true);
    }
    docker_run(&["/no/such/entrypoint"], false);

    // What Prometheus stored, through its query API, once it scraped.
    let want = [
        (
            r#"sum(inspector_containers_started_total{engine="docker",runtime="runc"})"#,
            N as f64,
        ),
        (
            r#"sum(inspector_container_start_latency_seconds_count{engine="docker"})"#,
            N as f64,
        ),
        (
            r#"sum(inspector_container_start_failures_total{engine="docker",role="runtime-init"})"#,
            1.0,
        ),
        (
            r#"sum(inspector_container_phase_duration_seconds_count{phase="create"})"#,
            N as f64 + 1.0,
        ),
        ("sum(inspector_events_lost_total)", 0.0),
    ];
    let seen = wait_for(Duration::from_secs(30), || {
        let got: Vec<Option<f64>> = want.iter().map(|(q, _)| prometheus.query(q)).collect();
        want.iter()
            .zip(&got)
            .all(|((_, w), g)| *g == Some(*w))
            .then_some(())
            .ok_or(got)
            .ok()
    });
    if seen.is_none() {
        let got: Vec<_> = want.iter().map(|(q, _)| (q, prometheus.query(q))).collect();
        panic!(
            "Prometheus has {got:?}, wants {want:?}\nthe agent serves:\n{}\nits stderr:\n{}\nprometheus:\n{}",
            agent.scrape(),
            agent.stderr(),
            prometheus.log()
        );
    }
    // The probe's own cost is there, and no label names a container.
    let page = agent.scrape();
    assert!(
        sample_sum(&page, "inspector_probe_runs_total", &[]) > 0.0,
        "{page}"
    );
    assert!(
        sample_sum(&page, "inspector_probe_run_time_seconds_total", &[]) > 0.0,
        "{page}"
    );
    assert!(
        sample_sum(&page, "inspector_probe_stats_seconds_total", &[]) > 0.0,
        "{page}"
    );
    assert!(page.contains("inspector_build_info{"), "{page}");
    for line in page
        .lines()
        .filter(|l| !l.starts_with("inspector_build_info"))
    {
        let id_like = line
            .split('"')
            .any(|value| value.len() >= 12 && value.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!id_like, "a label value that looks like an id: {line}");
    }
}

#[test]
fn otlp_gets_one_trace_per_container_with_the_timeline_s_phases() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    if !otlp_receiver_ready() {
        return;
    }
    let receiver = Receiver::start(free_port());
    let dir = TempDir::new("agent-otlp");
    let output = dir.path().join("containers.jsonl");
    let agent = Agent::start(&[
        "--otlp-endpoint",
        &receiver.url(),
        "--output",
        output.to_str().unwrap(),
    ]);
    const N: usize = 3;
    for i in 0..N {
        docker_run(&["sh", "-c", &format!("exit 0 # {i}")], true);
    }
    let timelines = wait_for(Duration::from_secs(20), || {
        let t = read_lines(&output);
        (t.len() >= N).then_some(t)
    })
    .unwrap_or_else(|| panic!("the agent wrote no {N} timelines:\n{}", agent.stderr()));
    let spans = wait_for(Duration::from_secs(20), || {
        let spans = receiver.spans();
        let roots = spans.iter().filter(|s| s["name"] == "container").count();
        (roots >= N).then_some(spans)
    })
    .unwrap_or_else(|| panic!("the receiver got no {N} traces:\n{}", agent.stderr()));

    let requests = receiver.requests();
    let resource = &requests[0]["resourceSpans"][0]["resource"];
    assert!(
        resource.to_string().contains("host.name"),
        "no host in the resource: {resource}"
    );
    let ns = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<u64>().ok()).unwrap();
    for t in &timelines {
        let id = t["id"].as_str().unwrap();
        let roots: Vec<_> = spans
            .iter()
            .filter(|s| s["name"] == "container" && attr(s, "container.id").as_deref() == Some(id))
            .collect();
        assert_eq!(roots.len(), 1, "one trace for container {id}");
        let root = roots[0];
        assert_eq!(attr(root, "container.runtime").as_deref(), Some("runc"));
        assert_eq!(attr(root, "container.engine").as_deref(), Some("docker"));
        assert_eq!(attr(root, "container.image.name"), Some(image()));
        assert_eq!(attr(root, "process.exit.code").as_deref(), Some("0"));
        let trace: Vec<_> = spans
            .iter()
            .filter(|s| s["traceId"] == root["traceId"])
            .collect();
        // A span per phase under the root, as long as the timeline's phase.
        for p in t["phases"].as_array().unwrap() {
            let name = p["phase"].as_str().unwrap();
            let span = trace
                .iter()
                .find(|s| {
                    s["parentSpanId"] == root["spanId"]
                        && attr(s, "inspector.phase").as_deref() == Some(name)
                })
                .unwrap_or_else(|| panic!("no span for phase {name} of {id}"));
            let took = ns(&span["endTimeUnixNano"]) - ns(&span["startTimeUnixNano"]);
            let want = p["duration_ns"].as_u64().unwrap();
            assert!(
                took.abs_diff(want) <= 1_000_000,
                "phase {name}: span {took} ns, timeline {want} ns"
            );
        }
        // A span per process, the runtime's init with its steps as events.
        let chain = t["chain"].as_array().unwrap().len();
        assert_eq!(
            trace.len(),
            1 + t["phases"].as_array().unwrap().len() + chain
        );
        let entrypoint = trace
            .iter()
            .find(|s| s["name"] == "entrypoint")
            .expect("an entrypoint span");
        assert!(
            entrypoint["events"].to_string().contains("pivot_root"),
            "{entrypoint}"
        );
    }
}

#[test]
fn with_the_receiver_down_nothing_blocks_and_export_resumes() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    if !otlp_receiver_ready() {
        return;
    }
    let port = free_port();
    let metrics = loopback(free_port());
    let agent = Agent::start(&[
        "--metrics",
        &metrics,
        "--otlp-endpoint",
        &format!("http://127.0.0.1:{port}/v1/traces"),
    ]);
    let down = Instant::now();
    for _ in 0..3 {
        docker_run(&["true"], true);
    }
    let started = |a: &Agent| a.value("inspector_containers_started_total", &[]);
    // The reader goes on while the sender retries: every start is counted.
    assert!(
        wait_for(Duration::from_secs(5), || (started(&agent) == 3.0)
            .then_some(()))
        .is_some(),
        "{}",
        agent.scrape()
    );
    std::thread::sleep(Duration::from_secs(10).saturating_sub(down.elapsed()));
    assert!(
        agent.value("inspector_otlp_errors_total", &[]) > 0.0,
        "{}",
        agent.scrape()
    );

    let receiver = Receiver::start(port);
    for _ in 0..2 {
        docker_run(&["true"], true);
    }
    // Every trace is accounted for: sent, or dropped and counted.
    let (sent, dropped) = wait_for(Duration::from_secs(30), || {
        let page = agent.scrape();
        let sent = sample_sum(&page, "inspector_otlp_traces_total", &["outcome=\"sent\""]);
        let dropped = sample_sum(
            &page,
            "inspector_otlp_traces_total",
            &["outcome=\"dropped\""],
        );
        (sent + dropped == 5.0 && sent >= 2.0).then_some((sent, dropped))
    })
    .unwrap_or_else(|| panic!("{}\n{}", agent.scrape(), agent.stderr()));
    let roots = receiver
        .spans()
        .iter()
        .filter(|s| s["name"] == "container")
        .count();
    assert_eq!(roots as f64, sent, "dropped {dropped}");
    assert!(
        agent.stderr().contains("OTLP: cannot send yet"),
        "{}",
        agent.stderr()
    );
}

#[test]
fn sighup_reopens_the_output_and_sigterm_stops_within_a_second() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    let dir = TempDir::new("agent-rotate");
    let output = dir.path().join("containers.jsonl");
    let rotated = dir.path().join("containers.jsonl.1");
    let agent = Agent::start(&["--output", output.to_str().unwrap()]);
    docker_run(&["true"], true);
    assert!(
        wait_for(Duration::from_secs(10), || (read_lines(&output).len() == 1)
            .then_some(()))
        .is_some(),
        "{}",
        agent.stderr()
    );
    // What logrotate does: move the file away, then HUP.
    std::fs::rename(&output, &rotated).unwrap();
    agent.signal(libc::SIGHUP);
    assert!(
        wait_for(Duration::from_secs(5), || agent
            .stderr()
            .contains("reopened")
            .then_some(()))
        .is_some(),
        "{}",
        agent.stderr()
    );
    docker_run(&["true"], true);
    assert!(
        wait_for(Duration::from_secs(10), || (read_lines(&output).len() == 1)
            .then_some(()))
        .is_some(),
        "{}",
        agent.stderr()
    );
    assert_eq!(read_lines(&rotated).len(), 1);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&output).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "readable by others");

    let (took, ok, stderr) = agent.stop();
    assert!(ok, "{stderr}");
    assert!(
        took < Duration::from_secs(1),
        "stopped in {took:?}\n{stderr}"
    );
}

#[test]
fn what_the_agent_cannot_do_is_refused_before_the_probe_loads() {
    if !ready(&[Need::Inspector]) {
        return;
    }
    let dir = TempDir::new("agent-refused");
    let link = dir.path().join("out.jsonl");
    std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let cases: [(&[&str], &str); 5] = [
        (&[], "nothing to export to"),
        (
            &["--otlp-endpoint", "https://collector:4318/v1/traces"],
            "plain HTTP",
        ),
        (&["--otlp-endpoint", "collector:4318"], "http://"),
        (&["--metrics", &port], &port),
        (&["--output", link.to_str().unwrap()], "symbolic link"),
    ];
    for (args, says) in cases {
        let out = Command::new(inspector_bin())
            .arg("agent")
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("probes attached"), "{args:?}: {stderr}");
    }
    assert_eq!(
        std::fs::read_link(&link).unwrap().to_str(),
        Some("/etc/passwd")
    );
}

/// 2,000 starts, 10 at a time, with every exporter on: the agent's memory
/// follows the containers alive, not how many it has seen.
#[test]
fn two_thousand_starts_keep_the_agent_s_memory_flat() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    if !otlp_receiver_ready() {
        return;
    }
    let receiver = Receiver::start(free_port());
    let dir = TempDir::new("agent-soak");
    let output = dir.path().join("containers.jsonl");
    let metrics = loopback(free_port());
    let agent = Agent::start(&[
        "--metrics",
        &metrics,
        "--otlp-endpoint",
        &receiver.url(),
        "--output",
        output.to_str().unwrap(),
    ]);
    const ROUNDS: usize = 200;
    const AT_ONCE: usize = 10;
    let mut rss = Vec::with_capacity(ROUNDS);
    let started = Instant::now();
    for round in 0..ROUNDS {
        let runs: Vec<_> = (0..AT_ONCE)
            .map(|_| {
                Command::new(DOCKER)
                    .args(["run", "--rm", &image(), "true"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut r in runs {
            assert!(r.wait().unwrap().success(), "a docker run failed");
        }
        rss.push(agent.rss_kib());
        if round % 20 == 19 {
            eprintln!(
                "soak: {} starts in {:.0} s, agent RSS {} KiB",
                (round + 1) * AT_ONCE,
                started.elapsed().as_secs_f64(),
                rss[round]
            );
        }
    }
    let total = (ROUNDS * AT_ONCE) as f64;
    let counted = wait_for(Duration::from_secs(20), || {
        let page = agent.scrape();
        (sample_sum(&page, "inspector_containers_started_total", &[]) == total).then_some(page)
    })
    .unwrap_or_else(|| panic!("not every start counted:\n{}", agent.scrape()));
    assert_eq!(
        sample_sum(&counted, "inspector_events_lost_total", &[]),
        0.0
    );
    let quarter = ROUNDS / 4;
    let first = *rss[..quarter].iter().max().unwrap();
    let last = *rss[ROUNDS - quarter..].iter().max().unwrap();
    eprintln!("soak: agent RSS peak {first} KiB in the first quarter, {last} KiB in the last");
    assert!(
        last as f64 <= first as f64 * 1.10,
        "the agent's memory grew: {first} KiB peak in the first quarter, {last} KiB in the last \
         (every round: {rss:?})"
    );
    assert_eq!(read_lines(&output).len(), ROUNDS * AT_ONCE);
}
