//! Which TCP stream / MPTCP connection of one capture is which of the other.
//!
//! Two captures of the same traffic taken at two points (a client and a server, or both sides
//! of a NAT) see the same streams under addresses and ports that may differ. What crosses a
//! NAT unchanged decides: the initial sequence numbers (32 random bits each way), the MPTCP
//! keys (64 random bits each), and, for a stream whose handshake one capture missed, the
//! sequence numbers its packets carried. Addresses and ports only break ties.
//!
//! A pair's score is the sum of the weights of its evidence (`Evidence::weight`); a pair is a
//! candidate only with evidence beyond addresses. Candidates are assigned greedily, highest
//! score first (ties: lower stream numbers first), each stream to at most one counterpart.

use std::{collections::HashMap, net::SocketAddr};

use serde::Serialize;

use crate::analysis::{
    Analyzer,
    direction::Direction,
    summary::{MptcpConnectionInfo, MptcpList},
    tcp::{TcpDirection, TcpStream},
};

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
    /// Sum of the weights of `evidence`.
    pub score: u32,
    pub evidence: Vec<Evidence>,
    /// The stream's endpoints in each capture (they differ through a NAT).
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub peer_client: SocketAddr,
    pub peer_server: SocketAddr,
}

/// What two streams (or connections) were found to share.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Evidence {
    /// The client's ISN (its SYN's sequence number).
    ClientIsn,
    /// The server's ISN.
    ServerIsn,
    /// Without the ISN in one capture: the client→server sequence ranges seen overlap.
    ClientSequence,
    /// The same for server→client.
    ServerSequence,
    /// Both streams are subflows of MPTCP connections with the same key (connection level:
    /// the connections' client or server key).
    MptcpKeys,
    ClientKey,
    ServerKey,
    /// Subflows of the two connections mapped to each other (connection level).
    Subflows,
    /// Same client (server) address and port: only ever a tie-breaker.
    ClientAddress,
    ServerAddress,
}

impl Evidence {
    /// Points this evidence adds to a score. A 32-bit ISN matching by chance is one in 4·10⁹,
    /// a 64-bit key far less; overlapping sequence ranges of two random streams are likely
    /// only for streams of gigabytes; addresses say nothing through a NAT.
    pub fn weight(self) -> u32 {
        match self {
            Evidence::ClientIsn | Evidence::ServerIsn => 40,
            Evidence::ClientKey | Evidence::ServerKey => 50,
            Evidence::MptcpKeys | Evidence::Subflows => 20,
            Evidence::ClientSequence | Evidence::ServerSequence => 10,
            Evidence::ClientAddress | Evidence::ServerAddress => 1,
        }
    }

    /// Whether it is only a tie-breaker.
    fn tie_breaker(self) -> bool {
        matches!(self, Evidence::ClientAddress | Evidence::ServerAddress)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::ClientIsn => "client_isn",
            Evidence::ServerIsn => "server_isn",
            Evidence::ClientSequence => "client_sequence",
            Evidence::ServerSequence => "server_sequence",
            Evidence::MptcpKeys => "mptcp_keys",
            Evidence::ClientKey => "client_key",
            Evidence::ServerKey => "server_key",
            Evidence::Subflows => "subflows",
            Evidence::ClientAddress => "client_address",
            Evidence::ServerAddress => "server_address",
        }
    }
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
    pub evidence: Vec<Evidence>,
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

impl SubflowMatch {
    pub fn new(tcp_stream: u64, peer_tcp_stream: Option<u64>) -> Self {
        Self {
            tcp_stream,
            peer_tcp_stream,
        }
    }
}

impl MptcpMatch {
    /// A match of connection `id` with `peer_id` and these subflows, without evidence (for
    /// callers that know the mapping, e.g. tests).
    pub fn new(id: u64, peer_id: u64, subflows: Vec<SubflowMatch>) -> Self {
        Self {
            id,
            peer_id,
            score: 0,
            evidence: Vec::new(),
            subflows,
            peer_unmatched_subflows: Vec::new(),
        }
    }

