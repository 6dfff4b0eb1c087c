//! Read-only results of an analysis. These structs are the documented JSON schema (README,
//! "JSON output"): field names here are the names users' scripts read, so renaming one is a
//! breaking change. Every number users see is computed once, when these are built; `output/`
//! only formats them.

use serde::Serialize;

/// `list-tcp --json`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TcpList {
    pub tcp_connections: Vec<TcpConnectionInfo>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TcpConnectionInfo {
    /// Stream number, numbered from 0 in order of first appearance as Wireshark's `tcp.stream`.
    pub stream: u64,
    /// `"10.0.0.1:33782"` or `"[fd00::1]:5201"`. The client is the SYN sender; without a
    /// captured SYN, the sender of the first packet seen.
    pub client: String,
    pub server: String,
    pub packets: u64,
    /// The stream carried at least one MPTCP option.
    pub mptcp: bool,
    /// The three-way handshake's SYN was captured.
    pub handshake_seen: bool,
}

/// `tcp-summary --json`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TcpSummary {
    pub stream: u64,
    pub client: String,
    pub server: String,
    pub handshake_seen: bool,
    pub directions: Vec<TcpDirectionSummary>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TcpDirectionSummary {
    /// `"client_to_server"` or `"server_to_client"`.
    pub direction: &'static str,
    pub packets: u64,
    /// First to last packet in this direction, seconds.
    pub duration_s: f64,
    /// Sum of TCP payload lengths, retransmissions included.
    pub wire_bytes: u64,
    /// Size of the union of subflow sequence ranges carried (SYN/FIN excluded).
    pub unique_bytes: u64,
    /// Segments whose payload was entirely or partly sent before.
    pub retransmissions: u64,
    /// Payload bytes already covered by earlier segments.
    pub retransmitted_bytes: u64,
}

/// `list-mptcp --json`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MptcpList {
    pub mptcp_connections: Vec<MptcpConnectionInfo>,
    /// MP_JOIN subflows whose token matched no connection in the capture.
    pub orphan_subflows: Vec<OrphanSubflow>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MptcpConnectionInfo {
    /// Connection number, from 0 in order of the first MP_CAPABLE packet.
    pub id: u64,
    /// MPTCP version: 0 (RFC 6824) or 1 (RFC 8684).
    pub version: u8,
    /// Keys as decimal strings: a u64 does not fit a JSON number without precision loss.
    pub client_key: Option<String>,
    pub server_key: Option<String>,
    pub client_token: Option<u32>,
    pub server_token: Option<u32>,
    /// Initial data sequence numbers derived from the keys, decimal strings.
    pub client_idsn: Option<String>,
    pub server_idsn: Option<String>,
    /// The connection fell back to plain TCP (see `events` of its summary for why).
    pub fallback: bool,
    pub subflows: Vec<SubflowInfo>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SubflowInfo {
    pub tcp_stream: u64,
    pub client: String,
    pub server: String,
    /// Attached by MP_JOIN (false for the initial MP_CAPABLE subflow).
    pub join: bool,
    /// Backup flag of the MP_JOIN SYN, or the last MP_PRIO seen on it.
    pub backup: bool,
    /// Address ids from the MP_JOIN SYN (client) and SYN/ACK (server), where seen.
    pub client_addr_id: Option<u8>,
    pub server_addr_id: Option<u8>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct OrphanSubflow {
    pub tcp_stream: u64,
    pub client: String,
    pub server: String,
    /// Token the MP_JOIN SYN asked for.
    pub token: Option<u32>,
}

/// `mptcp-summary --json`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MptcpSummary {
    pub id: u64,
    pub version: u8,
    pub fallback: bool,
    pub directions: Vec<MptcpDirectionSummary>,
    /// Signalling timeline, in capture order.
    pub events: Vec<MptcpEvent>,
    /// Events beyond the per-connection limit (`analysis::mptcp::MAX_EVENTS`), counted only.
    pub events_dropped: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MptcpDirectionSummary {
    /// `"client_to_server"` or `"server_to_client"`.
    pub direction: &'static str,
    /// First to last packet of the connection's subflows in this direction, seconds.
    pub duration_s: f64,
    /// Sum of TCP payload lengths over all subflows, retransmissions and reinjections included.
    pub wire_bytes: u64,
    /// Size of the union of data sequence ranges carried by DSS mappings (and v1's MP_CAPABLE
    /// data), DATA_FIN excluded.
    pub unique_bytes: u64,
    /// Highest DATA_ACK from the peer minus this direction's IDSN, minus 1 for the initial
    /// data sequence number and DATA_FIN when acknowledged.
    pub acked_bytes: u64,
    /// Data-level bytes sent again by the MPTCP layer: data already carried, in subflow bytes
    /// new to their subflow (normally another subflow than the first carrier; Linux also
    /// re-sends on the same subflow under new subflow sequence numbers).
    pub reinjected_bytes: u64,
    pub reinjections: u64,
    /// TCP retransmissions on the same subflow (segments and bytes).
    pub retransmissions: u64,
    pub retransmitted_bytes: u64,
    /// unique_bytes × 8 / duration_s, bits per second (0 when duration is 0).
    pub goodput_bps: f64,
    /// wire_bytes × 8 / duration_s, bits per second (0 when duration is 0).
    pub throughput_bps: f64,
    /// Segments with payload that no DSS mapping known at the time covered.
    pub unmapped_segments: u64,
    /// Of their payload, the bytes no mapping seen later covered either: their data sequence
    /// numbers are unknown, so they count in `wire_bytes` only.
    pub unmapped_bytes: u64,
    pub subflows: Vec<SubflowDirectionSummary>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SubflowDirectionSummary {
    pub tcp_stream: u64,
    pub packets: u64,
    pub wire_bytes: u64,
    /// Data-level bytes this subflow carried first.
    pub unique_bytes: u64,
    /// `unique_bytes` / the direction's `unique_bytes`, 0.0..=1.0; sums to 1 over subflows.
    pub share: f64,
    pub reinjected_bytes: u64,
    pub retransmitted_bytes: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MptcpEvent {
    /// Seconds since the connection's first packet.
    pub time_s: f64,
    /// Packet number in the source.
    pub packet: u64,
    pub tcp_stream: u64,
    /// `"client_to_server"` or `"server_to_client"`.
    pub direction: &'static str,
    /// `add_addr`, `remove_addr`, `mp_prio`, `mp_fail`, `mp_fastclose`, `mp_tcprst`,
    /// `data_fin`, `fallback`, `unknown_option`, `malformed_option`.
    pub kind: &'static str,
    /// Human-readable details (address, ids, reason).
    pub detail: String,
}
