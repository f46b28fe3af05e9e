//! Boots Debian 12's stock kernel (6.1) under qemu and runs inspector's checks
//! in it, once per test binary: this machine runs 6.18 on a v1/v2 hybrid
//! cgroup layout, while users run 6.1 on pure cgroup2, and only a VM gives a
//! test that kernel and that layout.
//!
//! - The kernel is the one `cargo xtask setup` fetched into `target/vm/kernel`
//!   (Debian's package, unpacked, never installed here).
//! - The guest is an initramfs: busybox, the release binaries, the shared
//!   libraries `ldd` lists for them, an OCI bundle, the static binaries of
//!   `cargo xtask dist` in a root of their own with busybox alone (no library
//!   at all: they run there chrooted), and `tests/vm/init.sh` as
//!   /init, which runs the checks and frames their output on the second serial
//!   port. It is packed with GNU cpio (Debian's `cpio`, which set-up installs),
//!   as initramfs-tools does: it writes the newc format from a staged tree,
//!   device node and symlinks included, and the tests need no extra crate.
//! - qemu runs with TCG: a nested KVM guest hangs on this machine kind.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use crate::{
    paths::{bundled_runtime_bin, dist_dir, inspector_bin, workspace},
    require::{is_root, require},
};

/// Within CI's budget, and well above what a boot with every check takes
/// (the test prints its wall time: `vm: ... s wall time`).
const TIMEOUT: Duration = Duration::from_secs(8 * 60);
/// Where the guest keeps inspector and its runtime, side by side as
/// `inspector run` expects.
const GUEST_BIN_DIR: &str = "opt/inspector";
/// The root of the static binaries in the guest: busybox, and `usr/bin`
/// holding what `cargo xtask dist` built; init.sh chroots there.
const GUEST_STATIC_ROOT: &str = "opt/static-root";
/// The static binaries, as `cargo xtask dist` names them.
pub const STATIC_BINARIES: [&str; 2] = ["inspector", "inspector-runtime"];
/// The repository's golden for `inspector run --brief -- /bin/true` on this
/// kernel and layout, checked in the guest when it exists.
pub const REPO_GOLDEN: &str = "inspector-run-true-cgroup2-6.1.golden";

/// What one guest check printed, as `tests/vm/init.sh` framed it.
#[derive(Debug, Default)]
pub struct Check {
    /// Its exit code; `None` when the guest stopped before the check ended.
    pub rc: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// Guest seconds it took.
    pub secs: Option<f64>,
}

impl Check {
    /// The whole of it, for an assertion message.
    pub fn show(&self) -> String {
        let rc = self
            .rc
            .map_or("none (cut short)".to_string(), |rc| rc.to_string());
        format!(
            "exit code {rc}\n--- stdout\n{}--- stderr\n{}",
            self.stdout, self.stderr
        )
    }
}

/// One boot's results.
pub struct Guest {
    pub kernel: PathBuf,
    /// In the order the guest ran them.
    checks: Vec<(String, Check)>,
    console: String,
    /// Guest uptime when every check had run; `None` when it never got there.
    done: Option<f64>,
    /// Why the guest stopped, when it did not finish.
    stopped: Option<String>,
    /// Staging and packing the initramfs, and its size.
    staged: Duration,
    initrd_bytes: u64,
    /// qemu's run, from its start to its exit.
    pub wall: Duration,
}

impl Guest {
    /// The check named `name`; fails the test, showing the end of the
    /// console, when the guest never reported it.
    pub fn check(&self, name: &str) -> &Check {
        match self.checks.iter().find(|(n, _)| n == name) {
            Some((_, c)) => c,
            None => panic!(
                "the guest never reported check {name:?} ({}); the console's last lines:\n{}",
                self.stopped.as_deref().unwrap_or("it finished without it"),
                self.console_tail()
            ),
        }
    }

    pub fn console_tail(&self) -> String {
        tail(&self.console, 40)
    }

