//! Loading the probe into the kernel, attaching it, and reading what it sends.
//!
//! Everything attached is owned by file descriptors of this process: the
//! kernel detaches the programs when they close, whether inspector returns,
//! is killed by a signal or panics. The programs and maps themselves are kept
//! loaded between runs ([`pinned`]), attached to nothing, so that the next
//! run starts in milliseconds.

pub mod keeper;
mod link;
pub mod pinned;

use std::{
    os::fd::{AsFd as _, AsRawFd, OwnedFd},
    path::Path,
    time::{Duration, Instant},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, Map, MapData, PerCpuArray, PerCpuValues, RingBuf},
    programs::{Program, TracePoint},
};
use aya_log::EbpfLogger;
use inspector_common::{COMM_LEN, Config, KernelOffsets, RunState, SyscallEvent};
use link::Links;
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
        source: std::io::Error,
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

/// Where a program attaches.
#[derive(Clone, Copy)]
enum Target {
    /// `syscalls:<name>` in tracefs.
    Syscall(&'static str),
    /// A raw tracepoint, and its tracefs category (to check it exists).
    Raw(&'static str, &'static str),
}

impl Target {
    fn describe(self) -> String {
        match self {
            Target::Syscall(name) => format!("syscalls:{name}"),
            Target::Raw(name, category) => format!("raw {category}:{name}"),
        }
    }
}

/// The (program, target) pairs attached for these options.
fn hooks(opts: &ProbeOptions) -> Vec<(&'static str, Target)> {
    let write_exit = opts.write_results.then_some(&WRITE_EXIT_HOOK);
    SYSCALL_HOOKS
        .iter()
        .chain(write_exit)
        .map(|&(program, tp)| (program, Target::Syscall(tp)))
        .chain(
            RAW_HOOKS
                .iter()
                .map(|&(program, tp, category)| (program, Target::Raw(tp, category))),
        )
        .collect()
}

/// The maps userspace reads or resets, by the names the probe gives them.
struct Maps {
    events: RingBuf<MapData>,
    lost: PerCpuArray<MapData, u64>,
    tracked: HashMap<MapData, u32, u32>,
    tracked_bits: Array<MapData, u64>,
    track_comms: HashMap<MapData, [u8; COMM_LEN], u32>,
    pending: HashMap<MapData, u32, [u8; size_of::<SyscallEvent>()]>,
    clone_flags: HashMap<MapData, u32, u64>,
    run: Array<MapData, RunState>,
}

const MAP_NAMES: [&str; 8] = [
    "EVENTS",
    "LOST",
    "TRACKED",
    "TRACKED_BITS",
    "TRACK_COMMS",
    "PENDING",
    "CLONE_FLAGS",
    "RUN",
];

impl Maps {
    /// Takes the maps from `take`, which hands over each map by name.
    fn take(
        mut take: impl FnMut(&'static str) -> Result<Map, ProbeError>,
    ) -> Result<Self, ProbeError> {
        fn typed<T: TryFrom<Map, Error = aya::maps::MapError>>(
            name: &'static str,
            map: Map,
        ) -> Result<T, ProbeError> {
            T::try_from(map).map_err(|source| ProbeError::Map { name, source })
        }
        let [
            events,
            lost,
            tracked,
            bits,
            comms,
            pending,
            clone_flags,
            run,
        ] = MAP_NAMES;
        Ok(Maps {
            events: typed(events, take(events)?)?,
            lost: typed(lost, take(lost)?)?,
            tracked: typed(tracked, take(tracked)?)?,
            tracked_bits: typed(bits, take(bits)?)?,
            track_comms: typed(comms, take(comms)?)?,
            pending: typed(pending, take(pending)?)?,
            clone_flags: typed(clone_flags, take(clone_flags)?)?,
            run: typed(run, take(run)?)?,
        })
    }

    /// Switches the probe on or off; inspector's own process is never reported.
    fn set_enabled(&mut self, enabled: bool) -> Result<(), ProbeError> {
        let run = RunState {
            self_tgid: std::process::id(),
            enabled: enabled as u32,
        };
        self.run.set(0, run, 0).map_err(|source| ProbeError::Map {
            name: "RUN",
            source,
        })
    }

    /// Readies maps an earlier run may have used, the probe being off:
    /// nothing of that run's state or unread events is left.
    fn reset(&mut self) -> Result<(), ProbeError> {
        let lost_err = |e| ProbeError::Map {
            name: "LOST",
            source: aya::maps::MapError::IoError(e),
        };
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| lost_err(e))?;
        let zeros = PerCpuValues::try_from(vec![0u64; cpus]).map_err(lost_err)?;
        self.lost
            .set(0, zeros, 0)
            .map_err(|source| ProbeError::Map {
                name: "LOST",
                source,
            })?;
        // Processes tracked then may have exited since, with the probe off
        // to untrack them: their pids could be anyone's now.
        let tracked: Vec<u32> = self.tracked.keys().flatten().collect();
        for tgid in tracked {
            let _ = self.tracked.remove(&tgid);
            let index = tgid / 64;
            if let Ok(word) = self.tracked_bits.get(&index, 0) {
                let _ = self
                    .tracked_bits
                    .set(index, word & !(1u64 << (tgid % 64)), 0);
            }
        }
        let pending: Vec<u32> = self.pending.keys().flatten().collect();
        for tid in pending {
            let _ = self.pending.remove(&tid);
        }
        let clone_flags: Vec<u32> = self.clone_flags.keys().flatten().collect();
        for tid in clone_flags {
            let _ = self.clone_flags.remove(&tid);
        }
        let comms: Vec<[u8; COMM_LEN]> = self.track_comms.keys().flatten().collect();
        for comm in comms {
            let _ = self.track_comms.remove(&comm);
        }
        while self.events.next().is_some() {}
        Ok(())
    }

