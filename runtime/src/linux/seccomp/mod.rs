//! A small compiler from the OCI seccomp section to a classic BPF filter, and
//! its loader.
//!
//! It follows runc (libseccomp) on the same profile, because a profile written
//! for runc must mean the same here:
//!
//! - **Architectures.** The program first reads `seccomp_data.arch`. x86_64 is
//!   always filtered (libseccomp adds the native architecture); `SCMP_ARCH_X86`
//!   adds the i386 ABI (`int $0x80`, matched by i386 numbers) and
//!   `SCMP_ARCH_X32` the x32 ABI (x86_64's arch value with bit 0x40000000 in
//!   the number, matched by x32 numbers, `syscalls_x32.rs`). Any other ABI — one not listed — gets libseccomp's
//!   default bad-architecture action, which runc never changes:
//!   `SECCOMP_RET_KILL_THREAD`. Giving it the default action instead would let
//!   a 32-bit call through a default-allow profile's deny rules.
//! - **Conditions.** A rule's conditions are AND'ed, unless two of them test the
//!   same argument: then, as runc does, every condition becomes a rule of its
//!   own (OR'ed). i386 arguments are 32 bits wide, so only the low halves are
//!   compared there (as libseccomp does for 32-bit ABIs).
//! - **Flags.** `SECCOMP_FILTER_FLAG_TSYNC`, `_LOG` and `_SPEC_ALLOW` are passed
//!   to `seccomp(SECCOMP_SET_MODE_FILTER)`; `_WAIT_KILLABLE_RECV` only means
//!   something with `SCMP_ACT_NOTIFY`, which is not supported, so it is refused.
//!
//! Layout: arch dispatch (long jumps with `BPF_JA`), then one section per ABI:
//! each rule in order (syscall number, then argument conditions on both 32-bit
//! halves; argument-less names share one `ld nr` and one return), then the
//! default action. Names a table does not know are skipped, as runc
//! (through libseccomp) does.
//!
//! The x86_64 and i386 numbers come from the `syscalls` crate. It has no x32
//! table, so that one is kept by hand (`syscalls_x32.rs`, generated from the
//! kernel's header).

use std::sync::OnceLock;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
    LinuxSyscall,
};

use crate::{Result, error::msg};

pub mod interpret;
mod syscalls_x32;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// libseccomp's default `SCMP_FLTATR_ACT_BADARCH`, `SCMP_ACT_KILL`.
const RET_KILL_THREAD: u32 = 0;

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;

/// The kernel's limit on a classic BPF program (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;

// seccomp_data offsets
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn off_arg_lo(i: u32) -> u32 {
    16 + 8 * i
}

const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const BPF_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const BPF_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const BPF_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const BPF_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;

/// A compiled filter and the flags to load it with.
#[derive(Clone, Debug)]
pub struct Filter {
    pub prog: Vec<libc::sock_filter>,
    /// `SECCOMP_FILTER_FLAG_*` for seccomp(2).
    pub flags: u32,
}

/// A `syscalls` crate table as (name, number) sorted by name, for a binary
/// search per name. Its names are Rust identifiers: i386's `break` is `r#break`.
macro_rules! by_name {
    ($sysno:ty) => {{
        let last = <$sysno>::last().id();
        let mut table: Vec<(&'static str, u32)> = (0..=last)
            .filter_map(|nr| <$sysno>::new(nr as usize))
            .map(|s| (s.name().trim_start_matches("r#"), s.id() as u32))
            .collect();
        table.sort_unstable();
        table
    }};
}

/// A system call ABI the filter can see on an x86_64 kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Abi {
    X86_64,
    X32,
    I386,
}

impl Abi {
    /// (name, number) of every system call of the ABI, sorted by name.
    fn table(self) -> &'static [(&'static str, u32)] {
        static X86_64: OnceLock<Vec<(&str, u32)>> = OnceLock::new();
        static I386: OnceLock<Vec<(&str, u32)>> = OnceLock::new();
        match self {
            Abi::X86_64 => X86_64.get_or_init(|| by_name!(syscalls::x86_64::Sysno)),
            Abi::X32 => syscalls_x32::SYSCALLS,
            Abi::I386 => I386.get_or_init(|| by_name!(syscalls::x86::Sysno)),
        }
    }

    fn number(self, name: &str) -> Option<u32> {
        let table = self.table();
        let nr = table
            .binary_search_by(|(n, _)| n.cmp(&name))
            .ok()
            .map(|i| table[i].1)?;
        Some(if self == Abi::X32 {
            nr | X32_SYSCALL_BIT
        } else {
            nr
        })
    }

    /// Whether arguments are 64 bits wide (both halves compared).
    fn wide(self) -> bool {
        self != Abi::I386
    }
}

