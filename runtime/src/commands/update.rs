//! `update`: change a container's resources while it lives, as `runc update`
//! does: a flag per resource, or the whole `linux.resources` object as JSON
//! with `-r FILE` (`-r -`: standard input, as containerd's shim sends it for
//! `docker update`). Flags win over the file. Only what this runtime applies
//! at create has a flag (memory, cpu, cpuset, pids): anything else is an
//! unknown argument rather than a setting silently dropped.

use std::{io::Read as _, path::PathBuf};

use oci_spec::runtime::{LinuxPidsBuilder, LinuxResources};

use crate::{
    Result,
    container::{Saved, Status},
    error::{Context as _, msg},
};

/// The resources named on the command line.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub memory_swap: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
}

pub struct Options {
    pub root: PathBuf,
    pub id: String,
    /// `-r FILE`, `-` for standard input.
    pub resources: Option<PathBuf>,
    pub flags: Flags,
}

pub fn update(o: &Options) -> Result<()> {
    let saved = Saved::load(&o.root, &o.id)?;
    match saved.status(&o.root) {
        Status::Created | Status::Running | Status::Paused => {}
        s => return Err(msg(format!("cannot update a container that is {s}"))),
    }
    let from_file = match &o.resources {
        None => LinuxResources::default(),
        Some(path) => {
            let mut text = String::new();
            if path.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .ctx(|| "cannot read the resources from standard input".into())?;
            } else {
                text = std::fs::read_to_string(path)
                    .ctx(|| format!("cannot read the resources {}", path.display()))?;
            }
            serde_json::from_str(&text).map_err(|e| {
                msg(format!(
                    "the resources {} are not a linux.resources object: {e}",
                    path.display()
                ))
            })?
        }
    };
    let r = with_flags(from_file, &o.flags)?;
    saved.cgroup.apply(&r)
}

/// `r` with what the flags name put over it.
fn with_flags(mut r: LinuxResources, f: &Flags) -> Result<LinuxResources> {
    let spec = |e: oci_spec::OciSpecError| msg(format!("update: {e}"));
    if f.memory.is_some() || f.memory_reservation.is_some() || f.memory_swap.is_some() {
        let mut m = r.memory().unwrap_or_default();
        if let Some(v) = f.memory {
            m.set_limit(Some(v));
        }
        if let Some(v) = f.memory_reservation {
            m.set_reservation(Some(v));
        }
        if let Some(v) = f.memory_swap {
            m.set_swap(Some(v));
        }
        r.set_memory(Some(m));
    }
    if f.cpu_shares.is_some()
        || f.cpu_period.is_some()
        || f.cpu_quota.is_some()
        || f.cpuset_cpus.is_some()
        || f.cpuset_mems.is_some()
    {
        let mut c = r.cpu().clone().unwrap_or_default();
        if let Some(v) = f.cpu_shares {
            c.set_shares(Some(v));
        }
        if let Some(v) = f.cpu_period {
            c.set_period(Some(v));
        }
        if let Some(v) = f.cpu_quota {
            c.set_quota(Some(v));
        }
        if let Some(v) = &f.cpuset_cpus {
            c.set_cpus(Some(v.clone()));
        }
        if let Some(v) = &f.cpuset_mems {
            c.set_mems(Some(v.clone()));
        }
        r.set_cpu(Some(c));
    }
    if let Some(v) = f.pids_limit {
        r.set_pids(Some(
            LinuxPidsBuilder::default().limit(v).build().map_err(spec)?,
        ));
    }
    Ok(r)
}

/// A size as runc's flags take it: bytes, or with a binary suffix (`48m`,
/// `1g`, `512KiB`), or `-1` for no limit.
pub fn parse_bytes(s: &str) -> std::result::Result<i64, String> {
    let t = s.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let lower = t.to_ascii_lowercase();
    let digits = lower
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits);
    let unit = unit.trim();
    let shift = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => {
            return Err(format!(
                "`{s}` is not a size (bytes, or 64k, 48m, 1g; -1 for no limit)"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a size (bytes, or 64k, 48m, 1g; -1 for no limit)"))?;
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > i64::MAX as f64 {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_runc_reads_them() {
        assert_eq!(parse_bytes("48m"), Ok(48 << 20));
        assert_eq!(parse_bytes("48M"), Ok(48 << 20));
        assert_eq!(parse_bytes("1g"), Ok(1 << 30));
        assert_eq!(parse_bytes("512KiB"), Ok(512 << 10));
        assert_eq!(parse_bytes("1.5k"), Ok(1536));
        assert_eq!(parse_bytes("100"), Ok(100));
        assert_eq!(parse_bytes("-1"), Ok(-1));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("-5").is_err());
        assert!(parse_bytes("1e400").is_err());
        assert!(parse_bytes("").is_err());
    }

    #[test]
    fn flags_win_over_the_file_and_keep_the_rest() {
        let file: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":1000,"reservation":10},"cpu":{"shares":512},"pids":{"limit":5}}"#,
        )
        .unwrap();
        let r = with_flags(
            file,
            &Flags {
                memory: Some(2000),
                cpuset_cpus: Some("0".into()),
                ..Flags::default()
            },
        )
        .unwrap();
        let m = r.memory().as_ref().unwrap();
        assert_eq!((m.limit(), m.reservation()), (Some(2000), Some(10)));
        let c = r.cpu().as_ref().unwrap();
        assert_eq!((c.shares(), c.cpus().as_deref()), (Some(512), Some("0")));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 5);
    }
}
