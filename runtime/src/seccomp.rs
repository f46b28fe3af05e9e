//! A small compiler from the OCI seccomp section to a classic BPF filter.
//!
//! The program checks the architecture, then tries each rule in order: the
//! syscall number, then every argument condition (64-bit values compared as
//! two 32-bit halves); the first rule that matches gives the action, and the
//! default action ends the program. Names this table does not know are skipped,
//! as runc (through libseccomp) does.

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};

use crate::{Result, error::msg, syscalls_x86_64::SYSCALLS};

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

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

pub fn syscall_number(name: &str) -> Option<u32> {
    SYSCALLS
        .binary_search_by(|(n, _)| n.cmp(&name))
        .ok()
        .map(|i| SYSCALLS[i].1)
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<u32> {
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => 0,
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

/// One argument condition; every failing path jumps to the placeholder `u8::MAX`
/// (patched to "next rule" by the caller).
fn arg_check(index: u32, op: LinuxSeccompOperator, value: u64, two: u64) -> Vec<libc::sock_filter> {
    const FAIL: u8 = u8::MAX;
    let lo = off_arg_lo(index);
    let hi = lo + 4;
    let (vhi, vlo) = ((value >> 32) as u32, value as u32);
    let mut p = Vec::new();
    match op {
        LinuxSeccompOperator::ScmpCmpEq => {
            p.push(stmt(BPF_LD_W_ABS, hi));
            p.push(jump(BPF_JEQ_K, vhi, 0, FAIL));
            p.push(stmt(BPF_LD_W_ABS, lo));
            p.push(jump(BPF_JEQ_K, vlo, 0, FAIL));
        }
        LinuxSeccompOperator::ScmpCmpNe => {
            // Fails only when both halves are equal.
            p.push(stmt(BPF_LD_W_ABS, hi));
            p.push(jump(BPF_JEQ_K, vhi, 0, 2));
            p.push(stmt(BPF_LD_W_ABS, lo));
            p.push(jump(BPF_JEQ_K, vlo, FAIL, 0));
        }
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            let (mhi, mlo) = ((value >> 32) as u32, value as u32);
            let (whi, wlo) = ((two >> 32) as u32, two as u32);
            p.push(stmt(BPF_LD_W_ABS, hi));
            p.push(stmt(BPF_AND_K, mhi));
            p.push(jump(BPF_JEQ_K, whi, 0, FAIL));
            p.push(stmt(BPF_LD_W_ABS, lo));
            p.push(stmt(BPF_AND_K, mlo));
            p.push(jump(BPF_JEQ_K, wlo, 0, FAIL));
        }
        LinuxSeccompOperator::ScmpCmpGt
        | LinuxSeccompOperator::ScmpCmpGe
        | LinuxSeccompOperator::ScmpCmpLt
        | LinuxSeccompOperator::ScmpCmpLe => {
            // hi > vhi decides; hi == vhi compares the low halves.
            let greater = matches!(
                op,
                LinuxSeccompOperator::ScmpCmpGt | LinuxSeccompOperator::ScmpCmpGe
            );
            let lo_op = match op {
                LinuxSeccompOperator::ScmpCmpGt | LinuxSeccompOperator::ScmpCmpLe => BPF_JGT_K,
                _ => BPF_JGE_K,
            };
            p.push(stmt(BPF_LD_W_ABS, hi));
            if greater {
                p.push(jump(BPF_JGT_K, vhi, 3, 0)); // pass: skip to the end
                p.push(jump(BPF_JEQ_K, vhi, 0, FAIL));
                p.push(stmt(BPF_LD_W_ABS, lo));
                p.push(jump(lo_op, vlo, 0, FAIL));
            } else {
                p.push(jump(BPF_JGT_K, vhi, FAIL, 0));
                p.push(jump(BPF_JEQ_K, vhi, 0, 2)); // hi < vhi: pass
                p.push(stmt(BPF_LD_W_ABS, lo));
                p.push(jump(lo_op, vlo, FAIL, 0));
            }
        }
    }
    p
}

/// Compiles the filter. Fails on actions and architectures we cannot honour.
pub fn compile(s: &LinuxSeccomp) -> Result<Vec<libc::sock_filter>> {
    let default = action(s.default_action(), s.default_errno_ret())?;
    let mut prog = vec![
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(BPF_RET_K, default),
        stmt(BPF_LD_W_ABS, OFF_NR),
        // The x32 ABI shares the architecture value: give it the default action.
        jump(BPF_JSET_K, X32_SYSCALL_BIT, 0, 1),
        stmt(BPF_RET_K, default),
    ];
    for rule in s.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret())?;
        if act == default {
            continue;
        }
        for name in rule.names() {
            let Some(nr) = syscall_number(name) else {
                continue;
            };
            let mut block = vec![stmt(BPF_LD_W_ABS, OFF_NR), jump(BPF_JEQ_K, nr, 0, u8::MAX)];
            for a in rule.args().iter().flatten() {
                if a.index() > 5 {
                    return Err(msg(format!(
                        "seccomp: argument index {} out of range",
                        a.index()
                    )));
                }
                block.extend(arg_check(
                    a.index() as u32,
                    a.op(),
                    a.value(),
                    a.value_two().unwrap_or(0),
                ));
            }
            block.push(stmt(BPF_RET_K, act));
            // Patch every FAIL jump to land just past this block (the next rule).
            let len = block.len();
            for (i, ins) in block.iter_mut().enumerate() {
                let to_end = (len - i - 1) as u8;
                if ins.jt == u8::MAX {
                    ins.jt = to_end;
                }
                if ins.jf == u8::MAX {
                    ins.jf = to_end;
                }
            }
            prog.extend(block);
        }
    }
    prog.push(stmt(BPF_RET_K, default));
    if prog.len() > 4096 {
        return Err(msg(format!(
            "seccomp: filter too long ({} instructions)",
            prog.len()
        )));
    }
    let _ = BPF_JA;
    Ok(prog)
}

/// Installs the filter for this process and its children.
pub fn load(prog: &[libc::sock_filter]) -> Result<()> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: a valid program that outlives the call.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &fprog as *const _ as libc::c_ulong,
            0,
            0,
        )
    };
    if rc < 0 {
        return Err(msg(format!(
            "cannot load the seccomp filter: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(syscall_number("read"), Some(0));
        assert_eq!(syscall_number("openat2"), Some(437));
        assert_eq!(syscall_number("no_such_call"), None);
    }

    #[test]
    fn compiles_rules_with_arguments() {
        let s: LinuxSeccomp = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["read","write","bogus"],"action":"SCMP_ACT_ALLOW"},
                {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
                {"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
        )
        .unwrap();
        let prog = compile(&s).unwrap();
        assert_eq!(prog.last().unwrap().k, 0x0005_0000 | libc::EPERM as u32);
        // Every jump stays inside the program.
        for (i, ins) in prog.iter().enumerate() {
            if ins.code & 0x07 == libc::BPF_JMP as u16 {
                assert!(i + 1 + (ins.jt as usize) < prog.len());
                assert!(i + 1 + (ins.jf as usize) < prog.len());
            }
        }
    }
}
