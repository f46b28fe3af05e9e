//! Device rules on pure cgroup2, where there is no `devices` controller: the
//! kernel asks a `BPF_PROG_TYPE_CGROUP_DEVICE` program attached to the cgroup
//! instead. Without one, a container with CAP_MKNOD (Docker's default) could
//! `mknod` a host disk and open it.
//!
//! The rules keep cgroup v1's meaning exactly: [`Policy`] replays the same
//! `devices.allow`/`devices.deny` lines that v1 writes (see `v1::device_rule`
//! and `v1::ALWAYS_ALLOWED`) the way the kernel's v1 controller does
//! (security/device_cgroup.c): `a` switches the default and clears the
//! exceptions; a rule against the default adds an exception (merging access
//! bits with an identical one); a rule with the default removes access bits
//! from an identical exception only, so a deny never punches a hole in a
//! wildcard. It starts from "deny everything", as runc does; a request is then
//! allowed when one exception covers all of its access bits (default deny), or
//! when no exception shares any of its bits (default allow).
//!
//! The program, assembled here (no compiler needed), is that decision:
//!
//! ```text
//!   r2 = ctx->access_type; r3 = r2 & 0xffff (block 1 / char 2); r2 >>= 16 (m 1, r 2, w 4)
//!   r4 = ctx->major; r5 = ctx->minor
//!   per exception:  if r3 != type goto next; [if r4 != major goto next]; [if r5 != minor goto next]
//!                   r1 = r2 & ~access (default deny) / r2 & access (default allow)
//!                   if r1 != 0 / == 0 goto next; return !default
//!   return default
//! ```
//!
//! It is loaded with bpf(2) and attached to the container's cgroup with
//! `BPF_F_ALLOW_MULTI`, so a nested cgroup can add its own program but never
//! lift this one. Removing the cgroup releases the program.

use std::{os::fd::AsRawFd, path::Path};

use crate::{Result, error::msg};

const DEV_BLOCK: u8 = 1;
const DEV_CHAR: u8 = 2;
const ACC_MKNOD: u8 = 1;
const ACC_READ: u8 = 2;
const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// One v1 exception: a device type, numbers (`None` = `*`) and access bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Exception {
    typ: u8,
    major: Option<u32>,
    minor: Option<u32>,
    access: u8,
}

/// What a cgroup v1 `devices` controller would hold after the same writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    default_allow: bool,
    exceptions: Vec<Exception>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::deny_all()
    }
}

impl Policy {
    pub fn deny_all() -> Policy {
        Policy {
            default_allow: false,
            exceptions: Vec::new(),
        }
    }

