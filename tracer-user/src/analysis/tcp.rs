//! TCP streams: numbering as Wireshark's `tcp.stream`, client/server roles, sequence tracking.
//!
//! Definitions (quoted by the README):
//! - **Stream**: TCP segments are grouped by their unordered 4-tuple (addresses and ports).
//!   Streams are numbered from 0 in order of first appearance, like Wireshark's `tcp.stream`.
//!   A SYN without ACK on a known 4-tuple starts a new stream when the known one is closed (RST
//!   seen, or FIN from both sides) or when the SYN's sequence number differs from the known
//!   client ISN (port reuse); a retransmitted SYN (same ISN) stays in its stream.
//! - **Client**: the sender of the SYN (SYN without ACK). When the first packet is a SYN/ACK,
//!   its receiver. Without either, the sender of the first packet, and `handshake_seen` is
//!   false. A SYN that arrives after other packets of its (open) stream completes it: the
//!   stream keeps its number, `handshake_seen` becomes true, and its sender becomes the client.
//! - **Sequence positions**: 32-bit sequence numbers are expanded to 64 bits, each to the value
//!   closest to the highest one seen in its direction, so a stream may carry more than 4 GiB
//!   and cross the 2^32 wraparound. SYN and FIN occupy a sequence number but no payload byte.
//! - **unique_bytes**: size of the union of the `[seq, seq + payload_len)` ranges of a
//!   direction. **Retransmission**: a segment with payload that overlaps bytes already
//!   covered; `retransmitted_bytes` counts the overlapping bytes. A keep-alive probe (as
//!   Wireshark: at most 1 byte, sequence number one below the next expected, no SYN/FIN/RST)
//!   is not a retransmission.
//! - **wire_bytes**: sum of TCP payload lengths (retransmissions included).

use std::net::{IpAddr, SocketAddr};

use rustc_hash::FxHashMap;

use super::{
    direction::{Direction, PerDirection},
    ranges::RangeSet,
};
use crate::decode::{MptcpOption, Packet, tcp_flags};

/// Where the first sequence number seen in a direction is placed in the 64-bit position space.
/// Leaving 2^32 below it lets segments sent before the first one seen (capture started
/// mid-stream, reordering) keep non-negative positions.
const ORIGIN: u64 = 1 << 32;

/// The 32-bit value `low` expanded to the 64-bit value with the same low 32 bits that is
/// closest to `reference`.
pub fn expand32(low: u32, reference: u64) -> u64 {
    let delta = low.wrapping_sub(reference as u32) as i32;
    reference.wrapping_add(i64::from(delta) as u64)
}

/// The unordered 4-tuple, endpoints sorted so both directions give the same key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FlowKey {
    low: (u128, u16),
    high: (u128, u16),
}

/// Which endpoint of its `FlowKey` a packet's source (or a stream's client) is. A packet
/// whose two endpoints are equal has both on the low side, so every such packet goes
/// client to server, as an address comparison would say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sides {
    src_high: bool,
    dst_high: bool,
}

impl FlowKey {
    fn of(packet: &Packet) -> (Self, Sides) {
        // Plain integers hash and compare faster than `IpAddr`; IPv4 becomes its IPv4-mapped
        // IPv6 address, which no IPv6 TCP packet uses as a real address.
        let a = (flat(packet.src), packet.src_port);
        let b = (flat(packet.dst), packet.dst_port);
        let order = a.cmp(&b);
        let sides = Sides {
            src_high: order.is_gt(),
            dst_high: order.is_lt(),
        };
        let key = if order.is_le() {
            Self { low: a, high: b }
        } else {
            Self { low: b, high: a }
        };
        (key, sides)
    }
}

