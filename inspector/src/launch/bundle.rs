//! The OCI bundle handed to the runtime: a directory with config.json. It is
//! generated around a root filesystem, or taken from the user's bundle with
//! the command line's settings applied; either way it is written to a
//! scratch directory, so the user's files are never changed.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use thiserror::Error;

use super::rootfs::{BindMount, DEFAULT_PATH, View};

#[derive(Debug, Error)]
pub enum BundleError {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path} is not a valid OCI configuration: {reason}")]
    Invalid { path: String, reason: String },
    #[error("cannot write the bundle in {path}: {error}")]
    Write { path: String, error: std::io::Error },
    #[error("environment variable {0:?} is not KEY=VALUE")]
    Env(String),
    #[error("{path}: {field} is {found}, not {wanted}: fix or remove it")]
    Field {
        path: String,
        field: &'static str,
        found: &'static str,
        wanted: &'static str,
    },
}

/// What a JSON value is, in words, for an error.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `parent[key]` as an object, made empty when it is missing or null; an
/// error naming `field` and the configuration `path` when it is anything else.
fn object_at<'a>(
    parent: &'a mut serde_json::Map<String, Value>,
    key: &str,
    field: &'static str,
    path: &str,
) -> Result<&'a mut serde_json::Map<String, Value>, BundleError> {
    let slot = parent.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = json!({});
    }
    let found = kind(slot);
    slot.as_object_mut().ok_or_else(|| BundleError::Field {
        path: path.to_string(),
        field,
        found,
        wanted: "an object",
    })
}

/// What the command line sets on the container; `None` and empty keep what
/// the image or the bundle says.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// The command and its arguments.
    pub args: Vec<String>,
    /// `KEY=VALUE`, replacing a variable of the same name.
    pub env: Vec<String>,
    pub cwd: Option<String>,
    pub hostname: Option<String>,
    /// memory.limit in bytes.
    pub memory: Option<i64>,
    pub pids_limit: Option<i64>,
}

/// Replaces or adds each of `overrides` (`KEY=VALUE`) in `base`, keeping the
/// order of `base`.
pub fn merge_env(base: &[String], overrides: &[String]) -> Result<Vec<String>, BundleError> {
    let mut env = base.to_vec();
    for kv in overrides {
        let Some((key, _)) = kv.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(BundleError::Env(kv.clone()));
        };
        match env
            .iter_mut()
            .find(|e| e.split_once('=').is_some_and(|(k, _)| k == key))
        {
            Some(slot) => *slot = kv.clone(),
            None => env.push(kv.clone()),
        }
    }
    Ok(env)
}

/// A configuration like `runc spec`'s (the runtime's own default, see
/// `runtime::commands::spec`), for a non-interactive container: new pid,
/// network, ipc, uts, mount and cgroup namespaces; fresh /proc, /dev (tmpfs
/// with the runtime's default devices), /dev/pts, /dev/shm, /dev/mqueue, a
/// read-only /sys and a /tmp tmpfs; plus `binds`, read-only. Unlike `spec`'s:
/// no terminal, no command yet, only `PATH` in the environment, Docker's
/// default capabilities and no cgroup mount.
pub fn generate(rootfs: &Path, readonly_root: bool, binds: &[BindMount]) -> Value {
    use oci_spec::runtime::{Capability::*, LinuxCapabilities, MountBuilder, Root};
    let mut spec = ::runtime::commands::spec::default_spec();
    let caps: oci_spec::runtime::Capabilities = [
        Chown,
        DacOverride,
        Fsetid,
        Fowner,
        Mknod,
        NetRaw,
        Setgid,
        Setuid,
        Setfcap,
        Setpcap,
        NetBindService,
        SysChroot,
        Kill,
        AuditWrite,
    ]
    .into_iter()
    .collect();
    if let Some(process) = spec.process_mut() {
        let mut capabilities = LinuxCapabilities::default();
        capabilities
            .set_bounding(Some(caps.clone()))
            .set_effective(Some(caps.clone()))
            .set_permitted(Some(caps))
            .set_inheritable(None)
            .set_ambient(None);
        process
            .set_terminal(Some(false))
            .set_args(Some(Vec::new()))
            .set_env(Some(vec![format!("PATH={DEFAULT_PATH}")]))
            .set_capabilities(Some(capabilities));
    }
    let mut root = Root::default();
    root.set_path(rootfs.to_path_buf())
        .set_readonly(Some(readonly_root));
    spec.set_root(Some(root));
    let mount = |destination: &str, typ: &str, source: &Path, options: &[&str]| {
        MountBuilder::default()
            .destination(destination)
            .typ(typ)
            .source(source)
            .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
            .build()
            .expect("a mount with every field given")
    };
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    // The runtime's cgroup mount is left out: nothing in the container needs it.
    mounts.retain(|m| m.typ().as_deref() != Some("cgroup"));
    mounts.push(mount(
        "/tmp",
        "tmpfs",
        Path::new("tmpfs"),
        &["nosuid", "nodev", "mode=1777"],
    ));
    for b in binds {
        mounts.push(mount(
            &b.destination,
            "bind",
            &b.source,
            &["rbind", "ro", "nosuid", "nodev"],
        ));
    }
    spec.set_mounts(Some(mounts));
    ::runtime::commands::spec::to_json(&spec)
}

