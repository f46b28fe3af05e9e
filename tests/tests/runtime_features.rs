//! What a container gets from config.json under `inspector-runtime`, checked
//! from inside the container.

use serde_json::json;
use tests::runtime::{Bundle, Runtime, run_ok, runc_run};
use tests::{Need, ready};

#[test]
fn hostname_env_cwd_user_umask() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let out = run_ok(
        "process",
        "hostname; echo $GREETING; pwd; id -u; id -g; id -G; umask",
        |c| {
            c["hostname"] = json!("box");
            c["process"]["env"] = json!(["PATH=/bin", "GREETING=hello"]);
            c["process"]["cwd"] = json!("/tmp");
            c["process"]["user"] =
                json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 7], "umask": 63});
        },
    );
    assert_eq!(out, "box\nhello\n/tmp\n1000\n1001\n1001 5 7\n0077\n");
}

/// As runc: a working directory missing from the image is made
/// (`docker run -w /new/dir`), inside the container's root.
#[test]
fn a_missing_working_directory_is_made() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let out = run_ok("newcwd", "pwd; ls -d /made/by", |c| {
        c["process"]["cwd"] = json!("/made/by/the/runtime");
    });
    assert_eq!(out, "/made/by/the/runtime\n/made/by\n");
}

#[test]
fn rlimits_oom_score_adj_no_new_privileges() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let out = run_ok(
        "limits",
        "ulimit -n; cat /proc/self/oom_score_adj; grep NoNewPrivs /proc/self/status",
        |c| {
            c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 321, "soft": 123}]);
            c["process"]["oomScoreAdj"] = json!(500);
            c["process"]["noNewPrivileges"] = json!(true);
        },
    );
    assert_eq!(out, "123\n500\nNoNewPrivs:\t1\n");
}

#[test]
fn capability_sets() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let out = run_ok("caps", "grep ^Cap /proc/self/status", |c| {
        let two = json!(["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"],
            "effective": two, "permitted": two, "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]
        });
    });
    // KILL is 5, NET_BIND_SERVICE 10, CHOWN 0.
    assert!(out.contains("CapInh:\t0000000000000020"), "{out}");
    assert!(out.contains("CapPrm:\t0000000000000420"), "{out}");
    assert!(out.contains("CapEff:\t0000000000000420"), "{out}");
    assert!(out.contains("CapBnd:\t0000000000000421"), "{out}");
    assert!(out.contains("CapAmb:\t0000000000000020"), "{out}");
}

#[test]
fn readonly_root_mounts_devices_sysctl() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let host = tests::TempDir::new("rt-bind");
    std::fs::write(host.path().join("file"), "from the host\n").unwrap();
    let out = run_ok(
        "mounts",
        "touch /x 2>/dev/null && echo rw || echo ro; cat /host/file; touch /host/new && echo bind-rw; \
         grep ' /scratch ' /proc/mounts | grep -c size=1024k; stat -c '%t:%T' /dev/mine; \
         cat /proc/sys/net/ipv4/ip_forward; ls /dev/null /dev/zero /dev/urandom /dev/tty | wc -l",
        |c| {
            c["root"]["readonly"] = json!(true);
            let mounts = c["mounts"].as_array_mut().unwrap();
            mounts.push(json!({"destination": "/host", "type": "bind", "source": host.path(), "options": ["rbind", "rw"]}));
            mounts.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1024k", "nosuid"]}));
            c["linux"]["devices"] = json!([{"path": "/dev/mine", "type": "c", "major": 1, "minor": 3, "fileMode": 438}]);
            c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        },
    );
    assert_eq!(out, "ro\nfrom the host\nbind-rw\n1\n1:3\n1\n4\n");
    assert!(host.path().join("new").exists());
}

