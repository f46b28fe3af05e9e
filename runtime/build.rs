//! Links `inspector-runtime` as a position-dependent executable: every
//! container start executes it twice, and a PIE of this size spends a
//! measurable part of each start applying ~15,000 relocations.
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