/// The x86_64 number of a system call.
pub fn syscall_number(name: &str) -> Option<u32> {
    Abi::X86_64.number(name)
}

/// The number a filtered ABI sees for a system call (x32's with its bit set);
/// `None` for an architecture the filter does not know or a name its table
/// lacks. Public for the fuzz target's reference model (fuzz/), nothing else.
#[doc(hidden)]
pub fn abi_number(arch: Arch, name: &str) -> Option<u32> {
    match arch {
        Arch::ScmpArchX86_64 => Abi::X86_64.number(name),
        Arch::ScmpArchX32 => Abi::X32.number(name),
        Arch::ScmpArchX86 => Abi::I386.number(name),
        _ => None,
    }
}

/// Whether a filter may use action `a` (`features` says so).
pub fn supports_action(a: LinuxSeccompAction) -> bool {
    action(a, None).is_ok()
}

/// The filter flags passed to seccomp(2) (`features` says so; the others
/// are refused at create).
pub const KNOWN_FLAGS: &[LinuxSeccompFilterFlag] = &[
    LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
    LinuxSeccompFilterFlag::SeccompFilterFlagLog,
    LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
];

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<u32> {
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => RET_KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => 0x8000_0000,
        LinuxSeccompAction::ScmpActTrap => 0x0003_0000,
        LinuxSeccompAction::ScmpActErrno => {
            0x0005_0000 | (errno.unwrap_or(libc::EPERM as u32) & 0xffff)
        }
        LinuxSeccompAction::ScmpActTrace => {
            0x7ff0_0000 | (errno.unwrap_or(libc::EPERM as u32) & 0xffff)
        }
        LinuxSeccompAction::ScmpActLog => 0x7ffc_0000,
        LinuxSeccompAction::ScmpActAllow => 0x7fff_0000,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(msg("seccomp: SCMP_ACT_NOTIFY is not supported"));
        }
    })
}

fn flags(s: &LinuxSeccomp) -> Result<u32> {
    let mut bits = 0;
    for f in s.flags().iter().flatten() {
        bits |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                return Err(msg(
                    "seccomp: flag SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs SCMP_ACT_NOTIFY, which is not supported; remove the flag",
                ));
            }
        };
    }
    Ok(bits)
}

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Placeholder for "this rule does not match": patched to the block's end.
const FAIL: u8 = u8::MAX;

