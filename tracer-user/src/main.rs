//! The `mptcp-tracer` binary: everything happens in the library; `cli::main` turns errors into
//! messages and the exit code.

fn main() {
    std::process::exit(mptcp_tracer::cli::main())
}