    /// The counterpart of subflow `tcp_stream`, if it has one.
    pub fn peer_of(&self, tcp_stream: u64) -> Option<u64> {
        self.subflows
            .iter()
            .find(|s| s.tcp_stream == tcp_stream)
            .and_then(|s| s.peer_tcp_stream)
    }
}

/// Maps every TCP stream of `capture` to its counterpart in `peer`; with `stream`, the result
/// holds that stream only (the assignment still considers every stream: a better claimant of
/// the same counterpart wins).
pub fn map_tcp(capture: &Analyzer, peer: &Analyzer, stream: Option<u64>) -> TcpMapping {
    let mine = Side::of(capture);
    let theirs = Side::of(peer);
    let pairs = assign(tcp_candidates(&mine, &theirs));
    let mut mapping = TcpMapping {
        mappings: Vec::new(),
        unmatched: Vec::new(),
        peer_unmatched: Vec::new(),
    };
    let mut peer_taken = vec![false; theirs.streams.len()];
    for (index, facts) in mine.streams.iter().enumerate() {
        let index = index as u64;
        match pairs.get(&index) {
            Some(&(peer_index, score, ref evidence)) => {
                peer_taken[peer_index as usize] = true;
                let peer_facts = &theirs.streams[peer_index as usize];
                if stream.is_none_or(|s| s == index) {
                    mapping.mappings.push(TcpMatch {
                        tcp_stream: index,
                        peer_tcp_stream: peer_index,
                        score,
                        evidence: evidence.clone(),
                        client: facts.stream.client,
                        server: facts.stream.server,
                        peer_client: peer_facts.stream.client,
                        peer_server: peer_facts.stream.server,
                    });
                }
            }
            None if stream.is_none_or(|s| s == index) => mapping.unmatched.push(index),
            None => {}
        }
    }
    if stream.is_none() {
        mapping.peer_unmatched = unmatched_indices(&peer_taken);
    }
    mapping
}

/// Maps every MPTCP connection of `capture` to its counterpart in `peer` (keys decide; without
/// keys, the connection holding most of its subflows' counterparts), and each subflow to its
/// counterpart among the peer connection's subflows. With `id`, that connection only.
pub fn map_mptcp(capture: &Analyzer, peer: &Analyzer, id: Option<u64>) -> MptcpMapping {
    let mine = Side::of(capture);
    let theirs = Side::of(peer);
    let streams = assign(tcp_candidates(&mine, &theirs));
    let connections = assign(connection_candidates(&mine, &theirs, &streams));
    let mut mapping = MptcpMapping {
        mappings: Vec::new(),
        unmatched: Vec::new(),
        peer_unmatched: Vec::new(),
    };
    let mut peer_taken = std::collections::HashSet::new();
    for connection in &mine.list.mptcp_connections {
        let Some(&(peer_id, score, ref evidence)) = connections.get(&connection.id) else {
            if id.is_none_or(|id| id == connection.id) {
                mapping.unmatched.push(connection.id);
            }
            continue;
        };
        peer_taken.insert(peer_id);
        let peer_connection = theirs
            .list
            .mptcp_connections
            .iter()
            .find(|c| c.id == peer_id);
        if let Some(peer_connection) = peer_connection
            && id.is_none_or(|id| id == connection.id)
        {
            let (subflows, peer_unmatched_subflows) =
                map_subflows(connection, peer_connection, &streams);
            mapping.mappings.push(MptcpMatch {
                id: connection.id,
                peer_id,
                score,
                evidence: evidence.clone(),
                subflows,
                peer_unmatched_subflows,
            });
        }
    }
    if id.is_none() {
        mapping.peer_unmatched = theirs
            .list
            .mptcp_connections
            .iter()
            .map(|c| c.id)
            .filter(|id| !peer_taken.contains(id))
            .collect();
    }
    mapping
}

