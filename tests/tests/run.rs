//! `inspector run`: a container launched with the bundled runtime and traced
//! from its first syscall, against the real kernel and inspector-runtime.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use tests::{Need, TempDir, inspector_bin, probe_test};

/// A container id no other test uses.
fn unique(name: &str) -> String {
    format!("insp-test-{name}-{}", std::process::id())
}

/// Runs `inspector run` with `args`, with the image cache under `cache`.
fn run(args: &[&str], cache: &Path) -> (Output, u32) {
    let child = Command::new(inspector_bin())
        .env("INSPECTOR_KEEP_PROBE", tests::KEEP)
        .arg("run")
        .args(args)
        .env("XDG_CACHE_HOME", cache)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start inspector run");
    let pid = child.id();
    (child.wait_with_output().unwrap(), pid)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What a container could leave behind: its runtime state directory, its
/// cgroups, the bundle directory of the inspector that ran it.
fn leftovers(id: &str, inspector_pid: u32) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let state = Path::new("/run/inspector-runtime").join(id);
    if state.exists() {
        found.push(state);
    }
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let dir = hierarchy.path().join(id);
        if dir.exists() {
            found.push(dir);
        }
    }
    let prefix = format!("inspector-run-{inspector_pid}-");
    for entry in std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            found.push(entry.path());
        }
    }
    found
}

fn assert_clean(id: &str, inspector_pid: u32, programs_before: usize) {
    let left = leftovers(id, inspector_pid);
    assert!(left.is_empty(), "left behind: {left:?}");
    tests::assert_no_links_left(programs_before);
}

/// The timeline block of `inspector run`'s stderr (or `inspector timeline`'s
/// stdout) for container `id`, without the wall-clock start time.
fn timeline_block(output: &str, id: &str) -> String {
    let mut lines = output
        .lines()
        .skip_while(|l| !l.starts_with(&format!("container {id}")));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no timeline for {id} in:\n{output}"));
    let first = first.split(", started ").next().unwrap().to_string();
    std::iter::once(first)
        .chain(
            lines
                .take_while(|l| !l.is_empty() && !l.starts_with("inspector:"))
                .map(String::from),
        )
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_default_root_filesystem_runs_a_command_and_shows_its_lifecycle() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::BundledRuntime]) else {
        return;
    };
    let before = tests::settled_inspector_links();
    let cache = TempDir::new("run-cache");
    let id = unique("default");
    let (out, pid) = run(
        &["--name", &id, "--", "/bin/sh", "-c", "echo hello; exit 3"],
        cache.path(),
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "stderr:\n{stderr}");
    assert_eq!(stdout, "hello\n");
    let timeline = timeline_block(&stderr, &id);
    for wanted in [
        "exited 3",
        "phases",
        "create ",
        "running ",
        "inspector-runtime create",
        "unshare(",
        "CLONE_NEWPID",
        "CLONE_NEWNS",
        "pivot_root(",
        r#"execve("/bin/sh", ["/bin/sh","-c","echo hello; exit 3"]) = 0"#,
        "+++ exited with 3 +++",
        "inspector-runtime delete",
    ] {
        assert!(
            timeline.contains(wanted),
            "{wanted:?} missing from:\n{timeline}"
        );
    }
    assert!(!timeline.contains("(incomplete)"), "{timeline}");
    assert_clean(&id, pid, before);
}

#[test]
fn an_exported_run_reads_back_as_the_same_timeline() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::BundledRuntime]) else {
        return;
    };
    let dir = TempDir::new("run-export");
    let id = unique("export");
    let recording = dir.path().join("run.jsonl");
    let perfetto = dir.path().join("run.perfetto.json");
    let (out, _) = run(
        &[
            "--name",
            &id,
            "--export",
            recording.to_str().unwrap(),
            "--perfetto",
            perfetto.to_str().unwrap(),
            "--",
            "/bin/sh",
            "-c",
            "echo hello; exit 3",
        ],
        dir.path(),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let replay = Command::new(inspector_bin())
        .args(["timeline", recording.to_str().unwrap(), "--container", &id])
        .output()
        .unwrap();
    assert!(replay.status.success(), "{}", text(&replay.stderr));
    assert_eq!(
        timeline_block(&stderr, &id),
        timeline_block(&text(&replay.stdout), &id)
    );
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&perfetto).unwrap()).unwrap();
    assert!(doc.to_string().contains("pivot_root"), "perfetto: {doc}");
}

