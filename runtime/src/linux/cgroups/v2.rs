//! Pure cgroup2: one tree, controllers enabled from the root down, and device
//! rules as an eBPF program (cgroup2 has no devices controller).

use std::{
    fs,
    path::{Path, PathBuf},
};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

use super::{devices, v1, write};
use crate::{Result, error::Context as _};

pub fn create(root: &Path, rel: &Path) -> Result<PathBuf> {
    let dir = root.join(rel);
    // Enable the controllers we set in every ancestor, so the leaf has the files.
    let available = fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
    let enable: Vec<String> = ["cpu", "memory", "pids"]
        .iter()
        .filter(|c| available.split_whitespace().any(|a| a == **c))
        .map(|c| format!("+{c}"))
        .collect();
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        if !enable.is_empty() {
            // Best effort: a cgroup holding processes cannot delegate.
            let _ = fs::write(cur.join("cgroup.subtree_control"), enable.join(" "));
        }
        cur.push(c);
        if !cur.exists() {
            fs::create_dir(&cur).ctx(|| format!("cannot create cgroup {}", cur.display()))?;
        }
    }
    Ok(dir)
}

/// Enables `controller` in every ancestor of `dir` below the cgroup2 root,
/// top down, so that `dir` has its files.
fn enable_above(dir: &Path, controller: &str) -> Result<()> {
    let root = Path::new("/sys/fs/cgroup");
    let Ok(rel) = dir.strip_prefix(root) else {
        return Ok(());
    };
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        let enabled = fs::read_to_string(cur.join("cgroup.subtree_control")).unwrap_or_default();
        if !enabled.split_whitespace().any(|e| e == controller) {
            write(&cur, "cgroup.subtree_control", &format!("+{controller}"))?;
        }
        cur.push(c);
    }
    Ok(())
}

pub fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        if let Some(limit) = m.limit() {
            let v = if limit > 0 {
                limit.to_string()
            } else {
                "max".into()
            };
            write(dir, "memory.max", &v)?;
            if let Some(swap) = m.swap() {
                // v1's swap limit counts memory and swap together; v2's only swap.
                let v = if swap > 0 && limit > 0 {
                    (swap - limit).max(0).to_string()
                } else {
                    "max".into()
                };
                if dir.join("memory.swap.max").exists() {
                    write(dir, "memory.swap.max", &v)?;
                }
            }
        }
        if let Some(res) = m.reservation().filter(|r| *r > 0) {
            write(dir, "memory.low", &res.to_string())?;
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(shares) = c.shares().filter(|s| *s > 0) {
            let weight = 1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142;
            write(dir, "cpu.weight", &weight.to_string())?;
        }
        if let Some(quota) = c.quota().filter(|q| *q != 0) {
            let period = c.period().unwrap_or(100_000);
            let q = if quota > 0 {
                quota.to_string()
            } else {
                "max".into()
            };
            write(dir, "cpu.max", &format!("{q} {period}"))?;
        }
    }
    if let Some(c) = r.cpu() {
        let cpus = c.cpus().as_deref().filter(|s| !s.is_empty());
        let mems = c.mems().as_deref().filter(|s| !s.is_empty());
        if cpus.is_some() || mems.is_some() {
            // Enabled only for a container that asks: every other start
            // writes the same subtree_control as before.
            enable_above(dir, "cpuset")?;
        }
        if let Some(cpus) = cpus {
            write(dir, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = mems {
            write(dir, "cpuset.mems", mems)?;
        }
    }
    if let Some(p) = r.pids() {
        let limit = p.limit();
        let v = if limit > 0 {
            limit.to_string()
        } else {
            "max".into()
        };
        write(dir, "pids.max", &v)?;
    }
    for (file, value) in r.unified().iter().flatten() {
        write(dir, file, value)?;
    }
    Ok(())
}

/// Restricts the devices the cgroup's processes may use: the config's rules
/// in order from "deny everything", then what every container may use
/// (`v1::ALWAYS_ALLOWED`) and the config's own devices (`extra`), each in the
/// very text v1 writes to devices.allow/deny, so both mean the same.
pub fn restrict_devices(dir: &Path, rules: &[LinuxDeviceCgroup], extra: &[String]) -> Result<()> {
    let mut policy = devices::Policy::deny_all();
    for rule in rules {
        policy.apply(rule.allow(), &v1::device_rule(rule))?;
    }
    for line in v1::ALWAYS_ALLOWED
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
    {
        policy.apply(true, line)?;
    }
    devices::attach(dir, &policy)
}