    /// Applies one line as if written to `devices.allow` (`allow`) or
    /// `devices.deny`, e.g. `c 1:3 rwm`, `b *:* m`, `a`.
    pub fn apply(&mut self, allow: bool, line: &str) -> Result<()> {
        let bad = |why: &str| msg(format!("device rule {line:?}: {why}"));
        let mut chars = line.trim().chars();
        let typ = match chars.next() {
            Some('a') => {
                // As the kernel: `a` alone decides, whatever follows.
                self.default_allow = allow;
                self.exceptions.clear();
                return Ok(());
            }
            Some('b') => DEV_BLOCK,
            Some('c') => DEV_CHAR,
            // A fifo never reaches the device hook: nothing to enforce.
            Some('p') => return Ok(()),
            _ => return Err(bad("the type must be a, b, c or p")),
        };
        let rest = chars.as_str();
        let mut fields = rest.split_whitespace();
        let (major, minor) = fields
            .next()
            .and_then(|n| n.split_once(':'))
            .ok_or_else(|| bad("expected MAJOR:MINOR after the type"))?;
        let number = |n: &str| -> Result<Option<u32>> {
            if n == "*" {
                return Ok(None);
            }
            n.parse()
                .map(Some)
                .map_err(|_| bad("a device number must be * or 0 to 4294967295"))
        };
        let mut access = 0;
        for c in fields.next().unwrap_or("").chars() {
            access |= match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                _ => return Err(bad("access may only hold r, w and m")),
            };
        }
        let ex = Exception {
            typ,
            major: number(major)?,
            minor: number(minor)?,
            access,
        };
        let same = |e: &Exception| e.typ == ex.typ && e.major == ex.major && e.minor == ex.minor;
        if allow == self.default_allow {
            // Takes access away from an identical exception only.
            for e in self.exceptions.iter_mut().filter(|e| same(e)) {
                e.access &= !ex.access;
            }
            self.exceptions.retain(|e| e.access != 0);
        } else if let Some(e) = self.exceptions.iter_mut().find(|e| same(e)) {
            e.access |= ex.access;
        } else if ex.access != 0 {
            self.exceptions.push(ex);
        }
        Ok(())
    }

    /// The kernel's v1 decision for one request (`access` in ACC_* bits).
    pub fn permits(&self, typ: u8, major: u32, minor: u32, access: u8) -> bool {
        let mut matching = self.exceptions.iter().filter(|e| {
            e.typ == typ && e.major.is_none_or(|m| m == major) && e.minor.is_none_or(|m| m == minor)
        });
        if self.default_allow {
            !matching.any(|e| e.access & access != 0)
        } else {
            matching.any(|e| access & !e.access == 0)
        }
    }

    /// The eBPF program (see the module's documentation for its layout).
    pub fn program(&self) -> Vec<Insn> {
        let (r0, r1, r2, r3, r4, r5) = (0, 1, 2, 3, 4, 5);
        let mut p = vec![
            Insn::ldx_w(r2, r1, 0),
            Insn::mov_reg(r3, r2),
            Insn::and_imm(r3, 0xffff),
            Insn::rsh_imm(r2, 16),
            Insn::ldx_w(r4, r1, 4),
            Insn::ldx_w(r5, r1, 8),
        ];
        let verdict = i32::from(!self.default_allow);
        for e in &self.exceptions {
            let mut block = vec![Insn::jne_imm(r3, u32::from(e.typ), NEXT)];
            if let Some(m) = e.major {
                block.push(Insn::jne_imm(r4, m, NEXT));
            }
            if let Some(m) = e.minor {
                block.push(Insn::jne_imm(r5, m, NEXT));
            }
            block.push(Insn::mov_reg(r1, r2));
            if self.default_allow {
                // A deny exception: any shared access bit matches.
                block.push(Insn::and_imm(r1, i32::from(e.access)));
                block.push(Insn::jeq_imm(r1, 0, NEXT));
            } else {
                // An allow exception: it must cover every requested bit.
                block.push(Insn::and_imm(r1, i32::from(!e.access & ACC_ALL)));
                block.push(Insn::jne_imm(r1, 0, NEXT));
            }
            block.push(Insn::mov_imm(r0, verdict));
            block.push(Insn::exit());
            let len = block.len();
            for (i, ins) in block.iter_mut().enumerate() {
                if ins.off == NEXT {
                    ins.off = (len - i - 1) as i16;
                }
            }
            p.extend(block);
        }
        p.push(Insn::mov_imm(r0, i32::from(self.default_allow)));
        p.push(Insn::exit());
        p
    }
}

/// Placeholder jump offset: "go to the next exception", patched per block.
const NEXT: i16 = i16::MIN;

/// One eBPF instruction, as `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes: class | op | source (or size and mode for loads: W is 0).
const BPF_LDX_MEM_W: u8 = 0x01 | 0x60;
const BPF_ALU64_MOV_X: u8 = 0x07 | 0xb0 | 0x08;
const BPF_ALU64_MOV_K: u8 = 0x07 | 0xb0;
const BPF_ALU64_AND_K: u8 = 0x07 | 0x50;
const BPF_ALU64_RSH_K: u8 = 0x07 | 0x70;
// JMP32: compares the low 32 bits, so a number above i32::MAX is not sign-extended.
const BPF_JMP32_JNE_K: u8 = 0x06 | 0x50;
const BPF_JMP32_JEQ_K: u8 = 0x06 | 0x10;
const BPF_EXIT: u8 = 0x05 | 0x90;

