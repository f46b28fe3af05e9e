//! The seccomp section of a config.json becomes a classic BPF program that
//! the kernel runs on every system call of the container. Compiling any
//! section must never panic, and what it compiles must be a program the
//! kernel accepts (every jump lands inside it, every path returns) that
//! decides as the profile says: each decision is checked against a
//! reference model that reads the profile directly, rules in order.
//!
//! Input: JSON text when it starts with `{` (the seed corpus holds real
//! profiles); otherwise a profile built from the bytes (`arbitrary`), which
//! reaches rule shapes a mutated JSON text rarely does.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use runtime::linux::seccomp;
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let (profile, rest) = if data.first() == Some(&b'{') {
        // A JSON profile and, after a NUL, the bytes that choose the queries.
        let (text, rest) = match data.iter().position(|b| *b == 0) {
            Some(i) => (&data[..i], &data[i + 1..]),
            None => (data, &[][..]),
        };
        let Ok(profile) = serde_json::from_slice::<LinuxSeccomp>(text) else {
            return;
        };
        (profile, rest)
    } else {
        let mut u = Unstructured::new(data);
        let Ok(p) = Profile::arbitrary(&mut u) else {
            return;
        };
        let Ok(profile) = serde_json::from_value::<LinuxSeccomp>(p.to_json()) else {
            return;
        };
        (profile, u.take_rest())
    };
    check(&profile, &mut Unstructured::new(rest));
});

/// Names from the tables, chosen to differ between ABIs (`getppid` is 110 on
/// x86_64 and 64 on i386; `_llseek` is i386 only; `rt_sigaction` is 512 on
/// x32), plus what Docker's profile conditions on.
const NAMES: &[&str] = &[
    "read",
    "write",
    "getppid",
    "_llseek",
    "rt_sigaction",
    "personality",
    "clone",
    "clone3",
    "kill",
    "socket",
    "ioctl",
    "mkdir",
    "open",
    "openat",
    "exit_group",
    "socketcall",
    "chmod",
    "ptrace",
    "unshare",
    "setns",
    "mount",
    "semget",
    "iopl",
    "waitid",
    "execve",
    "bogus",
];

const ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];

const ARCHES: &[&str] = &[
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
];

const FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

const OPS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

#[derive(Arbitrary, Debug)]
struct Profile {
    default_action: u8,
    default_errno: Option<u16>,
    architectures: Option<Vec<u8>>,
    flags: Vec<u8>,
    syscalls: Vec<Rule>,
}

#[derive(Arbitrary, Debug)]
struct Rule {
    names: Vec<Name>,
    action: u8,
    errno: Option<u32>,
    args: Vec<Arg>,
}

#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    /// Every name of the x86_64 table, as Docker's allow list has.
    Many(u16),
    Other(String),
}

#[derive(Arbitrary, Debug)]
struct Arg {
    index: u8,
    value: u64,
    value_two: Option<u64>,
    op: u8,
}

fn pick<'a>(list: &[&'a str], i: u8) -> &'a str {
    list[i as usize % list.len()]
}

impl Profile {
    fn to_json(&self) -> Value {
        let mut v = json!({"defaultAction": pick(ACTIONS, self.default_action)});
        if let Some(e) = self.default_errno {
            v["defaultErrnoRet"] = json!(e);
        }
        if let Some(a) = &self.architectures {
            v["architectures"] = a.iter().map(|i| pick(ARCHES, *i)).collect();
        }
        if !self.flags.is_empty() {
            v["flags"] = self.flags.iter().map(|i| pick(FLAGS, *i)).collect();
        }
        let rules: Vec<Value> = self
            .syscalls
            .iter()
            .map(|r| {
                let mut names = Vec::new();
                for n in &r.names {
                    match n {
                        Name::Known(i) => names.push(pick(NAMES, *i).to_string()),
                        Name::Many(count) => {
                            // Names the x86_64 table has, without reaching into it.
                            names.extend(
                                (0..*count % 400)
                                    .map(|i| NAMES[i as usize % NAMES.len()].to_string()),
                            )
                        }
                        Name::Other(s) => names.push(s.clone()),
                    }
                }
                let mut rule = json!({"names": names, "action": pick(ACTIONS, r.action)});
                if let Some(e) = r.errno {
                    rule["errnoRet"] = json!(e);
                }
                if !r.args.is_empty() {
                    rule["args"] = r
                        .args
                        .iter()
                        .map(|a| {
                            let mut arg = json!({
                                "index": a.index % 8,
                                "value": a.value,
                                "op": pick(OPS, a.op),
                            });
                            if let Some(two) = a.value_two {
                                arg["valueTwo"] = json!(two);
                            }
                            arg
                        })
                        .collect();
                }
                rule
            })
            .collect();
        v["syscalls"] = json!(rules);
        v
    }
}

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const RET_KILL_THREAD: u32 = 0;
const MAX_INSNS: usize = 4096;

