//! Loading the probe into the kernel, attaching it, and reading what it sends.
//!
//! Everything attached here is owned by file descriptors of this process: the
//! kernel detaches the programs when they close, whether inspector returns,
//! is killed by a signal or panics. Nothing is pinned.

use std::{
    os::fd::AsRawFd,
    time::{Duration, Instant},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, MapData, PerCpuArray, RingBuf},
    programs::{Program, RawTracePoint, TracePoint},
};
use aya_log::EbpfLogger;
use inspector_common::{COMM_LEN, Config, KernelOffsets};
use thiserror::Error;

use crate::{
    btf::{Btf, BtfError},
    offsets, prereq,
    prereq::PrereqError,
    track,
};

/// Built by build.rs from `inspector-ebpf`.
static PROBE_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/inspector"));

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
];

/// Attached with `ProbeOptions::write_results` only: a program on the exit of
/// every write on the machine is the largest cost the probe could add.
const WRITE_EXIT_HOOK: (&str, &str) = ("insp_sys_exit", "sys_exit_write");

/// Raw tracepoints: (program, tracepoint, its tracefs category).
pub const RAW_HOOKS: &[(&str, &str, &str)] = &[
    ("insp_fork", "sched_process_fork", "sched"),
    ("insp_exec", "sched_process_exec", "sched"),
    ("insp_exit", "sched_process_exit", "sched"),
    ("insp_cgroup_mkdir", "cgroup_mkdir", "cgroup"),
    ("insp_cgroup_rmdir", "cgroup_rmdir", "cgroup"),
    ("insp_cgroup_attach", "cgroup_attach_task", "cgroup"),
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

#[derive(Debug, Error)]
pub enum ProbeError {
    #[error(transparent)]
    Prereq(#[from] PrereqError),
    #[error(transparent)]
    Btf(#[from] BtfError),
    #[error("loading the probe into the kernel failed: {0}")]
    Load(#[source] Box<aya::EbpfError>),
    #[error("the kernel rejected program {program}: {source}")]
    Program {
        program: String,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("attaching {program} to {tracepoint} failed: {source}")]
    Attach {
        program: String,
        tracepoint: String,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("probe map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
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
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            trace_all: false,
            buffer_size: DEFAULT_BUFFER_SIZE,
            log_level: None,
            track_comms: Vec::new(),
            write_results: false,
        }
    }
}

pub const DEFAULT_BUFFER_SIZE: u32 = 8 << 20;

/// Attached programs' links. Detaching one from a tracepoint waits for RCU
/// grace periods under the kernel's tracepoint lock, 60-100 ms each on these
/// machines: one after the other, 31 of them kept inspector alive two seconds
/// after its work was done. So a detached grandchild holds the links and
/// lets them go after inspector has exited; the user does not wait.
struct Links(Vec<Box<dyn Send>>);

impl Drop for Links {
    fn drop(&mut self) {
        let links = std::mem::take(&mut self.0);
        if links.is_empty() {
            return;
        }
        if let Some(holder) = detach_in_background() {
            // The grandchild holds them too, so dropping ours is quick; it
            // lets go once `holder` closes, after ours are gone.
            drop(links);
            drop(holder);
            return;
        }
        // No process to be had: the waits overlap a little on threads.
        std::thread::scope(|scope| {
            for link in links {
                let _ = std::thread::Builder::new().spawn_scoped(scope, move || drop(link));
            }
        });
    }
}

/// Loads the `wanted` programs on as many threads as there are cores: the
/// kernel verifies privileged programs concurrently, and verifying is most of
/// the time attaching takes (70 of 100 ms here, one after the other).
fn load_in_parallel(ebpf: &mut Ebpf, wanted: &[&str]) -> Result<(), ProbeError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let mut shares: Vec<Vec<(&str, &mut Program)>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, (name, program)) in ebpf
        .programs_mut()
        .filter(|(name, _)| wanted.contains(name))
        .enumerate()
    {
        shares[i % threads].push((name, program));
    }
    std::thread::scope(|scope| {
        let loaders: Vec<_> = shares
            .into_iter()
            .map(|share| {
                scope.spawn(move || {
                    for (name, program) in share {
                        let loaded = match program {
                            Program::TracePoint(p) => p.load(),
                            Program::RawTracePoint(p) => p.load(),
                            _ => continue,
                        };
                        loaded.map_err(|source| ProbeError::Program {
                            program: name.to_string(),
                            source: Box::new(source),
                        })?;
                    }
                    Ok(())
                })
            })
            .collect();
        loaders
            .into_iter()
            .try_for_each(|loader| loader.join().expect("a loader thread panicked"))
    })
}

/// Forks a grandchild that keeps only this process's BPF links and perf
/// events open until the returned pipe end closes, then exits, the kernel
/// detaching them as it closes them. `None` when it could not be made.
fn detach_in_background() -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
    // Everything but the links is closed in the grandchild, standard streams
    // first: a reader of our output must see its end when we exit.
    let close: Vec<libc::c_int> = std::fs::read_dir("/proc/self/fd")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let fd = entry.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(entry.path()).unwrap_or_default();
            let target = target.to_string_lossy();
            let link = target == "anon_inode:bpf_link" || target == "anon_inode:[perf_event]";
            (!link).then_some(fd)
        })
        .collect();
    let mut ends = [0; 2];
    // SAFETY: a valid array of two fds for pipe2 to fill.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return None;
    }
    // SAFETY: pipe2 just made both; each is owned once.
    let (wait_end, holder) =
        unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
    let (wait_fd, holder_fd) = (wait_end.as_raw_fd(), holder.as_raw_fd());
    // SAFETY: between fork and _exit the children only call close, read, fork
    // and _exit, which are async-signal-safe, on memory prepared before.
    unsafe {
        match libc::fork() {
            -1 => None,
            0 => {
                if libc::fork() == 0 {
                    // The pipe may have reused a number listed before it.
                    for &fd in close.iter().filter(|&&fd| fd != wait_fd) {
                        libc::close(fd);
                    }
                    libc::close(holder_fd);
                    // Until every holder of the pipe's other end is gone.
                    let mut byte = 0u8;
                    while libc::read(wait_fd, (&raw mut byte).cast(), 1) < 0
                        && *libc::__errno_location() == libc::EINTR
                    {}
                }
                // The grandchild exits holding the links: its exit detaches them.
                libc::_exit(0)
            }
            child => {
                let mut status = 0;
                libc::waitpid(child, &mut status, 0);
                drop(wait_end);
                Some(holder)
            }
        }
    }
}

