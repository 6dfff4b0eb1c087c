//! Link-layer headers: returns the bytes from the IP header on.
//!
//! The returned slice is always a suffix of `data` (`&data[offset..]`): `ip::decode_ip` relies on
//! that to compute the link header's length as `data.len() - l3.len()`.

use super::DecodeError;
use crate::source::LinkType;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// 802.1Q customer tag.
const ETHERTYPE_VLAN: u16 = 0x8100;
/// 802.1ad service tag (QinQ outer tag).
const ETHERTYPE_QINQ: u16 = 0x88a8;
/// The pre-standard QinQ outer tag some switches still send.
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;

const ETHERNET_HEADER_LEN: usize = 14;
const VLAN_TAG_LEN: usize = 4;
const SLL_HEADER_LEN: usize = 16;
const SLL2_HEADER_LEN: usize = 20;
const NULL_HEADER_LEN: usize = 4;

/// BSD address families of IPv4 and IPv6. AF_INET is 2 everywhere; AF_INET6 differs between
/// the BSDs (24 NetBSD/OpenBSD, 28 FreeBSD, 30 macOS), and a capture can come from any of them.
const AF_INET: u32 = 2;
const AF_INET6: [u32; 3] = [24, 28, 30];

const PPP_ADDRESS: u8 = 0xff;
const PPP_CONTROL: u8 = 0x03;
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;

/// Strips the link-layer header; `Ok(None)` when the frame does not carry IPv4/IPv6.
pub fn strip(link_type: LinkType, data: &[u8]) -> Result<Option<&[u8]>, DecodeError> {
    match link_type {
        LinkType::Ethernet => ethernet(data),
        LinkType::LinuxSll => {
            need("Linux SLL", SLL_HEADER_LEN, data)?;
            Ok(by_ethertype(be16_at(data, 14), data, SLL_HEADER_LEN))
        }
        LinkType::LinuxSll2 => {
            need("Linux SLL2", SLL2_HEADER_LEN, data)?;
            Ok(by_ethertype(be16_at(data, 0), data, SLL2_HEADER_LEN))
        }
        LinkType::Raw => {
            need("raw IP", 1, data)?;
            Ok(match data[0] >> 4 {
                4 | 6 => Some(data),
                _ => None,
            })
        }
        // The IP layer checks the version nibble; these link types promise one version.
        LinkType::Ipv4 | LinkType::Ipv6 => Ok(Some(data)),
        LinkType::Null => {
            need("BSD loopback", NULL_HEADER_LEN, data)?;
            let family = [data[0], data[1], data[2], data[3]];
            // Host byte order of the capturing machine, which the file does not tell: accept
            // both. The families are < 256, so the wrong order gives a value ≥ 2^24 that matches
            // nothing, and the two readings can never both match.
            let is = |af: u32| u32::from_le_bytes(family) == af || u32::from_be_bytes(family) == af;
            Ok(null_family(is, data))
        }
        LinkType::Loop => {
            need("OpenBSD loopback", NULL_HEADER_LEN, data)?;
            let family = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            Ok(null_family(|af| family == af, data))
        }
        LinkType::Ppp => ppp(data),
    }
}

fn ethernet(data: &[u8]) -> Result<Option<&[u8]>, DecodeError> {
    need("Ethernet", ETHERNET_HEADER_LEN, data)?;
    let mut ethertype = be16_at(data, 12);
    let mut offset = ETHERNET_HEADER_LEN;
    // Any number of stacked tags (QinQ and beyond); each ends with the next ethertype. The loop
    // ends because every tag moves `offset` on by 4 and `need` stops it at the end of `data`.
    while matches!(
        ethertype,
        ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
    ) {
        need("802.1Q VLAN tag", offset + VLAN_TAG_LEN, data)?;
        ethertype = be16_at(data, offset + 2);
        offset += VLAN_TAG_LEN;
    }
    Ok(by_ethertype(ethertype, data, offset))
}

