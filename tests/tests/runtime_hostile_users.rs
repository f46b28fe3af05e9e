//! `inspector-runtime` and `inspector run` against a hostile local user (and
//! a hostile bundle): each test performs the attack for real, as `nobody`
//! where it is one, and checks that it fails and that the host is untouched.
//! Issue #12, holes 3 (uid -1), 4 (secrets and symlinks), 8 (the exe-keeper)
//! and 9 (`delete --force` after a killed `create`).

use std::{
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::json;
use tests::runtime::{Bundle, Runtime};
use tests::{Need, probe_test, ready, runtime_bin};

const SECRET: &str = "s3cret-7f3a91";
const DEFAULT_ROOT: &str = "/run/inspector-runtime";

/// Runs a command as `nobody`, with no supplementary groups.
fn as_nobody(args: &[&str]) -> Output {
    Command::new(tests::NOBODY[0])
        .args(&tests::NOBODY[1..])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("setpriv")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `nobody` tries to read `path`: refused, and the secret not shown.
fn assert_nobody_cannot_read(path: &Path) {
    let out = as_nobody(&["cat", path.to_str().unwrap()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        !out.status.success(),
        "nobody read {}: {stdout}",
        path.display()
    );
    assert!(
        stderr.contains("Permission denied"),
        "{}: {stderr}",
        path.display()
    );
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// The runtime with its default `--root` (/run/inspector-runtime). Its
/// stderr goes through a file: a created container keeps the runtime's
/// stdio, and we wait for the runtime, not for the container.
fn default_root(args: &[&str]) -> Output {
    let dir = tests::TempDir::new("rt-default-root-err");
    let err = dir.path().join("stderr");
    let status = Command::new(runtime_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .status()
        .unwrap();
    Output {
        status,
        stdout: Vec::new(),
        stderr: std::fs::read(&err).unwrap_or_default(),
    }
}

/// `delete --force`s a container when dropped, so that a failed assertion
/// leaves nothing running.
struct ForceDelete<'a> {
    rt: Option<&'a Runtime>,
    id: String,
}

impl Drop for ForceDelete<'_> {
    fn drop(&mut self) {
        match self.rt {
            Some(rt) => drop(rt.out(&["delete", "--force", &self.id])),
            None => drop(default_root(&["delete", "--force", &self.id])),
        }
    }
}

/// A directory every user may write, like /tmp (mode 1777).
fn world_writable_dir(name: &str) -> tests::TempDir {
    let dir = tests::TempDir::new(name);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    dir
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn process_gone(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit(") ").next().is_some_and(|r| r.starts_with('Z'))
    })
}

// ---- hole 3: uid/gid 4294967295 ----

/// `(uid_t)-1` means "unchanged" to setresuid: a bundle asking for it would
/// run as root. create refuses it before making anything.
#[test]
fn a_uid_gid_or_additional_gid_of_minus_one_is_refused_and_nothing_runs() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    for (name, user) in [
        ("uid", json!({"uid": 4294967295u32, "gid": 4294967295u32})),
        ("gid", json!({"uid": 1000, "gid": 4294967295u32})),
        (
            "groups",
            json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 4294967295u32]}),
        ),
    ] {
        let rt = Runtime::new("uid-minus-one");
        let mut b = Bundle::new("uid-minus-one", &["/bin/id"]);
        b.config["process"]["user"] = user;
        b.save();
        let (code, out, err) = rt.run(&b);
        assert_ne!(code, 0, "{name}: ran: {out}");
        assert!(!out.contains("uid="), "{name}: /bin/id ran: {out}");
        assert!(err.contains("4294967295"), "{name}: {err}");
        assert!(err.contains("root"), "{name}: {err}");
        rt.assert_nothing_left(&b);
        assert!(
            std::fs::read_dir(rt.root.path()).unwrap().next().is_none(),
            "{name}: something was made in the state root"
        );
    }
}

