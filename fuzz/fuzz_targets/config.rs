//! `inspector-runtime create` reads the bundle's config.json, which whoever
//! made the bundle wrote: any bytes may come in. This goes through what
//! create does with it before touching the system — load and validate it
//! (which compiles its seccomp profile), find the root filesystem, plan the
//! namespaces and the cgroup path, build the device policy, and send the spec
//! to init as JSON — and requires that nothing panics and that a spec that
//! passed reaches init as the same spec.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::Spec;
use runtime::{
    config,
    linux::{
        cgroups::{self, devices::Policy, v1},
        namespaces::Plan,
    },
};

fuzz_target!(|data: &[u8]| {
    // config::load is read_to_string, then this: a file that is not UTF-8
    // is refused there, by the standard library.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = config::parse(text) else {
        return;
    };
    // The host's root as the bundle: lookups only, nothing is written.
    let _ = config::rootfs(&spec, Path::new("/"));
    let linux = spec.linux().clone().unwrap_or_default();
    let _ = Plan::from_spec(linux.namespaces().as_deref().unwrap_or(&[]));
    let _ = cgroups::relative_path(linux.cgroups_path().as_deref(), "fuzz");
    if let Some(resources) = linux.resources() {
        let mut policy = Policy::deny_all();
        for rule in resources.devices().iter().flatten() {
            let _ = policy.apply(rule.allow(), &v1::device_rule(rule));
        }
        let _ = policy.program();
    }
    // create hands the spec to init as JSON (runtime::sync): what passed
    // validation must read back there, and mean the same.
    let sent = serde_json::to_vec(&spec).expect("a spec serializes");
    let received: Spec = serde_json::from_slice(&sent)
        .unwrap_or_else(|e| panic!("init cannot read the spec create sent: {e}"));
    // Compared as specs: capabilities are sets, written in any order.
    assert_eq!(received, spec, "the spec changed on its way to init");
});