/// The probe, loaded and attached.
pub struct Probe {
    // Field order matters for drop: the links go first, and the ring and
    // logger hold maps of `ebpf`.
    #[allow(
        dead_code,
        reason = "held for its Drop: the programs stay attached while it lives"
    )]
    links: Links,
    ring: RingBuf<MapData>,
    logger: Option<EbpfLogger<&'static dyn log::Log>>,
    ebpf: Ebpf,
    /// How many tracepoints programs were attached to.
    pub attached: usize,
    /// Container processes found already running at start.
    pub seeded: usize,
    /// How long loading and attaching took.
    pub ready_in: Duration,
}

impl Probe {
    pub fn load(opts: &ProbeOptions) -> Result<Self, ProbeError> {
        let started = Instant::now();
        let tracefs = prereq::check()?;
        if opts.buffer_size < 4096 || !opts.buffer_size.is_power_of_two() {
            return Err(ProbeError::BufferSize(opts.buffer_size));
        }
        let btf = Btf::from_file(prereq::btf_path())?;
        let offsets: KernelOffsets = offsets::from_btf(&btf)?;
        drop(btf);
        let config = Config {
            trace_all: opts.trace_all as u32,
            self_tgid: std::process::id(),
            write_results: opts.write_results as u32,
            wakeup_bytes: opts.buffer_size / 4,
        };
        let log_level: u8 = match opts.log_level {
            None | Some(log::LevelFilter::Off) => 0,
            Some(level) => level as u8,
        };

        let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(1 << 22);
        // No CO-RE relocations to resolve (see offsets.rs), so aya need not
        // parse the kernel's BTF a second time: a third of the start-up time
        // and most of the peak memory.
        // aya's loader parses the kernel's BTF as it is made, although none
        // of it is used. Making it on a thread, alongside our own parse,
        // saved 40 ms but held both at once: 74 MiB at the peak instead of 51.
        let mut ebpf = EbpfLoader::new()
            .btf(None)
            .override_global("OFFSETS", &offsets, true)
            .override_global("CONFIG", &config, true)
            .override_global("AYA_LOG_LEVEL", &log_level, false)
            .map_max_entries("EVENTS", opts.buffer_size)
            .map_max_entries("TRACKED_BITS", pid_max.div_ceil(64).clamp(1, 65536))
            .load(PROBE_OBJECT)
            .map_err(|e| ProbeError::Load(Box::new(e)))?;

        let logger = if log_level > 0 {
            EbpfLogger::init(&mut ebpf)
                .map_err(|e| log::warn!("kernel-side logging is unavailable: {e}"))
                .ok()
        } else {
            None
        };

        set_track_comms(&mut ebpf, &opts.track_comms)?;

        // Container processes already running: marked before the programs are
        // attached, while nothing in the kernel writes these maps, and once more
        // after, for those forked in between.
        let comms: Vec<&str> = DEFAULT_TRACK_COMMS
            .iter()
            .copied()
            .chain(opts.track_comms.iter().map(String::as_str))
            .collect();
        let before = track::select(&track::scan_proc(), &comms);
        mark_tracked(&mut ebpf, before.iter().copied())?;

        let write_exit = opts.write_results.then_some(&WRITE_EXIT_HOOK);
        let wanted: Vec<&str> = SYSCALL_HOOKS
            .iter()
            .chain(write_exit)
            .map(|(program, _)| *program)
            .chain(RAW_HOOKS.iter().map(|(program, _, _)| *program))
            .collect();
        load_in_parallel(&mut ebpf, &wanted)?;

        let mut attached = 0;
        // Owned here rather than by their programs, so that they can be
        // detached all at once (see `Drop`); on an early return they detach
        // as they drop.
        let mut links = Links(Vec::new());
        for (program, tracepoint) in SYSCALL_HOOKS.iter().chain(write_exit) {
            prereq::check_syscall_tracepoint(&tracefs, tracepoint)?;
            let prog: &mut TracePoint = ebpf
                .program_mut(program)
                .expect("program compiled into the probe")
                .try_into()
                .expect("a tracepoint program");
            let id = prog
                .attach("syscalls", tracepoint)
                .map_err(|source| ProbeError::Attach {
                    program: program.to_string(),
                    tracepoint: format!("syscalls:{tracepoint}"),
                    source: Box::new(source),
                })?;
            links
                .0
                .push(Box::new(prog.take_link(id).expect("the link just made")));
            attached += 1;
        }
        for (program, tracepoint, category) in RAW_HOOKS {
            prereq::check_tracepoint(&tracefs, category, tracepoint)?;
            let prog: &mut RawTracePoint = ebpf
                .program_mut(program)
                .expect("program compiled into the probe")
                .try_into()
                .expect("a raw tracepoint program");
            let id = prog
                .attach(tracepoint)
                .map_err(|source| ProbeError::Attach {
                    program: program.to_string(),
                    tracepoint: format!("raw {category}:{tracepoint}"),
                    source: Box::new(source),
                })?;
            links
                .0
                .push(Box::new(prog.take_link(id).expect("the link just made")));
            attached += 1;
        }

        let after = track::select(&track::scan_proc(), &comms);
        mark_tracked(&mut ebpf, after.difference(&before).copied())?;
        let seeded = before.union(&after).count();

        let ring =
            RingBuf::try_from(ebpf.take_map("EVENTS").expect("EVENTS map")).map_err(|source| {
                ProbeError::Map {
                    name: "EVENTS",
                    source,
                }
            })?;
        Ok(Probe {
            links,
            ring,
            logger,
            ebpf,
            attached,
            seeded,
            ready_in: started.elapsed(),
        })
    }

