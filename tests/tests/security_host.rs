//! inspector's own files on the host, attacked by another local user
//! (`nobody`, through `setpriv`): links planted where root removes pinned
//! probes or writes output, and the keeper's socket name taken first. Each
//! test performs the attack for real, on a host made as weak as many are
//! (`fs.protected_symlinks=0`, bpffs writable by all), and checks that it
//! fails and that the victim is untouched (docs/probe.md, "Other users").
//!
//! Tests that need bpffs as an attacker would find it mount their own in a
//! private mount namespace (`unshare --mount`), with a private `/run`, so
//! that the host's `/sys/fs/bpf`, the kept probe in it and its locks are
//! never touched: the mounts go with the namespace.

use std::{
    io::{BufRead as _, BufReader},
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use tests::{
    NOBODY, Need, SymlinksUnprotected, TempDir, TmuxSession, assert_no_links_left, inspector_bin,
    probe_test, settled_inspector_links, spawn_attached_saying, tmux,
};

/// Runs the shell `script` as `nobody`.
fn as_nobody(script: &str) -> Output {
    Command::new(NOBODY[0])
        .args(&NOBODY[1..])
        .args(["sh", "-c", script])
        .output()
        .expect("run setpriv")
}

/// A root-owned directory of files that no other user may change, and what
/// it held when made.
struct Victim {
    dir: TempDir,
    files: Vec<(String, String)>,
}

impl Victim {
    fn new(name: &str) -> Victim {
        let dir = TempDir::new(name);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let files: Vec<(String, String)> = ["precious", "config"]
            .iter()
            .map(|f| (f.to_string(), format!("{f} of root\n")))
            .collect();
        for (f, text) in &files {
            std::fs::write(dir.path().join(f), text).unwrap();
        }
        Victim { dir, files }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self) -> PathBuf {
        self.path().join(&self.files[0].0)
    }

    /// Fails unless every file is there with what it held.
    fn assert_untouched(&self, after: &str) {
        let mut names: Vec<String> = std::fs::read_dir(self.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut want: Vec<String> = self.files.iter().map(|(f, _)| f.clone()).collect();
        want.sort();
        assert_eq!(names, want, "{after}: the victim's files changed");
        for (f, text) in &self.files {
            let meta = std::fs::symlink_metadata(self.path().join(f)).unwrap();
            assert!(meta.is_file(), "{after}: {f} is no longer a file");
            assert_eq!(
                std::fs::read_to_string(self.path().join(f)).unwrap(),
                *text,
                "{after}: {f} was written to"
            );
        }
    }
}

/// What each step of a script run in a private mount namespace printed on
/// stderr and exited with.
struct Steps {
    dir: TempDir,
}

impl Steps {
    fn stderr(&self, step: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{step}.err"))).unwrap_or_default()
    }

    fn code(&self, step: &str) -> i32 {
        std::fs::read_to_string(self.dir.path().join(format!("{step}.rc")))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(-1)
    }
}

/// Runs `script` (sh) in a private mount namespace with a tmpfs on `/run`
/// (the locks and the keeper's socket of this namespace alone). In it,
/// `step NAME COMMAND...` runs a command with its stderr and exit code
/// kept for [`Steps`], `$INSPECTOR` is the binary, and a keeper lives half
/// a second. Ends with `inspector unload`, so no keeper or pin outlives it.
fn in_private_mounts(script: &str) -> Steps {
    let dir = TempDir::new("security-steps");
    let full = format!(
        r#"set -u
mount --make-rprivate / || exit 90
mount -t tmpfs -o mode=0755 tmpfs /run || exit 91
export INSPECTOR={inspector} INSPECTOR_KEEP_PROBE=0.5 OUT={out}
step() {{ name=$1; shift; timeout 120 "$@" >/dev/null 2>"$OUT/$name.err"; echo $? >"$OUT/$name.rc"; }}
{script}
timeout 60 "$INSPECTOR" unload >/dev/null 2>&1
true
"#,
        inspector = inspector_bin().display(),
        out = dir.path().display(),
    );
    let status = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &full])
        .status()
        .expect("run unshare");
    assert!(
        status.success(),
        "the private mount namespace could not be set up: {status}"
    );
    Steps { dir }
}

