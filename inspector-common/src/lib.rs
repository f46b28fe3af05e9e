//! Types shared by the probe (`inspector-ebpf`) and userspace (`inspector`).
//!
//! Every record the probe writes to the ring buffer starts with [`Header`]; its
//! `kind` says which struct follows. Kind numbers are part of the recording format
//! and never change meaning: add new kinds, do not renumber old ones.
//!
//! All structs are `#[repr(C)]`, built from fixed-width integers with explicit
//! padding, so that both sides agree on the layout and userspace can treat them as
//! plain old data.
#![no_std]

/// Stable event kind numbers.
pub mod kind {
    pub const FORK: u32 = 1;
    pub const EXEC: u32 = 2;
    pub const EXIT: u32 = 3;
    pub const CLONE: u32 = 4;
    pub const UNSHARE: u32 = 5;
    pub const SETNS: u32 = 6;
    pub const MOUNT: u32 = 7;
    pub const UMOUNT: u32 = 8;
    pub const PIVOT_ROOT: u32 = 9;
    pub const CHROOT: u32 = 10;
    pub const CHDIR: u32 = 11;
    pub const FCHDIR: u32 = 12;
    pub const CGROUP_MKDIR: u32 = 13;
    pub const CGROUP_RMDIR: u32 = 14;
    pub const CGROUP_ATTACH: u32 = 15;
    pub const CGROUP_WRITE: u32 = 16;
    /// A failed execve/execveat (a successful one is an [`EXEC`]).
    pub const EXEC_FAILED: u32 = 17;
    /// Words a client wrote on its stderr, or a runtime into its `--log`
    /// file: a [`MessageEvent`](super::MessageEvent).
    pub const MESSAGE: u32 = 18;
    /// A process killed by the kernel for a reason of its own (the OOM
    /// killer, seccomp): a [`KillEvent`](super::KillEvent).
    pub const KILLED: u32 = 19;
    /// A call of the set a runtime's init fails on (rlimits, capabilities,
    /// credentials, hostname) that failed; successes are not reported.
    pub const SYSCALL_FAILED: u32 = 20;
    /// A context switch with a followed task on either side: a
    /// [`SwitchEvent`](super::SwitchEvent) (with `--sched` only).
    pub const SCHED_SWITCH: u32 = 21;
    /// A followed task woken: a [`WakeupEvent`](super::WakeupEvent) (with
    /// `--sched` only).
    pub const SCHED_WAKEUP: u32 = 22;
}

pub const COMM_LEN: usize = 16;
/// Bytes of a path or string argument kept per field.
pub const STR_LEN: usize = 256;
/// Bytes of the NUL-separated argv area kept per exec.
pub const ARGS_LEN: usize = 1024;
/// Bytes for a path rebuilt from dentries in the kernel (see [`PathParts`]).
pub const PATH_PARTS_LEN: usize = 512;
/// Most components a path rebuilt in the kernel can have.
pub const PATH_MAX_DEPTH: u32 = 24;

/// Bytes of a message kept per write (see [`MessageEvent`]).
pub const MESSAGE_LEN: usize = 1024;

/// `stream` of a [`MessageEvent`].
pub const STREAM_STDERR: u32 = 1;
/// The runtime's `--log` file (`log.json`, as containerd and inspector run
/// name it; `oci-log`, as podman does).
pub const STREAM_RUNTIME_LOG: u32 = 2;

/// `cause` of a [`KillEvent`].
pub const KILLED_BY_OOM: u32 = 1;
pub const KILLED_BY_SECCOMP: u32 = 2;

/// Bits of a `TRACK_COMMS` value, which a followed process's `TRACKED`
/// value takes from the command it last exec'd: exec'ing this command starts
/// following the process; what it writes on fd 2 is a message (a client's
/// or a runtime's own words, not a daemon's log); what it writes to a file
/// named `log.json` or `oci-log` is (a runtime's `--log`).
pub const COMM_FOLLOW: u32 = 1;
pub const COMM_STDERR_IS_MESSAGE: u32 = 2;
pub const COMM_WRITES_RUNTIME_LOG: u32 = 4;

/// `flags` bits of [`ExecEvent`].
pub const EXEC_ARGS_TRUNCATED: u32 = 1;
pub const EXEC_FILENAME_TRUNCATED: u32 = 2;

