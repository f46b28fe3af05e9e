//! cgroup events on a pure cgroup2 layout, the one most users' machines have.
//! This machine is hybrid, so the test mounts a cgroup2 tree in a private mount
//! namespace and works there (only the core files: cgroup.procs and friends).

use std::process::Command;

use inspector::event::Body;
use tests::{Need, TempDir, Tracer, probe_test, ready};

#[test]
fn cgroup2_mkdir_write_attach_and_rmdir_with_results() {
    let Some(_lock) = probe_test(&[Need::Trace]) else {
        return;
    };
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

/// A block device of the host that root can open here, as (major, minor): a
/// disk from /proc/partitions, or else a loop device (some sandboxes, this
/// machine's among them, refuse every open of their disk even to root, which
/// would make the test pass whatever the runtime does).
fn host_block_device() -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/proc/partitions").ok()?;
    let disks = text.lines().skip(2).filter_map(|l| {
        let mut f = l.split_whitespace();
        let (major, minor) = (f.next()?.parse().ok()?, f.next()?.parse().ok()?);
        Some((major, minor, format!("/dev/{}", f.nth(1)?)))
    });
    disks
        .chain(std::iter::once((7, 0, "/dev/loop0".to_string())))
        .find(|(_, _, path)| std::fs::File::open(path).is_ok())
        .map(|(major, minor, _)| (major, minor))
}

/// A container with CAP_MKNOD (Docker gives it by default) that makes the
/// host's disk node and tries to open it: read-only, then read-write; then
/// /dev/null, which every container may use.
fn disk_bundle(
    name: &str,
    disk: (u32, u32),
    extra_rule: Option<serde_json::Value>,
) -> tests::runtime::Bundle {
    let script = format!(
        "mknod /dev/hostdisk b {} {} && echo mknod-ok
         (: < /dev/hostdisk) 2>&1; echo read=$?
         (: <> /dev/hostdisk) 2>&1; echo readwrite=$?
         echo x > /dev/null && : < /dev/null && echo null-ok",
        disk.0, disk.1
    );
    let mut b = tests::runtime::Bundle::new(name, &["sh", "-c", &script]);
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!("CAP_MKNOD"));
    }
    // `inspector-runtime spec` (like runc's and Docker's) starts from "deny all".
    let rules = b.config["linux"]["resources"]["devices"]
        .as_array_mut()
        .unwrap();
    assert_eq!(rules[0]["allow"], false, "{rules:?}");
    if let Some(r) = extra_rule {
        rules.push(r);
    }
    b.save();
    b
}

/// Runs a bundle with `inspector-runtime run` in a private mount namespace
/// whose /sys/fs/cgroup is a cgroup2 mount, so the runtime sees a pure
/// cgroup2 host. Returns the container's output.
fn run_on_pure_cgroup2(rt: &tests::runtime::Runtime, b: &tests::runtime::Bundle) -> String {
    let out_file = b.path().join("out");
    let script = format!(
        "mount -t cgroup2 none /sys/fs/cgroup && {bin} --root {root} run --bundle {bundle} {id} > {out} 2>&1; echo exit=$? >> {out}",
        bin = tests::runtime_bin().display(),
        root = rt.root.path().display(),
        bundle = b.path().display(),
        id = b.id,
        out = out_file.display(),
    );
    let status = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .status()
        .unwrap();
    // run removes the cgroup; make sure of it should it have failed midway
    // (the hybrid host shows the same cgroup2 tree under unified/).
    let _ = std::fs::remove_dir(format!(
        "/sys/fs/cgroup/unified{}",
        tests::runtime::cgroups_path(&b.id)
    ));
    assert!(status.success(), "the cgroup2 script failed");
    std::fs::read_to_string(out_file).unwrap()
}

/// Hole: with cgroup2 alone the runtime used to ignore `linux.resources.devices`,
/// so mknod + open of a host disk worked. Now the rules become an eBPF device
/// program on the container's cgroup: the node can be made (mknod is "m",
/// allowed to all as runc does) but not opened.
#[test]
fn on_pure_cgroup2_a_host_disk_made_with_mknod_cannot_be_opened() {
    let Some(disk) = disk_ready() else {
        return;
    };
    let rt = tests::runtime::Runtime::new("cg2-devices");
    let b = disk_bundle("cg2-devices", disk, None);
    let out = run_on_pure_cgroup2(&rt, &b);
    assert_eq!(
        out,
        "mknod-ok\nsh: can't open /dev/hostdisk: Operation not permitted\nread=1\n\
         sh: can't create /dev/hostdisk: Operation not permitted\nreadwrite=1\nnull-ok\nexit=0\n",
        "{out}"
    );
    rt.assert_nothing_left(&b);
}

/// The runtime is ready and the host has a block device root can open
/// (the disk the device tests try to reach from a container), or skips.
fn disk_ready() -> Option<(u32, u32)> {
    if !ready(&[Need::Root, Need::Runtime]) {
        return None;
    }
    let disk = host_block_device();
    tests::require(
        disk.is_some(),
        "a block device root can open (/proc/partitions or /dev/loop0)",
    );
    disk
}

/// A device the rules allow works on pure cgroup2, with the access they give
/// (read here, not write).
#[test]
fn on_pure_cgroup2_an_allowed_device_opens_with_the_allowed_access() {
    let Some(disk) = disk_ready() else {
        return;
    };
    let rt = tests::runtime::Runtime::new("cg2-allowed");
    let rule = serde_json::json!({"allow": true, "type": "b", "major": disk.0, "minor": disk.1, "access": "r"});
    let b = disk_bundle("cg2-allowed", disk, Some(rule));
    let out = run_on_pure_cgroup2(&rt, &b);
    assert_eq!(
        out,
        "mknod-ok\nread=0\nsh: can't create /dev/hostdisk: Operation not permitted\nreadwrite=1\nnull-ok\nexit=0\n",
        "{out}"
    );
    rt.assert_nothing_left(&b);
}

/// The same bundle on this hybrid host: the v1 devices controller refuses the
/// disk as before.
#[test]
fn on_the_hybrid_host_the_v1_devices_controller_still_refuses_the_disk() {
    let Some(disk) = disk_ready() else {
        return;
    };
    if !tests::require(
        std::path::Path::new("/sys/fs/cgroup/devices").is_dir(),
        "a cgroup v1 devices hierarchy (a hybrid host)",
    ) {
        return;
    }
    let rt = tests::runtime::Runtime::new("v1-devices");
    let b = disk_bundle("v1-devices", disk, None);
    let (code, out, err) = rt.run(&b);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out,
        "mknod-ok\nsh: can't open /dev/hostdisk: Operation not permitted\nread=1\n\
         sh: can't create /dev/hostdisk: Operation not permitted\nreadwrite=1\nnull-ok\n",
        "{out}{err}"
    );
    rt.assert_nothing_left(&b);
}
