//! The inspector probe: tracepoint programs that report, for container-related
//! processes, how containers are made: processes, namespaces, mounts, the root
//! pivot and cgroups; and, when it goes wrong, why: failed calls, kills by
//! the OOM killer or seccomp, and the messages clients and runtimes write.
//!
//! Only tracepoints, raw tracepoints and kernel-memory reads are used: fentry and
//! kprobes are not available on the machines this runs on. Kernel struct offsets
//! come from userspace (read from the running kernel's BTF) through [`OFFSETS`].
#![no_std]
#![no_main]
// For an atomic add on map memory (see maps::flip_bit): the BPF target has no
// compare-and-swap, so core's Atomic types do not offer it.
#![allow(internal_features)]
#![feature(core_intrinsics)]

mod cgroup;
mod kernel;
mod kill;
mod maps;
mod message;
mod path;
mod process;
mod sched;
mod syscall;
mod write;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