fn flat(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// One direction of a stream.
#[derive(Clone, Debug, Default)]
pub struct TcpDirection {
    pub packets: u64,
    pub wire_bytes: u64,
    pub first_ts_ns: Option<u64>,
    pub last_ts_ns: u64,
    /// Sequence number of the first packet of this direction, as on the wire: with the ISN,
    /// what identifies a stream across two captures (`pair::map`).
    pub first_seq: Option<u32>,
    /// (32-bit sequence number, position) of the highest sequence number seen, the reference
    /// for expanding the next one. None until the first packet of this direction.
    highest: Option<(u32, u64)>,
    /// Position of the ISN (the SYN's sequence number), once a SYN or SYN/ACK was seen; the
    /// server's ISN is also learnt from a SYN/ACK and the client's from a SYN/ACK's ack.
    pub isn_pos: Option<u64>,
    /// Payload bytes covered (positions).
    covered: RangeSet,
    pub retransmissions: u64,
    pub retransmitted_bytes: u64,
    fin_seen: bool,
}

impl TcpDirection {
    /// Position of a sequence number in this direction, without updating the reference.
    pub(super) fn position(&self, seq: u32) -> u64 {
        match self.highest {
            // Closest to the reference: the signed 32-bit distance from its sequence number.
            Some((reference, pos)) => pos.wrapping_add(seq.wrapping_sub(reference) as i32 as u64),
            None => ORIGIN,
        }
    }

    fn advance(&mut self, seq: u32, pos: u64) {
        match self.highest {
            Some((_, highest)) if highest >= pos => {}
            _ => self.highest = Some((seq, pos)),
        }
    }

    pub fn unique_bytes(&self) -> u64 {
        self.covered.len()
    }

    /// The ISN as on the wire (the SYN's sequence number), once known.
    pub fn isn(&self) -> Option<u32> {
        let (reference, pos) = self.highest?;
        let isn_pos = self.isn_pos?;
        // Positions and wire numbers advance together modulo 2^32.
        Some(reference.wrapping_sub(pos.wrapping_sub(isn_pos) as u32))
    }

    /// The highest sequence number seen, as on the wire.
    pub fn highest_seq(&self) -> Option<u32> {
        self.highest.map(|(seq, _)| seq)
    }

    /// Whether every payload position in `[start, start + len)` was carried at least once.
    pub fn carried(&self, start: u64, len: u64) -> bool {
        self.covered.covers(start, len)
    }

    /// A direction whose payload covered `[start, end)`, for tests of what uses coverage.
    #[cfg(test)]
    pub(crate) fn covering(start: u64, end: u64) -> Self {
        let mut direction = Self::default();
        direction.covered.insert(start, end.saturating_sub(start));
        direction
    }
}

/// One TCP stream.
#[derive(Clone, Debug)]
pub struct TcpStream {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub handshake_seen: bool,
    pub packets: u64,
    pub mptcp: bool,
    pub dirs: PerDirection<TcpDirection>,
    client_isn: Option<u32>,
    rst_seen: bool,
    /// The client is the high endpoint of the stream's `FlowKey`: a packet's direction is a
    /// comparison of two booleans instead of two socket addresses.
    client_high: bool,
}

impl TcpStream {
    /// Reset, or FIN seen both ways.
    pub(super) fn closed(&self) -> bool {
        self.rst_seen || self.dirs.iter().all(|(_, d)| d.fin_seen)
    }

    pub(super) fn reset(&self) -> bool {
        self.rst_seen
    }
}

/// What `TcpTracker::feed` learnt about one packet, for the MPTCP layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub stream: u32,
    pub dir: Direction,
    /// The packet created the stream.
    pub new_stream: bool,
    /// A late SYN swapped client and server of an existing stream (directions flipped).
    pub roles_swapped: bool,
    /// Position of the first payload byte (after the SYN's sequence number, if any).
    pub payload_pos: u64,
    /// Position of this direction's ISN, if known.
    pub isn_pos: Option<u64>,
    /// Payload bytes of this segment already covered before (retransmitted).
    pub retransmitted_bytes: u64,
    /// A keep-alive probe (see `TcpTracker::feed`): its byte is not data.
    pub keep_alive: bool,
}

/// All TCP streams seen.
#[derive(Default)]
pub struct TcpTracker {
    by_tuple: FxHashMap<FlowKey, u32>,
    /// The last lookup: packets come in bursts of one flow.
    last: Option<(FlowKey, u32)>,
    streams: Vec<TcpStream>,
}

impl TcpTracker {
    pub fn streams(&self) -> &[TcpStream] {
        &self.streams
    }

    pub fn stream(&self, stream: u64) -> Option<&TcpStream> {
        usize::try_from(stream)
            .ok()
            .and_then(|i| self.streams.get(i))
    }