    /// Reports these processes (and, from now on, their children): the hash
    /// and the bitmap the probe's hot path tests.
    fn mark_tracked(&mut self, tgids: impl Iterator<Item = u32>) {
        for tgid in tgids {
            // A full map only means less is reported; not worth failing the run.
            let _ = self.tracked.insert(tgid, 1, 0);
            let index = tgid / 64;
            if let Ok(word) = self.tracked_bits.get(&index, 0) {
                let _ = self.tracked_bits.set(index, word | 1u64 << (tgid % 64), 0);
            }
        }
    }

    fn set_track_comms(&mut self, names: &[&str]) -> Result<(), ProbeError> {
        for name in names {
            self.track_comms
                .insert(comm_key(name)?, 1, 0)
                .map_err(|source| ProbeError::Map {
                    name: "TRACK_COMMS",
                    source,
                })?;
        }
        Ok(())
    }
}

/// The programs and maps of a probe in the kernel, before attaching.
struct Loaded {
    programs: Vec<(&'static str, OwnedFd)>,
    maps: Maps,
}

impl Loaded {
    fn program(&self, name: &str) -> std::os::fd::BorrowedFd<'_> {
        self.programs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, fd)| fd.as_fd())
            .expect("every hooked program is loaded")
    }

    /// Takes the loaded programs and the maps out of `ebpf`.
    fn from_ebpf(ebpf: &mut Ebpf, wanted: &[&'static str]) -> Result<Self, ProbeError> {
        let mut programs = Vec::new();
        for &name in wanted {
            let fd = ebpf
                .program(name)
                .expect("program compiled into the probe")
                .fd()
                .and_then(|fd| Ok(fd.as_fd().try_clone_to_owned()?))
                .map_err(|source| ProbeError::Program {
                    program: name.to_string(),
                    source: Box::new(source),
                })?;
            programs.push((name, fd));
        }
        let maps = Maps::take(|name| {
            ebpf.take_map(name).ok_or(ProbeError::Map {
                name,
                source: aya::maps::MapError::InvalidName {
                    name: name.to_string(),
                },
            })
        })?;
        Ok(Loaded { programs, maps })
    }

    /// Opens a pinned set (its maps only, when its programs are attached
    /// already: `wanted` is empty).
    fn from_pins(lease: &pinned::Lease, wanted: &[&'static str]) -> Result<Self, ProbeError> {
        let mut programs = Vec::new();
        for &name in wanted {
            let fd = lease.open(name).map_err(|e| ProbeError::Program {
                program: name.to_string(),
                source: Box::new(aya::programs::ProgramError::IOError(e)),
            })?;
            programs.push((name, fd));
        }
        let maps = Maps::take(|name| {
            MapData::from_pin(lease.dir.join(name))
                .and_then(Map::from_map_data)
                .map_err(|source| ProbeError::Map { name, source })
        })?;
        Ok(Loaded { programs, maps })
    }
}

/// Pins the programs and maps of a loaded `ebpf` in `dir`.
fn pin_all(ebpf: &Ebpf, wanted: &[&str], dir: &Path) -> std::io::Result<()> {
    for &name in wanted {
        let program = ebpf.program(name).ok_or(std::io::ErrorKind::NotFound)?;
        let fd = program.fd().map_err(std::io::Error::other)?;
        link::pin(fd.as_fd(), &dir.join(name))?;
    }
    for name in MAP_NAMES {
        let map = ebpf.map(name).ok_or(std::io::ErrorKind::NotFound)?;
        map.pin(dir.join(name)).map_err(std::io::Error::other)?;
    }
    Ok(())
}

/// The reader of the probe's kernel-side log.
type Logger = EbpfLogger<&'static dyn log::Log>;

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
}