/// The same through `exec`: `--user`, `--additional-gids` and a process.json.
#[test]
fn exec_as_uid_or_gid_minus_one_is_refused() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let rt = Runtime::new("exec-minus-one");
    let b = Bundle::new("exec-minus-one", &["sleep", "100"]);
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &b.id]);
    let _cleanup = ForceDelete {
        rt: Some(&rt),
        id: b.id.clone(),
    };
    let mut process = b.config["process"].clone();
    process["args"] = json!(["/bin/id"]);
    process["user"] = json!({"uid": 4294967295u32, "gid": 0});
    let process_file = b.path().join("process.json");
    std::fs::write(&process_file, process.to_string()).unwrap();
    for args in [
        &["exec", "--user", "4294967295", &b.id, "/bin/id"][..],
        &["exec", "--user", "1000:4294967295", &b.id, "/bin/id"],
        &["exec", "--additional-gids", "4294967295", &b.id, "/bin/id"],
        &["exec", "--process", process_file.to_str().unwrap(), &b.id],
    ] {
        let out = rt.out(args);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(!out.status.success(), "{args:?} ran: {stdout}");
        assert!(!stdout.contains("uid="), "{args:?}: /bin/id ran: {stdout}");
        assert!(stderr.contains("4294967295"), "{args:?}: {stderr}");
    }
    // A real id still works.
    let out = rt.ok(&["exec", "--user", "1000:1000", &b.id, "/bin/id"]);
    assert!(out.starts_with("uid=1000 gid=1000"), "{out}");
    rt.ok(&["delete", "--force", &b.id]);
    rt.assert_nothing_left(&b);
}

// ---- hole 4: secrets and symlinks ----

/// The state (which holds the whole config, environment included) is
/// root's alone: nobody reads the secret from /run/inspector-runtime.
#[test]
fn another_user_cannot_read_a_container_s_secret_from_the_runtime_state() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let mut b = Bundle::new("secret-state", &["sleep", "100"]);
    b.config["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!(format!("DB_PASSWORD={SECRET}")));
    b.save();
    let out = default_root(&["create", "--bundle", b.path().to_str().unwrap(), &b.id]);
    let _cleanup = ForceDelete {
        rt: None,
        id: b.id.clone(),
    };
    assert!(out.status.success(), "{}", text(&out.stderr));
    let root = Path::new(DEFAULT_ROOT);
    let state = root.join(&b.id).join("state.json");
    // Root can read it, and the secret is there to be protected.
    assert!(std::fs::read_to_string(&state).unwrap().contains(SECRET));
    assert_nobody_cannot_read(&state);
    let ls = as_nobody(&["ls", DEFAULT_ROOT]);
    assert!(!ls.status.success(), "nobody listed {DEFAULT_ROOT}");
    assert_eq!(mode(root), 0o700);
    assert_eq!(mode(&root.join(&b.id)), 0o700);
    assert_eq!(mode(&state), 0o600);
    let out = default_root(&["delete", "--force", &b.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!root.join(&b.id).exists());
}

/// A `--root` of the caller's choosing gets the same modes.
#[test]
fn a_chosen_state_root_is_private_too() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let rt = Runtime::new("secret-root");
    std::fs::set_permissions(rt.root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let b = Bundle::new("secret-root", &["sleep", "100"]);
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &b.id]);
    let _cleanup = ForceDelete {
        rt: Some(&rt),
        id: b.id.clone(),
    };
    assert_eq!(mode(rt.root.path()), 0o700);
    assert_eq!(mode(&rt.root.path().join(&b.id)), 0o700);
    assert_eq!(mode(&rt.root.path().join(&b.id).join("state.json")), 0o600);
    assert_nobody_cannot_read(&rt.root.path().join(&b.id).join("state.json"));
    rt.ok(&["delete", "--force", &b.id]);
    rt.assert_nothing_left(&b);
}

