//! `cargo xtask fuzz`: the cargo-fuzz targets of `fuzz/` (nightly, libFuzzer, AddressSanitizer).
//!
//! `--smoke` runs each target for `SMOKE_SECONDS` from its seed corpus (`fuzz/seeds/TARGET`,
//! in the repository) and fails on the first crash; `cargo xtask fuzz TARGET -- ARGS` runs one
//! target with libFuzzer's own arguments (`-runs=`, `-max_total_time=`, ...). Both first run
//! the reproducers of crashes found before (`fuzz/regressions/TARGET`). New corpus entries go
//! to `target/fuzz-corpus/TARGET`, never into the seeds; crashes to `fuzz/artifacts/TARGET`.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

/// The fuzz targets, as `fuzz/Cargo.toml` names them.
pub const TARGETS: [&str; 3] = ["capture", "packet", "mptcp"];
/// How long `--smoke` runs each target.
pub const SMOKE_SECONDS: u32 = 30;

/// What one libFuzzer run did, from its final statistics.
#[derive(Debug, Default)]
pub struct RunStats {
    pub executions: u64,
    pub per_second: u64,
    /// Coverage counters and features at the end (`cov:` and `ft:` of the last status line).
    pub coverage: u64,
    pub features: u64,
}

/// Runs every target `SMOKE_SECONDS` from its seed corpus, one after the other (one job: the
/// machine's other cores are someone else's), prints what each did, fails on a crash.
pub fn smoke(root: &Path) -> anyhow::Result<()> {
    ensure_cargo_fuzz()?;
    let mut failed = Vec::new();
    for target in TARGETS {
        let args = [format!("-max_total_time={SMOKE_SECONDS}")];
        match run_target(root, target, &args) {
            Ok(stats) => println!(
                "fuzz {target}: {} executions in {SMOKE_SECONDS} s ({}/s), cov {} ft {}",
                stats.executions, stats.per_second, stats.coverage, stats.features
            ),
            Err(error) => {
                println!("fuzz {target}: FAILED: {error:#}");
                failed.push(target);
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "fuzz targets failed: {} (reproducers in fuzz/artifacts/)",
            failed.join(", ")
        );
    }
    Ok(())
}

/// `cargo xtask fuzz TARGET -- ARGS`: one target, as long as `libfuzzer_args` say.
pub fn run(root: &Path, target: &str, libfuzzer_args: &[String]) -> anyhow::Result<()> {
    if !TARGETS.contains(&target) {
        bail!(
            "no fuzz target {target:?}; there are {}",
            TARGETS.join(", ")
        );
    }
    ensure_cargo_fuzz()?;
    let stats = run_target(root, target, libfuzzer_args)?;
    println!(
        "fuzz {target}: {} executions ({}/s), cov {} ft {}",
        stats.executions, stats.per_second, stats.coverage, stats.features
    );
    Ok(())
}

/// Installs cargo-fuzz when `cargo fuzz` is not there.
fn ensure_cargo_fuzz() -> anyhow::Result<()> {
    let there = Command::new("cargo")
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if there {
        return Ok(());
    }
    log::info!("cargo-fuzz: installing");
    let status = Command::new("cargo")
        .args(["install", "cargo-fuzz", "--locked"])
        .status()
        .context("running cargo install cargo-fuzz")?;
    if !status.success() {
        bail!("cargo install cargo-fuzz --locked failed: {status}");
    }
    Ok(())
}

/// `cargo +nightly fuzz run TARGET CORPUS SEEDS [REGRESSIONS] -- ARGS`; libFuzzer's output passes
/// through to stderr and its final statistics are returned. Err on a crash (non-zero exit).
fn run_target(root: &Path, target: &str, libfuzzer_args: &[String]) -> anyhow::Result<RunStats> {
    let corpus = root.join("target/fuzz-corpus").join(target);
    std::fs::create_dir_all(&corpus).with_context(|| format!("creating {}", corpus.display()))?;
    let seeds: PathBuf = root.join("fuzz/seeds").join(target);
    // Reproducers of crashes found before: libFuzzer runs every corpus file first, so a
    // regression fails the run at once.
    let regressions = root.join("fuzz/regressions").join(target);
    // `cargo` of PATH (rustup's proxy): `+nightly` is a rustup argument, and the cargo that
    // runs xtask is the stable one itself.
    let mut command = Command::new("cargo");
    command
        .current_dir(root.join("fuzz"))
        .env_remove("RUSTUP_TOOLCHAIN")
        .args(["+nightly", "fuzz", "run", target])
        .arg(&corpus)
        .arg(&seeds)
        .args(regressions.is_dir().then_some(&regressions))
        .args(["--", "-print_final_stats=1"])
        .args(libfuzzer_args)
        .stderr(Stdio::piped());
    log::info!("fuzz {target}: {command:?}");
    let output = command
        .spawn()
        .and_then(tee_stderr)
        .with_context(|| format!("running cargo fuzz run {target}"))?;
    let stats = parse_stats(&output.1);
    if !output.0.success() {
        bail!("{target} crashed or failed ({})", output.0);
    }
    Ok(stats)
}

/// Waits for `child`, copying its stderr to ours as it comes; returns the status and the text.
fn tee_stderr(
    mut child: std::process::Child,
) -> std::io::Result<(std::process::ExitStatus, String)> {
    use std::io::{BufRead as _, Write as _};
    let mut text = String::new();
    if let Some(stderr) = child.stderr.take() {
        let mut ours = std::io::stderr();
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line?;
            let _ = writeln!(ours, "{line}");
            text.push_str(&line);
            text.push('\n');
        }
    }
    Ok((child.wait()?, text))
}

/// libFuzzer's `-print_final_stats=1` lines and its last `cov: N ft: N` status line.
fn parse_stats(text: &str) -> RunStats {
    let mut stats = RunStats::default();
    for line in text.lines() {
        let number = |key: &str| -> Option<u64> {
            let rest = line.split_once(key)?.1.trim_start();
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        };
        if let Some(n) = number("stat::number_of_executed_units:") {
            stats.executions = n;
        }
        if let Some(n) = number("stat::average_exec_per_sec:") {
            stats.per_second = n;
        }
        if line.starts_with('#') {
            if let Some(n) = number(" cov: ") {
                stats.coverage = n;
            }
            if let Some(n) = number(" ft: ") {
                stats.features = n;
            }
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as libFuzzer 18 prints them.
    #[test]
    fn reads_libfuzzer_statistics() {
        let text = "#2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb\n\
                    #524288\tpulse  cov: 1234 ft: 5678 corp: 90/2Kb lim: 4 exec/s: 17476 rss: 60Mb\n\
                    Done 600000 runs in 31 second(s)\n\
                    stat::number_of_executed_units: 600001\n\
                    stat::average_exec_per_sec:     19354\n\
                    stat::new_units_added:          12\n";
        let stats = parse_stats(text);
        assert_eq!(stats.executions, 600_001);
        assert_eq!(stats.per_second, 19_354);
        assert_eq!(stats.coverage, 1234);
        assert_eq!(stats.features, 5678);
    }
}
