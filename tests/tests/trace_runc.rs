//! `inspector trace` around a plain `runc run` of an OCI bundle.

use std::process::Command;

use inspector::event::Body;
use tests::{Need, TempDir, Trace, Tracer, busybox_rootfs, probe_test};

#[test]
fn runc_run_shows_cgroups_namespaces_pivot_and_entrypoint() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::Runc]) else {
        return;
    };
    let dir = TempDir::new("bundle");
    let bundle = dir.path().join("bundle");
    let rootfs = bundle.join("rootfs");
    busybox_rootfs(&rootfs);
    let status = Command::new("runc")
        .args(["spec"])
        .current_dir(&bundle)
        .status()
        .unwrap();
    assert!(status.success());
    let id = format!("inspector-test-{}", std::process::id());
    // One level, so that runc removes all it made.
    let cgroup = format!("/{id}");
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["process"]["args"] = serde_json::json!(["true"]);
    config["process"]["terminal"] = serde_json::json!(false);
    config["linux"]["cgroupsPath"] = serde_json::json!(cgroup);
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
    let state = dir.path().join("state");

    let tracer = Tracer::start(&[]);
    let status = Command::new("runc")
        .arg("--root")
        .arg(&state)
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .status()
        .unwrap();
    let t = tracer.stop();
    assert!(status.success(), "runc run failed: {status}");
    let dump = t.dump();

    assert!(
        t.execs().any(|(_, f, argv)| f.ends_with("/runc")
            && argv.iter().any(|a| a == "run")
            && argv.iter().any(|a| a == &id)),
        "runc's exec missing:\n{dump}"
    );
    assert!(
        t.execs()
            .any(|(_, f, _)| f.starts_with("/dev/fd/") || f.starts_with("/proc/self/fd/")),
        "runc's memfd re-exec missing:\n{dump}"
    );
    assert!(
        t.events
            .iter()
            .any(|e| matches!(&e.body, Body::CgroupMkdir(c) if c.path == cgroup)),
        "mkdir of {cgroup} missing:\n{dump}"
    );
    assert!(
        t.events.iter().any(|e| matches!(&e.body,
            Body::CgroupWrite { file, .. } if *file == format!("{cgroup}/cgroup.procs"))),
        "cgroup.procs write missing:\n{dump}"
    );
    assert!(
        t.events.iter().any(|e| matches!(&e.body,
            Body::Unshare { flags, result, .. } if result.ret == 0
                && ["CLONE_NEWNS", "CLONE_NEWPID", "CLONE_NEWNET"]
                    .iter().all(|f| flags.split('|').any(|x| x == *f)))),
        "unshare missing:\n{dump}"
    );
    let rootfs_real = std::fs::canonicalize(&rootfs).unwrap();
    let entry = t
        .execs()
        .find(|(_, f, _)| *f == "/bin/true")
        .unwrap_or_else(|| panic!("the entrypoint's exec missing:\n{dump}"));
    let init = Trace::tgid(entry.0);
    assert!(
        t.events.iter().any(|e| Trace::tgid(e) == init
            && matches!(&e.body, Body::PivotRoot { cwd: Some(cwd), result, .. }
                if std::path::Path::new(cwd) == rootfs_real && result.ret == 0)),
        "pivot_root into {} missing:\n{dump}",
        rootfs_real.display()
    );
    assert!(
        t.exited_with(init, 0),
        "the entrypoint's exit missing:\n{dump}"
    );
    assert!(
        t.events
            .iter()
            .any(|e| matches!(&e.body, Body::CgroupRmdir(c) if c.path == cgroup)),
        "rmdir of {cgroup} missing:\n{dump}"
    );
}