    /// Whether `packet` would join a stream this tracker already has (its 4-tuple is known
    /// and it is not a SYN reusing a closed or different-ISN stream): the live driver's
    /// eviction routes packets to the analyzer that knows their stream.
    pub fn holds(&self, packet: &Packet) -> bool {
        let (key, _) = FlowKey::of(packet);
        let syn_only = packet.has_flag(tcp_flags::SYN) && !packet.has_flag(tcp_flags::ACK);
        self.by_tuple.get(&key).is_some_and(|&index| {
            let stream = &self.streams[index as usize];
            !(syn_only
                && match stream.client_isn {
                    Some(isn) => isn != packet.seq,
                    None => stream.closed(),
                })
        })
    }

    /// Assigns the packet to a stream and updates its counters.
    #[inline]
    pub fn feed(&mut self, packet: &Packet) -> Segment {
        let syn = packet.has_flag(tcp_flags::SYN);
        let syn_only = syn && !packet.has_flag(tcp_flags::ACK);
        let (index, new_stream, sides) = self.stream_of(packet);
        let stream = &mut self.streams[index as usize];
        // A SYN after other packets of an open stream: its sender is the client.
        let roles_swapped = syn_only && stream.late_syn(sides);
        let dir = if sides.src_high == stream.client_high {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        };
        stream.packets += u64::from(packet.segments);
        stream.mptcp |= !packet.mptcp.is_empty();
        stream.rst_seen |= packet.has_flag(tcp_flags::RST);
        if syn_only {
            stream.client_isn = Some(packet.seq);
        }
        if syn && !syn_only {
            stream.dirs[Direction::ClientToServer].isn_from_synack(packet.ack);
        }
        let d = &mut stream.dirs[dir];
        let carried = d.carry(packet);
        Segment {
            stream: index,
            dir,
            new_stream,
            roles_swapped,
            payload_pos: carried.payload_pos,
            isn_pos: d.isn_pos,
            retransmitted_bytes: carried.retransmitted_bytes,
            keep_alive: carried.keep_alive,
        }
    }

    /// The stream a packet belongs to (a new one for a new 4-tuple or a reused one), whether
    /// it is new, and which sides of the 4-tuple the packet's endpoints are.
    #[inline]
    fn stream_of(&mut self, packet: &Packet) -> (u32, bool, Sides) {
        let syn = packet.has_flag(tcp_flags::SYN);
        let ack = packet.has_flag(tcp_flags::ACK);
        let syn_only = syn && !ack;
        let (key, sides) = FlowKey::of(packet);
        let known = match self.last {
            Some((last, index)) if last == key => Some(index),
            _ => self.by_tuple.get(&key).copied(),
        };
        let existing = known.filter(|&index| {
            let stream = &self.streams[index as usize];
            let reused = syn_only
                && match stream.client_isn {
                    Some(isn) => isn != packet.seq,
                    None => stream.closed(),
                };
            !reused
        });
        let (index, new_stream) = match existing {
            Some(index) => (index, false),
            None => {
                let index = self.streams.len() as u32;
                self.streams.push(TcpStream::new(packet, sides, syn && ack));
                self.by_tuple.insert(key, index);
                (index, true)
            }
        };
        self.last = Some((key, index));
        (index, new_stream, sides)
    }
}

impl TcpStream {
    /// A stream whose first packet is `packet`: its sender is the client, unless it is a
    /// SYN/ACK (`synack`), whose receiver is.
    fn new(packet: &Packet, sides: Sides, synack: bool) -> Self {
        let src = SocketAddr::new(packet.src, packet.src_port);
        let dst = SocketAddr::new(packet.dst, packet.dst_port);
        let (client, server, client_high) = if synack {
            (dst, src, sides.dst_high)
        } else {
            (src, dst, sides.src_high)
        };
        TcpStream {
            client,
            server,
            handshake_seen: packet.has_flag(tcp_flags::SYN) && !synack,
            packets: 0,
            mptcp: false,
            dirs: PerDirection::default(),
            client_isn: None,
            rst_seen: false,
            client_high,
        }
    }