/// The old pid-file writer used the predictable temporary name
/// `.<name>.tmp` next to `--pid-file`, and a plain create that follows
/// symlinks: in a world-writable directory, nobody's links there (and at the
/// pid file's own name) made root overwrite any file. Now neither is
/// written through.
#[test]
fn symlinks_planted_at_the_pid_file_s_names_are_not_written_through() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let _unprotected = tests::SymlinksUnprotected::new();
    let shared = world_writable_dir("rt-pidfile-shared");
    let victims = tests::TempDir::new("rt-pidfile-victims");
    let (victim_tmp, victim_pid) = (
        victims.path().join("precious-1"),
        victims.path().join("precious-2"),
    );
    std::fs::write(&victim_tmp, "precious\n").unwrap();
    std::fs::write(&victim_pid, "precious\n").unwrap();
    let pid_file = shared.path().join("container.pid");
    for (link, target) in [
        (shared.path().join(".container.pid.tmp"), &victim_tmp),
        (pid_file.clone(), &victim_pid),
    ] {
        let out = as_nobody(&["ln", "-s", target.to_str().unwrap(), link.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let rt = Runtime::new("pidfile");
    let b = Bundle::new("pidfile", &["sleep", "100"]);
    let out = rt.out(&[
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &b.id,
    ]);
    let _cleanup = ForceDelete {
        rt: Some(&rt),
        id: b.id.clone(),
    };
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&victim_tmp).unwrap(), "precious\n");
    assert_eq!(std::fs::read_to_string(&victim_pid).unwrap(), "precious\n");
    // The pid file is a file of its own now, holding the pid.
    let meta = std::fs::symlink_metadata(&pid_file).unwrap();
    assert!(meta.is_file() && meta.uid() == 0);
    let pid = rt.state(&b.id)["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    rt.ok(&["delete", "--force", &b.id]);
    rt.assert_nothing_left(&b);
}

/// A `--root` that another user controls (a symlink they planted, or their
/// own directory) is refused: root writes nothing there.
#[test]
fn a_state_root_another_user_controls_is_refused() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let shared = world_writable_dir("rt-root-shared");
    let theirs = shared.path().join("theirs");
    let link = shared.path().join("state");
    let out = as_nobody(&["mkdir", theirs.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = as_nobody(&["ln", "-s", theirs.to_str().unwrap(), link.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let b = Bundle::new("hostile-root", &["true"]);
    for (root, says) in [(&link, "not a plain directory"), (&theirs, "uid 65534")] {
        let out = Command::new(runtime_bin())
            .arg("--root")
            .arg(root)
            .args(["create", "--bundle", b.path().to_str().unwrap(), &b.id])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{}: created", root.display());
        assert!(err.contains("state root") && err.contains(says), "{err}");
        assert!(
            std::fs::read_dir(&theirs).unwrap().next().is_none(),
            "root wrote into nobody's directory"
        );
        assert_eq!(std::fs::metadata(&theirs).unwrap().uid(), 65534);
        Runtime::new("hostile-root").assert_nothing_left(&b);
    }
}

/// `inspector run -e DB_PASSWORD=...`: the generated bundle is 0700 under an
/// unpredictable name, config.json 0600, and the runtime's state 0600, so
/// nobody reads the password from either while the container runs.
#[test]
fn another_user_cannot_read_inspector_run_s_secret() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::BundledRuntime]) else {
        return;
    };
    let id = format!("insp-secret-{}", std::process::id());
    let child = Command::new(tests::inspector_bin())
        .env("INSPECTOR_KEEP_PROBE", tests::KEEP)
        .args(["run", "--brief", "--name", &id, "-e"])
        .arg(format!("DB_PASSWORD={SECRET}"))
        .args(["--", "sleep", "5"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let state = Path::new(DEFAULT_ROOT).join(&id).join("state.json");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !state.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert!(state.exists(), "the container never started");
        let saved: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
        let bundle = PathBuf::from(saved["bundle"].as_str().unwrap());
        let config = bundle.join("config.json");
        assert!(std::fs::read_to_string(&config).unwrap().contains(SECRET));
        assert_nobody_cannot_read(&config);
        assert_nobody_cannot_read(&state);
        assert_eq!(mode(&bundle), 0o700);
        assert_eq!(mode(&config), 0o600);
        // Not the old predictable inspector-run-<pid>-<n>.
        let name = bundle.file_name().unwrap().to_string_lossy().into_owned();
        let tail = name.rsplit('-').next().unwrap();
        assert!(tail.len() >= 8 && tail.parse::<u32>().is_err(), "{name}");
    }));
    let out = child.wait_with_output().unwrap();
    if let Err(e) = checked {
        std::panic::resume_unwind(e);
    }
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!Path::new(DEFAULT_ROOT).join(&id).exists());
}

// ---- hole 8: the exe-keeper ----

