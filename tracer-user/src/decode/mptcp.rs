//! MPTCP option (TCP option kind 30) layouts, v0 (RFC 6824) and v1 (RFC 8684).
//!
//! `parse_option` takes the option's bytes including kind and length and returns one
//! `MptcpOption`. A layout that fits no form of its subtype becomes `Malformed`, an unknown
//! subtype `Unknown`: both are kept so the analysis can count and show them.

use std::net::IpAddr;

use arrayvec::ArrayVec;

/// TCP option kind of MPTCP.
pub const KIND: u8 = 30;

pub mod subtype {
    pub const MP_CAPABLE: u8 = 0;
    pub const MP_JOIN: u8 = 1;
    pub const DSS: u8 = 2;
    pub const ADD_ADDR: u8 = 3;
    pub const REMOVE_ADDR: u8 = 4;
    pub const MP_PRIO: u8 = 5;
    pub const MP_FAIL: u8 = 6;
    pub const MP_FASTCLOSE: u8 = 7;
    pub const MP_TCPRST: u8 = 8;
}

/// A 32- or 64-bit sequence number as it was on the wire. 32-bit values are the low bits of the
/// 64-bit one; the analysis expands them against what it knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WireSeq {
    U32(u32),
    U64(u64),
}

/// A DSS mapping: `len` data-level bytes starting at `dsn` are carried by the subflow bytes
/// starting at relative subflow sequence `ssn`. `len == 0` is the infinite mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DssMapping {
    pub dsn: WireSeq,
    /// Subflow sequence number relative to the subflow's initial sequence number.
    pub ssn: u32,
    pub len: u16,
    pub checksum: Option<u16>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinOption {
    /// MP_JOIN on a SYN (length 12): token of the receiver's key.
    Syn {
        backup: bool,
        addr_id: u8,
        token: u32,
        nonce: u32,
    },
    /// MP_JOIN on a SYN/ACK (length 16): truncated HMAC.
    SynAck {
        backup: bool,
        addr_id: u8,
        hmac: u64,
        nonce: u32,
    },
    /// MP_JOIN on the third ACK (length 24): full 160-bit HMAC.
    Ack { hmac: [u8; 20] },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MptcpOption {
    /// MP_CAPABLE. Which keys are present depends on the form:
    /// v0 SYN / SYN-ACK and v1 SYN-ACK (len 12): `sender_key`;
    /// v1 SYN (len 4): none; third ACK (len 20): `sender_key` and `receiver_key`;
    /// v1 ACK with data (len 22/24): both keys, `data_len` and optionally `checksum`.
    Capable {
        version: u8,
        /// Byte 3: A (checksum required), B (extensibility), C (no more subflows to source
        /// address), H (HMAC-SHA256 / HMAC-SHA1).
        flags: u8,
        sender_key: Option<u64>,
        receiver_key: Option<u64>,
        data_len: Option<u16>,
        checksum: Option<u16>,
    },
    Join(JoinOption),
    /// DSS: data ACK and/or mapping, DATA_FIN flag.
    Dss {
        data_fin: bool,
        data_ack: Option<WireSeq>,
        mapping: Option<DssMapping>,
    },
    /// ADD_ADDR. `v0` is RFC 6824's layout (IP version nibble, no HMAC); v1 has the echo flag
    /// and an 8-byte truncated HMAC unless it is an echo.
    AddAddr {
        v0: bool,
        echo: bool,
        addr_id: u8,
        addr: IpAddr,
        port: Option<u16>,
        hmac: Option<u64>,
    },
    /// REMOVE_ADDR with one or more address ids.
    RemoveAddr {
        addr_ids: ArrayVec<u8, 37>,
    },
    /// MP_PRIO; the address id is present only in the 4-byte form.
    Prio {
        backup: bool,
        addr_id: Option<u8>,
    },
    /// MP_FAIL with the 64-bit DSN where the checksum failed.
    Fail {
        dsn: u64,
    },
    /// MP_FASTCLOSE with the receiver's key.
    FastClose {
        receiver_key: u64,
    },
    /// MP_TCPRST (v1): U/V/W/T flags and the reason code.
    TcpRst {
        flags: u8,
        reason: u8,
    },
    /// A subtype this decoder does not know (kept and counted).
    Unknown {
        subtype: u8,
        len: u8,
    },
    /// A known subtype whose length fits none of its forms.
    Malformed {
        subtype: u8,
        len: u8,
    },
}

impl MptcpOption {
    pub fn subtype(&self) -> u8 {
        match self {
            MptcpOption::Capable { .. } => subtype::MP_CAPABLE,
            MptcpOption::Join(_) => subtype::MP_JOIN,
            MptcpOption::Dss { .. } => subtype::DSS,
            MptcpOption::AddAddr { .. } => subtype::ADD_ADDR,
            MptcpOption::RemoveAddr { .. } => subtype::REMOVE_ADDR,
            MptcpOption::Prio { .. } => subtype::MP_PRIO,
            MptcpOption::Fail { .. } => subtype::MP_FAIL,
            MptcpOption::FastClose { .. } => subtype::MP_FASTCLOSE,
            MptcpOption::TcpRst { .. } => subtype::MP_TCPRST,
            MptcpOption::Unknown { subtype, .. } | MptcpOption::Malformed { subtype, .. } => {
                *subtype
            }
        }
    }
}

/// Name of an MP_TCPRST reason code (RFC 8684 §3.6).
pub fn tcprst_reason_name(reason: u8) -> &'static str {
    match reason {
        0 => "unspecified",
        1 => "MPTCP-specific error",
        2 => "lack of resources",
        3 => "administratively prohibited",
        4 => "too much outstanding data",
        5 => "unacceptable performance",
        6 => "middlebox interference",
        _ => "unknown reason",
    }
}

/// Parses one MPTCP option; `opt` starts at the kind byte and is exactly `length` bytes long.
///
/// Every form is recognised by its length (the length byte and `opt.len()` agree, the TCP option
/// walk guarantees it); the reads below happen only after the length has been checked, and go
/// through `be*`, which cannot index out of range even if that were wrong.
pub fn parse_option(opt: &[u8]) -> MptcpOption {
    // TCP options are at most 40 bytes; anything past 255 cannot come from a header.
    let len = u8::try_from(opt.len()).unwrap_or(u8::MAX);
    let Some(&byte2) = opt.get(2) else {
        // Kind and length only: not even a subtype.
        return MptcpOption::Malformed {
            subtype: SUBTYPE_MISSING,
            len,
        };
    };
    let subtype = byte2 >> 4;
    // The four bits after the subtype (flags, version or IP version, by subtype).
    let low = byte2 & 0x0f;
    let malformed = MptcpOption::Malformed { subtype, len };
    match subtype {
        subtype::MP_CAPABLE => capable(opt, low).unwrap_or(malformed),
        subtype::MP_JOIN => join(opt, low).unwrap_or(malformed),
        subtype::DSS => dss(opt).unwrap_or(malformed),
        subtype::ADD_ADDR => add_addr(opt, low).unwrap_or(malformed),
        subtype::REMOVE_ADDR => match opt.get(3..) {
            Some(ids) if !ids.is_empty() => ArrayVec::try_from(ids)
                .map_or(malformed, |addr_ids| MptcpOption::RemoveAddr { addr_ids }),
            _ => malformed,
        },
        subtype::MP_PRIO => match opt.len() {
            // RFC 8684 §3.3.8: subtype, B flag; no address id.
            3 => MptcpOption::Prio {
                backup: low & 1 == 1,
                addr_id: None,
            },
            // RFC 6824 §3.3.8: subtype, B flag, address id.
            4 => MptcpOption::Prio {
                backup: low & 1 == 1,
                addr_id: Some(byte(opt, 3)),
            },
            _ => malformed,
        },
        // Subtype + 12 reserved bits, then the 64-bit DSN (RFC 8684 §3.7).
        subtype::MP_FAIL if opt.len() == 12 => MptcpOption::Fail { dsn: be64(opt, 4) },
        // Subtype + 12 reserved bits, then the option receiver's key (RFC 8684 §3.5).
        subtype::MP_FASTCLOSE if opt.len() == 12 => MptcpOption::FastClose {
            receiver_key: be64(opt, 4),
        },
        // Subtype, U V W T flags, reason code (RFC 8684 §3.6).
        subtype::MP_TCPRST if opt.len() == 4 => MptcpOption::TcpRst {
            flags: low,
            reason: byte(opt, 3),
        },
        subtype::MP_FAIL | subtype::MP_FASTCLOSE | subtype::MP_TCPRST => malformed,
        _ => MptcpOption::Unknown { subtype, len },
    }
}

