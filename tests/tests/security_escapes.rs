//! Terminal escape injection (issue #12, hole 5): a traced process names
//! itself, its arguments and its directories with escape sequences and
//! newlines, and every text output of inspector (`run`'s timeline, `trace`
//! text, `timeline`, a recorded golden, the TUI) shows them escaped, as
//! strace does, so that they can neither drive the reader's terminal nor
//! forge lines of output.

use std::{
    path::Path,
    process::{Command, Output, Stdio},
    time::Duration,
};

use tests::{Need, TempDir, TmuxSession, inspector_bin, probe_test, ready, tmux};

/// The attack of the issue, word for word. The container's own output goes
/// to /dev/null: what a program prints itself is its business (as with
/// `docker run`), what inspector prints about it is under test.
const ATTACK: &str =
    r#"exec >/dev/null 2>&1; n=$(printf "\033[2J\nFAKE"); cp /bin/true /tmp/$n; /tmp/$n"#;

/// The same with the name quoted, so that it keeps its newline: the binary,
/// its comm, its argv and its working directory all carry the escape.
const QUOTED_ATTACK: &str = r#"exec >/dev/null 2>&1; n=$(printf "\033[2J\nFAKE"); cp /bin/true "/tmp/$n"; mkdir "/tmp/d$n"; cd "/tmp/d$n"; "/tmp/$n" "$n""#;

/// How the escaped name reads.
const ESCAPED: &str = r"\x1b[2J\nFAKE";

/// Fails unless `text` has no ESC byte and no line a hostile name forged.
fn assert_no_injection(what: &str, text: &[u8]) {
    let shown = String::from_utf8_lossy(text);
    assert!(!text.contains(&0x1b), "{what} has a raw ESC byte:\n{shown}");
    assert!(
        !shown.lines().any(|l| l.starts_with("FAKE")),
        "{what} has a line forged by a traced process:\n{shown}"
    );
    assert!(
        !shown.contains('\u{202e}') && !shown.contains('\u{9b}'),
        "{what} has a raw C1 or bidi control:\n{shown}"
    );
}