    /// The next record from the kernel, if one is waiting.
    pub fn next_record(&mut self) -> Option<impl std::ops::Deref<Target = [u8]> + '_> {
        self.ring.next()
    }

    /// Waits up to `timeout` for records (or kernel log lines) to arrive.
    pub fn wait(&mut self, timeout: Duration) -> std::io::Result<()> {
        let mut fds = vec![libc::pollfd {
            fd: self.ring.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
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

    /// Events the kernel could not write because the ring buffer was full.
    pub fn lost(&self) -> u64 {
        let Some(map) = self.ebpf.map("LOST") else {
            return 0;
        };
        let Ok(array) = PerCpuArray::<_, u64>::try_from(map) else {
            return 0;
        };
        array
            .get(&0, 0)
            .map(|per_cpu| per_cpu.iter().sum())
            .unwrap_or(0)
    }
}

/// The baseline for the syscall-storm benchmark: one program that does nothing,
/// attached to `syscalls:sys_enter_write`. Kept attached while the value lives.
pub struct Floor {
    _ebpf: Ebpf,
}

impl Floor {
    pub fn attach() -> Result<Self, ProbeError> {
        let tracefs = prereq::check()?;
        prereq::check_syscall_tracepoint(&tracefs, "sys_enter_write")?;
        let mut ebpf = EbpfLoader::new()
            .btf(None)
            .override_global("AYA_LOG_LEVEL", &0u8, false)
            .load(PROBE_OBJECT)
            .map_err(|e| ProbeError::Load(Box::new(e)))?;
        let prog: &mut TracePoint = ebpf
            .program_mut("insp_noop")
            .expect("program compiled into the probe")
            .try_into()
            .expect("a tracepoint program");
        prog.load().map_err(|source| ProbeError::Program {
            program: "insp_noop".to_string(),
            source: Box::new(source),
        })?;
        prog.attach("syscalls", "sys_enter_write")
            .map_err(|source| ProbeError::Attach {
                program: "insp_noop".to_string(),
                tracepoint: "syscalls:sys_enter_write".to_string(),
                source: Box::new(source),
            })?;
        Ok(Floor { _ebpf: ebpf })
    }
}

/// Reports these processes (and, from now on, their children): the same two
/// maps the probe keeps, the hash and the bitmap its hot path tests.
fn mark_tracked(ebpf: &mut Ebpf, tgids: impl Iterator<Item = u32>) -> Result<(), ProbeError> {
    let map_err = |name| move |source| ProbeError::Map { name, source };
    let tgids: Vec<u32> = tgids.collect();
    {
        let mut tracked: HashMap<_, u32, u32> =
            HashMap::try_from(ebpf.map_mut("TRACKED").expect("TRACKED map"))
                .map_err(map_err("TRACKED"))?;
        for &tgid in &tgids {
            // A full map only means less is reported; not worth failing the run.
            let _ = tracked.insert(tgid, 1, 0);
        }
    }
    let mut bits: Array<_, u64> =
        Array::try_from(ebpf.map_mut("TRACKED_BITS").expect("TRACKED_BITS map"))
            .map_err(map_err("TRACKED_BITS"))?;
    for tgid in tgids {
        let index = tgid / 64;
        if let Ok(word) = bits.get(&index, 0) {
            let _ = bits.set(index, word | 1u64 << (tgid % 64), 0);
        }
    }
    Ok(())
}

fn set_track_comms(ebpf: &mut Ebpf, extra: &[String]) -> Result<(), ProbeError> {
    let mut map: HashMap<_, [u8; COMM_LEN], u32> = HashMap::try_from(
        ebpf.map_mut("TRACK_COMMS").expect("TRACK_COMMS map"),
    )
    .map_err(|source| ProbeError::Map {
        name: "TRACK_COMMS",
        source,
    })?;
    for name in DEFAULT_TRACK_COMMS
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
    {
        let comm = comm_key(name)?;
        map.insert(comm, 1, 0).map_err(|source| ProbeError::Map {
            name: "TRACK_COMMS",
            source,
        })?;
    }
    Ok(())
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
