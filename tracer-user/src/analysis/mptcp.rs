//! MPTCP connections: keys, tokens, MP_JOIN attachment, DSS mappings, reinjections, signalling.
//!
//! Definitions (quoted by the README):
//! - **Connection**: starts at an MP_CAPABLE SYN, or at the first MP_CAPABLE packet of a TCP
//!   stream whose SYN was not captured. Connections are numbered from 0 in order of creation.
//!   Its client and server are those of its initial subflow; `client_to_server` below is
//!   always relative to the connection, whichever side opened a given subflow.
//! - **Keys**: an MP_CAPABLE option's sender key belongs to the packet's sender, its receiver
//!   key to the receiver (v0: SYN = client key, SYN/ACK = server key, third ACK = both; v1: SYN
//!   none, SYN/ACK = server key, ACK = both). Tokens and IDSNs come from `keys::key_material`
//!   as soon as a key is known, with the version of the latest MP_CAPABLE option.
//! - **Subflows**: an MP_JOIN SYN carries the token of its receiver's key. It is looked up
//!   among the server tokens and the client tokens of the connections seen so far (either side
//!   may open a subflow). A match attaches the stream as a subflow (join, backup flag, address
//!   ids); no match makes it an **orphan**, re-examined whenever a new token becomes known.
//!   A stream that carries DSS options but no captured MP_CAPABLE/MP_JOIN SYN is attached by
//!   data sequence number: its mapping's DSN (or, without a mapping, its DATA_ACK, which
//!   lies in the receiver's sequence space) must fall in `[IDSN, IDSN + 2^32)` of one
//!   direction of exactly one connection (a 4-byte DSN is first expanded against that
//!   direction, and must also be at most 2^24 past the highest data seen there; offsets are
//!   modulo 2^64). Such a subflow has role `unknown` (a later MP_JOIN SYN with the
//!   connection's token makes it a join). Otherwise it is an orphan too; the attempt is
//!   repeated on its first `MAX_DSN_ATTACH_ATTEMPTS` DSS packets. A stream whose MPTCP
//!   options are neither a handshake nor DSS is an orphan as well (found at list time: the
//!   streams that never got a role), so every stream with MPTCP options is listed once.
//! - **Fallback** (`fallback` events, `fallback: true`): an MP_CAPABLE SYN answered by a
//!   SYN/ACK without MP_CAPABLE; an infinite mapping (DSS data-level length 0); MP_FAIL.
//! - **Data sequence numbers** are 64-bit and modular (RFC 8684): ranges, maxima and offsets
//!   are computed modulo 2^64 (`ranges::RangeSet`, `dsn_max`, `dsn_offset`). A 4-byte DSN or DATA_ACK holds the low 32 bits; it
//!   is expanded to the 64-bit value closest to the last one known in its direction (initially
//!   IDSN + 1). If a 4-byte value arrives before the direction's key is known (v1: the client
//!   key travels in the third ACK), it is expanded in a provisional space based at 2^32; when
//!   the IDSN (or any 8-byte DSN of that direction) becomes known, everything recorded for the
//!   direction is shifted once by the multiple of 2^32 that places it next to the true value.
//!   Nothing is buffered per packet.
//! - **Mappings**: each subflow direction keeps up to `MAPPINGS` distinct DSS
//!   mappings (DSN, subflow sequence relative to the subflow's ISN, length), evicting the one
//!   lowest in subflow sequence space (mappings wholly below the data delivered go first; a
//!   hole keeps its mapping as long as possible, as its retransmission may not repeat it). v1's
//!   MP_CAPABLE ACK with a data-level length is the mapping (IDSN + 1, relative ssn 1, length)
//!   (RFC 8684 §3.1). An infinite mapping maps everything after its ssn. A segment with
//!   payload gets its data range from the mapping covering its relative subflow sequence:
//!   `dsn = map.dsn + (rel_seq − map.ssn)`, clipped to the mapping (a segment spanning two
//!   mappings is split). Payload no known mapping covers is counted as `unmapped` (unless
//!   the whole segment is a TCP-level retransmission: then it is a retransmission); its
//!   subflow range is kept in an interval set and credited, as carried by that subflow, when
//!   a later mapping covers it (the Linux v0 stack repeats a mapping only on the
//!   retransmission of its first segment). Without a
//!   captured SYN the subflow's ISN is unknown: it is taken as the lowest
//!   `position − ssn` of segments carrying a mapping (exact once a segment starting its
//!   mapping is seen).
//! - **DATA_FIN** takes the last data sequence number of its mapping; it is never a payload
//!   byte and gets one `data_fin` event per direction.
//! - **Per direction**: `wire_bytes` = sum of subflow payloads; `unique_bytes` = size of the
//!   union of data ranges carried; each subflow is credited with the bytes it carried first
//!   (`share` = its integer unique bytes / the direction's). Data carried again is split by
//!   what the subflow's TCP layer saw: as many of its bytes as the segment's payload overlaps
//!   this subflow's earlier TCP sequence ranges are a **retransmission** (TCP level); the
//!   rest, data already carried but in subflow bytes new to this subflow, is a
//!   **reinjection** (MPTCP level: normally on another subflow than the first carrier; Linux
//!   also re-sends data on the same subflow under new subflow sequence numbers). Each is
//!   counted once per segment, with its bytes. `acked_bytes` = highest DATA_ACK from
//!   the peer − (IDSN + 1), minus 1 if it acknowledges this direction's DATA_FIN, never
//!   negative (0 while the IDSN is unknown). `duration_s` = last − first packet of the
//!   connection's subflows in that direction.

use std::{
    fmt::Write as _,
    net::{IpAddr, SocketAddr},
};

use rustc_hash::FxHashMap;

use super::{
    direction::{Direction, PerDirection},
    keys::{KeyMaterial, key_material},
    ranges::RangeSet,
    record::{DataRange, MappingRecord, MptcpRecord},
    summary::{
        EventKind, MptcpConnectionInfo, MptcpDirectionSummary, MptcpEvent, MptcpSummary,
        OrphanReason, OrphanSubflow, SubflowDirectionSummary, SubflowInfo, SubflowRole,
    },
    tcp::{Segment, TcpDirection, TcpTracker, expand32},
};
use crate::decode::{
    MptcpOption, Packet,
    mptcp::{DssMapping, JoinOption, WireSeq, tcprst_reason_name},
    tcp_flags,
};

/// Mappings remembered per subflow direction.
pub const MAPPINGS: usize = 16;
/// Events kept per connection; more are counted in `events_dropped`.
pub const MAX_EVENTS: usize = 1000;
/// How many DSS mappings of an unattached stream are tried against the known connections.
pub const MAX_DSN_ATTACH_ATTEMPTS: u32 = 16;
/// Base of the provisional DSN space of a direction whose IDSN is not known yet.
const PROVISIONAL_BASE: u64 = 1 << 32;
/// Length given to the infinite mapping.
const INFINITE: u64 = 1 << 62;
/// A 4-byte DSN attaches a stream only if it is at most this far past the data seen.
const DSN_ATTACH_SLACK: u64 = 1 << 24;

/// Keys and key material are indexed by the direction their owner sends in.
const CLIENT: Direction = Direction::ClientToServer;
const SERVER: Direction = Direction::ServerToClient;

/// Fallback causes, one bit each, so each cause gives one event.
const FALLBACK_SYNACK: u8 = 1;
const FALLBACK_INFINITE: u8 = 2;
const FALLBACK_MP_FAIL: u8 = 4;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum StreamRole {
    #[default]
    Unknown,
    Subflow {
        conn: u32,
        sub: u32,
    },
    Orphan(u32),
}

#[derive(Clone, Debug)]
struct Orphan {
    stream: u32,
    token: Option<u32>,
    backup: bool,
    addr_id: Option<u8>,
    attached: bool,
    dsn_attempts: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Mapping {
    dsn: u64,
    /// Relative to the subflow's ISN.
    ssn: u64,
    /// Payload bytes mapped (DATA_FIN excluded); `INFINITE` for the infinite mapping.
    len: u64,
}

#[derive(Clone, Debug, Default)]
struct SubflowDirection {
    packets: u64,
    wire_bytes: u64,
    unique_bytes: u64,
    reinjected_bytes: u64,
    retransmitted_bytes: u64,
    mappings: [Mapping; MAPPINGS],
    /// Slots of `mappings` in use (filled from 0).
    used: usize,
    /// Slot of the mapping remembered last.
    latest: usize,
    /// Highest `ssn` of the mappings remembered so far: a mapping starting above it cannot be
    /// one of them, and in-order data needs no search for duplicates.
    max_ssn: u64,
    /// False while the slots, read from `latest + 1` round to `latest` (from 0 while filling),
    /// hold strictly increasing mapping ends: the lowest is then the slot after `latest`, and
    /// in-order data needs no search for the mapping to evict.
    out_of_ring_order: bool,
    /// ISN position inferred from mappings when the SYN was not captured.
    inferred_isn: Option<u64>,
    /// Relative subflow ranges carried before any known mapping covered them; credited when
    /// a later mapping (often on a retransmission) covers them.
    unmapped: RangeSet,
}

/// Relative subflow sequence number just past a mapping.
fn mapping_end(m: &Mapping) -> u64 {
    m.ssn.saturating_add(m.len)
}

impl SubflowDirection {
    /// Keeps `mapping`; false if it was already known.
    fn remember(&mut self, mapping: Mapping, carried: Carried<'_>) -> bool {
        // Stacks repeat a mapping on every segment it covers: check the latest first.
        if self.used > 0
            && (self.mappings[self.latest] == mapping
                || mapping.ssn <= self.max_ssn && self.mappings[..self.used].contains(&mapping))
        {
            return false;
        }
        let follows_latest =
            self.used == 0 || mapping_end(&mapping) > mapping_end(&self.mappings[self.latest]);
        self.max_ssn = if self.used == 0 {
            mapping.ssn
        } else {
            self.max_ssn.max(mapping.ssn)
        };
        if self.used < MAPPINGS {
            self.mappings[self.used] = mapping;
            self.latest = self.used;
            self.used += 1;
            self.out_of_ring_order |= !follows_latest;
            return true;
        }
        // Evict the lowest mapping whose bytes were all carried; if none, the lowest. A
        // mapping over a hole is kept: the retransmission filling it may not repeat it.
        // Usually the lowest one is carried: try it before asking about every other.
        // In ring order the ends are distinct, so the slot after `latest` is the first lowest
        // (`min_by_key` picks the first of equals) as the search would find it.
        let lowest = if self.out_of_ring_order {
            (0..MAPPINGS)
                .min_by_key(|&i| mapping_end(&self.mappings[i]))
                .unwrap_or(0)
        } else {
            (self.latest + 1) % MAPPINGS
        };
        let victim = if carried.all(
            self.mappings[lowest].ssn,
            mapping_end(&self.mappings[lowest]),
        ) {
            lowest
        } else {
            (0..MAPPINGS)
                .min_by_key(|&i| {
                    let m = &self.mappings[i];
                    (!carried.all(m.ssn, mapping_end(m)), mapping_end(m))
                })
                .unwrap_or(lowest)
        };
        self.mappings[victim] = mapping;
        self.latest = victim;
        self.out_of_ring_order = if self.out_of_ring_order || victim != lowest {
            !self.in_ring_order()
        } else {
            !follows_latest
        };
        true
    }

    /// Whether the (full) slots, read from `latest + 1` round to `latest`, have strictly
    /// increasing ends.
    fn in_ring_order(&self) -> bool {
        (1..MAPPINGS).all(|i| {
            let before = &self.mappings[(self.latest + i) % MAPPINGS];
            let after = &self.mappings[(self.latest + i + 1) % MAPPINGS];
            mapping_end(before) < mapping_end(after)
        })
    }

