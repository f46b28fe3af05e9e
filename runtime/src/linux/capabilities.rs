//! The five capability sets: bounding (prctl), effective/permitted/inheritable
//! (capset), ambient (prctl).
//!
//! Names and numbers come from the `caps` crate. The sets are still changed
//! with prctl and one capset here: `caps::set` changes one set per call
//! (reading the others back first), while runc, and this runtime, give the
//! kernel effective, permitted and inheritable together, so no order of
//! single-set calls has to be found that the kernel accepts at every step.

use std::collections::HashSet;

use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::{Result, error::msg};

/// The kernel's number of a capability named as config.json names it
/// (`CAP_KILL`), by the `caps` crate's table.
pub fn number(name: &str) -> Option<u32> {
    name.parse::<caps::Capability>()
        .ok()
        .map(|c| u32::from(c.index()))
}

/// The name of capability `number`, for errors; `?` for one newer than the table.
fn name(number: u32) -> String {
    caps::all()
        .into_iter()
        .find(|c| u32::from(c.index()) == number)
        .map_or_else(|| "?".to_string(), |c| c.to_string())
}

fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

fn set(caps: &Option<Capabilities>) -> HashSet<u32> {
    caps.iter()
        .flatten()
        // oci-spec writes `KILL` for CAP_KILL.
        .filter_map(|c| number(&format!("CAP_{c}")))
        .collect()
}

fn mask(set: &HashSet<u32>) -> u64 {
    set.iter().filter(|&&c| c < 64).fold(0, |m, c| m | (1 << c))
}

/// Drops the bounding set to what the spec allows. Needs CAP_SETPCAP: call before changing user.
pub fn drop_bounding(caps: &LinuxCapabilities) -> Result<()> {
    let keep = set(caps.bounding());
    for cap in 0..=last_cap() {
        if !keep.contains(&cap) {
            // SAFETY: prctl with integer arguments.
            let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            if rc < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
                return Err(msg(format!(
                    "cannot drop capability {} from the bounding set: {}",
                    name(cap),
                    std::io::Error::last_os_error()
                )));
            }
        }
    }
    Ok(())
}

#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Sets effective, permitted and inheritable, then raises the ambient set.
pub fn apply(caps: &LinuxCapabilities) -> Result<()> {
    let (e, p, i) = (
        mask(&set(caps.effective())),
        mask(&set(caps.permitted())),
        mask(&set(caps.inheritable())),
    );
    let mut header = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [
        Data {
            effective: e as u32,
            permitted: p as u32,
            inheritable: i as u32,
        },
        Data {
            effective: (e >> 32) as u32,
            permitted: (p >> 32) as u32,
            inheritable: (i >> 32) as u32,
        },
    ];
    // SAFETY: header and two data structs as capset(2) expects for version 3.
    if unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) } < 0 {
        return Err(msg(format!(
            "cannot apply the capabilities (capset): {}",
            std::io::Error::last_os_error()
        )));
    }
    for cap in set(caps.ambient()) {
        // SAFETY: prctl with integer arguments.
        let rc = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                cap as libc::c_ulong,
                0,
                0,
            )
        };
        // The kernel refuses caps missing from permitted or inheritable; runc ignores that too.
        let _ = rc;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number("CAP_CHOWN"), Some(0));
        assert_eq!(number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number("CAP_NOPE"), None);
    }

    #[test]
    fn every_capability_config_json_can_name_has_its_kernel_number() {
        for cap in caps::all() {
            let name = cap.to_string();
            let parsed: Capabilities = serde_json::from_str(&format!("[{name:?}]")).unwrap();
            assert_eq!(
                set(&Some(parsed)),
                HashSet::from([u32::from(cap.index())]),
                "{name}"
            );
        }
    }

    #[test]
    fn spec_names_map_to_numbers() {
        let caps: Capabilities =
            serde_json::from_str(r#"["CAP_KILL","CAP_NET_BIND_SERVICE"]"#).unwrap();
        assert_eq!(mask(&set(&Some(caps))), (1 << 5) | (1 << 10));
    }
}