/// Keepers of this build: `inspector-runtime exe-keeper` running a sealed
/// copy as large as the binary.
fn exe_keepers() -> Vec<i32> {
    let len = std::fs::metadata(runtime_bin()).unwrap().len();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let exe = std::fs::metadata(e.path().join("exe")).ok()?;
            (cmdline == b"inspector-runtime\0exe-keeper\0" && exe.len() == len).then_some(pid)
        })
        .collect()
}

fn exe_id(pid: i32) -> (u64, u64) {
    let m = std::fs::metadata(format!("/proc/{pid}/exe")).unwrap();
    (m.dev(), m.ino())
}

/// "pid start-time" of a process, as the keeper's pid file holds it.
fn pid_and_start(pid: i32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start = stat
        .rsplit(") ")
        .next()
        .unwrap()
        .split(' ')
        .nth(19)
        .unwrap();
    format!("{pid} {start}")
}

/// Killed, the keeper used to leave a pid file that blocked every restart;
/// now a dead keeper (or a pid file naming another process) is noticed, one
/// new keeper is started even by concurrent creates, and later creates run
/// from its copy.
#[test]
fn a_killed_exe_keeper_is_replaced_and_used_again() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let rt = Runtime::new("keeper");
    let start = |name: &str| {
        let b = Bundle::new(name, &["sleep", "100"]);
        rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &b.id]);
        b
    };
    let first = start("keeper");
    rt.ok(&["delete", "--force", &first.id]);
    let old = exe_keepers();
    assert_eq!(old.len(), 1, "keepers: {old:?}");
    let sealed = Path::new(DEFAULT_ROOT).join(".sealed");
    let pid_file = std::fs::read_dir(&sealed)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            std::fs::read_to_string(p)
                .is_ok_and(|t| t.split(' ').next() == Some(old[0].to_string().as_str()))
        })
        .expect("the keeper's pid file");
    // SAFETY: killing the keeper, as an OOM kill or an admin would.
    unsafe { libc::kill(old[0], libc::SIGKILL) };
    wait_for("the keeper to die", 5, || process_gone(old[0]));
    // Its pid reused by another process (this test): that one is not taken
    // for the keeper, nor killed.
    std::fs::write(&pid_file, pid_and_start(std::process::id() as i32)).unwrap();
    let bundles: Vec<Bundle> = (0..4)
        .map(|_| Bundle::new("keeper", &["sleep", "100"]))
        .collect();
    let children: Vec<_> = bundles
        .iter()
        .map(|b| {
            rt.cmd()
                .args(["create", "--bundle", b.path().to_str().unwrap(), &b.id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let now = exe_keepers();
    assert_eq!(now.len(), 1, "keepers after concurrent creates: {now:?}");
    assert_ne!(now[0], old[0]);
    // The next create runs from the keeper's sealed copy, not a copy of its own.
    let last = start("keeper");
    let init = rt.state(&last.id)["pid"].as_i64().unwrap() as i32;
    assert_eq!(
        exe_id(init),
        exe_id(now[0]),
        "init does not run from the kept copy"
    );
    assert_eq!(exe_keepers(), now, "another keeper was started");
    // The keeper's files are root's alone.
    assert_eq!(mode(&sealed), 0o700);
    for e in std::fs::read_dir(&sealed).unwrap().flatten() {
        assert_eq!(mode(&e.path()), 0o600, "{}", e.path().display());
    }
    for b in bundles.iter().chain([&last]) {
        rt.ok(&["delete", "--force", &b.id]);
        rt.assert_nothing_left(b);
    }
}

// ---- hole 9: delete --force after a killed create ----

/// A bundle whose prestart hook writes its pid to `hook.pid` in the bundle
/// and sleeps 30 s.
fn bundle_with_slow_prestart_hook(name: &str) -> (Bundle, PathBuf) {
    let mut b = Bundle::new(name, &["sleep", "100"]);
    let mark = b.path().join("hook.pid");
    b.config["hooks"] = json!({"prestart": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("echo $$ > {}; exec sleep 30", mark.display())],
    }]});
    b.save();
    (b, mark)
}