    /// The mapping covering relative sequence `rel`: the latest remembered if it does, else
    /// the one starting highest.
    fn covering(&self, rel: u64) -> Option<Mapping> {
        let covers = |m: &Mapping| m.ssn <= rel && rel - m.ssn < m.len;
        let latest = self.mappings[self.latest];
        if self.used > 0 && covers(&latest) {
            return Some(latest);
        }
        self.mappings[..self.used]
            .iter()
            .filter(|m| covers(m))
            .max_by_key(|m| m.ssn)
            .copied()
    }
}

#[derive(Clone, Debug)]
struct Subflow {
    stream: u32,
    role: SubflowRole,
    backup: bool,
    addr_ids: AddrIds,
    /// The subflow's TCP client is the connection's server.
    flipped: bool,
    /// By connection direction.
    dirs: PerDirection<SubflowDirection>,
}

/// Address ids of a subflow's TCP client (from its MP_JOIN SYN) and server (SYN/ACK).
#[derive(Clone, Copy, Debug, Default)]
struct AddrIds {
    client: Option<u8>,
    server: Option<u8>,
}

/// The data level of one direction of a connection.
#[derive(Clone, Debug, Default)]
struct DataDirection {
    wire_bytes: u64,
    first_ts_ns: Option<u64>,
    last_ts_ns: u64,
    /// Data ranges carried so far. Which subflow carried a byte first needs no record here:
    /// the newly covered bytes of each insert are credited to the inserting subflow at once,
    /// so the set merges fully and stays small however the subflows interleave.
    data: RangeSet,
    reinjections: u64,
    reinjected_bytes: u64,
    retransmissions: u64,
    retransmitted_bytes: u64,
    /// Last 64-bit DSN or DATA_ACK of this direction, reference for 4-byte values.
    dsn_ref: Option<u64>,
    /// `dsn_ref` and everything below is in the provisional space (IDSN not known yet).
    provisional: bool,
    /// Highest DATA_ACK the peer sent for this direction.
    highest_ack: Option<u64>,
    data_fin: Option<u64>,
    data_fin_reported: bool,
    unmapped_segments: u64,
    unmapped_bytes: u64,
}

#[derive(Clone, Debug)]
struct Connection {
    version: u8,
    /// By the direction their owner sends in: the client's key, the server's key.
    keys: PerDirection<Option<u64>>,
    material: PerDirection<Option<KeyMaterial>>,
    fallback: bool,
    fallback_causes: u8,
    awaiting_synack: bool,
    subflows: Vec<Subflow>,
    dirs: PerDirection<DataDirection>,
    events: Vec<MptcpEvent>,
    events_dropped: u64,
    first_ts_ns: u64,
    /// An MP_FASTCLOSE was seen: the connection is over, whatever else is still in flight.
    fastclosed: bool,
}

/// All MPTCP connections and orphan subflows seen.
#[derive(Default)]
pub struct MptcpTracker {
    conns: Vec<Connection>,
    by_token: FxHashMap<u32, u32>,
    /// Indexed by TCP stream number.
    roles: Vec<StreamRole>,
    orphans: Vec<Orphan>,
}

/// What an event needs to know about the packet that caused it.
#[derive(Clone, Copy)]
struct EventSource {
    packet: u64,
    ts_ns: u64,
    stream: u32,
    /// Connection direction.
    dir: Direction,
}

impl Connection {
    fn new(version: u8, ts_ns: u64) -> Self {
        Self {
            version,
            keys: PerDirection::default(),
            material: PerDirection::default(),
            fallback: false,
            fallback_causes: 0,
            awaiting_synack: false,
            subflows: Vec::new(),
            dirs: Default::default(),
            events: Vec::new(),
            events_dropped: 0,
            first_ts_ns: ts_ns,
            fastclosed: false,
        }
    }

    fn event(&mut self, at: EventSource, kind: EventKind, detail: String) {
        if self.events.len() >= MAX_EVENTS {
            self.events_dropped += 1;
            return;
        }
        self.events.push(MptcpEvent {
            time_s: at.ts_ns.saturating_sub(self.first_ts_ns) as f64 / 1e9,
            packet: at.packet,
            tcp_stream: u64::from(at.stream),
            direction: at.dir,
            kind,
            detail,
        });
    }

    fn fall_back(&mut self, at: EventSource, cause: u8, detail: &str) {
        self.fallback = true;
        if self.fallback_causes & cause == 0 {
            self.fallback_causes |= cause;
            self.event(at, EventKind::Fallback, detail.to_owned());
        }
    }

    /// The reference a 4-byte value of direction `cd` is expanded against.
    #[inline]
    fn dsn_reference(&mut self, cd: Direction) -> u64 {
        if let Some(reference) = self.dirs[cd].dsn_ref {
            return reference;
        }
        match self.material[cd] {
            Some(m) => m.idsn.wrapping_add(1),
            None => {
                self.dirs[cd].provisional = true;
                PROVISIONAL_BASE
            }
        }
    }

    /// A wire DSN or DATA_ACK of direction `cd` as a 64-bit value.
    #[inline(always)]
    fn dsn(&mut self, cd: Direction, wire: WireSeq) -> u64 {
        let value = match wire {
            WireSeq::U64(value) => {
                if self.dirs[cd].provisional {
                    self.leave_provisional(cd, value);
                }
                value
            }
            WireSeq::U32(low) => expand32(low, self.dsn_reference(cd)),
        };
        self.dirs[cd].dsn_ref = Some(value);
        value
    }

    /// An 8-byte `value` of direction `cd`, still in the provisional space: the true space
    /// is now known.
    #[cold]
    fn leave_provisional(&mut self, cd: Direction, value: u64) {
        let reference = self.dsn_reference(cd);
        self.rebase(cd, value.wrapping_sub(expand32(value as u32, reference)));
    }

    /// Leaves the provisional space of direction `cd`: shifts everything recorded by `delta`.
    fn rebase(&mut self, cd: Direction, delta: u64) {
        let dir = &mut self.dirs[cd];
        dir.provisional = false;
        dir.data.shift(delta);
        for value in [&mut dir.dsn_ref, &mut dir.highest_ack, &mut dir.data_fin]
            .into_iter()
            .flatten()
        {
            *value = value.wrapping_add(delta);
        }
        for sub in &mut self.subflows {
            let sd = &mut sub.dirs[cd];
            for m in &mut sd.mappings[..sd.used] {
                m.dsn = m.dsn.wrapping_add(delta);
            }
        }
    }
}

impl Connection {
    /// Whether `dsn` (of a stream without handshake) lies in the sequence space of direction
    /// `cd`: within 2^32 past its IDSN and, for a 4-byte value, at most `DSN_ATTACH_SLACK`
    /// past the highest data seen. Offsets from the IDSN are modulo 2^64: the space may
    /// cross 2^64.
    fn dsn_space_holds(&self, cd: Direction, dsn: WireSeq) -> bool {
        let Some(m) = self.material[cd] else {
            return false;
        };
        let start = m.idsn.wrapping_add(1);
        match dsn {
            WireSeq::U64(value) => value.wrapping_sub(m.idsn) < 1 << 32,
            WireSeq::U32(low) => {
                let reference = self.dirs[cd].dsn_ref.unwrap_or(start);
                let value = expand32(low, reference);
                let data_end = self.dirs[cd].data.end().unwrap_or(start);
                let seen = dsn_max(data_end, reference);
                let seen_offset = dsn_offset(seen, m.idsn).unwrap_or(0);
                let offset = value.wrapping_sub(m.idsn);
                offset < 1 << 32 && offset <= seen_offset.saturating_add(DSN_ATTACH_SLACK)
            }
        }
    }
}

impl MptcpTracker {
    /// Updates the MPTCP state with one packet, after `TcpTracker::feed` gave its `segment`.
    /// `tcp` is the tracker that made `segment` (mapping eviction asks what it has seen).
    /// Sets `record` to what was concluded about the packet when it belongs to a connection's
    /// subflow, and leaves it alone otherwise. Written in place: returned by value, the record
    /// was copied on every packet (9 % of `mptcp-summary`'s perf samples).
    #[inline]
    pub fn feed(
        &mut self,
        packet: &Packet,
        segment: &Segment,
        tcp: &TcpTracker,
        record: &mut Option<MptcpRecord>,
    ) {
        let stream = segment.stream as usize;
        if self.roles.len() <= stream {
            self.roles.resize(stream + 1, StreamRole::Unknown);
        }
        let role = self.roles[stream];
        if role == StreamRole::Unknown && packet.mptcp.is_empty() {
            return; // plain TCP: the common path for non-MPTCP traffic
        }
        self.feed_mptcp(role, packet, segment, tcp, record);
    }

    /// `feed` for a stream that is or may become part of a connection.
    fn feed_mptcp(
        &mut self,
        role: StreamRole,
        packet: &Packet,
        segment: &Segment,
        tcp: &TcpTracker,
        record: &mut Option<MptcpRecord>,
    ) {
        if segment.roles_swapped
            && let StreamRole::Subflow { conn, sub } = role
        {
            let sub = &mut self.conns[conn as usize].subflows[sub as usize];
            sub.flipped = !sub.flipped;
        }
        let (role, capable_seen) = self.handshake(role, packet, segment);
        let role = self.attach_without_handshake(role, packet, segment);
        self.roles[segment.stream as usize] = role;
        if let StreamRole::Subflow { conn, sub } = role {
            let delivered = tcp
                .stream(u64::from(segment.stream))
                .map(|s| &s.dirs[segment.dir]);
            let subflow_packet = SubflowPacket {
                packet,
                segment,
                sub: sub as usize,
                delivered,
                capable_seen,
            };
            self.conns[conn as usize].feed_subflow(&subflow_packet, conn, record);
        }
    }

    /// The handshake options (MP_CAPABLE, MP_JOIN SYN), which may create a connection or
    /// attach the stream. Returns the stream's role and whether MP_CAPABLE was seen.
    fn handshake(
        &mut self,
        mut role: StreamRole,
        packet: &Packet,
        segment: &Segment,
    ) -> (StreamRole, bool) {
        let syn_only = packet.has_flag(tcp_flags::SYN) && !packet.has_flag(tcp_flags::ACK);
        let mut capable_seen = false;
        for option in &packet.mptcp {
            match option {
                MptcpOption::Capable {
                    version,
                    sender_key,
                    receiver_key,
                    ..
                } => {
                    capable_seen = true;
                    let keys = (*sender_key, *receiver_key);
                    role = self.on_capable(role, packet, segment, *version, keys);
                }
                MptcpOption::Join(JoinOption::Syn {
                    backup,
                    addr_id,
                    token,
                    ..
                }) if syn_only => {
                    role = self.on_join_syn(role, segment.stream, *token, *backup, *addr_id);
                }
                _ => {}
            }
        }
        (role, capable_seen)
    }

    /// A stream with DSS options but no known connection: tries its data sequence numbers.
    fn attach_without_handshake(
        &mut self,
        role: StreamRole,
        packet: &Packet,
        segment: &Segment,
    ) -> StreamRole {
        if matches!(role, StreamRole::Subflow { .. }) {
            return role; // the common case: no need to look for a DSN
        }
        match dss_sequence(packet) {
            Some((value, acked)) => self.attach_by_dsn(role, segment, value, acked),
            None => role,
        }
    }

    /// An MP_CAPABLE option with `(sender, receiver)` keys: creates the connection, or
    /// updates its keys on the initial subflow.
    fn on_capable(
        &mut self,
        role: StreamRole,
        packet: &Packet,
        segment: &Segment,
        version: u8,
        (sender_key, receiver_key): (Option<u64>, Option<u64>),
    ) -> StreamRole {
        let (conn, role) = match role {
            StreamRole::Unknown => {
                let conn = self.conns.len() as u32;
                let mut c = Connection::new(version, packet.ts_ns);
                c.awaiting_synack =
                    packet.has_flag(tcp_flags::SYN) && !packet.has_flag(tcp_flags::ACK);
                c.subflows.push(Subflow {
                    stream: segment.stream,
                    role: SubflowRole::Initial,
                    backup: false,
                    addr_ids: AddrIds::default(),
                    flipped: false,
                    dirs: Default::default(),
                });
                self.conns.push(c);
                (conn, StreamRole::Subflow { conn, sub: 0 })
            }
            // Keys only come from the initial subflow's handshake.
            StreamRole::Subflow { conn, sub: 0 } => (conn, role),
            _ => return role,
        };
        let c = &mut self.conns[conn as usize];
        let cd = segment.dir.flipped_if(c.subflows[0].flipped);
        let mut changed = PerDirection::default();
        if c.version != version {
            c.version = version;
            for owner in Direction::BOTH {
                changed[owner] = c.keys[owner].is_some();
            }
        }
        for (owner, key) in [(cd, sender_key), (cd.flip(), receiver_key)] {
            if let Some(key) = key
                && c.keys[owner] != Some(key)
            {
                c.keys[owner] = Some(key);
                changed[owner] = true;
            }
        }
        for owner in Direction::BOTH {
            if changed[owner] {
                self.learn_key(conn, owner);
            }
        }
        role
    }

    /// Derives token and IDSN of a newly known key of side `owner` of connection `conn`.
    fn learn_key(&mut self, conn: u32, owner: Direction) {
        let c = &mut self.conns[conn as usize];
        let Some(key) = c.keys[owner] else {
            return;
        };
        let material = key_material(c.version, key);
        if let Some(old) = c.material[owner]
            && self.by_token.get(&old.token) == Some(&conn)
        {
            self.by_token.remove(&old.token);
        }
        c.material[owner] = Some(material);
        if c.dirs[owner].provisional
            && let Some(reference) = c.dirs[owner].dsn_ref
        {
            let truth = expand32(reference as u32, material.idsn.wrapping_add(1));
            c.rebase(owner, truth.wrapping_sub(reference));
        }
        self.by_token.insert(material.token, conn);
        // Joins that asked for this token before it was known.
        for i in 0..self.orphans.len() {
            let o = &self.orphans[i];
            if !o.attached && o.token == Some(material.token) {
                let (stream, backup, addr_id) = (o.stream, o.backup, o.addr_id);
                self.orphans[i].attached = true;
                let role = self.attach_join(conn, stream, material.token, backup, addr_id);
                self.roles[stream as usize] = role;
            }
        }
    }

