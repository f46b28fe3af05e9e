//! `inspector record`, `check` and `diff` against the real engine: a golden in
//! the repository matched run after run, and the diff of a changed run
//! naming the change and nothing else.

use std::{path::PathBuf, process::Command};

use tests::{DOCKER, Need, TempDir, image, inspector_bin, probe_test, ready};

fn golden(name: &str) -> PathBuf {
    tests::workspace().join("tests/goldens").join(name)
}

struct Checked {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn inspector(args: &[&str]) -> Checked {
    let out = Command::new(inspector_bin()).args(args).output().unwrap();
    Checked {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn check_docker_run(golden: &str, docker_args: &[&str], extra: &[&str]) -> Checked {
    let image = image();
    let mut args = vec!["check", "--golden", golden];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", DOCKER, "run", "--rm"]);
    args.extend_from_slice(docker_args);
    args.extend_from_slice(&[image.as_str(), "true"]);
    inspector(&args)
}

/// The lines of a diff that say something changed.
fn changes(diff: &str) -> Vec<&str> {
    diff.lines()
        .filter(|l| l.starts_with("+ ") || l.starts_with("- "))
        .collect()
}

fn is_docker_cli_exec(line: &str) -> bool {
    line[2..].starts_with("execve(\"/usr/bin/docker\"")
}

#[test]
fn docker_run_matches_the_golden_in_the_repository_20_times() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    let path = golden("docker-run-rm-true.golden");
    let golden = path.to_str().unwrap();
    let tmp = TempDir::new("golden-junit");
    let junit = tmp.path().join("report.xml");
    let junit = junit.to_str().unwrap();
    let mut failures = Vec::new();
    for run in 1..=20 {
        let c = check_docker_run(golden, &[], &["--junit", junit]);
        if c.code != Some(0) {
            failures.push(format!(
                "run {run}: exit {:?}\n{}{}",
                c.code, c.stdout, c.stderr
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 20 checks failed (regenerate the golden with `inspector check --update` only if \
         the change is intended):\n{}",
        failures.len(),
        failures.join("\n")
    );
    let xml = std::fs::read_to_string(junit).unwrap();
    assert!(xml.contains("failures=\"0\""), "{xml}");
    assert!(xml.contains("name=\"runtime init\""), "{xml}");
}

#[test]
fn a_pids_limit_shows_as_its_controller_write_and_nothing_else() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    let path = golden("docker-run-rm-true.golden");
    let c = check_docker_run(path.to_str().unwrap(), &["--pids-limit", "10"], &[]);
    assert_eq!(c.code, Some(1), "{}{}", c.stdout, c.stderr);
    let changed = changes(&c.stdout);
    assert!(
        changed
            .iter()
            .any(|l| l.starts_with("+ ") && l.contains("pids.max \"10\"")),
        "{}",
        c.stdout
    );
    let unexplained: Vec<&&str> = changed
        .iter()
        .filter(|l| !is_docker_cli_exec(l) && !l.contains("pids.max"))
        .collect();
    assert!(unexplained.is_empty(), "{unexplained:?} in\n{}", c.stdout);
    assert!(
        c.stdout.contains("@@ container 1 · runtime create @@"),
        "{}",
        c.stdout
    );
}

#[test]
fn no_network_shows_as_dockerd_not_entering_namespaces_and_nothing_else() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    let path = golden("docker-run-rm-true.golden");
    let c = check_docker_run(path.to_str().unwrap(), &["--network", "none"], &[]);
    assert_eq!(c.code, Some(1), "{}{}", c.stdout, c.stderr);
    let changed = changes(&c.stdout);
    assert!(
        changed
            .iter()
            .any(|l| l.starts_with("- ") && l.contains("setns(<fd>, CLONE_NEWNET)")),
        "{}",
        c.stdout
    );
    let unexplained: Vec<&&str> = changed
        .iter()
        .filter(|l| !is_docker_cli_exec(l) && !l.contains("CLONE_NEWNET"))
        .collect();
    assert!(unexplained.is_empty(), "{unexplained:?} in\n{}", c.stdout);
    assert!(c.stdout.contains("@@ engine · dockerd @@"), "{}", c.stdout);
}

#[test]
fn update_writes_a_golden_that_the_next_check_matches() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    let tmp = TempDir::new("golden-update");
    let path = tmp.path().join("entrypoint.golden");
    let path = path.to_str().unwrap();
    // Only the entrypoint's role, which is the same whatever else changes.
    let c = check_docker_run(path, &[], &["--update", "--roles", "entrypoint"]);
    assert_eq!(c.code, Some(0), "{}", c.stderr);
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains("  entrypoint\n"), "{text}");
    assert!(!text.contains("runtime"), "{text}");
    let c = check_docker_run(path, &["--pids-limit", "10"], &["--roles", "entrypoint"]);
    assert_eq!(c.code, Some(0), "{}{}", c.stdout, c.stderr);
}

#[test]
fn a_missing_or_malformed_golden_is_named_and_the_command_never_runs() {
    if !ready(&[Need::Trace]) {
        return;
    }
    let tmp = TempDir::new("golden-bad");
    let marker = tmp.path().join("ran");
    let marker = marker.to_str().unwrap();
    let missing = tmp.path().join("nope.golden");
    let c = inspector(&[
        "check",
        "--golden",
        missing.to_str().unwrap(),
        "--",
        "touch",
        marker,
    ]);
    assert_eq!(c.code, Some(2), "{}", c.stderr);
    assert!(c.stderr.contains("nope.golden"), "{}", c.stderr);
    assert!(c.stderr.contains("inspector record"), "{}", c.stderr);
    let bad = tmp.path().join("bad.golden");
    std::fs::write(&bad, "# inspector golden v1\ncontainer 1\n      stray\n").unwrap();
    let c = inspector(&[
        "check",
        "--golden",
        bad.to_str().unwrap(),
        "--",
        "touch",
        marker,
    ]);
    assert_eq!(c.code, Some(2), "{}", c.stderr);
    assert!(c.stderr.contains("line 3"), "{}", c.stderr);
    assert!(!std::path::Path::new(marker).exists(), "the command ran");
    // Nothing was written beside the goldens.
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("bad.golden")]);
}

