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