    fn on_join_syn(
        &mut self,
        role: StreamRole,
        stream: u32,
        token: u32,
        backup: bool,
        addr_id: u8,
    ) -> StreamRole {
        match role {
            StreamRole::Subflow { conn, sub } => {
                // A subflow attached by DSN whose MP_JOIN SYN comes late: now it is a join.
                let subflow = &mut self.conns[conn as usize].subflows[sub as usize];
                if subflow.role == SubflowRole::Unknown && self.by_token.get(&token) == Some(&conn)
                {
                    subflow.role = SubflowRole::Join;
                    subflow.backup = backup;
                    subflow.addr_ids.client = Some(addr_id);
                }
                role
            }
            StreamRole::Orphan(o) => {
                let orphan = &mut self.orphans[o as usize];
                orphan.token = Some(token);
                orphan.backup = backup;
                orphan.addr_id = Some(addr_id);
                match self.by_token.get(&token) {
                    Some(&conn) => {
                        self.orphans[o as usize].attached = true;
                        self.attach_join(conn, stream, token, backup, Some(addr_id))
                    }
                    None => role,
                }
            }
            StreamRole::Unknown => match self.by_token.get(&token) {
                Some(&conn) => self.attach_join(conn, stream, token, backup, Some(addr_id)),
                None => self.new_orphan(stream, Some(token), backup, Some(addr_id)),
            },
        }
    }

    fn new_orphan(
        &mut self,
        stream: u32,
        token: Option<u32>,
        backup: bool,
        addr_id: Option<u8>,
    ) -> StreamRole {
        let index = self.orphans.len() as u32;
        self.orphans.push(Orphan {
            stream,
            token,
            backup,
            addr_id,
            attached: false,
            dsn_attempts: 0,
        });
        StreamRole::Orphan(index)
    }

    fn attach_join(
        &mut self,
        conn: u32,
        stream: u32,
        token: u32,
        backup: bool,
        addr_id: Option<u8>,
    ) -> StreamRole {
        let c = &mut self.conns[conn as usize];
        // The token names the receiver: the client's token means the server opened it.
        let flipped = c.material[Direction::ClientToServer].is_some_and(|m| m.token == token)
            && c.material[Direction::ServerToClient].is_none_or(|m| m.token != token);
        let sub = c.subflows.len() as u32;
        c.subflows.push(Subflow {
            stream,
            role: SubflowRole::Join,
            backup,
            addr_ids: AddrIds {
                client: addr_id,
                server: None,
            },
            flipped,
            dirs: Default::default(),
        });
        StreamRole::Subflow { conn, sub }
    }

    /// Attaches a stream without a usable handshake by the DSN of one of its mappings.
    /// `acked`: `dsn` is a DATA_ACK, so it lies in the sequence space of the packet's receiver.
    fn attach_by_dsn(
        &mut self,
        role: StreamRole,
        segment: &Segment,
        dsn: WireSeq,
        acked: bool,
    ) -> StreamRole {
        let role = match role {
            StreamRole::Unknown => self.new_orphan(segment.stream, None, false, None),
            other => other,
        };
        let StreamRole::Orphan(o) = role else {
            return role;
        };
        let orphan = &mut self.orphans[o as usize];
        if orphan.dsn_attempts >= MAX_DSN_ATTACH_ATTEMPTS {
            return role;
        }
        orphan.dsn_attempts += 1;
        let mut found = None;
        let mut matches = 0;
        for (index, c) in self.conns.iter().enumerate() {
            for cd in Direction::BOTH {
                if c.dsn_space_holds(cd, dsn) {
                    matches += 1;
                    found = Some((index as u32, cd));
                }
            }
        }
        match found {
            Some((conn, cd)) if matches == 1 => {
                self.orphans[o as usize].attached = true;
                let c = &mut self.conns[conn as usize];
                let sub = c.subflows.len() as u32;
                c.subflows.push(Subflow {
                    stream: segment.stream,
                    role: SubflowRole::Unknown,
                    backup: false,
                    addr_ids: AddrIds::default(),
                    // The packet's sender sends in connection direction cd (mapping) or
                    // acknowledges it (DATA_ACK).
                    flipped: (segment.dir != cd) != acked,
                    dirs: Default::default(),
                });
                StreamRole::Subflow { conn, sub }
            }
            _ => role,
        }
    }

    pub fn list(&self, tcp: &TcpTracker) -> (Vec<MptcpConnectionInfo>, Vec<OrphanSubflow>) {
        let conns = (0..self.conns.len() as u64)
            .filter_map(|id| self.info(tcp, id))
            .collect();
        (conns, self.orphans(tcp))
    }

    /// The streams with MPTCP options no connection claims, in stream order: unattached
    /// orphans (a join's unknown token, a DSN in no connection's space) and the streams that
    /// never got a role (only options that name no connection).
    fn orphans(&self, tcp: &TcpTracker) -> Vec<OrphanSubflow> {
        let orphan = |stream: u32, token: Option<u32>, reason: OrphanReason| {
            let (client, server) = endpoints(tcp, stream);
            OrphanSubflow {
                tcp_stream: u64::from(stream),
                client,
                server,
                token,
                reason,
            }
        };
        let mut orphans: Vec<OrphanSubflow> = self
            .orphans
            .iter()
            .filter(|o| !o.attached)
            .map(|o| {
                let reason = match o.token {
                    Some(_) => OrphanReason::UnknownToken,
                    None => OrphanReason::UnknownDsn,
                };
                orphan(o.stream, o.token, reason)
            })
            .collect();
        let roleless = self.roles.iter().enumerate().filter(|&(stream, &role)| {
            role == StreamRole::Unknown && tcp.stream(stream as u64).is_some_and(|s| s.mptcp)
        });
        for (stream, _) in roleless {
            orphans.push(orphan(stream as u32, None, OrphanReason::NoHandshakeOrDss));
        }
        orphans.sort_by_key(|o| o.tcp_stream);
        orphans
    }

    pub fn info(&self, tcp: &TcpTracker, id: u64) -> Option<MptcpConnectionInfo> {
        let c = self.conns.get(usize::try_from(id).ok()?)?;
        let subflows = c
            .subflows
            .iter()
            .map(|s| {
                let (client, server) = endpoints(tcp, s.stream);
                SubflowInfo {
                    tcp_stream: u64::from(s.stream),
                    client,
                    server,
                    join: s.role == SubflowRole::Join,
                    role: s.role,
                    backup: s.backup,
                    client_addr_id: s.addr_ids.client,
                    server_addr_id: s.addr_ids.server,
                }
            })
            .collect();
        Some(MptcpConnectionInfo {
            id,
            version: c.version,
            client_key: c.keys[CLIENT],
            server_key: c.keys[SERVER],
            client_token: c.material[CLIENT].map(|m| m.token),
            server_token: c.material[SERVER].map(|m| m.token),
            client_idsn: c.material[CLIENT].map(|m| m.idsn),
            server_idsn: c.material[SERVER].map(|m| m.idsn),
            fallback: c.fallback,
            subflows,
        })
    }

    /// Whether connection `id` was still open at the last packet: no DATA_FIN acknowledged in
    /// both directions, no MP_FASTCLOSE, not every subflow reset (and, after a fallback to TCP,
    /// not every subflow closed by FINs or a reset).
    pub fn is_open(&self, tcp: &TcpTracker, id: u64) -> Option<bool> {
        let c = self.conns.get(usize::try_from(id).ok()?)?;
        let data_fin_acked = |cd: Direction| {
            let d = &c.dirs[cd];
            matches!((d.data_fin, d.highest_ack), (Some(fin), Some(ack)) if dsn_max(fin, ack) != fin)
        };
        let streams = || {
            c.subflows
                .iter()
                .filter_map(|s| tcp.stream(u64::from(s.stream)))
        };
        let closed = (data_fin_acked(Direction::ClientToServer)
            && data_fin_acked(Direction::ServerToClient))
            || c.fastclosed
            || (!c.subflows.is_empty() && streams().all(super::tcp::TcpStream::reset))
            || (c.fallback
                && !c.subflows.is_empty()
                && streams().all(super::tcp::TcpStream::closed));
        Some(!closed)
    }

    /// Whether a connection of this tracker has `token` (an MP_JOIN's SYN names it).
    pub fn knows_token(&self, token: u32) -> bool {
        self.by_token.contains_key(&token)
    }

    pub fn summary(&self, id: u64) -> Option<MptcpSummary> {
        let c = self.conns.get(usize::try_from(id).ok()?)?;
        Some(MptcpSummary {
            id,
            version: c.version,
            fallback: c.fallback,
            directions: Direction::BOTH
                .into_iter()
                .map(|cd| c.direction_summary(cd))
                .collect(),
            events: c.events.clone(),
            events_dropped: c.events_dropped,
        })
    }
}

impl Connection {
    fn direction_summary(&self, cd: Direction) -> MptcpDirectionSummary {
        let d = &self.dirs[cd];
        let unique_bytes = d.data.len();
        let duration_s = d
            .first_ts_ns
            .map_or(0.0, |first| d.last_ts_ns.saturating_sub(first) as f64 / 1e9);
        let rate = |bytes: u64| {
            if duration_s > 0.0 {
                bytes as f64 * 8.0 / duration_s
            } else {
                0.0
            }
        };
        let subflows = self
            .subflows
            .iter()
            .map(|s| {
                let sd = &s.dirs[cd];
                SubflowDirectionSummary {
                    tcp_stream: u64::from(s.stream),
                    packets: sd.packets,
                    wire_bytes: sd.wire_bytes,
                    unique_bytes: sd.unique_bytes,
                    share: if unique_bytes > 0 {
                        sd.unique_bytes as f64 / unique_bytes as f64
                    } else {
                        0.0
                    },
                    reinjected_bytes: sd.reinjected_bytes,
                    retransmitted_bytes: sd.retransmitted_bytes,
                }
            })
            .collect();
        MptcpDirectionSummary {
            direction: cd,
            duration_s,
            wire_bytes: d.wire_bytes,
            unique_bytes,
            acked_bytes: self.acked_bytes(cd),
            reinjected_bytes: d.reinjected_bytes,
            reinjections: d.reinjections,
            retransmissions: d.retransmissions,
            retransmitted_bytes: d.retransmitted_bytes,
            goodput_bps: rate(unique_bytes),
            throughput_bps: rate(d.wire_bytes),
            unmapped_segments: d.unmapped_segments,
            unmapped_bytes: d.unmapped_bytes,
            subflows,
        }
    }

    /// Highest DATA_ACK from the peer − (IDSN + 1), minus 1 if it acknowledges the DATA_FIN.
    /// Offsets are modulo 2^64; an ACK below the first data byte acknowledges nothing.
    fn acked_bytes(&self, cd: Direction) -> u64 {
        let d = &self.dirs[cd];
        match (d.highest_ack, self.material[cd]) {
            (Some(ack), Some(m)) if !d.provisional => {
                let acked = dsn_offset(ack, m.idsn.wrapping_add(1)).unwrap_or(0);
                let fin = d.data_fin.is_some_and(|fin| dsn_max(fin, ack) != fin);
                acked.saturating_sub(u64::from(fin))
            }
            _ => 0,
        }
    }
}

/// One packet of a subflow, as its connection sees it.
struct SubflowPacket<'a> {
    packet: &'a Packet,
    segment: &'a Segment,
    /// Index of the subflow in its connection.
    sub: usize,
    /// What the TCP layer saw of this subflow direction (mapping eviction asks).
    delivered: Option<&'a TcpDirection>,
    /// The packet carried MP_CAPABLE (a SYN/ACK without it is a fallback).
    capable_seen: bool,
}