/// What one capture says about its streams and connections.
struct Side<'a> {
    streams: Vec<StreamFacts<'a>>,
    list: MptcpList,
}

/// One stream's identity: its state, and the keys of the connection it is a subflow of.
struct StreamFacts<'a> {
    stream: &'a TcpStream,
    keys: [Option<u64>; 2],
}

impl<'a> Side<'a> {
    fn of(analyzer: &'a Analyzer) -> Self {
        let list = analyzer.mptcp_list();
        let mut keys = vec![[None, None]; analyzer.tcp_stream_count()];
        for connection in &list.mptcp_connections {
            for subflow in &connection.subflows {
                if let Some(slot) = keys.get_mut(subflow.tcp_stream as usize) {
                    *slot = [connection.client_key, connection.server_key];
                }
            }
        }
        let streams = (0..analyzer.tcp_stream_count() as u64)
            .map_while(|index| analyzer.tcp_stream(index))
            .zip(keys)
            .map(|(stream, keys)| StreamFacts { stream, keys })
            .collect();
        Side { streams, list }
    }
}

/// A candidate pair's counterpart, score and evidence, by the first capture's index.
type Assignment = HashMap<u64, (u64, u32, Vec<Evidence>)>;

/// A candidate pair: (index in the first capture, index in the second, evidence).
type Candidate = (u64, u64, Vec<Evidence>);

/// An ISN or key shared by more streams of a capture than this identifies none of them (a
/// traffic generator reusing ISNs, a connection of many subflows): it is then looked up with one
/// of the stream's endpoints, and not at all if that is shared as widely, so that the candidates
/// stay few (their evidence is still weighed when another identity finds them).
const SHARED_IDENTITY: usize = 8;

/// Every pair of streams sharing an ISN, a key or (for streams without an ISN) a sequence
/// range, with all their evidence. Streams are found through indexes by ISN and key, so the
/// work grows with the streams, not with their product; only streams without an ISN in some
/// direction are compared with every such stream of the other capture.
fn tcp_candidates(mine: &Side<'_>, theirs: &Side<'_>) -> Vec<Candidate> {
    let mut by_identity: HashMap<(u8, u64), Vec<u64>> = HashMap::new();
    let mut by_identity_and_endpoint: HashMap<(u8, u64, SocketAddr), Vec<u64>> = HashMap::new();
    let mut without_isn = Vec::new();
    for (index, facts) in theirs.streams.iter().enumerate() {
        for (kind, value) in identities(facts) {
            by_identity
                .entry((kind, value))
                .or_default()
                .push(index as u64);
            for endpoint in [facts.stream.client, facts.stream.server] {
                by_identity_and_endpoint
                    .entry((kind, value, endpoint))
                    .or_default()
                    .push(index as u64);
            }
        }
        if lacks_an_isn(facts.stream) {
            without_isn.push(index as u64);
        }
    }
    let mut candidates = Vec::new();
    for (index, facts) in mine.streams.iter().enumerate() {
        let mut peers: Vec<u64> = Vec::new();
        for (kind, value) in identities(facts) {
            match by_identity.get(&(kind, value)) {
                Some(streams) if streams.len() <= SHARED_IDENTITY => peers.extend(streams),
                // Shared even with this endpoint (every stream to one server): it finds no
                // counterpart; the stream's other identities may.
                Some(_) => {
                    for endpoint in [facts.stream.client, facts.stream.server] {
                        if let Some(streams) =
                            by_identity_and_endpoint.get(&(kind, value, endpoint))
                            && streams.len() <= SHARED_IDENTITY
                        {
                            peers.extend(streams);
                        }
                    }
                }
                None => {}
            }
        }
        if lacks_an_isn(facts.stream) {
            peers.extend(&without_isn);
        }
        peers.sort_unstable();
        peers.dedup();
        for peer in peers {
            let evidence = stream_evidence(facts, &theirs.streams[peer as usize]);
            if evidence.iter().any(|e| !e.tie_breaker()) {
                candidates.push((index as u64, peer, evidence));
            }
        }
    }
    candidates
}