    /// A SYN (without ACK) from the `sides.src_high` endpoint: the handshake is seen, and if
    /// it is the first SYN and comes from the endpoint taken as server, client and server
    /// swap. Returns whether they did.
    fn late_syn(&mut self, sides: Sides) -> bool {
        if self.handshake_seen {
            return false;
        }
        self.handshake_seen = true;
        if self.client_high == sides.src_high {
            return false;
        }
        std::mem::swap(&mut self.client, &mut self.server);
        self.client_high = !self.client_high;
        self.dirs.swap();
        true
    }
}

/// What one segment's payload was to its direction.
struct Payload {
    payload_pos: u64,
    retransmitted_bytes: u64,
    keep_alive: bool,
}

impl TcpDirection {
    /// The client's ISN is the SYN/ACK's ack − 1: recorded if its SYN was not seen.
    fn isn_from_synack(&mut self, ack: u32) {
        if self.isn_pos.is_none() {
            let isn = ack.wrapping_sub(1);
            let pos = self.position(isn);
            self.isn_pos = Some(pos);
            self.advance(isn, pos);
        }
    }

    /// Counts a packet of this direction and the sequence range its payload covers.
    #[inline]
    fn carry(&mut self, packet: &Packet) -> Payload {
        let syn = packet.has_flag(tcp_flags::SYN);
        let pos = self.position(packet.seq);
        self.advance(packet.seq, pos);
        if syn {
            self.isn_pos = Some(pos);
        }
        self.packets += u64::from(packet.segments);
        self.first_ts_ns.get_or_insert(packet.ts_ns);
        self.first_seq.get_or_insert(packet.seq);
        self.last_ts_ns = self.last_ts_ns.max(packet.ts_ns);
        self.fin_seen |= packet.has_flag(tcp_flags::FIN);
        let payload_pos = pos.wrapping_add(u64::from(syn));
        let len = u64::from(packet.payload_len);
        let keep_alive = self.keep_alive(packet, pos, len);
        let mut retransmitted_bytes = 0;
        if len > 0 {
            self.wire_bytes += len;
            let new = self.covered.insert(payload_pos, len);
            if new < len && !keep_alive {
                retransmitted_bytes = len - new;
                self.retransmissions += 1;
                self.retransmitted_bytes += retransmitted_bytes;
            }
            // Reference the end of the payload so the next segment expands near it.
            let seq_end = packet
                .seq
                .wrapping_add(u32::from(syn))
                .wrapping_add(packet.payload_len);
            self.advance(seq_end, payload_pos.wrapping_add(len));
        }
        Payload {
            payload_pos,
            retransmitted_bytes,
            keep_alive,
        }
    }