/// `Malformed::subtype` of an option too short to have a subtype byte (real subtypes are 4 bits).
pub const SUBTYPE_MISSING: u8 = 0xff;

/// MP_CAPABLE (RFC 8684 §3.1, RFC 6824 §3.1): kind, length, subtype|version, flags (A B C D E F G
/// H), then by length: nothing (v1 SYN), the sender's key, both keys, both keys and the
/// data-level length, and that plus the checksum. The form is chosen by length alone, not by
/// version, so a v0 peer sending a v1 layout is still read (and its version shown).
fn capable(opt: &[u8], version: u8) -> Option<MptcpOption> {
    let (sender_key, receiver_key, data_len, checksum) = match opt.len() {
        4 => (None, None, None, None),
        12 => (Some(be64(opt, 4)), None, None, None),
        20 => (Some(be64(opt, 4)), Some(be64(opt, 12)), None, None),
        22 => (
            Some(be64(opt, 4)),
            Some(be64(opt, 12)),
            Some(be16(opt, 20)),
            None,
        ),
        24 => (
            Some(be64(opt, 4)),
            Some(be64(opt, 12)),
            Some(be16(opt, 20)),
            Some(be16(opt, 22)),
        ),
        _ => return None,
    };
    Some(MptcpOption::Capable {
        version,
        flags: byte(opt, 3),
        sender_key,
        receiver_key,
        data_len,
        checksum,
    })
}

/// MP_JOIN (RFC 8684 §3.2), one form per handshake packet, told apart by length.
fn join(opt: &[u8], low: u8) -> Option<MptcpOption> {
    let backup = low & 1 == 1;
    Some(MptcpOption::Join(match opt.len() {
        // SYN: subtype, B; address id; receiver's token; sender's random number.
        12 => JoinOption::Syn {
            backup,
            addr_id: byte(opt, 3),
            token: be32(opt, 4),
            nonce: be32(opt, 8),
        },
        // SYN/ACK: subtype, B; address id; 64-bit truncated HMAC; sender's random number.
        16 => JoinOption::SynAck {
            backup,
            addr_id: byte(opt, 3),
            hmac: be64(opt, 4),
            nonce: be32(opt, 12),
        },
        // Third ACK: subtype and 12 reserved bits, then the full 160-bit HMAC.
        24 => JoinOption::Ack {
            hmac: bytes(opt, 4),
        },
        _ => return None,
    }))
}

mod dss_flags {
    /// Data ACK present.
    pub const A: u8 = 0x01;
    /// Data ACK is 8 octets.
    pub const A8: u8 = 0x02;
    /// DSN, subflow sequence number, data-level length and checksum present.
    pub const M: u8 = 0x04;
    /// DSN is 8 octets.
    pub const M8: u8 = 0x08;
    /// DATA_FIN.
    pub const F: u8 = 0x10;
}

/// DSS (RFC 8684 §3.3, same layout in RFC 6824): kind, length, subtype and reserved bits, flags
/// (reserved bits, F m M a A), the data ACK (4 or 8 bytes, if A), then the mapping (if M): DSN
/// (4 or 8), subflow sequence number (4), data-level length (2) and the checksum (2) when the
/// connection negotiated checksums, which only the length tells. `a` without `A` and `m` without
/// `M` say nothing.
fn dss(opt: &[u8]) -> Option<MptcpOption> {
    let flags = byte(opt, 3);
    let has = |flag: u8| flags & flag != 0;
    let mut at = 4;
    let data_ack = match (has(dss_flags::A), has(dss_flags::A8)) {
        (false, _) => None,
        (true, false) => Some(WireSeq::U32(be32(opt, at))),
        (true, true) => Some(WireSeq::U64(be64(opt, at))),
    };
    at += match data_ack {
        None => 0,
        Some(WireSeq::U32(_)) => 4,
        Some(WireSeq::U64(_)) => 8,
    };
    if !has(dss_flags::M) {
        return (opt.len() == at).then_some(MptcpOption::Dss {
            data_fin: has(dss_flags::F),
            data_ack,
            mapping: None,
        });
    }
    let dsn_len = if has(dss_flags::M8) { 8 } else { 4 };
    let without_checksum = at + dsn_len + 4 + 2;
    let checksum = match opt.len() {
        n if n == without_checksum => None,
        n if n == without_checksum + 2 => Some(be16(opt, without_checksum)),
        _ => return None,
    };
    let dsn = if dsn_len == 8 {
        WireSeq::U64(be64(opt, at))
    } else {
        WireSeq::U32(be32(opt, at))
    };
    at += dsn_len;
    let mapping = DssMapping {
        dsn,
        ssn: be32(opt, at),
        len: be16(opt, at + 4),
        checksum,
    };
    Some(MptcpOption::Dss {
        data_fin: has(dss_flags::F),
        data_ack,
        mapping: Some(mapping),
    })
}

/// ADD_ADDR, whose two versions differ in the nibble after the subtype:
/// - RFC 6824 (v0): IPVer, 4 or 6; address id; address; optional port. Lengths 8/10 (IPv4
///   without/with port), 20/22 (IPv6).
/// - RFC 8684 (v1): three reserved bits and E (echo); address id; address; optional port;
///   8-byte truncated HMAC unless an echo. IPv4 8/10 (echo, without/with port) and 16/18 (HMAC),
///   IPv6 20/22 and 28/30; the family comes from the length, and these eight lengths are all
///   different, so the length alone decides.
///
/// Ambiguity: a stateless decoder cannot know the connection's version, so the nibble decides.
/// v1's nibble is 0 or 1 while its reserved bits are zero, v0's is 4 or 6: 4 and 6 are read as
/// v0, everything else as v1 with bit 0 as E (reserved bits ignored, as RFC 8684 asks).
fn add_addr(opt: &[u8], low: u8) -> Option<MptcpOption> {
    let addr_id = byte(opt, 3);
    if low == 4 || low == 6 {
        let (addr, port) = match (low, opt.len()) {
            (4, 8) => (v4(opt), None),
            (4, 10) => (v4(opt), Some(be16(opt, 8))),
            (6, 20) => (v6(opt), None),
            (6, 22) => (v6(opt), Some(be16(opt, 20))),
            _ => return None,
        };
        return Some(MptcpOption::AddAddr {
            v0: true,
            echo: false,
            addr_id,
            addr,
            port,
            hmac: None,
        });
    }
    let (addr, port, hmac) = match opt.len() {
        8 => (v4(opt), None, None),
        10 => (v4(opt), Some(be16(opt, 8)), None),
        16 => (v4(opt), None, Some(be64(opt, 8))),
        18 => (v4(opt), Some(be16(opt, 8)), Some(be64(opt, 10))),
        20 => (v6(opt), None, None),
        22 => (v6(opt), Some(be16(opt, 20)), None),
        28 => (v6(opt), None, Some(be64(opt, 20))),
        30 => (v6(opt), Some(be16(opt, 20)), Some(be64(opt, 22))),
        _ => return None,
    };
    Some(MptcpOption::AddAddr {
        v0: false,
        echo: low & 1 == 1,
        addr_id,
        addr,
        port,
        hmac,
    })
}

