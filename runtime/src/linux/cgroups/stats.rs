//! A container's resource usage read from its cgroups, as `runc events`
//! reports it: the same JSON (runc's `types.Stats`), with its names and its
//! habit of leaving out zero values, so that whatever reads runc's output
//! (scripts, monitoring agents) reads ours.
//!
//! v1 (or hybrid): cpuacct, cpu, cpuset, memory (with memsw and kmem),
//! pids, blkio's throttle counters. Pure cgroup2: cpu.stat, cpuset.*.effective,
//! memory.{current,max,stat}, memory.swap.*, pids.*, io.stat. hugetlb, Intel
//! RDT and network interfaces are not collected (runc reports no network
//! either).

use std::{fs, path::Path};

use serde::Serialize;

use super::Cgroup;

/// runc's value for "no limit" in a memory entry.
const NO_LIMIT: u64 = u64::MAX;

/// Clock ticks per second of cpuacct.stat (USER_HZ, 100 on every Linux ABI).
const USER_HZ: u64 = 100;

#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: serde_json::Map<String, serde_json::Value>,
    pub intel_rdt: serde_json::Map<String, serde_json::Value>,
    pub network_interfaces: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Default, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

fn zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Default, Serialize)]
pub struct CpuUsage {
    /// Nanoseconds, all CPUs.
    #[serde(skip_serializing_if = "zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Throttling {
    #[serde(skip_serializing_if = "zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "zero")]
    pub throttled_periods: u64,
    #[serde(skip_serializing_if = "zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

#[derive(Debug, Default, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Memory {
    #[serde(skip_serializing_if = "zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub raw: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "zero")]
    pub current: u64,
    /// 0 for no limit.
    #[serde(skip_serializing_if = "zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Serialize)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "zero")]
    pub value: u64,
}

fn read(dir: &Path, file: &str) -> Option<String> {
    fs::read_to_string(dir.join(file)).ok()
}

/// A single number; `max` (cgroup2's "no limit") is `none`.
fn number(dir: &Path, file: &str) -> Option<u64> {
    read(dir, file)?.trim().parse().ok()
}

fn limit(dir: &Path, file: &str, none: u64) -> u64 {
    match read(dir, file) {
        Some(t) if t.trim() == "max" => none,
        Some(t) => t.trim().parse().unwrap_or(0),
        None => 0,
    }
}

/// `key value` lines (memory.stat, cpu.stat, cpuacct.stat).
fn keyed(dir: &Path, file: &str) -> std::collections::BTreeMap<String, u64> {
    read(dir, file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn list(dir: &Path, file: &str) -> Vec<u64> {
    read(dir, file)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect()
}

/// A cpuset list (`0-2,5`) as its members.
pub fn parse_cpu_list(text: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
            out.extend(a..=b.max(a));
        }
    }
    out
}

impl Cgroup {
    /// What the container's cgroups say now.
    pub fn stats(&self) -> Stats {
        match &self.v2 {
            Some(dir) => v2(dir),
            None => self.v1_stats(),
        }
    }

