//! `cargo xtask setup` and `cargo xtask test`: bring a fresh Debian machine to the point where
//! the whole workspace builds and its tests run, quickly when everything is already there.

use std::{
    collections::BTreeSet,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context, bail};
use mptcp_lab::skip::{self, Skipped};

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
    // The metrics tests run their own Prometheus (a temporary config and store on a free
    // port) and lint the exposition with promtool, which the same package brings. On a
    // systemd machine the package also starts a prometheus service (port 9090) that nothing
    // here needs: `systemctl disable --now prometheus`.
    ("prometheus", "prometheus"),
    ("promtool", "prometheus"),
    // The long-run test that moves the tracer's wall clock preloads its libfaketime.
    ("faketime", "faketime"),
];

pub fn setup() -> anyhow::Result<()> {
    install_debian_packages()?;
    install_python_modules();
    install_nightly()?;
    install_bpf_linker()?;
    Ok(())
}

/// Python modules the tests use, from PyPI: DuckDB reads the exported Parquet as a user's
/// query engine would (`export::duckdb_reads_the_parquet`).
const PYTHON_MODULES: &[&str] = &["duckdb"];

/// Installs the missing `PYTHON_MODULES` for `python3` with pip. A failure is a warning, not an
/// error: the tests that need a module then report themselves skipped, naming it.
fn install_python_modules() {
    let missing: Vec<&str> = PYTHON_MODULES
        .iter()
        .copied()
        .filter(|module| {
            !Command::new("python3")
                .args(["-c", &format!("import {module}")])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        })
        .collect();
    if missing.is_empty() {
        log::info!("python modules: all there");
        return;
    }
    log::info!("python modules: installing {}", missing.join(" "));
    // A Debian python3 refuses pip outside a virtualenv unless told otherwise.
    let installed = run_status(
        Command::new("python3")
            .env("PIP_BREAK_SYSTEM_PACKAGES", "1")
            .args(["-m", "pip", "install", "--quiet"])
            .args(&missing),
    );
    if let Err(e) = installed {
        log::warn!("python modules: {e:#}; the tests that need them are skipped");
    }
}

/// setup, the static checks, every test, then the fuzz smoke run (each target from its seed
/// corpus and the committed crash reproducers). A failed check or fuzz run does not stop what
/// follows (those results are worth having either way), but fails the run at the end.
pub fn test(cargo_args: &[String]) -> anyhow::Result<()> {
    setup()?;
    let root = workspace_root();
    let mut failed = static_checks(&root);
    let tests = run_workspace_tests(&root, cargo_args);
    if let Err(e) = crate::fuzz::smoke(&root) {
        println!("fuzz smoke: {e:#}");
        failed.push("fuzz smoke");
    }
    if !failed.is_empty() {
        bail!("failed: {}", failed.join(", "));
    }
    tests
}

