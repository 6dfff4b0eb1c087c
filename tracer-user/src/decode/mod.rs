//! Bytes → `Packet`, without state. Link layer (`link`), IPv4/IPv6 (`ip`), TCP (`tcp`) and the
//! MPTCP options (`mptcp`). The same function decodes pcap records and live ring-buffer events.

use std::net::{IpAddr, Ipv4Addr};

use arrayvec::ArrayVec;

use crate::source::RawPacket;

pub mod ip;
pub mod link;
pub mod mptcp;
pub mod tcp;

pub use mptcp::MptcpOption;

/// TCP header flag bits (byte 13 of the TCP header).
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// The most MPTCP options one packet is decoded with. 40 bytes of TCP options hold at most
/// thirteen 3-byte options; real stacks send one or two. More are counted in
/// `Packet::mptcp_overflow` rather than kept.
pub const MAX_MPTCP_OPTIONS: usize = 6;

/// A decoded TCP segment with its MPTCP options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub number: u64,
    pub ts_ns: u64,
    pub iface: u32,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    /// `tcp_flags::*` bits.
    pub flags: u8,
    pub window: u16,
    /// TCP payload length computed from the IP and TCP headers (IPv4 total length or IPv6
    /// payload length minus headers), never from the captured length, so truncated captures
    /// count the same bytes as full ones.
    pub payload_len: u32,
    /// MPTCP options (kind 30) in the order they appear.
    pub mptcp: ArrayVec<MptcpOption, MAX_MPTCP_OPTIONS>,
    /// MPTCP options beyond `MAX_MPTCP_OPTIONS` (not decoded).
    pub mptcp_overflow: u8,
    /// The TCP option walk stopped early: an option's length ran past the header or was
    /// invalid. Options before that point are kept.
    pub options_truncated: bool,
    /// Wire packets this one stands for (`RawPacket::segments`): counted in `packets`.
    pub segments: u32,
    /// The IPv4 Identification field; `None` for IPv6. With the sequence numbers and the TCP
    /// timestamps, it tells copies of a segment apart when the payload was not captured.
    pub ip_id: Option<u16>,
    /// The TCP timestamps option (kind 8), if the segment carries a well-formed one.
    pub timestamps: Option<Timestamps>,
}

/// The TCP timestamps option (RFC 7323): the sender's clock and the echoed peer clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamps {
    pub tsval: u32,
    pub tsecr: u32,
}

impl Packet {
    pub fn has_flag(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// What a raw packet turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "boxing would allocate per packet; the hot path uses decode_into and a reused Packet"
)]
pub enum Decoded {
    Tcp(Packet),
    /// Not IPv4/IPv6 TCP (ARP, UDP, ICMP, an IPv4 fragment other than the first, ...): ignored.
    NotTcp,
}

/// Why a packet could not be decoded. The caller adds the file and packet number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated {layer} header: need {need} bytes, have {have}")]
    Truncated {
        layer: &'static str,
        need: usize,
        have: usize,
    },
    #[error("malformed {layer} header: {what}")]
    Malformed { layer: &'static str, what: String },
}

impl Default for Packet {
    fn default() -> Self {
        Packet::empty()
    }
}

impl Packet {
    /// An empty packet for `decode_into` to fill.
    pub fn empty() -> Self {
        Packet {
            number: 0,
            ts_ns: 0,
            iface: 0,
            src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            src_port: 0,
            dst_port: 0,
            seq: 0,
            ack: 0,
            flags: 0,
            window: 0,
            payload_len: 0,
            mptcp: ArrayVec::new(),
            mptcp_overflow: 0,
            options_truncated: false,
            segments: 1,
            ip_id: None,
            timestamps: None,
        }
    }
}

/// Decodes one raw packet.
pub fn decode(raw: &RawPacket<'_>) -> Result<Decoded, DecodeError> {
    let mut packet = Packet::empty();
    Ok(if decode_into(raw, &mut packet)? {
        Decoded::Tcp(packet)
    } else {
        Decoded::NotTcp
    })
}

/// Decodes one raw packet into `packet`: `Ok(true)` when it is a TCP segment, and then every
/// field of `packet` is overwritten; `Ok(false)` when it is not TCP (`Decoded::NotTcp`), and
/// `packet` is left in an unspecified state, as after an error.
///
/// The per-packet path of the analysis: the caller owns one `Packet` and reuses it, so a
/// segment is written once, in place, instead of being built and then moved (`Packet` is a few
/// hundred bytes; the moves cost more than the decoding).
#[inline]
pub fn decode_into(raw: &RawPacket<'_>, packet: &mut Packet) -> Result<bool, DecodeError> {
    let Some(l3) = link::strip(raw.link_type, raw.data)? else {
        return Ok(false);
    };
    let Some(segment) = ip::locate_tcp(raw, l3)? else {
        return Ok(false);
    };
    tcp::decode_tcp_into(raw, &segment, packet)?;
    Ok(true)
}
