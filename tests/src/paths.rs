//! Where the tests find the workspace and the binaries under test:
//! `cargo xtask test` names them (`INSPECTOR_BIN`, `INSPECTOR_RUNTIME_BIN`);
//! a plain `cargo test` finds the release builds. `cargo xtask dist` leaves
//! its static builds and packages in [`dist_dir`].

use std::path::{Path, PathBuf};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the workspace")
        .to_path_buf()
}

pub fn inspector_bin() -> PathBuf {
    std::env::var_os("INSPECTOR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/release/inspector"))
}

/// The `inspector-runtime` the runtime tests drive.
pub fn runtime_bin() -> PathBuf {
    std::env::var_os("INSPECTOR_RUNTIME_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/release/inspector-runtime"))
}

/// The `inspector-runtime` that `inspector run` starts: the one next to it.
pub fn bundled_runtime_bin() -> PathBuf {
    inspector_bin().with_file_name("inspector-runtime")
}

/// What `cargo xtask dist` made: the static `inspector` and
/// `inspector-runtime`, the .deb (`INSPECTOR_DIST_DIR` overrides it).
pub fn dist_dir() -> PathBuf {
    std::env::var_os("INSPECTOR_DIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/dist"))
}
