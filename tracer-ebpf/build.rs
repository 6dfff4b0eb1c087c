//! Building this crate runs `bpf-linker`, an undeclared dependency: rebuild when the linker
//! binary changes (e.g. after `cargo xtask setup` installed a new one).
//!
//! bpf-linker generates the code, so the BPF target's features are its arguments. The BPF
//! target assumes that a word may not be loaded from an address that is not a multiple of its
//! size, and reads such a word (a packet's IP header is 2-aligned at best) as separate bytes
//! with shifts and ors: four times the instructions. The kernel's JITs load misaligned words
//! directly, and the verifier allows it for packet and map memory on architectures with
//! efficient unaligned access (x86-64, arm64); LLVM 22 (the nightly's, which bpf-linker links)
//! can emit such loads. An older LLVM ignores the feature with a warning and emits the byte
//! loads, which work as before.
fn main() {
    if let Ok(linker) = which::which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
    println!("cargo:rustc-link-arg=--cpu-features=+allows-misaligned-mem-access");
}