/// `inspector run --name ID [--export FILE] -- /bin/sh -c SCRIPT`.
fn inspector_run(script: &str, name: &str, cache: &Path, export: Option<&Path>) -> Output {
    let id = format!("insp-test-{name}-{}", std::process::id());
    let mut cmd = Command::new(inspector_bin());
    cmd.env("INSPECTOR_KEEP_PROBE", tests::KEEP)
        .env("XDG_CACHE_HOME", cache)
        .args(["run", "--name", &id]);
    if let Some(path) = export {
        cmd.arg("--export").arg(path);
    }
    cmd.args(["--", "/bin/sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .expect("start inspector run")
}

#[test]
fn run_shows_a_process_named_with_escape_sequences_escaped() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::BundledRuntime]) else {
        return;
    };
    let dir = TempDir::new("escapes-run");
    for script in [ATTACK, QUOTED_ATTACK] {
        let out = inspector_run(script, "escapes", dir.path(), None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_no_injection("inspector run's stdout", &out.stdout);
        assert_no_injection("inspector run's stderr", &out.stderr);
        if script == ATTACK {
            // The unquoted name splits at its newline: `/tmp/ESC[2J` and `FAKE`.
            assert!(stderr.contains(r#""/tmp/\x1b[2J""#), "{stderr}");
        } else {
            for shown in [
                // execve's file name and argv, the working directory.
                format!(r#"execve("/tmp/{ESCAPED}", ["/tmp/{ESCAPED}","{ESCAPED}"]) = 0"#),
                format!(r#"chdir("/tmp/d{ESCAPED}") = 0"#),
            ] {
                assert!(stderr.contains(&shown), "{shown} missing from:\n{stderr}");
            }
        }
    }
}

#[test]
fn trace_text_shows_a_process_named_with_escape_sequences_escaped() {
    let Some(_lock) = probe_test(&[Need::Trace]) else {
        return;
    };
    let dir = TempDir::new("escapes-trace");
    let output = dir.path().join("trace.txt");
    let (mut tracer, stderr) = tests::spawn_attached(
        Command::new(inspector_bin())
            .env("INSPECTOR_KEEP_PROBE", tests::KEEP)
            .args(["trace", "--all", "--format", "text", "--output"])
            .arg(&output)
            .stdout(Stdio::piped()),
    );
    // Drained so that inspector never blocks on it.
    let stderr = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut stderr = stderr;
        let _ = std::io::Read::read_to_end(&mut stderr, &mut all);
        all
    });
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    // The attack, with its files in this test's directory.
    let script = QUOTED_ATTACK.replace("/tmp/", &format!("{}/", work.display()));
    let status = Command::new("/bin/sh")
        .args(["-c", &script])
        .status()
        .unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(tracer.id() as i32, libc::SIGINT) };
    let mut stdout = Vec::new();
    let _ = std::io::Read::read_to_end(tracer.stdout.as_mut().unwrap(), &mut stdout);
    tracer.wait().unwrap();
    let stderr = stderr.join().unwrap();
    let text = std::fs::read(&output).unwrap();
    assert_no_injection("trace --format text", &text);
    assert_no_injection("trace's stdout", &stdout);
    assert_no_injection("trace's stderr", &stderr);
    let text = String::from_utf8_lossy(&text);
    let work = work.display();
    for shown in [
        // The comm is the file's name, up to 15 bytes.
        format!(" {ESCAPED}["),
        format!(r#"execve("{work}/{ESCAPED}", ["{work}/{ESCAPED}","{ESCAPED}"]) = 0"#),
        format!(r#"chdir("{work}/d{ESCAPED}") = 0"#),
    ] {
        assert!(text.contains(&shown), "{shown} missing from:\n{text}");
    }
}

/// A real recording (the repository's fixture of `runc run`) whose
/// entrypoint a hostile process renamed: comm, file name, argv.
fn hostile_recording(dir: &Path) -> std::path::PathBuf {
    let fixture = tests::workspace().join("inspector/tests/fixtures/runc-run-exit-3.jsonl");
    let hostile = "\x1b[2J\nFAKE\u{202e}\u{9b}";
    let mut out = String::new();
    for line in std::fs::read_to_string(fixture).unwrap().lines() {
        let mut e: serde_json::Value = serde_json::from_str(line).unwrap();
        if e["comm"] == "sh" {
            e["comm"] = hostile.into();
        }
        if e["kind"] == "exec" && e["filename"] == "/bin/sh" {
            e["filename"] = format!("/tmp/{hostile}").into();
            e["argv"] = serde_json::json!([format!("/tmp/{hostile}"), hostile]);
        }
        out.push_str(&serde_json::to_string(&e).unwrap());
        out.push('\n');
    }
    let path = dir.join("hostile.jsonl");
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn timeline_of_a_recording_with_escape_sequences_shows_them_escaped() {
    if !ready(&[Need::Inspector]) {
        return;
    }
    let dir = TempDir::new("escapes-timeline");
    let recording = hostile_recording(dir.path());
    let out = Command::new(inspector_bin())
        .arg("timeline")
        .arg(&recording)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_injection("inspector timeline's stdout", &out.stdout);
    assert_no_injection("inspector timeline's stderr", &out.stderr);
    let name = r"\x1b[2J\nFAKE\u{202e}\u{9b}";
    for shown in [
        // The chain's command line and the step's execve.
        format!("/tmp/{name} {name}"),
        format!(r#"execve("/tmp/{name}", ["/tmp/{name}","{name}"]) = 0"#),
    ] {
        assert!(stdout.contains(&shown), "{shown} missing from:\n{stdout}");
    }
    // JSON keeps the strings exact: control characters escaped by JSON's own
    // rules (`\u001b`), and what JSON allows raw but a terminal must not see
    // (U+202E, U+009B) as `\uXXXX` too. The same for Perfetto's JSON.
    for format in ["json", "perfetto"] {
        let out = Command::new(inspector_bin())
            .args(["timeline", "--format", format])
            .arg(&recording)
            .output()
            .unwrap();
        assert!(out.status.success());
        let json = String::from_utf8(out.stdout).unwrap();
        assert!(
            !json.contains(['\u{1b}', '\u{9b}', '\u{202e}']),
            "raw controls in {format}: {json:?}"
        );
        assert!(json.contains(r"\u001b[2J\nFAKE\u202e\u009b"), "{json}");
    }
}

#[test]
fn a_recorded_golden_shows_escape_sequences_escaped() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    let dir = TempDir::new("escapes-golden");
    let golden = dir.path().join("hostile.golden");
    // Out of /tmp, which goldens normalize away.
    let script = r#"exec >/dev/null 2>&1; n=$(printf "\033[2J\nFAKE"); mkdir "/d$n"; cd "/d$n"; /bin/true "$n""#;
    let out = Command::new(inspector_bin())
        .env("INSPECTOR_KEEP_PROBE", tests::KEEP)
        .args(["record", "--golden"])
        .arg(&golden)
        .args(["--", tests::DOCKER, "run", "--rm", &tests::image()])
        .args(["sh", "-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_injection("inspector record's stdout", &out.stdout);
    assert_no_injection("inspector record's stderr", &out.stderr);
    let text = std::fs::read(&golden).unwrap();
    assert_no_injection("the golden", &text);
    let text = String::from_utf8_lossy(&text);
    for shown in [
        format!(r#"execve("/bin/true", ["/bin/true","{ESCAPED}"]) = 0"#),
        format!(r#"chdir("/d{ESCAPED}") = 0"#),
    ] {
        assert!(text.contains(&shown), "{shown} missing from:\n{text}");
    }
    // Checked against itself, the golden matches: it reads back as written.
    let out = Command::new(inspector_bin())
        .arg("diff")
        .arg(&golden)
        .arg(&golden)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn the_tui_shows_escape_sequences_escaped() {
    if !ready(&[Need::Tmux, Need::Inspector]) {
        return;
    }
    let dir = TempDir::new("escapes-tui");
    let recording = hostile_recording(dir.path());
    let session = TmuxSession::start_with(
        "escapes",
        160,
        40,
        &format!("tui --replay {}", recording.display()),
    );
    let pane = session.pane();
    let wait_for =
        |ok: &dyn Fn(&str) -> bool| session.wait_for("the screen", Duration::from_secs(10), ok);
    wait_for(&|s| s.contains("Containers"));
    // The process tree shows the entrypoint's command line.
    tmux(&["send-keys", "-t", &pane, "Tab", "Tab"]);
    let screen = wait_for(&|s| s.contains("Processes") && s.contains("/tmp/\\x1b"));
    assert!(
        screen.contains(r"\x1b[2J\nFAKE\u{202e}\u{9b}") && screen.contains("Containers"),
        "the escaped name is not on the screen:\n{screen}"
    );
    assert!(
        !screen.lines().any(|l| l.starts_with("FAKE")),
        "a traced process forged a line:\n{screen}"
    );
    // With attributes: the only escape sequences are inspector's colours.
    let styled = tmux(&["capture-pane", "-p", "-e", "-t", &pane]);
    for (i, seq) in styled.split('\x1b').enumerate().skip(1) {
        let params = seq
            .strip_prefix('[')
            .unwrap_or_else(|| panic!("escape {i} is not a CSI sequence: {seq:?}"));
        let end = params
            .find(|c: char| !c.is_ascii_digit() && c != ';')
            .unwrap_or(0);
        assert_eq!(
            params.as_bytes().get(end),
            Some(&b'm'),
            "escape {i} is not a colour: {seq:?}"
        );
    }
    tmux(&["send-keys", "-t", &pane, "q"]);
}
