//! The scheduler, for where the time goes (`--sched`): each context switch
//! with a followed task on either side, and each wake-up of a followed task,
//! from which userspace rebuilds every followed thread's running, runnable
//! and blocked intervals and the critical path across processes
//! (`inspector/src/timeline/why.rs`).
//!
//! These run on every context switch and wake-up of the machine: two reads
//! and two bit tests (`maybe_wanted`, the followed-tgid bitmap) turn away
//! every task that is not followed before anything else, and the records
//! carry no header (see `SwitchEvent`).

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_get_smp_processor_id},
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};
use inspector_common::{SwitchEvent, WakeupEvent, kind};

use crate::{
    kernel::{ktime, off, read, read_ptr},
    maps::{EVENTS, count_lost, enabled, is_self_scheduled, maybe_wanted, submit_flags},
};

/// A followed task, or inspector itself when `inspector run` asks
/// (`RunState::sched_self`): it is the client of the containers it runs,
/// and a path that reaches it (waiting for `runtime create` to exit before
/// it starts `runtime start`) goes on through it. Its switches are few: it
/// sleeps between polls.
#[inline(always)]
fn followed(tgid: u32) -> bool {
    maybe_wanted(tgid) || is_self_scheduled(tgid)
}

/// `sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next, …)`.
#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn insp_sched_switch(ctx: RawTracePointContext) -> i32 {
    let prev: u64 = ctx.arg(1);
    let next: u64 = ctx.arg(2);
    let prev_tgid = read::<u32>(prev, off!(task_tgid));
    let next_tgid = read::<u32>(next, off!(task_tgid));
    if !followed(prev_tgid) && !followed(next_tgid) {
        return 0;
    }
    if !enabled() {
        return 0;
    }
    let preempt: u64 = ctx.arg(0);
    let Some(mut entry) = EVENTS.reserve::<SwitchEvent>(0) else {
        count_lost(&ctx, kind::SCHED_SWITCH);
        return 0;
    };
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    ev.kind = kind::SCHED_SWITCH;
    ev.cpu = unsafe { bpf_get_smp_processor_id() };
    ev.ktime = ktime();
    ev.prev_tgid = prev_tgid;
    ev.prev_tid = read::<u32>(prev, off!(task_pid));
    ev.next_tgid = next_tgid;
    ev.next_tid = read::<u32>(next, off!(task_pid));
    // Preempted, it is runnable whatever its state says (as the kernel's
    // own trace reports it).
    ev.prev_state = if preempt & 1 != 0 {
        0
    } else {
        read::<u32>(prev, off!(task_state))
    };
    ev.prev_runtime = read::<u64>(prev, off!(task_sum_exec_runtime));
    ev.next_runtime = read::<u64>(next, off!(task_sum_exec_runtime));
    // This CPU's runqueue, through the followed task on it: a fair-class
    // task's entity is on this CPU's queue, where another class's (the
    // idle task's, a migration thread's) may point anywhere.
    ev.irq_steal = 0;
    if off!(cfs_rq_rq) != 0 {
        let on_cpu = if followed(prev_tgid) { prev } else { next };
        let rq = read_ptr(read_ptr(on_cpu, off!(task_se_cfs_rq)), off!(cfs_rq_rq));
        let clock = read::<u64>(rq, off!(rq_clock));
        let clock_task = read::<u64>(rq, off!(rq_clock_task));
        ev.irq_steal = clock.wrapping_sub(clock_task);
    }
    ev.prev_syscall = -1;
    if ev.prev_state != 0 {
        let stack = read_ptr(prev, off!(task_stack));
        if stack != 0 {
            ev.prev_syscall = read::<i64>(stack, off!(stack_orig_ax)) as i32;
        }
    }
    entry.submit(submit_flags());
    0
}

/// `sched_waking(struct task_struct *p)`, in the waker's context.
#[raw_tracepoint(tracepoint = "sched_waking")]
pub fn insp_sched_waking(ctx: RawTracePointContext) -> i32 {
    let p: u64 = ctx.arg(0);
    let tgid = read::<u32>(p, off!(task_tgid));
    if !followed(tgid) || !enabled() {
        return 0;
    }
    let Some(mut entry) = EVENTS.reserve::<WakeupEvent>(0) else {
        count_lost(&ctx, kind::SCHED_WAKEUP);
        return 0;
    };
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    let pid_tgid = bpf_get_current_pid_tgid();
    ev.kind = kind::SCHED_WAKEUP;
    ev.cpu = unsafe { bpf_get_smp_processor_id() };
    ev.ktime = ktime();
    ev.waker_tgid = (pid_tgid >> 32) as u32;
    ev.waker_tid = pid_tgid as u32;
    ev.tgid = tgid;
    ev.tid = read::<u32>(p, off!(task_pid));
    entry.submit(submit_flags());
    0
}

/// Does nothing: attached alone by `inspector bench-floor --sched`, it is
/// the baseline cost of having a program on these tracepoints at all.
#[raw_tracepoint]
pub fn insp_raw_noop(_ctx: RawTracePointContext) -> i32 {
    0
}