/// One argument condition. Every failing path jumps to `FAIL`; passing falls
/// through past the condition. Narrow ABIs compare the low halves only.
fn arg_check(
    index: u32,
    op: LinuxSeccompOperator,
    value: u64,
    two: u64,
    wide: bool,
) -> Vec<libc::sock_filter> {
    let lo = off_arg_lo(index);
    let hi = lo + 4;
    let (vhi, vlo) = ((value >> 32) as u32, value as u32);
    let mut p = Vec::new();
    match op {
        LinuxSeccompOperator::ScmpCmpEq => {
            if wide {
                p.push(stmt(BPF_LD_W_ABS, hi));
                p.push(jump(BPF_JEQ_K, vhi, 0, FAIL));
            }
            p.push(stmt(BPF_LD_W_ABS, lo));
            p.push(jump(BPF_JEQ_K, vlo, 0, FAIL));
        }
        LinuxSeccompOperator::ScmpCmpNe => {
            // Fails only when both halves are equal.
            if wide {
                p.push(stmt(BPF_LD_W_ABS, hi));
                p.push(jump(BPF_JEQ_K, vhi, 0, 2));
            }
            p.push(stmt(BPF_LD_W_ABS, lo));
            p.push(jump(BPF_JEQ_K, vlo, FAIL, 0));
        }
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            let (mhi, mlo) = (vhi, vlo);
            let (whi, wlo) = ((two >> 32) as u32, two as u32);
            if wide {
                p.push(stmt(BPF_LD_W_ABS, hi));
                p.push(stmt(BPF_AND_K, mhi));
                p.push(jump(BPF_JEQ_K, whi, 0, FAIL));
            }
            p.push(stmt(BPF_LD_W_ABS, lo));
            p.push(stmt(BPF_AND_K, mlo));
            p.push(jump(BPF_JEQ_K, wlo, 0, FAIL));
        }
        LinuxSeccompOperator::ScmpCmpGt
        | LinuxSeccompOperator::ScmpCmpGe
        | LinuxSeccompOperator::ScmpCmpLt
        | LinuxSeccompOperator::ScmpCmpLe => {
            // hi decides unless equal; then the low halves compare.
            let greater = matches!(
                op,
                LinuxSeccompOperator::ScmpCmpGt | LinuxSeccompOperator::ScmpCmpGe
            );
            let lo_op = match op {
                LinuxSeccompOperator::ScmpCmpGt | LinuxSeccompOperator::ScmpCmpLe => BPF_JGT_K,
                _ => BPF_JGE_K,
            };
            if wide {
                p.push(stmt(BPF_LD_W_ABS, hi));
                if greater {
                    p.push(jump(BPF_JGT_K, vhi, 3, 0)); // hi > vhi: pass
                    p.push(jump(BPF_JEQ_K, vhi, 0, FAIL));
                } else {
                    p.push(jump(BPF_JGT_K, vhi, FAIL, 0));
                    p.push(jump(BPF_JEQ_K, vhi, 0, 2)); // hi < vhi: pass
                }
            }
            p.push(stmt(BPF_LD_W_ABS, lo));
            if greater {
                p.push(jump(lo_op, vlo, 0, FAIL));
            } else {
                p.push(jump(lo_op, vlo, FAIL, 0));
            }
        }
    }
    p
}

/// Patches every `FAIL` jump of a block to land just past it.
fn seal(mut block: Vec<libc::sock_filter>) -> Vec<libc::sock_filter> {
    let len = block.len();
    for (i, ins) in block.iter_mut().enumerate() {
        let to_end = (len - i - 1) as u8;
        if ins.jt == FAIL {
            ins.jt = to_end;
        }
        if ins.jf == FAIL {
            ins.jf = to_end;
        }
    }
    block
}

/// One rule's conditions as runc hands them to libseccomp: all together, or,
/// when an argument is tested twice, each on its own.
fn condition_sets(rule: &LinuxSyscall) -> Result<Vec<Vec<&oci_spec::runtime::LinuxSeccompArg>>> {
    let args: Vec<_> = rule.args().iter().flatten().collect();
    let mut counts = [0usize; 6];
    for a in &args {
        let i = Some(a.index()).filter(|i| *i < 6).ok_or_else(|| {
            msg(format!(
                "seccomp: argument index {} of {:?} is out of range (0 to 5)",
                a.index(),
                rule.names()
            ))
        })?;
        counts[i] += 1;
    }
    Ok(if counts.iter().any(|c| *c > 1) {
        args.into_iter().map(|a| vec![a]).collect()
    } else {
        vec![args]
    })
}

/// Every rule for one ABI, in order, then the default action.
fn section(s: &LinuxSeccomp, abi: Abi, default: u32) -> Result<Vec<libc::sock_filter>> {
    // Keeps every short jump of a name group within its 8 bits.
    const GROUP: usize = 200;
    let mut prog = Vec::new();
    for rule in s.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret())?;
        if act == default {
            continue;
        }
        let sets = condition_sets(rule)?;
        let numbers: Vec<u32> = rule.names().iter().filter_map(|n| abi.number(n)).collect();
        if sets.iter().all(|c| c.is_empty()) {
            // ld nr; jeq n1 → ret; ...; ja past ret; ret act
            for chunk in numbers.chunks(GROUP) {
                prog.push(stmt(BPF_LD_W_ABS, OFF_NR));
                for (i, nr) in chunk.iter().enumerate() {
                    prog.push(jump(BPF_JEQ_K, *nr, (chunk.len() - i) as u8, 0));
                }
                prog.push(stmt(BPF_JA, 1));
                prog.push(stmt(BPF_RET_K, act));
            }
            continue;
        }
        for nr in &numbers {
            for conds in &sets {
                let mut block = vec![stmt(BPF_LD_W_ABS, OFF_NR), jump(BPF_JEQ_K, *nr, 0, FAIL)];
                for a in conds {
                    block.extend(arg_check(
                        a.index() as u32,
                        a.op(),
                        a.value(),
                        a.value_two().unwrap_or(0),
                        abi.wide(),
                    ));
                }
                block.push(stmt(BPF_RET_K, act));
                prog.extend(seal(block));
            }
        }
    }
    prog.push(stmt(BPF_RET_K, default));
    Ok(prog)
}

