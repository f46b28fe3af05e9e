//! System calls of the container-making kind, each paired enter → exit so that
//! the event carries its return value.
//!
//! Syscall tracepoint records are `{ common (8 bytes), int __syscall_nr, args[6] }`
//! on enter and `{ common, int __syscall_nr, long ret }` on exit; userspace checks
//! this layout in tracefs before attaching.

use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid,
        generated::{bpf_probe_read_user, bpf_probe_read_user_str},
    },
    macros::tracepoint,
    programs::TracePointContext,
};
use inspector_common::{
    CLONE_NEW_MASK, NSFS_MAGIC, STR_LEN, SYSCALL_ONLY_FAILURE, SyscallEvent, kind,
};

use crate::{
    kernel::{current_task, fd_file, file_identity, fill_header, ktime, off, read_ptr},
    maps::{
        CLONE_FLAGS, EVENTS, PENDING, SCRATCH, count_lost, enabled, maybe_wanted, submit_flags,
        wanted,
    },
    path,
};

const NR: usize = 8;
const ARG0: usize = 16;
const RET: usize = 16;

#[inline(always)]
fn arg(ctx: &TracePointContext, n: usize) -> u64 {
    unsafe { ctx.read_at::<u64>(ARG0 + 8 * n) }.unwrap_or(0)
}

/// Starts an event for the current syscall if this process is reported: the
/// per-CPU scratch record with its header filled and every field cleared.
#[inline(always)]
pub fn begin(ctx: &TracePointContext, kind: u32) -> Option<&'static mut SyscallEvent> {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if !wanted(tgid) || !enabled() {
        return None;
    }
    let ev = unsafe { &mut *SCRATCH.get_ptr_mut(0)? };
    fill_header(&mut ev.hdr, kind);
    ev.ret = 0;
    ev.args = [0; 2];
    ev.aux = [0; 2];
    ev.str_len = [0; 3];
    ev.nr = unsafe { ctx.read_at::<i32>(NR) }.unwrap_or(-1) as u32;
    ev.end = 0;
    ev.flags = 0;
    ev._pad = 0;
    path::clear(&mut ev.path);
    Some(ev)
}

/// Parks the event until the syscall returns.
#[inline(always)]
pub fn park(ev: &SyscallEvent) {
    let _ = PENDING.insert(ev.hdr.tid, ev, 0);
}

/// Copies a user string argument into `ev.strs[i]`.
#[inline(always)]
pub fn user_str(ev: &mut SyscallEvent, i: usize, src: u64) {
    if src == 0 || i >= 3 {
        return;
    }
    let n = unsafe {
        bpf_probe_read_user_str(
            ev.strs[i].as_mut_ptr().cast(),
            STR_LEN as u32,
            src as *const core::ffi::c_void,
        )
    };
    ev.str_len[i] = if n > 0 { n as u32 - 1 } else { 0 };
}

/// Every `sys_exit_*` we pair goes through here: the parked event gets its return
/// value and is sent, unless it succeeded and only a failure was wanted (an
/// execve, which `sched_process_exec` reports in the new image, and the
/// calls of [`insp_failable_enter`]).
#[tracepoint]
pub fn insp_sys_exit(ctx: TracePointContext) -> i32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    // This runs on the exit of every write when cgroup write results are on.
    if !maybe_wanted((pid_tgid >> 32) as u32) || !enabled() {
        return 0;
    }
    let tid = pid_tgid as u32;
    let Some(ev) = PENDING.get_ptr_mut(tid) else {
        return 0;
    };
    let ev = unsafe { &mut *ev };
    let nr = unsafe { ctx.read_at::<i32>(NR) }.unwrap_or(-1) as u32;
    // A stale entry (a syscall whose exit we missed) must not take this return value.
    if ev.nr == nr {
        let ret = unsafe { ctx.read_at::<i64>(RET) }.unwrap_or(0);
        let quiet =
            ret >= 0 && (ev.hdr.kind == kind::EXEC_FAILED || ev.flags & SYSCALL_ONLY_FAILURE != 0);
        if !quiet {
            ev.ret = ret;
            ev.end = ktime();
            if EVENTS.output::<SyscallEvent>(&*ev, submit_flags()).is_err() {
                count_lost(&ctx, ev.hdr.kind);
            }
        }
    }
    let _ = PENDING.remove(tid);
    0
}

