//! mptcp-tracer as a library: capture sources, a stateless decoder, a one-packet-at-a-time
//! analysis and the outputs. The binary (`main.rs`) is a thin layer over this.
//!
//! One path from packet to summary, shared by the live and the offline sources:
//! `source` yields `RawPacket`s → `decode::decode_into` fills a `Packet` →
//! `analysis::Analyzer::feed_decoded` updates state (`feed_raw` does both) → `analysis::summary`
//! builds the read-only results → `output` formats them. `offline` drives a capture file through
//! this (decoding on a second thread), `source::live` the ring buffer's events, `demo` (the
//! `demo` feature) a lab of the mptcp-lab crate.

pub mod analysis;
pub mod cli;
pub mod decode;
#[cfg(feature = "demo")]
pub mod demo;
pub mod offline;
pub mod output;
pub mod shell;
pub mod source;
