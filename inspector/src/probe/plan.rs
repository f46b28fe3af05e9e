//! What a set of options asks of the probe: which programs go on which
//! tracepoints, with which settings, and the key naming that probe when it
//! is kept loaded.

use std::path::Path;

use inspector_common::Config;

use super::{
    DEFAULT_TRACK_COMMS, ProbeError, ProbeOptions, RAW_HOOKS, SYSCALL_HOOKS, WRITE_EXIT_HOOK,
    comm_key, loader::PROBE_OBJECT, pinned,
};
use crate::prereq;

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

/// What a set of options asks to load and attach.
pub struct Plan {
    pub hooks: Vec<(&'static str, Target)>,
    /// The hooks' programs, each once.
    pub wanted: Vec<&'static str>,
    /// Command names that start following a process.
    pub comms: Vec<String>,
    pub config: Config,
    pub log_level: u8,
    pub buffer_size: u32,
    /// Words of the `TRACKED_BITS` bitmap, from the kernel's `pid_max`.
    pub bits_len: u32,
}

impl Plan {
    pub fn new(opts: &ProbeOptions) -> Result<Plan, ProbeError> {
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
