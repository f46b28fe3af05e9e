//! Finding the container-related processes that were already running when
//! inspector started, so the probe reports them (and their children) too.

use std::collections::{HashMap, HashSet};

/// A process as /proc shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcEntry {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
}

/// Reads every process's pid, parent and comm from /proc.
pub fn scan_proc() -> Vec<ProcEntry> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        parse_stat(pid, &stat)
    })
    .collect()
}

/// `pid (comm) state ppid ...`, read by the runtime's parser (a comm may
/// hold spaces and parentheses).
pub fn parse_stat(pid: u32, stat: &str) -> Option<ProcEntry> {
    let stat = runtime::linux::proc::Stat::parse(stat)?;
    Some(ProcEntry {
        pid,
        ppid: stat.ppid()?,
        comm: stat.comm.to_string(),
    })
}

/// The processes whose comm is in `comms`, and all their descendants.
pub fn select(procs: &[ProcEntry], comms: &[&str]) -> HashSet<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for p in procs {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    let mut selected = HashSet::new();
    let mut stack: Vec<u32> = procs
        .iter()
        .filter(|p| comms.contains(&p.comm.as_str()))
        .map(|p| p.pid)
        .collect();
    while let Some(pid) = stack.pop() {
        if selected.insert(pid) {
            stack.extend(children.get(&pid).into_iter().flatten().copied());
        }
    }
    selected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comm_with_spaces_and_parens() {
        let e = parse_stat(42, "42 (runc:[2:INIT) x) S 7 42 42 0").unwrap();
        assert_eq!(e.comm, "runc:[2:INIT) x");
        assert_eq!(e.ppid, 7);
    }

    #[test]
    fn selects_descendants_of_matching_processes() {
        let p = |pid, ppid, comm: &str| ProcEntry {
            pid,
            ppid,
            comm: comm.to_string(),
        };
        let procs = vec![
            p(1, 0, "systemd"),
            p(10, 1, "containerd"),
            p(11, 1, "containerd-shim"),
            p(12, 11, "sh"),
            p(13, 12, "sleep"),
            p(20, 1, "bash"),
        ];
        let got = select(&procs, &["containerd", "containerd-shim"]);
        let mut got: Vec<_> = got.into_iter().collect();
        got.sort();
        assert_eq!(got, vec![10, 11, 12, 13]);
    }
}
