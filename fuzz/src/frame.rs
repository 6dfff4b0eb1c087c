//! TCP segments as Ethernet + IPv4/IPv6 frames, as a NIC would capture them. The payload is
//! counted in the IP length but not captured (a snap length at the TCP header): the decoder
//! takes payload lengths from the IP header, and the fuzzer does not spend time on zeros.

use std::net::IpAddr;

/// TCP option kinds used here.
const NOP: u8 = 1;
const TCP_HEADER_LEN: usize = 20;
/// The most option bytes a TCP header holds.
pub const MAX_OPTIONS_LEN: usize = 40;

/// One TCP segment to encode.
#[derive(Clone, Debug)]
pub struct Segment {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    /// TCP options, whole (kind, length, value each); padded with NOPs here.
    pub options: Vec<u8>,
    pub payload_len: u16,
}

/// The captured bytes of the frame and its length on the wire (with the payload).
pub fn ethernet(segment: &Segment) -> (Vec<u8>, u32) {
    let options_len = segment
        .options
        .len()
        .min(MAX_OPTIONS_LEN)
        .next_multiple_of(4);
    let tcp_len = TCP_HEADER_LEN + options_len;
    let mut frame = Vec::with_capacity(14 + 40 + tcp_len);
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1]);
    let l4_len = tcp_len + usize::from(segment.payload_len);
    match (segment.src, segment.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            frame.extend_from_slice(&0x0800u16.to_be_bytes());
            let total = u16::try_from(20 + l4_len).unwrap_or(u16::MAX);
            frame.extend_from_slice(&[0x45, 0]);
            frame.extend_from_slice(&total.to_be_bytes());
            // Identification, don't fragment, TTL 64, TCP, checksum (not checked).
            frame.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
            frame.extend_from_slice(&src.octets());
            frame.extend_from_slice(&dst.octets());
        }
        (src, dst) => {
            frame.extend_from_slice(&0x86DDu16.to_be_bytes());
            frame.extend_from_slice(&[0x60, 0, 0, 0]);
            let payload = u16::try_from(l4_len).unwrap_or(u16::MAX);
            frame.extend_from_slice(&payload.to_be_bytes());
            frame.extend_from_slice(&[6, 64]);
            frame.extend_from_slice(&v6(src));
            frame.extend_from_slice(&v6(dst));
        }
    }
    frame.extend_from_slice(&segment.src_port.to_be_bytes());
    frame.extend_from_slice(&segment.dst_port.to_be_bytes());
    frame.extend_from_slice(&segment.seq.to_be_bytes());
    frame.extend_from_slice(&segment.ack.to_be_bytes());
    frame.push(((tcp_len / 4) as u8) << 4);
    frame.push(segment.flags);
    frame.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    frame.extend_from_slice(&segment.options[..segment.options.len().min(MAX_OPTIONS_LEN)]);
    frame.resize(
        frame.len() + options_len - segment.options.len().min(MAX_OPTIONS_LEN),
        NOP,
    );
    let wire = frame.len() + usize::from(segment.payload_len);
    (frame, u32::try_from(wire).unwrap_or(u32::MAX))
}

fn v6(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}
