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
//!   A stream that carries DSS mappings but no captured MP_CAPABLE/MP_JOIN SYN is attached by
//!   data sequence number: its mapping's DSN must fall in `[IDSN, IDSN + 2^32)` of one
//!   direction of exactly one connection (a 4-byte DSN is first expanded against that
//!   direction, and must also be at most 2^24 past the highest data seen there). Otherwise it
//!   is an orphan too; the attempt is repeated on its first `MAX_DSN_ATTACH_ATTEMPTS`
//!   mappings.
//! - **Fallback** (`fallback` events, `fallback: true`): an MP_CAPABLE SYN answered by a
//!   SYN/ACK without MP_CAPABLE; an infinite mapping (DSS data-level length 0); MP_FAIL.
//! - **Data sequence numbers** are 64-bit. A 4-byte DSN or DATA_ACK holds the low 32 bits; it
//!   is expanded to the 64-bit value closest to the last one known in its direction (initially
//!   IDSN + 1). If a 4-byte value arrives before the direction's key is known (v1: the client
//!   key travels in the third ACK), it is expanded in a provisional space based at 2^32; when
//!   the IDSN (or any 8-byte DSN of that direction) becomes known, everything recorded for the
//!   direction is shifted once by the multiple of 2^32 that places it next to the true value.
//!   Nothing is buffered per packet.
//! - **Mappings**: each subflow direction keeps its `MAPPINGS` most recent distinct DSS
//!   mappings (DSN, subflow sequence relative to the subflow's ISN, length), evicting first
//!   those wholly below the subflow's highest sequence number, then the oldest. v1's
//!   MP_CAPABLE ACK with a data-level length is the mapping (IDSN + 1, relative ssn 1, length)
//!   (RFC 8684 §3.1). An infinite mapping maps everything after its ssn. A segment with
//!   payload gets its data range from the mapping covering its relative subflow sequence:
//!   `dsn = map.dsn + (rel_seq − map.ssn)`, clipped to the mapping (a segment spanning two
//!   mappings is split). Payload no known mapping covers is counted as `unmapped`. Without a
//!   captured SYN the subflow's ISN is unknown: it is taken as the lowest
//!   `position − ssn` of segments carrying a mapping (exact once a segment starting its
//!   mapping is seen).
//! - **DATA_FIN** takes the last data sequence number of its mapping; it is never a payload
//!   byte and gets one `data_fin` event per direction.
//! - **Per direction**: `wire_bytes` = sum of subflow payloads; `unique_bytes` = size of the
//!   union of data ranges carried; each subflow is credited with the bytes it carried first
//!   (`share` = its integer unique bytes / the direction's). Data already carried first by a
//!   different subflow is a **reinjection** (count of segments, overlapping bytes); data the
//!   same subflow carried first is a **retransmission**. `acked_bytes` = highest DATA_ACK from
//!   the peer − (IDSN + 1), minus 1 if it acknowledges this direction's DATA_FIN, never
//!   negative (0 while the IDSN is unknown). `duration_s` = last − first packet of the
//!   connection's subflows in that direction.

use std::{fmt::Write as _, net::IpAddr};

use rustc_hash::FxHashMap;

use super::{
    keys::{KeyMaterial, key_material},
    ranges::OwnedRangeSet,
    summary::{
        MptcpConnectionInfo, MptcpDirectionSummary, MptcpEvent, MptcpSummary, OrphanSubflow,
        SubflowDirectionSummary, SubflowInfo,
    },
    tcp::{CLIENT_TO_SERVER, SERVER_TO_CLIENT, Segment, TcpTracker, direction_name, expand32},
};
use crate::decode::{
    MptcpOption, Packet,
    mptcp::{DssMapping, JoinOption, WireSeq, tcprst_reason_name},
    tcp_flags,
};

/// Mappings remembered per subflow direction.
pub const MAPPINGS: usize = 8;
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
    /// Next slot to evict when none is stale.
    oldest: usize,
    /// Highest relative subflow sequence carried (exclusive end).
    highest_rel: u64,
    /// ISN position inferred from mappings when the SYN was not captured.
    inferred_isn: Option<u64>,
}