/// `flags` bits of [`PathParts`].
pub const PATH_TRUNCATED: u32 = 1;
/// The walk ended on a dentry that is not a root (unlinked or too deep).
pub const PATH_INCOMPLETE: u32 = 2;

/// `flags` bit of [`SyscallEvent`]: reported at entry, without waiting for the
/// return (cgroup writes unless `Config::write_results` is set).
pub const SYSCALL_NO_RESULT: u32 = 1;
/// `flags` bit of a parked [`SyscallEvent`]: sent only if the call fails
/// (the probe's own; never reaches userspace set).
pub const SYSCALL_ONLY_FAILURE: u32 = 2;

/// Filesystem magic numbers the probe checks (from `include/uapi/linux/magic.h`).
pub const CGROUP_SUPER_MAGIC: u64 = 0x0027_e0eb;
pub const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;
pub const NSFS_MAGIC: u64 = 0x6e73_6673;

/// Namespace bits of clone/unshare flags (`CLONE_NEW*`).
pub const CLONE_NEW_MASK: u64 = 0x0000_0080 // CLONE_NEWTIME
    | 0x0002_0000 // CLONE_NEWNS
    | 0x0200_0000 // CLONE_NEWCGROUP
    | 0x0400_0000 // CLONE_NEWUTS
    | 0x0800_0000 // CLONE_NEWIPC
    | 0x1000_0000 // CLONE_NEWUSER
    | 0x2000_0000 // CLONE_NEWPID
    | 0x4000_0000; // CLONE_NEWNET

/// The part every record starts with.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Header {
    pub kind: u32,
    pub _pad0: u32,
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC in ns.
    pub ktime: u64,
    /// Start time (CLOCK_MONOTONIC ns) of the thread group leader: with `tgid`
    /// it names a process across pid reuse.
    pub start: u64,
    /// cgroup v2 id of the task (the unified hierarchy's on a hybrid layout).
    pub cgroup_id: u64,
    pub tgid: u32,
    pub tid: u32,
    /// tgid of the real parent.
    pub ptgid: u32,
    /// The process's pid inside its own pid namespace.
    pub nspid: u32,
    /// Inode numbers of the task's pid and mount namespaces.
    pub pidns: u32,
    pub mntns: u32,
    pub comm: [u8; COMM_LEN],
}

/// A path rebuilt in the kernel by walking dentries towards the root.
/// Components are stored leaf first, each terminated by a NUL.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PathParts {
    /// Bytes used in `buf`.
    pub len: u32,
    pub depth: u32,
    pub flags: u32,
    pub _pad: u32,
    pub buf: [u8; PATH_PARTS_LEN],
}

/// A new task: from `sched_process_fork`, in the parent's context.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ForkEvent {
    pub hdr: Header,
    pub child_tgid: u32,
    pub child_tid: u32,
    pub child_start: u64,
    /// clone flags of the syscall that made the task, when `flags_known`.
    pub flags: u64,
    pub flags_known: u32,
    /// 1 when the new task is a thread of the parent's process.
    pub thread: u32,
}

/// A successful exec: from `sched_process_exec`, in the new image's context.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExecEvent {
    pub hdr: Header,
    /// The tid that called exec (differs from `hdr.tid` when a thread exec'd).
    pub old_tid: u32,
    pub flags: u32,
    pub filename_len: u32,
    pub args_len: u32,
    pub filename: [u8; STR_LEN],
    /// argv as the kernel laid it out: NUL-separated strings.
    pub args: [u8; ARGS_LEN],
}

/// The last thread of a process exited.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExitEvent {
    pub hdr: Header,
    /// `task->exit_code`, encoded like a wait(2) status.
    pub exit_code: u32,
    pub _pad: u32,
}

/// A cgroup made, removed, or a task moved into one.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CgroupEvent {
    pub hdr: Header,
    /// Hierarchy id (0 is the cgroup2 hierarchy, as in /proc/<pid>/cgroup).
    pub hierarchy: u32,
    pub level: u32,
    /// kernfs id of the cgroup.
    pub id: u64,
    /// For attach: the task moved and whether its whole thread group moved.
    pub task_tgid: u32,
    pub task_tid: u32,
    pub threadgroup: u32,
    pub path_len: u32,
    pub path: [u8; STR_LEN],
}

