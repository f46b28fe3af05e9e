//! The commit a binary is built from, for its `--version`: shared by the
//! build scripts of inspector and inspector-runtime (`#[path]`-included), so
//! both name the same commit the same way.

use std::{path::Path, process::Command};

/// `git rev-parse --short=12 HEAD` in `dir`, or "unknown" when `dir` is not
/// in a git checkout (a source tarball) or git is missing: such a build
/// must still work. Tells cargo to run the build script again when HEAD
/// moves (a commit, a checkout), and only then: watching the index too
/// would rebuild the crate at every `git status`.
pub fn commit(dir: &Path) -> String {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (out.status.success() && !text.is_empty()).then_some(text)
    };
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown".to_string();
    };
    // HEAD names a branch, whose ref file moves at each commit; a ref that
    // `git pack-refs` packed lives in packed-refs. `--git-path` resolves
    // both in a linked worktree too. Only paths that exist are watched: cargo
    // reruns a build script whose watched path is missing at every build.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            let path = dir.join(path);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    commit
}