fn v4(opt: &[u8]) -> IpAddr {
    IpAddr::from(bytes::<4>(opt, 4))
}

fn v6(opt: &[u8]) -> IpAddr {
    IpAddr::from(bytes::<16>(opt, 4))
}

/// `N` bytes at `at`. Callers check the option's length first; should one not, this reads zeros
/// instead of panicking.
fn bytes<const N: usize>(opt: &[u8], at: usize) -> [u8; N] {
    let mut out = [0; N];
    if let Some(src) = opt.get(at..at + N) {
        out.copy_from_slice(src);
    }
    out
}

fn byte(opt: &[u8], at: usize) -> u8 {
    opt.get(at).copied().unwrap_or(0)
}

fn be16(opt: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(bytes(opt, at))
}

fn be32(opt: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes(opt, at))
}

fn be64(opt: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(bytes(opt, at))
}

#[cfg(test)]
mod tests {
    //! Options built byte by byte from the figures of RFC 8684 (v1) and RFC 6824 (v0); the
    //! comments name the figure's fields.

    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    const KEY_A: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
    const KEY_A_VALUE: u64 = 0x0123_4567_89ab_cdef;
    const KEY_B: [u8; 8] = [0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10];
    const KEY_B_VALUE: u64 = 0xfedc_ba98_7654_3210;

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn capable(
        version: u8,
        flags: u8,
        keys: (Option<u64>, Option<u64>),
        data_len: Option<u16>,
        checksum: Option<u16>,
    ) -> MptcpOption {
        MptcpOption::Capable {
            version,
            flags,
            sender_key: keys.0,
            receiver_key: keys.1,
            data_len,
            checksum,
        }
    }

    /// RFC 8684 Figure 4: Kind | Length | Subtype 0 | Version | A B C D E F G H | keys | data-level
    /// length | checksum.
    #[test]
    fn mp_capable_v1_every_length() {
        // v1 SYN: no key. Flags 0x81 = A (checksum required) and H (HMAC-SHA256).
        let syn = [30, 4, 0x01, 0x81];
        assert_eq!(
            parse_option(&syn),
            capable(1, 0x81, (None, None), None, None)
        );
        // SYN/ACK: the sender's key.
        let syn_ack = cat(&[&[30, 12, 0x01, 0x01], &KEY_A]);
        assert_eq!(
            parse_option(&syn_ack),
            capable(1, 0x01, (Some(KEY_A_VALUE), None), None, None)
        );
        // Third ACK: sender's key, then receiver's key.
        let ack = cat(&[&[30, 20, 0x01, 0x01], &KEY_A, &KEY_B]);
        assert_eq!(
            parse_option(&ack),
            capable(1, 0x01, (Some(KEY_A_VALUE), Some(KEY_B_VALUE)), None, None)
        );
        // ACK with data: + data-level length 1448 (0x05a8).
        let data = cat(&[&[30, 22, 0x01, 0x01], &KEY_A, &KEY_B, &[0x05, 0xa8]]);
        assert_eq!(
            parse_option(&data),
            capable(
                1,
                0x01,
                (Some(KEY_A_VALUE), Some(KEY_B_VALUE)),
                Some(1448),
                None
            )
        );
        // + checksum 0xbeef, with A set.
        let csum = cat(&[
            &[30, 24, 0x01, 0x81],
            &KEY_A,
            &KEY_B,
            &[0x05, 0xa8, 0xbe, 0xef],
        ]);
        assert_eq!(
            parse_option(&csum),
            capable(
                1,
                0x81,
                (Some(KEY_A_VALUE), Some(KEY_B_VALUE)),
                Some(1448),
                Some(0xbeef)
            )
        );
    }

    /// RFC 6824 Figure 4: Kind | Length | Subtype 0 | Version 0 | A B C D E F G H | sender's key
    /// | receiver's key (ACK only).
    #[test]
    fn mp_capable_v0() {
        // Flags 0x01 = H (HMAC-SHA1 in v0).
        let syn = cat(&[&[30, 12, 0x00, 0x01], &KEY_B]);
        assert_eq!(
            parse_option(&syn),
            capable(0, 0x01, (Some(KEY_B_VALUE), None), None, None)
        );
        let ack = cat(&[&[30, 20, 0x00, 0x01], &KEY_B, &KEY_A]);
        assert_eq!(
            parse_option(&ack),
            capable(0, 0x01, (Some(KEY_B_VALUE), Some(KEY_A_VALUE)), None, None)
        );
    }

    #[test]
    fn mp_capable_bad_lengths() {
        for len in [3usize, 5, 8, 11, 13, 19, 21, 23, 25, 28] {
            let mut opt = vec![0u8; len];
            opt[0] = 30;
            opt[1] = len as u8;
            opt[2] = 0x01;
            assert_eq!(
                parse_option(&opt),
                MptcpOption::Malformed {
                    subtype: subtype::MP_CAPABLE,
                    len: len as u8
                },
                "length {len}"
            );
        }
    }

    /// RFC 8684 Figures 5–7 (identical in RFC 6824).
    #[test]
    fn mp_join_three_forms() {
        // Figure 5, SYN: Kind | Length 12 | Subtype 1 | rsv | B=1 | Address ID 7 | receiver's
        // token 0xa1b2c3d4 | sender's random number 0x01020304.
        let syn = [
            30, 12, 0x11, 7, 0xa1, 0xb2, 0xc3, 0xd4, 0x01, 0x02, 0x03, 0x04,
        ];
        assert_eq!(
            parse_option(&syn),
            MptcpOption::Join(JoinOption::Syn {
                backup: true,
                addr_id: 7,
                token: 0xa1b2_c3d4,
                nonce: 0x0102_0304
            })
        );
        // Figure 6, SYN/ACK: Kind | Length 16 | Subtype 1 | rsv | B=0 | Address ID 2 | sender's
        // truncated HMAC (64 bits) | sender's random number.
        let syn_ack = cat(&[&[30, 16, 0x10, 2], &KEY_A, &[0xff, 0xee, 0xdd, 0xcc]]);
        assert_eq!(
            parse_option(&syn_ack),
            MptcpOption::Join(JoinOption::SynAck {
                backup: false,
                addr_id: 2,
                hmac: KEY_A_VALUE,
                nonce: 0xffee_ddcc
            })
        );
        // Figure 7, third ACK: Kind | Length 24 | Subtype 1 | 12 reserved bits | sender's HMAC
        // (160 bits).
        let hmac: [u8; 20] = std::array::from_fn(|i| i as u8 + 1);
        let ack = cat(&[&[30, 24, 0x10, 0x00], &hmac]);
        assert_eq!(
            parse_option(&ack),
            MptcpOption::Join(JoinOption::Ack { hmac })
        );
        for len in [4usize, 11, 13, 20, 23, 25] {
            let mut opt = vec![0u8; len];
            opt[..3].copy_from_slice(&[30, len as u8, 0x10]);
            assert_eq!(
                parse_option(&opt),
                MptcpOption::Malformed {
                    subtype: subtype::MP_JOIN,
                    len: len as u8
                },
                "length {len}"
            );
        }
    }

