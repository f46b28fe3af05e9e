//! Timelines as a Chrome trace (JSON) file, which the Perfetto UI and
//! chrome://tracing open: per container, a track of its phases and one track
//! per role, each process a row, each step an instant on it; a failure an
//! instant named `start failed` (or `failed`, when the kernel killed a
//! process of a container that had started) on the failing process's row
//! and on the lifecycle track, with its summary, call, kill and words; with
//! `--why`, a track of the critical path, arrows where it crosses processes.

use serde_json::{Value, json};

use super::{
    ContainerTimeline, Role,
    present::{made_by, short_id},
};

/// Microseconds since `origin`, as Chrome traces count.
fn us(t: u64, origin: u64) -> f64 {
    t.saturating_sub(origin) as f64 / 1000.0
}

/// One Chrome trace document holding all the timelines.
pub fn document(timelines: &[ContainerTimeline]) -> Value {
    let origin = timelines.iter().map(|t| t.start_ns).min().unwrap_or(0);
    let mut events: Vec<Value> = Vec::new();
    // Track ids: each container takes a block of 100 "processes": 0 for its
    // phases, then one per role.
    for (n, t) in timelines.iter().enumerate() {
        let base = (n as u64 + 1) * 100;
        let label = short_id(&t.id);
        let lifecycle = base;
        events.push(json!({"ph": "M", "name": "process_name", "pid": lifecycle,
            "args": {"name": format!("container {label}{} · lifecycle", made_by(t.engine, t.runtime.as_deref()))}}));
        events.push(
            json!({"ph": "M", "name": "process_sort_index", "pid": lifecycle,
            "args": {"sort_index": lifecycle}}),
        );
        events.push(
            json!({"ph": "M", "name": "thread_name", "pid": lifecycle, "tid": 0,
            "args": {"name": "phases"}}),
        );
        for p in &t.phases {
            events.push(json!({
                "ph": "X", "name": p.phase.name(), "cat": "phase",
                "pid": lifecycle, "tid": 0,
                "ts": us(p.start_ns, origin), "dur": p.duration_ns as f64 / 1000.0,
                "args": {"container": t.id, "duration_ms": p.duration_ns as f64 / 1e6},
            }));
        }

        let mut roles: Vec<Role> = t.chain.iter().map(|l| l.role).collect();
        roles.sort();
        roles.dedup();
        let track =
            |role: Role| base + 1 + roles.iter().position(|r| *r == role).unwrap_or(0) as u64;
        for &role in &roles {
            events.push(
                json!({"ph": "M", "name": "process_name", "pid": track(role),
                "args": {"name": format!("container {label} · {}", role.name())}}),
            );
            events.push(
                json!({"ph": "M", "name": "process_sort_index", "pid": track(role),
                "args": {"sort_index": track(role)}}),
            );
        }
        // Each process is a row of its role's track, alive from its first to its
        // last appearance.
        for link in &t.chain {
            let pid = track(link.role);
            events.push(
                json!({"ph": "M", "name": "thread_name", "pid": pid, "tid": link.pid,
                "args": {"name": format!("{} [{}]", link.comm, link.pid)}}),
            );
            let end = link.exit_ns.unwrap_or(t.end_ns).max(link.start_ns);
            events.push(json!({
                "ph": "X", "name": link.argv.first().cloned().unwrap_or_else(|| link.comm.clone()),
                "cat": "process", "pid": pid, "tid": link.pid,
                "ts": us(link.start_ns, origin), "dur": (end - link.start_ns) as f64 / 1000.0,
                "args": {"argv": link.argv, "exe": link.exe, "exit_code": link.exit_code,
                         "signal": link.signal, "nspid": link.nspid},
            }));
        }
        for s in &t.steps {
            let pid = track(s.role);
            events.push(json!({
                "ph": "i", "s": "t", "name": s.kind, "cat": "syscall",
                "pid": pid, "tid": s.pid, "ts": us(s.ktime_ns, origin),
                "args": {"detail": s.detail(), "ret": s.ret, "duration_ns": s.duration_ns,
                         "phase": s.phase.map(|p| p.name())},
            }));
        }
        // Where the time went (`--why`): a track of the critical path, a row
        // per process on it, a slice per stretch (running, runnable,
        // blocked and why), and an arrow where the path goes from one
        // process to another (a wake-up, a fork).
        if let Some(why) = &t.why {
            let path_track = base + 99;
            events.push(json!({"ph": "M", "name": "process_name", "pid": path_track,
                "args": {"name": format!("container {label} · critical path")}}));
            events.push(
                json!({"ph": "M", "name": "process_sort_index", "pid": path_track,
                "args": {"sort_index": base + 1}}),
            );
            let mut named = Vec::new();
            for (i, seg) in why.critical_path.iter().enumerate() {
                if !named.contains(&seg.pid) {
                    named.push(seg.pid);
                    events.push(json!({"ph": "M", "name": "thread_name", "pid": path_track,
                        "tid": seg.pid,
                        "args": {"name": format!("{} {} [{}]", seg.role.name(), seg.comm, seg.pid)}}));
                }
                let ts = us(t.start_ns, origin) + seg.start_ms * 1000.0;
                events.push(json!({
                    "ph": "X", "name": format!("{} {}", seg.state.name(), seg.cause),
                    "cat": "critical path", "pid": path_track, "tid": seg.pid,
                    "ts": ts, "dur": seg.dur_ms * 1000.0,
                    "args": {"role": seg.role.name(), "tid": seg.tid, "state": seg.state.name(),
                             "cause": seg.cause, "duration_ms": seg.dur_ms},
                }));
                if let Some(next) = why.critical_path.get(i + 1)
                    && next.pid != seg.pid
                {
                    let id = base * 100_000 + i as u64;
                    let end = ts + seg.dur_ms * 1000.0;
                    events.push(
                        json!({"ph": "s", "name": "critical path", "cat": "critical path",
                        "id": id, "pid": path_track, "tid": seg.pid, "ts": end}),
                    );
                    events.push(json!({"ph": "f", "bp": "e", "name": "critical path",
                        "cat": "critical path", "id": id, "pid": path_track, "tid": next.pid,
                        "ts": end}));
                }
            }
        }
        // A failed start: marked where the process that failed ended, on its
        // row, and across the lifecycle track.
        if let Some(f) = &t.failure {
            let at = t
                .chain
                .iter()
                .find(|l| l.pid == f.pid && l.role == f.role)
                .and_then(|l| l.exit_ns)
                .unwrap_or(t.end_ns);
            let name = if f.phase >= Some(super::Phase::Running) {
                "failed"
            } else {
                "start failed"
            };
            let words: Vec<&str> = f.messages.iter().map(|m| m.text.as_str()).collect();
            for (pid, tid) in [(track(f.role), f.pid as u64), (lifecycle, 0)] {
                events.push(json!({
                    "ph": "i", "s": "t", "name": name, "cat": "failure",
                    "pid": pid, "tid": tid, "ts": us(at, origin),
                    "args": {"summary": f.summary, "role": f.role.name(), "pid": f.pid,
                             "syscall": f.syscall, "errno": f.errno,
                             "killed_by": f.killed_by, "messages": words},
                }));
            }
        }
    }
    json!({"traceEvents": events, "displayTimeUnit": "ms",
           "otherData": {"generator": "inspector timeline --format perfetto"}})
}