/// The index keys of a stream: (kind, value) for each ISN and key it has.
fn identities(facts: &StreamFacts<'_>) -> impl Iterator<Item = (u8, u64)> {
    let isns = [Direction::ClientToServer, Direction::ServerToClient]
        .map(|direction| facts.stream.dirs[direction].isn().map(u64::from));
    [
        isns[0].map(|isn| (0, isn)),
        isns[1].map(|isn| (1, isn)),
        facts.keys[0].map(|key| (2, key)),
        facts.keys[1].map(|key| (3, key)),
    ]
    .into_iter()
    .flatten()
}

fn lacks_an_isn(stream: &TcpStream) -> bool {
    stream.dirs.iter().any(|(_, d)| d.isn().is_none())
}

/// What two streams share.
fn stream_evidence(mine: &StreamFacts<'_>, theirs: &StreamFacts<'_>) -> Vec<Evidence> {
    let mut evidence = Vec::new();
    let per_direction = [
        (
            Direction::ClientToServer,
            Evidence::ClientIsn,
            Evidence::ClientSequence,
        ),
        (
            Direction::ServerToClient,
            Evidence::ServerIsn,
            Evidence::ServerSequence,
        ),
    ];
    for (direction, isn, sequence) in per_direction {
        let (a, b) = (&mine.stream.dirs[direction], &theirs.stream.dirs[direction]);
        match (a.isn(), b.isn()) {
            (Some(x), Some(y)) if x == y => evidence.push(isn),
            (Some(_), Some(_)) => {}
            _ if sequences_overlap(a, b) => evidence.push(sequence),
            _ => {}
        }
    }
    let shares_key = mine
        .keys
        .iter()
        .zip(&theirs.keys)
        .any(|(a, b)| a.is_some() && a == b);
    if shares_key {
        evidence.push(Evidence::MptcpKeys);
    }
    if mine.stream.client == theirs.stream.client {
        evidence.push(Evidence::ClientAddress);
    }
    if mine.stream.server == theirs.stream.server {
        evidence.push(Evidence::ServerAddress);
    }
    evidence
}

/// Whether the sequence numbers two directions carried, `[first, highest]` on the wire,
/// overlap (modulo 2^32).
fn sequences_overlap(a: &TcpDirection, b: &TcpDirection) -> bool {
    let span = |d: &TcpDirection| Some((d.first_seq?, d.highest_seq()?));
    let (Some((a_first, a_last)), Some((b_first, b_last))) = (span(a), span(b)) else {
        return false;
    };
    let within =
        |seq: u32, first: u32, last: u32| seq.wrapping_sub(first) <= last.wrapping_sub(first);
    within(b_first, a_first, a_last) || within(a_first, b_first, b_last)
}

/// Connection pairs sharing a key, or holding counterparts of each other's subflows.
fn connection_candidates(
    mine: &Side<'_>,
    theirs: &Side<'_>,
    streams: &Assignment,
) -> Vec<Candidate> {
    let peer_of_stream: HashMap<u64, u64> = theirs
        .list
        .mptcp_connections
        .iter()
        .flat_map(|c| c.subflows.iter().map(move |s| (s.tcp_stream, c.id)))
        .collect();
    let mut candidates = Vec::new();
    for connection in &mine.list.mptcp_connections {
        for peer in &theirs.list.mptcp_connections {
            let mut evidence = Vec::new();
            if connection.client_key.is_some() && connection.client_key == peer.client_key {
                evidence.push(Evidence::ClientKey);
            }
            if connection.server_key.is_some() && connection.server_key == peer.server_key {
                evidence.push(Evidence::ServerKey);
            }
            let shared_subflows = connection.subflows.iter().any(|s| {
                streams
                    .get(&s.tcp_stream)
                    .and_then(|(peer_stream, _, _)| peer_of_stream.get(peer_stream))
                    == Some(&peer.id)
            });
            if shared_subflows {
                evidence.push(Evidence::Subflows);
            }
            if !evidence.is_empty() {
                candidates.push((connection.id, peer.id, evidence));
            }
        }
    }
    candidates
}

