//! cgroup v1 hierarchies (and, on a hybrid machine, the cgroup2 tree beside them).

use std::{
    fs,
    path::{Path, PathBuf},
};

use oci_spec::runtime::{LinuxDeviceType, LinuxResources};

use super::write;
use crate::{Result, error::Context as _, linux::proc::MountInfo};

/// The hierarchies a container gets a directory in.
const WANTED: &[&str] = &[
    "memory", "cpu", "cpuacct", "cpuset", "pids", "devices", "freezer", "blkio", "systemd",
    "unified",
];

/// (name, mount point) of each mounted hierarchy we use, from /proc/self/mountinfo.
pub fn hierarchies() -> Vec<(String, PathBuf)> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found = Vec::new();
    for m in MountInfo::parse_all(&info) {
        let name = match m.fstype.as_str() {
            "cgroup" => m.super_options.split(',').find_map(|o| {
                let o = o.strip_prefix("name=").unwrap_or(o);
                WANTED.contains(&o).then_some(o)
            }),
            "cgroup2" => Some("unified"),
            _ => None,
        };
        if let Some(name) = name
            && !found.iter().any(|(n, _): &(String, PathBuf)| n == name)
        {
            found.push((name.to_string(), m.mount_point));
        }
    }
    found
}

/// Makes `planned`, each hierarchy's directory for `rel` (`super::planned`).
pub fn create(planned: &[(String, PathBuf)], rel: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut made: Vec<(String, PathBuf)> = Vec::new();
    for (name, dir) in planned {
        let made_dir = match dir.ancestors().nth(rel.components().count()) {
            Some(mount) if name == "cpuset" => make_cpuset(mount, rel),
            _ => fs::create_dir_all(dir).ctx(|| format!("cannot create cgroup {}", dir.display())),
        };
        if let Err(e) = made_dir {
            for (_, d) in &made {
                let _ = fs::remove_dir(d);
            }
            return Err(e);
        }
        made.push((name.clone(), dir.clone()));
    }
    Ok(made)
}

/// A new cpuset cgroup starts with no cpus and mems and cannot hold a task:
/// copy them down from the parent at each level.
fn make_cpuset(mount: &Path, rel: &Path) -> Result<()> {
    let mut cur = mount.to_path_buf();
    for c in rel.components() {
        let parent = cur.clone();
        cur.push(c);
        if !cur.exists() {
            fs::create_dir(&cur).ctx(|| format!("cannot create cgroup {}", cur.display()))?;
        }
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let mine = fs::read_to_string(cur.join(file)).unwrap_or_default();
            if mine.trim().is_empty() {
                let from = fs::read_to_string(parent.join(file)).unwrap_or_default();
                write(&cur, file, from.trim())?;
            }
        }
    }
    Ok(())
}

fn find<'a>(dirs: &'a [(String, PathBuf)], name: &str) -> Option<&'a PathBuf> {
    dirs.iter().find(|(n, _)| n == name).map(|(_, d)| d)
}

/// What every container may use whatever its rules say, as runc allows them:
/// the default devices, the pty devices, and mknod of anything.
pub const ALWAYS_ALLOWED: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
];

pub fn allow_devices(dirs: &[(String, PathBuf)], extra: &[String]) -> Result<()> {
    if let Some(dir) = find(dirs, "devices") {
        for rule in ALWAYS_ALLOWED
            .iter()
            .map(|s| s.to_string())
            .chain(extra.iter().cloned())
        {
            write(dir, "devices.allow", &rule)?;
        }
    }
    Ok(())
}

pub fn apply(dirs: &[(String, PathBuf)], r: &LinuxResources) -> Result<()> {
    if let (Some(m), Some(dir)) = (r.memory(), find(dirs, "memory")) {
        // The kernel keeps the limit at or below memory and swap's: raising
        // both (an update) writes memory and swap first.
        let memsw = fs::read_to_string(dir.join("memory.memsw.limit_in_bytes"))
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok());
        let swap_first = match (m.limit(), m.swap(), memsw) {
            (Some(limit), Some(_), Some(now)) => limit == -1 || limit > now,
            _ => false,
        };
        if swap_first && let Some(swap) = m.swap() {
            write(dir, "memory.memsw.limit_in_bytes", &swap.to_string())?;
        }
        if let Some(limit) = m.limit() {
            write(dir, "memory.limit_in_bytes", &limit.to_string())?;
        }
        if let Some(res) = m.reservation() {
            write(dir, "memory.soft_limit_in_bytes", &res.to_string())?;
        }
        if let Some(swap) = m.swap().filter(|_| !swap_first) {
            // Only there when the kernel accounts swap.
            if dir.join("memory.memsw.limit_in_bytes").exists() {
                write(dir, "memory.memsw.limit_in_bytes", &swap.to_string())?;
            }
        }
        if let Some(s) = m.swappiness()
            && s <= 100
        {
            write(dir, "memory.swappiness", &s.to_string())?;
        }
        if m.disable_oom_killer() == Some(true) {
            write(dir, "memory.oom_control", "1")?;
        }
    }
    if let Some(c) = r.cpu() {
        let dir = find(dirs, "cpu");
        if let Some(dir) = dir {
            if let Some(shares) = c.shares().filter(|s| *s > 0) {
                write(dir, "cpu.shares", &shares.to_string())?;
            }
            if let Some(period) = c.period().filter(|p| *p > 0) {
                write(dir, "cpu.cfs_period_us", &period.to_string())?;
            }
            if let Some(quota) = c.quota().filter(|q| *q != 0) {
                write(dir, "cpu.cfs_quota_us", &quota.to_string())?;
            }
        }
    }
    if let (Some(c), Some(dir)) = (r.cpu(), find(dirs, "cpuset")) {
        // Made with its parent's (make_cpuset): narrowed here.
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            write(dir, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            write(dir, "cpuset.mems", mems)?;
        }
    }
    if let (Some(p), Some(dir)) = (r.pids(), find(dirs, "pids")) {
        let limit = p.limit();
        let value = if limit > 0 {
            limit.to_string()
        } else {
            "max".into()
        };
        write(dir, "pids.max", &value)?;
    }
    if let (Some(rules), Some(dir)) = (r.devices(), find(dirs, "devices")) {
        for rule in rules {
            let file = if rule.allow() {
                "devices.allow"
            } else {
                "devices.deny"
            };
            write(dir, file, &device_rule(rule))?;
        }
    }
    Ok(())
}

/// `c 1:3 rwm`, with `*` for a missing number and `a` for all devices.
pub fn device_rule(rule: &oci_spec::runtime::LinuxDeviceCgroup) -> String {
    let typ = match rule.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::C | LinuxDeviceType::U => "c",
        LinuxDeviceType::B => "b",
        LinuxDeviceType::P => "p",
        LinuxDeviceType::A => "a",
    };
    let num = |n: Option<i64>| {
        n.filter(|n| *n >= 0)
            .map_or("*".to_string(), |n| n.to_string())
    };
    let access = rule.access().clone().unwrap_or_else(|| "rwm".into());
    format!("{typ} {}:{} {access}", num(rule.major()), num(rule.minor()))
}
