//! Symbolic names for the numbers syscalls take and return, as strace prints them.

/// Names of set bits, `A|B|0x..` for bits without a name, `0` when none are set.
fn bits(value: u64, table: &[(u64, &str)]) -> String {
    let mut parts = Vec::new();
    let mut rest = value;
    for &(bit, name) in table {
        if bit != 0 && value & bit == bit && rest & bit != 0 {
            parts.push(name.to_string());
            rest &= !bit;
        }
    }
    if rest != 0 {
        parts.push(format!("{rest:#x}"));
    }
    if parts.is_empty() {
        "0".to_string()
    } else {
        parts.join("|")
    }
}

const CLONE_FLAGS: &[(u64, &str)] = &[
    (0x0000_0080, "CLONE_NEWTIME"),
    (0x0000_0100, "CLONE_VM"),
    (0x0000_0200, "CLONE_FS"),
    (0x0000_0400, "CLONE_FILES"),
    (0x0000_0800, "CLONE_SIGHAND"),
    (0x0000_1000, "CLONE_PIDFD"),
    (0x0000_2000, "CLONE_PTRACE"),
    (0x0000_4000, "CLONE_VFORK"),
    (0x0000_8000, "CLONE_PARENT"),
    (0x0001_0000, "CLONE_THREAD"),
    (0x0002_0000, "CLONE_NEWNS"),
    (0x0004_0000, "CLONE_SYSVSEM"),
    (0x0008_0000, "CLONE_SETTLS"),
    (0x0010_0000, "CLONE_PARENT_SETTID"),
    (0x0020_0000, "CLONE_CHILD_CLEARTID"),
    (0x0040_0000, "CLONE_DETACHED"),
    (0x0080_0000, "CLONE_UNTRACED"),
    (0x0100_0000, "CLONE_CHILD_SETTID"),
    (0x0200_0000, "CLONE_NEWCGROUP"),
    (0x0400_0000, "CLONE_NEWUTS"),
    (0x0800_0000, "CLONE_NEWIPC"),
    (0x1000_0000, "CLONE_NEWUSER"),
    (0x2000_0000, "CLONE_NEWPID"),
    (0x4000_0000, "CLONE_NEWNET"),
    (0x8000_0000, "CLONE_IO"),
    (0x1_0000_0000, "CLONE_CLEAR_SIGHAND"),
    (0x2_0000_0000, "CLONE_INTO_CGROUP"),
];

/// clone/unshare flags; the low byte of clone(2) flags is the exit signal.
pub fn clone_flags(flags: u64, with_signal: bool) -> String {
    if !with_signal {
        return bits(flags, CLONE_FLAGS);
    }
    let signal = flags & 0xff;
    let rest = bits(flags & !0xff, CLONE_FLAGS);
    match (signal, rest.as_str()) {
        (0, _) => rest,
        (s, "0") => signal_name(s as i32),
        (s, r) => format!("{r}|{}", signal_name(s as i32)),
    }
}

/// The `nstype` of setns(2): one namespace flag, or 0 for "any".
pub fn nstype(nstype: u64) -> String {
    bits(nstype, CLONE_FLAGS)
}

const MOUNT_FLAGS: &[(u64, &str)] = &[
    (1, "MS_RDONLY"),
    (2, "MS_NOSUID"),
    (4, "MS_NODEV"),
    (8, "MS_NOEXEC"),
    (16, "MS_SYNCHRONOUS"),
    (32, "MS_REMOUNT"),
    (64, "MS_MANDLOCK"),
    (128, "MS_DIRSYNC"),
    (256, "MS_NOSYMFOLLOW"),
    (1024, "MS_NOATIME"),
    (2048, "MS_NODIRATIME"),
    (4096, "MS_BIND"),
    (8192, "MS_MOVE"),
    (16384, "MS_REC"),
    (32768, "MS_SILENT"),
    (1 << 16, "MS_POSIXACL"),
    (1 << 17, "MS_UNBINDABLE"),
    (1 << 18, "MS_PRIVATE"),
    (1 << 19, "MS_SLAVE"),
    (1 << 20, "MS_SHARED"),
    (1 << 21, "MS_RELATIME"),
    (1 << 22, "MS_KERNMOUNT"),
    (1 << 23, "MS_I_VERSION"),
    (1 << 24, "MS_STRICTATIME"),
    (1 << 25, "MS_LAZYTIME"),
];

/// mount(2) flags, without the historic magic number in the top half.
pub fn mount_flags(flags: u64) -> String {
    let flags = if flags & 0xffff_0000 == 0xc0ed_0000 {
        flags & 0xffff
    } else {
        flags
    };
    bits(flags, MOUNT_FLAGS)
}

const UMOUNT_FLAGS: &[(u64, &str)] = &[
    (1, "MNT_FORCE"),
    (2, "MNT_DETACH"),
    (4, "MNT_EXPIRE"),
    (8, "UMOUNT_NOFOLLOW"),
];

pub fn umount_flags(flags: u64) -> String {
    bits(flags, UMOUNT_FLAGS)
}