/// Reads `dir`/config.json and makes its root path absolute, so the
/// configuration can be written into another bundle directory.
pub fn load(dir: &Path) -> Result<Value, BundleError> {
    let dir = &dir.canonicalize().map_err(|error| BundleError::Read {
        path: dir.display().to_string(),
        error,
    })?;
    let path = dir.join("config.json");
    let text = std::fs::read(&path).map_err(|error| BundleError::Read {
        path: path.display().to_string(),
        error,
    })?;
    let invalid = |reason: String| BundleError::Invalid {
        path: path.display().to_string(),
        reason,
    };
    let mut config: Value = serde_json::from_slice(&text).map_err(|e| invalid(e.to_string()))?;
    let root = config
        .pointer("/root/path")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("no root.path".into()))?;
    if !config.get("process").is_some_and(Value::is_object) {
        return Err(invalid("no process".into()));
    }
    let absolute = dir.join(root);
    config["root"]["path"] = json!(absolute);
    Ok(config)
}

/// Applies the command line's settings to a configuration read from `path`
/// (named in errors). A field they go into that is not what the OCI
/// specification says (`linux.resources.memory` a number) is an error.
pub fn apply(config: &mut Value, s: &Settings, path: &str) -> Result<(), BundleError> {
    let not_an_object = |found| BundleError::Field {
        path: path.to_string(),
        field: "the configuration",
        found,
        wanted: "an object",
    };
    let found = kind(config);
    let config = config.as_object_mut().ok_or_else(|| not_an_object(found))?;
    let process = object_at(config, "process", "process", path)?;
    if !s.args.is_empty() {
        process.insert("args".into(), json!(s.args));
    }
    let env = match process.get("env") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        Some(other) => {
            return Err(BundleError::Field {
                path: path.to_string(),
                field: "process.env",
                found: kind(other),
                wanted: "an array of KEY=VALUE strings",
            });
        }
    };
    process.insert("env".into(), json!(merge_env(&env, &s.env)?));
    if let Some(cwd) = &s.cwd {
        process.insert("cwd".into(), json!(cwd));
    }
    // The container's stdio is the user's terminal only through the
    // runtime's own stdio: a console socket is not set up here.
    process.insert("terminal".into(), json!(false));
    if let Some(hostname) = &s.hostname {
        config.insert("hostname".into(), json!(hostname));
    }
    if s.memory.is_some() || s.pids_limit.is_some() {
        let linux = object_at(config, "linux", "linux", path)?;
        let resources = object_at(linux, "resources", "linux.resources", path)?;
        if let Some(limit) = s.memory {
            object_at(resources, "memory", "linux.resources.memory", path)?
                .insert("limit".into(), json!(limit));
        }
        if let Some(limit) = s.pids_limit {
            object_at(resources, "pids", "linux.resources.pids", path)?
                .insert("limit".into(), json!(limit));
        }
    }
    Ok(())
}

/// What the runtime will execute, read back from a configuration.
pub struct Process {
    pub args: Vec<String>,
    pub path: String,
    pub cwd: String,
}

pub fn process(config: &Value) -> Process {
    let p = &config["process"];
    let path = super::strings(&p["env"])
        .iter()
        .find_map(|kv| kv.strip_prefix("PATH=").map(String::from))
        .unwrap_or_else(|| DEFAULT_PATH.to_string());
    Process {
        args: super::strings(&p["args"]),
        path,
        cwd: p["cwd"].as_str().unwrap_or("/").to_string(),
    }
}

/// The container's files as the runtime will mount them: the root and its
/// bind mounts (other mounts are fresh filesystems, not where programs live).
pub fn view(config: &Value) -> View {
    let rootfs = PathBuf::from(
        config
            .pointer("/root/path")
            .and_then(Value::as_str)
            .unwrap_or("/"),
    );
    let binds = config["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| {
            m["type"] == "bind"
                || m["options"]
                    .as_array()
                    .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
        })
        .filter_map(|m| {
            Some(BindMount {
                source: PathBuf::from(m["source"].as_str()?),
                destination: m["destination"].as_str()?.to_string(),
            })
        })
        .collect();
    View::new(rootfs, binds)
}

