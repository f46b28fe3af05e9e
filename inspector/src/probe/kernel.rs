//! What the running kernel offers the probe, read when the probe is loaded,
//! so that it fits the kernel it runs on instead of assuming the newest:
//!
//! - each raw tracepoint's arguments, from the `btf_trace_<name>` prototype
//!   in the kernel's BTF: the kernel refuses (EINVAL, at attach) a raw
//!   tracepoint program that reads past them, and tracepoints gain arguments
//!   over the years (`sched_process_exit`'s `group_dead` is recent). Where a
//!   hook's program reads more than this kernel passes, the variant made for
//!   older kernels is loaded in its place;
//! - BPF ring buffers and the two program types, by aya's feature probes: a
//!   kernel without them would otherwise only answer EINVAL;
//! - whether BPF memory is charged to RLIMIT_MEMLOCK (before 5.11; Debian
//!   11's 5.10), where the limit is raised while the probe loads.
//!
//! A probe kept loaded between runs ([`super::pinned`]) was fitted when it
//! was loaded: bpffs does not outlive a boot, so the kernel is the same one.
//! Its programs are pinned under their hook's name, whichever variant fills it.

use aya::{
    maps::MapType,
    programs::ProgramType,
    sys::{is_map_supported, is_program_supported},
};

use super::btf::Btf;
use super::{ProbeError, RAW_HOOKS, RawHook};

/// The running kernel's release (`uname -r`), for messages.
pub fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "(unknown release)".to_string())
}

/// (major, minor) of a release string such as `6.1.0-47-amd64`.
fn version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// RLIMIT_MEMLOCK raised for as long as the value lives, on kernels that
/// charge BPF maps and programs to it (before 5.11, which charges them to
/// the memory cgroup instead). Only while loading: what inspector starts
/// (the runtime, a container) inherits its limits.
pub struct Memlock(Option<libc::rlimit>);

impl Memlock {
    pub fn raise() -> Memlock {
        if version(&release()).is_none_or(|v| v >= (5, 11)) {
            return Memlock(None);
        }
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        let unlimited = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: plain rlimit calls on valid structs. A refusal (no
        // CAP_SYS_RESOURCE) is not fatal: the limit may be enough.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut old) != 0
                || libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) != 0
            {
                log::debug!(
                    "cannot raise RLIMIT_MEMLOCK: {}",
                    std::io::Error::last_os_error()
                );
                return Memlock(None);
            }
        }
        Memlock(Some(old))
    }
}

impl Drop for Memlock {
    fn drop(&mut self) {
        if let Some(old) = self.0 {
            // SAFETY: as above; lowering a limit needs no privilege.
            unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &old) };
        }
    }
}

/// Which compiled program fills each hook's place on this kernel: (hook's
/// program, program loaded). Hooks not listed are filled by their own program.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Variants(Vec<(&'static str, &'static str)>);

