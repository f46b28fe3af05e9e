//! cgroup events on a pure cgroup2 layout, the one most users' machines have.
//! This machine is hybrid, so the test mounts a cgroup2 tree in a private mount
//! namespace and works there (only the core files: cgroup.procs and friends).

mod common;

use std::process::Command;

use common::{TempDir, Tracer, can_trace, probe_lock};
use inspector::event::Body;

#[test]
fn cgroup2_mkdir_write_attach_and_rmdir_with_results() {
    if !can_trace() {
        return;
    }
    let _lock = probe_lock();
    let mnt = TempDir::new("cg2");
    let name = format!("inspector-test-{}", std::process::id());
    // In a private mount namespace: mount cgroup2, make a child, move this shell
    // in and back out, make a write fail, remove the child.
    let script = format!(
        r#"set -e
mount -t cgroup2 none "$1"
mkdir "$1/{name}"
echo $$ > "$1/{name}/cgroup.procs"
echo $$ > "$1/cgroup.procs"
echo not-a-pid > "$1/{name}/cgroup.procs" 2>/dev/null || true
rmdir "$1/{name}"
"#
    );
    let tracer = Tracer::start(&["--all", "--cgroup-write-results"]);
    let status = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
            "sh",
        ])
        .arg(mnt.path())
        .status()
        .unwrap();
    let t = tracer.stop();
    assert!(status.success(), "the cgroup2 script failed");
    let dump = t.dump();
    let path = format!("/{name}");
    let procs = format!("/{name}/cgroup.procs");

    assert!(
        t.events.iter().any(|e| matches!(&e.body,
            Body::CgroupMkdir(c) if c.path == path && c.hierarchy == "cgroup2" && c.hierarchy_id == 0)),
        "cgroup2 mkdir missing:\n{dump}"
    );
    let write = t
        .events
        .iter()
        .find_map(|e| match &e.body {
            Body::CgroupWrite {
                file,
                cgroup_version: 2,
                value,
                result: Some(result),
                ..
            } if *file == procs && value.trim().parse::<u32>().is_ok() => Some(result),
            _ => None,
        })
        .unwrap_or_else(|| panic!("cgroup2 cgroup.procs write missing:\n{dump}"));
    assert!(write.ret > 0, "the write succeeded: {write:?}");
    assert!(
        t.events.iter().any(|e| matches!(&e.body,
            Body::CgroupAttach { cgroup, .. } if cgroup.path == path && cgroup.hierarchy == "cgroup2")),
        "attach missing:\n{dump}"
    );
    assert!(
        t.events.iter().any(|e| matches!(&e.body,
            Body::CgroupWrite { file, value, result: Some(r), .. }
                if *file == procs && value.starts_with("not-a-pid") && r.ret < 0 && r.errno.is_some())),
        "the failed write, with its errno, missing:\n{dump}"
    );
    assert!(
        t.events
            .iter()
            .any(|e| matches!(&e.body, Body::CgroupRmdir(c) if c.path == path)),
        "rmdir missing:\n{dump}"
    );
}
