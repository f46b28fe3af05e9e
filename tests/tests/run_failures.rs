//! Why did this container fail? Each way a start (or a run) fails that
//! `inspector run --bundle` can set up on this host, run for real with the
//! bundled runtime: what `inspector run` prints first (`failed: …` and the
//! runtime's words) and the failure in the recording's timeline (role,
//! phase, call and errno, or the kernel's kill). The cases under Docker are
//! in trace_docker.rs.

use std::process::{Command, Output, Stdio};

use inspector::timeline::{Builder, ContainerTimeline, Failure, Phase, Role, reader};
use serde_json::{Value, json};
use tests::{Need, TempDir, inspector_bin, probe_test, runtime::Bundle};

/// `inspector run --brief --export FILE --bundle` of a busybox bundle
/// running `args`, its config changed by `edit`: its output, and the
/// timeline of the recording it exported.
fn run_bundle(
    name: &str,
    args: &[&str],
    edit: impl FnOnce(&mut Value),
) -> (Output, ContainerTimeline) {
    let mut b = Bundle::new(name, args);
    edit(&mut b.config);
    b.save();
    let out_dir = TempDir::new(&format!("run-failure-{name}"));
    let recording = out_dir.path().join("run.jsonl");
    let out = Command::new(inspector_bin())
        .env("INSPECTOR_KEEP_PROBE", tests::KEEP)
        .args(["run", "--brief", "--name", &b.id, "--export"])
        .arg(&recording)
        .arg("--bundle")
        .arg(b.path())
        .stdin(Stdio::null())
        .output()
        .expect("start inspector run");
    let mut builder = Builder::new();
    let file = std::fs::File::open(&recording).expect("the run was exported");
    reader::for_each_event(file, |e| builder.push(e)).unwrap();
    let mut timelines = builder.finish();
    timelines.retain(|t| t.id == b.id);
    assert_eq!(
        timelines.len(),
        1,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out, timelines.remove(0))
}

/// The failure, checked against what `inspector run` printed: its summary
/// first, under the container's line.
fn failure(out: &Output, t: &ContainerTimeline) -> Failure {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let f = t
        .failure
        .clone()
        .unwrap_or_else(|| panic!("no failure:\n{stderr}"));
    let mut lines = stderr.lines().skip_while(|l| !l.starts_with("container "));
    lines.next();
    assert_eq!(
        lines.next(),
        Some(format!("  failed: {}", f.summary).as_str()),
        "{stderr}"
    );
    assert!(t.complete, "{stderr}");
    f
}

fn said(f: &Failure, words: &str) -> bool {
    f.messages.iter().any(|m| m.text.contains(words))
}

#[test]
fn a_bind_mount_whose_source_is_missing_fails_in_runtime_init_with_enoent() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::BundledRuntime]) else {
        return;
    };
    let (out, t) = run_bundle("bind-missing", &["true"], |c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/x", "type": "bind",
            "source": "/nonexistent-inspector-source", "options": ["rbind"]
        }));
    });
    let f = failure(&out, &t);
    assert_eq!(
        (f.role, f.phase),
        (Role::RuntimeInit, Some(Phase::Create)),
        "{f:#?}"
    );
    assert_eq!(
        (f.syscall.as_deref(), f.errno.as_deref()),
        (Some("mount"), Some("ENOENT"))
    );
    assert!(
        f.subject
            .as_deref()
            .unwrap_or("")
            .starts_with("/nonexistent-inspector-source on ")
    );
    assert!(
        said(&f, "/nonexistent-inspector-source"),
        "the runtime's words: {f:#?}"
    );
    assert!(!t.phases.iter().any(|p| p.phase == Phase::Running));
}

