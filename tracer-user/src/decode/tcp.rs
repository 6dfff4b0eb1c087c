//! The TCP header and its option walk; kind 30 goes to `mptcp::parse_option`.

use std::net::IpAddr;

use super::{DecodeError, Decoded, Packet, Timestamps, mptcp};
use crate::source::RawPacket;

/// The fixed part of the TCP header (data offset 5).
pub const HEADER_LEN: usize = 20;

const OPTION_EOL: u8 = 0;
const OPTION_NOP: u8 = 1;
/// Timestamps (RFC 7323 §3): kind 8, length 10, TSval then TSecr.
const OPTION_TIMESTAMPS: u8 = 8;
const TIMESTAMPS_LEN: usize = 10;

/// A TCP segment as the IP layer found it.
#[derive(Clone, Copy, Debug)]
pub struct SegmentBytes<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// What the capture holds of the segment (possibly cut short by the snap length, never
    /// longer than the segment).
    pub captured: &'a [u8],
    /// The segment's length on the wire (header and payload) as the IP layer computed it.
    pub len: usize,
    /// The IPv4 Identification field; `None` for IPv6.
    pub ip_id: Option<u16>,
}

/// Decodes a TCP segment. `captured` is what the capture holds of it (possibly cut short by the
/// snap length, never longer than the segment); `segment_len` is the segment's length on the wire
/// (header and payload) as the IP layer computed it. Always `Decoded::Tcp` when `Ok`.
pub fn decode_tcp(
    raw: &RawPacket<'_>,
    src: IpAddr,
    dst: IpAddr,
    captured: &[u8],
    segment_len: usize,
) -> Result<Decoded, DecodeError> {
    let mut packet = Packet::empty();
    let segment = SegmentBytes {
        src,
        dst,
        captured,
        len: segment_len,
        ip_id: None,
    };
    decode_tcp_into(raw, &segment, &mut packet)?;
    Ok(Decoded::Tcp(packet))
}

/// Decodes a TCP segment into `packet`, overwriting every field (see `decode::decode_into`).
#[inline]
pub fn decode_tcp_into(
    raw: &RawPacket<'_>,
    segment: &SegmentBytes<'_>,
    packet: &mut Packet,
) -> Result<(), DecodeError> {
    let (captured, segment_len) = (segment.captured, segment.len);
    if segment_len < HEADER_LEN {
        return Err(malformed(format!(
            "the IP header leaves {segment_len} bytes for the segment, less than a TCP header"
        )));
    }
    let Some(fixed) = captured.first_chunk::<HEADER_LEN>() else {
        return Err(DecodeError::Truncated {
            layer: "TCP",
            need: HEADER_LEN,
            have: captured.len(),
        });
    };
    let data_offset = usize::from(fixed[12] >> 4);
    let header_len = data_offset * 4;
    if data_offset < 5 {
        return Err(malformed(format!("data offset {data_offset} < 5")));
    }
    let Some(payload_len) = segment_len.checked_sub(header_len) else {
        return Err(malformed(format!(
            "header length {header_len} exceeds the segment length {segment_len} the IP header gives"
        )));
    };
    let options_end = header_len.min(captured.len());
    packet.number = raw.number;
    packet.segments = raw.segments.max(1);
    packet.ts_ns = raw.ts_ns;
    packet.iface = raw.iface;
    packet.src = segment.src;
    packet.dst = segment.dst;
    packet.src_port = u16::from_be_bytes([fixed[0], fixed[1]]);
    packet.dst_port = u16::from_be_bytes([fixed[2], fixed[3]]);
    packet.seq = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
    packet.ack = u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]);
    packet.flags = fixed[13];
    packet.window = u16::from_be_bytes([fixed[14], fixed[15]]);
    // IPv6 jumbograms aside, segments are < 64 KiB; saturate rather than wrap for the rest.
    packet.payload_len = u32::try_from(payload_len).unwrap_or(u32::MAX);
    packet.mptcp.clear();
    packet.mptcp_overflow = 0;
    packet.ip_id = segment.ip_id;
    packet.timestamps = None;
    // A snap length that ends inside the options: walk what was captured and say so.
    packet.options_truncated = options_end < header_len;
    walk_options(
        captured.get(HEADER_LEN..options_end).unwrap_or_default(),
        packet,
    );
    Ok(())
}

