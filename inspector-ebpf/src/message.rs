//! Messages: the words a client (`docker: Error response from daemon: …`)
//! or a runtime writes for its user, captured as they are written, so that
//! a failure is explained even when the files are gone right after (the
//! shim deletes the bundle, log.json with it). Two streams:
//! - fd 2 of a process whose command is marked `COMM_STDERR_IS_MESSAGE`
//!   (clients and runtimes; a daemon's stderr is its log, not kept);
//! - a file named `log.json` or `oci-log` written by a process whose
//!   command is marked `COMM_WRITES_RUNTIME_LOG` (runtimes): the runtime's
//!   `--log`, as containerd's shim and `inspector run` (`log.json`) and
//!   podman (`oci-log`) name it (runc, crun and inspector-runtime write a
//!   JSON line per message there).
//!
//! Only followed processes get here (see `write`), and a bit per process
//! (`SPEAKS_BITS`) turns away all but clients and runtimes before any of
//! the file is read: what an entrypoint writes costs a bit test, and is
//! never copied.

use aya_ebpf::{
    helpers::{bpf_probe_read_kernel_buf, generated::bpf_probe_read_user},
    programs::TracePointContext,
};
use inspector_common::{
    COMM_STDERR_IS_MESSAGE, COMM_WRITES_RUNTIME_LOG, MESSAGE_LEN, MessageEvent, STREAM_RUNTIME_LOG,
    STREAM_STDERR, kind,
};

use crate::{
    kernel::{bounded, fill_header, off, read_ptr},
    maps::{EVENTS, count_lost, enabled, speaker_bits, submit_flags, wanted},
};

/// The name the runtime's log file has, with its NUL: containerd's shim and
/// `inspector run` name it `log.json`, podman (through conmon) `oci-log`.
const RUNTIME_LOG: &[u8; 9] = b"log.json\0";
const OCI_LOG: &[u8; 8] = b"oci-log\0";

/// Is `file` a runtime's log? Two reads: the dentry, then its name's first bytes.
#[inline(always)]
fn is_runtime_log(file: u64) -> bool {
    let dentry = read_ptr(file + off!(file_f_path), off!(path_dentry));
    let name = read_ptr(dentry, off!(dentry_d_name_name));
    if name == 0 {
        return false;
    }
    let mut got = [0u8; 9];
    // SAFETY: reads kernel memory into a local buffer; a fault leaves it unequal.
    if unsafe { bpf_probe_read_kernel_buf(name as *const u8, &mut got) }.is_err() {
        return false;
    }
    // As two words: a byte slice compare would be a call the verifier refuses.
    let head = u64::from_le_bytes([
        got[0], got[1], got[2], got[3], got[4], got[5], got[6], got[7],
    ]);
    &got == RUNTIME_LOG || head == u64::from_le_bytes(*OCI_LOG)
}

/// Reports this write (fd `fd`, open on `file`) if it is a message.
#[inline(always)]
pub fn capture(ctx: &TracePointContext, fd: u64, file: u64) {
    let tgid = (aya_ebpf::helpers::bpf_get_current_pid_tgid() >> 32) as u32;
    let bits = speaker_bits(tgid);
    if bits & (COMM_STDERR_IS_MESSAGE | COMM_WRITES_RUNTIME_LOG) == 0 {
        return;
    }
    let stream = if fd == 2 && bits & COMM_STDERR_IS_MESSAGE != 0 {
        STREAM_STDERR
    } else if fd != 2 && bits & COMM_WRITES_RUNTIME_LOG != 0 && is_runtime_log(file) {
        STREAM_RUNTIME_LOG
    } else {
        return;
    };
    // Last: the bit test that brought us here lets a few others by.
    if !wanted(tgid) || !enabled() {
        return;
    }
    let buf = unsafe { ctx.read_at::<u64>(24) }.unwrap_or(0);
    let count = unsafe { ctx.read_at::<u64>(32) }.unwrap_or(0);
    if buf == 0 || count == 0 {
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<MessageEvent>(0) else {
        count_lost(ctx, kind::MESSAGE);
        return;
    };
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    fill_header(&mut ev.hdr, kind::MESSAGE);
    ev.stream = stream;
    ev.fd = fd as u32;
    ev.count = count;
    ev._pad = 0;
    let mut n = count;
    if n > MESSAGE_LEN as u64 {
        n = MESSAGE_LEN as u64;
    }
    // A power-of-two mask the verifier can follow: 1..=MESSAGE_LEN bytes.
    let n = bounded((n - 1) as u32, MESSAGE_LEN as u32 - 1) + 1;
    let r = unsafe {
        bpf_probe_read_user(
            ev.text.as_mut_ptr().cast(),
            n,
            buf as *const core::ffi::c_void,
        )
    };
    ev.len = if r == 0 { n } else { 0 };
    entry.submit(submit_flags());
}
