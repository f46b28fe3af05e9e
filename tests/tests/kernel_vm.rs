//! inspector on the kernel and cgroup layout most users have: Debian 12's
//! stock kernel (6.1) with pure cgroup2 and every controller, booted under
//! qemu (this machine runs 6.18 on a hybrid layout). One boot runs every check
//! (tests/vm/init.sh); each test here asserts one of them from what the guest
//! printed. `cargo xtask vm-test` runs this file alone.

use inspector::event::{Body, Event};
use tests::vm::guest;

#[test]
fn the_guest_is_debian_6_1_on_pure_cgroup2_with_every_controller() {
    let Some(guest) = guest() else { return };
    let c = guest.check("guest");
    assert_eq!(c.rc, Some(0), "{}", c.show());
    assert!(c.stdout.contains("kernel 6.1."), "{}", c.show());
    assert!(
        c.stdout.contains("btf /sys/kernel/btf/vmlinux"),
        "{}",
        c.show()
    );
    let enabled = c
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("subtree_control "))
        .unwrap_or_default();
    for controller in ["cpuset", "cpu", "io", "memory", "pids"] {
        assert!(
            enabled.split_whitespace().any(|e| e == controller),
            "{controller} is not enabled in the root:\n{}",
            c.show()
        );
    }
    let cgroup_mounts: Vec<&str> = c
        .stdout
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(2)
                .is_some_and(|t| t.starts_with("cgroup"))
        })
        .collect();
    assert_eq!(
        cgroup_mounts.len(),
        1,
        "cgroup2 alone is mounted:\n{}",
        c.show()
    );
    assert!(
        cgroup_mounts[0].starts_with("cgroup2 /sys/fs/cgroup cgroup2 "),
        "{}",
        c.show()
    );
}

#[test]
fn trace_on_6_1_sees_the_runtime_pivot_root_a_cgroup2_mkdir_and_exit_3() {
    let Some(guest) = guest() else { return };
    let c = guest.check("trace");
    assert_eq!(c.rc, Some(0), "inspector trace failed:\n{}", c.show());
    assert!(c.stderr.contains("probes attached"), "{}", c.show());
    assert!(
        c.stdout.contains("inspector run exited 3"),
        "the traced container:\n{}",
        c.show()
    );
    let jsonl = guest.check("trace.jsonl");
    let mut events = Vec::new();
    for (i, line) in jsonl.stdout.lines().enumerate() {
        match serde_json::from_str::<Event>(line) {
            Ok(e) => events.push(e),
            Err(e) => panic!(
                "line {} of the recording is not an event ({e}): {line}",
                i + 1
            ),
        }
    }
    let listing: Vec<String> = events.iter().map(inspector::output::text_line).collect();
    let shown = format!("{}--- the recording\n{}", c.show(), listing.join("\n"));

    let runtime_exec = events.iter().any(|e| {
        matches!(&e.body, Body::Exec { filename, ret: 0, .. }
            if filename.ends_with("/inspector-runtime"))
    });
    assert!(runtime_exec, "no exec of inspector-runtime:\n{shown}");
    let pivot = events
        .iter()
        .any(|e| matches!(&e.body, Body::PivotRoot { result, .. } if result.ret == 0));
    assert!(pivot, "no successful pivot_root:\n{shown}");
    let mkdir = events.iter().any(|e| {
        matches!(&e.body, Body::CgroupMkdir(c)
            if c.hierarchy == "cgroup2" && c.hierarchy_id == 0 && c.path.contains("vmtrace"))
    });
    assert!(mkdir, "no cgroup2 mkdir for the container:\n{shown}");
    let entrypoint = events.iter().find_map(|e| match &e.body {
        Body::Exec { argv, ret: 0, .. } if argv.iter().any(|a| a == "echo hello; exit 3") => {
            e.task.as_ref().map(|t| t.tgid)
        }
        _ => None,
    });
    let Some(entrypoint) = entrypoint else {
        panic!("no exec of the entrypoint:\n{shown}")
    };
    let exited_3 = events.iter().any(|e| {
        e.task.as_ref().is_some_and(|t| t.tgid == entrypoint)
            && matches!(
                e.body,
                Body::Exit {
                    exit_code: Some(3),
                    ..
                }
            )
    });
    assert!(exited_3, "the entrypoint's exit 3 is missing:\n{shown}");
}

#[test]
fn run_on_6_1_passes_the_exit_code_and_shows_pivot_root_and_cgroup_writes() {
    let Some(guest) = guest() else { return };
    let c = guest.check("run");
    assert_eq!(c.rc, Some(3), "{}", c.show());
    assert!(c.stdout.lines().any(|l| l == "hello"), "{}", c.show());
    assert!(c.stderr.contains("pivot_root("), "{}", c.show());
    assert!(c.stderr.contains("cgroup write cgroup2:"), "{}", c.show());
}

#[test]
fn limits_from_a_bundle_read_back_inside_the_container_on_pure_cgroup2() {
    let Some(guest) = guest() else { return };
    let c = guest.check("limits");
    assert_eq!(c.rc, Some(0), "{}", c.show());
    let read: Vec<&str> = c.stdout.lines().collect();
    assert_eq!(
        read,
        ["67108864", "64", "50000 100000", "1", "1"],
        "memory.max, pids.max, cpu.max, cpuset.cpus, cpuset.cpus.effective:\n{}",
        c.show()
    );
}