fn ppp(data: &[u8]) -> Result<Option<&[u8]>, DecodeError> {
    let mut offset = 0;
    // HDLC-like framing (RFC 1662) puts address 0xff and control 0x03 first; address/control
    // field compression (ACFC) leaves them out. A protocol field never starts with 0xff (its
    // first byte is even), so the two cases cannot be confused.
    if data.first() == Some(&PPP_ADDRESS) {
        need("PPP", 2, data)?;
        if data[1] != PPP_CONTROL {
            return Ok(None);
        }
        offset = 2;
    }
    need("PPP", offset + 1, data)?;
    // Protocol field compression (RFC 1661 §6.5): protocol numbers have an even high byte and an
    // odd low byte, so an odd first byte is a 1-byte compressed protocol.
    let protocol = if data[offset] & 1 == 1 {
        offset += 1;
        u16::from(data[offset - 1])
    } else {
        need("PPP", offset + 2, data)?;
        offset += 2;
        be16_at(data, offset - 2)
    };
    Ok(match protocol {
        PPP_IPV4 | PPP_IPV6 => Some(&data[offset..]),
        _ => None,
    })
}

fn null_family(is: impl Fn(u32) -> bool, data: &[u8]) -> Option<&[u8]> {
    (is(AF_INET) || AF_INET6.into_iter().any(is)).then(|| &data[NULL_HEADER_LEN..])
}

fn by_ethertype(ethertype: u16, data: &[u8], offset: usize) -> Option<&[u8]> {
    match ethertype {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => data.get(offset..),
        _ => None,
    }
}

/// The caller has checked that `data` holds `at + 2` bytes.
fn be16_at(data: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([data[at], data[at + 1]])
}

