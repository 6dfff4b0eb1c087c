//! One annotated record per packet: what the analysis concluded about each TCP segment, handed
//! to an observer as soon as the segment is analysed ("one annotated record per packet, many
//! sinks": exports, plots, and the two-capture matcher all read these).
//!
//! The numbers are the analysis's own, taken where its accounting makes them (`tcp::Segment`,
//! the MPTCP layer's mapping lookup and `account`), never recomputed: per connection and
//! direction, the `payload_len`s add up to `wire_bytes`, `new_bytes + resolved_new_bytes` to
//! `unique_bytes`, `reinjected_bytes + resolved_reinjected_bytes` to `reinjected_bytes`,
//! `retransmitted_bytes` to `retransmitted_bytes`. Two things to know:
//! - payload carried before any known mapping covers it is `unmapped_bytes` in its record, with
//!   no data range; a later mapping that covers it credits it to the data level then, in the
//!   record of the packet carrying that mapping (`resolved_*`);
//! - a 4-byte DSN seen before its direction's key is known lies in the provisional space
//!   (`mptcp` module doc); records already handed out keep that provisional value.
//!
//! Records are `Copy` and hold no reference to the analysis, so a sink may keep them (the
//! matcher of two captures keeps those in flight) or drop them at once (an export writes them).
//! With no observer (`NoObserver`, what `Analyzer::feed_decoded` uses) no record is built.

use std::net::IpAddr;

use super::{direction::Direction, summary::SubflowRole};
use crate::decode::{MptcpOption, Packet, Timestamps};

/// What the analysis concluded about one TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketRecord {
    /// 1-based number of the packet in its source (tshark's frame number).
    pub number: u64,
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Interface index within the source (pcapng interface id, kernel ifindex live).
    pub iface: u32,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    /// TCP stream number (Wireshark's `tcp.stream`) and the packet's direction in it.
    pub tcp_stream: u32,
    pub tcp_direction: Direction,
    /// Sequence and acknowledgement numbers as on the wire.
    pub seq: u32,
    pub ack: u32,
    /// Sequence number relative to the direction's ISN, as Wireshark's `tcp.seq` (0 for the
    /// SYN, 1 for the first byte after it), 64-bit (not wrapping); `None` while the ISN is
    /// unknown.
    pub relative_seq: Option<u64>,
    /// Acknowledgement number relative to the peer's ISN (64-bit, expanded in the peer's
    /// sequence space); `None` without the ACK flag or while the peer's ISN is unknown.
    pub relative_ack: Option<u64>,
    pub payload_len: u32,
    /// `decode::tcp_flags` bits.
    pub flags: u8,
    /// Bit `1 << subtype` for each MPTCP option subtype the packet carries (0 MP_CAPABLE,
    /// 1 MP_JOIN, 2 DSS, 3 ADD_ADDR, 4 REMOVE_ADDR, 5 MP_PRIO, 6 MP_FAIL, 7 MP_FASTCLOSE,
    /// 8 MP_TCPRST).
    pub mptcp_subtypes: u16,
    /// Payload bytes of this segment its TCP direction had carried before (TCP-level
    /// retransmission, as `tcp_summary` counts them).
    pub tcp_retransmitted_bytes: u64,
    /// A keep-alive probe: its byte is not data.
    pub keep_alive: bool,
    /// IPv4 Identification (`None` for IPv6) and the TCP timestamps option: what tells copies
    /// of a segment apart in a capture cut to the headers (the two-capture matcher uses them).
    pub ip_id: Option<u16>,
    pub timestamps: Option<Timestamps>,
    /// Set when the segment belongs to a subflow of an MPTCP connection.
    pub mptcp: Option<MptcpRecord>,
}

