//! Namespaces: which to create, which to join by path, and user namespace id maps.

use std::{
    fs::File,
    os::fd::AsFd,
    path::{Path, PathBuf},
};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType};
use serde::{Deserialize, Serialize};

use crate::{Result, error::Context as _};

/// The order namespaces are joined in: the user namespace first (it owns the
/// others), the mount namespace last (its paths would hide the others').
pub const JOIN_ORDER: &[LinuxNamespaceType] = &[
    LinuxNamespaceType::User,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::Mount,
];

pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The name under /proc/PID/ns/.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// What init does about namespaces: create these, join those.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Plan {
    pub create: Vec<LinuxNamespaceType>,
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
}

impl Plan {
    pub fn from_spec(namespaces: &[oci_spec::runtime::LinuxNamespace]) -> Plan {
        let mut plan = Plan::default();
        for ns in namespaces {
            match ns.path() {
                Some(p) if !p.as_os_str().is_empty() => plan.join.push((ns.typ(), p.clone())),
                _ => plan.create.push(ns.typ()),
            }
        }
        plan
    }

    /// Join every namespace of a running container (for `exec`).
    pub fn join_container(pid: i32, types: &[LinuxNamespaceType]) -> Plan {
        let own = |t| std::fs::read_link(format!("/proc/self/ns/{}", proc_name(t))).ok();
        let mut plan = Plan::default();
        for &t in types {
            let path = PathBuf::from(format!("/proc/{pid}/ns/{}", proc_name(t)));
            // setns into one's own user namespace is refused; skip namespaces we share.
            if std::fs::read_link(&path).ok() != own(t) || own(t).is_none() {
                plan.join.push((t, path));
            }
        }
        plan
    }

    /// The namespaces a `create` can give the container's first process
    /// straight from its clone, with no process in between: when the plan
    /// makes a new pid namespace (so that process is its pid 1) and neither
    /// joins one by path nor involves a user or time namespace (those need
    /// their maps or offsets written between steps). The cgroup namespace is
    /// left out: the process makes it once it is in all its cgroups.
    pub fn direct_clone(&self) -> Option<CloneFlags> {
        let simple = self.join.is_empty()
            && self.creates(LinuxNamespaceType::Pid)
            && !self.has(LinuxNamespaceType::User)
            && !self.has(LinuxNamespaceType::Time);
        simple.then(|| {
            self.create
                .iter()
                .filter(|t| **t != LinuxNamespaceType::Cgroup)
                .fold(CloneFlags::empty(), |f, t| f | flag(*t))
        })
    }

    pub fn creates(&self, t: LinuxNamespaceType) -> bool {
        self.create.contains(&t)
    }

    pub fn has(&self, t: LinuxNamespaceType) -> bool {
        self.creates(t) || self.join.iter().any(|(j, _)| *j == t)
    }

    /// Opens every namespace to join, before any is joined (paths change meaning after).
    pub fn open_joins(&self) -> Result<Vec<(LinuxNamespaceType, File)>> {
        let mut out = Vec::new();
        for t in JOIN_ORDER {
            for (jt, path) in self.join.iter().filter(|(jt, _)| jt == t) {
                let f = File::open(path).ctx(|| {
                    format!(
                        "cannot open {} namespace {}",
                        proc_name(*jt),
                        path.display()
                    )
                })?;
                out.push((*jt, f));
            }
        }
        Ok(out)
    }
}

pub fn setns(t: LinuxNamespaceType, f: &File) -> Result<()> {
    nix::sched::setns(f.as_fd(), flag(t)).ctx(|| format!("cannot join {} namespace", proc_name(t)))
}

/// Writes uid_map and gid_map of `pid` (its user namespace waits for them).
pub fn write_id_maps(pid: i32, uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<()> {
    let text = |maps: &[LinuxIdMapping]| {
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    let proc = Path::new("/proc").join(pid.to_string());
    if !uids.is_empty() {
        std::fs::write(proc.join("uid_map"), text(uids)).ctx(|| "cannot write uid_map".into())?;
    }
    if !gids.is_empty() {
        std::fs::write(proc.join("gid_map"), text(gids)).ctx(|| "cannot write gid_map".into())?;
    }
    Ok(())
}
