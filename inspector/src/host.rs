//! Facts about this machine that turn the probe's numbers into names: the wall
//! clock, cgroup hierarchies and the filesystems they are mounted from.

use std::collections::HashMap;

/// Converts the probe's CLOCK_MONOTONIC nanoseconds to wall-clock time.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// realtime − monotonic, in ns.
    offset_ns: i128,
}

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

impl Clock {
    pub fn now() -> Self {
        let mono = clock_ns(libc::CLOCK_MONOTONIC);
        let real = clock_ns(libc::CLOCK_REALTIME);
        Clock {
            offset_ns: real - mono,
        }
    }

    /// Monotonic ns now, on the probe's clock.
    pub fn monotonic_ns() -> u64 {
        clock_ns(libc::CLOCK_MONOTONIC) as u64
    }

    /// Unix time in ns of a probe timestamp.
    pub fn unix_ns(&self, ktime: u64) -> i128 {
        ktime as i128 + self.offset_ns
    }

    pub fn rfc3339(&self, ktime: u64) -> String {
        let ns = self.unix_ns(ktime).max(0) as u128;
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns as u64);
        humantime::format_rfc3339_nanos(t).to_string()
    }
}

/// A cgroup filesystem mount, keyed by the device of its superblock.
#[derive(Clone, Debug, PartialEq)]
pub struct CgroupMount {
    pub mount_point: String,
    /// `memory`, `cpu,cpuacct`, `name=systemd`, or `cgroup2`.
    pub hierarchy: String,
}

/// Names of cgroup hierarchies and where they are mounted.
#[derive(Clone, Debug, Default)]
pub struct Cgroups {
    /// Hierarchy id (as in /proc/<pid>/cgroup) → its name.
    by_id: HashMap<u32, String>,
    /// "major:minor" → mount.
    by_dev: HashMap<(u32, u32), CgroupMount>,
}

impl Cgroups {
    pub fn read() -> Self {
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        Self::parse(&cgroup, &mountinfo)
    }

    pub fn parse(proc_cgroup: &str, mountinfo: &str) -> Self {
        let mut by_id = HashMap::new();
        for line in proc_cgroup.lines() {
            let mut f = line.splitn(3, ':');
            let (Some(id), Some(controllers)) = (f.next(), f.next()) else {
                continue;
            };
            let Ok(id) = id.parse::<u32>() else { continue };
            let name = if id == 0 && controllers.is_empty() {
                "cgroup2".to_string()
            } else {
                controllers.to_string()
            };
            by_id.insert(id, name);
        }
        by_id.entry(0).or_insert_with(|| "cgroup2".to_string());

        let mut by_dev = HashMap::new();
        for m in runtime::linux::proc::MountInfo::parse_all(mountinfo) {
            let hierarchy = match m.fstype.as_str() {
                "cgroup2" => "cgroup2".to_string(),
                "cgroup" => v1_hierarchy(&m.super_options),
                _ => continue,
            };
            by_dev.entry(m.dev).or_insert(CgroupMount {
                mount_point: m.mount_point.to_string_lossy().into_owned(),
                hierarchy,
            });
        }
        Cgroups { by_id, by_dev }
    }

    /// The name of hierarchy `id` (`memory`, `cgroup2`, ...).
    pub fn hierarchy(&self, id: u32) -> String {
        self.by_id
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("hierarchy {id}"))
    }

    /// The mount of the cgroup filesystem on device `dev` (the kernel's encoding).
    pub fn mount(&self, dev: u32) -> Option<&CgroupMount> {
        self.by_dev.get(&(dev >> 20, dev & 0xfffff))
    }
}

/// The hierarchy name of a v1 cgroup mount, from its super options
/// (`rw,memory` → `memory`, `rw,xattr,name=systemd` → `name=systemd`).
fn v1_hierarchy(super_options: &str) -> String {
    const NOT_CONTROLLERS: &[&str] = &[
        "rw",
        "ro",
        "xattr",
        "noprefix",
        "clone_children",
        "cpuset_v2_mode",
        "favordynmods",
    ];
    super_options
        .split(',')
        .filter(|o| !NOT_CONTROLLERS.contains(o) && !o.starts_with("release_agent="))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CGROUP: &str =
        "12:pids:/user.slice\n4:memory:/user.slice\n1:name=systemd:/init.scope\n0::/init.scope\n";
    const MOUNTINFO: &str = "\
30 24 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
33 30 0:29 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate
36 30 0:32 / /sys/fs/cgroup/memory rw,nosuid shared:15 - cgroup cgroup rw,memory
37 30 0:33 / /sys/fs/cgroup/systemd rw shared:16 - cgroup cgroup rw,xattr,name=systemd
";

    #[test]
    fn names_hierarchies_by_id() {
        let c = Cgroups::parse(CGROUP, MOUNTINFO);
        assert_eq!(c.hierarchy(4), "memory");
        assert_eq!(c.hierarchy(1), "name=systemd");
        assert_eq!(c.hierarchy(0), "cgroup2");
        assert_eq!(c.hierarchy(99), "hierarchy 99");
    }

    #[test]
    fn finds_mounts_by_device() {
        let c = Cgroups::parse(CGROUP, MOUNTINFO);
        let memory = c.mount(32).unwrap();
        assert_eq!(memory.mount_point, "/sys/fs/cgroup/memory");
        assert_eq!(memory.hierarchy, "memory");
        assert_eq!(c.mount(33).unwrap().hierarchy, "name=systemd");
        assert_eq!(c.mount(29).unwrap().hierarchy, "cgroup2");
        assert!(c.mount(26).is_none(), "tmpfs is not a cgroup mount");
    }
}
