//! IPv4 (with options) and IPv6 (with extension headers).

use super::{DecodeError, Decoded};
use crate::source::RawPacket;

/// Decodes the IP header at the start of `l3` and hands the TCP segment to `tcp`.
pub fn decode_ip(raw: &RawPacket<'_>, l3: &[u8]) -> Result<Decoded, DecodeError> {
    todo!("{} {}", raw.number, l3.len())
}