impl Insn {
    fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (src << 4) | dst,
            off,
            imm,
        }
    }
    fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(BPF_LDX_MEM_W, dst, src, off, 0)
    }
    fn mov_reg(dst: u8, src: u8) -> Insn {
        Insn::new(BPF_ALU64_MOV_X, dst, src, 0, 0)
    }
    fn mov_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU64_MOV_K, dst, 0, 0, imm)
    }
    fn and_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU64_AND_K, dst, 0, 0, imm)
    }
    fn rsh_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU64_RSH_K, dst, 0, 0, imm)
    }
    fn jne_imm(dst: u8, imm: u32, off: i16) -> Insn {
        Insn::new(BPF_JMP32_JNE_K, dst, 0, off, imm as i32)
    }
    fn jeq_imm(dst: u8, imm: u32, off: i16) -> Insn {
        Insn::new(BPF_JMP32_JEQ_K, dst, 0, off, imm as i32)
    }
    fn exit() -> Insn {
        Insn::new(BPF_EXIT, 0, 0, 0, 0)
    }
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The BPF_PROG_LOAD part of `union bpf_attr`, up to expected_attach_type.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The BPF_PROG_ATTACH part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::result::Result<i64, nix::errno::Errno> {
    // SAFETY: attr is a plain #[repr(C)] prefix of union bpf_attr, valid for
    // its size, and every pointer in it outlives the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(nix::errno::Errno::last())
    } else {
        Ok(rc)
    }
}

fn load(prog: &[Insn], log: Option<&mut Vec<u8>>) -> std::result::Result<i64, nix::errno::Errno> {
    // No helper is called, so the license only labels the program.
    let license = c"GPL";
    let mut name = [0u8; 16];
    name[..13].copy_from_slice(b"container_dev");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    if let Some(buf) = log {
        attr.log_level = 1;
        attr.log_size = buf.len() as u32;
        attr.log_buf = buf.as_mut_ptr() as u64;
    }
    bpf(BPF_PROG_LOAD, &mut attr)
}