#[test]
fn pivot_and_no_pivot() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let rt = Runtime::new("nopivot");
    let b = Bundle::new("nopivot", &["sh", "-c", "ls / | wc -l"]);
    let out = rt.ok(&[
        "run",
        "--no-pivot",
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]);
    let entries = std::fs::read_dir(b.rootfs()).unwrap().count();
    assert_eq!(out.trim(), entries.to_string());
    rt.assert_nothing_left(&b);
}

#[test]
fn seccomp_rules_with_errno_and_arguments() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let out = run_ok(
        "seccomp",
        "mkdir /tmp/d 2>&1; echo mkdir=$?; touch /tmp/f && echo touch-ok",
        |c| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [
                    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                    // Only refuses personality(0xdead): everything else is allowed.
                    {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                     "args": [{"index": 0, "value": 57005, "op": "SCMP_CMP_EQ"}]}
                ]
            });
        },
    );
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(out.contains("mkdir=1"), "{out}");
    assert!(out.contains("touch-ok"), "{out}");
}

#[test]
fn hooks_run_in_spec_order_with_the_state() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let rt = Runtime::new("hooks");
    let mut b = Bundle::new("hooks", &["sh", "-c", "echo entrypoint >> /tmp/order"]);
    let log = b.path().join("order");
    let state = b.path().join("state.json");
    let host_hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {name} >> {}", log.display())]});
    b.config["hooks"] = json!({
        "prestart": [host_hook("prestart"),
                     {"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", state.display())]}],
        "createRuntime": [host_hook("createRuntime")],
        "createContainer": [host_hook("createContainer")],
        // After pivot_root: a path inside the container.
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo startContainer >> /tmp/order"]}],
        "poststart": [host_hook("poststart")],
        "poststop": [host_hook("poststop")],
    });
    b.save();
    let (code, out, err) = rt.run(&b);
    assert_eq!(code, 0, "{out}{err}");
    let host = std::fs::read_to_string(&log).unwrap();
    let host: Vec<&str> = host.lines().collect();
    assert_eq!(
        host,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop"
        ]
    );
    let inside = std::fs::read_to_string(b.rootfs().join("tmp/order")).unwrap();
    assert_eq!(inside, "startContainer\nentrypoint\n");
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(st["id"], b.id.as_str());
    assert!(st["pid"].as_i64().unwrap() > 0);
    assert_eq!(
        st["bundle"],
        b.path().canonicalize().unwrap().to_str().unwrap()
    );
    rt.assert_nothing_left(&b);
}

#[test]
fn cgroup_limits_are_applied() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let out = run_ok(
        "cgroups",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max \
         /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us",
        |c| {
            c["linux"]["resources"]["memory"] = json!({"limit": 67108864});
            c["linux"]["resources"]["pids"] = json!({"limit": 42});
            c["linux"]["resources"]["cpu"] =
                json!({"shares": 512, "quota": 50000, "period": 100000});
        },
    );
    assert_eq!(out, "67108864\n42\n512\n50000\n");
}

#[test]
fn user_namespace_with_mappings() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let out = run_ok(
        "userns",
        "cat /proc/self/uid_map /proc/self/gid_map | tr -s ' '; id -u",
        |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            c["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            c["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        },
    );
    assert_eq!(out, " 0 100000 65536\n 0 100000 65536\n0\n");
}

#[test]
fn time_namespace_offsets() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let out = run_ok("timens", "cut -d. -f1 /proc/uptime", |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 1000000, "nanosecs": 0}});
    });
    let up: u64 = out.trim().parse().unwrap();
    assert!(up >= 1_000_000, "{out}");
}

#[test]
fn joins_a_namespace_by_path() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let rt = Runtime::new("join");
    let a = Bundle::new("join-a", &["sleep", "100"]);
    rt.ok(&["run", "-d", "--bundle", a.path().to_str().unwrap(), &a.id]);
    let pid = rt.state(&a.id)["pid"].as_i64().unwrap();
    let want = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let mut b = Bundle::new("join-b", &["readlink", "/proc/self/ns/net"]);
    for ns in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "network" {
            ns["path"] = json!(format!("/proc/{pid}/ns/net"));
        }
    }
    b.save();
    let (code, out, err) = rt.run(&b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), want.to_str().unwrap());
    rt.ok(&["delete", "--force", &a.id]);
    rt.assert_nothing_left(&a);
    rt.assert_nothing_left(&b);
}

