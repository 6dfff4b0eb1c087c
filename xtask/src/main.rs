//! `cargo xtask <command>`: project automation that needs more than cargo.

mod captures;
mod setup;

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
    /// Regenerate the MPTCP v1 test captures and their truth files under tests/data/.
    MakeCaptures {
        /// Only the scenarios whose name contains this.
        #[arg(long)]
        only: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match Cli::parse().command {
        Task::Setup => setup::setup(),
        Task::Test { cargo_args } => setup::test(&cargo_args),
        Task::MakeCaptures { only } => captures::make_captures(only.as_deref()),
    }
}