/// Loads the policy's program and attaches it to the cgroup directory `dir`.
pub fn attach(dir: &Path, policy: &Policy) -> Result<()> {
    let prog = policy.program();
    let prog_fd = match load(&prog, None) {
        Ok(fd) => fd,
        Err(e) => {
            // Again with the verifier's log, to say why.
            let mut log = vec![0u8; 64 * 1024];
            let _ = load(&prog, Some(&mut log));
            let text = String::from_utf8_lossy(&log);
            let text = text.trim_end_matches('\0').trim();
            return Err(msg(format!(
                "cannot load the device filter for cgroup {}: {e}{}{text}",
                dir.display(),
                if text.is_empty() { "" } else { ": " }
            )));
        }
    };
    // SAFETY: bpf(2) just returned this new descriptor, owned by nothing else.
    let prog_fd =
        unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(prog_fd as i32) };
    let cgroup = std::fs::File::open(dir).map_err(|e| {
        msg(format!(
            "cannot attach the device filter to cgroup {}: {e}",
            dir.display()
        ))
    })?;
    let mut attr = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|e| {
        msg(format!(
            "cannot attach the device filter to cgroup {}: {e}",
            dir.display()
        ))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program on one request with an interpreter of exactly the
    /// instructions `program` emits.
    fn run(prog: &[Insn], typ: u8, major: u32, minor: u32, access: u8) -> bool {
        let ctx = [(u32::from(access) << 16) | u32::from(typ), major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                BPF_LDX_MEM_W => {
                    assert_eq!(src, 1, "loads come from the context");
                    r[dst] = u64::from(ctx[i.off as usize / 4]);
                }
                BPF_ALU64_MOV_X => r[dst] = r[src],
                BPF_ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
                BPF_ALU64_AND_K => r[dst] &= i.imm as i64 as u64,
                BPF_ALU64_RSH_K => r[dst] >>= i.imm,
                BPF_JMP32_JNE_K | BPF_JMP32_JEQ_K => {
                    let eq = r[dst] as u32 == i.imm as u32;
                    if eq == (i.code == BPF_JMP32_JEQ_K) {
                        pc = (pc as isize + i.off as isize) as usize;
                    }
                }
                BPF_EXIT => return r[0] != 0,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    fn policy(rules: &[(bool, &str)]) -> Policy {
        let mut p = Policy::deny_all();
        for (allow, line) in rules {
            p.apply(*allow, line).unwrap();
        }
        p
    }

    /// The program and the v1 model agree on every request in a grid around
    /// the rules' numbers.
    fn agrees(p: &Policy) {
        let prog = p.program();
        for typ in [DEV_BLOCK, DEV_CHAR] {
            for major in [0, 1, 5, 8, 136, 254, 4095, u32::MAX] {
                for minor in [0, 1, 3, 5, 9, 42] {
                    for access in 1..=ACC_ALL {
                        assert_eq!(
                            run(&prog, typ, major, minor, access),
                            p.permits(typ, major, minor, access),
                            "{p:?}: {typ} {major}:{minor} access {access}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn docker_like_rules_allow_only_what_they_list() {
        let mut rules = vec![(false, "a *:* rwm")];
        rules.extend(super::super::v1::ALWAYS_ALLOWED.iter().map(|r| (true, *r)));
        let p = policy(&rules);
        agrees(&p);
        // mknod of anything; /dev/null and the ptys opened; a disk never opened.
        assert!(p.permits(DEV_BLOCK, 8, 0, ACC_MKNOD));
        assert!(!p.permits(DEV_BLOCK, 8, 0, ACC_READ));
        assert!(!p.permits(DEV_BLOCK, 254, 0, ACC_READ | ACC_WRITE));
        assert!(p.permits(DEV_CHAR, 1, 3, ACC_READ | ACC_WRITE));
        assert!(p.permits(DEV_CHAR, 136, 42, ACC_READ | ACC_WRITE));
        assert!(!p.permits(DEV_CHAR, 1, 1, ACC_READ)); // /dev/mem
        // Nothing allowed: a deny-all program.
        let none = policy(&[]);
        agrees(&none);
        assert!(!none.permits(DEV_CHAR, 1, 3, ACC_READ));
    }

    #[test]
    fn access_bits_must_all_be_granted_by_one_rule() {
        let p = policy(&[(true, "b 8:0 r"), (true, "b 8:* w")]);
        agrees(&p);
        assert!(p.permits(DEV_BLOCK, 8, 0, ACC_READ));
        assert!(p.permits(DEV_BLOCK, 8, 0, ACC_WRITE));
        // As v1: no single exception covers both.
        assert!(!p.permits(DEV_BLOCK, 8, 0, ACC_READ | ACC_WRITE));
        // Rules on the same device merge.
        let merged = policy(&[(true, "b 8:0 r"), (true, "b 8:0 w")]);
        assert!(merged.permits(DEV_BLOCK, 8, 0, ACC_READ | ACC_WRITE));
        agrees(&merged);
    }

    #[test]
    fn a_deny_takes_away_only_from_the_identical_rule() {
        // Does not punch a hole in the wildcard (v1 semantics)...
        let p = policy(&[(true, "c *:* rwm"), (false, "c 1:3 w")]);
        agrees(&p);
        assert!(p.permits(DEV_CHAR, 1, 3, ACC_WRITE));
        // ...but trims an identical one.
        let q = policy(&[(true, "c 1:3 rwm"), (false, "c 1:3 w")]);
        agrees(&q);
        assert!(q.permits(DEV_CHAR, 1, 3, ACC_READ));
        assert!(!q.permits(DEV_CHAR, 1, 3, ACC_WRITE));
        let gone = policy(&[(true, "c 1:3 rw"), (false, "c 1:3 rwm")]);
        assert_eq!(gone, Policy::deny_all());
    }

    #[test]
    fn allow_all_then_deny_is_a_deny_list() {
        let p = policy(&[(true, "a"), (false, "b 8:* rw"), (false, "c 1:1 r")]);
        agrees(&p);
        assert!(p.permits(DEV_BLOCK, 8, 0, ACC_MKNOD));
        assert!(!p.permits(DEV_BLOCK, 8, 3, ACC_READ | ACC_MKNOD)); // shares r
        assert!(p.permits(DEV_CHAR, 1, 1, ACC_WRITE));
        assert!(!p.permits(DEV_CHAR, 1, 1, ACC_READ));
        assert!(p.permits(DEV_BLOCK, 9, 0, ACC_ALL));
        // And `a` on the deny side clears it all again.
        let q = policy(&[(true, "a"), (false, "b 8:* rw"), (false, "a 1:2 r")]);
        assert_eq!(q, Policy::deny_all());
    }

    #[test]
    fn malformed_lines_are_named() {
        let mut p = Policy::deny_all();
        for bad in ["x 1:3 rwm", "c 1 rwm", "c 1:x rw", "c 1:3 rwx", ""] {
            let err = p.apply(true, bad).unwrap_err().to_string();
            assert!(err.contains("device rule"), "{bad}: {err}");
        }
        // Fifos never reach the hook.
        p.apply(true, "p 1:2 rwm").unwrap();
        assert_eq!(p, Policy::deny_all());
    }

    #[test]
    fn numbers_above_i32_compare_as_unsigned() {
        let p = policy(&[(true, "c 4294967295:3 r")]);
        agrees(&p);
        assert!(run(&p.program(), DEV_CHAR, u32::MAX, 3, ACC_READ));
    }
}
