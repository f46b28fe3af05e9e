//! `spec`: a default config.json, like runc's: busybox-friendly `sh` with a terminal.

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroupBuilder, Spec};

use crate::{
    Result,
    error::{Context as _, msg},
};

/// The OCI version the default config says it follows.
pub const OCI_VERSION: &str = "1.0.2";

/// runc's default config: `sh` with a terminal as root, the audit-write,
/// kill and net-bind-service capabilities, fresh pid, network, ipc, uts,
/// mount and cgroup namespaces, /proc, /dev (and pts, shm, mqueue), a
/// read-only /sys and cgroup mount, every device denied, runc's masked and
/// read-only paths, a read-only `rootfs`. oci-spec's defaults are runc's but
/// for the version, the hostname, the inheritable set, empty annotations and
/// the device rule; those are set here. `inspector run` starts from it too.
pub fn default_spec() -> Spec {
    let mut spec = Spec::default();
    spec.set_version(OCI_VERSION.into())
        .set_hostname(Some("inspector".into()))
        .set_annotations(None);
    if let Some(process) = spec.process_mut() {
        process.set_terminal(Some(true));
        let mut caps = process.capabilities().clone();
        if let Some(caps) = caps.as_mut() {
            caps.set_inheritable(None);
        }
        process.set_capabilities(caps);
    }
    if let Some(resources) = spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.resources_mut().as_mut())
    {
        let deny_all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .expect("a device rule with every field given");
        resources.set_devices(Some(vec![deny_all]));
    }
    spec
}

/// `spec` as JSON, each capability list sorted: oci-spec keeps them in a
/// HashSet, whose order changes from run to run, and a config.json written
/// twice should read the same.
pub fn to_json(spec: &Spec) -> serde_json::Value {
    let mut json = serde_json::to_value(spec).unwrap_or_default();
    if let Some(caps) = json
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    {
        for set in caps.values_mut() {
            if let Some(names) = set.as_array_mut() {
                names.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    json
}

/// Writes `<bundle>/config.json`, refusing to overwrite one.
pub fn write(bundle: &Path) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(msg(format!(
            "file {} exists; remove it first",
            path.display()
        )));
    }
    let text =
        serde_json::to_string_pretty(&to_json(&default_spec())).map_err(|e| msg(e.to_string()))?;
    std::fs::write(&path, text + "\n").ctx(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_config_is_a_valid_spec() {
        let text = serde_json::to_string(&super::default_spec()).unwrap();
        let spec = crate::config::parse(&text).unwrap();
        assert_eq!(spec.mounts().as_ref().unwrap().len(), 7);
    }
}
