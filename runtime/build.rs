//! Links `inspector-runtime` as a position-dependent executable: every
//! container start executes it twice, and a PIE of this size spends a
//! measurable part of each start applying ~15,000 relocations. (`cargo
//! xtask build` goes further and links it statically, without the dynamic
//! loader: see `static_runtime` in xtask.) Also names the commit built for
//! `--version`, as runc's `commit:` line does (inspector's build script
//! does the same, with the same code).

#[path = "../inspector/build/commit.rs"]
mod commit;

fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../inspector/build/commit.rs");
    let commit = commit::commit(std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
    println!("cargo:rustc-env=INSPECTOR_RUNTIME_COMMIT={commit}");
}
