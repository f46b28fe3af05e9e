//! The Docker engine the tests and the main job use: Debian's docker.io,
//! started by hand (these machines have no init system running it), and a
//! busybox image imported from a root filesystem (no registry is reachable).

use std::{
    io::{BufRead, BufReader},
    os::unix::process::CommandExt as _,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::util;

pub const IMAGE: &str = "inspector/busybox:latest";
/// Debian's docker CLI; /usr/local/bin may hold a newer client that this engine does not speak.
pub const DOCKER: &str = "/usr/bin/docker";
const DOCKERD_LOG: &str = "/var/log/inspector-dockerd.log";
/// The name `docker run --runtime NAME` uses for the bundled runtime.
pub const RUNTIME_NAME: &str = "inspector";
/// The name it uses for youki, which `cargo xtask setup` installs.
pub const YOUKI_NAME: &str = "youki";

/// The bundled OCI runtime, as `cargo xtask build` leaves it.
pub fn runtime_binary() -> std::path::PathBuf {
    util::root().join("target/release/inspector-runtime")
}

pub fn docker() -> Command {
    Command::new(DOCKER)
}

pub fn ensure() -> Result<()> {
    if !util::succeeds(docker().arg("info")) {
        start_dockerd()?;
    } else if !runtime_registered() {
        // A dockerd started before the runtime existed (or by hand) does not know it.
        util::step(&format!(
            "restarting dockerd to register the {RUNTIME_NAME} and {YOUKI_NAME} runtimes"
        ));
        stop_dockerd()?;
        start_dockerd()?;
    }
    if !util::succeeds(docker().args(["image", "inspect", IMAGE])) {
        import_image()?;
    }
    Ok(())
}

fn start_dockerd() -> Result<()> {
    util::step(&format!("starting dockerd (log: {DOCKERD_LOG})"));
    let log = std::fs::File::create(DOCKERD_LOG)?;
    // setsid --fork: dockerd outlives this command in a session of its own,
    // as a service would, and is not this command's child: when it stops
    // (a test restarts the engine) it is reaped, not left a zombie that
    // looks alive until `cargo xtask test` ends.
    let mut cmd = Command::new("setsid");
    cmd.args(["--fork", "dockerd"])
        .arg("--add-runtime")
        .arg(format!("{RUNTIME_NAME}={}", runtime_binary().display()));
    if let Some(youki) = youki_binary() {
        cmd.arg("--add-runtime")
            .arg(format!("{YOUKI_NAME}={}", youki.display()));
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // Nothing inherited beyond stdio: run under `flock FILE cargo xtask ...`,
    // dockerd would otherwise hold that lock for as long as it runs.
    // SAFETY: close_range is async-signal-safe; it only closes descriptors.
    unsafe {
        cmd.pre_exec(|| {
            libc::close_range(3, libc::c_uint::MAX, 0);
            Ok(())
        });
    }
    let started = cmd
        .status()
        .context("cannot start dockerd (is docker.io installed? run `cargo xtask setup`)")?;
    if !started.success() {
        bail!("setsid --fork dockerd failed ({started}); see {DOCKERD_LOG}");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if util::succeeds(docker().arg("info")) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    bail!("dockerd did not answer within 60 s; see {DOCKERD_LOG}")
}

/// youki as `cargo install` left it: on the PATH, or in cargo's own bin.
pub fn youki_binary() -> Option<std::path::PathBuf> {
    let home = std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo/bin"));
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain(home)
        .map(|dir| dir.join("youki"))
        .find(|p| p.is_file())
}

/// Does the running engine know the bundled runtime (at this workspace's
/// path) and youki?
fn runtime_registered() -> bool {
    let Ok(out) = util::output(docker().args(["info", "--format", "{{json .Runtimes}}"])) else {
        return false;
    };
    let runtimes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let path = |name: &str| runtimes[name]["path"].as_str().map(str::to_string);
    path(RUNTIME_NAME) == Some(runtime_binary().display().to_string())
        && path(YOUKI_NAME) == youki_binary().map(|p| p.display().to_string())
}

/// Stops the dockerd whose pid file is in the usual place, and waits for it to go.
fn stop_dockerd() -> Result<()> {
    let pid: i32 = std::fs::read_to_string("/var/run/docker.pid")
        .context("dockerd is running but /var/run/docker.pid is missing; stop it by hand")?
        .trim()
        .parse()
        .context("/var/run/docker.pid")?;
    // SAFETY: signalling the engine's process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Path::new(&format!("/proc/{pid}")).exists() {
        if Instant::now() > deadline {
            bail!("dockerd (pid {pid}) did not stop within 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// A root filesystem of busybox-static and its applets, imported as `IMAGE`.
fn import_image() -> Result<()> {
    util::step(&format!("importing {IMAGE} from busybox-static"));
    let rootfs = util::root().join("target/busybox-rootfs");
    let _ = std::fs::remove_dir_all(&rootfs);
    make_busybox_rootfs(&rootfs)?;
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()?;
    util::run(
        docker()
            .args(["import", "-", IMAGE])
            .stdin(tar.stdout.context("tar's output")?)
            .stdout(Stdio::null()),
    )
}

pub fn make_busybox_rootfs(rootfs: &Path) -> Result<()> {
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin)?;
    for dir in ["proc", "sys", "dev", "tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(dir))?;
    }
    std::fs::copy("/bin/busybox", bin.join("busybox"))
        .context("/bin/busybox is missing: install busybox-static")?;
    let list = util::output(Command::new("/bin/busybox").arg("--list"))?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
        }
    }
    Ok(())
}

/// The main job: trace one `docker run --rm IMAGE true` and print what the
/// kernel saw, from the docker CLI's exec to the last cgroup removed.
pub fn trace_one_run(verbose: bool) -> Result<()> {
    let inspector = util::root().join("target/release/inspector");
    let mut tracer = Command::new(&inspector)
        .args(["trace", "--format", "text"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", inspector.display()))?;

    // Wait for the probes to be attached before starting the container.
    let mut stderr = BufReader::new(tracer.stderr.take().context("stderr")?);
    let mut line = String::new();
    stderr.read_line(&mut line)?;
    eprint!("{line}");
    if !line.contains("probes attached") {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
        bail!("inspector did not start: {line}{rest}");
    }
    let stdout = tracer.stdout.take().context("stdout")?;
    let printer = std::thread::spawn(move || {
        let mut printed = 0usize;
        let mut hidden = 0usize;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !verbose && line.contains(" fork thread ") {
                hidden += 1;
                continue;
            }
            println!("{line}");
            printed += 1;
        }
        (printed, hidden)
    });

    util::step(&format!("docker run --rm {IMAGE} true"));
    let started = Instant::now();
    let status = docker().args(["run", "--rm", IMAGE, "true"]).status()?;
    let took = started.elapsed();
    // Let the teardown that follows the CLI's exit (containerd's, the shim's) arrive.
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: signalling the child we spawned.
    unsafe { libc::kill(tracer.id() as i32, libc::SIGINT) };
    tracer.wait()?;
    let (printed, hidden) = printer.join().expect("printer thread");
    for line in stderr.lines().map_while(Result::ok) {
        eprintln!("{line}");
    }
    eprintln!(
        "==> docker run exited with {status} after {:.0} ms; {printed} events shown{}",
        took.as_secs_f64() * 1000.0,
        if hidden > 0 {
            format!(" ({hidden} thread creations hidden; --verbose shows them)")
        } else {
            String::new()
        }
    );
    if !status.success() {
        bail!("docker run failed");
    }
    Ok(())
}
