//! Sends container traces to an OTLP/HTTP endpoint (protobuf, `POST
//! /v1/traces`), from a thread of its own with the `ureq` client.
//!
//! The probe's reader only ever `try_send`s into a bounded queue: a full
//! queue drops the trace and counts it. The sender batches what is queued,
//! and retries a failed batch with exponential backoff (a collector
//! restarting, a 429 or 503) until [`GIVE_UP_AFTER`], then drops it,
//! counted. A request the endpoint rejects (another 4xx) is dropped at once:
//! sending it again would not help.
//!
//! This build speaks plain HTTP only (no TLS library): a node-local
//! collector (`http://$HOST_IP:4318/v1/traces`) is the usual place to send to.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use prost::Message as _;

use super::{
    ExportError,
    metrics::Metrics,
    otlp::{self, HostResource},
};
use crate::{host::Clock, timeline::ContainerTimeline};

/// Traces waiting to be sent: past it, new ones are dropped.
pub const QUEUE: usize = 2048;
/// Most traces per request.
const BATCH: usize = 64;
/// How long a batch waits to fill once its first trace is in.
const LINGER: Duration = Duration::from_millis(200);
/// One request's time limit.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The first and longest waits between retries.
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// A batch still failing after this long is dropped.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);
/// What is left when stopping gets this long to go out. A request under way
/// when stopping began (an endpoint that swallows packets holds it for
/// [`TIMEOUT`]) is not waited for longer.
const FLUSH_FOR: Duration = Duration::from_millis(400);

/// The exporter: a queue and the thread that empties it.
pub struct OtlpExporter {
    queue: Option<SyncSender<ContainerTimeline>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Closed when the thread ends.
    done: Receiver<()>,
    metrics: Arc<Metrics>,
}

/// An endpoint this build can send to: `http://HOST[:PORT]/PATH`.
pub fn check_endpoint(url: &str) -> Result<(), ExportError> {
    let bad = |why: &str| ExportError::Endpoint {
        url: url.to_string(),
        why: why.to_string(),
    };
    let uri: ureq::http::Uri = url.parse().map_err(|e| bad(&format!("not a URL ({e})")))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(bad(
                "this build sends plain HTTP only; send to a collector on the node \
                 (http://HOST:4318/v1/traces) that forwards over TLS",
            ));
        }
        _ => {
            return Err(bad(
                "give an http:// URL, such as http://127.0.0.1:4318/v1/traces",
            ));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("it names no host"));
    }
    Ok(())
}

impl OtlpExporter {
    pub fn start(url: &str, metrics: Arc<Metrics>) -> Result<Self, ExportError> {
        check_endpoint(url)?;
        let (tx, rx) = sync_channel(QUEUE);
        let (ended, done) = sync_channel::<()>(0);
        let stop = Arc::new(AtomicBool::new(false));
        let sender = Sender {
            url: url.to_string(),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into(),
            host: HostResource::this_host(),
            metrics: metrics.clone(),
            stop: stop.clone(),
            complained: None,
        };
        let thread = std::thread::Builder::new()
            .name("otlp".into())
            .spawn(move || {
                sender.run(rx);
                drop(ended);
            })
            .map_err(|e| ExportError::Endpoint {
                url: url.to_string(),
                why: format!("cannot start its thread: {e}"),
            })?;
        Ok(OtlpExporter {
            queue: Some(tx),
            stop,
            thread: Some(thread),
            done,
            metrics,
        })
    }

    /// Queues a finished container's trace; never waits.
    pub fn send(&self, t: ContainerTimeline) {
        let Some(queue) = &self.queue else { return };
        match queue.try_send(t) {
            Ok(()) => {
                self.metrics.otlp_queue.inc();
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.metrics.otlp_dropped(1);
            }
        }
    }

    /// Sends what is queued, for at most [`FLUSH_FOR`], and stops.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Closing the queue wakes the sender.
        self.queue.take();
        let Some(thread) = self.thread.take() else {
            return;
        };
        // The flush ends within FLUSH_FOR; a request under way when stopping
        // began may hang longer: past that the thread is left to the
        // process's exit.
        if let Err(RecvTimeoutError::Disconnected) = self
            .done
            .recv_timeout(FLUSH_FOR + Duration::from_millis(100))
        {
            let _ = thread.join();
        }
    }
}

impl Drop for OtlpExporter {
    fn drop(&mut self) {
        self.stop_now();
    }
}

struct Sender {
    url: String,
    agent: ureq::Agent,
    host: HostResource,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
    /// When a failure was last said on stderr: once a minute at most.
    complained: Option<Instant>,
}

enum Outcome {
    Sent,
    /// Worth trying again (no answer, 408, 429, 5xx).
    Retry(String),
    /// The endpoint refused it for good.
    Rejected(String),
}

