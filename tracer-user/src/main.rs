fn main() -> anyhow::Result<()> {
    std::process::exit(mptcp_tracer::cli::main()?)
}
