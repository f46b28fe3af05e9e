//! A container's life as an OpenTelemetry trace (the OTLP protobuf types of
//! the `opentelemetry-proto` crate):
//!
//! - a root span `container` for its whole life, with `container.id`,
//!   `container.runtime` (the OCI runtime), `container.engine` and
//!   `container.image.name` (when its client named one), its exit code, and
//!   an error status naming the failure when its start failed;
//! - a span per phase (`request`, `create`, `start`, `running`...) under it;
//! - a span per process under the phase it started in, named by its role,
//!   with the semantic conventions' `process.*` attributes and its steps
//!   (exec, unshare, mount, pivot_root, cgroup writes...) as span events.
//!
//! Ids are derived from the host and the container (a hash), so a trace
//! sent twice after a retry is the same trace.

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value::Value},
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span, status::StatusCode},
};
use sha2::{Digest as _, Sha256};

use crate::{
    host::Clock,
    timeline::{ContainerTimeline, engine, role::Role},
};

/// Most span events per process span: a long-lived entrypoint's steps are
/// counted as dropped past them (the spec's default event limit is 128).
const EVENTS_PER_PROCESS: usize = 64;
/// Most arguments kept of a process's command line, and bytes of each.
const ARGS_KEPT: usize = 32;
const ARG_BYTES: usize = 256;

/// What describes this host in every export (resource attributes).
#[derive(Clone, Debug)]
pub struct HostResource {
    pub host_name: String,
    pub attributes: Vec<KeyValue>,
}

