//! The kernel struct offsets the probe needs, from the running kernel's BTF.

use inspector_common::KernelOffsets;

use super::btf::{Btf, BtfError};

/// Looks up every offset in [`KernelOffsets`]; fails naming the first field this
/// kernel does not have.
pub fn from_btf(btf: &Btf) -> Result<KernelOffsets, BtfError> {
    let o = |s: &str, f: &str| btf.member_offset(s, f);
    Ok(KernelOffsets {
        task_pid: o("task_struct", "pid")?,
        task_tgid: o("task_struct", "tgid")?,
        task_real_parent: o("task_struct", "real_parent")?,
        task_group_leader: o("task_struct", "group_leader")?,
        task_start_time: o("task_struct", "start_time")?,
        task_nsproxy: o("task_struct", "nsproxy")?,
        task_thread_pid: o("task_struct", "thread_pid")?,
        task_exit_code: o("task_struct", "exit_code")?,
        task_mm: o("task_struct", "mm")?,
        task_files: o("task_struct", "files")?,
        task_fs: o("task_struct", "fs")?,
        task_signal: o("task_struct", "signal")?,
        signal_live: o("signal_struct", "live")?,
        nsproxy_mnt_ns: o("nsproxy", "mnt_ns")?,
        mnt_namespace_inum: o("mnt_namespace", "ns.inum")?,
        pid_level: o("pid", "level")?,
        pid_numbers: o("pid", "numbers")?,
        upid_size: btf.struct_size("upid")?,
        upid_nr: o("upid", "nr")?,
        upid_ns: o("upid", "ns")?,
        pid_namespace_inum: o("pid_namespace", "ns.inum")?,
        mm_arg_start: o("mm_struct", "arg_start")?,
        mm_arg_end: o("mm_struct", "arg_end")?,
        binprm_filename: o("linux_binprm", "filename")?,
        files_fdt: o("files_struct", "fdt")?,
        fdtable_max_fds: o("fdtable", "max_fds")?,
        fdtable_fd: o("fdtable", "fd")?,
        file_f_path: o("file", "f_path")?,
        file_f_inode: o("file", "f_inode")?,
        path_mnt: o("path", "mnt")?,
        path_dentry: o("path", "dentry")?,
        inode_i_ino: o("inode", "i_ino")?,
        inode_i_sb: o("inode", "i_sb")?,
        sb_s_magic: o("super_block", "s_magic")?,
        sb_s_dev: o("super_block", "s_dev")?,
        dentry_d_parent: o("dentry", "d_parent")?,
        dentry_d_name_name: o("dentry", "d_name.name")?,
        mount_mnt: o("mount", "mnt")?,
        mount_mnt_parent: o("mount", "mnt_parent")?,
        mount_mnt_mountpoint: o("mount", "mnt_mountpoint")?,
        vfsmount_mnt_root: o("vfsmount", "mnt_root")?,
        fs_pwd: o("fs_struct", "pwd")?,
        cgroup_root: o("cgroup", "root")?,
        cgroup_level: o("cgroup", "level")?,
        cgroup_kn: o("cgroup", "kn")?,
        cgroup_root_hierarchy_id: o("cgroup_root", "hierarchy_id")?,
        kernfs_node_id: o("kernfs_node", "id")?,
        task_state: o("task_struct", "__state").or_else(|_| o("task_struct", "state"))?,
        task_stack: o("task_struct", "stack")?,
        stack_orig_ax: stack_orig_ax(btf)?,
        task_sum_exec_runtime: o("task_struct", "se")? + o("sched_entity", "sum_exec_runtime")?,
        ..rq_clocks(btf)
    })
}

/// Where a task's runqueue keeps its two clocks: all or nothing (a kernel
/// without group scheduling has no `se.cfs_rq`; the switches then carry
/// no interrupt and steal time).
fn rq_clocks(btf: &Btf) -> KernelOffsets {
    let o = |s: &str, f: &str| btf.member_offset(s, f);
    let found = || -> Result<KernelOffsets, BtfError> {
        Ok(KernelOffsets {
            task_se_cfs_rq: o("task_struct", "se")? + o("sched_entity", "cfs_rq")?,
            cfs_rq_rq: o("cfs_rq", "rq")?,
            rq_clock: o("rq", "clock")?,
            rq_clock_task: o("rq", "clock_task")?,
            ..KernelOffsets::default()
        })
    };
    found().unwrap_or_default()
}

/// x86-64's kernel stacks: 16 KiB (`THREAD_SIZE`), twice that on a kernel
/// built with KASAN (`KASAN_STACK_ORDER`), the user registers saved at the
/// top, below 16 bytes of padding on kernels built for FRED
/// (`TOP_OF_KERNEL_STACK_PADDING`). Both are macros: BTF says which by the
/// types those builds have (KASAN's `kasan_cache` in every slab cache,
/// FRED's `fred_info` frame).
fn thread_size(btf: &Btf) -> u32 {
    if btf.has_struct("kasan_cache") {
        32768
    } else {
        16384
    }
}

/// Where a task's `orig_ax` (the syscall it is in) lies from `task->stack`.
fn stack_orig_ax(btf: &Btf) -> Result<u32, BtfError> {
    let padding = if btf.has_struct("fred_info") { 16 } else { 0 };
    let regs = btf.struct_size("pt_regs")?;
    Ok(thread_size(btf) - padding - regs + btf.member_offset("pt_regs", "orig_ax")?)
}
