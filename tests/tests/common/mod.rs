//! Helpers for tests that drive the real `inspector` binary against the real
//! kernel, Docker engine and runc.
//!
//! A test that needs root, eBPF or Docker skips with a printed reason outside
//! CI, and fails loudly in CI (where `CI` is set), so a missing set-up step can
//! never pass for a green run.
#![allow(dead_code)]

use std::{
    collections::HashSet,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use inspector::event::{Body, Event};

/// Tests that load the probe run one at a time: they count BPF programs and
/// should not slow each other down.
static PROBE_LOCK: Mutex<()> = Mutex::new(());

pub fn probe_lock() -> MutexGuard<'static, ()> {
    PROBE_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
}

/// `true` when `ok`; otherwise skips (outside CI) or fails (in CI) naming what is missing.
pub fn require(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    if in_ci() {
        panic!("prerequisite missing in CI: {what}");
    }
    eprintln!("skipped: {what}");
    false
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn inspector_bin() -> PathBuf {
    std::env::var_os("INSPECTOR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/release/inspector"))
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Root, BTF, tracefs and a built inspector: what tracing needs.
pub fn can_trace() -> bool {
    require(is_root(), "tracing needs root")
        && require(
            Path::new("/sys/kernel/btf/vmlinux").exists(),
            "kernel BTF (/sys/kernel/btf/vmlinux)",
        )
        && require(
            Path::new("/sys/kernel/tracing/events").is_dir(),
            "tracefs mounted at /sys/kernel/tracing (cargo xtask setup mounts it)",
        )
        && require(
            inspector_bin().exists(),
            "a built inspector (cargo xtask build)",
        )
}

pub const DOCKER: &str = "/usr/bin/docker";

pub fn image() -> String {
    std::env::var("INSPECTOR_TEST_IMAGE").unwrap_or_else(|_| "inspector/busybox:latest".into())
}

fn quiet(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A running Docker engine with the test image (cargo xtask docker makes both).
/// Asked once per test binary, holding the probe lock: `docker info` makes
/// dockerd start helpers (`runc --version`, `docker-init --version`), which
/// must not land in another test's trace.
pub fn docker_ready() -> bool {
    static READY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *READY.get_or_init(|| {
        let _lock = probe_lock();
        can_trace()
            && require(
                quiet(Command::new(DOCKER).arg("info")),
                "a running Docker engine (cargo xtask docker starts one)",
            )
            && require(
                quiet(Command::new(DOCKER).args(["image", "inspect", &image()])),
                "the test image (cargo xtask docker imports it)",
            )
    })
}

pub fn runc_ready() -> bool {
    can_trace()
        && require(
            quiet(Command::new("runc").arg("--version")),
            "runc installed",
        )
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "inspector-test-{name}-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts inspector with stderr piped and waits for its "probes attached" line.
pub fn spawn_attached(cmd: &mut Command) -> (Child, std::io::BufReader<std::process::ChildStderr>) {
    let (child, stderr, _) = spawn_attached_saying(cmd);
    (child, stderr)
}

/// [`spawn_attached`], with the line that said the probes were attached.
pub fn spawn_attached_saying(
    cmd: &mut Command,
) -> (Child, std::io::BufReader<std::process::ChildStderr>, String) {
    let mut child = cmd.stderr(Stdio::piped()).spawn().expect("start inspector");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(
        first.contains("probes attached"),
        "inspector did not start: {first}"
    );
    (child, stderr, first)
}

/// `inspector trace --format jsonl` running in the background.
pub struct Tracer {
    child: Child,
    output: PathBuf,
    stderr: std::thread::JoinHandle<String>,
    _dir: TempDir,
}

/// What a stopped tracer recorded.
pub struct Trace {
    pub events: Vec<Event>,
    pub stderr: String,
    pub success: bool,
}

impl Tracer {
    /// Starts tracing and returns once the probes are attached.
    pub fn start(extra: &[&str]) -> Tracer {
        let dir = TempDir::new("trace");
        let output = dir.path().join("events.jsonl");
        let (child, mut stderr, first) = spawn_attached_saying(
            Command::new(inspector_bin())
                .env("INSPECTOR_KEEP_PROBE", KEEP)
                .args(["trace", "--format", "jsonl", "--output"])
                .arg(&output)
                .args(extra)
                .stdout(Stdio::null()),
        );
        // Keep draining stderr so inspector never blocks on it.
        let stderr = std::thread::spawn(move || {
            let mut all = first;
            let _ = std::io::Read::read_to_string(&mut stderr, &mut all);
            all
        });
        Tracer {
            child,
            output,
            stderr,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops with SIGINT after letting late events (teardown) arrive.
    pub fn stop(mut self) -> Trace {
        std::thread::sleep(Duration::from_millis(700));
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().unwrap();
        let rest = self.stderr.join().unwrap_or_default();
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        let events = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str::<Event>(l)
                    .unwrap_or_else(|e| panic!("line {} is not a valid event ({e}): {l}", i + 1))
            })
            .collect();
        Trace {
            events,
            stderr: rest,
            success: status.success(),
        }
    }
}

impl Trace {
    pub fn kinds(&self, kind: &str) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |e| e.body.kind() == kind)
    }

    /// Successful execs: (event, filename, argv).
    pub fn execs(&self) -> impl Iterator<Item = (&Event, &str, &[String])> {
        self.events.iter().filter_map(|e| match &e.body {
            Body::Exec {
                filename,
                argv,
                ret: 0,
                ..
            } => Some((e, filename.as_str(), argv.as_slice())),
            _ => None,
        })
    }

    pub fn tgid(e: &Event) -> u32 {
        e.task.as_ref().map(|t| t.tgid).unwrap_or(0)
    }

    /// Did process `tgid` exit with `code`?
    pub fn exited_with(&self, tgid: u32, code: i32) -> bool {
        self.events.iter().any(|e| {
            Self::tgid(e) == tgid
                && matches!(e.body, Body::Exit { exit_code: Some(c), .. } if c == code)
        })
    }

    /// A short listing of the trace for failure messages.
    pub fn dump(&self) -> String {
        self.events
            .iter()
            .filter(|e| !matches!(e.body, Body::Fork { thread: true, .. }))
            .map(inspector::output::text_line)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Names of the BPF programs loaded right now.
pub fn loaded_programs() -> Vec<String> {
    let out = Command::new("bpftool")
        .args(["prog", "show", "--json"])
        .output()
        .expect("bpftool (cargo xtask setup installs it)");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v.as_array()
        .map(|progs| {
            progs
                .iter()
                .filter_map(|p| p["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// How long (seconds) the tests let a finished run's keeper hold its links
/// (`INSPECTOR_KEEP_PROBE`): short, so that what a test checks is released soon.
pub const KEEP: &str = "0.5";

/// The number of links attached to inspector programs once it stops
/// changing, with no keeper left: the kernel detaches a closed link
/// asynchronously, and an earlier test's keeper may still hold some.
pub fn settled_inspector_links() -> usize {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !keepers().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut last = inspector_links();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let now = inspector_links();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// Waits for every link an inspector attached since `before` was counted to
/// be gone (its keeper, if any, lets go after `KEEP`), and fails if any stays.
pub fn assert_no_links_left(before: usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while inspector_links() > before || !keepers().is_empty() {
        assert!(
            Instant::now() < deadline,
            "links stayed attached: {} now, {before} before; keepers: {:?}",
            inspector_links(),
            keepers()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The number of BPF links attached to inspector's programs (`insp_*`).
pub fn inspector_links() -> usize {
    let json = |args: &[&str]| -> serde_json::Value {
        let out = Command::new("bpftool")
            .args(args)
            .output()
            .expect("bpftool (cargo xtask setup installs it)");
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    };
    let progs = json(&["prog", "show", "--json"]);
    let ours: HashSet<u64> = progs
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"].as_str().is_some_and(|n| n.starts_with("insp_")))
        .filter_map(|p| p["id"].as_u64())
        .collect();
    let links = json(&["link", "show", "--json"]);
    links
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["prog_id"].as_u64().is_some_and(|id| ours.contains(&id)))
        .count()
}

/// Pids of `inspector keep-probe` processes.
pub fn keepers() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            (args.get(1) == Some(&&b"keep-probe"[..])).then_some(pid)
        })
        .collect()
}

pub fn inspector_programs() -> usize {
    loaded_programs()
        .iter()
        .filter(|n| n.starts_with("insp_"))
        .count()
}

/// A root filesystem of busybox-static and its applets.
pub fn busybox_rootfs(rootfs: &Path) {
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for d in ["proc", "sys", "dev", "tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("busybox-static installed");
    for applet in ["sh", "true", "false", "echo", "sleep", "cat", "ls"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
}

/// The file `inspector run --tui --name ID` wrote the container's output to,
/// `$TMPDIR/inspector-run-ID-output-XXXXXX/output`, if there is one.
pub fn run_tui_output(id: &str) -> Option<PathBuf> {
    let prefix = format!("inspector-run-{id}-output-");
    std::fs::read_dir(std::env::temp_dir())
        .ok()?
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path().join("output"))
}

/// Removes what `inspector run --tui --name ID` left for its user: the
/// directory of the container's output.
pub fn remove_run_tui_output(id: &str) {
    if let Some(dir) = run_tui_output(id).as_deref().and_then(Path::parent) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Runs tmux (the terminal the TUI tests drive) and returns what it printed.
pub fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(args)
        .stderr(Stdio::null())
        .output()
        .expect("run tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `true` when tmux is installed; otherwise skips or fails as [`require`] does.
pub fn tmux_ready() -> bool {
    require(
        Command::new("tmux")
            .arg("-V")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        "tmux installed (cargo xtask setup installs it)",
    )
}

/// A tmux session running `inspector ARGS` (the real binary in a real
/// terminal), killed on drop.
pub struct TmuxSession {
    pub name: String,
}

impl TmuxSession {
    /// A session running `inspector ARGS` (a shell's words).
    pub fn start_with(test: &str, width: u16, height: u16, args: &str) -> TmuxSession {
        let name = format!("inspector-{test}-{}", std::process::id());
        let _ = tmux(&["kill-session", "-t", &name]);
        let command = format!(
            "INSPECTOR_KEEP_PROBE={} exec {} {args}",
            KEEP,
            inspector_bin().display()
        );
        // The pane stays after inspector exits, to read its exit status and
        // what it left on the screen.
        let out = Command::new("tmux")
            .args(["new-session", "-d", "-s", &name])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .arg(&command)
            .args([";", "set-option", "-t", &name, "remain-on-exit", "on"])
            .status()
            .expect("start tmux");
        assert!(out.success(), "tmux new-session failed");
        TmuxSession { name }
    }

    pub fn pane(&self) -> String {
        format!("{}:0.0", self.name)
    }

    pub fn screen(&self) -> String {
        tmux(&["capture-pane", "-p", "-t", &self.pane()])
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t"];
        let pane = self.pane();
        args.push(&pane);
        args.extend_from_slice(keys);
        tmux(&args);
    }

    /// `Some(status)` once inspector has exited.
    pub fn exited(&self) -> Option<i32> {
        let s = tmux(&[
            "display-message",
            "-p",
            "-t",
            &self.pane(),
            "#{pane_dead} #{pane_dead_status}",
        ]);
        let mut parts = s.split_whitespace();
        match (parts.next(), parts.next()) {
            (Some("1"), Some(code)) => code.parse().ok(),
            _ => None,
        }
    }

    pub fn pid(&self) -> i32 {
        tmux(&["display-message", "-p", "-t", &self.pane(), "#{pane_pid}"])
            .trim()
            .parse()
            .expect("pane pid")
    }

    /// Waits until `ok` holds for the screen; fails with the last screen.
    pub fn wait_for(&self, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            if let Some(code) = self.exited() {
                panic!("inspector tui exited ({code}) waiting for {what}; screen:\n{screen}");
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for inspector to exit, and returns its exit status. Read from
    /// the kernel (a zombie's `/proc/PID/stat` has its wait status) rather
    /// than only from tmux, which was seen to leave its pane's process
    /// unreaped for minutes.
    pub fn wait_exit(&self) -> i32 {
        let pid = self.pid();
        let start = Instant::now();
        let mut told = false;
        loop {
            if let Some(code) = zombie_status(pid).or_else(|| self.exited()) {
                return code;
            }
            if !told && start.elapsed() > Duration::from_secs(10) {
                told = true;
                eprintln!("inspector tui still exiting after 10 s; its threads:");
                for task in std::fs::read_dir(format!("/proc/{pid}/task"))
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    let stack =
                        std::fs::read_to_string(task.path().join("stack")).unwrap_or_default();
                    eprintln!("{}:\n{stack}", task.path().display());
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "inspector tui did not exit; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The exit status of process `pid` once it has exited but is not reaped
/// yet: the last field of `/proc/PID/stat` is its wait status.
fn zombie_status(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    if fields.first() != Some(&"Z") {
        return None;
    }
    let status: i32 = fields.last()?.parse().ok()?;
    Some(if status & 0x7f == 0 {
        (status >> 8) & 0xff
    } else {
        128 + (status & 0x7f)
    })
}

impl Drop for TmuxSession {
    fn drop(&mut self) {
        let _ = tmux(&["kill-session", "-t", &self.name]);
    }
}

/// The command prefix that runs a command as `nobody`, with no
/// supplementary groups: the other local user of the attack tests.
pub const NOBODY: &[&str] = &[
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
];

/// `fs.protected_symlinks` set to 0 while held, as on many hosts and in
/// containers (root then follows links other users made in /tmp); the old
/// value is put back on drop. One at a time in a test binary.
pub struct SymlinksUnprotected {
    old: String,
    _serial: MutexGuard<'static, ()>,
}

const PROTECTED_SYMLINKS: &str = "/proc/sys/fs/protected_symlinks";

impl SymlinksUnprotected {
    pub fn new() -> Self {
        static SERIAL: Mutex<()> = Mutex::new(());
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let old = std::fs::read_to_string(PROTECTED_SYMLINKS).expect("read protected_symlinks");
        std::fs::write(PROTECTED_SYMLINKS, "0").expect("set fs.protected_symlinks=0");
        SymlinksUnprotected {
            old,
            _serial: serial,
        }
    }
}

impl Drop for SymlinksUnprotected {
    fn drop(&mut self) {
        let _ = std::fs::write(PROTECTED_SYMLINKS, self.old.trim());
    }
}