#[test]
fn a_user_who_makes_the_sets_directory_on_a_bpffs_writable_by_all_cannot_make_root_delete_files() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::UtilLinux]) else {
        return;
    };
    let _unprotected = SymlinksUnprotected::new();
    let victim = Victim::new("victim-bpffs");
    // The attack of issue #12: bpffs mounted 1777 (as inspector used to),
    // `nobody` makes /sys/fs/bpf/inspector and a link in it to the victim;
    // then root runs inspector.
    let steps = in_private_mounts(&format!(
        r#"mount -t bpf -o mode=1777 bpf /sys/fs/bpf || exit 92
step unload-before "$INSPECTOR" unload
{nobody} sh -c 'mkdir /sys/fs/bpf/inspector && ln -s {victim} /sys/fs/bpf/inspector/zzz'
echo $? >"$OUT/plant.rc"
step trace env RUST_LOG=inspector=debug "$INSPECTOR" trace --duration 0.5 --output /dev/null
step unload "$INSPECTOR" unload
"#,
        nobody = NOBODY.join(" "),
        victim = victim.path().display(),
    ));
    assert_eq!(
        steps.code("plant"),
        0,
        "nobody could not plant the link: the attack did not happen"
    );
    victim.assert_untouched("inspector trace and unload");
    assert_eq!(
        steps.code("trace"),
        0,
        "inspector trace must still work: {}",
        steps.stderr("trace")
    );
    let trace = steps.stderr("trace");
    assert!(
        trace.contains("not kept between runs")
            && trace.contains("/sys/fs/bpf/inspector is not inspector's")
            && trace.contains("uid 65534"),
        "trace does not say why it kept nothing: {trace}"
    );
    let unload = steps.stderr("unload");
    assert_ne!(steps.code("unload"), 0, "unload succeeded: {unload}");
    assert!(
        unload.contains("/sys/fs/bpf/inspector is not inspector's")
            && unload.contains("belongs to uid 65534"),
        "unload does not name what it refused: {unload}"
    );
}

#[test]
fn links_found_among_the_kept_sets_are_left_alone_and_named_by_unload_and_trace() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::UtilLinux]) else {
        return;
    };
    let _unprotected = SymlinksUnprotected::new();
    let victim = Victim::new("victim-sets");
    // As if a user had planted them while bpffs was writable by all, in a
    // directory of root's: a link named like a set and one named like a
    // fill left by a dead process (both removed on sight before).
    let steps = in_private_mounts(&format!(
        r#"mount -t bpf -o mode=0700 bpf /sys/fs/bpf || exit 92
mkdir -m 0700 /sys/fs/bpf/inspector || exit 93
ln -s {victim} /sys/fs/bpf/inspector/zzz || exit 94
ln -s {victim} /sys/fs/bpf/inspector/tmp-0000000000000000-999999999 || exit 95
step unload "$INSPECTOR" unload
step trace "$INSPECTOR" trace --duration 0.5 --output /dev/null
step unload-again "$INSPECTOR" unload
ls /sys/fs/bpf/inspector >"$OUT/left"
"#,
        victim = victim.path().display(),
    ));
    victim.assert_untouched("inspector unload and trace");
    let unload = steps.stderr("unload");
    assert_eq!(steps.code("unload"), 0, "{unload}");
    for name in ["zzz", "tmp-0000000000000000-999999999"] {
        assert!(
            unload.contains(&format!(
                "left alone: /sys/fs/bpf/inspector/{name} is not inspector's: it is a symbolic link"
            )),
            "unload does not name {name}: {unload}"
        );
    }
    let trace = steps.stderr("trace");
    assert_eq!(steps.code("trace"), 0, "{trace}");
    assert!(
        trace.contains("left alone: /sys/fs/bpf/inspector/zzz is not inspector's"),
        "trace (making its set, evicting others) does not name the link: {trace}"
    );
    assert!(
        steps
            .stderr("unload-again")
            .contains("unloaded 1 kept probe"),
        "the set trace made was not removed: {}",
        steps.stderr("unload-again")
    );
    let left = std::fs::read_to_string(steps.dir.path().join("left")).unwrap_or_default();
    let mut left: Vec<&str> = left.lines().collect();
    left.sort();
    assert_eq!(
        left,
        ["tmp-0000000000000000-999999999", "zzz"],
        "only the planted links stay"
    );
}

