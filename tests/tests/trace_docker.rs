//! `inspector trace` against the real Docker engine: one `docker run` must show
//! the whole chain the kernel saw, from the docker CLI to the last cgroup removed.

use std::process::Command;

use inspector::{
    event::{Body, Event},
    timeline::{Builder, ContainerTimeline, Phase, Role},
};
use tests::{DOCKER, Need, TempDir, Trace, Tracer, image, probe_test};

/// Runs `docker run --rm ARGS IMAGE true` under the tracer; returns the trace
/// and the container id.
fn traced_docker_run(extra: &[&str]) -> (Trace, String) {
    let dir = TempDir::new("cid");
    let cidfile = dir.path().join("cid");
    let tracer = Tracer::start(&[]);
    let status = Command::new(DOCKER)
        .args(["run", "--rm", "--cidfile"])
        .arg(&cidfile)
        .args(extra)
        .arg(image())
        .arg("true")
        .status()
        .unwrap();
    let trace = tracer.stop();
    assert!(status.success(), "docker run failed: {status}");
    assert!(trace.success, "inspector failed: {}", trace.stderr);
    let id = std::fs::read_to_string(&cidfile)
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "container id from --cidfile: {id:?}");
    (trace, id)
}

fn has_flags(flags: &str, wanted: &[&str]) -> bool {
    let set: Vec<&str> = flags.split('|').collect();
    wanted.iter().all(|w| set.contains(w))
}

fn argv_has(argv: &[String], word: &str) -> bool {
    argv.iter().any(|a| a == word)
}

#[test]
fn docker_run_shows_the_whole_chain() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    let (t, id) = traced_docker_run(&[]);
    let dump = t.dump();
    let ctx = |what: &str| format!("{what} missing for container {id}; the trace:\n{dump}");

    assert!(
        t.stderr.contains(" 0 lost"),
        "events were lost: {}",
        t.stderr
    );
    assert_eq!(t.kinds("lost").count(), 0);

    // The docker CLI.
    assert!(
        t.execs()
            .any(|(_, f, argv)| f.ends_with("/docker") && argv_has(argv, "run")),
        "{}",
        ctx("the docker CLI's exec")
    );

    // containerd-shim-runc-v2: the short-lived `start` one and the long-lived one.
    let shims: Vec<_> = t
        .execs()
        .filter(|(_, f, argv)| f.ends_with("containerd-shim-runc-v2") && argv_has(argv, &id))
        .collect();
    assert!(
        shims.iter().any(|(_, _, argv)| argv_has(argv, "start")),
        "{}",
        ctx("the shim's `start` exec")
    );
    assert!(shims.len() >= 2, "{}", ctx("the long-lived shim's exec"));

    // runc create, start and delete, each naming the container.
    for verb in ["create", "start", "delete"] {
        assert!(
            t.execs().any(|(_, f, argv)| f.ends_with("/runc")
                && argv_has(argv, verb)
                && argv_has(argv, &id)),
            "{}",
            ctx(&format!("runc {verb}"))
        );
    }

    // runc's re-exec of itself from a sealed memfd: /proc/self/exe, then /dev/fd/N.
    let reexec = t
        .execs()
        .find(|(_, f, argv)| *f == "/proc/self/exe" && argv_has(argv, "init"))
        .unwrap_or_else(|| panic!("{}", ctx("runc init's exec of /proc/self/exe")));
    let parent_tgid = Trace::tgid(reexec.0);
    assert!(
        t.execs().any(|(e, f, _)| Trace::tgid(e) == parent_tgid
            && (f.starts_with("/dev/fd/") || f.starts_with("/proc/self/fd/"))),
        "{}",
        ctx("the memfd re-exec (/dev/fd/N)")
    );

    // The entrypoint, and the process it runs in.
    let entry = t
        .execs()
        .find(|(_, f, _)| *f == "/bin/true")
        .unwrap_or_else(|| panic!("{}", ctx("the entrypoint's exec")));
    let init = Trace::tgid(entry.0);
    assert!(
        t.exited_with(init, 0),
        "{}",
        ctx("the entrypoint's exit with code 0")
    );

    // cgroups made for the container, runc's init process joining them (it then
    // forks the child that becomes the container's init, which inherits them),
    // and controller files written.
    let mkdirs: Vec<&Event> = t
        .events
        .iter()
        .filter(|e| matches!(&e.body, Body::CgroupMkdir(c) if c.path.ends_with(&id)))
        .collect();
    assert!(!mkdirs.is_empty(), "{}", ctx("cgroup mkdir"));
    assert!(
        t.events.iter().any(|e| matches!(&e.body,
            Body::CgroupAttach { cgroup, task_tgid, .. } if cgroup.path.ends_with(&id) && *task_tgid == parent_tgid)),
        "{}",
        ctx("runc init joining the container's cgroup")
    );
    assert!(
        t.events.iter().any(|e| matches!(&e.body,
            Body::CgroupWrite { file, value, .. } if file.contains(&id)
                && file.ends_with("/cgroup.procs") && value.trim() == parent_tgid.to_string())),
        "{}",
        ctx("the cgroup.procs write of runc init's pid")
    );

    // Namespaces: runc's child unshares them all at once.
    assert!(
        t.events.iter().any(|e| matches!(&e.body,
            Body::Unshare { flags, result, .. } if result.ret == 0 && has_flags(flags,
                &["CLONE_NEWNS", "CLONE_NEWUTS", "CLONE_NEWIPC", "CLONE_NEWPID", "CLONE_NEWNET"]))),
        "{}",
        ctx("unshare(CLONE_NEWNS|NEWUTS|NEWIPC|NEWPID|NEWNET)")
    );

    // Docker's networking prestart hook, and a setns into the container's netns.
    assert!(
        t.execs().any(
            |(_, _, argv)| argv.first().is_some_and(|a| a == "libnetwork-setkey")
                && argv_has(argv, &id)
        ),
        "{}",
        ctx("the libnetwork-setkey prestart hook")
    );
    assert!(
        t.events.iter().any(|e| matches!(&e.body,
            Body::Setns { nstype, result, ns_inode: Some(_), .. } if nstype == "CLONE_NEWNET" && result.ret == 0)),
        "{}",
        ctx("setns(CLONE_NEWNET)")
    );

    // pivot_root(".", ".") by the init process, into the overlay's merged dir.
    assert!(
        t.events.iter().any(|e| Trace::tgid(e) == init
            && matches!(&e.body, Body::PivotRoot { new_root, cwd: Some(cwd), result, .. }
                if new_root == "." && cwd.ends_with("/merged") && result.ret == 0)),
        "{}",
        ctx("pivot_root into the rootfs")
    );

    // Teardown: the container's cgroups removed.
    assert!(
        t.events
            .iter()
            .any(|e| matches!(&e.body, Body::CgroupRmdir(c) if c.path.ends_with(&id))),
        "{}",
        ctx("cgroup rmdir")
    );

    // Every process exit says how it ended.
    for e in t.kinds("exit") {
        assert!(
            matches!(
                e.body,
                Body::Exit {
                    exit_code: Some(_),
                    ..
                } | Body::Exit {
                    signal: Some(_),
                    ..
                }
            ),
            "exit without code or signal: {e:?}"
        );
    }
}

