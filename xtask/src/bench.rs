//! Benchmarks. Each number is measured against a baseline taken in the same run,
//! alternating the two (A B A B) because these machines are noisy, and printed
//! as a ratio next to the target the project holds itself to.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{docker, util};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    /// `docker run --rm IMAGE true` with inspector attached vs without, with
    /// `inspector trace` and with `inspector agent` (metrics and OTLP on)
    /// (target ≤ 1.03× each).
    DockerRun,
    /// 1M one-byte writes by an untraced process, inspector (trace, and the
    /// agent with metrics and OTLP on) vs one empty syscall-tracepoint
    /// program (target ≤ 1.1× each).
    Storm,
    /// 1M pipe round trips between two untraced processes (`perf bench sched
    /// pipe`), inspector --sched vs one empty program on the same scheduler
    /// tracepoints (target ≤ 1.1×).
    SwitchStorm,
    /// 10,000 fork+exec of /bin/true with every process traced: 0 lost with the
    /// default buffer, a non-zero count (and no crash) with a tiny one.
    ForkExec,
    /// Time to attach the probes (target ≤ 300 ms) and inspector's peak RSS (≤ 64 MiB).
    Startup,
    /// Timelines from a 1M-event recording: ≥ 1M events/s on one core, memory
    /// that follows live containers, not events.
    Timeline,
    /// `inspector check` of `docker run --rm IMAGE true` against its golden,
    /// wall time with / without (target ≤ 1.05×).
    Check,
    /// inspector-runtime vs runc: `run` of /bin/true in a busybox bundle,
    /// median, alternating the two (target ≤ 0.35× runc's).
    Runtime,
    /// `inspector run -- /bin/true` end to end (probes attached, container
    /// run, timeline printed) vs `runc run` of the same rootfs (target ≤ 1.5×).
    Run,
    /// The TUI under 10,000 events/s: frame render p99 and input delay
    /// (≤ 16 ms each), memory of 1M retained events (≤ 400 MiB).
    Tui,
}

pub fn run(which: &[Which]) -> Result<()> {
    let all = [
        Which::Startup,
        Which::Storm,
        Which::SwitchStorm,
        Which::ForkExec,
        Which::DockerRun,
        Which::Timeline,
        Which::Check,
    ];
    let which = if which.is_empty() { &all[..] } else { which };
    let mut report = Vec::new();
    for w in which {
        util::step(&format!("benchmark {w:?}"));
        match w {
            Which::DockerRun => report.extend(docker_run()?),
            Which::Storm => report.extend(storm()?),
            Which::SwitchStorm => report.extend(switch_storm()?),
            Which::ForkExec => report.extend(fork_exec()?),
            Which::Startup => report.extend(startup()?),
            Which::Timeline => report.extend(timeline()?),
            Which::Check => report.extend(check()?),
            Which::Tui => report.extend(crate::bench_tui::run()?),
            Which::Run => report.extend(crate::bench_run::run()?),
            Which::Runtime => report.extend(crate::bench_runtime::run()?),
        }
    }
    println!();
    println!(
        "{:<58} {:>12} {:>10}  verdict",
        "measure", "value", "target"
    );
    let mut failed = 0;
    for r in &report {
        let ok = r.ok();
        failed += !ok as usize;
        println!(
            "{:<58} {:>12} {:>10}  {}",
            r.name,
            r.value_text(),
            r.target_text(),
            if ok { "ok" } else { "MISSED" }
        );
    }
    if failed > 0 {
        bail!("{failed} benchmark target(s) missed");
    }
    Ok(())
}

/// One measured number, with its target when it has one.
pub struct Row {
    name: String,
    value: f64,
    unit: &'static str,
    /// (limit, true when the value must stay at or below it)
    target: Option<(f64, bool)>,
}

impl Row {
    /// A number shown for information, with no target.
    pub fn new(name: impl Into<String>, value: f64, unit: &'static str) -> Row {
        Row {
            name: name.into(),
            value,
            unit,
            target: None,
        }
    }

    /// A line of the report that is not a number (what could not be measured, and why).
    pub fn note(text: &str) -> Row {
        Row::new(text, f64::NAN, "note")
    }

    /// The same number, which must stay at or below `limit`.
    pub fn at_most(self, limit: f64) -> Row {
        Row {
            target: Some((limit, true)),
            ..self
        }
    }

