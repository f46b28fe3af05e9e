//! `inspector-runtime`: a small OCI runtime with runc's command line.
//!
//! The lifecycle follows runc: `create` starts an init process that builds the
//! container (namespaces, cgroups, mounts, pivot_root) and then blocks on the
//! `exec.fifo` in the container's state directory; `start` opens that FIFO, and
//! init executes the entrypoint. Every process that enters a container runs
//! from a sealed memfd copy of this binary, so nothing inside the container can
//! reach the binary on the host.
//!
//! One module per operation (`create`, `start`, `state`, ...) and one per
//! concern (`namespaces`, `rootfs`, `cgroups`, `seccomp`, ...).

pub mod capabilities;
pub mod cgroups;
pub mod config;
pub mod console;
pub mod container;
pub mod create;
pub mod delete;
pub mod error;
pub mod exec;
pub mod hooks;
pub mod init;
pub mod kill;
pub mod list;
pub mod log;
pub mod mounts;
pub mod namespaces;
pub mod pause;
pub mod process;
pub mod ps;
pub mod reexec;
pub mod rootfs;
pub mod run;
pub mod seccomp;
pub mod signal;
pub mod spec;
pub mod start;
pub mod state;
pub mod sync;
mod syscalls_i386;
mod syscalls_x32;
mod syscalls_x86_64;
pub mod time;

pub use error::{Error, Result};

/// The default `--root`: where each container's state directory lives.
pub const DEFAULT_ROOT: &str = "/run/inspector-runtime";