const SIGNALS: &[&str] = &[
    "0",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

pub fn signal_name(sig: i32) -> String {
    match SIGNALS.get(sig as usize) {
        Some(name) if sig > 0 => name.to_string(),
        _ if (34..=64).contains(&sig) => format!("SIGRTMIN+{}", sig - 34),
        _ => sig.to_string(),
    }
}

const ERRNOS: &[(i64, &str)] = &[
    (1, "EPERM"),
    (2, "ENOENT"),
    (3, "ESRCH"),
    (4, "EINTR"),
    (5, "EIO"),
    (7, "E2BIG"),
    (8, "ENOEXEC"),
    (9, "EBADF"),
    (10, "ECHILD"),
    (11, "EAGAIN"),
    (12, "ENOMEM"),
    (13, "EACCES"),
    (14, "EFAULT"),
    (16, "EBUSY"),
    (17, "EEXIST"),
    (18, "EXDEV"),
    (19, "ENODEV"),
    (20, "ENOTDIR"),
    (21, "EISDIR"),
    (22, "EINVAL"),
    (23, "ENFILE"),
    (24, "EMFILE"),
    (26, "ETXTBSY"),
    (28, "ENOSPC"),
    (30, "EROFS"),
    (36, "ENAMETOOLONG"),
    (38, "ENOSYS"),
    (39, "ENOTEMPTY"),
    (40, "ELOOP"),
    (95, "EOPNOTSUPP"),
    // Seen at a syscall's exit when a signal interrupted it: the kernel
    // restarts it (or turns it into EINTR) before user space sees this.
    (512, "ERESTARTSYS"),
    (513, "ERESTARTNOINTR"),
    (514, "ERESTARTNOHAND"),
    (516, "ERESTART_RESTARTBLOCK"),
];

/// A call a signal interrupted, which the caller or the kernel retries:
/// whether one happens depends on timing alone.
pub fn is_interrupted(errno: &str) -> bool {
    matches!(
        errno,
        "EINTR" | "ERESTARTSYS" | "ERESTARTNOINTR" | "ERESTARTNOHAND" | "ERESTART_RESTARTBLOCK"
    )
}

/// `ENOENT` for -2; `None` for a non-negative return value.
pub fn errno_name(ret: i64) -> Option<String> {
    if ret >= 0 {
        return None;
    }
    let errno = -ret;
    Some(
        ERRNOS
            .iter()
            .find(|(n, _)| *n == errno)
            .map(|(_, name)| name.to_string())
            .unwrap_or_else(|| format!("errno {errno}")),
    )
}

/// `AUDIT_ARCH_*` of the two ABIs a seccomp kill can name (linux/audit.h).
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;

/// The name of syscall `nr` of the ABI `arch` (as seccomp reports it), or
/// `syscall N` when it has none here.
pub fn syscall_name(nr: u32, arch: u32) -> String {
    let name = match arch {
        AUDIT_ARCH_X86_64 => syscalls::x86_64::Sysno::new(nr as usize).map(|s| s.name()),
        AUDIT_ARCH_I386 => syscalls::x86::Sysno::new(nr as usize).map(|s| s.name()),
        _ => None,
    };
    match name {
        Some(name) if arch == AUDIT_ARCH_I386 => format!("{name} (i386)"),
        Some(name) => name.to_string(),
        None => format!("syscall {nr}"),
    }
}

const RLIMITS: &[&str] = &[
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_DATA",
    "RLIMIT_STACK",
    "RLIMIT_CORE",
    "RLIMIT_RSS",
    "RLIMIT_NPROC",
    "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_AS",
    "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
];

/// `RLIMIT_NOFILE` for 7.
pub fn rlimit_name(resource: u64) -> String {
    RLIMITS
        .get(resource as usize)
        .map_or_else(|| format!("rlimit {resource}"), |s| s.to_string())
}

/// A task's state as `ps` letters it, from its `TASK_*` bits (0: runnable).
pub fn task_state(state: u32) -> String {
    const TASK_NOLOAD: u32 = 0x400;
    let letter = match state {
        0 => "R",
        s if s & 0x1 != 0 => "S",
        s if s & 0x2 != 0 && s & TASK_NOLOAD != 0 => "I",
        s if s & 0x2 != 0 => "D",
        s if s & 0x4 != 0 => "T",
        s if s & 0x8 != 0 => "t",
        s if s & 0x10 != 0 => "X",
        s if s & 0x20 != 0 => "Z",
        s if s & 0x40 != 0 => "P",
        _ => return format!("0x{state:x}"),
    };
    letter.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_unshare_flags_read_like_strace() {
        assert_eq!(
            clone_flags(0x6c02_0000, false),
            "CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWPID|CLONE_NEWNET"
        );
    }

    #[test]
    fn syscalls_and_rlimits_are_named_by_their_abi() {
        assert_eq!(syscall_name(110, AUDIT_ARCH_X86_64), "getppid");
        assert_eq!(syscall_name(64, AUDIT_ARCH_I386), "getppid (i386)");
        assert_eq!(syscall_name(99_999, AUDIT_ARCH_X86_64), "syscall 99999");
        assert_eq!(syscall_name(110, 0), "syscall 110");
        assert_eq!(rlimit_name(7), "RLIMIT_NOFILE");
        assert_eq!(rlimit_name(u64::MAX), format!("rlimit {}", u64::MAX));
    }

    #[test]
    fn clone_keeps_the_exit_signal() {
        assert_eq!(clone_flags(0x4111, true), "CLONE_VM|CLONE_VFORK|SIGCHLD");
        assert_eq!(clone_flags(17, true), "SIGCHLD");
        assert_eq!(clone_flags(0, true), "0");
    }

    #[test]
    fn unknown_bits_stay_visible() {
        assert_eq!(umount_flags(2 | 64), "MNT_DETACH|0x40");
    }

    #[test]
    fn mount_flags_drop_the_magic() {
        assert_eq!(mount_flags(0xc0ed_0000 | 4096 | 16384), "MS_BIND|MS_REC");
        assert_eq!(mount_flags(0), "0");
    }

    #[test]
    fn errno_and_signal_names() {
        assert_eq!(errno_name(-2).as_deref(), Some("ENOENT"));
        assert_eq!(errno_name(0), None);
        assert_eq!(errno_name(-1000).as_deref(), Some("errno 1000"));
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(35), "SIGRTMIN+1");
    }
}
