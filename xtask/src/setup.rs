//! `cargo xtask setup` and `cargo xtask test`: bring a fresh Debian machine to the point where
//! the whole workspace builds and its tests run, quickly when everything is already there.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

/// Debian packages, each with the binary whose absence means it must be installed.
const PACKAGES: &[(&str, &str)] = &[
    ("tshark", "tshark"),
    ("tcpdump", "tcpdump"),
    ("nft", "nftables"),
    ("ethtool", "ethtool"),
    ("ip", "iproute2"),
    ("bpftool", "bpftool"),
    // mergecap and capinfos come with tshark (wireshark-common); nstat with iproute2.
    ("mergecap", "wireshark-common"),
    ("capinfos", "wireshark-common"),
    ("nstat", "iproute2"),
];

pub fn setup() -> anyhow::Result<()> {
    install_debian_packages()?;
    install_nightly()?;
    install_bpf_linker()?;
    Ok(())
}

pub fn test(cargo_args: &[String]) -> anyhow::Result<()> {
    setup()?;
    let root = workspace_root();
    // xtask links mptcp-tracer without its `ebpf` feature (it needs only the lab and the key
    // derivation); the tests need the real binary with its eBPF object, built here.
    let mut build = cargo();
    build
        .current_dir(&root)
        .args(["build", "--package", "mptcp-tracer", "--bins"]);
    run_status(&mut build)?;
    let mut test = cargo();
    test.current_dir(&root)
        // tracer-ebpf builds only for the BPF target (tracer-user's build script does that);
        // as a host test target it cannot link.
        .args([
            "test",
            "--workspace",
            "--exclude",
            "tracer-ebpf",
            "--no-fail-fast",
        ])
        .args(cargo_args);
    run_status(&mut test)
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn have_binary(name: &str) -> bool {
    // PATH plus the sbin directories, which a non-login root shell may lack.
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .any(|directory| directory.join(name).is_file())
}

fn install_debian_packages() -> anyhow::Result<()> {
    let mut missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(binary, _)| !have_binary(binary))
        .map(|(_, package)| *package)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        log::info!("debian packages: all there");
        return Ok(());
    }
    log::info!("debian packages: installing {}", missing.join(" "));
    // tshark's package asks whether non-root users may capture; answer no without a prompt.
    let mut preseed = Command::new("debconf-set-selections");
    preseed.stdin(std::process::Stdio::piped());
    let mut child = preseed.spawn().context("running debconf-set-selections")?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write as _;
        stdin.write_all(b"wireshark-common wireshark-common/install-setuid boolean false\n")?;
    }
    if !child.wait()?.success() {
        bail!("debconf-set-selections failed");
    }
    run_status(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["update", "-q"]),
    )?;
    run_status(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing),
    )
}

fn install_nightly() -> anyhow::Result<()> {
    let toolchains = output(Command::new("rustup").args(["toolchain", "list"]))?;
    if toolchains.lines().any(|line| line.starts_with("nightly")) {
        log::info!("nightly: there");
    } else {
        run_status(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
    }
    let components = output(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        "nightly",
    ]))?;
    if components.lines().any(|line| line.starts_with("rust-src")) {
        log::info!("nightly rust-src: there");
        return Ok(());
    }
    run_status(Command::new("rustup").args([
        "component",
        "add",
        "rust-src",
        "--toolchain",
        "nightly",
    ]))
}

/// bpf-linker works when it runs and can link with the nightly's LLVM: `--version` loads the
/// LLVM library through its rpath, so a nightly update that removed it shows here.
fn bpf_linker_works() -> bool {
    Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

fn install_bpf_linker() -> anyhow::Result<()> {
    if bpf_linker_works() {
        log::info!("bpf-linker: works");
        return Ok(());
    }
    // Link bpf-linker against the LLVM that ships inside the nightly toolchain: no system
    // LLVM of the right version is needed, and no prebuilt binary is downloaded.
    let sysroot = output(Command::new("rustc").args(["+nightly", "--print", "sysroot"]))?;
    let library_dir = Path::new(sysroot.trim()).join("lib");
    let llvm_library = std::fs::read_dir(&library_dir)
        .with_context(|| format!("reading {}", library_dir.display()))?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .find_map(|name| {
            // libLLVM-22-rust-1.97.0-nightly.so → LLVM-22-rust-1.97.0-nightly
            name.strip_prefix("lib")
                .and_then(|rest| rest.strip_suffix(".so"))
                .filter(|stem| stem.starts_with("LLVM-"))
                .map(str::to_owned)
        })
        .with_context(|| format!("no libLLVM-*.so in {}", library_dir.display()))?;
    let llvm_major = llvm_library
        .strip_prefix("LLVM-")
        .and_then(|rest| rest.split(['-', '.']).next())
        .filter(|major| major.chars().all(|c| c.is_ascii_digit()) && !major.is_empty())
        .with_context(|| format!("no LLVM major version in {llvm_library}"))?;
    let library_dir = library_dir.display();
    let rustflags = format!(
        "-L {library_dir} -C link-arg=-l{llvm_library} -C link-arg=-Wl,-rpath,{library_dir}"
    );
    log::info!("bpf-linker: building against {llvm_library} (about 70 s)");
    run_status(
        cargo()
            .env("RUSTFLAGS", rustflags)
            // Its own target dir: the workspace's RUSTFLAGS-free artefacts stay valid.
            .env_remove("CARGO_TARGET_DIR")
            .args([
                "install",
                "bpf-linker",
                "--no-default-features",
                "--features",
                &format!("llvm-{llvm_major},no-llvm-linking"),
            ]),
    )?;
    if !bpf_linker_works() {
        bail!("bpf-linker was installed but `bpf-linker --version` fails");
    }
    Ok(())
}

fn output(command: &mut Command) -> anyhow::Result<String> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn run_status(command: &mut Command) -> anyhow::Result<()> {
    log::info!("running {command:?}");
    let status = command
        .status()
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}