/// Formatting (nightly rustfmt, for the options of rustfmt.toml) and clippy with warnings as
/// errors, over every crate of the workspace that builds for the host. Returns the names of
/// those that failed; their output went to the terminal.
fn static_checks(root: &Path) -> Vec<&'static str> {
    let mut fmt = Command::new("cargo");
    fmt.current_dir(root)
        .args(["+nightly", "fmt", "--all", "--check"]);
    let mut clippy = cargo();
    clippy.current_dir(root).args([
        "clippy",
        "--workspace",
        "--exclude",
        "tracer-ebpf",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    [("rustfmt", fmt), ("clippy", clippy)]
        .into_iter()
        .filter_map(|(name, mut command)| match run_status(&mut command) {
            Ok(()) => None,
            Err(e) => {
                println!("{name}: {e:#}");
                Some(name)
            }
        })
        .collect()
}

/// Builds the binary the tests run and runs `cargo test` over the workspace.
fn run_workspace_tests(root: &Path, cargo_args: &[String]) -> anyhow::Result<()> {
    // xtask links mptcp-tracer without its default features (it needs only the key
    // derivation); the tests need the real binary with its eBPF object, built here.
    let mut build = cargo();
    build
        .current_dir(root)
        .args(["build", "--package", "mptcp-tracer", "--bins"]);
    run_status(&mut build)?;
    let mut test = cargo();
    test.current_dir(root)
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
    run_tests(&mut test)
}

/// Runs `cargo test`, passing its output through, and ends with one line totalling every test
/// binary's `test result:` line. cargo's own last line belongs to whichever target ran last
/// (often a doc-test target with no tests), which says nothing about the run.
///
/// Tests that cannot run here (not root, a tool or the shared captures missing) return early,
/// which libtest counts as passed; they record themselves in the file named by
/// `mptcp_lab::skip::SKIP_LOG_ENV` instead. Those are counted as skipped, not passed, and
/// listed with their reasons, as are libtest's ignored tests.
fn run_tests(command: &mut Command) -> anyhow::Result<()> {
    let skip_log =
        std::env::temp_dir().join(format!("mptcp-tracer-skips-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&skip_log);
    command.env(skip::SKIP_LOG_ENV, &skip_log);
    log::info!("running {command:?}");
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {command:?}"))?;
    let mut totals = TestTotals::default();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.context("reading cargo test's output")?;
            println!("{line}");
            totals.add(&line);
        }
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for {command:?}"))?;
    let recorded = skip::read_log(&skip_log)
        .with_context(|| format!("reading the skipped tests from {}", skip_log.display()))?;
    let _ = std::fs::remove_file(&skip_log);
    let skipped = totals.apply_skips(recorded);
    if !totals.ignored_names.is_empty() || !skipped.is_empty() {
        println!("\nskipped:");
        for name in &totals.ignored_names {
            println!("  {name}: ignored");
        }
        for skip in &skipped {
            println!("  {} ({}): {}", skip.test, skip.binary, skip.reason);
        }
    }
    println!(
        "\ntotal: {} passed, {} failed, {} skipped",
        totals.passed, totals.failed, totals.skipped
    );
    if !status.success() {
        // Said again at the very end (after the fuzz run's long output): a CI log's tail must
        // name what failed and why.
        bail!("{command:?} failed ({status}){}", totals.failure_report());
    }
    Ok(())
}

#[derive(Debug, Default, PartialEq, Eq)]
struct TestTotals {
    passed: u64,
    failed: u64,
    /// Ignored by libtest plus skipped at run time.
    skipped: u64,
    /// Tests that failed (`test NAME ... FAILED`, or `---- NAME stdout ----` in the failure
    /// report, which `--quiet` prints too): a skip they recorded does not make them skipped.
    failed_names: BTreeSet<String>,
    /// `test NAME ... ignored` lines.
    ignored_names: Vec<String>,
    /// The first lines of each failure's report (`---- NAME stdout ----` and what follows).
    failure_excerpts: Vec<(String, Vec<String>)>,
    /// Whether lines are being added to the last excerpt.
    in_excerpt: bool,
}

/// Lines of a failure's report kept for the final recap.
const EXCERPT_LINES: usize = 12;

impl TestTotals {
    /// Adds a libtest line: a summary (`test result: ok. 34 passed; 0 failed; 1 ignored; ...`),
    /// one test's outcome (`test live::tests::verifier_budget ... ok`) or the head of a
    /// failure's output (`---- live::tests::verifier_budget stdout ----`).
    fn add(&mut self, line: &str) {
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|rest| rest.strip_suffix(" stdout ----"))
        {
            self.failed_names.insert(name.to_owned());
            self.failure_excerpts.push((name.to_owned(), Vec::new()));
            self.in_excerpt = true;
            return;
        }
        if self.in_excerpt {
            if line == "failures:" || line.starts_with("test result: ") {
                self.in_excerpt = false;
            } else if let Some((_, lines)) = self.failure_excerpts.last_mut()
                && lines.len() < EXCERPT_LINES
                && !line.trim().is_empty()
            {
                lines.push(line.to_owned());
            }
        }
        if let Some(outcome) = line.strip_prefix("test ")
            && let Some((name, result)) = outcome.rsplit_once(" ... ")
        {
            if result == "FAILED" {
                self.failed_names.insert(name.to_owned());
            } else if result.starts_with("ignored") {
                self.ignored_names.push(name.to_owned());
            }
            return;
        }
        let Some(counts) = line.strip_prefix("test result: ") else {
            return;
        };
        for part in counts.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(n)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.skipped += n,
                _ => {}
            }
        }
    }

    /// The failed tests with the first lines of their reports, for the end of the run.
    fn failure_report(&self) -> String {
        let mut report = String::new();
        for name in &self.failed_names {
            report += &format!("\nfailed: {name}");
            if let Some((_, lines)) = self.failure_excerpts.iter().find(|(n, _)| n == name) {
                for line in lines {
                    report += &format!("\n    {line}");
                }
            }
        }
        report
    }

    /// Moves the tests that recorded a skip from passed to skipped; returns them, one record
    /// per test. A test that failed after recording a skip stays a failure.
    fn apply_skips(&mut self, recorded: Vec<Skipped>) -> Vec<Skipped> {
        let mut seen = BTreeSet::new();
        let skipped: Vec<Skipped> = recorded
            .into_iter()
            .filter(|skip| seen.insert((skip.binary.clone(), skip.test.clone())))
            .filter(|skip| {
                let failed = self.failed_names.contains(&skip.test);
                if failed {
                    log::warn!("{} recorded a skip and then failed", skip.test);
                }
                !failed
            })
            .collect();
        let n = skipped.len() as u64;
        self.passed = self.passed.saturating_sub(n);
        self.skipped += n;
        skipped
    }
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
    preseed.stdin(Stdio::piped());
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
    // rust-src to build the eBPF object, rustfmt for the options of rustfmt.toml (nightly
    // only); clippy of the toolchain that builds the workspace.
    install_components("nightly", &["rust-src", "rustfmt"])?;
    let stable = std::env::var("RUSTUP_TOOLCHAIN").unwrap_or_else(|_| "stable".into());
    install_components(&stable, &["clippy"])
}