impl HostResource {
    /// This machine: its name, kernel and inspector's build.
    pub fn this_host() -> Self {
        let uts = nix::sys::utsname::uname().ok();
        let host_name = uts
            .as_ref()
            .map(|u| u.nodename().to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut attributes = vec![
            kv("service.name", "inspector"),
            kv("service.version", env!("CARGO_PKG_VERSION")),
            kv("host.name", &host_name),
            kv("os.type", "linux"),
        ];
        if let Some(u) = &uts {
            attributes.push(kv("os.version", &u.release().to_string_lossy()));
            attributes.push(kv("host.arch", &u.machine().to_string_lossy()));
        }
        HostResource {
            host_name,
            attributes,
        }
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    kv_of(key, Value::StringValue(value.to_string()))
}

fn kv_int(key: &str, value: i64) -> KeyValue {
    kv_of(key, Value::IntValue(value))
}

fn kv_bool(key: &str, value: bool) -> KeyValue {
    kv_of(key, Value::BoolValue(value))
}

fn kv_of(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// At most `n` bytes of `s`, cut at a character boundary.
fn cut(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A command line with the values of environment variables given on it
/// (`-e KEY=VALUE`, `--env=KEY=VALUE`) replaced: a collector is often
/// shared more widely than the host, and secrets are passed that way.
fn redacted(argv: &[String]) -> impl Iterator<Item = String> + '_ {
    let mut env_next = false;
    argv.iter().map(move |a| {
        let value = std::mem::take(&mut env_next);
        if matches!(a.as_str(), "-e" | "--env") {
            env_next = true;
            return a.clone();
        }
        let (flag, rest) = match a.split_once('=') {
            Some((f @ ("-e" | "--env"), rest)) => (format!("{f}="), rest),
            _ if value => (String::new(), a.as_str()),
            _ => return a.clone(),
        };
        match rest.split_once('=') {
            Some((key, _)) => format!("{flag}{key}=<redacted>"),
            None => format!("{flag}{rest}"),
        }
    })
}

fn trace_id(host: &str, t: &ContainerTimeline) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(host.as_bytes());
    h.update([0]);
    h.update(t.id.as_bytes());
    h.update(t.start_ns.to_le_bytes());
    h.finalize()[..16].to_vec()
}

fn span_id(trace: &[u8], n: u64) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(trace);
    h.update(n.to_le_bytes());
    let mut id = h.finalize()[..8].to_vec();
    // An all-zero id is invalid.
    id[0] |= 1;
    id
}

/// The spans of one container's life: root first, then phases, then
/// processes. Steps' words are their `detail`s: `t` has had
/// [`ContainerTimeline::fill_details`].
pub fn spans(host: &HostResource, t: &ContainerTimeline, clock: &Clock) -> Vec<Span> {
    let at = |ktime: u64| clock.unix_ns(ktime).max(0) as u64;
    let trace = trace_id(&host.host_name, t);
    let root_id = span_id(&trace, 0);
    let mut next = 1u64;
    let mut new_span = |name: &str, parent: &[u8], start: u64, end: u64| {
        let id = span_id(&trace, next);
        next += 1;
        Span {
            trace_id: trace.clone(),
            span_id: id,
            parent_span_id: parent.to_vec(),
            name: name.to_string(),
            kind: span::SpanKind::Internal as i32,
            start_time_unix_nano: at(start),
            end_time_unix_nano: at(end.max(start)),
            ..Default::default()
        }
    };

    let mut root = Span {
        trace_id: trace.clone(),
        span_id: root_id.clone(),
        name: "container".into(),
        kind: span::SpanKind::Internal as i32,
        start_time_unix_nano: at(t.start_ns),
        end_time_unix_nano: at(t.end_ns.max(t.start_ns)),
        ..Default::default()
    };
    root.attributes.push(kv("container.id", &t.id));
    if let Some(r) = &t.runtime {
        root.attributes.push(kv("container.runtime", r));
    }
    if let Some(e) = t.engine {
        root.attributes.push(kv("container.engine", e.name()));
    }
    if let Some(image) = engine::image_of(&t.chain) {
        root.attributes.push(kv("container.image.name", &image));
    }
    if let Some(code) = t.exit_code {
        root.attributes
            .push(kv_int("process.exit.code", code.into()));
    }
    if let Some(signal) = &t.signal {
        root.attributes.push(kv("inspector.signal", signal));
    }
    root.attributes
        .push(kv_bool("inspector.complete", t.complete));
    if t.already_running {
        root.attributes
            .push(kv_bool("inspector.already_running", true));
    }
    if let Some(f) = &t.failure {
        root.status = Some(Status {
            code: StatusCode::Error as i32,
            message: f.summary.clone(),
        });
        root.attributes
            .push(kv("inspector.failure.role", f.role.key()));
        if let Some(errno) = &f.errno {
            root.attributes.push(kv("error.type", errno));
        }
        if let Some(call) = &f.syscall {
            root.attributes.push(kv("inspector.failure.syscall", call));
        }
        // The engine's and the runtime's own words, as they wrote them.
        if !f.messages.is_empty() {
            let words = f
                .messages
                .iter()
                .map(|m| AnyValue {
                    value: Some(Value::StringValue(format!(
                        "{}: {}",
                        m.role.key(),
                        cut(&m.text, ARG_BYTES * 4)
                    ))),
                })
                .collect();
            root.attributes.push(kv_of(
                "inspector.failure.messages",
                Value::ArrayValue(ArrayValue { values: words }),
            ));
        }
    }

    let mut out = vec![root];
    let mut phase_spans: Vec<(u64, Vec<u8>)> = Vec::new();
    for p in &t.phases {
        let mut s = new_span(p.phase.key(), &root_id, p.start_ns, p.end_ns);
        s.attributes.push(kv("inspector.phase", p.phase.key()));
        phase_spans.push((p.start_ns, s.span_id.clone()));
        out.push(s);
    }
    for link in &t.chain {
        // Under the phase under way when it started (the last that began
        // before it), else the root.
        let parent = phase_spans
            .iter()
            .rev()
            .find(|(start, _)| *start <= link.start_ns)
            .map_or(&root_id, |(_, id)| id);
        let end = link.exit_ns.unwrap_or(t.end_ns);
        let mut s = new_span(link.role.key(), parent, link.start_ns, end);
        s.attributes.push(kv("inspector.role", link.role.key()));
        s.attributes.push(kv_int("process.pid", link.pid.into()));
        s.attributes
            .push(kv_int("process.parent_pid", link.ppid.into()));
        s.attributes
            .push(kv("process.executable.name", cut(&link.comm, ARG_BYTES)));
        if let Some(exe) = &link.exe {
            s.attributes
                .push(kv("process.executable.path", cut(exe, ARG_BYTES * 4)));
        }
        if !link.argv.is_empty() {
            let args = redacted(&link.argv)
                .take(ARGS_KEPT)
                .map(|a| AnyValue {
                    value: Some(Value::StringValue(cut(&a, ARG_BYTES).to_string())),
                })
                .collect();
            s.attributes.push(kv_of(
                "process.command_args",
                Value::ArrayValue(ArrayValue { values: args }),
            ));
        }
        if let Some(code) = link.exit_code {
            s.attributes.push(kv_int("process.exit.code", code.into()));
        }
        if let Some(signal) = &link.signal {
            s.attributes.push(kv("inspector.signal", signal));
        }
        if link.role == Role::Entrypoint && t.failure.is_none() {
            s.kind = span::SpanKind::Server as i32;
        }
        let mut steps = t.steps.iter().filter(|st| st.pid == link.pid);
        for st in steps.by_ref().take(EVENTS_PER_PROCESS) {
            let mut attributes = vec![kv("inspector.detail", cut(&st.detail, ARG_BYTES * 4))];
            if let Some(ret) = st.ret {
                attributes.push(kv_int("inspector.return", ret));
            }
            s.events.push(span::Event {
                time_unix_nano: at(st.ktime_ns),
                name: st.kind.to_string(),
                attributes,
                ..Default::default()
            });
        }
        s.dropped_events_count = steps.count() as u32;
        out.push(s);
    }
    out
}

/// One export request carrying the traces of `timelines`.
pub fn request<'a>(
    host: &HostResource,
    timelines: impl IntoIterator<Item = &'a ContainerTimeline>,
    clock: &Clock,
) -> ExportTraceServiceRequest {
    let spans: Vec<Span> = timelines
        .into_iter()
        .flat_map(|t| spans(host, t, clock))
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: host.attributes.clone(),
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "inspector".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use crate::{export::docker_run_timeline as timeline, timeline::Phase};

    fn attr<'a>(s: &'a Span, key: &str) -> Option<&'a Value> {
        s.attributes
            .iter()
            .find(|a| a.key == key)
            .and_then(|a| a.value.as_ref()?.value.as_ref())
    }

    #[test]
    fn a_container_is_one_trace_with_its_phases_and_processes() {
        let mut t = timeline();
        t.fill_details();
        let host = HostResource::this_host();
        let clock = Clock::now();
        let spans = spans(&host, &t, &clock);
        let root = &spans[0];
        assert!(root.parent_span_id.is_empty());
        assert!(spans.iter().all(|s| s.trace_id == root.trace_id));
        assert_eq!(
            attr(root, "container.id"),
            Some(&Value::StringValue(t.id.clone()))
        );
        assert_eq!(
            attr(root, "container.runtime"),
            Some(&Value::StringValue("runc".into()))
        );
        assert_eq!(
            attr(root, "container.engine"),
            Some(&Value::StringValue("docker".into()))
        );
        // A span per phase, as long as the timeline says, under the root.
        for p in &t.phases {
            let s = spans.iter().find(|s| s.name == p.phase.key()).unwrap();
            assert_eq!(s.parent_span_id, root.span_id);
            assert_eq!(
                s.end_time_unix_nano - s.start_time_unix_nano,
                p.duration_ns,
                "{}",
                s.name
            );
        }
        // Every process, under a phase, with its steps as events.
        let init = spans
            .iter()
            .find(|s| s.name == Role::RuntimeInit.key())
            .unwrap();
        let create = spans
            .iter()
            .find(|s| s.name == Phase::Create.key())
            .unwrap();
        assert_eq!(init.parent_span_id, create.span_id);
        assert!(init.events.iter().any(|e| e.name == "unshare"), "{init:?}");
        let entrypoint = spans
            .iter()
            .find(|s| s.name == Role::Entrypoint.key())
            .unwrap();
        let pivot = entrypoint
            .events
            .iter()
            .find(|e| e.name == "pivot_root")
            .unwrap();
        assert!(
            matches!(&pivot.attributes[0].value.as_ref().unwrap().value, Some(Value::StringValue(d)) if !d.is_empty()),
            "{pivot:?}"
        );
        assert_eq!(spans.len(), 1 + t.phases.len() + t.chain.len());
        let mut ids: Vec<_> = spans.iter().map(|s| s.span_id.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), spans.len(), "span ids are unique");
        // It encodes, and the same container gives the same trace id.
        let bytes = request(&host, [&t], &clock).encode_to_vec();
        let back = ExportTraceServiceRequest::decode(&bytes[..]).unwrap();
        assert_eq!(
            back.resource_spans[0].scope_spans[0].spans.len(),
            spans.len()
        );
        assert_eq!(super::spans(&host, &t, &clock)[0].trace_id, root.trace_id);
    }

    #[test]
    fn environment_values_on_a_command_line_are_not_sent() {
        let argv: Vec<String> = [
            "docker",
            "run",
            "-e",
            "TOKEN=s3cret",
            "--env=KEY=v",
            "-e",
            "PATH",
            "img",
        ]
        .map(String::from)
        .to_vec();
        let out: Vec<String> = redacted(&argv).collect();
        assert_eq!(
            out,
            [
                "docker",
                "run",
                "-e",
                "TOKEN=<redacted>",
                "--env=KEY=<redacted>",
                "-e",
                "PATH",
                "img"
            ]
        );
    }

    #[test]
    fn a_failed_start_has_an_error_status_naming_it() {
        let mut t = timeline();
        t.failure = Some(crate::timeline::Failure {
            summary: "runc init failed: exec: no such file".into(),
            role: Role::RuntimeInit,
            pid: 1,
            phase: None,
            exit_code: Some(1),
            signal: None,
            syscall: Some("execve".into()),
            errno: Some("ENOENT".into()),
            subject: None,
            killed_by: None,
            messages: vec![crate::timeline::Message {
                role: Role::Client,
                pid: 2,
                stream: "stderr".into(),
                text: "docker: Error response from daemon".into(),
            }],
        });
        let spans = spans(&HostResource::this_host(), &t, &Clock::now());
        let status = spans[0].status.as_ref().unwrap();
        assert_eq!(status.code, StatusCode::Error as i32);
        assert!(status.message.contains("no such file"));
        assert_eq!(
            attr(&spans[0], "error.type"),
            Some(&Value::StringValue("ENOENT".into()))
        );
        let words = format!("{:?}", attr(&spans[0], "inspector.failure.messages"));
        assert!(words.contains("client: docker: Error response"), "{words}");
    }
}
