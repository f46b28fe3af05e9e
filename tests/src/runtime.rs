//! Helpers for the tests of `inspector-runtime`: a busybox bundle, a private
//! state root, and checks that a failed or deleted container left nothing behind.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
};

use serde_json::{Value, json};

use crate::{
    paths::runtime_bin,
    scratch::{TempDir, busybox_rootfs},
};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn unique_id(name: &str) -> String {
    format!(
        "{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The cgroup every test container gets, so the tests can look for leftovers.
pub fn cgroups_path(id: &str) -> String {
    format!("/inspector-test/{id}")
}

/// A bundle: a busybox rootfs and a config.json based on `inspector-runtime spec`.
pub struct Bundle {
    pub dir: TempDir,
    pub config: Value,
    pub id: String,
}

impl Bundle {
    pub fn new(name: &str, args: &[&str]) -> Bundle {
        let dir = TempDir::new(&format!("rt-{name}"));
        busybox_rootfs(&dir.path().join("rootfs"));
        for applet in [
            "id", "hostname", "mount", "mkdir", "grep", "stat", "touch", "ps", "wc", "head",
            "kill", "readlink", "tr",
        ] {
            let _ =
                std::os::unix::fs::symlink("busybox", dir.path().join("rootfs/bin").join(applet));
        }
        let out = Command::new(runtime_bin())
            .arg("spec")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut config: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
                .unwrap();
        let id = unique_id(name);
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
        config["root"]["readonly"] = json!(false);
        config["linux"]["cgroupsPath"] = json!(cgroups_path(&id));
        let b = Bundle { dir, config, id };
        b.save();
        b
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Writes config.json after a change to `config`.
    pub fn save(&self) {
        std::fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_string_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }
}

/// A private `--root` for one test, of `inspector-runtime` or, to compare
/// with, runc.
pub struct Runtime {
    pub root: TempDir,
    pub bin: PathBuf,
}

impl Runtime {
    pub fn new(name: &str) -> Runtime {
        Runtime {
            root: TempDir::new(&format!("rt-root-{name}")),
            bin: runtime_bin(),
        }
    }

    /// runc, the reference, with its own private root.
    pub fn runc(name: &str) -> Runtime {
        Runtime {
            root: TempDir::new(&format!("runc-root-{name}")),
            bin: PathBuf::from("runc"),
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(self.root.path());
        c
    }

    /// Runs the runtime with these arguments and returns its output. Output
    /// goes through files, not pipes: a container started by `create` keeps
    /// its stdio, and we wait for the runtime, not for the container.
    pub fn out(&self, args: &[&str]) -> Output {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let (o, e) = (
            self.root.path().join(format!(".out-{n}")),
            self.root.path().join(format!(".err-{n}")),
        );
        let status = self
            .cmd()
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.bin.display()));
        let out = Output {
            status,
            stdout: std::fs::read(&o).unwrap_or_default(),
            stderr: std::fs::read(&e).unwrap_or_default(),
        };
        let _ = std::fs::remove_file(o);
        let _ = std::fs::remove_file(e);
        out
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.out(args);
        assert!(
            out.status.success(),
            "{} {args:?} failed ({}): {}{}",
            self.bin.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `run --detach` of a bundle, asserting success: the container runs on.
    pub fn run_detached(&self, b: &Bundle) {
        self.ok(&[
            "run",
            "--detach",
            "--bundle",
            b.path().to_str().unwrap(),
            &b.id,
        ]);
    }

    /// `create --log F --log-format json` of a bundle: (exit code, the log's
    /// text, empty when none was written).
    pub fn create_logged(&self, b: &Bundle) -> (Option<i32>, String) {
        let log = self.root.path().join("log.json");
        let out = self.out(&[
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "create",
            "--bundle",
            b.path().to_str().unwrap(),
            &b.id,
        ]);
        (
            out.status.code(),
            std::fs::read_to_string(&log).unwrap_or_default(),
        )
    }

    /// `run` of a bundle: (exit code, stdout, stderr).
    pub fn run(&self, b: &Bundle) -> (i32, String, String) {
        let out = self.out(&["run", "--bundle", b.path().to_str().unwrap(), &b.id]);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    /// Nothing of container `id` is left: no state directory, cgroup, or
    /// mount under the bundle (a cgroup can only be removed once empty, so
    /// this also means no process is left).
    pub fn assert_nothing_left(&self, b: &Bundle) {
        assert!(
            !self.root.path().join(&b.id).exists(),
            "state directory of {} left behind",
            b.id
        );
        for ctrl in ["memory", "pids", "freezer", "devices", "cpu", "unified"] {
            let dir = Path::new("/sys/fs/cgroup")
                .join(ctrl)
                .join("inspector-test")
                .join(&b.id);
            assert!(!dir.exists(), "cgroup {} left behind", dir.display());
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let bundle = b.path().to_str().unwrap();
        assert!(
            !mountinfo.contains(bundle),
            "a mount under {bundle} left behind"
        );
    }
}

/// `runc run` of the same bundle, for comparison: its standard output (it
/// must succeed).
pub fn runc_run(b: &Bundle) -> String {
    Runtime::runc(&b.id).ok(&["run", "--bundle", b.path().to_str().unwrap(), &b.id])
}

/// Reads a container's stdout through `run`, asserting success.
pub fn run_ok(name: &str, script: &str, edit: impl FnOnce(&mut Value)) -> String {
    let rt = Runtime::new(name);
    let mut b = Bundle::new(name, &["sh", "-c", script]);
    edit(&mut b.config);
    b.save();
    let (code, out, err) = rt.run(&b);
    assert_eq!(code, 0, "run failed: {out}{err}");
    rt.assert_nothing_left(&b);
    out
}
