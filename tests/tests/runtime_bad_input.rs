//! Bad input to `inspector-runtime`: each gives a clear error naming the
//! problem and a non-zero exit, and leaves no state directory, cgroup, mount
//! or process behind.

use serde_json::json;
use tests::runtime::{Bundle, Runtime};
use tests::{Need, ready};

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
    if !ready(&[Need::Root, Need::Runtime]) {
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
    if !ready(&[Need::Root, Need::Runtime]) {
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
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let b = Bundle::new("noconfig", &["true"]);
    std::fs::remove_file(b.path().join("config.json")).unwrap();
    create_fails("noconfig", &b, "config.json");
}

#[test]
fn unknown_namespace_type() {
    if !ready(&[Need::Root, Need::Runtime]) {
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
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let b = Bundle::new("norootfs", &["true"]);
    std::fs::remove_dir_all(b.rootfs()).unwrap();
    create_fails("norootfs", &b, "rootfs");
}

#[test]
fn missing_executable() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let b = Bundle::new("noexe", &["no-such-program"]);
    create_fails("noexe", &b, "executable file not found");
}

#[test]
fn systemd_cgroups_path_without_systemd() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let mut b = Bundle::new("slice", &["true"]);
    b.config["linux"]["cgroupsPath"] = json!("system.slice:docker:abc");
    b.save();
    create_fails("slice", &b, "systemd");
}

#[test]
fn duplicate_container_id() {
    if !ready(&[Need::Root, Need::Runtime]) {
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
    if !ready(&[Need::Root, Need::Runtime]) {
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
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let b = Bundle::new("rootdir", &["true"]);
    let out = std::process::Command::new(tests::runtime_bin())
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
    if !ready(&[Need::Root, Need::Runtime]) {
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
    if !ready(&[Need::Root, Need::Runtime]) {
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

#[test]
fn invalid_container_ids_are_refused_naming_the_rule() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let rt = Runtime::new("badid");
    let b = Bundle::new("badid", &["true"]);
    let bundle = b.path().to_str().unwrap();
    let long = "a".repeat(256);
    for id in ["/", "", ".", "..", "a/b", "../etc", long.as_str()] {
        for verb in ["create", "run"] {
            let out = rt.out(&[verb, "--bundle", bundle, id]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{verb} {id:?}: {err}");
            assert!(
                err.contains(&format!("invalid container id {id:?}"))
                    && err.contains("letters, digits, '_', '+', '-' and '.'"),
                "{verb} {id:?}: {err}"
            );
            assert!(!err.contains("already exists"), "{verb} {id:?}: {err}");
        }
    }
    // Nothing was made in the state root.
    let left: Vec<_> = std::fs::read_dir(rt.root.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| {
            !n.to_string_lossy().starts_with(".out-") && !n.to_string_lossy().starts_with(".err-")
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
    rt.assert_nothing_left(&b);
}

#[test]
fn an_unusable_state_root_says_its_cause_once() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let b = Bundle::new("rootonce", &["true"]);
    for root in ["/proc/sys", "/proc/sys/inspector-runtime-test"] {
        let out = std::process::Command::new(tests::runtime_bin())
            .args(["--root", root, "create", "--bundle"])
            .arg(b.path())
            .arg(&b.id)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{root}: {err}");
        assert!(err.contains(&format!("state root {root}")), "{err}");
        assert_eq!(err.matches("os error").count(), 1, "{root}: {err}");
        assert_eq!(err.lines().count(), 1, "{root}: {err}");
    }
    Runtime::new("rootonce").assert_nothing_left(&b);
}

/// A bundle whose memory limit is 1 byte: runc names the limit (it writes it
/// once init is in the cgroup, and the kernel refuses it); ours writes it
/// first, and the kernel's OOM killer ends init during set-up. Either way
/// the message names the limit, in the log the shim reads.
#[test]
fn a_one_byte_memory_limit_is_named_as_the_cause() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let one_byte = |name: &str| {
        let mut b = Bundle::new(name, &["true"]);
        b.config["linux"]["resources"]["memory"] = json!({"limit": 1});
        b.save();
        b
    };
    let b = one_byte("onebyte");
    let rt = Runtime::new("onebyte");
    let (code, text) = rt.create_logged(&b);
    assert_eq!(code, Some(1));
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error", "{text}");
    let msg = last["msg"].as_str().unwrap();
    assert!(
        msg.contains("OOM killer") && msg.contains("linux.resources.memory.limit = 1 byte"),
        "{msg}"
    );
    assert!(!msg.contains("exited during set-up"), "{msg}");
    rt.assert_nothing_left(&b);

    // Without --log, the same on stderr.
    let b = one_byte("onebyte-stderr");
    create_fails(
        "onebyte-stderr",
        &b,
        "linux.resources.memory.limit = 1 byte",
    );

    // runc refuses the same bundle too, naming the limit.
    if std::process::Command::new("runc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let b = one_byte("onebyte-runc");
        let root = tests::TempDir::new("onebyte-runc-root");
        let out = std::process::Command::new("runc")
            .arg("--root")
            .arg(root.path())
            .args(["create", "--bundle"])
            .arg(b.path())
            .arg(&b.id)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "runc took a 1-byte limit");
        assert!(err.contains("memory limit"), "runc: {err}");
        let _ = std::process::Command::new("runc")
            .arg("--root")
            .arg(root.path())
            .args(["delete", "--force", &b.id])
            .output();
    }
}