#[test]
fn inspector_mounts_bpffs_0700_where_none_is_mounted_so_no_user_can_plant_in_it() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::UtilLinux]) else {
        return;
    };
    // A tmpfs over /sys/fs/bpf hides the host's bpffs in the namespace:
    // inspector finds no bpffs there and mounts its own over it.
    let steps = in_private_mounts(&format!(
        r#"mount -t tmpfs -o mode=0755 tmpfs /sys/fs/bpf || exit 92
step trace "$INSPECTOR" trace --duration 0.5 --output /dev/null
stat -f -c %T /sys/fs/bpf >"$OUT/fstype"
stat -c '%a %u' /sys/fs/bpf >"$OUT/mode"
stat -c '%a %u' /sys/fs/bpf/inspector >"$OUT/sets-mode"
ls /sys/fs/bpf/inspector | while read set; do stat -c '%a %u' "/sys/fs/bpf/inspector/$set"; done >"$OUT/set-modes"
{nobody} mkdir /sys/fs/bpf/inspector-of-nobody 2>/dev/null
echo $? >"$OUT/plant.rc"
"#,
        nobody = NOBODY.join(" "),
    ));
    let read = |name: &str| {
        std::fs::read_to_string(steps.dir.path().join(name))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    assert_eq!(steps.code("trace"), 0, "{}", steps.stderr("trace"));
    assert_eq!(read("fstype"), "bpf_fs", "inspector did not mount bpffs");
    // bpffs always adds the sticky bit to its root.
    assert_eq!(read("mode"), "1700 0", "the bpffs inspector mounted");
    assert_eq!(read("sets-mode"), "700 0", "/sys/fs/bpf/inspector");
    let sets = read("set-modes");
    assert!(!sets.is_empty(), "no set was pinned");
    assert!(
        sets.lines().all(|l| l == "700 0"),
        "every set directory is root's alone: {sets}"
    );
    assert_ne!(read("plant.rc"), "0", "nobody could make a directory in it");
}

/// Starts `python3` as `nobody`, running `script`; its stdout is piped.
fn python_as_nobody(script: &str, args: &[&str]) -> std::process::Child {
    Command::new(NOBODY[0])
        .args(&NOBODY[1..])
        .args(["/usr/bin/python3", "-c", script])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run python3 as nobody")
}

/// Binds and listens on the keeper's old abstract name first, tries the
/// keeper's socket in /run/inspector/probe, and counts the connections and
/// descriptors it gets until its stdin closes.
const SQUATTER: &str = r#"
import errno, select, socket, sys
key = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\0inspector-probe-" + key)
s.listen(16)
for what in ("bind", "connect"):
    t = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        getattr(t, what)("/run/inspector/probe/%s.sock" % key)
        print(what, "ok", flush=True)
    except OSError as e:
        print(what, errno.errorcode.get(e.errno, e.errno), flush=True)
    t.close()