    fn summary(&self) -> String {
        let mut s = format!(
            "vm: initramfs of {:.1} MB made in {:.1} s; {} under qemu (TCG): {:.1} s wall time, \
             every check done at {} s of guest uptime{}\n",
            self.initrd_bytes as f64 / 1e6,
            self.staged.as_secs_f64(),
            self.kernel.display(),
            self.wall.as_secs_f64(),
            self.done.map_or("-".into(), |d| format!("{d:.2}")),
            self.stopped
                .as_ref()
                .map(|why| format!(" (did not finish: {why})"))
                .unwrap_or_default()
        );
        for (name, c) in &self.checks {
            s += &format!(
                "vm:   {name:<14} exit {:<5} {} s\n",
                c.rc.map_or("-".into(), |rc| rc.to_string()),
                c.secs.map_or("-".into(), |t| format!("{t:.2}"))
            );
        }
        s
    }
}

/// The guest's results: booted on the first call, shared by every test of the
/// binary. `None` (the test skips) when a prerequisite is missing outside CI.
pub fn guest() -> Option<&'static Guest> {
    static BOOT: OnceLock<Option<Result<Guest, String>>> = OnceLock::new();
    let boot = BOOT.get_or_init(|| {
        let kernel = prerequisites()?;
        let result = boot(&kernel);
        if let Ok(g) = &result {
            eprint!("{}", g.summary());
        }
        Some(result)
    });
    match boot.as_ref()? {
        Ok(guest) => Some(guest),
        Err(e) => panic!("{e}"),
    }
}

/// The kernel to boot, when everything the boot needs is there.
fn prerequisites() -> Option<PathBuf> {
    let kernel = kernel();
    let runtime = bundled_runtime_bin();
    let ok = require(is_root(), "the VM test needs root (mknod of /dev/console)")
        && require(
            kernel.is_some(),
            "Debian 12's kernel in target/vm/kernel (cargo xtask setup fetches it)",
        )
        && require(
            runs(Command::new("qemu-system-x86_64").arg("--version")),
            "qemu-system-x86_64 (cargo xtask setup installs qemu-system-x86)",
        )
        && require(
            runs(Command::new("cpio").arg("--version")),
            "GNU cpio (cargo xtask setup installs it)",
        )
        && require(
            Path::new("/bin/busybox").exists(),
            "busybox-static (cargo xtask setup installs it)",
        )
        && require(
            inspector_bin().exists() && runtime.exists(),
            "release binaries of inspector and inspector-runtime (cargo xtask build)",
        );
    if ok { kernel } else { None }
}