/// What the MPTCP layer concluded about a subflow's segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MptcpRecord {
    /// Connection id (as `list-mptcp` shows it) and the subflow's index in the connection.
    pub connection: u32,
    pub subflow: u32,
    /// The subflow's role when the packet was analysed.
    pub role: SubflowRole,
    /// The connection-level direction the segment's data travels in.
    pub direction: Direction,
    /// The 64-bit data sequence range `[start, end)` the payload carried, from the mapping(s)
    /// covering it (a segment spanning two mappings gets the span of both); `None` without
    /// payload or without a mapping.
    pub data: Option<DataRange>,
    /// The DATA_ACK the packet carried, 64-bit (acknowledging the other direction's data).
    pub data_ack: Option<u64>,
    /// The DSS mapping (or v1 MP_CAPABLE data) the packet carried.
    pub mapping: Option<MappingRecord>,
    /// The packet's DSS had the DATA_FIN flag.
    pub data_fin: bool,
    /// Data bytes this segment carried first (the connection's `unique_bytes` grow by these).
    pub new_bytes: u64,
    /// Data bytes carried before and re-sent by this subflow's TCP (a retransmission).
    pub retransmitted_bytes: u64,
    /// Data bytes carried before, in subflow bytes new to this subflow (a reinjection).
    pub reinjected_bytes: u64,
    /// Payload bytes no known mapping covered (yet).
    pub unmapped_bytes: u64,
    /// Of the payload earlier packets of this subflow carried without a known mapping (their
    /// `unmapped_bytes`), the data bytes this packet's mapping resolved that were new to the
    /// connection, and those carried before (a reinjection). With them, per connection and
    /// direction, `new_bytes + resolved_new_bytes` adds up to `unique_bytes` and
    /// `reinjected_bytes + resolved_reinjected_bytes` to `reinjected_bytes`.
    pub resolved_new_bytes: u64,
    pub resolved_reinjected_bytes: u64,
}

/// A data sequence range `[start, end)`, modulo 2^64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataRange {
    pub start: u64,
    pub end: u64,
}