print("listening", flush=True)
conns = fds = 0
while True:
    ready, _, _ = select.select([s, sys.stdin], [], [])
    if sys.stdin in ready and not sys.stdin.read(1):
        break
    if s in ready:
        c, _ = s.accept()
        conns += 1
        c.settimeout(1)
        try:
            _, anc, _, _ = c.recvmsg(64, socket.CMSG_SPACE(64 * 4))
            fds += sum(len(d) // 4 for (l, t, d) in anc if t == socket.SCM_RIGHTS)
        except OSError:
            pass
        c.close()
print("conns", conns, "fds", fds, flush=True)
"#;

/// The key of the one keeper running (from its command line).
fn keeper_key() -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let [pid] = tests::keepers()[..] {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<String> = cmdline
                .split(|&b| b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let at = args.iter().position(|a| a == "--key")?;
            return args.get(at + 1).cloned();
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn trace_briefly(keep: &str) -> String {
    let (mut child, _stderr, attached) = spawn_attached_saying(
        Command::new(inspector_bin())
            .env("INSPECTOR_KEEP_PROBE", keep)
            .args(["trace", "--duration", "0.5", "--output", "/dev/null"])
            .stdout(Stdio::null()),
    );
    assert!(child.wait().unwrap().success(), "inspector trace failed");
    attached
}

#[test]
fn a_user_squatting_the_keepers_old_socket_name_does_not_stop_runs_handing_the_probe_on() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::UtilLinux]) else {
        return;
    };
    let links_before = settled_inspector_links();
    // A run leaves a keeper: its command line names the set's key, as the
    // listing of abstract sockets (`ss -xl`) names it to any user.
    trace_briefly("10");
    let key = keeper_key().expect("a keeper after a run");
    // No keeper now; the programs stay pinned.
    let dismissed = Command::new(inspector_bin())
        .args(["unload", "--links-only"])
        .output()
        .unwrap();
    assert!(dismissed.status.success());

    let mut squatter = python_as_nobody(SQUATTER, &[&key]);
    let mut said = BufReader::new(squatter.stdout.take().unwrap());
    let mut lines = Vec::new();
    while lines
        .last()
        .is_none_or(|l: &String| l.trim() != "listening")
    {
        let mut line = String::new();
        if said.read_line(&mut line).unwrap() == 0 {
            panic!("the squatter did not start: {lines:?}");
        }
        lines.push(line);
    }
    assert!(
        lines.iter().all(|l| !l.contains(" ok")),
        "nobody reached the keeper's socket: {lines:?}"
    );

    // The first run hands its links to a keeper, the second takes them.
    let first = trace_briefly("5");
    let second = trace_briefly(tests::KEEP);

    drop(squatter.stdin.take());
    let mut last = String::new();
    said.read_line(&mut last).unwrap();
    let _ = squatter.wait();
    assert!(
        first.contains("programs kept loaded by an earlier run"),
        "{first}"
    );
    assert!(
        second.contains("kept attached by an earlier run"),
        "the second run did not take the kept probe over: {second}"
    );
    assert_eq!(last.trim(), "conns 0 fds 0", "the squatter was spoken to");
    assert_no_links_left(links_before);
}

/// Makes `dir` writable by all with the sticky bit, as /tmp is.
fn like_tmp(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
}

#[test]
fn links_planted_at_the_temporary_names_of_export_and_perfetto_do_not_redirect_roots_writes() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::UtilLinux, Need::BundledRuntime]) else {
        return;
    };
    let _unprotected = SymlinksUnprotected::new();
    let victim = Victim::new("victim-export");
    let out = TempDir::new("export");
    like_tmp(out.path());
    let (events, perfetto) = (
        out.path().join("events.jsonl"),
        out.path().join("trace.json"),
    );
    let id = format!("security-export-{}", std::process::id());
    let run = Command::new(inspector_bin())
        .env("INSPECTOR_KEEP_PROBE", tests::KEEP)
        .args(["run", "--name", &id, "--export"])
        .arg(&events)
        .arg("--perfetto")
        .arg(&perfetto)
        .args(["--", "/bin/sh", "-c", "sleep 1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start inspector run");
    // The names the old writer would use (`.<name>.<pid>.tmp`), planted
    // while the container runs; and a link at the output itself.
    let pid = run.id();
    let victim_file = victim.file();
    let planted = as_nobody(&format!(
        "cd {dir} && ln -s {v} .events.jsonl.{pid}.tmp && ln -s {v} .trace.json.{pid}.tmp \
         && ln -s {v} trace.json",
        dir = out.path().display(),
        v = victim_file.display(),
    ));
    let output = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        planted.status.success(),
        "nobody could not plant the links: {}",
        String::from_utf8_lossy(&planted.stderr)
    );
    assert!(output.status.success(), "inspector run failed: {stderr}");
    victim.assert_untouched("inspector run --export --perfetto");
    for (path, what) in [(&events, "the export"), (&perfetto, "the Perfetto file")] {
        let meta = std::fs::symlink_metadata(path).unwrap();
        assert!(meta.is_file(), "{what} is not a file of its own");
        assert_eq!(meta.uid(), 0, "{what}");
    }
    let text = std::fs::read_to_string(&events).unwrap();
    assert!(
        text.lines().count() > 0
            && text
                .lines()
                .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "the export"
    );
    serde_json::from_slice::<serde_json::Value>(&std::fs::read(&perfetto).unwrap())
        .expect("the Perfetto file is JSON");
    for name in [
        format!(".events.jsonl.{pid}.tmp"),
        format!(".trace.json.{pid}.tmp"),
    ] {
        let link = std::fs::read_link(out.path().join(&name)).expect("the planted link stays");
        assert_eq!(link, victim_file, "{name}");
    }
    let mut names: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 4, "a temporary file was left: {names:?}");
}