/// Writes `config` as `dir`/config.json, readable by root only (it holds the
/// container's environment), as a new file: never through a symlink or over
/// a file someone else made.
pub fn write(dir: &Path, config: &Value) -> Result<(), BundleError> {
    let path = dir.join("config.json");
    let text = serde_json::to_vec_pretty(config).expect("a JSON value serializes");
    super::create_private(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &text))
        .map_err(|error| BundleError::Write {
            path: dir.display().to_string(),
            error,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::ScratchDir;

    #[test]
    fn env_overrides_replace_by_name_and_append_new_ones() {
        let base = vec!["PATH=/bin".to_string(), "HOME=/root".to_string()];
        let env = merge_env(&base, &["HOME=/tmp".into(), "A=b=c".into()]).unwrap();
        assert_eq!(env, ["PATH=/bin", "HOME=/tmp", "A=b=c"]);
        assert!(merge_env(&base, &["NOEQUALS".into()]).is_err());
        assert!(merge_env(&base, &["=x".into()]).is_err());
    }

    #[test]
    fn generated_config_has_the_namespaces_mounts_and_settings() {
        let binds = vec![BindMount {
            source: "/usr".into(),
            destination: "/usr".into(),
        }];
        let mut config = generate(Path::new("/b/rootfs"), true, &binds);
        apply(
            &mut config,
            &Settings {
                args: vec!["/bin/sh".into(), "-c".into(), "exit 3".into()],
                env: vec!["A=1".into()],
                cwd: Some("/tmp".into()),
                hostname: Some("box".into()),
                memory: Some(64 << 20),
                pids_limit: Some(32),
            },
            "config.json",
        )
        .unwrap();
        assert_eq!(
            config["process"]["args"],
            json!(["/bin/sh", "-c", "exit 3"])
        );
        assert_eq!(
            config["process"]["env"],
            json!([format!("PATH={DEFAULT_PATH}"), "A=1"])
        );
        assert_eq!(config["process"]["cwd"], "/tmp");
        assert_eq!(config["hostname"], "box");
        assert_eq!(
            config["root"],
            json!({"path": "/b/rootfs", "readonly": true})
        );
        assert_eq!(config["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(config["linux"]["resources"]["pids"]["limit"], 32);
        let namespaces: Vec<&str> = config["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            namespaces,
            ["pid", "network", "ipc", "uts", "mount", "cgroup"]
        );
        let v = view(&config);
        assert_eq!(v.rootfs, Path::new("/b/rootfs"));
        assert_eq!(v.binds, binds);
        let p = process(&config);
        assert_eq!(p.path, DEFAULT_PATH);
        assert_eq!(p.cwd, "/tmp");
    }

    #[test]
    fn a_loaded_bundle_keeps_its_settings_unless_overridden() {
        let dir = ScratchDir::new("bundle-load").unwrap();
        let mut config = generate(Path::new("rootfs"), false, &[]);
        config["process"]["args"] = json!(["/bin/app", "--serve"]);
        write(dir.path(), &config).unwrap();
        let mut loaded = load(dir.path()).unwrap();
        assert_eq!(loaded["root"]["path"], json!(dir.path().join("rootfs")));
        apply(&mut loaded, &Settings::default(), "config.json").unwrap();
        assert_eq!(loaded["process"]["args"], json!(["/bin/app", "--serve"]));
        assert_eq!(loaded["hostname"], "inspector");

        std::fs::write(dir.path().join("config.json"), b"{\"process\": {}}").unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no root.path"), "{err}");
        std::fs::remove_file(dir.path().join("config.json")).unwrap();
        assert!(matches!(load(dir.path()), Err(BundleError::Read { .. })));
    }

    #[test]
    fn a_limit_on_a_field_that_is_not_an_object_is_named_not_a_panic() {
        let limits = Settings {
            memory: Some(64 << 20),
            pids_limit: Some(32),
            ..Settings::default()
        };
        for (field, bad) in [
            ("linux", json!("x")),
            ("linux.resources", json!([1])),
            ("linux.resources.memory", json!(5)),
            ("linux.resources.pids", json!(true)),
        ] {
            let mut config = generate(Path::new("/r"), false, &[]);
            config["linux"]["resources"] = json!({"memory": {}, "pids": {}});
            let pointer = format!("/{}", field.replace('.', "/"));
            *config.pointer_mut(&pointer).unwrap() = bad;
            let err = apply(&mut config, &limits, "/b/config.json")
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!("/b/config.json: {field} is ")),
                "{err}"
            );
        }
        let mut config = generate(Path::new("/r"), false, &[]);
        config["process"]["env"] = json!("PATH=/bin");
        let err = apply(&mut config, &Settings::default(), "c").unwrap_err();
        assert!(err.to_string().contains("process.env is a string"), "{err}");
        // Missing or null is filled in.
        let mut config = generate(Path::new("/r"), false, &[]);
        config["linux"]["resources"] = Value::Null;
        apply(&mut config, &limits, "c").unwrap();
        assert_eq!(config["linux"]["resources"]["pids"]["limit"], 32);
    }
}