impl Drop for Probe {
    fn drop(&mut self) {
        // Off first: whatever still holds the links from here reports nothing.
        let _ = self.run.set(
            0,
            RunState {
                self_tgid: std::process::id(),
                enabled: 0,
            },
            0,
        );
        let links = std::mem::take(&mut self.links.0);
        let keep = keeper::keep_time();
        match self.lease.take() {
            Some(lease) if !keep.is_zero() && !links.is_empty() => {
                if let Err((_lock, links)) = keeper::hand_over(&lease.key, lease.lock, links, keep)
                {
                    link::release(links);
                }
            }
            _ => link::release(links),
        }
    }
}

/// What a set of options asks to load and attach.
struct Plan {
    hooks: Vec<(&'static str, Target)>,
    /// The hooks' programs, each once.
    wanted: Vec<&'static str>,
    /// Command names that start following a process.
    comms: Vec<String>,
    config: Config,
    log_level: u8,
    buffer_size: u32,
    /// Words of the `TRACKED_BITS` bitmap, from the kernel's `pid_max`.
    bits_len: u32,
}

impl Plan {
    fn new(opts: &ProbeOptions) -> Result<Plan, ProbeError> {
        if opts.buffer_size < 4096 || !opts.buffer_size.is_power_of_two() {
            return Err(ProbeError::BufferSize(opts.buffer_size));
        }
        let comms: Vec<String> = DEFAULT_TRACK_COMMS
            .iter()
            .map(|c| c.to_string())
            .chain(opts.track_comms.iter().cloned())
            .collect();
        for name in &comms {
            comm_key(name)?;
        }
        let hooks = hooks(opts);
        let mut wanted: Vec<&'static str> = hooks.iter().map(|(program, _)| *program).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(1 << 22);
        Ok(Plan {
            hooks,
            wanted,
            comms,
            config: Config {
                trace_all: opts.trace_all as u32,
                write_results: opts.write_results as u32,
                wakeup_bytes: opts.buffer_size / 4,
                _pad: 0,
            },
            log_level: match opts.log_level {
                None | Some(log::LevelFilter::Off) => 0,
                Some(level) => level as u8,
            },
            buffer_size: opts.buffer_size,
            bits_len: pid_max.div_ceil(64).clamp(1, 65536),
        })
    }

    /// Names the pinned set these programs and maps can be shared through.
    fn key(&self) -> String {
        pinned::key(&[
            PROBE_OBJECT,
            &config_bytes(&self.config),
            &self.buffer_size.to_le_bytes(),
            &self.bits_len.to_le_bytes(),
            self.wanted.join(",").as_bytes(),
        ])
    }

    fn comm_names(&self) -> Vec<&str> {
        self.comms.iter().map(String::as_str).collect()
    }

    /// Every tracepoint and its record layout, before anything is loaded.
    fn check_tracepoints(&self, events_dir: &Path) -> Result<(), ProbeError> {
        for (_, target) in &self.hooks {
            match *target {
                Target::Syscall(tp) => prereq::check_syscall_tracepoint(events_dir, tp)?,
                Target::Raw(tp, category) => prereq::check_tracepoint(events_dir, category, tp)?,
            }
        }
        Ok(())
    }
}

impl Probe {
    /// Loads (or takes over, see [`pinned`] and [`keeper`]) and attaches the
    /// probe; from its return, nothing a followed process does is missed.
    pub fn load(opts: &ProbeOptions) -> Result<Self, ProbeError> {
        // Not with kernel-side logging, whose reader needs the loader's state.
        let keep = matches!(opts.log_level, None | Some(log::LevelFilter::Off))
            && !keeper::keep_time().is_zero();
        Self::load_with(opts, keep)
    }

