//! IPv4 (with options) and IPv6 (with extension headers).
//!
//! The TCP segment's length comes from the IP header (IPv4 total length, IPv6 payload length),
//! never from the captured length: a capture cut by its snap length (`tcpdump -s 128`) then
//! counts the same payload bytes as a full one, and Ethernet padding after a short frame is not
//! counted at all.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{DecodeError, Decoded, tcp};
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

/// Decodes the IP header at the start of `l3` and hands the TCP segment to `tcp`.
pub fn decode_ip(raw: &RawPacket<'_>, l3: &[u8]) -> Result<Decoded, DecodeError> {
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

fn ipv4(raw: &RawPacket<'_>, l3: &[u8]) -> Result<Decoded, DecodeError> {
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
        return Ok(Decoded::NotTcp);
    }
    // Only the first fragment holds the TCP header. Its payload length below is that fragment's
    // share of the segment, which is all this packet carries.
    if u16::from_be_bytes([fixed[6], fixed[7]]) & IPV4_FRAGMENT_OFFSET_MASK != 0 {
        return Ok(Decoded::NotTcp);
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
    tcp::decode_tcp(raw, src, dst, captured, segment_len).map(Decoded::Tcp)
}

fn ipv6(raw: &RawPacket<'_>, l3: &[u8]) -> Result<Decoded, DecodeError> {
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
                    return Ok(Decoded::NotTcp);
                }
                header
            }
            // AH's length counts 4-byte units minus 2 (RFC 4302 §2.2).
            EXT_AH => ext_header(l3, offset, 2, |len| (usize::from(len) + 2) * 4)?,
            // ESP (50) hides what follows, no-next-header (59) has nothing; the rest is not TCP.
            _ => return Ok(Decoded::NotTcp),
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
    tcp::decode_tcp(raw, src, dst, captured, segment_len).map(Decoded::Tcp)
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