fn read_pid(file: &Path) -> Option<i32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// Every directory named for the container in any cgroup hierarchy.
fn cgroup_dirs_of(id: &str) -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|h| h.path().join("inspector-test").join(id))
        .chain([Path::new("/sys/fs/cgroup/inspector-test").join(id)])
        .filter(|d| d.exists())
        .collect()
}

/// runc leaves the state directory and the cgroups of a `create` killed
/// during a hook, and its `delete --force` says 0 and leaves the cgroups.
/// Here `delete --force` removes all of it, and kills the container's init.
#[test]
fn delete_force_after_create_was_killed_in_a_prestart_hook_removes_everything() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let rt = Runtime::new("killed-create");
    let (b, mark) = bundle_with_slow_prestart_hook("killed-create");
    let mut create = rt
        .cmd()
        .args(["create", "--bundle", b.path().to_str().unwrap(), &b.id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the prestart hook", 10, || read_pid(&mark).is_some());
    let hook = read_pid(&mark).unwrap();
    let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // While the hook runs, the container is recorded as creating, init known.
        let state = rt.state(&b.id);
        assert_eq!(state["status"], "creating", "{state}");
        let init = state["pid"].as_i64().unwrap() as i32;
        assert!(init > 0, "{state}");
        assert!(!cgroup_dirs_of(&b.id).is_empty());
        create.kill().unwrap();
        create.wait().unwrap();
        assert_eq!(rt.state(&b.id)["status"], "stopped");
        rt.ok(&["delete", "--force", &b.id]);
        assert!(!rt.root.path().join(&b.id).exists(), "state directory left");
        let left = cgroup_dirs_of(&b.id);
        assert!(left.is_empty(), "cgroups left: {left:?}");
        wait_for("the container's init to die", 5, || process_gone(init));
        // Again: nothing to do, still fine.
        rt.ok(&["delete", "--force", &b.id]);
        rt.assert_nothing_left(&b);
    }));
    // The hook is the runtime's child, not the container's: end it here.
    // SAFETY: the hook's sleep, which this test started through the runtime.
    unsafe { libc::kill(hook, libc::SIGKILL) };
    let _ = create.kill();
    let _ = create.wait();
    drop(rt.out(&["delete", "--force", &b.id]));
    if let Err(e) = killed {
        std::panic::resume_unwind(e);
    }
}

/// The same on a pure cgroup2 machine (a cgroup2 mount in a private mount
/// namespace stands in for one, as in runtime_features::pure_cgroup2).
#[test]
fn delete_force_after_a_killed_create_cleans_up_on_pure_cgroup2() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let rt = Runtime::new("killed-create-v2");
    let (b, mark) = bundle_with_slow_prestart_hook("killed-create-v2");
    let r = format!(
        "{} --root {}",
        runtime_bin().display(),
        rt.root.path().display()
    );
    let dir = format!("/sys/fs/cgroup{}", tests::runtime::cgroups_path(&b.id));
    let script = format!(
        "set -e; mount -t cgroup2 none /sys/fs/cgroup
         {r} create --bundle {bundle} {id} </dev/null >/dev/null 2>&1 &
         create=$!
         i=0; while [ ! -s {mark} ]; do i=$((i+1)); [ $i -lt 500 ]; sleep 0.02; done
         test -d {dir} && echo made
         init=$({r} state {id} | sed -n 's/.*\"pid\": \\([0-9]*\\).*/\\1/p')
         kill -9 $create; wait $create || true
         {r} delete --force {id} && echo deleted
         test -e {dir} && echo left || echo gone
         test -e {root}/{id} && echo state-left || echo state-gone
         i=0; while [ -e /proc/$init/exe ]; do i=$((i+1)); [ $i -lt 250 ]; sleep 0.02; done; echo init-gone
         kill -9 $(cat {mark})",
        bundle = b.path().display(),
        id = b.id,
        mark = mark.display(),
        root = rt.root.path().display(),
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if let Some(hook) = read_pid(&mark) {
        // SAFETY: the hook this test started, should the script have stopped early.
        unsafe { libc::kill(hook, libc::SIGKILL) };
    }
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_eq!(stdout, "made\ndeleted\ngone\nstate-gone\ninit-gone\n");
    rt.assert_nothing_left(&b);
}
