//! `inspector-runtime`: a small OCI runtime with runc's command line.
//!
//! The lifecycle follows runc: `create` starts an init process that builds the
//! container (namespaces, cgroups, mounts, pivot_root) and then blocks on the
//! `exec.fifo` in the container's state directory; `start` opens that FIFO, and
//! init executes the entrypoint. Every process that enters a container runs
//! from a sealed memfd copy of this binary, so nothing inside the container can
//! reach the binary on the host.
//!
//! Where things live (youki's layout):
//!
//! - `commands/`: runc's commands, one file each, named like the command
//!   (`create`, `start`, `run`, `state`, `kill`, `delete`, `exec`, `ps`,
//!   `pause` with `resume`, `list`, `spec`, `update`, `features`, `events`);
//!   main.rs only parses the command line and calls them.
//! - `linux/`: the kernel mechanisms: `namespaces`, `mounts` (options and
//!   opening paths inside the rootfs), `rootfs` (building it, pivot_root),
//!   `cgroups/` (v1, v2, device rules as eBPF, `stats` as runc reports
//!   them), `clone` (clone3 into namespaces and a cgroup2 directory),
//!   `capabilities`, `seccomp/`
//!   (the filter compiler, and the x32 syscall table the `syscalls` crate
//!   lacks), `console`,
//!   `hooks`, `signal` (names and numbers) and `proc` (reading /proc/PID/stat
//!   and mountinfo, shared with inspector).
//! - Beside them, what ties a container together: `container` (its state
//!   directory and lifecycle status, and the container-id rule), `config`
//!   (loading and checking config.json), `init` (what runs inside, from the
//!   sealed copy), `process` (the last steps before the entrypoint, shared by
//!   init and `exec`), `reexec` (the sealed memfd copy and its keeper),
//!   `sync` (messages between the runtime and init), `log` (`--log`), `time`
//!   (RFC 3339 timestamps) and `error`.

pub mod commands;
pub mod config;
pub mod container;
pub mod error;
pub mod init;
pub mod linux;
pub mod log;
pub mod process;
pub mod reexec;
pub mod sync;
pub mod time;

pub use error::{Error, Result};

/// The default `--root`: where each container's state directory lives.
pub const DEFAULT_ROOT: &str = "/run/inspector-runtime";
