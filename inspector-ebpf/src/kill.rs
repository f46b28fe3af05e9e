//! Kills the kernel decides on its own: the OOM killer's victim
//! (`oom:mark_victim`) and a process seccomp stops at a forbidden call
//! (`signal_generate` of a SIGSYS whose `si_code` is `SYS_SECCOMP`). An exit
//! status says "killed by SIGKILL"; these say why. Both are rare, so the
//! programs cost nothing on the hot path but a comparison per signal.

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};
use inspector_common::{KILLED_BY_OOM, KILLED_BY_SECCOMP, KillEvent, kind};

use crate::{
    kernel::{fill_header, off, read},
    maps::{EVENTS, count_lost, enabled, is_tracked, submit_flags, wanted},
};

const SIGSYS: u64 = 31;
/// `si_code` of a seccomp SIGSYS.
const SYS_SECCOMP: i32 = 1;
/// In `struct kernel_siginfo` (uapi layout, the same on every 64-bit
/// kernel): `si_code`, and `_sifields._sigsys`'s `_syscall` and `_arch`.
const SI_CODE: u64 = 8;
const SI_SYSCALL: u64 = 24;
const SI_ARCH: u64 = 28;

#[inline(always)]
fn report<C: aya_ebpf::EbpfContext>(
    ctx: &C,
    victim_tgid: u32,
    victim_tid: u32,
    cause: u32,
    syscall: i32,
    arch: u32,
) {
    let Some(mut entry) = EVENTS.reserve::<KillEvent>(0) else {
        count_lost(ctx, kind::KILLED);
        return;
    };
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    fill_header(&mut ev.hdr, kind::KILLED);
    ev.victim_tgid = victim_tgid;
    ev.victim_tid = victim_tid;
    ev.cause = cause;
    ev.syscall = syscall;
    ev.arch = arch;
    ev._pad = 0;
    entry.submit(submit_flags());
}

/// `mark_victim(struct task_struct *task, uid_t uid)` (recent kernels).
#[raw_tracepoint(tracepoint = "mark_victim")]
pub fn insp_oom_victim(ctx: RawTracePointContext) -> i32 {
    if !enabled() {
        return 0;
    }
    let task: u64 = ctx.arg(0);
    let tgid = read::<u32>(task, off!(task_tgid));
    let tid = read::<u32>(task, off!(task_pid));
    if is_tracked(tgid) {
        report(&ctx, tgid, tid, KILLED_BY_OOM, -1, 0);
    }
    0
}

/// `mark_victim(int pid)` (older kernels): the pid the OOM killer names is
/// its victim's leader's, which is the process's tgid.
#[raw_tracepoint(tracepoint = "mark_victim")]
pub fn insp_oom_victim_pid(ctx: RawTracePointContext) -> i32 {
    if !enabled() {
        return 0;
    }
    let pid = ctx.arg::<u64>(0) as u32;
    if is_tracked(pid) {
        report(&ctx, pid, pid, KILLED_BY_OOM, -1, 0);
    }
    0
}

/// `signal_generate(int sig, struct kernel_siginfo *info, struct task_struct *task, …)`.
#[raw_tracepoint(tracepoint = "signal_generate")]
pub fn insp_signal(ctx: RawTracePointContext) -> i32 {
    let sig: u64 = ctx.arg(0);
    if sig != SIGSYS || !enabled() {
        return 0;
    }
    let info: u64 = ctx.arg(1);
    let task: u64 = ctx.arg(2);
    if read::<i32>(info, SI_CODE) != SYS_SECCOMP {
        return 0;
    }
    let tgid = read::<u32>(task, off!(task_tgid));
    if !wanted(tgid) {
        return 0;
    }
    let tid = read::<u32>(task, off!(task_pid));
    let syscall = read::<i32>(info, SI_SYSCALL);
    let arch = read::<u32>(info, SI_ARCH);
    report(&ctx, tgid, tid, KILLED_BY_SECCOMP, syscall, arch);
    0
}