fn runs(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The newest `vmlinuz-*` set-up unpacked.
fn kernel() -> Option<PathBuf> {
    let boot = workspace().join("target/vm/kernel/boot");
    let mut found: Vec<PathBuf> = fs::read_dir(boot)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// A directory of this boot's own under target/vm (not a guessable name in a
/// world-writable place, and never one shared with another boot), removed
/// when done.
fn work_dir() -> Result<tempfile::TempDir, String> {
    let vm = workspace().join("target/vm");
    fs::create_dir_all(&vm).map_err(|e| format!("cannot create {}: {e}", vm.display()))?;
    tempfile::Builder::new()
        .prefix(&format!("boot-{}-", std::process::id()))
        .tempdir_in(&vm)
        .map_err(|e| format!("cannot create a directory in {}: {e}", vm.display()))
}

fn boot(kernel: &Path) -> Result<Guest, String> {
    let work = work_dir()?;
    let staging = Instant::now();
    let root = work.path().join("root");
    stage(&root).map_err(|e| format!("cannot stage the initramfs in {}: {e}", root.display()))?;
    let initrd = work.path().join("initrd.cpio");
    pack(&root, &initrd)?;
    let staged = staging.elapsed();
    let initrd_bytes = fs::metadata(&initrd).map(|m| m.len()).unwrap_or(0);

    let console = work.path().join("console.log");
    let results = work.path().join("results.log");
    let qemu_log = work.path().join("qemu.log");
    let started = Instant::now();
    let mut qemu = Command::new("qemu-system-x86_64")
        .args(["-accel", "tcg", "-smp", "2", "-m", "1536"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(&initrd)
        .args(["-append", "console=ttyS0 panic=-1 quiet"])
        .args(["-display", "none", "-monitor", "none", "-no-reboot"])
        // ttyS0 gets the kernel's messages, ttyS1 the framed results alone.
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .arg("-serial")
        .arg(format!("file:{}", results.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(
            fs::File::create(&qemu_log)
                .map_err(|e| format!("cannot create {}: {e}", qemu_log.display()))?,
        )
        .spawn()
        .map_err(|e| format!("cannot start qemu-system-x86_64: {e}"))?;
    let mut stopped = None;
    loop {
        match qemu.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(Some(status)) => {
                stopped = Some(format!("qemu exited with {status}"));
                break;
            }
            Ok(None) if started.elapsed() > TIMEOUT => {
                let _ = qemu.kill();
                let _ = qemu.wait();
                stopped = Some(format!("killed after {} s", TIMEOUT.as_secs()));
                break;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => {
                let _ = qemu.kill();
                return Err(format!("waiting for qemu: {e}"));
            }
        }
    }
    let wall = started.elapsed();

    let read = |p: &Path| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned();
    let (console, results, qemu_log) = (read(&console), read(&results), read(&qemu_log));
    // Kept after the work directory goes, for a look at the last boot.
    let vm = workspace().join("target/vm");
    let _ = fs::write(vm.join("last-console.log"), &console);
    let _ = fs::write(vm.join("last-results.log"), &results);
    let (checks, done) = parse(&results);
    if checks.is_empty() {
        return Err(format!(
            "the guest reported nothing ({}); qemu said:\n{qemu_log}\nthe console's last lines:\n{}",
            stopped.as_deref().unwrap_or("qemu exited first"),
            tail(&console, 40)
        ));
    }
    if done.is_none() && stopped.is_none() {
        stopped = Some("it stopped before its last check".into());
    }
    Ok(Guest {
        kernel: kernel.to_path_buf(),
        checks,
        console,
        done,
        stopped,
        staged,
        initrd_bytes,
        wall,
    })
}

/// The guest's tree: busybox as every command, inspector and its runtime
/// with their libraries, the bundle of the limits check, the script as /init.
fn stage(root: &Path) -> std::io::Result<()> {
    for dir in [
        "bin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "run",
        "etc",
        "newroot",
        GUEST_BIN_DIR,
    ] {
        fs::create_dir_all(root.join(dir))?;
    }
    busybox(&root.join("bin"), &busybox_applets()?)?;
    // The kernel opens /dev/console for /init before anything is mounted.
    let status = Command::new("mknod")
        .args(["-m", "600"])
        .arg(root.join("dev/console"))
        .args(["c", "5", "1"])
        .status()?;
    if !status.success() {
        return Err(std::io::Error::other(format!(
            "mknod dev/console: {status}"
        )));
    }
    install(
        &workspace().join("tests/vm/init.sh"),
        &root.join("init"),
        0o755,
    )?;

    let inspector = inspector_bin();
    let runtime = bundled_runtime_bin();
    let bin_dir = root.join(GUEST_BIN_DIR);
    for binary in [&inspector, &runtime] {
        let name = binary.file_name().expect("a binary's file name");
        install(binary, &bin_dir.join(name), 0o755)?;
        for lib in shared_libraries(binary)? {
            let inside = root.join(lib.strip_prefix("/").unwrap_or(&lib));
            if !inside.exists() {
                fs::create_dir_all(inside.parent().expect("a library's directory"))?;
                install(&lib, &inside, 0o755)?;
            }
        }
    }

    if has_static_binaries() {
        static_root(&root.join(GUEST_STATIC_ROOT))?;
    }

    limits_bundle(&root.join("opt/limits"))?;
    failure_bundles(&root.join("opt"))?;
    let golden = workspace().join("tests/goldens").join(REPO_GOLDEN);
    if golden.exists() {
        fs::create_dir_all(root.join("opt/goldens"))?;
        install(&golden, &root.join("opt/goldens").join(REPO_GOLDEN), 0o644)?;
    }
    Ok(())
}

/// Did `cargo xtask dist` leave both static binaries? (When not, the guest
/// has no static checks, and the tests of them skip or, in CI, fail.)
pub fn has_static_binaries() -> bool {
    STATIC_BINARIES.iter().all(|b| dist_dir().join(b).exists())
}

/// A root filesystem of busybox-static and the static binaries, with no
/// shared library and no dynamic loader in it: what runs there needs none.
fn static_root(root: &Path) -> std::io::Result<()> {
    for dir in ["proc", "sys", "dev", "tmp", "run", "usr/bin"] {
        fs::create_dir_all(root.join(dir))?;
    }
    busybox(&root.join("bin"), &busybox_applets()?)?;
    for binary in STATIC_BINARIES {
        install(
            &dist_dir().join(binary),
            &root.join("usr/bin").join(binary),
            0o755,
        )?;
    }
    Ok(())
}

/// Copies `from` (following symlinks) to `to` with `mode`.
fn install(from: &Path, to: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::copy(from, to)
        .map_err(|e| std::io::Error::new(e.kind(), format!("copying {}: {e}", from.display())))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))
}

/// The host's busybox-static in `bin`, with a symlink per applet.
fn busybox(bin: &Path, applets: &[String]) -> std::io::Result<()> {
    fs::create_dir_all(bin)?;
    install(Path::new("/bin/busybox"), &bin.join("busybox"), 0o755)?;
    for applet in applets.iter().filter(|a| *a != "busybox") {
        std::os::unix::fs::symlink("busybox", bin.join(applet))?;
    }
    Ok(())
}

fn busybox_applets() -> std::io::Result<Vec<String>> {
    let out = Command::new("/bin/busybox").arg("--list").output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .map(String::from)
        .collect())
}

/// The libraries `ldd` lists for `binary`, the dynamic loader included.
fn shared_libraries(binary: &Path) -> std::io::Result<Vec<PathBuf>> {
    let out = Command::new("ldd").arg(binary).output()?;
    // A static binary: ldd says so and fails; it needs nothing.
    if !out.status.success() {
        return Ok(Vec::new());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or
            // "/lib64/ld-linux-x86-64.so.2 (0x…)"; the vDSO has no file.
            let line = line.trim();
            let path = line.split_once("=> ").map_or(line, |(_, p)| p);
            let path = path.split(" (").next()?.trim();
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}

/// The bundle of the limits check: a busybox root filesystem and a
/// config.json that sets memory, pids, cpu and cpuset limits, mounts the container's
/// cgroup at /sys/fs/cgroup in a cgroup namespace, and reads the limits back.
fn limits_bundle(bundle: &Path) -> std::io::Result<()> {
    let rootfs = bundle.join("rootfs");
    for dir in ["proc", "sys", "dev", "tmp"] {
        fs::create_dir_all(rootfs.join(dir))?;
    }
    busybox(&rootfs.join("bin"), &["sh".into(), "cat".into()])?;
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/cat", "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/pids.max",
                     "/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpuset.cpus",
                     "/sys/fs/cgroup/cpuset.cpus.effective"],
            "env": ["PATH=/bin"],
            "cwd": "/",
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "vmlimits",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["ro", "nosuid", "noexec", "nodev"]}
        ],
        "linux": {
            "resources": {
                "memory": {"limit": 64 * 1024 * 1024},
                "pids": {"limit": 64},
                "cpu": {"quota": 50000, "period": 100000, "cpus": "1", "mems": "0"}
            },
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ]
        }
    });
    let text = serde_json::to_string_pretty(&config).expect("a JSON value");
    fs::write(bundle.join("config.json"), text + "\n")
}

