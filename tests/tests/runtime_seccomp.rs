//! seccomp profiles under `inspector-runtime run` mean what they mean under
//! runc: real system calls made inside containers, each against a rule whose
//! old reading let it through — two conditions on one argument, a 32-bit call
//! through `int $0x80`, the `flags` field.

use std::{path::Path, process::Command};

use serde_json::{Value, json};
use tests::runtime::{Bundle, Runtime, run_ok};
use tests::{Need, ready};

/// getppid through both system call entries a 64-bit process has: the x86_64
/// `syscall` instruction (number 110) and the i386 `int $0x80` gate (number
/// 64, seen by seccomp as AUDIT_ARCH_I386). Freestanding, so only gcc is needed.
const ABI_HELPER: &str = r#"
static long sys_x86_64(long nr, long a, long b, long c) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}
static long sys_i386(long nr) {
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr) : "r8", "r9", "r10", "r11", "memory");
    return (int)ret;
}
static void say(const char *label, long v) {
    char buf[64], digits[24];
    int n = 0, d = 0;
    while (*label) buf[n++] = *label++;
    if (v < 0) { buf[n++] = '-'; v = -v; }
    do { digits[d++] = '0' + v % 10; v /= 10; } while (v);
    while (d) buf[n++] = digits[--d];
    buf[n++] = '\n';
    sys_x86_64(1, 1, (long)buf, n);
}
void _start(void) {
    say("x86_64=", sys_x86_64(110, 0, 0, 0));
    say("i386=", sys_i386(64));
    sys_x86_64(231, 0, 0, 0);
    for (;;) {}
}
"#;

/// Builds the helper into `dest`; false (after `require`) when it cannot be
/// built or this kernel has no 32-bit entry (`ia32_emulation`).
fn build_abi_helper(dest: &Path) -> bool {
    let src = dest.with_extension("c");
    std::fs::write(&src, ABI_HELPER).unwrap();
    let built = Command::new("gcc")
        .args([
            "-static",
            "-nostdlib",
            "-O2",
            "-fno-stack-protector",
            "-mgeneral-regs-only",
            "-o",
        ])
        .arg(dest)
        .arg(&src)
        .status()
        .is_ok_and(|s| s.success());
    let _ = std::fs::remove_file(&src);
    if !tests::require(built, "gcc, to build a static int $0x80 helper") {
        return false;
    }
    // Unfiltered, both entries must give the same parent pid.
    let out = Command::new(dest).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut values = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(_, v)| v);
    let (a, b) = (values.next(), values.next());
    tests::require(
        out.status.success() && a.is_some() && a == b,
        "the kernel's 32-bit system call entry (CONFIG_IA32_EMULATION, not ia32_emulation=0)",
    )
}

/// Denies getppid with EDOM (33) under a default-allow profile listing `arches`,
/// and runs the helper in the container: its output and exit status.
fn getppid_denied(name: &str, arches: Value) -> Option<String> {
    if !ready(&[Need::Root, Need::Runtime]) {
        return None;
    }
    let rt = Runtime::new(name);
    let b = Bundle::new(name, &["sh", "-c", "/bin/abi; echo status=$?"]);
    if !build_abi_helper(&b.rootfs().join("bin/abi")) {
        return None;
    }
    let mut b = b;
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": arches,
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33}]
    });
    b.save();
    let (code, out, err) = rt.run(&b);
    assert_eq!(code, 0, "run failed: {out}{err}");
    rt.assert_nothing_left(&b);
    Some(out)
}

/// Hole: the filter compared every call with x86_64 numbers and gave other
/// architectures the default action, so under a default-allow profile a
/// 64-bit process reached a denied call through `int $0x80`. With
/// SCMP_ARCH_X86 listed, the i386 call is now matched by its i386 number.
#[test]
fn a_denied_call_made_through_int_0x80_is_denied_too() {
    let Some(out) = getppid_denied("seccomp-i386", json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]))
    else {
        return;
    };
    assert_eq!(out, "x86_64=-33\ni386=-33\nstatus=0\n");
}

