//! Stateful analysis, one packet at a time: TCP streams (`tcp`), MPTCP connections (`mptcp`),
//! sequence coverage (`ranges`), directions (`direction`), and the read-only results
//! (`summary`).
//!
//! `Analyzer::feed_decoded` is the single entry point both sources use, with the result of
//! `decode::decode_into` for each raw packet: the offline reader decodes on another thread,
//! the live path just before feeding. Memory grows with the number of connections, not with
//! the number of packets.

pub mod direction;
pub mod keys;
pub mod mptcp;
pub mod ranges;
pub mod record;
pub mod summary;
pub mod tcp;

use self::record::{NoObserver, PacketObserver, PacketRecord};
use crate::decode::{self, MAX_MPTCP_OPTIONS, MptcpOption, Packet, tcp_flags};

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
    /// Packets with more MPTCP options than the `decode::MAX_MPTCP_OPTIONS` decoded: the
    /// options after those were ignored.
    pub mptcp_overflow_packets: u64,
    /// The first `MAX_KEPT_PROBLEMS` problems: "packet N: what".
    pub problems: Vec<String>,
    /// Problems found, kept or not: each packet counted above under a kind that names its
    /// packet (truncated options are counted only).
    pub problems_found: u64,
}

impl Diagnostics {
    fn problem(&mut self, number: u64, what: &str) {
        self.problems_found += 1;
        if self.problems.len() < MAX_KEPT_PROBLEMS {
            self.problems.push(format!("packet {number}: {what}"));
        }
    }
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

    /// Analyses one raw packet, given what `decode::decode_into` made of it: `Ok(Some)` with
    /// the packet it filled for a TCP segment, `Ok(None)` for a packet that is not TCP, or why
    /// it could not be decoded. `number` is the raw packet's (errors name it). The offline
    /// reader decodes on another thread; the live path and the one-thread loop decode just
    /// before calling this.
    ///
    /// Cost per TCP packet: one hash lookup for the stream, an append to its sequence ranges,
    /// and for MPTCP subflows a scan of a few remembered mappings. Nothing is allocated on this
    /// path except when a connection, stream, hole in a sequence space or event appears.
    #[inline]
    pub fn feed_decoded(
        &mut self,
        number: u64,
        decoded: Result<Option<&Packet>, &decode::DecodeError>,
    ) {
        self.feed_observed(number, decoded, &mut NoObserver);
    }

    /// `feed_decoded`, handing the record of each TCP segment, once analysed, to `observer`
    /// (`record` module). With `NoObserver` this is `feed_decoded`: no record is built.
    #[inline]
    pub fn feed_observed<O: PacketObserver + ?Sized>(
        &mut self,
        number: u64,
        decoded: Result<Option<&Packet>, &decode::DecodeError>,
        observer: &mut O,
    ) {
        self.diagnostics.packets += 1;
        match decoded {
            Ok(Some(packet)) => self.analyse(packet, observer),
            Ok(None) => self.diagnostics.other_packets += 1,
            Err(e) => {
                self.diagnostics.decode_errors += 1;
                self.diagnostics.problem(number, &e.to_string());
            }
        }
    }

    /// `feed_decoded` of a TCP segment, for tests that build packets by hand.
    #[cfg(test)]
    pub(crate) fn feed_tcp(&mut self, packet: &Packet) {
        self.feed_decoded(packet.number, Ok(Some(packet)));
    }

    #[inline]
    fn analyse<O: PacketObserver + ?Sized>(&mut self, packet: &Packet, observer: &mut O) {
        self.diagnostics.count_options(packet);
        let segment = self.tcp.feed(packet);
        let mut mptcp = None;
        self.mptcp.feed(packet, &segment, &self.tcp, &mut mptcp);
        if O::WANTS_RECORDS {
            observer.observe(&self.record(packet, &segment, mptcp));
        }
    }