fn check(profile: &LinuxSeccomp, u: &mut Unstructured) {
    let compiled = seccomp::compile(profile);
    let refused = refused(profile);
    let filter = match compiled {
        Err(e) => {
            let e = e.to_string();
            assert!(
                refused || e.contains("instructions"),
                "refused a profile it can honour: {e}"
            );
            return;
        }
        Ok(f) => {
            assert!(!refused, "compiled a profile it cannot honour: {profile:?}");
            f
        }
    };
    let prog = &filter.prog;
    assert!(
        !prog.is_empty() && prog.len() <= MAX_INSNS,
        "{} instructions",
        prog.len()
    );
    valid(prog);
    for _ in 0..32 {
        let Ok(q) = query(profile, u) else { break };
        let got = seccomp::interpret::run(prog, q.arch, q.nr, q.args)
            .unwrap_or_else(|e| panic!("the compiled filter gives no verdict: {e}"));
        let want = reference(profile, &q);
        assert_eq!(
            got, want,
            "the filter decides {got:#x}, the profile {want:#x}, for {q:?}"
        );
    }
}

/// What compile must refuse: notify actions, the flag that needs them, and
/// an argument index past 5 in a rule that is not the default action.
fn refused(p: &LinuxSeccomp) -> bool {
    let notify = |a: LinuxSeccompAction| a == LinuxSeccompAction::ScmpActNotify;
    if notify(p.default_action())
        || p.flags().iter().flatten().any(|f| {
            *f == oci_spec::runtime::LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv
        })
    {
        return true;
    }
    let default = action(p.default_action(), p.default_errno_ret());
    p.syscalls().iter().flatten().any(|r| {
        notify(r.action())
            || (action(r.action(), r.errno_ret()) != default
                && r.args().iter().flatten().any(|a| a.index() > 5))
    })
}

/// The kernel's checks on a classic BPF program (sk_chk_filter and
/// seccomp_check_filter) that this compiler's instructions can fail.
fn valid(prog: &[libc::sock_filter]) {
    let ld = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    let ja = (libc::BPF_JMP | libc::BPF_JA) as u16;
    let and = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
    for (pc, ins) in prog.iter().enumerate() {
        let next = pc + 1;
        match ins.code {
            c if c == ld => {
                assert!(ins.k < 64 && ins.k % 4 == 0, "load of {} at {pc}", ins.k)
            }
            c if c == ret || c == and => {}
            c if c == ja => assert!(
                next + (ins.k as usize) < prog.len(),
                "ja {} at {pc} leaves the program",
                ins.k
            ),
            c if c & 0x07 == libc::BPF_JMP as u16 => assert!(
                next + (ins.jt.max(ins.jf) as usize) < prog.len(),
                "jump at {pc} leaves the program"
            ),
            c => panic!("instruction {c:#x} at {pc}"),
        }
    }
    assert_eq!(
        prog.last().unwrap().code,
        ret,
        "the program does not end in a return"
    );
}

#[derive(Debug)]
struct Query {
    arch: u32,
    nr: u32,
    args: [u64; 6],
}