/// An architecture the profile does not list gets libseccomp's bad-arch
/// action, as under runc: the calling thread is killed (SIGSYS, 128+31).
#[test]
fn a_call_from_an_architecture_the_profile_does_not_list_kills_the_caller() {
    let Some(out) = getppid_denied("seccomp-badarch", json!(["SCMP_ARCH_X86_64"])) else {
        return;
    };
    assert_eq!(out, "x86_64=-33\nstatus=159\n");
}

/// Hole: every condition of a rule was AND'ed, so two conditions on one
/// argument (mode 0700 or mode 0705) could never both hold and the rule never
/// fired. As in runc, they are now alternatives. busybox's chmod makes the
/// call (chmod, or fchmodat where the libc uses it: both are ruled).
#[test]
fn a_rule_with_two_conditions_on_one_argument_matches_either() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let either = |index: u32| {
        json!([
            {"index": index, "value": 0o700, "op": "SCMP_CMP_EQ"},
            {"index": index, "value": 0o705, "op": "SCMP_CMP_EQ"}
        ])
    };
    let out = run_ok(
        "seccomp-or",
        "busybox touch /tmp/f; for m in 700 705 755 711; do busybox chmod $m /tmp/f 2>/dev/null && echo $m=ok || echo $m=denied; done",
        |c| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [
                    {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "args": either(1)},
                    {"names": ["fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO", "args": either(2)}
                ]
            });
        },
    );
    assert_eq!(out, "700=denied\n705=denied\n755=ok\n711=ok\n");
}

/// Kernel log lines of seccomp denying busybox's mkdir with an errno: only
/// logged when the filter has SECCOMP_FILTER_FLAG_LOG.
fn logged_mkdir_denials() -> usize {
    let out = Command::new("dmesg").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            l.contains("type=1326")
                && l.contains("exe=\"/bin/busybox\"")
                && (l.contains("syscall=83 ") || l.contains("syscall=258 "))
                && l.contains("code=0x50000")
        })
        .count()
}

/// `flags` reach seccomp(2): a profile with SECCOMP_FILTER_FLAG_LOG (and the
/// other two supported flags) loads, is in force, and its errno denial is
/// logged by the kernel (without the flag, only kills are).
#[test]
fn a_profile_with_supported_flags_loads_and_is_in_force() {
    if !ready(&[Need::Root, Need::Runtime])
        || !tests::require(
            Command::new("dmesg")
                .output()
                .is_ok_and(|o| o.status.success()),
            "dmesg, to read the kernel log",
        )
    {
        return;
    }
    let before = logged_mkdir_denials();
    let out = run_ok(
        "seccomp-flags",
        "mkdir /tmp/d 2>/dev/null; echo mkdir=$?; grep Seccomp: /proc/self/status",
        |c| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
            });
        },
    );
    assert_eq!(out, "mkdir=1\nSeccomp:\t2\n");
    // kauditd prints asynchronously.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while logged_mkdir_denials() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "the denial was not logged: SECCOMP_FILTER_FLAG_LOG was not applied"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A flag the runtime does not know, or cannot honour, is refused by
/// `create` with its name, and nothing is left behind.
#[test]
fn an_unknown_or_unsupported_seccomp_flag_is_refused_at_create() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    for flag in [
        "SECCOMP_FILTER_FLAG_BOGUS",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    ] {
        let rt = Runtime::new("seccomp-badflag");
        let mut b = Bundle::new("seccomp-badflag", &["true"]);
        b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [flag]});
        b.save();
        let out = rt.out(&["create", "--bundle", b.path().to_str().unwrap(), &b.id]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag} was accepted");
        assert!(
            err.contains(flag) && err.contains("config.json"),
            "{flag}: {err}"
        );
        rt.assert_nothing_left(&b);
    }
}