impl Connection {
    /// Everything one packet of a subflow tells the connection: the SYN/ACK's answer,
    /// counters, its options in order, then the data ranges of its payload. Sets `record` to
    /// what was concluded about the packet (`conn` is this connection's id).
    fn feed_subflow(&mut self, p: &SubflowPacket<'_>, conn: u32, record: &mut Option<MptcpRecord>) {
        let cd = p.segment.dir.flipped_if(self.subflows[p.sub].flipped);
        let note = record.insert(MptcpRecord::new(
            conn,
            p.sub as u32,
            self.subflows[p.sub].role,
            cd,
        ));
        let at = EventSource {
            packet: p.packet.number,
            ts_ns: p.packet.ts_ns,
            stream: p.segment.stream,
            dir: cd,
        };
        let synack = p.packet.has_flag(tcp_flags::SYN) && p.packet.has_flag(tcp_flags::ACK);
        if synack && self.awaiting_synack && p.sub == 0 {
            self.awaiting_synack = false;
            if !p.capable_seen {
                self.fall_back(at, FALLBACK_SYNACK, "SYN/ACK without MP_CAPABLE");
            }
        }
        let len = u64::from(p.packet.payload_len);
        self.count(p, cd, len);
        // The subflow's ISN position: from the TCP layer, else inferred from mappings.
        let mut isn = p
            .segment
            .isn_pos
            .or(self.subflows[p.sub].dirs[cd].inferred_isn);
        for option in &p.packet.mptcp {
            isn = self.on_option(p, at, isn, option, note);
        }
        if len > 0 && !p.segment.keep_alive {
            carry(self, p.sub, cd, p.segment, isn, len, note);
        }
    }

    /// Packets, payload bytes and times of connection direction `cd` and of the subflow's.
    fn count(&mut self, p: &SubflowPacket<'_>, cd: Direction, len: u64) {
        let d = &mut self.dirs[cd];
        d.wire_bytes += len;
        d.first_ts_ns.get_or_insert(p.packet.ts_ns);
        d.last_ts_ns = d.last_ts_ns.max(p.packet.ts_ns);
        let sd = &mut self.subflows[p.sub].dirs[cd];
        sd.packets += u64::from(p.packet.segments);
        sd.wire_bytes += len;
    }

    /// One option of a subflow's packet, after the handshake looked at it. `isn` is the
    /// subflow direction's ISN position as known so far; returns it, possibly newly inferred
    /// from a mapping. What the option says of the packet's data goes into `note`.
    fn on_option(
        &mut self,
        p: &SubflowPacket<'_>,
        at: EventSource,
        isn: Option<u64>,
        option: &MptcpOption,
        note: &mut MptcpRecord,
    ) -> Option<u64> {
        match option {
            MptcpOption::Capable {
                data_len: Some(data_len),
                ..
            } if *data_len > 0 => {
                note.mapping = self.capable_data(p, at.dir, isn, u64::from(*data_len), note);
            }
            MptcpOption::Join(JoinOption::SynAck { addr_id, .. }) => {
                self.subflows[p.sub].addr_ids.server = Some(*addr_id);
            }
            MptcpOption::Dss {
                data_fin,
                data_ack,
                mapping,
            } => {
                if let Some(data_ack) = data_ack {
                    note.data_ack = Some(self.data_ack(at.dir.flip(), *data_ack));
                }
                note.data_fin |= *data_fin;
                match mapping {
                    Some(mapping) => {
                        let (isn, recorded) =
                            self.record_mapping(p, at, isn, mapping, *data_fin, note);
                        note.mapping = Some(recorded);
                        return isn;
                    }
                    None if *data_fin => self.data_fin_without_mapping(at),
                    None => {}
                }
            }
            MptcpOption::Capable { .. } | MptcpOption::Join(_) => {}
            signal => self.signal(p.sub, at, signal),
        }
        isn
    }

    /// RFC 8684 §3.1: data on v1's MP_CAPABLE ACK is mapped from IDSN + 1, ssn 1. Returns
    /// the mapping, if the IDSN is known.
    fn capable_data(
        &mut self,
        p: &SubflowPacket<'_>,
        cd: Direction,
        isn: Option<u64>,
        len: u64,
        note: &mut MptcpRecord,
    ) -> Option<MappingRecord> {
        let m = self.material[cd]?;
        let dsn = m.idsn.wrapping_add(1);
        self.dirs[cd].dsn_ref.get_or_insert(dsn);
        let mapping = Mapping { dsn, ssn: 1, len };
        let carried = Carried {
            tcp: p.delivered,
            isn,
        };
        add_mapping(self, p.sub, cd, mapping, carried, note);
        Some(MappingRecord {
            dsn,
            ssn: 1,
            len: len as u32,
        })
    }

    /// A DATA_ACK: it acknowledges the data of direction `acked`, the peer's. Returns its
    /// 64-bit value.
    fn data_ack(&mut self, acked: Direction, wire: WireSeq) -> u64 {
        let value = self.dsn(acked, wire);
        let highest = &mut self.dirs[acked].highest_ack;
        *highest = Some(highest.map_or(value, |h| dsn_max(h, value)));
        value
    }

    fn data_fin_without_mapping(&mut self, at: EventSource) {
        if !self.dirs[at.dir].data_fin_reported {
            self.dirs[at.dir].data_fin_reported = true;
            self.event(
                at,
                EventKind::DataFin,
                "DATA_FIN without mapping".to_owned(),
            );
        }
    }

    /// Records a DSS mapping carried by a subflow's packet (direction `at.dir`). `isn` is the
    /// subflow direction's ISN position as known so far; returns it, possibly newly inferred
    /// from this mapping, and the mapping as expanded.
    fn record_mapping(
        &mut self,
        p: &SubflowPacket<'_>,
        at: EventSource,
        isn: Option<u64>,
        mapping: &DssMapping,
        data_fin: bool,
        note: &mut MptcpRecord,
    ) -> (Option<u64>, MappingRecord) {
        let cd = at.dir;
        let dsn = self.dsn(cd, mapping.dsn);
        let has_payload = p.packet.payload_len > 0;
        let sd = &mut self.subflows[p.sub].dirs[cd];
        let (ssn, isn) = sd.mapping_ssn(p.segment, has_payload, isn, mapping.ssn);
        let carried = Carried {
            tcp: p.delivered,
            isn,
        };
        let recorded = MappingRecord {
            dsn,
            ssn,
            len: u32::from(mapping.len),
        };
        if mapping.len == 0 {
            let infinite = Mapping {
                dsn,
                ssn,
                len: INFINITE,
            };
            add_mapping(self, p.sub, cd, infinite, carried, note);
            self.fall_back(at, FALLBACK_INFINITE, "infinite mapping");
            return (isn, recorded);
        }
        // DATA_FIN occupies the mapping's last data sequence number, not a payload byte.
        let len = u64::from(mapping.len) - u64::from(data_fin);
        if len > 0 {
            add_mapping(self, p.sub, cd, Mapping { dsn, ssn, len }, carried, note);
        }
        if data_fin {
            let fin = dsn.wrapping_add(len);
            let d = &mut self.dirs[cd];
            d.data_fin = Some(fin);
            if !d.data_fin_reported {
                d.data_fin_reported = true;
                self.event(at, EventKind::DataFin, format!("dsn {fin}"));
            }
        }
        (isn, recorded)
    }

    /// The signalling options: one event each (MP_PRIO also sets the subflow's backup flag,
    /// MP_FAIL makes the connection fall back).
    fn signal(&mut self, sub: usize, at: EventSource, option: &MptcpOption) {
        match option {
            MptcpOption::AddAddr {
                echo,
                addr_id,
                addr,
                port,
                ..
            } => {
                let mut detail = format!("id {addr_id} {}", endpoint(*addr, *port));
                if *echo {
                    detail.push_str(" (echo)");
                }
                self.event(at, EventKind::AddAddr, detail);
            }
            MptcpOption::RemoveAddr { addr_ids } => {
                let mut detail = String::from("ids");
                for id in addr_ids {
                    let _ = write!(detail, " {id}");
                }
                self.event(at, EventKind::RemoveAddr, detail);
            }
            MptcpOption::Prio { backup, addr_id } => {
                // Applied to the subflow carrying it (the address id, when present, names
                // the sender's address, which is this subflow's in practice).
                self.subflows[sub].backup = *backup;
                let mut detail = format!("backup={backup}");
                if let Some(id) = addr_id {
                    let _ = write!(detail, " id {id}");
                }
                self.event(at, EventKind::MpPrio, detail);
            }
            MptcpOption::Fail { dsn } => {
                self.event(at, EventKind::MpFail, format!("dsn {dsn}"));
                self.fall_back(at, FALLBACK_MP_FAIL, "MP_FAIL");
            }
            MptcpOption::FastClose { receiver_key } => {
                let detail = format!("receiver key {receiver_key}");
                self.fastclosed = true;
                self.event(at, EventKind::MpFastclose, detail);
            }
            MptcpOption::TcpRst { flags, reason } => {
                let name = tcprst_reason_name(*reason);
                let detail = format!("reason {reason} ({name}), flags {flags:#x}");
                self.event(at, EventKind::MpTcprst, detail);
            }
            MptcpOption::Unknown { subtype, len } => {
                let detail = format!("subtype {subtype}, length {len}");
                self.event(at, EventKind::UnknownOption, detail);
            }
            MptcpOption::Malformed { subtype, len } => {
                let detail = format!("subtype {subtype}, length {len}");
                self.event(at, EventKind::MalformedOption, detail);
            }
            // Handshake and data options: not signalling.
            MptcpOption::Capable { .. } | MptcpOption::Join(_) | MptcpOption::Dss { .. } => {}
        }
    }
}

impl SubflowDirection {
    /// A mapping's 32-bit subflow sequence number as a relative 64-bit one, and the ISN
    /// position, which without a captured SYN is inferred from the mappings: the segment lies
    /// inside its mapping, so payload position − ssn is at or above the ISN position, and
    /// equal for a segment starting its mapping. The lowest such guess is kept.
    fn mapping_ssn(
        &mut self,
        segment: &Segment,
        has_payload: bool,
        isn: Option<u64>,
        wire_ssn: u32,
    ) -> (u64, Option<u64>) {
        match (segment.isn_pos, has_payload, isn) {
            (None, true, _) => {
                let reference = match self.inferred_isn {
                    Some(i) => segment.payload_pos.saturating_sub(i),
                    None => u64::from(wire_ssn),
                };
                let ssn = expand32(wire_ssn, reference);
                let guess = segment.payload_pos.saturating_sub(ssn);
                let inferred = self.inferred_isn.map_or(guess, |i| i.min(guess));
                self.inferred_isn = Some(inferred);
                (ssn, Some(inferred))
            }
            (_, _, Some(i)) => {
                let reference = segment.payload_pos.saturating_sub(i);
                (expand32(wire_ssn, reference), Some(i))
            }
            (_, _, None) => (u64::from(wire_ssn), None),
        }
    }
}

/// Credits the payload of a segment to the data ranges of its mappings, and says in `note`
/// which range it carried and how it was counted.
fn carry(
    c: &mut Connection,
    sub: usize,
    cd: Direction,
    segment: &Segment,
    isn: Option<u64>,
    len: u64,
    note: &mut MptcpRecord,
) {
    let Some(isn) = isn else {
        let d = &mut c.dirs[cd];
        d.unmapped_segments += 1;
        d.unmapped_bytes += len;
        note.unmapped_bytes = len;
        return;
    };
    let rel = segment.payload_pos.saturating_sub(isn);
    let end = rel.saturating_add(len);
    let sd = &mut c.subflows[sub].dirs[cd];
    let d = &mut c.dirs[cd];
    let (mut new, mut overlap) = (0, 0);
    let mut cursor = rel;
    // A segment spans at most as many mappings as are remembered.
    for _ in 0..=MAPPINGS {
        if cursor >= end {
            break;
        }
        let Some(m) = sd.covering(cursor) else {
            if segment.retransmitted_bytes == len {
                // The subflow carried all of it before: a retransmission whose mapping is
                // gone, not data of unknown place.
                overlap += end - cursor;
            } else {
                d.unmapped_segments += 1;
                let unmapped = sd.unmapped.insert(cursor, end - cursor);
                d.unmapped_bytes += unmapped;
                note.unmapped_bytes = unmapped;
            }
            break;
        };
        let chunk_end = end.min(m.ssn.saturating_add(m.len));
        let dsn = m.dsn.wrapping_add(cursor - m.ssn);
        let size = chunk_end - cursor;
        let fresh = d.data.insert(dsn, size);
        new += fresh;
        overlap += size - fresh;
        cursor = chunk_end;
        let start = note.data.map_or(dsn, |r| r.start);
        note.data = Some(DataRange {
            start,
            end: dsn.wrapping_add(size),
        });
    }
    let (retransmitted, reinjected) = account(d, sd, new, overlap, segment.retransmitted_bytes);
    note.new_bytes = new;
    note.retransmitted_bytes = retransmitted;
    note.reinjected_bytes = reinjected;
}