/// Walks the TCP options (RFC 9293 §3.1): EOL ends the list, NOP is one byte, every other kind
/// has a length byte counting kind and length. An option that does not fit stops the walk.
#[inline(always)]
fn walk_options(mut options: &[u8], packet: &mut Packet) {
    while let Some(&kind) = options.first() {
        match kind {
            OPTION_EOL => return,
            OPTION_NOP => {
                options = &options[1..];
                continue;
            }
            _ => {}
        }
        let len = options.get(1).map_or(0, |&len| usize::from(len));
        let Some(option) = options.get(..len).filter(|_| len >= 2) else {
            packet.options_truncated = true;
            return;
        };
        if kind == mptcp::KIND {
            if packet.mptcp.is_full() {
                packet.mptcp_overflow = packet.mptcp_overflow.saturating_add(1);
            } else {
                packet.mptcp.push(mptcp::parse_option(option));
            }
        } else if kind == OPTION_TIMESTAMPS
            && len == TIMESTAMPS_LEN
            && let Some(ts) = option.first_chunk::<TIMESTAMPS_LEN>()
        {
            packet.timestamps = Some(Timestamps {
                tsval: u32::from_be_bytes([ts[2], ts[3], ts[4], ts[5]]),
                tsecr: u32::from_be_bytes([ts[6], ts[7], ts[8], ts[9]]),
            });
        }
        options = &options[len..];
    }
}