    /// Wireshark's keep-alive: at most one byte, one before the next expected sequence
    /// number, no SYN/FIN/RST. It re-sends an old byte on purpose: not a retransmission.
    /// A segment whose DSS maps its byte to data is data, however short (server_2.pcap frame
    /// 2145 re-sends a 1-byte mapping; tshark too calls it a retransmission).
    fn keep_alive(&self, packet: &Packet, pos: u64, len: u64) -> bool {
        len <= 1
            && packet.flags & (tcp_flags::SYN | tcp_flags::FIN | tcp_flags::RST) == 0
            && self.covered.end() == Some(pos.wrapping_add(1))
            && !packet.mptcp.iter().any(|o| {
                matches!(
                    o,
                    MptcpOption::Dss {
                        mapping: Some(_),
                        ..
                    }
                )
            })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use arrayvec::ArrayVec;

    use super::*;

    pub const A: &str = "10.0.0.1";
    pub const B: &str = "10.0.0.2";

    /// Builds `Packet`s by hand.
    pub struct Pkt(pub Packet);

    pub fn pkt(src: &str, sport: u16, dst: &str, dport: u16) -> Pkt {
        Pkt(Packet {
            number: 0,
            ts_ns: 0,
            iface: 0,
            src: src.parse().expect("test address"),
            dst: dst.parse().expect("test address"),
            src_port: sport,
            dst_port: dport,
            seq: 0,
            ack: 0,
            flags: tcp_flags::ACK,
            window: 1000,
            payload_len: 0,
            mptcp: ArrayVec::new(),
            mptcp_overflow: 0,
            options_truncated: false,
            segments: 1,
            ip_id: None,
            timestamps: None,
        })
    }

    impl Pkt {
        pub fn seq(mut self, seq: u32) -> Self {
            self.0.seq = seq;
            self
        }
        pub fn ack(mut self, ack: u32) -> Self {
            self.0.ack = ack;
            self
        }
        pub fn flags(mut self, flags: u8) -> Self {
            self.0.flags = flags;
            self
        }
        pub fn len(mut self, len: u32) -> Self {
            self.0.payload_len = len;
            self
        }
        pub fn at(mut self, number: u64, ts_ns: u64) -> Self {
            self.0.number = number;
            self.0.ts_ns = ts_ns;
            self
        }
        pub fn opt(mut self, option: MptcpOption) -> Self {
            self.0.mptcp.push(option);
            self
        }
        pub fn done(self) -> Packet {
            self.0
        }
    }

    const SYN: u8 = tcp_flags::SYN;
    const SYNACK: u8 = tcp_flags::SYN | tcp_flags::ACK;
    const ACK: u8 = tcp_flags::ACK;

    #[test]
    fn expand32_picks_closest() {
        assert_eq!(expand32(5, 0xffff_fff0), 0x1_0000_0005);
        assert_eq!(expand32(0xffff_fff0, 0x1_0000_0005), 0xffff_fff0);
        assert_eq!(expand32(100, 50), 100);
    }

    #[test]
    fn handshake_roles_and_unique_bytes() {
        let mut t = TcpTracker::default();
        // Server's SYN/ACK answers a SYN with ISN 1000; server ISN 5000.
        t.feed(&pkt(A, 40000, B, 80).seq(1000).flags(SYN).done());
        t.feed(
            &pkt(B, 80, A, 40000)
                .seq(5000)
                .ack(1001)
                .flags(SYNACK)
                .done(),
        );
        t.feed(&pkt(A, 40000, B, 80).seq(1001).ack(5001).len(100).done());
        t.feed(&pkt(A, 40000, B, 80).seq(1101).ack(5001).len(100).done());
        // Retransmission of the first 100 bytes plus 50 new: [1051, 1251) overlaps 150 bytes of
        // [1001, 1201) → 150 retransmitted bytes, 50 new; unique = 250.
        let seg = t.feed(&pkt(A, 40000, B, 80).seq(1051).ack(5001).len(200).done());
        assert_eq!(seg.retransmitted_bytes, 150);
        let s = &t.streams()[0];
        assert_eq!(s.client.to_string(), "10.0.0.1:40000");
        assert!(s.handshake_seen);
        let c2s = &s.dirs[Direction::ClientToServer];
        assert_eq!(
            (c2s.packets, c2s.wire_bytes, c2s.unique_bytes()),
            (4, 400, 250)
        );
        assert_eq!((c2s.retransmissions, c2s.retransmitted_bytes), (1, 150));
        // Relative sequence of the first payload byte is 1.
        assert_eq!(seg.payload_pos - seg.isn_pos.expect("isn known"), 51);
    }

    #[test]
    fn keep_alive_is_not_a_retransmission() {
        let mut t = TcpTracker::default();
        t.feed(&pkt(A, 1, B, 2).seq(100).flags(SYN).done());
        t.feed(&pkt(A, 1, B, 2).seq(101).len(5).done()); // bytes 101..106
        // Keep-alive: 1 byte at 105 = next expected (106) − 1.
        let seg = t.feed(&pkt(A, 1, B, 2).seq(105).len(1).done());
        assert!(seg.keep_alive);
        // A real 1-byte retransmission elsewhere (103) is one.
        let seg = t.feed(&pkt(A, 1, B, 2).seq(103).len(1).done());
        assert!(!seg.keep_alive);
        let d = &t.streams()[0].dirs[Direction::ClientToServer];
        assert_eq!(
            (d.wire_bytes, d.unique_bytes(), d.retransmissions),
            (7, 5, 1)
        );
    }

    #[test]
    fn sequence_wraparound() {
        let mut t = TcpTracker::default();
        // ISN 0xFFFF_FF00: 0x100 − 1 = 255 payload bytes fit before the wrap.
        t.feed(&pkt(A, 1, B, 2).seq(0xffff_ff00).flags(SYN).done());
        t.feed(&pkt(A, 1, B, 2).seq(0xffff_ff01).len(1000).done());
        // Next segment starts at 0xFFFF_FF01 + 1000 = 0x1_0000_02E9 → 32-bit 0x2E9.
        let seg = t.feed(&pkt(A, 1, B, 2).seq(0x2e9).len(1000).done());
        assert_eq!(seg.retransmitted_bytes, 0);
        assert_eq!(seg.payload_pos - seg.isn_pos.expect("isn"), 1001);
        let d = &t.streams()[0].dirs[Direction::ClientToServer];
        assert_eq!(d.unique_bytes(), 2000);
        assert_eq!(d.retransmissions, 0);
    }

    #[test]
    fn reused_tuple_gets_new_stream_numbers() {
        let mut t = TcpTracker::default();
        t.feed(&pkt(A, 1, B, 2).seq(100).flags(SYN).done()); // stream 0
        t.feed(&pkt(A, 3, B, 2).seq(100).flags(SYN).done()); // stream 1: another tuple
        // Retransmitted SYN (same ISN): still stream 0.
        assert_eq!(
            t.feed(&pkt(A, 1, B, 2).seq(100).flags(SYN).done()).stream,
            0
        );
        // Close stream 0 with FIN from both sides.
        t.feed(&pkt(A, 1, B, 2).seq(101).flags(ACK | tcp_flags::FIN).done());
        t.feed(&pkt(B, 2, A, 1).seq(900).flags(ACK | tcp_flags::FIN).done());
        // New SYN with another ISN → stream 2, and later packets of the tuple follow it.
        let seg = t.feed(&pkt(A, 1, B, 2).seq(7000).flags(SYN).done());
        assert_eq!((seg.stream, seg.new_stream), (2, true));
        assert_eq!(
            t.feed(&pkt(B, 2, A, 1).seq(1).ack(7001).flags(SYNACK).done())
                .stream,
            2
        );
        // Port reuse without a close: a SYN with a different ISN also starts a new stream (3).
        assert_eq!(
            t.feed(&pkt(A, 3, B, 2).seq(555).flags(SYN).done()).stream,
            3
        );
        assert_eq!(t.streams().len(), 4);
        assert_eq!(t.streams()[2].packets, 2);
    }

    #[test]
    fn stream_without_handshake() {
        let mut t = TcpTracker::default();
        // First packet from the "server" side: its sender becomes the client.
        let seg = t.feed(&pkt(B, 80, A, 40000).seq(7777).len(10).done());
        assert_eq!((seg.dir, seg.isn_pos), (Direction::ClientToServer, None));
        t.feed(&pkt(A, 40000, B, 80).seq(1).len(20).done());
        let s = &t.streams()[0];
        assert!(!s.handshake_seen);
        assert_eq!(s.client.to_string(), "10.0.0.2:80");
        assert_eq!(s.dirs[Direction::ClientToServer].unique_bytes(), 10);
        assert_eq!(s.dirs[Direction::ServerToClient].unique_bytes(), 20);
    }

    #[test]
    fn first_packet_synack_makes_receiver_client() {
        let mut t = TcpTracker::default();
        t.feed(
            &pkt(B, 80, A, 40000)
                .seq(5000)
                .ack(1001)
                .flags(SYNACK)
                .done(),
        );
        let seg = t.feed(&pkt(A, 40000, B, 80).seq(1001).ack(5001).len(10).done());
        let s = &t.streams()[0];
        assert_eq!(s.client.to_string(), "10.0.0.1:40000");
        assert!(!s.handshake_seen);
        // Client ISN learnt from the SYN/ACK's ack: 1001 − 1 = 1000 → relative seq 1.
        assert_eq!(seg.payload_pos - seg.isn_pos.expect("isn from ack"), 1);
    }

    #[test]
    fn late_syn_completes_stream() {
        let mut t = TcpTracker::default();
        t.feed(&pkt(B, 80, A, 40000).seq(5001).len(10).done());
        let seg = t.feed(&pkt(A, 40000, B, 80).seq(1000).flags(SYN).done());
        assert_eq!(
            (seg.stream, seg.roles_swapped, seg.dir),
            (0, true, Direction::ClientToServer)
        );
        let s = &t.streams()[0];
        assert!(s.handshake_seen);
        assert_eq!(s.client.to_string(), "10.0.0.1:40000");
        assert_eq!(s.dirs[Direction::ServerToClient].wire_bytes, 10);
    }
}
