//! Builds the probe (`inspector-ebpf`) for the BPF target with the nightly
//! toolchain and bpf-linker, so that `src/probe/loader.rs` can embed it; then
//! names this build for `inspector --version`: the commit, and a short
//! sha256 of the embedded probe object (two builds of the same commit with
//! different compilers load different programs; a bug report should say which).

use std::path::Path;

use sha2::{Digest as _, Sha256};

#[path = "build/commit.rs"]
mod commit;

fn main() -> aya_build::Result<()> {
    let manifest_dir = env!("CARGO_MANIFEST_DIR");
    let root = format!("{manifest_dir}/../inspector-ebpf");
    let probe = aya_build::Package {
        name: "inspector-ebpf",
        root_dir: &root,
        ..Default::default()
    };
    aya_build::build_ebpf([probe], aya_build::Toolchain::default())?;
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/commit.rs");

    let commit = commit::commit(Path::new(manifest_dir));
    let out_dir = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR");
    // Missing only when AYA_BUILD_SKIP skipped the probe's build.
    let probe = match std::fs::read(Path::new(&out_dir).join("inspector")) {
        Ok(object) => format!("sha256:{}", &hex(&Sha256::digest(object))[..12]),
        Err(_) => "unknown".to_string(),
    };
    println!(
        "cargo:rustc-env=INSPECTOR_LONG_VERSION={} (commit {commit}, probe {probe})",
        env!("CARGO_PKG_VERSION")
    );
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
