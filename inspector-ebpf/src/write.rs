//! `write(fd, buf, count)`, on the hot path of every process on the machine:
//! a bit test (`maybe_wanted`) before anything else, then the fd's file
//! decides what the write is: a cgroup controller write
//! ([`cgroup::controller_write`]), a message ([`message::capture`]), or
//! nothing (almost always), without copying a byte.

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext,
};
use inspector_common::{CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC};

use crate::{
    cgroup,
    kernel::{fd_file, file_identity},
    maps::maybe_wanted,
    message,
};

#[tracepoint]
pub fn insp_write_enter(ctx: TracePointContext) -> i32 {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if !maybe_wanted(tgid) {
        return 0;
    }
    let fd = unsafe { ctx.read_at::<u64>(16) }.unwrap_or(u64::MAX);
    let file = fd_file(fd);
    if file == 0 {
        return 0;
    }
    let (magic, dev, _ino) = file_identity(file);
    if magic == CGROUP_SUPER_MAGIC || magic == CGROUP2_SUPER_MAGIC {
        cgroup::controller_write(&ctx, fd, file, magic, dev);
    } else {
        message::capture(&ctx, fd, file);
    }
    0
}