/// Each subflow of `connection` with its counterpart among `peer`'s subflows, and the
/// subflows of `peer` left without one.
fn map_subflows(
    connection: &MptcpConnectionInfo,
    peer: &MptcpConnectionInfo,
    streams: &Assignment,
) -> (Vec<SubflowMatch>, Vec<u64>) {
    let peer_streams: Vec<u64> = peer.subflows.iter().map(|s| s.tcp_stream).collect();
    let subflows: Vec<SubflowMatch> = connection
        .subflows
        .iter()
        .map(|s| {
            let counterpart = streams
                .get(&s.tcp_stream)
                .map(|(peer_stream, _, _)| *peer_stream)
                .filter(|peer_stream| peer_streams.contains(peer_stream));
            SubflowMatch::new(s.tcp_stream, counterpart)
        })
        .collect();
    let unmatched = peer_streams
        .into_iter()
        .filter(|p| !subflows.iter().any(|s| s.peer_tcp_stream == Some(*p)))
        .collect();
    (subflows, unmatched)
}

/// Greedy one-to-one assignment: highest score first, then lower indexes.
fn assign(candidates: Vec<Candidate>) -> Assignment {
    let mut scored: Vec<(u32, Candidate)> = candidates
        .into_iter()
        .map(|c| (c.2.iter().map(|e| e.weight()).sum(), c))
        .collect();
    scored.sort_by(|(sa, (a, pa, _)), (sb, (b, pb, _))| sb.cmp(sa).then(a.cmp(b)).then(pa.cmp(pb)));
    let mut assignment = Assignment::new();
    let mut peers_taken = std::collections::HashSet::new();
    for (score, (index, peer, evidence)) in scored {
        if assignment.contains_key(&index) || peers_taken.contains(&peer) {
            continue;
        }
        peers_taken.insert(peer);
        assignment.insert(index, (peer, score, evidence));
    }
    assignment
}

