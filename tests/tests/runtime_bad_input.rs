//! Bad input to `inspector-runtime`: each gives a clear error naming the
//! problem and a non-zero exit, and leaves no state directory, cgroup, mount
//! or process behind.

mod common;
mod runtime_support;

use runtime_support::{Bundle, Runtime, ready};
use serde_json::json;

/// `create` of `b` must fail with a message containing `expect`, leaving nothing.
fn create_fails(name: &str, b: &Bundle, expect: &str) {
    let rt = Runtime::new(name);
    let out = rt.out(&["create", "--bundle", b.path().to_str().unwrap(), &b.id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{name}: create succeeded");
    assert!(
        err.contains(expect),
        "{name}: error {err:?} does not say {expect:?}"
    );
    rt.assert_nothing_left(b);
}

#[test]
fn malformed_config_json() {
    if !ready() {
        return;
    }
    let b = Bundle::new("malformed", &["true"]);
    std::fs::write(
        b.path().join("config.json"),
        "{\"ociVersion\": \"1.0.2\", \"process\": ",
    )
    .unwrap();
    create_fails("malformed", &b, "config.json");
}

#[test]
fn incomplete_config_json() {
    if !ready() {
        return;
    }
    let mut b = Bundle::new("incomplete", &["true"]);
    b.config.as_object_mut().unwrap().remove("process");
    b.save();
    create_fails("incomplete", &b, "process");
    let mut b = Bundle::new("noargs", &["true"]);
    b.config["process"]["args"] = json!([]);
    b.save();
    create_fails("noargs", &b, "process.args");
}

#[test]
fn missing_config_json() {
    if !ready() {
        return;
    }
    let b = Bundle::new("noconfig", &["true"]);
    std::fs::remove_file(b.path().join("config.json")).unwrap();
    create_fails("noconfig", &b, "config.json");
}

#[test]
fn unknown_namespace_type() {
    if !ready() {
        return;
    }
    let mut b = Bundle::new("badns", &["true"]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "bogus"}));
    b.save();
    create_fails("badns", &b, "bogus");
}

#[test]
fn missing_rootfs() {
    if !ready() {
        return;
    }
    let b = Bundle::new("norootfs", &["true"]);
    std::fs::remove_dir_all(b.rootfs()).unwrap();
    create_fails("norootfs", &b, "rootfs");
}

#[test]
fn missing_executable() {
    if !ready() {
        return;
    }
    let b = Bundle::new("noexe", &["no-such-program"]);
    create_fails("noexe", &b, "executable file not found");
}

#[test]
fn systemd_cgroups_path_without_systemd() {
    if !ready() {
        return;
    }
    let mut b = Bundle::new("slice", &["true"]);
    b.config["linux"]["cgroupsPath"] = json!("system.slice:docker:abc");
    b.save();
    create_fails("slice", &b, "systemd");
}

#[test]
fn duplicate_container_id() {
    if !ready() {
        return;
    }
    let rt = Runtime::new("dup");
    let b = Bundle::new("dup", &["sleep", "100"]);
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &b.id]);
    let out = rt.out(&["create", "--bundle", b.path().to_str().unwrap(), &b.id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    // The first one is untouched.
    assert_eq!(rt.state(&b.id)["status"], "created");
    rt.ok(&["delete", &b.id]);
    rt.assert_nothing_left(&b);
}

#[test]
fn unknown_container_id() {
    if !ready() {
        return;
    }
    let rt = Runtime::new("unknown");
    for args in [
        vec!["state", "nope"],
        vec!["start", "nope"],
        vec!["kill", "nope", "TERM"],
        vec!["delete", "nope"],
        vec!["pause", "nope"],
        vec!["exec", "nope", "true"],
        vec!["ps", "nope"],
    ] {
        let out = rt.out(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("nope does not exist"), "{args:?}: {err}");
    }
    // Forced delete of what is not there is fine, as with runc.
    rt.ok(&["delete", "--force", "nope"]);
    let bad = rt.out(&["state", "../etc"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid container id"));
}

#[test]
fn state_dir_not_writable() {
    if !ready() {
        return;
    }
    let b = Bundle::new("rootdir", &["true"]);
    let out = std::process::Command::new(runtime_support::runtime_bin())
        .args([
            "--root",
            "/proc/inspector-runtime-test",
            "create",
            "--bundle",
        ])
        .arg(b.path())
        .arg(&b.id)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("state root"), "{err}");
    Runtime::new("rootdir").assert_nothing_left(&b);
}

fn with_hook(name: &str, kind: &str, hook: serde_json::Value) -> Bundle {
    let mut b = Bundle::new(name, &["true"]);
    b.config["hooks"] = json!({ kind: [hook] });
    b.save();
    b
}

#[test]
fn failing_hooks() {
    if !ready() {
        return;
    }
    let b = with_hook(
        "prestart",
        "prestart",
        json!({"path": "/bin/sh", "args": ["sh", "-c", "echo no network for you >&2; exit 3"]}),
    );
    create_fails("prestart", &b, "prestart hook /bin/sh");
    create_fails("prestart", &b, "no network for you");
    let b = with_hook(
        "createRuntime",
        "createRuntime",
        json!({"path": "/bin/false"}),
    );
    create_fails("createRuntime", &b, "createRuntime hook /bin/false");
    // This one runs in the container's namespaces, from init.
    let b = with_hook(
        "createContainer",
        "createContainer",
        json!({"path": "/bin/false"}),
    );
    create_fails("createContainer", &b, "createContainer hook /bin/false");
    let b = with_hook("missing", "prestart", json!({"path": "/no/such/hook"}));
    create_fails("missing", &b, "/no/such/hook");
}

#[test]
fn timed_out_hook() {
    if !ready() {
        return;
    }
    let b = with_hook(
        "timeout",
        "prestart",
        json!({"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}),
    );
    let started = std::time::Instant::now();
    create_fails("timeout", &b, "timed out");
    assert!(started.elapsed().as_secs() < 10);
}
