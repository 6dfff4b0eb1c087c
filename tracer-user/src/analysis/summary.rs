//! Read-only results of an analysis. These structs are the documented JSON schema (README,
//! "JSON output"): field names here are the names users' scripts read, so renaming one is a
//! breaking change. Every number users see is computed once, when these are built; `output/`
//! only formats them.
//!
//! The fields are typed (socket addresses, directions, event kinds, 64-bit keys); their JSON
//! is what the schema says: addresses as `"10.0.0.1:33782"` / `"[fd00::1]:5201"` (the
//! `Display` of `SocketAddr`), enums in snake case, 64-bit keys and IDSNs as decimal strings
//! (a JSON number loses precision above 2^53). The structs are `#[non_exhaustive]`: fields
//! may be added.

use std::{fmt, net::SocketAddr};

use serde::{Serialize, Serializer};

pub use super::direction::Direction;

/// `list-tcp --json`.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct TcpList {
    pub tcp_connections: Vec<TcpConnectionInfo>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct TcpConnectionInfo {
    /// Stream number, numbered from 0 in order of first appearance as Wireshark's `tcp.stream`.
    pub stream: u64,
    /// `"10.0.0.1:33782"` or `"[fd00::1]:5201"`. The client is the SYN sender; without a
    /// captured SYN, the sender of the first packet seen.
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub packets: u64,
    /// The stream carried at least one MPTCP option.
    pub mptcp: bool,
    /// The three-way handshake's SYN was captured.
    pub handshake_seen: bool,
}

/// `tcp-summary --json`.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct TcpSummary {
    pub stream: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub handshake_seen: bool,
    pub directions: Vec<TcpDirectionSummary>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct TcpDirectionSummary {
    /// `"client_to_server"` or `"server_to_client"`.
    pub direction: Direction,
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
#[non_exhaustive]
pub struct MptcpList {
    pub mptcp_connections: Vec<MptcpConnectionInfo>,
    /// TCP streams with MPTCP options that no connection claims, in stream order: every
    /// stream with MPTCP options is either a subflow of one connection or here, once.
    pub orphan_subflows: Vec<OrphanSubflow>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct MptcpConnectionInfo {
    /// Connection number, from 0 in order of the first MP_CAPABLE packet.
    pub id: u64,
    /// MPTCP version: 0 (RFC 6824) or 1 (RFC 8684).
    pub version: u8,
    /// Keys, as decimal strings in JSON: a u64 does not fit a JSON number without precision
    /// loss.
    #[serde(serialize_with = "decimal")]
    pub client_key: Option<u64>,
    #[serde(serialize_with = "decimal")]
    pub server_key: Option<u64>,
    pub client_token: Option<u32>,
    pub server_token: Option<u32>,
    /// Initial data sequence numbers derived from the keys, decimal strings in JSON.
    #[serde(serialize_with = "decimal")]
    pub client_idsn: Option<u64>,
    #[serde(serialize_with = "decimal")]
    pub server_idsn: Option<u64>,
    /// The connection fell back to plain TCP (see `events` of its summary for why).
    pub fallback: bool,
    pub subflows: Vec<SubflowInfo>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct SubflowInfo {
    pub tcp_stream: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// Attached by MP_JOIN: `role == SubflowRole::Join` (kept for compatibility).
    pub join: bool,
    /// How the subflow is known to belong to its connection.
    pub role: SubflowRole,
    /// Backup flag of the MP_JOIN SYN, or the last MP_PRIO seen on it.
    pub backup: bool,
    /// Address ids from the MP_JOIN SYN (client) and SYN/ACK (server), where seen.
    pub client_addr_id: Option<u8>,
    pub server_addr_id: Option<u8>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct OrphanSubflow {
    pub tcp_stream: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// Token the MP_JOIN SYN asked for.
    pub token: Option<u32>,
    /// Why no connection claims it.
    pub reason: OrphanReason,
}

/// How a subflow is known to belong to its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SubflowRole {
    /// The MP_CAPABLE subflow that started the connection: one per connection.
    Initial,
    /// Attached by the token of its MP_JOIN SYN.
    Join,
    /// No handshake in the capture: attached by the data sequence numbers of its DSS
    /// options. Initial or join, the capture does not say.
    Unknown,
}

impl SubflowRole {
    /// The name the JSON schema uses.
    pub fn as_str(self) -> &'static str {
        match self {
            SubflowRole::Initial => "initial",
            SubflowRole::Join => "join",
            SubflowRole::Unknown => "unknown",
        }
    }
}

/// Why a TCP stream with MPTCP options belongs to no connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OrphanReason {
    /// Its MP_JOIN SYN asked for a token no connection in the capture has (typically the
    /// connection's MP_CAPABLE handshake was not captured).
    UnknownToken,
    /// No handshake, and the data sequence numbers of its DSS options fall in no connection's
    /// data sequence space, or in more than one.
    UnknownDsn,
    /// No handshake and no DSS option: only options that name no connection (MP_TCPRST,
    /// ADD_ADDR, an MP_JOIN SYN/ACK or ACK, unknown subtypes...).
    NoHandshakeOrDss,
}

impl OrphanReason {
    /// The name the JSON schema uses.
    pub fn as_str(self) -> &'static str {
        match self {
            OrphanReason::UnknownToken => "unknown_token",
            OrphanReason::UnknownDsn => "unknown_dsn",
            OrphanReason::NoHandshakeOrDss => "no_handshake_or_dss",
        }
    }
}

