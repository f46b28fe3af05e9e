//! The probe: eBPF programs on the kernel's tracepoints that write what
//! container engines, shims, runtimes and their children do to a ring
//! buffer, and [`Probe`], which brings them up and reads them.
//!
//! The probe comes up one of three ways (loaded fresh, reopened from its
//! pins, or adopted with its links from the keeper of an earlier run), and
//! [`lifecycle`] alone decides and drives them, in this order, each stage's
//! work in its own file:
//!
//! 1. plan: what the options ask ([`plan`]), checked against the machine
//!    ([`prereq`]);
//! 2. choose: the pinned set's lease ([`pinned`]) or its keeper's links
//!    ([`keeper`]), or neither;
//! 3. take the programs and maps: adopted ([`keeper`]), reopened
//!    ([`pinned`]), or loaded from the object ([`loader`], fitted to the
//!    kernel by [`kernel`], with the struct offsets [`offsets`] reads from
//!    the kernel's BTF with [`btf`]) and pinned for the next run;
//! 4. ready the maps for this run ([`maps`]);
//! 5. attach what is not attached yet ([`link`]);
//! 6. switch on;
//! 7. down, when the probe is dropped: switched off, its links handed to a
//!    keeper ([`keeper`]) or let go in the background ([`link`]).
//!
//! Every link is a file descriptor: the kernel detaches a program when its
//! link closes, whether inspector returns, is killed by a signal or panics.
//! docs/probe.md tells the whole story.

pub mod btf;
pub mod cost;
pub mod keeper;
mod kernel;
mod lifecycle;
mod link;
mod loader;
mod maps;
mod offsets;
pub mod pinned;
mod plan;
pub mod prereq;

pub use loader::Floor;

use std::{os::fd::AsRawFd, time::Duration};

use aya::maps::{Array, MapData, PerCpuArray, RingBuf};
use btf::BtfError;
use inspector_common::{COMM_LEN, RunState};
use link::Links;
use loader::Logger;
use prereq::PrereqError;
use thiserror::Error;

/// Syscall tracepoints: (program, tracepoint). `insp_sys_exit` pairs every
/// syscall whose enter parks an event.
pub const SYSCALL_HOOKS: &[(&str, &str)] = &[
    ("insp_clone_enter", "sys_enter_clone"),
    ("insp_clone3_enter", "sys_enter_clone3"),
    ("insp_clone_exit", "sys_exit_clone"),
    ("insp_clone_exit", "sys_exit_clone3"),
    ("insp_execve_enter", "sys_enter_execve"),
    ("insp_sys_exit", "sys_exit_execve"),
    ("insp_execveat_enter", "sys_enter_execveat"),
    ("insp_sys_exit", "sys_exit_execveat"),
    ("insp_unshare_enter", "sys_enter_unshare"),
    ("insp_sys_exit", "sys_exit_unshare"),
    ("insp_setns_enter", "sys_enter_setns"),
    ("insp_sys_exit", "sys_exit_setns"),
    ("insp_mount_enter", "sys_enter_mount"),
    ("insp_sys_exit", "sys_exit_mount"),
    ("insp_umount_enter", "sys_enter_umount"),
    ("insp_sys_exit", "sys_exit_umount"),
    ("insp_pivot_root_enter", "sys_enter_pivot_root"),
    ("insp_sys_exit", "sys_exit_pivot_root"),
    ("insp_chroot_enter", "sys_enter_chroot"),
    ("insp_sys_exit", "sys_exit_chroot"),
    ("insp_chdir_enter", "sys_enter_chdir"),
    ("insp_sys_exit", "sys_exit_chdir"),
    ("insp_fchdir_enter", "sys_enter_fchdir"),
    ("insp_sys_exit", "sys_exit_fchdir"),
    ("insp_write_enter", "sys_enter_write"),
    // The calls a runtime's init fails on; reported only when they fail.
    ("insp_failable_enter", "sys_enter_prlimit64"),
    ("insp_sys_exit", "sys_exit_prlimit64"),
    ("insp_failable_enter", "sys_enter_setrlimit"),
    ("insp_sys_exit", "sys_exit_setrlimit"),
    ("insp_failable_enter", "sys_enter_capset"),
    ("insp_sys_exit", "sys_exit_capset"),
    ("insp_failable_enter", "sys_enter_setgroups"),
    ("insp_sys_exit", "sys_exit_setgroups"),
    ("insp_failable_enter", "sys_enter_setresuid"),
    ("insp_sys_exit", "sys_exit_setresuid"),
    ("insp_failable_enter", "sys_enter_setresgid"),
    ("insp_sys_exit", "sys_exit_setresgid"),
    ("insp_failable_enter", "sys_enter_sethostname"),
    ("insp_sys_exit", "sys_exit_sethostname"),
];

/// Attached with `ProbeOptions::write_results` only: a program on the exit of
/// every write on the machine is the largest cost the probe could add.
const WRITE_EXIT_HOOK: (&str, &str) = ("insp_sys_exit", "sys_exit_write");