/// Bytes written to stderr by a client or runtime, or to a runtime's log
/// file, as they were written (a write is a line, usually).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MessageEvent {
    pub hdr: Header,
    /// `STREAM_*`.
    pub stream: u32,
    pub fd: u32,
    /// Bytes the write asked for (more than `len` when cut).
    pub count: u64,
    /// Bytes kept in `text`.
    pub len: u32,
    pub _pad: u32,
    pub text: [u8; MESSAGE_LEN],
}

/// The kernel killed a process: the OOM killer chose it, or seccomp
/// stopped it at a forbidden call. `hdr` is the task in whose context it
/// was decided (for the OOM killer, the one whose allocation failed).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KillEvent {
    pub hdr: Header,
    /// The process killed (for the OOM killer, the pid it names: its leader's).
    pub victim_tgid: u32,
    pub victim_tid: u32,
    /// `KILLED_BY_*`.
    pub cause: u32,
    /// For seccomp: the call it was stopped at, and its audit arch.
    pub syscall: i32,
    pub arch: u32,
    pub _pad: u32,
}

/// A context switch where the task leaving or the task coming is followed.
/// No [`Header`]: switches are the most frequent record by far, and the
/// header's dozen kernel reads would be most of their cost.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SwitchEvent {
    /// `kind::SCHED_SWITCH`, where every other record has its header's.
    pub kind: u32,
    pub cpu: u32,
    pub ktime: u64,
    pub prev_tgid: u32,
    pub prev_tid: u32,
    pub next_tgid: u32,
    pub next_tid: u32,
    /// The state the task leaving sleeps in (`TASK_*` bits of
    /// `task->__state`); 0 when it was preempted and stays runnable.
    pub prev_state: u32,
    /// The syscall the task leaving sleeps in (`orig_ax` of its user
    /// registers), or -1 when it is runnable or not in one.
    pub prev_syscall: i32,
    /// Each task's time on a CPU as the kernel counts it
    /// (`se.sum_exec_runtime`, brought up to date before the switch): the
    /// run that ends here and the one that begins are checked against it.
    pub prev_runtime: u64,
    pub next_runtime: u64,
    /// The CPU's time the kernel gave no task so far: interrupts and what
    /// the hypervisor took (`rq->clock - rq->clock_task`); 0 when this
    /// kernel's BTF does not say where. A run's share of it is what its
    /// length and the kernel's count differ by.
    pub irq_steal: u64,
}

/// A followed task woken (`sched_waking`), by the task running then: the
/// waker, or whoever an interrupt found running (a timer's wake-up).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct WakeupEvent {
    /// `kind::SCHED_WAKEUP`.
    pub kind: u32,
    pub cpu: u32,
    pub ktime: u64,
    pub waker_tgid: u32,
    pub waker_tid: u32,
    pub tgid: u32,
    pub tid: u32,
}

/// A system call with its arguments and return value, paired enter and exit.
/// One layout serves all of them; `kind` says which fields mean what:
///
/// | kind | `args` | `aux` | `strs` | `path` |
/// |---|---|---|---|---|
/// | CLONE | [flags] | | | |
/// | UNSHARE | [flags] | | | |
/// | SETNS | [fd, nstype] | [ns inode, fs magic] | | |
/// | MOUNT | [flags] | | [source, target, fstype] | |
/// | UMOUNT | [flags] | | [target] | |
/// | PIVOT_ROOT | | | [new_root, put_old] | cwd |
/// | CHROOT, CHDIR | | | [path] | |
/// | FCHDIR | [fd] | | | the fd's path |
/// | CGROUP_WRITE | [fd, count] | [dev, fs magic] | [value] | file in its hierarchy |
/// | EXEC_FAILED | | | [filename] | |
/// | SYSCALL_FAILED | [arg0, arg1] | | | |
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SyscallEvent {
    pub hdr: Header,
    /// Return value; `hdr.ktime` is the entry time and `end` the return time.
    pub ret: i64,
    pub end: u64,
    pub args: [u64; 2],
    pub aux: [u64; 2],
    /// Bytes used in each of `strs` (0 when absent).
    pub str_len: [u32; 3],
    /// The syscall number, to pair enter and exit.
    pub nr: u32,
    /// `SYSCALL_*` bits.
    pub flags: u32,
    pub _pad: u32,
    pub strs: [[u8; STR_LEN]; 3],
    pub path: PathParts,
}