/// Pure cgroup2 (what most machines have): this machine's v1 hybrid layout is
/// swapped for a cgroup2 mount in a private mount namespace. Only the core
/// files work there (the controllers stay bound to v1), which is enough for
/// membership, the cgroup namespace and freezing.
#[test]
fn pure_cgroup2() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let rt = Runtime::new("cgroup2");
    let b = Bundle::new(
        "cgroup2",
        &[
            "sh",
            "-c",
            "cat /proc/self/cgroup /sys/fs/cgroup/cgroup.procs; sleep 100",
        ],
    );
    let r = format!(
        "{} --root {}",
        tests::runtime_bin().display(),
        rt.root.path().display()
    );
    let dir = format!("/sys/fs/cgroup{}", tests::runtime::cgroups_path(&b.id));
    let out_file = b.path().join("out");
    let script = format!(
        "set -e; mount -t cgroup2 none /sys/fs/cgroup
         {r} run -d --bundle {bundle} {id} > {out} 2>&1
         {r} pause {id}; {r} state {id} | grep -o '\"status\": \"[a-z]*\"'; cat {dir}/cgroup.freeze
         {r} resume {id}; {r} state {id} | grep -o '\"status\": \"[a-z]*\"'; cat {dir}/cgroup.freeze
         {r} delete --force {id}
         test -e {dir} && echo left || echo gone",
        bundle = b.path().display(),
        id = b.id,
        out = out_file.display(),
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text,
        "\"status\": \"paused\"\n1\n\"status\": \"running\"\n0\ngone\n"
    );
    let inside = std::fs::read_to_string(out_file).unwrap();
    // The cgroup namespace's root is the container's own cgroup, which holds
    // the shell (pid 1) and its cat (pid 2).
    assert!(inside.ends_with("\n0::/\n1\n2\n"), "{inside}");
}

/// An image's dangling symlink at a mount target (like /etc/resolv.conf →
/// ../run/...) is followed inside the rootfs and its target made, as runc does.
#[test]
fn mount_on_a_dangling_symlink_inside_the_image() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let host = tests::TempDir::new("rt-resolv");
    std::fs::write(host.path().join("resolv.conf"), "nameserver 192.0.2.1\n").unwrap();
    let rt = Runtime::new("dangling");
    let mut b = Bundle::new("dangling", &["cat", "/etc/resolv.conf"]);
    std::os::unix::fs::symlink(
        "../run/systemd/resolv.conf",
        b.rootfs().join("etc/resolv.conf"),
    )
    .unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/etc/resolv.conf", "type": "bind",
        "source": host.path().join("resolv.conf"), "options": ["rbind", "ro"]
    }));
    b.save();
    let (code, out, err) = rt.run(&b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "nameserver 192.0.2.1\n");
    assert!(b.rootfs().join("run/systemd/resolv.conf").is_file());
    rt.assert_nothing_left(&b);
}