impl SubflowDirection {
    fn remember(&mut self, mapping: Mapping) {
        if self.mappings[..self.used].contains(&mapping) {
            return;
        }
        let slot = if self.used < MAPPINGS {
            self.used += 1;
            self.used - 1
        } else if let Some(stale) = self
            .mappings
            .iter()
            .position(|m| m.len != INFINITE && m.ssn.saturating_add(m.len) <= self.highest_rel)
        {
            stale
        } else {
            let slot = self.oldest;
            self.oldest = (self.oldest + 1) % MAPPINGS;
            slot
        };
        self.mappings[slot] = mapping;
    }

    /// The most recently remembered mapping covering relative sequence `rel`.
    fn covering(&self, rel: u64) -> Option<Mapping> {
        self.mappings[..self.used]
            .iter()
            .filter(|m| m.ssn <= rel && rel - m.ssn < m.len)
            .max_by_key(|m| m.ssn)
            .copied()
    }
}

#[derive(Clone, Debug)]
struct Subflow {
    stream: u32,
    join: bool,
    backup: bool,
    /// Address ids of the subflow's TCP client and server.
    addr_ids: [Option<u8>; 2],
    /// The subflow's TCP client is the connection's server.
    flipped: bool,
    /// Indexed by connection direction.
    dirs: [SubflowDirection; 2],
}

#[derive(Clone, Debug, Default)]
struct ConnDirection {
    wire_bytes: u64,
    first_ts_ns: Option<u64>,
    last_ts_ns: u64,
    /// Data ranges, owned by the subflow index that carried them first.
    data: OwnedRangeSet,
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
    /// Indexed by connection direction: the client's key, the server's key.
    keys: [Option<u64>; 2],
    material: [Option<KeyMaterial>; 2],
    fallback: bool,
    fallback_causes: u8,
    awaiting_synack: bool,
    subflows: Vec<Subflow>,
    dirs: [ConnDirection; 2],
    events: Vec<MptcpEvent>,
    events_dropped: u64,
    first_ts_ns: u64,
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
    dir: usize,
}

impl Connection {
    fn new(version: u8, ts_ns: u64) -> Self {
        Self {
            version,
            keys: [None; 2],
            material: [None; 2],
            fallback: false,
            fallback_causes: 0,
            awaiting_synack: false,
            subflows: Vec::new(),
            dirs: Default::default(),
            events: Vec::new(),
            events_dropped: 0,
            first_ts_ns: ts_ns,
        }
    }

    fn event(&mut self, at: EventSource, kind: &'static str, detail: String) {
        if self.events.len() >= MAX_EVENTS {
            self.events_dropped += 1;
            return;
        }
        self.events.push(MptcpEvent {
            time_s: at.ts_ns.saturating_sub(self.first_ts_ns) as f64 / 1e9,
            packet: at.packet,
            tcp_stream: u64::from(at.stream),
            direction: direction_name(at.dir),
            kind,
            detail,
        });
    }

    fn fall_back(&mut self, at: EventSource, cause: u8, detail: &str) {
        self.fallback = true;
        if self.fallback_causes & cause == 0 {
            self.fallback_causes |= cause;
            self.event(at, "fallback", detail.to_owned());
        }
    }

