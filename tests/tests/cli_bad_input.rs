//! Bad input to `inspector`'s command line, terminal and standard streams:
//! each is one clear error line naming what is wrong (and what to do), a
//! non-zero exit that is not a panic (101) or an abort (134), and nothing
//! left behind.

use std::{
    io::{BufRead as _, BufReader},
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use tests::{Need, TempDir, inspector_bin, probe_test, ready};

/// `inspector ARGS` with no terminal: standard input and output /dev/null,
/// standard error captured.
fn inspector(args: &[&str]) -> Output {
    Command::new(inspector_bin())
        .env("INSPECTOR_KEEP_PROBE", tests::KEEP)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("start inspector")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A failure as a user relies on it: exit 1 (or clap's 2), not a panic or
/// an abort, and one `inspector: error:` line saying `expect`.
fn assert_named_error(out: &Output, expect: &str) -> String {
    let err = text(&out.stderr);
    let code = out.status.code();
    assert!(
        matches!(code, Some(1 | 2)),
        "exit {:?} (want 1 or 2):\n{err}",
        out.status
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(expect), "{expect:?} not in:\n{err}");
    err
}

/// Entries of the temporary directory whose names start with `prefix`.
fn temp_entries(prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect()
}

#[test]
fn a_trace_duration_of_1e20_seconds_is_refused_naming_the_maximum() {
    if !ready(&[Need::Inspector, Need::BundledRuntime]) {
        return;
    }
    let out = inspector(&["trace", "--duration", "1e20"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_named_error(&out, "at most 31622400 seconds (a year), got 1e20");
}

#[test]
fn trace_with_standard_output_closed_fails_at_start() {
    if !ready(&[Need::Inspector, Need::BundledRuntime]) {
        return;
    }
    let started = Instant::now();
    let mut cmd = Command::new(inspector_bin());
    cmd.args(["trace", "--duration", "1"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: close(2) between fork and exec: `inspector trace >&-`.
    unsafe {
        cmd.pre_exec(|| {
            libc::close(1);
            Ok(())
        });
    }
    let out = cmd.output().expect("start inspector");
    let err = assert_named_error(&out, "standard output is closed");
    assert!(err.contains("--output FILE"), "{err}");
    // Refused before the probe is loaded.
    assert!(!err.contains("probes attached"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn trace_piped_into_head_exits_within_two_seconds_though_no_event_follows() {
    let Some(_lock) = probe_test(&[Need::Trace]) else {
        return;
    };
    let before = tests::settled_inspector_links();
    let dir = TempDir::new("trace-head");
    // A command only this test runs: the trace follows it alone, and it
    // sleeps after its exec, so that no event comes after the first lines.
    let comm = format!("headtest{}", std::process::id() % 1_000_000);
    let binary = dir.path().join(&comm);
    std::fs::copy("/bin/sleep", &binary).unwrap();
    let mut tracer = Command::new(inspector_bin())
        .env("INSPECTOR_KEEP_PROBE", tests::KEEP)
        .args(["trace", "--track-comm", &comm])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start inspector trace");
    let mut stderr = BufReader::new(tracer.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(first.contains("probes attached"), "{first}");
    let mut sleeper = Command::new(&binary).arg("30").spawn().unwrap();
    // `head -1`: read one line, then close the pipe.
    let mut stdout = BufReader::new(tracer.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains(&comm), "{line}");
    drop(stdout);
    let closed = Instant::now();
    let status = loop {
        if let Some(status) = tracer.try_wait().unwrap() {
            break Some(status);
        }
        if closed.elapsed() > Duration::from_secs(10) {
            let _ = tracer.kill();
            let _ = tracer.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let waited = closed.elapsed();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let status = status.expect("inspector trace went on after its reader closed the pipe");
    assert!(
        waited < Duration::from_secs(2),
        "inspector trace took {waited:?} to notice the closed pipe"
    );
    assert!(status.success(), "{status}");
    tests::assert_no_links_left(before);
}

#[test]
fn the_tui_without_a_terminal_says_it_needs_one() {
    if !ready(&[Need::Inspector, Need::BundledRuntime]) {
        return;
    }
    let dir = TempDir::new("tui-no-tty");
    let recording = dir.path().join("empty.jsonl");
    std::fs::write(&recording, "").unwrap();
    let replay = ["tui", "--replay", recording.to_str().unwrap()];
    for args in [&["tui"][..], &replay[..]] {
        let out = inspector(args);
        let err = assert_named_error(&out, "the TUI needs a terminal");
        assert!(err.contains("inspector timeline"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // No controlling terminal at all (a new session), as under a service.
    let mut cmd = Command::new(inspector_bin());
    cmd.arg("tui")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: setsid between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    assert_named_error(
        &cmd.output().expect("start inspector"),
        "the TUI needs a terminal",
    );
}

#[test]
fn run_in_the_tui_without_a_terminal_fails_before_making_anything() {
    if !ready(&[Need::Inspector, Need::BundledRuntime]) {
        return;
    }
    let id = format!("cli-notty-{}", std::process::id());
    let child = Command::new(inspector_bin())
        .args(["run", "--tui", "--name", &id, "--", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start inspector");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let err = assert_named_error(&out, "the TUI needs a terminal");
    assert!(err.contains("without --tui"), "{err}");
    assert!(
        temp_entries(&format!("inspector-run-{id}-output-")).is_empty(),
        "an output directory was left"
    );
    assert!(
        temp_entries(&format!("inspector-run-{pid}-")).is_empty(),
        "a bundle directory was left"
    );
    assert!(!Path::new("/run/inspector-runtime").join(&id).exists());
}

#[test]
fn run_limits_on_a_bundle_field_that_is_not_an_object_name_the_field_and_file() {
    if !ready(&[Need::Inspector, Need::BundledRuntime]) {
        return;
    }
    let dir = TempDir::new("run-field");
    let rootfs = dir.path().join("rootfs");
    tests::busybox_rootfs(&rootfs);
    let cases = [
        (
            "--memory",
            "64m",
            "/linux/resources/memory",
            "linux.resources.memory is a number",
        ),
        (
            "--pids-limit",
            "10",
            "/linux/resources/pids",
            "linux.resources.pids is a string",
        ),
        (
            "--memory",
            "64m",
            "/linux/resources",
            "linux.resources is an array",
        ),
        ("--pids-limit", "10", "/linux", "linux is a boolean"),
    ];
    for (i, (flag, value, pointer, expect)) in cases.into_iter().enumerate() {
        let bundle = dir.path().join(format!("bundle-{i}"));
        std::fs::create_dir(&bundle).unwrap();
        let mut config = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["/bin/true"], "cwd": "/", "env": ["PATH=/bin"]},
            "root": {"path": rootfs},
            "linux": {"resources": {"memory": {}, "pids": {}}},
        });
        *config.pointer_mut(pointer).unwrap() = match pointer {
            "/linux/resources/memory" => serde_json::json!(5),
            "/linux/resources/pids" => serde_json::json!("many"),
            "/linux/resources" => serde_json::json!([]),
            _ => serde_json::json!(true),
        };
        let path = bundle.join("config.json");
        std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
        let id = format!("cli-field-{i}-{}", std::process::id());
        let out = inspector(&[
            "run",
            "--name",
            &id,
            "--bundle",
            bundle.to_str().unwrap(),
            flag,
            value,
        ]);
        let err = assert_named_error(&out, expect);
        assert!(err.contains(path.to_str().unwrap()), "{err}");
        assert!(!Path::new("/run/inspector-runtime").join(&id).exists());
    }
}

#[test]
fn bad_container_names_are_refused_naming_runc_s_rule() {
    if !ready(&[Need::Inspector, Need::BundledRuntime]) {
        return;
    }
    let long = "a".repeat(256);
    for name in ["/", "", ".", "..", "a/b", "../etc", long.as_str()] {
        let out = inspector(&["run", "--name", name, "--", "true"]);
        let err = assert_named_error(&out, &format!("invalid container name {name:?}"));
        assert!(err.contains("runc's rule"), "{err}");
        assert!(!err.contains("already exists"), "{err}");
    }
}

#[test]
fn each_cause_is_said_once() {
    if !ready(&[Need::Inspector, Need::BundledRuntime]) {
        return;
    }
    let dir = TempDir::new("cause-once");
    let target = dir.path().to_str().unwrap();
    for (args, expect) in [
        (vec!["trace", "--output", target], "Is a directory"),
        (vec!["run", "--bundle", "/", "--", "true"], "No such file"),
        (
            vec!["run", "--export", target, "--", "true"],
            "is a directory",
        ),
        (
            vec!["run", "--perfetto", target, "--", "true"],
            "is a directory",
        ),
    ] {
        let out = inspector(&args);
        let err = assert_named_error(&out, expect);
        assert_eq!(err.matches(expect).count(), 1, "{args:?}: {err}");
        assert!(err.matches("os error").count() <= 1, "{args:?}: {err}");
    }
}