#[test]
fn a_create_runtime_hook_that_exits_1_is_the_failure() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::BundledRuntime]) else {
        return;
    };
    let (out, t) = run_bundle("hook-fails", &["true"], |c| {
        c["hooks"] = json!({"createRuntime": [{"path": "/bin/false", "args": ["false"]}]});
    });
    let f = failure(&out, &t);
    assert_eq!(
        (f.role, f.phase, f.exit_code),
        (Role::Hook, Some(Phase::Create), Some(1)),
        "{f:#?}"
    );
    assert!(
        f.summary
            .starts_with("the hook /bin/false exited 1 during create"),
        "{}",
        f.summary
    );
    assert!(said(&f, "createRuntime hook /bin/false"), "{f:#?}");
}

#[test]
fn an_rlimit_above_the_hard_limit_is_refused_with_eperm_in_runtime_init() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::BundledRuntime]) else {
        return;
    };
    // Raising a hard limit needs CAP_SYS_RESOURCE: refused where root lacks
    // it (this host); elsewhere above the kernel's own ceiling (nr_open).
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let (out, t) = run_bundle("rlimit", &["true"], |c| {
        c["process"]["rlimits"] =
            json!([{"type": "RLIMIT_NOFILE", "hard": nr_open + 1, "soft": 1024}]);
    });
    let f = failure(&out, &t);
    assert_eq!(f.role, Role::RuntimeInit, "{f:#?}");
    assert_eq!(
        (f.syscall.as_deref(), f.subject.as_deref()),
        (Some("prlimit64"), Some("RLIMIT_NOFILE")),
        "{f:#?}"
    );
    assert!(matches!(f.errno.as_deref(), Some("EPERM")), "{f:#?}");
    assert!(
        f.summary
            .starts_with("the host refused the limit RLIMIT_NOFILE"),
        "{}",
        f.summary
    );
}

#[test]
fn an_entrypoint_over_its_memory_limit_is_named_as_killed_by_the_oom_killer() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::BundledRuntime]) else {
        return;
    };
    // `tail` keeps a line it has not seen the end of: 200 MB without one.
    let (out, t) = run_bundle(
        "oom",
        &[
            "/bin/sh",
            "-c",
            "head -c 200000000 /dev/zero | busybox tail",
        ],
        |c| {
            c["linux"]["resources"] = json!({"memory": {"limit": 8388608, "swap": 8388608}});
        },
    );
    let f = failure(&out, &t);
    assert_eq!(
        (f.killed_by.as_deref(), f.signal.as_deref()),
        (Some("oom"), Some("SIGKILL")),
        "{f:#?}"
    );
    assert!(
        matches!(f.role, Role::Entrypoint | Role::EntrypointChild),
        "{f:#?}"
    );
    assert_eq!(f.phase, Some(Phase::Running));
    assert!(
        f.summary.contains("was killed by the OOM killer"),
        "{}",
        f.summary
    );
    assert!(
        t.steps.iter().any(|s| s.kind == "killed" && s.pid > 0),
        "the kill is a step of the container"
    );
}

#[test]
fn a_seccomp_kill_names_the_signal_and_the_call() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::BundledRuntime]) else {
        return;
    };
    // busybox sh reads its parent's pid first thing ($PPID).
    let (out, t) = run_bundle("seccomp-kill", &["/bin/sh", "-c", "echo hi"], |c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]
        });
    });
    let f = failure(&out, &t);
    assert_eq!(
        (f.role, f.phase),
        (Role::Entrypoint, Some(Phase::Running)),
        "{f:#?}"
    );
    assert_eq!(
        (
            f.killed_by.as_deref(),
            f.syscall.as_deref(),
            f.signal.as_deref()
        ),
        (Some("seccomp"), Some("getppid"), Some("SIGSYS"))
    );
    assert_eq!(t.signal.as_deref(), Some("SIGSYS"));
}

#[test]
fn an_entrypoint_that_exits_3_did_not_fail() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::BundledRuntime]) else {
        return;
    };
    let (out, t) = run_bundle("exit-3", &["/bin/sh", "-c", "exit 3"], |_| {});
    assert_eq!(out.status.code(), Some(3));
    assert_eq!((t.exit_code, &t.failure), (Some(3), &None));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("failed:"));
}