    fn load_with(opts: &ProbeOptions, keep: bool) -> Result<Self, ProbeError> {
        let started = Instant::now();
        let events_dir = prereq::check()?;
        let plan = Plan::new(opts)?;
        let key = plan.key();
        let mut held = if keep {
            Held::claim(&key, plan.hooks.len())
        } else {
            Held::Nothing
        };
        let (mut loaded, mut links, origin, logger) = match reopen(&mut held, &plan) {
            Some((loaded, links, origin)) => (loaded, links, origin, None),
            None => {
                // A kept probe was checked when it was loaded, this boot.
                plan.check_tracepoints(&events_dir)?;
                let (mut ebpf, logger) = load_fresh(&plan)?;
                if let Some(lease) = held.lease() {
                    match lease.fill(|dir| pin_all(&ebpf, &plan.wanted, dir)) {
                        Ok(()) => pinned::evict_others(&key),
                        Err(e) => log::debug!("cannot keep the probe loaded: {e}"),
                    }
                }
                let loaded = Loaded::from_ebpf(&mut ebpf, &plan.wanted)?;
                (loaded, Links::default(), Origin::Loaded, logger)
            }
        };

        // The probe is off until the maps are this run's.
        loaded.maps.set_enabled(false)?;
        loaded.maps.reset()?;
        let comms = plan.comm_names();
        loaded.maps.set_track_comms(&comms)?;
        // Container processes already running: marked before the probe is
        // switched on, and once more after, for those forked in between.
        let pid_before = last_pid();
        let before = track::select(&track::scan_proc(), &comms);
        loaded.maps.mark_tracked(before.iter().copied());

        if origin != Origin::Adopted {
            match attach_all(&plan.hooks, &loaded, &events_dir) {
                Ok(attached) => links = attached,
                // The pinned programs are still attached to a tracepoint by
                // an earlier run's links on their way out (EEXIST): a
                // private probe, then.
                Err(e) if origin == Origin::Pinned => {
                    log::debug!("the kept probe cannot be attached now ({e}); loading a new one");
                    drop((loaded, held));
                    return Self::load_with(opts, false);
                }
                Err(e) => return Err(e),
            }
        }
        let attached = links.0.len();
        loaded.maps.set_enabled(true)?;

        // No process made since the first scan (the kernel's last pid is the
        // same): no need for a second.
        let after = if pid_before.is_some() && last_pid() == pid_before {
            before.clone()
        } else {
            track::select(&track::scan_proc(), &comms)
        };
        loaded.maps.mark_tracked(after.difference(&before).copied());
        let seeded = before.union(&after).count();

        let Loaded { maps, .. } = loaded;
        Ok(Probe {
            links,
            ring: maps.events,
            lost: maps.lost,
            run: maps.run,
            logger,
            lease: held.into_lease(),
            attached,
            seeded,
            ready_in: started.elapsed(),
            origin,
        })
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

    /// Events the kernel could not write because the ring buffer was full.
    pub fn lost(&self) -> u64 {
        self.lost
            .get(&0, 0)
            .map(|per_cpu| per_cpu.iter().sum())
            .unwrap_or(0)
    }
}

/// What a run holds of a kept probe.
enum Held {
    /// Nothing: a private probe, loaded and dropped by this run.
    Nothing,
    /// The pinned set (possibly still to be made).
    Lease(pinned::Lease),
    /// The pinned set and an earlier run's links, from its keeper.
    Adopted(pinned::Lease, Vec<OwnedFd>),
}

/// The kept probe `held` gives: its pinned programs and maps, with the
/// links of an earlier run when its keeper handed them over. `None` when
/// there is none to use (it is then loaded, and pinned if a lease is held).
fn reopen(held: &mut Held, plan: &Plan) -> Option<(Loaded, Links, Origin)> {
    let (lease, adopted) = match held {
        Held::Nothing => return None,
        Held::Lease(lease) => (&*lease, None),
        Held::Adopted(lease, links) => (&*lease, Some(std::mem::take(links))),
    };
    if !lease.is_filled() {
        // Links to programs whose pins are gone: they go (detached in the
        // background), and the probe is loaded and pinned anew.
        return None;
    }
    // Attached already: only the maps are needed.
    let programs: &[&'static str] = if adopted.is_some() { &[] } else { &plan.wanted };
    match Loaded::from_pins(lease, programs) {
        Ok(loaded) => Some(match adopted {
            Some(links) => (loaded, Links(links), Origin::Adopted),
            None => (loaded, Links::default(), Origin::Pinned),
        }),
        Err(e) => {
            log::warn!("the probe kept loaded is unusable ({e}); loading it again");
            lease.clear();
            None
        }
    }
}

impl Held {
    fn lease(&self) -> Option<&pinned::Lease> {
        match self {
            Held::Nothing => None,
            Held::Lease(lease) | Held::Adopted(lease, _) => Some(lease),
        }
    }

    fn into_lease(self) -> Option<pinned::Lease> {
        match self {
            Held::Nothing => None,
            Held::Lease(lease) | Held::Adopted(lease, _) => Some(lease),
        }
    }

    fn claim(key: &str, links: usize) -> Held {
        match pinned::claim(key) {
            Ok(Some(lease)) => Held::Lease(lease),
            Ok(None) => match keeper::adopt(key, links) {
                Some((lock, links)) => Held::Adopted(pinned::Lease::adopted(key, lock), links),
                // Another inspector is tracing with it.
                None => Held::Nothing,
            },
            Err(e) => {
                log::debug!("the probe is not kept between runs here: {e}");
                Held::Nothing
            }
        }
    }
}

/// Attaches every hook's program; the links, or the first failure.
fn attach_all(
    hooks: &[(&'static str, Target)],
    loaded: &Loaded,
    events_dir: &Path,
) -> Result<Links, ProbeError> {
    // Owned here rather than by their programs, so that they can be detached
    // all at once (see `Links`); on an early return they detach as they drop.
    let mut links = Links::default();
    for (program, target) in hooks {
        let fd = loaded.program(program);
        let link = match *target {
            Target::Syscall(tp) => link::tracepoint(events_dir, "syscalls", tp, fd),
            Target::Raw(tp, _) => link::raw_tracepoint(tp, fd),
        };
        links.0.push(link.map_err(|source| ProbeError::Attach {
            program: program.to_string(),
            tracepoint: target.describe(),
            source,
        })?);
    }
    Ok(links)
}

/// The last pid the kernel handed out in this pid namespace.
fn last_pid() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn config_bytes(config: &Config) -> Vec<u8> {
    [config.trace_all, config.write_results, config.wakeup_bytes]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

/// Loads the probe from its object: the kernel's BTF read for the offsets,
/// the maps made, the `wanted` programs verified.
fn load_fresh(plan: &Plan) -> Result<(Ebpf, Option<Logger>), ProbeError> {
    let btf = Btf::from_file(prereq::btf_path())?;
    let offsets: KernelOffsets = offsets::from_btf(&btf)?;
    drop(btf);
    // No CO-RE relocations to resolve (see offsets.rs), so aya need not
    // parse the kernel's BTF a second time: a third of the start-up time
    // and most of the peak memory.
    // aya's loader parses the kernel's BTF as it is made, although none
    // of it is used. Making it on a thread, alongside our own parse,
    // saved 40 ms but held both at once: 74 MiB at the peak instead of 51.
    let mut ebpf = EbpfLoader::new()
        .btf(None)
        .override_global("OFFSETS", &offsets, true)
        .override_global("CONFIG", &plan.config, true)
        .override_global("AYA_LOG_LEVEL", &plan.log_level, false)
        .map_max_entries("EVENTS", plan.buffer_size)
        .map_max_entries("TRACKED_BITS", plan.bits_len)
        .load(PROBE_OBJECT)
        .map_err(|e| ProbeError::Load(Box::new(e)))?;
    let logger = if plan.log_level > 0 {
        EbpfLogger::init(&mut ebpf)
            .map_err(|e| log::warn!("kernel-side logging is unavailable: {e}"))
            .ok()
    } else {
        None
    };
    load_in_parallel(&mut ebpf, &plan.wanted)?;
    Ok((ebpf, logger))
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
                source: std::io::Error::other(source),
            })?;
        Ok(Floor { _ebpf: ebpf })
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
