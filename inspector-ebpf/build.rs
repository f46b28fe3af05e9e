use which::which;

/// The probe links with bpf-linker, which cargo does not know about: rebuild when
/// it changes, and say how to get it when it is missing.
fn main() {
    match which("bpf-linker") {
        Ok(path) => println!("cargo:rerun-if-changed={}", path.display()),
        Err(_) => panic!("bpf-linker is not installed: run `cargo xtask setup`"),
    }
}
