//! Builds the eBPF object (crate `tracer-ebpf`) for `bpfel-unknown-none` with aya-build, which runs
//! `cargo +nightly build -Z build-std=core` and links with bpf-linker; `source::live` embeds the
//! result with `aya::include_bytes_aligned!`.
//!
//! Without the `ebpf` feature (on by default) all of that is skipped: no nightly, no bpf-linker
//! needed; the offline commands work and `trace` reports that the binary was built without eBPF.
//! xtask depends on the library that way, so `cargo xtask setup` builds on a fresh machine
//! before it has installed what the eBPF object needs.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, anyhow, bail};
use aya_build::{Package, Toolchain};

const EBPF_PACKAGE: &str = "tracer-ebpf";
const SETUP_HINT: &str = "run `cargo xtask setup` to install them, or build with \
                          --no-default-features to leave live tracing out";

fn main() -> anyhow::Result<()> {
    if env::var_os("CARGO_FEATURE_EBPF").is_none() {
        return Ok(());
    }

    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir
        .parent()
        .context("tracer-user has no parent directory")?;
    let ebpf_dir = workspace.join(EBPF_PACKAGE);
    // aya-build watches the eBPF crate; its shared types live next door.
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("tracer-common").display()
    );

    check_toolchain()?;
    let root_dir = ebpf_dir
        .to_str()
        .ok_or_else(|| anyhow!("non-UTF-8 path {}", ebpf_dir.display()))?;
    aya_build::build_ebpf(
        [Package {
            name: EBPF_PACKAGE,
            root_dir,
            ..Default::default()
        }],
        Toolchain::Nightly,
    )
    .context("building the eBPF object (tracer-ebpf) failed")
}

/// Fails early, with the fix, when what aya-build needs is missing; its own errors would only
/// say that a nested cargo failed.
fn check_toolchain() -> anyhow::Result<()> {
    let linker = which::which("bpf-linker");
    if let Ok(linker) = &linker {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
    let mut missing = Vec::new();
    if linker.is_err() {
        missing.push("bpf-linker (not in PATH)".to_owned());
    }
    match nightly_sysroot() {
        Err(why) => missing.push(format!("the nightly Rust toolchain ({why})")),
        Ok(sysroot) => {
            let core = sysroot.join("lib/rustlib/src/rust/library/core");
            if !core.is_dir() {
                missing.push("the rust-src component of the nightly toolchain".to_owned());
            }
        }
    }
    if !missing.is_empty() {
        bail!(
            "building the eBPF object needs {}: {SETUP_HINT}",
            missing.join(" and ")
        );
    }
    Ok(())
}

fn nightly_sysroot() -> Result<PathBuf, String> {
    let output = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--print", "sysroot"])
        .env_remove("RUSTC")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .output()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
    }
    let sysroot = String::from_utf8(output.stdout).map_err(|e| e.to_string())?;
    Ok(Path::new(sysroot.trim()).to_path_buf())
}