/// The bundles of the checks that read the probe's newer hooks on a kernel
/// of their own (`mark_victim` passes a pid on 6.1, a task later; the
/// kernel stack's layout differs): `/opt/fail-oom` (8 MiB for `tail`
/// holding 200 MB), `/opt/fail-seccomp` (getppid killed under `sh`),
/// `/opt/fail-rlimit` (RLIMIT_NOFILE above the kernel's ceiling: prlimit64
/// EPERM even as root), `/opt/why-sleep` (a createRuntime hook sleeping
/// 200 ms, for `--why`).
fn failure_bundles(opt: &Path) -> std::io::Result<()> {
    let none = serde_json::Value::Null;
    let cases = [
        (
            "fail-oom",
            serde_json::json!(["/bin/sh", "-c", "head -c 200000000 /dev/zero | tail"]),
            serde_json::json!({"resources": {"memory": {"limit": 8 * 1024 * 1024}}}),
            serde_json::json!([]),
            none.clone(),
        ),
        (
            "fail-seccomp",
            serde_json::json!(["/bin/sh", "-c", "echo hi"]),
            serde_json::json!({"seccomp": {
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]
            }}),
            serde_json::json!([]),
            none.clone(),
        ),
        (
            "fail-rlimit",
            serde_json::json!(["/bin/true"]),
            serde_json::json!({}),
            serde_json::json!([{"type": "RLIMIT_NOFILE", "hard": 1u64 << 31, "soft": 1024}]),
            none.clone(),
        ),
        (
            "why-sleep",
            serde_json::json!(["/bin/true"]),
            serde_json::json!({}),
            serde_json::json!([]),
            serde_json::json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "0.2"]}]}),
        ),
    ];
    for (name, args, linux, rlimits, hooks) in cases {
        let bundle = opt.join(name);
        let rootfs = bundle.join("rootfs");
        for dir in ["proc", "dev", "tmp"] {
            fs::create_dir_all(rootfs.join(dir))?;
        }
        busybox(
            &rootfs.join("bin"),
            &["sh", "head", "tail", "true", "echo"].map(String::from),
        )?;
        let mut config = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": args,
                "env": ["PATH=/bin"],
                "cwd": "/",
                "rlimits": rlimits
            },
            "root": {"path": "rootfs", "readonly": true},
            "hostname": name,
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}
            ],
            "linux": {
                "namespaces": [
                    {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                    {"type": "uts"}, {"type": "mount"}
                ]
            }
        });
        if let (Some(to), Some(from)) = (config["linux"].as_object_mut(), linux.as_object()) {
            to.extend(from.clone());
        }
        if !hooks.is_null() {
            config["hooks"] = hooks;
        }
        let text = serde_json::to_string_pretty(&config).expect("a JSON value");
        fs::write(bundle.join("config.json"), text + "\n")?;
    }
    Ok(())
}

