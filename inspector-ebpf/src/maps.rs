//! Maps shared by the programs, and the filter that decides what is reported.

use aya_ebpf::{
    macros::map,
    maps::{HashMap, PerCpuArray, RingBuf},
};
use inspector_common::{COMM_LEN, Config, SyscallEvent};

/// The event stream. Userspace sets the real size at load (`--buffer-size`).
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(8 << 20, 0);

/// Events dropped because `EVENTS` was full, per CPU.
#[map]
pub static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Processes (tgid) whose events are reported: those exec'ing a binary named in
/// `TRACK_COMMS`, their descendants, and those userspace found running at start.
#[map]
pub static TRACKED: HashMap<u32, u32> = HashMap::with_max_entries(32768, 0);

/// Command names (as `comm`, NUL padded) that start tracking when exec'd.
#[map]
pub static TRACK_COMMS: HashMap<[u8; COMM_LEN], u32> = HashMap::with_max_entries(64, 0);

/// clone flags of the clone/clone3 each thread (tid) is in, so that the fork
/// event, raised in the middle of the syscall, can carry them.
#[map]
pub static CLONE_FLAGS: HashMap<u32, u64> = HashMap::with_max_entries(8192, 0);

/// Syscalls entered but not yet returned, by tid.
#[map]
pub static PENDING: HashMap<u32, SyscallEvent> = HashMap::with_max_entries(4096, 0);

/// Per-CPU room to build a `SyscallEvent`: it is far larger than the BPF stack.
#[map]
pub static SCRATCH: PerCpuArray<SyscallEvent> = PerCpuArray::with_max_entries(1, 0);

#[unsafe(no_mangle)]
static CONFIG: Config = Config {
    trace_all: 0,
    self_tgid: 0,
};

#[inline(always)]
fn config_trace_all() -> bool {
    unsafe { core::ptr::read_volatile(&raw const CONFIG.trace_all) != 0 }
}

#[inline(always)]
fn config_self_tgid() -> u32 {
    unsafe { core::ptr::read_volatile(&raw const CONFIG.self_tgid) }
}

/// Is this process's activity reported? The first thing every hot-path program
/// asks, so it stays one hash lookup.
#[inline(always)]
pub fn wanted(tgid: u32) -> bool {
    if tgid == config_self_tgid() {
        return false;
    }
    config_trace_all() || unsafe { TRACKED.get(&tgid).is_some() }
}

#[inline(always)]
pub fn is_self(tgid: u32) -> bool {
    tgid == config_self_tgid()
}

#[inline(always)]
pub fn is_tracked(tgid: u32) -> bool {
    unsafe { TRACKED.get(&tgid).is_some() }
}

#[inline(always)]
pub fn count_lost() {
    if let Some(n) = LOST.get_ptr_mut(0) {
        unsafe { *n += 1 };
    }
}
