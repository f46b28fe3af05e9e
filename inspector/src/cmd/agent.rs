//! `inspector agent`: always on, for a fleet. The probe's events go through
//! the timeline builder, and each container whose life ended goes out
//! through the exporters the flags ask for (the library's `export/`):
//! Prometheus metrics, OTLP traces, JSON Lines.
//!
//! Its memory follows the containers and processes alive, not its uptime:
//! the builder keeps at most [`LIMITS`] of each container, hands out
//! containers nothing was heard of for [`IDLE`] and forgets processes that
//! are gone ([`EXPIRE_EVERY`]). The reader never waits on an exporter: OTLP
//! has a bounded queue, metrics are atomics read by the server's thread.
//! SIGTERM (or SIGINT) flushes and exits; SIGHUP reopens `--output`.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use inspector::{
    event::{Body, Decoder},
    export::{
        jsonl::JsonLines, metrics::Metrics, metrics_http::MetricsServer, otlp_http::OtlpExporter,
    },
    host::Clock,
    probe::{Probe, ProbeOptions, cost},
    timeline::{Builder, ContainerTimeline, Limits, running},
};

use super::Following;

#[derive(clap::Args)]
pub struct AgentArgs {
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<SocketAddr>,
    /// Export each finished container as an OpenTelemetry trace, OTLP over
    /// HTTP/protobuf, to this URL (a collector's `http://HOST:4318/v1/traces`).
    #[arg(long, value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// Append each finished container's timeline to FILE as a JSON line
    /// (reopened on SIGHUP, for log rotation).
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Do not turn on the kernel's BPF run-time statistics for 2 s a minute
    /// (on, they cost every BPF program on the machine two clock reads a
    /// run): the probe's cost metrics then stay at zero unless
    /// kernel.bpf_stats_enabled is 1.
    #[arg(long)]
    no_probe_stats: bool,
    #[command(flatten)]
    following: Following,
}

/// Most steps and processes kept per container.
const LIMITS: Limits = Limits {
    steps: 4096,
    chain: 1024,
};
/// A container with no process left, unheard of for this long, is handed
/// out incomplete.
const IDLE: Duration = Duration::from_secs(600);
/// How often processes are checked against /proc and idle containers
/// handed out.
const EXPIRE_EVERY: Duration = Duration::from_secs(30);
/// How often the gauges and the probe's cost are brought up to date.
const GAUGES_EVERY: Duration = Duration::from_secs(1);
/// The longest wait for events: how late a SIGTERM can be noticed.
const POLL: Duration = Duration::from_millis(100);

/// Where the finished containers go.
struct Sinks {
    metrics: Arc<Metrics>,
    output: Option<JsonLines>,
    otlp: Option<OtlpExporter>,
    /// When a write error was last said: once a minute at most.
    complained: Option<Instant>,
}

impl Sinks {
    fn finished(&mut self, mut t: ContainerTimeline) {
        self.metrics.observe(&t);
        if self.output.is_some() || self.otlp.is_some() {
            t.fill_details();
        }
        if let Some(out) = &mut self.output
            && let Err(e) = out.write(&t)
        {
            self.metrics.output_errors.inc();
            if self
                .complained
                .is_none_or(|at| at.elapsed() >= Duration::from_secs(60))
            {
                self.complained = Some(Instant::now());
                eprintln!(
                    "inspector agent: cannot write {}: {e}",
                    out.path().display()
                );
            }
        }
        if let Some(otlp) = &self.otlp {
            otlp.send(t);
        }
    }
}