#[test]
fn a_golden_recorded_on_6_1_matches_the_next_run() {
    let Some(guest) = guest() else { return };
    let record = guest.check("golden-record");
    assert_eq!(record.rc, Some(0), "inspector record:\n{}", record.show());
    let golden = &guest.check("golden.txt").stdout;
    // Shown, and kept, so that it can become the repository's golden for this
    // kernel (tests/goldens/) once it proves stable.
    let kept = tests::workspace()
        .join("target/vm")
        .join(tests::vm::REPO_GOLDEN);
    let _ = std::fs::write(&kept, golden);
    eprintln!(
        "golden recorded on 6.1 (kept as {}):\n{golden}",
        kept.display()
    );
    let check = guest.check("golden-check");
    assert_eq!(
        check.rc,
        Some(0),
        "inspector check against the golden just recorded:\n{}\n--- the golden\n{golden}",
        check.show()
    );
}

#[test]
fn run_true_on_6_1_matches_the_golden_in_the_repository() {
    let Some(guest) = guest() else { return };
    let path = tests::workspace()
        .join("tests/goldens")
        .join(tests::vm::REPO_GOLDEN);
    if !path.exists() {
        eprintln!(
            "skipped: no {} yet (a_golden_recorded_on_6_1_matches_the_next_run keeps one in target/vm)",
            path.display()
        );
        return;
    }
    let c = guest.check("golden-repo");
    assert_eq!(c.rc, Some(0), "{}", c.show());
}

/// The failure line `inspector run` printed for the bundle `name` (see
/// `failure_bundles` in tests/src/vm.rs).
fn failed_line(name: &str) -> String {
    let Some(guest) = guest() else {
        return String::new();
    };
    let c = guest.check(name);
    assert_ne!(c.rc, Some(0), "{}", c.show());
    c.stderr
        .lines()
        .find_map(|l| l.strip_prefix("  failed: "))
        .unwrap_or_else(|| panic!("no failure named:\n{}", c.show()))
        .to_string()
}

#[test]
fn an_oom_kill_on_6_1_is_named_from_its_older_tracepoint() {
    if guest().is_none() {
        return;
    }
    let line = failed_line("fail-oom");
    assert!(line.contains("was killed by the OOM killer"), "{line}");
}

#[test]
fn a_seccomp_kill_on_6_1_names_the_call() {
    if guest().is_none() {
        return;
    }
    let line = failed_line("fail-seccomp");
    assert!(
        line.contains("killed by seccomp (SIGSYS) at getppid"),
        "{line}"
    );
}

#[test]
fn an_rlimit_refused_on_6_1_names_prlimit64_and_eperm() {
    if guest().is_none() {
        return;
    }
    let line = failed_line("fail-rlimit");
    assert!(line.contains("prlimit64 EPERM"), "{line}");
    assert!(line.contains("RLIMIT_NOFILE"), "{line}");
}

#[test]
fn why_on_6_1_puts_a_sleeping_hook_on_the_critical_path() {
    let Some(guest) = guest() else { return };
    let c = guest.check("why-sleep");
    assert_eq!(c.rc, Some(0), "{}", c.show());
    // `   200.1 ms  hook sleep (pid 123)   blocked in clock_nanosleep`: the
    // syscall read from the sleeping task's saved registers, on this
    // kernel's stack layout.
    let hook = c
        .stderr
        .lines()
        .find(|l| l.contains(" hook ") && l.contains("blocked in") && l.contains("nanosleep"))
        .unwrap_or_else(|| panic!("no sleeping hook on the path:\n{}", c.show()));
    let ms: f64 = hook
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {hook:?}"));
    assert!((190.0..=260.0).contains(&ms), "{hook}\n{}", c.show());
}

#[test]
fn the_static_binaries_run_on_6_1_in_a_root_with_no_shared_library() {
    let Some(guest) = guest() else { return };
    if !tests::require(
        tests::vm::has_static_binaries(),
        "the static binaries in target/dist (cargo xtask dist)",
    ) {
        return;
    }
    let version = guest.check("static-version");
    assert_eq!(version.rc, Some(0), "{}", version.show());
    let prefix = concat!("inspector ", env!("CARGO_PKG_VERSION"), " (commit ");
    assert!(version.stdout.starts_with(prefix), "{}", version.show());
    assert!(
        version.stdout.contains("\ninspector-runtime version "),
        "{}",
        version.show()
    );
    let run = guest.check("static-run");
    assert_eq!(run.rc, Some(3), "{}", run.show());
    assert!(
        run.stdout.lines().any(|l| l == "hello from a static build"),
        "{}",
        run.show()
    );
    // --brief: the chain, in which the static runtime did each step.
    for step in ["create", "start", "delete"] {
        let line = format!("inspector-runtime {step} vmstatic → exit 0");
        assert!(run.stderr.contains(&line), "{line}:\n{}", run.show());
    }
}
