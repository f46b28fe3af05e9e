//! `inspector record`, `check` and `diff` against the real engine: a golden in
//! the repository matched run after run, and the diff of a changed run
//! naming the change and nothing else.

use std::{path::PathBuf, process::Command};

use tests::{
    DOCKER, Need, TempDir,
    engines::{self, Runtime},
    image, inspector_bin, probe_test, ready,
    runtime::Bundle,
};

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
            role.starts_with("runtime") || *role == "client" || *role == "made by",
            "{role} differs too:\n{}",
            c.stdout
        );
    }
    assert!(
        c.stdout
            .contains("- docker, runc\n+ docker, inspector-runtime"),
        "{}",
        c.stdout
    );
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

/// `inspector check --runs 20` of `cmd` against the golden `name`: every
/// run's sequence compared.
fn matches_20_times(name: &str, cmd: &[&str]) {
    let path = golden(name);
    let mut args = vec![
        "check",
        "--runs",
        "20",
        "--golden",
        path.to_str().unwrap(),
        "--",
    ];
    args.extend_from_slice(cmd);
    let c = inspector(&args);
    assert_eq!(
        c.code,
        Some(0),
        "{name} (regenerate it with `inspector check --update` only if the change is \
         intended):\n{}{}",
        c.stdout,
        c.stderr
    );
    assert!(c.stderr.contains("20 runs"), "{}", c.stderr);
}

/// podman names a container at random unless told: conmon's command line
/// carries the name.
const GOLDEN_NAME: &str = "inspector-golden";

fn podman_true() -> Vec<String> {
    let mut cmd = vec![
        "/usr/bin/podman".to_string(),
        "--runtime".into(),
        "runc".into(),
        "run".into(),
        "--rm".into(),
        "--name".into(),
        GOLDEN_NAME.into(),
    ];
    cmd.extend(engines::PODMAN_LIMITS.iter().map(|s| s.to_string()));
    cmd.extend([image(), "true".into()]);
    cmd
}

#[test]
fn podman_run_matches_its_golden_20_times() {
    let Some(_lock) = probe_test(&[Need::Trace]) else {
        return;
    };
    if !engines::podman_ready() {
        return;
    }
    let cmd = podman_true();
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    matches_20_times("podman-run-rm-true.golden", &cmd);
}

#[test]
fn ctr_run_matches_its_golden_20_times() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    if !engines::ctr_ready() {
        return;
    }
    let image = engines::ctr_image();
    matches_20_times(
        "ctr-run-rm-true.golden",
        &[
            "/usr/bin/ctr",
            "-a",
            engines::CONTAINERD_SOCKET,
            "-n",
            engines::CTR_NAMESPACE,
            "run",
            "--rm",
            &image,
            GOLDEN_NAME,
            "true",
        ],
    );
}

/// `RUNTIME --root ROOT run --bundle B ID` of a busybox bundle running `true`.
fn runtime_alone(runtime: Runtime, root: &TempDir, bundle: &Bundle) -> Vec<String> {
    let cmd = engines::direct_run(runtime, root.path(), bundle);
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn runc_alone_matches_its_golden_20_times() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::Runtime, Need::Runc]) else {
        return;
    };
    let root = TempDir::new("golden-runc-root");
    let bundle = Bundle::new("golden-runc", &["true"]);
    let cmd = runtime_alone(Runtime::Runc, &root, &bundle);
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    matches_20_times("runc-run-true.golden", &cmd);
}

/// Goldens of different engines or runtimes compare role by role: what made
/// each is said first, then each role that differs, under the same names.
#[test]
fn goldens_of_two_engines_or_two_runtimes_diff_role_by_role() {
    let docker = golden("docker-run-rm-true.golden");
    let podman = golden("podman-run-rm-true.golden");
    let c = inspector(&["diff", docker.to_str().unwrap(), podman.to_str().unwrap()]);
    assert_eq!(c.code, Some(1), "{}", c.stderr);
    let out = &c.stdout;
    assert!(
        out.contains("@@ container 1 · made by @@\n- docker, runc\n+ podman, runc"),
        "{out}"
    );
    for role in ["client", "shim (start)", "runtime create", "runtime init"] {
        assert!(
            out.contains(&format!("@@ container 1 · {role} @@")),
            "{role}:\n{out}"
        );
    }
    // What one engine has and the other not, by name.
    assert!(
        out.contains("@@ container 1 · engine cleanup (new) @@"),
        "{out}"
    );
    assert!(
        out.contains("@@ container 1 · shim delete (missing) @@"),
        "{out}"
    );
    assert!(out.contains("+ execve(\"/usr/bin/conmon\""), "{out}");

    // runc against the bundled runtime, alone: the runtime's roles. (Not
    // youki: `youki run` 0.7 now and then never returns.)
    let Some(_lock) = probe_test(&[Need::Trace, Need::Runtime]) else {
        return;
    };
    let tmp = TempDir::new("golden-ours");
    let ours = tmp.path().join("ours.golden");
    let root = TempDir::new("golden-ours-root");
    let bundle = Bundle::new("golden-ours", &["true"]);
    let cmd = runtime_alone(Runtime::Ours, &root, &bundle);
    let mut args = vec!["record", "--golden", ours.to_str().unwrap(), "--"];
    args.extend(cmd.iter().map(String::as_str));
    let r = inspector(&args);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    let runc = golden("runc-run-true.golden");
    let c = inspector(&["diff", runc.to_str().unwrap(), ours.to_str().unwrap()]);
    assert_eq!(c.code, Some(1), "{}", c.stderr);
    assert!(
        c.stdout
            .contains("- runc, no engine\n+ inspector-runtime, no engine"),
        "{}",
        c.stdout
    );
    assert!(
        c.stdout.contains("@@ container 1 · runtime run @@"),
        "{}",
        c.stdout
    );
}
