//! Running a compiled filter the way the kernel would, for one syscall: what
//! the unit tests and the `seccomp` fuzz target check the compiler's decisions
//! with, rather than its offsets. It knows the instructions [`super::compile`]
//! emits and nothing else, so an instruction the compiler should not have
//! made is an error, not a guess.

use super::{
    BPF_AND_K, BPF_JA, BPF_JEQ_K, BPF_JGE_K, BPF_JGT_K, BPF_JSET_K, BPF_LD_W_ABS, BPF_RET_K,
};

/// Why a filter gave no verdict.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Stuck {
    #[error("instruction {pc}: unexpected code {code:#x}")]
    Instruction { pc: usize, code: u16 },
    #[error("instruction {pc}: loads offset {offset}, past seccomp_data")]
    Load { pc: usize, offset: u32 },
    #[error("ran off the end of the filter ({len} instructions)")]
    End { len: usize },
}

/// The filter's return value for syscall `nr` of ABI `arch` with `args`.
pub fn run(prog: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> Result<u32, Stuck> {
    // struct seccomp_data as 32-bit words: nr, arch, instruction pointer
    // (two words, never looked at), then each argument low word first.
    let mut data = [0u32; 16];
    data[0] = nr;
    data[1] = arch;
    for (i, a) in args.iter().enumerate() {
        data[4 + 2 * i] = *a as u32;
        data[5 + 2 * i] = (*a >> 32) as u32;
    }
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let ins = *prog.get(pc).ok_or(Stuck::End { len: prog.len() })?;
        let at = pc;
        pc += 1;
        match ins.code {
            BPF_LD_W_ABS => {
                acc = *data.get(ins.k as usize / 4).ok_or(Stuck::Load {
                    pc: at,
                    offset: ins.k,
                })?
            }
            BPF_AND_K => acc &= ins.k,
            BPF_RET_K => return Ok(ins.k),
            BPF_JA => pc = pc.saturating_add(ins.k as usize),
            BPF_JEQ_K | BPF_JGT_K | BPF_JGE_K | BPF_JSET_K => {
                let taken = match ins.code {
                    BPF_JEQ_K => acc == ins.k,
                    BPF_JGT_K => acc > ins.k,
                    BPF_JGE_K => acc >= ins.k,
                    _ => acc & ins.k != 0,
                };
                pc += if taken { ins.jt } else { ins.jf } as usize;
            }
            code => return Err(Stuck::Instruction { pc: at, code }),
        }
    }
}