// --- process creation ---------------------------------------------------------

#[inline(always)]
fn remember_clone_flags(flags: u64) {
    let pid_tgid = bpf_get_current_pid_tgid();
    if wanted((pid_tgid >> 32) as u32) && enabled() {
        let _ = CLONE_FLAGS.insert(pid_tgid as u32, flags, 0);
    }
}

#[tracepoint]
pub fn insp_clone_enter(ctx: TracePointContext) -> i32 {
    remember_clone_flags(arg(&ctx, 0));
    0
}

/// clone3 passes `struct clone_args *`; `flags` is its first field.
#[tracepoint]
pub fn insp_clone3_enter(ctx: TracePointContext) -> i32 {
    let uargs = arg(&ctx, 0);
    let mut flags: u64 = 0;
    if uargs != 0 {
        let r = unsafe {
            bpf_probe_read_user(
                (&raw mut flags).cast(),
                8,
                uargs as *const core::ffi::c_void,
            )
        };
        if r != 0 {
            flags = 0;
        }
    }
    remember_clone_flags(flags);
    0
}

/// The fork event already tells of every new task; a clone is reported as a
/// syscall of its own when it made namespaces, or failed.
#[tracepoint]
pub fn insp_clone_exit(ctx: TracePointContext) -> i32 {
    if !enabled() {
        return 0;
    }
    let tid = bpf_get_current_pid_tgid() as u32;
    let Some(flags) = (unsafe { CLONE_FLAGS.get(tid) }).copied() else {
        return 0;
    };
    let _ = CLONE_FLAGS.remove(tid);
    let ret = unsafe { ctx.read_at::<i64>(RET) }.unwrap_or(0);
    if flags & CLONE_NEW_MASK == 0 && ret >= 0 {
        return 0;
    }
    let Some(ev) = begin(&ctx, kind::CLONE) else {
        return 0;
    };
    ev.args[0] = flags;
    ev.ret = ret;
    ev.end = ev.hdr.ktime;
    if EVENTS.output::<SyscallEvent>(&*ev, submit_flags()).is_err() {
        count_lost(&ctx, kind::CLONE);
    }
    0
}

#[tracepoint]
pub fn insp_execve_enter(ctx: TracePointContext) -> i32 {
    let Some(ev) = begin(&ctx, kind::EXEC_FAILED) else {
        return 0;
    };
    user_str(ev, 0, arg(&ctx, 0));
    park(ev);
    0
}

#[tracepoint]
pub fn insp_execveat_enter(ctx: TracePointContext) -> i32 {
    let Some(ev) = begin(&ctx, kind::EXEC_FAILED) else {
        return 0;
    };
    ev.args[0] = arg(&ctx, 0);
    ev.args[1] = arg(&ctx, 4);
    user_str(ev, 0, arg(&ctx, 1));
    park(ev);
    0
}

/// The calls a runtime's init gives up on when the host refuses them
/// (`prlimit64`/`setrlimit` raising a hard limit without CAP_SYS_RESOURCE,
/// `capset` asking for capabilities the host lacks, credentials, hostname):
/// one program for all of them, reported only when they fail, so that a
/// start that works adds no event.
#[tracepoint]
pub fn insp_failable_enter(ctx: TracePointContext) -> i32 {
    let Some(ev) = begin(&ctx, kind::SYSCALL_FAILED) else {
        return 0;
    };
    ev.args[0] = arg(&ctx, 0);
    ev.args[1] = arg(&ctx, 1);
    ev.flags = SYSCALL_ONLY_FAILURE;
    park(ev);
    0
}

// --- namespaces ---------------------------------------------------------------

