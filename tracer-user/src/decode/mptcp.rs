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
    Syn { backup: bool, addr_id: u8, token: u32, nonce: u32 },
    /// MP_JOIN on a SYN/ACK (length 16): truncated HMAC.
    SynAck { backup: bool, addr_id: u8, hmac: u64, nonce: u32 },
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
    Dss { data_fin: bool, data_ack: Option<WireSeq>, mapping: Option<DssMapping> },
    /// ADD_ADDR. `v0` is RFC 6824's layout (IP version nibble, no HMAC); v1 has the echo flag
    /// and an 8-byte truncated HMAC unless it is an echo.
    AddAddr { v0: bool, echo: bool, addr_id: u8, addr: IpAddr, port: Option<u16>, hmac: Option<u64> },
    /// REMOVE_ADDR with one or more address ids.
    RemoveAddr { addr_ids: ArrayVec<u8, 37> },
    /// MP_PRIO; the address id is present only in the 4-byte form.
    Prio { backup: bool, addr_id: Option<u8> },
    /// MP_FAIL with the 64-bit DSN where the checksum failed.
    Fail { dsn: u64 },
    /// MP_FASTCLOSE with the receiver's key.
    FastClose { receiver_key: u64 },
    /// MP_TCPRST (v1): U/V/W/T flags and the reason code.
    TcpRst { flags: u8, reason: u8 },
    /// A subtype this decoder does not know (kept and counted).
    Unknown { subtype: u8, len: u8 },
    /// A known subtype whose length fits none of its forms.
    Malformed { subtype: u8, len: u8 },
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
pub fn parse_option(opt: &[u8]) -> MptcpOption {
    todo!("decode helper: {} bytes", opt.len())
}