/// `mptcp-summary --json`.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
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
#[non_exhaustive]
pub struct MptcpDirectionSummary {
    /// `"client_to_server"` or `"server_to_client"`.
    pub direction: Direction,
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
#[non_exhaustive]
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
#[non_exhaustive]
pub struct MptcpEvent {
    /// Seconds since the connection's first packet.
    pub time_s: f64,
    /// Packet number in the source.
    pub packet: u64,
    pub tcp_stream: u64,
    /// `"client_to_server"` or `"server_to_client"`.
    pub direction: Direction,
    pub kind: EventKind,
    /// Human-readable details (address, ids, reason).
    pub detail: String,
}

/// What a signalling event was. Serialised in snake case (`"add_addr"`, `"mp_tcprst"`...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    AddAddr,
    RemoveAddr,
    MpPrio,
    MpFail,
    MpFastclose,
    MpTcprst,
    DataFin,
    Fallback,
    UnknownOption,
    MalformedOption,
}

impl EventKind {
    /// The name the JSON schema uses.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::AddAddr => "add_addr",
            EventKind::RemoveAddr => "remove_addr",
            EventKind::MpPrio => "mp_prio",
            EventKind::MpFail => "mp_fail",
            EventKind::MpFastclose => "mp_fastclose",
            EventKind::MpTcprst => "mp_tcprst",
            EventKind::DataFin => "data_fin",
            EventKind::Fallback => "fallback",
            EventKind::UnknownOption => "unknown_option",
            EventKind::MalformedOption => "malformed_option",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A 64-bit value as a decimal string, `null` when absent.
fn decimal<S: Serializer>(value: &Option<u64>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.collect_str(value),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `as_str` (the table's spelling) and serde's snake case (the JSON's) agree.
    #[test]
    fn event_kinds_serialise_as_their_names() {
        use EventKind::*;
        for kind in [
            AddAddr,
            RemoveAddr,
            MpPrio,
            MpFail,
            MpFastclose,
            MpTcprst,
            DataFin,
            Fallback,
            UnknownOption,
            MalformedOption,
        ] {
            let json = serde_json::to_string(&kind).expect("serialises");
            assert_eq!(json, format!("\"{kind}\""));
        }
        for role in [
            SubflowRole::Initial,
            SubflowRole::Join,
            SubflowRole::Unknown,
        ] {
            let json = serde_json::to_string(&role).expect("serialises");
            assert_eq!(json, format!("\"{}\"", role.as_str()));
        }
        for reason in [
            OrphanReason::UnknownToken,
            OrphanReason::UnknownDsn,
            OrphanReason::NoHandshakeOrDss,
        ] {
            let json = serde_json::to_string(&reason).expect("serialises");
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
        }
    }

    /// SocketAddr's JSON is its Display: "[v6]:port" for IPv6, as the schema says.
    #[test]
    fn socket_addresses_serialise_as_text() {
        let v6: SocketAddr = "[fd00::1]:5201".parse().expect("address");
        let v4: SocketAddr = "10.0.0.1:33782".parse().expect("address");
        let json = serde_json::to_string(&[v6, v4]).expect("serialises");
        assert_eq!(json, r#"["[fd00::1]:5201","10.0.0.1:33782"]"#);
    }
}