/// A program on a raw tracepoint, which is passed the tracepoint's arguments
/// themselves (task structs, paths) rather than a record.
#[derive(Clone, Copy, Debug)]
pub struct RawHook {
    pub program: &'static str,
    /// Its tracefs category (to check it exists) and name.
    pub category: &'static str,
    pub tracepoint: &'static str,
    /// How many of the tracepoint's arguments the program reads.
    pub reads: u32,
    /// For kernels whose tracepoint passes fewer: another program, and how
    /// many it reads ([`kernel`] chooses).
    pub older: Option<(&'static str, u32)>,
}

impl RawHook {
    const fn new(
        program: &'static str,
        category: &'static str,
        tracepoint: &'static str,
        reads: u32,
    ) -> Self {
        RawHook {
            program,
            category,
            tracepoint,
            reads,
            older: None,
        }
    }
}

pub const RAW_HOOKS: &[RawHook] = &[
    RawHook::new("insp_fork", "sched", "sched_process_fork", 2),
    RawHook::new("insp_exec", "sched", "sched_process_exec", 3),
    RawHook {
        // `group_dead`, the second argument, is recent (Debian 12's 6.1 lacks it).
        older: Some(("insp_exit_task", 1)),
        ..RawHook::new("insp_exit", "sched", "sched_process_exit", 2)
    },
    RawHook::new("insp_cgroup_mkdir", "cgroup", "cgroup_mkdir", 2),
    RawHook::new("insp_cgroup_rmdir", "cgroup", "cgroup_rmdir", 2),
    RawHook::new("insp_cgroup_attach", "cgroup", "cgroup_attach_task", 4),
    RawHook {
        // `(task, uid)` on recent kernels, `(pid)` before: the variant that
        // reads the task is declared as reading two, so that a kernel
        // passing one argument (a pid, not a task) gets the other.
        older: Some(("insp_oom_victim_pid", 1)),
        ..RawHook::new("insp_oom_victim", "oom", "mark_victim", 2)
    },
    RawHook::new("insp_signal", "signal", "signal_generate", 3),
];

/// Attached with `ProbeOptions::sched` only (`--sched`): they run on every
/// context switch and wake-up of the machine.
pub const SCHED_HOOKS: &[RawHook] = &[
    RawHook::new("insp_sched_switch", "sched", "sched_switch", 3),
    RawHook::new("insp_sched_waking", "sched", "sched_waking", 1),
];

/// Command names whose exec starts tracking a process and its descendants: the
/// container engines, shims and runtimes. As the kernel's `comm`, at most 15 bytes.
pub const DEFAULT_TRACK_COMMS: &[&str] = &[
    "docker",
    "dockerd",
    "containerd",
    "containerd-shim", // containerd-shim-runc-v2, cut to 15 bytes
    "runc",
    "crun",
    "youki",
    "ctr",
    "nerdctl",
    "podman",
    "conmon",
    "inspector-runti", // inspector-runtime
];

/// Of those, the OCI runtimes: what they write to a file named `log.json` or `oci-log`
/// (their `--log`) is words for a user.
pub const RUNTIMES: &[&str] = &["runc", "crun", "youki", "inspector-runti"];

/// Of those, the ones whose stderr is words for a user (a client's error, a
/// runtime's when it has no `--log`), captured as messages; the daemons'
/// stderr is their log, not kept.
pub const STDERR_IS_MESSAGE: &[&str] = &[
    "docker",
    "runc",
    "crun",
    "youki",
    "ctr",
    "nerdctl",
    "podman",
    "inspector-runti",
];

#[derive(Debug, Error)]
pub enum ProbeError {
    #[error(transparent)]
    Prereq(#[from] PrereqError),
    #[error(transparent)]
    Btf(#[from] BtfError),
    // Here and below, the cause is in the message and not also a source:
    // printed with its chain, it would be said twice.
    #[error("loading the probe into the kernel failed: {0}")]
    Load(Box<aya::EbpfError>),
    #[error("the kernel rejected program {program}: {error}")]
    Program {
        program: String,
        error: Box<aya::programs::ProgramError>,
    },
    #[error(
        "attaching {program} to {tracepoint} failed on kernel {}: {error}",
        kernel::release()
    )]
    Attach {
        program: String,
        tracepoint: String,
        error: std::io::Error,
    },
    #[error("kernel {release}: {what} {missing}; {advice}")]
    Unsupported {
        release: String,
        what: String,
        missing: String,
        advice: &'static str,
    },
    #[error("probe map {name}: {error}")]
    Map {
        name: &'static str,
        error: aya::maps::MapError,
    },
    #[error("--buffer-size must be a power of two of at least 4096 bytes, got {0}")]
    BufferSize(u32),
    #[error("command name {0:?} is longer than the kernel's 15-byte comm")]
    CommTooLong(String),
}

/// How to load the probe.
#[derive(Clone, Debug)]
pub struct ProbeOptions {
    /// Report every process, not only container-related ones.
    pub trace_all: bool,
    /// Ring buffer size in bytes (a power of two, at least a page).
    pub buffer_size: u32,
    /// Kernel-side log level (`aya_log`); `None` keeps the probe silent.
    pub log_level: Option<log::LevelFilter>,
    /// Extra command names that start tracking.
    pub track_comms: Vec<String>,
    /// Pair cgroup controller writes with their return value.
    pub write_results: bool,
    /// Report the context switches and wake-ups of followed tasks (where
    /// the time goes: `timeline --why`).
    pub sched: bool,
    /// With `sched`, inspector's own too: `inspector run` is the client of
    /// the container it runs.
    pub sched_self: bool,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            trace_all: false,
            buffer_size: DEFAULT_BUFFER_SIZE,
            log_level: None,
            track_comms: Vec::new(),
            write_results: false,
            sched: false,
            sched_self: false,
        }
    }
}