    /// The same number, which must reach at least `limit`.
    pub fn at_least(self, limit: f64) -> Row {
        Row {
            target: Some((limit, false)),
            ..self
        }
    }

    fn ok(&self) -> bool {
        match self.target {
            Some((limit, true)) => self.value <= limit,
            Some((limit, false)) => self.value >= limit,
            None => true,
        }
    }
    fn value_text(&self) -> String {
        match self.unit {
            "x" => format!("{:.3}x", self.value),
            "M/s" => format!("{:.2} M/s", self.value),
            "note" => "-".to_string(),
            unit => format!("{:.1} {unit}", self.value),
        }
    }
    fn target_text(&self) -> String {
        match self.target {
            Some((limit, true)) => format!("<= {limit}"),
            Some((limit, false)) => format!(">= {limit}"),
            None => "-".to_string(),
        }
    }
}

fn inspector_bin() -> PathBuf {
    util::root().join("target/release/inspector")
}

/// Starts `inspector ARGS...` and waits until its probes are attached.
fn start_inspector(args: &[&str]) -> Result<(Child, BufReader<std::process::ChildStderr>)> {
    let mut child = Command::new(inspector_bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stderr = BufReader::new(child.stderr.take().context("stderr")?);
    let mut line = String::new();
    stderr.read_line(&mut line)?;
    if !line.contains("attached") {
        bail!("inspector did not start: {line}");
    }
    Ok((child, stderr))
}

/// SIGINT, then the rest of its stderr.
fn stop_inspector(
    mut child: Child,
    stderr: BufReader<std::process::ChildStderr>,
) -> Result<String> {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait()?;
    let rest: Vec<String> = stderr.lines().map_while(Result::ok).collect();
    if !status.success() {
        bail!("inspector failed ({status}): {}", rest.join("\n"));
    }
    Ok(rest.join("\n"))
}

/// What runs beside the measured command.
#[derive(Clone, Copy)]
enum Setup<'a> {
    Nothing,
    Inspector(&'a [&'a str]),
}

/// BPF links attached to inspector's programs (`insp_*`), from bpftool.
fn inspector_links() -> Result<usize> {
    Ok(inspector_bpftool::inspector_links()?)
}

