//! The event model of inspector's output, and decoding of the probe's records
//! into it. The JSON form of [`Event`] is the JSON Lines schema documented in
//! `docs/events.md`; [`SCHEMA_VERSION`] changes when a field changes meaning.

use compact_str::CompactString;
use inspector_common::{
    CGROUP2_SUPER_MAGIC, CgroupEvent, EXEC_ARGS_TRUNCATED, EXEC_FILENAME_TRUNCATED, ExecEvent,
    ExitEvent, ForkEvent, Header, KILLED_BY_OOM, KillEvent, MessageEvent, PATH_INCOMPLETE,
    PATH_TRUNCATED, PathParts, STR_LEN, STREAM_RUNTIME_LOG, SYSCALL_NO_RESULT, SwitchEvent,
    SyscallEvent, WakeupEvent, kind,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{
    host::{Cgroups, Clock},
    names,
};

pub const SCHEMA_VERSION: u32 = 1;

/// One line of `inspector trace --format jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Schema version.
    pub v: u32,
    /// CLOCK_MONOTONIC ns (the kernel's `bpf_ktime_get_ns`).
    pub ktime_ns: u64,
    /// Wall-clock time, RFC 3339.
    pub time: String,
    /// The task that did it; absent on records inspector makes itself (`lost`).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
    #[serde(flatten)]
    pub body: Body,
}

/// The task an event happened in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub tgid: u32,
    pub tid: u32,
    /// Parent's tgid.
    pub ptgid: u32,
    /// The process's pid in its own pid namespace.
    pub nspid: u32,
    /// At most 15 bytes from the kernel: kept inline, not allocated per event.
    pub comm: CompactString,
    /// Start time of the process (monotonic ns): (tgid, start_ns) names it across pid reuse.
    pub start_ns: u64,
    pub cgroup_id: u64,
    pub pidns: u32,
    pub mntns: u32,
}

