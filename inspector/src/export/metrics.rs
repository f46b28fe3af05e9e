//! The agent's Prometheus metrics (the `prometheus-client` crate, which
//! encodes the OpenMetrics text format Prometheus scrapes).
//!
//! Labels take only values from closed sets: the phase and role names, the
//! engine, and the runtime mapped onto the runtimes known ([`runtime_label`]).
//! No container id, image or path: a fleet's series must not grow with the
//! containers it runs.

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::{Registry, Unit},
};

use crate::timeline::{ContainerTimeline, Phase, Role};

/// The runtimes a label may name; any other program is `other`.
const KNOWN_RUNTIMES: &[&str] = &[
    "runc",
    "crun",
    "youki",
    "inspector-runtime",
    "runsc",
    "kata-runtime",
    "containerd-shim-kata-v2",
    "runj",
];

/// A runtime's program as a label value: one of [`KNOWN_RUNTIMES`], `other`,
/// or `unknown` when none was seen.
pub fn runtime_label(runtime: Option<&str>) -> &'static str {
    match runtime {
        None => "unknown",
        Some(r) => KNOWN_RUNTIMES
            .iter()
            .find(|k| **k == r)
            .copied()
            .unwrap_or("other"),
    }
}

fn engine_label(t: &ContainerTimeline) -> &'static str {
    t.engine.map_or("unknown", |e| e.name())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Made {
    engine: &'static str,
    runtime: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseMade {
    phase: &'static str,
    engine: &'static str,
    runtime: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Failed {
    engine: &'static str,
    runtime: &'static str,
    /// The role of the first process that failed (`runtime-init`, `client`...).
    role: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Program {
    program: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Build {
    version: &'static str,
    commit: &'static str,
    probe: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn phase_histogram() -> Histogram {
    // 100 µs to about 105 s, doubling.
    Histogram::new(exponential_buckets(0.0001, 2.0, 21))
}

fn latency_histogram() -> Histogram {
    // 10 ms to about 22 s: a start is tens to hundreds of milliseconds.
    Histogram::new(exponential_buckets(0.01, 1.5, 20))
}

/// Every metric the agent keeps, registered once; cheap to update from any
/// thread (atomics), encoded on each scrape.
pub struct Metrics {
    registry: Registry,
    phase_duration: Histograms<PhaseMade>,
    start_latency: Histograms<Made>,
    started: Family<Made, Counter>,
    failures: Family<Failed, Counter>,
    incomplete: Family<Made, Counter>,
    pub events: Counter,
    pub events_lost: Counter,
    pub containers_live: Gauge,
    pub processes_tracked: Gauge,
    probe_run_time: Family<Program, Counter<f64>>,
    probe_runs: Family<Program, Counter>,
    probe_stats_on: Counter<f64>,
    otlp_traces: Family<Outcome, Counter>,
    pub otlp_queue: Gauge,
    pub otlp_errors: Counter,
    pub output_errors: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("inspector");
        let m = Metrics {
            phase_duration: Family::new_with_constructor(phase_histogram),
            start_latency: Family::new_with_constructor(latency_histogram),
            started: Family::default(),
            failures: Family::default(),
            incomplete: Family::default(),
            events: Counter::default(),
            events_lost: Counter::default(),
            containers_live: Gauge::default(),
            processes_tracked: Gauge::default(),
            probe_run_time: Family::default(),
            probe_runs: Family::default(),
            probe_stats_on: Counter::default(),
            otlp_traces: Family::default(),
            otlp_queue: Gauge::default(),
            otlp_errors: Counter::default(),
            output_errors: Counter::default(),
            registry: Registry::default(),
        };
        // The registry appends `_total` to counters and the unit to
        // histograms: `container_phase_duration` is served as
        // `inspector_container_phase_duration_seconds`.
        registry.register_with_unit(
            "container_phase_duration",
            "How long each phase of a container's life took (request, shim-start, create, \
             created, start, running, stopped, delete)",
            Unit::Seconds,
            m.phase_duration.clone(),
        );
        registry.register_with_unit(
            "container_start_latency",
            "From the request (the client's exec, else the container's first event) to the \
             entrypoint's exec",
            Unit::Seconds,
            m.start_latency.clone(),
        );
        registry.register(
            "containers_started",
            "Containers whose entrypoint was exec'd",
            m.started.clone(),
        );
        registry.register(
            "container_start_failures",
            "Containers whose start failed, by the role of the first process that failed",
            m.failures.clone(),
        );
        registry.register(
            "containers_incomplete",
            "Containers handed out without all of their life seen (events lost, or their end \
             never seen)",
            m.incomplete.clone(),
        );
        registry.register("events", "Events read from the probe", m.events.clone());
        registry.register(
            "events_lost",
            "Events the kernel dropped because the ring buffer was full",
            m.events_lost.clone(),
        );
        registry.register(
            "containers_live",
            "Containers in progress: started, not yet ended",
            m.containers_live.clone(),
        );
        registry.register(
            "processes_tracked",
            "Processes the timeline builder knows",
            m.processes_tracked.clone(),
        );
        registry.register_with_unit(
            "probe_run_time",
            "Time the kernel spent in the probe's programs (BPF run-time statistics)",
            Unit::Seconds,
            m.probe_run_time.clone(),
        );
        registry.register(
            "probe_runs",
            "Runs of the probe's programs (BPF run-time statistics)",
            m.probe_runs.clone(),
        );
        registry.register_with_unit(
            "probe_stats",
            "How long the kernel's BPF run-time statistics were on (2 s a minute): the probe's \
             run time over this is the share of a CPU it takes",
            Unit::Seconds,
            m.probe_stats_on.clone(),
        );
        registry.register(
            "otlp_traces",
            "Container traces for the OTLP endpoint: sent, or dropped (queue full, or given \
             up after retries)",
            m.otlp_traces.clone(),
        );
        registry.register(
            "otlp_queue",
            "Container traces waiting to be sent",
            m.otlp_queue.clone(),
        );
        registry.register(
            "otlp_errors",
            "Failed OTLP requests (each retried until given up)",
            m.otlp_errors.clone(),
        );
        registry.register(
            "output_errors",
            "Timelines that could not be written to --output",
            m.output_errors.clone(),
        );
        let info: Family<Build, Gauge> = Family::default();
        info.get_or_create(&build()).set(1);
        registry.register("build_info", "This build of inspector", info);
        Metrics { registry, ..m }
    }

    /// Counts a finished container: its phases, its start, or its failure.
    pub fn observe(&self, t: &ContainerTimeline) {
        let made = Made {
            engine: engine_label(t),
            runtime: runtime_label(t.runtime.as_deref()),
        };
        if !t.complete {
            self.incomplete.get_or_create(&made).inc();
        }
        // A container already running when the agent started: its start
        // was not seen, so it says nothing of starts.
        if t.already_running {
            return;
        }
        for p in &t.phases {
            self.phase_duration
                .get_or_create(&PhaseMade {
                    phase: p.phase.key(),
                    engine: made.engine,
                    runtime: made.runtime,
                })
                .observe(p.duration_ns as f64 / 1e9);
        }
        if let Some(latency) = start_latency_ns(t) {
            self.started.get_or_create(&made).inc();
            self.start_latency
                .get_or_create(&made)
                .observe(latency as f64 / 1e9);
        } else if let Some(f) = &t.failure {
            self.failures
                .get_or_create(&Failed {
                    engine: made.engine,
                    runtime: made.runtime,
                    role: f.role.key(),
                })
                .inc();
        }
    }

    /// Adds what a program of the probe ran since the last call.
    pub fn probe_ran(&self, program: &'static str, run_time_ns: u64, runs: u64) {
        let p = Program { program };
        self.probe_run_time
            .get_or_create(&p)
            .inc_by(run_time_ns as f64 / 1e9);
        self.probe_runs.get_or_create(&p).inc_by(runs);
    }

    /// Adds how long run-time statistics were on.
    pub fn probe_stats_on(&self, on: std::time::Duration) {
        self.probe_stats_on.inc_by(on.as_secs_f64());
    }

    pub fn otlp_sent(&self, traces: u64) {
        self.otlp_traces
            .get_or_create(&Outcome { outcome: "sent" })
            .inc_by(traces);
    }

    pub fn otlp_dropped(&self, traces: u64) {
        self.otlp_traces
            .get_or_create(&Outcome { outcome: "dropped" })
            .inc_by(traces);
    }

    /// The text a scrape gets (OpenMetrics).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 << 10);
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// This build, from the version line (`0.1.0 (commit C, probe sha256:P)`).
fn build() -> Build {
    let long = crate::version::LONG;
    let field = |key: &str| {
        long.split_once(key)
            .map(|(_, rest)| rest.split([',', ')']).next().unwrap_or(""))
            .unwrap_or("unknown")
    };
    Build {
        version: env!("CARGO_PKG_VERSION"),
        commit: field("commit "),
        probe: field("probe "),
    }
}

/// From the request to the entrypoint's exec: the request starts at the
/// client's exec when a client is known, else at the container's first
/// event (a CRI start, a runtime run directly). `None` when no entrypoint ran.
pub fn start_latency_ns(t: &ContainerTimeline) -> Option<u64> {
    let running = t.phases.iter().find(|p| p.phase == Phase::Running)?;
    let from = t
        .chain
        .iter()
        .filter(|l| l.role == Role::Client)
        .map(|l| l.start_ns)
        .min()
        .unwrap_or(t.start_ns)
        .min(t.start_ns);
    Some(running.start_ns.saturating_sub(from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::docker_run_timeline as timeline;

    fn sample<'a>(text: &'a str, name_and_labels: &str) -> Option<&'a str> {
        text.lines()
            .find(|l| l.starts_with(name_and_labels))
            .and_then(|l| l.rsplit(' ').next())
    }

    #[test]
    fn a_docker_run_is_one_start_with_its_latency_and_phases() {
        let t = timeline();
        let m = Metrics::new();
        m.observe(&t);
        let text = m.encode();
        let made = r#"{engine="docker",runtime="runc"}"#;
        assert_eq!(
            sample(&text, &format!("inspector_containers_started_total{made}")),
            Some("1"),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                &format!("inspector_container_start_latency_seconds_count{made}")
            ),
            Some("1"),
            "{text}"
        );
        let running = r#"inspector_container_phase_duration_seconds_count{phase="running",engine="docker",runtime="runc"}"#;
        assert_eq!(sample(&text, running), Some("1"), "{text}");
        assert!(text.contains("inspector_build_info{"), "{text}");
        assert!(text.ends_with("# EOF\n"));
        // The latency runs from the client's exec to the entrypoint's.
        let latency = start_latency_ns(&t).unwrap();
        let client = t.chain.iter().find(|l| l.role == Role::Client).unwrap();
        let running = t.phases.iter().find(|p| p.phase == Phase::Running).unwrap();
        assert_eq!(latency, running.start_ns - client.start_ns);
    }

    #[test]
    fn labels_name_no_container_and_no_unknown_runtime() {
        assert_eq!(runtime_label(Some("runc")), "runc");
        assert_eq!(runtime_label(Some("my-runtime\n{evil=\"1\"}")), "other");
        assert_eq!(runtime_label(None), "unknown");
        let mut t = timeline();
        t.runtime = Some("/tmp/x\"y".into());
        let m = Metrics::new();
        m.observe(&t);
        let text = m.encode();
        assert!(
            !text.contains(&t.id[..12]),
            "a container id in a label:\n{text}"
        );
        assert!(!text.contains("x\\\"y"), "{text}");
        assert!(text.contains(r#"runtime="other""#), "{text}");
    }

    #[test]
    fn a_container_seen_already_running_counts_no_start() {
        let mut t = timeline();
        t.already_running = true;
        let m = Metrics::new();
        m.observe(&t);
        assert!(!m.encode().contains("inspector_containers_started_total{"));
    }
}