#[test]
fn cgroupns_private_shows_runc_init_unsharing_the_cgroup_namespace() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    let (t, id) = traced_docker_run(&["--cgroupns", "private"]);
    assert!(
        t.events.iter().any(|e| matches!(&e.body,
            Body::Unshare { flags, result, .. } if flags.split('|').any(|f| f == "CLONE_NEWCGROUP") && result.ret == 0)),
        "unshare(CLONE_NEWCGROUP) missing for {id}:\n{}",
        t.dump()
    );
}

/// Runs `docker run --rm ARGS` under the tracer and builds its timelines;
/// returns docker's exit status, its timelines and the trace.
fn docker_run_timelines(
    args: &[&str],
) -> (std::process::ExitStatus, Vec<ContainerTimeline>, Trace) {
    let tracer = Tracer::start(&[]);
    let status = Command::new(DOCKER)
        .args(["run", "--rm"])
        .args(args)
        .status()
        .unwrap();
    let trace = tracer.stop();
    assert!(trace.success, "inspector failed: {}", trace.stderr);
    let mut builder = Builder::new();
    for e in trace.events.iter().cloned() {
        builder.push(e);
    }
    (status, builder.finish(), trace)
}

/// [`docker_run_timelines`] of a run that fails: docker's exit status and
/// the one timeline with a failure.
fn failed_docker_run(args: &[&str]) -> (std::process::ExitStatus, ContainerTimeline) {
    let (status, timelines, trace) = docker_run_timelines(args);
    let mut failed: Vec<_> = timelines
        .into_iter()
        .filter(|t| t.failure.is_some())
        .collect();
    assert_eq!(failed.len(), 1, "one failed start:\n{}", trace.dump());
    (status, failed.remove(0))
}

/// Did `role` say `words` (a runtime in its log, a client on its stderr)?
fn said(f: &inspector::timeline::Failure, role: Role, words: &str) -> bool {
    f.messages
        .iter()
        .any(|m| m.role == role && m.text.contains(words))
}