/// `inspector-runtime features`, the document containerd 1.7+ asks for,
/// against runc's on the same machine: the same hooks, namespaces, seccomp
/// operators and cgroup versions, nothing claimed that runc does not do
/// (every mount option is one runc knows), and SCMP_ACT_NOTIFY, which this
/// runtime refuses, left out.
#[test]
fn features_says_what_runc_says_where_they_agree() {
    if !ready(&[Need::Runtime]) {
        return;
    }
    let features =
        |rt: Runtime| -> serde_json::Value { serde_json::from_str(&rt.ok(&["features"])).unwrap() };
    let ours = features(Runtime::new("features"));
    let runc = features(Runtime::runc("features"));
    let set = |v: &serde_json::Value| -> std::collections::BTreeSet<String> {
        v.as_array()
            .unwrap_or_else(|| panic!("not a list: {v}"))
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(set(&ours["hooks"]), set(&runc["hooks"]));
    assert!(
        set(&ours["linux"]["namespaces"]).is_superset(&set(&runc["linux"]["namespaces"])),
        "{ours}"
    );
    let unknown: Vec<String> = set(&ours["mountOptions"])
        .difference(&set(&runc["mountOptions"]))
        .cloned()
        .collect();
    assert!(
        unknown.is_empty(),
        "options runc does not know: {unknown:?}"
    );
    assert_eq!(
        set(&ours["linux"]["seccomp"]["operators"]),
        set(&runc["linux"]["seccomp"]["operators"])
    );
    let mut actions = set(&runc["linux"]["seccomp"]["actions"]);
    actions.remove("SCMP_ACT_NOTIFY");
    assert_eq!(set(&ours["linux"]["seccomp"]["actions"]), actions);
    for version in ["v1", "v2"] {
        assert_eq!(ours["linux"]["cgroup"][version], true);
    }
    assert_eq!(ours["linux"]["cgroup"]["systemd"], false, "cgroupfs only");
}

/// A fifo in `linux.devices` is made in the container, with no device
/// rule written for it (the kernel refuses a `p` rule), as runc does.
#[test]
fn a_fifo_device_is_made_as_runc_makes_it() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let script = "ls -l /dev/myfifo | cut -c1";
    let fifo = |c: &mut serde_json::Value| {
        c["linux"]["devices"] = json!([{
            "path": "/dev/myfifo", "type": "p", "major": 8, "minor": 666, "fileMode": 420
        }]);
    };
    let ours = run_ok("fifo", script, fifo);
    let mut b = Bundle::new("fifo-runc", &["sh", "-c", script]);
    fifo(&mut b.config);
    b.save();
    assert_eq!(ours, runc_run(&b));
    assert_eq!(ours, "p\n");
}

/// `"rootfsPropagation": "shared"`: pivot_root needs the new root's parent
/// mount private; runc runs it, and so does this runtime, with the same root
/// inside (runc 1.1 leaves the pivoted root out of any peer group).
#[test]
fn a_shared_root_propagation_runs_as_with_runc() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let script = "awk '$5 == \"/\" { print ($0 ~ / shared:/) ? \"shared\" : \"not shared\" }' /proc/self/mountinfo";
    let shared = |c: &mut serde_json::Value| c["linux"]["rootfsPropagation"] = json!("shared");
    let ours = run_ok("rootfs-shared", script, shared);
    let mut b = Bundle::new("rootfs-shared-runc", &["sh", "-c", script]);
    shared(&mut b.config);
    b.save();
    assert_eq!(ours, runc_run(&b));
}