/// Credits one segment's (or one late-resolved range's) data: `new` data bytes carried first
/// by this subflow; `overlap` data bytes carried before (by any subflow), of which as many as
/// `tcp_overlap` (payload bytes this subflow had already carried at the TCP level) are a
/// retransmission and the rest a reinjection. Returns the retransmitted and reinjected bytes.
fn account(
    d: &mut DataDirection,
    sd: &mut SubflowDirection,
    new: u64,
    overlap: u64,
    tcp_overlap: u64,
) -> (u64, u64) {
    sd.unique_bytes += new;
    let retransmitted = overlap.min(tcp_overlap);
    let reinjected = overlap - retransmitted;
    if retransmitted > 0 {
        d.retransmissions += 1;
        d.retransmitted_bytes += retransmitted;
        sd.retransmitted_bytes += retransmitted;
    }
    if reinjected > 0 {
        d.reinjections += 1;
        d.reinjected_bytes += reinjected;
        sd.reinjected_bytes += reinjected;
    }
    (retransmitted, reinjected)
}

/// Remembers a mapping of subflow `sub`, direction `cd`, and credits the payload carried
/// earlier without a known mapping that it covers (said in `note`, the record of the packet
/// carrying the mapping).
fn add_mapping(
    c: &mut Connection,
    sub: usize,
    cd: Direction,
    m: Mapping,
    carried: Carried<'_>,
    note: &mut MptcpRecord,
) {
    let sd = &mut c.subflows[sub].dirs[cd];
    if !sd.remember(m, carried) || sd.unmapped.is_empty() {
        return;
    }
    let d = &mut c.dirs[cd];
    let (mut new, mut overlap, mut resolved) = (0, 0, 0);
    sd.unmapped.remove(m.ssn, m.len, |start, len| {
        let dsn = m.dsn.wrapping_add(start.wrapping_sub(m.ssn));
        let fresh = d.data.insert(dsn, len);
        new += fresh;
        overlap += len - fresh;
        resolved += len;
    });
    d.unmapped_bytes = d.unmapped_bytes.saturating_sub(resolved);
    // These bytes were new to the subflow when it carried them.
    let (_, reinjected) = account(d, sd, new, overlap, 0);
    note.resolved_new_bytes += new;
    note.resolved_reinjected_bytes += reinjected;
}

/// What the TCP layer knows of a subflow direction's coverage, in relative sequence numbers.
#[derive(Clone, Copy)]
struct Carried<'a> {
    tcp: Option<&'a TcpDirection>,
    isn: Option<u64>,
}

impl Carried<'_> {
    /// Every byte of relative `[start, end)` was carried at least once.
    fn all(&self, start: u64, end: u64) -> bool {
        match (self.tcp, self.isn) {
            (Some(tcp), Some(isn)) => {
                tcp.carried(isn.wrapping_add(start), end.saturating_sub(start))
            }
            _ => false,
        }
    }
}

/// The first DSS mapping's DSN of a packet, else its first DATA_ACK (then `true`).
fn dss_sequence(packet: &Packet) -> Option<(WireSeq, bool)> {
    let dss = || {
        packet.mptcp.iter().filter_map(|o| match o {
            MptcpOption::Dss {
                data_ack, mapping, ..
            } => Some((data_ack, mapping)),
            _ => None,
        })
    };
    dss()
        .find_map(|(_, mapping)| mapping.map(|m| (m.dsn, false)))
        .or_else(|| dss().find_map(|(data_ack, _)| data_ack.map(|a| (a, true))))
}

/// The later of two data sequence numbers in modular order (RFC 8684 §3.3.1: sequence space
/// wraps at 2^64; of two values, the later is the one the other reaches by adding less than
/// 2^63).
fn dsn_max(a: u64, b: u64) -> u64 {
    if (b.wrapping_sub(a) as i64) > 0 { b } else { a }
}

/// How far `value` lies past `from` in modular order, `None` if it lies before it.
fn dsn_offset(value: u64, from: u64) -> Option<u64> {
    let offset = value.wrapping_sub(from);
    (offset < 1 << 63).then_some(offset)
}