/// Removes the link nobody planted, whatever the test's outcome.
struct Planted(PathBuf);

impl Drop for Planted {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What the attacks on `inspector run --tui` need.
const RUN_TUI: &[Need] = &[
    Need::Trace,
    Need::UtilLinux,
    Need::BundledRuntime,
    Need::Tmux,
];

#[test]
fn a_link_planted_in_tmp_does_not_redirect_the_output_of_run_tui() {
    let Some(_lock) = probe_test(RUN_TUI) else {
        return;
    };
    let _unprotected = SymlinksUnprotected::new();
    let victim = Victim::new("victim-tui");
    let id = format!("security-tui-{}", std::process::id());
    // Where `run --tui` wrote before: a name any user can compute.
    let old = std::env::temp_dir().join(format!("inspector-run-{id}.out"));
    let _planted = Planted(old.clone());
    let planted = as_nobody(&format!(
        "ln -s {} {}",
        victim.file().display(),
        old.display()
    ));
    assert!(
        planted.status.success(),
        "nobody could not plant the link: {}",
        String::from_utf8_lossy(&planted.stderr)
    );
    let session = TmuxSession::start_with(
        "security-tui",
        140,
        40,
        &format!("run --tui --name {id} -- /bin/sh -c 'echo written by the container; exit 3'"),
    );
    session.wait_for("exited 3", Duration::from_secs(60), |s| {
        s.contains("exited 3")
    });
    tmux(&["send-keys", "-t", &session.pane(), "q"]);
    session.wait_exit();
    let output = tests::run_tui_output(&id);
    let screen = session.screen();
    drop(session);
    let text = output
        .as_deref()
        .and_then(|o| std::fs::read_to_string(o).ok());
    tests::remove_run_tui_output(&id);

    victim.assert_untouched("inspector run --tui");
    assert_eq!(
        std::fs::read_link(&old).ok(),
        Some(victim.file()),
        "the planted link was replaced"
    );
    let output = output.expect("no output directory for the container");
    assert_eq!(text.as_deref(), Some("written by the container\n"));
    assert!(
        screen.contains(&output.display().to_string()),
        "inspector does not say where the output is; screen:\n{screen}"
    );
}

#[test]
fn run_tui_keeps_the_output_in_a_directory_of_roots_alone() {
    let Some(_lock) = probe_test(RUN_TUI) else {
        return;
    };
    let id = format!("security-tui-dir-{}", std::process::id());
    let session = TmuxSession::start_with(
        "security-tui-dir",
        140,
        40,
        &format!("run --tui --name {id} -- /bin/sh -c 'echo secret; exit 0'"),
    );
    session.wait_for("exited 0", Duration::from_secs(60), |s| {
        s.contains("exited 0")
    });
    tmux(&["send-keys", "-t", &session.pane(), "q"]);
    session.wait_exit();
    drop(session);
    let output = tests::run_tui_output(&id).expect("no output directory");
    let dir = std::fs::symlink_metadata(output.parent().unwrap()).unwrap();
    let file = std::fs::symlink_metadata(&output).unwrap();
    tests::remove_run_tui_output(&id);
    assert!(dir.is_dir() && file.is_file());
    assert_eq!(
        (dir.uid(), dir.mode() & 0o7777),
        (0, 0o700),
        "the directory"
    );
    assert_eq!(
        (file.uid(), file.mode() & 0o077),
        (0, 0),
        "the file is root's alone"
    );
}