    fn v1_stats(&self) -> Stats {
        let mut s = Stats::default();
        if let Some(d) = self.v1_dir("cpuacct") {
            let u = &mut s.cpu.usage;
            u.total = number(d, "cpuacct.usage").unwrap_or(0);
            u.percpu = list(d, "cpuacct.usage_percpu");
            u.percpu_kernel = list(d, "cpuacct.usage_percpu_sys");
            u.percpu_user = list(d, "cpuacct.usage_percpu_user");
            let ticks = keyed(d, "cpuacct.stat");
            let ns = |k: &str| ticks.get(k).copied().unwrap_or(0) * (1_000_000_000 / USER_HZ);
            u.kernel = ns("system");
            u.user = ns("user");
        }
        if let Some(d) = self.v1_dir("cpu") {
            let t = keyed(d, "cpu.stat");
            s.cpu.throttling = Throttling {
                periods: t.get("nr_periods").copied().unwrap_or(0),
                throttled_periods: t.get("nr_throttled").copied().unwrap_or(0),
                throttled_time: t.get("throttled_time").copied().unwrap_or(0),
            };
        }
        if let Some(d) = self.v1_dir("cpuset") {
            let c = &mut s.cpuset;
            c.cpus = parse_cpu_list(&read(d, "cpuset.cpus").unwrap_or_default());
            c.mems = parse_cpu_list(&read(d, "cpuset.mems").unwrap_or_default());
            let n = |f: &str| number(d, &format!("cpuset.{f}")).unwrap_or(0);
            c.cpu_exclusive = n("cpu_exclusive");
            c.mem_hardwall = n("mem_hardwall");
            c.mem_exclusive = n("mem_exclusive");
            c.memory_migrate = n("memory_migrate");
            c.memory_spread_page = n("memory_spread_page");
            c.memory_spread_slab = n("memory_spread_slab");
            c.memory_pressure = n("memory_pressure");
            c.sched_load_balance = n("sched_load_balance");
            c.sched_relax_domain_level = read(d, "cpuset.sched_relax_domain_level")
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
        }
        if let Some(d) = self.v1_dir("memory") {
            let entry = |prefix: &str| MemoryEntry {
                limit: number(d, &format!("{prefix}limit_in_bytes")).unwrap_or(0),
                usage: number(d, &format!("{prefix}usage_in_bytes")).unwrap_or(0),
                max: number(d, &format!("{prefix}max_usage_in_bytes")).unwrap_or(0),
                failcnt: number(d, &format!("{prefix}failcnt")).unwrap_or(0),
            };
            let m = &mut s.memory;
            m.usage = entry("memory.");
            m.swap = entry("memory.memsw.");
            m.kernel = entry("memory.kmem.");
            m.kernel_tcp = entry("memory.kmem.tcp.");
            m.raw = keyed(d, "memory.stat");
            m.cache = m.raw.get("cache").copied().unwrap_or(0);
        }
        if let Some(d) = self.v1_dir("pids") {
            s.pids = Pids {
                current: number(d, "pids.current").unwrap_or(0),
                limit: limit(d, "pids.max", 0),
            };
        }
        if let Some(d) = self.v1_dir("blkio") {
            s.blkio = Blkio {
                io_service_bytes_recursive: blkio_v1(
                    d,
                    "blkio.throttle.io_service_bytes_recursive",
                ),
                io_serviced_recursive: blkio_v1(d, "blkio.throttle.io_serviced_recursive"),
            };
        }
        s
    }
}