    fn dss(data_fin: bool, data_ack: Option<WireSeq>, mapping: Option<DssMapping>) -> MptcpOption {
        MptcpOption::Dss {
            data_fin,
            data_ack,
            mapping,
        }
    }

    /// RFC 8684 Figure 9: Kind | Length | Subtype 2 | reserved | F m M a A | data ACK (4/8) | DSN
    /// (4/8) | subflow sequence number (4) | data-level length (2) | checksum (2).
    #[test]
    fn dss_every_combination() {
        let ack4 = [0x11, 0x22, 0x33, 0x44];
        let ack8 = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
        let dsn4 = [0xa0, 0xa1, 0xa2, 0xa3];
        let dsn8 = [0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7];
        let ssn = [0x00, 0x00, 0x05, 0xa9]; // 1449
        let level_len = [0x05, 0xa8]; // 1448
        let csum = [0x12, 0x34];
        let map = |dsn, checksum| DssMapping {
            dsn,
            ssn: 1449,
            len: 1448,
            checksum,
        };
        let d4 = WireSeq::U32(0xa0a1_a2a3);
        let d8 = WireSeq::U64(0xb0b1_b2b3_b4b5_b6b7);
        let a4 = Some(WireSeq::U32(0x1122_3344));
        let a8 = Some(WireSeq::U64(0x1122_3344_5566_7788));

        // A: 4-byte data ACK only (length 8).
        assert_eq!(
            parse_option(&cat(&[&[30, 8, 0x20, 0x01], &ack4])),
            dss(false, a4, None)
        );
        // A a: 8-byte data ACK (length 12).
        assert_eq!(
            parse_option(&cat(&[&[30, 12, 0x20, 0x03], &ack8])),
            dss(false, a8, None)
        );
        // M: 4-byte DSN mapping, no checksum (length 14) and with it (16).
        let m = cat(&[&[30, 14, 0x20, 0x04], &dsn4, &ssn, &level_len]);
        assert_eq!(parse_option(&m), dss(false, None, Some(map(d4, None))));
        let m_csum = cat(&[&[30, 16, 0x20, 0x04], &dsn4, &ssn, &level_len, &csum]);
        assert_eq!(
            parse_option(&m_csum),
            dss(false, None, Some(map(d4, Some(0x1234))))
        );
        // A M: the usual Linux data segment (length 18 / 20).
        let am = cat(&[&[30, 18, 0x20, 0x05], &ack4, &dsn4, &ssn, &level_len]);
        assert_eq!(parse_option(&am), dss(false, a4, Some(map(d4, None))));
        let am_csum = cat(&[&[30, 20, 0x20, 0x05], &ack4, &dsn4, &ssn, &level_len, &csum]);
        assert_eq!(
            parse_option(&am_csum),
            dss(false, a4, Some(map(d4, Some(0x1234))))
        );
        // A a M m: 8-byte data ACK and DSN (length 26 / 28).
        let all8 = cat(&[&[30, 26, 0x20, 0x0f], &ack8, &dsn8, &ssn, &level_len]);
        assert_eq!(parse_option(&all8), dss(false, a8, Some(map(d8, None))));
        let all8_csum = cat(&[&[30, 28, 0x20, 0x0f], &ack8, &dsn8, &ssn, &level_len, &csum]);
        assert_eq!(
            parse_option(&all8_csum),
            dss(false, a8, Some(map(d8, Some(0x1234))))
        );
        // A M m: 4-byte ACK, 8-byte DSN (length 22).
        let m8 = cat(&[&[30, 22, 0x20, 0x0d], &ack4, &dsn8, &ssn, &level_len]);
        assert_eq!(parse_option(&m8), dss(false, a4, Some(map(d8, None))));
        // A a M: 8-byte ACK, 4-byte DSN (length 22 too: same length, other flags).
        let a8m4 = cat(&[&[30, 22, 0x20, 0x07], &ack8, &dsn4, &ssn, &level_len]);
        assert_eq!(parse_option(&a8m4), dss(false, a8, Some(map(d4, None))));
        // Bare DATA_FIN: F A M, mapping of length 1 with subflow sequence 0.
        let fin = cat(&[
            &[30, 18, 0x20, 0x15],
            &ack4,
            &dsn4,
            &[0, 0, 0, 0],
            &[0x00, 0x01],
        ]);
        assert_eq!(
            parse_option(&fin),
            dss(
                true,
                a4,
                Some(DssMapping {
                    dsn: d4,
                    ssn: 0,
                    len: 1,
                    checksum: None
                })
            )
        );
        // F with nothing else, and `a`/`m` without `A`/`M`, which mean nothing: length 4.
        assert_eq!(parse_option(&[30, 4, 0x20, 0x10]), dss(true, None, None));
        assert_eq!(parse_option(&[30, 4, 0x20, 0x0a]), dss(false, None, None));
    }