/// A system call to decide: mostly one the profile names, with argument
/// values at and around its conditions' boundaries.
fn query(p: &LinuxSeccomp, u: &mut Unstructured) -> arbitrary::Result<Query> {
    let (arch, abi) = *u.choose(&[
        (AUDIT_ARCH_X86_64, Arch::ScmpArchX86_64),
        (AUDIT_ARCH_X86_64, Arch::ScmpArchX32),
        (AUDIT_ARCH_I386, Arch::ScmpArchX86),
        (0xc000_00b7, Arch::ScmpArchAarch64),
    ])?;
    let rules: Vec<_> = p.syscalls().iter().flatten().collect();
    let rule = if rules.is_empty() {
        None
    } else {
        Some(*u.choose(&rules)?)
    };
    let nr = match rule.and_then(|r| {
        let names: Vec<_> = r
            .names()
            .iter()
            .filter_map(|n| seccomp::abi_number(abi, n))
            .collect();
        (!names.is_empty()).then_some(names)
    }) {
        Some(numbers) if u.ratio(7, 8)? => *u.choose(&numbers)?,
        _ => u.arbitrary()?,
    };
    let conds: Vec<_> = rule
        .map(|r| r.args().iter().flatten().collect())
        .unwrap_or_default();
    let mut args = [0u64; 6];
    for (i, arg) in args.iter_mut().enumerate() {
        let near: Vec<u64> = conds
            .iter()
            .filter(|c| c.index() == i)
            .flat_map(|c| {
                let v = c.value();
                let two = c.value_two().unwrap_or(0);
                [
                    v,
                    v.wrapping_add(1),
                    v.wrapping_sub(1),
                    two,
                    v & two,
                    v ^ (1 << 32),
                ]
            })
            .collect();
        *arg = if !near.is_empty() && u.ratio(3, 4)? {
            *u.choose(&near)?
        } else {
            u.arbitrary()?
        };
    }
    Ok(Query { arch, nr, args })
}

/// The return value an action stands for (seccomp(2)).
fn action(a: LinuxSeccompAction, errno: Option<u32>) -> u32 {
    let errno = errno.unwrap_or(libc::EPERM as u32) & 0xffff;
    match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => 0,
        LinuxSeccompAction::ScmpActKillProcess => 0x8000_0000,
        LinuxSeccompAction::ScmpActTrap => 0x0003_0000,
        LinuxSeccompAction::ScmpActErrno => 0x0005_0000 | errno,
        LinuxSeccompAction::ScmpActTrace => 0x7ff0_0000 | errno,
        LinuxSeccompAction::ScmpActLog => 0x7ffc_0000,
        LinuxSeccompAction::ScmpActAllow => 0x7fff_0000,
        LinuxSeccompAction::ScmpActNotify => unreachable!("refused"),
    }
}

/// What the profile says, read directly (module doc of runtime::linux::seccomp):
/// an unlisted ABI is killed; otherwise the first rule, in order, whose
/// names hold the number and whose conditions hold, skipping rules with the
/// default action; conditions on one argument twice are alternatives; i386
/// compares the low 32 bits.
fn reference(p: &LinuxSeccomp, q: &Query) -> u32 {
    let arches = p.architectures().clone().unwrap_or_default();
    let abi = match q.arch {
        AUDIT_ARCH_X86_64 if q.nr & X32_SYSCALL_BIT == 0 => Arch::ScmpArchX86_64,
        AUDIT_ARCH_X86_64 if arches.contains(&Arch::ScmpArchX32) => Arch::ScmpArchX32,
        AUDIT_ARCH_I386 if arches.contains(&Arch::ScmpArchX86) => Arch::ScmpArchX86,
        _ => return RET_KILL_THREAD,
    };
    let wide = abi != Arch::ScmpArchX86;
    let default = action(p.default_action(), p.default_errno_ret());
    for r in p.syscalls().iter().flatten() {
        let act = action(r.action(), r.errno_ret());
        if act == default {
            continue;
        }
        if !r
            .names()
            .iter()
            .any(|n| seccomp::abi_number(abi, n) == Some(q.nr))
        {
            continue;
        }
        let conds: Vec<_> = r.args().iter().flatten().collect();
        let repeated = (0..6).any(|i| conds.iter().filter(|c| c.index() == i).count() > 1);
        let holds = |c: &&oci_spec::runtime::LinuxSeccompArg| {
            let narrow = |x: u64| if wide { x } else { x & 0xffff_ffff };
            let (a, v, two) = (
                narrow(q.args[c.index()]),
                narrow(c.value()),
                narrow(c.value_two().unwrap_or(0)),
            );
            match c.op() {
                LinuxSeccompOperator::ScmpCmpEq => a == v,
                LinuxSeccompOperator::ScmpCmpNe => a != v,
                LinuxSeccompOperator::ScmpCmpLt => a < v,
                LinuxSeccompOperator::ScmpCmpLe => a <= v,
                LinuxSeccompOperator::ScmpCmpGt => a > v,
                LinuxSeccompOperator::ScmpCmpGe => a >= v,
                LinuxSeccompOperator::ScmpCmpMaskedEq => a & v == two,
            }
        };
        let matched = if repeated {
            conds.iter().any(holds)
        } else {
            conds.iter().all(holds)
        };
        if matched {
            return act;
        }
    }
    default
}
