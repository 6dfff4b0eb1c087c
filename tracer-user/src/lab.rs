//! A small MPTCP lab in network namespaces: two hosts joined by several veth paths, the in-kernel
//! path manager configured, and transfers whose byte counts the application knows. Used by
//! `mptcp-tracer demo`, the integration tests, the capture-making script and the benchmarks.
