//! MPTCP connections: keys, tokens, MP_JOIN attachment, DSS mappings, reinjections, signalling.

#[derive(Default)]
pub struct MptcpTracker {}
