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
