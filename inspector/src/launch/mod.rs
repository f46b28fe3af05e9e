//! `inspector run`: everything needed to launch one container with the
//! bundled runtime, before and after the probe watches it.
//!
//! - [`rootfs`]: the default root filesystem, and finding a command inside a
//!   root filesystem the way the runtime will;
//! - [`image`]: unpacking an OCI image layout or a `docker save` tarball into
//!   a cached root filesystem;
//! - [`bundle`]: the OCI bundle (config.json) the runtime is given;
//! - [`runtime`]: driving `inspector-runtime` through its command line.

pub mod bundle;
pub mod image;
pub mod rootfs;
pub mod runtime;

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum LaunchError {
    #[error(transparent)]
    Image(#[from] image::ImageError),
    #[error(transparent)]
    Rootfs(#[from] rootfs::RootfsError),
    #[error(transparent)]
    Bundle(#[from] bundle::BundleError),
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
}

/// The strings of a JSON array (image and runtime configs list argv, env
/// and the like this way); anything else reads as none.
fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Creates `path` as a new file readable by root only: never through a
/// symlink, never over a file someone else made (`O_EXCL|O_NOFOLLOW`, 0600).
pub fn create_private(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// A directory removed, whole, when dropped (a `tempfile::TempDir`):
/// generated bundles and scratch space never outlive the run, however it
/// ends short of SIGKILL.
///
/// It is 0700 under an unpredictable name, made with `mkdir` (which never
/// follows a symlink): the bundle's config.json holds the container's
/// environment, secrets included, and it lives in a directory every user
/// can write (/tmp).
#[derive(Debug)]
pub struct ScratchDir(tempfile::TempDir);

impl ScratchDir {
    /// Makes a fresh directory `<parent>/<prefix>-<pid>-<random>`.
    pub fn new_in(parent: &std::path::Path, prefix: &str) -> std::io::Result<Self> {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::create_dir_all(parent)?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("{prefix}-{}-", std::process::id()))
            .rand_bytes(10)
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(parent)?;
        Ok(ScratchDir(dir))
    }

    /// A fresh directory under the system's temporary directory.
    pub fn new(prefix: &str) -> std::io::Result<Self> {
        Self::new_in(&std::env::temp_dir(), prefix)
    }

    pub fn path(&self) -> &std::path::Path {
        self.0.path()
    }

    /// Keeps the directory: it becomes the caller's.
    pub fn keep(self) -> PathBuf {
        self.0.keep()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_dir_is_private_and_gone_once_dropped_unless_kept() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = ScratchDir::new("scratch").unwrap();
        let path = dir.path().to_path_buf();
        std::fs::write(path.join("config.json"), b"{}").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        drop(dir);
        assert!(!path.exists());
        let kept = ScratchDir::new("scratch").unwrap().keep();
        assert!(kept.is_dir());
        std::fs::remove_dir(&kept).unwrap();
    }
}
