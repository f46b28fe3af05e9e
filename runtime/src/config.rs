//! Loading and checking a bundle's config.json.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Spec, User};

use crate::{Error, Result};

/// Reads `<bundle>/config.json`, naming the file and the problem when it is not usable.
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
    parse(&text)
}

pub fn parse(text: &str) -> Result<Spec> {
    let spec: Spec = serde_json::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
    validate(&spec)?;
    Ok(spec)
}

fn validate(spec: &Spec) -> Result<()> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::Config("no \"process\" section".into()))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::Config("process.args must not be empty".into()));
    }
    check_user(process.user())?;
    if !process.cwd().is_absolute() {
        return Err(Error::Config(format!(
            "process.cwd {:?} is not an absolute path",
            process.cwd()
        )));
    }
    if spec.root().is_none() {
        return Err(Error::Config("no \"root\" section".into()));
    }
    if let Some(linux) = spec.linux() {
        let mut seen = Vec::new();
        for ns in linux.namespaces().iter().flatten() {
            if seen.contains(&ns.typ()) {
                return Err(Error::Config(format!(
                    "namespace {} is listed twice",
                    ns.typ()
                )));
            }
            seen.push(ns.typ());
        }
        // The filter is loaded only at start: refuse what it cannot honour now.
        if let Some(s) = linux.seccomp() {
            crate::linux::seccomp::compile(s).map_err(|e| Error::Config(e.to_string()))?;
        }
    }
    for m in spec.mounts().iter().flatten() {
        if !m.destination().is_absolute() {
            return Err(Error::Config(format!(
                "mount destination {:?} is not absolute",
                m.destination()
            )));
        }
    }
    Ok(())
}

/// `(uid_t)-1` (4294967295) is not an id: to setresuid/setresgid/setgroups
/// it means "leave unchanged", so a process meant to run as that user would
/// keep running as root. Refused, as runc does, wherever a user is given.
pub const NOT_AN_ID: u32 = u32::MAX;

/// Refuses a user whose uid, gid or an additional gid is [`NOT_AN_ID`].
pub fn check_user(user: &User) -> Result<()> {
    let bad = |what: &str, id: u32| {
        Error::Config(format!(
            "process.user.{what} {id} is not a valid id: to the kernel it means \"unchanged\", so the process would keep running as root; give a real id (0 to {})",
            NOT_AN_ID - 1
        ))
    };
    if user.uid() == NOT_AN_ID {
        return Err(bad("uid", user.uid()));
    }
    if user.gid() == NOT_AN_ID {
        return Err(bad("gid", user.gid()));
    }
    if let Some(g) = user
        .additional_gids()
        .iter()
        .flatten()
        .find(|g| **g == NOT_AN_ID)
    {
        return Err(bad("additionalGids entry", *g));
    }
    Ok(())
}

/// The root filesystem, made absolute against the bundle, which must exist.
pub fn rootfs(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    let root = spec.root().as_ref().expect("validated");
    let path = bundle.join(root.path());
    if !path.is_dir() {
        return Err(Error::Config(format!(
            "root.path: rootfs {} does not exist or is not a directory",
            path.display()
        )));
    }
    path.canonicalize()
        .map_err(|e| Error::Config(format!("rootfs {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
        "process":{"cwd":"/","args":["true"],"user":{"uid":0,"gid":0}},
        "linux":{"namespaces":[{"type":"pid"},{"type":"mount"}]}}"#;

    #[test]
    fn accepts_a_minimal_config() {
        let spec = parse(MINIMAL).unwrap();
        assert_eq!(
            spec.process().as_ref().unwrap().args().as_ref().unwrap()[0],
            "true"
        );
    }

    #[test]
    fn rejects_unknown_namespace_type() {
        let text = MINIMAL.replace("\"pid\"", "\"bogus\"");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn rejects_missing_process_and_bad_json() {
        let err = parse(r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("process"), "{err}");
        let err = parse("{not json").unwrap_err().to_string();
        assert!(err.starts_with("config.json:"), "{err}");
    }

    #[test]
    fn rejects_the_unchanged_id_as_uid_gid_or_additional_gid() {
        for (from, to) in [
            ("\"uid\":0", "\"uid\":4294967295"),
            ("\"gid\":0", "\"gid\":4294967295"),
            ("\"gid\":0", "\"gid\":0,\"additionalGids\":[10,4294967295]"),
        ] {
            let err = parse(&MINIMAL.replace(from, to)).unwrap_err().to_string();
            assert!(err.contains("4294967295"), "{err}");
            assert!(err.contains("root"), "{err}");
        }
        let ok = MINIMAL.replace("\"uid\":0", "\"uid\":4294967294");
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn rejects_relative_cwd() {
        let text = MINIMAL.replace("\"cwd\":\"/\"", "\"cwd\":\"tmp\"");
        assert!(parse(&text).unwrap_err().to_string().contains("cwd"));
    }
}