/// `MAJOR:MINOR Op VALUE` lines; the `Total` line is left out, as runc does.
fn blkio_v1(dir: &Path, file: &str) -> Vec<BlkioEntry> {
    read(dir, file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, op, value) = (f.next()?, f.next()?, f.next()?);
            let (major, minor) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_string(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

fn v2(dir: &Path) -> Stats {
    let mut s = Stats::default();
    let cpu = keyed(dir, "cpu.stat");
    let us = |k: &str| cpu.get(k).copied().unwrap_or(0) * 1000;
    s.cpu.usage.total = us("usage_usec");
    s.cpu.usage.user = us("user_usec");
    s.cpu.usage.kernel = us("system_usec");
    s.cpu.throttling = Throttling {
        periods: cpu.get("nr_periods").copied().unwrap_or(0),
        throttled_periods: cpu.get("nr_throttled").copied().unwrap_or(0),
        throttled_time: us("throttled_usec"),
    };
    s.cpuset.cpus = parse_cpu_list(&read(dir, "cpuset.cpus.effective").unwrap_or_default());
    s.cpuset.mems = parse_cpu_list(&read(dir, "cpuset.mems.effective").unwrap_or_default());
    let m = &mut s.memory;
    m.raw = keyed(dir, "memory.stat");
    m.cache = m.raw.get("file").copied().unwrap_or(0);
    let events = keyed(dir, "memory.events");
    m.usage = MemoryEntry {
        limit: limit(dir, "memory.max", NO_LIMIT),
        usage: number(dir, "memory.current").unwrap_or(0),
        max: number(dir, "memory.peak").unwrap_or(0),
        failcnt: events.get("max").copied().unwrap_or(0),
    };
    // As runc: cgroup2 counts swap alone; memory + swap stands in for v1's memsw.
    let swap_limit = limit(dir, "memory.swap.max", NO_LIMIT);
    m.swap = MemoryEntry {
        limit: if swap_limit == NO_LIMIT || m.usage.limit == NO_LIMIT {
            NO_LIMIT
        } else {
            swap_limit + m.usage.limit
        },
        usage: number(dir, "memory.swap.current").unwrap_or(0) + m.usage.usage,
        ..Default::default()
    };
    s.pids = Pids {
        current: number(dir, "pids.current").unwrap_or(0),
        limit: limit(dir, "pids.max", 0),
    };
    // io.stat: `MAJOR:MINOR rbytes=N wbytes=N rios=N wios=N ...`.
    for line in read(dir, "io.stat").unwrap_or_default().lines() {
        let mut f = line.split_whitespace();
        let Some((major, minor)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let (list, op) = match k {
                "rbytes" => (&mut s.blkio.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut s.blkio.io_service_bytes_recursive, "Write"),
                "rios" => (&mut s.blkio.io_serviced_recursive, "Read"),
                "wios" => (&mut s.blkio.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value: v.parse().unwrap_or(0),
            });
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-2,5\n"), vec![0, 1, 2, 5]);
        assert_eq!(parse_cpu_list(""), Vec::<u16>::new());
        assert_eq!(parse_cpu_list("3"), vec![3]);
    }

    #[test]
    fn zeros_are_left_out_as_runc_leaves_them() {
        let v = serde_json::to_value(Stats::default()).unwrap();
        assert_eq!(
            v["cpu"]["usage"],
            serde_json::json!({"kernel": 0, "user": 0})
        );
        assert_eq!(v["cpu"]["throttling"], serde_json::json!({}));
        assert_eq!(v["pids"], serde_json::json!({}));
        assert_eq!(v["blkio"], serde_json::json!({}));
        assert_eq!(
            v["memory"]["kernelTCP"],
            serde_json::json!({"limit": 0, "failcnt": 0})
        );
        assert!(v["network_interfaces"].is_null());
    }

    #[test]
    fn cgroup2_files() {
        let dir = std::env::temp_dir().join(format!("stats-v2-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        for (f, t) in [
            (
                "cpu.stat",
                "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\n",
            ),
            ("memory.max", "max\n"),
            ("memory.current", "4096\n"),
            ("memory.stat", "anon 4096\nfile 8192\n"),
            ("memory.swap.max", "0\n"),
            ("pids.current", "2\n"),
            ("pids.max", "max\n"),
            (
                "io.stat",
                "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
            ),
            ("cpuset.cpus.effective", "0-1\n"),
        ] {
            fs::write(dir.join(f), t).unwrap();
        }
        let s = v2(&dir);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            (s.cpu.usage.total, s.cpu.usage.user, s.cpu.usage.kernel),
            (1_500_000, 1_000_000, 500_000)
        );
        assert_eq!(
            (s.memory.usage.limit, s.memory.usage.usage),
            (NO_LIMIT, 4096)
        );
        assert_eq!((s.memory.swap.limit, s.memory.cache), (NO_LIMIT, 8192));
        assert_eq!((s.pids.current, s.pids.limit), (2, 0));
        assert_eq!(s.cpuset.cpus, vec![0, 1]);
        assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
        assert_eq!(s.blkio.io_serviced_recursive[1].value, 2);
    }
}
