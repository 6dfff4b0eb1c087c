//! Building this crate runs `bpf-linker`, an undeclared dependency: rebuild when the linker
//! binary changes (e.g. after `cargo xtask setup` installed a new one).
fn main() {
    if let Ok(linker) = which::which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}