/// `find . | cpio -o -H newc`, owned by root whoever staged it.
fn pack(root: &Path, initrd: &Path) -> Result<(), String> {
    let out =
        fs::File::create(initrd).map_err(|e| format!("cannot create {}: {e}", initrd.display()))?;
    let mut find = Command::new("find")
        .args([".", "-print0"])
        .current_dir(root)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start find: {e}"))?;
    let list = find.stdout.take().ok_or("find's piped stdout")?;
    let cpio = Command::new("cpio")
        .args([
            "--null",
            "--create",
            "--format=newc",
            "--owner=0:0",
            "--quiet",
        ])
        .current_dir(root)
        .stdin(list)
        .stdout(out)
        .status()
        .map_err(|e| format!("cannot start cpio: {e}"))?;
    let find = find.wait().map_err(|e| format!("waiting for find: {e}"))?;
    if !find.success() || !cpio.success() {
        return Err(format!(
            "packing the initramfs failed: find {find}, cpio {cpio}"
        ));
    }
    Ok(())
}

/// The checks framed on the results port (see tests/vm/init.sh), and the
/// guest uptime at `=== DONE`. A check cut short is kept, without exit code.
fn parse(results: &str) -> (Vec<(String, Check)>, Option<f64>) {
    let mut checks = Vec::new();
    let mut open: Option<(String, Check, bool)> = None;
    let mut done = None;
    for line in results.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(name) = line.strip_prefix("=== BEGIN ") {
            if let Some((name, check, _)) = open.take() {
                checks.push((name, check));
            }
            open = Some((name.to_string(), Check::default(), false));
        } else if line.starts_with("=== STDERR ") {
            if let Some((_, _, in_stderr)) = &mut open {
                *in_stderr = true;
            }
        } else if let Some(rest) = line.strip_prefix("=== END ") {
            if let Some((name, mut check, _)) = open.take() {
                for field in rest.split_whitespace() {
                    if let Some(rc) = field.strip_prefix("rc=") {
                        check.rc = rc.parse().ok();
                    } else if let Some(secs) = field.strip_prefix("secs=") {
                        check.secs = secs.parse().ok();
                    }
                }
                checks.push((name, check));
            }
        } else if let Some(rest) = line.strip_prefix("=== DONE secs=") {
            done = rest.trim().parse().ok();
        } else if let Some((_, check, in_stderr)) = &mut open {
            let part = if *in_stderr {
                &mut check.stderr
            } else {
                &mut check.stdout
            };
            part.push_str(line);
            part.push('\n');
        }
    }
    if let Some((name, check, _)) = open {
        checks.push((name, check));
    }
    (checks, done)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
