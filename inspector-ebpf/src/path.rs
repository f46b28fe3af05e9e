//! Rebuilding a path from a dentry, the way `d_path` does, within the verifier's
//! limits: at most `PATH_MAX_DEPTH` steps, components written leaf first.
//! (`bpf_d_path` is only allowed for fentry/LSM programs, which do not work here.)

use aya_ebpf::helpers::generated::bpf_probe_read_kernel_str;
use inspector_common::{PATH_INCOMPLETE, PATH_MAX_DEPTH, PATH_TRUNCATED, PathParts};

use crate::kernel::{bounded, off, read_ptr};

/// Walks from `dentry` towards the root. With `vfsmount` non-zero, crosses mount
/// points up to the root of the mount namespace; with 0, stops at the root of the
/// dentry's own filesystem (what a cgroup file path is relative to).
#[inline(always)]
pub fn walk(out: &mut PathParts, mut dentry: u64, mut vfsmount: u64) {
    // `len`, `depth` and `flags` live in the map value, read and written
    // volatile: kept in registers, their exact values would differ on every
    // path through the loop and the verifier could never prune its states.
    set(&mut out.len, 0);
    set(&mut out.depth, 0);
    set(&mut out.flags, PATH_INCOMPLETE);
    out._pad = 0;
    let buf = out.buf.as_mut_ptr();

    for _ in 0..PATH_MAX_DEPTH {
        if vfsmount != 0 {
            let mnt_root = read_ptr(vfsmount, off!(vfsmount_mnt_root));
            if dentry == mnt_root {
                // `struct mount` embeds the `struct vfsmount` at `mount_mnt`.
                let mount = vfsmount - off!(mount_mnt);
                let parent = read_ptr(mount, off!(mount_mnt_parent));
                if parent == mount || parent == 0 {
                    set(&mut out.flags, 0);
                    break;
                }
                dentry = read_ptr(mount, off!(mount_mnt_mountpoint));
                vfsmount = parent + off!(mount_mnt);
                continue;
            }
        }
        let parent = read_ptr(dentry, off!(dentry_d_parent));
        if parent == dentry || parent == 0 {
            set(&mut out.flags, 0);
            break;
        }
        let used = get(&out.len);
        if used >= 256 {
            set(&mut out.flags, PATH_TRUNCATED);
            break;
        }
        let name = read_ptr(dentry, off!(dentry_d_name_name));
        // The mask keeps the write inside `buf` for the verifier: at most
        // 255 + 256 bytes of a 512-byte buffer.
        let n = unsafe {
            bpf_probe_read_kernel_str(
                buf.add(bounded(used, 0xff) as usize).cast(),
                256,
                name as *const core::ffi::c_void,
            )
        };
        if n <= 0 {
            break;
        }
        set(&mut out.len, used + n as u32);
        let depth = get(&out.depth);
        set(&mut out.depth, depth + 1);
        dentry = parent;
    }
}

#[inline(always)]
fn get(v: &u32) -> u32 {
    unsafe { core::ptr::read_volatile(v) }
}

#[inline(always)]
fn set(v: &mut u32, value: u32) {
    unsafe { core::ptr::write_volatile(v, value) }
}

#[inline(always)]
pub fn clear(out: &mut PathParts) {
    out.len = 0;
    out.depth = 0;
    out.flags = 0;
    out._pad = 0;
}