fn need(layer: &'static str, need: usize, data: &[u8]) -> Result<(), DecodeError> {
    if data.len() < need {
        return Err(DecodeError::Truncated {
            layer,
            need,
            have: data.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 header's first bytes and an IPv6 header's first bytes: `strip` only has to hand
    /// them over, so a few bytes identify what it returned.
    const V4: [u8; 4] = [0x45, 0x00, 0x00, 0x28];
    const V6: [u8; 4] = [0x60, 0x00, 0x00, 0x00];

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn ethernet_ipv4_ipv6_and_other() {
        let macs = [0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        let v4 = cat(&[&macs, &[0x08, 0x00], &V4]);
        assert_eq!(strip(LinkType::Ethernet, &v4), Ok(Some(&V4[..])));
        let v6 = cat(&[&macs, &[0x86, 0xdd], &V6]);
        assert_eq!(strip(LinkType::Ethernet, &v6), Ok(Some(&V6[..])));
        // ARP (0x0806) is not IP.
        let arp = cat(&[&macs, &[0x08, 0x06], &[0; 28]]);
        assert_eq!(strip(LinkType::Ethernet, &arp), Ok(None));
    }

    #[test]
    fn ethernet_vlan_and_qinq() {
        let macs = [0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        // 802.1Q: TPID 0x8100, TCI (PCP 0, VID 100), then the inner ethertype.
        let dot1q = cat(&[&macs, &[0x81, 0x00, 0x00, 0x64, 0x08, 0x00], &V4]);
        assert_eq!(strip(LinkType::Ethernet, &dot1q), Ok(Some(&V4[..])));
        // 802.1ad outer tag (VID 10), 802.1Q inner tag (VID 100), IPv6.
        let qinq = cat(&[
            &macs,
            &[0x88, 0xa8, 0x00, 0x0a, 0x81, 0x00, 0x00, 0x64, 0x86, 0xdd],
            &V6,
        ]);
        assert_eq!(strip(LinkType::Ethernet, &qinq), Ok(Some(&V6[..])));
        // Old-style 0x9100 outer tag.
        let old = cat(&[
            &macs,
            &[0x91, 0x00, 0x00, 0x0a, 0x81, 0x00, 0x00, 0x64, 0x08, 0x00],
            &V4,
        ]);
        assert_eq!(strip(LinkType::Ethernet, &old), Ok(Some(&V4[..])));
        // Frame that ends inside the second tag.
        let cut = cat(&[&macs, &[0x88, 0xa8, 0x00, 0x0a, 0x81, 0x00, 0x00]]);
        assert_eq!(
            strip(LinkType::Ethernet, &cut),
            Err(DecodeError::Truncated {
                layer: "802.1Q VLAN tag",
                need: 22,
                have: 19
            })
        );
    }

    #[test]
    fn ethernet_truncated() {
        assert_eq!(
            strip(LinkType::Ethernet, &[0; 13]),
            Err(DecodeError::Truncated {
                layer: "Ethernet",
                need: 14,
                have: 13
            })
        );
        // A 14-byte IPv4 frame with nothing after the header: the IP layer reports that.
        let empty = cat(&[&[0; 12], &[0x08, 0x00]]);
        assert_eq!(strip(LinkType::Ethernet, &empty), Ok(Some(&[][..])));
    }

    #[test]
    fn linux_sll() {
        // Packet type 4 (sent by us), ARPHRD_ETHER 1, address length 6, address padded to 8,
        // protocol 0x0800 — the header of client_2.pcap's frame 2.
        let header = [
            0x00, 0x04, 0x00, 0x01, 0x00, 0x06, 0xea, 0x00, 0x33, 0x12, 0xc4, 0x1c, 0, 0,
        ];
        let v4 = cat(&[&header, &[0x08, 0x00], &V4]);
        assert_eq!(strip(LinkType::LinuxSll, &v4), Ok(Some(&V4[..])));
        let v6 = cat(&[&header, &[0x86, 0xdd], &V6]);
        assert_eq!(strip(LinkType::LinuxSll, &v6), Ok(Some(&V6[..])));
        let arp = cat(&[&header, &[0x08, 0x06], &[0; 28]]);
        assert_eq!(strip(LinkType::LinuxSll, &arp), Ok(None));
        assert_eq!(
            strip(LinkType::LinuxSll, &header),
            Err(DecodeError::Truncated {
                layer: "Linux SLL",
                need: 16,
                have: 14
            })
        );
    }

    #[test]
    fn linux_sll2() {
        // Protocol 0x86dd, reserved, ifindex 3, ARPHRD_ETHER, packet type 0, address length 6,
        // address padded to 8.
        let rest = [
            0, 0, 0, 0, 0, 3, 0x00, 0x01, 0x00, 0x06, 2, 0, 0, 0, 0, 1, 0, 0,
        ];
        let v6 = cat(&[&[0x86, 0xdd], &rest, &V6]);
        assert_eq!(strip(LinkType::LinuxSll2, &v6), Ok(Some(&V6[..])));
        let v4 = cat(&[&[0x08, 0x00], &rest, &V4]);
        assert_eq!(strip(LinkType::LinuxSll2, &v4), Ok(Some(&V4[..])));
        let other = cat(&[&[0x88, 0xcc], &rest]);
        assert_eq!(strip(LinkType::LinuxSll2, &other), Ok(None));
        assert_eq!(
            strip(LinkType::LinuxSll2, &v4[..19]),
            Err(DecodeError::Truncated {
                layer: "Linux SLL2",
                need: 20,
                have: 19
            })
        );
    }

    #[test]
    fn raw_and_fixed_version() {
        assert_eq!(strip(LinkType::Raw, &V4), Ok(Some(&V4[..])));
        assert_eq!(strip(LinkType::Raw, &V6), Ok(Some(&V6[..])));
        assert_eq!(strip(LinkType::Raw, &[0x50, 0]), Ok(None));
        assert_eq!(
            strip(LinkType::Raw, &[]),
            Err(DecodeError::Truncated {
                layer: "raw IP",
                need: 1,
                have: 0
            })
        );
        assert_eq!(strip(LinkType::Ipv4, &V4), Ok(Some(&V4[..])));
        assert_eq!(strip(LinkType::Ipv6, &V6), Ok(Some(&V6[..])));
    }

    #[test]
    fn bsd_null_both_byte_orders() {
        // Little-endian host (x86): AF_INET = 02 00 00 00.
        let le = cat(&[&[2, 0, 0, 0], &V4]);
        assert_eq!(strip(LinkType::Null, &le), Ok(Some(&V4[..])));
        // Big-endian host: 00 00 00 02.
        let be = cat(&[&[0, 0, 0, 2], &V4]);
        assert_eq!(strip(LinkType::Null, &be), Ok(Some(&V4[..])));
        // Every AF_INET6 value in both orders.
        for af in [24u8, 28, 30] {
            let le = cat(&[&[af, 0, 0, 0], &V6]);
            assert_eq!(strip(LinkType::Null, &le), Ok(Some(&V6[..])), "AF {af} LE");
            let be = cat(&[&[0, 0, 0, af], &V6]);
            assert_eq!(strip(LinkType::Null, &be), Ok(Some(&V6[..])), "AF {af} BE");
        }
        // AF_UNIX 1 and a byte-swapped-looking but wrong value.
        assert_eq!(strip(LinkType::Null, &cat(&[&[1, 0, 0, 0], &V4])), Ok(None));
        assert_eq!(strip(LinkType::Null, &cat(&[&[0, 2, 0, 0], &V4])), Ok(None));
        assert_eq!(
            strip(LinkType::Null, &[2, 0, 0]),
            Err(DecodeError::Truncated {
                layer: "BSD loopback",
                need: 4,
                have: 3
            })
        );
    }

    #[test]
    fn loop_network_order_only() {
        let be = cat(&[&[0, 0, 0, 2], &V4]);
        assert_eq!(strip(LinkType::Loop, &be), Ok(Some(&V4[..])));
        let be6 = cat(&[&[0, 0, 0, 24], &V6]);
        assert_eq!(strip(LinkType::Loop, &be6), Ok(Some(&V6[..])));
        // Host order is not accepted for LOOP.
        let le = cat(&[&[2, 0, 0, 0], &V4]);
        assert_eq!(strip(LinkType::Loop, &le), Ok(None));
        assert!(matches!(
            strip(LinkType::Loop, &[0, 0]),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn ppp_forms() {
        // Address 0xff, control 0x03, protocol 0x0021.
        let full = cat(&[&[0xff, 0x03, 0x00, 0x21], &V4]);
        assert_eq!(strip(LinkType::Ppp, &full), Ok(Some(&V4[..])));
        // Address/control compressed, protocol 0x0057.
        let acfc = cat(&[&[0x00, 0x57], &V6]);
        assert_eq!(strip(LinkType::Ppp, &acfc), Ok(Some(&V6[..])));
        // Address/control present, protocol compressed to one byte 0x21.
        let pfc = cat(&[&[0xff, 0x03, 0x21], &V4]);
        assert_eq!(strip(LinkType::Ppp, &pfc), Ok(Some(&V4[..])));
        // Both compressed: protocol byte 0x57.
        let both = cat(&[&[0x57], &V6]);
        assert_eq!(strip(LinkType::Ppp, &both), Ok(Some(&V6[..])));
        // LCP 0xc021 is not IP.
        assert_eq!(
            strip(LinkType::Ppp, &[0xff, 0x03, 0xc0, 0x21, 1, 2]),
            Ok(None)
        );
        assert_eq!(
            strip(LinkType::Ppp, &[0xff, 0x03, 0x00]),
            Err(DecodeError::Truncated {
                layer: "PPP",
                need: 4,
                have: 3
            })
        );
        assert_eq!(
            strip(LinkType::Ppp, &[]),
            Err(DecodeError::Truncated {
                layer: "PPP",
                need: 1,
                have: 0
            })
        );
        assert_eq!(
            strip(LinkType::Ppp, &[0xff]),
            Err(DecodeError::Truncated {
                layer: "PPP",
                need: 2,
                have: 1
            })
        );
    }
}
