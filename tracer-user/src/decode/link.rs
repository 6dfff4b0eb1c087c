//! Link-layer headers: returns the bytes from the IP header on.

use super::DecodeError;
use crate::source::LinkType;

/// Strips the link-layer header; `Ok(None)` when the frame does not carry IPv4/IPv6.
pub fn strip(link_type: LinkType, data: &[u8]) -> Result<Option<&[u8]>, DecodeError> {
    todo!("{link_type:?} {}", data.len())
}
