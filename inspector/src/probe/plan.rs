//! Stage 1 of the probe's lifecycle (see [`super::lifecycle`]): what a set
//! of options asks of the probe: which programs go on which tracepoints,
//! with which settings, and the key naming that probe when it is kept loaded.

use std::path::Path;

use inspector_common::Config;

use super::{
    DEFAULT_TRACK_COMMS, ProbeError, ProbeOptions, RAW_HOOKS, SCHED_HOOKS, SYSCALL_HOOKS,
    WRITE_EXIT_HOOK, comm_key, loader::PROBE_OBJECT, pinned, prereq,
};

/// Where a program attaches.
#[derive(Clone, Copy)]
pub enum Target {
    /// `syscalls:<name>` in tracefs.
    Syscall(&'static str),
    /// A raw tracepoint, and its tracefs category (to check it exists).
    Raw(&'static str, &'static str),
}

impl Target {
    pub fn describe(self) -> String {
        match self {
            Target::Syscall(name) => format!("syscalls:{name}"),
            Target::Raw(name, category) => format!("raw {category}:{name}"),
        }
    }
}

/// The (program, target) pairs attached for these options, but for syscall
/// tracepoints this kernel does not have; and the syscalls those were for.
/// A kernel built without a syscall loses that syscall's events, not the
/// whole probe. Without any syscall tracepoint (no CONFIG_FTRACE_SYSCALLS:
/// most of what inspector shows), every hook stays, for
/// [`Plan::check_tracepoints`] to name what is missing.
fn hooks(
    opts: &ProbeOptions,
    events_dir: &Path,
) -> (Vec<(&'static str, Target)>, Vec<&'static str>) {
    let write_exit = opts.write_results.then_some(&WRITE_EXIT_HOOK);
    let (mut hooks, absent): (Vec<_>, Vec<_>) = SYSCALL_HOOKS
        .iter()
        .chain(write_exit)
        .copied()
        .partition(|(_, tp)| events_dir.join("syscalls").join(tp).is_dir());
    let mut missing = Vec::new();
    if hooks.is_empty() {
        hooks = absent;
    } else {
        for (_, tp) in absent {
            let syscall = tp
                .trim_start_matches("sys_enter_")
                .trim_start_matches("sys_exit_");
            if !missing.contains(&syscall) {
                missing.push(syscall);
            }
        }
    }
    let hooks = hooks
        .into_iter()
        .map(|(program, tp)| (program, Target::Syscall(tp)))
        .chain(
            RAW_HOOKS
                .iter()
                .chain(SCHED_HOOKS.iter().filter(|_| opts.sched))
                .map(|hook| (hook.program, Target::Raw(hook.tracepoint, hook.category))),
        )
        .collect();
    (hooks, missing)
}

/// What a set of options asks to load and attach.
pub struct Plan {
    pub hooks: Vec<(&'static str, Target)>,
    /// Syscalls this kernel has no tracepoint for: not reported.
    pub missing: Vec<&'static str>,
    /// The hooks' programs, each once.
    pub wanted: Vec<&'static str>,
    /// Command names that start following a process.
    pub comms: Vec<String>,
    pub config: Config,
    pub log_level: u8,
    pub buffer_size: u32,
    /// Words of the `TRACKED_BITS` and `SPEAKS_BITS` bitmaps, from the kernel's `pid_max`.
    pub bits_len: u32,
}

impl Plan {
    pub fn new(opts: &ProbeOptions, events_dir: &Path) -> Result<Plan, ProbeError> {
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
        let (hooks, missing) = hooks(opts, events_dir);
        let mut wanted: Vec<&'static str> = hooks.iter().map(|(program, _)| *program).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(1 << 22);
        Ok(Plan {
            hooks,
            missing,
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
    pub fn key(&self) -> String {
        pinned::key(&[
            PROBE_OBJECT,
            &config_bytes(&self.config),
            &self.buffer_size.to_le_bytes(),
            &self.bits_len.to_le_bytes(),
            self.wanted.join(",").as_bytes(),
        ])
    }

    pub fn comm_names(&self) -> Vec<&str> {
        self.comms.iter().map(String::as_str).collect()
    }

    /// Every tracepoint and its record layout, before anything is loaded.
    pub fn check_tracepoints(&self, events_dir: &Path) -> Result<(), ProbeError> {
        for (_, target) in &self.hooks {
            match *target {
                Target::Syscall(tp) => prereq::check_syscall_tracepoint(events_dir, tp)?,
                Target::Raw(tp, category) => prereq::check_tracepoint(events_dir, category, tp)?,
            }
        }
        Ok(())
    }
}

fn config_bytes(config: &Config) -> Vec<u8> {
    [config.trace_all, config.write_results, config.wakeup_bytes]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}
