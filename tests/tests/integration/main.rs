//! Integration tests: one target, modules by area. Shared helpers are in `tests/src/lib.rs`.
//!
//! - `architecture`: the library's modules depend on each other one way (no cycle).
//! - `own_captures`: tests/data captures against their truth files (application byte counts,
//!   `ip mptcp monitor`, tcpdump).
//! - `tshark`: connections, keys and tokens against tshark's dissection, with the cases where
//!   tshark is known to be wrong spelled out.
//! - `shared_captures`: the third-party MPTCP v0 captures.
//! - `mptcp_coverage`: every stream with MPTCP options is listed once (subflow or orphan),
//!   on every capture; the orphan kinds on a synthetic capture.
//! - `plot`: every plot kind as SVG (XML, labels, one dot per point of each subflow) and PNG
//!   (size, not blank), points counted against the analysis; the shell's plot; bad input.
//! - `reorder`: `reorder-buffer` against a naive walk of the exported rows, mptcp-summary's
//!   unique and acknowledged bytes and the application's byte counts; the shell's answer.
//! - `malformed`: damaged files give errors that name the file and packet, never a panic.
//! - `shell`: the interactive shell in batch mode gives the one-shot CLI's answers.
//! - `export`: CSV and Parquet rows against list-tcp, mptcp-summary and each other; bad input;
//!   `--summaries` against mptcp-summary and the application's byte counts; the shell's export.
//! - `lab`: the namespace lab itself (transfer counts, monitor, capture, cleanup).
//! - `live`: `trace` end-to-end in the lab against tcpdump, the application's byte counts and
//!   `ip mptcp monitor`; refusals before attaching.
//! - `live_faults`: `trace` under faults: other programs' and a second tracer's TC filters
//!   survive it, a reader that goes away ends it, lost events reach the JSON, `--all-tcp`
//!   lists plain TCP, a killed tracer's filters are removed by the next trace (restart safety)
//!   or by `trace --cleanup`, and nobody else's.
//! - `metrics`: `trace --metrics`: the OpenMetrics text and its unique bytes against the
//!   application's counts; a real Prometheus scraping it, and `promtool check metrics`.
//! - `service`: the systemd unit in `contrib/`: systemd accepts it, and its command line traces
//!   a lab transfer with the application's bytes and serves the README's scrape target.
//! - `long_run`: `trace --long-run` reports many short connections once each, in flat memory.
//! - `two_captures`: client and server captures of one connection (map-tcp, map-mptcp, owd,
//!   qualify-reinjections) against tshark's keys and ISNs and a router's drop counter.

mod architecture;
mod export;
mod lab;
mod live;
mod live_faults;
mod long_run;
mod malformed;
mod metrics;
mod mptcp_coverage;
mod own_captures;
mod plot;
mod reorder;
mod service;
mod shared_captures;
mod shell;
mod tshark;
mod two_captures;
