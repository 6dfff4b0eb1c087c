//! Stateful analysis, one packet at a time: TCP streams (`tcp`), MPTCP connections (`mptcp`),
//! sequence coverage (`ranges`), and the read-only results (`summary`).
//!
//! `Analyzer::feed_raw` is the single entry point both sources use: it decodes with
//! `decode::decode` and updates the state. Memory grows with the number of connections, not
//! with the number of packets.

pub mod keys;
pub mod mptcp;
pub mod ranges;
pub mod summary;
pub mod tcp;

use crate::{
    decode::{self, Decoded, Packet},
    source::RawPacket,
};

/// How many decode problems are kept verbatim (all are counted).
pub const MAX_KEPT_PROBLEMS: usize = 20;

/// What happened to the packets fed in, for the user's warnings and the exit code.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostics {
    /// Raw packets fed.
    pub packets: u64,
    /// Of those, decoded IPv4/IPv6 TCP segments.
    pub tcp_packets: u64,
    /// Not TCP (ignored).
    pub other_packets: u64,
    /// Packets that could not be decoded (malformed or truncated headers).
    pub decode_errors: u64,
    /// Packets whose TCP option walk stopped at an invalid option length.
    pub truncated_options: u64,
    /// MPTCP options of unknown subtype, and of known subtype with an impossible length.
    pub unknown_mptcp_options: u64,
    pub malformed_mptcp_options: u64,
    /// The first `MAX_KEPT_PROBLEMS` problems: "packet N: what".
    pub problems: Vec<String>,
}

/// The analysis state. Feed packets in capture order, then ask for summaries.
#[derive(Default)]
pub struct Analyzer {
    diagnostics: Diagnostics,
    tcp: tcp::TcpTracker,
    mptcp: mptcp::MptcpTracker,
}

impl Analyzer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes and analyses one raw packet from any source.
    pub fn feed_raw(&mut self, raw: &RawPacket<'_>) {
        self.diagnostics.packets += 1;
        match decode::decode(raw) {
            Ok(Decoded::Tcp(packet)) => self.feed(&packet),
            Ok(Decoded::NotTcp) => self.diagnostics.other_packets += 1,
            Err(e) => {
                self.diagnostics.decode_errors += 1;
                self.problem(raw.number, &e.to_string());
            }
        }
    }

    /// Analyses one decoded TCP segment.
    pub fn feed(&mut self, packet: &Packet) {
        self.diagnostics.tcp_packets += 1;
        todo!("analysis helper: {packet:?}")
    }

    fn problem(&mut self, number: u64, what: &str) {
        if self.diagnostics.problems.len() < MAX_KEPT_PROBLEMS {
            self.diagnostics.problems.push(format!("packet {number}: {what}"));
        }
    }

    pub fn diagnostics(&self) -> &Diagnostics {
        &self.diagnostics
    }

    pub fn tcp_list(&self) -> summary::TcpList {
        todo!()
    }

    pub fn tcp_summary(&self, stream: u64) -> Option<summary::TcpSummary> {
        todo!("{stream}")
    }

    pub fn mptcp_list(&self) -> summary::MptcpList {
        todo!()
    }

    /// `full` adds per-subflow detail rows in tables; the JSON always has everything.
    pub fn mptcp_summary(&self, id: u64) -> Option<summary::MptcpSummary> {
        todo!("{id}")
    }
}
