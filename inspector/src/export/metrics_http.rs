//! `/metrics` over HTTP, for Prometheus to scrape (the `tiny_http` crate: a
//! small blocking server on a thread of its own, so a slow scraper never
//! holds up the probe's reader).

use std::{net::SocketAddr, sync::Arc, thread::JoinHandle};

use tiny_http::{Header, Method, Response, Server};

use super::{ExportError, metrics::Metrics};

/// OpenMetrics, which Prometheus asks for first and `prometheus-client` writes.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The server, running until dropped.
pub struct MetricsServer {
    server: Arc<Server>,
    thread: Option<JoinHandle<()>>,
    /// Where it listens (the port the kernel chose for port 0).
    pub addr: SocketAddr,
}

impl MetricsServer {
    /// Listens on `addr` at once (so that a port in use fails before the
    /// probe is loaded) and serves from a thread.
    pub fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<Self, ExportError> {
        let server = Server::http(addr).map_err(|e| ExportError::Listen {
            addr: addr.to_string(),
            error: e.to_string(),
        })?;
        let bound = server.server_addr().to_ip().unwrap_or(addr);
        let server = Arc::new(server);
        let serving = server.clone();
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                for request in serving.incoming_requests() {
                    let response = match (request.method(), request.url()) {
                        (Method::Get | Method::Head, "/metrics") => {
                            Response::from_string(metrics.encode())
                                .with_header(header(CONTENT_TYPE))
                        }
                        (Method::Get | Method::Head, "/") => {
                            Response::from_string("inspector agent: metrics at /metrics\n")
                                .with_header(header("text/plain; charset=utf-8"))
                        }
                        (Method::Get | Method::Head, _) => {
                            Response::from_string("not found: metrics are at /metrics\n")
                                .with_status_code(404)
                        }
                        _ => Response::from_string("only GET\n").with_status_code(405),
                    };
                    // A scraper that went away: nothing to do.
                    let _ = request.respond(response);
                }
            })
            .map_err(|e| ExportError::Listen {
                addr: addr.to_string(),
                error: e.to_string(),
            })?;
        Ok(MetricsServer {
            server,
            thread: Some(thread),
            addr: bound,
        })
    }
}

fn header(content_type: &str) -> Header {
    Header::from_bytes("Content-Type", content_type).expect("a valid header")
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_the_metrics_and_stops_at_once_when_dropped() {
        let metrics = Arc::new(Metrics::new());
        metrics.events.inc_by(7);
        let server = MetricsServer::serve("127.0.0.1:0".parse().unwrap(), metrics).unwrap();
        let addr = server.addr;
        let page = get(addr, "/metrics");
        assert!(page.contains(" 200 OK"), "{page}");
        assert!(page.contains("application/openmetrics-text"), "{page}");
        assert!(page.contains("inspector_events_total 7"), "{page}");
        assert!(get(addr, "/nope").contains(" 404 "));
        // Stopping does not wait for a scraper.
        let stopping = std::time::Instant::now();
        drop(server);
        assert!(stopping.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn a_port_in_use_is_an_error_naming_it() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let e = MetricsServer::serve(addr, Arc::new(Metrics::new()))
            .err()
            .expect("refused");
        assert!(e.to_string().contains(&addr.to_string()), "{e}");
    }
}