#[tracepoint]
pub fn insp_unshare_enter(ctx: TracePointContext) -> i32 {
    let Some(ev) = begin(&ctx, kind::UNSHARE) else {
        return 0;
    };
    ev.args[0] = arg(&ctx, 0);
    park(ev);
    0
}

/// `setns(fd, nstype)`: the namespace joined is the one behind `fd`, whose nsfs
/// inode number is the namespace's id (as in /proc/<pid>/ns/*).
#[tracepoint]
pub fn insp_setns_enter(ctx: TracePointContext) -> i32 {
    let Some(ev) = begin(&ctx, kind::SETNS) else {
        return 0;
    };
    let fd = arg(&ctx, 0);
    ev.args[0] = fd;
    ev.args[1] = arg(&ctx, 1);
    let file = fd_file(fd);
    if file != 0 {
        let (magic, _dev, ino) = file_identity(file);
        ev.aux[0] = if magic == NSFS_MAGIC { ino } else { 0 };
        ev.aux[1] = magic;
    }
    park(ev);
    0
}

// --- the filesystem view --------------------------------------------------------

#[tracepoint]
pub fn insp_mount_enter(ctx: TracePointContext) -> i32 {
    let Some(ev) = begin(&ctx, kind::MOUNT) else {
        return 0;
    };
    user_str(ev, 0, arg(&ctx, 0));
    user_str(ev, 1, arg(&ctx, 1));
    user_str(ev, 2, arg(&ctx, 2));
    ev.args[0] = arg(&ctx, 3);
    park(ev);
    0
}

#[tracepoint]
pub fn insp_umount_enter(ctx: TracePointContext) -> i32 {
    let Some(ev) = begin(&ctx, kind::UMOUNT) else {
        return 0;
    };
    user_str(ev, 0, arg(&ctx, 0));
    ev.args[0] = arg(&ctx, 1);
    park(ev);
    0
}

/// runc calls `pivot_root(".", ".")`: the directory it pivots into is the
/// caller's working directory, rebuilt here from `task->fs->pwd`.
#[tracepoint]
pub fn insp_pivot_root_enter(ctx: TracePointContext) -> i32 {
    let Some(ev) = begin(&ctx, kind::PIVOT_ROOT) else {
        return 0;
    };
    user_str(ev, 0, arg(&ctx, 0));
    user_str(ev, 1, arg(&ctx, 1));
    let fs = read_ptr(current_task(), off!(task_fs));
    let pwd = fs + off!(fs_pwd);
    let mnt = read_ptr(pwd, off!(path_mnt));
    let dentry = read_ptr(pwd, off!(path_dentry));
    if fs != 0 {
        path::walk(&mut ev.path, dentry, mnt);
    }
    park(ev);
    0
}

#[tracepoint]
pub fn insp_chroot_enter(ctx: TracePointContext) -> i32 {
    let Some(ev) = begin(&ctx, kind::CHROOT) else {
        return 0;
    };
    user_str(ev, 0, arg(&ctx, 0));
    park(ev);
    0
}

#[tracepoint]
pub fn insp_chdir_enter(ctx: TracePointContext) -> i32 {
    let Some(ev) = begin(&ctx, kind::CHDIR) else {
        return 0;
    };
    user_str(ev, 0, arg(&ctx, 0));
    park(ev);
    0
}

#[tracepoint]
pub fn insp_fchdir_enter(ctx: TracePointContext) -> i32 {
    let Some(ev) = begin(&ctx, kind::FCHDIR) else {
        return 0;
    };
    let fd = arg(&ctx, 0);
    ev.args[0] = fd;
    let file = fd_file(fd);
    if file != 0 {
        let fpath = file + off!(file_f_path);
        let mnt = read_ptr(fpath, off!(path_mnt));
        let dentry = read_ptr(fpath, off!(path_dentry));
        path::walk(&mut ev.path, dentry, mnt);
    }
    park(ev);
    0
}

/// Does nothing: attached alone by `inspector bench-floor`, it is the baseline
/// cost of having a syscall tracepoint program at all.
#[tracepoint]
pub fn insp_noop(_ctx: TracePointContext) -> i32 {
    0
}