/// Adds the rustup components of `toolchain` that are missing.
fn install_components(toolchain: &str, wanted: &[&str]) -> anyhow::Result<()> {
    let installed = output(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        toolchain,
    ]))?;
    for component in wanted {
        if installed.lines().any(|line| line.starts_with(component)) {
            log::info!("{toolchain} {component}: there");
        } else {
            run_status(Command::new("rustup").args([
                "component",
                "add",
                component,
                "--toolchain",
                toolchain,
            ]))?;
        }
    }
    Ok(())
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
        .filter_map(Result::ok)
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

/// Runs `command` to completion; its stdout, or an error with its stderr.
pub fn output(command: &mut Command) -> anyhow::Result<String> {
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

#[cfg(test)]
mod tests {
    use super::{Skipped, TestTotals};

    #[test]
    fn totals_add_libtest_summaries() {
        let mut totals = TestTotals::default();
        totals.add("test result: ok. 34 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 16.93s");
        totals.add("test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 5 filtered out; finished in 0.1s");
        totals.add("running 3 tests");
        totals.add("test foo ... ok");
        totals.add("test bar ... ignored, a benchmark");
        assert_eq!((totals.passed, totals.failed, totals.skipped), (37, 1, 2));
        assert_eq!(totals.ignored_names, ["bar"]);
    }

    /// A failure's report (as libtest prints it after the run) is kept for the recap at the
    /// end, up to the next report or the `failures:` list.
    #[test]
    fn failure_reports_name_the_test_and_its_panic() {
        let mut totals = TestTotals::default();
        for line in [
            "test a::one ... FAILED",
            "test a::two ... ok",
            "failures:",
            "",
            "---- a::one stdout ----",
            "",
            "thread 'a::one' panicked at tests/a.rs:3:5:",
            "lost 3 != counter 4",
            "failures:",
            "    a::one",
            "test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.1s",
        ] {
            totals.add(line);
        }
        assert_eq!(
            totals.failure_report(),
            "\nfailed: a::one\n    thread 'a::one' panicked at tests/a.rs:3:5:\n    lost 3 != counter 4"
        );
    }

    #[test]
    fn recorded_skips_move_from_passed_to_skipped() {
        let mut totals = TestTotals::default();
        for line in [
            "test live::needs_root ... ok",
            "test shared::needs_pcaps ... ok",
            "test live::failed_after_skipping ... FAILED",
            "test plain ... ok",
            "test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out",
            // --quiet prints no names for passing tests, only the failures' output.
            "---- quiet::failed_after_skipping stdout ----",
            "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out",
        ] {
            totals.add(line);
        }
        let record = |test: &str, reason: &str| Skipped {
            binary: "integration".into(),
            test: test.into(),
            reason: reason.into(),
        };
        let skipped = totals.apply_skips(vec![
            record(
                "live::needs_root",
                "needs root to create network namespaces",
            ),
            record("shared::needs_pcaps", "no shared captures"),
            // Recorded twice (a loop over files): one skipped test.
            record("shared::needs_pcaps", "no shared captures"),
            record("live::failed_after_skipping", "needs root"),
            record("quiet::failed_after_skipping", "needs root"),
        ]);
        assert_eq!(
            skipped.iter().map(|s| s.test.as_str()).collect::<Vec<_>>(),
            ["live::needs_root", "shared::needs_pcaps"]
        );
        assert_eq!((totals.passed, totals.failed, totals.skipped), (1, 2, 2));
    }
}