/// What happened; `kind` in JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    /// A new process or thread (`thread`), in the parent.
    Fork {
        child_tgid: u32,
        child_tid: u32,
        child_start_ns: u64,
        thread: bool,
        /// clone flags, when the task came from clone/clone3 (not fork/vfork).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        flags: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        flags_raw: Option<u64>,
    },
    /// execve/execveat: `ret` 0 with the new image's argv, or a failure.
    Exec {
        filename: String,
        argv: Vec<String>,
        argv_truncated: bool,
        /// The tid that called exec (a thread's exec takes over the leader's tid).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        old_tid: Option<u32>,
        ret: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        errno: Option<String>,
    },
    /// The last thread of a process exited.
    Exit {
        /// exit(2) status, when it exited.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        /// The signal that killed it, when one did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<String>,
        core_dumped: bool,
        /// The wait(2) status word.
        status: u32,
    },
    Clone {
        flags: String,
        flags_raw: u64,
        #[serde(flatten)]
        result: SyscallResult,
    },
    Unshare {
        flags: String,
        flags_raw: u64,
        #[serde(flatten)]
        result: SyscallResult,
    },
    Setns {
        fd: i32,
        nstype: String,
        nstype_raw: u64,
        /// Inode number of the namespace behind `fd` (as in /proc/<pid>/ns/*).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ns_inode: Option<u64>,
        #[serde(flatten)]
        result: SyscallResult,
    },
    Mount {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
        target: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fstype: Option<String>,
        flags: String,
        flags_raw: u64,
        #[serde(flatten)]
        result: SyscallResult,
    },
    Umount {
        target: String,
        flags: String,
        flags_raw: u64,
        #[serde(flatten)]
        result: SyscallResult,
    },
    PivotRoot {
        new_root: String,
        put_old: String,
        /// The caller's working directory: what `pivot_root(".", ".")` pivots into.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cwd: Option<String>,
        #[serde(flatten)]
        result: SyscallResult,
    },
    Chroot {
        path: String,
        #[serde(flatten)]
        result: SyscallResult,
    },
    Chdir {
        path: String,
        #[serde(flatten)]
        result: SyscallResult,
    },
    Fchdir {
        fd: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        #[serde(flatten)]
        result: SyscallResult,
    },
    CgroupMkdir(CgroupChange),
    CgroupRmdir(CgroupChange),
    CgroupAttach {
        #[serde(flatten)]
        cgroup: CgroupChange,
        task_tgid: u32,
        task_tid: u32,
        threadgroup: bool,
    },
    /// A write to a cgroup controller file.
    CgroupWrite {
        /// The file, relative to its hierarchy's root: `/docker/<id>/memory.max`.
        file: String,
        /// `memory`, `cpu,cpuacct`, `cgroup2`...
        hierarchy: String,
        /// The file's full path where its hierarchy is mounted in inspector's view.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        cgroup_version: u8,
        value: String,
        value_truncated: bool,
        fd: i32,
        /// Present with `--cgroup-write-results` only.
        #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
        result: Option<SyscallResult>,
    },
    /// Words a client wrote on its stderr, or a runtime into its log file,
    /// as written (one write; usually a line).
    Message {
        /// `stderr` or `runtime_log`.
        stream: String,
        fd: i32,
        text: String,
        /// The write was longer than the probe keeps.
        text_truncated: bool,
    },
    /// The kernel killed a process for a reason of its own.
    Killed {
        /// `oom` (the OOM killer chose it) or `seccomp` (stopped at a forbidden call).
        cause: String,
        /// The process killed (the event's own task is where it was decided).
        task_tgid: u32,
        task_tid: u32,
        /// For seccomp: the call's name (`getppid`; an i386 call's ends in ` (i386)`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        syscall: Option<String>,
    },
    /// A call of the kind a runtime's init gives up on (rlimits,
    /// capabilities, credentials, hostname) that failed; the probe reports
    /// no success of these.
    SyscallFailed {
        syscall: String,
        /// For `prlimit64`/`setrlimit`: the limit, as `RLIMIT_NOFILE`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resource: Option<String>,
        #[serde(flatten)]
        result: SyscallResult,
    },
    /// A context switch with a followed task on either side (`--sched`).
    /// No task fields: the two tasks are named here.
    SchedSwitch {
        cpu: u32,
        /// The task leaving the CPU.
        task_tgid: u32,
        task_tid: u32,
        /// Its state: `R` (preempted: still runnable), `S` (sleeping), `D`
        /// (uninterruptible), `I` (idle)…, as `ps` letters them.
        state: String,
        /// The syscall it sleeps in, when it does.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        syscall: Option<String>,
        /// The task taking the CPU.
        next_tgid: u32,
        next_tid: u32,
        /// Each task's time on a CPU so far as the kernel counts it
        /// (`se.sum_exec_runtime`), ns: a run's length, checked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_cpu_ns: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_cpu_ns: Option<u64>,
        /// The CPU's interrupt and steal time so far (time the kernel
        /// counted to no task), ns: what a run's length and the kernel's
        /// count of it differ by.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        irq_steal_ns: Option<u64>,
    },
    /// A followed task woken (`--sched`), by the task that ran then.
    SchedWakeup {
        cpu: u32,
        /// The task woken.
        task_tgid: u32,
        task_tid: u32,
        /// The waker, or whoever an interrupt found running (a timer).
        waker_tgid: u32,
        waker_tid: u32,
    },
    /// The probe could not report `count` events (ring buffer full); `total` so far.
    Lost {
        count: u64,
        total: u64,
    },
}

/// How a syscall returned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyscallResult {
    pub ret: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
    /// Time from entry to return.
    pub duration_ns: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CgroupChange {
    pub hierarchy_id: u32,
    /// `memory`, `cpu,cpuacct`, `name=systemd`, `cgroup2`...
    pub hierarchy: String,
    /// Path relative to the hierarchy's root, as `/docker/<id>`.
    pub path: String,
    pub level: u32,
    pub id: u64,
}

