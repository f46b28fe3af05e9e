//! The first container on a freshly started Docker engine, as a user's CI
//! runner always has it, against goldens recorded on a warm engine, and the
//! other way round: the engine's one-time set-up (runc making the parent
//! cgroups `/docker` and copying cpuset values into them) is listed as such,
//! never a difference, while a real change still is.
//!
//! The test stops and restarts dockerd, so it is alone in its test binary:
//! no test of another binary runs meanwhile (cargo runs test binaries one
//! after another, and the suite holds /tmp/inspector-itest.lock around each),
//! and none of this one can see the engine down.

use std::{
    ffi::OsString,
    os::unix::{ffi::OsStringExt as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tests::{DOCKER, Need, TempDir, image, inspector_bin, probe_test, require};

const PID_FILE: &str = "/var/run/docker.pid";

/// The running dockerd, as it was started: restarted the same way.
struct Engine {
    exe: PathBuf,
    argv: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: PathBuf,
    /// Where its output went (`cargo xtask docker` logs to a file).
    log: Option<PathBuf>,
}

fn pid() -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(PID_FILE)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

fn nul_separated(bytes: Vec<u8>) -> Vec<OsString> {
    bytes
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| OsString::from_vec(s.to_vec()))
        .collect()
}

fn answers() -> bool {
    Command::new(DOCKER)
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `pid` has exited: no longer in /proc, or a zombie its parent
/// (someone else's, which this test cannot reap) has not waited for yet.
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command, which is in parentheses and may
        // hold any character: read after the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

impl Engine {
    fn running() -> Result<Engine, String> {
        let pid = pid().ok_or(format!("no running dockerd in {PID_FILE}"))?;
        let proc = PathBuf::from(format!("/proc/{pid}"));
        let cgroup = std::fs::read_to_string(proc.join("cgroup")).unwrap_or_default();
        if cgroup.contains(".service") {
            return Err(format!(
                "dockerd (pid {pid}) is a service of the init system; this test restarts it by \
                 hand, as `cargo xtask docker` starts it"
            ));
        }
        let read = |name: &str| std::fs::read(proc.join(name)).map_err(|e| format!("{name}: {e}"));
        let env = nul_separated(read("environ")?)
            .into_iter()
            .filter_map(|kv| {
                let kv = kv.into_vec();
                let at = kv.iter().position(|&b| b == b'=')?;
                Some((
                    OsString::from_vec(kv[..at].to_vec()),
                    OsString::from_vec(kv[at + 1..].to_vec()),
                ))
            })
            .collect();
        let log = std::fs::read_link(proc.join("fd/1"))
            .ok()
            .filter(|p| p.is_file());
        Ok(Engine {
            exe: std::fs::read_link(proc.join("exe")).map_err(|e| format!("exe: {e}"))?,
            argv: nul_separated(read("cmdline")?),
            env,
            cwd: std::fs::read_link(proc.join("cwd")).unwrap_or_else(|_| "/".into()),
            log,
        })
    }

    fn stop(&self) {
        let Some(pid) = pid() else { return };
        // SAFETY: signalling the engine's process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // An engine this test started is its child: reaped here, or it
            // stays a zombie (a no-op on an engine started by someone else).
            // SAFETY: waitpid with no status pointer.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
            if gone(pid) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "dockerd (pid {pid}) did not stop within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts dockerd as it was started, in a session of its own (it
    /// outlives the test, as a service would), and waits for it to answer.
    fn start(&self) -> Result<(), String> {
        let out = match &self.log {
            Some(log) => std::fs::OpenOptions::new()
                .append(true)
                .open(log)
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
            None => Stdio::null(),
        };
        let err = match &self.log {
            Some(log) => std::fs::OpenOptions::new()
                .append(true)
                .open(log)
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
            None => Stdio::null(),
        };
        let mut cmd = Command::new(&self.exe);
        cmd.arg0(&self.argv[0])
            .args(&self.argv[1..])
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // SAFETY: setsid and close_range are async-signal-safe and touch only
        // the child. Whatever descriptor this test inherited (the lock the
        // suite holds around it) must not live on in the engine, which would
        // then hold the lock for as long as it runs.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                Ok(())
            });
        }
        cmd.spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.exe.display()))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !answers() {
            if Instant::now() > deadline {
                return Err("dockerd did not answer within 60 s after its restart".into());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Ok(())
    }

    /// Stops the engine, removes the parent cgroups it left (empty, or the
    /// kernel refuses), and starts it again: the state of a machine that
    /// has just booted. Returns the parents removed.
    fn restart_fresh(&self) -> Vec<PathBuf> {
        self.stop();
        let removed = remove_parent_cgroups();
        self.start().unwrap();
        removed
    }
}

/// Puts the engine back if the test stopped it and failed before restarting it.
struct RunningAgain<'e>(&'e Engine);

