//! Which TCP stream / MPTCP connection of one capture is which of the other.

use serde::Serialize;

/// `map-tcp`: the streams of the first capture and their counterparts in the second.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct TcpMapping {
    pub mappings: Vec<TcpMatch>,
    /// Streams of the first capture with no counterpart.
    pub unmatched: Vec<u64>,
    /// Streams of the second capture that no stream of the first maps to.
    pub peer_unmatched: Vec<u64>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct TcpMatch {
    pub tcp_stream: u64,
    pub peer_tcp_stream: u64,
    pub score: u32,
}

/// `map-mptcp`: the MPTCP connections of the first capture and their counterparts.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct MptcpMapping {
    pub mappings: Vec<MptcpMatch>,
    pub unmatched: Vec<u64>,
    pub peer_unmatched: Vec<u64>,
}

/// One connection of the first capture (`id`) and its counterpart (`peer_id`).
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct MptcpMatch {
    pub id: u64,
    pub peer_id: u64,
    pub score: u32,
    /// Every subflow of `id`, in its order, with its counterpart (`None`: not in the second
    /// capture, e.g. a join SYN that never reached it).
    pub subflows: Vec<SubflowMatch>,
    /// Subflows of `peer_id` that no subflow of `id` maps to.
    pub peer_unmatched_subflows: Vec<u64>,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubflowMatch {
    pub tcp_stream: u64,
    pub peer_tcp_stream: Option<u64>,
}