#[test]
fn a_busybox_rootfs_gets_env_workdir_and_hostname() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::BundledRuntime]) else {
        return;
    };
    let before = tests::settled_inspector_links();
    let dir = TempDir::new("run-rootfs");
    let rootfs = dir.path().join("rootfs");
    tests::busybox_rootfs(&rootfs);
    let id = unique("rootfs");
    let (out, pid) = run(
        &[
            "--rootfs",
            rootfs.to_str().unwrap(),
            "--name",
            &id,
            "-e",
            "FOO=bar",
            "-w",
            "/tmp",
            "--hostname",
            "boxy",
            "--pids-limit",
            "64",
            "--memory",
            "64m",
            "--brief",
            "--",
            "sh",
            "-c",
            "echo $FOO; busybox hostname; pwd; exit 2",
        ],
        dir.path(),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(text(&out.stdout), "bar\nboxy\n/tmp\n");
    assert!(
        timeline_block(&stderr, &id).contains("exited 2"),
        "{stderr}"
    );
    assert_clean(&id, pid, before);
}

#[test]
fn a_bundle_runs_with_its_config_and_the_command_line_s_command() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::BundledRuntime]) else {
        return;
    };
    let before = tests::settled_inspector_links();
    let dir = TempDir::new("run-bundle");
    let bundle = dir.path().join("bundle");
    tests::busybox_rootfs(&bundle.join("rootfs"));
    // The runtime's own default configuration: a terminal and `sh`.
    let spec = Command::new(tests::bundled_runtime_bin())
        .args(["spec", "--bundle"])
        .arg(&bundle)
        .status()
        .unwrap();
    assert!(spec.success());
    let config_before = std::fs::read(bundle.join("config.json")).unwrap();
    let id = unique("bundle");
    let (out, pid) = run(
        &[
            "--bundle",
            bundle.to_str().unwrap(),
            "--name",
            &id,
            "--brief",
            "--",
            "sh",
            "-c",
            "echo from the bundle; busybox hostname; exit 6",
        ],
        dir.path(),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert_eq!(text(&out.stdout), "from the bundle\ninspector\n");
    // The user's bundle is never changed.
    assert_eq!(
        std::fs::read(bundle.join("config.json")).unwrap(),
        config_before
    );
    assert_clean(&id, pid, before);
}