fn unmatched_indices(taken: &[bool]) -> Vec<u64> {
    taken
        .iter()
        .enumerate()
        .filter(|(_, taken)| !**taken)
        .map(|(index, _)| index as u64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        analysis::tcp::tests::{A, B, pkt},
        decode::{Packet, tcp_flags::*},
    };

    const NAT: &str = "192.168.1.1";

    /// A SYN, SYN/ACK, ACK and 100 bytes each way between `client` and `server`.
    fn handshake(client: (&str, u16), server: (&str, u16), isns: (u32, u32)) -> Vec<Packet> {
        let (c, s) = isns;
        let to_server = || pkt(client.0, client.1, server.0, server.1);
        let to_client = || pkt(server.0, server.1, client.0, client.1);
        vec![
            to_server().seq(c).flags(SYN).done(),
            to_client()
                .seq(s)
                .ack(c.wrapping_add(1))
                .flags(SYN | ACK)
                .done(),
            to_server()
                .seq(c.wrapping_add(1))
                .ack(s.wrapping_add(1))
                .len(100)
                .done(),
            to_client()
                .seq(s.wrapping_add(1))
                .ack(c.wrapping_add(101))
                .len(100)
                .done(),
        ]
    }

    fn analyse(packets: impl IntoIterator<Item = Packet>) -> Analyzer {
        let mut analyzer = Analyzer::new();
        for (number, packet) in (1..).zip(packets) {
            analyzer.feed_decoded(number, Ok(Some(&packet)));
        }
        analyzer
    }

    /// Through a NAT that rewrites the client's address and port, the ISNs decide; a stream
    /// with the same addresses but other ISNs is not a counterpart; without handshakes,
    /// overlapping sequence numbers are.
    #[test]
    fn streams_map_by_isn_through_nat_and_addresses_only_break_ties() {
        let client_side = analyse(
            [
                handshake((A, 40000), (B, 80), (1000, 5000)),
                handshake((A, 40001), (B, 80), (2000, 6000)),
                vec![pkt(A, 40002, B, 80).seq(3000).flags(SYN).done()],
                vec![pkt(A, 40003, B, 80).seq(7000).ack(1).len(100).done()],
            ]
            .concat(),
        );
        let server_side = analyse(
            [
                handshake((NAT, 50001), (B, 80), (2000, 6000)),
                handshake((NAT, 50000), (B, 80), (1000, 5000)),
                handshake((NAT, 50002), (B, 80), (9000, 9500)),
                vec![pkt(NAT, 50003, B, 80).seq(7050).ack(1).len(100).done()],
                handshake((A, 40000), (B, 80), (4444, 5555)),
            ]
            .concat(),
        );
        let mapping = map_tcp(&client_side, &server_side, None);
        let pairs: Vec<_> = mapping
            .mappings
            .iter()
            .map(|m| (m.tcp_stream, m.peer_tcp_stream, m.score))
            .collect();
        // ISNs both ways (40 + 40) and the server's address (1); the overlap alone (10 + 1).
        assert_eq!(pairs, [(0, 1, 81), (1, 0, 81), (3, 3, 11)]);
        assert_eq!(
            mapping.mappings[0].evidence,
            [
                Evidence::ClientIsn,
                Evidence::ServerIsn,
                Evidence::ServerAddress
            ]
        );
        assert_eq!(
            mapping.mappings[0].peer_client.to_string(),
            "192.168.1.1:50000"
        );
        assert_eq!(mapping.mappings[2].evidence[0], Evidence::ClientSequence);
        assert_eq!(mapping.unmatched, [2]);
        assert_eq!(mapping.peer_unmatched, [2, 4]);

        let one = map_tcp(&client_side, &server_side, Some(1));
        assert_eq!(one.mappings.len(), 1);
        assert_eq!(one.mappings[0].peer_tcp_stream, 0);
        assert!(one.unmatched.is_empty() && one.peer_unmatched.is_empty());
    }

    /// A generator reusing one ISN pair for every stream: the ISN then identifies a stream only
    /// with its client endpoint (no NAT), and the candidates stay one per stream instead of
    /// every pair; through a NAT such streams have nothing that identifies them.
    #[test]
    fn shared_isns_do_not_pair_every_stream_with_every_other() {
        let streams = 20;
        let side = |client: &str, base_port: u16| {
            analyse(
                (0..streams)
                    .flat_map(|i| handshake((client, base_port + i), (B, 80), (1000, 5000))),
            )
        };
        let client_side = side(A, 40000);
        let candidates = tcp_candidates(&Side::of(&client_side), &Side::of(&side(A, 40000)));
        assert_eq!(candidates.len(), usize::from(streams));
        let mapping = map_tcp(&client_side, &side(A, 40000), None);
        assert!(
            mapping
                .mappings
                .iter()
                .all(|m| m.tcp_stream == m.peer_tcp_stream)
        );
        assert_eq!(mapping.mappings.len(), usize::from(streams));
        let through_nat = map_tcp(&client_side, &side(NAT, 50000), None);
        assert!(through_nat.mappings.is_empty());
        assert_eq!(through_nat.unmatched.len(), usize::from(streams));
    }

    #[test]
    fn isns_read_back_as_on_the_wire_across_the_wrap() {
        let analyzer = analyse(handshake((A, 1), (B, 2), (u32::MAX - 10, 7)));
        let stream = analyzer.tcp_stream(0).expect("stream 0");
        assert_eq!(
            stream.dirs[Direction::ClientToServer].isn(),
            Some(u32::MAX - 10)
        );
        assert_eq!(stream.dirs[Direction::ServerToClient].isn(), Some(7));
        assert_eq!(
            stream.dirs[Direction::ClientToServer].highest_seq(),
            Some((u32::MAX - 10).wrapping_add(101))
        );
    }
}
