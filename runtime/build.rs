//! Links `inspector-runtime` as a position-dependent executable: every
//! container start executes it twice, and a PIE of this size spends a
//! measurable part of each start applying ~15,000 relocations. (`cargo
//! xtask build` goes further and links it statically, without the dynamic
//! loader: see `static_runtime` in xtask.)
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