pub const DEFAULT_BUFFER_SIZE: u32 = 8 << 20;

/// Where the probe's programs came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Loaded (and verified by the kernel) by this run.
    Loaded,
    /// Kept loaded by an earlier run; attached by this one.
    Pinned,
    /// Kept loaded and attached by an earlier run's keeper.
    Adopted,
}

impl Origin {
    /// How the probe came to be attached, for a status line.
    pub fn note(self) -> &'static str {
        match self {
            Origin::Loaded => "",
            Origin::Pinned => " (programs kept loaded by an earlier run)",
            Origin::Adopted => " (kept attached by an earlier run)",
        }
    }
}

/// The probe, loaded and attached.
pub struct Probe {
    links: Links,
    /// The programs, by the hook each fills: what [`cost`] asks about.
    programs: Vec<(&'static str, std::os::fd::OwnedFd)>,
    ring: RingBuf<MapData>,
    lost: PerCpuArray<MapData, u64>,
    run: Array<MapData, RunState>,
    logger: Option<Logger>,
    /// The pinned set this run holds, to hand on with the links.
    lease: Option<pinned::Lease>,
    /// How many tracepoints programs were attached to.
    pub attached: usize,
    /// Container processes found already running at start.
    pub seeded: usize,
    /// How long loading and attaching took.
    pub ready_in: Duration,
    pub origin: Origin,
    /// Syscalls this kernel has no tracepoint for, so not reported.
    pub missing: Vec<&'static str>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        lifecycle::go_down(
            &mut self.run,
            std::mem::take(&mut self.links),
            self.lease.take(),
        );
    }
}

impl Probe {
    /// Loads (or takes over, see [`lifecycle`]) and attaches the probe; from
    /// its return, nothing a followed process does is missed.
    pub fn load(opts: &ProbeOptions) -> Result<Self, ProbeError> {
        lifecycle::come_up(opts)
    }

    /// The next record from the kernel, if one is waiting.
    pub fn next_record(&mut self) -> Option<impl std::ops::Deref<Target = [u8]> + '_> {
        self.ring.next()
    }

    /// Waits up to `timeout` for records (or kernel log lines) to arrive,
    /// or for `also` to become readable.
    pub fn wait(
        &mut self,
        timeout: Duration,
        also: Option<std::os::fd::BorrowedFd<'_>>,
    ) -> std::io::Result<()> {
        let mut fds = vec![libc::pollfd {
            fd: self.ring.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(fd) = also {
            fds.push(libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        if let Some(logger) = &self.logger {
            fds.push(libc::pollfd {
                fd: logger.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if r < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
        if let Some(logger) = &mut self.logger {
            logger.flush();
        }
        Ok(())
    }

    /// One line on what this kernel cannot give, for the start of a run;
    /// `None` when it gives everything.
    pub fn degraded(&self) -> Option<String> {
        (!self.missing.is_empty()).then(|| {
            format!(
                "inspector: kernel {} has no tracepoint for {}: not reported; everything else is",
                kernel::release(),
                self.missing.join(", ")
            )
        })
    }

    /// What the kernel counted of each program's runs: time and count,
    /// while run-time statistics are on ([`cost::count_runs`]).
    pub fn cost(&self) -> Vec<cost::ProgramCost> {
        cost::of(&self.programs)
    }

    /// Events the kernel could not write because the ring buffer was full.
    pub fn lost(&self) -> u64 {
        self.lost
            .get(&0, 0)
            .map(|per_cpu| per_cpu.iter().sum())
            .unwrap_or(0)
    }
}

/// A command name as the kernel stores it: NUL padded to 16 bytes.
pub fn comm_key(name: &str) -> Result<[u8; COMM_LEN], ProbeError> {
    let bytes = name.as_bytes();
    if bytes.len() >= COMM_LEN {
        return Err(ProbeError::CommTooLong(name.to_string()));
    }
    let mut comm = [0u8; COMM_LEN];
    comm[..bytes.len()].copy_from_slice(bytes);
    Ok(comm)
}