    /// The reference a 4-byte value of direction `cd` is expanded against.
    fn dsn_reference(&mut self, cd: usize) -> u64 {
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
    fn dsn(&mut self, cd: usize, wire: WireSeq) -> u64 {
        let value = match wire {
            WireSeq::U64(value) => {
                if self.dirs[cd].provisional {
                    let reference = self.dsn_reference(cd);
                    self.rebase(cd, value.wrapping_sub(expand32(value as u32, reference)));
                }
                value
            }
            WireSeq::U32(low) => expand32(low, self.dsn_reference(cd)),
        };
        self.dirs[cd].dsn_ref = Some(value);
        value
    }

    /// Leaves the provisional space of direction `cd`: shifts everything recorded by `delta`.
    fn rebase(&mut self, cd: usize, delta: u64) {
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

impl MptcpTracker {
    /// Updates the MPTCP state with one packet, after `TcpTracker::feed` gave its `segment`.
    pub fn feed(&mut self, packet: &Packet, segment: &Segment) {
        let stream = segment.stream as usize;
        if self.roles.len() <= stream {
            self.roles.resize(stream + 1, StreamRole::Unknown);
        }
        let mut role = self.roles[stream];
        if role == StreamRole::Unknown && packet.mptcp.is_empty() {
            return; // plain TCP: the common path for non-MPTCP traffic
        }
        if segment.roles_swapped
            && let StreamRole::Subflow { conn, sub } = role
        {
            let sub = &mut self.conns[conn as usize].subflows[sub as usize];
            sub.flipped = !sub.flipped;
        }

        // Handshake options first: they may create a connection or attach the stream.
        let syn = packet.has_flag(tcp_flags::SYN);
        let ack = packet.has_flag(tcp_flags::ACK);
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
                    role = self.on_capable(
                        role,
                        packet,
                        segment,
                        *version,
                        *sender_key,
                        *receiver_key,
                    );
                }
                MptcpOption::Join(JoinOption::Syn {
                    backup,
                    addr_id,
                    token,
                    ..
                }) if syn && !ack => {
                    role = self.on_join_syn(role, segment.stream, *token, *backup, *addr_id);
                }
                _ => {}
            }
        }
        let at = EventSource {
            packet: packet.number,
            ts_ns: packet.ts_ns,
            stream: segment.stream,
            dir: segment.dir,
        };

        // A stream with DSS mappings but no known connection: try its data sequence numbers.
        if !matches!(role, StreamRole::Subflow { .. })
            && let Some(mapping) = first_mapping(packet)
        {
            role = self.attach_by_dsn(role, segment, mapping.dsn);
        }
        self.roles[stream] = role;
        let StreamRole::Subflow { conn, sub } = role else {
            return;
        };
        let conn_index = conn as usize;
        let sub_index = sub as usize;
        let c = &mut self.conns[conn_index];
        let flipped = c.subflows[sub_index].flipped;
        let cd = segment.dir ^ usize::from(flipped);
        let at = EventSource { dir: cd, ..at };

        if syn && ack && c.awaiting_synack && sub_index == 0 {
            c.awaiting_synack = false;
            if !capable_seen {
                c.fall_back(at, FALLBACK_SYNACK, "SYN/ACK without MP_CAPABLE");
            }
        }

        // Counters.
        let len = u64::from(packet.payload_len);
        let d = &mut c.dirs[cd];
        d.wire_bytes += len;
        d.first_ts_ns.get_or_insert(packet.ts_ns);
        d.last_ts_ns = d.last_ts_ns.max(packet.ts_ns);
        let sd = &mut c.subflows[sub_index].dirs[cd];
        sd.packets += 1;
        sd.wire_bytes += len;

        // The subflow's ISN position: from the TCP layer, else inferred from mappings.
        let mut isn = segment.isn_pos.or(sd.inferred_isn);

        for option in &packet.mptcp {
            match option {
                MptcpOption::Capable {
                    data_len: Some(data_len),
                    ..
                } if *data_len > 0 => {
                    // RFC 8684 §3.1: data on the MP_CAPABLE ACK starts at IDSN + 1, ssn 1.
                    if let Some(m) = c.material[cd] {
                        let dsn = m.idsn.wrapping_add(1);
                        c.dirs[cd].dsn_ref.get_or_insert(dsn);
                        c.subflows[sub_index].dirs[cd].remember(Mapping {
                            dsn,
                            ssn: 1,
                            len: u64::from(*data_len),
                        });
                    }
                }
                MptcpOption::Join(JoinOption::SynAck { addr_id, .. }) => {
                    c.subflows[sub_index].addr_ids[1] = Some(*addr_id);
                }
                MptcpOption::Dss {
                    data_fin,
                    data_ack,
                    mapping,
                } => {
                    if let Some(data_ack) = data_ack {
                        let peer = 1 - cd;
                        let value = c.dsn(peer, *data_ack);
                        let highest = &mut c.dirs[peer].highest_ack;
                        *highest = Some(highest.map_or(value, |h| h.max(value)));
                    }
                    if let Some(mapping) = mapping {
                        isn = record_mapping(
                            c,
                            at,
                            sub_index,
                            cd,
                            segment,
                            len > 0,
                            isn,
                            mapping,
                            *data_fin,
                        );
                    } else if *data_fin && !c.dirs[cd].data_fin_reported {
                        c.dirs[cd].data_fin_reported = true;
                        c.event(at, "data_fin", "DATA_FIN without mapping".to_owned());
                    }
                }
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
                    c.event(at, "add_addr", detail);
                }
                MptcpOption::RemoveAddr { addr_ids } => {
                    let mut detail = String::from("ids");
                    for id in addr_ids {
                        let _ = write!(detail, " {id}");
                    }
                    c.event(at, "remove_addr", detail);
                }
                MptcpOption::Prio { backup, addr_id } => {
                    // Applied to the subflow carrying it (the address id, when present, names
                    // the sender's address, which is this subflow's in practice).
                    c.subflows[sub_index].backup = *backup;
                    let mut detail = format!("backup={backup}");
                    if let Some(id) = addr_id {
                        let _ = write!(detail, " id {id}");
                    }
                    c.event(at, "mp_prio", detail);
                }
                MptcpOption::Fail { dsn } => {
                    c.event(at, "mp_fail", format!("dsn {dsn}"));
                    c.fall_back(at, FALLBACK_MP_FAIL, "MP_FAIL");
                }
                MptcpOption::FastClose { receiver_key } => {
                    c.event(at, "mp_fastclose", format!("receiver key {receiver_key}"));
                }
                MptcpOption::TcpRst { flags, reason } => {
                    c.event(
                        at,
                        "mp_tcprst",
                        format!(
                            "reason {reason} ({}), flags {flags:#x}",
                            tcprst_reason_name(*reason)
                        ),
                    );
                }
                MptcpOption::Unknown { subtype, len } => {
                    c.event(
                        at,
                        "unknown_option",
                        format!("subtype {subtype}, length {len}"),
                    );
                }
                MptcpOption::Malformed { subtype, len } => {
                    c.event(
                        at,
                        "malformed_option",
                        format!("subtype {subtype}, length {len}"),
                    );
                }
                MptcpOption::Capable { .. } | MptcpOption::Join(_) => {}
            }
        }