/// Compiles the filter. Fails on actions and flags we cannot honour.
pub fn compile(s: &LinuxSeccomp) -> Result<Filter> {
    let default = action(s.default_action(), s.default_errno_ret())?;
    let flags = flags(s)?;
    let arches = s.architectures().clone().unwrap_or_default();
    let x32 = arches.contains(&Arch::ScmpArchX32);
    let i386 = arches.contains(&Arch::ScmpArchX86);

    let x86_64 = section(s, Abi::X86_64, default)?;
    let x32_rules = if x32 {
        section(s, Abi::X32, default)?
    } else {
        Vec::new()
    };
    let i386_rules = if i386 {
        section(s, Abi::I386, default)?
    } else {
        Vec::new()
    };

    // Arch dispatch. Sections follow in the order x86_64, x32, i386; a long
    // jump's offset counts from the instruction after it.
    let mut head = vec![
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, 0, 1),
        stmt(BPF_JA, 0), // → x86_64, patched below
    ];
    if i386 {
        head.push(jump(BPF_JEQ_K, AUDIT_ARCH_I386, 0, 1));
        head.push(stmt(BPF_JA, 0)); // → i386, patched below
    }
    head.push(stmt(BPF_RET_K, RET_KILL_THREAD));
    // x86_64's own prologue: the x32 ABI shares its arch value.
    let x64_head = vec![
        stmt(BPF_LD_W_ABS, OFF_NR),
        jump(BPF_JSET_K, X32_SYSCALL_BIT, 0, 1),
        if x32 {
            stmt(BPF_JA, (x86_64.len()) as u32)
        } else {
            stmt(BPF_RET_K, RET_KILL_THREAD)
        },
    ];
    let x64_start = head.len();
    let i386_start = x64_start + x64_head.len() + x86_64.len() + x32_rules.len();
    head[2].k = (x64_start - 3) as u32;
    if i386 {
        head[4].k = (i386_start - 5) as u32;
    }
    let mut prog = head;
    prog.extend(x64_head);
    prog.extend(x86_64);
    prog.extend(x32_rules);
    prog.extend(i386_rules);
    if prog.len() > MAX_INSNS {
        return Err(msg(format!(
            "seccomp: the filter has {} instructions, more than the kernel's {MAX_INSNS}; list fewer system calls or architectures",
            prog.len()
        )));
    }
    Ok(Filter { prog, flags })
}

