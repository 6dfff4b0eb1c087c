//! IPv4 (with options) and IPv6 (with extension headers).
//!
//! The TCP segment's length comes from the IP header (IPv4 total length, IPv6 payload length),
//! never from the captured length: a capture cut by its snap length (`tcpdump -s 128`) then
//! counts the same payload bytes as a full one, and Ethernet padding after a short frame is not
//! counted at all.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{DecodeError, tcp::SegmentBytes};
use crate::source::RawPacket;

const PROTO_TCP: u8 = 6;

const IPV4_MIN_HEADER_LEN: usize = 20;
/// More-fragments flag and fragment offset (in 8-byte units) of IPv4's bytes 6–7.
const IPV4_FRAGMENT_OFFSET_MASK: u16 = 0x1fff;

const IPV6_HEADER_LEN: usize = 40;
const EXT_HOP_BY_HOP: u8 = 0;
const EXT_ROUTING: u8 = 43;
const EXT_FRAGMENT: u8 = 44;
const EXT_AH: u8 = 51;
const EXT_DESTINATION: u8 = 60;
const FRAGMENT_HEADER_LEN: usize = 8;
/// Hop-by-hop option carrying a jumbogram's length (RFC 2675).
const OPTION_JUMBO: u8 = 0xc2;
const OPTION_PAD1: u8 = 0;

/// Decodes the IP header at the start of `l3` and says where its TCP segment is; `None` when
/// the packet is not TCP (or not the first fragment of a TCP segment).
#[inline]
pub fn locate_tcp<'a>(
    raw: &RawPacket<'_>,
    l3: &'a [u8],
) -> Result<Option<SegmentBytes<'a>>, DecodeError> {
    let Some(&first) = l3.first() else {
        return Err(DecodeError::Truncated {
            layer: "IP",
            need: 1,
            have: 0,
        });
    };
    match first >> 4 {
        4 => ipv4(raw, l3),
        6 => ipv6(raw, l3),
        version => Err(DecodeError::Malformed {
            layer: "IP",
            what: format!("version {version} is neither 4 nor 6"),
        }),
    }
}

