//! Containers already running when tracing starts: their processes from /proc,
//! their init processes from the runtimes' state directories.

use std::path::Path;

use super::Builder;
use crate::{probe::DEFAULT_TRACK_COMMS, track};

/// Where runtimes keep a `<id>/state.json` per container: runc's default root
/// (podman's too), Docker's, containerd's per namespace, and youki's.
const STATE_ROOTS: &[&str] = &[
    "/run/runc",
    "/run/docker/runtime-runc",
    "/run/containerd/runc",
    "/run/youki",
];

fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `(id, init pid)` of every container a runtime's state directory knows.
pub fn runtime_states() -> Vec<(String, u32)> {
    let mut found = Vec::new();
    for root in STATE_ROOTS {
        visit(Path::new(root), 2, &mut found);
    }
    found
}

fn visit(dir: &Path, depth: u32, found: &mut Vec<(String, u32)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let state = path.join("state.json");
        match std::fs::read(&state) {
            Ok(bytes) => {
                let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                    continue;
                };
                // runc's `init_process_pid`, youki's `pid`.
                let pid = v["init_process_pid"].as_u64().or(v["pid"].as_u64());
                if let (Some(id), Some(pid)) = (v["id"].as_str(), pid) {
                    found.push((id.to_string(), pid as u32));
                }
            }
            // Docker's and containerd's roots have a level of namespaces first.
            Err(_) if depth > 1 && path.is_dir() => visit(&path, depth - 1, found),
            Err(_) => {}
        }
    }
}

/// Tells the builder about the container processes running now; returns how
/// many containers were found running.
pub fn seed(builder: &mut Builder, now_ktime: u64, extra_comms: &[String]) -> usize {
    let procs = track::scan_proc();
    let comms: Vec<&str> = DEFAULT_TRACK_COMMS
        .iter()
        .copied()
        .chain(extra_comms.iter().map(String::as_str))
        .collect();
    let selected = track::select(&procs, &comms);
    // Parents before children, so that roles and containers are inherited.
    let mut order: Vec<&track::ProcEntry> =
        procs.iter().filter(|p| selected.contains(&p.pid)).collect();
    let depth = |p: &track::ProcEntry| {
        let mut d = 0;
        let mut cur = p.ppid;
        while let Some(parent) = procs
            .iter()
            .find(|q| q.pid == cur && selected.contains(&q.pid))
        {
            d += 1;
            cur = parent.ppid;
            if d > 64 {
                break;
            }
        }
        d
    };
    order.sort_by_key(|p| depth(p));
    for p in order {
        let argv = cmdline(p.pid);
        let exe = std::fs::read_link(format!("/proc/{}/exe", p.pid))
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        builder.seed_process(p.pid, p.ppid, &p.comm, &exe, &argv);
    }
    let states = runtime_states();
    let mut running = 0;
    for (id, pid) in states {
        if selected.contains(&pid) || Path::new(&format!("/proc/{pid}")).exists() {
            if !selected.contains(&pid) {
                let entry = procs.iter().find(|p| p.pid == pid);
                if let Some(e) = entry {
                    builder.seed_process(pid, e.ppid, &e.comm, "", &cmdline(pid));
                }
            }
            builder.seed_container_init(&id, pid, now_ktime);
            running += 1;
        }
    }
    running
}