fn malformed(what: String) -> DecodeError {
    DecodeError::Malformed { layer: "TCP", what }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::{
        decode::{MAX_MPTCP_OPTIONS, MptcpOption, mptcp::WireSeq, tcp_flags},
        source::{Direction, LinkType},
    };

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    fn packet(decoded: Decoded) -> Packet {
        match decoded {
            Decoded::Tcp(packet) => packet,
            Decoded::NotTcp => panic!("the TCP layer always gives TCP"),
        }
    }

    fn raw() -> RawPacket<'static> {
        RawPacket {
            number: 7,
            ts_ns: 1_000,
            iface: 3,
            direction: Direction::Unknown,
            link_type: LinkType::Raw,
            data: &[],
            orig_len: 0,
            segments: 1,
        }
    }

    /// A TCP header with the given options (padded to 4 bytes with EOL) and data offset to match.
    fn header(flags: u8, options: &[u8]) -> Vec<u8> {
        let mut options = options.to_vec();
        options.resize(options.len().div_ceil(4) * 4, OPTION_EOL);
        let data_offset = u8::try_from((HEADER_LEN + options.len()) / 4).expect("test header");
        let mut h = vec![
            0xe8,
            0x5a, // source port 59482
            0x14,
            0x51, // destination port 5201
            0x67,
            0xd2,
            0x16,
            0xac, // sequence number 1741821612
            0xfc,
            0x94,
            0x8c,
            0x9b, // acknowledgment number 4237593755
            data_offset << 4,
            flags,
            0x72,
            0x10, // window 29200
            0x00,
            0x00, // checksum
            0x00,
            0x00, // urgent pointer
        ];
        h.extend_from_slice(&options);
        h
    }

    #[test]
    fn fixed_header_fields() {
        let h = header(tcp_flags::SYN | tcp_flags::ACK, &[]);
        let p = decode_tcp(&raw(), SRC, DST, &h, h.len() + 100)
            .map(packet)
            .expect("decodes");
        assert_eq!((p.number, p.ts_ns, p.iface), (7, 1_000, 3));
        assert_eq!((p.src, p.dst), (SRC, DST));
        assert_eq!((p.src_port, p.dst_port), (59482, 5201));
        assert_eq!((p.seq, p.ack), (1_741_821_612, 4_237_593_755));
        assert!(p.has_flag(tcp_flags::SYN) && p.has_flag(tcp_flags::ACK));
        assert!(!p.has_flag(tcp_flags::FIN));
        assert_eq!(p.window, 29200);
        assert_eq!(p.payload_len, 100);
        assert!(p.mptcp.is_empty() && !p.options_truncated && p.mptcp_overflow == 0);
    }

    /// NOP, NOP, timestamps (kind 8 len 10), a DSS with only a 4-byte data ACK (kind 30 len 8,
    /// subtype 2, flags A), then EOL and garbage after it that must not be read.
    #[test]
    fn option_walk_finds_mptcp_between_others() {
        let options = [
            1, 1, // NOP NOP
            8, 10, 0, 0, 0, 1, 0, 0, 0, 2, // timestamps
            30, 8, 0x20, 0x01, 0xe5, 0x89, 0xf0, 0xd4, // DSS, data ACK 3851022548
            0, 30, 3, // EOL, then bytes that would be a bad option
        ];
        let h = header(tcp_flags::ACK, &options);
        let p = decode_tcp(&raw(), SRC, DST, &h, h.len())
            .map(packet)
            .expect("decodes");
        assert_eq!(p.payload_len, 0);
        assert_eq!(p.mptcp.len(), 1);
        assert_eq!(
            p.mptcp[0],
            MptcpOption::Dss {
                data_fin: false,
                data_ack: Some(WireSeq::U32(3_851_022_548)),
                mapping: None
            }
        );
        assert!(!p.options_truncated);
        assert_eq!(p.timestamps, Some(Timestamps { tsval: 1, tsecr: 2 }));
        assert_eq!(p.ip_id, None, "the TCP layer alone knows no IP header");
    }

    #[test]
    fn timestamps_of_a_wrong_length_are_ignored() {
        let h = header(tcp_flags::ACK, &[8, 6, 0, 0, 0, 1]);
        let p = decode_tcp(&raw(), SRC, DST, &h, h.len())
            .map(packet)
            .expect("decodes");
        assert_eq!(p.timestamps, None);
        let h = header(tcp_flags::ACK, &[1, 1, 8, 10, 0xff, 0, 0, 1, 0, 0, 0, 0]);
        let p = decode_tcp(&raw(), SRC, DST, &h, h.len())
            .map(packet)
            .expect("decodes");
        assert_eq!(
            p.timestamps,
            Some(Timestamps {
                tsval: 0xff00_0001,
                tsecr: 0
            })
        );
    }

    #[test]
    fn bad_option_lengths_stop_the_walk() {
        // MP_PRIO (len 3) is kept; then an option with length 1.
        let h = header(tcp_flags::ACK, &[30, 3, 0x51, 2, 1]);
        let p = decode_tcp(&raw(), SRC, DST, &h, h.len())
            .map(packet)
            .expect("decodes");
        assert_eq!(p.mptcp.len(), 1);
        assert!(p.options_truncated);
        // An option whose length runs past the header.
        let h = header(tcp_flags::ACK, &[1, 30, 12, 0x00, 0x81]);
        let p = decode_tcp(&raw(), SRC, DST, &h, h.len())
            .map(packet)
            .expect("decodes");
        assert!(p.mptcp.is_empty());
        assert!(p.options_truncated);
        // A kind byte as the last byte of the header, with no room for its length.
        let mut h = header(tcp_flags::ACK, &[1, 1, 1, 8]);
        let p = decode_tcp(&raw(), SRC, DST, &h, h.len())
            .map(packet)
            .expect("decodes");
        assert!(p.options_truncated);
        // Length 0 would loop forever if accepted.
        h.truncate(HEADER_LEN);
        h[12] = 6 << 4;
        h.extend_from_slice(&[2, 0, 0, 0]);
        let p = decode_tcp(&raw(), SRC, DST, &h, h.len())
            .map(packet)
            .expect("decodes");
        assert!(p.options_truncated);
    }

    #[test]
    fn more_mptcp_options_than_kept_are_counted() {
        // Ten MP_PRIO v1 options (kind 30, len 3, subtype 5 | B) = 30 bytes.
        let options: Vec<u8> = [30u8, 3, 0x51].repeat(10);
        let h = header(tcp_flags::ACK, &options);
        let p = decode_tcp(&raw(), SRC, DST, &h, h.len())
            .map(packet)
            .expect("decodes");
        assert_eq!(p.mptcp.len(), MAX_MPTCP_OPTIONS);
        assert_eq!(usize::from(p.mptcp_overflow), 10 - MAX_MPTCP_OPTIONS);
        assert!(p.mptcp.iter().all(|o| *o
            == MptcpOption::Prio {
                backup: true,
                addr_id: None
            }));
    }

    #[test]
    fn snaplen_inside_options_keeps_what_was_captured() {
        // MP_PRIO (3 bytes) then a 12-byte MP_CAPABLE; the capture ends inside the second one.
        let options = [30, 3, 0x50, 30, 12, 0x00, 0x81, 1, 2, 3, 4, 5, 6, 7, 8];
        let h = header(tcp_flags::SYN, &options);
        let cut = &h[..HEADER_LEN + 8];
        let p = decode_tcp(&raw(), SRC, DST, cut, h.len() + 1000)
            .map(packet)
            .expect("decodes");
        assert_eq!(
            p.payload_len, 1000,
            "payload from the IP length, not the capture"
        );
        assert_eq!(p.mptcp.len(), 1);
        assert_eq!(
            p.mptcp[0],
            MptcpOption::Prio {
                backup: false,
                addr_id: None
            }
        );
        assert!(p.options_truncated);
    }

    #[test]
    fn truncated_and_malformed_headers() {
        let h = header(tcp_flags::SYN, &[]);
        assert_eq!(
            decode_tcp(&raw(), SRC, DST, &h[..19], 40),
            Err(DecodeError::Truncated {
                layer: "TCP",
                need: 20,
                have: 19
            })
        );
        let mut bad = h.clone();
        bad[12] = 4 << 4;
        assert!(matches!(
            decode_tcp(&raw(), SRC, DST, &bad, 40),
            Err(DecodeError::Malformed { layer: "TCP", .. })
        ));
        // The IP layer says the segment is 19 bytes but the header needs 20.
        assert!(matches!(
            decode_tcp(&raw(), SRC, DST, &h, 19),
            Err(DecodeError::Malformed { layer: "TCP", .. })
        ));
    }
}
