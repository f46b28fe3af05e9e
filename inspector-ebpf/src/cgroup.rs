//! cgroups: made, removed, joined (the cgroup raw tracepoints, which carry the
//! path), and written to (a `write` whose fd is a file on a cgroup
//! filesystem: [`controller_write`], called by [`crate::write`]).

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, generated::bpf_probe_read_user},
    macros::raw_tracepoint,
    programs::{RawTracePointContext, TracePointContext},
};
use inspector_common::{CgroupEvent, STR_LEN, SYSCALL_NO_RESULT, SyscallEvent, kind};

use crate::{
    kernel::{bounded, fill_header, kernel_str, off, read, read_ptr},
    maps::{EVENTS, config_write_results, count_lost, enabled, is_self, submit_flags, wanted},
    path,
    syscall::{begin, park},
};

/// Reports every cgroup operation but inspector's own: they are rare, and the
/// one that matters may be made by a process we do not track (systemd making a
/// container's scope).
#[inline(always)]
fn cgroup_event(ctx: &RawTracePointContext, kind: u32, task: u64, threadgroup: u64) {
    let cgrp: u64 = ctx.arg(0);
    let path: u64 = ctx.arg(1);
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if is_self(tgid) || !enabled() {
        return;
    }
    let task_tgid = if task != 0 {
        read::<u32>(task, off!(task_tgid))
    } else {
        0
    };
    // A task joining a cgroup matters when either side is one we report.
    if kind == kind::CGROUP_ATTACH && !wanted(tgid) && !wanted(task_tgid) {
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<CgroupEvent>(0) else {
        count_lost(ctx, kind);
        return;
    };
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    fill_header(&mut ev.hdr, kind);
    let root = read_ptr(cgrp, off!(cgroup_root));
    ev.hierarchy = read::<u32>(root, off!(cgroup_root_hierarchy_id));
    ev.level = read::<u32>(cgrp, off!(cgroup_level));
    let kn = read_ptr(cgrp, off!(cgroup_kn));
    ev.id = read::<u64>(kn, off!(kernfs_node_id));
    ev.task_tgid = task_tgid;
    ev.task_tid = if task != 0 {
        read::<u32>(task, off!(task_pid))
    } else {
        0
    };
    ev.threadgroup = (threadgroup & 0xff) as u32;
    ev.path_len = kernel_str(&mut ev.path, path);
    entry.submit(submit_flags());
}

/// `cgroup_mkdir(struct cgroup *cgrp, const char *path)`.
#[raw_tracepoint(tracepoint = "cgroup_mkdir")]
pub fn insp_cgroup_mkdir(ctx: RawTracePointContext) -> i32 {
    cgroup_event(&ctx, kind::CGROUP_MKDIR, 0, 0);
    0
}

/// `cgroup_rmdir(struct cgroup *cgrp, const char *path)`.
#[raw_tracepoint(tracepoint = "cgroup_rmdir")]
pub fn insp_cgroup_rmdir(ctx: RawTracePointContext) -> i32 {
    cgroup_event(&ctx, kind::CGROUP_RMDIR, 0, 0);
    0
}

/// `cgroup_attach_task(struct cgroup *dst, const char *path, struct task_struct *task, bool threadgroup)`.
#[raw_tracepoint(tracepoint = "cgroup_attach_task")]
pub fn insp_cgroup_attach(ctx: RawTracePointContext) -> i32 {
    let task: u64 = ctx.arg(2);
    let threadgroup: u64 = ctx.arg(3);
    cgroup_event(&ctx, kind::CGROUP_ATTACH, task, threadgroup);
    0
}

/// A write to a cgroup controller file (`file` on a cgroup filesystem of
/// `magic`, device `dev`): its value, the file's path in its hierarchy, and
/// its return with `Config::write_results`.
#[inline(always)]
pub fn controller_write(ctx: &TracePointContext, fd: u64, file: u64, magic: u64, dev: u32) {
    let buf = unsafe { ctx.read_at::<u64>(24) }.unwrap_or(0);
    let count = unsafe { ctx.read_at::<u64>(32) }.unwrap_or(0);
    let Some(ev) = begin(ctx, kind::CGROUP_WRITE) else {
        return;
    };
    ev.args[0] = fd;
    ev.args[1] = count;
    ev.aux[0] = dev as u64;
    ev.aux[1] = magic;
    // The value written is bytes, not a C string: copy `count` of them (bounded).
    let mut n = count;
    if n > (STR_LEN - 1) as u64 {
        n = (STR_LEN - 1) as u64;
    }
    let n = bounded(n as u32, STR_LEN as u32 - 1);
    if n > 0 && buf != 0 {
        let r = unsafe {
            bpf_probe_read_user(
                ev.strs[0].as_mut_ptr().cast(),
                n,
                buf as *const core::ffi::c_void,
            )
        };
        if r == 0 {
            ev.str_len[0] = n;
        }
    }
    let fpath = file + off!(file_f_path);
    let dentry = read_ptr(fpath, off!(path_dentry));
    path::walk(&mut ev.path, dentry, 0);
    if config_write_results() {
        park(ev);
    } else {
        // Waiting for the return would need a program on every write's exit.
        ev.flags = SYSCALL_NO_RESULT;
        if EVENTS.output::<SyscallEvent>(&*ev, submit_flags()).is_err() {
            count_lost(ctx, kind::CGROUP_WRITE);
        }
    }
}