#[test]
fn max_slowdown_fails_a_start_slower_than_the_golden_s_median() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    let tmp = TempDir::new("golden-times");
    let path = tmp.path().join("entrypoint.golden");
    let path = path.to_str().unwrap();
    // Only the entrypoint's sequence: what is checked here is time.
    let roles = ["--roles", "entrypoint"];
    let c = check_docker_run(
        path,
        &[],
        &[&["--update", "--runs", "3"][..], &roles].concat(),
    );
    assert_eq!(c.code, Some(0), "{}", c.stderr);
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains("\n# times: median of 3 runs, ms"), "{text}");
    let times = text
        .lines()
        .find(|l| l.starts_with("# times container 1: start latency "))
        .unwrap_or_else(|| panic!("no times of container 1 in\n{text}"));
    // Well within five times its own median.
    let c = check_docker_run(
        path,
        &[],
        &[&["--runs", "3", "--max-slowdown", "5"][..], &roles].concat(),
    );
    assert_eq!(c.code, Some(0), "{}{}", c.stdout, c.stderr);
    assert!(c.stderr.contains("3 runs took"), "{}", c.stderr);
    // A golden from a machine ten times faster: this one is too slow.
    let faster: Vec<String> = times
        .split_once(": ")
        .unwrap()
        .1
        .split("; ")
        .map(|part| {
            let (key, ms) = part.rsplit_once(' ').unwrap();
            format!("{key} {:.1}", ms.parse::<f64>().unwrap() / 10.0)
        })
        .collect();
    let edited = text.replace(
        times,
        &format!("# times container 1: {}", faster.join("; ")),
    );
    std::fs::write(path, edited).unwrap();
    let c = check_docker_run(path, &[], &[&["--max-slowdown", "2"][..], &roles].concat());
    assert_eq!(c.code, Some(1), "{}{}", c.stdout, c.stderr);
    assert!(c.stderr.contains("container 1 started in"), "{}", c.stderr);
    assert!(c.stderr.contains("(--max-slowdown 2)"), "{}", c.stderr);
    assert!(c.stdout.contains("container 1:\n"), "{}", c.stdout);
    assert!(
        c.stdout.lines().any(|l| l.starts_with("start latency")),
        "{}",
        c.stdout
    );
    assert!(
        c.stdout.lines().any(|l| l.starts_with("phase create")),
        "{}",
        c.stdout
    );
    // The sequence still matched: only the time failed.
    assert!(!c.stderr.contains("roles differ"), "{}", c.stderr);
}