/// Installs the filter for this process (and its threads with TSYNC) with
/// seccomp(2), which, unlike prctl, takes the flags.
pub fn load(filter: &Filter) -> Result<()> {
    let fprog = libc::sock_fprog {
        len: filter.prog.len() as u16,
        filter: filter.prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: a valid program that outlives the call; plain integer flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            filter.flags as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        let why = if rc > 0 {
            format!("thread {rc} cannot be synchronised (SECCOMP_FILTER_FLAG_TSYNC)")
        } else {
            std::io::Error::last_os_error().to_string()
        };
        return Err(msg(format!(
            "cannot load the seccomp filter (flags {:#x}): {why}",
            filter.flags
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The filter's verdict (see [`interpret`]), so the tests check
    /// decisions, not offsets.
    fn run(prog: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        interpret::run(prog, arch, nr, args).unwrap()
    }

    fn profile(json: &str) -> Filter {
        compile(&serde_json::from_str(json).unwrap()).unwrap()
    }

    const ALLOW: u32 = 0x7fff_0000;
    const EPERM: u32 = 0x0005_0000 | libc::EPERM as u32;
    const X64: u32 = AUDIT_ARCH_X86_64;

    #[test]
    fn names() {
        assert_eq!(syscall_number("read"), Some(0));
        assert_eq!(syscall_number("openat2"), Some(437));
        assert_eq!(syscall_number("no_such_call"), None);
        assert_eq!(Abi::I386.number("getppid"), Some(64));
        assert_eq!(Abi::I386.number("_llseek"), Some(140));
        assert_eq!(Abi::X32.number("rt_sigaction"), Some(X32_SYSCALL_BIT | 512));
        assert_eq!(Abi::X32.number("read"), Some(X32_SYSCALL_BIT));
    }

    #[test]
    fn a_name_no_table_knows_is_skipped() {
        let with = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"],
                "syscalls":[{"names":["read","no_such_call"],"action":"SCMP_ACT_ALLOW"},
                            {"names":["no_such_call"],"action":"SCMP_ACT_KILL"}]}"#,
        );
        let without = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"],
                "syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        let code = |f: &Filter| {
            f.prog
                .iter()
                .map(|i| (i.code, i.jt, i.jf, i.k))
                .collect::<Vec<_>>()
        };
        assert_eq!(code(&with), code(&without));
        // i386's `break` (a Rust keyword in the crate's table) is still found.
        assert_eq!(Abi::I386.number("break"), Some(17));
    }

    #[test]
    fn rules_with_arguments_decide_as_written() {
        let f = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["read","write","bogus"],"action":"SCMP_ACT_ALLOW"},
                {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
                {"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]},
                {"names":["kill"],"action":"SCMP_ACT_ALLOW","args":[{"index":1,"value":10,"op":"SCMP_CMP_LT"},{"index":0,"value":4294967296,"op":"SCMP_CMP_GE"}]}]}"#,
        );
        let nr = |n| syscall_number(n).unwrap();
        assert_eq!(run(&f.prog, X64, nr("read"), [0; 6]), ALLOW);
        assert_eq!(run(&f.prog, X64, nr("write"), [0; 6]), ALLOW);
        assert_eq!(run(&f.prog, X64, nr("mkdir"), [0; 6]), EPERM);
        assert_eq!(
            run(&f.prog, X64, nr("personality"), [8, 0, 0, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(
            run(
                &f.prog,
                X64,
                nr("personality"),
                [8 | 1 << 32, 0, 0, 0, 0, 0]
            ),
            EPERM
        );
        assert_eq!(run(&f.prog, X64, nr("clone"), [0x11, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(
            run(&f.prog, X64, nr("clone"), [0x1000_0000, 0, 0, 0, 0, 0]),
            EPERM
        );
        // Different arguments: both must hold.
        assert_eq!(
            run(&f.prog, X64, nr("kill"), [1 << 32, 9, 0, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(
            run(&f.prog, X64, nr("kill"), [1 << 32, 10, 0, 0, 0, 0]),
            EPERM
        );
        assert_eq!(run(&f.prog, X64, nr("kill"), [5, 9, 0, 0, 0, 0]), EPERM);
        assert_eq!(f.flags, 0);
    }

    #[test]
    fn conditions_on_the_same_argument_are_alternatives() {
        // As runc: a repeated index splits every condition into its own rule.
        let f = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[
                    {"index":0,"value":0,"op":"SCMP_CMP_EQ"},
                    {"index":0,"value":8,"op":"SCMP_CMP_EQ"},
                    {"index":0,"value":131072,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        let nr = syscall_number("personality").unwrap();
        for v in [0, 8, 131072] {
            assert_eq!(run(&f.prog, X64, nr, [v, 0, 0, 0, 0, 0]), ALLOW, "{v}");
        }
        for v in [1, 9, 0xffff_ffff, 1 << 32] {
            assert_eq!(run(&f.prog, X64, nr, [v, 0, 0, 0, 0, 0]), EPERM, "{v}");
        }
    }

    #[test]
    fn each_architecture_is_matched_by_its_own_numbers() {
        let json = |arches: &str| {
            format!(
                r#"{{"defaultAction":"SCMP_ACT_ALLOW","architectures":[{arches}],"syscalls":[
                {{"names":["getppid","rt_sigaction"],"action":"SCMP_ACT_ERRNO","errnoRet":33}},
                {{"names":["personality"],"action":"SCMP_ACT_ERRNO","args":[{{"index":0,"value":4294967297,"op":"SCMP_CMP_EQ"}}]}}]}}"#
            )
        };
        let edom = 0x0005_0000 | 33;
        let all = profile(&json(
            r#""SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32""#,
        ));
        // x86_64: getppid is 110, and 64 is semget.
        assert_eq!(run(&all.prog, X64, 110, [0; 6]), edom);
        assert_eq!(run(&all.prog, X64, 64, [0; 6]), ALLOW);
        // i386: getppid is 64, and 110 is iopl.
        assert_eq!(run(&all.prog, AUDIT_ARCH_I386, 64, [0; 6]), edom);
        assert_eq!(run(&all.prog, AUDIT_ARCH_I386, 110, [0; 6]), ALLOW);
        // i386 arguments are 32 bits: only the low half is compared.
        assert_eq!(
            run(&all.prog, AUDIT_ARCH_I386, 136, [1, 0, 0, 0, 0, 0]),
            EPERM
        );
        assert_eq!(run(&all.prog, X64, 135, [1, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(
            run(&all.prog, X64, 135, [1 << 32 | 1, 0, 0, 0, 0, 0]),
            EPERM
        );
        // x32: its own numbers, with the x32 bit (rt_sigaction is 512 there).
        assert_eq!(run(&all.prog, X64, X32_SYSCALL_BIT | 110, [0; 6]), edom);
        assert_eq!(run(&all.prog, X64, X32_SYSCALL_BIT | 512, [0; 6]), edom);
        assert_eq!(run(&all.prog, X64, X32_SYSCALL_BIT | 13, [0; 6]), ALLOW);
        assert_eq!(run(&all.prog, X64, 13, [0; 6]), edom);

        // Not listed: killed, whatever the default action (as libseccomp's
        // default bad-arch action, which runc keeps).
        let only64 = profile(&json(r#""SCMP_ARCH_X86_64""#));
        assert_eq!(
            run(&only64.prog, AUDIT_ARCH_I386, 64, [0; 6]),
            RET_KILL_THREAD
        );
        assert_eq!(
            run(&only64.prog, AUDIT_ARCH_I386, 20, [0; 6]),
            RET_KILL_THREAD
        );
        assert_eq!(
            run(&only64.prog, X64, X32_SYSCALL_BIT | 39, [0; 6]),
            RET_KILL_THREAD
        );
        assert_eq!(run(&only64.prog, 0xc000_00b7, 172, [0; 6]), RET_KILL_THREAD);
        assert_eq!(run(&only64.prog, X64, 39, [0; 6]), ALLOW);
        // No list at all: the native architecture only.
        let none = profile(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#);
        assert_eq!(run(&none.prog, X64, 39, [0; 6]), ALLOW);
        assert_eq!(
            run(&none.prog, AUDIT_ARCH_I386, 20, [0; 6]),
            RET_KILL_THREAD
        );
    }

    #[test]
    fn flags_are_passed_and_unsupported_ones_refused() {
        let f = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW","SECCOMP_FILTER_FLAG_TSYNC"]}"#,
        );
        assert_eq!(f.flags, FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_TSYNC);
        let s: LinuxSeccomp = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
        )
        .unwrap();
        let err = compile(&s).unwrap_err().to_string();
        assert!(err.contains("WAIT_KILLABLE_RECV"), "{err}");
        // A flag nobody knows does not even parse.
        assert!(
            serde_json::from_str::<LinuxSeccomp>(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_BOGUS"]}"#
            )
            .is_err()
        );
    }

    #[test]
    fn a_large_profile_for_three_abis_fits() {
        // About the size of Docker's default profile (its allow list has ~370
        // names) for x86_64, x86 and x32.
        let names: Vec<&str> = Abi::X86_64.table().iter().map(|(n, _)| *n).collect();
        let json = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": names, "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            ]
        });
        let f = compile(&serde_json::from_value(json).unwrap()).unwrap();
        assert!(f.prog.len() < 1500, "{}", f.prog.len());
        for (abi, arch, bit) in [
            (Abi::X86_64, X64, 0),
            (Abi::X32, X64, X32_SYSCALL_BIT),
            (Abi::I386, AUDIT_ARCH_I386, 0),
        ] {
            for name in ["read", "openat", "exit_group", "waitid"] {
                let nr = abi.number(name).unwrap();
                assert_eq!(
                    run(&f.prog, arch, nr | bit, [0; 6]),
                    ALLOW,
                    "{abi:?} {name}"
                );
            }
        }
        assert_eq!(run(&f.prog, X64, 1000, [0; 6]), EPERM);
    }
}