#[test]
fn a_container_whose_entrypoint_is_missing_ends_as_failed_in_create() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    let (status, t) = failed_docker_run(&[&image(), "/no/such"]);
    assert_eq!(
        status.code(),
        Some(127),
        "docker run of a missing entrypoint"
    );
    assert!(t.complete, "a failed start ends: {t:#?}");
    let f = t.failure.as_ref().unwrap();
    assert_eq!(
        (f.role, f.phase),
        (Role::RuntimeInit, Some(Phase::Create)),
        "{}",
        f.summary
    );
    assert_eq!(f.exit_code, Some(1), "{}", f.summary);
    // runc's words, from its log.json (gone with the bundle by now), once
    // though it also wrote them on its stderr; and the client's.
    assert!(
        said(f, Role::Runtime, "stat /no/such: no such file or directory"),
        "{f:#?}"
    );
    assert_eq!(
        f.messages
            .iter()
            .filter(|m| m.role == Role::Runtime)
            .count(),
        1,
        "{f:#?}"
    );
    assert!(
        said(f, Role::Client, "docker: Error response from daemon"),
        "{f:#?}"
    );
    assert!(
        f.summary
            .ends_with("stat /no/such: no such file or directory"),
        "{}",
        f.summary
    );
}

#[test]
fn an_entrypoint_that_is_not_an_executable_fails_at_start_with_enoexec() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    // Executable by its mode, but neither ELF nor `#!`: the kernel refuses
    // it (ENOEXEC) when runc init executes it, after `runc start`.
    let dir = TempDir::new("notexec");
    let file = dir.path().join("notexec");
    std::fs::write(&file, "just text\n").unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let volume = format!("{}:/notexec:ro", file.display());
    let (status, t) = failed_docker_run(&["-v", &volume, &image(), "/notexec"]);
    assert!(!status.success(), "docker run of a text file succeeded");
    let f = t.failure.as_ref().unwrap();
    assert_eq!(
        (f.role, f.phase),
        (Role::RuntimeInit, Some(Phase::Start)),
        "{}",
        f.summary
    );
    assert_eq!(
        (f.syscall.as_deref(), f.errno.as_deref()),
        (Some("execve"), Some("ENOEXEC")),
        "{}",
        f.summary
    );
    assert!(
        f.summary
            .starts_with("the entrypoint /notexec is not an executable: execve ENOEXEC"),
        "{}",
        f.summary
    );
    // runc init says it on the container's stderr, relayed by the client.
    assert!(said(f, Role::Client, "exec format error"), "{f:#?}");
}

#[test]
fn a_request_the_engine_refuses_is_the_clients_failure_with_no_runtime() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    let source = format!("/nonexistent-inspector-{}", std::process::id());
    let mount = format!("type=bind,src={source},dst=/x");
    let (status, t) = failed_docker_run(&["--mount", &mount, &image(), "true"]);
    assert_eq!(
        status.code(),
        Some(125),
        "dockerd refuses before any container"
    );
    let f = t.failure.as_ref().unwrap();
    assert_eq!(
        (f.role, f.phase),
        (Role::Client, Some(Phase::Request)),
        "{f:#?}"
    );
    assert!(
        t.id.starts_with("request of pid "),
        "no container id: {}",
        t.id
    );
    assert!(t.complete);
    assert!(
        t.chain.iter().all(|l| l.role == Role::Client),
        "no runtime ran: {:#?}",
        t.chain
    );
    assert!(
        f.summary.starts_with("the engine refused the request"),
        "{}",
        f.summary
    );
    assert!(
        f.summary
            .contains(&format!("bind source path does not exist: {source}")),
        "dockerd's words: {}",
        f.summary
    );
}

#[test]
fn a_privileged_container_on_a_host_lacking_capabilities_fails_at_capset() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    // This host's root lacks CAP_SYS_RESOURCE and others: `--privileged`
    // asks runc for every capability, and capset refuses.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let full = status
        .lines()
        .any(|l| l.starts_with("CapBnd:") && l.ends_with("000001ffffffffff"));
    if full {
        eprintln!("skipped: this host's root has every capability, so --privileged starts");
        return;
    }
    let (status, t) = failed_docker_run(&["--privileged", &image(), "true"]);
    assert!(!status.success());
    let f = t.failure.as_ref().unwrap();
    assert_eq!(
        (f.role, f.phase),
        (Role::RuntimeInit, Some(Phase::Create)),
        "{f:#?}"
    );
    assert_eq!(
        (f.syscall.as_deref(), f.errno.as_deref()),
        (Some("capset"), Some("EPERM")),
        "{f:#?}"
    );
    assert!(said(f, Role::Runtime, "unable to apply caps"), "{f:#?}");
}

#[test]
fn a_container_that_exits_3_did_not_fail() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    let (status, timelines, trace) = docker_run_timelines(&[&image(), "sh", "-c", "exit 3"]);
    assert_eq!(status.code(), Some(3));
    assert_eq!(timelines.len(), 1, "{}", trace.dump());
    let t = &timelines[0];
    assert_eq!((t.exit_code, &t.failure), (Some(3), &None), "{t:#?}");
}