impl Body {
    /// The `kind` string of this body, as in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Fork { .. } => "fork",
            Body::Exec { .. } => "exec",
            Body::Exit { .. } => "exit",
            Body::Clone { .. } => "clone",
            Body::Unshare { .. } => "unshare",
            Body::Setns { .. } => "setns",
            Body::Mount { .. } => "mount",
            Body::Umount { .. } => "umount",
            Body::PivotRoot { .. } => "pivot_root",
            Body::Chroot { .. } => "chroot",
            Body::Chdir { .. } => "chdir",
            Body::Fchdir { .. } => "fchdir",
            Body::CgroupMkdir(_) => "cgroup_mkdir",
            Body::CgroupRmdir(_) => "cgroup_rmdir",
            Body::CgroupAttach { .. } => "cgroup_attach",
            Body::CgroupWrite { .. } => "cgroup_write",
            Body::Message { .. } => "message",
            Body::Killed { .. } => "killed",
            Body::SyscallFailed { .. } => "syscall_failed",
            Body::SchedSwitch { .. } => "sched_switch",
            Body::SchedWakeup { .. } => "sched_wakeup",
            Body::Lost { .. } => "lost",
        }
    }

    /// How the syscall of this event returned, when it was one that says
    /// (a cgroup write's only with its result recorded).
    pub fn syscall_result(&self) -> Option<&SyscallResult> {
        match self {
            Body::Clone { result, .. }
            | Body::Unshare { result, .. }
            | Body::Setns { result, .. }
            | Body::Mount { result, .. }
            | Body::Umount { result, .. }
            | Body::PivotRoot { result, .. }
            | Body::Chroot { result, .. }
            | Body::Chdir { result, .. }
            | Body::Fchdir { result, .. }
            | Body::SyscallFailed { result, .. } => Some(result),
            Body::CgroupWrite { result, .. } => result.as_ref(),
            _ => None,
        }
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum DecodeError {
    #[error("record of {len} bytes is shorter than its header")]
    Short { len: usize },
    #[error("record of kind {kind} has {len} bytes, expected {expected}")]
    Size {
        kind: u32,
        len: usize,
        expected: usize,
    },
    #[error("unknown record kind {0}")]
    UnknownKind(u32),
}

/// Turns the probe's records into [`Event`]s.
pub struct Decoder {
    clock: Clock,
    cgroups: Cgroups,
}

fn read_record<T: Copy>(bytes: &[u8], kind: u32) -> Result<T, DecodeError> {
    let expected = std::mem::size_of::<T>();
    if bytes.len() < expected {
        return Err(DecodeError::Size {
            kind,
            len: bytes.len(),
            expected,
        });
    }
    // SAFETY: T is one of the probe's #[repr(C)] plain-data records and `bytes`
    // holds at least size_of::<T>() bytes; read_unaligned has no alignment needs.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

fn text(bytes: &[u8], len: u32) -> String {
    let len = (len as usize).min(bytes.len());
    let bytes = &bytes[..len];
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn comm(raw: &[u8; 16]) -> CompactString {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    CompactString::from_utf8_lossy(&raw[..end])
}

/// Joins a path the probe rebuilt (components leaf first).
fn path_parts(p: &PathParts) -> Option<String> {
    if p.depth == 0 && p.flags == 0 && p.len == 0 {
        return None;
    }
    let len = (p.len as usize).min(p.buf.len());
    let mut parts: Vec<String> = p.buf[..len]
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    parts.reverse();
    let mut path = String::new();
    if p.flags & (PATH_TRUNCATED | PATH_INCOMPLETE) != 0 {
        path.push('…');
    }
    if parts.is_empty() {
        path.push('/');
    }
    for part in parts {
        path.push('/');
        path.push_str(&part);
    }
    Some(path)
}

fn result(ev: &SyscallEvent) -> SyscallResult {
    SyscallResult {
        ret: ev.ret,
        errno: names::errno_name(ev.ret),
        duration_ns: ev.end.saturating_sub(ev.hdr.ktime),
    }
}

fn task(h: &Header) -> Task {
    Task {
        tgid: h.tgid,
        tid: h.tid,
        ptgid: h.ptgid,
        nspid: h.nspid,
        comm: comm(&h.comm),
        start_ns: h.start,
        cgroup_id: h.cgroup_id,
        pidns: h.pidns,
        mntns: h.mntns,
    }
}

impl Decoder {
    pub fn new(clock: Clock, cgroups: Cgroups) -> Self {
        Decoder { clock, cgroups }
    }

    /// A decoder for this machine, now.
    pub fn for_host() -> Self {
        Self::new(Clock::now(), Cgroups::read())
    }

    pub fn event(&self, ktime: u64, task: Option<Task>, body: Body) -> Event {
        Event {
            v: SCHEMA_VERSION,
            ktime_ns: ktime,
            time: self.clock.rfc3339(ktime),
            task,
            body,
        }
    }

    pub fn decode(&self, bytes: &[u8]) -> Result<Event, DecodeError> {
        // The scheduler's records have no header: their kind comes first.
        let lean = bytes
            .get(..4)
            .map(|k| u32::from_le_bytes(k.try_into().expect("4 bytes")));
        match lean {
            Some(kind::SCHED_SWITCH) => {
                let ev: SwitchEvent = read_record(bytes, kind::SCHED_SWITCH)?;
                let body = Body::SchedSwitch {
                    cpu: ev.cpu,
                    task_tgid: ev.prev_tgid,
                    task_tid: ev.prev_tid,
                    state: names::task_state(ev.prev_state),
                    syscall: (ev.prev_syscall >= 0).then(|| {
                        names::syscall_name(ev.prev_syscall as u32, names::AUDIT_ARCH_X86_64)
                    }),
                    next_tgid: ev.next_tgid,
                    next_tid: ev.next_tid,
                    task_cpu_ns: Some(ev.prev_runtime),
                    next_cpu_ns: Some(ev.next_runtime),
                    irq_steal_ns: (ev.irq_steal != 0).then_some(ev.irq_steal),
                };
                return Ok(self.event(ev.ktime, None, body));
            }
            Some(kind::SCHED_WAKEUP) => {
                let ev: WakeupEvent = read_record(bytes, kind::SCHED_WAKEUP)?;
                let body = Body::SchedWakeup {
                    cpu: ev.cpu,
                    task_tgid: ev.tgid,
                    task_tid: ev.tid,
                    waker_tgid: ev.waker_tgid,
                    waker_tid: ev.waker_tid,
                };
                return Ok(self.event(ev.ktime, None, body));
            }
            _ => {}
        }
        let hdr: Header =
            read_record(bytes, 0).map_err(|_| DecodeError::Short { len: bytes.len() })?;
        let body = match hdr.kind {
            kind::FORK => {
                let ev: ForkEvent = read_record(bytes, hdr.kind)?;
                Body::Fork {
                    child_tgid: ev.child_tgid,
                    child_tid: ev.child_tid,
                    child_start_ns: ev.child_start,
                    thread: ev.thread != 0,
                    flags: (ev.flags_known != 0).then(|| names::clone_flags(ev.flags, true)),
                    flags_raw: (ev.flags_known != 0).then_some(ev.flags),
                }
            }
            kind::EXEC => {
                let ev: ExecEvent = read_record(bytes, hdr.kind)?;
                let args_len = (ev.args_len as usize).min(ev.args.len());
                let mut argv: Vec<String> = ev.args[..args_len]
                    .split(|&b| b == 0)
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect();
                // The argv area ends with a NUL, which leaves one empty piece.
                if argv.last().is_some_and(String::is_empty) {
                    argv.pop();
                }
                Body::Exec {
                    filename: text(&ev.filename, ev.filename_len),
                    argv,
                    argv_truncated: ev.flags & EXEC_ARGS_TRUNCATED != 0,
                    old_tid: (ev.old_tid != ev.hdr.tid).then_some(ev.old_tid),
                    ret: 0,
                    errno: None,
                }
                .with_filename_flag(ev.flags & EXEC_FILENAME_TRUNCATED != 0)
            }
            kind::EXIT => {
                let ev: ExitEvent = read_record(bytes, hdr.kind)?;
                let status = ev.exit_code;
                let signal = status & 0x7f;
                Body::Exit {
                    exit_code: (signal == 0).then_some(((status >> 8) & 0xff) as i32),
                    signal: (signal != 0).then(|| names::signal_name(signal as i32)),
                    core_dumped: status & 0x80 != 0,
                    status,
                }
            }
            kind::CGROUP_MKDIR | kind::CGROUP_RMDIR | kind::CGROUP_ATTACH => {
                let ev: CgroupEvent = read_record(bytes, hdr.kind)?;
                let change = CgroupChange {
                    hierarchy_id: ev.hierarchy,
                    hierarchy: self.cgroups.hierarchy(ev.hierarchy),
                    path: text(&ev.path, ev.path_len),
                    level: ev.level,
                    id: ev.id,
                };
                match hdr.kind {
                    kind::CGROUP_MKDIR => Body::CgroupMkdir(change),
                    kind::CGROUP_RMDIR => Body::CgroupRmdir(change),
                    _ => Body::CgroupAttach {
                        cgroup: change,
                        task_tgid: ev.task_tgid,
                        task_tid: ev.task_tid,
                        threadgroup: ev.threadgroup != 0,
                    },
                }
            }
            kind::CLONE
            | kind::UNSHARE
            | kind::SETNS
            | kind::MOUNT
            | kind::UMOUNT
            | kind::PIVOT_ROOT
            | kind::CHROOT
            | kind::CHDIR
            | kind::FCHDIR
            | kind::CGROUP_WRITE
            | kind::EXEC_FAILED => {
                let ev: SyscallEvent = read_record(bytes, hdr.kind)?;
                self.syscall(&ev)
            }
            kind::SYSCALL_FAILED => {
                let ev: SyscallEvent = read_record(bytes, hdr.kind)?;
                let syscall = names::syscall_name(ev.nr, names::AUDIT_ARCH_X86_64);
                let resource = match syscall.as_str() {
                    "prlimit64" => Some(names::rlimit_name(ev.args[1])),
                    "setrlimit" => Some(names::rlimit_name(ev.args[0])),
                    _ => None,
                };
                Body::SyscallFailed {
                    syscall,
                    resource,
                    result: result(&ev),
                }
            }
            kind::MESSAGE => {
                let ev: MessageEvent = read_record(bytes, hdr.kind)?;
                let len = (ev.len as usize).min(ev.text.len());
                Body::Message {
                    stream: if ev.stream == STREAM_RUNTIME_LOG {
                        "runtime_log"
                    } else {
                        "stderr"
                    }
                    .to_string(),
                    fd: ev.fd as i32,
                    text: String::from_utf8_lossy(&ev.text[..len]).into_owned(),
                    text_truncated: ev.count > len as u64,
                }
            }
            kind::KILLED => {
                let ev: KillEvent = read_record(bytes, hdr.kind)?;
                let oom = ev.cause == KILLED_BY_OOM;
                Body::Killed {
                    cause: if oom { "oom" } else { "seccomp" }.to_string(),
                    task_tgid: ev.victim_tgid,
                    task_tid: ev.victim_tid,
                    syscall: (!oom).then(|| names::syscall_name(ev.syscall as u32, ev.arch)),
                }
            }
            other => return Err(DecodeError::UnknownKind(other)),
        };
        Ok(self.event(hdr.ktime, Some(task(&hdr)), body))
    }

    fn syscall(&self, ev: &SyscallEvent) -> Body {
        let s = |i: usize| text(&ev.strs[i], ev.str_len[i]);
        let opt = |i: usize| (ev.str_len[i] > 0).then(|| s(i));
        match ev.hdr.kind {
            kind::CLONE => Body::Clone {
                flags: names::clone_flags(ev.args[0], true),
                flags_raw: ev.args[0],
                result: result(ev),
            },
            kind::UNSHARE => Body::Unshare {
                flags: names::clone_flags(ev.args[0], false),
                flags_raw: ev.args[0],
                result: result(ev),
            },
            kind::SETNS => Body::Setns {
                fd: ev.args[0] as i32,
                nstype: names::nstype(ev.args[1]),
                nstype_raw: ev.args[1],
                ns_inode: (ev.aux[0] != 0).then_some(ev.aux[0]),
                result: result(ev),
            },
            kind::MOUNT => Body::Mount {
                source: opt(0),
                target: s(1),
                fstype: opt(2),
                flags: names::mount_flags(ev.args[0]),
                flags_raw: ev.args[0],
                result: result(ev),
            },
            kind::UMOUNT => Body::Umount {
                target: s(0),
                flags: names::umount_flags(ev.args[0]),
                flags_raw: ev.args[0],
                result: result(ev),
            },
            kind::PIVOT_ROOT => Body::PivotRoot {
                new_root: s(0),
                put_old: s(1),
                cwd: path_parts(&ev.path),
                result: result(ev),
            },
            kind::CHROOT => Body::Chroot {
                path: s(0),
                result: result(ev),
            },
            kind::CHDIR => Body::Chdir {
                path: s(0),
                result: result(ev),
            },
            kind::FCHDIR => Body::Fchdir {
                fd: ev.args[0] as i32,
                path: path_parts(&ev.path),
                result: result(ev),
            },
            kind::CGROUP_WRITE => {
                let file = path_parts(&ev.path).unwrap_or_else(|| "?".to_string());
                let version = if ev.aux[1] == CGROUP2_SUPER_MAGIC {
                    2
                } else {
                    1
                };
                let mount = self.cgroups.mount(ev.aux[0] as u32);
                let hierarchy = match mount {
                    Some(m) => m.hierarchy.clone(),
                    None if version == 2 => "cgroup2".to_string(),
                    None => "cgroup".to_string(),
                };
                Body::CgroupWrite {
                    path: mount.map(|m| format!("{}{}", m.mount_point.trim_end_matches('/'), file)),
                    file,
                    hierarchy,
                    cgroup_version: version,
                    value: text(&ev.strs[0], ev.str_len[0]),
                    value_truncated: ev.args[1] > (STR_LEN - 1) as u64,
                    fd: ev.args[0] as i32,
                    result: (ev.flags & SYSCALL_NO_RESULT == 0).then(|| result(ev)),
                }
            }
            // EXEC_FAILED: only failures reach userspace.
            _ => Body::Exec {
                filename: s(0),
                argv: Vec::new(),
                argv_truncated: false,
                old_tid: None,
                ret: ev.ret,
                errno: names::errno_name(ev.ret),
            },
        }
    }
}

impl Body {
    /// Marks an exec whose filename the probe had to cut.
    fn with_filename_flag(mut self, truncated: bool) -> Self {
        if let (Body::Exec { filename, .. }, true) = (&mut self, truncated) {
            filename.push('…');
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: u32) -> Header {
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"runc");
        Header {
            kind,
            _pad0: 0,
            ktime: 1_000,
            start: 7,
            cgroup_id: 42,
            tgid: 100,
            tid: 101,
            ptgid: 1,
            nspid: 100,
            pidns: 4026531836,
            mntns: 4026531841,
            comm,
        }
    }

    fn bytes<T>(v: &T) -> Vec<u8> {
        // SAFETY: test-only view of a plain-data record.
        unsafe {
            std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>())
        }
        .to_vec()
    }

    fn decoder() -> Decoder {
        Decoder::new(
            Clock::now(),
            Cgroups::parse(
                "4:memory:/\n0::/\n",
                "36 30 0:32 / /sys/fs/cgroup/memory rw shared:15 - cgroup cgroup rw,memory\n",
            ),
        )
    }

    fn zeroed_syscall(kind: u32) -> SyscallEvent {
        // SAFETY: an all-zero SyscallEvent is valid plain data.
        let mut ev: SyscallEvent = unsafe { std::mem::zeroed() };
        ev.hdr = header(kind);
        ev
    }

    #[test]
    fn unshare_becomes_named_flags_with_result() {
        let mut ev = zeroed_syscall(kind::UNSHARE);
        ev.args[0] = 0x6c02_0000;
        ev.end = 1_500;
        let e = decoder().decode(&bytes(&ev)).unwrap();
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["kind"], "unshare");
        assert_eq!(
            json["flags"],
            "CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWPID|CLONE_NEWNET"
        );
        assert_eq!(json["ret"], 0);
        assert_eq!(json["duration_ns"], 500);
        assert_eq!(json["comm"], "runc");
        assert_eq!(json["tgid"], 100);
        assert_eq!(json["v"], SCHEMA_VERSION);
    }

    #[test]
    fn cgroup_write_names_file_hierarchy_and_value() {
        let mut ev = zeroed_syscall(kind::CGROUP_WRITE);
        // "memory.limit_in_bytes" under "docker/abc", leaf first.
        let parts = b"memory.limit_in_bytes\0abc\0docker\0";
        ev.path.buf[..parts.len()].copy_from_slice(parts);
        ev.path.len = parts.len() as u32;
        ev.path.depth = 3;
        ev.strs[0][..4].copy_from_slice(b"1024");
        ev.str_len[0] = 4;
        ev.args = [5, 4];
        // dev 0:32, as the kernel encodes it (major << 20 | minor).
        ev.aux = [32, inspector_common::CGROUP_SUPER_MAGIC];
        ev.ret = 4;
        ev.end = 1_000;
        let e = decoder().decode(&bytes(&ev)).unwrap();
        match e.body {
            Body::CgroupWrite {
                file,
                hierarchy,
                path,
                value,
                cgroup_version,
                ..
            } => {
                assert_eq!(file, "/docker/abc/memory.limit_in_bytes");
                assert_eq!(hierarchy, "memory");
                assert_eq!(
                    path.as_deref(),
                    Some("/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes")
                );
                assert_eq!(value, "1024");
                assert_eq!(cgroup_version, 1);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exec_splits_argv_and_marks_truncation() {
        // SAFETY: an all-zero ExecEvent is valid plain data.
        let mut ev: ExecEvent = unsafe { std::mem::zeroed() };
        ev.hdr = header(kind::EXEC);
        ev.old_tid = 101;
        let args = b"runc\0--root\0/run/runc\0";
        ev.args[..args.len()].copy_from_slice(args);
        ev.args_len = args.len() as u32;
        ev.filename[..13].copy_from_slice(b"/usr/sbin/run");
        ev.filename_len = 13;
        ev.flags = EXEC_ARGS_TRUNCATED;
        let e = decoder().decode(&bytes(&ev)).unwrap();
        let Body::Exec {
            argv,
            argv_truncated,
            old_tid,
            ..
        } = e.body
        else {
            panic!()
        };
        assert_eq!(argv, ["runc", "--root", "/run/runc"]);
        assert!(argv_truncated);
        assert_eq!(old_tid, None);
    }

    #[test]
    fn exit_status_splits_code_and_signal() {
        let mut ev = ExitEvent {
            hdr: header(kind::EXIT),
            exit_code: 3 << 8,
            _pad: 0,
        };
        let d = decoder();
        let e = d.decode(&bytes(&ev)).unwrap();
        assert!(matches!(
            e.body,
            Body::Exit {
                exit_code: Some(3),
                signal: None,
                ..
            }
        ));
        ev.exit_code = 9;
        let e = d.decode(&bytes(&ev)).unwrap();
        assert!(
            matches!(e.body, Body::Exit { exit_code: None, signal: Some(ref s), .. } if s == "SIGKILL")
        );
    }

    #[test]
    fn pivot_root_cwd_is_rebuilt_from_parts() {
        let mut ev = zeroed_syscall(kind::PIVOT_ROOT);
        let parts = b"merged\0abc\0overlay2\0docker\0lib\0var\0";
        ev.path.buf[..parts.len()].copy_from_slice(parts);
        ev.path.len = parts.len() as u32;
        ev.path.depth = 6;
        ev.strs[0][0] = b'.';
        ev.str_len[0] = 1;
        let e = decoder().decode(&bytes(&ev)).unwrap();
        let Body::PivotRoot { cwd, new_root, .. } = e.body else {
            panic!()
        };
        assert_eq!(cwd.as_deref(), Some("/var/lib/docker/overlay2/abc/merged"));
        assert_eq!(new_root, ".");
    }

    #[test]
    fn bad_records_are_errors_not_panics() {
        let d = decoder();
        assert_eq!(d.decode(&[1, 2, 3]), Err(DecodeError::Short { len: 3 }));
        let h = header(999);
        assert_eq!(d.decode(&bytes(&h)), Err(DecodeError::UnknownKind(999)));
        let h = header(kind::EXEC);
        assert!(matches!(
            d.decode(&bytes(&h)),
            Err(DecodeError::Size { .. })
        ));
    }

    #[test]
    fn failure_records_decode_with_names() {
        let mut ev = zeroed_syscall(kind::SYSCALL_FAILED);
        ev.nr = 302; // prlimit64
        ev.args = [0, 7]; // RLIMIT_NOFILE
        ev.ret = -1;
        let e = decoder().decode(&bytes(&ev)).unwrap();
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["kind"], "syscall_failed");
        assert_eq!(json["syscall"], "prlimit64");
        assert_eq!(json["resource"], "RLIMIT_NOFILE");
        assert_eq!(json["errno"], "EPERM");

        // SAFETY: an all-zero record is valid plain data.
        let mut m: MessageEvent = unsafe { std::mem::zeroed() };
        m.hdr = header(kind::MESSAGE);
        m.stream = STREAM_RUNTIME_LOG;
        m.fd = 5;
        let line = br#"{"level":"error","msg":"no such file"}"#;
        m.text[..line.len()].copy_from_slice(line);
        m.len = line.len() as u32;
        m.count = 4096;
        let e = decoder().decode(&bytes(&m)).unwrap();
        let Body::Message {
            stream,
            text,
            text_truncated,
            ..
        } = e.body
        else {
            panic!()
        };
        assert_eq!(stream, "runtime_log");
        assert_eq!(text.as_bytes(), line);
        assert!(text_truncated);

        let k = KillEvent {
            hdr: header(kind::KILLED),
            victim_tgid: 100,
            victim_tid: 100,
            cause: inspector_common::KILLED_BY_SECCOMP,
            syscall: 110,
            arch: names::AUDIT_ARCH_X86_64,
            _pad: 0,
        };
        let e = decoder().decode(&bytes(&k)).unwrap();
        assert!(
            matches!(e.body, Body::Killed { ref cause, syscall: Some(ref s), .. } if cause == "seccomp" && s == "getppid"),
            "{e:?}"
        );
    }

    #[test]
    fn json_round_trips() {
        let mut ev = zeroed_syscall(kind::MOUNT);
        ev.strs[1][..5].copy_from_slice(b"/proc");
        ev.str_len[1] = 5;
        ev.strs[2][..4].copy_from_slice(b"proc");
        ev.str_len[2] = 4;
        ev.ret = -2;
        let e = decoder().decode(&bytes(&ev)).unwrap();
        let line = serde_json::to_string(&e).unwrap();
        assert!(line.contains("\"errno\":\"ENOENT\""), "{line}");
        let back: Event = serde_json::from_str(&line).unwrap();
        assert_eq!(back, e);
    }
}
