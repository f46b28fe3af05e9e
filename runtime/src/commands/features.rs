//! `features`: what this runtime supports, as the OCI runtime spec's
//! features document (`features.md`): containerd 1.7 and later ask a
//! runtime for it (`runc features`) before they use it. Every list is read
//! from the table the runtime itself works from, so it cannot claim what it
//! does not do.

use std::collections::HashMap;

use oci_spec::runtime::{
    Arch, CgroupBuilder, FeaturesBuilder, LinuxFeatureBuilder, LinuxSeccompAction,
    LinuxSeccompOperator, SeccompBuilder,
};

use crate::{
    Result,
    error::msg,
    linux::{hooks, mounts, namespaces, seccomp},
};

/// The features document, as JSON (lists by name, as runc's).
pub fn document() -> Result<serde_json::Value> {
    let spec_error = |e: oci_spec::OciSpecError| msg(format!("features: {e}"));
    let seccomp = SeccompBuilder::default()
        .enabled(true)
        .actions(
            [
                LinuxSeccompAction::ScmpActAllow,
                LinuxSeccompAction::ScmpActErrno,
                LinuxSeccompAction::ScmpActKill,
                LinuxSeccompAction::ScmpActKillProcess,
                LinuxSeccompAction::ScmpActKillThread,
                LinuxSeccompAction::ScmpActLog,
                LinuxSeccompAction::ScmpActNotify,
                LinuxSeccompAction::ScmpActTrace,
                LinuxSeccompAction::ScmpActTrap,
            ]
            .into_iter()
            .filter(|a| seccomp::supports_action(*a))
            .collect::<Vec<_>>(),
        )
        .operators(
            [
                LinuxSeccompOperator::ScmpCmpEq,
                LinuxSeccompOperator::ScmpCmpGe,
                LinuxSeccompOperator::ScmpCmpGt,
                LinuxSeccompOperator::ScmpCmpLe,
                LinuxSeccompOperator::ScmpCmpLt,
                LinuxSeccompOperator::ScmpCmpMaskedEq,
                LinuxSeccompOperator::ScmpCmpNe,
            ]
            .iter()
            .map(spec_name)
            .collect::<Vec<_>>(),
        )
        .archs(vec![
            Arch::ScmpArchX86_64,
            Arch::ScmpArchX86,
            Arch::ScmpArchX32,
        ])
        .known_flags(
            seccomp::KNOWN_FLAGS
                .iter()
                .map(spec_name)
                .collect::<Vec<_>>(),
        )
        .supported_flags(
            seccomp::KNOWN_FLAGS
                .iter()
                .map(spec_name)
                .collect::<Vec<_>>(),
        )
        .build()
        .map_err(spec_error)?;
    let linux = LinuxFeatureBuilder::default()
        .namespaces({
            let mut all = namespaces::JOIN_ORDER.to_vec();
            all.sort_by_key(spec_name);
            all
        })
        .capabilities(
            caps::all()
                .into_iter()
                .map(|c| c.to_string())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>(),
        )
        .cgroup(
            CgroupBuilder::default()
                .v1(true)
                .v2(true)
                .systemd(false)
                .systemd_user(false)
                .build()
                .map_err(spec_error)?,
        )
        .seccomp(seccomp)
        .build()
        .map_err(spec_error)?;
    let features = FeaturesBuilder::default()
        .oci_version_min("1.0.0")
        .oci_version_max("1.0.2")
        .hooks(
            hooks::KINDS
                .iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>(),
        )
        .mount_options({
            let mut all: Vec<String> = mounts::known_options().map(String::from).collect();
            all.sort();
            all
        })
        .linux(linux)
        .annotations(HashMap::from([(
            "io.github.inspector.runtime.version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        )]))
        .build()
        .map_err(spec_error)?;
    let mut doc = serde_json::to_value(&features).map_err(|e| msg(format!("features: {e}")))?;
    drop_nulls(&mut doc);
    Ok(doc)
}

/// What is not said is left out, as the spec's document does (`null` would
/// read as a statement).
fn drop_nulls(v: &mut serde_json::Value) {
    if let serde_json::Value::Object(map) = v {
        map.retain(|_, x| !x.is_null());
        map.values_mut().for_each(drop_nulls);
    }
}

/// A spec enum's name as config.json writes it (`SCMP_CMP_EQ`).
fn spec_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

pub fn print() -> Result<()> {
    let doc = document()?;
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).map_err(|e| msg(format!("features: {e}")))?
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_says_what_the_runtime_does() {
        let doc = document().unwrap();
        assert_eq!(doc["ociVersionMin"], "1.0.0");
        let hooks: Vec<&str> = doc["hooks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap())
            .collect();
        for kind in [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop",
        ] {
            assert!(hooks.contains(&kind), "{kind}: {hooks:?}");
        }
        let options = doc["mountOptions"].as_array().unwrap();
        for o in ["ro", "rbind", "rprivate", "noexec", "strictatime"] {
            assert!(options.iter().any(|x| x == o), "{o}");
        }
        let linux = &doc["linux"];
        assert_eq!(linux["namespaces"].as_array().unwrap().len(), 8);
        assert!(
            linux["capabilities"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == "CAP_SYS_ADMIN")
        );
        assert_eq!(linux["cgroup"]["v1"], true);
        assert_eq!(linux["cgroup"]["systemd"], false);
        // SCMP_ACT_NOTIFY is refused at create: not claimed.
        let actions = linux["seccomp"]["actions"].as_array().unwrap();
        assert!(!actions.iter().any(|a| a == "SCMP_ACT_NOTIFY"));
        assert!(actions.iter().any(|a| a == "SCMP_ACT_ERRNO"));
        assert!(!doc.to_string().contains("null"), "{doc}");
        // What parses back as the spec's type.
        let _: oci_spec::runtime::Features = serde_json::from_value(doc).unwrap();
    }
}
