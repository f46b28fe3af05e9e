//! Reading kernel structs through offsets userspace found in BTF, and the common
//! event header.

use aya_ebpf::helpers::{
    bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_probe_read_kernel,
    generated::{
        bpf_get_current_cgroup_id, bpf_get_current_task, bpf_ktime_get_ns,
        bpf_probe_read_kernel_str,
    },
};
use inspector_common::{Header, KernelOffsets, STR_LEN};

/// Filled in by userspace before load.
#[unsafe(no_mangle)]
pub static OFFSETS: KernelOffsets = unsafe { core::mem::zeroed() };

/// The offset of a kernel struct field, as a u64 ready for pointer arithmetic.
macro_rules! off {
    ($field:ident) => {
        unsafe { core::ptr::read_volatile(&raw const $crate::kernel::OFFSETS.$field) as u64 }
    };
}
pub(crate) use off;

/// Reads a `T` at `base + offset`; zero when the read faults (a null or stale pointer).
#[inline(always)]
pub fn read<T: Copy + Default>(base: u64, offset: u64) -> T {
    if base == 0 {
        return T::default();
    }
    unsafe { bpf_probe_read_kernel((base + offset) as *const T) }.unwrap_or_default()
}

#[inline(always)]
pub fn read_ptr(base: u64, offset: u64) -> u64 {
    read::<u64>(base, offset)
}

#[inline(always)]
pub fn current_task() -> u64 {
    unsafe { bpf_get_current_task() }
}

#[inline(always)]
pub fn ktime() -> u64 {
    unsafe { bpf_ktime_get_ns() }
}

/// Fills the header every event starts with, from the current task.
#[inline(always)]
pub fn fill_header(hdr: &mut Header, kind: u32) {
    let pid_tgid = bpf_get_current_pid_tgid();
    hdr.kind = kind;
    hdr._pad0 = 0;
    hdr.ktime = ktime();
    hdr.tgid = (pid_tgid >> 32) as u32;
    hdr.tid = pid_tgid as u32;
    hdr.cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    hdr.comm = bpf_get_current_comm().unwrap_or([0; 16]);

    let task = current_task();
    let leader = read_ptr(task, off!(task_group_leader));
    hdr.start = read::<u64>(leader, off!(task_start_time));
    let parent = read_ptr(task, off!(task_real_parent));
    hdr.ptgid = read::<u32>(parent, off!(task_tgid));

    let nsproxy = read_ptr(task, off!(task_nsproxy));
    let mnt_ns = read_ptr(nsproxy, off!(nsproxy_mnt_ns));
    hdr.mntns = read::<u32>(mnt_ns, off!(mnt_namespace_inum));

    // The process's pid as its own namespace sees it: the last level of the
    // leader's struct pid.
    let pid = read_ptr(leader, off!(task_thread_pid));
    let level = read::<u32>(pid, off!(pid_level)) as u64 & 0x1f;
    let upid = pid + off!(pid_numbers) + level * off!(upid_size);
    hdr.nspid = read::<u32>(upid, off!(upid_nr));
    let ns = read_ptr(upid, off!(upid_ns));
    hdr.pidns = read::<u32>(ns, off!(pid_namespace_inum));
}

/// The `struct file *` behind fd `fd` of the current task, or 0.
#[inline(always)]
pub fn fd_file(fd: u64) -> u64 {
    let files = read_ptr(current_task(), off!(task_files));
    let fdt = read_ptr(files, off!(files_fdt));
    let max_fds = read::<u32>(fdt, off!(fdtable_max_fds)) as u64;
    if fd >= max_fds {
        return 0;
    }
    let fds = read_ptr(fdt, off!(fdtable_fd));
    read_ptr(fds, fd * 8)
}

/// (magic, s_dev, i_ino) of the filesystem object behind a `struct file *`.
#[inline(always)]
pub fn file_identity(file: u64) -> (u64, u32, u64) {
    let inode = read_ptr(file, off!(file_f_inode));
    let sb = read_ptr(inode, off!(inode_i_sb));
    (
        read::<u64>(sb, off!(sb_s_magic)),
        read::<u32>(sb, off!(sb_s_dev)),
        read::<u64>(inode, off!(inode_i_ino)),
    )
}

/// `value & mask`, in a way the compiler cannot drop. LLVM removes a mask it can
/// prove redundant from an earlier comparison, but the verifier may not have
/// tracked that comparison (a spilled copy, a 32-bit subregister), and then
/// rejects the variable-offset access the mask was there to bound.
#[inline(always)]
pub fn bounded(value: u32, mask: u32) -> u32 {
    // SAFETY: a volatile read of a local.
    unsafe { core::ptr::read_volatile(&value) & mask }
}

/// Copies the NUL-terminated kernel string at `src` into `dst`; returns its
/// length without the NUL (`STR_LEN - 1` when it was cut).
#[inline(always)]
pub fn kernel_str(dst: &mut [u8; STR_LEN], src: u64) -> u32 {
    let n = unsafe {
        bpf_probe_read_kernel_str(
            dst.as_mut_ptr().cast(),
            STR_LEN as u32,
            src as *const core::ffi::c_void,
        )
    };
    if n > 0 { n as u32 - 1 } else { 0 }
}
