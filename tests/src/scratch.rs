//! Scratch space for a test: a directory removed on drop, and a busybox root
//! filesystem to fill one with.
//!
//! [`TempDir`] is `tempfile`'s: made with an unpredictable name that no other
//! user can take first. Its mode is 0755, not tempfile's 0700: a bundle in it
//! may run in a user namespace whose root is an unprivileged host user (the
//! runtime test `user_namespace_with_mappings` maps it to uid 100000), and
//! the runtime sets up the root filesystem from inside that namespace, so
//! that user must be able to reach it.

use std::{os::unix::fs::PermissionsExt as _, path::Path};

/// A scratch directory, `$TMPDIR/inspector-test-NAME-XXXXXX`, removed on drop.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("inspector-test-{name}-"))
            .permissions(std::fs::Permissions::from_mode(0o755))
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot make a scratch directory for {name}: {e}"));
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
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