        if len > 0 {
            carry(c, sub_index, cd, segment, isn, len);
        }
    }

    fn on_capable(
        &mut self,
        role: StreamRole,
        packet: &Packet,
        segment: &Segment,
        version: u8,
        sender_key: Option<u64>,
        receiver_key: Option<u64>,
    ) -> StreamRole {
        let (conn, role) = match role {
            StreamRole::Unknown => {
                let conn = self.conns.len() as u32;
                let mut c = Connection::new(version, packet.ts_ns);
                c.awaiting_synack =
                    packet.has_flag(tcp_flags::SYN) && !packet.has_flag(tcp_flags::ACK);
                c.subflows.push(Subflow {
                    stream: segment.stream,
                    join: false,
                    backup: false,
                    addr_ids: [None; 2],
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
        let cd = segment.dir ^ usize::from(c.subflows[0].flipped);
        let mut changed = [false; 2];
        if c.version != version {
            c.version = version;
            changed = [c.keys[0].is_some(), c.keys[1].is_some()];
        }
        for (owner, key) in [(cd, sender_key), (1 - cd, receiver_key)] {
            if let Some(key) = key
                && c.keys[owner] != Some(key)
            {
                c.keys[owner] = Some(key);
                changed[owner] = true;
            }
        }
        for owner in [CLIENT_TO_SERVER, SERVER_TO_CLIENT] {
            if changed[owner] {
                self.learn_key(conn, owner);
            }
        }
        role
    }

    /// Derives token and IDSN of a newly known key of side `owner` of connection `conn`.
    fn learn_key(&mut self, conn: u32, owner: usize) {
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
            StreamRole::Subflow { .. } => role,
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
        let flipped = c.material[CLIENT_TO_SERVER].is_some_and(|m| m.token == token)
            && c.material[SERVER_TO_CLIENT].is_none_or(|m| m.token != token);
        let sub = c.subflows.len() as u32;
        c.subflows.push(Subflow {
            stream,
            join: true,
            backup,
            addr_ids: [addr_id, None],
            flipped,
            dirs: Default::default(),
        });
        StreamRole::Subflow { conn, sub }
    }

    /// Attaches a stream without a usable handshake by the DSN of one of its mappings.
    fn attach_by_dsn(&mut self, role: StreamRole, segment: &Segment, dsn: WireSeq) -> StreamRole {
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
            for cd in [CLIENT_TO_SERVER, SERVER_TO_CLIENT] {
                let Some(m) = c.material[cd] else {
                    continue;
                };
                let start = m.idsn.wrapping_add(1);
                let inside = match dsn {
                    WireSeq::U64(value) => value.wrapping_sub(m.idsn) < 1 << 32,
                    WireSeq::U32(low) => {
                        let reference = c.dirs[cd].dsn_ref.unwrap_or(start);
                        let value = expand32(low, reference);
                        let seen = c.dirs[cd].data.end().unwrap_or(start).max(reference);
                        value.wrapping_sub(m.idsn) < 1 << 32
                            && value.wrapping_sub(m.idsn)
                                <= seen.wrapping_sub(m.idsn) + DSN_ATTACH_SLACK
                    }
                };
                if inside {
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
                    join: false,
                    backup: false,
                    addr_ids: [None; 2],
                    flipped: segment.dir != cd,
                    dirs: Default::default(),
                });
                StreamRole::Subflow { conn, sub }
            }
            _ => role,
        }
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    pub fn list(&self, tcp: &TcpTracker) -> (Vec<MptcpConnectionInfo>, Vec<OrphanSubflow>) {
        let conns = (0..self.conns.len() as u64)
            .filter_map(|id| self.info(tcp, id))
            .collect();
        let orphans = self
            .orphans
            .iter()
            .filter(|o| !o.attached)
            .map(|o| {
                let (client, server) = endpoints(tcp, o.stream);
                OrphanSubflow {
                    tcp_stream: u64::from(o.stream),
                    client,
                    server,
                    token: o.token,
                }
            })
            .collect();
        (conns, orphans)
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
                    join: s.join,
                    backup: s.backup,
                    client_addr_id: s.addr_ids[0],
                    server_addr_id: s.addr_ids[1],
                }
            })
            .collect();
        Some(MptcpConnectionInfo {
            id,
            version: c.version,
            client_key: c.keys[0].map(|k| k.to_string()),
            server_key: c.keys[1].map(|k| k.to_string()),
            client_token: c.material[0].map(|m| m.token),
            server_token: c.material[1].map(|m| m.token),
            client_idsn: c.material[0].map(|m| m.idsn.to_string()),
            server_idsn: c.material[1].map(|m| m.idsn.to_string()),
            fallback: c.fallback,
            subflows,
        })
    }

    pub fn summary(&self, id: u64) -> Option<MptcpSummary> {
        let c = self.conns.get(usize::try_from(id).ok()?)?;
        let directions = [CLIENT_TO_SERVER, SERVER_TO_CLIENT]
            .into_iter()
            .map(|cd| {
                let d = &c.dirs[cd];
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
                let acked_bytes = match (d.highest_ack, c.material[cd]) {
                    (Some(ack), Some(m)) if !d.provisional => {
                        let acked = ack.saturating_sub(m.idsn.wrapping_add(1));
                        let fin = d.data_fin.is_some_and(|fin| ack > fin);
                        acked.saturating_sub(u64::from(fin))
                    }
                    _ => 0,
                };
                let subflows = c
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
                    direction: direction_name(cd),
                    duration_s,
                    wire_bytes: d.wire_bytes,
                    unique_bytes,
                    acked_bytes,
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
            })
            .collect();
        Some(MptcpSummary {
            id,
            version: c.version,
            fallback: c.fallback,
            directions,
            events: c.events.clone(),
            events_dropped: c.events_dropped,
        })
    }
}

