//! Exporters: what `inspector agent` sends out of the host for each
//! container whose life ended, one file per destination.
//!
//! - [`metrics`]: Prometheus counters and histograms (start latency, phase
//!   durations, starts, failures, the probe's own cost), with labels of
//!   bounded cardinality; [`metrics_http`] serves them at `/metrics`;
//! - [`otlp`]: a container's life as an OpenTelemetry trace (a root span,
//!   a span per phase, a span per process); [`otlp_http`] sends them in
//!   batches from a bounded queue, retrying with backoff;
//! - [`jsonl`]: each timeline as a JSON line in a file that log rotation
//!   can move (reopened on SIGHUP).
//!
//! None of them may hold up the probe's reader: a full queue drops, and
//! counts what it dropped.

pub mod jsonl;
pub mod metrics;
pub mod metrics_http;
pub mod otlp;
pub mod otlp_http;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ExportError {
    #[error("cannot serve metrics on {addr}: {error} (is another program using that port?)")]
    Listen { addr: String, error: String },
    #[error("cannot open {path}: {error}")]
    Output { path: String, error: std::io::Error },
    #[error("{path}: {why}")]
    UnsafeOutput { path: String, why: String },
    #[error("--otlp-endpoint {url}: {why}")]
    Endpoint { url: String, why: String },
}

/// The timeline of a real `docker run --rm IMAGE true`, for the exporters' tests.
#[cfg(test)]
pub(crate) fn docker_run_timeline() -> crate::timeline::ContainerTimeline {
    let mut b = crate::timeline::Builder::new();
    crate::timeline::reader::for_each_event(
        include_str!("../../tests/fixtures/docker-run-rm-true.jsonl").as_bytes(),
        |e| b.push(e),
    )
    .expect("the fixture reads");
    b.finish().remove(0)
}