    /// The record of a packet just analysed: the packet's own fields and what the TCP
    /// (`segment`) and MPTCP (`mptcp`) layers concluded.
    fn record(
        &self,
        packet: &Packet,
        segment: &tcp::Segment,
        mptcp: Option<record::MptcpRecord>,
    ) -> PacketRecord {
        let peer = self
            .tcp
            .stream(u64::from(segment.stream))
            .map(|s| &s.dirs[segment.dir.flip()]);
        PacketRecord {
            number: packet.number,
            ts_ns: packet.ts_ns,
            iface: packet.iface,
            src: packet.src,
            dst: packet.dst,
            src_port: packet.src_port,
            dst_port: packet.dst_port,
            tcp_stream: segment.stream,
            tcp_direction: segment.dir,
            seq: packet.seq,
            ack: packet.ack,
            // The segment's own sequence number (a SYN's is its ISN), as Wireshark's tcp.seq.
            relative_seq: segment.isn_pos.map(|isn| {
                let syn = u64::from(packet.has_flag(tcp_flags::SYN));
                segment.payload_pos.wrapping_sub(syn).wrapping_sub(isn)
            }),
            // The ack lies in the peer's sequence space: expanded there, like its own data.
            relative_ack: peer
                .filter(|_| packet.has_flag(tcp_flags::ACK))
                .and_then(|d| Some(d.position(packet.ack).wrapping_sub(d.isn_pos?))),
            payload_len: packet.payload_len,
            flags: packet.flags,
            mptcp_subtypes: record::subtype_bits(packet),
            tcp_retransmitted_bytes: segment.retransmitted_bytes,
            keep_alive: segment.keep_alive,
            ip_id: packet.ip_id,
            timestamps: packet.timestamps,
            mptcp,
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
                client: s.client,
                server: s.server,
                packets: s.packets,
                mptcp: s.mptcp,
                handshake_seen: s.handshake_seen,
            })
            .collect();
        summary::TcpList { tcp_connections }
    }

    pub fn tcp_summary(&self, stream: u64) -> Option<summary::TcpSummary> {
        let s = self.tcp.stream(stream)?;
        let directions = s
            .dirs
            .iter()
            .map(|(direction, d)| summary::TcpDirectionSummary {
                direction,
                packets: d.packets,
                duration_s: d
                    .first_ts_ns
                    .map_or(0.0, |first| d.last_ts_ns.saturating_sub(first) as f64 / 1e9),
                wire_bytes: d.wire_bytes,
                unique_bytes: d.unique_bytes(),
                retransmissions: d.retransmissions,
                retransmitted_bytes: d.retransmitted_bytes,
            })
            .collect();
        Some(summary::TcpSummary {
            stream,
            client: s.client,
            server: s.server,
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

    /// Whether connection `id` was still open at the last packet (`MptcpTracker::is_open`).
    pub fn mptcp_open(&self, id: u64) -> Option<bool> {
        self.mptcp.is_open(&self.tcp, id)
    }

    /// Per-direction data-level counters, per-subflow shares and the event timeline.
    pub fn mptcp_summary(&self, id: u64) -> Option<summary::MptcpSummary> {
        self.mptcp.summary(id)
    }
}

/// What the live driver's eviction (`crate::live`) asks: which analyzer holds a packet's
/// stream, and whether a stream is over.
impl Analyzer {
    /// Whether `packet` belongs to a stream or connection this analyzer already has: a known
    /// 4-tuple (not a SYN starting a new stream on it), or an MP_JOIN SYN naming a token of
    /// one of its connections.
    pub fn holds(&self, packet: &Packet) -> bool {
        self.tcp.holds(packet)
            || packet.mptcp.iter().any(|option| {
                matches!(option, MptcpOption::Join(decode::mptcp::JoinOption::Syn { token, .. })
                    if self.mptcp.knows_token(*token))
            })
    }

    /// Stream `stream`'s state: addresses, per-direction ISNs and sequence numbers as on the
    /// wire (what `pair::map` identifies a stream by in another capture).
    pub fn tcp_stream(&self, stream: u64) -> Option<&tcp::TcpStream> {
        self.tcp.stream(stream)
    }

    /// How many TCP streams were seen.
    pub fn tcp_stream_count(&self) -> usize {
        self.tcp.streams().len()
    }

    /// Whether stream `stream` is over: `Reset` (RST seen), `Fin` (FIN both ways), or None
    /// while it is open.
    pub fn tcp_end(&self, stream: u64) -> Option<StreamEnd> {
        let s = self.tcp.stream(stream)?;
        if s.reset() {
            Some(StreamEnd::Reset)
        } else if s.closed() {
            Some(StreamEnd::Fin)
        } else {
            None
        }
    }

    /// Time of the last packet of `stream`, either direction (ns since the epoch).
    pub fn tcp_last_packet_ns(&self, stream: u64) -> Option<u64> {
        let s = self.tcp.stream(stream)?;
        s.dirs.iter().map(|(_, d)| d.last_ts_ns).max()
    }
}

/// How a TCP stream ended (`Analyzer::tcp_end`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    Reset,
    Fin,
}

impl Diagnostics {
    /// Counts a TCP segment and the damage in its options.
    #[inline]
    fn count_options(&mut self, packet: &Packet) {
        self.tcp_packets += 1;
        if packet.options_truncated {
            self.truncated_options += 1;
        }
        if packet.mptcp_overflow > 0 {
            self.mptcp_overflow_packets += 1;
            let excess = packet.mptcp_overflow;
            self.problem(
                packet.number,
                &format!("{excess} MPTCP options beyond the first {MAX_MPTCP_OPTIONS} ignored"),
            );
        }
        for option in &packet.mptcp {
            match option {
                MptcpOption::Unknown { subtype, len } => {
                    self.unknown_mptcp_options += 1;
                    self.problem(
                        packet.number,
                        &format!("unknown MPTCP option subtype {subtype} (length {len})"),
                    );
                }
                MptcpOption::Malformed { subtype, len } => {
                    self.malformed_mptcp_options += 1;
                    self.problem(
                        packet.number,
                        &format!("malformed MPTCP option subtype {subtype} (length {len})"),
                    );
                }
                _ => {}
            }
        }
    }
}