impl DataRange {
    pub fn len(&self) -> u64 {
        self.end.wrapping_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A DSS mapping as the analysis expanded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MappingRecord {
    /// 64-bit data sequence number of the mapping's first byte.
    pub dsn: u64,
    /// Subflow sequence number relative to the subflow's ISN (64-bit).
    pub ssn: u64,
    /// Data-level length as on the wire (DATA_FIN included; 0 = infinite mapping).
    pub len: u32,
}

impl MptcpRecord {
    /// A record of connection `connection`'s subflow `subflow` with nothing concluded yet.
    pub(crate) const fn new(
        connection: u32,
        subflow: u32,
        role: SubflowRole,
        dir: Direction,
    ) -> Self {
        MptcpRecord {
            connection,
            subflow,
            role,
            direction: dir,
            data: None,
            data_ack: None,
            mapping: None,
            data_fin: false,
            new_bytes: 0,
            retransmitted_bytes: 0,
            reinjected_bytes: 0,
            unmapped_bytes: 0,
            resolved_new_bytes: 0,
            resolved_reinjected_bytes: 0,
        }
    }
}

/// The MPTCP option subtypes of a packet as a bit set (`PacketRecord::mptcp_subtypes`).
pub fn subtype_bits(packet: &Packet) -> u16 {
    packet.mptcp.iter().fold(0, |bits, option: &MptcpOption| {
        bits | 1 << (option.subtype() & 15)
    })
}

/// Receives each packet's record, in capture order.
pub trait PacketObserver {
    /// False for an observer that wants nothing: then no record is built at all.
    const WANTS_RECORDS: bool = true;

    fn observe(&mut self, record: &PacketRecord);
}

/// The observer of the plain analysis: no records.
pub struct NoObserver;

impl PacketObserver for NoObserver {
    const WANTS_RECORDS: bool = false;

    #[inline(always)]
    fn observe(&mut self, _record: &PacketRecord) {}
}

/// Any closure taking a record is an observer.
impl<F: FnMut(&PacketRecord)> PacketObserver for F {
    fn observe(&mut self, record: &PacketRecord) {
        self(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        analysis::{
            Analyzer,
            tcp::tests::{A, B, pkt},
        },
        decode::tcp_flags::{ACK, SYN},
    };

    /// Records of a hand-made exchange, against values derived by hand: relative sequence and
    /// ack numbers as Wireshark shows them, the retransmitted bytes; and feeding with an
    /// observer leaves the analysis as feeding without one.
    #[test]
    fn records_of_a_handshake_and_a_retransmission() {
        let packets = [
            pkt(A, 40000, B, 80).seq(1000).flags(SYN).at(1, 10).done(),
            pkt(B, 80, A, 40000)
                .seq(5000)
                .ack(1001)
                .flags(SYN | ACK)
                .at(2, 20)
                .done(),
            pkt(A, 40000, B, 80)
                .seq(1001)
                .ack(5001)
                .len(100)
                .at(3, 30)
                .done(),
            // 50 bytes again, 50 new.
            pkt(A, 40000, B, 80)
                .seq(1051)
                .ack(5001)
                .len(100)
                .at(4, 40)
                .done(),
        ];
        let mut records = Vec::new();
        let mut observed = Analyzer::new();
        let mut plain = Analyzer::new();
        for p in &packets {
            observed.feed_observed(p.number, Ok(Some(p)), &mut |r: &PacketRecord| {
                records.push(*r);
            });
            plain.feed_decoded(p.number, Ok(Some(p)));
        }
        let seen: Vec<_> = records
            .iter()
            .map(|r| {
                (
                    r.number,
                    r.relative_seq,
                    r.relative_ack,
                    r.tcp_retransmitted_bytes,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (1, Some(0), None, 0),
                (2, Some(0), Some(1), 0),
                (3, Some(1), Some(1), 0),
                (4, Some(51), Some(1), 50),
            ]
        );
        assert!(
            records
                .iter()
                .all(|r| r.mptcp.is_none() && r.mptcp_subtypes == 0)
        );
        assert_eq!(records[1].tcp_direction, Direction::ServerToClient);
        assert_eq!(observed.tcp_summary(0), plain.tcp_summary(0));
        assert_eq!(observed.diagnostics(), plain.diagnostics());
    }

    /// IPv4 ID and TCP timestamps of real captures' first records, against tshark 4.0.17
    /// (`ip.id`, `tcp.options.timestamp.tsval` / `.tsecr`); IPv6 has no ID.
    #[test]
    fn identity_fields_of_real_captures() {
        use crate::{
            decode::Timestamps,
            offline::{OfflineOptions, analyze_file_observed},
        };
        let data = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data"));
        let first = |name: &str, n: usize| {
            let mut records = Vec::new();
            analyze_file_observed(
                &data.join(name),
                &OfflineOptions::default(),
                &mut |r: &PacketRecord| {
                    if records.len() < n {
                        records.push((r.number, r.ip_id, r.timestamps));
                    }
                },
            )
            .expect("readable");
            records
        };
        let ts = |tsval, tsecr| Some(Timestamps { tsval, tsecr });
        assert_eq!(
            first("v4-2sf.pcap", 4),
            [
                (1, Some(0x9f95), ts(739_543_330, 0)),
                (2, Some(0), ts(3_522_072_808, 739_543_330)),
                (3, Some(0x9f96), ts(739_543_330, 3_522_072_808)),
                (4, Some(0x9f97), ts(739_543_330, 3_522_072_808)),
            ]
        );
        let v6 = first("v6-2sf.pcapng", 2);
        assert_eq!(
            v6.iter()
                .map(|&(n, id, t)| (n, id, t.map(|t| t.tsval)))
                .collect::<Vec<_>>(),
            [(1, None, Some(364_508_198)), (2, None, Some(2_502_868_033))]
        );
    }
}