/// Records a DSS mapping carried by a segment of subflow `sub` in connection direction `cd`.
/// `isn` is the subflow direction's ISN position as known so far; returns it, possibly newly
/// inferred from this mapping.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the pieces are all distinct"
)]
fn record_mapping(
    c: &mut Connection,
    at: EventSource,
    sub: usize,
    cd: usize,
    segment: &Segment,
    has_payload: bool,
    isn: Option<u64>,
    mapping: &DssMapping,
    data_fin: bool,
) -> Option<u64> {
    let dsn = c.dsn(cd, mapping.dsn);
    let sd = &mut c.subflows[sub].dirs[cd];
    let (ssn, isn) = match (segment.isn_pos, has_payload) {
        (None, true) => {
            // No captured SYN: the segment lies inside its mapping, so payload position − ssn
            // is at or above the ISN position, and equal for a segment starting its mapping.
            // Keep the lowest such guess.
            let reference = match sd.inferred_isn {
                Some(i) => segment.payload_pos.saturating_sub(i),
                None => u64::from(mapping.ssn),
            };
            let ssn = expand32(mapping.ssn, reference);
            let guess = segment.payload_pos.saturating_sub(ssn);
            let inferred = sd.inferred_isn.map_or(guess, |i| i.min(guess));
            sd.inferred_isn = Some(inferred);
            (ssn, Some(inferred))
        }
        _ => match isn {
            Some(i) => (
                expand32(mapping.ssn, segment.payload_pos.saturating_sub(i)),
                Some(i),
            ),
            None => (u64::from(mapping.ssn), None),
        },
    };
    if mapping.len == 0 {
        sd.remember(Mapping {
            dsn,
            ssn,
            len: INFINITE,
        });
        c.fall_back(at, FALLBACK_INFINITE, "infinite mapping");
        return isn;
    }
    // DATA_FIN occupies the mapping's last data sequence number, not a payload byte.
    let len = u64::from(mapping.len) - u64::from(data_fin);
    if len > 0 {
        sd.remember(Mapping { dsn, ssn, len });
    }
    if data_fin {
        let fin = dsn.wrapping_add(len);
        let d = &mut c.dirs[cd];
        d.data_fin = Some(fin);
        if !d.data_fin_reported {
            d.data_fin_reported = true;
            c.event(at, "data_fin", format!("dsn {fin}"));
        }
    }
    isn
}