impl Sender {
    fn run(mut self, rx: Receiver<ContainerTimeline>) {
        let mut open = true;
        let mut left = Vec::new();
        while open {
            let first = match rx.recv() {
                Ok(t) => t,
                Err(_) => break,
            };
            let mut batch = vec![first];
            let until = Instant::now() + LINGER;
            while batch.len() < BATCH {
                match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                    Ok(t) => batch.push(t),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            self.metrics.otlp_queue.dec_by(batch.len() as i64);
            if self.stop.load(Ordering::Relaxed) {
                left = batch;
                break;
            }
            self.deliver(&batch);
        }
        // Stopping: what is left, in batches, for a short while.
        let deadline = Instant::now() + FLUSH_FOR;
        let queued: Vec<ContainerTimeline> = rx.try_iter().collect();
        self.metrics.otlp_queue.dec_by(queued.len() as i64);
        left.extend(queued);
        while !left.is_empty() {
            let rest = left.split_off(left.len().min(BATCH));
            if Instant::now() >= deadline {
                self.metrics.otlp_dropped((left.len() + rest.len()) as u64);
                break;
            }
            let n = left.len() as u64;
            match self.post(&left, deadline.saturating_duration_since(Instant::now())) {
                Outcome::Sent => self.metrics.otlp_sent(n),
                Outcome::Retry(_) | Outcome::Rejected(_) => self.metrics.otlp_dropped(n),
            }
            left = rest;
        }
    }

    /// Sends a batch, retrying with backoff until it goes, is refused,
    /// [`GIVE_UP_AFTER`] passes, or the agent stops.
    fn deliver(&mut self, batch: &[ContainerTimeline]) {
        let n = batch.len() as u64;
        let started = Instant::now();
        let mut wait = BACKOFF_FIRST;
        loop {
            // Stopping cuts a request short.
            let timeout = if self.stop.load(Ordering::Relaxed) {
                FLUSH_FOR
            } else {
                TIMEOUT
            };
            match self.post(batch, timeout) {
                Outcome::Sent => {
                    self.metrics.otlp_sent(n);
                    return;
                }
                Outcome::Rejected(why) => {
                    self.complain(&format!("refused {n} container traces: {why}"));
                    self.metrics.otlp_dropped(n);
                    return;
                }
                Outcome::Retry(why) => {
                    self.complain(&format!("cannot send yet ({why}); retrying"));
                    if started.elapsed() >= GIVE_UP_AFTER {
                        self.metrics.otlp_dropped(n);
                        return;
                    }
                }
            }
            // Sleep in short steps, so that stopping is not held up.
            let until = Instant::now() + wait;
            while Instant::now() < until {
                if self.stop.load(Ordering::Relaxed) {
                    self.metrics.otlp_dropped(n);
                    return;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            wait = (wait * 2).min(BACKOFF_MAX);
        }
    }

    fn post(&mut self, batch: &[ContainerTimeline], timeout: Duration) -> Outcome {
        let body = otlp::request(&self.host, batch, &Clock::now()).encode_to_vec();
        let answer = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/x-protobuf")
            .config()
            .timeout_global(Some(timeout.max(Duration::from_millis(50))))
            .build()
            .send(&body[..]);
        match answer {
            Ok(r) if r.status().is_success() => Outcome::Sent,
            Ok(r) => {
                self.metrics.otlp_errors.inc();
                let status = r.status();
                let why = format!("{} answered {status}", self.url);
                if status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error() {
                    Outcome::Retry(why)
                } else {
                    Outcome::Rejected(why)
                }
            }
            Err(e) => {
                self.metrics.otlp_errors.inc();
                Outcome::Retry(format!("{}: {e}", self.url))
            }
        }
    }

    fn complain(&mut self, what: &str) {
        if self
            .complained
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
        {
            self.complained = Some(Instant::now());
            eprintln!("inspector agent: OTLP: {what}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_this_build_cannot_use_are_refused_with_the_reason() {
        assert!(check_endpoint("http://127.0.0.1:4318/v1/traces").is_ok());
        let e = check_endpoint("https://collector:4318/v1/traces").unwrap_err();
        assert!(e.to_string().contains("plain HTTP"), "{e}");
        assert!(check_endpoint("collector:4318").is_err());
        assert!(check_endpoint("http:///v1/traces").is_err());
        assert!(check_endpoint("not a url").is_err());
    }

    #[test]
    fn an_endpoint_that_never_answers_does_not_hold_up_stopping() {
        // Accepts connections and reads nothing: a request hangs until its
        // time limit.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/traces", silent.local_addr().unwrap());
        let metrics = Arc::new(Metrics::new());
        let exporter = OtlpExporter::start(&url, metrics.clone()).unwrap();
        exporter.send(crate::export::docker_run_timeline());
        // The batch is sent and hangs.
        std::thread::sleep(LINGER + Duration::from_millis(300));
        let stopping = Instant::now();
        exporter.shutdown();
        assert!(
            stopping.elapsed() < Duration::from_secs(1),
            "{:?}",
            stopping.elapsed()
        );
    }

    #[test]
    fn with_no_endpoint_listening_sending_never_waits_and_stopping_is_quick() {
        // A port with nothing behind it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let metrics = Arc::new(Metrics::new());
        let exporter = OtlpExporter::start(
            &format!("http://127.0.0.1:{port}/v1/traces"),
            metrics.clone(),
        )
        .unwrap();
        let t = crate::export::docker_run_timeline();
        let started = Instant::now();
        for _ in 0..QUEUE + 100 {
            exporter.send(t.clone());
        }
        assert!(started.elapsed() < Duration::from_secs(2), "sending waited");
        let stopping = Instant::now();
        exporter.shutdown();
        assert!(
            stopping.elapsed() < Duration::from_secs(1),
            "{:?}",
            stopping.elapsed()
        );
        let text = metrics.encode();
        let dropped = text
            .lines()
            .find(|l| l.starts_with(r#"inspector_otlp_traces_total{outcome="dropped"}"#))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0);
        assert_eq!(dropped, (QUEUE + 100) as u64, "{text}");
    }
}