/// Settings userspace writes into the probe before it loads. They are
/// read-only to the programs, so the verifier prunes what they switch off;
/// a loaded probe keeps them for its whole life (see [`RunState`] for what
/// changes from one run to the next).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Config {
    /// 1: report every process, not only container-related ones.
    pub trace_all: u32,
    /// 1: pair cgroup writes with their return (costs a `sys_exit_write`
    /// program on every write of the machine).
    pub write_results: u32,
    /// Wake the reader only once this many bytes wait in the ring buffer;
    /// otherwise it collects them on its own schedule.
    pub wakeup_bytes: u32,
    pub _pad: u32,
}

/// What the run of inspector that owns a loaded probe writes into it (the
/// single entry of the `RUN` array map). A probe outlives the run that
/// loaded it, attached, for a few seconds (so that the next run need not load
/// or attach anything): between runs it is disabled.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunState {
    /// inspector's own tgid, never reported.
    pub self_tgid: u32,
    /// 0: every program returns at once, touching no map.
    pub enabled: u32,
    /// 1: report inspector's own context switches too (`--sched`): it is
    /// the client of the containers `inspector run` starts.
    pub sched_self: u32,
    pub _pad: u32,
}

/// Offsets (bytes) of the kernel struct fields the probe reads, taken from the
/// running kernel's BTF at load: aya emits no CO-RE relocations, so nothing here
/// may be compiled in.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelOffsets {
    pub task_pid: u32,
    pub task_tgid: u32,
    pub task_real_parent: u32,
    pub task_group_leader: u32,
    pub task_start_time: u32,
    pub task_nsproxy: u32,
    pub task_thread_pid: u32,
    pub task_exit_code: u32,
    pub task_mm: u32,
    pub task_files: u32,
    pub task_fs: u32,
    pub task_signal: u32,
    /// `signal_struct.live`: the threads of a process not yet exiting.
    pub signal_live: u32,
    pub nsproxy_mnt_ns: u32,
    pub mnt_namespace_inum: u32,
    pub pid_level: u32,
    pub pid_numbers: u32,
    pub upid_size: u32,
    pub upid_nr: u32,
    pub upid_ns: u32,
    pub pid_namespace_inum: u32,
    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    pub binprm_filename: u32,
    pub files_fdt: u32,
    pub fdtable_max_fds: u32,
    pub fdtable_fd: u32,
    pub file_f_path: u32,
    pub file_f_inode: u32,
    pub path_mnt: u32,
    pub path_dentry: u32,
    pub inode_i_ino: u32,
    pub inode_i_sb: u32,
    pub sb_s_magic: u32,
    pub sb_s_dev: u32,
    pub dentry_d_parent: u32,
    pub dentry_d_name_name: u32,
    pub mount_mnt: u32,
    pub mount_mnt_parent: u32,
    pub mount_mnt_mountpoint: u32,
    pub vfsmount_mnt_root: u32,
    pub fs_pwd: u32,
    pub cgroup_root: u32,
    pub cgroup_level: u32,
    pub cgroup_kn: u32,
    pub cgroup_root_hierarchy_id: u32,
    pub kernfs_node_id: u32,
    /// `task_struct.__state` (`state` before 5.14).
    pub task_state: u32,
    pub task_stack: u32,
    /// From a task's kernel stack (`task->stack`) to the `orig_ax` of the
    /// user registers saved at its top: the syscall it is in.
    pub stack_orig_ax: u32,
    /// `task_struct.se.sum_exec_runtime`: its time on a CPU, ns.
    pub task_sum_exec_runtime: u32,
    /// `task_struct.se.cfs_rq`, `cfs_rq.rq`, `rq.clock`, `rq.clock_task`
    /// (all 0 when one is missing: no `irq_steal` then).
    pub task_se_cfs_rq: u32,
    pub cfs_rq_rq: u32,
    pub rq_clock: u32,
    pub rq_clock_task: u32,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain #[repr(C)] structs of integers with explicit padding.
    unsafe impl aya::Pod for super::Config {}
    unsafe impl aya::Pod for super::RunState {}
    unsafe impl aya::Pod for super::KernelOffsets {}
}