/// Runs `prog ARGS` from a shell that opened three files at fds 3, 4 and 5
/// first: (exit code, stdout, stderr).
fn with_three_fds(
    dir: &std::path::Path,
    prog: &std::path::Path,
    args: &[&str],
) -> (i32, String, String) {
    for (i, name) in ["three", "four", "five"].iter().enumerate() {
        std::fs::write(dir.join(format!("fd{}", i + 3)), format!("{name}\n")).unwrap();
    }
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(r#"cd "$1" && shift && exec 3<fd3 4<fd4 5<fd5 && exec "$@""#)
        .arg("bash")
        .arg(dir)
        .arg(prog)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `--preserve-fds N` (podman's conmon and systemd socket activation pass
/// listening sockets this way): fds 3 .. 3+N reach the entrypoint at the same
/// numbers, and nothing above them does; for `run` and for `exec`, as with
/// runc. An fd that is not open is refused before anything is made.
#[test]
fn preserved_fds_reach_the_entrypoint_as_with_runc() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    // What the process sees at 3, 4 and 5 (5 must be closed).
    let script = "cat <&3; cat <&4; cat <&5 2>/dev/null || echo no 5";
    let files = tests::TempDir::new("rt-preserve");
    let run = |prog: &std::path::Path, root: &std::path::Path, name: &str| {
        let b = Bundle::new(name, &["sh", "-c", script]);
        let root = root.to_str().unwrap();
        let (code, out, err) = with_three_fds(
            files.path(),
            prog,
            &[
                "--root",
                root,
                "run",
                "--preserve-fds",
                "2",
                "--bundle",
                b.path().to_str().unwrap(),
                &b.id,
            ],
        );
        assert_eq!(code, 0, "{} run: {out}{err}", prog.display());
        (b, out)
    };
    let rt = Runtime::new("preserve");
    let (b, ours) = run(&tests::paths::runtime_bin(), rt.root.path(), "preserve");
    assert_eq!(ours, "three\nfour\nno 5\n");
    rt.assert_nothing_left(&b);
    let runc_root = tests::TempDir::new("runc-root-preserve");
    let (_, theirs) = run(
        std::path::Path::new("runc"),
        runc_root.path(),
        "preserve-runc",
    );
    assert_eq!(ours, theirs);

    // exec into a running container: the same.
    let b = Bundle::new("preserve-exec", &["sleep", "30"]);
    let rt = Runtime::new("preserve-exec");
    rt.run_detached(&b);
    let root = rt.root.path().to_str().unwrap();
    let (code, out, err) = with_three_fds(
        files.path(),
        &tests::paths::runtime_bin(),
        &[
            "--root",
            root,
            "exec",
            "--preserve-fds",
            "2",
            &b.id,
            "sh",
            "-c",
            script,
        ],
    );
    assert_eq!((code, out.as_str()), (0, "three\nfour\nno 5\n"), "{err}");

    // Three asked for, two open (fd 5 is closed here): refused, naming the fd.
    let (code, _, err) = with_three_fds(
        files.path(),
        std::path::Path::new("bash"),
        &[
            "-c",
            r#"exec 5<&-; exec "$@""#,
            "bash",
            tests::paths::runtime_bin().to_str().unwrap(),
            "--root",
            root,
            "exec",
            "--preserve-fds",
            "3",
            &b.id,
            "true",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--preserve-fds 3: fd 5 is not open"), "{err}");
    rt.ok(&["delete", "--force", &b.id]);
    rt.assert_nothing_left(&b);
}

/// A capability the host does not have (this machine lacks CAP_SYS_RESOURCE;
/// `docker run --privileged` asks for all): runc fails at `create`, with
/// "unable to apply caps" in the log the shim reads; so does this runtime, and
/// leaves nothing behind. On a host that has every capability both run it.
#[test]
fn an_unavailable_capability_fails_create_as_with_runc() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let all = json!(["CAP_KILL", "CAP_SYS_RESOURCE"]);
    let bundle = |name: &str| {
        let mut b = Bundle::new(name, &["true"]);
        b.config["process"]["capabilities"] =
            json!({"bounding": all, "effective": all, "permitted": all});
        b.save();
        b
    };
    // Whatever create left, deleted, so that only the failure's leftovers count.
    let create = |rt: &Runtime, b: &Bundle| {
        let made = rt.create_logged(b);
        let _ = rt.out(&["delete", "--force", &b.id]);
        made
    };
    let (runc_code, runc_log) = create(&Runtime::runc("caps-runc"), &bundle("caps-runc"));
    let rt = Runtime::new("caps-create");
    let b = bundle("caps-create");
    let (code, log) = create(&rt, &b);
    assert_eq!(code, runc_code, "runc: {runc_log}\nours: {log}");
    if runc_code != Some(0) {
        assert!(runc_log.contains("unable to apply caps"), "{runc_log}");
        let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
        assert_eq!(last["level"], "error", "{log}");
        let msg = last["msg"].as_str().unwrap();
        assert!(
            msg.contains("cannot apply the capabilities (capset): Operation not permitted"),
            "{msg}"
        );
    }
    rt.assert_nothing_left(&b);
}