#[inline]
fn ipv4<'a>(raw: &RawPacket<'_>, l3: &'a [u8]) -> Result<Option<SegmentBytes<'a>>, DecodeError> {
    let Some(fixed) = l3.first_chunk::<IPV4_MIN_HEADER_LEN>() else {
        return Err(truncated("IPv4", IPV4_MIN_HEADER_LEN, l3));
    };
    let header_len = usize::from(fixed[0] & 0x0f) * 4;
    if header_len < IPV4_MIN_HEADER_LEN {
        return Err(malformed(
            "IPv4",
            format!("header length {header_len} < 20"),
        ));
    }
    if l3.len() < header_len {
        return Err(truncated("IPv4 options", header_len, l3));
    }
    if fixed[9] != PROTO_TCP {
        return Ok(None);
    }
    // Only the first fragment holds the TCP header. Its payload length below is that fragment's
    // share of the segment, which is all this packet carries.
    if u16::from_be_bytes([fixed[6], fixed[7]]) & IPV4_FRAGMENT_OFFSET_MASK != 0 {
        return Ok(None);
    }
    let total_len = usize::from(u16::from_be_bytes([fixed[2], fixed[3]]));
    let total_len = if total_len == 0 {
        // Total length 0 is what a capture on the sending host shows for a TSO/GSO super-packet
        // (and for IPv4 BIG TCP, > 64 KiB): the header was not filled in yet. The packet's own
        // length is then the only measure; use the on-wire length, which a snap length does not
        // cut, and the captured length if the source gives no sensible on-wire length.
        wire_l3_len(raw, l3)
    } else {
        total_len
    };
    let Some(segment_len) = total_len.checked_sub(header_len) else {
        return Err(malformed(
            "IPv4",
            format!("total length {total_len} < header length {header_len}"),
        ));
    };
    let src = IpAddr::V4(Ipv4Addr::new(fixed[12], fixed[13], fixed[14], fixed[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(fixed[16], fixed[17], fixed[18], fixed[19]));
    let captured = clip(&l3[header_len..], segment_len);
    Ok(Some(SegmentBytes {
        src,
        dst,
        captured,
        len: segment_len,
        ip_id: Some(u16::from_be_bytes([fixed[4], fixed[5]])),
    }))
}

fn ipv6<'a>(raw: &RawPacket<'_>, l3: &'a [u8]) -> Result<Option<SegmentBytes<'a>>, DecodeError> {
    let Some(fixed) = l3.first_chunk::<IPV6_HEADER_LEN>() else {
        return Err(truncated("IPv6", IPV6_HEADER_LEN, l3));
    };
    let mut payload_len = usize::from(u16::from_be_bytes([fixed[4], fixed[5]]));
    let mut next = fixed[6];
    let mut offset = IPV6_HEADER_LEN;
    let mut jumbo = None;
    // Each extension header moves `offset` on by at least 8 bytes, and `ext_header` stops at the
    // end of the captured bytes, so the walk ends.
    while next != PROTO_TCP {
        let header = match next {
            EXT_HOP_BY_HOP | EXT_ROUTING | EXT_DESTINATION => {
                let header = ext_header(l3, offset, 2, |len| (usize::from(len) + 1) * 8)?;
                if next == EXT_HOP_BY_HOP && offset == IPV6_HEADER_LEN {
                    jumbo = jumbo_len(header);
                }
                header
            }
            EXT_FRAGMENT => {
                let header = ext_header(l3, offset, FRAGMENT_HEADER_LEN, |_| FRAGMENT_HEADER_LEN)?;
                // Fragment offset: the upper 13 bits of bytes 2–3. Only offset 0 has the TCP
                // header; its payload length is the fragment's share, as for IPv4.
                if u16::from_be_bytes([header[2], header[3]]) >> 3 != 0 {
                    return Ok(None);
                }
                header
            }
            // AH's length counts 4-byte units minus 2 (RFC 4302 §2.2).
            EXT_AH => ext_header(l3, offset, 2, |len| (usize::from(len) + 2) * 4)?,
            // ESP (50) hides what follows, no-next-header (59) has nothing; the rest is not TCP.
            _ => return Ok(None),
        };
        // Every extension header starts with the next header's protocol number.
        next = header[0];
        offset += header.len();
    }
    if payload_len == 0 {
        // A jumbogram (RFC 2675) carries its length in a hop-by-hop option. Linux's BIG TCP and
        // a capture on a TSO/GSO sender show payload length 0 without one: as for IPv4 total
        // length 0, fall back to the on-wire length.
        payload_len = match jumbo {
            Some(len) => len,
            None => wire_l3_len(raw, l3).saturating_sub(IPV6_HEADER_LEN),
        };
    }
    let ext_len = offset - IPV6_HEADER_LEN;
    let Some(segment_len) = payload_len.checked_sub(ext_len) else {
        return Err(malformed(
            "IPv6",
            format!("payload length {payload_len} < extension headers' length {ext_len}"),
        ));
    };
    let src = IpAddr::V6(Ipv6Addr::from(
        *fixed[8..24].as_array::<16>().unwrap_or(&[0; 16]),
    ));
    let dst = IpAddr::V6(Ipv6Addr::from(
        *fixed[24..40].as_array::<16>().unwrap_or(&[0; 16]),
    ));
    let captured = clip(l3.get(offset..).unwrap_or_default(), segment_len);
    Ok(Some(SegmentBytes {
        src,
        dst,
        captured,
        len: segment_len,
        ip_id: None,
    }))
}

/// The extension header at `offset`: its first `min_len` bytes must be captured to read its
/// length (`len_of` maps the length byte at `offset + 1`), then all of it.
fn ext_header(
    l3: &[u8],
    offset: usize,
    min_len: usize,
    len_of: impl Fn(u8) -> usize,
) -> Result<&[u8], DecodeError> {
    let Some(start) = l3.get(offset..offset + min_len) else {
        return Err(truncated("IPv6 extension", offset + min_len, l3));
    };
    let len = len_of(start[1]);
    l3.get(offset..offset + len)
        .ok_or_else(|| truncated("IPv6 extension", offset + len, l3))
}

/// The Jumbo Payload option's length in a hop-by-hop header, if it has one. The options are
/// type-length-value, except Pad1, a single zero byte.
fn jumbo_len(hop_by_hop: &[u8]) -> Option<usize> {
    let mut options = hop_by_hop.get(2..)?;
    while let Some(&kind) = options.first() {
        if kind == OPTION_PAD1 {
            options = &options[1..];
            continue;
        }
        let len = usize::from(*options.get(1)?);
        let data = options.get(2..2 + len)?;
        if kind == OPTION_JUMBO {
            let len = u32::from_be_bytes(*data.as_array::<4>()?);
            return usize::try_from(len).ok();
        }
        options = &options[2 + len..];
    }
    None
}

/// The IP packet's on-wire length: the source's `orig_len` minus the link header. `strip`
/// returns a suffix of `data`, so the link header is what lies before `l3`. A source that gives
/// an `orig_len` smaller than what it captured is not believed.
fn wire_l3_len(raw: &RawPacket<'_>, l3: &[u8]) -> usize {
    let link_len = raw.data.len().saturating_sub(l3.len());
    usize::try_from(raw.orig_len)
        .unwrap_or(usize::MAX)
        .saturating_sub(link_len)
        .max(l3.len())
}

/// The captured part of a segment, without link-layer padding past its end.
fn clip(bytes: &[u8], len: usize) -> &[u8] {
    bytes.get(..len).unwrap_or(bytes)
}

fn truncated(layer: &'static str, need: usize, have: &[u8]) -> DecodeError {
    DecodeError::Truncated {
        layer,
        need,
        have: have.len(),
    }
}

fn malformed(layer: &'static str, what: String) -> DecodeError {
    DecodeError::Malformed { layer, what }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        decode::{Decoded, MptcpOption, Packet, decode},
        source::{Direction, LinkType},
    };

    /// A 20-byte TCP header from port 40000 to 443, data offset 5 + `extra_words`, followed by the
    /// option bytes given (already a multiple of 4).
    fn tcp_header(options: &[u8]) -> Vec<u8> {
        assert_eq!(options.len() % 4, 0);
        let data_offset = (5 + options.len() / 4) as u8;
        let mut h = vec![
            0x9c,
            0x40, // source port 40000
            0x01,
            0xbb, // destination port 443
            0,
            0,
            0,
            100, // sequence number 100
            0,
            0,
            0,
            200, // acknowledgment number 200
            data_offset << 4,
            0x18, // PSH ACK
            0x01,
            0x00, // window 256
            0,
            0,
            0,
            0, // checksum, urgent pointer
        ];
        h.extend_from_slice(options);
        h
    }

    /// An IPv4 header: IHL from `options`, total length `total_len`, flags/fragment offset word
    /// `frag`, protocol `proto`, 192.0.2.1 → 198.51.100.2.
    fn ipv4_header(options: &[u8], total_len: u16, frag: u16, proto: u8) -> Vec<u8> {
        let ihl = (5 + options.len() / 4) as u8;
        let mut h = vec![0x40 | ihl, 0x00];
        h.extend_from_slice(&total_len.to_be_bytes());
        h.extend_from_slice(&[0x12, 0x34]); // identification
        h.extend_from_slice(&frag.to_be_bytes());
        h.extend_from_slice(&[64, proto, 0, 0]); // TTL, protocol, checksum
        h.extend_from_slice(&[192, 0, 2, 1, 198, 51, 100, 2]);
        h.extend_from_slice(options);
        h
    }

    /// An IPv6 header with payload length `payload_len` and next header `next`, 2001:db8::1 →
    /// 2001:db8::2.
    fn ipv6_header(payload_len: u16, next: u8) -> Vec<u8> {
        let mut h = vec![0x60, 0, 0, 0];
        h.extend_from_slice(&payload_len.to_be_bytes());
        h.extend_from_slice(&[next, 64]);
        h.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        h.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        h
    }

    fn raw(link_type: LinkType, data: &[u8], orig_len: usize) -> RawPacket<'_> {
        RawPacket {
            number: 1,
            ts_ns: 0,
            iface: 0,
            direction: Direction::Unknown,
            link_type,
            data,
            orig_len: orig_len as u32,
            segments: 1,
        }
    }

    fn decode_raw_ip(data: &[u8]) -> Result<Decoded, DecodeError> {
        decode(&raw(LinkType::Raw, data, data.len()))
    }

    fn tcp(decoded: Result<Decoded, DecodeError>) -> Packet {
        match decoded {
            Ok(Decoded::Tcp(packet)) => packet,
            other => panic!("expected TCP, got {other:?}"),
        }
    }

    #[test]
    fn ipv4_with_options() {
        // IHL 6: Router Alert (type 0x94, length 4, value 0).
        let ip_options = [0x94, 0x04, 0x00, 0x00];
        let tcp_h = tcp_header(&[]);
        let payload = [0xaa; 10];
        let total = (24 + tcp_h.len() + payload.len()) as u16;
        let pkt = [
            ipv4_header(&ip_options, total, 0x4000, 6),
            tcp_h,
            payload.to_vec(),
        ]
        .concat();
        let p = tcp(decode_raw_ip(&pkt));
        assert_eq!(p.src, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(p.dst, IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)));
        assert_eq!(
            (p.src_port, p.dst_port, p.seq, p.ack),
            (40000, 443, 100, 200)
        );
        assert_eq!(p.payload_len, 10);
        assert_eq!(p.ip_id, Some(0x1234));
    }

    #[test]
    fn ipv4_padding_and_snaplen_do_not_change_payload_len() {
        // MP_PRIO in the TCP options so the option walk runs.
        let tcp_h = tcp_header(&[30, 3, 0x51, 0]);
        let total = (20 + tcp_h.len() + 1400) as u16;
        let full = [
            ipv4_header(&[], total, 0, 6),
            tcp_h.clone(),
            vec![0x55; 1400],
        ]
        .concat();
        let whole = tcp(decode_raw_ip(&full));
        assert_eq!(whole.payload_len, 1400);
        // tcpdump -s 64: IP + TCP header + 16 bytes of payload.
        let cut = &full[..64];
        let p = tcp(decode(&raw(LinkType::Raw, cut, full.len())));
        assert_eq!(p, whole, "a snaplen-cut capture decodes to the same packet");
        // Ethernet padding: a 1-byte segment in a 60-byte frame; the padding is neither payload
        // nor TCP options.
        let total = (20 + tcp_h.len() + 1) as u16;
        let mut frame = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0x08, 0x00];
        frame.extend([ipv4_header(&[], total, 0, 6), tcp_h, vec![0x42]].concat());
        frame.resize(60, 0xff);
        let p = tcp(decode(&raw(LinkType::Ethernet, &frame, frame.len())));
        assert_eq!(p.payload_len, 1);
        assert_eq!(
            p.mptcp.as_slice(),
            &[MptcpOption::Prio {
                backup: true,
                addr_id: None
            }]
        );
        assert!(!p.options_truncated);
    }

    #[test]
    fn ipv4_total_length_zero_uses_the_wire_length() {
        // TSO super-packet seen on the sender: total length 0, 3000 bytes of payload on the wire,
        // captured with a snap length behind Ethernet.
        let mut frame = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0x08, 0x00];
        frame.extend(ipv4_header(&[], 0, 0x4000, 6));
        frame.extend(tcp_header(&[]));
        frame.extend([0u8; 10]);
        let orig_len = 14 + 20 + 20 + 3000;
        let p = tcp(decode(&raw(LinkType::Ethernet, &frame, orig_len)));
        assert_eq!(p.payload_len, 3000);
        // A source without a usable on-wire length: the captured bytes are all there is.
        let p = tcp(decode(&raw(LinkType::Ethernet, &frame, 0)));
        assert_eq!(p.payload_len, 10);
    }

    #[test]
    fn ipv4_fragments_and_other_protocols() {
        let tcp_h = tcp_header(&[]);
        let body = [tcp_h, vec![0; 8]].concat();
        let total = (20 + body.len()) as u16;
        // First fragment (MF set, offset 0): TCP, with this fragment's share of the payload.
        let first = [ipv4_header(&[], total, 0x2000, 6), body.clone()].concat();
        assert_eq!(tcp(decode_raw_ip(&first)).payload_len, 8);
        // Later fragment (offset 185 × 8 bytes): no TCP header in it.
        let later = [ipv4_header(&[], total, 0x00b9, 6), body.clone()].concat();
        assert_eq!(decode_raw_ip(&later), Ok(Decoded::NotTcp));
        // UDP.
        let udp = [ipv4_header(&[], total, 0, 17), body].concat();
        assert_eq!(decode_raw_ip(&udp), Ok(Decoded::NotTcp));
    }

    #[test]
    fn ipv4_truncated_and_malformed() {
        let tcp_h = tcp_header(&[]);
        let good = [ipv4_header(&[], 40, 0, 6), tcp_h.clone()].concat();
        assert_eq!(
            decode_raw_ip(&good[..19]),
            Err(DecodeError::Truncated {
                layer: "IPv4",
                need: 20,
                have: 19
            })
        );
        // IHL 6 but only 22 bytes.
        let with_opts = ipv4_header(&[1, 1, 1, 1], 44, 0, 6);
        assert_eq!(
            decode_raw_ip(&with_opts[..22]),
            Err(DecodeError::Truncated {
                layer: "IPv4 options",
                need: 24,
                have: 22
            })
        );
        // IHL 4.
        let mut bad_ihl = good.clone();
        bad_ihl[0] = 0x44;
        assert!(matches!(
            decode_raw_ip(&bad_ihl),
            Err(DecodeError::Malformed { layer: "IPv4", .. })
        ));
        // Total length smaller than the IP header.
        let short = [ipv4_header(&[], 16, 0, 6), tcp_h.clone()].concat();
        assert!(matches!(
            decode_raw_ip(&short),
            Err(DecodeError::Malformed { layer: "IPv4", .. })
        ));
        // Total length leaves room for 10 bytes of TCP header only.
        let short_tcp = [ipv4_header(&[], 30, 0, 6), tcp_h].concat();
        assert!(matches!(
            decode_raw_ip(&short_tcp),
            Err(DecodeError::Malformed { layer: "TCP", .. })
        ));
        // IP header captured, TCP header not.
        assert_eq!(
            decode_raw_ip(&good[..30]),
            Err(DecodeError::Truncated {
                layer: "TCP",
                need: 20,
                have: 10
            })
        );
        // Version 5 behind an IPv4 ethertype.
        let mut frame = vec![0; 12];
        frame.extend([0x08, 0x00, 0x55, 0x00]);
        assert!(matches!(
            decode(&raw(LinkType::Ethernet, &frame, frame.len())),
            Err(DecodeError::Malformed { layer: "IP", .. })
        ));
    }

    #[test]
    fn ipv6_plain() {
        let tcp_h = tcp_header(&[]);
        let pkt = [ipv6_header(20 + 5, 6), tcp_h, vec![1, 2, 3, 4, 5]].concat();
        let p = tcp(decode_raw_ip(&pkt));
        assert_eq!(
            p.src,
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))
        );
        assert_eq!(
            p.dst,
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2))
        );
        assert_eq!(p.payload_len, 5);
        assert_eq!(p.ip_id, None);
        // Snaplen inside the payload: same length.
        assert_eq!(
            tcp(decode(&raw(LinkType::Raw, &pkt[..62], pkt.len()))).payload_len,
            5
        );
    }

    #[test]
    fn ipv6_extension_header_chain() {
        // Hop-by-hop (next: routing), length 0 → 8 bytes: PadN option of 4 bytes.
        let hop = [43, 0, 1, 4, 0, 0, 0, 0];
        // Routing (next: fragment), length 2 → 24 bytes: type 0, segments left 0, reserved, one
        // address.
        let mut routing = vec![44, 2, 0, 0, 0, 0, 0, 0];
        routing.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
        // Fragment (next: destination options), offset 0, M=1, identification.
        let frag = [60, 0, 0x00, 0x01, 0, 0, 0, 7];
        // Destination options (next: AH), length 0 → 8 bytes, Pad1 ×6.
        let dest = [51, 0, 0, 0, 0, 0, 0, 0];
        // AH (next: TCP), payload length 4 → (4 + 2) × 4 = 24 bytes: SPI, sequence, 12-byte ICV.
        let mut ah = vec![6, 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
        ah.extend([0xcc; 12]);
        let ext = [hop.to_vec(), routing, frag.to_vec(), dest.to_vec(), ah].concat();
        assert_eq!(ext.len(), 8 + 24 + 8 + 8 + 24);
        let tcp_h = tcp_header(&[30, 3, 0x50, 0]);
        let payload_len = (ext.len() + tcp_h.len() + 100) as u16;
        let pkt = [ipv6_header(payload_len, 0), ext, tcp_h, vec![0; 100]].concat();
        let p = tcp(decode_raw_ip(&pkt));
        assert_eq!(p.payload_len, 100);
        assert_eq!(
            p.mptcp.as_slice(),
            &[MptcpOption::Prio {
                backup: false,
                addr_id: None
            }]
        );
        // A later fragment: not TCP.
        let mut later = pkt.clone();
        let frag_at = 40 + 8 + 24;
        later[frag_at + 2..frag_at + 4].copy_from_slice(&[0x00, 0xb8]); // offset 23 × 8
        assert_eq!(decode_raw_ip(&later), Ok(Decoded::NotTcp));
        // Cut inside the routing header.
        assert_eq!(
            decode_raw_ip(&pkt[..60]),
            Err(DecodeError::Truncated {
                layer: "IPv6 extension",
                need: 72,
                have: 60
            })
        );
        // Payload length shorter than the extension headers.
        let mut short = pkt;
        short[4..6].copy_from_slice(&50u16.to_be_bytes());
        assert!(matches!(
            decode_raw_ip(&short),
            Err(DecodeError::Malformed { layer: "IPv6", .. })
        ));
    }

    #[test]
    fn ipv6_not_tcp() {
        let tcp_h = tcp_header(&[]);
        for next in [
            50u8, /* ESP */
            59,   /* no next header */
            17,   /* UDP */
            58,   /* ICMPv6 */
        ] {
            let pkt = [ipv6_header(20, next), tcp_h.clone()].concat();
            assert_eq!(
                decode_raw_ip(&pkt),
                Ok(Decoded::NotTcp),
                "next header {next}"
            );
        }
        // Destination options then ESP.
        let pkt = [ipv6_header(28, 60), vec![50, 0, 1, 4, 0, 0, 0, 0], tcp_h].concat();
        assert_eq!(decode_raw_ip(&pkt), Ok(Decoded::NotTcp));
        assert_eq!(
            decode_raw_ip(&ipv6_header(0, 6)[..39]),
            Err(DecodeError::Truncated {
                layer: "IPv6",
                need: 40,
                have: 39
            })
        );
    }

    #[test]
    fn ipv6_jumbogram_and_zero_payload_length() {
        // Payload length 0; hop-by-hop of length 1 (16 bytes): Pad1, Pad1, Jumbo Payload (type
        // 0xc2, 4 bytes of length counting everything after the IPv6 header), PadN of 6 bytes.
        let jumbo_len: u32 = 16 + 20 + 70_000;
        let mut hop = vec![6, 1, 0, 0, 0xc2, 4];
        hop.extend(jumbo_len.to_be_bytes());
        hop.extend([1, 4, 0, 0, 0, 0]);
        assert_eq!(hop.len(), 16);
        let pkt = [ipv6_header(0, 0), hop, tcp_header(&[]), vec![0; 40]].concat();
        assert_eq!(
            tcp(decode(&raw(LinkType::Raw, &pkt, pkt.len()))).payload_len,
            70_000
        );
        // Payload length 0 without a jumbo option (BIG TCP / TSO on the sender): on-wire length.
        let pkt = [ipv6_header(0, 6), tcp_header(&[]), vec![0; 40]].concat();
        assert_eq!(
            tcp(decode(&raw(LinkType::Raw, &pkt, 40 + 20 + 5000))).payload_len,
            5000
        );
    }
}