pub fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    if args.metrics.is_none() && args.otlp_endpoint.is_none() && args.output.is_none() {
        anyhow::bail!(
            "nothing to export to: give --metrics ADDR:PORT, --otlp-endpoint URL or --output FILE"
        );
    }
    let stop = super::stop_on_signals()?;
    let reopen = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reopen.clone())
        .context("installing the SIGHUP handler")?;

    // Everything that can be refused is tried before the probe is loaded.
    let metrics = Arc::new(Metrics::new());
    let server = args
        .metrics
        .map(|addr| MetricsServer::serve(addr, metrics.clone()))
        .transpose()?;
    let otlp = args
        .otlp_endpoint
        .as_deref()
        .map(|url| OtlpExporter::start(url, metrics.clone()))
        .transpose()?;
    let output = args.output.as_deref().map(JsonLines::open).transpose()?;
    let mut sinks = Sinks {
        metrics: metrics.clone(),
        output,
        otlp,
        complained: None,
    };

    let opts = ProbeOptions {
        ..args.following.probe(None, false)
    };
    let probe = match Probe::load(&opts) {
        Ok(probe) => probe,
        Err(e) => {
            if let Some(out) = sinks.output.take() {
                out.discard();
            }
            return Err(e.into());
        }
    };
    let sampler = (!args.no_probe_stats).then(cost::Sampler::new);

    let mut builder = Builder::with_limits(LIMITS);
    let running = running::seed(&mut builder, Clock::monotonic_ns(), &opts.track_comms);
    let mut said = vec![format!(
        "{} probes attached in {} ms{}",
        probe.attached,
        probe.ready_in.as_millis(),
        probe.origin.note()
    )];
    if let Some(s) = &server {
        said.push(format!("metrics at http://{}/metrics", s.addr));
    }
    if let Some(url) = &args.otlp_endpoint {
        said.push(format!("traces to {url}"));
    }
    if let Some(out) = &sinks.output {
        said.push(format!("timelines to {}", out.path().display()));
    }
    eprintln!(
        "inspector agent: {}; {running} containers already running. SIGTERM stops, SIGHUP reopens the output.",
        said.join("; ")
    );
    if let Some(line) = probe.degraded() {
        eprintln!("{line}");
    }

    follow(probe, builder, sampler, &mut sinks, &stop, &reopen)?;

    if let Some(otlp) = sinks.otlp.take() {
        otlp.shutdown();
    }
    drop(server);
    Ok(ExitCode::SUCCESS)
}

/// Reads the probe until `stop`, handing finished containers to `sinks`.
fn follow(
    mut probe: Probe,
    mut builder: Builder,
    mut sampler: Option<cost::Sampler>,
    sinks: &mut Sinks,
    stop: &AtomicBool,
    reopen: &AtomicBool,
) -> anyhow::Result<()> {
    let decoder = Decoder::for_host();
    let metrics = sinks.metrics.clone();
    let mut lost = 0u64;
    let mut last_gauges = Instant::now();
    let mut last_expire = Instant::now();
    let mut ran: Vec<cost::ProgramCost> = probe.cost();
    while !stop.load(Ordering::Relaxed) {
        probe.wait(POLL, None).context("waiting for events")?;
        let mut read = 0u64;
        while let Some(record) = probe.next_record() {
            match decoder.decode(&record) {
                Ok(event) => {
                    read += 1;
                    builder.push(event);
                }
                Err(e) => log::warn!("skipped a record: {e}"),
            }
        }
        metrics.events.inc_by(read);
        let now = Clock::monotonic_ns();
        builder.tick(now);
        let total = probe.lost();
        if total > lost {
            let event = decoder.event(
                now,
                None,
                Body::Lost {
                    count: total - lost,
                    total,
                },
            );
            metrics.events_lost.inc_by(total - lost);
            lost = total;
            builder.push(event);
        }
        if last_expire.elapsed() >= EXPIRE_EVERY {
            last_expire = Instant::now();
            builder.expire(now, IDLE.as_nanos() as u64, |pid| {
                std::path::Path::new(&format!("/proc/{pid}")).exists()
            });
        }
        for t in builder.take_finished() {
            sinks.finished(t);
        }
        if reopen.swap(false, Ordering::Relaxed)
            && let Some(out) = &mut sinks.output
        {
            match out.reopen() {
                Ok(()) => eprintln!("inspector agent: reopened {}", out.path().display()),
                Err(e) => eprintln!("inspector agent: {e}; still writing to the file as it was"),
            }
        }
        if last_gauges.elapsed() >= GAUGES_EVERY {
            last_gauges = Instant::now();
            let (containers, procs) = builder.sizes();
            metrics.containers_live.set(containers as i64);
            metrics.processes_tracked.set(procs as i64);
            let now_ran = probe.cost();
            for c in &now_ran {
                let before = ran
                    .iter()
                    .find(|b| b.hook == c.hook)
                    .copied()
                    .unwrap_or_default();
                metrics.probe_ran(
                    c.hook,
                    c.run_time_ns.saturating_sub(before.run_time_ns),
                    c.runs.saturating_sub(before.runs),
                );
            }
            ran = now_ran;
            if let Some(s) = &mut sampler {
                let was = s.refused.is_some();
                metrics.probe_stats_on(s.tick());
                if let (false, Some(why)) = (was, &s.refused) {
                    eprintln!(
                        "inspector agent: no BPF run-time statistics ({why}): the probe's cost metrics stay at zero"
                    );
                }
            }
        }
    }
    // Containers still in progress are not sent: they are not over, and a
    // restarted agent sees them as already running.
    eprintln!(
        "inspector agent: stopping; {} containers in progress not exported",
        builder.sizes().0
    );
    Ok(())
}