    #[test]
    fn dss_lengths_that_fit_no_form() {
        let bad: [&[u8]; 5] = [
            // A says 8 bytes, the option has 10.
            &[30, 10, 0x20, 0x01, 1, 2, 3, 4, 5, 6],
            // A a needs 12 bytes.
            &[30, 8, 0x20, 0x03, 1, 2, 3, 4],
            // A M needs 18 or 20, not 19.
            &[
                30, 19, 0x20, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
            // M without the data-level length.
            &[30, 12, 0x20, 0x04, 0, 0, 0, 0, 0, 0, 0, 0],
            // No flags but extra bytes.
            &[30, 6, 0x20, 0x00, 0, 0],
        ];
        for opt in bad {
            assert_eq!(
                parse_option(opt),
                MptcpOption::Malformed {
                    subtype: subtype::DSS,
                    len: opt[1]
                },
                "{opt:?}"
            );
        }
    }

    fn add_addr(
        v0: bool,
        echo: bool,
        addr: IpAddr,
        port: Option<u16>,
        hmac: Option<u64>,
    ) -> MptcpOption {
        MptcpOption::AddAddr {
            v0,
            echo,
            addr_id: 5,
            addr,
            port,
            hmac,
        }
    }

    /// RFC 8684 Figure 12: Kind | Length | Subtype 3 | (rsvd) | E | Address ID | address (4/16) |
    /// port (2, optional) | truncated HMAC (8, absent on echo).
    #[test]
    fn add_addr_v1_every_length() {
        let v4 = [192, 0, 2, 7];
        let v4_addr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        let v6 = [
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42,
        ];
        let v6_addr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x42));
        let port = [0x14, 0x51]; // 5201
        let hmac = KEY_A;
        let h = Some(KEY_A_VALUE);
        let cases: [(Vec<u8>, MptcpOption); 8] = [
            // Echo (E=1): no HMAC.
            (
                cat(&[&[30, 8, 0x31, 5], &v4]),
                add_addr(false, true, v4_addr, None, None),
            ),
            (
                cat(&[&[30, 10, 0x31, 5], &v4, &port]),
                add_addr(false, true, v4_addr, Some(5201), None),
            ),
            // Announcement (E=0): HMAC.
            (
                cat(&[&[30, 16, 0x30, 5], &v4, &hmac]),
                add_addr(false, false, v4_addr, None, h),
            ),
            (
                cat(&[&[30, 18, 0x30, 5], &v4, &port, &hmac]),
                add_addr(false, false, v4_addr, Some(5201), h),
            ),
            (
                cat(&[&[30, 20, 0x31, 5], &v6]),
                add_addr(false, true, v6_addr, None, None),
            ),
            (
                cat(&[&[30, 22, 0x31, 5], &v6, &port]),
                add_addr(false, true, v6_addr, Some(5201), None),
            ),
            (
                cat(&[&[30, 28, 0x30, 5], &v6, &hmac]),
                add_addr(false, false, v6_addr, None, h),
            ),
            (
                cat(&[&[30, 30, 0x30, 5], &v6, &port, &hmac]),
                add_addr(false, false, v6_addr, Some(5201), h),
            ),
        ];
        for (opt, want) in cases {
            assert_eq!(opt[1] as usize, opt.len(), "test vector length byte");
            assert_eq!(parse_option(&opt), want, "{opt:?}");
        }
        for len in [4usize, 9, 12, 17, 19, 24, 31] {
            let mut opt = vec![0u8; len];
            opt[..3].copy_from_slice(&[30, len as u8, 0x30]);
            assert_eq!(
                parse_option(&opt),
                MptcpOption::Malformed {
                    subtype: subtype::ADD_ADDR,
                    len: len as u8
                },
                "length {len}"
            );
        }
    }

    /// RFC 6824 Figure 12: Kind | Length | Subtype 3 | IPVer | Address ID | address | port
    /// (optional).
    #[test]
    fn add_addr_v0() {
        let v4_addr = IpAddr::V4(Ipv4Addr::new(11, 0, 0, 1));
        let opt = [30, 8, 0x34, 5, 11, 0, 0, 1];
        assert_eq!(
            parse_option(&opt),
            add_addr(true, false, v4_addr, None, None)
        );
        let opt = [30, 10, 0x34, 5, 11, 0, 0, 1, 0x1f, 0x90];
        assert_eq!(
            parse_option(&opt),
            add_addr(true, false, v4_addr, Some(8080), None)
        );
        let v6 = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let v6_addr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
        let opt = cat(&[&[30, 20, 0x36, 5], &v6]);
        assert_eq!(
            parse_option(&opt),
            add_addr(true, false, v6_addr, None, None)
        );
        let opt = cat(&[&[30, 22, 0x36, 5], &v6, &[0, 80]]);
        assert_eq!(
            parse_option(&opt),
            add_addr(true, false, v6_addr, Some(80), None)
        );
        // IPVer 4 with an IPv6 length and IPVer 6 with an IPv4 length.
        let opt = cat(&[&[30, 20, 0x34, 5], &v6]);
        assert_eq!(
            parse_option(&opt),
            MptcpOption::Malformed {
                subtype: 3,
                len: 20
            }
        );
        let opt = [30, 8, 0x36, 5, 11, 0, 0, 1];
        assert_eq!(
            parse_option(&opt),
            MptcpOption::Malformed { subtype: 3, len: 8 }
        );
    }

    /// RFC 8684 Figure 13: Kind | Length 3+n | Subtype 4 | (resvd) | Address ID ...
    #[test]
    fn remove_addr() {
        let one = [30, 4, 0x40, 9];
        let ids = |ids: &[u8]| MptcpOption::RemoveAddr {
            addr_ids: ArrayVec::try_from(ids).expect("few ids"),
        };
        assert_eq!(parse_option(&one), ids(&[9]));
        let three = [30, 6, 0x40, 1, 2, 3];
        assert_eq!(parse_option(&three), ids(&[1, 2, 3]));
        // No id at all.
        assert_eq!(
            parse_option(&[30, 3, 0x40]),
            MptcpOption::Malformed {
                subtype: subtype::REMOVE_ADDR,
                len: 3
            }
        );
        // More ids than a TCP header can hold.
        let mut huge = vec![30u8, 41, 0x40];
        huge.extend(0..38);
        assert_eq!(
            parse_option(&huge),
            MptcpOption::Malformed {
                subtype: subtype::REMOVE_ADDR,
                len: 41
            }
        );
    }

    /// RFC 8684 Figure 14 (length 3, B only) and RFC 6824 §3.3.8 (length 4, + Address ID).
    #[test]
    fn mp_prio() {
        assert_eq!(
            parse_option(&[30, 3, 0x51]),
            MptcpOption::Prio {
                backup: true,
                addr_id: None
            }
        );
        assert_eq!(
            parse_option(&[30, 4, 0x50, 3]),
            MptcpOption::Prio {
                backup: false,
                addr_id: Some(3)
            }
        );
        assert_eq!(
            parse_option(&[30, 5, 0x51, 3, 0]),
            MptcpOption::Malformed {
                subtype: subtype::MP_PRIO,
                len: 5
            }
        );
    }

    /// RFC 8684 Figure 16 (MP_FAIL) and Figure 15 (MP_FASTCLOSE): Kind | Length 12 | Subtype |
    /// 12 reserved bits | 64-bit DSN / receiver's key.
    #[test]
    fn mp_fail_and_fastclose() {
        let fail = cat(&[&[30, 12, 0x60, 0x00], &KEY_B]);
        assert_eq!(parse_option(&fail), MptcpOption::Fail { dsn: KEY_B_VALUE });
        let close = cat(&[&[30, 12, 0x70, 0x00], &KEY_A]);
        assert_eq!(
            parse_option(&close),
            MptcpOption::FastClose {
                receiver_key: KEY_A_VALUE
            }
        );
        assert_eq!(
            parse_option(&[30, 8, 0x60, 0, 1, 2, 3, 4]),
            MptcpOption::Malformed {
                subtype: subtype::MP_FAIL,
                len: 8
            }
        );
        assert_eq!(
            parse_option(&cat(&[&[30, 13, 0x70, 0], &KEY_A, &[0]])),
            MptcpOption::Malformed {
                subtype: subtype::MP_FASTCLOSE,
                len: 13
            }
        );
    }

    /// RFC 8684 Figure 17: Kind | Length 4 | Subtype 8 | U V W T | Reason.
    #[test]
    fn mp_tcprst() {
        // T (transient, 0x1) set, reason 5 "unacceptable performance".
        let rst = [30, 4, 0x81, 0x05];
        assert_eq!(
            parse_option(&rst),
            MptcpOption::TcpRst {
                flags: 0x1,
                reason: 5
            }
        );
        assert_eq!(tcprst_reason_name(5), "unacceptable performance");
        // U V W T all set.
        assert_eq!(
            parse_option(&[30, 4, 0x8f, 0]),
            MptcpOption::TcpRst {
                flags: 0xf,
                reason: 0
            }
        );
        assert_eq!(
            parse_option(&[30, 5, 0x80, 0, 0]),
            MptcpOption::Malformed {
                subtype: subtype::MP_TCPRST,
                len: 5
            }
        );
    }

    #[test]
    fn unknown_and_subtypeless() {
        // MP_EXPERIMENTAL (0xf) and an unassigned subtype 9.
        assert_eq!(
            parse_option(&[30, 6, 0xf0, 1, 2, 3]),
            MptcpOption::Unknown {
                subtype: 0xf,
                len: 6
            }
        );
        assert_eq!(
            parse_option(&[30, 3, 0x90]),
            MptcpOption::Unknown { subtype: 9, len: 3 }
        );
        assert_eq!(
            parse_option(&[30, 2]),
            MptcpOption::Malformed {
                subtype: SUBTYPE_MISSING,
                len: 2
            }
        );
        assert_eq!(
            parse_option(&[]),
            MptcpOption::Malformed {
                subtype: SUBTYPE_MISSING,
                len: 0
            }
        );
    }

    /// Every subtype with every length 0..=40 and pseudo-random contents: no panic, and the
    /// subtype reported is the one in byte 2 whenever there is a byte 2.
    #[test]
    fn any_bytes_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        };
        for sub in 0..16u8 {
            for len in 0..=40usize {
                for _ in 0..20 {
                    let mut opt: Vec<u8> = (0..len).map(|_| next()).collect();
                    if len > 2 {
                        opt[2] = (sub << 4) | (opt[2] & 0x0f);
                    }
                    let parsed = parse_option(&opt);
                    if len > 2 {
                        assert_eq!(parsed.subtype(), sub, "{opt:?}");
                    }
                }
            }
        }
    }
}