#[test]
fn a_docker_save_tarball_runs_from_the_image_cache() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::BundledRuntime, Need::Docker]) else {
        return;
    };
    let dir = TempDir::new("run-docker-save");
    let tarball = dir.path().join("image.tar");
    let saved = Command::new(tests::DOCKER)
        .args(["save", &tests::image(), "-o", tarball.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(saved.success());
    for round in 0..2 {
        let id = unique(&format!("docker-save-{round}"));
        let (out, _) = run(
            &[
                "--image",
                tarball.to_str().unwrap(),
                "--name",
                &id,
                "--brief",
                "--",
                "/bin/sh",
                "-c",
                "echo from the image; exit 5",
            ],
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "from the image\n");
    }
    // One unpacked image in the cache, no scratch space left over.
    let cached: Vec<_> = std::fs::read_dir(dir.path().join("inspector/images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(!cached[0].starts_with('.'), "{cached:?}");
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Moves `file` into `layout`'s blobs under its digest; returns (digest, size).
fn blob(layout: &Path, file: &Path) -> (String, u64) {
    let hex = sha256(file);
    let dest = layout.join("blobs/sha256").join(&hex);
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::rename(file, &dest).unwrap();
    (
        format!("sha256:{hex}"),
        std::fs::metadata(&dest).unwrap().len(),
    )
}

#[test]
fn an_oci_layout_applies_its_layers_with_whiteouts() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::BundledRuntime]) else {
        return;
    };
    let dir = TempDir::new("run-oci");
    // Layer 1: busybox, and two files in /etc; layer 2 deletes one of them.
    let base = dir.path().join("base");
    tests::busybox_rootfs(&base);
    std::fs::write(base.join("etc/gone"), "to be whited out\n").unwrap();
    std::fs::write(base.join("etc/kept"), "kept\n").unwrap();
    let top = dir.path().join("top");
    std::fs::create_dir_all(top.join("etc")).unwrap();
    std::fs::write(top.join("etc/.wh.gone"), "").unwrap();
    std::fs::write(top.join("etc/added"), "added\n").unwrap();
    let layout = dir.path().join("layout");
    let mut layers = Vec::new();
    for (name, tree) in [("base", &base), ("top", &top)] {
        let tar = dir.path().join(format!("{name}.tar"));
        let ok = Command::new("tar")
            .arg("-C")
            .arg(tree)
            .args(["-cf", tar.to_str().unwrap(), "."])
            .status()
            .unwrap();
        assert!(ok.success());
        layers.push(blob(&layout, &tar));
    }
    let write_blob = |name: &str, value: serde_json::Value| {
        let path = dir.path().join(name);
        std::fs::write(&path, serde_json::to_vec(&value).unwrap()).unwrap();
        blob(&layout, &path)
    };
    let config = write_blob(
        "config.json",
        serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["exit 9"],
                       "Env": ["PATH=/bin", "FROM_IMAGE=yes"], "WorkingDir": "/etc"},
            "rootfs": {"type": "layers", "diff_ids": [layers[0].0, layers[1].0]},
        }),
    );
    let manifest = write_blob(
        "manifest.json",
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config.0, "size": config.1},
            "layers": layers.iter().map(|(d, s)| serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s,
            })).collect::<Vec<_>>(),
        }),
    );
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "digest": manifest.0, "size": manifest.1}],
        }))
        .unwrap(),
    )
    .unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();

    let id = unique("oci");
    // The image's Cmd is replaced, its Entrypoint, Env and WorkingDir kept.
    let (out, _) = run(
        &[
            "--image",
            layout.to_str().unwrap(),
            "--name",
            &id,
            "--brief",
            "--",
            "test ! -e gone && cat kept added && echo $FROM_IMAGE",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "kept\nadded\nyes\n");
    // Without a command, the image's own Cmd.
    let (out, _) = run(
        &["--image", layout.to_str().unwrap(), "--brief"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(9), "{}", text(&out.stderr));
}

#[test]
fn bad_input_is_named_and_leaves_nothing_behind() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::BundledRuntime]) else {
        return;
    };
    let before = tests::settled_inspector_links();
    let dir = TempDir::new("run-bad");
    let rootfs = dir.path().join("rootfs");
    tests::busybox_rootfs(&rootfs);
    let corrupt = dir.path().join("corrupt.tar");
    std::fs::write(&corrupt, b"this is not a tar archive, nor an image").unwrap();
    // A bundle the runtime refuses only once the probe is attached.
    let bundle = dir.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec(&serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["/bin/true"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}},
            "root": {"path": rootfs},
            "linux": {"namespaces": [{"type": "pid"}]},
        }))
        .unwrap(),
    )
    .unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![], "no command to run"),
        (
            vec!["--".into(), "definitely-not-a-command".into()],
            "`definitely-not-a-command` is not in the root filesystem (searched /usr/local/sbin",
        ),
        (
            vec![
                "--rootfs".into(),
                rootfs.display().to_string(),
                "bash".into(),
            ],
            "`bash` is not in the root filesystem",
        ),
        (
            vec![
                "--image".into(),
                "/nonexistent/image.tar".into(),
                "sh".into(),
            ],
            "cannot read the image /nonexistent/image.tar",
        ),
        (
            vec!["--image".into(), corrupt.display().to_string(), "sh".into()],
            "is not an OCI image layout or a `docker save` tarball",
        ),
        (
            vec!["-e".into(), "NOEQUALS".into(), "true".into()],
            "not KEY=VALUE",
        ),
        (
            vec!["--bundle".into(), bundle.display().to_string()],
            "a mount namespace is required",
        ),
    ];
    // A name already taken: that container must be left alone.
    let taken = unique("taken");
    let taken_state = Path::new("/run/inspector-runtime").join(&taken);
    std::fs::create_dir_all(&taken_state).unwrap();
    let (out, _) = run(&["--name", &taken, "--", "true"], dir.path());
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&format!("a container named {taken} already exists")),
        "{}",
        text(&out.stderr)
    );
    assert!(taken_state.exists());
    std::fs::remove_dir(&taken_state).unwrap();

    for (i, (args, message)) in cases.iter().enumerate() {
        let id = unique(&format!("bad-{i}"));
        let mut all = vec!["--name", id.as_str()];
        all.extend(args.iter().map(String::as_str));
        let (out, pid) = run(&all, dir.path());
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded:\n{stderr}");
        assert!(
            stderr.contains(message),
            "{args:?}: {message:?} not in:\n{stderr}"
        );
        assert!(text(&out.stdout).is_empty(), "{args:?}");
        assert_clean(&id, pid, before);
    }
    // Nothing half-unpacked in the image cache either.
    let cache = dir.path().join("inspector/images");
    let left: Vec<_> = std::fs::read_dir(&cache)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn ctrl_c_stops_the_container_and_still_shows_what_was_recorded() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::BundledRuntime]) else {
        return;
    };
    let before = tests::settled_inspector_links();
    let dir = TempDir::new("run-interrupt");
    let id = unique("interrupt");
    let recording = dir.path().join("run.jsonl");
    let child = Command::new(inspector_bin())
        .env("INSPECTOR_KEEP_PROBE", tests::KEEP)
        .args(["run", "--brief", "--name", &id, "--export"])
        .arg(&recording)
        .args(["--", "/bin/sh", "-c", "echo started; sleep 60"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Wait for the container to be running.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !Path::new("/run/inspector-runtime").join(&id).exists() {
        assert!(Instant::now() < deadline, "the container never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    let stderr = text(&out.stderr);
    // sh as the container's pid 1 ignores SIGTERM, so SIGKILL ends it.
    assert_eq!(out.status.code(), Some(137), "{stderr}");
    assert_eq!(text(&out.stdout), "started\n");
    let timeline = timeline_block(&stderr, &id);
    assert!(timeline.contains("killed by SIGKILL"), "{timeline}");
    assert!(timeline.contains("inspector-runtime kill"), "{timeline}");
    assert!(std::fs::metadata(&recording).unwrap().len() > 0);
    assert_clean(&id, pid, before);
}

#[test]
fn a_one_byte_memory_limit_is_named_as_the_cause_of_the_failed_run() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::BundledRuntime]) else {
        return;
    };
    let before = tests::settled_inspector_links();
    let dir = TempDir::new("run-one-byte");
    let id = unique("one-byte");
    let (out, pid) = run(&["--name", &id, "--memory", "1", "--", "true"], dir.path());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let error: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("inspector: error:"))
        .collect();
    assert_eq!(error.len(), 1, "{stderr}");
    assert!(
        error[0].contains("OOM killer")
            && error[0].contains("linux.resources.memory.limit = 1 byte"),
        "{stderr}"
    );
    assert!(!stderr.contains("exited during set-up"), "{stderr}");
    assert_clean(&id, pid, before);
}
