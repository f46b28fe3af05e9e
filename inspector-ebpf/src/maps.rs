//! Maps shared by the programs, and the filter that decides what is reported.

use core::intrinsics::AtomicOrdering;

use aya_ebpf::{
    EbpfContext,
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use inspector_common::{
    COMM_LEN, COMM_STDERR_IS_MESSAGE, COMM_WRITES_RUNTIME_LOG, Config, RunState, SyscallEvent,
};

/// The event stream. Userspace sets the real size at load (`--buffer-size`).
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(8 << 20, 0);

/// Events dropped because `EVENTS` was full, per CPU.
#[map]
pub static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Processes (tgid) whose events are reported: those exec'ing a binary named in
/// `TRACK_COMMS`, their descendants, and those userspace found running at start.
/// The value: the `COMM_*` bits of the command it last exec'd (see
/// `message`), `COMM_FOLLOW` alone for one not exec'd since it was followed.
#[map]
pub static TRACKED: HashMap<u32, u32> = HashMap::with_max_entries(32768, 0);

/// One bit per tgid, set for every process in `TRACKED` (and possibly for a few
/// that have left it). The hot-path programs test it before anything else: an
/// array load costs next to nothing, while a hash lookup on every write of the
/// machine measurably slows syscall-heavy processes. Userspace sizes it from
/// `pid_max`; 65536 words cover the largest pid_max Linux allows.
#[map]
pub static TRACKED_BITS: Array<u64> = Array::with_max_entries(65536, 0);

/// One bit per tgid, set for a followed process whose command's writes
/// may be messages (a client's stderr, a runtime's log: the `COMM_*` bits
/// in its `TRACKED` value). The write hook tests it before the hash: every
/// write of an entrypoint, dockerd or containerd pays a bit test, no more.
/// Sized as `TRACKED_BITS`.
#[map]
pub static SPEAKS_BITS: Array<u64> = Array::with_max_entries(65536, 0);

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

/// Processes whose exit was reported, by (tgid, start time), for kernels
/// whose `sched_process_exit` does not say which thread ended the process:
/// threads exiting together may each find it dead, and only the first to
/// add it here reports (an insert with `BPF_NOEXIST` is atomic). Start times
/// tell a reused pid apart; old entries make room for new ones.
#[map]
pub static EXITED: LruHashMap<[u64; 2], u32> = LruHashMap::with_max_entries(1024, 0);

/// Per-CPU room to build a `SyscallEvent`: it is far larger than the BPF stack.
#[map]
pub static SCRATCH: PerCpuArray<SyscallEvent> = PerCpuArray::with_max_entries(1, 0);

/// Whether the probe is on, and inspector's own tgid: written by the run of
/// inspector that owns the probe (see `RunState`).
#[map]
pub static RUN: Array<RunState> = Array::with_max_entries(1, 0);

#[unsafe(no_mangle)]
static CONFIG: Config = Config {
    trace_all: 0,
    write_results: 0,
    wakeup_bytes: 0,
    _pad: 0,
};

#[inline(always)]
fn config_trace_all() -> bool {
    unsafe { core::ptr::read_volatile(&raw const CONFIG.trace_all) != 0 }
}

#[inline(always)]
pub fn config_write_results() -> bool {
    unsafe { core::ptr::read_volatile(&raw const CONFIG.write_results) != 0 }
}

#[inline(always)]
fn self_tgid() -> u32 {
    RUN.get(0).map_or(0, |run| run.self_tgid)
}

/// Is the probe on? Between two runs of inspector its programs stay
/// attached but must neither report nor change any map. Every program asks
/// this before it does anything but read.
#[inline(always)]
pub fn enabled() -> bool {
    RUN.get(0).is_some_and(|run| run.enabled != 0)
}

/// Is this process's activity reported? The first thing every hot-path program
/// asks, so it stays one hash lookup.
#[inline(always)]
pub fn wanted(tgid: u32) -> bool {
    if tgid == self_tgid() {
        return false;
    }
    config_trace_all() || unsafe { TRACKED.get(tgid).is_some() }
}

#[inline(always)]
pub fn is_self(tgid: u32) -> bool {
    tgid == self_tgid()
}

/// Is this inspector itself, asked to report its own context switches?
#[inline(always)]
pub fn is_self_scheduled(tgid: u32) -> bool {
    RUN.get(0)
        .is_some_and(|run| run.sched_self != 0 && run.self_tgid == tgid)
}

#[inline(always)]
pub fn is_tracked(tgid: u32) -> bool {
    unsafe { TRACKED.get(tgid).is_some() }
}

/// The hot-path filter: false means "certainly not reported".
#[inline(always)]
pub fn maybe_wanted(tgid: u32) -> bool {
    if config_trace_all() {
        return tgid != self_tgid();
    }
    test_bit(&TRACKED_BITS, tgid)
}

/// Starts reporting a process, whose command's `COMM_*` bits are `bits`
/// (or says what its new command's are).
#[inline(always)]
pub fn track(tgid: u32, bits: u32) {
    let _ = TRACKED.insert(tgid, bits, 0);
    flip_bit(&TRACKED_BITS, tgid, true);
    let speaks = bits & (COMM_STDERR_IS_MESSAGE | COMM_WRITES_RUNTIME_LOG) != 0;
    flip_bit(&SPEAKS_BITS, tgid, speaks);
}

/// The `COMM_*` bits of a followed process's command, when its writes may
/// be messages (0 otherwise): a bit test, then for the few that speak, the hash.
#[inline(always)]
pub fn speaker_bits(tgid: u32) -> u32 {
    if !test_bit(&SPEAKS_BITS, tgid) {
        return 0;
    }
    unsafe { TRACKED.get(tgid) }.copied().unwrap_or(0)
}

/// Stops reporting a process that exited.
#[inline(always)]
pub fn untrack(tgid: u32) {
    let _ = TRACKED.remove(tgid);
    flip_bit(&TRACKED_BITS, tgid, false);
    flip_bit(&SPEAKS_BITS, tgid, false);
}

#[inline(always)]
fn test_bit(bitmap: &Array<u64>, tgid: u32) -> bool {
    match bitmap.get(tgid >> 6) {
        Some(word) => *word & (1u64 << (tgid & 63)) != 0,
        None => false,
    }
}

/// Sets or clears a tgid's bit with an atomic add, which BPF has on every
/// kernel (an atomic OR needs a newer instruction set). Adding is only right
/// when the bit is in the other state, which holds because a tgid's bit only
/// changes through its own fork, exec and exit, and those do not overlap.
#[inline(always)]
fn flip_bit(bitmap: &Array<u64>, tgid: u32, set: bool) {
    let Some(word) = bitmap.get_ptr_mut(tgid >> 6) else {
        return;
    };
    let bit = 1u64 << (tgid & 63);
    let is_set = unsafe { core::ptr::read_volatile(word) } & bit != 0;
    if is_set == set {
        return;
    }
    let delta = if set { bit } else { bit.wrapping_neg() };
    // SAFETY: `word` points into the map value, which outlives this call. The
    // result is unused, so this is BPF's plain atomic add (no fetch needed).
    unsafe {
        core::intrinsics::atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(word, delta);
    }
}

/// Flags for a ring buffer submit: no wake-up of the reader until a good part
/// of the buffer waits. A wake-up per event costs the reader a context switch
/// per event, on machines where the containers it watches need the CPU.
#[inline(always)]
pub fn submit_flags() -> u64 {
    let threshold = unsafe { core::ptr::read_volatile(&raw const CONFIG.wakeup_bytes) } as u64;
    if EVENTS.query(BPF_RB_AVAIL_DATA as u64) >= threshold {
        BPF_RB_FORCE_WAKEUP as u64
    } else {
        BPF_RB_NO_WAKEUP as u64
    }
}

/// Counts an event the ring buffer had no room for (userspace reports the sum).
#[inline(always)]
pub fn count_lost<C: EbpfContext>(ctx: &C, kind: u32) {
    if let Some(n) = LOST.get_ptr_mut(0) {
        unsafe { *n += 1 };
    }
    aya_log_ebpf::warn!(ctx, "ring buffer full: dropped an event of kind {}", kind);
}