/// Packets taken from `/work/shared/pcaps/client_2.pcap` (MPTCP v0, Linux SLL), decoded end to
/// end; the expected values are tshark 4.0's dissection of the same frames
/// (`tshark -r client_2.pcap -Y 'frame.number==N' -V`).
#[cfg(test)]
mod capture_tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::{
        decode::{DecodeError, Decoded, Packet, decode, tcp_flags},
        source::{Direction, LinkType, RawPacket},
    };

    /// Frame 2: MP_CAPABLE SYN, 10.0.0.1:59482 → 10.0.0.2:5201.
    const FRAME_2: &str = "000400010006ea003312c41c00000800\
        4500004818de400040060dd00a0000010a000002\
        e85a145167d216ac00000000d0027210143d0000\
        020405b40402080a01c1dca6a0000001010303091e0c0001ca2f07947b1bfd2b";
    /// Frame 6: third ACK, MP_CAPABLE with both keys and a DSS data ACK.
    const FRAME_6: &str = "000400010006ea003312c41c00000800\
        4500005018e0400040060dc60a0000010a000002\
        e85a145167d216adfc948c9bf010003a14450000\
        0101080a01c1e181000000811e140001ca2f07947b1bfd2ba78213619e4beafc1e082001e589f0d4";
    /// Frame 7: ADD_ADDR (v0, IPv4 11.0.0.1, id 3) and DSS data ACK.
    const FRAME_7: &str = "000400010006ea003312c41c00000800\
        4500004418e1400040060dd10a0000010a000002\
        e85a145167d216adfc948c9bc010003a14390000\
        0101080a01c1e183000000811e0834030b0000011e082001e589f0d4";
    /// Frame 8: 37 bytes of data under a DSS with data ACK and a 4-byte-DSN mapping.
    const FRAME_8: &str = "000400010006ea003312c41c00000800\
        4500006d18e2400040060da70a0000010a000002\
        e85a145167d216adfc948c9bd018003a14620000\
        0101080a01c1e18e000000811e122005e589f0d44e92c2fd0000000100250101\
        7236633369736462366169786f6667626167723476346e706b70737773716875326d717800";
    /// Frame 16: MP_JOIN SYN, 11.0.0.1:60453 → 11.0.0.2:5201.
    const FRAME_16: &str = "000400010006aa2f2f1cf8b100000800\
        450000481855400040060c590b0000010b000002\
        ec251451e37d0c7300000000d0027210163d0000\
        020405b40402080a01c1e265a0000001010303091e0c10032ff5f1f03b2264d8";
    /// Frame 24: MP_JOIN SYN/ACK, 11.0.0.2:5201 → 10.0.0.1:49807.
    const FRAME_24: &str = "0000000100068a11e13a3dce00000800\
        4500004c00004000400625aa0b0000020a000001\
        1451c28fab59d2c640688587e0126f9014210000\
        020405b40402080a01c1e348a1c1e24c010303091e10100384037deda67a454c0f0cc049";
    /// Frame 26: MP_JOIN third ACK with the 160-bit HMAC.
    const FRAME_26: &str = "000400010006ea003312c41c00000800\
        4500004c919d40004006940c0a0000010b000002\
        c28f145140688587ab59d2c7e010007315410000\
        0101080a01c1e39c000000521e18100066e36626703eacb8f72ec5be13f8c4ef4f6d4dd8";
    /// Frame 2051: MP_FASTCLOSE after timestamps and a SACK block.
    const FRAME_2051: &str = "0000000100068a11e13a3dce48b80800\
        4500004c81af40004006a3fa0b0000020a000001\
        145188d722646807c6956df3e01003e015410000\
        0101080a01c21dce000000e20101050ac696eed7c698129b1e0c70001513f7895ef77b72";

    /// Hex to bytes; whitespace in the constants only breaks lines by header.
    pub(super) fn bytes(hex: &str) -> Vec<u8> {
        let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|pair| {
                u8::from_str_radix(std::str::from_utf8(pair).expect("ascii"), 16).expect("hex")
            })
            .collect()
    }

    fn raw(number: u64, data: &[u8], orig_len: usize) -> RawPacket<'_> {
        RawPacket {
            number,
            ts_ns: 0,
            iface: 0,
            direction: Direction::Unknown,
            link_type: LinkType::LinuxSll,
            data,
            orig_len: orig_len as u32,
            segments: 1,
        }
    }

    fn packet(number: u64, hex: &str) -> Packet {
        let data = bytes(hex);
        match decode(&raw(number, &data, data.len())) {
            Ok(Decoded::Tcp(p)) => p,
            other => panic!("frame {number}: {other:?}"),
        }
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn frame_lengths_match_tshark() {
        // tshark's "Frame Length" for each.
        for (hex, len) in [
            (FRAME_2, 88),
            (FRAME_6, 96),
            (FRAME_7, 84),
            (FRAME_8, 125),
            (FRAME_16, 88),
            (FRAME_24, 92),
            (FRAME_26, 92),
            (FRAME_2051, 92),
        ] {
            assert_eq!(bytes(hex).len(), len);
        }
    }

    #[test]
    fn mp_capable_handshake() {
        let syn = packet(2, FRAME_2);
        assert_eq!((syn.src, syn.dst), (v4(10, 0, 0, 1), v4(10, 0, 0, 2)));
        assert_eq!((syn.src_port, syn.dst_port), (59482, 5201));
        assert_eq!(syn.seq, 1_741_821_612);
        assert_eq!(syn.flags, tcp_flags::SYN);
        assert_eq!(syn.window, 29200);
        assert_eq!(syn.payload_len, 0);
        assert!(!syn.options_truncated);
        assert_eq!(
            syn.mptcp.as_slice(),
            &[MptcpOption::Capable {
                version: 0,
                flags: 0x01,
                sender_key: Some(14_568_871_653_868_829_995),
                receiver_key: None,
                data_len: None,
                checksum: None,
            }]
        );

        let ack = packet(6, FRAME_6);
        assert_eq!((ack.seq, ack.ack), (1_741_821_613, 4_237_593_755));
        assert_eq!(ack.flags, tcp_flags::ACK);
        assert_eq!(
            ack.mptcp.as_slice(),
            &[
                MptcpOption::Capable {
                    version: 0,
                    flags: 0x01,
                    sender_key: Some(14_568_871_653_868_829_995),
                    receiver_key: Some(12_070_231_261_294_881_532),
                    data_len: None,
                    checksum: None,
                },
                MptcpOption::Dss {
                    data_fin: false,
                    data_ack: Some(WireSeq::U32(3_851_022_548)),
                    mapping: None
                },
            ]
        );
    }

    #[test]
    fn add_addr_and_dss_data() {
        let add = packet(7, FRAME_7);
        assert_eq!(
            add.mptcp[0],
            MptcpOption::AddAddr {
                v0: true,
                echo: false,
                addr_id: 3,
                addr: v4(11, 0, 0, 1),
                port: None,
                hmac: None
            }
        );
        assert_eq!(add.mptcp.len(), 2);

        let data = packet(8, FRAME_8);
        assert_eq!(data.flags, tcp_flags::PSH | tcp_flags::ACK);
        assert_eq!(data.payload_len, 37);
        assert_eq!(
            data.mptcp.as_slice(),
            &[MptcpOption::Dss {
                data_fin: false,
                data_ack: Some(WireSeq::U32(3_851_022_548)),
                mapping: Some(DssMapping {
                    dsn: WireSeq::U32(1_318_241_021),
                    ssn: 1,
                    len: 37,
                    checksum: None
                }),
            }]
        );
    }

    #[test]
    fn mp_join_handshake() {
        let syn = packet(16, FRAME_16);
        assert_eq!((syn.src, syn.dst), (v4(11, 0, 0, 1), v4(11, 0, 0, 2)));
        assert_eq!(
            (syn.src_port, syn.dst_port, syn.seq),
            (60453, 5201, 3_816_623_219)
        );
        assert_eq!(
            syn.mptcp.as_slice(),
            &[MptcpOption::Join(JoinOption::Syn {
                backup: false,
                addr_id: 3,
                token: 804_647_408,
                nonce: 992_109_784
            })]
        );
        let syn_ack = packet(24, FRAME_24);
        assert_eq!(
            (syn_ack.src, syn_ack.dst),
            (v4(11, 0, 0, 2), v4(10, 0, 0, 1))
        );
        assert_eq!((syn_ack.src_port, syn_ack.dst_port), (5201, 49807));
        assert_eq!(syn_ack.flags, tcp_flags::SYN | tcp_flags::ACK);
        assert_eq!(
            syn_ack.mptcp.as_slice(),
            &[MptcpOption::Join(JoinOption::SynAck {
                backup: false,
                addr_id: 3,
                hmac: 9_512_585_297_590_371_660,
                nonce: 252_493_897
            })]
        );
        let ack = packet(26, FRAME_26);
        let hmac: [u8; 20] = bytes("66e36626703eacb8f72ec5be13f8c4ef4f6d4dd8")
            .try_into()
            .expect("20 bytes");
        assert_eq!(
            ack.mptcp.as_slice(),
            &[MptcpOption::Join(JoinOption::Ack { hmac })]
        );
    }

    #[test]
    fn fast_close_after_sack() {
        let close = packet(2051, FRAME_2051);
        assert_eq!((close.seq, close.ack), (577_005_575, 3_331_681_779));
        assert_eq!(
            close.mptcp.as_slice(),
            &[MptcpOption::FastClose {
                receiver_key: 1_518_829_668_729_846_642
            }]
        );
    }

    /// `tcpdump -s N` for every N: once the fixed TCP header is captured the packet decodes to
    /// the same ports, sequence numbers and payload length; options are kept up to the cut.
    #[test]
    fn every_snap_length_gives_the_same_payload_len() {
        let data = bytes(FRAME_8);
        let full = packet(8, FRAME_8);
        let tcp_start = 16 + 20;
        let tcp_header_end = tcp_start + 52;
        for snap in 0..=data.len() {
            let result = decode(&raw(8, &data[..snap], data.len()));
            if snap < tcp_start + 20 {
                assert!(
                    matches!(result, Err(DecodeError::Truncated { .. })),
                    "snap {snap}: {result:?}"
                );
                continue;
            }
            let Ok(Decoded::Tcp(p)) = result else {
                panic!("snap {snap}: {result:?}")
            };
            assert_eq!(p.payload_len, 37, "snap {snap}");
            assert_eq!(
                (p.seq, p.ack, p.src_port),
                (full.seq, full.ack, full.src_port)
            );
            assert_eq!(p.options_truncated, snap < tcp_header_end, "snap {snap}");
            // The DSS option ends 12 + 18 = 30 bytes into the options.
            let dss_captured = snap >= tcp_start + 20 + 30;
            assert_eq!(p.mptcp.len(), usize::from(dss_captured), "snap {snap}");
            if snap >= tcp_header_end {
                assert_eq!(p, full, "snap {snap}");
            }
        }
    }

    /// Every truncation and many random byte changes of the real packets: decoding never panics.
    #[test]
    fn damaged_packets_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let frames = [
            FRAME_2, FRAME_6, FRAME_7, FRAME_8, FRAME_16, FRAME_24, FRAME_26, FRAME_2051,
        ];
        let mut decoded = 0;
        for hex in frames {
            let data = bytes(hex);
            for len in 0..=data.len() {
                let _ = decode(&raw(1, &data[..len], data.len()));
            }
            for _ in 0..3000 {
                let mut damaged = data.clone();
                for _ in 0..(next() % 4 + 1) {
                    let at = (next() % damaged.len() as u64) as usize;
                    damaged[at] = next() as u8;
                }
                let len = (next() % (damaged.len() as u64 + 1)) as usize;
                for link_type in [LinkType::LinuxSll, LinkType::Raw, LinkType::Ethernet] {
                    let mut r = raw(1, &damaged[..len], next() as usize % 200);
                    r.link_type = link_type;
                    if let Ok(Decoded::Tcp(_)) = decode(&r) {
                        decoded += 1;
                    }
                }
            }
        }
        // Most damage leaves a decodable TCP packet: the loop did exercise the option walk.
        assert!(decoded > 1000, "{decoded}");
    }
}