/// Credits the payload of a segment to the data ranges of its mappings.
fn carry(c: &mut Connection, sub: usize, cd: usize, segment: &Segment, isn: Option<u64>, len: u64) {
    let Some(isn) = isn else {
        let d = &mut c.dirs[cd];
        d.unmapped_segments += 1;
        d.unmapped_bytes += len;
        return;
    };
    let rel = segment.payload_pos.saturating_sub(isn);
    let end = rel + len;
    let sd = &mut c.subflows[sub].dirs[cd];
    sd.highest_rel = sd.highest_rel.max(end);
    let d = &mut c.dirs[cd];
    let (mut new, mut same, mut other) = (0, 0, 0);
    let mut cursor = rel;
    // A segment spans at most as many mappings as are remembered.
    for _ in 0..=MAPPINGS {
        if cursor >= end {
            break;
        }
        let Some(m) = sd.covering(cursor) else {
            d.unmapped_segments += 1;
            d.unmapped_bytes += end - cursor;
            break;
        };
        let chunk_end = end.min(m.ssn.saturating_add(m.len));
        let dsn = m.dsn.wrapping_add(cursor - m.ssn);
        let r = d.data.insert(dsn, dsn + (chunk_end - cursor), sub as u32);
        new += r.new;
        same += r.same_owner;
        other += r.other_owner;
        cursor = chunk_end;
    }
    sd.unique_bytes += new;
    if same > 0 {
        d.retransmissions += 1;
        d.retransmitted_bytes += same;
        sd.retransmitted_bytes += same;
    }
    if other > 0 {
        d.reinjections += 1;
        d.reinjected_bytes += other;
        sd.reinjected_bytes += other;
    }
}

fn first_mapping(packet: &Packet) -> Option<&DssMapping> {
    packet.mptcp.iter().find_map(|o| match o {
        MptcpOption::Dss {
            mapping: Some(m), ..
        } => Some(m),
        _ => None,
    })
}

fn endpoint(addr: IpAddr, port: Option<u16>) -> String {
    match (addr, port) {
        (IpAddr::V4(a), Some(p)) => format!("{a}:{p}"),
        (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
        (a, None) => a.to_string(),
    }
}

fn endpoints(tcp: &TcpTracker, stream: u32) -> (String, String) {
    tcp.stream(u64::from(stream))
        .map(|s| (s.client.to_string(), s.server.to_string()))
        .unwrap_or_default()
}