#[test]
fn max_slowdown_needs_a_golden_with_times_and_a_factor_of_at_least_one() {
    if !ready(&[Need::Trace]) {
        return;
    }
    let tmp = TempDir::new("golden-no-times");
    let marker = tmp.path().join("ran");
    let marker = marker.to_str().unwrap();
    // Recorded before times were kept.
    let old = golden("docker-run-rm-true.golden");
    let c = inspector(&[
        "check",
        "--golden",
        old.to_str().unwrap(),
        "--max-slowdown",
        "1.5",
        "--",
        "touch",
        marker,
    ]);
    assert_eq!(c.code, Some(2), "{}", c.stderr);
    assert!(c.stderr.contains("has no times"), "{}", c.stderr);
    assert!(c.stderr.contains("--update --runs N"), "{}", c.stderr);
    let c = inspector(&[
        "check",
        "--golden",
        old.to_str().unwrap(),
        "--max-slowdown",
        "0.5",
        "--",
        "touch",
        marker,
    ]);
    assert_eq!(c.code, Some(2), "{}", c.stderr);
    assert!(c.stderr.contains("not a slowdown factor"), "{}", c.stderr);
    let c = inspector(&[
        "check",
        "--golden",
        old.to_str().unwrap(),
        "--runs",
        "0",
        "--",
        "touch",
        marker,
    ]);
    assert_eq!(c.code, Some(2), "{}", c.stderr);
    assert!(!std::path::Path::new(marker).exists(), "the command ran");
}

#[test]
fn diff_compares_recordings_and_goldens() {
    // No root needed: two recordings in the repository.
    let fixtures = tests::workspace().join("inspector/tests/fixtures");
    let docker = fixtures.join("docker-run-rm-true.jsonl");
    let runc = fixtures.join("runc-run-exit-3.jsonl");
    let same = inspector(&["diff", docker.to_str().unwrap(), docker.to_str().unwrap()]);
    assert_eq!(same.code, Some(0), "{}{}", same.stdout, same.stderr);
    assert!(same.stdout.is_empty(), "{}", same.stdout);
    let other = inspector(&["diff", docker.to_str().unwrap(), runc.to_str().unwrap()]);
    assert_eq!(other.code, Some(1), "{}", other.stderr);
    assert!(
        other
            .stdout
            .contains("@@ container 1 · client (missing) @@"),
        "{}",
        other.stdout
    );
    let tmp = TempDir::new("golden-diff");
    let garbage = tmp.path().join("garbage");
    std::fs::write(&garbage, "not json\n").unwrap();
    let c = inspector(&["diff", garbage.to_str().unwrap(), docker.to_str().unwrap()]);
    assert_eq!(c.code, Some(2), "{}", c.stderr);
    assert!(c.stderr.contains("line 1"), "{}", c.stderr);
}

/// One container with the bundled runtime first: its first `create` after a
/// build starts the runtime's exe-keeper, which a golden need not show.
fn warm_up_the_bundled_runtime() {
    let status = Command::new(DOCKER)
        .args(["run", "--runtime", "inspector", "--rm", &image(), "true"])
        .status()
        .unwrap();
    assert!(status.success(), "docker run --runtime inspector: {status}");
}

#[test]
fn the_bundled_runtime_matches_its_goldens_20_times() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    warm_up_the_bundled_runtime();
    let under_docker = golden("docker-run-inspector-runtime.golden");
    let launched = golden("inspector-run-true.golden");
    let bin = inspector_bin();
    let mut failures = Vec::new();
    for run in 1..=20 {
        let c = check_docker_run(
            under_docker.to_str().unwrap(),
            &["--runtime", "inspector"],
            &[],
        );
        if c.code != Some(0) {
            failures.push(format!(
                "docker, run {run}: exit {:?}\n{}{}",
                c.code, c.stdout, c.stderr
            ));
        }
        let c = inspector(&[
            "check",
            "--golden",
            launched.to_str().unwrap(),
            "--",
            bin.to_str().unwrap(),
            "run",
            "--brief",
            "--",
            "/bin/true",
        ]);
        if c.code != Some(0) {
            failures.push(format!(
                "inspector run, run {run}: exit {:?}\n{}{}",
                c.code, c.stdout, c.stderr
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 40 checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn runc_and_the_bundled_runtime_differ_in_the_runtime_roles_only() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    warm_up_the_bundled_runtime();
    let path = golden("docker-run-rm-true.golden");
    let c = check_docker_run(path.to_str().unwrap(), &["--runtime", "inspector"], &[]);
    assert_eq!(c.code, Some(1), "{}{}", c.stdout, c.stderr);
    let roles: Vec<&str> = c
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("@@ container 1 · ")?.strip_suffix(" @@"))
        .collect();
    assert!(
        roles.iter().any(|r| r.starts_with("runtime init")),
        "{roles:?}"
    );
    for role in &roles {
        assert!(
            role.starts_with("runtime") || *role == "client",
            "{role} differs too:\n{}",
            c.stdout
        );
    }
    assert!(
        c.stdout.contains("- execve(\"/usr/sbin/runc\""),
        "{}",
        c.stdout
    );
    assert!(
        c.stdout
            .contains("+ execve(\"<inspector-dir>/inspector-runtime\""),
        "{}",
        c.stdout
    );
}