/// MPTCP v1 packets from Linux 6.18, captured for these tests in two network namespaces with
/// `tcpdump -i any -y LINUX_SLL2 -s 128` (so also a real SLL2 link layer and real snap-length
/// truncation): a Python MPTCP client sending 800,000 bytes to a server with checksums enabled
/// and an extra `signal` endpoint, closed by the server with SO_LINGER 0; and a second
/// connection during which the client marked its subflow endpoint backup and the server deleted
/// its signal endpoint. Expected values are tshark 4.0's dissection; tshark does not show the DSS
/// checksum value, which is read from the option's last two bytes by hand.
#[cfg(test)]
mod v1_capture_tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::{capture_tests::bytes, *};
    use crate::{
        decode::{Decoded, Packet, decode, tcp_flags},
        source::{Direction, LinkType, RawPacket},
    };

    const V1_FRAME_1: &str = "0800000000000002000104068a4ec4b154b40000\
        45000040f80a400040062c090a5101010a510102\
        d02014519fb527ed00000000b002faf016d70000\
        020405b40402080a8d57e953000000000103030a1e040101";
    const V1_FRAME_2: &str = "08000000000000020001000692bac1d162410000\
        45000048000040004006240c0a5101020a510101\
        1451d02055b2c1809fb527eed012fe8816df0000\
        020405b40402080ab5268a6c8d57e9530103030a1e0c0181e6c29540cebbb585";
    const V1_FRAME_3: &str = "0800000000000002000104068a4ec4b154b40000\
        45000048f80b400040062c000a5101010a510102\
        d02014519fb527ee55b2c181d010003f16df0000\
        0101080a8d57e953b5268a6c1e14018149c2833029799b1ae6c29540cebbb585";
    const V1_FRAME_5: &str = "08000000000000020001000692bac1d162410000\
        45000044858e400040069e810a5101020a510101\
        1451d02055b2c1819fb527eec010003f16db0000\
        0101080ab5268a6c8d57e9531e1030010a5102029cab755efff6ebc6";
    const V1_FRAME_6: &str = "0800000000000002000104068a4ec4b154b40000\
        4500003cf80c400040062c0b0a5101010a510102\
        d02014519fb527ee55b2c181a010003f16d30000\
        0101080a8d57e953b5268a6c1e0831010a510202";
    const V1_FRAME_13: &str = "0800000000000002000104068a4ec4b154b40000\
        45001c1cf80d40004006102a0a5101010a510102\
        d02014519fb527ee55b2c181e018003f32b30000\
        0101080a8d57e953b5268a6c1e18200ddfeb3853cbd62451a9e958c8000000014e20a5eb\
        7979797979797979797979797979797979797979797979797979797979797979";
    const V1_FRAME_214: &str = "86dd0000000000020001000692bac1d162410000\
        600a094500300640fd810001000000000000000000000002fd810001000000000000000000000001\
        1451ca50e4e083ec0aa33cecc01405e1fb3e0000\
        0101080a9602c70744b59f791e0c70003f82d53505273ec81e048000";
    const V1_PM_FRAME_41: &str = "080000000000000300010406e21df56cb3f80000\
        45000040d692400040064c810a5102010a510102\
        cfa5145171712c62e26e0dc4b010003f17d70000\
        0101080a3e07224820dd3a531e08200166466e861e035101";
    const V1_PM_FRAME_64: &str = "08000000000000020001000692bac1d162410000\
        4500004491d040004006923f0a5101020a510101\
        14519c5c40859b6026030784c010015016db0000\
        0101080a6cc1d8f2437ac6661e0c2003c36fba14b8708fa91e044001";

    /// Decodes an SLL2 frame whose on-wire length was `orig_len`.
    fn packet(hex: &str, orig_len: usize) -> Packet {
        let data = bytes(hex);
        let raw = RawPacket {
            number: 1,
            ts_ns: 0,
            iface: 0,
            direction: Direction::Unknown,
            link_type: LinkType::LinuxSll2,
            data: &data,
            orig_len: orig_len as u32,
            segments: 1,
        };
        match decode(&raw) {
            Ok(Decoded::Tcp(p)) => p,
            other => panic!("{other:?}"),
        }
    }

    fn only(p: &Packet) -> &MptcpOption {
        assert_eq!(p.mptcp.len(), 1, "{:?}", p.mptcp);
        &p.mptcp[0]
    }

    #[test]
    fn mp_capable_v1_handshake() {
        // SYN: length 4, version 1, flags 0x01 (H: HMAC-SHA256), no key.
        let syn = packet(V1_FRAME_1, 84);
        assert_eq!(
            (syn.src_port, syn.dst_port, syn.seq),
            (53280, 5201, 2_679_449_581)
        );
        assert_eq!(syn.flags, tcp_flags::SYN);
        assert_eq!(
            only(&syn),
            &MptcpOption::Capable {
                version: 1,
                flags: 0x01,
                sender_key: None,
                receiver_key: None,
                data_len: None,
                checksum: None
            }
        );
        // SYN/ACK: the server's key; flags 0x81, A set: the server requires checksums.
        let syn_ack = packet(V1_FRAME_2, 92);
        assert_eq!(
            only(&syn_ack),
            &MptcpOption::Capable {
                version: 1,
                flags: 0x81,
                sender_key: Some(16_628_016_879_784_146_309),
                receiver_key: None,
                data_len: None,
                checksum: None
            }
        );
        // Third ACK: client key then server key.
        let ack = packet(V1_FRAME_3, 92);
        assert_eq!(
            only(&ack),
            &MptcpOption::Capable {
                version: 1,
                flags: 0x81,
                sender_key: Some(5_314_954_753_128_110_874),
                receiver_key: Some(16_628_016_879_784_146_309),
                data_len: None,
                checksum: None
            }
        );
    }

    #[test]
    fn add_addr_v1_with_hmac_and_echo() {
        let announce = packet(V1_FRAME_5, 88);
        assert_eq!(
            only(&announce),
            &MptcpOption::AddAddr {
                v0: false,
                echo: false,
                addr_id: 1,
                addr: IpAddr::V4(Ipv4Addr::new(10, 81, 2, 2)),
                port: None,
                hmac: Some(11_289_245_941_816_028_102),
            }
        );
        let echo = packet(V1_FRAME_6, 80);
        assert_eq!(
            only(&echo),
            &MptcpOption::AddAddr {
                v0: false,
                echo: true,
                addr_id: 1,
                addr: IpAddr::V4(Ipv4Addr::new(10, 81, 2, 2)),
                port: None,
                hmac: None,
            }
        );
    }

    /// A 7216-byte GSO super-packet captured with a snap length of 128: payload length from the
    /// IP header (tshark: 7120), DSS with 4-byte data ACK, 8-byte DSN and checksum (length 24).
    #[test]
    fn dss_with_checksum_from_a_snaplen_capture() {
        let data = packet(V1_FRAME_13, 7216);
        assert_eq!(bytes(V1_FRAME_13).len(), 128);
        assert_eq!(data.payload_len, 7120);
        assert_eq!(data.flags, tcp_flags::PSH | tcp_flags::ACK);
        assert!(!data.options_truncated);
        assert_eq!(
            only(&data),
            &MptcpOption::Dss {
                data_fin: false,
                data_ack: Some(WireSeq::U32(3_756_734_547)),
                mapping: Some(DssMapping {
                    dsn: WireSeq::U64(14_687_967_167_877_044_424),
                    ssn: 1,
                    len: 20000,
                    checksum: Some(0xa5eb),
                }),
            }
        );
    }

    #[test]
    fn fastclose_and_tcprst_over_ipv6() {
        let rst = packet(V1_FRAME_214, 108);
        assert_eq!(
            rst.src,
            IpAddr::V6(Ipv6Addr::new(0xfd81, 1, 0, 0, 0, 0, 0, 2))
        );
        assert_eq!(
            rst.dst,
            IpAddr::V6(Ipv6Addr::new(0xfd81, 1, 0, 0, 0, 0, 0, 1))
        );
        assert_eq!((rst.src_port, rst.dst_port), (5201, 51792));
        assert_eq!(rst.flags, tcp_flags::RST | tcp_flags::ACK);
        assert_eq!(rst.payload_len, 0);
        assert_eq!(
            rst.mptcp.as_slice(),
            &[
                MptcpOption::FastClose {
                    receiver_key: 4_576_454_595_058_286_280
                },
                MptcpOption::TcpRst {
                    flags: 0,
                    reason: 0
                },
            ]
        );
    }

    #[test]
    fn mp_prio_and_remove_addr() {
        let prio = packet(V1_PM_FRAME_41, 84);
        assert_eq!(
            prio.mptcp.as_slice(),
            &[
                MptcpOption::Dss {
                    data_fin: false,
                    data_ack: Some(WireSeq::U32(1_715_891_846)),
                    mapping: None
                },
                MptcpOption::Prio {
                    backup: true,
                    addr_id: None
                },
            ]
        );
        let remove = packet(V1_PM_FRAME_64, 88);
        assert_eq!(
            remove.mptcp.as_slice(),
            &[
                MptcpOption::Dss {
                    data_fin: false,
                    data_ack: Some(WireSeq::U64(14_082_679_157_967_327_145)),
                    mapping: None
                },
                MptcpOption::RemoveAddr {
                    addr_ids: ArrayVec::try_from(&[1u8][..]).expect("one")
                },
            ]
        );
    }
}