impl Variants {
    /// The program that fills `hook`'s place.
    pub fn program(&self, hook: &'static str) -> &'static str {
        self.0
            .iter()
            .find(|(h, _)| *h == hook)
            .map_or(hook, |&(_, program)| program)
    }

    /// Fits every raw hook to the arguments the kernel passes, as `args`
    /// tells them (`None`: not declared in this kernel's BTF).
    pub fn fit(
        hooks: &[RawHook],
        args: impl Fn(&str) -> Option<u32>,
        release: &str,
    ) -> Result<Variants, ProbeError> {
        let mut chosen = Vec::new();
        for hook in hooks {
            let passed = args(hook.tracepoint);
            let fits = |reads: u32| passed.is_none_or(|n| reads <= n);
            match hook.older {
                // Undeclared: the variant that reads least is the safe guess.
                Some((older, _)) if passed.is_none() => chosen.push((hook.program, older)),
                _ if fits(hook.reads) => {}
                Some((older, reads)) if fits(reads) => chosen.push((hook.program, older)),
                _ => {
                    return Err(ProbeError::Unsupported {
                        release: release.to_string(),
                        what: format!("raw tracepoint {}:{}", hook.category, hook.tracepoint),
                        missing: format!(
                            "passes {} argument(s) where the probe reads {}",
                            passed.unwrap_or(0),
                            hook.reads
                        ),
                        advice: "no variant of the probe fits it; please report this with \
                                 the kernel's release and `bpftool btf dump file \
                                 /sys/kernel/btf/vmlinux | grep btf_trace_`",
                    });
                }
            }
        }
        Ok(Variants(chosen))
    }
}

/// Reads the running kernel's offer: feature probes, then the raw
/// tracepoints' prototypes from `btf`.
pub fn fit(btf: &Btf) -> Result<Variants, ProbeError> {
    let release = release();
    let unsupported = |what: &str| ProbeError::Unsupported {
        release: release.clone(),
        what: what.to_string(),
        missing: "is not available".to_string(),
        advice: "inspector needs Linux 5.8 or newer, with BTF (Debian 11, Ubuntu 20.04 HWE, \
                 RHEL 9 and later)",
    };
    // A probe that fails says nothing certain: the load that follows names
    // the problem if there is one.
    if matches!(is_map_supported(MapType::RingBuf), Ok(false)) {
        return Err(unsupported(
            "the BPF ring buffer (BPF_MAP_TYPE_RINGBUF, Linux 5.8)",
        ));
    }
    if matches!(is_program_supported(ProgramType::RawTracePoint), Ok(false)) {
        return Err(unsupported("BPF raw tracepoint programs (Linux 4.17)"));
    }
    if matches!(is_program_supported(ProgramType::TracePoint), Ok(false)) {
        return Err(unsupported("BPF tracepoint programs (Linux 4.7)"));
    }
    Variants::fit(RAW_HOOKS, |tp| btf.tracepoint_args(tp), &release)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::btf::{Btf, tests::tracepoints};

    fn args_of(protos: &'static [(&'static str, u32)]) -> impl Fn(&str) -> Option<u32> {
        move |tp| protos.iter().find(|(n, _)| *n == tp).map(|(_, a)| *a)
    }

    const NEWEST: &[(&str, u32)] = &[
        ("sched_process_fork", 2),
        ("sched_process_exec", 3),
        ("sched_process_exit", 2),
        ("cgroup_mkdir", 2),
        ("cgroup_rmdir", 2),
        ("cgroup_attach_task", 4),
        ("mark_victim", 2),
        ("signal_generate", 5),
    ];

    #[test]
    fn a_kernel_with_group_dead_gets_every_hooks_own_program() {
        let v = Variants::fit(RAW_HOOKS, args_of(NEWEST), "6.18").unwrap();
        assert_eq!(v, Variants::default());
        assert_eq!(v.program("insp_exit"), "insp_exit");
    }

    #[test]
    fn debian_12s_one_argument_exit_gets_the_task_variant() {
        const DEBIAN_12: &[(&str, u32)] = &[
            ("sched_process_fork", 2),
            ("sched_process_exec", 3),
            ("sched_process_exit", 1),
            ("cgroup_mkdir", 2),
            ("cgroup_rmdir", 2),
            ("cgroup_attach_task", 4),
            ("mark_victim", 1),
            ("signal_generate", 5),
        ];
        let v = Variants::fit(RAW_HOOKS, args_of(DEBIAN_12), "6.1.0-47-amd64").unwrap();
        assert_eq!(v.program("insp_exit"), "insp_exit_task");
        // Its OOM tracepoint passes the victim's pid, not its task.
        assert_eq!(v.program("insp_oom_victim"), "insp_oom_victim_pid");
        assert_eq!(v.program("insp_fork"), "insp_fork");
    }

    #[test]
    fn an_undeclared_prototype_gets_the_variant_that_reads_least() {
        let v = Variants::fit(RAW_HOOKS, |_| None, "5.10").unwrap();
        assert_eq!(v.program("insp_exit"), "insp_exit_task");
    }

    #[test]
    fn a_tracepoint_with_too_few_arguments_is_named_with_the_kernel() {
        const SHORT_EXEC: &[(&str, u32)] = &[
            ("sched_process_fork", 2),
            ("sched_process_exec", 2),
            ("sched_process_exit", 2),
        ];
        let err = Variants::fit(RAW_HOOKS, args_of(SHORT_EXEC), "5.99-test")
            .unwrap_err()
            .to_string();
        assert!(err.contains("5.99-test"), "{err}");
        assert!(err.contains("sched:sched_process_exec"), "{err}");
        assert!(
            err.contains("passes 2 argument(s) where the probe reads 3"),
            "{err}"
        );
    }

    #[test]
    fn releases_are_read_as_major_and_minor() {
        assert_eq!(version("6.1.0-47-amd64"), Some((6, 1)));
        assert_eq!(version("5.10.0-28-cloud-amd64"), Some((5, 10)));
        assert_eq!(version("5.14.0-427.13.1.el9_4.x86_64"), Some((5, 14)));
        assert_eq!(version("6.18.44-fc-v782"), Some((6, 18)));
        assert_eq!(version("garbage"), None);
    }

    #[test]
    fn prototypes_come_from_btf() {
        let btf = Btf::parse(tracepoints(&[("sched_process_exit", 1)])).unwrap();
        let v = Variants::fit(RAW_HOOKS, |tp| btf.tracepoint_args(tp), "6.1").unwrap();
        assert_eq!(v.program("insp_exit"), "insp_exit_task");
    }
}
