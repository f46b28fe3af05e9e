//! The probe's own cost as the kernel counts it: each program's run time and
//! number of runs (`BPF_OBJ_GET_INFO_BY_FD`). The kernel keeps them only
//! while run-time statistics are on: `kernel.bpf_stats_enabled`, or a
//! descriptor from `BPF_ENABLE_STATS` held open ([`count_runs`]); they cost
//! two clock reads per run of every BPF program on the machine.

use std::os::fd::{AsRawFd as _, OwnedFd};

use aya_obj::generated::{bpf_cmd, bpf_prog_info};

use super::link::bpf_attr;

/// One program's totals since it was loaded (zero while statistics are off).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProgramCost {
    /// The hook it fills (`sys_enter_execve`, `sched_process_fork`...).
    pub hook: &'static str,
    pub run_time_ns: u64,
    pub runs: u64,
}

/// Turns the kernel's run-time statistics on until the descriptor is
/// closed (they go off with the last holder, unless the sysctl is set).
pub fn count_runs() -> std::io::Result<OwnedFd> {
    aya::sys::enable_stats(aya::sys::Stats::RunTime)
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// The totals of `programs`; a program the kernel will not describe is left out.
pub fn of(programs: &[(&'static str, OwnedFd)]) -> Vec<ProgramCost> {
    programs
        .iter()
        .filter_map(|(hook, fd)| {
            // SAFETY: a C struct of integers, for which all zeroes is valid.
            let mut info: bpf_prog_info = unsafe { std::mem::zeroed() };
            let mut attr = bpf_attr();
            attr.info.bpf_fd = fd.as_raw_fd() as u32;
            attr.info.info_len = size_of::<bpf_prog_info>() as u32;
            attr.info.info = std::ptr::from_mut(&mut info) as u64;
            // The kernel writes back into `attr` (the length it filled in),
            // so it is passed as mutable.
            // SAFETY: `attr` is a bpf_attr of the size passed, and `info`
            // the buffer of the length it names, both alive for the call.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_bpf,
                    bpf_cmd::BPF_OBJ_GET_INFO_BY_FD as libc::c_long,
                    std::ptr::from_mut(&mut attr),
                    size_of_val(&attr) as libc::c_uint,
                )
            };
            if r < 0 {
                return None;
            }
            Some(ProgramCost {
                hook,
                run_time_ns: info.run_time_ns,
                runs: info.run_cnt,
            })
        })
        .collect()
}

/// How long run-time statistics are on in each [`SAMPLE_EVERY`]: on, they cost
/// every BPF program on the machine (not only the probe's) two clock reads a
/// run, 30% on a storm of one-byte writes here; on for one period in thirty,
/// about 1%.
pub const SAMPLE_FOR: std::time::Duration = std::time::Duration::from_secs(2);
pub const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Turns run-time statistics on for [`SAMPLE_FOR`] in every [`SAMPLE_EVERY`],
/// and says how long they were on: the probe's run time over that time is the
/// share of a CPU it takes. Where `kernel.bpf_stats_enabled` is already 1,
/// they are on all the time and nothing is switched.
pub struct Sampler {
    on: Option<OwnedFd>,
    /// The sysctl keeps them on.
    always: bool,
    changed: std::time::Instant,
    last: std::time::Instant,
    /// Why they cannot be turned on, said once.
    pub refused: Option<String>,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    pub fn new() -> Self {
        let always = std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled")
            .is_ok_and(|v| v.trim() == "1");
        let now = std::time::Instant::now();
        Sampler {
            on: None,
            always,
            changed: now,
            last: now,
            refused: None,
        }
    }

    /// How long statistics were on since the last call; then switches them
    /// on or off as the period says. Call it right after reading the costs.
    pub fn tick(&mut self) -> std::time::Duration {
        let now = std::time::Instant::now();
        let counted = if self.always || self.on.is_some() {
            now - self.last
        } else {
            std::time::Duration::ZERO
        };
        self.last = now;
        if self.always || self.refused.is_some() {
            return counted;
        }
        let held = now - self.changed;
        if self.on.is_some() && held >= SAMPLE_FOR {
            self.on = None;
            self.changed = now;
        } else if self.on.is_none() && held >= SAMPLE_EVERY - SAMPLE_FOR {
            match count_runs() {
                Ok(fd) => self.on = Some(fd),
                Err(e) => self.refused = Some(e.to_string()),
            }
            self.changed = now;
        }
        counted
    }
}
