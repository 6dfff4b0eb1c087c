//! `cargo xtask <command>`: project automation that needs more than cargo.

mod bare_walk;
mod bench_live;
mod bench_offline;
mod captures;
mod fuzz;
mod setup;

use std::{os::unix::process::CommandExt as _, process::Command};

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "mptcp-tracer's build and test automation")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what is missing: nightly + rust-src, bpf-linker, tshark, tcpdump, nftables, ...
    Setup,
    /// setup, then build and run every test of the workspace.
    Test {
        /// Extra arguments for `cargo test`.
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
    /// Offline analysis speed and memory on a large synthetic capture, against tshark; and
    /// two-capture `owd` on a synthetic capture pair.
    BenchOffline {
        /// Reuse this capture instead of generating bench-data/offline.pcap.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// Size of the generated capture in MB.
        #[arg(long, default_value_t = 1100)]
        size_mb: u64,
        /// Runs of each mptcp-tracer command (the best is reported).
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Give tshark only the first N packets (0: the whole file); its rate is computed on those.
        #[arg(long, default_value_t = 0)]
        tshark_packets: u64,
        /// Leave out the two-capture (owd) line and the generation of its capture pair
        /// (bench-data/offline-pair-*.pcap, about --size-mb in all, made once).
        #[arg(long)]
        skip_pair: bool,
    },
    /// Regenerate the MPTCP v1 test captures and their truth files under tests/data/.
    MakeCaptures {
        /// Only the scenarios whose name contains this.
        #[arg(long)]
        only: Option<String>,
    },
    /// Build the release binary and run `mptcp-tracer demo` (needs root).
    Demo,
    /// Measure an MPTCP transfer untraced, traced by mptcp-tracer and under tcpdump (needs
    /// root; about 3 minutes).
    BenchLive(bench_live::BenchArgs),
    /// bench-offline's bare walk of one capture, in a process of its own (prints "PACKETS
    /// SECONDS").
    #[command(hide = true)]
    BareWalk { file: std::path::PathBuf },
    /// Fuzz with cargo-fuzz (nightly; installs cargo-fuzz if missing): `--smoke` runs every
    /// target 30 s from its seed corpus, `TARGET -- ARGS` one target with libFuzzer arguments.
    Fuzz {
        /// Every target for 30 s; fails on a crash.
        #[arg(long, conflicts_with = "target")]
        smoke: bool,
        /// capture, packet or mptcp.
        #[arg(required_unless_present = "smoke")]
        target: Option<String>,
        /// libFuzzer arguments, e.g. `-runs=1000000` or `-max_total_time=600`.
        #[arg(last = true)]
        libfuzzer_args: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match Cli::parse().command {
        Task::Setup => setup::setup(),
        Task::Test { cargo_args } => setup::test(&cargo_args),
        Task::BenchOffline {
            file,
            size_mb,
            rounds,
            tshark_packets,
            skip_pair,
        } => bench_offline::run(
            &setup::workspace_root(),
            &bench_offline::Options {
                file,
                size_mb,
                rounds,
                tshark_packets,
                skip_pair,
            },
        ),
        Task::MakeCaptures { only } => captures::make_captures(only.as_deref()),
        Task::Demo => demo(),
        Task::BenchLive(args) => bench_live::bench_live(&args),
        Task::BareWalk { file } => {
            let walk = bare_walk::walk(&file)?;
            println!("{} {}", walk.packets, walk.seconds);
            Ok(())
        }
        Task::Fuzz {
            smoke,
            target,
            libfuzzer_args,
        } => match target {
            Some(target) if !smoke => fuzz::run(&setup::workspace_root(), &target, &libfuzzer_args),
            _ => fuzz::smoke(&setup::workspace_root()),
        },
    }
}

/// Builds the release binary and becomes `mptcp-tracer demo`: exec, not a child, so that Ctrl-C
/// reaches only the demo, which removes its lab before it exits, and its exit code is ours.
fn demo() -> anyhow::Result<()> {
    let binary = bench_live::build_tracer()?;
    let error = Command::new(&binary).arg("demo").exec();
    Err(error).with_context(|| format!("running {} demo", binary.display()))
}
