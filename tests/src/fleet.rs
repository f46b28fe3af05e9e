//! What the fleet tests drive: `inspector agent` in the background
//! ([`Agent`]), a real Prometheus scraping it ([`Prometheus`], Debian's
//! `prometheus`), and an OTLP/HTTP receiver that decodes with the official
//! protobuf definitions ([`Receiver`], `tests/otlp/receiver.py` with PyPI's
//! `opentelemetry-proto`).

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::{
    paths::{inspector_bin, workspace},
    probe::KEEP,
    require::{answers, require},
    scratch::TempDir,
};

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `GET path` over HTTP/1.0: (status, body); `None` when nothing answers.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// Polls `f` every 200 ms until it gives `Some`, for at most `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let until = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `inspector agent` running in the background, its stderr collected.
pub struct Agent {
    child: Child,
    stderr: Arc<Mutex<String>>,
    pub metrics: Option<SocketAddr>,
}

impl Agent {
    /// Starts the agent with `args` and returns once its probes are attached.
    pub fn start(args: &[&str]) -> Agent {
        let mut child = Command::new(inspector_bin())
            .env("INSPECTOR_KEEP_PROBE", KEEP)
            .arg("agent")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start inspector agent");
        let mut lines = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        lines.read_line(&mut first).unwrap();
        assert!(
            first.contains("probes attached"),
            "the agent did not start: {first}"
        );
        let stderr = Arc::new(Mutex::new(first));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let metrics = args
            .iter()
            .position(|a| *a == "--metrics")
            .and_then(|i| args.get(i + 1)?.parse().ok());
        Agent {
            child,
            stderr,
            metrics,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// The agent's /metrics page.
    pub fn scrape(&self) -> String {
        let addr = self.metrics.expect("started with --metrics");
        match http_get(addr, "/metrics") {
            Some((200, body)) => body,
            other => panic!("GET /metrics: {other:?}\n{}", self.stderr()),
        }
    }

    /// The sum of the samples of `name` whose labels contain every one of
    /// `labels` (`engine="docker"`), 0 when there are none.
    pub fn value(&self, name: &str, labels: &[&str]) -> f64 {
        sample_sum(&self.scrape(), name, labels)
    }

    /// The agent's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// SIGTERM, then waits: how long it took to exit, and whether it exited 0.
    pub fn stop(mut self) -> (Duration, bool, String) {
        let started = Instant::now();
        self.signal(libc::SIGTERM);
        let until = started + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() >= until {
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let took = started.elapsed();
        // Its stderr's reader sees the end once it has exited.
        std::thread::sleep(Duration::from_millis(100));
        (took, status.is_some_and(|s| s.success()), self.stderr())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The sum of the samples of `name` (the whole metric name, before its
/// labels) whose labels contain each of `labels`, in a /metrics page.
pub fn sample_sum(page: &str, name: &str, labels: &[&str]) -> f64 {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = match series.split_once('{') {
                Some((m, rest)) => (m, rest),
                None => (series, ""),
            };
            (metric == name && labels.iter().all(|want| rest.contains(want)))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// Debian's `prometheus` on loopback, scraping one target every second.
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

pub const PROMETHEUS: &str = "/usr/bin/prometheus";

/// Whether Prometheus is installed (`cargo xtask setup` installs it).
pub fn prometheus_ready() -> bool {
    require(
        answers(Command::new(PROMETHEUS).arg("--version")),
        "prometheus (Debian's package; cargo xtask setup installs it)",
    )
}

impl Prometheus {
    pub fn start(target: SocketAddr) -> Prometheus {
        let dir = TempDir::new("prometheus");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: inspector\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let p = Prometheus {
            child,
            addr,
            _dir: dir,
        };
        let ready = wait_for(Duration::from_secs(30), || {
            matches!(http_get(addr, "/-/ready"), Some((200, _))).then_some(())
        });
        assert!(
            ready.is_some(),
            "prometheus did not get ready:\n{}",
            p.log()
        );
        p
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The value of an instant query that gives one number (`sum(...)`);
    /// `None` when it gives nothing (yet).
    pub fn query(&self, expr: &str) -> Option<f64> {
        let mut path = String::from("/api/v1/query?query=");
        for b in expr.bytes() {
            if b.is_ascii_alphanumeric() || b"_.-".contains(&b) {
                path.push(b as char);
            } else {
                path.push_str(&format!("%{b:02X}"));
            }
        }
        let (status, body) = http_get(self.addr, &path)?;
        assert_eq!(status, 200, "{expr}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the receiver can run: python3 with `opentelemetry-proto`.
pub fn otlp_receiver_ready() -> bool {
    require(
        answers(Command::new("python3").args([
            "-c",
            "import opentelemetry.proto.collector.trace.v1.trace_service_pb2",
        ])),
        "python3 with PyPI's opentelemetry-proto (cargo xtask setup installs it)",
    )
}

/// `tests/otlp/receiver.py` on a loopback port: each request it got, decoded,
/// as one JSON object (the protobuf JSON mapping).
pub struct Receiver {
    child: Child,
    pub port: u16,
    out: PathBuf,
    _dir: TempDir,
}

impl Receiver {
    pub fn start(port: u16) -> Receiver {
        let dir = TempDir::new("otlp");
        let out = dir.path().join("requests.jsonl");
        let mut child = Command::new("python3")
            .arg(workspace().join("tests/otlp/receiver.py"))
            .arg(port.to_string())
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the OTLP receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "listening", "the OTLP receiver did not start");
        Receiver {
            child,
            port,
            out,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/traces", self.port)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        read_lines(&self.out)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<serde_json::Value> {
        let mut spans = Vec::new();
        for r in self.requests() {
            assert!(
                r.get("undecodable").is_none(),
                "a request did not decode: {r}"
            );
            for rs in r["resourceSpans"].as_array().into_iter().flatten() {
                for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                    spans.extend(ss["spans"].as_array().into_iter().flatten().cloned());
                }
            }
        }
        spans
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JSON Lines file's objects (an absent file has none).
pub fn read_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A span's attribute as a string (the JSON mapping's `stringValue`, or
/// an `intValue`'s digits).
pub fn attr(span: &serde_json::Value, key: &str) -> Option<String> {
    let a = span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)?;
    let v = &a["value"];
    v["stringValue"]
        .as_str()
        .map(str::to_string)
        .or_else(|| v["intValue"].as_str().map(str::to_string))
        .or_else(|| v["boolValue"].as_bool().map(|b| b.to_string()))
}
