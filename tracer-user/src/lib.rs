//! mptcp-tracer as a library: capture sources, a stateless decoder, a one-packet-at-a-time
//! analysis and the outputs. The binary (`main.rs`) is a thin layer over this.
//!
//! One path from packet to summary, shared by the live and the offline sources:
//! `source` yields `RawPacket`s → `decode::decode_into` fills a `Packet` →
//! `analysis::Analyzer::feed_decoded` updates state → `analysis::summary`
//! builds the read-only results → `output` formats them. `offline` drives a capture file through
//! this (decoding on a second thread), `live` the ring buffer's events of `source::live`, `demo`
//! a lab; `metrics` serves a trace's counters and connections to Prometheus.
//!
//! The analysis's per-packet records (`analysis::record`) feed the rest: `export` writes them as
//! CSV or Parquet rows, `plot` draws them (SVG/PNG with plotters), `reorder` walks them as the
//! receiver's data-level reassembly, and `pair` matches two captures' records (which stream and
//! connection is which, one-way delays, losses, reinjections' worth).
//!
//! The front ends, `cli` (one-shot commands) and `shell` (the prompt), parse their lines and
//! answer through `query`.

pub mod analysis;
pub mod cli;
pub mod decode;
#[cfg(feature = "demo")]
pub mod demo;
pub mod export;
pub mod live;
pub mod metrics;
pub mod offline;
pub mod output;
pub mod pair;
pub mod plot;
pub mod query;
pub mod reorder;
pub mod shell;
pub mod source;
