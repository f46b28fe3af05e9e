//! `inspector-runtime` under the real Docker engine (`--runtime inspector`,
//! registered by `cargo xtask docker`), each compared with runc.

use std::{
    process::{Command, Output},
    time::{Duration, Instant},
};

use tests::DOCKER;

const RUNTIME: &str = "inspector";

/// A Docker engine with the test image and the runtime registered.
fn ready() -> bool {
    if !tests::docker_ready() {
        return false;
    }
    let out = Command::new(DOCKER)
        .args(["info", "--format", "{{json .Runtimes}}"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    tests::require(
        out.contains(&format!("\"{RUNTIME}\"")),
        "dockerd started with --add-runtime inspector=... (cargo xtask docker)",
    )
}

fn docker(args: &[&str]) -> Output {
    Command::new(DOCKER).args(args).output().expect("docker")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `docker run --rm --runtime R ARGS... IMAGE sh -c SCRIPT` → (exit code, output).
fn run(runtime: &str, args: &[&str], script: &str) -> (Option<i32>, String) {
    let image = tests::image();
    let mut all = vec!["run", "--rm", "--runtime", runtime];
    all.extend_from_slice(args);
    all.extend_from_slice(&[&image, "sh", "-c", script]);
    let o = docker(&all);
    (o.status.code(), text(&o))
}

#[test]
fn run_options_match_runc() {
    if !ready() {
        return;
    }
    let vol = tests::TempDir::new("rt-docker-vol");
    std::fs::write(vol.path().join("f"), "from the host\n").unwrap();
    let volume = format!("{}:/data:ro", vol.path().display());
    let args = [
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "--hostname",
        "box",
        "--memory",
        "64m",
        "--pids-limit",
        "33",
        "--cap-drop",
        "NET_RAW",
        "-v",
        &volume,
    ];
    let script = "echo $FOO; pwd; hostname; cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
        cat /sys/fs/cgroup/pids/pids.max; grep -E 'Cap(Eff|Bnd)' /proc/self/status; \
        cat /data/f; touch /data/g 2>/dev/null || echo read-only; id; \
        ip -o -4 addr show eth0 | wc -l; ip route | grep -c default; ls /dev; \
        grep -c . /proc/self/mountinfo; cat /proc/self/status | grep Seccomp:; exit 5";
    let (code_runc, with_runc) = run("runc", &args, script);
    let (code, ours) = run(RUNTIME, &args, script);
    assert_eq!(code_runc, Some(5), "{with_runc}");
    assert_eq!(code, Some(5), "{ours}");
    assert_eq!(ours, with_runc);
}

#[test]
fn bad_command_error_reaches_the_user() {
    if !ready() {
        return;
    }
    let image = tests::image();
    let runc = docker(&[
        "run",
        "--rm",
        "--runtime",
        "runc",
        &image,
        "no-such-command",
    ]);
    let ours = docker(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        &image,
        "no-such-command",
    ]);
    assert_eq!(ours.status.code(), runc.status.code(), "{}", text(&ours));
    assert!(
        text(&ours).contains("executable file not found"),
        "{}",
        text(&ours)
    );
}

fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn status(name: &str) -> String {
    text(&docker(&["inspect", "--format", "{{.State.Status}}", name]))
        .trim()
        .to_string()
}

#[test]
fn exec_top_pause_stop_kill() {
    if !ready() {
        return;
    }
    let image = tests::image();
    let name = format!("inspector-rt-{}", std::process::id());
    let _ = docker(&["rm", "-f", &name]);
    let o = docker(&[
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        "--name",
        &name,
        &image,
        "sleep",
        "1000",
    ]);
    assert!(o.status.success(), "{}", text(&o));

    let o = docker(&[
        "exec",
        "-e",
        "X=1",
        "-w",
        "/tmp",
        &name,
        "sh",
        "-c",
        "echo $X; pwd; cat /proc/1/cmdline",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "1\n/tmp\nsleep\x001000\0"
    );
    let o = docker(&["exec", &name, "sh", "-c", "exit 4"]);
    assert_eq!(o.status.code(), Some(4));

    let o = docker(&["top", &name]);
    assert!(
        o.status.success() && text(&o).contains("sleep 1000"),
        "{}",
        text(&o)
    );

    assert!(docker(&["pause", &name]).status.success());
    assert_eq!(status(&name), "paused");
    let frozen = docker(&["exec", &name, "true"]);
    assert!(!frozen.status.success(), "exec into a paused container");
    assert!(docker(&["unpause", &name]).status.success());
    assert_eq!(status(&name), "running");

    let o = docker(&["stop", "-t", "1", &name]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(status(&name), "exited");
    assert!(
        docker(&["start", &name]).status.success(),
        "restart under the runtime"
    );
    assert!(wait_for(|| status(&name) == "running"));
    assert!(docker(&["kill", &name]).status.success());
    let o = docker(&["wait", &name]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "137");
    assert!(docker(&["rm", &name]).status.success());
}

#[test]
fn interactive_tty_through_the_console_socket() {
    if !ready() {
        return;
    }
    let image = tests::image();
    let run = |runtime: &str| {
        let cmd = format!(
            "{DOCKER} run --rm -it --runtime {runtime} {image} sh -c 'tty; echo $TERM; stty size'"
        );
        let o = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .output()
            .expect("script (bsdutils)");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let (code_runc, with_runc) = run("runc");
    let (code, ours) = run(RUNTIME);
    assert!(ours.contains("/dev/pts/0"), "{ours}");
    assert_eq!(code, code_runc);
    assert_eq!(ours, with_runc);
}

/// A container of `runtime` sleeping for a minute, detached: its name.
fn sleeping(runtime: &str, what: &str) -> String {
    let name = format!("inspector-{what}-{runtime}-{}", std::process::id());
    let image = tests::image();
    let up = docker(&[
        "run",
        "-d",
        "--rm",
        "--runtime",
        runtime,
        "--name",
        &name,
        &image,
        "sleep",
        "60",
    ]);
    assert!(up.status.success(), "{}", text(&up));
    name
}

/// `--cpuset-cpus` narrows the container's cpuset, and `docker update`
/// changes memory, swap, pids and cpuset of a running container, read back
/// from inside: the same with runc and with ours.
#[test]
fn cpuset_and_docker_update_match_runc() {
    if !ready() {
        return;
    }
    let cpus =
        "cat /sys/fs/cgroup/cpuset/cpuset.cpus 2>/dev/null || cat /sys/fs/cgroup/cpuset.cpus";
    let (code_runc, with_runc) = run("runc", &["--cpuset-cpus", "0"], cpus);
    let (code, ours) = run(RUNTIME, &["--cpuset-cpus", "0"], cpus);
    assert_eq!((code_runc, with_runc.as_str()), (Some(0), "0\n"));
    assert_eq!((code, ours.as_str()), (Some(0), "0\n"));

    let read = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes \
        /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpuset/cpuset.cpus 2>/dev/null \
        || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpuset.cpus";
    let updated = |runtime: &str| -> String {
        let name = sleeping(runtime, "update");
        let update = docker(&[
            "update",
            "--memory",
            "48m",
            "--memory-swap",
            "48m",
            "--pids-limit",
            "20",
            "--cpuset-cpus",
            "0",
            &name,
        ]);
        let seen = docker(&["exec", &name, "sh", "-c", read]);
        let _ = docker(&["rm", "-f", &name]);
        assert!(update.status.success(), "{runtime}: {}", text(&update));
        text(&seen)
    };
    let with_runc = updated("runc");
    assert_eq!(with_runc, "50331648\n20\n0\n");
    assert_eq!(updated(RUNTIME), with_runc);
}

/// `docker exec -w /missing`: the directory is not made (that is for
/// `run`'s working directory); the exec fails as it does with runc.
#[test]
fn exec_in_a_missing_directory_fails_as_with_runc() {
    if !ready() {
        return;
    }
    let attempt = |runtime: &str| -> (Option<i32>, bool) {
        let name = sleeping(runtime, "exec-cwd");
        let exec = docker(&["exec", "-w", "/missing", &name, "pwd"]);
        let made = docker(&["exec", &name, "test", "-e", "/missing"])
            .status
            .success();
        let _ = docker(&["rm", "-f", &name]);
        (exec.status.code(), made)
    };
    let with_runc = attempt("runc");
    assert_ne!(with_runc.0, Some(0), "runc ran it");
    assert!(!with_runc.1, "runc made the directory");
    assert_eq!(attempt(RUNTIME), with_runc);
}

/// `docker run --privileged` asks for every capability; where the host lacks
/// one (this machine kind lacks CAP_SYS_RESOURCE), runc fails at create and
/// Docker says why ("OCI runtime create failed", exit 125). Ours fails at the
/// same step, with the reason in Docker's own words to the user; where the
/// host has them all, both run it.
#[test]
fn privileged_fails_or_runs_as_with_runc() {
    if !ready() {
        return;
    }
    let with_runc = run("runc", &["--privileged"], "true");
    let ours = run(RUNTIME, &["--privileged"], "true");
    assert_eq!(
        ours.0, with_runc.0,
        "runc: {}\nours: {}",
        with_runc.1, ours.1
    );
    if with_runc.0 != Some(0) {
        assert!(
            with_runc.1.contains("OCI runtime create failed"),
            "{}",
            with_runc.1
        );
        assert!(ours.1.contains("OCI runtime create failed"), "{}", ours.1);
        assert!(
            ours.1
                .contains("cannot apply the capabilities (capset): Operation not permitted"),
            "{}",
            ours.1
        );
    }
}
