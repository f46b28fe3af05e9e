//! What a user sees when the machine lacks something inspector needs: an error
//! naming it and how to fix it, a non-zero exit, and nothing left behind.

use std::process::Command;

use tests::{
    NOBODY, Need, TempDir, assert_no_links_left, inspector_bin, is_root, probe_test, ready,
    settled_inspector_links,
};

fn trace_with(env: &[(&str, &str)], args: &[&str], out: &std::path::Path) -> (bool, String) {
    let output = Command::new(inspector_bin())
        .env("INSPECTOR_KEEP_PROBE", tests::KEEP)
        .args(["trace", "--output"])
        .arg(out)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn without_root_it_says_to_use_root() {
    if !ready(&[Need::Inspector]) {
        return;
    }
    let dir = TempDir::new("noroot");
    let out = dir.path().join("events.jsonl");
    let mut cmd = if is_root() {
        // Drop to nobody for this one run.
        let mut c = Command::new(NOBODY[0]);
        c.args(&NOBODY[1..]).arg(inspector_bin());
        c
    } else {
        Command::new(inspector_bin())
    };
    let output = cmd
        .args(["trace", "--output"])
        .arg("/dev/null")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("needs root"), "{stderr}");
    assert!(stderr.contains("sudo"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn without_tracefs_it_says_how_to_mount_it_and_leaves_nothing() {
    let Some(_lock) = probe_test(&[Need::Trace]) else {
        return;
    };
    let dir = TempDir::new("notracefs");
    let out = dir.path().join("events.jsonl");
    let before = settled_inspector_links();
    let (ok, stderr) = trace_with(&[("INSPECTOR_TRACEFS", "/nonexistent/tracefs")], &[], &out);
    assert!(!ok);
    assert!(stderr.contains("tracefs is not mounted"), "{stderr}");
    assert!(
        stderr.contains("mount -t tracefs tracefs /sys/kernel/tracing"),
        "{stderr}"
    );
    assert!(!out.exists(), "no output file on a failed start");
    assert_no_links_left(before);
}

#[test]
fn a_missing_tracepoint_is_named_and_nothing_stays_attached() {
    let Some(_lock) = probe_test(&[Need::Trace]) else {
        return;
    };
    // A tracefs with an `events` directory but none of the syscall tracepoints:
    // what a kernel without CONFIG_FTRACE_SYSCALLS looks like.
    let fake = TempDir::new("faketracefs");
    std::fs::create_dir_all(fake.path().join("events/syscalls")).unwrap();
    let dir = TempDir::new("notp");
    let out = dir.path().join("events.jsonl");
    let before = settled_inspector_links();
    let (ok, stderr) = trace_with(
        &[("INSPECTOR_TRACEFS", fake.path().to_str().unwrap())],
        &[],
        &out,
    );
    assert!(!ok);
    assert!(
        stderr.contains("tracepoint syscalls:sys_enter_clone is missing"),
        "{stderr}"
    );
    assert!(stderr.contains("CONFIG_FTRACE_SYSCALLS"), "{stderr}");
    assert!(!out.exists());
    assert_no_links_left(before);
}

#[test]
fn a_kernel_without_one_syscall_tracepoint_says_so_in_one_line_and_traces_the_rest() {
    let Some(_lock) = probe_test(&[Need::Trace]) else {
        return;
    };
    // The real tracefs, but for clone3's two tracepoints: what a kernel
    // built without one syscall looks like. Attaching reads the real ids
    // through the links.
    let real = inspector::probe::prereq::tracefs_events().unwrap();
    let fake = TempDir::new("noclone3");
    let events = fake.path().join("events");
    std::fs::create_dir_all(events.join("syscalls")).unwrap();
    for entry in std::fs::read_dir(&real).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "syscalls" {
            std::os::unix::fs::symlink(entry.path(), events.join(entry.file_name())).unwrap();
        }
    }
    for entry in std::fs::read_dir(real.join("syscalls")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name != "sys_enter_clone3" && name != "sys_exit_clone3" {
            std::os::unix::fs::symlink(entry.path(), events.join("syscalls").join(&name)).unwrap();
        }
    }
    let dir = TempDir::new("noclone3-out");
    let out = dir.path().join("events.jsonl");
    let before = settled_inspector_links();
    let (ok, stderr) = trace_with(
        &[("INSPECTOR_TRACEFS", fake.path().to_str().unwrap())],
        &["--duration", "0.5", "--format", "jsonl"],
        &out,
    );
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines[0].contains("probes attached"), "{stderr}");
    let said: Vec<&&str> = lines.iter().filter(|l| l.contains("clone3")).collect();
    assert_eq!(said.len(), 1, "one line names what is lost: {stderr}");
    assert!(
        said[0].contains("has no tracepoint for clone3: not reported; everything else is"),
        "{stderr}"
    );
    assert!(out.exists());
    assert_no_links_left(before);
}

#[test]
fn a_bad_buffer_size_is_refused_before_anything_loads() {
    if !ready(&[Need::Trace]) {
        return;
    }
    let dir = TempDir::new("badbuf");
    let out = dir.path().join("events.jsonl");
    let (ok, stderr) = trace_with(&[], &["--buffer-size", "1000"], &out);
    assert!(!ok);
    assert!(
        stderr.contains("--buffer-size must be a power of two"),
        "{stderr}"
    );
    assert!(!out.exists());
}

#[test]
fn an_unwritable_output_is_named() {
    let Some(_lock) = probe_test(&[Need::Trace]) else {
        return;
    };
    let before = settled_inspector_links();
    let (ok, stderr) = trace_with(
        &[],
        &["--duration", "1"],
        std::path::Path::new("/nonexistent/dir/out.jsonl"),
    );
    assert!(!ok);
    assert!(stderr.contains("/nonexistent/dir/out.jsonl"), "{stderr}");
    assert_no_links_left(before);
}

#[test]
fn without_btf_it_names_the_kernel_option() {
    if !ready(&[Need::Trace]) {
        return;
    }
    let dir = TempDir::new("nobtf");
    let out = dir.path().join("events.jsonl");
    let (ok, stderr) = trace_with(&[("INSPECTOR_BTF", "/nonexistent/vmlinux")], &[], &out);
    assert!(!ok);
    assert!(stderr.contains("CONFIG_DEBUG_INFO_BTF"), "{stderr}");
    assert!(stderr.contains("/nonexistent/vmlinux"), "{stderr}");
    assert!(!out.exists());
}
