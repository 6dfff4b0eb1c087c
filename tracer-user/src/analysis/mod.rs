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
    decode::{self, Decoded, MptcpOption, Packet},
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
    ///
    /// Cost per packet: one hash lookup for the stream, an append to its sequence ranges, and
    /// for MPTCP subflows a scan of a few remembered mappings. Nothing is allocated on this path
    /// except when a connection, stream, hole in a sequence space or event appears.
    pub fn feed(&mut self, packet: &Packet) {
        self.diagnostics.tcp_packets += 1;
        if packet.options_truncated {
            self.diagnostics.truncated_options += 1;
        }
        for option in &packet.mptcp {
            match option {
                MptcpOption::Unknown { subtype, len } => {
                    self.diagnostics.unknown_mptcp_options += 1;
                    self.problem(
                        packet.number,
                        &format!("unknown MPTCP option subtype {subtype} (length {len})"),
                    );
                }
                MptcpOption::Malformed { subtype, len } => {
                    self.diagnostics.malformed_mptcp_options += 1;
                    self.problem(
                        packet.number,
                        &format!("malformed MPTCP option subtype {subtype} (length {len})"),
                    );
                }
                _ => {}
            }
        }
        let segment = self.tcp.feed(packet);
        self.mptcp.feed(packet, &segment, &self.tcp);
    }

    fn problem(&mut self, number: u64, what: &str) {
        if self.diagnostics.problems.len() < MAX_KEPT_PROBLEMS {
            self.diagnostics
                .problems
                .push(format!("packet {number}: {what}"));
        }
    }

    pub fn diagnostics(&self) -> &Diagnostics {
        &self.diagnostics
    }

    /// Every TCP stream, in stream order.
    pub fn tcp_list(&self) -> summary::TcpList {
        let tcp_connections = self
            .tcp
            .streams()
            .iter()
            .enumerate()
            .map(|(stream, s)| summary::TcpConnectionInfo {
                stream: stream as u64,
                client: s.client.to_string(),
                server: s.server.to_string(),
                packets: s.packets,
                mptcp: s.mptcp,
                handshake_seen: s.handshake_seen,
            })
            .collect();
        summary::TcpList { tcp_connections }
    }

    pub fn tcp_summary(&self, stream: u64) -> Option<summary::TcpSummary> {
        let s = self.tcp.stream(stream)?;
        let directions = [tcp::CLIENT_TO_SERVER, tcp::SERVER_TO_CLIENT]
            .into_iter()
            .map(|dir| {
                let d = &s.dirs[dir];
                summary::TcpDirectionSummary {
                    direction: tcp::direction_name(dir),
                    packets: d.packets,
                    duration_s: d
                        .first_ts_ns
                        .map_or(0.0, |first| d.last_ts_ns.saturating_sub(first) as f64 / 1e9),
                    wire_bytes: d.wire_bytes,
                    unique_bytes: d.unique_bytes(),
                    retransmissions: d.retransmissions,
                    retransmitted_bytes: d.retransmitted_bytes,
                }
            })
            .collect();
        Some(summary::TcpSummary {
            stream,
            client: s.client.to_string(),
            server: s.server.to_string(),
            handshake_seen: s.handshake_seen,
            directions,
        })
    }

    /// Every MPTCP connection, in creation order, and the subflows no connection claimed.
    pub fn mptcp_list(&self) -> summary::MptcpList {
        let (mptcp_connections, orphan_subflows) = self.mptcp.list(&self.tcp);
        summary::MptcpList {
            mptcp_connections,
            orphan_subflows,
        }
    }

    /// One connection's subflows, keys and tokens (as in `mptcp_list`).
    pub fn mptcp_info(&self, id: u64) -> Option<summary::MptcpConnectionInfo> {
        self.mptcp.info(&self.tcp, id)
    }

    /// Per-direction data-level counters, per-subflow shares and the event timeline.
    pub fn mptcp_summary(&self, id: u64) -> Option<summary::MptcpSummary> {
        self.mptcp.summary(id)
    }
}
