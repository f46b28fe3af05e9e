//! Builds the probe (`inspector-ebpf`) for the BPF target with the nightly
//! toolchain and bpf-linker, so that `src/probe.rs` can embed it.

fn main() -> aya_build::Result<()> {
    let root = format!("{}/../inspector-ebpf", env!("CARGO_MANIFEST_DIR"));
    let probe = aya_build::Package {
        name: "inspector-ebpf",
        root_dir: &root,
        ..Default::default()
    };
    aya_build::build_ebpf([probe], aya_build::Toolchain::default())
}
