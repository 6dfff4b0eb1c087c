//! The mptcp-tracer TC classifiers. Built for `bpfel-unknown-none` by tracer-user's build.rs; on
//! the host this binary is an empty stub so `cargo build --workspace` / `cargo clippy --workspace`
//! still work.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod classifier;

#[cfg(not(target_arch = "bpf"))]
fn main() {
    eprintln!(
        "tracer-ebpf is an eBPF object; tracer-user's build.rs builds it for bpfel-unknown-none"
    );
}