/// Nothing of inspector attached: what an earlier run's keeper holds is let
/// go (the programs stay loaded, attached to nothing), and the kernel has
/// finished detaching. A baseline measured with the probe kept attached,
/// even switched off, would not be one.
pub fn quiesce() -> Result<()> {
    util::run(
        Command::new(inspector_bin())
            .args(["unload", "--links-only"])
            .stderr(Stdio::null()),
    )?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while inspector_links()? > 0 {
        if Instant::now() > deadline {
            bail!("inspector's links are still attached after 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Times one run of `command` under `setup`, in seconds.
fn time_once(command: &[&str], setup: Setup) -> Result<f64> {
    // Each setup starts from nothing attached (an earlier inspector's keeper
    // would otherwise still hold its links).
    quiesce()?;
    let tracer = match setup {
        Setup::Nothing => None,
        Setup::Inspector(args) => Some(start_inspector(args)?),
    };
    let started = Instant::now();
    let status = Command::new(command[0])
        .args(&command[1..])
        .stdout(Stdio::null())
        .status()?;
    let took = started.elapsed().as_secs_f64();
    if let Some((child, err)) = tracer {
        stop_inspector(child, err)?;
    }
    if !status.success() {
        bail!("{command:?} failed: {status}");
    }
    Ok(took)
}

/// Runs `command` `n` times under each setup, cycling through the setups run by
/// run (A B C A B C ...) so that the machine's drifts in speed fall on all of
/// them alike. Returns the times, one vector per setup.
fn interleaved(command: &[&str], setups: &[Setup], n: usize) -> Result<Vec<Vec<f64>>> {
    // One warm-up run of each, not counted.
    for &setup in setups {
        time_once(command, setup)?;
    }
    let mut times = vec![Vec::with_capacity(n); setups.len()];
    for i in 0..n {
        if i % 5 == 0 {
            eprintln!("    {i}/{n}");
        }
        for (k, &setup) in setups.iter().enumerate() {
            times[k].push(time_once(command, setup)?);
        }
    }
    Ok(times)
}

/// Measures N things (0 .. N) `warmup + rounds` times each, turning which
/// goes first round by round so that none always runs on a warmer cache; `measure(which, round)` runs one. Returns the `rounds` counted
/// results of each, the warm-up rounds left out.
pub fn alternating<T, const N: usize>(
    warmup: usize,
    rounds: usize,
    mut measure: impl FnMut(usize, usize) -> Result<T>,
) -> Result<[Vec<T>; N]> {
    let mut results: [Vec<T>; N] = std::array::from_fn(|_| Vec::with_capacity(rounds));
    for round in 0..warmup + rounds {
        // Each goes first in turn, so a slow spell falls on all alike.
        for k in 0..N {
            let which = (round + k) % N;
            let result = measure(which, round)?;
            if round >= warmup {
                results[which].push(result);
            }
        }
    }
    Ok(results)
}

/// The median of the run-by-run ratios b[i] / a[i].
fn paired_ratio(a: &[f64], b: &[f64]) -> f64 {
    median(a.iter().zip(b).map(|(a, b)| b / a).collect())
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

const TRACE: &[&str] = &["trace", "--format", "jsonl", "--output", "/dev/null"];
const FLOOR: &[&str] = &["bench-floor"];
/// With the scheduler's records (`--sched`).
const TRACE_SCHED: &[&str] = &[
    "trace",
    "--format",
    "jsonl",
    "--output",
    "/dev/null",
    "--sched",
];
/// Following the storm's own writer (`dd`), as if it were a runtime.
const TRACE_DD: &[&str] = &[
    "trace",
    "--format",
    "jsonl",
    "--output",
    "/dev/null",
    "--track-comm",
    "dd",
];

/// `inspector agent` with its metrics served and its traces sent to an OTLP
/// receiver (tests/otlp/receiver.py, decoding each request) on loopback.
struct AgentSetup {
    receiver: Child,
    args: Vec<String>,
    _dir: tempfile::TempDir,
}

impl AgentSetup {
    fn start() -> Result<AgentSetup> {
        let free = || -> Result<u16> {
            Ok(std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port())
        };
        let (otlp, metrics) = (free()?, free()?);
        let dir = tempfile::tempdir()?;
        let mut receiver = Command::new("python3")
            .arg(util::root().join("tests/otlp/receiver.py"))
            .arg(otlp.to_string())
            .arg(dir.path().join("requests.jsonl"))
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the OTLP receiver (python3; cargo xtask setup installs opentelemetry-proto)")?;
        let mut line = String::new();
        BufReader::new(receiver.stdout.take().context("stdout")?).read_line(&mut line)?;
        if line.trim() != "listening" {
            bail!("the OTLP receiver did not start");
        }
        let args = [
            "agent",
            "--metrics",
            &format!("127.0.0.1:{metrics}"),
            "--otlp-endpoint",
            &format!("http://127.0.0.1:{otlp}/v1/traces"),
        ]
        .map(String::from)
        .to_vec();
        Ok(AgentSetup {
            receiver,
            args,
            _dir: dir,
        })
    }

    fn args(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }
}

impl Drop for AgentSetup {
    fn drop(&mut self) {
        let _ = self.receiver.kill();
        let _ = self.receiver.wait();
    }
}

fn docker_run() -> Result<Vec<Row>> {
    let command = [docker::DOCKER, "run", "--rm", docker::IMAGE, "true"];
    let agent = AgentSetup::start()?;
    let t = interleaved(
        &command,
        &[
            Setup::Nothing,
            Setup::Inspector(FLOOR),
            Setup::Inspector(TRACE),
            Setup::Inspector(TRACE_SCHED),
            Setup::Inspector(&agent.args()),
        ],
        20,
    )?;
    Ok(vec![
        Row::new(
            "docker run --rm IMAGE true, median without inspector",
            median(t[0].clone()) * 1000.0,
            "ms",
        ),
        Row::new(
            "docker run, one empty tracepoint program / nothing",
            paired_ratio(&t[0], &t[1]),
            "x",
        ),
        Row::new(
            "docker run --rm IMAGE true, with / without inspector",
            paired_ratio(&t[0], &t[2]),
            "x",
        )
        .at_most(1.03),
        // Every switch and wake-up of dockerd's, containerd's, the shim's
        // and runc's threads recorded: the price of asking why.
        Row::new(
            "docker run, with inspector --sched / without",
            paired_ratio(&t[0], &t[3]),
            "x",
        ),
        // Always on, as a fleet runs it: every container's timeline made,
        // counted for Prometheus and sent as an OTLP trace.
        Row::new(
            "docker run, with inspector agent (metrics, OTLP) / without",
            paired_ratio(&t[0], &t[4]),
            "x",
        )
        .at_most(1.03),
    ])
}

/// `docker run` alone, and the same run checked against its golden (probes
/// attached first, the run compared and its diff printed), one after the
/// other, each command timed whole.
fn check() -> Result<Vec<Row>> {
    let golden = std::env::temp_dir().join("inspector-bench-check.golden");
    let bin = inspector_bin();
    let (bin, g) = (bin.to_str().unwrap(), golden.to_str().unwrap());
    let run = [docker::DOCKER, "run", "--rm", docker::IMAGE, "true"];
    let with = |verb: &'static str| -> Vec<&str> {
        let mut v = vec![bin, verb, "--golden", g, "--"];
        v.extend(run);
        v
    };
    let (record, check) = (with("record"), with("check"));
    // (whole command, the checked command's own time as check reports it)
    let time = |cmd: &[&str]| -> Result<(f64, Option<f64>)> {
        let started = Instant::now();
        let out = Command::new(cmd[0])
            .args(&cmd[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()?;
        let took = started.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!(
                "{} failed: {}\n{}",
                cmd.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let own = String::from_utf8_lossy(&out.stderr)
            .split("the command took ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next()?.parse::<f64>().ok())
            .map(|ms| ms / 1000.0);
        Ok((took, own))
    };
    time(&record)?;
    time(&run)?;
    let (mut plain, mut whole, mut own) = (Vec::new(), Vec::new(), Vec::new());
    let n = 15;
    for i in 0..n {
        if i % 5 == 0 {
            eprintln!("    {i}/{n}");
        }
        // The command alone with nothing of inspector attached; the check
        // after it then attaches the kept programs itself (slower than
        // taking over a keeper's links, as checks run back to back do;
        // `cargo xtask bench startup` measures both).
        quiesce()?;
        plain.push(time(&run)?.0);
        let (took, inner) = time(&check)?;
        whole.push(took);
        own.push(inner.context("inspector check did not say how long the command took")?);
    }
    let _ = std::fs::remove_file(&golden);
    Ok(vec![
        Row::new(
            "docker run --rm IMAGE true, median",
            median(plain.clone()) * 1000.0,
            "ms",
        ),
        Row::new(
            "inspector check end to end (attach, run, compare), median",
            median(whole.clone()) * 1000.0,
            "ms",
        ),
        Row::new(
            "inspector check end to end / the command alone",
            paired_ratio(&plain, &whole),
            "x",
        )
        .at_most(1.05),
        Row::new(
            "  the command's own wall time under check / alone",
            paired_ratio(&plain, &own),
            "x",
        ),
    ])
}

fn storm() -> Result<Vec<Row>> {
    let command = [
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=1",
        "count=1000000",
        "status=none",
    ];
    let agent = AgentSetup::start()?;
    let t = interleaved(
        &command,
        &[
            Setup::Nothing,
            Setup::Inspector(FLOOR),
            Setup::Inspector(TRACE),
            Setup::Inspector(TRACE_DD),
            Setup::Inspector(&agent.args()),
        ],
        15,
    )?;
    Ok(vec![
        Row::new(
            "1M one-byte writes, nothing attached",
            median(t[0].clone()) * 1000.0,
            "ms",
        ),
        Row::new(
            "1M writes, one empty tracepoint program / nothing",
            paired_ratio(&t[0], &t[1]),
            "x",
        ),
        Row::new(
            "1M writes, inspector / one empty tracepoint program",
            paired_ratio(&t[1], &t[2]),
            "x",
        )
        .at_most(1.1),
        // The writer followed: every write's file is looked at (a cgroup
        // file? the runtime's log.json?), none is copied.
        Row::new(
            "1M writes by a followed process, inspector / nothing",
            paired_ratio(&t[0], &t[3]),
            "x",
        ),
        // With the kernel's BPF run-time statistics on for the probe's cost
        // metrics: two clock reads more per run of every program.
        Row::new(
            "1M writes, inspector agent (metrics, OTLP) / one empty tracepoint program",
            paired_ratio(&t[1], &t[4]),
            "x",
        )
        .at_most(1.1),
    ])
}

/// Context switches by processes inspector does not follow: what `--sched`
/// costs everyone else. Its floor is one empty program on the same raw
/// tracepoints; `perf bench sched pipe` is two processes ping-ponging a
/// byte over pipes.
fn switch_storm() -> Result<Vec<Row>> {
    let command = ["perf", "bench", "sched", "pipe", "-l", "1000000"];
    let t = interleaved(
        &command,
        &[
            Setup::Nothing,
            Setup::Inspector(&["bench-floor", "--sched"]),
            Setup::Inspector(TRACE_SCHED),
        ],
        10,
    )?;
    Ok(vec![
        Row::new(
            "1M pipe round trips, nothing attached",
            median(t[0].clone()) * 1000.0,
            "ms",
        ),
        Row::new(
            "1M round trips, one empty program on sched_switch+waking / nothing",
            paired_ratio(&t[0], &t[1]),
            "x",
        ),
        Row::new(
            "1M round trips, inspector --sched / one empty program",
            paired_ratio(&t[1], &t[2]),
            "x",
        )
        .at_most(1.1),
    ])
}

/// `n` fork+exec of /bin/true from two threads (the machine has two cores).
fn spawn_storm(n: usize) -> Result<Duration> {
    let started = Instant::now();
    let workers: Vec<_> = (0..2)
        .map(|w| {
            std::thread::spawn(move || -> Result<()> {
                for _ in (w..n).step_by(2) {
                    if !Command::new("/bin/true").status()?.success() {
                        bail!("/bin/true failed");
                    }
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join().expect("spawner thread")?;
    }
    Ok(started.elapsed())
}

fn lost_from(stderr: &str) -> Result<u64> {
    // "inspector: N events, M lost..."
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains(" events, "))
        .context("inspector printed no summary")?;
    let lost = line
        .split(" events, ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .context("unreadable summary")?;
    Ok(lost)
}

fn count_true_execs(path: &Path) -> Result<usize> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter(|l| l.contains("\"kind\":\"exec\"") && l.contains("\"filename\":\"/bin/true\""))
        .count())
}

fn fork_exec() -> Result<Vec<Row>> {
    const N: usize = 10_000;
    let out = std::env::temp_dir().join("inspector-bench-forkexec.jsonl");
    let out_s = out.to_string_lossy().to_string();
    let (child, err) =
        start_inspector(&["trace", "--all", "--format", "jsonl", "--output", &out_s])?;
    let took = spawn_storm(N)?;
    std::thread::sleep(Duration::from_millis(500));
    let summary = stop_inspector(child, err)?;
    let lost = lost_from(&summary)?;
    let seen = count_true_execs(&out)?;
    let _ = std::fs::remove_file(&out);

    // A reader that stalls (stopped with SIGSTOP) while the kernel keeps
    // writing: a 4 KiB ring fills, and what does not fit must be counted.
    let (child, err) = start_inspector(&[
        "trace",
        "--all",
        "--format",
        "jsonl",
        "--output",
        "/dev/null",
        "--buffer-size",
        "4096",
    ])?;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGSTOP) };
    spawn_storm(200)?;
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
    std::thread::sleep(Duration::from_millis(300));
    let tiny = stop_inspector(child, err)?;
    let tiny_lost = lost_from(&tiny)?;

    Ok(vec![
        Row::new(
            format!("{N} fork+exec of /bin/true: wall time"),
            took.as_secs_f64(),
            "s",
        )
        .at_most(10.0),
        Row::new("  events lost, default buffer", lost as f64, "events").at_most(0.0),
        Row::new("  execs of /bin/true reported", seen as f64, "events").at_least(N as f64),
        Row::new(
            "4 KiB buffer, stalled reader: events lost (must show)",
            tiny_lost as f64,
            "events",
        )
        .at_least(1.0),
    ])
}

fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmHWM")
}

/// "N probes attached in M ms" from `inspector trace`'s first line.
fn attach_ms() -> Result<f64> {
    let out = Command::new(inspector_bin())
        .args(["trace", "--output", "/dev/null", "--duration", "0.1"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stderr);
    text.split(" attached in ")
        .nth(1)
        .and_then(|r| r.split(" ms").next())
        .and_then(|n| n.parse().ok())
        .context("no attach time in inspector's output")
}

/// `inspector unload`: the next run starts cold.
pub fn unload() -> Result<()> {
    util::run(
        Command::new(inspector_bin())
            .arg("unload")
            .stderr(Stdio::null()),
    )
}

fn startup() -> Result<Vec<Row>> {
    // Cold: the probe loaded into the kernel (after a boot, or an unload).
    // Kept: its programs loaded, attached by the run. Warm: a run right after
    // another takes over the links that one kept.
    let (mut cold, mut kept, mut warm) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        unload()?;
        cold.push(attach_ms()?);
        quiesce()?;
        kept.push(attach_ms()?);
        warm.push(attach_ms()?);
    }

    unload()?;
    let (child, err) = start_inspector(&["trace", "--format", "jsonl", "--output", "/dev/null"])?;
    let pid = child.id();
    util::run(
        docker::docker()
            .args(["run", "--rm", docker::IMAGE, "true"])
            .stdout(Stdio::null()),
    )?;
    let rss = peak_rss_kib(pid)?;
    stop_inspector(child, err)?;

    Ok(vec![
        Row::new(
            "probes loaded, attached and ready, cold (median of 5)",
            median(cold),
            "ms",
        )
        .at_most(300.0),
        Row::new(
            "  ready with the programs kept loaded (median of 5)",
            median(kept),
            "ms",
        ),
        Row::new(
            "  ready taking over the last run's links (median of 5)",
            median(warm),
            "ms",
        ),
        Row::new(
            "inspector peak RSS while a container starts, cold",
            rss as f64 / 1024.0,
            "MiB",
        )
        .at_most(64.0),
    ])
}

/// A recording of `copies` containers one after another, each a copy of the
/// recorded `docker run` fixture with its own id, later times and pid reuse.
/// Lines are edited as text, so the fields keep the order inspector writes.
fn synthetic_recording(path: &Path, copies: usize) -> Result<usize> {
    copies_of("docker-run-rm-true.jsonl", path, copies)
}

/// `copies` copies of the fixture `name` (a recorded `docker run`), each with
/// its own container id and 2 s later than the one before.
fn copies_of(name: &str, path: &Path, copies: usize) -> Result<usize> {
    use std::io::Write as _;
    let fixture =
        std::fs::read_to_string(util::root().join("inspector/tests/fixtures").join(name))?;
    let id = fixture
        .lines()
        .find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            let argv = v["argv"].as_array()?;
            let i = argv.iter().position(|a| a == "-id")?;
            argv.get(i + 1)?.as_str().map(String::from)
        })
        .context("the fixture names no container")?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut n = 0;
    for copy in 0..copies {
        let shift = copy as u64 * 2_000_000_000;
        let new_id = format!("{copy:064x}");
        for line in fixture.lines() {
            let mut line = line.replace(&id, &new_id);
            for key in ["\"ktime_ns\":", "\"start_ns\":", "\"child_start_ns\":"] {
                line = shift_number(&line, key, shift);
            }
            writeln!(out, "{line}")?;
            n += 1;
        }
    }
    out.flush()?;
    Ok(n)
}

/// `line` with the number after `key` increased by `by`.
fn shift_number(line: &str, key: &str, by: u64) -> String {
    let Some(at) = line.find(key) else {
        return line.to_string();
    };
    let start = at + key.len();
    let end = start
        + line[start..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(line.len() - start);
    let Ok(value) = line[start..end].parse::<u64>() else {
        return line.to_string();
    };
    format!("{}{}{}", &line[..start], value + by, &line[end..])
}

/// Runs `inspector timeline --brief FILE` (the timelines built, a summary of
/// each written: the output of `--format json` is tens of bytes per event and
/// would measure JSON writing instead), returning (CPU seconds, peak RSS KiB).
/// CPU time, user and system, is what "on one core" costs, and unlike wall
/// time it does not count the moments the VM gives the core to someone else.
fn time_timeline(path: &Path) -> Result<(f64, u64)> {
    time_timeline_with(path, &[])
}

/// [`time_timeline`] with more arguments (`--why`).
fn time_timeline_with(path: &Path, extra: &[&str]) -> Result<(f64, u64)> {
    let child = Command::new(inspector_bin())
        .args(["timeline", "--brief"])
        .args(extra)
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut status = 0;
    // SAFETY: zeroed rusage is valid; wait4 on our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let took = secs(usage.ru_utime) + secs(usage.ru_stime);
    if r < 0 || status != 0 {
        bail!("inspector timeline failed (status {status})");
    }
    Ok((took, usage.ru_maxrss as u64))
}

fn timeline() -> Result<Vec<Row>> {
    let small = std::env::temp_dir().join("inspector-bench-100k.jsonl");
    let large = std::env::temp_dir().join("inspector-bench-1m.jsonl");
    let per = synthetic_recording(&small, 1)?;
    let n_small = synthetic_recording(&small, 100_000 / per)?;
    let n_large = synthetic_recording(&large, 1_000_000 / per + 1)?;
    let mut best = f64::MAX;
    for _ in 0..3 {
        best = best.min(time_timeline(&large)?.0);
    }
    let (_, rss_large) = time_timeline(&large)?;
    let (_, rss_small) = time_timeline(&small)?;
    let _ = std::fs::remove_file(&small);
    let _ = std::fs::remove_file(&large);
    // A recording made with `--sched`: nearly all of it context switches
    // and wake-ups, which the timelines skip and `--why` walks.
    let sched = std::env::temp_dir().join("inspector-bench-1m-sched.jsonl");
    let per = copies_of(SCHED_FIXTURE, &sched, 1)?;
    let n_sched = copies_of(SCHED_FIXTURE, &sched, 1_000_000 / per + 1)?;
    let (mut plain, mut why) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        plain = plain.min(time_timeline(&sched)?.0);
        why = why.min(time_timeline_with(&sched, &["--why"])?.0);
    }
    let (_, rss_why) = time_timeline_with(&sched, &["--why"])?;
    let _ = std::fs::remove_file(&sched);
    Ok(vec![
        Row::new(
            format!("timelines from {n_large} events: events/s of CPU (best of 3)"),
            n_large as f64 / best / 1e6,
            "M/s",
        )
        .at_least(1.0),
        Row::new(
            format!("  peak RSS, {n_large} events / {n_small} events"),
            rss_large as f64 / rss_small as f64,
            "x",
        )
        .at_most(1.5),
        Row::new(
            format!("  peak RSS, {n_large} events"),
            rss_large as f64 / 1024.0,
            "MiB",
        ),
        Row::new(
            format!("timelines from {n_sched} events of --sched: events/s of CPU (best of 3)"),
            n_sched as f64 / plain / 1e6,
            "M/s",
        )
        .at_least(1.0),
        Row::new(
            "  the same, --why (every critical path walked): events/s of CPU",
            n_sched as f64 / why / 1e6,
            "M/s",
        ),
        Row::new(
            format!("  peak RSS, {n_sched} events of --sched, --why"),
            rss_why as f64 / 1024.0,
            "MiB",
        ),
    ])
}

/// A `docker run --rm IMAGE true` recorded with `--sched`.
const SCHED_FIXTURE: &str = "docker-run-rm-true-sched.jsonl";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternating_swaps_who_goes_first_and_drops_the_warm_up() {
        let mut calls = Vec::new();
        let [a, b] = alternating(1, 2, |which, round| {
            calls.push((which, round));
            Ok(round * 10 + which)
        })
        .unwrap();
        assert_eq!(calls, [(0, 0), (1, 0), (1, 1), (0, 1), (0, 2), (1, 2)]);
        assert_eq!(a, [10, 20]);
        assert_eq!(b, [11, 21]);
    }

    #[test]
    fn rows_print_their_value_and_target_as_before() {
        let ratio = Row::new("r", 1.0234, "x").at_most(1.03);
        assert_eq!(
            (ratio.value_text(), ratio.target_text(), ratio.ok()),
            ("1.023x".to_string(), "<= 1.03".to_string(), true)
        );
        let rate = Row::new("e", 0.5, "M/s").at_least(1.0);
        assert_eq!(
            (rate.value_text(), rate.target_text(), rate.ok()),
            ("0.50 M/s".to_string(), ">= 1".to_string(), false)
        );
        let shown = Row::new(String::from("t"), 12.34, "ms");
        assert_eq!(
            (shown.value_text(), shown.target_text(), shown.ok()),
            ("12.3 ms".to_string(), "-".to_string(), true)
        );
    }
}
