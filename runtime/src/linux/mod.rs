//! The Linux mechanisms a container is built from, one concept each: what
//! the commands and init call, never the other way round.

pub mod capabilities;
pub mod cgroups;
pub mod clone;
pub mod console;
pub mod hooks;
pub mod mounts;
pub mod namespaces;
pub mod proc;
pub mod rootfs;
pub mod seccomp;
pub mod signal;