impl Drop for RunningAgain<'_> {
    fn drop(&mut self) {
        if pid().is_none()
            && let Err(e) = self.0.start()
        {
            eprintln!("could not put the engine back: {e}");
        }
    }
}

/// The engine's parent cgroups, `/docker` in every hierarchy (cgroupfs
/// driver; the systemd driver's parent is system.slice, which stays), once
/// the engine is stopped. Only empty ones can be removed: a cgroup with a
/// process or a child cgroup in it is kept by the kernel (EBUSY).
fn remove_parent_cgroups() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut parents = vec![root.join("docker")];
    for h in std::fs::read_dir(root).into_iter().flatten().flatten() {
        parents.push(h.path().join("docker"));
    }
    let mut removed = Vec::new();
    for p in parents.into_iter().filter(|p| p.is_dir()) {
        match std::fs::remove_dir(&p) {
            Ok(()) => removed.push(p),
            Err(e) => panic!(
                "cannot remove {} ({e}): a container outlived its engine? the test needs the \
                 engine's parent cgroups empty",
                p.display()
            ),
        }
    }
    removed
}

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn inspector_docker_run(verb: &str, golden: &Path, docker_args: &[&str]) -> Output {
    let out = Command::new(inspector_bin())
        .arg(verb)
        .arg("--golden")
        .arg(golden)
        .args(["--", DOCKER, "run", "--rm"])
        .args(docker_args)
        .args([image().as_str(), "true"])
        .output()
        .unwrap();
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The lines of a diff that say something changed.
fn changes(diff: &str) -> Vec<&str> {
    diff.lines()
        .filter(|l| l.starts_with("+ ") || l.starts_with("- "))
        .collect()
}

/// The note of one-time set-up names a parent made in every hierarchy
/// whose parent the test removed (`/sys/fs/cgroup/memory/docker` → a
/// `cgroup mkdir …:/docker`).
fn assert_set_up_listed(out: &Output, removed: &[PathBuf], only_in: &str) {
    let text = format!("{}{}", out.stdout, out.stderr);
    let note = text
        .split_once("one-time engine set-up (not compared):\n")
        .map(|(_, note)| note)
        .unwrap_or_else(|| panic!("no one-time set-up listed:\n{text}"));
    assert!(note.contains(&format!(", only in {only_in}:\n")), "{text}");
    let mkdirs = note
        .lines()
        .filter(|l| l.starts_with("    cgroup mkdir ") && l.ends_with(":/docker"))
        .count();
    assert_eq!(mkdirs, removed.len(), "{removed:?} removed; {text}");
}

#[test]
fn the_first_container_on_a_fresh_engine_matches_a_golden_from_a_warm_one_and_back() {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    let engine = match Engine::running() {
        Ok(engine) => engine,
        Err(why) => {
            require(false, &why);
            return;
        }
    };
    let _running_again = RunningAgain(&engine);
    let warm = tests::workspace().join("tests/goldens/docker-run-rm-true.golden");

    // The repository's golden, recorded on a warm engine, against the first
    // container of a fresh one.
    let removed = engine.restart_fresh();
    let c = inspector_docker_run("check", &warm, &[]);
    assert_eq!(c.code, Some(0), "{}{}", c.stdout, c.stderr);
    if !removed.is_empty() {
        assert_set_up_listed(&c, &removed, "this run");
    }

    // A real difference on the first container is still one, and the only one.
    let removed = engine.restart_fresh();
    let c = inspector_docker_run("check", &warm, &["--pids-limit", "10"]);
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
        .filter(|l| !l[2..].starts_with("execve(\"/usr/bin/docker\"") && !l.contains("pids.max"))
        .collect();
    assert!(unexplained.is_empty(), "{unexplained:?} in\n{}", c.stdout);
    if !removed.is_empty() {
        assert_set_up_listed(&c, &removed, "this run");
    }

    // And back: a golden recorded on the first container of a fresh engine
    // marks the set-up, and the next (warm) run matches it.
    let tmp = TempDir::new("golden-fresh-engine");
    let fresh = tmp.path().join("fresh.golden");
    let removed = engine.restart_fresh();
    let c = inspector_docker_run("record", &fresh, &[]);
    assert_eq!(c.code, Some(0), "{}", c.stderr);
    let text = std::fs::read_to_string(&fresh).unwrap();
    let marked = text
        .lines()
        .filter(|l| l.trim_start().starts_with("once cgroup mkdir "))
        .count();
    assert_eq!(marked, removed.len(), "{text}");
    let c = inspector_docker_run("check", &fresh, &[]);
    assert_eq!(c.code, Some(0), "{}{}", c.stdout, c.stderr);
    if !removed.is_empty() {
        assert_set_up_listed(&c, &removed, &fresh.display().to_string());
    }
    // The engine is left running as it was started.
    assert_eq!(Engine::running().unwrap().argv, engine.argv);
}