fn endpoint(addr: IpAddr, port: Option<u16>) -> String {
    match (addr, port) {
        (IpAddr::V4(a), Some(p)) => format!("{a}:{p}"),
        (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
        (a, None) => a.to_string(),
    }
}

/// Client and server of a TCP stream (every stream the MPTCP layer saw exists).
fn endpoints(tcp: &TcpTracker, stream: u32) -> (SocketAddr, SocketAddr) {
    let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
    tcp.stream(u64::from(stream))
        .map_or((unknown, unknown), |s| (s.client, s.server))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{
        Analyzer,
        tcp::tests::{A, B, pkt},
    };

    // Stream 0 of /work/shared/pcaps/client_2.pcap (v0): keys and, per tshark 4.0,
    // mptcp.expected_token / mptcp.expected_idsn.
    const C_KEY: u64 = 14568871653868829995;
    const S_KEY: u64 = 12070231261294881532;
    const C_TOKEN: u32 = 2280993044;
    const S_TOKEN: u32 = 804647408;
    const C_IDSN: u64 = 5947950023132234492;
    const S_IDSN: u64 = 5227567736771178707;
    // v1 keys; truth from `printf <8 key bytes> | sha256sum` (see keys.rs tests).
    const V1_S_KEY: u64 = 0x0123_4567_89ab_cdef;
    const V1_S_TOKEN: u32 = 0x55c5_3f5d;
    const V1_C_KEY: u64 = 0xfedc_ba98_7654_3210;
    const V1_C_IDSN: u64 = 0x2808_18bf_0fa7_e28e;

    const A2: &str = "11.0.0.1";
    /// Positions of the two directions in a summary's `directions`.
    const C2S: usize = 0;
    const S2C: usize = 1;
    const SYN: u8 = tcp_flags::SYN;
    const SYNACK: u8 = tcp_flags::SYN | tcp_flags::ACK;
    const ACK: u8 = tcp_flags::ACK;
    /// Client and server ISNs of the initial subflow in these tests.
    const C_ISN: u32 = 100;
    const S_ISN: u32 = 900;

    fn capable(version: u8, sender: Option<u64>, receiver: Option<u64>) -> MptcpOption {
        MptcpOption::Capable {
            version,
            flags: 0x81,
            sender_key: sender,
            receiver_key: receiver,
            data_len: None,
            checksum: None,
        }
    }

    fn dss(data_ack: Option<WireSeq>, map: Option<(WireSeq, u32, u16)>, fin: bool) -> MptcpOption {
        MptcpOption::Dss {
            data_fin: fin,
            data_ack,
            mapping: map.map(|(dsn, ssn, len)| DssMapping {
                dsn,
                ssn,
                len,
                checksum: None,
            }),
        }
    }

    fn join_syn(token: u32, backup: bool, addr_id: u8) -> MptcpOption {
        MptcpOption::Join(JoinOption::Syn {
            backup,
            addr_id,
            token,
            nonce: 7,
        })
    }

    /// v0 handshake on A:1000 → B:5201 (stream 0, connection 0), at t = 0..2 ms.
    fn v0_handshake(a: &mut Analyzer) {
        a.feed_tcp(
            &pkt(A, 1000, B, 5201)
                .seq(C_ISN)
                .flags(SYN)
                .opt(capable(0, Some(C_KEY), None))
                .done(),
        );
        a.feed_tcp(
            &pkt(B, 5201, A, 1000)
                .seq(S_ISN)
                .ack(C_ISN + 1)
                .flags(SYNACK)
                .at(2, 1_000_000)
                .opt(capable(0, Some(S_KEY), None))
                .done(),
        );
        a.feed_tcp(
            &pkt(A, 1000, B, 5201)
                .seq(C_ISN + 1)
                .ack(S_ISN + 1)
                .flags(ACK)
                .at(3, 2_000_000)
                .opt(capable(0, Some(C_KEY), Some(S_KEY)))
                .done(),
        );
    }

    /// A join from A2:2000 to B:5201 asking for the server's token (stream 1, subflow 1),
    /// client ISN 5000, server ISN 7000.
    fn v0_join(a: &mut Analyzer) {
        a.feed_tcp(
            &pkt(A2, 2000, B, 5201)
                .seq(5000)
                .flags(SYN)
                .opt(join_syn(S_TOKEN, true, 2))
                .done(),
        );
        a.feed_tcp(
            &pkt(B, 5201, A2, 2000)
                .seq(7000)
                .ack(5001)
                .flags(SYNACK)
                .opt(MptcpOption::Join(JoinOption::SynAck {
                    backup: false,
                    addr_id: 0,
                    hmac: 1,
                    nonce: 2,
                }))
                .done(),
        );
    }

    #[test]
    fn v0_handshake_keys_and_tokens() {
        let mut a = Analyzer::new();
        v0_handshake(&mut a);
        let list = a.mptcp_list();
        assert_eq!(list.mptcp_connections.len(), 1);
        let c = &list.mptcp_connections[0];
        assert_eq!(c.version, 0);
        assert_eq!(c.client_key, Some(14568871653868829995));
        assert_eq!(c.server_key, Some(12070231261294881532));
        assert_eq!(
            (c.client_token, c.server_token),
            (Some(C_TOKEN), Some(S_TOKEN))
        );
        assert_eq!(c.client_idsn, Some(C_IDSN));
        assert_eq!(c.server_idsn, Some(S_IDSN));
        assert!(!c.fallback);
        assert_eq!(c.subflows.len(), 1);
        assert_eq!(c.subflows[0].client.to_string(), "10.0.0.1:1000");
        assert!(!c.subflows[0].join);
        assert!(a.tcp_list().tcp_connections[0].mptcp);
    }

    #[test]
    fn join_attached_by_token_and_orphan_join() {
        let mut a = Analyzer::new();
        v0_handshake(&mut a);
        v0_join(&mut a);
        // A join asking for a token nobody has: orphan, never a made-up connection.
        a.feed_tcp(
            &pkt(A2, 3000, B, 5201)
                .seq(1)
                .flags(SYN)
                .opt(join_syn(0xdead_beef, false, 3))
                .done(),
        );
        let list = a.mptcp_list();
        assert_eq!(list.mptcp_connections.len(), 1);
        let subflows = &list.mptcp_connections[0].subflows;
        assert_eq!(subflows.len(), 2);
        let join = &subflows[1];
        assert_eq!((join.tcp_stream, join.join, join.backup), (1, true, true));
        assert_eq!(
            (join.client_addr_id, join.server_addr_id),
            (Some(2), Some(0))
        );
        assert_eq!(join.client.to_string(), "11.0.0.1:2000");
        assert_eq!(list.orphan_subflows.len(), 1);
        let orphan = &list.orphan_subflows[0];
        assert_eq!((orphan.tcp_stream, orphan.token), (2, Some(0xdead_beef)));
        assert_eq!(orphan.client.to_string(), "11.0.0.1:3000");
    }

    #[test]
    fn join_by_server_counts_in_server_to_client() {
        let mut a = Analyzer::new();
        v0_handshake(&mut a);
        // The server opens a subflow towards the client: the SYN carries the CLIENT's token.
        a.feed_tcp(
            &pkt(B, 6000, A2, 1000)
                .seq(10)
                .flags(SYN)
                .opt(join_syn(C_TOKEN, false, 1))
                .done(),
        );
        // Server data on it: 100 bytes at S_IDSN + 1, relative ssn 1.
        a.feed_tcp(
            &pkt(B, 6000, A2, 1000)
                .seq(11)
                .len(100)
                .opt(dss(None, Some((WireSeq::U64(S_IDSN + 1), 1, 100)), false))
                .done(),
        );
        let list = a.mptcp_list();
        assert_eq!(list.mptcp_connections[0].subflows.len(), 2);
        let s = a.mptcp_summary(0).expect("connection 0");
        assert_eq!(s.directions[S2C].unique_bytes, 100);
        assert_eq!(s.directions[S2C].subflows[1].unique_bytes, 100);
        assert_eq!(s.directions[C2S].wire_bytes, 0);
    }

    #[test]
    fn v1_handshake_and_capable_data_mapping() {
        let mut a = Analyzer::new();
        a.feed_tcp(
            &pkt(A, 1000, B, 80)
                .seq(C_ISN)
                .flags(SYN)
                .opt(capable(1, None, None))
                .done(),
        );
        a.feed_tcp(
            &pkt(B, 80, A, 1000)
                .seq(S_ISN)
                .ack(C_ISN + 1)
                .flags(SYNACK)
                .opt(capable(1, Some(V1_S_KEY), None))
                .done(),
        );
        // Third ACK with both keys and a data-level length of 1000 (RFC 8684 §3.1, length 22):
        // data at DSN = client IDSN + 1, relative ssn 1; here 600 of its bytes ride on it.
        let mut with_data = capable(1, Some(V1_C_KEY), Some(V1_S_KEY));
        if let MptcpOption::Capable { data_len, .. } = &mut with_data {
            *data_len = Some(1000);
        }
        a.feed_tcp(
            &pkt(A, 1000, B, 80)
                .seq(C_ISN + 1)
                .ack(S_ISN + 1)
                .len(600)
                .opt(with_data)
                .done(),
        );
        // The remaining 400 bytes of that mapping, with no option at all.
        a.feed_tcp(
            &pkt(A, 1000, B, 80)
                .seq(C_ISN + 601)
                .ack(S_ISN + 1)
                .len(400)
                .done(),
        );
        // Then a DSS mapping with a 4-byte DSN: low 32 bits of IDSN + 1001, ssn 1001, 500 bytes.
        let dsn32 = (V1_C_IDSN + 1001) as u32;
        a.feed_tcp(
            &pkt(A, 1000, B, 80)
                .seq(C_ISN + 1001)
                .ack(S_ISN + 1)
                .len(500)
                .opt(dss(None, Some((WireSeq::U32(dsn32), 1001, 500)), false))
                .done(),
        );
        // The server acknowledges everything: 4-byte DATA_ACK = low 32 bits of IDSN + 1501.
        a.feed_tcp(
            &pkt(B, 80, A, 1000)
                .seq(S_ISN + 1)
                .ack(C_ISN + 1501)
                .opt(dss(
                    Some(WireSeq::U32((V1_C_IDSN + 1501) as u32)),
                    None,
                    false,
                ))
                .done(),
        );
        let c = &a.mptcp_list().mptcp_connections[0];
        assert_eq!(c.version, 1);
        assert_eq!(c.server_token, Some(V1_S_TOKEN));
        assert_eq!(c.client_token, Some(0x18f9_781b));
        assert_eq!(c.client_idsn, Some(V1_C_IDSN));
        let s = a.mptcp_summary(0).expect("connection 0");
        let c2s = &s.directions[C2S];
        // 1000 bytes from the MP_CAPABLE mapping + 500 from the DSS one, nothing unmapped.
        assert_eq!(
            (c2s.unique_bytes, c2s.wire_bytes, c2s.unmapped_bytes),
            (1500, 1500, 0)
        );
        // DATA_ACK IDSN + 1501 − (IDSN + 1) = 1500.
        assert_eq!(c2s.acked_bytes, 1500);
        assert_eq!(c2s.reinjections + c2s.retransmissions, 0);
    }

    #[test]
    fn dsn_wraparound_expansion() {
        let mut a = Analyzer::new();
        v0_handshake(&mut a);
        // Four 100-byte mappings whose DSNs step 0x7000_0000 each (gaps in between): the first
        // is 8 bytes, the others 4 bytes, each less than 2^31 from the previous one, so each
        // expands forward. C_IDSN + 1 has low 32 bits 0x4e92c2fd; + 0x1_5000_0000 crosses
        // 2^32 in the low bits, so a 32-bit-only view would fall back by 2^32.
        let step = 0x7000_0000u64;
        for i in 0..4u64 {
            let dsn = C_IDSN + 1 + i * step;
            let wire = if i == 0 {
                WireSeq::U64(dsn)
            } else {
                WireSeq::U32(dsn as u32)
            };
            let ssn = 1 + 100 * i as u32;
            a.feed_tcp(
                &pkt(A, 1000, B, 5201)
                    .seq(C_ISN + ssn)
                    .len(100)
                    .opt(dss(None, Some((wire, ssn, 100)), false))
                    .done(),
            );
        }
        let last_end = C_IDSN + 1 + 3 * step + 100;
        a.feed_tcp(
            &pkt(B, 5201, A, 1000)
                .seq(S_ISN + 1)
                .opt(dss(Some(WireSeq::U32(last_end as u32)), None, false))
                .done(),
        );
        let s = a.mptcp_summary(0).expect("connection 0");
        let c2s = &s.directions[C2S];
        assert_eq!(c2s.unique_bytes, 400);
        // acked = 3 × 0x7000_0000 + 100 = 0x1_5000_0000 + 100 = 5637144676.
        assert_eq!(c2s.acked_bytes, 5_637_144_676);
    }

    #[test]
    fn reinjection_versus_retransmission_and_shares() {
        let mut a = Analyzer::new();
        v0_handshake(&mut a);
        v0_join(&mut a);
        let map = |dsn_off: u64, ssn: u32, len: u16| {
            dss(
                None,
                Some((WireSeq::U64(C_IDSN + 1 + dsn_off), ssn, len)),
                false,
            )
        };
        // Subflow 0 carries data [0, 3000) in three segments.
        for i in 0..3u32 {
            let ssn = 1 + 1000 * i;
            a.feed_tcp(
                &pkt(A, 1000, B, 5201)
                    .seq(C_ISN + ssn)
                    .len(1000)
                    .opt(map(u64::from(ssn - 1), ssn, 1000))
                    .done(),
            );
        }
        // Subflow 1 carries new data [3000, 4000), then reinjects [2000, 3000).
        a.feed_tcp(
            &pkt(A2, 2000, B, 5201)
                .seq(5001)
                .len(1000)
                .opt(map(3000, 1, 1000))
                .done(),
        );
        a.feed_tcp(
            &pkt(A2, 2000, B, 5201)
                .seq(6001)
                .len(1000)
                .opt(map(2000, 1001, 1000))
                .done(),
        );
        // Subflow 0 retransmits its segment [1000, 2000) (same TCP sequence, same mapping).
        a.feed_tcp(
            &pkt(A, 1000, B, 5201)
                .seq(C_ISN + 1001)
                .len(1000)
                .opt(map(1000, 1001, 1000))
                .done(),
        );
        // Subflow 0 re-sends data [0, 500) under NEW subflow sequence numbers (ssn 3001), as
        // Linux's MPTCP-level retransmission may: new at the TCP level, so a reinjection.
        a.feed_tcp(
            &pkt(A, 1000, B, 5201)
                .seq(C_ISN + 3001)
                .len(500)
                .opt(map(0, 3001, 500))
                .done(),
        );
        let s = a.mptcp_summary(0).expect("connection 0");
        let c2s = &s.directions[C2S];
        // Unique 4000; wire 3000 + 2000 + 1000 + 500 = 6500.
        assert_eq!((c2s.unique_bytes, c2s.wire_bytes), (4000, 6500));
        // Reinjections: [2000, 3000) on subflow 1 and [0, 500) on subflow 0.
        assert_eq!((c2s.reinjections, c2s.reinjected_bytes), (2, 1500));
        assert_eq!((c2s.retransmissions, c2s.retransmitted_bytes), (1, 1000));
        let (s0, s1) = (&c2s.subflows[0], &c2s.subflows[1]);
        assert_eq!((s0.unique_bytes, s1.unique_bytes), (3000, 1000));
        assert_eq!((s0.retransmitted_bytes, s0.reinjected_bytes), (1000, 500));
        assert_eq!(s1.reinjected_bytes, 1000);
        // wire = unique + reinjected + retransmitted when everything is mapped.
        assert_eq!(
            c2s.wire_bytes,
            c2s.unique_bytes + c2s.reinjected_bytes + c2s.retransmitted_bytes
        );
        // Shares 3000/4000 and 1000/4000.
        assert_eq!((s0.share, s1.share), (0.75, 0.25));
        assert_eq!(s0.share + s1.share, 1.0);
        // The TCP view of subflow 0 agrees: one retransmission of 1000 bytes.
        let t = a.tcp_summary(0).expect("stream 0");
        assert_eq!(
            (
                t.directions[0].retransmissions,
                t.directions[0].retransmitted_bytes
            ),
            (1, 1000)
        );
    }

    #[test]
    fn data_fin_is_not_a_payload_byte() {
        let mut a = Analyzer::new();
        v0_handshake(&mut a);
        // 100 payload bytes under a mapping of data-level length 101 with DATA_FIN.
        let fin_map = dss(None, Some((WireSeq::U64(C_IDSN + 1), 1, 101)), true);
        a.feed_tcp(
            &pkt(A, 1000, B, 5201)
                .seq(C_ISN + 1)
                .len(100)
                .at(10, 3_000_000)
                .opt(fin_map.clone())
                .done(),
        );
        // Retransmitted with the same option: the DATA_FIN event is still reported once.
        a.feed_tcp(
            &pkt(A, 1000, B, 5201)
                .seq(C_ISN + 1)
                .len(100)
                .at(11, 5_000_000)
                .opt(fin_map)
                .done(),
        );
        // Peer acknowledges data and DATA_FIN: C_IDSN + 1 + 101.
        a.feed_tcp(
            &pkt(B, 5201, A, 1000)
                .seq(S_ISN + 1)
                .opt(dss(Some(WireSeq::U64(C_IDSN + 102)), None, false))
                .done(),
        );
        let s = a.mptcp_summary(0).expect("connection 0");
        let c2s = &s.directions[C2S];
        assert_eq!(c2s.unique_bytes, 100);
        // acked: 101 − 1 for the DATA_FIN.
        assert_eq!(c2s.acked_bytes, 100);
        assert_eq!((c2s.retransmissions, c2s.retransmitted_bytes), (1, 100));
        // Client→server packets from t=0 (SYN) to t=5 ms: 200 bytes over 5 ms = 320 kbit/s.
        assert_eq!(c2s.duration_s, 0.005);
        assert!((c2s.goodput_bps - 160_000.0).abs() < 1e-6);
        assert!((c2s.throughput_bps - 320_000.0).abs() < 1e-6);
        let fins: Vec<_> = s
            .events
            .iter()
            .filter(|e| e.kind == EventKind::DataFin)
            .collect();
        assert_eq!(fins.len(), 1);
        assert_eq!(fins[0].detail, format!("dsn {}", C_IDSN + 101));
        assert_eq!((fins[0].packet, fins[0].time_s), (10, 0.003));
    }

    /// Open until DATA_FIN is acknowledged both ways; a FASTCLOSE or a reset of every subflow
    /// closes it too.
    #[test]
    fn connection_open_until_closed_at_the_data_level() {
        let client_fin = dss(None, Some((WireSeq::U64(C_IDSN + 1), 1, 101)), true);
        let server_fin = dss(None, Some((WireSeq::U64(S_IDSN + 1), 1, 1)), true);
        let mut a = Analyzer::new();
        v0_handshake(&mut a);
        assert_eq!(a.mptcp_open(0), Some(true));
        a.feed_tcp(
            &pkt(A, 1000, B, 5201)
                .seq(C_ISN + 1)
                .len(100)
                .opt(client_fin)
                .done(),
        );
        let ack_client_fin = dss(Some(WireSeq::U64(C_IDSN + 102)), None, false);
        a.feed_tcp(
            &pkt(B, 5201, A, 1000)
                .seq(S_ISN + 1)
                .opt(ack_client_fin)
                .done(),
        );
        assert_eq!(
            a.mptcp_open(0),
            Some(true),
            "DATA_FIN acknowledged one way only"
        );
        a.feed_tcp(&pkt(B, 5201, A, 1000).seq(S_ISN + 1).opt(server_fin).done());
        assert_eq!(
            a.mptcp_open(0),
            Some(true),
            "the server's DATA_FIN not acknowledged"
        );
        let ack_server_fin = dss(Some(WireSeq::U64(S_IDSN + 2)), None, false);
        a.feed_tcp(
            &pkt(A, 1000, B, 5201)
                .seq(C_ISN + 101)
                .opt(ack_server_fin)
                .done(),
        );
        assert_eq!(a.mptcp_open(0), Some(false));
        assert_eq!(a.mptcp_open(1), None);

        let mut a = Analyzer::new();
        v0_handshake(&mut a);
        let fastclose = MptcpOption::FastClose { receiver_key: 1 };
        a.feed_tcp(&pkt(A, 1000, B, 5201).seq(C_ISN + 1).opt(fastclose).done());
        assert_eq!(a.mptcp_open(0), Some(false), "MP_FASTCLOSE");

        let mut a = Analyzer::new();
        v0_handshake(&mut a);
        a.feed_tcp(
            &pkt(A, 1000, B, 5201)
                .seq(C_ISN + 1)
                .flags(tcp_flags::RST)
                .done(),
        );
        assert_eq!(a.mptcp_open(0), Some(false), "its only subflow reset");
    }

    #[test]
    fn stream_without_handshake_attached_by_dsn() {
        let mut a = Analyzer::new();
        v0_handshake(&mut a);
        a.feed_tcp(
            &pkt(A, 1000, B, 5201)
                .seq(C_ISN + 1)
                .len(1000)
                .opt(dss(None, Some((WireSeq::U64(C_IDSN + 1), 1, 1000)), false))
                .done(),
        );
        // Another 4-tuple, no SYN captured: its first segment is the 3rd of a mapping of 3000
        // bytes (ssn 1 .. 3001, DSN IDSN+1001..), its ISN being 40000.
        let map = dss(
            None,
            Some((WireSeq::U32((C_IDSN + 1001) as u32), 1, 3000)),
            false,
        );
        a.feed_tcp(
            &pkt(A2, 2000, B, 5201)
                .seq(40000 + 2001)
                .len(1000)
                .opt(map.clone())
                .done(),
        );
        a.feed_tcp(
            &pkt(A2, 2000, B, 5201)
                .seq(40000 + 1)
                .len(1000)
                .opt(map.clone())
                .done(),
        );
        a.feed_tcp(
            &pkt(A2, 2000, B, 5201)
                .seq(40000 + 1001)
                .len(1000)
                .opt(map)
                .done(),
        );
        // A DSS-only stream whose DSN belongs to nobody: orphan without a token.
        a.feed_tcp(
            &pkt(A2, 2001, B, 5201)
                .seq(1)
                .len(10)
                .opt(dss(None, Some((WireSeq::U64(42), 1, 10)), false))
                .done(),
        );
        // A stream carrying only DATA_ACKs, from the server side: B:5201 → A2:2002 acking the
        // client's data (C_IDSN + 1001 is in the client's space). Its sender is the
        // connection's server, so its packets count server→client.
        a.feed_tcp(
            &pkt(B, 5201, A2, 2002)
                .seq(9)
                .opt(dss(Some(WireSeq::U64(C_IDSN + 1001)), None, false))
                .done(),
        );
        let list = a.mptcp_list();
        let subflows = &list.mptcp_connections[0].subflows;
        assert_eq!(subflows.len(), 3);
        assert_eq!((subflows[1].tcp_stream, subflows[1].join), (1, false));
        assert_eq!(
            subflows.iter().map(|s| s.role).collect::<Vec<_>>(),
            [
                SubflowRole::Initial,
                SubflowRole::Unknown,
                SubflowRole::Unknown
            ]
        );
        assert_eq!(list.orphan_subflows[0].reason, OrphanReason::UnknownDsn);
        assert_every_mptcp_stream_listed_once(&a);
        assert_eq!(subflows[2].tcp_stream, 3);
        let summary = a.mptcp_summary(0).expect("connection 0");
        let (c2s, s2c) = (&summary.directions[0], &summary.directions[1]);
        assert_eq!((s2c.subflows[2].packets, c2s.subflows[2].packets), (1, 0));
        // DATA_ACK C_IDSN + 1001 − (C_IDSN + 1) = 1000.
        assert_eq!(c2s.acked_bytes, 1000);
        assert_eq!(list.orphan_subflows.len(), 1);
        assert_eq!(
            (
                list.orphan_subflows[0].tcp_stream,
                list.orphan_subflows[0].token
            ),
            (2, None)
        );
        let s = a.mptcp_summary(0).expect("connection 0");
        let c2s = &s.directions[C2S];
        // The first segment guessed ISN = 42001 − 1 (as if it started the mapping) and was
        // mapped to DSN IDSN+1001..2001; the second (ssn 1) corrects the ISN to 40000 and maps
        // to the same DSNs (data already carried in subflow bytes new at the TCP level: counted
        // as 1 reinjection of 1000 bytes); the third maps to IDSN+2001..3001. Unique = 1000
        // (subflow 0) + 2000 = 3000 for 4000 sent: the price of a segment seen before its
        // mapping's start on a subflow without handshake.
        assert_eq!(
            (c2s.unique_bytes, c2s.wire_bytes, c2s.unmapped_bytes),
            (3000, 4000, 0)
        );
        assert_eq!(c2s.subflows[1].unique_bytes, 2000);
        assert_eq!((c2s.reinjections, c2s.reinjected_bytes), (1, 1000));
        assert_eq!(c2s.retransmissions, 0);
    }

    #[test]
    fn provisional_dsn_space_is_rebased_when_key_arrives() {
        let mut a = Analyzer::new();
        // v1 handshake whose third ACK was not captured: no client key yet.
        a.feed_tcp(
            &pkt(A, 1000, B, 80)
                .seq(C_ISN)
                .flags(SYN)
                .opt(capable(1, None, None))
                .done(),
        );
        a.feed_tcp(
            &pkt(B, 80, A, 1000)
                .seq(S_ISN)
                .ack(C_ISN + 1)
                .flags(SYNACK)
                .opt(capable(1, Some(V1_S_KEY), None))
                .done(),
        );
        // 100 bytes under a 4-byte DSN: expanded in the provisional space.
        let low = (V1_C_IDSN + 1) as u32;
        a.feed_tcp(
            &pkt(A, 1000, B, 80)
                .seq(C_ISN + 1)
                .len(100)
                .opt(dss(None, Some((WireSeq::U32(low), 1, 100)), false))
                .done(),
        );
        // A later packet repeats MP_CAPABLE with both keys: the client IDSN is now known.
        a.feed_tcp(
            &pkt(A, 1000, B, 80)
                .seq(C_ISN + 101)
                .opt(capable(1, Some(V1_C_KEY), Some(V1_S_KEY)))
                .done(),
        );
        // Retransmission of the same 100 bytes under an 8-byte DSN: only if the provisional
        // range was shifted to IDSN + 1 does it overlap (retransmission, unique stays 100).
        a.feed_tcp(
            &pkt(A, 1000, B, 80)
                .seq(C_ISN + 1)
                .len(100)
                .opt(dss(
                    None,
                    Some((WireSeq::U64(V1_C_IDSN + 1), 1, 100)),
                    false,
                ))
                .done(),
        );
        a.feed_tcp(
            &pkt(B, 80, A, 1000)
                .seq(S_ISN + 1)
                .opt(dss(Some(WireSeq::U32(low.wrapping_add(100))), None, false))
                .done(),
        );
        let s = a.mptcp_summary(0).expect("connection 0");
        let c2s = &s.directions[C2S];
        assert_eq!((c2s.unique_bytes, c2s.retransmitted_bytes), (100, 100));
        assert_eq!(c2s.acked_bytes, 100);
    }

    #[test]
    fn fallback_and_signalling_events() {
        let mut a = Analyzer::new();
        a.feed_tcp(
            &pkt(A, 1000, B, 80)
                .seq(C_ISN)
                .flags(SYN)
                .opt(capable(0, Some(C_KEY), None))
                .done(),
        );
        a.feed_tcp(
            &pkt(B, 80, A, 1000)
                .seq(S_ISN)
                .ack(C_ISN + 1)
                .flags(SYNACK)
                .at(2, 1_500_000_000)
                .done(),
        );
        let s = a.mptcp_summary(0).expect("connection 0");
        assert!(s.fallback);
        assert_eq!(s.events.len(), 1);
        assert_eq!(
            (s.events[0].kind, s.events[0].time_s),
            (EventKind::Fallback, 1.5)
        );
        assert_eq!(s.events[0].direction, Direction::ServerToClient);

        let mut a = Analyzer::new();
        v0_handshake(&mut a);
        a.feed_tcp(
            &pkt(B, 5201, A, 1000)
                .seq(S_ISN + 1)
                .opt(MptcpOption::AddAddr {
                    v0: true,
                    echo: false,
                    addr_id: 5,
                    addr: "11.0.0.2".parse().expect("address"),
                    port: Some(5201),
                    hmac: None,
                })
                .opt(MptcpOption::Unknown {
                    subtype: 14,
                    len: 4,
                })
                .done(),
        );
        a.feed_tcp(
            &pkt(A, 1000, B, 5201)
                .seq(C_ISN + 1)
                .opt(MptcpOption::TcpRst {
                    flags: 0,
                    reason: 2,
                })
                .done(),
        );
        a.feed_tcp(
            &pkt(A, 1000, B, 5201)
                .seq(C_ISN + 1)
                .opt(dss(None, Some((WireSeq::U64(C_IDSN + 1), 1, 0)), false))
                .done(),
        );
        let s = a.mptcp_summary(0).expect("connection 0");
        let kinds: Vec<_> = s
            .events
            .iter()
            .map(|e| (e.kind.as_str(), e.detail.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("add_addr", "id 5 11.0.0.2:5201"),
                ("unknown_option", "subtype 14, length 4"),
                ("mp_tcprst", "reason 2 (lack of resources), flags 0x0"),
                ("fallback", "infinite mapping"),
            ]
        );
        assert!(s.fallback);
        assert_eq!(a.diagnostics().unknown_mptcp_options, 1);
    }

    #[test]
    fn late_mapping_credits_earlier_segment_and_hole_keeps_mapping() {
        let mut a = Analyzer::new();
        v0_handshake(&mut a);
        let seg = |a: &mut Analyzer, ssn: u32, len: u32, map: Option<(u64, u32, u16)>| {
            let mut p = pkt(A, 1000, B, 5201).seq(C_ISN + ssn).len(len);
            if let Some((off, mssn, mlen)) = map {
                p = p.opt(dss(
                    None,
                    Some((WireSeq::U64(C_IDSN + 1 + off), mssn, mlen)),
                    false,
                ));
            }
            a.feed_tcp(&p.done());
        };
        // Mapping A: ssn 1..3001 → data 0..3000, announced on its first segment; its second
        // segment (ssn 1001) is lost, the third arrives.
        seg(&mut a, 1, 1000, Some((0, 1, 3000)));
        seg(&mut a, 2001, 1000, None);
        // A segment at ssn 3001 whose mapping (B) has not been seen yet: unmapped for now.
        seg(&mut a, 3001, 1000, None);
        // 17 one-segment mappings above (ssn 4001 + 1000k → data ssn − 1): they fill the 16
        // slots and evict, but A is not fully carried (hole at ssn 1001) and must stay.
        for k in 0..17u32 {
            let ssn = 4001 + 1000 * k;
            seg(&mut a, ssn, 1000, Some((u64::from(ssn - 1), ssn, 1000)));
        }
        // Mapping B arrives on a retransmission of its segment: the earlier unmapped segment
        // gets credited (and this copy is a retransmission of it).
        seg(&mut a, 3001, 1000, Some((3000, 3001, 1000)));
        // The lost segment of A is retransmitted without a mapping: A was kept because it
        // covers a hole, so it maps to data 1000..2000.
        seg(&mut a, 1001, 1000, None);
        let s = a.mptcp_summary(0).expect("connection 0");
        let c2s = &s.directions[C2S];
        // Data 0..3000 (A) + 3000..4000 (B) + 17 × 1000 = 21000 unique; wire 22 × 1000.
        assert_eq!((c2s.unique_bytes, c2s.wire_bytes), (21_000, 22_000));
        // One segment was unmapped when seen (ssn 3001); none remains unmapped.
        assert_eq!((c2s.unmapped_segments, c2s.unmapped_bytes), (1, 0));
        assert_eq!((c2s.retransmissions, c2s.retransmitted_bytes), (1, 1000));
    }

    #[test]
    fn join_seen_before_its_token_is_attached_later() {
        let mut a = Analyzer::new();
        // v1: the server's key arrives in the SYN/ACK, the client's only in the third ACK. A
        // server-opened join asking for the client's token comes before that ACK.
        a.feed_tcp(
            &pkt(A, 1000, B, 80)
                .seq(C_ISN)
                .flags(SYN)
                .opt(capable(1, None, None))
                .done(),
        );
        a.feed_tcp(
            &pkt(B, 80, A, 1000)
                .seq(S_ISN)
                .ack(C_ISN + 1)
                .flags(SYNACK)
                .opt(capable(1, Some(V1_S_KEY), None))
                .done(),
        );
        a.feed_tcp(
            &pkt(B, 7000, A2, 1000)
                .seq(1)
                .flags(SYN)
                .opt(join_syn(0x18f9_781b, false, 4))
                .done(),
        );
        assert_eq!(a.mptcp_list().orphan_subflows.len(), 1);
        a.feed_tcp(
            &pkt(A, 1000, B, 80)
                .seq(C_ISN + 1)
                .ack(S_ISN + 1)
                .opt(capable(1, Some(V1_C_KEY), Some(V1_S_KEY)))
                .done(),
        );
        let list = a.mptcp_list();
        assert!(list.orphan_subflows.is_empty());
        let join = &list.mptcp_connections[0].subflows[1];
        assert_eq!(
            (join.tcp_stream, join.join, join.client_addr_id),
            (1, true, Some(4))
        );
    }

    /// Sets the IDSN of one direction of connection 0 by hand: no key of a test can be made
    /// to hash to a chosen IDSN, and the arithmetic under test only sees the IDSN.
    fn set_idsn(a: &mut Analyzer, cd: Direction, idsn: u64) {
        let material = &mut a.mptcp.conns[0].material[cd];
        let token = material.map_or(0, |m| m.token);
        *material = Some(KeyMaterial { token, idsn });
    }

    /// A transfer of 600 bytes from client IDSN `idsn`: three 200-byte segments (data
    /// offsets 0, 200, 400 from IDSN + 1; the third under a 4-byte DSN), then, if
    /// `retransmit`, the second again; DATA_FIN at offset 600; the server's 4-byte DATA_ACK
    /// of offset 601. Returns the client→server summary and the DATA_FIN event's detail.
    fn transfer_from_idsn(idsn: u64, retransmit: bool) -> (MptcpDirectionSummary, String) {
        let mut a = Analyzer::new();
        v0_handshake(&mut a);
        set_idsn(&mut a, Direction::ClientToServer, idsn);
        let at = |offset: u64| idsn.wrapping_add(1).wrapping_add(offset);
        let seg = |a: &mut Analyzer, ssn: u32, len: u32, dsn: WireSeq, fin: bool| {
            let map_len = u16::try_from(len).expect("short") + u16::from(fin);
            a.feed_tcp(
                &pkt(A, 1000, B, 5201)
                    .seq(C_ISN + ssn)
                    .len(len)
                    .opt(dss(None, Some((dsn, ssn, map_len)), fin))
                    .done(),
            );
        };
        seg(&mut a, 1, 200, WireSeq::U64(at(0)), false);
        seg(&mut a, 201, 200, WireSeq::U64(at(200)), false);
        seg(&mut a, 401, 200, WireSeq::U32(at(400) as u32), false);
        if retransmit {
            seg(&mut a, 201, 200, WireSeq::U64(at(200)), false);
        }
        seg(&mut a, 601, 0, WireSeq::U64(at(600)), true);
        a.feed_tcp(
            &pkt(B, 5201, A, 1000)
                .seq(S_ISN + 1)
                .opt(dss(Some(WireSeq::U32(at(601) as u32)), None, false))
                .done(),
        );
        let mut s = a.mptcp_summary(0).expect("connection 0");
        let fin = s.events.iter().find(|e| e.kind == EventKind::DataFin);
        let fin = fin.map(|e| e.detail.clone()).unwrap_or_default();
        (s.directions.swap_remove(C2S), fin)
    }

    /// RFC 8684 §3.3.1: data sequence numbers wrap at 2^64. With client IDSN 2^64 − 300 the
    /// data starts at 2^64 − 299: the segments carry 2^64 − 299 .. 2^64 − 99, then
    /// 2^64 − 99 .. 101 (across 2^64, one mapping), then 101 .. 301; DATA_FIN takes 301 and
    /// the DATA_ACK 302 acknowledges everything. By hand: wire = unique = 600, nothing
    /// reinjected, retransmitted or unmapped, acked (302 − (2^64 − 299)) mod 2^64 − 1 (the
    /// DATA_FIN) = 600. With the middle segment retransmitted: wire 800, unique 600, one
    /// retransmission of 200 bytes, still nothing reinjected. The same transfer from an IDSN
    /// far from 2^64, and from IDSNs placing 2^64 elsewhere in it, gives the same numbers.
    #[test]
    fn data_sequence_space_crosses_2_pow_64() {
        let (c2s, fin) = transfer_from_idsn(u64::MAX - 299, false);
        assert_eq!((c2s.wire_bytes, c2s.unique_bytes), (600, 600));
        assert_eq!((c2s.reinjections, c2s.reinjected_bytes), (0, 0));
        assert_eq!((c2s.retransmissions, c2s.retransmitted_bytes), (0, 0));
        assert_eq!((c2s.unmapped_segments, c2s.unmapped_bytes), (0, 0));
        assert_eq!(c2s.acked_bytes, 600);
        assert_eq!(c2s.subflows[0].unique_bytes, 600);
        assert_eq!(fin, "dsn 301");

        let (c2s, _) = transfer_from_idsn(u64::MAX - 299, true);
        assert_eq!((c2s.wire_bytes, c2s.unique_bytes), (800, 600));
        assert_eq!((c2s.retransmissions, c2s.retransmitted_bytes), (1, 200));
        assert_eq!((c2s.reinjections, c2s.reinjected_bytes), (0, 0));
        assert_eq!(c2s.acked_bytes, 600);

        for retransmit in [false, true] {
            let far = transfer_from_idsn(1_000_000, retransmit).0;
            for idsn in [u64::MAX - 299, u64::MAX - 100, u64::MAX - 1, u64::MAX] {
                assert_eq!(transfer_from_idsn(idsn, retransmit).0, far, "IDSN {idsn}");
            }
        }
    }

    /// Attach-by-DSN with offsets from the IDSN, modulo 2^64. The server's IDSN is 5; a 4-byte
    /// DATA_ACK 0xFFFF_FFF0 from the client expands (closest to IDSN + 1 = 6) to 2^64 − 16,
    /// before the IDSN: it acknowledges nothing (acked 0, not 2^64 − 22) and must not make
    /// the "seen so far" bound wrap. A server-sent stream without handshake whose 4-byte DSN
    /// 106 expands to 106 (101 past the IDSN) then attaches to the server→client direction
    /// and carries its 100 bytes.
    #[test]
    fn attach_by_dsn_and_acks_below_the_idsn() {
        let mut a = Analyzer::new();
        v0_handshake(&mut a);
        set_idsn(&mut a, Direction::ServerToClient, 5);
        a.feed_tcp(
            &pkt(A, 1000, B, 5201)
                .seq(C_ISN + 1)
                .opt(dss(Some(WireSeq::U32(0xffff_fff0)), None, false))
                .done(),
        );
        a.feed_tcp(
            &pkt(B, 5201, A2, 2001)
                .seq(1)
                .len(100)
                .opt(dss(None, Some((WireSeq::U32(106), 1, 100)), false))
                .done(),
        );
        let list = a.mptcp_list();
        assert!(list.orphan_subflows.is_empty());
        assert_eq!(list.mptcp_connections[0].subflows[1].tcp_stream, 1);
        let s = a.mptcp_summary(0).expect("connection 0");
        let s2c = &s.directions[S2C];
        assert_eq!((s2c.unique_bytes, s2c.acked_bytes), (100, 0));
        assert_eq!(s2c.subflows[1].unique_bytes, 100);
    }

    /// Every TCP stream with an MPTCP option is a subflow of exactly one connection or one
    /// orphan, and nothing else is listed.
    fn assert_every_mptcp_stream_listed_once(a: &Analyzer) {
        let mptcp_streams: Vec<u64> = a
            .tcp_list()
            .tcp_connections
            .iter()
            .filter(|s| s.mptcp)
            .map(|s| s.stream)
            .collect();
        let list = a.mptcp_list();
        let mut listed: Vec<u64> = list
            .mptcp_connections
            .iter()
            .flat_map(|c| c.subflows.iter().map(|s| s.tcp_stream))
            .chain(list.orphan_subflows.iter().map(|o| o.tcp_stream))
            .collect();
        listed.sort_unstable();
        assert_eq!(listed, mptcp_streams);
    }

    /// Streams whose MPTCP options name no connection (tcpdump's mptcp-tcprst.pcap: two
    /// MP_TCPRST packets; an ADD_ADDR alone) are orphans, listed with why; a stream carrying
    /// only a malformed option too. Plain TCP is not listed.
    #[test]
    fn streams_with_only_signalling_options_are_orphans() {
        let mut a = Analyzer::new();
        let rst = MptcpOption::TcpRst {
            flags: 0,
            reason: 1,
        };
        a.feed_tcp(&pkt(A, 1000, B, 80).seq(5).opt(rst.clone()).done());
        a.feed_tcp(&pkt(B, 80, A, 1000).seq(9).opt(rst).done());
        a.feed_tcp(&pkt(A, 1001, B, 80).seq(5).len(10).done());
        a.feed_tcp(
            &pkt(A, 1002, B, 80)
                .opt(MptcpOption::Malformed { subtype: 2, len: 5 })
                .done(),
        );
        v0_handshake(&mut a);
        let list = a.mptcp_list();
        let orphans: Vec<_> = list
            .orphan_subflows
            .iter()
            .map(|o| (o.tcp_stream, o.reason, o.token))
            .collect();
        assert_eq!(
            orphans,
            [
                (0, OrphanReason::NoHandshakeOrDss, None),
                (2, OrphanReason::NoHandshakeOrDss, None),
            ]
        );
        assert_eq!(list.orphan_subflows[0].client.to_string(), "10.0.0.1:1000");
        assert_eq!(list.mptcp_connections.len(), 1);
        assert_every_mptcp_stream_listed_once(&a);
    }

    /// A stream first attached by DSN (role unknown) whose MP_JOIN SYN is captured later, with
    /// the token of its connection, becomes a join with the SYN's backup flag and address id.
    #[test]
    fn late_join_syn_turns_a_dsn_attached_subflow_into_a_join() {
        let mut a = Analyzer::new();
        v0_handshake(&mut a);
        a.feed_tcp(
            &pkt(A2, 2000, B, 5201)
                .seq(5001)
                .len(100)
                .opt(dss(None, Some((WireSeq::U64(C_IDSN + 1), 1, 100)), false))
                .done(),
        );
        let role = |a: &Analyzer| a.mptcp_list().mptcp_connections[0].subflows[1].role;
        assert_eq!(role(&a), SubflowRole::Unknown);
        a.feed_tcp(
            &pkt(A2, 2000, B, 5201)
                .seq(5000)
                .flags(SYN)
                .opt(join_syn(S_TOKEN, true, 3))
                .done(),
        );
        let list = a.mptcp_list();
        let join = &list.mptcp_connections[0].subflows[1];
        assert_eq!(
            (join.role, join.join, join.backup, join.client_addr_id),
            (SubflowRole::Join, true, true, Some(3))
        );
        assert_every_mptcp_stream_listed_once(&a);
    }

    /// More MPTCP options than the decoder keeps are counted per packet, with a problem line.
    #[test]
    fn mptcp_option_overflow_is_a_diagnostic() {
        let mut a = Analyzer::new();
        let mut packet = pkt(A, 1000, B, 80).at(7, 0).done();
        packet.mptcp_overflow = 2;
        a.feed_tcp(&packet);
        a.feed_tcp(&pkt(A, 1000, B, 80).at(8, 0).done());
        let d = a.diagnostics();
        assert_eq!(d.mptcp_overflow_packets, 1);
        assert_eq!(
            d.problems,
            ["packet 7: 2 MPTCP options beyond the first 6 ignored"]
        );
    }

    /// `SubflowDirection::remember` skips its searches for in-order mappings; it must keep the
    /// same mappings in the same slots as the plain searches (the eviction rule in the module
    /// documentation), written out here as the reference. Mostly in-order mappings with
    /// repeats, overlaps, equal ends and jumps back, as retransmissions and reinjections make.
    #[test]
    fn remember_fast_paths_keep_the_same_mappings() {
        fn reference(
            mappings: &mut [Mapping; MAPPINGS],
            used: &mut usize,
            latest: &mut usize,
            m: Mapping,
            carried: Carried<'_>,
        ) -> bool {
            if mappings[..*used].contains(&m) {
                return false;
            }
            if *used < MAPPINGS {
                mappings[*used] = m;
                *latest = *used;
                *used += 1;
                return true;
            }
            let lowest = (0..MAPPINGS)
                .min_by_key(|&i| mapping_end(&mappings[i]))
                .unwrap_or(0);
            let victim = if carried.all(mappings[lowest].ssn, mapping_end(&mappings[lowest])) {
                lowest
            } else {
                (0..MAPPINGS)
                    .min_by_key(|&i| {
                        let m = &mappings[i];
                        (!carried.all(m.ssn, mapping_end(m)), mapping_end(m))
                    })
                    .unwrap_or(lowest)
            };
            mappings[victim] = m;
            *latest = victim;
            true
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for _ in 0..200 {
            let mut fast = SubflowDirection::default();
            let (mut mappings, mut used, mut latest) = ([Mapping::default(); MAPPINGS], 0, 0);
            let mut ssn = 1u64;
            for _ in 0..300 {
                let len = 1 + next(4) * 500;
                let m = match next(10) {
                    // A jump back (a reinjection under an old subflow sequence number).
                    0 => Mapping {
                        dsn: next(1 << 20),
                        ssn: ssn.saturating_sub(next(20_000)),
                        len,
                    },
                    // The same mapping again, or one ending where the last one ends.
                    1 => mappings[latest],
                    2 => Mapping {
                        dsn: next(1 << 20),
                        ssn: mapping_end(&mappings[latest]).saturating_sub(len),
                        len,
                    },
                    _ => {
                        let m = Mapping {
                            dsn: ssn + 1000,
                            ssn,
                            len,
                        };
                        ssn += len;
                        m
                    }
                };
                // The TCP layer saw everything up to a point a little below the newest data
                // (ISN position 10, so relative sequence numbers are positions − 10), or
                // nothing at all.
                let tcp = TcpDirection::covering(10, 10 + ssn.saturating_sub(next(10_000)));
                let carried = Carried {
                    tcp: Some(&tcp).filter(|_| next(8) != 0),
                    isn: Some(10),
                };
                let expected = reference(&mut mappings, &mut used, &mut latest, m, carried);
                assert_eq!(fast.remember(m, carried), expected);
                assert_eq!(
                    (fast.mappings, fast.used, fast.latest),
                    (mappings, used, latest)
                );
            }
        }
    }
}
