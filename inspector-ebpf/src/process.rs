//! Process life: fork, exec and exit, from the scheduler's raw tracepoints, which
//! pass the task structs themselves.

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, generated::bpf_probe_read_user},
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};
use inspector_common::{
    ARGS_LEN, COMM_FOLLOW, EXEC_ARGS_TRUNCATED, EXEC_FILENAME_TRUNCATED, ExecEvent, ExitEvent,
    ForkEvent, STR_LEN, kind,
};

use crate::{
    kernel::{bounded, current_task, fill_header, kernel_str, off, read, read_ptr},
    maps::{
        CLONE_FLAGS, EVENTS, EXITED, PENDING, TRACK_COMMS, count_lost, enabled, is_tracked,
        maybe_wanted, submit_flags, track, untrack, wanted,
    },
};

/// `sched_process_fork(struct task_struct *parent, struct task_struct *child)`.
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn insp_fork(ctx: RawTracePointContext) -> i32 {
    if !enabled() {
        return 0;
    }
    let child: u64 = ctx.arg(1);
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    let tid = pid_tgid as u32;
    let child_tgid = read::<u32>(child, off!(task_tgid));
    let child_tid = read::<u32>(child, off!(task_pid));
    let thread = child_tgid != child_tid;

    // Tracking is inherited by new processes (threads share their process's entry).
    if !thread && is_tracked(tgid) {
        track(child_tgid, COMM_FOLLOW);
    }
    if !wanted(tgid) {
        return 0;
    }
    let Some(mut entry) = EVENTS.reserve::<ForkEvent>(0) else {
        count_lost(&ctx, kind::FORK);
        return 0;
    };
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    fill_header(&mut ev.hdr, kind::FORK);
    ev.child_tgid = child_tgid;
    ev.child_tid = child_tid;
    ev.child_start = read::<u64>(child, off!(task_start_time));
    match unsafe { CLONE_FLAGS.get(tid) } {
        Some(flags) => {
            ev.flags = *flags;
            ev.flags_known = 1;
        }
        None => {
            ev.flags = 0;
            ev.flags_known = 0;
        }
    }
    ev.thread = thread as u32;
    entry.submit(submit_flags());
    0
}

/// `sched_process_exec(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)`:
/// raised once the new image is in place, so `comm` and the argv area are the new ones.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn insp_exec(ctx: RawTracePointContext) -> i32 {
    if !enabled() {
        return 0;
    }
    let old_pid: u32 = ctx.arg::<u64>(1) as u32;
    let bprm: u64 = ctx.arg(2);
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    let tid = pid_tgid as u32;

    // A thread that exec'd took over the leader's tid: its pending execve entry
    // (kept under the old tid) will never see its exit.
    if old_pid != tid {
        let _ = PENDING.remove(old_pid);
    }
    // The command decides whether to follow the process, and for one
    // followed, what its writes may be (see `message`): runc's init
    // becoming the entrypoint is no longer a runtime.
    let comm = bpf_get_current_comm().unwrap_or([0; 16]);
    let bits = unsafe { TRACK_COMMS.get(comm) }.copied();
    if !is_tracked(tgid) {
        if let Some(bits) = bits {
            track(tgid, bits);
            aya_log_ebpf::debug!(&ctx, "following tgid {}: it exec'd a tracked command", tgid);
        }
    } else {
        track(tgid, bits.unwrap_or(COMM_FOLLOW));
    }
    if !wanted(tgid) {
        return 0;
    }

    let Some(mut entry) = EVENTS.reserve::<ExecEvent>(0) else {
        count_lost(&ctx, kind::EXEC);
        return 0;
    };
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    fill_header(&mut ev.hdr, kind::EXEC);
    ev.old_tid = old_pid;
    ev.flags = 0;

    let filename = read_ptr(bprm, off!(binprm_filename));
    ev.filename_len = kernel_str(&mut ev.filename, filename);
    if ev.filename_len as usize >= STR_LEN - 1 {
        ev.flags |= EXEC_FILENAME_TRUNCATED;
    }

    // argv as laid out in the new mm: NUL-separated strings in [arg_start, arg_end).
    let mm = read_ptr(current_task(), off!(task_mm));
    let start = read::<u64>(mm, off!(mm_arg_start));
    let end = read::<u64>(mm, off!(mm_arg_end));
    let mut len = end.saturating_sub(start);
    if len > (ARGS_LEN - 1) as u64 {
        len = (ARGS_LEN - 1) as u64;
        ev.flags |= EXEC_ARGS_TRUNCATED;
    }
    let len = bounded(len as u32, ARGS_LEN as u32 - 1);
    ev.args_len = 0;
    if len > 0 {
        let r = unsafe {
            bpf_probe_read_user(
                ev.args.as_mut_ptr().cast(),
                len,
                start as *const core::ffi::c_void,
            )
        };
        if r == 0 {
            ev.args_len = len;
        }
    }
    entry.submit(submit_flags());
    0
}

/// `sched_process_exit(struct task_struct *p, bool group_dead)`: raised for every
/// exiting thread; the process exit is the one with `group_dead`. The
/// tracepoint has had its second argument since Linux 6.16 or so; a raw
/// tracepoint program that reads past a tracepoint's arguments is refused
/// at attach (EINVAL), so older kernels get [`insp_exit_task`] instead.
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn insp_exit(ctx: RawTracePointContext) -> i32 {
    if !enabled() {
        return 0;
    }
    let task: u64 = ctx.arg(0);
    let group_dead: u64 = ctx.arg(1);
    exited(&ctx, task, group_dead & 0xff != 0)
}

/// `sched_process_exit(struct task_struct *p)`, as kernels before `group_dead`
/// have it. `do_exit` counts the thread out of `signal->live` before the
/// tracepoint, so the last thread of a process sees it at zero; a thread
/// that exits at the same time may see zero too, hence [`EXITED`].
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn insp_exit_task(ctx: RawTracePointContext) -> i32 {
    if !enabled() {
        return 0;
    }
    let task: u64 = ctx.arg(0);
    let tgid = bpf_get_current_pid_tgid() >> 32;
    let signal = read_ptr(task, off!(task_signal));
    let live = read::<u32>(signal, off!(signal_live));
    // Only processes that may be reported pay for the map insert (and only
    // they have anything to untrack).
    let mut group_dead = false;
    if live == 0 && maybe_wanted(tgid as u32) {
        let leader = read_ptr(task, off!(task_group_leader));
        let key = [tgid, read::<u64>(leader, off!(task_start_time))];
        group_dead = EXITED.insert(key, 1, BPF_NOEXIST as u64).is_ok();
    }
    exited(&ctx, task, group_dead)
}

/// A thread of the current process has exited; `group_dead` when it was the
/// last one, which ends the process.
#[inline(always)]
fn exited(ctx: &RawTracePointContext, task: u64, group_dead: bool) -> i32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    let tid = pid_tgid as u32;

    // A thread can die inside a syscall (killed): forget what it had entered.
    let _ = PENDING.remove(tid);
    let _ = CLONE_FLAGS.remove(tid);
    if !group_dead {
        return 0;
    }
    if wanted(tgid) {
        match EVENTS.reserve::<ExitEvent>(0) {
            Some(mut entry) => {
                let ev = unsafe { &mut *entry.as_mut_ptr() };
                fill_header(&mut ev.hdr, kind::EXIT);
                ev.exit_code = read::<u32>(task, off!(task_exit_code));
                ev._pad = 0;
                entry.submit(submit_flags());
            }
            None => count_lost(ctx, kind::EXIT),
        }
    }
    untrack(tgid);
    0
}
